"""Property test: random topologies (hostile free text, case-colliding names, every balance,
stickiness, tier and fallback combination) either are refused with a diagnostic, or compile to a
config that `nginx -t` accepts and whose parsed structure is exactly the model's: the same
sockets, host names, servers and fallback texts, and no directive lbc does not write.
"""
from __future__ import annotations

import ipaddress
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from lbc import targets

from helpers import check_text
from validators import VALIDATORS

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
TARGET = targets.get("nginx")

# Every directive lbc may write; anything else in the output is an escape.
DIRECTIVES = {
    "include", "pid", "error_log", "worker_processes", "worker_rlimit_nofile", "events", "worker_connections", "http", "stream",
    "access_log", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
    "scgi_temp_path", "server_tokens", "server_names_hash_max_size", "server_names_hash_bucket_size",
    "map_hash_max_size", "map_hash_bucket_size", "geo", "map", "upstream", "zone", "least_conn", "random", "hash",
    "server", "listen", "server_name", "ssl_certificate", "ssl_certificate_key", "ssl_protocols",
    "ssl_client_certificate", "ssl_verify_client", "location", "return", "client_header_timeout",
    "client_body_timeout", "send_timeout", "keepalive_timeout", "proxy_connect_timeout", "proxy_read_timeout",
    "proxy_send_timeout", "proxy_http_version", "proxy_set_header", "proxy_buffering", "proxy_ssl",
    "proxy_ssl_server_name", "proxy_ssl_name", "proxy_ssl_verify", "proxy_ssl_verify_depth",
    "proxy_ssl_trusted_certificate", "recursive_error_pages", "default_type", "proxy_pass", "error_page",
    "add_header", "ssl_preread", "proxy_timeout", "proxy_protocol", "keepalive",
    # TLS profiles and header changes (S31, S28)
    "ssl_ciphers", "ssl_conf_command", "ssl_ecdh_curve", "ssl_prefer_server_ciphers", "proxy_hide_header",
}
BLOCK_BODIES = {"map", "geo"}     # their entries are key/value pairs, not directives


