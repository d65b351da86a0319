"""`lbc diff`: the semantic change list, its consequences, formats and exit codes."""
from __future__ import annotations

import json

from helpers import example_path, lbc

BASE = """\
lbc: 1
name: shop
vips: {pub: {address: 192.0.2.10}}
services:
  app:
    servers:
      - {name: a, address: 10.0.0.1, port: 80}
      - {name: b, address: 10.0.0.2, port: 80}
      - {name: c, address: 10.0.0.3, port: 80}
    stickiness: {mode: cookie, cookie: {name: SRV}}
    health: {http: {path: /health}, interval: 5s}
listeners:
  - name: web
    vip: pub
    port: 80
    routes: [{service: app}]
"""


def pair(tmp_path, new_text: str, old_text: str = BASE):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(old_text)
    new.write_text(new_text)
    return str(old), str(new)


def changes(tmp_path, new_text: str) -> dict[str, dict]:
    r = lbc("diff", *pair(tmp_path, new_text), "--format", "json")
    assert r.returncode == 3, r.stdout + r.stderr
    return {c["path"]: c for c in json.loads(r.stdout)["changes"]}


def test_same_meaning_is_no_change(tmp_path):
    # comments, key order, flow vs block style and a default written out change nothing
    same = BASE.replace("name: shop\n", "# a comment\nname: shop\n").replace(
        "    routes: [{service: app}]\n", "    routes:\n      - service: app\n    protocol: http\n")
    r = lbc("diff", *pair(tmp_path, same))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no changes" in r.stdout


def test_server_removed_added_and_reweighted(tmp_path):
    new = BASE.replace("      - {name: c, address: 10.0.0.3, port: 80}\n",
                       "      - {name: d, address: 10.0.0.4, port: 80}\n").replace(
        "{name: a, address: 10.0.0.1, port: 80}", "{name: a, address: 10.0.0.1, port: 80, weight: 2}")
    got = changes(tmp_path, new)
    assert got["services.app.servers.c"]["op"] == "removed"
    assert "its sticky sessions move" in got["services.app.servers.c"]["consequences"][0]
    assert got["services.app.servers.d"]["op"] == "added"
    w = got["services.app.servers.a.weight"]
    assert (w["old"], w["new"]) == (1, 2)
    assert "33% -> 50%" in w["consequences"][0]
    assert w["where"].endswith("new.yaml:7:56")


def test_cookie_name_tls_and_state_consequences(tmp_path):
    new = BASE.replace("cookie: {name: SRV}", "cookie: {name: SRV2}").replace(
        "{name: b, address: 10.0.0.2, port: 80}", "{name: b, address: 10.0.0.2, port: 80, state: hold}").replace(
        "    routes: [{service: app}]\n", "    routes: [{service: app}]\n    tls: {mode: terminate, certificates: [c], "
        "min_version: '1.3'}\ncertificates:\n  c: {cert: c.pem, key: c.key, names: [shop.test]}\n").replace(
        "    port: 80\n", "    port: 443\n")
    got = changes(tmp_path, new)
    assert "every session is re-balanced" in got["services.app.stickiness.cookie.name"]["consequences"][0]
    assert "on hold" in got["services.app.servers.b.state"]["consequences"][0]
    assert got["listeners.web.port"]["consequences"] == ["clients must connect to 192.0.2.10:443 instead of 192.0.2.10:80"]
    assert "tightens the TLS profile" in got["listeners.web.tls.min_version"]["consequences"][0]
    assert got["certificates.c"]["op"] == "added"


def test_text_output_and_route_removal(tmp_path):
    new = BASE + "  - {name: admin, vip: pub, port: 8080, routes: [{service: app}]}\n"
    old, newp = pair(tmp_path, new)
    r = lbc("diff", newp, old)        # reversed: the admin listener goes away
    assert r.returncode == 3
    assert "- listeners.admin: 192.0.2.10:8080 http, TLS none" in r.stdout
    assert "=> stops serving 192.0.2.10:8080: its clients lose access" in r.stdout
    assert r.stdout.rstrip().endswith(f"1 change(s) from {newp} to {old}")


def test_a_vip_address_change_is_reported_once(tmp_path):
    got = changes(tmp_path, BASE.replace("192.0.2.10", "192.0.2.11"))
    assert list(got) == ["vips.pub.address"]
    assert "every listener on VIP 'pub' moves to 192.0.2.11" in got["vips.pub.address"]["consequences"][0]


def test_errors_and_usage(tmp_path):
    old, new = pair(tmp_path, BASE.replace("service: app", "service: nope"))
    r = lbc("diff", old, new)
    assert r.returncode == 1 and "LBC101" in r.stdout + r.stderr
    assert lbc("diff", old).returncode == 2
    assert lbc("diff", old, str(tmp_path / "missing.yaml")).returncode == 2
    assert lbc("diff", old, new, "--format", "sarif").returncode == 2


def test_against_a_compiled_folder(tmp_path):
    example = example_path("flynet.yaml")
    out = tmp_path / "out"
    assert lbc("compile", example, "-t", "haproxy", "-o", str(out)).returncode == 0
    r = lbc("diff", example, "-t", "haproxy", "--against", str(out))
    assert r.returncode == 0 and "already holds" in r.stdout, r.stdout + r.stderr
    cfg = out / "haproxy.cfg"
    cfg.write_text(cfg.read_text().replace("timeout connect 5s", "timeout connect 9s"))
    r = lbc("diff", example, "-t", "haproxy", "--against", str(out), "--format", "json")
    assert r.returncode == 3
    found = json.loads(r.stdout)["files"]
    assert [f["file"] for f in found] == ["haproxy.cfg"]
    assert "-    timeout connect 9s\n+    timeout connect 5s" in found[0]["diff"]
    assert lbc("diff", example, "--against", str(out)).returncode == 2   # --target missing
