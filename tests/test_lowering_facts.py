"""The facts every back end lowers from (compiler/model.py), tested once, and fed to every target.

"Does this listener read HTTP", "does it decrypt", "which services are routed" and "what does a
server take" are decided on the model; the targets only read them. A passthrough listener that
declares `protocol: http` (LBC209, acknowledged) once compiled to `mode tcp` on HAProxy but got the
HTTP and WebSocket profiles on F5: every target must now lower it exactly as the same listener
declared `protocol: tcp`.
"""
from __future__ import annotations

import difflib
import re

import pytest

from lbc import targets

from helpers import check_text, ids

TOPOLOGY = """\
    lbc: 1
    vips:
      public: {{address: 192.0.2.10}}
    services:
      web:
        servers:
          - {{name: a, address: 10.0.0.1, port: 443}}
          - {{name: b, address: 10.0.0.2, port: 443, state: hold}}
          - {{name: c, address: 10.0.0.3, port: 443, weight: 0}}
          - {{name: d, address: 10.0.0.4, port: 443, state: down}}
        health: {{tcp: true}}
      unused:
        servers:
          - {{name: a, address: 10.0.0.9, port: 80}}
    listeners:
      - name: secure
        vip: public
        port: 443
        protocol: {protocol}
        websocket: {websocket}
        tls: {{mode: passthrough}}
        routes:
          - {{service: web}}
{ignore}"""

IGNORE = """\
        ignore: {LBC209: the servers read the HTTP; the balancer forwards the TLS}
"""


def passthrough_model(tmp_path, protocol: str, target=None):
    text = TOPOLOGY.format(protocol=protocol, websocket="true" if protocol == "http" else "false",
                           ignore=IGNORE if protocol == "http" else "")
    result = check_text(tmp_path, text, target=target)
    assert not result.failed, ids(result)
    return result.model


def test_passthrough_never_reads_http_whatever_it_declares(tmp_path):
    for protocol in ("http", "tcp"):
        (l,) = passthrough_model(tmp_path, protocol).listeners
        assert (l.reads_http, l.decrypts, l.sees_host_names) == (False, False, True)


def test_reads_http_and_decrypts_follow_protocol_and_tls_mode(tmp_path):
    model = passthrough_model(tmp_path, "http")
    (l,) = model.listeners
    for protocol, mode, reads, decrypts in (("http", "none", True, False), ("http", "terminate", True, True),
                                            ("http", "bridge", True, True), ("tcp", "terminate", False, True),
                                            ("tcp", "none", False, False), ("http", "passthrough", False, False)):
        other = type(l)(**{**l.__dict__, "protocol": protocol, "tls": type(l.tls)(**{**l.tls.__dict__, "mode": mode})})
        assert (other.reads_http, other.decrypts) == (reads, decrypts), (protocol, mode)


def test_routed_services_and_routes_to_in_document_order(tmp_path):
    model = passthrough_model(tmp_path, "tcp")
    assert model.routed_services == ("web",)
    assert model.listeners[0].routed_services == ("web",)
    assert [(l.name, r.service) for l, r in model.routes_to("web")] == [("secure", "web")]
    assert model.routes_to("unused") == ()
    assert [l.name for l in model.listeners_of("web")] == ["secure"]


def test_server_admission_folds_hold_and_weight_zero(tmp_path):
    servers = passthrough_model(tmp_path, "tcp").service("web").servers
    assert {s.name: s.admission for s in servers} == {"a": "active", "b": "hold", "c": "hold", "d": "down"}


# What may differ between the two outputs: where a target prints the declared protocol in a comment or
# a description (lines naming the listener), nothing that configures the proxy.
_DESCRIBES = re.compile(r"(#|//|description|\"remark\"|comment).*\b(http|tcp)\b", re.I)


@pytest.mark.parametrize("name", targets.available())
def test_every_target_lowers_http_passthrough_as_tcp_passthrough(tmp_path, name):
    target = targets.get(name)
    outputs = {}
    for protocol in ("http", "tcp"):
        (tmp_path / protocol).mkdir()
        model = passthrough_model(tmp_path / protocol, protocol, target)
        outputs[protocol] = target.render(model)
    assert sorted(outputs["http"]) == sorted(outputs["tcp"])
    for path in sorted(outputs["http"]):
        a, b = outputs["http"][path].splitlines(), outputs["tcp"][path].splitlines()
        diff = [line for line in difflib.unified_diff(b, a, f"tcp/{path}", f"http/{path}", lineterm="", n=0)
                if line[:1] in "+-" and not line.startswith(("+++", "---")) and not _DESCRIBES.search(line)]
        assert not diff, f"{name} lowers a protocol: http passthrough listener differently in {path}:\n" + \
            "\n".join(diff)


