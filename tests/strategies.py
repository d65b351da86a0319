"""Hypothesis strategies for random topologies, shared by every target's property tests.

`topologies()` draws documents (plain dicts, as the YAML would hold) that use every part of the
language: balance methods, weights, priority groups, session limits, hold/down, HTTP/TCP checks
with body matches, cookie/source-IP/application stickiness, fallbacks, TLS terminate/bridge/
passthrough, pinned and wildcard routes, PROXY protocol, timeouts. Most draws pass lbc's rules;
the rest must be refused with a diagnostic, never crash. Free text (fallback bodies, expect_body)
comes from HOSTILE: quotes, braces, ;, #, $, %, backslashes and non-ASCII.
"""
from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

# Everything the schema allows in free text that a config language might treat specially.
HOSTILE_PIECES = list("ab $%{};#\"'\\`|&<>()[]=,:/-_.~!?*^@") + [
    "é", "ü", "✓", "日本", "🙂", "\u2028", "\u00a0", "${HOME}", "$HOME", "%[src]", "%{+Q}", "} server {",
    "' '", '" "', "\\'", "\\n", "#x", "{{ x }}", "]]", "-- ", "/* */",
]
HOSTILE = st.lists(st.sampled_from(HOSTILE_PIECES), min_size=1, max_size=24).map("".join)

# Header names: RFC 7230 tokens with the characters config languages give meaning to ($ % ' ` | # ...).
HEADER_NAMES = ["X-A", "x-b", "X-$host", "X-%[src]", "X-'q'", "X-`id`", "X-a|b", "X-#", "X-~^*+.!&", "Cache-Control",
                "Host", "Set-Cookie", "X-Forwarded-For", "Strict-Transport-Security"]
# Header values: printable ASCII only (the schema refuses the rest), every special character included.
HEADER_VALUE = st.lists(st.sampled_from([p for p in HOSTILE_PIECES if p.isascii()]), max_size=24).map(
    lambda ps: "".join(ps).strip() or "v")


@st.composite
def header_policy(draw, names=st.sampled_from(HEADER_NAMES), values=HEADER_VALUE) -> dict:
    """A listener's `headers:` block (some draws name a header the rules refuse: Host, a duplicate)."""
    out: dict = {}
    for side, kinds in (("request", ("set", "remove")), ("response", ("set", "add", "remove"))):
        changes: dict = {}
        for kind in kinds:
            if draw(st.booleans()):
                picked = draw(st.lists(names, min_size=1, max_size=3, unique=True))
                changes[kind] = picked if kind == "remove" else {n: draw(values) for n in picked}
        if changes:
            out[side] = changes
    return out


HSTS = st.fixed_dictionaries({}, optional={"max_age": st.sampled_from(["0s", "300s", "365d", "1y", "2y"]),
                                           "include_subdomains": st.booleans(), "preload": st.booleans()})

# A TLS profile and explicit lists: known names mostly (an unknown one is LBC230), some the Envoy or F5
# targets refuse (DHE suites, curves on F5), some contradicting min_version (LBC227, LBC229).
_PROFILE_NAMES = ["modern", "intermediate", "old"]
_CIPHERS = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "AES128-SHA",
            "DHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"]
