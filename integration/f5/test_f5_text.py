"""User text through the F5 quoting, generated at random: whatever the fallback body, the client
receives exactly it, and the rule still passes the 8.4 lint; hosts route at L7 as in passthrough."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from f5checks import compile_text
from f5sim import F5Sim

pytestmark = [pytest.mark.conformance]

# printable text as the loader allows it (no C0/C1 control characters, line separators or bidi
# overrides), Tcl 8.4's range (the BMP)
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFFFF, blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                             blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
               min_size=1, max_size=60)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(TEXT, min_size=1, max_size=6, unique=True))
def test_fallback_bodies_arrive_byte_for_byte(tmp_path, bodies):
    services = "\n".join(f"""
          s{i}:
            servers: [{{name: a, address: 127.0.0.{21 + i}, port: 8080}}]
            fallback: {{respond: {{status: 503, body: {json.dumps(b)}}}}}""" for i, b in enumerate(bodies))
    routes = ", ".join(f"{{hosts: [h{i}.example.com], service: s{i}}}" for i in range(len(bodies)))
    files, result = compile_text(tmp_path, f"""
        lbc: 1
        vips: {{v: {{address: 127.0.0.10}}}}
        services:{services}
        listeners:
          - {{name: web, vip: v, port: 80, routes: [{routes}]}}
        """)
    assert files is not None, [str(d) for d in result.diagnostics]
    sim = F5Sim(files["bigip.conf"], "web")
    for i in range(len(bodies)):
        sim.set_state(sim.pool_of(f"s{i}"), f"127.0.0.{21 + i}", 8080, "down")
    results = sim.run([{"host": f"h{i}.example.com"} for i in range(len(bodies))])
    assert [r.get("content") for r in results] == bodies, results


def test_l7_wildcard_and_exact_hosts(tmp_path):
    files, result = compile_text(tmp_path, """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          a: {servers: [{name: a1, address: 127.0.0.21, port: 8080}]}
          b: {servers: [{name: b1, address: 127.0.0.22, port: 8080}]}
        listeners:
          - name: web
            vip: v
            port: 80
            routes:
              - {hosts: [a.example.com, "*.a.example.com"], service: a}
              - {hosts: ["*.example.com"], service: b}
        """)
    assert files is not None, [str(d) for d in result.diagnostics]
    sim = F5Sim(files["bigip.conf"], "web")
    cases = {"a.example.com": "a", "X.A.example.com:8080": "a", "b.example.com": "b", "y.x.a.example.com": None,
             "example.com": None, "": None}
    results = sim.run([{"host": h} for h in cases])
    for (host, svc), r in zip(cases.items(), results):
        got = r["pool"].split(".")[-3] if r["kind"] == "server" else None
        assert got == svc, (host, r)
        if svc is None:
            assert r["kind"] == "respond" and r["status"] == "404"