# Refusals of the language, not of a target: `lbc validate` reports them without --target, no `ignore:`
# silences them, and every target gets the same rule (no target writes its own LBC801 for them).
LANGUAGE_REFUSALS = {
    "LBC409": ("fallback: {respond: {body: sorry}}", "protocol: tcp", "{service: web}"),
    "LBC606": ("", "protocol: tcp", "{hosts: [a.example.com], service: web}"),
    "LBC310": ("stickiness: {mode: source-ip, max_lifetime: 60m}", "protocol: tcp", "{service: web}"),
}
REFUSAL_TOPOLOGY = """\
    lbc: 1
    vips:
      public: {{address: 192.0.2.10}}
    services:
      web:
        servers:
          - {{name: a, address: 10.0.0.1, port: 8080}}
          - {{name: b, address: 10.0.0.2, port: 8080}}
        health: {{tcp: true}}
        {service}
    listeners:
      - name: web
        vip: public
        port: 80
        {listener}
        ignore: {{{rule}: acknowledged}}
        routes: [{route}]
"""


@pytest.mark.parametrize("rule", sorted(LANGUAGE_REFUSALS))
@pytest.mark.parametrize("target", [None] + targets.available())
def test_language_refusals_are_rules_for_every_target(tmp_path, rule, target):
    service, listener, route = LANGUAGE_REFUSALS[rule]
    result = check_text(tmp_path, REFUSAL_TOPOLOGY.format(service=service, listener=listener, route=route, rule=rule),
                        target=targets.get(target) if target else None)
    found = [d for d in result.diagnostics if d.id == rule]
    assert found and not found[0].acknowledged and result.failed, ids(result)
    feature = {"LBC409": "fallback.respond", "LBC606": "routing.hosts", "LBC310": "stickiness.max-lifetime"}[rule]
    own = [d.message for d in result.diagnostics if d.id == "LBC801" and " here: " in d.message
           and feature in d.message]
    assert own == [], own


def test_mode_types_list_exactly_the_schemas_values():
    """The Literal types the back ends match on (lbc.model) and the schema's enums name the same modes."""
    import json
    from typing import get_args

    from lbc import model
    from helpers import ROOT
    with open(f"{ROOT}/schemas/topology.schema.json", encoding="utf-8") as f:
        schema = json.load(f)
    enums: list[set] = []

    def walk(node):
        if isinstance(node, dict):
            if "enum" in node:
                enums.append(set(node["enum"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    for t in (model.ListenerProtocol, model.TlsMode, model.StickinessMode, model.Balance, model.ServerState,
              model.ClientAuth, model.ProxyProtocol):
        assert set(get_args(t)) in enums, get_args(t)


def test_stickiness_variants_are_the_modes_and_hold_only_their_settings(tmp_path):
    """One variant per mode (the union's tags are StickinessMode), and a setting written for another mode
    is named in `unused` (LBC308, LBC310), not carried as a field the back ends could read."""
    from typing import get_args

    from lbc import model
    variants = get_args(model.Stickiness)
    assert sorted(v().mode for v in variants) == sorted(get_args(model.StickinessMode))
    text = """
lbc: 1
vips: {pub: {address: 192.0.2.10}}
services:
  a:
    servers: [{name: s1, address: 10.0.0.1, port: 80}]
    stickiness: {mode: source-ip, idle_timeout: 10m, cookie: {name: X}, max_lifetime: 1h}
  b:
    servers: [{name: s1, address: 10.0.0.2, port: 80}]
    stickiness: {mode: cookie, cookie: {name: LBSRV}, idle_timeout: 30m}
listeners:
  - {name: web, vip: pub, port: 80, protocol: tcp, routes: [{service: a}]}
"""
    result = check_text(tmp_path, text)
    assert "LBC308" in ids(result) and "LBC310" in ids(result)
    m = result.model
    a, b = m.service("a").stickiness, m.service("b").stickiness
    assert isinstance(a, model.SourceIpStickiness) and a.idle_timeout_ms == 600_000 and a.idle_timeout_given
    assert a.unused == ("cookie", "max_lifetime") and not hasattr(a, "cookie_name")
    assert isinstance(b, model.CookieStickiness) and b.unused == () and not hasattr(b, "idle_timeout_ms")


@pytest.mark.parametrize("address", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "192.0.2.199", "256.0.0.1",
                                     "010.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.4 ", "1.2.3.4\n", "1.2.3.04", "::1", "::ffff:1.2.3.4",
                                     "2001:DB8::0:1", "fe80::1%eth0", "app.example.com", "1.2.3.x", "١.2.3.4"])
def test_ip_text_is_the_normal_form_of_ip_of(address):
    """ip_text (a regular expression first, ipaddress otherwise) says what str(ip_of()) says."""
    from lbc.model import ip_of, ip_text
    ip = ip_of(address)
    assert ip_text(address) == (None if ip is None else str(ip))
