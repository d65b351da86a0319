"""Balancer nodes (`balancers:`): the language's errors, one folder per node, keepalived.conf checked by
keepalived itself, HAProxy peers, the CLI and `lbc plan`. The failover itself is CONFORMANCE S34
(integration/test_pair.py)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from lbc import plan, targets
from lbc.nodes import DEFAULT_PID_FILE, keepalived_conf
from lbc.pipeline import Options, check_file, render

from validators import keepalived_checkable, node_folders, validate_keepalived

PAIR = """\
lbc: 1
name: pair
vips:
  public: {address: 192.0.2.10}
  admin: {address: 192.0.2.11}
services:
  app:
    servers:
      - {name: a1, address: 10.0.1.11, port: 8080}
      - {name: a2, address: 10.0.1.12, port: 8080}
    health: {tcp: true}
    stickiness: {mode: source-ip}
listeners:
  - {name: web, vip: public, port: 80, routes: [{service: app}]}
  - {name: adm, vip: admin, port: 8081, routes: [{service: app}]}
balancers:
  nodes:
    lb1: {address: 192.0.2.2, interface: eth0, priority: 150}
    lb2: {address: 192.0.2.3, interface: ens3, priority: 100}
  vrrp:
    public: {router_id: 51, auth_pass: secret1}
    admin: {router_id: 52, preempt: false, unicast: true, advert_interval: 2s}
