"""nginx target: what the lowering must guarantee, checked by the real `nginx -t` and a real nginx.

Behaviour of the features (balancing, stickiness, tiers...) is proven by the conformance
scenarios in integration/; these tests pin what is easy to lose in a refactoring: every
combination lbc accepts passes nginx -t, every combination nginx cannot express is refused with
LBC801, free text stays one token, and 10,000 host names need no hash warning.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from lbc import targets
from lbc.targets import nginx

from helpers import EXAMPLES, check_text, example_path, ids
from validators import VALIDATORS, nginx_command

TARGET = targets.get("nginx")
needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")

BASE = """\
lbc: 1
vips: {{v: {{address: 127.0.0.50}}, w: {{address: "::1"}}}}
certificates:
  a: {{cert: a.pem, key: a.key, names: [a.example.com, "*.a.example.com"], ignore: {{LBC106: test}}}}
  b: {{cert: b.pem, key: b.key, names: [b.example.net], ignore: {{LBC106: test}}}}
services:
  web:
{service}
listeners:
{listeners}
"""
SERVERS = """\
    servers:
      - {name: s1, address: 127.0.0.61, port: 9001}
      - {name: s2, address: 127.0.0.62, port: 9001}
"""
HTTP = "  - {name: l, vip: v, port: 8080, routes: [{service: web}]}\n"


def compile_text(tmp_path, service: str = SERVERS, listeners: str = HTTP):
    return check_text(tmp_path, BASE.format(service=service, listeners=listeners), target=TARGET)


def errors(result) -> list:
    return [d for d in result.diagnostics if d.fails]


# (id, service, listeners): each compiles without an error and passes nginx -t
ACCEPTED = [
    ("round-robin", SERVERS, HTTP),
    ("least-conn-weights-limits", "    balance: least-connections\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001, weight: 3, max_sessions: 10}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001, weight: 0}\n"
     "      - {name: s3, address: 127.0.0.63, port: 9001, state: down}\n", HTTP),
    ("weighted-random", "    balance: weighted-random\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001, weight: 80}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001, weight: 20}\n", HTTP),
    ("source-hash", "    balance: source-hash\n" + SERVERS, HTTP),
    # fail_timeout = rise x interval = 1.5 s: nginx takes whole seconds only
    ("sub-second-checks", "    health: {tcp: true, interval: 500ms, rise: 3}\n" + SERVERS, HTTP),
    ("source-ip-tiers-fallback", "    stickiness: {mode: source-ip}\n    balance: weighted-random\n"
     "    fallback: {respond: {status: 503, body: No sessions available, content_type: text/html}}\n"
     "    health: {tcp: true, interval: 1s, rise: 2, fall: 3}\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001, priority: 1, max_sessions: 5}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001, priority: 2}\n"
     "      - {name: s3, address: 127.0.0.63, port: 9001, priority: 3}\n", HTTP),
    ("cookie-hold-tiers-server-fallback", "    stickiness: {mode: cookie, cookie: {name: LS-SRV, max_age: 1h}}\n"
     "    fallback: {server: {address: 127.0.0.69, port: 9009}}\n"
     "    health: {http: {path: /health, expect_status: 204}, interval: 2s}\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001, state: hold}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001}\n"
     "      - {name: S2, address: 127.0.0.64, port: 9001}\n"
     "      - {name: s3, address: 127.0.0.63, port: 9001, priority: 2}\n", HTTP),
    ("cookie-bridge-path-routes", SERVERS + "    stickiness: {mode: cookie}\n"
     "    upstream_tls: {ca: ca.pem, verify_name: web.internal}\n    redispatch: true\n",
     "  - name: l\n    vip: v\n    port: 8443\n    tls: {mode: bridge, certificates: [a]}\n    routes:\n"
     "      - {hosts: [a.example.com], path_prefix: /api/, strip_prefix: true, service: web, "
     "access: {allow: [198.51.100.0/24]}}\n"
     "      - {hosts: [a.example.com], path_exact: /s1, service: web, server: s1}\n"
     "      - {hosts: [a.example.com], service: web}\n"),
    ("application-direct-hosts", "    stickiness: {mode: application}\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, ports: {create: 9001, control: 9002}, direct_host: s1.example.com}\n"
     "      - {name: s2, address: 127.0.0.62, ports: {create: 9001, control: 9002}, direct_host: s2.example.com}\n",
     "  - name: l\n    vip: v\n    port: 8080\n    websocket: true\n    buffering: false\n"
     "    timeouts: {connect: 1500ms, client: 30s, server: 2m, tunnel: 1h}\n    routes:\n"
     "      - {hosts: [push.example.com, default], service: web, port: create}\n"
     "      - {direct_hosts: true, service: web, port: control}\n"
     "      - {hosts: [pinned.example.com], service: web, server: s2, port: create}\n"),
    ("terminate-two-certificates-client-auth", SERVERS,
     "  - name: l\n    vip: v\n    port: 8443\n"
     "    tls: {mode: terminate, certificates: [a, b], client_auth: require, client_ca: ca.pem, min_version: '1.3'}\n"
     "    forwarded_headers: false\n    websocket: false\n    routes:\n"
     "      - {hosts: [a.example.com, x.a.example.com], service: web}\n"
     "      - {hosts: [b.example.net], service: web}\n"),
    ("bridge", SERVERS + "    upstream_tls: {ca: ca.pem, verify_name: web.internal}\n",
     "  - {name: l, vip: v, port: 8443, tls: {mode: bridge, certificates: [a]}, "
     "routes: [{hosts: [a.example.com], service: web}]}\n"),
    ("passthrough-sni", SERVERS + "    stickiness: {mode: source-ip}\n    proxy_protocol: v1\n",
     "  - name: l\n    vip: v\n    port: 8443\n    tls: {mode: passthrough}\n    routes:\n"
     "      - {hosts: [a.example.com, '*.b.example.net'], service: web}\n"
     "      - {hosts: [one.example.com], service: web, server: s1}\n"),
    ("listeners-proxying-differently", SERVERS, HTTP +
     "  - {name: m, vip: v, port: 8081, buffering: false, forwarded_headers: false, websocket: false, "
     "timeouts: {server: 5m}, routes: [{service: web}]}\n"),
    ("tcp-two-groups-ipv6", "    balance: least-connections\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001, max_sessions: 2}\n"
     "      - {name: s2, address: '::1', port: 9001, priority: 2}\n",
     "  - {name: l, vip: w, port: 9000, protocol: tcp, routes: [{service: web}]}\n"),
    ("tcp-fallback-server-bridge", SERVERS + "    fallback: {server: {address: 127.0.0.69, port: 9009}}\n"
     "    upstream_tls: {ca: ca.pem, sni: web.internal}\n",
     "  - {name: l, vip: v, port: 9000, protocol: tcp, routes: [{service: web}]}\n"),
]

# (id, service, listeners, feature refused)
REFUSED = [
    ("body-check", SERVERS + "    health: {http: {path: /h, expect_body: ACTIVE}}\n", HTTP, "health.http-body"),
    ("max-lifetime", SERVERS + "    stickiness: {mode: cookie, max_lifetime: 2s}\n", HTTP, "stickiness.max-lifetime"),
    ("proxy-v2", SERVERS + "    proxy_protocol: v2\n",
     "  - {name: l, vip: v, port: 9000, protocol: tcp, routes: [{service: web}]}\n", "upstream.proxy-protocol-v2"),
    ("proxy-v1-at-l7", SERVERS + "    proxy_protocol: v1\n", HTTP, "upstream.proxy-protocol-v1"),
    ("hold-with-source-ip", "    stickiness: {mode: source-ip}\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001, state: hold}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001}\n", HTTP, "server.hold"),
    ("weight-0-with-source-ip", "    stickiness: {mode: source-ip}\n    servers:\n"   # weight 0 holds too
     "      - {name: s1, address: 127.0.0.61, port: 9001, weight: 0}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001}\n", HTTP, "server.hold"),
    ("three-groups-at-l4", "    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001, priority: 2}\n"
     "      - {name: s3, address: 127.0.0.63, port: 9001, priority: 3}\n",
     "  - {name: l, vip: v, port: 9000, protocol: tcp, routes: [{service: web}]}\n", "priority.tiers"),
    ("two-groups-hash-at-l4", "    balance: source-hash\n    servers:\n"
     "      - {name: s1, address: 127.0.0.61, port: 9001}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001, priority: 2}\n",
     "  - {name: l, vip: v, port: 9000, protocol: tcp, routes: [{service: web}]}\n", "priority.tiers"),
    ("redirect-respond", SERVERS + "    fallback: {respond: {status: 302, body: sorry}}\n", HTTP, "fallback.respond"),
    ("cookie-host-name-server", "    stickiness: {mode: cookie}\n    servers:\n"
     "      - {name: s1, address: app1.internal, port: 9001}\n"
     "      - {name: s2, address: 127.0.0.62, port: 9001}\n", HTTP, "stickiness.cookie"),
    ("bridge-two-names", SERVERS + "    upstream_tls: {ca: ca.pem, sni: a.internal, verify_name: b.internal}\n",
     "  - {name: l, vip: v, port: 8443, tls: {mode: bridge, certificates: [a]}, "
     "routes: [{hosts: [a.example.com], service: web}]}\n", "tls.bridge"),
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_combination_passes_nginx_t(case, tmp_path):
    _, service, listeners = case
    result = compile_text(tmp_path, service, listeners)
    assert not errors(result), [d.message for d in errors(result)]
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    ok, output = VALIDATORS["nginx"](TARGET.render(result.model), tmp_path)
    assert ok, output
    assert "[warn]" not in output


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_what_nginx_cannot_express_is_refused(case, tmp_path):
    _, service, listeners, feature = case
    result = compile_text(tmp_path, service, listeners)
    refused = [d for d in result.diagnostics if d.id == "LBC801"]
    assert any(f"({feature})" in d.message and d.target == "nginx" for d in refused), result.diagnostics


@needs_nginx
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_passes_nginx_t(example, tmp_path):
    from lbc.pipeline import Options, check_file
    result = check_file(example_path(example), Options(), TARGET)
    if result.failed:
        assert "LBC801" in ids(result)
        return
    ok, output = VALIDATORS["nginx"](TARGET.render(result.model), tmp_path)
    assert ok, output


HOSTILE = 'No "sessions" {x} ; # $var ${x} %d \\n \\ \' é ✓ 🙂 }\n  server { listen 1; }'.replace("\n", " ")


def test_cookie_stickiness_names_every_upstream_literally(tmp_path):
    """A variable proxy_pass makes nginx search all upstreams by name per request: the cookie's map
    chooses a named location instead, one per server, each with a literal proxy_pass. Services whose
    servers agree share the maps (nginx gives every request a slot per variable)."""
    two = (SERVERS + "    stickiness: {mode: cookie}\n") * 2
    two = two.replace("    stickiness: {mode: cookie}\n", "    stickiness: {mode: cookie}\n  other:\n", 1)
    listeners = ("  - {name: l, vip: v, port: 8080, routes: [{hosts: [a.example.com], service: web}, "
                 "{hosts: [b.example.com], service: other}]}\n")
    result = compile_text(tmp_path, two, listeners)
    assert not errors(result), [d.message for d in errors(result)]
    conf = TARGET.render(result.model)["nginx.conf"]
    assert re.search(r"proxy_pass [^;]*\$", conf) is None
    assert len(re.findall(r"^    map .* \$lbc_(?:cookie|sticky|setcookie)_", conf, re.M)) == 3   # cookie value, suffix, Set-Cookie: shared
    sticky = re.search(r"map \S+ (\$lbc_sticky_\d+) \{\n(.*?)\n    \}", conf, re.S)
    assert sticky is not None
    suffixes = re.findall(r'"([^"]*)";', sticky.group(2))          # every value, the default ("") too
    assert suffixes == [".srv.s1", ".srv.s2", ""]
    for svc in ("web", "other"):
        assert f"error_page 418 = @{svc}.default{sticky.group(1)};" in conf
        for suffix in suffixes:
            name = f"{svc}.default{suffix}"
            assert f'location @{name} {{\n            proxy_pass "http://{name}";' in conf


@pytest.mark.parametrize("text", [HOSTILE, "$", "\\", '"', "default", "a\\", "${lbc_dollar}", "'", "#", "}"])
def test_quote_is_one_token(text):
    q = nginx.quote(text)
    assert q.startswith('"') and q.endswith('"')
    inner = q[1:-1]
    # no unescaped quote inside, and it decodes back (nginx unescapes \\ and \" in quoted tokens)
    assert '"' not in inner.replace('\\"', "")
    assert _nginx_unquote(inner).replace("${lbc_dollar}", "$") == text


def test_quote_refuses_control_characters():
    with pytest.raises(ValueError):
        nginx.quote("a\nb")


def test_map_keywords_are_escaped():
    assert nginx.quote("default", map_key=True) == '"\\\\default"'
    assert nginx.quote("default") == '"default"'


def _nginx_unquote(inner: str) -> str:
    """What nginx's parser makes of a double-quoted token (ngx_conf_read_token)."""
    out, i = [], 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner) and inner[i + 1] in "\"'\\":
            out.append(inner[i + 1])
            i += 2
            continue
        out.append(inner[i])
        i += 1
    return "".join(out)


