"""Per-rule case files: tests/rules/cases/LBCnnn.yaml, a list of cases

    - name: fail_...            # or pass_...
      options: {check_files: true, strict: true}   # optional
      encoding: latin-1                            # optional, how the topology is saved
      topology: |
        ...
        tls: {mode: terminate}   # expect: LBC201 error
        ...

A `# expect: ID severity [acknowledged]` comment marks the line a diagnostic must point at.
Every diagnostic of a case must be marked, and every mark must be met, so a `pass_` case
(no marks) proves the topology is entirely clean. The test certificates of rules/pki.py are
written beside each topology.
"""
from __future__ import annotations

import os
import re

import pytest
import yaml

from lbc.pipeline import Options, check_file
from lbc.rules import all_rules

from rules.pki import write_standard_set

CASES_DIR = os.path.join(os.path.dirname(__file__), "cases")
MARK = re.compile(r"#\s*expect:\s*(LBC[0-9]{3})\s+(error|warning|info)(\s+acknowledged)?")


def _load():
    out = []
    for fn in sorted(os.listdir(CASES_DIR)):
        if fn.endswith(".yaml"):
            with open(os.path.join(CASES_DIR, fn), encoding="utf-8") as f:
                for case in yaml.safe_load(f):
                    out.append((fn[:-5], case))
    return out


CASES = _load()


def expected(topology: str) -> list[tuple]:
    marks = []
    for n, line in enumerate(topology.splitlines(), start=1):
        for m in MARK.finditer(line):
            marks.append((m.group(1), m.group(2), n, bool(m.group(3))))
    return sorted(marks)


@pytest.fixture(scope="module")
def pki_root(tmp_path_factory):
    d = tmp_path_factory.mktemp("cases")
    write_standard_set(d)
    return d


@pytest.mark.parametrize("rule_id,case", CASES, ids=[f"{r}-{c['name']}" for r, c in CASES])
def test_case(pki_root, rule_id, case):
    p = pki_root / f"{rule_id}-{case['name']}.yaml"
    p.write_bytes(case["topology"].encode(case.get("encoding", "utf-8")))
    opts = case.get("options", {})
    result = check_file(str(p), Options(strict=opts.get("strict", False), check_files=opts.get("check_files", False)))
    got = sorted((d.id, d.severity.value, d.location.line, bool(d.acknowledged)) for d in result.diagnostics)
    assert got == expected(case["topology"]), "\n".join(f"{d.location.line}: {d.id} {d.message}"
                                                        for d in result.diagnostics)
    if case["name"].startswith("fail_"):
        assert any(g[0] == rule_id and not g[3] for g in got), "a fail_ case must trigger its rule"


def test_every_rule_has_a_failing_and_a_passing_case():
    names: dict[str, set] = {}
    for rid, case in CASES:
        names.setdefault(rid, set()).add(case["name"].split("_")[0])
    missing = [r.id for r in all_rules() if not r.id.startswith("LBC8") and names.get(r.id) != {"fail", "pass"}]
    assert missing == []
