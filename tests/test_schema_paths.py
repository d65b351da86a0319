"""The schema check's two paths agree: jsonschema-rs (the fast "valid or not") and the complete
jsonschema path that writes the located diagnostics. A file the fast path accepts must have no
schema error at all, else lbc would miss a diagnostic; a file it refuses goes down the complete path,
so its diagnostics are the same as ever. Checked on every topology of the rule case files and the
examples, and on seeded random mutants of the valid ones (bounded: ~1,500 topologies, a few seconds).
"""
from __future__ import annotations

import copy
import glob
import os
import random

import pytest
import yaml

from lbc import schema
from lbc.loader import LoadError, load_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(schema.jsonschema_rs is None, reason="jsonschema-rs is not installed")


def _topologies() -> list[tuple[str, bytes]]:
    out = []
    for fn in sorted(glob.glob(os.path.join(ROOT, "tests", "rules", "cases", "*.yaml"))):
        with open(fn, encoding="utf-8") as f:
            for case in yaml.safe_load(f):
                out.append((f"{os.path.basename(fn)}:{case['name']}", case["topology"].encode("utf-8")))
    for fn in sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))):
        with open(fn, "rb") as f:
            out.append((os.path.basename(fn), f.read()))
    return out


def _agree(name: str, data) -> bool:
    """Asserts both paths agree on `data`; returns whether it is valid."""
    complete = schema._validator().is_valid(data)
    assert schema.fast_valid(data) == complete, f"{name}: fast path says {not complete}, complete path {complete}"
    return complete


def test_both_paths_agree_on_the_case_files_and_examples():
    seen = refused = 0
    for name, text in _topologies():
        try:
            doc = load_bytes(text, name)
        except LoadError:
            continue
        seen += 1
        if not _agree(name, doc.data):
            refused += 1
            assert schema.complete_check(doc), name  # refused files get their located diagnostics
    assert seen > 100 and refused >= 10  # the corpus has both kinds


# Replacement values that break a schema in different ways: types, floats lbc refuses where an
# integer is wanted, bad names and host names, enums, over-long durations, empty containers.
BAD_VALUES = [2.0, 8080.0, -1, 0, 70000, True, None, "", "x" * 300, "Bad Name", "-lead", "9999999d", "0s",
              "bad host!", "*.*.example", [], {}, [1], {"unknown_key": 1}, "http", "tcp", "1.2.3.4", "::1"]


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _mutate(data, rng: random.Random):
    data = copy.deepcopy(data)
    paths = [p for p in _paths(data) if p]
    path = rng.choice(paths)
    parent = data
    for p in path[:-1]:
        parent = parent[p]
    action = rng.randrange(4)
    if action == 0 and isinstance(parent, dict):
        del parent[path[-1]]                          # drop a (maybe required) key
    elif action == 1 and isinstance(parent, dict):
        parent[rng.choice(["colour", "timeouts", "weight", "mode", "x"])] = rng.choice(BAD_VALUES)  # unknown/extra key
    else:
        parent[path[-1]] = rng.choice(BAD_VALUES)     # wrong type or value
    return data


def test_both_paths_agree_on_random_mutants():
    rng = random.Random(18)
    valid = []
    for name, text in _topologies():
        try:
            doc = load_bytes(text, name)
        except LoadError:
            continue
        if schema._validator().is_valid(doc.data):
            valid.append((name, doc.data))
    refused = 0
    for i in range(1500):
        name, data = valid[i % len(valid)]
        if not _agree(f"{name} mutant {i}", _mutate(data, rng)):
            refused += 1
    assert refused > 500  # the mutants do break the schema


def test_a_float_where_an_integer_is_wanted_takes_the_complete_path():
    doc = load_bytes(b"lbc: 1\nname: t\nvips: {v: {address: 10.0.0.1}}\nservices:\n  s: {servers: [{name: a, address: 10.0.0.2, port: 80.0}]}\n"
                     b"listeners: [{name: w, vip: v, port: 80, service: s}]\n", "t.yaml")
    assert not schema.fast_valid(doc.data)
    diags = schema.check_schema(doc)
    assert any(d.id == "LBC011" and "expected integer, got 80.0" in d.message for d in diags), diags
