"""Proxy runners: start a real proxy on lbc's compiled files, wait until it listens, stop it by PID.

RUNNERS[target] is an object with
  name                              the lbc target name
  available() -> bool               the proxy binary is installed
  start(files, workdir, model, procs) -> Proc
      write `files` (relative path -> text, as lbc compile writes them) under `workdir`, start the
      proxy through `procs` (so the test stops it by PID), and return once every listener of
      `model` accepts TCP connections (bounded wait; RuntimeError with the proxy's log otherwise).
A target adds its runner here. The Docker mode registers its own in DOCKER_RUNNERS.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Protocol

from lbc.model import Topology
from lbc.targets import TargetSpec, spec

from .net import Proc, Processes, free_port, is_listening, wait_until

START_TIMEOUT = 30.0


class Runner(Protocol):
    name: str

    def available(self) -> bool: ...

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc: ...


def write_files(files: dict[str, str], folder: str) -> None:
    for rel, text in sorted(files.items()):
        dest = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)


def wait_for_listeners(proc: Proc, model: Topology, timeout: float = START_TIMEOUT) -> None:
    """Poll every listener until it accepts a connection; fail fast if the proxy died."""
    def ready():
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()}")
        return all(is_listening(l.address, l.port) for l in model.listeners)
    try:
        wait_until(ready, timeout, what=f"{proc.name} listeners")
    except TimeoutError as e:
        raise RuntimeError(f"{e}\n{proc.log()}") from None


class _LocalRunner:
    """A proxy installed on this machine: its program, process name and check come from the target spec."""
    name = ""

    @property
    def spec(self) -> TargetSpec:
        return spec(self.name)

    @property
    def binary(self) -> str:
        return self.spec.binary or ""

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def check(self, folder: str, extra: tuple[str, ...] = ()) -> None:
        """The target's own check of the compiled folder (as lbc apply and the output README run it)."""
        main = os.path.join(folder, self.spec.main_file)
        r = subprocess.run(self.spec.check_command(main, prefix=folder + os.sep, quiet=True) + list(extra),
                           cwd=folder, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{self.spec.check_text(self.spec.main_file)} refused the compiled config:\n"
                               f"{r.stdout}{r.stderr}")


class HAProxyRunner(_LocalRunner):
    name = "haproxy"

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc:
        from lbc.targets.haproxy import key_links
        folder = os.path.join(workdir, "haproxy")
        write_files(files, folder)
        # The README's deploy step: HAProxy 2.6 finds a separate key only at <certificate>.key.
        for link, key in key_links(model):
            if not os.path.exists(link):
                os.symlink(key, link)
        self.check(folder)
        proc = procs.start([self.binary, "-db", "-f", "haproxy.cfg"], self.binary, cwd=folder,
                           log_path=os.path.join(workdir, "haproxy.log"))
        wait_for_listeners(proc, model)
        return proc


class NginxRunner(_LocalRunner):
    """nginx -p FOLDER -c nginx.conf: the compiled files in FOLDER, which is also the prefix where
    nginx writes its pid, logs and temp files (the Docker mode mounts it writable for that)."""
    name = "nginx"

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc:
        folder = os.path.join(workdir, "nginx")
        write_files(files, folder)
        argv = [self.binary, "-p", folder + os.sep, "-c", os.path.join(folder, "nginx.conf")]
        self.check(folder)
        # errors also to stderr, so the test's log of the proxy shows them
        proc = procs.start(argv + ["-g", "daemon off; error_log stderr warn;"], self.binary, cwd=folder,
                           log_path=os.path.join(workdir, "nginx.log"))
        wait_for_listeners(proc, model)
        return proc


class EnvoyRunner(_LocalRunner):
    """envoy -c envoy.json, with the admin interface moved to a free loopback port (the compiled
    default is fixed; a topology's own `admin:` is kept) and no hot-restart shared memory, so parallel
    runs cannot collide."""
    name = "envoy"

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc:
        folder = os.path.join(workdir, "envoy")
        write_files(files, folder)
        if model.admin is not None:      # the topology's admin endpoint (a free port the test chose)
            admin, instance = model.admin.port, ()
        else:
            admin = free_port("127.0.0.1")
            instance = ("--config-yaml", json.dumps({"admin": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": admin}}}}))
        # a free port is unique among running envoys: a base id no other run uses
        instance = (*instance, "--base-id", str(admin), "--disable-hot-restart")
        self.check(folder, instance)
        proc = procs.start([self.binary, "-c", "envoy.json", "--log-level", "warning", *instance], self.binary,
                           cwd=folder, log_path=os.path.join(workdir, "envoy.log"))
        wait_for_listeners(proc, model)
        return proc


RUNNERS: dict[str, Runner] = {r.name: r for r in (HAProxyRunner(), NginxRunner(), EnvoyRunner())}
DOCKER_RUNNERS: dict[str, Runner] = {}


def runners(docker: bool = False) -> dict[str, Runner]:
    return DOCKER_RUNNERS if docker else RUNNERS
