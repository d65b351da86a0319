"""F5 conformance scenarios whose logic lives in an iRule, run in the Tcl harness ("simulated").

Each test compiles a topology with `--target f5`, loads the resulting bigip.conf (the exact
`ltm rule` bytes, the pools and member states) into the harness and asserts the decisions. What
this proves and what it does not: docs/f5.md.
"""
from __future__ import annotations

import json

import pytest

from f5checks import (check_fallback, check_fallback_server, check_health_states, check_hold, check_pinned,
                      check_proxy, check_sni, compile_f5, compile_text, example)
from f5hello import client_hello

pytestmark = [pytest.mark.conformance]

HOSTILE = 'No "sessions" {available}; # $HOME [exit 1] 100% \\n \\ back\\slash \u00e9\u00fc \u65e5\u672c \u20ac'


def _conf(path):
    files, result = compile_f5(path)
    assert files is not None, [str(d) for d in result.diagnostics]
    return files["bigip.conf"]


# ---------------------------------------------------------------- S10 fallback

@pytest.mark.f5_scenario("S24")
def test_s24_fallback_server_flynet():
    """The Flynet example's fallback is a server that always answers (001 "Minimum Servers")."""
    conf = _conf(example("flynet.yaml"))
    assert check_fallback_server(conf, "fvterm-https", "fvterm.example.com", ("fvterm", "default"),
                                 ("10.0.1.19", 80)) == []


@pytest.mark.f5_scenario("S10")
def test_s10_fallback_answer_hostile_text(tmp_path):
    """Quotes, braces, ;, #, $, [], %, backslashes and non-ASCII reach the client unchanged."""
    files, result = compile_text(tmp_path, f"""
        lbc: 1
        vips: {{v: {{address: 127.0.0.10}}}}
        services:
          app:
            servers:
              - {{name: a, address: 127.0.0.21, port: 8080}}
              - {{name: b, address: 127.0.0.22, port: 8080}}
            health: {{http: {{path: /health}}}}
            fallback: {{respond: {{status: 503, body: {json.dumps(HOSTILE)}, content_type: "text/plain; charset=utf-8"}}}}
        listeners:
          - {{name: web, vip: v, port: 80, routes: [{{service: app}}]}}
        """)
    assert files is not None, [str(d) for d in result.diagnostics]
    assert result.model.service("app").fallback.body == HOSTILE
    assert check_fallback(files["bigip.conf"], "web", "anything.example", ("app", "default"),
                          503, HOSTILE, "text/plain; charset=utf-8") == []


@pytest.mark.f5_scenario("S10")
def test_s10_fallback_server_http_and_tcp(tmp_path):
    text = """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          app:
            servers:
              - {name: a, address: 127.0.0.21, port: 8080}
              - {name: b, address: 127.0.0.22, port: 8080}
            health: {tcp: true}
            fallback: {server: {address: 127.0.0.29, port: 9000}}
        listeners:
          - {name: web, vip: v, port: 80, routes: [{hosts: [app.example.com], service: app}]}
          - {name: raw, vip: v, port: 9999, protocol: tcp, routes: [{service: app}]}
        """
    files, result = compile_text(tmp_path, text)
    assert files is not None, [str(d) for d in result.diagnostics]
    conf = files["bigip.conf"]
    assert check_fallback_server(conf, "web", "app.example.com", ("app", "default"), ("127.0.0.29", 9000)) == []
    assert check_fallback_server(conf, "raw", None, ("app", "default"), ("127.0.0.29", 9000), chunks=[]) == []


# ---------------------------------------------------------------- S13 TLS passthrough + SNI (selection)

@pytest.mark.f5_scenario("S13")
def test_s13_sni_selects_the_pool():
    conf = _conf(example("hacloud-x509.yaml"))
    assert check_sni(conf, "hacloud-tls", {
        "hacloud.example.com": ("sessions", "default"),
        "mss.example.com": ("mss", "default"),
        "other.example.com": None,
        None: None,
    }) == []


