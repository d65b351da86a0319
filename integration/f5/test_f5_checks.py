"""The F5 structural checks, part of `make conformance TARGET=f5`: every example compiled for f5 and
f5-as3 passes lbc's tmsh check, F5's AS3 schema (when a copy is present) and the pointer checks,
and every iRule passes the 8.4 lint. (tests/test_f5*.py show what each check catches.)"""
from __future__ import annotations

import json
import os

import pytest

from f5checks import ROOT, compile_f5, example
from f5sim import lint
from lbc.targets.f5_as3 import check_references, schema_problems
from lbc.targets.f5_tmsh import check_output, installed_files

pytestmark = [pytest.mark.conformance]
EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".yaml"))
SCHEMA = os.path.normpath(os.path.join(ROOT, "..", "shared", "schemas", "as3-schema.json"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_tmsh_output_passes_the_structural_check_and_lint(name):
    files, result = compile_f5(example(name))
    assert files is not None, [str(d) for d in result.diagnostics]
    assert check_output(files) == []
    for rel, text in sorted(files.items()):
        if rel.startswith("irules/"):
            assert lint(text) == [], rel


@pytest.fixture(scope="module")
def as3_schema():
    if not os.path.exists(SCHEMA):
        pytest.skip(f"F5's AS3 schema is not at {SCHEMA}: AS3 schema validation not run")
    with open(SCHEMA, encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("name", EXAMPLES)
def test_as3_output_passes_the_schema_and_pointer_checks(name, as3_schema):
    files, result = compile_f5(example(name), "f5-as3")
    assert files is not None, [str(d) for d in result.diagnostics]
    decl = json.loads(files["as3.json"])
    assert schema_problems(decl, as3_schema) == []
    assert check_references(decl, installed_files(files["README.md"])) == []
