"""lbc as a pre-commit hook, run by the real pre-commit against this repository's
.pre-commit-hooks.yaml at the checked-out commit (what users pin with `rev:`).

pre-commit builds the hook's own environment by installing lbc from the commit (~15 s, needs the
package index that installs lbc's dependencies); skipped, with the reason, outside a git checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from helpers import example_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pre_commit() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "pre-commit")
    return exe if os.path.exists(exe) else shutil.which("pre-commit") or ""


def git(*args: str, cwd: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=True).stdout


@pytest.fixture(scope="module")
def head() -> str:
    if not pre_commit():
        pytest.skip("pre-commit is not installed (pip install -e '.[test]')")
    if not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout: pre-commit installs hooks from a commit")
    return git("rev-parse", "HEAD", cwd=ROOT).strip()


def test_hook_fails_a_bad_topology_and_passes_good_ones(tmp_path, head):
    repo = tmp_path / "infra"
    repo.mkdir()
    git("init", "-q", cwd=str(repo))
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {ROOT}\n  rev: {head}\n  hooks:\n  - id: lbc-validate\n")
    good = open(example_path("flynet.yaml")).read()
    (repo / "topology.yaml").write_text(good)
    (repo / "notes.yaml").write_text("not: a topology\n")          # not matched by the hook's pattern
    git("add", ".", cwd=str(repo))
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}
    run = lambda: subprocess.run([pre_commit(), "run", "--all-files", "--color", "never"], cwd=str(repo), env=env,
                                 capture_output=True, text=True, timeout=600)
    r = run()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "lbc validate" in r.stdout and "Passed" in r.stdout
    (repo / "topology-prod.yaml").write_text(good.replace("balance: round-robin", "balance: round-robbin"))
    git("add", ".", cwd=str(repo))
    r = run()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Failed" in r.stdout
    assert "topology-prod.yaml:21:14: error[LBC013]" in r.stdout and "did you mean round-robin?" in r.stdout
    assert "notes.yaml" not in r.stdout
