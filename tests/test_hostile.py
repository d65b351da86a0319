"""Hostile strings in every string field: refused by the schema with a location, or free text
that every target quotes (the targets' own tests prove the quoting). Never a traceback."""
from __future__ import annotations

import copy

import pytest
import yaml

from lbc import targets
from lbc.pipeline import render

from helpers import check_text

HOSTILE = [
    "a\nb", "ab}", "{ab", "a;b", "a#b", 'a"b', "a'b", "100%", "$host", "a\x00b", "a b", "café", "a\\b",
    "a\rb", "a\u2028b", "-leading", "x" * 1100, "a}\n  http-request return status 200\n#",
]

FULL = {
    "lbc": 1, "name": "full", "description": "all string fields",
    "vips": {"public": {"address": "127.0.0.10"}},
    "certificates": {"c1": {"cert": "certs/c1.pem", "key": "certs/c1.key", "names": ["a.example.com"],
                            "ignore": {"LBC106": "test fixture"}}},
    "services": {"web": {
        "profile": "generic", "description": "web", "balance": "round-robin",
        "servers": [{"name": "w1", "address": "127.0.0.11", "port": 8080, "direct_host": "w1.example.com"},
                    {"name": "w2", "address": "127.0.0.12", "port": 8080, "direct_host": "w2.example.com"}],
        "health": {"http": {"path": "/health", "host": "a.example.com", "expect_body": "OK"}, "interval": "5s"},
        "stickiness": {"mode": "cookie", "cookie": {"name": "SRV"}},
        "fallback": {"respond": {"body": "No sessions available", "content_type": "text/plain"}},
        "upstream_tls": {"ca": "certs/ca.pem", "verify_name": "a.example.com", "sni": "a.example.com"},
    }},
    "listeners": [{"name": "https", "vip": "public", "port": 443,
                   "tls": {"mode": "bridge", "certificates": ["c1"], "client_ca": "certs/ca.pem"},
                   "routes": [{"hosts": ["a.example.com"], "service": "web"}]}],
}

# (path, free text?) for every string field of FULL; free text is accepted and must be quoted by targets
FIELDS = [
    (("name",), False), (("description",), True), (("vips", "public", "address"), False),
    (("certificates", "c1", "cert"), False), (("certificates", "c1", "key"), False),
    (("certificates", "c1", "names", 0), False), (("certificates", "c1", "ignore", "LBC106"), True),
    (("services", "web", "description"), True),
    (("services", "web", "servers", 0, "name"), False), (("services", "web", "servers", 0, "address"), False),
    (("services", "web", "servers", 0, "direct_host"), False),
    (("services", "web", "health", "http", "path"), False), (("services", "web", "health", "http", "host"), False),
    (("services", "web", "health", "http", "expect_body"), True),
    (("services", "web", "health", "interval"), False),
    (("services", "web", "stickiness", "cookie", "name"), False),
    (("services", "web", "fallback", "respond", "body"), True),
    (("services", "web", "fallback", "respond", "content_type"), False),
    (("services", "web", "upstream_tls", "ca"), False), (("services", "web", "upstream_tls", "verify_name"), False),
    (("services", "web", "upstream_tls", "sni"), False),
    (("listeners", 0, "name"), False), (("listeners", 0, "vip"), False),
    (("listeners", 0, "tls", "client_ca"), False),
    (("listeners", 0, "routes", 0, "hosts", 0), False), (("listeners", 0, "routes", 0, "service"), False),
]


def _set(doc, path, value):
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _text_ok(s: str) -> bool:
    return len(s) <= 1024 and not any(ord(c) < 0x20 or ord(c) == 0x7f for c in s)


CASES = [(path, free, h) for path, free in FIELDS for h in HOSTILE]


@pytest.mark.parametrize("path,free,hostile", CASES, ids=[f"{'.'.join(map(str, p))}-{i}" for i, (p, f, h) in
                                                          enumerate(CASES)])
def test_hostile_string(tmp_path, path, free, hostile):
    doc = copy.deepcopy(FULL)
    _set(doc, path, hostile)
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    r = check_text(tmp_path, text)
    refused = [d for d in r.diagnostics if d.fails and d.id.startswith(("LBC0", "LBC1"))]
    if free and _text_ok(hostile):
        assert not refused, f"free text was refused: {refused}"
        if r.model is not None:
            for name in targets.available():
                # every target renders it without crashing; their own tests prove it stays one quoted token
                tgt = targets.get(name)
                render(r.model, tgt)
    else:
        assert refused, "a hostile value was accepted in a field that is not free text"
        assert all(d.location.line >= 1 for d in refused)


def test_full_topology_is_structurally_valid(tmp_path):
    r = check_text(tmp_path, yaml.safe_dump(FULL, sort_keys=False))
    assert not [d for d in r.diagnostics if d.id.startswith(("LBC0", "LBC1")) and d.fails], r.diagnostics
