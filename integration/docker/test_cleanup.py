"""Containers do not outlive a failing test, and one a test forgets is swept (and reported) at the
end of the run: proven on an inner pytest run with its own session, against the same engine."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.docker]

HERE = os.path.dirname(os.path.abspath(__file__))

CONFTEST = f"""
import sys
sys.path[:0] = [{os.path.dirname(HERE)!r}, {HERE!r}]

def pytest_addoption(parser):
    parser.addoption("--lbc-docker", action="store_true")

from dockermode import *  # noqa
"""

TESTS = """
import containers

def test_fails_with_a_container(docker_run):
    c = docker_run("backend", ["sleep", "300"], role="inner")
    open("tracked.name", "w").write(c.name)
    assert c.status() == "running"
    raise AssertionError("this test fails on purpose")

def test_forgets_a_container(docker_env):
    c = containers.run(docker_env.client, "lbc/backend", ["sleep", "300"], role="forgotten")
    open("forgotten.name", "w").write(c.name)
"""


def test_failing_and_forgetful_tests_leave_no_container(docker_env, tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(TESTS))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lbc-docker",
                          "--rootdir", str(tmp_path), str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert "1 failed, 1 passed, 1 error" in out, out
    assert "this test fails on purpose" in out
    forgotten = (tmp_path / "forgotten.name").read_text()
    assert f"containers outlived their test (removed now): ['{forgotten}']" in out, out
    names = {c.name for c in docker_env.client.containers.list(all=True)}
    assert (tmp_path / "tracked.name").read_text() not in names
    assert forgotten not in names
