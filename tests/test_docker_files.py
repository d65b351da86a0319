"""`lbc compile --docker`: the Dockerfile and compose.yaml written beside the compiled files.

What a container does with them is proven in integration/docker/test_user_files.py (it builds
and runs them); here: the paths reach both files intact whatever characters they hold, only
the balancer's own secrets are mounted, and the output is deterministic.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from lbc import docker_files as df

from helpers import check_text

# Every character that means something to YAML, compose interpolation, a shell or a Dockerfile.
HOSTILE_DIR = "certs $HOME ${X} \"q\" 'a' #h ;x {b} %p \\ é"


def topology(folder) -> str:
    d = folder / "certs"
    d.mkdir(parents=True)
    for f in ("web.pem", "web.key", "ca.pem", "client-ca.pem", "pass.pem"):
        (d / f).write_text("not read: names are given\n")
    return """
        lbc: 1
        name: Shop_1
        vips:
          v: {address: 127.0.0.10}
        certificates:
          web: {cert: certs/web.pem, key: certs/web.key, names: [web.example.com]}
          pass: {cert: certs/pass.pem, names: [pass.example.com]}
        services:
          app:
            servers:
              - {name: a1, address: 127.0.0.11, port: 8080}
            upstream_tls: {ca: certs/ca.pem, verify_name: app.internal}
          raw:
            servers:
              - {name: r1, address: 127.0.0.12, port: 8443}
        listeners:
          - name: https
            vip: v
            port: 8443
            tls: {mode: terminate, certificates: [web], client_auth: require, client_ca: certs/client-ca.pem}
            routes: [{service: app}]
          - name: tls-pass
            vip: v
            port: 9443
            protocol: tcp
            tls: {mode: passthrough, certificates: [pass]}
            routes: [{hosts: [pass.example.com], service: raw}]
    """


def model_of(tmp_path, dirname: str = "project"):
    """The schema restricts the paths a topology names, but not the folder the topology sits in."""
    folder = tmp_path / dirname
    text = topology(folder)
    result = check_text(folder, text)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    return result.model


def compose_value(s: str) -> str:
    """What docker compose makes of a string: `$$` is a literal dollar (no other `$` is emitted)."""
    assert re.search(r"(?<!\$)\$(?!\$)", s.replace("$$", "")) is None
    return s.replace("$$", "$")


def test_only_the_balancers_own_files_are_mounted(tmp_path):
    model = model_of(tmp_path)
    assert df.mounted_files(model) == sorted(f"certs/{f}" for f in ("web.pem", "web.key", "ca.pem", "client-ca.pem"))


@pytest.mark.parametrize("target", df.supported())
def test_hostile_paths_reach_compose_intact(tmp_path, target):
    model = model_of(tmp_path, HOSTILE_DIR)
    out = df.docker_files(model, target, {"main.cfg": "x"}, str(tmp_path / "out" / target))
    doc = yaml.safe_load(out[df.COMPOSE])
    svc = doc["services"][target]
    mounts = [(compose_value(v["source"]), compose_value(v["target"]), v["read_only"]) for v in svc["volumes"]]
    # relative paths: the file lbc read beside the topology, named from the output folder (where
    # compose.yaml is), mounted where the proxy resolves the path, from its config folder
    here, there = f"../../{HOSTILE_DIR}", df.RUNTIMES[target].config_dir
    want = [(f"{here}/{p}", f"{there}/{p}", True) for p in df.mounted_files(model)]
    if target == "haproxy":    # HAProxy 2.6 looks for the key beside the certificate, as <cert>.key
        want.append((f"{here}/certs/web.key", f"{there}/certs/web.pem.key", True))
    assert mounts == want
    assert svc["network_mode"] == "host" and svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
    assert svc["user"] == "root" and svc["security_opt"] == ["no-new-privileges:true"]
    assert svc["image"] == f"lbc-shop_1-{target}"   # image names must be lower case


@pytest.mark.parametrize("target", df.supported())
def test_dockerfile_copies_every_compiled_file(tmp_path, target):
    model = model_of(tmp_path)
    compiled = {"b.cfg": "", "maps/hosts.map": "", "README.md": ""}
    text = df.docker_files(model, target, compiled, str(tmp_path / "out"))[df.DOCKERFILE]
    copies = [json.loads(l[len("COPY "):]) for l in text.splitlines() if l.startswith("COPY ")]
    rt = df.RUNTIMES[target]
    assert copies == [[rel, f"{rt.config_dir}/{rel}"] for rel in sorted(compiled)]
    cmd = [l for l in text.splitlines() if l.startswith("CMD ")]
    argv = json.loads(cmd[0][len("CMD "):])
    assert argv[:2] == ["sh", "-c"] and argv[2].endswith("exec " + shlex.join(rt.command))
    assert f"{rt.config_dir}/{rt.main}" in rt.command
    # no secret is baked into the image
    assert "key" not in text.lower().replace("keys", "")


@pytest.mark.parametrize("rel", ["../etc/passwd", "/abs.cfg", "a b.cfg", "x$Y.cfg", 'q".cfg', "a\nRUN x"])
def test_dockerfile_refuses_paths_it_cannot_quote(tmp_path, rel):
    with pytest.raises(ValueError):
        df.docker_files(model_of(tmp_path), "haproxy", {rel: ""}, str(tmp_path / "out"))


def test_refuses_targets_without_a_container(tmp_path):
    with pytest.raises(ValueError, match="--docker is available for"):
        df.docker_files(model_of(tmp_path), "f5", {"bigip.conf": ""}, str(tmp_path / "out"))


def test_refuses_to_overwrite_a_compiled_file(tmp_path):
    with pytest.raises(ValueError, match="already writes"):
        df.docker_files(model_of(tmp_path), "haproxy", {"Dockerfile": ""}, str(tmp_path / "out"))


@pytest.mark.parametrize("target", df.supported())
def test_deterministic_wherever_the_checkout_lies(tmp_path, target):
    model = model_of(tmp_path / "a")
    one = df.docker_files(model, target, {"a": "1"}, str(tmp_path / "a" / "out"))
    assert one == df.docker_files(model, target, {"a": "1"}, str(tmp_path / "a" / "out"))
    assert one == df.docker_files(model_of(tmp_path / "b" / "c"), target, {"a": "1"}, str(tmp_path / "b" / "c" / "out"))
    assert str(tmp_path) not in one[df.COMPOSE] + one[df.DOCKERFILE]


def test_no_files_no_volumes(tmp_path):
    result = check_text(tmp_path, """
        lbc: 1
        name: plain
        vips: {v: {address: 127.0.0.10}}
        services:
          app: {servers: [{name: a1, address: 127.0.0.11, port: 8080}]}
        listeners:
          - {name: web, vip: v, port: 8080, routes: [{service: app}]}
    """)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    doc = yaml.safe_load(df.compose(result.model, "envoy", str(tmp_path / "out")))
    assert "volumes" not in doc["services"]["envoy"]


@pytest.mark.parametrize("configure,kept", [
    ("--with-stream_ssl_module --with-stream=dynamic --with-mail", True),     # Debian: the module is a file
    ("--with-mail --with-stream --with-stream_ssl_module", False),            # nginx.org build: built in
    ("--with-http_ssl_module --with-stream", False),
])
def test_nginx_build_step_keeps_load_module_only_for_a_dynamic_stream_module(tmp_path, configure, kept):
    stub = tmp_path / "bin" / "nginx"
    stub.parent.mkdir()
    stub.write_text(f"#!/bin/sh\necho 'nginx version: nginx/1.22.1' >&2\necho 'configure arguments: {configure}' >&2\n")
    stub.chmod(0o755)
    (tmp_path / "modules.conf").write_text('load_module "/usr/lib/nginx/modules/ngx_stream_module.so";\n')
    env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", df.RUNTIMES["nginx"].prepare], cwd=tmp_path, env=env, check=True, timeout=10)
    assert ("load_module" in (tmp_path / "modules.conf").read_text()) is kept


@pytest.mark.parametrize("target", df.supported())
def test_absolute_paths_are_mounted_at_their_own_path(tmp_path, target):
    pki = tmp_path / "pki"
    pki.mkdir()
    for f in ("web.pem", "web.key"):
        (pki / f).write_text("not read: names are given\n")
    result = check_text(tmp_path, f"""
        lbc: 1
        name: abs
        vips: {{v: {{address: 127.0.0.10}}}}
        certificates:
          web: {{cert: {pki}/web.pem, key: {pki}/web.key, names: [web.example.com]}}
        services:
          app: {{servers: [{{name: a1, address: 127.0.0.11, port: 8080}}]}}
        listeners:
          - {{name: web, vip: v, port: 8443, tls: {{mode: terminate, certificates: [web]}}, routes: [{{service: app}}]}}
    """)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    want = [(f"{pki}/web.key", f"{pki}/web.key"), (f"{pki}/web.pem", f"{pki}/web.pem")]
    if target == "haproxy":
        want.append((f"{pki}/web.key", f"{pki}/web.pem.key"))
    assert df.mounts(result.model, target, str(tmp_path / "out")) == want


VIP_SCRIPT_CASES = [
    # (VIP, /proc/net/fib_trie lines, nonlocal bind, starts)
    ("192.0.2.20", "     |-- 192.0.2.20\n        /32 host LOCAL\n", "0", True),
    ("192.0.2.20", "     |-- 192.0.2.200\n        /32 host LOCAL\n     |-- 192.0.2.20\n        /32 link BROADCAST\n", "0", False),
    ("192.0.2.20", "", "1", True),     # a VRRP backup: keepalived brings the VIP, the proxy binds it early
]


@pytest.mark.parametrize("vip,trie,nonlocal_bind,starts", VIP_SCRIPT_CASES)
def test_start_script_stops_with_a_clear_message_when_the_vip_is_missing(tmp_path, vip, trie, nonlocal_bind, starts):
    # The real script, run by sh against stand-ins for the two /proc files; the proxy is `echo`.
    (tmp_path / "trie").write_text(trie)
    (tmp_path / "nonlocal").write_text(nonlocal_bind + "\n")
    check = df._vip_check(vip).replace("/proc/net/fib_trie", str(tmp_path / "trie"))
    check = check.replace("/proc/sys/net/ipv4/ip_nonlocal_bind", str(tmp_path / "nonlocal"))
    r = subprocess.run(["sh", "-c", check + " && echo started"], capture_output=True, text=True, timeout=10)
    assert (r.returncode == 0 and r.stdout == "started\n") is starts
    if not starts:
        assert r.stderr == f"lbc: VIP {vip} is not an address of this host; add it (ip address add) or let " \
                           "keepalived hold it, then start again\n"


def test_loopback_and_wildcard_vips_need_no_check():
    assert df._vip_check("127.0.0.20") is None and df._vip_check("0.0.0.0") is None and df._vip_check("::1") is None
    assert "/proc/net/if_inet6" in df._vip_check("2001:db8::1") and "20010db8000000000000000000000001 " in df._vip_check("2001:db8::1")


@pytest.mark.parametrize("target", df.supported())
def test_docker_compose_reads_the_files_from_any_checkout(tmp_path, target):
    """The real docker-compose (`config` needs no engine) finds every mounted file through the
    relative paths, and two checkouts in different places produce the same bytes."""
    exe = shutil.which("docker-compose")
    if not exe:
        pytest.skip("docker-compose is not installed (.ci/deps installs it)")
    written = []
    for checkout in ("one", "deep/two"):
        folder = tmp_path / checkout
        folder.mkdir(parents=True)   # the certificates are absent, as in CI (acknowledged LBC106)
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "examples", "hacloud.yaml"), folder / "hacloud.yaml")
        r = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "compile", "hacloud.yaml",
                            "-t", target, "-o", f"out/{target}", "--docker", "-q"],
                           cwd=str(folder), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out = folder / "out" / target
        written.append((out / df.COMPOSE).read_bytes() + (out / df.DOCKERFILE).read_bytes())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        cfg = subprocess.run([exe, "config"], cwd=str(out), capture_output=True, text=True, timeout=60, env=env)
        assert cfg.returncode == 0, cfg.stderr
        sources = sorted(v["source"] for v in yaml.safe_load(cfg.stdout)["services"][target]["volumes"])
        want = ["hacloud.example.com.key", "hacloud.example.com.pem", "internal-ca.pem"]
        want += ["hacloud.example.com.key"] if target == "haproxy" else []   # also at <cert>.key for HAProxy
        assert sources == sorted(str(folder / "certs" / f) for f in want), sources
    assert written[0] == written[1]


@pytest.mark.parametrize("target", ["nginx", "envoy"])
def test_access_log_files_and_metrics(tmp_path, target):
    """A log file named by an absolute path is written on the host (its folder mounted read-write,
    the only writable mount); stdout logs and the admin endpoint are named in compose.yaml's head."""
    text = topology(tmp_path / "p").replace("        listeners:", "        admin: {port: 9100}\n"
                                            "        access_log: {to: stdout}\n        listeners:")
    text = text.replace("routes: [{service: app}]", "routes: [{service: app}]\n"
                        "            access_log: {to: file, file: /var/log/lbc/access.log}")
    result = check_text(tmp_path / "p", text)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    out = df.docker_files(result.model, target, {"main.cfg": "x"}, str(tmp_path / "out"))
    svc = yaml.safe_load(out[df.COMPOSE])["services"][target]
    assert [v for v in svc["volumes"] if not v["read_only"]] == [
        {"type": "bind", "source": "/var/log/lbc", "target": "/var/log/lbc", "read_only": False}]
    head = out[df.COMPOSE].split("services:")[0]
    assert "docker-compose logs" in head and "127.0.0.1:9100" in head and "/var/log/lbc" not in head
