"""Every target, from its spec (lbc.targets.SPECS): one test over all of them, so a new target is
checked the moment its spec exists (no per-target copy to remember)."""
from __future__ import annotations

import os
import tomllib

import pytest

from lbc import docker_files, targets
from lbc.capabilities import FEATURES

from helpers import ROOT
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