def tokenize(text: str):
    """nginx's tokenizer (ngx_conf_read_token): words, quoted words, ; { }, # comments."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif c in ";{}":
            yield c, c
            i += 1
        elif c in "\"'":
            out, i = [], i + 1
            while text[i] != c:
                if text[i] == "\\" and text[i + 1] in "\"'\\":
                    out.append(text[i + 1])
                    i += 2
                    continue
                out.append(text[i])
                i += 1
            yield "word", "".join(out)
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in ";{}":
                j += 1
            yield "word", text[i:j]
            i = j


def parse(text: str) -> list:
    """[(args, children or None)] from the token stream."""
    stack, current, args = [], [], []
    for kind, value in tokenize(text):
        if kind == "word":
            args.append(value)
        elif kind == ";":
            current.append((args, None))
            args = []
        elif kind == "{":
            node = (args, [])
            current.append(node)
            stack.append(current)
            current, args = node[1], []
        else:
            assert not args, f"dangling words {args}"
            current = stack.pop()
    assert not stack and not args
    return current


def walk(nodes, parent=None):
    for args, children in nodes:
        yield parent, args, children
        if children is not None and args[0] not in BLOCK_BODIES:
            yield from walk(children, args[0])


HOSTILE = st.lists(st.sampled_from(list('ab $%{};#"\'\\éü✓🙂\u2028/-_.') + ["${x}", "$host", "} server {"]),
                   min_size=1, max_size=20).map("".join)
NAMES = st.sampled_from(["web", "Web", "api-1", "x_y"])
SERVER_NAMES = ["s1", "S1", "a-b", "srv_2"]
HOSTS = st.sampled_from(["a.example.com", "b.example.com", "default", "*.w.example.com", "x.a.example.com"])


@st.composite
def services(draw):
    n = draw(st.integers(1, 4))
    servers = []
    for i in range(n):
        s = {"name": SERVER_NAMES[i], "address": f"127.0.0.{61 + i}", "port": draw(st.integers(9000, 9003))}
        for key, strat in (("weight", st.integers(0, 256)), ("priority", st.integers(1, 3)),
                           ("state", st.sampled_from(["active", "hold", "down"])),
                           ("max_sessions", st.integers(1, 1000))):
            if draw(st.booleans()):
                s[key] = draw(strat)
        servers.append(s)
    svc = {"balance": draw(st.sampled_from(["round-robin", "least-connections", "weighted-random", "source-hash"])),
           "servers": servers}
    mode = draw(st.sampled_from(["none", "cookie", "source-ip"]))
    svc["stickiness"] = {"mode": mode}
    if mode == "cookie" and draw(st.booleans()):
        svc["stickiness"]["cookie"] = {"name": draw(st.sampled_from(["SRV", "LS-SRV", "default"])), "max_age": "1h"}
    health = draw(st.sampled_from([None, "tcp", "http"]))
    if health == "tcp":
        svc["health"] = {"tcp": True, "interval": "2s", "fall": draw(st.integers(1, 5))}
    elif health == "http":
        svc["health"] = {"http": {"path": "/h", "expect_status": 200}, "rise": draw(st.integers(1, 5))}
    fallback = draw(st.sampled_from([None, "respond", "server"]))
    if fallback == "respond":
        svc["fallback"] = {"respond": {"status": draw(st.sampled_from([200, 503, 599])), "body": draw(HOSTILE)}}
    elif fallback == "server":
        svc["fallback"] = {"server": {"address": "127.0.0.69", "port": 9009}}
    return svc


@st.composite
def topologies(draw):
    names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    svcs = {n: draw(services()) for n in names}
    listeners = []
    for i in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["http", "tcp", "passthrough", "terminate"]))
        routes = []
        for h in draw(st.lists(HOSTS, max_size=3, unique=True)) if kind != "tcp" else []:
            routes.append({"hosts": [h], "service": draw(st.sampled_from(names))})
        if not routes or draw(st.booleans()):
            routes.append({"service": draw(st.sampled_from(names))})
        l = {"name": f"l{i}", "vip": "v", "port": 8000 + i, "routes": routes}
        if kind == "tcp":
            l["protocol"] = "tcp"
        elif kind == "passthrough":
            l["tls"] = {"mode": "passthrough"}
        elif kind == "terminate":
            l["tls"] = {"mode": "terminate", "certificates": ["c"]}
        listeners.append(l)
    return {"lbc": 1, "vips": {"v": {"address": "127.0.0.50"}},
            "certificates": {"c": {"cert": "c.pem", "key": "c.key",
                                   "names": ["a.example.com", "b.example.com", "default", "*.w.example.com",
                                             "*.a.example.com"], "ignore": {"LBC106": "test"}}},
            "services": svcs, "listeners": listeners}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(doc=topologies())
def test_random_topology_is_refused_or_exactly_what_nginx_runs(doc, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prop")
    result = check_text(tmp, yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), target=TARGET)
    if result.failed or result.model is None:
        assert all(d.location.line >= 1 for d in result.diagnostics if d.fails)
        return
    model = result.model
    files = TARGET.render(model)
    ok, output = VALIDATORS["nginx"](files, tmp)
    assert ok, output + files["nginx.conf"]
    assert "[warn]" not in output, output

    tree = parse(files["nginx.conf"])
    seen = {"listen": set(), "server_name": set(), "servers": set(), "return": set()}
    for parent, args, _children in walk(tree):
        assert args[0] in DIRECTIVES, f"unexpected directive {args}"
        if args[0] == "include":
            assert args[1:] == ["modules.conf"]
        if args[0] == "listen":
            seen["listen"].add(args[1])
        if args[0] == "server_name":
            seen["server_name"].update(args[1:])
        if args[0] == "server" and parent == "upstream":
            seen["servers"].add(args[1])
        if args[0] == "return" and len(args) == 3:
            seen["return"].add(args[2].replace("${lbc_dollar}", "$"))

    def sock(address, port):
        return f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else f"{address}:{port}"

    assert seen["listen"] == {sock(l.address, l.port) for l in model.listeners}
    assert seen["server_name"] == {h for l in model.listeners if l.reads_http
                                   for r in l.routes for h in r.hosts}
    routed = {r.service for l in model.listeners for r in l.routes}
    known = {sock(s.address, p) for svc in model.services for s in svc.servers for _, p in s.ports}
    known |= {sock(svc.fallback.address, svc.fallback.port) for svc in model.services
              if svc.fallback and svc.fallback.kind == "server"}
    assert seen["servers"] <= known | {"127.0.0.1:9"}
    bodies = {svc.fallback.body for l in model.listeners if l.reads_http for r in l.routes
              for svc in [model.service(r.service)] if svc.fallback and svc.fallback.kind == "respond"}
    assert seen["return"] == bodies
    assert routed