TLS_PROFILE = st.fixed_dictionaries({}, optional={
    "profile": st.sampled_from(_PROFILE_NAMES),
    "ciphers": st.lists(st.sampled_from(_CIPHERS), min_size=1, max_size=4, unique=True),
    "ciphersuites": st.lists(st.sampled_from(["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                              "TLS_CHACHA20_POLY1305_SHA256"]), min_size=1, max_size=3, unique=True),
    "curves": st.lists(st.sampled_from(["X25519", "prime256v1", "secp384r1", "P-256"]), min_size=1, max_size=3,
                       unique=True)})

SERVICE_NAMES = ["app", "push", "Api-1", "x_y"]
SERVER_NAMES = ["s1", "s2", "S3", "srv_4", "a-b"]
HOSTS = ["a.example.com", "b.example.com", "c.example.net", "*.w.example.com"]
CERT_NAMES = HOSTS + ["direct1.example.com", "direct2.example.com", "direct3.example.com", "direct4.example.com",
                      "direct5.example.com"]
DURATIONS = st.sampled_from(["500ms", "2s", "30s", "5m", "1h"])


@st.composite
def client_network(draw) -> str:
    """A client network as a topology may write it: mostly IPv4, any prefix length, sometimes an
    address alone, sometimes with host bits set (LBC630 must refuse those)."""
    v6 = draw(st.integers(0, 3)) == 0
    bits = 128 if v6 else 32
    addr = draw(st.integers(0, 2 ** bits - 1))
    plen = draw(st.integers(0 if draw(st.integers(0, 19)) == 0 else 8, bits))
    if draw(st.integers(0, 9)) == 0:
        return f"{ipaddress.ip_address(addr)}/{plen}"          # host bits, most of the time
    net = ipaddress.ip_network((addr, plen), strict=False)
    return str(net.network_address) if plen == bits and draw(st.booleans()) else str(net)


@st.composite
def access_lists(draw) -> dict:
    """A listener's `access:` block: allow and/or deny lists of random networks (overlaps included)."""
    out = {}
    for kind in draw(st.sampled_from([["allow"], ["deny"], ["allow", "deny"]])):
        out[kind] = draw(st.lists(client_network(), min_size=0 if draw(st.integers(0, 9)) == 0 else 1, max_size=6))
    return out


@st.composite
def rate_limits(draw, l7: bool) -> dict:
    """A listener's `rate_limit:`: requests (L7 mostly) or connections, burst given or not."""
    key = "requests_per_second" if l7 and draw(st.integers(0, 3)) else "connections_per_second"
    out = {key: draw(st.integers(1, 100_000))}
    if draw(st.booleans()):
        out["burst"] = draw(st.integers(1, 1_000_000))
    return out


@st.composite
def services(draw, with_tls: bool = False):
    n = draw(st.integers(1, 4))
    named_ports = draw(st.booleans())
    mode = draw(st.sampled_from(["none", "cookie", "source-ip", "application"]))
    servers = []
    for i in range(n):
        s = {"name": SERVER_NAMES[i], "address": f"127.0.0.{61 + i}"}
        if named_ports:
            s["ports"] = {"create": 8081, "control": 8080}
        else:
            s["port"] = draw(st.integers(9000, 9003))
        for key, strat in (("weight", st.integers(0, 256)), ("priority", st.integers(1, 3)),
                           ("state", st.sampled_from(["active", "hold", "down"])),
                           ("max_sessions", st.integers(1, 5000))):
            if draw(st.integers(0, 3)) == 0:
                s[key] = draw(strat)
        if mode == "application":
            s["direct_host"] = f"direct{i + 1}.example.com"
        servers.append(s)
    svc: dict = {"servers": servers}
    if draw(st.booleans()):
        svc["balance"] = draw(st.sampled_from(["round-robin", "least-connections", "weighted-random", "source-hash"]))
    stick: dict = {"mode": mode}
    if mode == "cookie" and draw(st.booleans()):
        stick["cookie"] = {"name": draw(st.sampled_from(["SRV", "LS-SRV", "x_1"]))}
        if draw(st.booleans()):
            stick["cookie"]["max_age"] = draw(DURATIONS)
    if mode == "cookie" and draw(st.integers(0, 3)) == 0:
        stick["max_lifetime"] = draw(DURATIONS)
    if mode == "source-ip" and draw(st.booleans()):
        stick["idle_timeout"] = draw(DURATIONS)
    svc["stickiness"] = stick
    health = draw(st.sampled_from([None, "tcp", "http"]))
    if health is not None:
        h: dict = {"tcp": True} if health == "tcp" else {"http": {"path": draw(st.sampled_from(["/h", "/a/b?x=1"]))}}
        if health == "http":
            if draw(st.booleans()):
                h["http"]["expect_body"] = draw(HOSTILE)
            if draw(st.booleans()):
                h["http"]["host"] = "health.example.com"
            if draw(st.booleans()):
                h["http"]["expect_status"] = draw(st.sampled_from([200, 204, 301]))
        for key, strat in (("interval", DURATIONS), ("timeout", DURATIONS), ("rise", st.integers(1, 5)),
                           ("fall", st.integers(1, 5))):
            if draw(st.booleans()):
                h[key] = draw(strat)
        if named_ports and draw(st.booleans()):
            h["port"] = "create"
        svc["health"] = h
    fallback = draw(st.sampled_from([None, "respond", "server"]))
    if fallback == "respond":
        svc["fallback"] = {"respond": {"status": draw(st.sampled_from([200, 503, 599])), "body": draw(HOSTILE)}}
        if draw(st.booleans()):
            svc["fallback"]["respond"]["content_type"] = "text/html; charset=utf-8"
    elif fallback == "server":
        svc["fallback"] = {"server": {"address": "127.0.0.69", "port": 9009}}
    if with_tls or draw(st.integers(0, 3)) == 0:
        svc["upstream_tls"] = {"ca": "certs/ca.pem", "verify_name": "svc.internal"}
        if draw(st.booleans()):
            svc["upstream_tls"]["sni"] = "svc.internal"
    if draw(st.integers(0, 3)) == 0:
        svc["proxy_protocol"] = draw(st.sampled_from(["v1", "v2"]))
    if draw(st.integers(0, 4)) == 0:
        svc["redispatch"] = False
    return svc


# request paths for path routes: plain ones, ones the proxies treat specially, and hostile text
# (refused by the schema's pattern with a location, never an internal error)
PATHS = st.one_of(st.sampled_from(["/", "/api/", "/api/v2/", "/health", "/.well-known/acme-challenge/", "/a.b~c_d-e/",
                                   "/api", "/x//y/", "/x/../y", "/default", "/include/"]),
                  st.sampled_from(["api/", "/a b/", "/a;b/", "/a{b}/", "/a$b/", "/a'b\"/", "/a%2fb/", "/a?b", "/a#b",
                                   "/é/", "/a\\b/", "/[x]/"]))


@st.composite
def path_routes(draw, routes: list[dict], svcs: dict, paths: st.SearchStrategy):
    """0-3 routes by path for hosts (or the default table) the listener already routes."""
    out: list[dict] = []
    taken: set = set()
    for _ in range(draw(st.integers(0, 3))):
        base = draw(st.sampled_from(routes))
        if "direct_hosts" in base:
            continue
        name = draw(st.sampled_from(sorted(svcs)))
        path = draw(paths)
        exact = draw(st.integers(0, 3)) == 0
        key = (tuple(base.get("hosts", ())), path)
        if key in taken:
            continue
        taken.add(key)
        route: dict = {"service": name, ("path_exact" if exact else "path_prefix"): path}
        if "hosts" in base:
            route["hosts"] = list(base["hosts"])
        if "ports" in svcs[name]["servers"][0]:
            route["port"] = "create"
        if not exact and path.endswith("/") and draw(st.booleans()):
            route["strip_prefix"] = True
        if draw(st.integers(0, 4)) == 0:
            route["server"] = svcs[name]["servers"][0]["name"]
        if draw(st.integers(0, 3)) == 0:
            route["access"] = draw(access_lists())     # a route's own client list (per-route access)
        out.append(route)
    return out


@st.composite
def route_redirects(draw, routes: list[dict], paths: st.SearchStrategy, hosts: st.SearchStrategy,
                    fresh: str = "r.w.example.com") -> list[dict]:
    """0-2 routes that answer with a redirect: a path of a host (or the default table) the listener already
    routes, or every path of `fresh`, a host no route names (the certificate covers it); the redirect's host
    from `hosts` (hostile ones included: the schema refuses them), sometimes the request's own host (a loop
    when the scheme and port are the listener's: LBC619)."""
    out: list[dict] = []
    taken: set = set()
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.one_of(st.none(), paths))
        base = {"hosts": [fresh]} if path is None else draw(st.sampled_from(routes))
        if "direct_hosts" in base:
            continue
        key = (tuple(base.get("hosts", ())), path)
        if key in taken:
            continue
        taken.add(key)
        rd: dict = {}
        if draw(st.integers(0, 3)):
            rd["host"] = draw(hosts)
        if draw(st.booleans()):
            rd["scheme"] = draw(st.sampled_from(["http", "https"]))
        if draw(st.booleans()):
            rd["port"] = draw(st.sampled_from([80, 443, 8443, 65535]))
        if draw(st.booleans()):
            rd["status"] = draw(st.sampled_from([301, 302, 307, 308]))
        route: dict = {"redirect": rd}
        if path is not None:
            route["path_exact" if draw(st.integers(0, 3)) == 0 else "path_prefix"] = path
        if "hosts" in base:
            route["hosts"] = list(base["hosts"])
        out.append(route)
    return out


@st.composite
def redirects_https(draw, paths: st.SearchStrategy = PATHS) -> dict:
    """A listener's `redirect_https:`: status, port (now and then the listener's own: LBC617) and except
    prefixes from the path strategy (special and hostile ones included)."""
    rd: dict = {}
    if draw(st.booleans()):
        rd["status"] = draw(st.sampled_from([301, 302, 307, 308]))
    if draw(st.integers(0, 2)) == 0:
        rd["port"] = draw(st.sampled_from([443, 8443, 8000, 65535]))
    if draw(st.booleans()):
        rd["except"] = draw(st.lists(paths, max_size=3, unique=True))
    return rd


@st.composite
def topologies(draw):
    names = draw(st.lists(st.sampled_from(SERVICE_NAMES), min_size=1, max_size=3, unique=True))
    svcs = {n: draw(services()) for n in names}
    listeners = []
    for i in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["http", "tcp", "passthrough", "terminate", "bridge"]))
        routes: list[dict] = []
        if kind != "tcp":
            for h in draw(st.lists(st.sampled_from(HOSTS), max_size=3, unique=True)):
                name = draw(st.sampled_from(names))
                route: dict = {"hosts": [h], "service": name}
                if "ports" in svcs[name]["servers"][0]:
                    route["port"] = "create"
                if draw(st.integers(0, 3)) == 0:
                    route["server"] = svcs[name]["servers"][0]["name"]
                routes.append(route)
            for name in names:
                if svcs[name]["stickiness"]["mode"] == "application" and draw(st.booleans()):
                    route = {"direct_hosts": True, "service": name}
                    if "ports" in svcs[name]["servers"][0]:
                        route["port"] = "control"
                    routes.append(route)
        if not routes or draw(st.booleans()):
            name = draw(st.sampled_from(names))
            route = {"service": name}
            if "ports" in svcs[name]["servers"][0]:
                route["port"] = "create"
            routes.append(route)
        if kind in ("http", "terminate", "bridge"):
            routes.extend(draw(path_routes(routes, svcs, PATHS)))
        if draw(st.integers(0, 3)) == 0 and (kind != "tcp" or draw(st.integers(0, 3)) == 0):   # else LBC619
            routes.extend(draw(route_redirects(routes, PATHS, st.one_of(st.sampled_from(HOSTS[:3]), HOSTILE))))
        l: dict = {"name": f"l{i}", "vip": "v", "port": 8000 + i, "routes": routes}
        if kind == "tcp":
            l["protocol"] = "tcp"
        elif kind == "passthrough":
            l["tls"] = {"mode": "passthrough"}
        elif kind in ("terminate", "bridge"):
            l["tls"] = {"mode": kind, "certificates": ["c"]}
            if draw(st.integers(0, 3)) == 0:
                l["tls"]["client_auth"] = draw(st.sampled_from(["request", "require"]))
                l["tls"]["client_ca"] = "certs/client-ca.pem"
            if draw(st.booleans()):
                l["tls"]["min_version"] = draw(st.sampled_from(["1.2", "1.3"]))
            if draw(st.integers(0, 2)) == 0:
                l["tls"].update(draw(TLS_PROFILE))
        if kind != "tcp" and kind != "passthrough":
            for key in ("websocket", "buffering", "forwarded_headers"):
                if draw(st.integers(0, 2)) == 0:
                    l[key] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:      # mostly where they belong; elsewhere LBC221/LBC223 refuse them
            l["headers"] = draw(header_policy())
        if draw(st.integers(0, 3)) == 0 and (kind in ("terminate", "bridge") or draw(st.integers(0, 3)) == 0):
            l["hsts"] = draw(HSTS)
        if draw(st.booleans()):
            l["timeouts"] = {k: draw(DURATIONS) for k in draw(st.lists(
                st.sampled_from(["connect", "client", "server", "tunnel"]), max_size=4, unique=True))}
        if draw(st.integers(0, 2)) == 0:
            l["access_log"] = draw(access_logs())
        if draw(st.integers(0, 2)) == 0:
            l["access"] = draw(access_lists())
        if draw(st.integers(0, 4)) == 0:      # on an L4 listener's SNI route: LBC801 on all but HAProxy
            draw(st.sampled_from(l["routes"]))["access"] = draw(access_lists())
        if draw(st.integers(0, 2)) == 0:
            l["rate_limit"] = draw(rate_limits(kind not in ("tcp", "passthrough")))
        if draw(st.integers(0, 3)) == 0 and (kind == "http" or draw(st.integers(0, 3)) == 0):   # else LBC614/615
            l["redirect_https"] = draw(redirects_https())
        listeners.append(l)
    doc = {"lbc": 1, "vips": {"v": {"address": "127.0.0.50"}},
           "certificates": {"c": {"cert": "certs/c.pem", "key": "certs/c.key", "names": CERT_NAMES,
                                  "ignore": {"LBC106": "property test: files are stand-ins"}}},
           "services": svcs, "listeners": listeners}
    if draw(st.booleans()):
        doc["access_log"] = draw(access_logs())
    if draw(st.integers(0, 2)) == 0:   # an admin endpoint: loopback, sometimes a VIP or every address (LBC650)
        doc["admin"] = {"port": draw(st.integers(1024, 65535))}
        if draw(st.booleans()):
            doc["admin"]["address"] = draw(st.sampled_from(["127.0.0.1", "127.0.0.77", "::1", "127.0.0.50", "0.0.0.0"]))
    return doc


