"""Envoy target: what the lowering must guarantee, checked on the data and by the real validator.

Behaviour (what Envoy does with the configuration) is proven by the conformance scenarios in
integration/; these tests pin the properties that are easy to lose in a refactoring.
"""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from lbc import targets
from lbc.targets import envoy

from helpers import EXAMPLES, check_text, example_path, ids
from validators import VALIDATORS

TARGET = targets.get("envoy")
needs_envoy = pytest.mark.skipif(shutil.which("envoy") is None, reason="envoy is not installed")

BASE = """\
lbc: 1
vips: {{v: {{address: 127.0.0.50}}}}
services:
  web:
{service}
listeners:
  - name: web
    vip: v
    port: 8080
{listener}
"""
SERVERS = """\
    servers:
      - {name: s1, address: 127.0.0.61, port: 9001}
      - {name: s2, address: 127.0.0.62, port: 9001}
"""


def compile_text(tmp_path, service: str = SERVERS, listener: str = "    routes: [{service: web}]"):
    result = check_text(tmp_path, BASE.format(service=service, listener=listener), target=TARGET)
    return result, (json.loads(TARGET.render(result.model)["envoy.json"]) if not result.failed else None)


def cluster(config: dict, name: str = "web:default") -> dict:
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == name)


def hcm(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


@needs_envoy
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_passes_envoy_validate(example, tmp_path):
    from lbc.pipeline import Options, check_file
    result = check_file(example_path(example), Options(), TARGET)
    if result.failed:
        assert "LBC801" in ids(result)
        return
    ok, output = VALIDATORS["envoy"](TARGET.render(result.model), tmp_path)
    assert ok, output


@pytest.mark.parametrize("ms,text", [(500, "0.5s"), (1500, "1.5s"), (5000, "5s"), (3_600_000, "3600s"), (1, "0.001s"),
                                     (123_456_789, "123456.789s")])
def test_durations_are_seconds(ms, text):
    assert envoy.seconds(ms) == text


def test_admin_listens_on_loopback_only(tmp_path):
    _, config = compile_text(tmp_path)
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


HOSTILE = 'No "sessions" {x} ; # $var %d %LOCAL_REPLY_BODY% \\n \\ \' é ✓ 🙂 ]]> <a> \u00a0'  # U+0085, U+2028: refused by the loader


@needs_envoy
def test_hostile_text_reaches_envoy_unchanged(tmp_path):
    # Free text goes through the serialiser only: it parses back to the same string, in the
    # expected place, and Envoy accepts the file.
    service = SERVERS + (
        f"    health: {{http: {{path: /h, expect_body: {yaml.safe_dump(HOSTILE, width=10**6).strip()}}}}}\n"
        f"    fallback: {{respond: {{body: {yaml.safe_dump(HOSTILE, width=10**6).strip()}}}}}\n")
    result, config = compile_text(tmp_path, service)
    assert not result.failed, result.diagnostics
    mapper = hcm(config)["local_reply_config"]["mappers"][0]
    assert mapper["body"]["inline_string"] == HOSTILE
    receive = cluster(config)["health_checks"][0]["http_health_check"]["receive"][0]["text"]
    assert bytes.fromhex(receive).decode("utf-8") == HOSTILE
    rendered = TARGET.render(result.model)["envoy.json"]
    assert rendered.isascii()
    ok, output = VALIDATORS["envoy"](TARGET.render(result.model), tmp_path)
    assert ok, output


@needs_envoy
def test_names_that_yaml_would_type_stay_strings(tmp_path):
    # In YAML, Envoy would read these valid names as booleans and refuse the file.
    text = """\
lbc: 1
vips: {v: {address: 127.0.0.50}}
services:
  "n":
    servers: [{name: "y", address: 127.0.0.61, port: 9001}]
    stickiness: {mode: cookie, cookie: {name: "on"}}
listeners:
  - {name: "y", vip: v, port: 8080, routes: [{hosts: ["y", "1e3", "n"], service: "n"}]}
"""
    result = check_text(tmp_path, text, target=TARGET)
    assert not result.failed, result.diagnostics
    files = TARGET.render(result.model)
    assert hcm(json.loads(files["envoy.json"]))["route_config"]["virtual_hosts"][0]["domains"] == ["y", "1e3", "n"]
    ok, output = VALIDATORS["envoy"](files, tmp_path)
    assert ok, output


def test_per_cluster_statistics_dropped_only_at_scale(tmp_path, monkeypatch):
    _, config = compile_text(tmp_path)
    assert "stats_config" not in config
    monkeypatch.setattr(envoy, "STATS_CLUSTERS", 0)
    _, config = compile_text(tmp_path)
    assert config["stats_config"]["stats_matcher"]["exclusion_list"] == {"patterns": [{"prefix": "cluster."}]}


def test_priorities_are_contiguous_and_strict(tmp_path):
    service = """\
    servers:
      - {name: a, address: 127.0.0.61, port: 9001, priority: 7}
      - {name: b, address: 127.0.0.62, port: 9001, priority: 100}
      - {name: c, address: 127.0.0.63, port: 9001, priority: 1}
      - {name: d, address: 127.0.0.64, port: 9001, priority: 7}
    health: {tcp: true}
"""
    _, config = compile_text(tmp_path, service)
    c = cluster(config)
    groups = c["load_assignment"]["endpoints"]
    assert [g.get("priority", 0) for g in groups] == [0, 1, 2]
    assert [[e["endpoint"]["address"]["socket_address"]["address"] for e in g["lb_endpoints"]] for g in groups] == [
        ["127.0.0.63"], ["127.0.0.61", "127.0.0.64"], ["127.0.0.62"]]
    # the two settings without which Envoy spills to the next tier early or panics onto dead servers
    assert c["load_assignment"]["policy"]["overprovisioning_factor"] >= 100 * 10_000
    assert c["common_lb_config"]["healthy_panic_threshold"] == {"value": 0}


def test_health_check_fall_counts_for_wrong_statuses(tmp_path):
    _, config = compile_text(tmp_path, SERVERS + "    health: {http: {path: /h, expect_status: 204}, interval: 500ms}\n")
    hc = cluster(config)["health_checks"][0]
    assert hc["interval"] == hc["no_traffic_interval"] == "0.5s"
    http = hc["http_health_check"]
    assert http["expected_statuses"] == [{"start": 204, "end": 205}]
    assert http["retriable_statuses"] == [{"start": 100, "end": 204}, {"start": 205, "end": 600}]


def test_session_cookie_has_no_lifetime_unless_asked(tmp_path):
    def cookie(stickiness):
        _, config = compile_text(tmp_path, SERVERS + f"    stickiness: {stickiness}\n")
        vhost = hcm(config)["route_config"]["virtual_hosts"][0]   # one setting for all its routes
        state = vhost["typed_per_filter_config"]["envoy.filters.http.stateful_session"]["stateful_session"]
        return state["session_state"]["typed_config"]["cookie"]
    assert cookie("{mode: cookie}") == {"name": "LBSRV", "path": "/", "ttl": "0s", "attributes": [{"name": "HttpOnly"}]}
    assert cookie("{mode: cookie, cookie: {name: S, max_age: 1h}, max_lifetime: 2s}")["ttl"] == "2s"


def test_hold_drains_but_keeps_sticky_sessions(tmp_path):
    service = """\
    servers:
      - {name: s1, address: 127.0.0.61, port: 9001, state: hold}
      - {name: s2, address: 127.0.0.62, port: 9001, state: down}
      - {name: s3, address: 127.0.0.63, port: 9001}
    stickiness: {mode: cookie}
"""
    _, config = compile_text(tmp_path, service)
    c = cluster(config)
    assert [e.get("health_status") for e in c["load_assignment"]["endpoints"][0]["lb_endpoints"]] == [
        "DRAINING", "UNHEALTHY", None]
    assert "DRAINING" in c["common_lb_config"]["override_host_status"]["statuses"]


def test_many_hosts_of_one_service_share_one_virtual_host(tmp_path):
    hosts = ", ".join(f"h{i}.example.com" for i in range(50))
    listener = "    routes:\n" + "".join(f"      - {{hosts: [h{i}.example.com], service: web}}\n" for i in range(50))
    _, config = compile_text(tmp_path, listener=listener)
    vhosts = hcm(config)["route_config"]["virtual_hosts"]
    assert len(vhosts) == 1 and vhosts[0]["domains"] == [h.strip() for h in hosts.split(",")]
    assert len(config["static_resources"]["clusters"]) == 1


LIMITED = """\
    balance: {balance}
    servers:
      - {{name: s1, address: 127.0.0.61, port: 9001, max_sessions: {a}}}
      - {{name: s2, address: 127.0.0.62, port: 9001, max_sessions: {b}}}
"""


def test_session_limit_with_least_connections(tmp_path):
    result, config = compile_text(tmp_path, LIMITED.format(balance="least-connections", a=10, b=10))
    assert not result.failed, result.diagnostics
    c = cluster(config)
    assert c["circuit_breakers"]["per_host_thresholds"] == [{"max_connections": 10}]
    policy = c["load_balancing_policy"]["policies"][0]["typed_extension_config"]["typed_config"]
    assert policy["selection_method"] == "FULL_SCAN"


@pytest.mark.parametrize("service,listener,feature", [
    (LIMITED.format(balance="round-robin", a=10, b=10), "    routes: [{service: web}]", "server.max-sessions"),
    (LIMITED.format(balance="least-connections", a=1, b=100), "    routes: [{service: web}]", "server.max-sessions"),
    (LIMITED.format(balance="least-connections", a=10, b=10) + "    stickiness: {mode: source-ip}\n",
     "    routes: [{service: web}]", "server.max-sessions"),
    (LIMITED.format(balance="least-connections", a=10, b="10, priority: 2"), "    routes: [{service: web}]",
     "priority.tiers"),
])
def test_refused_combinations(tmp_path, service, listener, feature):
    result, _ = compile_text(tmp_path, service, listener)
    refused = [d for d in result.diagnostics if d.id == "LBC801"]
    assert refused and feature in refused[0].message


def test_flynet_cookie_sessions_survive_a_failed_body_check(tmp_path):
    """Flynet health states: UNHEALTHY (the body check failed) still honours the session cookie;
    a dead server is left by the retry policy (previous_hosts)."""
    service = SERVERS + ("    profile: flynet\n    stickiness: {mode: cookie}\n"
                         "    fallback: {server: {address: 127.0.0.69, port: 80}}\n")
    result, config = compile_text(tmp_path, service, "    routes: [{hosts: [fv.example.com], service: web}]")
    c = cluster(config)
    assert "UNHEALTHY" in c["common_lb_config"]["override_host_status"]["statuses"]
    vhost = hcm(config)["route_config"]["virtual_hosts"][0]
    assert "connect-failure" in vhost["retry_policy"]["retry_on"]
    assert all("retry_policy" not in r["route"] for r in vhost["routes"])
    result, config = compile_text(tmp_path, service.replace("profile: flynet", "profile: generic")
                                  + "    health: {http: {path: /h, expect_body: ACTIVE}}\n")
    assert "UNHEALTHY" not in cluster(config)["common_lb_config"]["override_host_status"]["statuses"]


def test_flynet_drain_without_redispatch_is_refused(tmp_path):
    service = SERVERS + "    profile: flynet\n    redispatch: false\n    fallback: {server: {address: 127.0.0.69, port: 80}}\n"
    result, config = compile_text(tmp_path, service, "    routes: [{hosts: [fv.example.com], service: web}]")
    assert config is None and any(d.id == "LBC801" and "health.drain-on-body" in d.message for d in result.diagnostics)


def test_http_check_behind_passthrough_uses_a_tls_socket_of_its_own(tmp_path):
    service = SERVERS + ("    health: {http: {path: /h, host: app.example.com}}\n"
                         "    stickiness: {mode: source-ip}\n")
    listener = "    tls: {mode: passthrough}\n    routes: [{hosts: [app.example.com], service: web}]"
    result, config = compile_text(tmp_path, service, listener)
    c = cluster(config)
    assert "transport_socket" not in c, "the traffic itself stays untouched"
    assert c["health_checks"][0]["transport_socket_match_criteria"] == {"lbc": "health-tls"}
    match = next(m for m in c["transport_socket_matches"] if m["name"] == "health-tls")
    assert match["match"] == {"lbc": "health-tls"}
    assert match["transport_socket"]["typed_config"]["sni"] == "app.example.com"
