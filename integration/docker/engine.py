"""A Docker engine for the tests: use one that answers, or start our own dockerd, and stop ours
when the last run using it ends.

Our dockerd is private to lbc: its own socket, pidfile, exec-root and data-root (images persist
there, so the image cache survives between runs). It creates no bridge and touches no iptables:
every container lbc starts uses host networking, so all traffic stays on 127.0.0.0/8.

Several test runs may share the machine. Each run holds a shared lock on USE_LOCK while it uses
our engine; at the end it stops our dockerd only if it can take that lock exclusively, i.e. no
other run is using it (this also stops a dockerd left behind by a killed run). Starting and
stopping happen under START_LOCK, so two runs never start or stop at the same time. An engine that
is not ours (DOCKER_HOST, the system's) is used as is and never stopped.
"""
from __future__ import annotations

import fcntl
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
USE_LOCK = "/run/lbc-docker.lock"
START_LOCK = "/run/lbc-docker.start.lock"
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
    proc: Optional[subprocess.Popen] = None     # set when this run started dockerd
    lock_fd: Optional[int] = None               # shared lock on USE_LOCK while this run uses our engine

    @property
    def started_here(self) -> bool:
        return self.proc is not None

    @property
    def ours(self) -> bool:
        return self.host == HOST


def _ping(host: str) -> Optional[docker.DockerClient]:
    try:
        client = docker.DockerClient(base_url=host, timeout=120)
        client.ping()
        return client
    except Exception:
        return None


def _foreign_engine() -> Optional[Engine]:
    """An engine that is not ours and answers: DOCKER_HOST, then the system's socket."""
    hosts = []
    if os.environ.get("DOCKER_HOST") and os.environ["DOCKER_HOST"] != HOST:
        hosts.append(os.environ["DOCKER_HOST"])
    elif os.path.exists("/var/run/docker.sock"):
        hosts.append("unix:///var/run/docker.sock")
    for host in hosts:
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


class _Locked:
    """flock on a file for the duration of a with block."""

    def __init__(self, path: str, how: int):
        self.path, self.how = path, how

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, self.how)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def start() -> Engine:
    """An engine that answers: a foreign one, ours already running, or ours started now."""
    engine = _foreign_engine()
    if engine is not None:
        return engine
    with _Locked(START_LOCK, fcntl.LOCK_EX):
        fd = os.open(USE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            client = _ping(HOST)
            if client is not None:
                return Engine(client, HOST, lock_fd=fd)
            return _start_ours(fd)
        except BaseException:
            os.close(fd)
            raise


def _start_ours(fd: int) -> Engine:
    if shutil.which("dockerd") is None:
        raise EngineError("no Docker engine answers and dockerd is not installed "
                          "(apt-get install docker.io; `make test-deps` does it)")
    if os.geteuid() != 0:
        raise EngineError("starting dockerd needs root")
    _stop_pid_in_pidfile()               # one left by a killed run whose socket no longer answers
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
            return Engine(client, HOST, proc, fd)
        time.sleep(0.2)
    _terminate_popen(proc)
    raise EngineError(f"dockerd did not answer within {START_TIMEOUT_S} s:\n{_log_tail()}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_pid_in_pidfile() -> None:
    """SIGTERM the dockerd named in our pidfile (if it is a dockerd) and wait for it to exit."""
    try:
        pid = int(open(PIDFILE).read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            is_ours = f.read().split(b"\0")[0].endswith(b"dockerd")
    except (OSError, ValueError):
        is_ours = False
    if is_ours:
        os.kill(pid, signal.SIGTERM)      # dockerd stops its own containerd on SIGTERM
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    try:
        os.unlink(PIDFILE)
    except FileNotFoundError:
        pass


def _terminate_popen(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def stop(engine: Engine) -> bool:
    """End this run's use of the engine; stop our dockerd if no other run uses it. True if stopped."""
    engine.client.close()
    if engine.lock_fd is None:
        return False                      # a foreign engine: never ours to stop
    fd, engine.lock_fd = engine.lock_fd, None
    with _Locked(START_LOCK, fcntl.LOCK_EX):
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False              # another run uses it: the last one out stops it
            if engine.proc is not None:
                _terminate_popen(engine.proc)
            _stop_pid_in_pidfile()
            return True
        finally:
            os.close(fd)                  # releases this run's lock


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
            except OSError:
                continue
            if EXEC_ROOT in cmd and _alive(int(pid)):      # a zombie is gone, only not yet reaped
                alive.append(f"{pid} {cmd[:120]}")
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