LOG_FILES = st.sampled_from(["logs/access.log", "/var/log/lbc/a.log", "/tmp/x@y+z_1.log", "a.log", ".hidden/l"])


@st.composite
def access_logs(draw, files=LOG_FILES, addresses=st.sampled_from(["127.0.0.53", "::1", "192.0.2.53"]),
                ports=st.integers(1, 65535)):
    """An `access_log:` block: every destination and format; sometimes with the wrong details (LBC652)."""
    log: dict = {"to": draw(st.sampled_from(["stdout", "stderr", "file", "syslog", "none"]))}
    if log["to"] == "file" or draw(st.integers(0, 9)) == 0:
        log["file"] = draw(files)
    if log["to"] == "syslog" or draw(st.integers(0, 9)) == 0:
        log["syslog"] = {"address": draw(addresses)}
        if draw(st.booleans()):
            log["syslog"]["port"] = draw(ports)
        if draw(st.booleans()):
            log["syslog"]["facility"] = draw(st.sampled_from(["local0", "local7", "user", "daemon"]))
    if draw(st.booleans()):
        log["format"] = draw(st.sampled_from(["text", "json"]))
    return log


# ---------------------------------------------------------------- schema-wide draws
# `wide_topologies()` draws every value from the schema's own bounds and patterns (numbers from
# minimum to maximum, names, hosts, paths, cookie names and content types from the patterns, any
# printable text, IPv4/IPv6/host-name addresses, durations of every size), so a topology that lbc
# accepts but a proxy refuses turns up here; tests/test_property_wide.py runs the real validators.