@pytest.mark.f5_scenario("S13")
def test_s13_sni_wildcard_and_default_route(tmp_path):
    files, result = compile_text(tmp_path, """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          a: {servers: [{name: a1, address: 127.0.0.21, port: 8443}], stickiness: {mode: source-ip}}
          b: {servers: [{name: b1, address: 127.0.0.22, port: 8443}], stickiness: {mode: source-ip}}
          c: {servers: [{name: c1, address: 127.0.0.23, port: 8443}], stickiness: {mode: source-ip}}
        listeners:
          - name: tls
            vip: v
            port: 443
            tls: {mode: passthrough}
            routes:
              - {hosts: [a.example.com], service: a}
              - {hosts: ["*.b.example.com"], service: b}
              - {service: c}
        """)
    assert files is not None, [str(d) for d in result.diagnostics]
    assert check_sni(files["bigip.conf"], "tls", {
        "a.example.com": ("a", "default"),
        "x.b.example.com": ("b", "default"),
        "b.example.com": ("c", "default"),          # the wildcard covers one label, not the bare name
        "y.x.b.example.com": ("c", "default"),      # nor two labels
        None: ("c", "default"),
    }) == []


# ---------------------------------------------------------------- S15 multihost / control link

@pytest.mark.f5_scenario("S15")
def test_s15_control_link_hosts_reach_their_server():
    conf = _conf(example("lightstreamer-control-link.yaml"))
    assert check_pinned(conf, "push-http", "push.example.com", ("lightstreamer", "create"), {
        "push1.example.com": ("10.0.6.11", 8080),
        "push2.example.com": ("10.0.6.12", 8080),
    }) == []


@pytest.mark.f5_scenario("S15")
def test_s15_multihost_two_domains():
    conf = _conf(example("lightstreamer-multihost.yaml"))
    for balanced in ("push.a.example.com", "push.b.example.net"):      # two domains, the same servers
        assert check_pinned(conf, "push-https", balanced, ("push", "create"), {
            "s1.push.a.example.com": ("10.0.6.11", 8080),
            "s2.push.a.example.com": ("10.0.6.12", 8080),
        }) == []


# ---------------------------------------------------------------- S19 hold (selection)

@pytest.mark.f5_scenario("S19")
def test_s19_held_server_drains_and_keeps_its_sessions():
    conf = _conf(example("flynet.yaml"))
    assert check_hold(conf, "fvterm-https", "fvterm.example.com", ("fvterm", "default"), ("10.0.1.13", 80)) == []


# ---------------------------------------------------------------- S22 Flynet health states

@pytest.mark.f5_scenario("S22")
def test_s22_full_or_held_member_keeps_its_sessions():
    conf = _conf(example("flynet.yaml"))
    assert check_health_states(conf, "fvterm-https", "fvterm.example.com", ("fvterm", "default")) == []


# ---------------------------------------------------------------- S18 client address at L4 (PROXY header)

@pytest.mark.f5_scenario("S18")
def test_s18_proxy_v2_header_ipv4():
    conf = _conf(example("lightstreamer-https-passthrough.yaml"))
    assert check_proxy(conf, "push-tls", 2, "127.0.0.5", 40001, "192.0.2.42", 443,
                       chunks=[client_hello("push.example.com")]) == []


@pytest.mark.f5_scenario("S18")
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("client,vip", [("127.0.0.5", "127.0.0.10"), ("2001:db8::5", "2001:db8:0:1::10"),
                                        ("::1", "fd00::a:0:0:1")])
def test_s18_proxy_header_both_families(tmp_path, version, client, vip):
    files, result = compile_text(tmp_path, f"""
        lbc: 1
        vips: {{v: {{address: "{vip}"}}}}
        services:
          app:
            proxy_protocol: {version}
            servers: [{{name: a, address: 127.0.0.21, port: 9000}}]
        listeners:
          - {{name: raw, vip: v, port: 7000, protocol: tcp, routes: [{{service: app}}]}}
        """)
    assert files is not None, [str(d) for d in result.diagnostics]
    assert check_proxy(files["bigip.conf"], "raw", int(version[1]), client, 51234, vip, 7000, chunks=[]) == []


# ---------------------------------------------------------------- S20: declared unsupported

@pytest.mark.f5_scenario("S20", unsupported=True)
def test_s20_max_lifetime_is_refused(tmp_path):
    files, result = compile_text(tmp_path, """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          app:
            servers: [{name: a, address: 127.0.0.21, port: 8080}, {name: b, address: 127.0.0.22, port: 8080}]
            stickiness: {mode: cookie, max_lifetime: 2s}
        listeners:
          - {name: web, vip: v, port: 80, routes: [{service: app}]}
        """)
    assert files is None
    assert any(d.id == "LBC801" and "stickiness.max-lifetime" in d.message for d in result.diagnostics)
