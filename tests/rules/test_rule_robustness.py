"""Every combination of the settings the rules look at: the rules never crash, always point at
a line of the file, name registered rules, and say the same thing twice."""
from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from lbc.rules import REGISTRY
from lbc.pipeline import Options, check_file

from helpers import EXAMPLES, example_path

BASES = {e: yaml.safe_load(open(example_path(e))) for e in EXAMPLES}
PROFILES = ["generic", "flynet", "hacloud-session", "hacloud-mss", "verastream", "lightstreamer", "terminal-id"]


@st.composite
def topologies(draw):
    data = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    for svc in data["services"].values():
        svc["profile"] = draw(st.sampled_from(PROFILES))
        mode = draw(st.sampled_from(["none", "cookie", "source-ip", "application", None]))
        if mode is None:
            svc.pop("stickiness", None)
        else:
            svc["stickiness"] = {"mode": mode, **({"max_lifetime": "1h"} if draw(st.booleans()) else {})}
        if draw(st.booleans()):
            svc["x509_client_auth"] = True
        if draw(st.booleans()):
            svc.pop("health", None)
        if draw(st.booleans()):
            svc["fallback"] = {"respond": {"body": "No sessions available"}}
        if draw(st.booleans()):
            svc["capacity"] = {"peak_sessions": draw(st.integers(0, 50_000)), "peak_users": draw(st.integers(0, 200_000))}
        for s in svc["servers"]:
            s["state"] = draw(st.sampled_from(["active", "active", "hold", "down"]))
            s["weight"] = draw(st.sampled_from([0, 1, 50]))
    for l in data["listeners"]:
        tls = l.get("tls") or {}
        tls["mode"] = draw(st.sampled_from(["none", "terminate", "bridge", "passthrough"]))
        if tls["mode"] == "none":
            tls.pop("certificates", None)
        l["tls"] = tls
        proto = draw(st.sampled_from(["http", "tcp", None]))
        l.pop("protocol", None)
        if proto:
            l["protocol"] = proto
        for key in ("forwarded_headers", "buffering", "websocket"):
            choice = draw(st.sampled_from([True, False, None]))
            l.pop(key, None)
            if choice is not None:
                l[key] = choice
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=topologies(), strict=st.booleans())
def test_rules_never_crash_and_always_point_into_the_file(tmp_path, data, strict):
    p = tmp_path / "t.yaml"
    text = yaml.safe_dump(data, sort_keys=False)
    p.write_text(text)
    lines = len(text.splitlines())
    first = check_file(str(p), Options(strict=strict))
    assert first.model is not None, [(d.id, d.message) for d in first.diagnostics]
    for d in first.diagnostics:
        assert d.id in REGISTRY
        assert 1 <= d.location.line <= lines, (d.id, d.location)
        assert d.message and d.hint and d.source
        for r in d.related:
            assert 1 <= r.location.line <= lines
    again = check_file(str(p), Options(strict=strict))
    assert [d.to_dict() for d in again.diagnostics] == [d.to_dict() for d in first.diagnostics]
