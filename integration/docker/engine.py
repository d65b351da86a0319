"""A Docker engine for the tests: use one that answers, or start our own dockerd and stop it after.

Our dockerd is private to lbc: its own socket, pidfile, exec-root and data-root (images persist
there, so the image cache survives between runs). It creates no bridge and touches no iptables:
every container lbc starts uses host networking, so all traffic stays on 127.0.0.0/8.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Optional

import docker

SOCKET = "/run/lbc-docker.sock"
PIDFILE = "/run/lbc-dockerd.pid"
EXEC_ROOT = "/run/lbc-docker"
DATA_ROOT = "/var/lib/lbc-docker"
LOG = "/var/log/lbc-dockerd.log"
HOST = f"unix://{SOCKET}"

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class EngineError(RuntimeError):
    pass


@dataclass
class Engine:
    client: docker.DockerClient
    host: str                                   # value for DOCKER_HOST (the docker CLI, testinfra)
    proc: Optional[subprocess.Popen] = None     # set when we started dockerd ourselves

    @property
    def started_here(self) -> bool:
        return self.proc is not None


def _ping(host: str) -> Optional[docker.DockerClient]:
    try:
        client = docker.DockerClient(base_url=host, timeout=120)
        client.ping()
        return client
    except Exception:
        return None


def _candidates() -> list[str]:
    hosts = []
    if os.environ.get("DOCKER_HOST"):
        hosts.append(os.environ["DOCKER_HOST"])
    hosts.append(HOST)
    if os.path.exists("/var/run/docker.sock"):
        hosts.append("unix:///var/run/docker.sock")
    return hosts


def connect() -> Optional[Engine]:
    """An engine that already answers (DOCKER_HOST, ours, the system one), or None."""
    for host in _candidates():
        client = _ping(host)
        if client is not None:
            return Engine(client, host)
    return None


def _log_tail(n: int = 20) -> str:
    try:
        with open(LOG, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def start() -> Engine:
    """Connect to a running engine, or start our own dockerd and wait until it answers."""
    engine = connect()
    if engine is not None:
        return engine
    if shutil.which("dockerd") is None:
        raise EngineError("no Docker engine answers and dockerd is not installed "
                          "(apt-get install docker.io; `make test-deps` does it)")
    if os.geteuid() != 0:
        raise EngineError("starting dockerd needs root")
    _clear_stale_pidfile()
    for d in (EXEC_ROOT, DATA_ROOT):
        os.makedirs(d, exist_ok=True)
    cmd = ["dockerd", "--host", HOST, "--pidfile", PIDFILE, "--exec-root", EXEC_ROOT,
           "--data-root", DATA_ROOT,
           # host networking only: no docker0 bridge (a private range) and no firewall rules
           "--bridge=none", "--iptables=false", "--ip-masq=false", "--log-level=warn"]
    log = open(LOG, "ab")
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)   # a Ctrl-C of the tests must not kill it before cleanup
    finally:
        log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(f"dockerd exited with {proc.returncode}:\n{_log_tail()}")
        client = _ping(HOST)
        if client is not None:
            return Engine(client, HOST, proc)
        time.sleep(0.2)
    _terminate(proc)
    raise EngineError(f"dockerd did not answer within {START_TIMEOUT_S} s:\n{_log_tail()}")


def _clear_stale_pidfile() -> None:
    """dockerd refuses to start over a pidfile whose process is gone (e.g. after a SIGKILL)."""
    try:
        pid = int(open(PIDFILE).read().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        os.unlink(PIDFILE)
        return
    raise EngineError(f"a dockerd (pid {pid}, {PIDFILE}) is running but {SOCKET} does not answer")


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)   # dockerd stops its own containerd on SIGTERM
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def stop(engine: Engine) -> None:
    """Stop dockerd if we started it; an engine that was already running is left alone."""
    try:
        engine.client.close()
    finally:
        if engine.proc is not None:
            _terminate(engine.proc)


def leftover_processes(timeout_s: float = 10.0) -> list[str]:
    """Processes of our engine (dockerd, containerd, shims: all name EXEC_ROOT) still alive after
    stop(); waits up to timeout_s for them to exit first."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if EXEC_ROOT in cmd and state != "Z":      # a zombie is gone, only not yet reaped
                alive.append(f"{pid} {cmd[:120]}")
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
