"""Mutation checks: break the compiled iRule on purpose; the harness must notice.

Each test edits the `ltm rule` text of a compiled bigip.conf the way a plausible bug would, and
asserts that the scenario check that passes on the real output now reports a failure. A harness
that cannot see a missing LB_FAILED handler or two swapped pinned members would prove nothing.
"""
from __future__ import annotations

import re

import pytest

from f5checks import (check_fallback, check_health_states, check_hold, check_pinned, check_proxy, check_sni,
                      compile_f5, compile_text, edit_rule, example)
from f5hello import client_hello

pytestmark = [pytest.mark.conformance]


def _conf(name):
    files, result = compile_f5(example(name))
    assert files is not None
    return files["bigip.conf"]


def _drop_event(event):
    def edit(text):
        out, n = re.subn(rf"\nwhen {event} \{{\n.*?\n\}}\n", "\n", "\n" + text, flags=re.S)
        assert n == 1, f"no {event} handler to delete"
        return out.lstrip("\n")
    return edit


# A fixed answer made by the balancer (the Flynet example now falls back to a server, LBC403)
ANSWER = ("web", "app.example.com", ("app", "default"), 503, "No sessions available", "text/plain")
ANSWER_TOPOLOGY = """
    lbc: 1
    vips: {v: {address: 127.0.0.10}}
    services:
      app:
        servers:
          - {name: a, address: 127.0.0.21, port: 8080}
          - {name: b, address: 127.0.0.22, port: 8080}
        health: {http: {path: /health}}
        fallback: {respond: {status: 503, body: No sessions available}}
    listeners:
      - {name: web, vip: v, port: 80, routes: [{hosts: [app.example.com], service: app}]}
    """


@pytest.fixture
def answer_conf(tmp_path):
    files, result = compile_text(tmp_path, ANSWER_TOPOLOGY)
    assert files is not None, [str(d) for d in result.diagnostics]
    return files["bigip.conf"]
CONTROL = ("push-http", "push.example.com", ("lightstreamer", "create"),
           {"push1.example.com": ("10.0.6.11", 8080), "push2.example.com": ("10.0.6.12", 8080)})


def test_unmutated_outputs_pass(answer_conf):
    assert check_fallback(answer_conf, *ANSWER) == []
    assert check_pinned(_conf("lightstreamer-control-link.yaml"), *CONTROL) == []


def test_deleting_the_lb_failed_handler_is_caught(answer_conf):
    conf = edit_rule(answer_conf, _drop_event("LB_FAILED"))
    problems = check_fallback(conf, *ANSWER)
    # members that pass the monitor but refuse connections reach LB_FAILED only
    assert any("members unreachable" in p for p in problems), problems


def test_deleting_the_active_members_check_is_caught(answer_conf):
    conf = edit_rule(answer_conf, lambda t: t.replace("] < 1}", "] < 0}"))
    # with no pre-check the LB_FAILED handler still answers: the fallback holds (defence in depth) ...
    assert check_fallback(conf, *ANSWER) == []
    # ... and without both, it does not
    conf = edit_rule(conf, _drop_event("LB_FAILED"))
    assert check_fallback(conf, *ANSWER) != []


def test_an_active_members_check_before_persistence_is_caught():
    """The first release's Flynet rule: a fallback as soon as no member is active, which also
    sends the persisted clients of full (disabled) members to the fallback (S22)."""
    conf = _conf("flynet.yaml")
    flynet = ("fvterm-https", "fvterm.example.com", ("fvterm", "default"))
    assert check_health_states(conf, *flynet) == []
    pool = "/Common/flynet.fvterm.default.pool"
    mutated = edit_rule(conf, lambda t: t.replace(
        f"            pool {pool}\n",
        f"            if {{[active_members {pool}] < 1}} {{\n                pool /Common/flynet.fvterm.fallback.pool\n"
        f"            }} else {{\n                pool {pool}\n            }}\n", 1))
    assert mutated != conf
    assert any("every member full" in p for p in check_health_states(mutated, *flynet))


def test_a_recv_disable_that_only_knows_on_hold_is_caught():
    """The first release's monitor: recv-disable "ON HOLD" marked a full server down."""
    conf = _conf("flynet.yaml")
    mutated = conf.replace('recv-disable "^HTTP/1[.][01] 200"', 'recv-disable "ON HOLD"')
    assert mutated != conf
    assert any("ALL SESSIONS IN USE" in p for p in check_health_states(mutated, "fvterm-https", "fvterm.example.com",
                                                                       ("fvterm", "default")))


def test_swapping_two_pinned_members_is_caught():
    def swap(text):
        a, b = "member 10.0.6.11 8080", "member 10.0.6.12 8080"
        assert a in text and b in text
        return text.replace(a, "\0").replace(b, a).replace("\0", b)
    conf = edit_rule(_conf("lightstreamer-control-link.yaml"), swap)
    problems = check_pinned(conf, *CONTROL)
    assert any(p.startswith("push1.example.com: expected ('10.0.6.11', 8080)") for p in problems), problems


def test_dropping_the_pinned_member_status_guard_is_caught():
    conf = edit_rule(_conf("lightstreamer-control-link.yaml"), lambda t: t.replace('eq "down"', 'eq "never"'))
    problems = check_pinned(conf, *CONTROL)
    # a server whose monitor says down but which still accepts connections must not get the host
    assert any("busy" in p for p in problems), problems


def test_pinning_the_balanced_host_is_caught():
    def pin(text):
        return text.replace("pool /Common/lightstreamer-control-link.lightstreamer.create.pool\n",
                            "pool /Common/lightstreamer-control-link.lightstreamer.create.pool member 10.0.6.11 8081\n")
    problems = check_pinned(edit_rule(_conf("lightstreamer-control-link.yaml"), pin), *CONTROL)
    assert any(p.startswith("balanced host") for p in problems), problems


def test_routing_an_sni_name_to_the_wrong_pool_is_caught():
    def swap(text):
        return text.replace("pool /Common/hacloud-x509.mss.default.pool", "pool /Common/hacloud-x509.sessions.default.pool")
    conf = edit_rule(_conf("hacloud-x509.yaml"), swap)
    problems = check_sni(conf, "hacloud-tls", {"hacloud.example.com": ("sessions", "default"),
                                               "mss.example.com": ("mss", "default")})
    assert any("mss.example.com" in p for p in problems), problems


def test_not_waiting_for_the_whole_client_hello_is_caught():
    def hasty(text):
        return text.replace("TCP::collect\n            return", "set lbc_sni \"\"\n            ")
    conf = edit_rule(_conf("hacloud-x509.yaml"), hasty)
    problems = check_sni(conf, "hacloud-tls", {"hacloud.example.com": ("sessions", "default")})
    assert any("piece" in p for p in problems), problems


def test_a_hold_that_takes_new_sessions_is_caught():
    conf = _conf("flynet.yaml").replace("            session user-disabled\n", "")
    problems = check_hold(conf, "fvterm-https", "fvterm.example.com", ("fvterm", "default"), ("10.0.1.13", 80))
    assert problems


def test_a_wrong_proxy_header_is_caught():
    conf = edit_rule(_conf("lightstreamer-https-passthrough.yaml"),
                     lambda t: t.replace("[TCP::client_port] [TCP::local_port]", "[TCP::local_port] [TCP::client_port]"))
    problems = check_proxy(conf, "push-tls", 2, "127.0.0.5", 40001, "192.0.2.42", 443,
                           chunks=[client_hello("push.example.com")])
    assert any("sport" in p for p in problems), problems
