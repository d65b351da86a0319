"""pytest fixtures of the Docker mode (--lbc-docker): one engine and one image build per session,
and containers that each test gets removed, pass or fail.

A conftest makes them available with `from dockermode import *` (this folder on sys.path);
integration/conftest.py does, which also registers the harness's Docker runners.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import container_runners  # noqa: E402  (registers harness.runners.DOCKER_RUNNERS)
import containers  # noqa: E402
import engine  # noqa: E402
import images  # noqa: E402

__all__ = ["docker_env", "docker_run", "lbc_docker_mode", "DockerEnv"]


@dataclass
class DockerEnv:
    engine: engine.Engine
    image_seconds: dict[str, float]
    started: list = field(default_factory=list)

    @property
    def client(self):
        return self.engine.client


def _say(config, text: str) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(text)


@pytest.fixture(scope="session")
def docker_env(request):
    """The engine (started here if none answers), DOCKER_HOST pointing at it, the images built."""
    if not request.config.getoption("--lbc-docker"):
        pytest.skip("Docker mode: run with --lbc-docker (make conformance-docker TARGET=...)")
    t0 = time.monotonic()
    eng = engine.start()
    _say(request.config, f"docker: engine {eng.host} ({'started' if eng.started_here else 'already running'}) "
                         f"in {time.monotonic() - t0:.1f} s")
    old_host = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = eng.host     # for the docker CLI that testinfra and compose call
    leftovers: list[str] = []
    stopped = False
    try:
        t1 = time.monotonic()
        seconds = images.ensure_images(eng.client, log=lambda m: _say(request.config, f"docker: {m}"))
        _say(request.config, f"docker: images ready in {time.monotonic() - t1:.1f} s")
        yield DockerEnv(eng, seconds)
    finally:
        try:
            leftovers = containers.sweep(eng.client)
        finally:
            stopped = engine.stop(eng)
            if old_host is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = old_host
    if stopped:
        alive = engine.leftover_processes()
        if alive:
            raise AssertionError("engine processes outlived the test run:\n" + "\n".join(alive))
    if leftovers:
        raise AssertionError(f"containers outlived their test (removed now): {leftovers}")


@pytest.fixture
def docker_run(docker_env):
    """docker_run(target_or_image, command, role=..., ro=[...], ...) -> Container, removed after the test."""
    mine: list[containers.Container] = []

    def run(image: str, command: list[str], *, role: str, **kw) -> containers.Container:
        c = containers.run(docker_env.client, containers.IMAGES.get(image, image), command, role=role, **kw)
        mine.append(c)
        return c

    yield run
    errors = []
    for c in reversed(mine):
        try:
            c.stop()
        except Exception as e:       # keep removing the others
            errors.append(f"{c.name}: {e}")
    if errors:
        raise AssertionError("could not remove containers: " + "; ".join(errors))


@dataclass
class DockerMode:
    runners: dict
    launcher: object


@pytest.fixture(scope="session")
def lbc_docker_mode(docker_env):
    """What the harness's `env` fixture asks for with --lbc-docker: runners and a backend launcher."""
    return DockerMode(container_runners.DOCKER_RUNNERS, container_runners.launch_backend)