@needs_nginx
@pytest.mark.integration
def test_hostile_fallback_text_reaches_the_client_unchanged(tmp_path):
    """A real nginx answers the fallback with exactly the topology's text."""
    import http.client
    import socket
    service = SERVERS.replace("9001", "1") + (
        # `$$` is a literal `$` in a topology (`${name}` would be a placeholder): nginx gets `${x}` itself
        f"    fallback: {{respond: {{status: 503, body: '{HOSTILE.replace('$', '$$').replace(chr(39), chr(39) * 2)}', "
        "content_type: text/plain; charset=utf-8}}\n")
    with socket.socket() as s:
        s.bind(("127.0.0.50", 0))
        port = s.getsockname()[1]
    listeners = f"  - {{name: l, vip: v, port: {port}, routes: [{{service: web}}]}}\n"
    (tmp_path / "topology").mkdir()
    result = compile_text(tmp_path / "topology", service, listeners)
    assert not errors(result), [d.message for d in errors(result)]
    run = tmp_path / "run"
    run.mkdir()
    for rel, text in TARGET.render(result.model).items():
        (run / rel).write_text(text, encoding="utf-8")
    proc = subprocess.Popen(nginx_command(run, "-g", "daemon off;"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.50", port, timeout=5)
                conn.request("GET", "/")
                answer = conn.getresponse()
                break
            except ConnectionRefusedError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "nginx did not listen within 10 s"
                time.sleep(0.05)
        assert answer.status == 503
        assert answer.read().decode("utf-8") == HOSTILE
        assert answer.getheader("Content-Type") == "text/plain; charset=utf-8"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@needs_nginx
def test_ten_thousand_hosts_pass_nginx_t_without_hash_warnings(tmp_path):
    hosts = ", ".join(f"h{i:05d}.example.com" for i in range(10_000))
    sni = ", ".join(f"s{i:05d}.example.com" for i in range(10_000))
    listeners = (f"  - {{name: l, vip: v, port: 8080, routes: [{{hosts: [{hosts}], service: web}}]}}\n"
                 f"  - {{name: t, vip: v, port: 8443, tls: {{mode: passthrough}}, "
                 f"routes: [{{hosts: [{sni}], service: web}}]}}\n")
    result = compile_text(tmp_path, SERVERS + "    stickiness: {mode: source-ip}\n", listeners)
    assert not errors(result), [d.message for d in errors(result)][:3]
    ok, output = VALIDATORS["nginx"](TARGET.render(result.model), tmp_path)
    assert ok, output
    assert "[warn]" not in output, output
