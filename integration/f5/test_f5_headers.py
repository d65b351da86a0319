"""S28 on F5: the header iRule (lbc.targets.f5_lower header_rule) runs in tclsh and changes exactly the
headers the topology names, with every value arriving byte for byte (Tcl's `$ [ ] { } \\ "` and `;`
are data, not code). HSTS is the HTTP profile's, checked structurally in tests/test_f5.py."""
from __future__ import annotations

import json

import pytest

from f5checks import compile_text
from f5sim import lint, run_tcl, tcl_quote
from lbc.targets.f5_tmsh import parse

pytestmark = [pytest.mark.conformance]

HOSTILE = "100% $host ${x} [exec ls] {a} \\ \"d\" 'q'; #z %[src] `id`"

# `when EVENT {body}` is recorded; HTTP::header records each change (remove, insert) and nothing else
DRIVER = r"""
set i [interp create -safe]
foreach c {dict lassign lmap try throw apply lrepeat lreverse} { catch {$i hide $c} }
$i eval {namespace eval HTTP {}}
proc ::when {event body} { set ::bodies($event) $body }
proc ::header {sub args} {
    if {$sub ni {remove insert}} { error "HTTP::header $sub is not what lbc writes" }
    lappend ::ops [concat [list $sub] $args]
}
$i alias when ::when
$i alias HTTP::header ::header
$i eval $rule
foreach ev {HTTP_REQUEST HTTP_RESPONSE} {
    set ::ops {}
    if {[info exists ::bodies($ev)]} { $i eval $::bodies($ev) }
    set out {}
    foreach op $::ops {
        set words {}
        foreach w $op {
            set s ""
            foreach ch [split $w ""] { append s [format "\\u%04x" [scan $ch %c]] }
            lappend words "\"$s\""
        }
        lappend out "\[[join $words ,]\]"
    }
    puts "OPS $ev \[[join $out ,]\]"
}
"""


@pytest.mark.f5_scenario("S28")
def test_s28_header_rule_changes_headers_literally(tmp_path):
    files, result = compile_text(tmp_path, f"""
        lbc: 1
        vips: {{v: {{address: 127.0.0.10}}}}
        services:
          app:
            servers:
              - {{name: a, address: 127.0.0.21, port: 8080}}
        listeners:
          - name: web
            vip: v
            port: 80
            headers:
              request: {{set: {{X-Env: {json.dumps(HOSTILE.replace("${", "$${"))}}}, remove: [X-Debug]}}
              response:
                set: {{X-Frame-Options: DENY}}
                add: {{"X-$a|b": {json.dumps(HOSTILE.replace("${", "$${"))}}}
                remove: [X-Powered-By]
            routes: [{{service: app}}]
        """)
    assert files is not None, [d.message for d in result.diagnostics]
    rules = {o.name.rsplit("/", 1)[-1].split(".", 1)[1]: o.raw for o in parse(files["bigip.conf"])[0] if o.kind == "ltm rule"}
    rule = rules["web.headers.irule"]
    assert lint(rule) == []
    out = run_tcl(f"set rule {tcl_quote(rule)}\n" + DRIVER)
    ops = {line.split(" ", 2)[1]: json.loads(line.split(" ", 2)[2]) for line in out.splitlines()
           if line.startswith("OPS ")}
    assert ops["HTTP_REQUEST"] == [["remove", "X-Debug"], ["remove", "X-Env"], ["insert", "X-Env", HOSTILE]]
    assert ops["HTTP_RESPONSE"] == [["remove", "X-Powered-By"], ["remove", "X-Frame-Options"],
                                    ["insert", "X-Frame-Options", "DENY"], ["insert", "X-$a|b", HOSTILE]]
    # the rule runs before the routing rule, and the virtual names both
    assert "web.headers.irule" in files["bigip.conf"].split("ltm virtual", 1)[1]
