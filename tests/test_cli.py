"""The command line as users run it: exit codes, output formats, atomic and deterministic writes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml

from lbc.pipeline import OUTPUT_MARKER, OutputDirError, write_outputs

from helpers import EXAMPLES, example_path


def lbc(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def test_examples_validate():
    r = lbc("validate", *[example_path(e) for e in EXAMPLES])
    assert r.returncode == 0, r.stdout + r.stderr


def test_examples_validate_with_jsonschema_alone():
    schema = json.loads(lbc("schema").stdout)
    for e in EXAMPLES:
        with open(example_path(e)) as f:
            jsonschema.validate(yaml.safe_load(f), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("example", EXAMPLES)
def test_unknown_key_appended_to_an_example(tmp_path, example):
    with open(example_path(example)) as f:
        text = f.read()
    lines = text.splitlines()
    p = tmp_path / example
    p.write_text(text + "colour: blue\n")
    r = lbc("validate", str(p), "--format", "json")
    assert r.returncode == 1
    (d,) = json.loads(r.stdout)["diagnostics"]
    assert (d["id"], d["line"], d["col"]) == ("LBC010", len(lines) + 1, 1)


def test_text_format_has_caret_and_hint(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(open(example_path("flynet.yaml")).read().replace("balance: round-robin", "balance: round-robbin"))
    r = lbc("validate", str(p))
    assert r.returncode == 1
    err = r.stderr.splitlines()
    head = next(i for i, l in enumerate(err) if "error[LBC013]" in l)
    assert err[head].startswith(f"{p}:")
    assert "balance: round-robbin" in err[head + 2]
    caret_col = err[head + 3].index("^") - err[head + 3].index("|") - 2
    assert err[head + 2][err[head + 2].index("|") + 2 + caret_col:].startswith("round-robbin")
    assert any("did you mean round-robin?" in l for l in err)


def test_sarif_and_github_formats(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("lbc: 1\nvips: {}\nservices: {}\nlisteners: []\nextra: 1\n")
    sarif = json.loads(lbc("validate", str(p), "-f", "sarif").stdout)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"LBC010"}
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in results)
    gh = lbc("validate", str(p), "-f", "github").stdout.splitlines()
    assert any(l.startswith("::error file=") and "line=5" in l for l in gh)


def test_exit_codes_for_usage_and_io(tmp_path):
    assert lbc("validate", str(tmp_path / "missing.yaml")).returncode == 2
    assert lbc("compile", example_path("flynet.yaml"), "--target", "nope").returncode == 2
    assert lbc("explain", "LBC999").returncode == 2
    assert lbc("frobnicate").returncode == 2


def test_explain_lists_rules():
    r = lbc("explain")
    assert r.returncode == 0 and "LBC010" in r.stdout
    page = lbc("explain", "LBC004").stdout
    assert "duplicate" in page.lower() and "Source:" in page


def test_write_outputs_is_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    write_outputs(str(out), {"a.cfg": "one\n", "maps/hosts.map": "x b\n"})
    assert (out / "a.cfg").read_text() == "one\n" and (out / OUTPUT_MARKER).exists()
    # a later compile replaces the folder whole: stale files vanish
    write_outputs(str(out), {"a.cfg": "two\n"})
    assert (out / "a.cfg").read_text() == "two\n" and not (out / "maps").exists()
    # a write that fails midway leaves the previous output as it was
    with pytest.raises(AttributeError):
        write_outputs(str(out), {"a.cfg": "three\n", "b.cfg": None})
    assert (out / "a.cfg").read_text() == "two\n"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_write_outputs_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(OutputDirError):
        write_outputs(str(tmp_path), {"a.cfg": "x"})
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_failed_compile_leaves_output_folder_untouched(tmp_path):
    from lbc import targets
    name = targets.available()[0] if targets.available() else None
    assert name, "no target registered"
    out = tmp_path / "out"
    assert lbc("compile", example_path("flynet.yaml"), "--target", name, "-o", str(out)).returncode == 0
    before = {f: (out / f).read_bytes() for f in os.listdir(out) if (out / f).is_file()}
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(example_path("flynet.yaml")).read().replace("service: fvterm", "service: nope"))
    r = lbc("compile", str(bad), "--target", name, "-o", str(out))
    assert r.returncode == 1 and "LBC101" in r.stderr
    assert {f: (out / f).read_bytes() for f in os.listdir(out) if (out / f).is_file()} == before


@pytest.mark.parametrize("example", EXAMPLES)
def test_compile_is_byte_identical_across_processes(tmp_path, example):
    from lbc import targets
    for name in targets.available():
        a, b = tmp_path / f"{name}-a", tmp_path / f"{name}-b"
        ra = lbc("compile", example_path(example), "-t", name, "-o", str(a))
        rb = lbc("compile", example_path(example), "-t", name, "-o", str(b))
        assert ra.returncode == rb.returncode
        if ra.returncode == 0:
            files = lambda d: {os.path.relpath(os.path.join(p, f), d): open(os.path.join(p, f), "rb").read()
                               for p, _, fs in os.walk(d) for f in fs}
            assert files(a) == files(b)
