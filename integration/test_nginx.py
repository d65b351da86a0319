"""nginx only: cookie stickiness at scale reaches the pinned server through a literal proxy_pass
(a named location per server, chosen by `error_page 418 = @svc.port$lbc_sticky_N`), with request
bodies intact, proven on a real nginx holding thousands of upstreams."""
from __future__ import annotations

import re
import shutil

import pytest

from harness import client
from harness.env import server
from harness.net import client_addresses

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")]

CLIENT = client_addresses(1)[0]
SERVICES = 700          # each: its balanced upstream and one per server (2): 2,100 upstreams


@pytest.fixture
def nginx_env(local_env):
    return local_env("nginx")


def _pinned_to(addr, port, host: str, want: str, tries: int = 40) -> dict:
    """A cookie jar pinned to server `want` (new sessions until one lands there; bounded)."""
    for _ in range(tries):
        r = client.request(addr, port, "/", host=host, source=CLIENT)
        if r.server == want:
            return {"PIN": r.set_cookies()["PIN"].value}
    raise AssertionError(f"no new session reached {want} in {tries} tries")


def test_cookie_pinned_post_keeps_its_body_among_thousands_of_upstreams(nginx_env):
    a, b = nginx_env.backends("a", "b")
    services = {f"s{i:04d}": {"servers": [server(a), server(b)], "stickiness": {"mode": "cookie", "cookie": {"name": "PIN"}}}
                for i in range(SERVICES)}
    last = f"s{SERVICES - 1:04d}"
    routes = [{"hosts": [f"{name}.sticky.test"], "service": name} for name in services]
    # the last host also routes a stripped path prefix to a sticky service (the jump after a rewrite)
    routes.append({"hosts": ["paths.sticky.test"], "path_prefix": "/api/", "strip_prefix": True, "service": last})
    routes.append({"hosts": ["paths.sticky.test"], "service": "s0000"})
    lb = nginx_env.deploy(services, [{"name": "web", "routes": routes, "websocket": True}])
    conf = lb.files["nginx.conf"]
    assert len(re.findall(r"^    upstream ", conf, re.M)) >= 2000
    assert not re.search(r"proxy_pass https?://\$", conf), "an HTTP proxy_pass names its upstream by a variable"

    addr, port = lb.addr("web")
    host = f"{last}.sticky.test"
    # 6 KiB of numbered lines: within nginx's memory buffer (8 KiB on x86-64), since the workers
    # (nobody) cannot write temporary files under the test's folder
    body = "".join(f"line {i:05d} of the request body\n" for i in range(192)).encode()
    for want in ("a", "b"):
        jar = _pinned_to(addr, port, host, want)
        for _ in range(10):
            r = client.request(addr, port, "/submit", host=host, source=CLIENT, method="POST", body=body,
                               headers={"Content-Type": "application/octet-stream"}, cookies=jar)
            assert (r.status, r.server) == (200, want), (r.status, r.text[:200])
            got = r.json()
            assert (got["method"], got["path"]) == ("POST", "/submit")
            assert got["body"].encode() == body, "the request body changed on its way"
        # the route with a stripped prefix: still pinned, the path stripped, the body intact
        r = client.request(addr, port, "/api/x?q=1", host="paths.sticky.test", source=CLIENT, method="POST",
                           body=b"hello body", cookies=jar)
        assert (r.status, r.server) == (200, want), (r.status, r.text[:200])
        assert (r.json()["path"], r.json()["body"]) == ("/x?q=1", "hello body")
        # a WebSocket upgrade goes through the jump too, to the pinned server
        ws = client.WebSocket(addr, port, "/ws", host=host, source=CLIENT, cookies=jar)
        try:
            assert ws.status == 101 and dict(ws.headers).get("X-Server") == want, (ws.status, ws.headers)
            for i in range(5):
                ws.send(f"message {i}")
                assert ws.recv() == f"message {i}"
        finally:
            ws.close()
    # a client without the cookie is balanced, and its body reaches the server too
    seen = set()
    for _ in range(10):
        r = client.request(addr, port, "/", host=host, source=CLIENT, method="POST", body=b"fresh")
        assert r.status == 200 and r.json()["body"] == "fresh"
        seen.add(r.server)
    assert seen == {"a", "b"}
