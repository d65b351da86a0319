"""Scenario S28 of CONFORMANCE.md (HSTS and header changes), against every selected target.

The fixtures, helpers and outcome recording are the conformance suite's (integration/conftest.py,
integration/test_conformance.py): results land in the same scenario x target matrix.
"""
from __future__ import annotations

import pytest

from harness import client
from harness.env import server
from test_conformance import CLIENT, scenario

pytestmark = [pytest.mark.conformance, pytest.mark.integration]

# Literal text that each target's substitution syntax would read (HAProxy `%[`, nginx `$`, Envoy `%..%`,
# Tcl `$ [ ] { } \\`, config quotes and comments): it must arrive byte for byte.
HOSTILE_VALUE = "100% %[src] $host ${x} %UPSTREAM_HOST% 'q' \"d\" \\ {x} [y]; #z"
# as the topology writes it: `${` starts an lbc placeholder, `$${` is a literal `${`
WRITTEN = HOSTILE_VALUE.replace("${", "$${")
HSTS = "max-age=31536000; includeSubDomains"
# Whether the answers the proxy writes itself (here: 404 for a host no route names) carry HSTS, as the
# targets' capability notes declare it.
OWN_ANSWERS_CARRY_HSTS = {"haproxy": True, "nginx": True, "envoy": False}

HEADERS = {"request": {"set": {"X-Lbc-Env": WRITTEN}, "remove": ["X-Debug"]},
           "response": {"set": {"X-Frame-Options": "DENY"}, "add": {"X-Lbc-Added": WRITTEN},
                        "remove": ["X-Remove-Me"]}}
ASK = "/?respond_header=X-Remove-Me:1&respond_header=X-Lbc-Added:server&respond_header=X-Frame-Options:ALLOW"


def _check_changes(r) -> None:
    assert r.status == 200, (r.status, r.text[:200])
    assert r.seen_header("X-Lbc-Env") == [HOSTILE_VALUE], "set replaces the client's value, literally"
    assert r.seen_header("X-Debug") == [], "remove takes the client's header away"
    assert r.header_all("X-Remove-Me") == [], "remove takes the server's header away"
    assert r.header_all("X-Frame-Options") == ["DENY"], "set replaces the server's value"
    assert sorted(r.header_all("X-Lbc-Added")) == sorted(["server", HOSTILE_VALUE]), "add keeps the server's"


@scenario("S28")
def test_s28_hsts_and_header_changes(env):
    a, b = env.backends("a", "b")
    cert = env.cert("lb-hsts", ["hsts.test"])
    lb = env.deploy({"app": {"servers": [server(a), server(b)]}},
                    [{"name": "web", "headers": HEADERS, "routes": [{"service": "app"}]},
                     {"name": "tls", "tls": {"mode": "terminate", "certificates": ["hsts"]},
                      "hsts": {"max_age": "1y", "include_subdomains": True}, "headers": HEADERS,
                      "routes": [{"hosts": ["hsts.test"], "service": "app"}]}],
                    certificates={"hsts": {"cert": cert.cert, "key": cert.key}})
    ctx = client.tls_context(env.ca)
    sent = {"X-Debug": "1", "X-Lbc-Env": "from-the-client"}
    addr, port = lb.addr("tls")
    for _ in range(4):                                   # both servers, fresh connections
        r = client.request(addr, port, ASK, host="hsts.test", tls=ctx, source=CLIENT, headers=sent)
        _check_changes(r)
        assert r.header_all("Strict-Transport-Security") == [HSTS]
    # an answer the proxy writes itself: no route for this host name
    r = client.request(addr, port, "/", host="other.test", sni="hsts.test", tls=ctx, source=CLIENT)
    assert r.status == 404, r.status
    assert r.header_all("Strict-Transport-Security") == ([HSTS] if OWN_ANSWERS_CARRY_HSTS[env.target] else [])
    # plain HTTP: the same header changes, never HSTS
    addr, port = lb.addr("web")
    for _ in range(4):
        r = client.request(addr, port, ASK, source=CLIENT, headers=sent)
        _check_changes(r)
        assert r.header_all("Strict-Transport-Security") == []
