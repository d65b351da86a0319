"""`lbc compile --docker` as a user runs it: docker compose builds the Dockerfile and starts the
compiled config, which then balances real traffic, in clear and over TLS with a mounted key.

The official images cannot be pulled here (no registry), so the build argument BASE swaps in the
local image of the same proxy (lbc/haproxy, lbc/nginx, lbc/envoy); everything else, from the
Dockerfile's COPY lines to compose's read-only mounts, dropped capabilities and host network, is
the generated file as written.
"""
from __future__ import annotations

import datetime
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lbc import docker_files, targets

import containers
import incontainer
from incontainer import Listen

pytestmark = [pytest.mark.integration, pytest.mark.docker]

TARGETS = [t for t in docker_files.supported() if t in targets.available()]
# Addresses of this test only (the conformance scenarios use others).
VIP, SERVERS = "127.0.9.10", ("127.0.9.11", "127.0.9.12")
HOST = "web.example.com"
COMPOSE_TIMEOUT_S = 300
PROCESS = {t: targets.spec(t).binary for t in TARGETS}   # the proxy's process name


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


class _Named(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def backends():
    servers = []
    for i, addr in enumerate(SERVERS):
        srv = http.server.ThreadingHTTPServer((addr, 0), _Named)
        srv.name = f"s{i + 1}"
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    yield [(s.server_address[0], s.server_address[1]) for s in servers]
    for s in servers:
        s.shutdown()
        s.server_close()


def make_cert(folder) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(folder, "web.pem"), os.path.join(folder, "web.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # root-owned, 0600: what compose.yaml asks
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def compose(*args: str, cwd: str, project: str, check: bool = True) -> str:
    """Debian's docker-compose (v1) or the docker CLI's compose plugin (v2): the file suits both."""
    exe = shutil.which("docker-compose")
    cmd = [exe, "-p", project, *args] if exe else ["docker", "compose", "-p", project, *args]
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=COMPOSE_TIMEOUT_S,
                         stdin=subprocess.DEVNULL)
    if check:
        assert run.returncode == 0, f"{' '.join(cmd)} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    return run.stdout + run.stderr


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def tls_get(addr: str, port: int, cafile: str) -> str:
    """GET / from addr:port with SNI and Host HOST; the certificate must verify for HOST against cafile."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((addr, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=HOST) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200", head
    return body.decode()


def wait_answer(url: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            return get(url)
        except OSError as e:
            last = e
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s: {last}")


@pytest.mark.parametrize("proxy", TARGETS)   # not `target`: the harness's conftest owns that parameter
def test_compose_runs_the_compiled_config(proxy, docker_env, backends, tmp_path):
    target = proxy
    cert, key = make_cert(str(tmp_path))
    http_port, https_port = free_port(VIP), free_port(VIP)
    servers = "\n".join(f"      - {{name: s{i + 1}, address: {a}, port: {p}}}" for i, (a, p) in enumerate(backends))
    (tmp_path / "topology.yaml").write_text(f"""\
lbc: 1
name: user-files
vips:
  v: {{address: {VIP}}}
certificates:
  web: {{cert: web.pem, key: web.key, names: [{HOST}]}}
services:
  app:
    balance: round-robin
    servers:
{servers}
listeners:
  - {{name: web, vip: v, port: {http_port}, routes: [{{service: app}}]}}
  - name: web-tls
    vip: v
    port: {https_port}
    tls: {{mode: terminate, certificates: [web]}}
    routes: [{{hosts: [{HOST}], service: app}}]
""")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "compile",
                          str(tmp_path / "topology.yaml"), "-t", target, "-o", str(out), "--docker"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    project = containers.COMPOSE_PREFIX + target
    try:
        compose("build", "--build-arg", f"BASE={containers.IMAGES[target]}", cwd=str(out), project=project)
        compose("up", "-d", cwd=str(out), project=project)
        # round robin over both servers, in clear
        first = wait_answer(f"http://{VIP}:{http_port}/")
        seen = [first] + [get(f"http://{VIP}:{http_port}/") for _ in range(9)]
        assert sorted(set(seen)) == ["s1", "s2"], seen
        # TLS terminated with the mounted key: the client verifies the certificate for HOST
        assert tls_get(VIP, https_port, cafile=cert) in ("s1", "s2")
        # inside the container (testinfra): the proxy owns both sockets, config read-only, key private
        cid = compose("ps", "-q", cwd=str(out), project=project).split()[-1]
        rt = docker_files.RUNTIMES[target]
        # the topology names web.key relative: mounted where the proxy resolves it, in its config folder
        assert incontainer.check_proxy(
            cid, process=PROCESS[target], listens=[Listen(VIP, http_port), Listen(VIP, https_port)],
            config_files=[f"{rt.config_dir}/{rt.main}"], key_files=[f"{rt.config_dir}/web.key"]) == []
        if target == "nginx":   # its log files are linked to the container's output: `logs` shows traffic
            assert "GET / HTTP/1.1" in compose("logs", "--no-color", cwd=str(out), project=project)
    except BaseException:
        print(compose("logs", "--no-color", cwd=str(out), project=project, check=False))  # shown on failure
        raise
    finally:
        compose("down", "--rmi", "all", "--volumes", "--remove-orphans", cwd=str(out), project=project, check=False)
    left = docker_env.client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    assert left == []


MISSING_VIP = "192.0.2.99"   # documentation range: never an address of the test host


def test_a_missing_vip_stops_the_container_with_a_clear_message(docker_env, tmp_path):
    """Off the balancer, the container must not loop: it says which VIP is missing and stays stopped
    after the few tries compose.yaml allows."""
    with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as f:
        if f.read().strip() == "1":
            pytest.skip("this host binds foreign addresses (ip_nonlocal_bind=1): a missing VIP is not an error")
    target = "haproxy"
    (tmp_path / "topology.yaml").write_text(f"""\
lbc: 1
name: missing-vip
vips:
  v: {{address: {MISSING_VIP}}}
services:
  app: {{servers: [{{name: s1, address: {SERVERS[0]}, port: 8080}}]}}
listeners:
  - {{name: web, vip: v, port: 18080, routes: [{{service: app}}]}}
""")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "compile",
                          str(tmp_path / "topology.yaml"), "-t", target, "-o", str(out), "--docker", "-q"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    project = containers.COMPOSE_PREFIX + "missing-vip"
    try:
        compose("build", "--build-arg", f"BASE={containers.IMAGES[target]}", cwd=str(out), project=project)
        compose("up", "-d", cwd=str(out), project=project)
        cid = compose("ps", "-q", cwd=str(out), project=project).split()[-1]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            c = docker_env.client.containers.get(cid)
            if c.attrs["State"]["Status"] == "exited" and c.attrs["RestartCount"] >= 3:
                break
            time.sleep(0.5)
        c = docker_env.client.containers.get(cid)
        assert c.attrs["State"]["Status"] == "exited" and c.attrs["State"]["ExitCode"] == 1, c.attrs["State"]
        assert c.attrs["RestartCount"] == 3
        time.sleep(2)   # and it stays stopped
        assert docker_env.client.containers.get(cid).attrs["State"]["Status"] == "exited"
        logs = compose("logs", "--no-color", cwd=str(out), project=project)
        assert f"lbc: VIP {MISSING_VIP} is not an address of this host" in logs
        assert "cannot bind socket" not in logs     # stopped before the proxy started
    finally:
        compose("down", "--rmi", "all", "--volumes", "--remove-orphans", cwd=str(out), project=project, check=False)
