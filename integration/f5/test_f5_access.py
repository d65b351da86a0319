"""S29 on F5, simulated: the access-list iRule and its address data groups, run in the Tcl harness
(the exact `ltm rule` bytes and data-group records of the compiled bigip.conf)."""
from __future__ import annotations

import pytest

from f5checks import compile_text
from f5sim import F5Sim

pytestmark = [pytest.mark.conformance]

TOPOLOGY = """\
lbc: 1
vips:
  public: {{address: 127.0.0.10}}
services:
  web:
    servers:
      - {{name: w1, address: 127.0.0.21, port: 8080}}
      - {{name: w2, address: 127.0.0.22, port: 8080}}
listeners:
  - name: web
    vip: public
    port: 80
    protocol: {protocol}
    access:
      allow: [127.0.0.0/24]
      deny: [127.0.0.66]
    routes:
      - {{service: web}}
"""


def _sim(tmp_path, protocol: str) -> F5Sim:
    files, result = compile_text(tmp_path, TOPOLOGY.format(protocol=protocol))
    assert files is not None, [str(d) for d in result.diagnostics]
    return F5Sim(files["bigip.conf"], "web")


@pytest.mark.f5_scenario("S29")
def test_s29_access_list_http(tmp_path):
    sim = _sim(tmp_path, "http")
    allowed, denied, outside = sim.run([{"kind": "http", "host": "a", "client": c}
                                        for c in ("127.0.0.5", "127.0.0.66", "127.0.1.5")])
    assert allowed["kind"] == "server", allowed
    assert denied["kind"] == "respond" and int(denied["status"]) == 403, denied
    assert outside["kind"] == "respond" and int(outside["status"]) == 403, outside
    # the routing rule did not run after the refusal (event disable all)
    assert denied["events"] == ["HTTP_REQUEST"], denied


@pytest.mark.f5_scenario("S29")
def test_s29_access_list_tcp(tmp_path):
    sim = _sim(tmp_path, "tcp")
    allowed, denied, outside = sim.run([{"kind": "tcp", "client": c} for c in ("127.0.0.5", "127.0.0.66", "127.0.1.5")])
    assert allowed["kind"] == "server", allowed
    assert denied["kind"] == "reject", denied
    assert outside["kind"] == "reject", outside


RATE_TOPOLOGY = """\
lbc: 1
vips:
  public: {{address: 127.0.0.10}}
services:
  web:
    servers:
      - {{name: w1, address: 127.0.0.21, port: 8080}}
listeners:
  - name: web
    vip: public
    port: 80
    protocol: {protocol}
    rate_limit: {{{rate}: 5, burst: 5}}
    routes:
      - {{service: web}}
"""


@pytest.mark.f5_scenario("S30")
@pytest.mark.parametrize("protocol,rate,refused", [("http", "requests_per_second", "respond"),
                                                   ("tcp", "connections_per_second", "reject")])
def test_s30_rate_limit(tmp_path, protocol, rate, refused):
    """Within one window: the first 5 from a client pass, the next 7 are refused; another client,
    counted apart, passes."""
    files, result = compile_text(tmp_path, RATE_TOPOLOGY.format(protocol=protocol, rate=rate))
    assert files is not None, [str(d) for d in result.diagnostics]
    sim = F5Sim(files["bigip.conf"], "web")
    got = sim.run([{"kind": protocol, "host": "a", "client": "127.0.0.5"} for _ in range(12)]
                  + [{"kind": protocol, "host": "a", "client": "127.0.0.6"} for _ in range(3)])
    kinds = [r["kind"] for r in got]
    assert kinds[:5] == ["server"] * 5 and kinds[5:12] == [refused] * 7 and kinds[12:] == ["server"] * 3, kinds
    if refused == "respond":
        assert {int(r["status"]) for r in got[5:12]} == {429}


ROUTE_TOPOLOGY = """\
lbc: 1
vips:
  public: {address: 127.0.0.10}
services:
  web:
    servers:
      - {name: w1, address: 127.0.0.21, port: 8080}
  admin:
    servers:
      - {name: a1, address: 127.0.0.31, port: 8080}
listeners:
  - name: web
    vip: public
    port: 80
    access:
      deny: [127.0.0.99]
    routes:
      - {service: web}
      - {path_prefix: /admin/, service: admin, access: {allow: [127.0.0.0/24], deny: [127.0.0.66]}}
      - {hosts: [ops.test], service: admin, access: {allow: [127.0.0.5]}}
"""


@pytest.mark.f5_scenario("S29")
def test_s29_access_list_per_route(tmp_path):
    """A route's list is checked in the routing iRule's branch of that route, after the listener's."""
    files, result = compile_text(tmp_path, ROUTE_TOPOLOGY)
    assert files is not None, [str(d) for d in result.diagnostics]
    sim = F5Sim(files["bigip.conf"], "web")
    cases = [  # (client, host, path) -> pool's service or status
        (("127.0.0.5", "a", "/admin/x"), "admin"),
        (("127.0.0.66", "a", "/admin/x"), 403),
        (("127.0.0.66", "a", "/"), "web"),
        (("127.0.1.5", "a", "/admin/x"), 403),
        (("127.0.1.5", "a", "/x"), "web"),
        (("127.0.0.99", "a", "/"), 403),         # the listener's list first
        (("127.0.0.5", "ops.test", "/"), "admin"),
        (("127.0.0.6", "ops.test", "/"), 403),
    ]
    got = sim.run([{"kind": "http", "client": c, "host": h, "path": p} for (c, h, p), _ in cases])
    for (req, want), res in zip(cases, got):
        if isinstance(want, int):
            assert (res["kind"], int(res["status"])) == ("respond", want), (req, res)
        else:
            assert (res["kind"], res["pool"]) == ("server", sim.pool_of(want)), (req, res)
