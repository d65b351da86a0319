"""Edge routing scenarios of CONFORMANCE.md: S26 (path routing), run on every selected target with
the fixtures and helpers of test_conformance.py (real proxies, real backends on loopback)."""
from __future__ import annotations

import collections

import pytest

from harness import client
from harness.env import server

from test_conformance import CLIENT, scenario, web

pytestmark = [pytest.mark.conformance, pytest.mark.integration]


def _seen(lb, path: str, host: str = "www.test", listener: str = "web") -> tuple[int, str, str]:
    """(status, server, the path the server saw) for one request."""
    addr, port = lb.addr(listener)
    r = client.request(addr, port, path, host=host, source=CLIENT)
    if r.status != 200:
        return r.status, "", ""
    return r.status, r.server, r.json()["path"]


@scenario("S26")
def test_s26_path_routing(env):
    """`/api/` -> api (prefix stripped), `/api/v2/` -> v2 (longest prefix wins, not stripped),
    `/api/health` exactly -> web (exact before every prefix), everything else -> web; a host
    without a route for every path answers 404 elsewhere; the default table routes by path too."""
    api, v2, www = env.backends("api", "v2", "www")
    lb = env.deploy({"api": {"servers": [server(api)]}, "v2": {"servers": [server(v2)]},
                     "www": {"servers": [server(www)]}},
                    [web([{"hosts": ["www.test"], "path_prefix": "/api/", "strip_prefix": True, "service": "api"},
                          {"hosts": ["www.test"], "path_prefix": "/api/v2/", "service": "v2"},
                          {"hosts": ["www.test"], "path_exact": "/api/health", "service": "www"},
                          {"hosts": ["www.test"], "service": "www"},
                          {"hosts": ["only.test"], "path_prefix": "/app/", "service": "api"},
                          {"path_prefix": "/api/", "service": "api"},
                          {"service": "www"}])])
    cases = {
        "/api/users?id=1": (200, "api", "/users?id=1"),
        "/api/": (200, "api", "/"),
        "/api/v2/x?q=2": (200, "v2", "/api/v2/x?q=2"),
        "/api/v2": (200, "api", "/v2"),            # "/api/v2" is not under "/api/v2/"
        "/api/health": (200, "www", "/api/health"),
        "/api/healthz": (200, "api", "/healthz"),
        "/api": (200, "www", "/api"),              # the prefix "/api/" does not take "/api"
        "/": (200, "www", "/"),
        "/API/x": (200, "www", "/API/x"),          # paths compare case-sensitively
    }
    for path, want in cases.items():
        assert _seen(lb, path) == want, path
    assert _seen(lb, "/app/a", host="only.test") == (200, "api", "/app/a")
    assert _seen(lb, "/other", host="only.test")[0] == 404
    assert _seen(lb, "/api/x", host="unknown.test") == (200, "api", "/api/x")
    assert _seen(lb, "/x", host="unknown.test") == (200, "www", "/x")


@scenario("S26")
def test_s26_path_routes_keep_balancing(env):
    """A path route balances over its service's servers like a host route does."""
    a, b, www = env.backends("a", "b", "www")
    lb = env.deploy({"api": {"balance": "round-robin", "servers": [server(a), server(b)]},
                     "www": {"servers": [server(www)]}},
                    [web([{"path_prefix": "/api/", "service": "api"}, {"service": "www"}])])
    got = collections.Counter(_seen(lb, "/api/x")[1] for _ in range(40))
    assert set(got) == {"a", "b"} and min(got.values()) >= 10, got
    assert _seen(lb, "/x")[1] == "www"
