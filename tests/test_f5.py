"""F5 target (tmsh) fast tests: the structural check passes on every example and catches what it
should, quoting is total, the lowering makes the BIG-IP decisions the docs promise."""
from __future__ import annotations

import json
import os
import sys

import pytest

from lbc import targets
from lbc.pipeline import Options, check_file, render
from lbc.targets import f5_tmsh
from lbc.targets.f5_irules import TclQuoteError, tcl_word
from lbc.targets.f5_lower import monitor_ere_literal, monitor_text
from lbc.targets.f5_tmsh import TmshError, check, check_output, parse, quote

from helpers import EXAMPLES, ROOT, check_text, example_path

sys.path.insert(0, os.path.join(ROOT, "integration", "f5"))
from f5checks import recv_matches, monitor_bytes  # noqa: E402

F5 = targets.get("f5")


def compiled(path: str) -> dict[str, str]:
    result = check_file(path, Options(), F5)
    assert not result.failed, [str(d) for d in result.diagnostics]
    return render(result.model, F5)


def compiled_text(tmp_path, text: str):
    result = check_text(tmp_path, text, target=F5)
    return (None if result.failed else render(result.model, F5)), result


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_compiles_and_passes_the_structural_check(example):
    files = compiled(example_path(example))
    assert check_output(files) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_parse_dump_round_trip(example):
    text = compiled(example_path(example))["bigip.conf"]
    objs, header = parse(text)
    assert f5_tmsh.dump(objs, header) == text
    assert objs, "no objects"


# ---------------------------------------------------------------- the check catches

FLYNET = compiled(example_path("flynet.yaml"))
CONF = FLYNET["bigip.conf"]
FILES = f5_tmsh.installed_files(FLYNET["README.md"])


@pytest.mark.parametrize("old,new,finding", [
    ("    interval 5\n", "    intervall 5\n", "unknown property 'intervall'"),
    ("load-balancing-mode round-robin", "load-balancing-mode fastest", "is not one of"),
    ("    expiration 0\n", "    expiration -1\n", "is not an integer"),
    ("monitor /Common/flynet.fvterm.monitor\n", "monitor /Common/flynet.fvterm2\n", "monitor /Common/flynet.fvterm2 is not defined"),
    ("            pool /Common/flynet.fvterm.default.pool\n", "            pool /Common/flynet.fvterm.defualt.pool\n",
     "`pool /Common/flynet.fvterm.defualt.pool`: no such pool"),
    ("    rules {\n        /Common/flynet.fvterm-https.irule\n", "    rules {\n        /Common/flynet.nope\n",
     "rule /Common/flynet.nope is not defined"),
    ("/Common/flynet.fvterm.cookie {\n            default yes", "/Common/flynet.cookie {\n            default yes",
     "persistence /Common/flynet.cookie is not defined"),
    ("            address 10.0.1.11\n", "            address 10.0.1.300\n", "is not an IP address"),
    ("    ip-protocol tcp\n", "", "missing ip-protocol"),
    ("    interval 5\n", "     interval 5\n", "round trip"),
    ("ltm pool /Common/flynet.fvterm.default.pool {", "ltm pool /Common/flynet.fvterm.default.pool {\n    monitor /Common/http",
     "monitor appears twice"),
    ("ltm virtual", "ltm snat /Common/x { }\n\nltm virtual", "lbc does not emit this kind"),
])
def test_check_finds(old, new, finding):
    assert old in CONF
    problems = check(CONF.replace(old, new, 1), FILES)
    assert any(finding in p for p in problems), problems


def test_check_finds_a_pinned_member_that_does_not_exist(tmp_path):
    files = compiled(example_path("lightstreamer-control-link.yaml"))
    conf = files["bigip.conf"].replace("member 10.0.6.12 8080", "member 10.0.6.13 8080")
    problems = check(conf, set())
    assert any("no such member" in p for p in problems), problems


def test_check_finds_an_uninstalled_certificate():
    problems = check(CONF, set())
    assert any("file /Common/flynet.fvterm.crt is not defined" in p for p in problems), problems


def test_check_finds_an_irule_copy_that_differs():
    files = dict(FLYNET)
    rel = next(p for p in files if p.startswith("irules/"))
    files[rel] = files[rel].replace("404", "403")
    assert any("differs" in p for p in check_output(files))


def test_parse_refuses_garbage():
    with pytest.raises(TmshError):
        parse("ltm pool /Common/x {\n    members {\n")
    with pytest.raises(TmshError):
        parse("ltm rule /Common/r {\nwhen HTTP_REQUEST {\n")


# ---------------------------------------------------------------- quoting

HOSTILE = 'a "b" {c} [d] $e ;f #g %h \\i \u00e9 \u65e5 \u20ac\tz'