"""


def check(tmp_path, text: str, target=None):
    p = tmp_path / "t.yaml"
    p.write_text(text, encoding="utf-8")
    return check_file(str(p), Options(), targets.get(target) if target else None)


def errors(result) -> list[tuple[str, int]]:
    return sorted((d.id, d.location.line) for d in result.diagnostics if d.fails)


def compiled(tmp_path, target: str, text: str = PAIR) -> dict[str, str]:
    result = check(tmp_path, text, target)
    assert not result.failed, [str(d) for d in result.diagnostics]
    return render(result.model, targets.get(target))


# ---------------------------------------------------------------- the language's errors, with their places

@pytest.mark.parametrize("old,new,expect", [
    ("    lb2: {address: 192.0.2.3, interface: ens3, priority: 100}",
     "    lb2: {address: 192.0.2.3, interface: ens3, priority: 100, listeners: [web, nope]}", ("LBC101", 19)),
    ("    admin: {router_id: 52,", "    other: {router_id: 52,", ("LBC101", 22)),
    ("    public: {router_id: 51, auth_pass: secret1}", "    public: {router_id: 51, nodes: [lb1, lb9]}",
     ("LBC101", 21)),
    ("router_id: 52", "router_id: 51", ("LBC102", 22)),
    ("lb2: {address: 192.0.2.3,", "lb2: {address: 192.0.2.2,", ("LBC102", 19)),
    ("lb2: {address: 192.0.2.3,", "lb2: {address: 192.0.2.10,", ("LBC105", 19)),
    ("advert_interval: 2s", "advert_interval: 1500ms", ("LBC013", 22)),
    ("auth_pass: secret1", "auth_pass: secret123", ("LBC013", 21)),          # keepalived keeps 8 characters
    ("priority: 150", "priority: 255", ("LBC013", 18)),                     # 255 is the address owner's
    ("interface: ens3", "interface: 'eth0; x'", ("LBC013", 19)),
    ("  public: {address: 192.0.2.10}", "  public: {address: '2001:db8::10'}", ("LBC105", 21)),
    ("lb2: {address: 192.0.2.3,", "lb2: {address: '2001:db8::3',", ("LBC105", 19)),
])
def test_bad_balancers_are_errors_at_their_place(tmp_path, old, new, expect):
    assert old in PAIR
    result = check(tmp_path, PAIR.replace(old, new, 1))
    assert expect in errors(result), [str(d) for d in result.diagnostics]
    assert result.model is None or not result.failed


def test_one_node_is_not_a_pair(tmp_path):
    text = PAIR.replace("    lb2: {address: 192.0.2.3, interface: ens3, priority: 100}\n", "")
    assert ("LBC013", 18) in errors(check(tmp_path, text))


def test_the_pair_is_clean_apart_from_the_multi_node_notes(tmp_path):
    result = check(tmp_path, PAIR)
    assert {d.id for d in result.diagnostics} == {"LBC304", "LBC702"}, [str(d) for d in result.diagnostics]


# ---------------------------------------------------------------- one folder per node

@pytest.mark.parametrize("target,proxy_file", [("haproxy", "haproxy.cfg"), ("nginx", "nginx.conf"),
                                               ("envoy", "envoy.json")])
def test_one_folder_per_node(tmp_path, target, proxy_file):
    files = compiled(tmp_path, target)
    for node in ("lb1", "lb2"):
        for name in (proxy_file, "keepalived.conf", "README.md"):
            assert f"{node}/{name}" in files
    assert not any("/" not in rel for rel in files), "nothing outside the node folders"
    assert f"cat {DEFAULT_PID_FILE[target]}" in files["lb1/keepalived.conf"]
    assert compiled(tmp_path, target) == files, "deterministic"


def test_f5_writes_one_configuration_and_says_why(tmp_path):
    result = check(tmp_path, PAIR, "f5")
    files = render(result.model, targets.get("f5"))
    assert not any("keepalived" in rel or "/" in rel for rel in files)
    notes = [d.message for d in result.diagnostics if d.id == "LBC802" and "ha.vrrp" in d.message]
    assert notes and "device group" in notes[0]


def test_keepalived_conf_per_node(tmp_path):
    files = compiled(tmp_path, "haproxy")
    lb1, lb2 = files["lb1/keepalived.conf"], files["lb2/keepalived.conf"]
    assert re.search(r"vrrp_instance public \{.*?interface eth0.*?virtual_router_id 51.*?priority 150.*?"
                     r"auth_pass secret1.*?192\.0\.2\.10/32 dev eth0.*?track_script \{\s+lbc_proxy", lb1, re.S)
    assert "interface ens3" in lb2 and "priority 100" in lb2 and "router_id lb2" in lb2
    admin = lb1[lb1.index("vrrp_instance admin"):]
    assert "nopreempt" in admin and "advert_int 2" in admin
    assert re.search(r"unicast_src_ip 192\.0\.2\.2\s+unicast_peer \{\s+192\.0\.2\.3\s+\}", admin)
    assert "nopreempt" not in lb1[lb1.index("vrrp_instance public"):lb1.index("vrrp_instance admin")]
    # the check: the proxy's PID file, twice failed gives the VIPs up
    assert re.search(r"vrrp_script lbc_proxy \{\s+script \"/bin/sh -c 'kill -0 \$\(cat /run/haproxy.pid\)'\"\s+"
                     r"interval 1\s+fall 2\s+rise 2", lb1)


def test_pid_file_of_a_node(tmp_path):
    text = PAIR.replace("interface: eth0, priority: 150}", "interface: eth0, priority: 150, pid_file: /run/lb/h.pid}")
    files = compiled(tmp_path, "haproxy", text)
    assert "cat /run/lb/h.pid" in files["lb1/keepalived.conf"]
    assert f"cat {DEFAULT_PID_FILE['haproxy']}" in files["lb2/keepalived.conf"]
    assert "-p /run/lb/h.pid" in files["lb1/README.md"]


def test_a_value_keepalived_cannot_take_is_refused_by_the_writer(tmp_path):
    """The schema keeps these out; the writer checks again (a model built by other means)."""
    import dataclasses
    result = check(tmp_path, PAIR)
    b = result.model.balancers
    bad = dataclasses.replace(b.nodes[0], interface="eth0 }")
    with pytest.raises(ValueError):
        keepalived_conf(result.model, bad, "haproxy")


@pytest.mark.skipif(not keepalived_checkable(), reason="keepalived -t needs keepalived and a network namespace "
                    "holding the interfaces the configuration names")
@pytest.mark.parametrize("target", ["haproxy", "nginx", "envoy"])
def test_keepalived_accepts_every_node(tmp_path, target):
    files = compiled(tmp_path, target)
    for node in ("lb1", "lb2"):
        folder = tmp_path / node
        folder.mkdir()
        ok, output = validate_keepalived(files[f"{node}/keepalived.conf"], folder)
        assert ok, output


@pytest.mark.skipif(not keepalived_checkable(), reason="needs keepalived and a network namespace")
def test_keepalived_check_is_not_a_rubber_stamp(tmp_path):
    """The same check refuses what keepalived refuses (a router id out of range)."""
    text = compiled(tmp_path, "haproxy")["lb1/keepalived.conf"].replace("virtual_router_id 51", "virtual_router_id 300")
    ok, output = validate_keepalived(text, tmp_path)
    assert not ok and "300" in output


# ---------------------------------------------------------------- HAProxy peers

def test_haproxy_peers_on_every_stick_table(tmp_path):
    files = compiled(tmp_path, "haproxy")
    for node in ("lb1", "lb2"):
        cfg = files[f"{node}/haproxy.cfg"]
        assert f"    localpeer {node}\n" in cfg
        assert re.search(r"peers lbc\n    peer lb1 192\.0\.2\.2:10000\n    peer lb2 192\.0\.2\.3:10000\n", cfg)
        tables = re.findall(r"stick-table .*", cfg)
        assert tables and all(t.endswith(" peers lbc") for t in tables)
    assert files["lb1/haproxy.cfg"].replace("localpeer lb1", "localpeer lb2") == files["lb2/haproxy.cfg"]


def test_haproxy_without_state_sync_has_no_peers(tmp_path):
    files = compiled(tmp_path, "haproxy", PAIR.replace("  vrrp:", "  state_sync: false\n  sync_port: 7000\n  vrrp:"))
    assert "peers" not in files["lb1/haproxy.cfg"] and "localpeer" not in files["lb1/haproxy.cfg"]


def test_haproxy_sync_port(tmp_path):
    files = compiled(tmp_path, "haproxy", PAIR.replace("  vrrp:", "  sync_port: 7000\n  vrrp:"))
    assert "peer lb2 192.0.2.3:7000" in files["lb1/haproxy.cfg"]


@pytest.mark.parametrize("target", ["haproxy", "nginx", "envoy"])
def test_each_node_passes_the_proxy_validator(tmp_path, target):
    from validators import VALIDATORS
    for node, files in node_folders(compiled(tmp_path, target)).items():
        folder = tmp_path / f"v-{node}"
        folder.mkdir()
        ok, output = VALIDATORS[target](files, folder)
        assert ok, output


def test_a_node_serves_only_its_listeners(tmp_path):
    text = PAIR.replace("    lb2: {address: 192.0.2.3, interface: ens3, priority: 100}",
                        "    lb2: {address: 192.0.2.3, interface: ens3, priority: 100, listeners: [web]}\n"
                        "    lb3: {address: 192.0.2.4, interface: eth0, priority: 50, listeners: [adm]}")
    text = text.replace("    public: {router_id: 51, auth_pass: secret1}",
                        "    public: {router_id: 51, nodes: [lb1, lb2]}").replace(
                        "    admin: {router_id: 52,", "    admin: {nodes: [lb1, lb3], router_id: 52,")
    files = compiled(tmp_path, "haproxy", text)
    assert "frontend adm" not in files["lb2/haproxy.cfg"] and "frontend web" in files["lb2/haproxy.cfg"]
    assert "frontend web" not in files["lb3/haproxy.cfg"] and "vrrp_instance public" not in files["lb3/keepalived.conf"]
    assert "frontend adm" in files["lb1/haproxy.cfg"] and "frontend web" in files["lb1/haproxy.cfg"]


# ---------------------------------------------------------------- CLI and plan

def test_cli_compile_writes_node_folders_and_needs_an_output(tmp_path):
    (tmp_path / "t.yaml").write_text(PAIR, encoding="utf-8")
    r = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "compile", "t.yaml", "-t",
                        "haproxy"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "one folder per node" in r.stderr and r.stdout == ""
    r = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "compile", "t.yaml", "-t",
                        "haproxy", "-o", "out"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".lbc-output", "lb1", "lb2"]
    assert (tmp_path / "out" / "lb2" / "keepalived.conf").is_file()


def test_plan_shows_each_node(tmp_path):
    result = check(tmp_path, PAIR.replace("port: 8080}", "port: 8080, max_sessions: 100}"))
    p = plan.plan(result.model)
    roles = {r.node: r for r in p["nodes"]}
    assert roles["lb1"].holds == ("public", "admin") and roles["lb2"].holds == ()
    assert roles["lb2"].may_hold == ("public", "admin")
    (load,) = p["node_load"]
    assert load.nodes == ("lb1", "lb2") and load.checks_per_minute == 24
    assert load.limits == (("a1", 100, 200), ("a2", 100, 200))
    text = plan.format_plan(p)
    assert "lb1   192.0.2.2  150       public, admin" in text
    assert "a1: max_sessions 100 per node, up to 200 in all" in text
    assert json.loads(json.dumps(plan.plan_json(p)))["nodes"][0]["holds"] == ["public", "admin"]


def test_plan_tie_goes_to_the_higher_address(tmp_path):
    result = check(tmp_path, PAIR.replace("priority: 150", "priority: 100"))
    roles = {r.node: r for r in plan.plan(result.model)["nodes"]}
    assert roles["lb2"].holds == ("public", "admin")


def test_without_balancers_nothing_changes(tmp_path):
    single = PAIR[:PAIR.index("balancers:")]
    result = check(tmp_path, single, "haproxy")
    files = render(result.model, targets.get("haproxy"))
    assert "haproxy.cfg" in files and "peers" not in files["haproxy.cfg"]
    assert "nodes" not in plan.plan_json(plan.plan(result.model))


def test_source_ip_without_sync_is_a_note_only_where_the_target_hashes_the_address(tmp_path):
    """LBC703: HAProxy and BIG-IP keep a table per node that a failover loses (a warning); nginx and Envoy
    hash the client address alike on every node (information); without --target, the warning stands."""
    text = PAIR + "  state_sync: false\n"
    found = {}
    for target in (None, *targets.available()):
        (d,) = [d for d in check(tmp_path, text, target).diagnostics if d.id == "LBC703"]
        found[target] = d.severity.value
    assert found == {None: "warning", "haproxy": "warning", "f5": "warning", "f5-as3": "warning",
                     "nginx": "info", "envoy": "info"}


def test_per_node_session_limit_says_a_verastream_server_refuses_the_excess(tmp_path):
    """LBC701: a Verastream session server enforces its own limit (technical note 7021566, step 6), so the
    nodes' excess is refused there; a server without its own limit is simply sent more."""
    limited = PAIR.replace("port: 8080}", "port: 8080, max_sessions: 100}")
    messages = {}
    for profile in ("generic", "verastream"):
        text = limited.replace("    health: {tcp: true}\n", f"    profile: {profile}\n    health: {{tcp: true}}\n")
        (d,) = [d for d in check(tmp_path, text).diagnostics if d.id == "LBC701"]
        messages[profile] = d.message
    assert "refuses the sessions beyond its own limit" in messages["verastream"]
    assert "refuses" not in messages["generic"] and "up to a1: 2 x 100 = 200" in messages["generic"]
