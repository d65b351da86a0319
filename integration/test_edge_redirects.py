"""Edge redirect scenario of CONFORMANCE.md: S27 (plain HTTP redirected to HTTPS, except prefixes still
proxied), run on every selected target with the fixtures and helpers of test_conformance.py (real
proxies, real backends on loopback). About 5 s per target."""
from __future__ import annotations

import pytest

from harness import client
from harness.env import server

from test_conformance import CLIENT, scenario, web

pytestmark = [pytest.mark.conformance, pytest.mark.integration]

ACME = "/.well-known/acme-challenge/"


def _get(lb, path: str, host: str, method: str = "GET") -> client.Response:
    return client.request(*lb.addr("web"), path, host=host, source=CLIENT, method=method)


@scenario("S27")
def test_s27_redirect_to_https(env):
    """Every request on the plain listener gets the configured status and Location https:// + the Host's
    name + the same path and query; the except prefix (and only it) follows the routes to the servers,
    host and path routes alike; the status keeps its method semantics (a POST is answered the same)."""
    www, api = env.backends("www", "api")
    lb = env.deploy({"www": {"servers": [server(www)]}, "api": {"servers": [server(api)]}},
                    [web([{"hosts": ["www.test"], "path_prefix": "/api/", "service": "api"},
                          {"hosts": ["www.test"], "service": "www"},
                          {"service": "www"}],
                         redirect_https={"status": 308, "except": [ACME, "/api/public/"]})])
    redirected = {("www.test", "/"): "https://www.test/",
                  ("www.test", "/a/b?x=1&y=%20z"): "https://www.test/a/b?x=1&y=%20z",
                  ("www.test", "/api/private?k=v"): "https://www.test/api/private?k=v",
                  ("www.test", "/.well-known/acme-challenge"): "https://www.test/.well-known/acme-challenge",
                  ("other.test", "/p?q"): "https://other.test/p?q",
                  ("www.test:8080", "/h"): "https://www.test/h"}      # the Host's port is not the HTTPS one
    for (host, path), location in redirected.items():
        r = _get(lb, path, host)
        assert (r.status, r.header("Location")) == (308, location), (host, path)
    r = _get(lb, "/form", "www.test", method="POST")
    assert (r.status, r.header("Location")) == (308, "https://www.test/form")
    proxied = {("www.test", ACME + "tok123?x=1"): ("www", ACME + "tok123?x=1"),
               ("other.test", ACME + "t"): ("www", ACME + "t"),
               ("www.test", "/api/public/doc"): ("api", "/api/public/doc")}   # the path route still decides
    for (host, path), (name, seen) in proxied.items():
        r = _get(lb, path, host)
        assert (r.status, r.server, r.json()["path"]) == (200, name, seen), (host, path)
    # a path that leaves the except prefix once normalised is not served over plain HTTP: every target
    # normalises before choosing (nginx, Envoy: redirected) or refuses it (HAProxy: 400)
    for path in (ACME + "../../admin", ACME + "%2e%2e/%2e%2e/admin", "//api/public/../../admin"):
        r = _get(lb, path, "www.test")
        assert r.status in (400, 301, 302, 307, 308) and r.server is None, (path, r.status, r.server)


@scenario("S27")
def test_s27_status_and_port(env):
    """A 301 to a non-443 HTTPS port names the port; without except prefixes every path is redirected."""
    www = env.backends("www")[0]
    lb = env.deploy({"www": {"servers": [server(www)]}},
                    [web([{"service": "www"}], redirect_https={"status": 301, "port": 8443})])
    r = _get(lb, "/x?y=1", "www.test")
    assert (r.status, r.header("Location")) == (301, "https://www.test:8443/x?y=1")
    r = _get(lb, ACME + "t", "www.test")
    assert (r.status, r.header("Location")) == (301, "https://www.test:8443" + ACME + "t")


@scenario("S27")
def test_s27_route_redirect_to_another_host(env):
    """Routes that answer with a redirect instead of a service (issue 15 item 2): an old host to a new
    host, scheme and port with the configured status; a path route of a served host to another host with
    the listener's scheme; a default-table path keeping the request's host; path and query kept as sent.
    Every other request still reaches the servers."""
    www = env.backends("www")[0]
    lb = env.deploy({"www": {"servers": [server(www)]}},
                    [web([{"hosts": ["old.test"],
                           "redirect": {"host": "new.test", "scheme": "https", "port": 8443, "status": 301}},
                          {"hosts": ["www.test"], "path_prefix": "/old/", "redirect": {"host": "new.test", "status": 302}},
                          {"hosts": ["www.test"], "service": "www"},
                          {"path_exact": "/moved", "redirect": {"scheme": "https"}},
                          {"service": "www"}])])
    redirected = {("old.test", "/"): (301, "https://new.test:8443/"),
                  ("old.test", "/a/b?x=1&y=%20z"): (301, "https://new.test:8443/a/b?x=1&y=%20z"),
                  ("old.test:8080", "/p"): (301, "https://new.test:8443/p"),
                  ("www.test", "/old/page?q=2"): (302, "http://new.test/old/page?q=2"),
                  ("other.test", "/moved?k=v"): (308, "https://other.test/moved?k=v"),   # the default: 308
                  ("other.test:8080", "/moved"): (308, "https://other.test/moved")}
    for (host, path), expected in redirected.items():
        r = _get(lb, path, host)
        assert (r.status, r.header("Location")) == expected, (host, path)
    r = _get(lb, "/", "old.test", method="POST")
    assert (r.status, r.header("Location")) == (301, "https://new.test:8443/")
    proxied = [("www.test", "/old"), ("www.test", "/x/old/y"), ("www.test", "/"), ("other.test", "/moved/x"),
               ("other.test", "/")]
    for host, path in proxied:
        r = _get(lb, path, host)
        assert (r.status, r.server, r.json()["path"]) == (200, "www", path), (host, path)
