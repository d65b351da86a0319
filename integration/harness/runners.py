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


class HAProxyRunner:
    name = "haproxy"
    binary = "haproxy"

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc:
        from lbc.targets.haproxy import key_links
        folder = os.path.join(workdir, "haproxy")
        write_files(files, folder)
        # The README's deploy step: HAProxy 2.6 finds a separate key only at <certificate>.key.
        for link, key in key_links(model):
            if not os.path.exists(link):
                os.symlink(key, link)
        check = subprocess.run([self.binary, "-c", "-q", "-f", "haproxy.cfg"], cwd=folder,
                               capture_output=True, text=True, timeout=60)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c refused the compiled config:\n{check.stdout}{check.stderr}")
        proc = procs.start([self.binary, "-db", "-f", "haproxy.cfg"], "haproxy", cwd=folder,
                           log_path=os.path.join(workdir, "haproxy.log"))
        wait_for_listeners(proc, model)
        return proc


class NginxRunner:
    """nginx -p FOLDER -c nginx.conf: the compiled files in FOLDER, which is also the prefix where
    nginx writes its pid, logs and temp files (the Docker mode mounts it writable for that)."""
    name = "nginx"
    binary = "nginx"

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc:
        folder = os.path.join(workdir, "nginx")
        write_files(files, folder)
        argv = [self.binary, "-p", folder + os.sep, "-c", os.path.join(folder, "nginx.conf")]
        check = subprocess.run(argv + ["-t", "-q"], capture_output=True, text=True, timeout=60)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the compiled config:\n{check.stdout}{check.stderr}")
        # errors also to stderr, so the test's log of the proxy shows them
        proc = procs.start(argv + ["-g", "daemon off; error_log stderr warn;"], "nginx", cwd=folder,
                           log_path=os.path.join(workdir, "nginx.log"))
        wait_for_listeners(proc, model)
        return proc


class EnvoyRunner:
    """envoy -c envoy.json, with the admin interface moved to a free loopback port (the compiled
    default is fixed; a topology's own `admin:` is kept) and no hot-restart shared memory, so parallel
    runs cannot collide."""
    name = "envoy"
    binary = "envoy"

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc:
        folder = os.path.join(workdir, "envoy")
        write_files(files, folder)
        if model.admin is not None:      # the topology's admin endpoint (a free port the test chose)
            admin, override = model.admin.port, []
        else:
            admin = free_port("127.0.0.1")
            override = ["--config-yaml", json.dumps({"admin": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": admin}}}})]
        argv = [self.binary, "-c", "envoy.json", *override, "--log-level", "warning",
                # a free port is unique among running envoys: a base id no other run uses
                "--base-id", str(admin), "--disable-hot-restart"]
        check = subprocess.run(argv + ["--mode", "validate"], cwd=folder, capture_output=True, text=True, timeout=120)
        if check.returncode != 0:
            raise RuntimeError(f"envoy --mode validate refused the compiled config:\n{check.stdout}{check.stderr}")
        proc = procs.start(argv, "envoy", cwd=folder, log_path=os.path.join(workdir, "envoy.log"))
        wait_for_listeners(proc, model)
        return proc


RUNNERS: dict[str, Runner] = {r.name: r for r in (HAProxyRunner(), NginxRunner(), EnvoyRunner())}
DOCKER_RUNNERS: dict[str, Runner] = {}


def runners(docker: bool = False) -> dict[str, Runner]:
    return DOCKER_RUNNERS if docker else RUNNERS
