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


def test_the_loader_reports_with_the_rules_citation_before_anything_loaded_the_rules():
    """One reporting path: a loader finding, made before any rule module was imported, carries the
    rule's severity and citation from the registry (the Reporter loads the rules it needs)."""
    code = ("import lbc.loader as l\ntry:\n    l.load_text('a: [1', 'f.yaml')\nexcept l.LoadError as e:\n"
            "    print(e.diagnostic.id, e.diagnostic.severity.value, bool(e.diagnostic.source))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["LBC002", "error", "True"]


def test_only_the_reporter_builds_diagnostics():
    """The loader, the schema check, includes, the model builder, the rules and the capability check
    report through lbc.report.Reporter: no other module constructs a Diagnostic."""
    import os
    import re

    from helpers import ROOT
    calls = re.compile(r"(?<![\w.])Diagnostic\(")
    found = []
    for folder in ("compiler", "targets"):
        for base, _dirs, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(base, name)
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                    if calls.search(text.replace("class Diagnostic(", "")):
                        found.append(os.path.relpath(path, ROOT))
    assert found == ["compiler/report.py"]
