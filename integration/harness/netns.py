"""Network namespaces for the redundant-pair scenario (S34): a hub with a bridge, one namespace per
balancer node, veth pairs between them. Every address (192.0.2.0/24, TEST-NET-1) exists only
inside these namespaces, which are not connected to the host's own network; teardown() deletes
them, and with them every interface and address the lab made.

    lab = Lab("s34")
    lab.hub(["192.0.2.1/24", "192.0.2.150/24", ...])      # backends and clients live in the hub
    lab.node("lb1", "192.0.2.2/24")                        # interface eth0 inside the node's namespace
    with lab.inside(lab.hub_ns):                           # sockets opened here belong to the hub
        client.request(...)
    lab.teardown()

Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2; unavailable() says why not, for the skip.
"""
from __future__ import annotations

import ctypes
import ipaddress
import os
import subprocess
from contextlib import contextmanager
from typing import Optional, Sequence

CLONE_NEWNET = 0x40000000
BRIDGE = "br0"
NODE_IF = "eth0"
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)


def unavailable() -> Optional[str]:
    """Why network namespaces cannot be made here, or None when they can (tried, then removed)."""
    probe = f"lbc-probe-{os.getpid()}"
    try:
        made = _ip("netns", "add", probe)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run `ip netns add` ({e})"
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()} (needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    try:
        veth = _ip("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        if veth.returncode != 0:
            return f"cannot create a veth pair in a namespace: {veth.stderr.strip()}"
        bridge = _ip("-n", probe, "link", "add", "b0", "type", "bridge")
        if bridge.returncode != 0:
            return f"cannot create a bridge in a namespace: {bridge.stderr.strip()}"
        return None
    finally:
        _ip("netns", "del", probe)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Lab:
    def __init__(self, tag: str):
        self.prefix = f"lbc-{tag}-{os.getpid()}"
        self.namespaces: list[str] = []
        self.hub_ns = f"{self.prefix}-hub"

    def _must(self, *args: str) -> str:
        done = _ip(*args)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def _netns(self, name: str) -> None:
        self._must("netns", "add", name)
        self.namespaces.append(name)
        self._must("-n", name, "link", "set", "lo", "up")

    def hub(self, addresses: Sequence[str]) -> None:
        """The hub namespace: a bridge holding `addresses` (backends and clients bind them)."""
        self._netns(self.hub_ns)
        self._must("-n", self.hub_ns, "link", "add", BRIDGE, "type", "bridge")
        for a in addresses:
            self._must("-n", self.hub_ns, "addr", "add", a, "dev", BRIDGE)
        self._must("-n", self.hub_ns, "link", "set", BRIDGE, "up")

    def node(self, name: str, address: str) -> str:
        """A balancer node's namespace, wired to the hub's bridge by a veth pair (NODE_IF inside)."""
        ns = f"{self.prefix}-{name}"
        self._netns(ns)
        peer = f"v-{name}"[:15]
        self._must("-n", ns, "link", "add", NODE_IF, "type", "veth", "peer", "name", peer, "netns", self.hub_ns)
        self._must("-n", self.hub_ns, "link", "set", peer, "master", BRIDGE)
        self._must("-n", self.hub_ns, "link", "set", peer, "up")
        self._must("-n", ns, "addr", "add", address, "dev", NODE_IF)
        self._must("-n", ns, "link", "set", NODE_IF, "up")
        # a backup's proxy binds the VIP before the node holds it
        self.run(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"])
        return ns

    @staticmethod
    def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
        """argv run inside `ns` (`ip netns exec` execs it: the PID is the program's own)."""
        return ["ip", "netns", "exec", ns, *argv]

    def run(self, ns: str, argv: Sequence[str], timeout: float = 30) -> str:
        done = subprocess.run(self.exec_argv(ns, argv), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {ns}: {done.stdout}{done.stderr}")
        return done.stdout

    def addresses(self, ns: str, dev: str = NODE_IF) -> set[str]:
        out = _ip("-n", ns, "-o", "-4", "addr", "show", "dev", dev).stdout
        return {str(ipaddress.ip_interface(w[i + 1]).ip) for w in (l.split() for l in out.splitlines())
                for i, tok in enumerate(w) if tok == "inet"}

    def listening(self, ns: str, address: str, port: int) -> bool:
        out = _ip("netns", "exec", ns, "ss", "-Hltn").stdout
        return any(w.split()[3] == f"{address}:{port}" for w in out.splitlines() if len(w.split()) > 3)

    def connected(self, ns: str, port: int) -> bool:
        """An established TCP connection to or from `port` inside `ns` (e.g. HAProxy's peers link)."""
        out = _ip("netns", "exec", ns, "ss", "-Htn", "state", "established").stdout
        return any(f":{port} " in line + " " for line in out.splitlines())

    @contextmanager
    def inside(self, ns: str):
        """Sockets this thread opens in the block belong to namespace `ns`."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)

    def teardown(self) -> None:
        """Delete every namespace the lab made (their interfaces and addresses go with them)."""
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns)
        self.namespaces.clear()
