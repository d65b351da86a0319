"""Start conformance backends (backend.py) as processes and drive them."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from . import client
from .certs import CA, Issued
from .net import Proc, Processes

BACKEND_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backend.py")
READY_TIMEOUT = 15.0


@dataclass
class Backend:
    name: str
    address: str
    port: int
    proc: Proc
    tls: Optional[Issued] = None
    proxy_protocol: bool = False
    mode: str = "http"

    def set_health(self, body: Optional[str] = None, status: Optional[int] = None, ca: Optional[CA] = None) -> None:
        """Switch the health page (directly, not through the proxy)."""
        if self.proxy_protocol:
            raise ValueError("a PROXY-protocol backend takes no direct control requests")
        change = {k: v for k, v in (("body", body), ("status", status)) if v is not None}
        ctx = client.tls_context(ca, verify=False) if self.tls else None
        r = client.request(self.address, self.port, "/_lbc/health", method="POST", tls=ctx,
                           body=json.dumps(change).encode(), headers={"Content-Type": "application/json"})
        assert r.status == 200, r.text

    def active(self, ca: Optional[CA] = None) -> int:
        """Requests this backend is serving right now (asked directly, not through the proxy)."""
        ctx = client.tls_context(ca, verify=False) if self.tls else None
        return client.request(self.address, self.port, "/_lbc/active", tls=ctx).json()["active"]

    def checks(self, ca: Optional[CA] = None) -> dict:
        """{"checks": N, "last": what the last health page request looked like} (asked directly)."""
        ctx = client.tls_context(ca, verify=False) if self.tls else None
        return client.request(self.address, self.port, "/_lbc/checks", tls=ctx).json()

    def kill(self) -> None:
        """SIGKILL: the server vanishes as in a crash."""
        self.proc.kill()

    def stop(self) -> None:
        self.proc.stop()

    def alive(self) -> bool:
        return self.proc.alive()


# How a backend process is launched: argv -> (Proc). The Docker mode may replace it.
Launcher = Callable[[Processes, Sequence[str], str, str], Proc]


def local_launcher(procs: Processes, argv: Sequence[str], name: str, log_path: str) -> Proc:
    return procs.start([sys.executable, BACKEND_SCRIPT, *argv], name, log_path=log_path, stdout=subprocess.PIPE)


def read_ready(proc: Proc, timeout: float = READY_TIMEOUT) -> int:
    """The port from the backend's `READY <port>` line."""
    deadline = time.monotonic() + timeout
    out = proc.popen.stdout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not proc.alive():
            raise RuntimeError(f"backend {proc.name} did not start: {proc.log()[-2000:]}")
        ready, _, _ = select.select([out], [], [], min(left, 0.5))
        if ready:
            ch = os.read(out.fileno(), 1)
            if not ch:
                raise RuntimeError(f"backend {proc.name} exited: {proc.log()[-2000:]}")
            line += ch
    parts = line.decode().split()
    assert parts[0] == "READY", line
    return int(parts[1])


def start_backend(procs: Processes, workdir: str, name: str, address: str, *, mode: str = "http",
                  tls: Optional[Issued] = None, client_ca: Optional[CA] = None, proxy_protocol: bool = False,
                  health_path: str = "/health", port: int = 0, launcher: Launcher = local_launcher) -> Backend:
    argv = ["--name", name, "--listen", address, "--port", str(port), "--mode", mode, "--health-path", health_path]
    if tls:
        argv += ["--tls", tls.cert, tls.key]
    if client_ca:
        argv += ["--client-ca", client_ca.cert]
    if proxy_protocol:
        argv += ["--proxy-protocol"]
    proc = launcher(procs, argv, f"backend {name}", os.path.join(workdir, f"backend-{name}.log"))
    real_port = read_ready(proc)
    return Backend(name, address, real_port, proc, tls, proxy_protocol, mode)
