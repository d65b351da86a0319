"""`lbc apply` without a running proxy: the runtime-API delta, the Envoy watched-files layout, the
config folder's bookkeeping (foreign files, lock, manifest, stale files). The proxies themselves
are exercised in integration/test_apply.py (S33)."""
from __future__ import annotations

import fcntl
import json
import os

import pytest

from lbc import targets
from lbc.apply import Host, UsageError, apply, deployed_files, haproxy_runtime_delta
from lbc.targets.envoy import dynamic_files, eds_file

from helpers import check_text

TOPOLOGY = """\
lbc: 1
name: shop
vips: {pub: {address: 127.0.0.10}}
services:
  app:
    servers:
      - {name: a, address: 127.0.0.50, port: 8080}
      - {name: b, address: 127.0.0.51, port: 8080}
  named:
    servers:
      - {name: n, address: backend.example, port: 80}
listeners:
  - {name: web, vip: pub, port: 8000, routes: [{service: app}]}
  - {name: other, vip: pub, port: 8001, routes: [{service: named}]}
"""

CFG = """\
global
    default-path config

backend web.app.default
    balance roundrobin
    server a 127.0.0.50:8080 check
    server b 127.0.0.51:8080 check weight 2
"""


def model(tmp_path, text=TOPOLOGY):
    result = check_text(tmp_path, text)
    assert not result.failed, result.diagnostics
    return result.model


# ---------------------------------------------------------------- runtime API delta

def test_weights_and_maintenance_go_through_the_runtime_api():
    new = CFG.replace("server a 127.0.0.50:8080 check", "server a 127.0.0.50:8080 check weight 0").replace(
        "check weight 2", "check weight 2 disabled")
    assert haproxy_runtime_delta(CFG, new) == ["set server web.app.default/a weight 0",
                                               "set server web.app.default/b state maint"]
    assert haproxy_runtime_delta(new, CFG) == ["set server web.app.default/a weight 1",
                                               "set server web.app.default/b state ready"]


@pytest.mark.parametrize("change", [
    ("server b 127.0.0.51:8080", "server b 127.0.0.52:8080"),          # another address
    ("server b 127.0.0.51:8080 check", "server b 127.0.0.51:8080"),    # health check dropped
    ("balance roundrobin", "balance leastconn"),                       # not a server line
    ("    server b 127.0.0.51:8080 check weight 2\n", ""),             # a server removed
])
def test_anything_else_needs_a_reload(change):
    assert haproxy_runtime_delta(CFG, CFG.replace(*change)) is None


def test_no_change_is_no_runtime_delta():
    assert haproxy_runtime_delta(CFG, CFG) is None


# ---------------------------------------------------------------- Envoy watched files

def test_envoy_watched_files_layout(tmp_path):
    m = model(tmp_path)
    files = dynamic_files(m, "/etc/lbc-envoy")
    assert files == dynamic_files(m, "/etc/lbc-envoy")          # deterministic
    assert sorted(files) == sorted(["bootstrap.json", "lds.json", "cds.json", eds_file("app:default")])
    boot = json.loads(files["bootstrap.json"])
    assert "static_resources" not in boot
    assert boot["dynamic_resources"]["cds_config"]["path_config_source"]["path"] == "/etc/lbc-envoy/cds.json"
    clusters = {c["name"]: c for c in json.loads(files["cds.json"])["resources"]}
    # IP servers: endpoints in their own file; a DNS name stays in the cluster (EDS cannot resolve)
    assert clusters["app:default"]["type"] == "EDS" and "load_assignment" not in clusters["app:default"]
    assert clusters["named:default"]["type"] == "STRICT_DNS" and "load_assignment" in clusters["named:default"]
    eds = json.loads(files[eds_file("app:default")])
    assert eds["resources"][0]["cluster_name"] == "app:default"
    # a weight changes the endpoint file only
    heavier = dynamic_files(model(tmp_path, TOPOLOGY.replace("port: 8080}\n  named", "port: 8080, weight: 3}\n  named")),
                            "/etc/lbc-envoy")
    assert [r for r in files if files[r] != heavier[r]] == [eds_file("app:default")]


def test_compile_output_of_envoy_is_unchanged(tmp_path):
    m = model(tmp_path)
    assert sorted(targets.get("envoy").render(m)) == ["README.md", "envoy.json"]


# ---------------------------------------------------------------- the config folder

def host(**kw) -> Host:
    return Host(activate=False, binary="true", **kw)


