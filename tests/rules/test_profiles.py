"""Profiles fill in what their guide prescribes, visibly, and only where the topology is silent."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lbc.profiles import PROFILE_DEFAULTS, PROFILES, SUMMARIES, profile_defaults
from lbc.rules.common import TITLES
from lbc.schema import topology_schema

from helpers import check_text


def test_every_schema_profile_is_described():
    enum = topology_schema()["properties"]["services"]["additionalProperties"]["properties"]["profile"]["enum"]
    assert list(PROFILES) == enum
    assert set(PROFILE_DEFAULTS) == set(SUMMARIES) == set(PROFILES)
    for profile, defaults in PROFILE_DEFAULTS.items():
        for _keys, _value, citation in defaults:
            assert any(citation.startswith(t) for t in TITLES.values()), (profile, citation)


def service(profile: str, extra: str = "", protocol: str = "http") -> str:
    """A three-server service of the profile; `extra` holds service keys indented by four spaces."""
    return textwrap.dedent(f"""\
        lbc: 1
        vips:
          public: {{address: 192.0.2.10}}
        services:
          app:
            profile: {profile}
            servers:
              - {{name: s1, address: 10.0.0.11, port: 8080}}
              - {{name: s2, address: 10.0.0.12, port: 8080}}
              - {{name: s3, address: 10.0.0.13, port: 8080}}
        EXTRA
        listeners:
          - {{name: app, vip: public, port: 80, protocol: {protocol}, routes: [{{ROUTE}}]}}
        """).replace("EXTRA\n", extra + "\n" if extra else "").replace(
        "{ROUTE}", "{hosts: [app.example.com], service: app}" if protocol == "http" else "{service: app}")


def defaults(result) -> dict:
    return {".".join(map(str, d.path[2:])): (d.value, d.origin) for d in result.model.defaults_applied
            if d.path[:2] == ("services", "app")}


def test_flynet_defaults(tmp_path):
    r = check_text(tmp_path, service("flynet", "    fallback: {server: {address: 10.0.1.99, port: 80}}"))
    d = defaults(r)
    assert d["health.http.path"][0] == "/FVTerm/FVHealth.aspx"
    assert d["health.http.expect_body"][0] == "ACTIVE"
    assert d["stickiness.mode"][0] == "cookie" and d["balance"][0] == "round-robin"
    assert d["health.http.host"][0] == "app.example.com"         # the routed name (LBC410 otherwise)
    assert all(origin.startswith('profile flynet (Flynet, "Flynet Server Load Balancing"') for _v, origin in d.values())
    svc = r.model.service("app")
    assert svc.stickiness.cookie_max_age_ms is None          # a session cookie
    assert (svc.health.kind, svc.health.http_path, svc.health.expect_body) == ("http", "/FVTerm/FVHealth.aspx", "ACTIVE")
    assert [x.id for x in r.diagnostics] == []


def test_profile_defaults_never_override_the_topology(tmp_path):
    r = check_text(tmp_path, service("flynet", "    balance: least-connections\n"
                                     "    stickiness: {mode: source-ip}\n"
                                     "    fallback: {server: {address: 10.0.1.99, port: 80}}"))
    svc = r.model.service("app")
    assert (svc.balance, svc.stickiness.mode) == ("least-connections", "source-ip")
    assert "balance" not in defaults(r) and "stickiness.mode" not in defaults(r)


@pytest.mark.parametrize("profile", ["hacloud-session", "hacloud-mss"])
def test_hacloud_defaults(tmp_path, profile):
    r = check_text(tmp_path, service(profile, "    health: {http: {path: /health}}"))
    svc = r.model.service("app")
    assert (svc.balance, svc.stickiness.mode) == ("least-connections", "cookie")
    assert defaults(r)["balance"][1].startswith(f'profile {profile} (Host Access for the Cloud, "Planning for Deployment"')


def test_verastream_defaults_and_the_health_kind_the_topology_chose(tmp_path):
    r = check_text(tmp_path, service("verastream", protocol="tcp"))
    svc = r.model.service("app")
    # no affinity: every session is a fresh weighted draw (technical note 7021566, "What Happens At Runtime")
    assert (svc.balance, svc.stickiness.mode, svc.health.kind) == ("weighted-random", "none", "tcp")
    assert "stickiness.mode" in defaults(r) and [d.id for d in r.diagnostics if d.id in ("LBC301", "LBC309")] == []
    r = check_text(tmp_path, service("verastream", "    health: {http: {path: /status}}", protocol="tcp"))
    assert r.model.service("app").health.kind == "http" and "health.tcp" not in defaults(r)
    assert profile_defaults("flynet", {"health": {"tcp": True}}) == [
        d for d in PROFILE_DEFAULTS["flynet"] if d[0][0] != "health"]


def test_generic_and_terminal_id_fill_nothing_of_their_own(tmp_path):
    for profile in ("generic", "terminal-id"):
        r = check_text(tmp_path, service(profile, "    health: {tcp: true}"))
        assert not any(origin.startswith("profile") for _v, origin in defaults(r).values())


def test_compile_explain_defaults_shows_profile_defaults(tmp_path):
    from lbc.targets import available
    assert available(), "no target registered"
    p = tmp_path / "fly.yaml"
    p.write_text(service("flynet", "    fallback: {server: {address: 10.0.1.99, port: 80}}"))
    out = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "compile", str(p), "--target",
                          available()[0], "--explain-defaults", "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if "services.app.health.http.path" in l)
    assert line.startswith(f"{p}:6:") and '"/FVTerm/FVHealth.aspx"' in line and "profile flynet" in line
