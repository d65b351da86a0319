"""S33 (CONFORMANCE.md) and `lbc apply`'s rollback triggers, on the real proxies.

The proxy runs the way the README's "Deploying" section documents it (HAProxy in master-worker
mode with a master CLI, nginx with its PID file in the folder, Envoy on the watched-files
bootstrap) from a config folder that `lbc apply` owns; the test starts it by PID and stops it.
Load: one client thread sending requests back to back on fresh connections, bounded in time.
"""
from __future__ import annotations

import collections
import fcntl
import json
import os
import socket
import threading
import time

import pytest
import yaml

from harness import client
from harness.cli import lbc
from harness.env import server
from harness.net import client_addresses, free_port, is_listening, vip_address, wait_until
from harness.outcomes import scenario

from lbc import targets as lbc_targets
from lbc.apply import Host, UsageError, apply
from lbc.pipeline import Options, check_file

pytestmark = [pytest.mark.integration]
CLIENT = client_addresses(1)[0]
LOAD_LIMIT = 20.0      # seconds: the load loop never runs longer


class Site:
    """A config folder, the proxy running from it, and `lbc apply` into it."""

    def __init__(self, env, vip: str, port: int):
        self.env, self.target = env, env.target
        self.dir = os.path.join(env.workdir, "cfg")
        os.makedirs(self.dir, exist_ok=True)
        self.vip, self.port = vip, port
        self.n = 0
        self.procs = []
        self.admins: list[str] = []
        self.socket = os.path.join(env.workdir, "master.sock")
        self.pid_file = os.path.join(env.workdir, "haproxy.pid")

    def doc(self, servers: list[dict], extra_listeners: list[dict] = (), **svc) -> dict:
        listeners = [{"name": "web", "vip": "v", "port": self.port, "routes": [{"service": "app"}]}]
        listeners += list(extra_listeners)
        return {"lbc": 1, "name": "s33", "vips": {"v": {"address": self.vip}},
                "services": {"app": {"servers": servers, **svc}}, "listeners": listeners}

    def host(self, **kw) -> Host:
        h = dict(timeout=10.0, admin=list(self.admins))
        if self.target == "haproxy":
            h["master_socket"] = self.socket
        h.update(kw)
        return Host(**h)

    def apply(self, doc: dict, **kw):
        self.n += 1
        path = os.path.join(self.env.workdir, f"topology-{self.n}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        tgt = lbc_targets.get(self.target)
        result = check_file(path, Options(), tgt)
        assert not result.failed, [d.message for d in result.diagnostics if d.fails]
        return apply(result.model, tgt, self.dir, self.host(**kw), source=path)

    def start(self):
        """Start the proxy on the installed files (an instance of a fleet for Envoy)."""
        log = os.path.join(self.env.workdir, f"{self.target}-{len(self.procs)}.log")
        binary = lbc_targets.spec(self.target).binary
        if self.target == "haproxy":
            argv = [binary, "-W", "-db", "-S", self.socket, "-p", self.pid_file, "-f", "haproxy.cfg"]
        elif self.target == "nginx":
            argv = [binary, "-p", self.dir + os.sep, "-c", os.path.join(self.dir, "nginx.conf"),
                    "-g", "daemon off; error_log stderr warn;"]
        else:
            admin = free_port("127.0.0.1")
            override = json.dumps({"admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                             "port_value": admin}}}})
            argv = [binary, "-c", "bootstrap.json", "--config-yaml", override, "--base-id", str(admin),
                    "--disable-hot-restart", "--log-level", "warning"]
            self.admins.append(f"http://127.0.0.1:{admin}")
        proc = self.env.procs.start(argv, self.target, cwd=self.dir, log_path=log)
        self.procs.append(proc)
        wait_until(lambda: proc.alive() and is_listening(self.vip, self.port), 30,
                   what=f"{self.target} listening")
        if self.target == "envoy":
            wait_until(lambda: _admin_ready(self.admins[-1]), 15, what="envoy admin")
        if self.target == "haproxy":  # on a loaded machine the master CLI answers a moment after the worker listens
            wait_until(lambda: _master_ready(self.socket), 30, what="haproxy master CLI")
        return proc


def _master_ready(socket_path: str) -> bool:
    from lbc.apply import master_cli
    try:
        return any(l.split()[1:2] == ["worker"] for l in master_cli(socket_path, "show proc", timeout=2).splitlines())
    except OSError:
        return False


def _admin_ready(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url + "/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Load:
    """Requests back to back on fresh connections until stopped (at most LOAD_LIMIT seconds)."""

    def __init__(self, vip: str, port: int):
        self.vip, self.port = vip, port
        self.log: list[tuple[float, str]] = []      # (time, server name or "error: ...")
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        deadline = time.monotonic() + LOAD_LIMIT
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            try:
                r = client.request(self.vip, self.port, "/", source=CLIENT, timeout=10)
                self.log.append((time.monotonic(), r.server if r.status == 200 else f"error: status {r.status}"))
            except OSError as e:
                self.log.append((time.monotonic(), f"error: {e}"))

    def __enter__(self):
        self.thread.start()
        wait_until(lambda: len(self.log) >= 20, 10, what="load running")
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(LOAD_LIMIT + 15)

    def failures(self) -> list[str]:
        return [s for _, s in self.log if s.startswith("error")]

    def since(self, t: float) -> collections.Counter:
        return collections.Counter(s for when, s in self.log if when >= t)

    def wait_for(self, n: int, after: float) -> None:
        wait_until(lambda: sum(self.since(after).values()) >= n, 10, what=f"{n} requests")


def _hold_port(address: str) -> tuple[socket.socket, int]:
    """A listening socket that a proxy cannot share (no SO_REUSEPORT): binding its port fails."""
    s = socket.socket()
    s.bind((address, 0))
    s.listen(1)
    return s, s.getsockname()[1]


def _site(env) -> Site:
    if env.target not in ("haproxy", "nginx", "envoy"):
        pytest.skip("lbc apply deploys haproxy, nginx and envoy")
    vip = vip_address()
    return Site(env, vip, free_port(vip))


def only(env, *targets):
    if env.target not in targets:
        pytest.skip(f"for {', '.join(targets)}")


def _missing_certificate(doc: dict) -> dict:
    """The same topology terminating TLS with a certificate file that is not there: lbc compiles it
    (LBC106 is a warning), the proxy's own check refuses it."""
    doc = json.loads(json.dumps(doc))
    doc["certificates"] = {"missing": {"cert": "certs/none.pem", "key": "certs/none.key", "names": ["x.test"]}}
    doc["listeners"][0]["tls"] = {"mode": "terminate", "certificates": ["missing"]}
    return doc


@scenario("S33")
@pytest.mark.conformance
def test_s33_reload_under_load(env, capsys):
    """Under continuous load: a server added and weights changed (applied, zero failed requests,
    the new server takes traffic), then a change the proxy refuses (its check: the old version
    keeps serving, still with zero failed requests)."""
    a, b, c = env.backends("a", "b", "c")
    site = _site(env)
    v1 = site.doc([server(a), server(b)])
    assert site.apply(v1, activate=False).result == "applied"
    site.start()
    # servers and weights, and a listener setting too (Envoy: new listener, clusters and endpoints)
    v2 = site.doc([server(a, weight=2), server(b), server(c)])
    v2["listeners"][0]["timeouts"] = {"client": "30s", "server": "30s"}
    with Load(site.vip, site.port) as load:   # running: 20 requests answered
        changed = site.apply(v2)
        assert changed.result == "applied", changed.text()
        after_change = time.monotonic()
        load.wait_for(100, after_change)
        refused = site.apply(_missing_certificate(v2))
        after_refusal = time.monotonic()
        load.wait_for(100, after_refusal)
    failed, total = load.failures(), len(load.log)
    with capsys.disabled():   # the figures CONFORMANCE.md asks for, shown without -s
        print(f"\nS33 {env.target}: {len(failed)} failed requests of {total} "
              f"(applied: {changed.path}; refused change: {refused.result})")
    assert failed == [], failed[:5]
    assert refused.result == "refused" and "refused the new configuration" in refused.error, refused.text()
    # the new server takes traffic after the change (a: weight 2, b and c: 1), and after the refusal
    got = load.since(after_change)
    assert got["c"] >= 10 and got["a"] > got["b"], got
    assert load.since(after_refusal)["c"] >= 10
    assert all(p.alive() for p in site.procs)
    assert site.apply(v2).result == "unchanged"


def test_rollback_when_the_proxy_refuses_at_reload(env):
    """Trigger 2: the check passes but the running proxy refuses the new version (a listener port
    another process holds): lbc rolls back, the old version keeps serving, nothing is lost under
    load. HAProxy would pause its listeners while it retries the bind (about 2 s of refused
    connections, seen without the pre-check): lbc binds the new addresses first and refuses."""
    a, b = env.backends("a", "b")
    site = _site(env)
    v1 = site.doc([server(a), server(b)])
    site.apply(v1, activate=False)
    site.start()
    holder, held = _hold_port(site.vip)
    try:
        taken = site.doc([server(a), server(b)], extra_listeners=[
            {"name": "taken", "vip": "v", "port": held, "routes": [{"service": "app"}]}])
        with Load(site.vip, site.port) as load:
            out = site.apply(taken)
            after = time.monotonic()
            load.wait_for(50, after)
    finally:
        holder.close()
    failed = load.failures()
    print(f"\nrefused at reload, {env.target}: {len(failed)} failed requests of {len(load.log)}")
    if env.target == "haproxy":
        assert out.result == "refused" and "in use by another process" in out.error, out.text()
    else:
        assert out.result == "rolled-back" and out.code == 1, out.text()
    assert set(load.since(after)) == {"a", "b"}, load.since(after)
    assert failed == [], failed[:5]
    assert all(p.alive() for p in site.procs)
    with open(os.path.join(site.dir, ".lbc", "manifest.json")) as f:
        manifest = f.read()
    assert site.apply(v1).result == "unchanged", manifest


def test_rollback_when_the_check_refuses(env):
    """Trigger 1: the proxy's own check (haproxy -c, nginx -t, envoy --mode validate) refuses the
    new version: nothing in the folder changes, nothing is reloaded."""
    a = env.backend("a")
    site = _site(env)
    assert site.apply(site.doc([server(a)]), activate=False).result == "applied"
    before = {f: open(os.path.join(site.dir, f)).read() for f in os.listdir(site.dir)
              if f.endswith((".cfg", ".conf", ".json"))}
    out = site.apply(_missing_certificate(site.doc([server(a)])), activate=False)
    assert out.result == "refused" and out.code == 1, out.text()
    assert {f: open(os.path.join(site.dir, f)).read() for f in before} == before


def test_rollback_when_a_probe_fails(env):
    """Trigger 3: the new version runs but a probe URL does not answer: the old version returns."""
    a, b = env.backends("a", "b")
    site = _site(env)
    site.apply(site.doc([server(a)]), activate=False)
    site.start()
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}/"
    out = site.apply(site.doc([server(a), server(b)]), probes=[dead], timeout=3.0)
    assert out.result == "rolled-back" and out.code == 1, out.text()
    assert "probe" in out.error
    got = collections.Counter(client.request(site.vip, site.port, "/", source=CLIENT).server for _ in range(20))
    assert got == {"a": 20}, got
    # the same change with a live probe is applied
    live = f"http://{site.vip}:{site.port}/"
    assert site.apply(site.doc([server(a), server(b)]), probes=[live]).result == "applied"
    # an nginx worker of the old generation may still take a connection just after the reload
    wait_until(lambda: client.request(site.vip, site.port, "/", source=CLIENT).server == "b", 10,
               what="the new server answering")
    got = collections.Counter(client.request(site.vip, site.port, "/", source=CLIENT).server for _ in range(20))
    assert set(got) == {"a", "b"}, got


def test_refused_when_the_proxy_is_not_running(env):
    """Trigger 4: the master process is gone: refused before the swap, the folder is unchanged."""
    only(env, "haproxy", "nginx")
    a, b = env.backends("a", "b")
    site = _site(env)
    site.apply(site.doc([server(a)]), activate=False)
    proc = site.start()
    proc.stop()
    manifest = os.path.join(site.dir, ".lbc", "manifest.json")
    before = open(manifest).read()
    out = site.apply(site.doc([server(a), server(b)]), timeout=3.0)
    assert out.result == "refused" and out.code == 1, out.text()
    assert open(manifest).read() == before


def test_haproxy_runtime_api_without_reload(env):
    """A weight change and a server on hold/down go through the runtime API: no new worker."""
    only(env, "haproxy")
    from lbc.apply import master_cli
    a, b = env.backends("a", "b")
    site = _site(env)
    site.apply(site.doc([server(a), server(b)]), activate=False)
    site.start()
    before = master_cli(site.socket, "show proc")
    worker = [l.split()[0] for l in before.splitlines() if " worker " in f" {l} "]
    out = site.apply(site.doc([server(a, weight=3), server(b, state="down")]))
    assert out.result == "applied" and out.path == "runtime API, no reload", out.text()
    after = master_cli(site.socket, "show proc")
    assert [l.split()[0] for l in after.splitlines() if " worker " in f" {l} "] == worker
    got = collections.Counter(client.request(site.vip, site.port, "/", source=CLIENT).server for _ in range(20))
    assert got == {"a": 20}, got
    # back to ready: also without a reload
    out = site.apply(site.doc([server(a, weight=3), server(b)]))
    assert out.path == "runtime API, no reload", out.text()
    wait_until(lambda: client.request(site.vip, site.port, "/", source=CLIENT).server == "b", 5, what="b back")
    # a new server needs a reload, and apply says so
    c = env.backend("c")
    assert site.apply(site.doc([server(a, weight=3), server(b), server(c)])).path == "reload"


def test_envoy_fleet_follows_one_apply(env):
    """Two Envoys watching the same files take one change without a restart (same PIDs)."""
    only(env, "envoy")
    a, b = env.backends("a", "b")
    site = _site(env)
    site.apply(site.doc([server(a)]), activate=False)
    first = site.start()
    # the second process: its own admin port, the same files; Envoy binds listeners with
    # SO_REUSEPORT, so both accept on the VIP.
    second = site.start()
    pids = (first.pid, second.pid)
    out = site.apply(site.doc([server(a), server(b, weight=3)]))
    assert out.result == "applied" and out.path == "endpoint files, no reload", out.text()
    assert "2 Envoy process(es) run the new version" in out.text()
    assert first.alive() and second.alive() and (first.pid, second.pid) == pids
    got = collections.Counter(client.request(site.vip, site.port, "/", source=CLIENT).server for _ in range(40))
    assert got["b"] > got["a"] > 0, got


def test_a_second_apply_waits_for_the_lock(env):
    only(env, "haproxy")
    a = env.backend("a")
    site = _site(env)
    site.apply(site.doc([server(a)]), activate=False)
    with open(os.path.join(site.dir, ".lbc", "lock"), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UsageError, match="another lbc apply is running"):
            site.apply(site.doc([server(a, weight=2)]))


def test_cli_exit_codes(env):
    """The codes the README's pipeline relies on: 0 applied/unchanged, 1 rolled back, 2 usage."""
    only(env, "haproxy")
    a, b = env.backends("a", "b")
    site = _site(env)
    site.apply(site.doc([server(a)]), activate=False)
    site.start()
    path = os.path.join(env.workdir, "cli.yaml")

    def apply_cli(doc, *args):
        with open(path, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        return lbc("apply", path, "-t", "haproxy", "--config-dir", site.dir, "--master-socket", site.socket, *args,
                   timeout=120)
    r = apply_cli(site.doc([server(a), server(b)]))
    assert r.returncode == 0 and "applied (reload)" in r.stdout, r.stdout + r.stderr
    r = apply_cli(site.doc([server(a), server(b)]))
    assert r.returncode == 0 and "nothing to change" in r.stdout
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}/"
    r = apply_cli(site.doc([server(a)]), "--probe", dead, "--timeout", "2", "--format", "json")
    assert r.returncode == 1 and json.loads(r.stdout)["result"] == "rolled-back", r.stdout + r.stderr
    r = apply_cli(site.doc([server(a)]), "--config-dir", os.path.join(env.workdir, "nowhere"))
    assert r.returncode == 2 and "not a folder" in r.stderr