def test_install_keep_previous_and_unchanged(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "certs").mkdir()                       # a file lbc did not write stays untouched
    (cfg / "certs" / "keep.pem").write_text("x")
    m = model(tmp_path)
    out = apply(m, targets.get("haproxy"), str(cfg), host())
    assert out.result == "applied" and out.code == 0, out.text()
    manifest = json.loads((cfg / ".lbc" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["README.md", "haproxy.cfg"]
    assert "expose-fd listeners" in (cfg / "haproxy.cfg").read_text()
    assert (cfg / "certs" / "keep.pem").read_text() == "x"
    assert not (cfg / ".lbc" / "stage").exists()
    assert apply(m, targets.get("haproxy"), str(cfg), host()).result == "unchanged"
    files, stale = deployed_files(m, targets.get("haproxy"), str(cfg))
    assert stale == set() and files["haproxy.cfg"] == (cfg / "haproxy.cfg").read_text()


def test_one_manifest_format_for_compile_and_apply_and_the_earlier_apply_format_still_reads(tmp_path):
    """lbc apply writes the manifest `lbc compile -o` writes (lbc.owned); a folder an earlier lbc apply
    wrote ({"files": {path: sha256}}) is still recognised as lbc's, and its next apply rewrites it."""
    from lbc import owned
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    m = model(tmp_path)
    assert apply(m, targets.get("haproxy"), str(cfg), host()).result == "applied"
    path = cfg / ".lbc" / "manifest.json"
    now = json.loads(path.read_text())
    assert now["lbc-output"] == 1 and now["target"] == "haproxy" and all(len(v) == 1 for v in now["files"].values())
    earlier = {"target": "haproxy", "topology": now["topology"], "files": {k: v[0] for k, v in now["files"].items()}}
    path.write_text(json.dumps(earlier, indent=1, sort_keys=True))
    assert owned.read(str(path)).files == now["files"]
    assert apply(m, targets.get("haproxy"), str(cfg), host()).result == "unchanged"
    (cfg / "README.md").unlink()                              # a change: the earlier manifest is rewritten
    assert apply(m, targets.get("haproxy"), str(cfg), host()).result == "applied"
    assert json.loads(path.read_text()) == now
    path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot be read"):
        apply(m, targets.get("haproxy"), str(cfg), host())


def test_stale_files_of_the_previous_version_are_removed(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    hosts = TOPOLOGY.replace("routes: [{service: app}]", "routes: [{hosts: [a.test], service: app}, {service: app}]")
    apply(model(tmp_path, hosts), targets.get("haproxy"), str(cfg), host())
    maps = os.listdir(cfg / "maps")
    assert maps
    out = apply(model(tmp_path), targets.get("haproxy"), str(cfg), host())
    assert "removed" in out.text() and os.listdir(cfg / "maps") == []
    assert sorted(os.listdir(cfg / ".lbc" / "previous" / "maps")) == maps


def test_a_file_lbc_did_not_write_is_never_overwritten(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "haproxy.cfg").write_text("# hand-written\n")
    out = apply(model(tmp_path), targets.get("haproxy"), str(cfg), host())
    assert out.result == "refused" and "was not written by lbc apply" in out.error
    assert (cfg / "haproxy.cfg").read_text() == "# hand-written\n"


def test_the_proxy_check_refusing_changes_nothing(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    out = apply(model(tmp_path), targets.get("haproxy"), str(cfg), Host(activate=False, binary="false"))
    assert out.result == "refused" and out.code == 1
    assert sorted(os.listdir(cfg)) == [".lbc"] and not (cfg / ".lbc" / "manifest.json").exists()


def test_one_apply_at_a_time(tmp_path):
    cfg = tmp_path / "cfg"
    (cfg / ".lbc").mkdir(parents=True)
    with open(cfg / ".lbc" / "lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UsageError, match="another lbc apply is running"):
            apply(model(tmp_path), targets.get("haproxy"), str(cfg), host())


def test_no_way_to_reload_is_a_usage_error_before_anything_changes(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    with pytest.raises(UsageError, match="give --pid-file, --reload-command or --master-socket"):
        apply(model(tmp_path), targets.get("haproxy"), str(cfg), Host(binary="true"))
    assert os.listdir(cfg) == [".lbc"] and os.listdir(cfg / ".lbc") == ["lock"]


def test_targets_apply_does_not_deploy(tmp_path):
    with pytest.raises(UsageError, match="supports haproxy, nginx, envoy"):
        apply(model(tmp_path), targets.get("f5-as3"), str(tmp_path), host())


def test_a_failed_reload_restores_the_files_and_a_failed_rollback_says_so(tmp_path):
    """A stand-in master (a sleeping process and its PID file) that never starts workers, and reload
    commands that fail: the previous files are put back, and since the old version cannot be shown
    running either, the result is rollback-failed (exit 4), not a silent success. (Rollbacks that
    succeed run against real proxies in integration/test_apply.py.)"""
    import subprocess
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    m = model(tmp_path)
    nginx = targets.get("nginx")
    assert apply(m, nginx, str(cfg), host()).result == "applied"
    master = subprocess.Popen(["sleep", "60"])
    try:
        (cfg / "nginx.pid").write_text(f"{master.pid}\n")
        changed = model(tmp_path, TOPOLOGY.replace("port: 8000", "port: 8002"))
        before = (cfg / "nginx.conf").read_text()
        # fails once (the new version), then succeeds (the rollback's reload): a marker file counts
        flag = tmp_path / "failed-once"
        once = f"sh -c 'test -e {flag} || {{ touch {flag}; exit 1; }}'"
        out = apply(changed, nginx, str(cfg), Host(binary="true", reload_command=once, timeout=1.0))
        # the rollback's reload "succeeds" but a stand-in master starts no worker: not verified
        assert out.result == "rollback-failed" and out.code == 4, out.text()
        assert "`sh -c" in out.error and (cfg / "nginx.conf").read_text() == before
        out = apply(changed, nginx, str(cfg), Host(binary="true", reload_command="false", timeout=1.0))
        assert out.result == "rollback-failed" and "restored the previous files" in out.text()
        assert (cfg / "nginx.conf").read_text() == before
    finally:
        master.kill()
        master.wait()
