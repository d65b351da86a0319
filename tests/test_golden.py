"""Golden files: every example compiled by every target, byte for byte.

`make golden` (LBC_UPDATE_GOLDEN=1) rewrites them; review the diff like code.
"""
from __future__ import annotations

import os

import pytest

from lbc import targets
from lbc.pipeline import Options, check_file, render

from helpers import EXAMPLES, ROOT, example_path

GOLDEN = os.path.join(ROOT, "tests", "golden")
UPDATE = os.environ.get("LBC_UPDATE_GOLDEN") == "1"
CASES = [(t, e) for t in targets.available() for e in EXAMPLES]


def compiled(target_name: str, example: str) -> dict[str, str] | None:
    tgt = targets.get(target_name)
    result = check_file(example_path(example), Options(), tgt)
    if result.failed:
        return None  # the target declared a feature of this example unsupported (LBC801)
    return render(result.model, tgt)


@pytest.mark.parametrize("target_name,example", CASES, ids=[f"{t}-{e}" for t, e in CASES])
def test_golden(target_name, example):
    files = compiled(target_name, example)
    folder = os.path.join(GOLDEN, target_name, example.removesuffix(".yaml"))
    if files is None:
        files = {"UNSUPPORTED": "lbc compile refuses this example for this target (LBC801)\n"}
    if UPDATE:
        if os.path.isdir(folder):
            for dirpath, _, names in os.walk(folder):
                for n in names:
                    os.remove(os.path.join(dirpath, n))
        for rel, text in files.items():
            dest = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        return
    expected = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            full = os.path.join(dirpath, n)
            with open(full, encoding="utf-8") as f:
                expected[os.path.relpath(full, folder)] = f.read()
    assert expected, f"no golden files in {folder}; run `make golden`"
    assert sorted(files) == sorted(expected), "the set of output files changed; run `make golden` and review"
    for rel in files:
        assert files[rel] == expected[rel], f"{rel} differs from its golden file; run `make golden` and review the diff"


@pytest.mark.parametrize("target_name,example", CASES, ids=[f"{t}-{e}" for t, e in CASES])
def test_deterministic(target_name, example):
    assert compiled(target_name, example) == compiled(target_name, example)
