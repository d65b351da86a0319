"""The Docker mode's plumbing on its own: backends of the harness in containers (plain and TLS,
health switch, crash), and a proxy runner whose process lands in a container and is checked there.
The conformance scenarios themselves run with `make conformance-docker TARGET=...`."""
from __future__ import annotations

import os

import pytest

from harness import client
from harness.backends import start_backend
from harness.net import Processes, free_port, server_address, wait_until
from harness.runners import DOCKER_RUNNERS, RUNNERS, wait_for_listeners

import container_runners
import incontainer
from container_runners import ContainerProc, DockerRunner

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def container_names(docker_env) -> set[str]:
    return {c.name for c in docker_env.client.containers.list(all=True)}


def test_backends_run_in_containers(docker_env, tmp_path, run_certs):
    factory, ca = run_certs
    cert = factory.issue("backend-tls", ca, ["b.example.com"])
    procs = Processes()
    try:
        plain = start_backend(procs, str(tmp_path), "c1", server_address(), launcher=container_runners.launch_backend)
        tls = start_backend(procs, str(tmp_path), "c2", server_address(), tls=cert,
                            launcher=container_runners.launch_backend)
        assert isinstance(plain.proc, ContainerProc) and plain.proc.container in container_names(docker_env)
        assert client.request(plain.address, plain.port, "/").server == "c1"
        r = client.request(tls.address, tls.port, "/", host="b.example.com", tls=client.tls_context(ca))
        assert r.server == "c2" and r.json()["tls"] is True
        plain.set_health(body="ALL SESSIONS IN USE")
        assert client.request(plain.address, plain.port, "/health").text == "ALL SESSIONS IN USE"
        # a crash: the container's process is killed, the port closes, the container goes away
        plain.kill()
        assert not plain.alive()
        assert client.try_request(plain.address, plain.port, "/", timeout=1) is None
        wait_until(lambda: plain.proc.container not in container_names(docker_env), 15, what="container removal")
    finally:
        procs.stop_all()
    assert tls.proc.container not in container_names(docker_env)


class _PythonServerRunner:
    """A stand-in local runner (the Python http.server in the backend image plays the proxy), to
    prove the runner path: files mounted read-only, the process in a container, checks inside."""
    name = "backend"

    def available(self) -> bool:
        return True

    def start(self, files, workdir, model, procs):
        folder = os.path.join(workdir, "stand-in")
        os.makedirs(folder, exist_ok=True)
        for rel, text in files.items():
            with open(os.path.join(folder, rel), "w") as f:
                f.write(text)
        os.chmod(os.path.join(folder, "proxy.cfg"), 0o644)
        l = model.listeners[0]
        proc = procs.start(["/usr/bin/python3", "-m", "http.server", "--bind", l.address, "--directory", folder,
                            str(l.port)], "stand-in", cwd=folder, log_path=os.path.join(workdir, "stand-in.log"))
        wait_for_listeners(proc, model)
        return proc


def test_runner_path_mounts_read_only_and_checks_inside(docker_env, tmp_path, monkeypatch):
    from lbc.pipeline import check_file
    addr = server_address()
    (tmp_path / "t.yaml").write_text(f"""
lbc: 1
name: standin
vips: {{v: {{address: {addr}}}}}
services: {{app: {{servers: [{{name: a, address: 127.0.0.1, port: 9}}]}}}}
listeners: [{{name: web, vip: v, port: {free_port(addr)}, routes: [{{service: app}}]}}]
""")
    model = check_file(str(tmp_path / "t.yaml")).model
    monkeypatch.setitem(container_runners.PROCESS, "backend", "python3")
    runner = DockerRunner(_PythonServerRunner())
    (tmp_path / "lb").mkdir()
    procs = Processes()
    try:
        proc = runner.start({"proxy.cfg": "hello from the host\n"}, str(tmp_path / "lb"), model, procs)
        l = model.listeners[0]
        r = client.request(l.address, l.port, "/proxy.cfg")
        assert r.status == 200 and r.text == "hello from the host\n"
        # the compiled file is read-only inside, whatever the process tries
        h = incontainer.host(proc.container)
        assert h.run("sh -c 'echo x >> %s'", str(tmp_path / "lb" / "stand-in" / "proxy.cfg")).rc != 0
    finally:
        procs.stop_all()
    assert proc.container not in container_names(docker_env)


def test_every_local_runner_with_an_image_has_a_docker_runner():
    for name in RUNNERS:
        if name in container_runners.PROCESS:
            assert isinstance(DOCKER_RUNNERS.get(name), DockerRunner), name
