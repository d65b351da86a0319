"""lbc's access-log format: one list of fields, in one order, that every target writes (docs/logs.md).

A target gives, per field, the expression its proxy substitutes (HAProxy `%ci`, nginx `$remote_addr`,
Envoy `%DOWNSTREAM_REMOTE_ADDRESS%`); `text_line` and `json_fields` put them in lbc's order. Values
the proxy does not have (L7 fields on an L4 listener, a server never reached) are written as `-`
(Envoy's JSON: null). The text format quotes the free-text fields (host, path); the json format
escapes every value as JSON.
"""
from __future__ import annotations

from typing import Callable

# (field, what it holds) in the order every line carries them
FIELDS: tuple[tuple[str, str], ...] = (
    ("time", "when the request (L7) or connection (L4) started: Unix seconds with milliseconds"),
    ("client", "the client's address:port (the PROXY-protocol address where the listener accepts it)"),
    ("listener", "the topology's listener name"),
    ("host", "the Host header as sent (L7)"),
    ("method", "the request method (L7)"),
    ("path", "the request target as sent: path and query (L7)"),
    ("status", "the status answered to the client (L7)"),
    ("service", "the proxy's backend (HAProxy backend, Envoy cluster, nginx upstream) that served it"),
    ("server", "the server's address:port that answered (the last one tried)"),
    ("bytes_in", "bytes received from the client"),
    ("bytes_out", "bytes sent to the client"),
    ("connect_ms", "time to connect to the server, ms"),
    ("response_ms", "time until the server's response headers, ms (L7)"),
    ("total_ms", "the whole request (L7) or connection (L4), ms"),
)
NAMES = tuple(f for f, _ in FIELDS)
QUOTED = frozenset({"host", "path"})          # free text: quoted (and escaped) in the text format
L7_ONLY = frozenset({"host", "method", "path", "status", "response_ms"})
MISSING = "-"


def values(exprs: dict[str, str], l7: bool) -> dict[str, str]:
    """The proxy's expression per field, in lbc's order; L7-only fields are `-` at L4."""
    missing = set(NAMES) - set(exprs) - (set() if l7 else L7_ONLY)
    assert not missing, f"a target gives no expression for {sorted(missing)}"
    return {f: (exprs[f] if l7 or f not in L7_ONLY else MISSING) for f in NAMES}


def text_line(exprs: dict[str, str], l7: bool, quoted: Callable[[str], str]) -> str:
    """`key=value ...`; `quoted(expr)` writes a free-text field as the target quotes and escapes it."""
    vals = values(exprs, l7)
    return " ".join(f"{f}={quoted(v) if f in QUOTED and v != MISSING else v}" for f, v in vals.items())
