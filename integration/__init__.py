"""The behavioural conformance suite (a package so its test modules never clash with tests/ by name)."""
