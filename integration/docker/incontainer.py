"""What testinfra checks inside a proxy container: the proxy runs, the sockets the topology asks
for are listening and belong to it, the configuration is read-only and the keys are private.

With host networking `ss` sees every socket of the host, but it names the owning process only
for processes of the container's own PID namespace: a socket owned by the proxy in the
container is proof that the container, not some host process, listens there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import testinfra

_USERS = re.compile(r'\("([^"]+)",pid=(\d+)')


@dataclass(frozen=True)
class Listen:
    address: str
    port: int
    proto: str = "tcp"

    def __str__(self) -> str:
        return f"{self.proto}://{self.address}:{self.port}"


def host(container: str):
    """A testinfra host for a container of the engine named by DOCKER_HOST."""
    return testinfra.get_host(f"docker://{container}")


def listening_owners(h, listen: Listen) -> set[str]:
    """Names of the container's processes that own a listening socket on listen."""
    flag = "-Hltnp" if listen.proto == "tcp" else "-Hlunp"
    out = h.check_output(f"ss {flag}")
    owners: set[str] = set()
    for line in out.splitlines():
        fields = line.split()
        local = next((f for f in fields if f.endswith(f":{listen.port}")), None)
        if local is None or local.rsplit(":", 1)[0].strip("[]") not in (listen.address, "*", "0.0.0.0"):
            continue
        owners.update(m.group(1) for m in _USERS.finditer(line))
    return owners


def check_proxy(container: str, *, process: str, listens: list[Listen], config_files: list[str],
                key_files: list[str] = ()) -> list[str]:
    """Every problem found (an empty list when the container is as it should be)."""
    h = host(container)
    problems = []
    procs = h.process.filter(comm=process)
    if not procs:
        names = sorted({p.comm for p in h.process.filter()})
        problems.append(f"no '{process}' process in the container (running: {names})")
    for listen in listens:
        owners = listening_owners(h, listen)
        if process not in owners:
            problems.append(f"{listen}: not listening in the container as {process} (owners seen: {sorted(owners)})")
    for path in config_files:
        f = h.file(path)
        if not f.is_file:
            problems.append(f"{path}: missing in the container")
        elif h.run("test -w %s", path).rc == 0:
            problems.append(f"{path}: writable in the container (the config must be mounted read-only)")
    for path in key_files:
        f = h.file(path)
        if not f.is_file:
            problems.append(f"{path}: key missing in the container")
        elif f.mode & 0o077:
            problems.append(f"{path}: key mode {f.mode:04o}, group or others have access")
    return problems
