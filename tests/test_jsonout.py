"""The JSON targets' serialiser: orjson's fast path and the standard library give the same bytes."""
from __future__ import annotations

import glob
import json
import os

import pytest

from lbc import jsonout

from helpers import ROOT

JSON_GOLDEN = sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "*", "**", "*.json"), recursive=True))


@pytest.mark.skipif(jsonout.orjson is None, reason="orjson is not installed")
@pytest.mark.parametrize("sort_keys", [False, True])
def test_fast_path_gives_the_standard_bytes(sort_keys):
    assert len(JSON_GOLDEN) > 20
    for path in JSON_GOLDEN:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
        assert jsonout.dumps(value, sort_keys) == jsonout.standard_dumps(value, sort_keys), path


def test_non_ascii_text_is_escaped():
    text = jsonout.dumps({"b": "caf\u00e9 \u2028", "a": [1, 2.5, None, True, {}], "e": []})
    assert text.isascii() and "\\u00e9" in text and "\\u2028" in text
    assert text == jsonout.standard_dumps({"b": "caf\u00e9 \u2028", "a": [1, 2.5, None, True, {}], "e": []})
    assert json.loads(text)["b"] == "caf\u00e9 \u2028"


@pytest.mark.skipif(jsonout.orjson is None, reason="orjson is not installed")
def test_compact_fast_path_gives_the_standard_bytes():
    for path in JSON_GOLDEN:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
        assert jsonout.dumps(value, indent=False) == jsonout.standard_dumps(value, indent=False), path
    assert jsonout.dumps({"b": "caf\u00e9", "a": [1, {}]}, indent=False) == '{"b":"caf\\u00e9","a":[1,{}]}\n'


def test_pretty_indents_compact_text_keeping_the_key_order():
    value = {"z": [1, 2.5, None, {"y": "caf\u00e9", "a": True}], "a": {}}
    compact = jsonout.dumps(value, indent=False)
    assert "\n" not in compact.rstrip("\n")
    assert jsonout.pretty(compact) == jsonout.dumps(value) == jsonout.standard_dumps(value)
