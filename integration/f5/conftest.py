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

SCENARIOS = [f"S{i}" for i in range(1, 22)]
_OUTCOMES: dict[str, list[str]] = {}   # scenario -> outcomes of its tests (passed/failed/unsupported)


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


def pytest_runtest_makereport(item, call):
    m = item.get_closest_marker("f5_scenario")
    if m is None or call.when != "call":
        return
    _record = "unsupported" if m.kwargs.get("unsupported") else "passed"
    item.user_properties.append(("f5_scenario", (m.args[0], _record)))


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "f5_scenario":
            scenario, kind = value
            _OUTCOMES.setdefault(scenario, []).append(kind if report.passed else "failed")


def pytest_terminal_summary(terminalreporter):
    if not _OUTCOMES:
        return
    tr = terminalreporter
    tr.section("conformance matrix: f5 (no BIG-IP here: iRule logic simulated in tclsh)")
    passed = failed = unsupported = 0
    for s in SCENARIOS:
        outcomes = _OUTCOMES.get(s)
        if not outcomes:
            tr.write_line(f"{s:<4} f5  not run (needs a BIG-IP; tmsh objects checked structurally)")
            continue
        if "failed" in outcomes:
            cell, failed = "FAIL", failed + 1
        elif "unsupported" in outcomes:
            cell, unsupported = "declared-unsupported", unsupported + 1
        else:
            cell, passed = "pass (simulated)", passed + 1
        tr.write_line(f"{s:<4} f5  {cell}")
    tr.write_line(f"conformance f5: {passed} passed, {failed} failed, {unsupported} declared-unsupported")
