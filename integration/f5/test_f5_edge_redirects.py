"""S27 on F5, simulated: the redirect iRule (and the routing iRule behind it for the except prefixes),
run in the Tcl harness on the exact `ltm rule` bytes of the compiled bigip.conf (what this proves:
docs/f5.md)."""
from __future__ import annotations

import pytest

from f5checks import compile_text
from f5sim import F5Sim

pytestmark = [pytest.mark.conformance]

TOPOLOGY = """
    lbc: 1
    vips: {{v: {{address: 127.0.0.10}}}}
    services:
      api: {{servers: [{{name: a1, address: 127.0.0.21, port: 8080}}]}}
      www: {{servers: [{{name: w1, address: 127.0.0.23, port: 8080}}]}}
    listeners:
      - name: web
        vip: v
        port: 80
        redirect_https: {redirect}
        routes:
          - {{hosts: [www.test], path_prefix: /api/, service: api}}
          - {{hosts: [www.test], service: www}}
          - {{service: www}}
    """
ACME = "/.well-known/acme-challenge/"


def _sim(tmp_path, redirect: str) -> F5Sim:
    files, result = compile_text(tmp_path, TOPOLOGY.format(redirect=redirect))
    assert files is not None, [str(d) for d in result.diagnostics]
    return F5Sim(files["bigip.conf"], "web")


def _location(res: dict) -> tuple:
    headers = dict(zip(res["headers"][::2], res["headers"][1::2])) if res["kind"] == "respond" else {}
    return res["kind"], int(res.get("status") or 0), headers.get("Location")


@pytest.mark.f5_scenario("S27")
def test_s27_redirect_in_the_irule(tmp_path):
    sim = _sim(tmp_path, "{status: 308, except: [/.well-known/acme-challenge/, /api/public/]}")
    redirected = [("www.test", "/", "", "https://www.test/"),
                  ("www.test:80", "/a/b", "x=1&y=%20z", "https://www.test/a/b?x=1&y=%20z"),
                  ("www.test", "/api/private", "k=v", "https://www.test/api/private?k=v"),
                  ("www.test", "/.well-known/acme-challenge", "", "https://www.test/.well-known/acme-challenge"),
                  ("other.test", "/p", "q", "https://other.test/p?q")]
    got = sim.run([{"host": h, "path": p, "query": q} for h, p, q, _ in redirected])
    for (host, path, _q, location), res in zip(redirected, got):
        assert _location(res) == ("respond", 308, location), (host, path, res)
        assert res["events"] == ["HTTP_REQUEST"], res      # no later iRule ran (event disable all)
    proxied = [("www.test", ACME + "tok", "www"), ("other.test", ACME + "t", "www"),
               ("www.test", "/api/public/doc", "api")]
    got = sim.run([{"host": h, "path": p, "query": "x=1"} for h, p, _ in proxied])
    for (host, path, service), res in zip(proxied, got):
        assert (res["kind"], res["pool"]) == ("server", sim.pool_of(service)), (host, path, res)
    # a path that leaves the except prefix once normalised is refused, not proxied over plain HTTP
    sneaky = [ACME + "../../admin", ACME + "%2E%2e/x", "/api/public//x", ACME + ".."]
    for path, res in zip(sneaky, sim.run([{"host": "www.test", "path": p} for p in sneaky])):
        assert (res["kind"], int(res.get("status") or 0)) == ("respond", 400), (path, res)


@pytest.mark.f5_scenario("S27")
def test_s27_status_and_port_in_the_irule(tmp_path):
    sim = _sim(tmp_path, "{status: 301, port: 8443}")
    a, b = sim.run([{"host": "www.test", "path": "/x", "query": "y=1"}, {"host": "www.test", "path": ACME + "t"}])
    assert _location(a) == ("respond", 301, "https://www.test:8443/x?y=1")
    assert _location(b) == ("respond", 301, "https://www.test:8443" + ACME + "t")


ROUTE_TOPOLOGY = """
    lbc: 1
    vips: {v: {address: 127.0.0.10}}
    services:
      www: {servers: [{name: w1, address: 127.0.0.23, port: 8080}]}
    listeners:
      - name: web
        vip: v
        port: 80
        routes:
          - {hosts: [old.test], redirect: {host: new.test, scheme: https, port: 8443, status: 301}}
          - {hosts: [www.test], path_prefix: /old/, redirect: {host: new.test, status: 302}}
          - {hosts: [www.test], service: www}
          - {path_exact: /moved, redirect: {scheme: https}}
          - {service: www}
    """


@pytest.mark.f5_scenario("S27")
def test_s27_route_redirect_to_another_host_in_the_irule(tmp_path):
    """Routes that answer with a redirect (issue 15 item 2): the routing iRule's branch responds with the
    status and Location = scheme://host[:port] + the request's path and query; other requests are proxied."""
    files, result = compile_text(tmp_path, ROUTE_TOPOLOGY)
    assert files is not None, [str(d) for d in result.diagnostics]
    sim = F5Sim(files["bigip.conf"], "web")
    redirected = [("old.test", "/", "", 301, "https://new.test:8443/"),
                  ("old.test:80", "/a/b", "x=1&y=%20z", 301, "https://new.test:8443/a/b?x=1&y=%20z"),
                  ("www.test", "/old/page", "q=2", 302, "http://new.test/old/page?q=2"),
                  ("other.test", "/moved", "k=v", 308, "https://other.test/moved?k=v"),
                  ("other.test:80", "/moved", "", 308, "https://other.test/moved")]
    got = sim.run([{"host": h, "path": p, "query": q} for h, p, q, _s, _l in redirected])
    for (host, path, _q, status, location), res in zip(redirected, got):
        assert _location(res) == ("respond", status, location), (host, path, res)
    proxied = [("www.test", "/old"), ("www.test", "/x/old/y"), ("www.test", "/"), ("other.test", "/moved/x"),
               ("other.test", "/")]
    got = sim.run([{"host": h, "path": p} for h, p in proxied])
    for (host, path), res in zip(proxied, got):
        assert (res["kind"], res["pool"]) == ("server", sim.pool_of("www")), (host, path, res)
