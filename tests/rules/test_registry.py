"""The rule registry does not depend on what was imported first."""
from __future__ import annotations

import subprocess
import sys


def _count(prelude: str) -> int:
    code = f"{prelude}\nfrom lbc.rules import all_rules\nprint(len(all_rules()))"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_every_rule_is_registered_whatever_was_imported_first():
    alone = _count("")
    assert alone == _count("import lbc.pipeline") == _count("import lbc.capabilities")
    assert "LBC801" in {r.id for r in __import__("lbc.rules", fromlist=["all_rules"]).all_rules()}