import json as _json
import os as _os


def _schema() -> dict:
    from lbc.schema import _inline_refs, topology_schema
    s = topology_schema()
    return _inline_refs(s, s["$defs"])


_S = _schema()
_SVC = _S["properties"]["services"]["additionalProperties"]["properties"]
_SRV = _SVC["servers"]["items"]["properties"]
_DEFS = _json.load(open(_os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))),
                                      "schemas", "topology.schema.json")))["$defs"]


def _one_in(draw, n: int) -> bool:
    """True about once in n draws (a uniform choice: hypothesis favours the bounds of integers())."""
    return draw(st.sampled_from(range(n))) == n // 2


def _between(node: dict) -> st.SearchStrategy:
    lo, hi = node.get("minimum", 0), node.get("maximum", 10**9)
    return st.sampled_from(range(6)).flatmap(lambda k: st.sampled_from(sorted({lo, hi})) if k == 3
                                             else st.integers(lo, hi))


def _matching(pattern: str, max_size: int = 253) -> st.SearchStrategy:
    from lbc.schema import ecma_pattern
    return st.from_regex(ecma_pattern(pattern), fullmatch=True).filter(lambda s: len(s) <= max_size)


W_NAME = _matching(_DEFS["name"]["pattern"])
W_HOST = _matching(_DEFS["host"]["pattern"])
W_EXACT_HOST = _matching(_DEFS["exact_host"]["pattern"])
W_PORT = _between(_DEFS["port"])
W_HEADER_NAME = _matching(_DEFS["header_name"]["pattern"], 64)
W_HEADER_VALUE = _matching(_DEFS["header_value"]["pattern"], 1024)
W_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                               blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
                 min_size=1, max_size=1024)
