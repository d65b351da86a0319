"""F5 edge routing scenarios whose logic lives in the iRule (S26 path routing), run in the Tcl
harness on the exact `ltm rule` bytes lbc compiles (what this proves: docs/f5.md)."""
from __future__ import annotations

import pytest

from f5checks import compile_text
from f5sim import F5Sim

pytestmark = [pytest.mark.conformance]

TOPOLOGY = """
    lbc: 1
    vips: {v: {address: 127.0.0.10}}
    services:
      api: {servers: [{name: a1, address: 127.0.0.21, port: 8080}]}
      v2: {servers: [{name: b1, address: 127.0.0.22, port: 8080}]}
      www: {servers: [{name: w1, address: 127.0.0.23, port: 8080}]}
    listeners:
      - name: web
        vip: v
        port: 80
        routes:
          - {hosts: [www.test], path_prefix: /api/, strip_prefix: true, service: api}
          - {hosts: [www.test], path_prefix: /api/v2/, service: v2}
          - {hosts: [www.test], path_exact: /api/health, service: www}
          - {hosts: [www.test], service: www}
          - {hosts: [only.test], path_prefix: /app/, service: api}
          - {path_prefix: /api/, service: api}
          - {service: www}
    """


@pytest.mark.f5_scenario("S26")
def test_s26_path_routing_in_the_irule(tmp_path):
    files, result = compile_text(tmp_path, TOPOLOGY)
    assert files is not None, [str(d) for d in result.diagnostics]
    sim = F5Sim(files["bigip.conf"], "web")
    pools = {s: sim.pool_of(s) for s in ("api", "v2", "www")}
    cases = [  # (host, path) -> (pool's service or status, path the server sees)
        (("www.test", "/api/users"), ("api", "/users")),
        (("www.test", "/api/"), ("api", "/")),
        (("www.test", "/api/v2/x"), ("v2", "/api/v2/x")),
        (("www.test", "/api/v2"), ("api", "/v2")),
        (("www.test", "/api/health"), ("www", "/api/health")),
        (("www.test", "/api/healthz"), ("api", "/healthz")),
        (("www.test", "/api"), ("www", "/api")),
        (("www.test", "/"), ("www", "/")),
        (("WWW.test:80", "/API/x"), ("www", "/API/x")),
        (("only.test", "/app/a"), ("api", "/app/a")),
        (("only.test", "/other"), (404, "/other")),
        (("unknown.test", "/api/x"), ("api", "/api/x")),
        (("unknown.test", "/x"), ("www", "/x")),
    ]
    got = sim.run([{"host": h, "path": p} for (h, p), _ in cases])
    for ((host, path), (want, seen)), res in zip(cases, got):
        if isinstance(want, int):
            assert (res["kind"], int(res["status"])) == ("respond", want), (host, path, res)
        else:
            assert (res["kind"], res["pool"]) == ("server", pools[want]), (host, path, res)
        assert res["path"] == seen, (host, path, res)
