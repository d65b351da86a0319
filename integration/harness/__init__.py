"""The shared conformance harness: real backends, certificates, clients, proxy runners (see ../README.md)."""