def test_tcl_word_keeps_user_text_inert():
    word = tcl_word(HOSTILE)
    assert word.startswith('"') and word.endswith('"')
    inner = word[1:-1]
    for c in '"{}[]$;#\\\t':
        assert c not in inner.replace("\\u", "")
    assert tcl_word("/Common/x.y") == "/Common/x.y"
    assert tcl_word("") == '""'


def test_tcl_word_refuses_characters_tcl_8_4_cannot_hold():
    with pytest.raises(TclQuoteError):
        tcl_word("smile \U0001F600")


@pytest.mark.parametrize("bad", ['a"b', "a\nb", "caf\u00e9", "tail\\"])
def test_tmsh_quote_refuses(bad):
    with pytest.raises(TmshError):
        quote(bad)


def test_tmsh_quote():
    assert quote("/Common/x") == "/Common/x"
    assert quote("X-Forwarded-Proto: https") == '"X-Forwarded-Proto: https"'


def test_monitor_strings_hold_no_quote_backslash_or_backquote():
    enc = monitor_ere_literal(HOSTILE + "`")
    assert '"' not in enc and "`" not in enc
    assert all(part.startswith("x") for part in enc.split("\\")[1:])   # only \xHH escapes
    assert monitor_bytes(monitor_text(HOSTILE)) == HOSTILE.encode("utf-8")


@pytest.mark.parametrize("body", ["ACTIVE", "a.b", "1+1=2 (ok)?", "[x]*{y}|^$", "back\\slash", "caf\u00e9 \u65e5",
                                  'say "hi"', "`whoami`"])
def test_monitor_recv_matches_the_body_literally(tmp_path, body):
    files, result = compiled_text(tmp_path, f"""
        lbc: 1
        vips: {{v: {{address: 127.0.0.10}}}}
        services:
          app:
            servers: [{{name: a, address: 127.0.0.21, port: 8080}}]
            health: {{http: {{path: /health, expect_body: {json.dumps(body)}}}}}
        listeners:
          - {{name: web, vip: v, port: 80, routes: [{{service: app}}]}}
        """)
    assert files is not None, [str(d) for d in result.diagnostics]
    assert check_output(files) == []
    objs, _ = parse(files["bigip.conf"])
    mon = next(o for o in objs if o.kind == "ltm monitor http")
    recv = dict((k, v) for k, v in mon.body)["recv"]
    good = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstatus: " + body.encode("utf-8") + b" now\n"
    assert recv_matches(recv, good)
    assert not recv_matches(recv, good.replace(body.encode("utf-8"), b"DOWN"))
    assert not recv_matches(recv, good.replace(b"200 OK", b"500 Internal Server Error"))
    if body == "a.b":
        assert not recv_matches(recv, good.replace(b"a.b", b"axb"))   # the dot is literal


def test_flynet_full_or_held_page_disables_instead_of_marking_down():
    """Flynet health states: without ACTIVE the member is up (disabled), keeping its persisted
    clients; an HTTP error marks it down."""
    objs, _ = parse(CONF)
    mon = dict(next(o for o in objs if o.kind == "ltm monitor http").body)
    for page in (b"ON HOLD", b"ALL SESSIONS IN USE"):
        answer = b"HTTP/1.1 200 OK\r\n\r\nSTATUS: " + page
        assert not recv_matches(mon["recv"], answer) and recv_matches(mon["recv-disable"], answer)
    assert not recv_matches(mon["recv-disable"], b"HTTP/1.1 500 Error\r\n\r\nON HOLD")
    assert recv_matches(mon["recv"], b"HTTP/1.1 200 OK\r\n\r\nACTIVE - 12 Sessions Available")
    assert monitor_bytes(mon["send"]).startswith(b"GET /FVTerm/FVHealth.aspx HTTP/1.1\r\nHost: fvterm.example.com\r\n")


def test_non_bmp_fallback_body_is_refused(tmp_path):
    files, result = compiled_text(tmp_path, """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          app:
            servers: [{name: a, address: 127.0.0.21, port: 8080}]
            fallback: {respond: {body: "busy \\U0001F600"}}
        listeners:
          - {name: web, vip: v, port: 80, routes: [{service: app}]}
        """)
    assert files is None
    assert any(d.id == "LBC801" and "Tcl 8.4" in d.message for d in result.diagnostics)


# ---------------------------------------------------------------- lowering decisions

def _pool(files, suffix):
    objs, _ = parse(files["bigip.conf"])
    return next(dict(o.body) for o in objs if o.kind == "ltm pool" and o.name.endswith(suffix))


