"""ASCII-only JSON text, fast: the one serialiser of the JSON targets (Envoy, F5 AS3).

orjson writes a 10,000-service Envoy config in ~0.1 s where `json.dumps(indent=...)` takes ~1.7 s
(an indent switches the standard library to its pure-Python encoder). Both give the same bytes for
ASCII text, indented by 2 spaces or compact (tests/test_jsonout.py); orjson cannot escape non-ASCII
characters, so text that has any (rare: descriptions, header values) takes the standard library's path.
Envoy's file is compact (a third of the size and of the memory to write it; `lbc compile --pretty`
indents it), AS3's indented.
"""
from __future__ import annotations

import json

try:
    import orjson
except ImportError:  # pragma: no cover - a platform without its wheel: the same bytes, slower
    orjson = None  # type: ignore[assignment]


def dumps(value, sort_keys: bool = False, indent: bool = True) -> str:
    """`value` as JSON with 2-space indents (or none: one line), every non-ASCII character
    \\u-escaped, and a final newline."""
    if orjson is not None:
        option = (orjson.OPT_INDENT_2 if indent else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        raw = orjson.dumps(value, option=option)
        if raw.isascii():
            return raw.decode("ascii") + "\n"
    return standard_dumps(value, sort_keys, indent)


def standard_dumps(value, sort_keys: bool = False, indent: bool = True) -> str:
    if indent:
        return json.dumps(value, indent=2, sort_keys=sort_keys, ensure_ascii=True) + "\n"
    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=True) + "\n"


def pretty(text: str) -> str:
    """JSON text written by dumps, indented by 2 spaces (keys keep their order)."""
    return dumps(orjson.loads(text) if orjson is not None else json.loads(text))