W_URL_PATH = st.one_of(_matching(_DEFS["url_path"]["pattern"], 1024), _matching(_DEFS["url_path"]["pattern"], 1024),
                       st.just("/"), W_TEXT.filter(lambda t: len(t) < 40))    # the last mostly refused
_SMALL_DURATION = st.one_of(
    st.builds(lambda n, u: f"{n}{u}", st.integers(1, 1000), st.sampled_from(["ms", "s", "m"])),
    st.builds(lambda n, u: f"{n}{u}", st.integers(1, 24), st.sampled_from(["h", "d"])))
_EDGE_DURATION = st.one_of(
    st.sampled_from(["1ms", "999ms", "1s", "24d", "576h", "34560m", "2073600s", "2073600000ms", "25d", "2147483s"]),
    st.builds(lambda n, u: f"{n}{u}", st.integers(1, 999_999_999), st.sampled_from(["ms", "s", "m", "h", "d"])))
# a topology has up to a dozen durations: one in twenty is an edge value, so most topologies stay valid
W_DURATION = st.sampled_from(range(20)).flatmap(lambda k: _EDGE_DURATION if k == 10 else _SMALL_DURATION)


W_IPV4 = st.builds(lambda a, b, c: f"127.{a}.{b}.{c}", st.integers(0, 255), st.integers(0, 255), st.integers(1, 254))
W_IPV6 = st.sampled_from(["::1", "fd00::1", "fd00::a:1", "2001:db8::10", "::ffff:127.0.0.1", "::ffff:7f00:2",
                          "fe80::1", "::"])
