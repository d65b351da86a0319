"""The conformance suite's fixtures, target selection, outcome recording and matrix (see README.md).

Tests marked `@pytest.mark.scenario("S<n>")` that take the `env` fixture run once per selected
target. Targets: every --lbc-target that has a runner; without --lbc-target, every target whose
runner is registered and whose proxy binary is installed. The summary prints the scenario x target
matrix and one line per target: `conformance NAME: P passed, F failed, U declared-unsupported`
(`conformance-docker` with --lbc-docker).
"""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from harness import outcomes  # noqa: E402
from harness.backends import local_launcher  # noqa: E402
from harness.certs import CertFactory  # noqa: E402
from harness.env import DeclaredUnsupported, Env  # noqa: E402
from harness.net import Processes  # noqa: E402
from harness.runners import runners  # noqa: E402

# The Docker mode (--lbc-docker): its fixtures (lbc_docker_mode, docker_env, docker_run), and
# importing it registers harness.runners.DOCKER_RUNNERS.
sys.path.insert(0, os.path.join(HERE, "docker"))
from dockermode import *  # noqa: E402,F401,F403


def pytest_configure(config):
    config.addinivalue_line("markers", "conformance: a behavioural conformance scenario (CONFORMANCE.md)")
    config.addinivalue_line("markers", "integration: runs real proxies on loopback")
    config.addinivalue_line("markers", "scenario(id): the CONFORMANCE.md scenario (S1-S25) a test proves")


def _docker(config) -> bool:
    return bool(config.getoption("--lbc-docker"))


def selected_targets(config) -> list[str]:
    """Targets the suite runs against, in a stable order."""
    available = runners(_docker(config))
    chosen = config.getoption("--lbc-target") or []
    if chosen:
        return [t for t in dict.fromkeys(chosen) if t in available]
    if _docker(config):
        return sorted(available)
    return sorted(n for n, r in available.items() if r.available())


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        names = sorted(set(runners(False)) | set(runners(True)))
        metafunc.parametrize("target", names, ids=names)


def pytest_collection_modifyitems(config, items):
    wanted = set(selected_targets(config))
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "target" in callspec.params and callspec.params["target"] not in wanted:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def run_certs(tmp_path_factory):
    """The run's certificate factory and CA (made fresh for every test run)."""
    factory = CertFactory(str(tmp_path_factory.mktemp("certs")))
    return factory, factory.ca("lbc-conformance-ca")


@pytest.fixture
def local_env(tmp_path, run_certs):
    """Env(target) for a test written for one proxy, run on this machine; its processes are stopped after it."""
    factory, ca = run_certs
    procs = Processes()
    try:
        yield lambda target: Env(target, runners(False)[target], str(tmp_path), procs, factory, ca)
    finally:
        procs.stop_all()


@pytest.fixture
def env(request, target, tmp_path, run_certs):
    docker = _docker(request.config)
    launcher = local_launcher
    if docker:
        # The Docker mode provides this fixture: .runners {target: Runner} and .launcher for backends.
        mode = request.getfixturevalue("lbc_docker_mode")
        runner, launcher = mode.runners[target], mode.launcher
    else:
        runner = runners(False)[target]
        if not runner.available():
            pytest.fail(f"{target} was selected but its binary is not installed")
    factory, ca = run_certs
    procs = Processes()
    e = Env(target, runner, str(tmp_path), procs, factory, ca, launcher)
    try:
        yield e
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for p in procs.procs:
                log = p.log()
                if log and not p.name.startswith("backend"):
                    print(f"--- log of {p.name} (pid {p.pid}) ---\n{log}")
        procs.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    unsupported = (call.when == "call" and call.excinfo is not None
                   and call.excinfo.errisinstance(DeclaredUnsupported))
    if unsupported:
        # The test asserted what the contract asks: lbc refused the scenario with LBC801 only.
        rep.outcome = "passed"
        rep.longrepr = None
        rep.sections.append(("declared unsupported", str(call.excinfo.value)))
    if call.when == "call":
        item.rep_call = rep
    marker = item.get_closest_marker("scenario")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None or "target" not in callspec.params:
        return
    target = callspec.params["target"]
    if call.when == "call":
        kind = outcomes.UNSUPPORTED if unsupported else (outcomes.PASSED if rep.passed else outcomes.FAILED)
        outcomes.record(marker.args[0], target, kind, str(call.excinfo.value) if unsupported else "")
    elif rep.failed:                     # setup or teardown broke: the scenario is not proven
        outcomes.record(marker.args[0], target, outcomes.FAILED)


def pytest_terminal_summary(terminalreporter, config):
    shown = [t for t in selected_targets(config) if t in outcomes.targets_seen()]
    shown += [t for t in outcomes.targets_seen() if t not in shown and t != "f5"]   # f5 prints its own
    if not shown:
        return
    prefix = "conformance-docker" if _docker(config) else "conformance"
    terminalreporter.section(f"{prefix} matrix (scenario x target)")
    lines = outcomes.matrix_lines(shown, prefix)
    for line in lines:
        terminalreporter.write_line(line)
    config._lbc_conformance_totals = [l for l in lines if l.startswith(prefix + " ")]


def pytest_unconfigure(config):
    """Repeat the per-target totals after pytest's own last line, so the run ends with them."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    for line in getattr(config, "_lbc_conformance_totals", []):
        if tr is not None:
            tr.write_line(line)
