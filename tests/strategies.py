"""Hypothesis strategies for random topologies, shared by every target's property tests.

`topologies()` draws documents (plain dicts, as the YAML would hold) that use every part of the
language: balance methods, weights, priority groups, session limits, hold/down, HTTP/TCP checks
with body matches, cookie/source-IP/application stickiness, fallbacks, TLS terminate/bridge/
passthrough, pinned and wildcard routes, PROXY protocol, timeouts. Most draws pass lbc's rules;
the rest must be refused with a diagnostic, never crash. Free text (fallback bodies, expect_body)
comes from HOSTILE: quotes, braces, ;, #, $, %, backslashes and non-ASCII.
"""
from __future__ import annotations

from hypothesis import strategies as st

# Everything the schema allows in free text that a config language might treat specially.
HOSTILE_PIECES = list("ab $%{};#\"'\\`|&<>()[]=,:/-_.~!?*^@") + [
    "é", "ü", "✓", "日本", "🙂", "\u2028", "\u00a0", "${HOME}", "$HOME", "%[src]", "%{+Q}", "} server {",
    "' '", '" "', "\\'", "\\n", "#x", "{{ x }}", "]]", "-- ", "/* */",
]
HOSTILE = st.lists(st.sampled_from(HOSTILE_PIECES), min_size=1, max_size=24).map("".join)

SERVICE_NAMES = ["app", "push", "Api-1", "x_y"]
SERVER_NAMES = ["s1", "s2", "S3", "srv_4", "a-b"]
HOSTS = ["a.example.com", "b.example.com", "c.example.net", "*.w.example.com"]
CERT_NAMES = HOSTS + ["direct1.example.com", "direct2.example.com", "direct3.example.com", "direct4.example.com",
                      "direct5.example.com"]
DURATIONS = st.sampled_from(["500ms", "2s", "30s", "5m", "1h"])


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
        if kind != "tcp" and kind != "passthrough":
            for key in ("websocket", "buffering", "forwarded_headers"):
                if draw(st.integers(0, 2)) == 0:
                    l[key] = draw(st.booleans())
        if draw(st.booleans()):
            l["timeouts"] = {k: draw(DURATIONS) for k in draw(st.lists(
                st.sampled_from(["connect", "client", "server", "tunnel"]), max_size=4, unique=True))}
        listeners.append(l)
    return {"lbc": 1, "vips": {"v": {"address": "127.0.0.50"}},
            "certificates": {"c": {"cert": "certs/c.pem", "key": "certs/c.key", "names": CERT_NAMES,
                                   "ignore": {"LBC106": "property test: files are stand-ins"}}},
            "services": svcs, "listeners": listeners}
