"""Run a proxy or a backend in a container the way the local harness runs a process.

Every container: host networking (so it binds the 127.0.0.x addresses the topology gives and
reaches the backends there), the folders it reads mounted read-only at the same path as on the host
(so the command line and the paths inside the compiled config stay valid), a label that
names the test run (so a final sweep removes anything a crash left), and removal by stop().
"""
from __future__ import annotations

import os
import time
import uuid
from typing import Iterable, Optional

from lbc.targets import SPECS

RUN_LABEL = "lbc.test-run"
RUN_ID = uuid.uuid4().hex[:12]      # one per test session
COMPOSE_PREFIX = f"lbc{RUN_ID}"     # compose projects started by the tests (compose sets its own labels)

# target -> image built by images.py
IMAGES = {**{n: f"lbc/{n}" for n, s in SPECS.items() if s.runtime}, "backend": "lbc/backend"}

STOP_GRACE_S = 5


class ContainerError(RuntimeError):
    pass


class Container:
    """A started container; stop() removes it (always safe to call twice)."""

    def __init__(self, client, image: str, command: list[str], *, name: str,
                 ro: Iterable[str] = (), rw: Iterable[str] = (), user: Optional[str] = None,
                 workdir: Optional[str] = None, env: Optional[dict] = None):
        self.client = client
        self.name = name
        volumes = {os.path.abspath(p): {"bind": os.path.abspath(p), "mode": "ro"} for p in ro}
        volumes.update({os.path.abspath(p): {"bind": os.path.abspath(p), "mode": "rw"} for p in rw})
        self._c = client.containers.run(
            image, command, name=name, detach=True, network_mode="host", volumes=volumes,
            user=user, working_dir=workdir, environment=env or {},
            labels={RUN_LABEL: RUN_ID}, init=False, stdin_open=False, tty=False,
        )

    @property
    def id(self) -> str:
        return self._c.id

    def status(self) -> str:
        self._c.reload()
        return self._c.status

    def host_pid(self) -> int:
        """The PID of the container's main process on the host (0 when it has stopped)."""
        self._c.reload()
        return int(self._c.attrs["State"]["Pid"])

    def exit_code(self) -> Optional[int]:
        self._c.reload()
        state = self._c.attrs["State"]
        return None if state.get("Running") else int(state.get("ExitCode", -1))

    def logs(self, tail: int = 200) -> str:
        try:
            return self._c.logs(tail=tail).decode("utf-8", "replace")
        except Exception as e:       # the container may be gone already
            return f"(no logs: {e})"

    def signal(self, sig: str) -> None:
        self._c.kill(signal=sig)

    def stop(self) -> None:
        if self._c is None:
            return
        try:
            self._c.stop(timeout=STOP_GRACE_S)
        except Exception:
            pass
        try:
            self._c.remove(force=True, v=True)
        except Exception as e:
            if "No such container" not in str(e) and "404" not in str(e):
                raise
        self._c = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def unique_name(role: str) -> str:
    return f"lbc-{RUN_ID}-{role}-{uuid.uuid4().hex[:6]}"


def run(client, image: str, command: list[str], *, role: str, **kw) -> Container:
    return Container(client, image, command, name=unique_name(role), **kw)


def wait_running(container: Container, timeout_s: float = 30.0) -> None:
    """Fail fast with the container's logs if it exits during start-up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = container.status()
        if status == "running":
            return
        if status in ("exited", "dead"):
            raise ContainerError(f"{container.name} exited ({container.exit_code()}):\n{container.logs()}")
        time.sleep(0.1)
    raise ContainerError(f"{container.name} not running after {timeout_s} s:\n{container.logs()}")


def sweep(client) -> list[str]:
    """Force-remove every container of this test run that is still there; return their names."""
    removed = []
    for c in client.containers.list(all=True):
        labels = c.labels or {}
        if labels.get(RUN_LABEL) == RUN_ID or labels.get("com.docker.compose.project", "").startswith(COMPOSE_PREFIX):
            c.remove(force=True, v=True)
            removed.append(c.name)
    return removed
