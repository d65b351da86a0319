"""Loopback addresses, free ports, readiness polling and process lifetimes.

Everything here stays on 127.0.0.0/8. Every wait is bounded in time; every process started
through Processes is stopped by its PID when the test ends (also on failure).
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from typing import Optional, Sequence

# Distinct ranges, so a VIP, a server and a client never share an address within a test.
_VIPS = itertools.cycle(range(10, 50))
_SERVERS = itertools.cycle(range(50, 150))
CLIENT_RANGE = range(150, 250)


def vip_address() -> str:
    return f"127.0.0.{next(_VIPS)}"


def server_address() -> str:
    return f"127.0.0.{next(_SERVERS)}"


def client_addresses(n: int) -> list[str]:
    """n distinct client source addresses (at most 100)."""
    if n > len(CLIENT_RANGE):
        raise ValueError("at most 100 client addresses")
    return [f"127.0.0.{CLIENT_RANGE[i]}" for i in range(n)]


def free_port(address: str) -> int:
    """A port the OS says is free on `address` right now (the proxy binds it moments later)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def is_listening(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A process started by a test. stop() ends it by its PID: SIGTERM, then SIGKILL."""

    def __init__(self, popen: subprocess.Popen, name: str, log_path: Optional[str] = None):
        self.popen = popen
        self.name = name
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL now (a crash, as the failover scenarios need) and reap."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, grace: float = 5.0) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        for f in (self.popen.stdout, self.popen.stderr):
            if f:
                f.close()

    def log(self) -> str:
        if self.log_path and os.path.exists(self.log_path):
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-20000:]
        return ""


class Processes:
    """Every process a test starts; stop_all() at teardown, newest first."""

    def __init__(self):
        self.procs: list[Proc] = []

    def start(self, argv: Sequence[str], name: str, *, cwd=None, log_path: Optional[str] = None,
              stdout=None) -> Proc:
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            popen = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=stdout if stdout is not None else log, stderr=log)
        finally:
            if log_path:
                log.close()
        proc = Proc(popen, name, log_path)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
