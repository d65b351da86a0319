"""The issue's "done when", as users meet it on the command line; --strict and acknowledgements."""
from __future__ import annotations

import json

from helpers import example_path, lbc


def diagnostics(out):
    return json.loads(out.stdout)["diagnostics"]


def x509_with_cookie(tmp_path, mode: str):
    text = open(example_path("hacloud-x509.yaml")).read()
    text = text.replace("stickiness: {mode: source-ip, idle_timeout: 30m}", "stickiness: {mode: cookie}")
    if mode != "passthrough":
        text = text.replace("tls: {mode: passthrough}", f"tls: {{mode: {mode}, certificates: [site]}}")
        text = text.replace("services:", "certificates:\n  site: {cert: site.pem, names: [\"*.example.com\"], "
                                          "ignore: {LBC106: test}}\n\nservices:", 1)
    p = tmp_path / "x509.yaml"
    p.write_text(text)
    return p


def test_x509_with_cookie_fails_naming_passthrough_and_source_ip(tmp_path):
    for mode, rule in (("passthrough", "LBC202"), ("terminate", "LBC201"), ("bridge", "LBC201")):
        out = lbc("validate", x509_with_cookie(tmp_path, mode), "--format", "json")
        assert out.returncode == 1
        found = [d for d in diagnostics(out) if d["id"] == rule]
        assert found and all(d["severity"] == "error" for d in found), (mode, diagnostics(out))
        for d in found:
            assert "passthrough" in d["hint"] and "source-ip" in d["hint"], d["hint"]


def test_x509_with_cookie_text_output_shows_the_hint(tmp_path):
    out = lbc("validate", x509_with_cookie(tmp_path, "terminate"))
    assert out.returncode == 1
    assert "error[LBC201]" in out.stderr and "= hint: set `tls: {mode: passthrough}`" in out.stderr
    assert "lbc explain LBC201" in out.stderr


def test_four_mss_servers_fail_with_the_odd_number_rule(tmp_path):
    text = open(example_path("hacloud.yaml")).read().replace(
        "      - {name: mss3, address: 10.0.3.13, port: 8443}\n",
        "      - {name: mss3, address: 10.0.3.13, port: 8443}\n      - {name: mss4, address: 10.0.3.14, port: 8443}\n")
    p = tmp_path / "hacloud.yaml"
    p.write_text(text)
    out = lbc("validate", p, "--format", "json")
    assert out.returncode == 1
    (d,) = [d for d in diagnostics(out) if not d.get("acknowledged")]
    assert (d["id"], d["severity"]) == ("LBC502", "error")
    assert "odd" in d["message"] and "4 server" in d["message"]
    assert text.splitlines()[d["line"] - 1].strip() == "servers:                              # an odd number, for the database quorum"


def test_examples_have_no_unacknowledged_findings():
    for name in ("flynet.yaml", "hacloud.yaml", "hacloud-x509.yaml", "verastream.yaml", "lightstreamer-cookie.yaml",
                 "lightstreamer-control-link.yaml", "lightstreamer-https-passthrough.yaml",
                 "lightstreamer-multihost.yaml"):
        out = lbc("validate", example_path(name), "--strict", "--format", "json")
        assert out.returncode == 0, out.stdout
        assert [d for d in diagnostics(out) if not d.get("acknowledged")] == [], name


STICKY_LIFETIME = """\
lbc: 1
vips:
  public: {address: 192.0.2.10}
services:
  web:
    servers:
      - {name: w1, address: 10.0.0.11, port: 8080}
      - {name: w2, address: 10.0.0.12, port: 8080}
    health: {tcp: true}
    stickiness: {mode: cookie, max_lifetime: 1h}
%s
listeners:
  - {name: web, vip: public, port: 80, routes: [{service: web}]}
"""


def test_strict_turns_warnings_into_failures(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(STICKY_LIFETIME % "")
    assert lbc("validate", p).returncode == 0
    out = lbc("validate", p, "--strict", "--format", "json")
    assert out.returncode == 1
    assert [(d["id"], d["severity"]) for d in diagnostics(out)] == [("LBC305", "error")]


def test_acknowledged_finding_is_reported_and_does_not_fail(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(STICKY_LIFETIME % "    ignore:\n      LBC305: clients reconnect by themselves; hourly rebalancing wanted")
    out = lbc("validate", p, "--strict", "--format", "json")
    assert out.returncode == 0
    (d,) = diagnostics(out)
    assert d["id"] == "LBC305" and d["acknowledged"].startswith("clients reconnect")
    text = lbc("validate", p, "--strict")
    assert "warning[LBC305] (acknowledged: clients reconnect" in text.stderr and text.stdout == ""


def test_acknowledgement_needs_a_reason(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(STICKY_LIFETIME % "    ignore:\n      LBC305: ''")
    out = lbc("validate", p, "--format", "json")
    assert out.returncode == 1
    assert [d["id"] for d in diagnostics(out)] == ["LBC013"]


def test_acknowledgement_on_another_object_does_not_apply(tmp_path):
    p = tmp_path / "t.yaml"
    text = (STICKY_LIFETIME % "").replace(
        "routes: [{service: web}]}", "routes: [{service: web}], ignore: {LBC305: wrong place for it}}")
    p.write_text(text)
    out = lbc("validate", p, "--strict", "--format", "json")
    assert out.returncode == 1
    assert [(d["id"], d.get("acknowledged", "")) for d in diagnostics(out)] == [("LBC305", "")]


def test_structural_errors_cannot_be_acknowledged(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("lbc: 1\nignore: {LBC101: not possible}\nvips:\n  public: {address: 192.0.2.10}\n"
                 "services:\n  web:\n    servers:\n      - {name: w1, address: 10.0.0.11, port: 8080}\n"
                 "listeners:\n  - {name: web, vip: public, port: 80, routes: [{service: nope}]}\n")
    out = lbc("validate", p, "--format", "json")
    assert out.returncode == 1
    assert [(d["id"], d.get("acknowledged", "")) for d in diagnostics(out)] == [("LBC101", "")]


def test_target_capability_errors_cannot_be_acknowledged(tmp_path):
    from lbc.pipeline import Options, check_file

    class Bare:  # a target that declares nothing: every feature in use is unsupported
        name, summary, capabilities = "bare", "declares nothing", {}

        def render(self, model):
            return {}

    p = tmp_path / "t.yaml"
    p.write_text("lbc: 1\nignore: {LBC801: trying to compile anyway}\nvips:\n  public: {address: 192.0.2.10}\n"
                 "services:\n  web:\n    servers:\n      - {name: w1, address: 10.0.0.11, port: 8080}\n"
                 "listeners:\n  - {name: web, vip: public, port: 80, routes: [{service: web}]}\n")
    result = check_file(str(p), Options(), target=Bare())
    assert result.failed
    assert {d.id for d in result.diagnostics} == {"LBC801", "LBC108"}
    assert not any(d.acknowledged for d in result.diagnostics)
