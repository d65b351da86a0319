"""What each proxy accepts, checked by lbc first: every case is refused with a located diagnostic
(schema bounds, model checks or a target's LBC801), or compiles to what the proxy takes."""
from __future__ import annotations

import pytest

from lbc import targets
from lbc.build import name_from_file
from lbc.schema import ecma_pattern

from helpers import check_text

BASE = """\
lbc: 1
vips: {{v: {{address: {vip}}}}}
services:
  app:
    servers: [{{name: s1, address: 127.0.0.61, port: 8080{server}}}]
{service}
listeners: [{{name: {lname}, vip: v, port: {port}, routes: [{{service: app{route}}}]{listener}}}]
"""


def topo(vip="127.0.0.5", server="", service="", lname="web", port=80, route="", listener=""):
    return BASE.format(vip=vip, server=server, service=service, lname=lname, port=port, route=route,
                       listener=listener)


def failing(tmp_path, text, target=None):
    r = check_text(tmp_path, text, target=targets.get(target) if target else None)
    bad = [d for d in r.diagnostics if d.fails]
    assert all(d.location.line >= 1 for d in bad), bad
    return bad


@pytest.mark.parametrize("text,rule,words", [
    (topo(vip="'::ffff:127.0.0.5'"), "LBC105", "IPv4 address in IPv6 form"),
    (topo(vip="'fe80::1'"), "LBC105", "link-local"),
    (topo(service="    fallback: {server: {address: '1:30', port: 80}}"), "LBC105", "not an IP"),
    (topo(service="    fallback: {server: {address: fallback.example.com, port: 80}}"), "LBC105", "fallback/server/address"),
    (topo(route=", direct_hosts: true"), "LBC101", "routes nothing"),
    (topo(service="    health: {tcp: true, interval: 25d}"), "LBC014", "longer than 24 days"),
    (topo(service="    health: {tcp: true, interval: 0s}"), "LBC014", "not valid"),
    (topo(listener=", timeouts: {client: 0ms}"), "LBC014", "not valid"),
    (topo(service="    upstream_tls: {ca: ca.pem, sni: '*.example.com'}"), "LBC104", "not valid"),
    (topo(service="    health: {http: {path: /h, expect_body: ''}}"), "LBC013", "expect_body"),
])
def test_refused_for_every_target(tmp_path, text, rule, words):
    bad = failing(tmp_path, text)
    assert any(d.id == rule and words in d.message for d in bad), bad


@pytest.mark.parametrize("target,text,words", [
    ("envoy", topo(vip="127.0.0.1", port=9901), "admin interface"),
    ("envoy", topo(vip="0.0.0.0", port=9901), "admin interface"),
    ("f5", topo(service="    health: {tcp: true, interval: 10d}"), "at most 86400 s"),
    ("f5-as3", topo(listener=", timeouts: {client: 2d}"), "at most 86400 s"),
    ("f5-as3", topo(service="    stickiness: {mode: source-ip, idle_timeout: 8d}"), "7 days"),
    ("f5-as3", topo(lname="web-"), "cannot end with '-'"),
])
def test_refused_by_one_target(tmp_path, target, text, words):
    assert not failing(tmp_path, text)
    bad = failing(tmp_path, text, target)
    assert any(d.id == "LBC801" and words in d.message for d in bad), bad


def test_the_next_port_is_fine_for_envoy(tmp_path):
    assert not failing(tmp_path, topo(vip="127.0.0.1", port=9902), "envoy")


def test_an_empty_fallback_body_compiles_for_haproxy(tmp_path):
    r = check_text(tmp_path, topo(service="    fallback: {respond: {body: ''}}"))
    cfg = targets.get("haproxy").render(r.model)["haproxy.cfg"]
    assert "http-request return status 503\n" in cfg and "string ''" not in cfg


def test_a_long_topology_name_fits_the_as3_label(tmp_path):
    import json
    r = check_text(tmp_path, "name: " + "n" * 63 + "\n" + topo())
    decl = json.loads(targets.get("f5-as3").render(r.model)["as3.json"])
    assert len(decl["declaration"]["label"]) <= 64


@pytest.mark.parametrize("file,name", [
    ("x\nlisten pwn\n  server ssh 127.0.0.1:22\n#.yaml", "x-listen-pwn-server-ssh-127-0-0-1-22"),
    ("flynet.yaml", "flynet"), ("my topology (v2).yml", "my-topology-v2"), ("2024.yaml", "topology-2024"),
    ("---.yaml", "topology"), ("café.yaml", "caf"), ("x" * 100 + ".yaml", "x" * 63),
])
def test_a_name_from_a_file_name_fits_the_name_grammar(file, name):
    assert name_from_file("/some/dir/" + file) == name


def test_patterns_anchor_at_the_very_end():
    assert ecma_pattern(r"^[a-z$]+$") == r"^[a-z$]+\Z"
    assert ecma_pattern(r"^a\$$") == r"^a\$\Z"
