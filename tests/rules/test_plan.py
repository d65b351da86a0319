"""Sizing formulas of seeds/000, the VHI shares of seeds/002, and `lbc plan`."""
from __future__ import annotations

import json
import textwrap

import pytest
from hypothesis import given, strategies as st

from lbc import plan
from lbc.pipeline import check_file

from helpers import lbc


@pytest.mark.parametrize("peak,servers", [(0, 2), (3_000, 2), (3_001, 3), (4_000, 3), (6_000, 4), (6_001, 5),
                                          (9_000, 6), (9_001, 6), (10_001, 7)])
def test_session_servers_required(peak, servers):
    assert plan.session_servers_required(peak) == servers


@pytest.mark.parametrize("users,servers", [(0, 3), (30_000, 3), (30_001, 5), (40_000, 5), (45_000, 7),
                                           (50_000, 7), (60_000, 7), (60_001, 9)])
def test_mss_servers_required(users, servers):
    assert plan.mss_servers_required(users) == servers


@given(st.integers(min_value=0, max_value=10_000_000))
def test_session_formula_leaves_failover_headroom(peak):
    """With the servers the table asks for, losing one still fits capacity + headroom."""
    n = plan.session_servers_required(peak)
    assert n >= 2
    assert (n - 1) * (plan.SESSIONS_PER_SERVER + plan.SESSION_HEADROOM) >= peak


@given(st.integers(min_value=0, max_value=100_000_000))
def test_mss_formula_is_odd_and_leaves_headroom(users):
    n = plan.mss_servers_required(users)
    assert n >= 3 and n % 2 == 1
    assert (n - 1) * (plan.USERS_PER_MSS + plan.MSS_HEADROOM) >= users


def topology(tmp_path, sessions: int, n_sessions: int, users: int, n_mss: int):
    ss = "".join(f"      - {{name: ss{i}, address: 10.0.2.{10 + i}, port: 7443}}\n" for i in range(1, n_sessions + 1))
    ms = "".join(f"      - {{name: m{i}, address: 10.0.3.{10 + i}, port: 8443}}\n" for i in range(1, n_mss + 1))
    text = textwrap.dedent("""\
        lbc: 1
        vips:
          public: {address: 192.0.2.20}
        services:
          sessions:
            profile: hacloud-session
            capacity: {peak_sessions: %d}
            servers:
        %s    health: {http: {path: /health}}
          mss:
            profile: hacloud-mss
            capacity: {peak_users: %d}
            servers:
        %s    health: {http: {path: /mss/health}}
        listeners:
          - name: app
            vip: public
            port: 80
            routes:
              - {hosts: [hacloud.example.com], service: sessions}
              - {hosts: [mss.example.com], service: mss}
        """) % (sessions, ss, users, ms)
    p = tmp_path / "hacloud.yaml"
    p.write_text(text)
    return p


def test_plan_asks_for_6_session_servers_at_9000_sessions(tmp_path):
    p = topology(tmp_path, 9_000, 3, 20_000, 3)
    out = lbc("plan", p, "--format", "json")
    assert out.returncode == 0, out.stderr
    sizing = {s["service"]: s for s in json.loads(out.stdout)["sizing"]}
    assert sizing["sessions"]["required"] == 6 and sizing["sessions"]["present"] == 3
    assert sizing["sessions"]["load_after_loss"] == 4_500 and not sizing["sessions"]["ok"]
    assert sizing["mss"]["required"] == 3 and sizing["mss"]["ok"]
    text = lbc("plan", p).stdout
    row = next(l for l in text.splitlines() if l.strip().startswith("sessions"))
    assert row.split()[:7] == ["sessions", "hacloud-session", "9,000", "host", "sessions", "6", "3"]
    assert "add 3 server(s)" in row


def test_plan_what_if(tmp_path):
    p = topology(tmp_path, 9_000, 3, 20_000, 3)
    out = json.loads(lbc("plan", p, "--peak-sessions", 3000, "--peak-users", 45_000, "--format", "json").stdout)
    sizing = {s["service"]: s for s in out["sizing"]}
    assert (sizing["sessions"]["peak"], sizing["sessions"]["required"], sizing["sessions"]["ok"]) == (3_000, 2, True)
    assert (sizing["mss"]["peak"], sizing["mss"]["required"], sizing["mss"]["ok"]) == (45_000, 7, False)


def test_plan_flags_an_even_mss_count(tmp_path):
    p = topology(tmp_path, 1_000, 2, 1_000, 4)
    sizing = {s["service"]: s for s in json.loads(lbc("plan", p, "-f", "json").stdout)["sizing"]}
    assert sizing["mss"]["quorum"] is False and sizing["mss"]["ok"] is False


def test_plan_shares_per_priority_group(tmp_path):
    p = tmp_path / "vhi.yaml"
    p.write_text(textwrap.dedent("""\
        lbc: 1
        vips:
          internal: {address: 192.0.2.30}
        services:
          vhi:
            profile: verastream
            servers:
              - {name: a, address: 10.0.4.11, port: 9681, priority: 1, weight: 80, max_sessions: 500}
              - {name: b, address: 10.0.4.12, port: 9681, priority: 1, weight: 20, max_sessions: 500}
              - {name: h, address: 10.0.4.13, port: 9681, priority: 1, weight: 50, state: hold}
              - {name: c, address: 10.0.4.14, port: 9681, priority: 2, weight: 100}
        listeners:
          - {name: vhi, vip: internal, port: 9681, protocol: tcp, routes: [{service: vhi}]}
        """))
    out = json.loads(lbc("plan", p, "--format", "json").stdout)
    (svc,) = out["shares"]
    g1, g2 = svc["groups"]
    assert [(s["server"], s["share"]) for s in g1["servers"]] == [("a", 0.8), ("b", 0.2), ("h", 0.0)]
    assert g1["capacity"] == 1_000 and g2["capacity"] is None
    assert [(s["server"], s["share"]) for s in g2["servers"]] == [("c", 1.0)]


def test_plan_refuses_a_broken_topology(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("lbc: 1\nvips: {}\n")
    assert lbc("plan", p).returncode == 1


def test_plan_unknown_service_is_a_usage_error(tmp_path):
    p = topology(tmp_path, 1_000, 2, 1_000, 3)
    assert lbc("plan", p, "--service", "nope").returncode == 2
    out = json.loads(lbc("plan", p, "--service", "mss", "-f", "json").stdout)
    assert [s["service"] for s in out["sizing"]] == ["mss"]


def test_plan_uses_the_same_sizing_as_the_rules(tmp_path):
    p = topology(tmp_path, 9_000, 5, 45_000, 5)
    result = check_file(str(p))
    ids = sorted(d.id for d in result.diagnostics)
    assert ids == ["LBC503", "LBC504"]
    s = plan.sizing(result.model.service("sessions"))
    assert (s.required, s.present) == (6, 5)