W_ADDRESS = st.one_of(W_IPV4, W_IPV4, W_IPV6, _matching(_DEFS["address"]["pattern"]).filter(
    lambda h: not h[-1:].isdigit() and ":" not in h))
W_VIP = st.one_of(W_IPV4, W_IPV6, st.just("127.0.0.1"), st.just("0.0.0.0"))
W_ACCESS_LOG = st.deferred(lambda: access_logs(files=_matching(_DEFS["file"]["pattern"], 200),
                                               addresses=st.one_of(W_IPV4, W_IPV6), ports=W_PORT))


@st.composite
def _wide_service(draw, certs_hosts: list):
    n = draw(st.integers(1, 4))
    named = _one_in(draw, 3 + 1)
    mode = draw(st.sampled_from(_SVC["stickiness"]["properties"]["mode"]["enum"]))
    servers, names = [], draw(st.lists(W_NAME, min_size=n, max_size=n, unique_by=str.lower))
    for name in names:
        s: dict = {"name": name, "address": draw(W_ADDRESS)}
        if named:
            s["ports"] = {"create": draw(W_PORT), "control": draw(W_PORT)}
        else:
            s["port"] = draw(W_PORT)
        for key in ("weight", "priority", "max_sessions"):
            if _one_in(draw, 2 if key == "weight" else 6):
                s[key] = draw(_between(_SRV[key]) if key != "priority" or _one_in(draw, 5 + 1)
                              else st.integers(1, 3))
        if _one_in(draw, 3 + 1):
            s["state"] = draw(st.sampled_from(_SRV["state"]["enum"]))
        if mode == "application" and not _one_in(draw, 20):
            s["direct_host"] = draw(W_HOST)
            certs_hosts.append(s["direct_host"])
        servers.append(s)
    svc: dict = {"servers": servers}
    if _one_in(draw, 5 + 1):
        svc["profile"] = draw(st.sampled_from(_SVC["profile"]["enum"]))
    if draw(st.booleans()):
        svc["balance"] = draw(st.sampled_from(_SVC["balance"]["enum"]))
    stick: dict = {"mode": mode}
    if mode == "cookie" and draw(st.booleans()):
        stick["cookie"] = {"name": draw(_matching(_SVC["stickiness"]["properties"]["cookie"]["properties"]["name"]
                                                  ["pattern"]))}
        if draw(st.booleans()):
            stick["cookie"]["max_age"] = draw(W_DURATION)
    if mode == "cookie" and _one_in(draw, 8 + 1):
        stick["max_lifetime"] = draw(W_DURATION)
    if _one_in(draw, 2 + 1):
        stick["idle_timeout"] = draw(W_DURATION)
    svc["stickiness"] = stick
    hp = _SVC["health"]["properties"]
    kind = draw(st.sampled_from([None, "tcp", "http"]))
    if kind:
        h: dict = {"tcp": True} if kind == "tcp" else {"http": {"path": draw(_matching(
            hp["http"]["properties"]["path"]["pattern"], 1024))}}
        if kind == "http":
            if draw(st.booleans()):
                h["http"]["expect_body"] = draw(W_TEXT)
            if draw(st.booleans()):
                h["http"]["host"] = draw(W_EXACT_HOST)
            if draw(st.booleans()):
                h["http"]["expect_status"] = draw(_between(hp["http"]["properties"]["expect_status"]))
        for key in ("interval", "timeout"):
            if draw(st.booleans()):
                h[key] = draw(W_DURATION)
        for key in ("rise", "fall"):
            if draw(st.booleans()):
                h[key] = draw(_between(hp[key]))
        if named and draw(st.booleans()):
            h["port"] = "control"
        svc["health"] = h
    fb = draw(st.sampled_from([None, "respond", "server"]))
    rp = _SVC["fallback"]["properties"]["respond"]["properties"]
    if fb == "respond":
        svc["fallback"] = {"respond": {"body": draw(st.one_of(st.just(""), W_TEXT))}}
        if draw(st.booleans()):
            svc["fallback"]["respond"]["status"] = draw(_between(rp["status"]))
        if draw(st.booleans()):
            svc["fallback"]["respond"]["content_type"] = draw(_matching(rp["content_type"]["pattern"], 200))
    elif fb == "server":
        svc["fallback"] = {"server": {"address": draw(st.one_of(W_IPV4, W_IPV6)), "port": draw(W_PORT)}}
    if _one_in(draw, 3 + 1):
        svc["upstream_tls"] = {"ca": "certs/ca.pem"}
        for key in ("verify_name", "sni"):
            if draw(st.booleans()):
                svc["upstream_tls"][key] = draw(W_EXACT_HOST)
        if _one_in(draw, 3 + 1):
            svc["upstream_tls"]["verify"] = False
    if _one_in(draw, 3 + 1):
        svc["proxy_protocol"] = draw(st.sampled_from(_SVC["proxy_protocol"]["enum"]))
    if _one_in(draw, 4 + 1):
        svc["redispatch"] = draw(st.booleans())
    if _one_in(draw, 4 + 1):
        svc["capacity"] = {"peak_sessions": draw(st.integers(0, 10**6)), "peak_users": draw(st.integers(0, 10**6))}
    return svc