def test_priority_groups_are_inverted():
    """lbc serves priority 1 first; BIG-IP serves the highest priority-group first."""
    files = compiled(example_path("verastream.yaml"))
    pool = _pool(files, ".vhi.default.pool")
    pg = {name.rsplit("/", 1)[1]: int(dict(body)["priority-group"]) for name, body in pool["members"]}
    assert pg == {"10.0.4.11:9681": 3, "10.0.4.12:9681": 3, "10.0.4.13:9681": 2, "10.0.4.14:9681": 2,
                  "10.0.5.11:9681": 1}
    assert pool["min-active-members"] == "1"
    assert pool["load-balancing-mode"] == "ratio-member"
    limits = {name.rsplit("/", 1)[1]: dict(body)["connection-limit"] for name, body in pool["members"]}
    assert limits["10.0.4.11:9681"] == "500" and limits["10.0.5.11:9681"] == "200"


def test_member_states():
    pool = _pool(FLYNET, ".fvterm.default.pool")
    held = dict(dict(pool["members"])["/Common/10.0.1.13:80"])
    assert held == {"address": "10.0.1.13", "session": "user-disabled"}


def test_down_server_is_forced_offline(tmp_path):
    files, _ = compiled_text(tmp_path, """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          app:
            servers:
              - {name: a, address: 127.0.0.21, port: 8080}
              - {name: b, address: "2001:db8::22", port: 8080, state: down}
        listeners:
          - {name: web, vip: v, port: 80, routes: [{service: app}]}
        """)
    pool = _pool(files, ".app.default.pool")
    b = dict(dict(pool["members"])["/Common/2001:db8::22.8080"])
    assert b["session"] == "user-disabled" and b["state"] == "user-down"
    assert check_output(files) == []


def test_session_cookie_and_source_hash():
    objs, _ = parse(CONF)
    cookie = dict(next(o for o in objs if o.kind == "ltm persistence cookie").body)
    assert cookie["expiration"] == "0" and cookie["method"] == "insert" and cookie["cookie-name"] == "FVTERMSRV"
    files = compiled(example_path("lightstreamer-https-passthrough.yaml"))
    objs, _ = parse(files["bigip.conf"])
    src = dict(next(o for o in objs if o.kind == "ltm persistence source-addr").body)
    assert src["hash-algorithm"] == "carp" and src["timeout"] == "3600"
    vs = dict(next(o for o in objs if o.kind == "ltm virtual").body)
    assert [p for p, _ in vs["profiles"]] == ["/Common/lightstreamer-https-passthrough.push-tls.tcp"]


def test_weighted_random_is_an_emulation_info():
    result = check_file(example_path("verastream.yaml"), Options(), F5)
    assert any(d.id == "LBC802" and "balance.weighted-random" in d.message for d in result.diagnostics)


def test_as3_refuses_monitor_times_beyond_its_schema(tmp_path):
    # Found by the property test: interval x fall + 1 above 900 s is valid tmsh but not valid AS3.
    from helpers import check_text
    from lbc import targets
    text = """\
    lbc: 1
    vips: {v: {address: 192.0.2.10}}
    services:
      web:
        servers: [{name: a, address: 10.0.0.1, port: 80}, {name: b, address: 10.0.0.2, port: 80}]
        health: {tcp: true, interval: %s, fall: 3}
    listeners: [{name: l, vip: v, port: 80, routes: [{service: web}]}]
    """
    slow = check_text(tmp_path, text % "5m", target=targets.get("f5-as3"))
    assert [(d.id, d.location.line) for d in slow.diagnostics if d.fails] == [("LBC801", 6)]
    assert "above AS3's limit of 900 s" in next(d.message for d in slow.diagnostics if d.fails)
    assert not check_text(tmp_path, text % "5m", target=targets.get("f5")).failed     # tmsh takes it
    assert not check_text(tmp_path, text % "60s", target=targets.get("f5-as3")).failed


def test_http_monitor_behind_passthrough_is_https(tmp_path):
    """The servers behind TLS passthrough speak TLS on the checked port (S23): an https monitor."""
    text = """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          app:
            servers: [{name: a, address: 127.0.0.21, port: 8443}, {name: b, address: 127.0.0.22, port: 8443}]
            health: {http: {path: /health, expect_body: ACTIVE, host: app.example.com}}
            stickiness: {mode: source-ip}
        listeners:
          - {name: tls, vip: v, port: 443, tls: {mode: passthrough}, routes: [{hosts: [app.example.com], service: app}]}
        """
    files, result = compiled_text(tmp_path, text)
    objs, _ = parse(files["bigip.conf"])
    assert [o.kind for o in objs if o.kind.startswith("ltm monitor")] == ["ltm monitor https"]
    files, result = compiled_text(tmp_path, text.replace("tls: {mode: passthrough}, ", "").replace("port: 443", "port: 80"))
    objs, _ = parse(files["bigip.conf"])
    assert [o.kind for o in objs if o.kind.startswith("ltm monitor")] == ["ltm monitor http"]
