"""Every target, from its spec (lbc.targets.SPECS): one test over all of them, so a new target is
checked the moment its spec exists (no per-target copy to remember)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest

from lbc import docker_files, targets
from lbc.capabilities import FEATURES

import validators
from helpers import ROOT, check_text, example_path
from validators import VALIDATORS

NAMES = targets.available()


@pytest.mark.parametrize("name", NAMES)
def test_every_feature_is_declared(name):
    assert set(targets.get(name).capabilities) == set(FEATURES)


@pytest.mark.parametrize("name", NAMES)
def test_the_target_follows_its_spec(name):
    spec, target = targets.spec(name), targets.get(name)
    assert target.name == name and target.main_file == spec.main_file
    assert name in VALIDATORS, "tests/validators.py must check this target's output with the real tool"
    if spec.runtime is not None:
        rt = docker_files.RUNTIMES[name]
        assert (rt.base, rt.config_dir, rt.main, rt.command) == (spec.runtime.image, spec.runtime.config_dir,
                                                                 spec.main_file, spec.runtime.command)
        assert spec.binary and spec.runtime.command[0] == spec.binary


def test_docker_runtimes_are_the_specs_with_a_runtime():
    assert sorted(docker_files.RUNTIMES) == sorted(n for n in NAMES if targets.spec(n).runtime)


def test_every_package_folder_is_listed_in_pyproject():
    """A folder with an __init__.py that pyproject does not list is missing from an installed lbc."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        setup = tomllib.load(f)["tool"]["setuptools"]
    roots = {package: folder for package, folder in setup["package-dir"].items()}
    found = set()
    for package, folder in roots.items():
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            if "__init__.py" in filenames:
                rel = os.path.relpath(dirpath, os.path.join(ROOT, folder))
                found.add(package if rel == "." else package + "." + rel.replace(os.sep, "."))
    assert found == set(setup["packages"])


def _runners() -> dict:
    """The conformance suite's local runners (integration/harness), as its conftest imports them."""
    here = os.path.join(ROOT, "integration")
    if here not in sys.path:
        sys.path.insert(0, here)
    from harness.runners import RUNNERS
    return RUNNERS


@pytest.mark.parametrize("name", NAMES)
def test_checks_runners_and_readme_take_the_targets_facts_from_its_spec(name, tmp_path, monkeypatch):
    """The check command, the program and process name are the spec's wherever they are used: the test
    validators, the conformance runners and the output README (lbc apply: tests/test_apply.py)."""
    spec, runner = targets.spec(name), _runners().get(name)
    if spec.binary is None:   # F5: no proxy runs here; lbc's own structural checks validate its output
        assert not spec.check and runner is None
        return
    assert "{main}" in spec.check and runner is not None and runner.binary == spec.binary
    with open(example_path("lightstreamer-cookie.yaml"), encoding="utf-8") as f:
        model = check_text(tmp_path, f.read()).model
    files = targets.get(name).render(model)
    # the README's check line: the spec's words, with the paths a person would use
    words = [spec.binary, *spec.check]
    line = " ".join(r"\S+" if "{" in w else re.escape(w) for w in words)
    assert re.search(line, files["README.md"]), line
    # the validator runs exactly the spec's check on the main file
    ran: list[list[str]] = []

    def run(argv, *args, **kwargs):
        ran.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")
    monkeypatch.setattr(validators._subprocess, "run", run)
    monkeypatch.setattr(validators._shutil, "which", lambda program: f"/usr/sbin/{program}")
    ok, _ = VALIDATORS[name](files, tmp_path)
    wanted = spec.check_command("MAIN", prefix="PREFIX")   # with or without `quiet` after it

    def same(got: str, want: str) -> bool:
        return {"MAIN": got.endswith(spec.main_file), "PREFIX": got.startswith(str(tmp_path))}.get(want, got == want)
    runs = [argv[argv.index(spec.binary):] for argv in ran if spec.binary in argv]
    assert ok and runs, ran
    assert all(map(same, runs[0][:len(wanted)], wanted)) and len(runs[0]) >= len(wanted), (runs[0], wanted)