@st.composite
def wide_topologies(draw):
    certs_hosts: list[str] = []
    names = draw(st.lists(W_NAME, min_size=1, max_size=3, unique_by=str.lower))
    svcs = {n: draw(_wide_service(certs_hosts)) for n in names}
    listeners = []
    vip = draw(W_VIP)
    lnames = draw(st.lists(W_NAME, min_size=1, max_size=2, unique_by=str.lower))
    for i, lname in enumerate(lnames):
        kind = draw(st.sampled_from(["http", "tcp", "passthrough", "terminate", "bridge"]))
        routes: list[dict] = []
        seen: set[str] = {s["direct_host"].lower() for svc in svcs.values() for s in svc["servers"] if "direct_host" in s}
        for _ in range(draw(st.integers(0, 3)) if kind != "tcp" else 0):
            name = draw(st.sampled_from(names))
            hosts = draw(st.lists(W_HOST, min_size=1, max_size=3, unique_by=str.lower))
            hosts = [h for h in hosts if h.lower() not in seen] or [f"r{len(seen)}.example.com"]
            seen.update(h.lower() for h in hosts)
            certs_hosts.extend(hosts)
            route: dict = {"hosts": hosts, "service": name}
            if "ports" in svcs[name]["servers"][0]:
                route["port"] = "create"
            if _one_in(draw, 3 + 1):
                route["server"] = svcs[name]["servers"][0]["name"]
            routes.append(route)
        for name in names:
            if kind != "tcp" and svcs[name]["stickiness"]["mode"] == "application" and draw(st.booleans()):
                route = {"direct_hosts": True, "service": name}
                if "ports" in svcs[name]["servers"][0]:
                    route["port"] = "control"
                routes.append(route)
        if not routes or draw(st.booleans()):
            name = draw(st.sampled_from(names))
            route = {"service": name}
            if "ports" in svcs[name]["servers"][0]:
                route["port"] = "create"
            routes.append(route)
        # every edge feature below is drawn now and then, so that enough topologies stay valid (the test
        # demands a quarter accepted) while each feature still meets its hostile values often
        if (kind in ("http", "terminate", "bridge") and draw(st.booleans())) or _one_in(draw, 20):  # LBC611 elsewhere
            routes.extend(draw(path_routes(routes, svcs, W_URL_PATH)))
        if _one_in(draw, 4) and (kind not in ("tcp", "passthrough") or _one_in(draw, 4)):   # elsewhere LBC619
            fresh = f"r{len(seen)}.example.com"
            seen.add(fresh)
            certs_hosts.append(fresh)
            routes.extend(draw(route_redirects(routes, W_URL_PATH, W_EXACT_HOST, fresh)))
        port = draw(st.one_of(W_PORT, st.just(9901))) if i == 0 else listeners[0]["port"] + 1 \
            if listeners[0]["port"] < 65535 else 1
        l: dict = {"name": lname, "vip": "v", "port": port, "routes": routes}
        if kind == "tcp":
            l["protocol"] = "tcp"
        elif kind == "passthrough":
            l["tls"] = {"mode": "passthrough"}
        elif kind in ("terminate", "bridge"):
            l["tls"] = {"mode": kind, "certificates": ["c"]}
            if _one_in(draw, 3 + 1):
                l["tls"]["client_auth"] = draw(st.sampled_from(["request", "require"]))
                l["tls"]["client_ca"] = "certs/client-ca.pem"
            if draw(st.booleans()):
                l["tls"]["min_version"] = draw(st.sampled_from(["1.2", "1.3"]))
            if draw(st.integers(0, 2)) == 0:
                l["tls"].update(draw(TLS_PROFILE))
        if kind not in ("tcp", "passthrough"):
            for key in ("websocket", "buffering", "forwarded_headers"):
                if _one_in(draw, 2 + 1):
                    l[key] = draw(st.booleans())
        if kind not in ("tcp", "passthrough") and _one_in(draw, 3 + 1):
            l["headers"] = draw(header_policy(W_HEADER_NAME, W_HEADER_VALUE))
        if kind in ("terminate", "bridge") and _one_in(draw, 3 + 1):
            l["hsts"] = draw(HSTS)
        if draw(st.booleans()):
            l["timeouts"] = {k: draw(W_DURATION) for k in draw(st.lists(
                st.sampled_from(["connect", "client", "server", "tunnel"]), max_size=4, unique=True))}
        if _one_in(draw, 8):
            l["access"] = draw(access_lists())
        if _one_in(draw, 8):
            draw(st.sampled_from(l["routes"]))["access"] = draw(access_lists())
        if _one_in(draw, 8):
            l["rate_limit"] = draw(rate_limits(kind not in ("tcp", "passthrough")))
        if _one_in(draw, 4) and (kind == "http" or _one_in(draw, 4)):     # elsewhere LBC614/LBC615 refuse it
            l["redirect_https"] = draw(redirects_https(W_URL_PATH))
        if kind == "bridge" and draw(st.integers(0, 5)):  # mostly with what bridging needs (LBC206)
            for r in routes:
                if "service" in r:         # not a redirect
                    svcs[r["service"]].setdefault("upstream_tls", {"ca": "certs/ca.pem", "verify_name": "svc.internal"})
        if _one_in(draw, 8):
            l["access_log"] = draw(W_ACCESS_LOG)
        listeners.append(l)
    doc: dict = {"lbc": 1, "vips": {"v": {"address": vip}}, "services": svcs, "listeners": listeners}
    if _one_in(draw, 5):
        doc["access_log"] = draw(W_ACCESS_LOG)
    if _one_in(draw, 4):
        doc["admin"] = {"port": draw(W_PORT)}
        if draw(st.booleans()):
            doc["admin"]["address"] = draw(st.one_of(W_IPV4, W_IPV6, st.just(vip)))
    if draw(st.booleans()):
        doc["name"] = draw(W_NAME)
    doc["certificates"] = {"c": {"cert": "certs/c.pem", "key": "certs/c.key",
                                 "names": sorted(set(h.lower() for h in certs_hosts)) or ["a.example.com"],
                                 "ignore": {"LBC106": "property test: files are stand-ins"}}}
    return doc
