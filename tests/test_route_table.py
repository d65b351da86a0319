"""The per-listener route table (`Listener.route_table`), the one fact every target lowers routes
from: tested here once, then fed to every target's real validator. Behaviour per target is S26
(integration/test_edge_routing.py, integration/f5/test_f5_edge_routing.py)."""
from __future__ import annotations

import os

import pytest

from lbc import targets
from lbc.pipeline import Options, check_file, render

from helpers import ROOT, check_text, ids
from validators import VALIDATORS, node_folders

TOPOLOGY = """\
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      api:
        servers:
          - {name: a1, address: 10.0.0.21, port: 8080}
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
    listeners:
      - name: web
        vip: public
        port: 80
        routes:
          - {hosts: [www.example.com], service: web}
          - {hosts: [www.example.com, b.example.com], path_prefix: /api/, strip_prefix: true, service: api}
          - {hosts: [b.example.com], service: web}
          - {hosts: [www.example.com, b.example.com], path_prefix: /api/v2/, service: web}
          - {hosts: [www.example.com, b.example.com], path_exact: /api/v2/x, service: api}
          - {hosts: [c.example.com], service: web}
          - {hosts: [d.example.com], service: web}
          - {path_prefix: /x/, service: api}
          - {service: web}
    """


@pytest.fixture
def listener(tmp_path):
    result = check_text(tmp_path, TOPOLOGY)
    assert not result.failed, ids(result)
    return result.model.listeners[0]


def test_hosts_routed_alike_share_one_entry_default_last(listener):
    table = listener.route_table
    assert [t.hosts for t in table] == [("www.example.com", "b.example.com"), ("c.example.com", "d.example.com"), ()]
    assert [t.by_path for t in table] == [True, False, True]


def test_match_order_exact_then_longest_prefix_then_every_path(listener):
    first = listener.route_table[0]
    assert [(r.url_path.kind, r.url_path.value) if r.url_path else None for r in first.routes] == [
        ("exact", "/api/v2/x"), ("prefix", "/api/v2/"), ("prefix", "/api/"), None]


@pytest.mark.parametrize("path,service", [
    ("/api/v2/x", "api"), ("/api/v2/x/", "web"), ("/api/v2/", "web"), ("/api/v2", "api"), ("/api/", "api"),
    ("/api", "web"), ("/", "web"), ("/API/", "web")])
def test_select_is_the_reference_every_target_matches(listener, path, service):
    assert listener.route_table[0].select(path).service == service


def test_strip_length_keeps_the_leading_slash(listener):
    api = next(r for r in listener.route_table[0].routes if r.url_path and r.url_path.value == "/api/")
    assert api.url_path.strip_length == 4 and "/api/users"[api.url_path.strip_length:] == "/users"


def test_a_table_without_a_route_for_every_path_answers_nothing_else(tmp_path):
    result = check_text(tmp_path, TOPOLOGY.replace("          - {service: web}\n", ""))
    assert not result.failed, ids(result)
    default = result.model.listeners[0].route_table[-1]
    assert default.hosts == () and default.select("/y") is None and default.select("/x/1").service == "api"
    assert result.model.listeners[0].default_route is None


CASE = os.path.join(ROOT, "tests", "golden", "cases", "path-routing.yaml")
TARGETS = sorted(t for t in VALIDATORS if t in targets.available())


@pytest.mark.parametrize("target_name", TARGETS)
def test_path_routes_pass_every_real_validator(target_name, tmp_path):
    tgt = targets.get(target_name)
    result = check_file(CASE, Options(), tgt)
    assert not result.failed, [str(d) for d in result.diagnostics]
    for node, files in node_folders(render(result.model, tgt)).items():
        folder = tmp_path / (node or "out")
        folder.mkdir()
        ok, output = VALIDATORS[target_name](files, folder)
        assert ok, output


ROUTE_ACCESS = """\
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
    listeners:
      - name: web
        vip: public
        port: 80
        routes:
          - {hosts: [a.example.com], service: web, access: {allow: [10.0.0.0/8]}}
          - {hosts: [b.example.com], service: web, access: {allow: ["10.0.0.0/8"], deny: []}}
          - {hosts: [c.example.com], service: web, access: {deny: [10.0.0.0/8]}}
          - {hosts: [d.example.com], service: web}
    """


def test_route_access_lists_split_tables_and_equal_lists_share(tmp_path):
    """A route's access list is part of what it does: hosts of one service with different lists get
    different tables (one target cannot check two lists), equal lists written twice share one."""
    result = check_text(tmp_path, ROUTE_ACCESS)
    assert not result.failed, ids(result)
    tables = {t.hosts: t.routes[0].access for t in result.model.listeners[0].route_table}
    assert set(tables) == {("a.example.com", "b.example.com"), ("c.example.com",), ("d.example.com",)}
    assert tables[("c.example.com",)].deny == ("10.0.0.0/8",) and tables[("d.example.com",)] is None
