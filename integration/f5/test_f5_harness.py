"""The harness itself: its lint refuses what TMM (Tcl 8.4) or tclsh would not run the same way,
and its stubs fail loudly on what they do not model."""
from __future__ import annotations

import pytest

from f5checks import all_rules, compile_f5, example
from f5sim import F5Sim, lint, run_tcl, tcl_quote, HARNESS

pytestmark = [pytest.mark.conformance]


@pytest.mark.parametrize("name,rule", all_rules(), ids=[n for n, _ in all_rules()])
def test_every_generated_rule_passes_the_lint(name, rule):
    assert lint(rule) == []


@pytest.mark.parametrize("snippet,finding", [
    ('when HTTP_REQUEST { if {[HTTP::host] in {a b}} { pool p } }', "`in` operator"),
    ('when HTTP_REQUEST { if {[HTTP::host] ni {a b}} { pool p } }', "`ni` operator"),
    ('when HTTP_REQUEST { set d [dict create a 1] }', "`dict`"),
    ('when HTTP_REQUEST { lassign {1 2} a b }', "`lassign`"),
    ('when HTTP_REQUEST { pool {*}$args }', "{*}"),
    ('when HTTP_REQUEST { if {[HTTP::host] starts_with "a"} { pool p } }', "iRule-only"),
    ('when CLIENT_DATA { binary scan [TCP::payload] Su x }', "unsigned"),
    ('when HTTP_REQUEST { set x [expr $a + 1] }', "without braces"),
    ('when HTTP_REQUEST { set x [expr {2 ** 3}] }', "**"),
    ('when HTTP_REQUEST { pool p ', "not complete"),
    ('set x 1\nwhen HTTP_REQUEST { pool p }', "top level"),
])
def test_lint_refuses(snippet, finding):
    problems = lint(snippet)
    assert any(finding in p for p in problems), problems


def test_lint_ignores_user_text_and_comments():
    assert lint('when HTTP_REQUEST {\n    # a dict in the comment\n'
                '    HTTP::respond 503 content "try again in a minute, dict {*}" noserver\n}\n') == []


def _sim(body: str) -> F5Sim:
    files, _ = compile_f5(example("flynet.yaml"))
    conf = files["bigip.conf"]
    sim = F5Sim(conf, "fvterm-https")
    sim.rules = [body]
    return sim


def test_hidden_8_5_command_fails_at_run_time():
    """The lint cannot see a command reached through a variable; the child interpreter refuses it."""
    r = _sim('when HTTP_REQUEST {\n    set c lass\n    append c ign\n    $c {1 2} a b\n}\n').http("x")
    assert r["kind"] == "error" and "lassign" in r["error"]


def test_unknown_pool_is_an_error():
    r = _sim('when HTTP_REQUEST {\n    pool /Common/flynet.nope\n}\n').http("x")
    assert r["kind"] == "error" and "no such pool" in r["error"]


def test_unknown_member_is_an_error():
    r = _sim('when HTTP_REQUEST {\n    pool /Common/flynet.fvterm.default.pool member 10.9.9.9 80\n}\n').http("x")
    assert r["kind"] == "error" and "no member" in r["error"]


def test_unmodelled_command_is_an_error():
    r = _sim('when HTTP_REQUEST {\n    HTTP::redirect http://x/\n}\n').http("x")
    assert r["kind"] == "error" and "invalid command name" in r["error"]


def test_pool_is_not_terminal_the_last_one_wins():
    r = _sim('when HTTP_REQUEST {\n    pool /Common/flynet.fvterm.default.pool member 10.0.1.11 80\n'
             '    pool /Common/flynet.fvterm.default.pool member 10.0.1.12 80\n}\n').http("x")
    assert r["target"] == "10.0.1.12:80"


@pytest.mark.parametrize("args,expected", [
    ('"push1.example.com:8443" ":" 1', "push1.example.com"),
    ('"a::b" "::" 2', "b"),
    ('"::1" "::" 1', ""),
    ('"a:b" ":" 3', ""),
])
def test_getfield_splits_on_a_string(args, expected):
    out = run_tcl(f"source {tcl_quote(HARNESS)}\nputs <[::sim::cmd::getfield {args}]>\n")
    assert out.strip() == f"<{expected}>"
