"""One scenario's world: its folder, processes, certificates, backends, and the proxy under test.

    def test_something(env):
        a, b = env.backends("a", "b")
        lb = env.deploy(services={"app": {"servers": [a.server(), b.server()]}},
                        listeners=[{"name": "web", "routes": [{"service": "app"}]}])
        r = client.request(*lb.addr("web"))

deploy() writes the topology (a Python dict, dumped to YAML) into the test's folder, compiles it with
lbc for env.target, starts the proxy through the target's runner and waits for its listeners. A
listener without `vip`/`port` gets a fresh 127.0.0.x VIP and a free port. When lbc refuses the
topology only with LBC801 (the target declares a feature unsupported), deploy() raises
DeclaredUnsupported and the scenario is recorded as declared-unsupported; any other refusal fails.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import yaml

from lbc import targets as lbc_targets
from lbc.model import Topology
from lbc.pipeline import Options, check_file, render

from . import net
from .backends import Backend, Launcher, local_launcher, start_backend
from .certs import CA, CertFactory, Issued
from .net import Processes, Proc
from .runners import Runner


class DeclaredUnsupported(Exception):
    """lbc compile refused the scenario with LBC801 only: the target declares it cannot express it."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass
class Deployment:
    model: Topology
    files: dict[str, str]
    proc: Proc
    folder: str

    def addr(self, listener: str) -> tuple[str, int]:
        l = next(l for l in self.model.listeners if l.name == listener)
        return l.address, l.port

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class Env:
    target: str
    runner: Runner
    workdir: str
    procs: Processes
    certs: CertFactory
    ca: CA                                   # the run's CA: signs LB, server and client certificates
    launcher: Launcher = local_launcher
    vips: dict[str, str] = field(default_factory=dict)
    deployed: list[Deployment] = field(default_factory=list)
    _n: int = 0

    # ---------------------------------------------------------------- backends
    def backend(self, name: str, address: Optional[str] = None, **kw) -> Backend:
        """A backend process on a fresh 127.0.0.x address, or on `address` (a second port of a server)
        (kw: mode, tls, client_ca, proxy_protocol, health_path)."""
        return start_backend(self.procs, self.workdir, name, address or net.server_address(),
                             launcher=self.launcher, **kw)

    def backends(self, *names: str, **kw) -> list[Backend]:
        return [self.backend(n, **kw) for n in names]

    def cert(self, name: str, names=(), ca: Optional[CA] = None) -> Issued:
        return self.certs.issue(f"{name}-{self._next()}", ca or self.ca, names)

    def _next(self) -> int:
        self._n += 1
        return self._n

    # ---------------------------------------------------------------- topology
    def topology(self, services: dict, listeners: list[dict], certificates: Optional[dict] = None,
                 name: str = "scenario", top: Optional[dict] = None) -> dict:
        """top: further top-level keys (access_log, admin)."""
        doc: dict = {"lbc": 1, "name": name, "vips": {}, "services": services, "listeners": [], **(top or {})}
        if certificates:
            doc["certificates"] = certificates
        for l in listeners:
            l = dict(l)
            if "vip" not in l:
                vip = f"vip-{l['name']}"
                if vip not in self.vips:
                    self.vips[vip] = net.vip_address()
                l["vip"] = vip
            doc["vips"].setdefault(l["vip"], {"address": self.vips[l["vip"]]})
            if "port" not in l:
                l["port"] = net.free_port(doc["vips"][l["vip"]]["address"])
            doc["listeners"].append(l)
        return doc

    def compile(self, doc: dict, tag: str = "") -> tuple[Topology, dict[str, str]]:
        """Compile with lbc for this target: (model, files); DeclaredUnsupported on LBC801-only refusals."""
        path = os.path.join(self.workdir, f"topology{tag}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True)
        tgt = lbc_targets.get(self.target)
        result = check_file(path, Options(), tgt)
        if result.failed:
            errors = [d for d in result.diagnostics if d.fails]
            text = [f"{d.id}: {d.message}" for d in errors]
            if all(d.id == "LBC801" for d in errors):
                raise DeclaredUnsupported(text)
            raise AssertionError("lbc refused the scenario topology:\n" + "\n".join(text))
        return result.model, render(result.model, tgt)

    def deploy(self, services: dict, listeners: list[dict], certificates: Optional[dict] = None,
               top: Optional[dict] = None) -> Deployment:
        doc = self.topology(services, listeners, certificates, top=top)
        tag = f"-{len(self.deployed) + 1}" if self.deployed else ""
        model, files = self.compile(doc, tag)
        folder = os.path.join(self.workdir, f"lb{tag}")
        os.makedirs(folder, exist_ok=True)
        proc = self.runner.start(files, folder, model, self.procs)
        d = Deployment(model, files, proc, folder)
        self.deployed.append(d)
        return d


def server(b: Backend, **kw) -> dict:
    """A topology server entry for backend `b` (kw: weight, priority, max_sessions, state, direct_host, ports)."""
    entry = {"name": b.name, "address": b.address}
    if "ports" not in kw:
        entry["port"] = b.port
    entry.update(kw)
    return entry
