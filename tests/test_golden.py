"""Golden files: every example and every feature case compiled by every target, byte for byte.

Inputs: the documentation examples (examples/*.yaml) and small topologies, one per feature, in
tests/golden/cases/*.yaml. Outputs, in tests/golden/:
  <target>/<input>/...             the files `lbc compile` writes, or, when the target refuses the
                                   input, diagnostics.txt: the errors, with their positions
  model/<input>.json               the normalised model (`lbc compile --emit model`), or the errors
                                   of an input the language refuses

`make golden` (LBC_UPDATE_GOLDEN=1) rewrites them and deletes the folders of inputs that no longer
exist; review the diff like code. `make gen-check` fails when the committed files are stale.
"""
from __future__ import annotations

import difflib
import json
import os
import shutil

import pytest

from lbc import targets
from lbc.pipeline import Options, Result, check_file, render

from helpers import EXAMPLES, ROOT, example_path

GOLDEN = os.path.join(ROOT, "tests", "golden")
FEATURE_CASES = os.path.join(GOLDEN, "cases")
UPDATE = os.environ.get("LBC_UPDATE_GOLDEN") == "1"

INPUTS = {e.removesuffix(".yaml"): example_path(e) for e in EXAMPLES}
INPUTS.update({f"case-{f.removesuffix('.yaml')}": os.path.join(FEATURE_CASES, f)
               for f in sorted(os.listdir(FEATURE_CASES)) if f.endswith(".yaml")})
CASES = [(t, name) for t in targets.available() for name in INPUTS]


def _check(name: str, target=None) -> Result:
    return check_file(INPUTS[name], Options(), target)


def _diagnostics(result: Result) -> str:
    """The errors that stopped the compilation, one a line: what a reviewer must see change."""
    return "".join(f"{d.location.line}:{d.location.col} {d.id} {d.severity.value}: {d.message}\n"
                   for d in result.diagnostics if d.fails)


def compiled(target_name: str, name: str) -> dict[str, str]:
    tgt = targets.get(target_name)
    result = _check(name, tgt)
    if result.failed:
        return {"diagnostics.txt": _diagnostics(result)}
    return render(result.model, tgt)


def model_json(name: str) -> str:
    result = _check(name)
    if result.failed:   # refused by the language itself: no model, the reasons instead
        return json.dumps({"diagnostics": _diagnostics(result).splitlines()}, indent=2) + "\n"
    doc = result.model.to_dict()
    doc["file"], doc["base_dir"] = os.path.basename(doc["file"]), "."   # where the checkout is does not matter
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


def _read_tree(folder: str) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            full = os.path.join(dirpath, n)
            with open(full, encoding="utf-8") as f:
                out[os.path.relpath(full, folder).replace(os.sep, "/")] = f.read()
    return out


def _write(dest: str, text: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def assert_same(path: str, got: str, want: str) -> None:
    """Fail with the whole unified diff, named by the golden file's path (pytest would cut an assert's)."""
    if got != want:
        diff = difflib.unified_diff(want.splitlines(keepends=True), got.splitlines(keepends=True),
                                    f"{path} (golden)", f"{path} (now)")
        pytest.fail(f"{path} differs from its golden file; run `make golden` and review:\n" + "".join(diff),
                    pytrace=False)


@pytest.mark.parametrize("target_name,name", CASES, ids=[f"{t}-{n}" for t, n in CASES])
def test_golden(target_name, name):
    files = compiled(target_name, name)
    folder = os.path.join(GOLDEN, target_name, name)
    if UPDATE:
        shutil.rmtree(folder, ignore_errors=True)
        for rel, text in files.items():
            _write(os.path.join(folder, rel), text)
        return
    expected = _read_tree(folder)
    assert expected, f"no golden files in {folder}; run `make golden`"
    assert sorted(files) == sorted(expected), (f"the set of output files in {os.path.relpath(folder, ROOT)} changed; "
                                               "run `make golden` and review")
    for rel in files:
        assert_same(os.path.relpath(os.path.join(folder, rel), ROOT), files[rel], expected[rel])


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_golden_model(name):
    dest = os.path.join(GOLDEN, "model", f"{name}.json")
    text = model_json(name)
    if UPDATE:
        _write(dest, text)
        return
    assert os.path.exists(dest), f"no golden model {dest}; run `make golden`"
    with open(dest, encoding="utf-8") as f:
        assert_same(os.path.relpath(dest, ROOT), text, f.read())


def test_no_stale_golden_folders():
    """A renamed or deleted input leaves no outputs behind (`make golden` removes them)."""
    stale = []
    for kind in [*targets.available(), "model"]:
        folder = os.path.join(GOLDEN, kind)
        for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if entry.removesuffix(".json") not in INPUTS:
                stale.append(os.path.join(folder, entry))
    if UPDATE:
        for path in stale:
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        return
    assert stale == [], "golden outputs of inputs that no longer exist; run `make golden`"


@pytest.mark.parametrize("target_name,name", CASES, ids=[f"{t}-{n}" for t, n in CASES])
def test_deterministic(target_name, name):
    assert compiled(target_name, name) == compiled(target_name, name)
