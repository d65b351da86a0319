"""The Docker mode of the conformance harness: the same runners and backends, each process in a container.

The local runners (harness/runners.py) stay in charge: they write the compiled files, validate them
and choose the command line. They start the process through `procs.start(argv, ...)`; here that call
runs argv inside the target's image instead (`docker run --rm --init`, host network, the deployment
folder and the certificates mounted read-only at their own paths), so what runs in the container
is exactly what runs locally. Backends go the same way through the harness's launcher hook.

After start, testinfra checks inside the proxy container (incontainer.py); a problem fails the test.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from typing import Optional, Sequence

import docker

from harness.backends import BACKEND_SCRIPT
from harness.net import Proc, Processes
from harness.runners import DOCKER_RUNNERS, RUNNERS
from lbc.docker_files import mounted_files
from lbc.model import Topology
from lbc.targets import SPECS

import containers
import incontainer
from incontainer import Listen

# The proxy's process name inside its container, and the option whose value the proxy writes to.
PROCESS = {n: s.binary for n, s in SPECS.items() if s.runtime}   # the proxy's process name
WRITABLE_OPTION = {"nginx": "-p"}            # nginx -p PREFIX: pid, logs and temp files
STOP_GRACE_S = 5.0


def _client() -> docker.DockerClient:
    return docker.DockerClient(base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock", timeout=60)


def _in_image(program: str) -> str:
    """The host's program path as the image knows it: the images put every tool on PATH."""
    if os.path.abspath(program) == os.path.abspath(sys.executable):
        return "python3"
    return os.path.basename(program)


class ContainerProc(Proc):
    """A Proc whose process is `docker run` attached to a container: stop and kill act on the container."""

    def __init__(self, popen: subprocess.Popen, name: str, log_path: Optional[str], container: str):
        super().__init__(popen, name, log_path)
        self.container = container

    def _container_do(self, action: str, **kw) -> None:
        client = _client()
        try:
            getattr(client.containers.get(self.container), action)(**kw)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:     # already stopping or being removed (--rm)
            if e.status_code not in (404, 409):
                raise
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the container's processes now (a crash), as the failover scenarios need."""
        if self.alive():
            self._container_do("kill", signal="SIGKILL")
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        if self.alive():
            self._container_do("stop", timeout=int(grace))
            try:
                self.popen.wait(timeout=grace + 10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._container_do("remove", force=True)   # --rm removes it too; this covers a lost CLI
        for f in (self.popen.stdout, self.popen.stderr):
            if f:
                f.close()


class ContainerFront:
    """Looks like harness.net.Processes to a runner or launcher; runs each argv in `image`."""

    def __init__(self, procs: Processes, image: str, role: str, ro: Sequence[str] = (),
                 rw_option: Optional[str] = None, compiled: Optional[tuple[dict, str]] = None):
        self.procs = procs
        self.image = image
        self.role = role
        self.ro = list(ro)
        self.rw_option = rw_option
        self.compiled = compiled            # (files, workdir): kept read-only even inside a writable folder

    def start(self, argv: Sequence[str], name: str, *, cwd=None, log_path: Optional[str] = None,
              stdout=None) -> ContainerProc:
        argv = [_in_image(argv[0]), *argv[1:]]
        ro = set(self.ro)
        rw = set()
        for i, arg in enumerate(argv[1:], 1):
            if self.rw_option and argv[i - 1] == self.rw_option:
                rw.add(os.path.abspath(os.path.join(cwd or "", arg)))
            elif os.path.isabs(arg) and os.path.exists(arg):
                ro.add(arg)                 # a file the command names (a config, a certificate)
        if cwd:
            ro.add(os.path.abspath(cwd))
        if rw and self.compiled:
            # Inside a writable folder, the compiled files stay read-only (nested bind mounts).
            ro.update(p for p in _compiled_paths(*self.compiled) if any(p.startswith(d + os.sep) for d in rw))
        cname = containers.unique_name(self.role)
        cmd = [shutil.which("docker") or "docker", "run", "--rm", "--init", "--name", cname,
               "--network", "host", "--label", f"{containers.RUN_LABEL}={containers.RUN_ID}"]
        for path, mode in sorted([(p, "ro") for p in ro - rw] + [(p, "rw") for p in rw]):
            if "," in path:
                raise ValueError(f"cannot mount {path!r} (a comma ends a --mount field)")
            cmd += ["--mount", f"type=bind,source={path},target={path}" + (",readonly" if mode == "ro" else "")]
        if cwd:
            cmd += ["--workdir", os.path.abspath(cwd)]
        cmd += [self.image, *argv]
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=stdout if stdout is not None else log, stderr=log)
        finally:
            if log_path:
                log.close()
        proc = ContainerProc(popen, name, log_path, cname)
        self.procs.procs.append(proc)       # the test's Processes stops it at teardown, like any other
        return proc


def _compiled_paths(files: dict[str, str], workdir: str) -> list[str]:
    """Where the runner wrote the compiled files: the folder under workdir that holds all of them."""
    for folder, _, _ in os.walk(workdir):
        paths = [os.path.join(folder, rel) for rel in sorted(files)]
        if all(os.path.isfile(p) for p in paths):
            return paths
    raise AssertionError(f"the compiled files {sorted(files)} are not under {workdir}")


class DockerRunner:
    """The target's local runner, with its processes in the target's image, then checked inside."""

    def __init__(self, local):
        self.local = local
        self.name = local.name

    def available(self) -> bool:
        return True                         # the docker_env fixture builds the images

    def start(self, files: dict[str, str], workdir: str, model: Topology, procs: Processes) -> Proc:
        keys = sorted({model.certificate(c).key for l in model.listeners if l.tls.mode in ("terminate", "bridge")
                       for c in l.tls.certificates if model.certificate(c).key})
        # the folders of the balancer's certificates (runners may add links beside them)
        cert_dirs = {os.path.dirname(p) for p in mounted_files(model)}
        front = ContainerFront(procs, containers.IMAGES[self.name], self.name, ro=[workdir, *cert_dirs],
                               rw_option=WRITABLE_OPTION.get(self.name), compiled=(files, workdir))
        proc = self.local.start(files, workdir, model, front)
        if not isinstance(proc, ContainerProc):
            raise AssertionError(f"the {self.name} runner did not start its proxy through procs.start")
        problems = incontainer.check_proxy(
            proc.container, process=PROCESS[self.name],
            listens=[Listen(l.address, l.port) for l in model.listeners],
            config_files=_compiled_paths(files, workdir), key_files=keys)
        if problems:
            raise AssertionError(f"{self.name} container {proc.container}:\n  " + "\n  ".join(problems))
        return proc


def launch_backend(procs: Processes, argv: Sequence[str], name: str, log_path: str) -> Proc:
    """The harness's backend launcher hook: backend.py in the backend image."""
    front = ContainerFront(procs, containers.IMAGES["backend"], "backend", ro=[BACKEND_SCRIPT])
    return front.start([sys.executable, BACKEND_SCRIPT, *argv], name, log_path=log_path, stdout=subprocess.PIPE)


def register() -> None:
    """Put a Docker runner beside every local runner whose proxy has an image."""
    for name, local in RUNNERS.items():
        if name in containers.IMAGES:
            DOCKER_RUNNERS[name] = DockerRunner(local)


register()
