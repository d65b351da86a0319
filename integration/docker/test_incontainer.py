"""The in-container checks catch what they claim to: a socket owned by a host process, a writable
config, a readable key, a missing process (a small Python server in the backend image stands in
for a proxy)."""
from __future__ import annotations

import os
import socket
import time

import pytest

import incontainer
from incontainer import Listen

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ADDR = "127.0.9.20"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDR, 0))
        return s.getsockname()[1]


def test_checks_tell_good_from_bad(docker_run, tmp_path):
    ro_dir, rw_dir = tmp_path / "ro", tmp_path / "rw"
    ro_dir.mkdir()
    rw_dir.mkdir()
    for d in (ro_dir, rw_dir):
        (d / "proxy.cfg").write_text("x\n")
    good_key, bad_key = ro_dir / "good.key", ro_dir / "bad.key"
    good_key.write_text("k\n")
    bad_key.write_text("k\n")
    os.chmod(good_key, 0o600)
    os.chmod(bad_key, 0o644)
    port = free_port()
    host_sock = socket.socket()           # a host process (this test) listens here, not the container
    host_sock.bind((ADDR, 0))
    host_sock.listen()
    try:
        c = docker_run("backend", ["python3", "-m", "http.server", "--bind", ADDR, str(port)],
                       role="check", ro=[str(ro_dir)], rw=[str(rw_dir)])
        h = incontainer.host(c.name)
        for _ in range(100):              # bounded wait for the server's socket
            if "python3" in incontainer.listening_owners(h, Listen(ADDR, port)):
                break
            time.sleep(0.1)
        good = incontainer.check_proxy(c.name, process="python3", listens=[Listen(ADDR, port)],
                                       config_files=[str(ro_dir / "proxy.cfg")], key_files=[str(good_key)])
        assert good == []
        bad = incontainer.check_proxy(
            c.name, process="haproxy",
            listens=[Listen(ADDR, host_sock.getsockname()[1])],
            config_files=[str(rw_dir / "proxy.cfg"), str(ro_dir / "absent.cfg")], key_files=[str(bad_key)])
        assert len(bad) == 5, bad
        assert "no 'haproxy' process" in bad[0]
        assert "not listening in the container" in bad[1] and "owners seen: []" in bad[1]
        assert "writable in the container" in bad[2]
        assert "missing in the container" in bad[3]
        assert "key mode 0644" in bad[4]
    finally:
        host_sock.close()
