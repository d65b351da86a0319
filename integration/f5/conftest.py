"""F5 conformance: scenarios whose logic lives in an iRule run in the Tcl harness ("simulated").

Each scenario test carries `@pytest.mark.f5_scenario("S10")`; the summary prints the F5 rows of
the conformance matrix and the line `conformance f5: P passed, F failed, U declared-unsupported`.
Scenarios that need a real BIG-IP (TMM's balancing, monitors, persistence, TLS) are listed as
not run: lbc only checks their tmsh objects structurally (tests/test_f5.py).
"""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from harness import outcomes  # noqa: E402  (integration/conftest.py puts integration/ on the path)


def pytest_configure(config):
    config.addinivalue_line("markers", "conformance: a behavioural conformance scenario (CONFORMANCE.md)")
    config.addinivalue_line("markers", "f5_scenario(id, unsupported=False): the conformance scenario an F5 test "
                                       "covers; unsupported=True when it asserts the compile refuses it (LBC801)")


def _wanted(config) -> bool:
    chosen = config.getoption("--lbc-target") or []
    return not chosen or "f5" in chosen


def pytest_collection_modifyitems(config, items):
    if _wanted(config):
        return
    skip = pytest.mark.skip(reason="--lbc-target does not include f5")
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(skip)


def pytest_runtest_logreport(report):
    """Record each F5 scenario test in the shared outcome store (integration/harness/outcomes.py)."""
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "f5_scenario":
            scenario, unsupported = value
            kind = outcomes.FAILED if not report.passed else outcomes.UNSUPPORTED if unsupported else outcomes.PASSED
            outcomes.record(scenario, "f5", kind)


def pytest_itemcollected(item):
    m = item.get_closest_marker("f5_scenario")
    if m is not None:
        item.user_properties.append(("f5_scenario", (m.args[0], bool(m.kwargs.get("unsupported")))))


def pytest_terminal_summary(terminalreporter):
    """The F5 rows: the shared matrix leaves f5 out, as it has no runner (no BIG-IP here)."""
    if "f5" not in outcomes.targets_seen():
        return
    tr = terminalreporter
    tr.section("conformance matrix: f5 (no BIG-IP here: iRule logic simulated in tclsh, docs/f5.md)")
    width = max(len(t) for t in outcomes.SCENARIOS.values()) + 6
    counts = {"pass": 0, "FAIL": 0, "declared-unsupported": 0}
    for sid, title in outcomes.SCENARIOS.items():
        cell = outcomes.cell(sid, "f5")
        if cell in counts:
            counts[cell] += 1
        shown = {"pass": "pass (simulated)",
                 "not run": "not run (needs a BIG-IP; its tmsh objects are checked structurally)"}.get(cell, cell)
        tr.write_line(f"{sid + ' ' + title:<{width}}{shown}")
    tr.write_line(f"conformance f5: {counts['pass']} passed, {counts['FAIL']} failed, "
                  f"{counts['declared-unsupported']} declared-unsupported")
