"""HAProxy target: quoting, hostile text, map integrity, refusals, and what real HAProxy does with
hostile fallback bodies and health-check strings."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from lbc import targets
from lbc.targets.haproxy import quote

from helpers import check_text, ids
from strategies import HOSTILE, topologies
from validators import VALIDATORS

TARGET = targets.get("haproxy")
needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")


def words(line: str) -> list[str]:
    """HAProxy's word splitting (cfgparse/parse_line): blanks separate words, '#' starts a comment,
    single quotes keep everything literally, backslash escapes one character outside quotes,
    double quotes allow backslash escapes (and would expand $VAR: lbc never writes them)."""
    out, cur, i, quote_char = [], None, 0, None
    while i < len(line):
        c = line[i]
        if quote_char == "'":
            if c == "'":
                quote_char = None
            else:
                cur += c
        elif quote_char == '"':
            if c == '"':
                quote_char = None
            elif c == "\\" and i + 1 < len(line):
                cur += line[i + 1]
                i += 1
            else:
                cur += c
        elif c in " \t":
            if cur is not None:
                out.append(cur)
                cur = None
        elif c == "#":
            break
        elif c in "'\"":
            quote_char = c
            cur = cur or ""
        elif c == "\\" and i + 1 < len(line):
            cur = (cur or "") + line[i + 1]
            i += 1
        else:
            cur = (cur or "") + c
        i += 1
    assert quote_char is None, f"unterminated quote in {line!r}"
    if cur is not None:
        out.append(cur)
    return out


def structure(cfg: str) -> list[list[str]]:
    return [w for w in (words(line) for line in cfg.split("\n")) if w]


def compile_doc(tmp_path, doc, name="topology.yaml"):
    result = check_text(tmp_path, yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), name=name, target=TARGET)
    return result, (TARGET.render(result.model) if not result.failed and result.model else None)


# ---------------------------------------------------------------- quoting

@given(HOSTILE)
def test_quote_round_trips_through_haproxys_word_splitting(text):
    assert words(f"x {quote(text)} y") == ["x", text, "y"]


def test_quote_refuses_control_characters():
    for bad in ("a\nb", "a\rb", "\x00", "\x7f"):
        with pytest.raises(ValueError):
            quote(bad)


def test_quote_keeps_dollar_and_percent_literal():
    assert quote("$HOME %[src]") == "'$HOME %[src]'"
    assert quote("it's") == "'it'\\''s'"


# ---------------------------------------------------------------- hostile text cannot change the structure

def _texts(doc):
    """(service, key) -> free text, for the fallback bodies and expect_body strings."""
    out = {}
    for name, svc in doc["services"].items():
        fb = (svc.get("fallback") or {}).get("respond")
        if fb:
            out[(name, "body")] = fb["body"]
        h = ((svc.get("health") or {}).get("http") or {})
        if "expect_body" in h:
            out[(name, "expect")] = h["expect_body"]
    return out


def _with_texts(doc, texts):
    doc = json.loads(json.dumps(doc))
    for (name, key), text in texts.items():
        if key == "body":
            doc["services"][name]["fallback"]["respond"]["body"] = text
        else:
            doc["services"][name]["health"]["http"]["expect_body"] = text
    return doc


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(doc=topologies())
def test_hostile_text_changes_only_its_own_word(doc, tmp_path_factory):
    """The config made from hostile texts and the one made from plain placeholders split into the
    same lines and words, except the words that hold the texts, which read back exactly."""
    texts = _texts(doc)
    tmp = tmp_path_factory.mktemp("hostile")
    result, files = compile_doc(tmp, doc)
    if files is None:
        return
    plain = {k: f"lbc-plain-{i}" for i, k in enumerate(texts)}
    _, plain_files = compile_doc(tmp, _with_texts(doc, plain), name="plain.yaml")
    hostile_cfg, plain_cfg = structure(files["haproxy.cfg"]), structure(plain_files["haproxy.cfg"])
    assert len(hostile_cfg) == len(plain_cfg)
    # `$${` in a topology is a literal `${` (compose placeholders): random joins of "$" and "${HOME}" make one
    pairs = {(texts[k].replace("$${", "${"), plain[k]) for k in texts}
    for h, p in zip(hostile_cfg, plain_cfg):
        assert len(h) == len(p), (h, p)
        for hw, pw in zip(h, p):
            assert hw == pw or (hw, pw) in pairs, (h, p)
    if shutil.which("haproxy"):
        ok, output = VALIDATORS["haproxy"](files, tmp)
        assert ok, output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=topologies())
def test_every_route_names_an_emitted_backend_and_server(doc, tmp_path_factory):
    """HAProxy cannot check what a map names; lbc does: every map value is a backend (or a target the
    frontend selects among) and every pinned server exists there."""
    _, files = compile_doc(tmp_path_factory.mktemp("maps"), doc)
    if files is None:
        return
    cfg = structure(files["haproxy.cfg"])
    backends, servers, current = set(), {}, None
    for w in cfg:
        if w[0] == "backend":
            current = w[1]
            backends.add(current)
        elif w[0] in ("frontend", "defaults", "global"):
            current = None
        elif w[0] == "server" and current:
            servers.setdefault(current, set()).add(w[1])
    selected = {w[1] for w in cfg if w[0] == "use_backend"}
    values = [line.split()[1] for rel, text in files.items() if rel.startswith("maps/")
              for line in text.splitlines() if not line.startswith("#")]
    values += [m.group(1) for w in cfg for m in [re.match(r"^str\((.+)\)$", w[-1] if w else "")] if m]
    # a host routed by path maps to its table's key (":g<n>"), which the paths map must hold
    tables = {line.split()[0].split("/", 1)[0] for rel, text in files.items() if rel.endswith(".paths")
              for line in text.splitlines() if not line.startswith("#")}
    for v in values:
        if v.startswith(":"):
            assert v in tables, f"route {v} names no table of the paths map"
            continue
        if re.fullmatch(r"~r[0-9]+", v):  # a route that redirects: the frontend answers it
            assert f"var(txn.lbc_route) -m str {v} }}" in files["haproxy.cfg"], f"route {v}: no redirect"
            continue
        v = v.split("|", 1)[0]          # "|<n>": characters stripped from the path
        v, _, k = v.partition("~")      # "~<k>": the route's access list, whose pattern files must exist
        if k:
            assert any(rel.startswith("acl/") and f".route{k}." in rel for rel in files), f"route {v}~{k}: no list"
        be, _, srv = v.partition("/")
        group = {b for b in backends if b == be or b.startswith(be + ".p")} or ({be} & backends)
        assert group, f"route {v} names no backend"
        assert group <= backends | selected
        if srv:
            assert any(srv in servers.get(b, ()) for b in group), f"route {v} pins an unknown server"


# ---------------------------------------------------------------- lowering decisions

BASE = """
lbc: 1
vips: {v: {address: 127.0.0.10}}
services:
  app:
    servers:
      - {name: a, address: 127.0.0.21, port: 8080}
      - {name: b, address: 127.0.0.22, port: 8080}
listeners:
  - {name: web, vip: v, port: 8080, routes: [{service: app}]}
"""


def test_fixed_answer_on_a_tcp_listener_is_refused(tmp_path):
    doc = yaml.safe_load(BASE)
    doc["services"]["app"]["fallback"] = {"respond": {"body": "No sessions available"}}
    doc["listeners"][0]["protocol"] = "tcp"
    doc["listeners"][0]["forwarded_headers"] = False
    result, files = compile_doc(tmp_path, doc)
    assert files is None and "LBC409" in ids(result)   # the language's refusal, for every target


def test_lifetime_without_cookie_is_refused(tmp_path):
    doc = yaml.safe_load(BASE)
    doc["services"]["app"]["stickiness"] = {"mode": "source-ip", "max_lifetime": "1h"}
    result, files = compile_doc(tmp_path, doc)
    assert files is None and "LBC310" in ids(result)


def test_output_is_relocatable_and_names_no_file_inside_its_folder_by_absolute_path(tmp_path):
    doc = yaml.safe_load(BASE)
    doc["listeners"][0]["routes"] = [{"hosts": ["a.example.com"], "service": "app"}]
    _, files = compile_doc(tmp_path, doc)
    cfg = files["haproxy.cfg"]
    assert "default-path config" in cfg
    assert "map(maps/web.hosts)" in cfg and "maps/web.hosts" in files


@needs_haproxy
@pytest.mark.parametrize("cert,key", [
    ("c.pem", "c-key.pem"),
    ("certs/c.pem", "certs/c.key"),
    ("certs/c.pem", "private/keys/c.key"),
    ("certs/c.pem", "../secrets/c.key"),
    ("../tls/c.pem", "c.key"),
    ("{abs}/tls/c.pem", "private/c.key"),      # an absolute link to a relative key: from $PWD
    ("certs/c.pem", "{abs}/private/c.key"),
])
def test_readme_key_links_put_a_separate_key_where_haproxy_reads_it(tmp_path, cert, key):
    """HAProxy 2.6 reads a separate key only at <cert>.key; the README's `ln -s` lines, run in
    haproxy.cfg's folder as it says, make it so for relative and absolute paths alike."""
    from validators import _standin_pair
    deploy = tmp_path / "deploy"                # holds etc/ (haproxy.cfg) and whatever `..` reaches
    cert, key = (p.replace("{abs}", str(deploy / "abs")) for p in (cert, key))
    doc = yaml.safe_load(BASE)
    doc["certificates"] = {"c": {"cert": cert, "key": key, "names": ["a.example.com"], "ignore": {"LBC106": "test"}}}
    doc["listeners"][0]["tls"] = {"mode": "terminate", "certificates": ["c"]}
    doc["listeners"][0]["routes"] = [{"hosts": ["a.example.com"], "service": "app"}]
    src = tmp_path / "src"
    src.mkdir()
    result, files = compile_doc(src, doc)
    assert files is not None, [str(d) for d in result.diagnostics]
    etc = deploy / "etc"
    for rel, text in files.items():
        (etc / rel).parent.mkdir(parents=True, exist_ok=True)
        (etc / rel).write_text(text, encoding="utf-8")
    pem, pkey = _standin_pair(tmp_path)
    for path, source in ((cert, pem), (key, pkey)):
        dest = etc / path                       # an absolute path stays absolute
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)

    def check():
        return subprocess.run(["haproxy", "-c", "-q", "-f", "haproxy.cfg"], cwd=etc, capture_output=True,
                              text=True, timeout=60)
    assert check().returncode != 0, "haproxy found the key without the link: this test proves nothing"
    links = [l.strip() for l in files["README.md"].splitlines() if l.strip().startswith("ln -s ")]
    assert len(links) == 1
    subprocess.run(["sh", "-c", links[0]], cwd=etc, check=True, timeout=10)
    run = check()
    assert run.returncode == 0, run.stdout + run.stderr


# ---------------------------------------------------------------- real HAProxy on hostile text

# (`${name}` is a placeholder for a value and `$$` a literal `$`: tests/test_compose.py)
HOSTILE_TEXTS = [
    'No "sessions" {available}; # $HOME %[src] 100% \\ back\\slash \u00e9\u00fc \u65e5\u672c end',
    "it's '' ' quoted",
    "} backend x { server evil 127.0.0.1:1 #",
]


def _free_port(addr):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


class _Run:
    """haproxy -db on compiled files, stopped by PID."""

    def __init__(self, files, folder, address, port):
        for rel, text in files.items():
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
        self.log = open(folder / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", "haproxy.cfg"], cwd=folder, stdout=self.log,
                                     stderr=self.log)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                break
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, (folder / "haproxy.log").read_text()
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def _get(address, port, path="/"):
    import http.client
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "x.example.com"})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode("utf-8")
    finally:
        conn.close()


@pytest.mark.integration
@needs_haproxy
@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_real_haproxy_answers_a_hostile_fallback_body_exactly(text, tmp_path):
    port = _free_port("127.0.0.12")
    doc = yaml.safe_load(BASE)
    doc["vips"]["v"]["address"] = "127.0.0.12"
    doc["listeners"][0]["port"] = port
    for s in doc["services"]["app"]["servers"]:
        s["state"] = "down"           # no server can take a session: the fallback answers at once
    doc["services"]["app"]["fallback"] = {"respond": {"status": 503, "body": text,
                                                      "content_type": "text/plain; charset=utf-8"}}
    doc["services"]["app"]["ignore"] = {"LBC406": "test"}
    result, files = compile_doc(tmp_path, doc)
    assert files is not None, [str(d) for d in result.diagnostics]
    run = _Run(files, tmp_path / "out", "127.0.0.12", port)
    try:
        assert _get("127.0.0.12", port) == (503, "text/plain; charset=utf-8", text)
    finally:
        run.stop()


@pytest.mark.integration
@needs_haproxy
@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_real_haproxy_matches_a_hostile_health_string_literally(text, tmp_path):
    """Two servers: one's health page contains the hostile text, the other's does not. Only the first
    stays in rotation: the check compares the exact text (no expansion, no truncation)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
    from harness.backends import start_backend
    from harness.net import Processes, wait_until
    procs = Processes()
    run = None
    try:
        good = start_backend(procs, str(tmp_path), "good", "127.0.0.61")
        bad = start_backend(procs, str(tmp_path), "bad", "127.0.0.62")
        good.set_health(body=f"before {text} after")
        bad.set_health(body=text[:-1] + "?")
        port = _free_port("127.0.0.13")
        doc = yaml.safe_load(BASE)
        doc["vips"]["v"]["address"] = "127.0.0.13"
        doc["listeners"][0]["port"] = port
        doc["services"]["app"]["servers"] = [{"name": "good", "address": good.address, "port": good.port},
                                             {"name": "bad", "address": bad.address, "port": bad.port}]
        doc["services"]["app"]["health"] = {"http": {"path": "/health", "expect_body": text},
                                            "interval": "200ms", "fall": 1, "rise": 1}
        result, files = compile_doc(tmp_path, doc)
        assert files is not None, [str(d) for d in result.diagnostics]
        run = _Run(files, tmp_path / "out", "127.0.0.13", port)

        def only_good():
            seen = {json.loads(_get("127.0.0.13", port)[2])["server"] for _ in range(6)}
            return seen == {"good"}
        wait_until(only_good, 5, interval=0.1, what="the server without the text out of rotation")
    finally:
        if run:
            run.stop()
        procs.stop_all()


# ---------------------------------------------------------------- Flynet health states, TLS checks

FLYNET_DOC = """
lbc: 1
vips: {v: {address: 127.0.0.10}}
services:
  fv:
    profile: flynet
    servers:
      - {name: a, address: 127.0.0.21, port: 8080}
      - {name: b, address: 127.0.0.22, port: 8080, state: down}
    fallback: {server: {address: 127.0.0.29, port: 80}}
listeners:
  - {name: web, vip: v, port: 80, routes: [{hosts: [fv.example.com], service: fv}]}
"""


def _backend(cfg: str, name: str) -> list[str]:
    block = cfg.split(f"\nbackend {name}\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def test_flynet_drains_on_body_instead_of_marking_down(tmp_path):
    """The body check admits new sessions; a status-only `.live` backend decides who is alive and
    gates persistence (option persist + ignore-persist), never force-persist (no re-dispatch)."""
    result, files = compile_doc(tmp_path, yaml.safe_load(FLYNET_DOC))
    cfg = files["haproxy.cfg"]
    serving, live = _backend(cfg, "web.fv.default"), _backend(cfg, "web.fv.default.live")
    assert "option persist" in serving and "option redispatch 1" in serving and "force-persist" not in cfg
    for s in ("a", "b"):
        assert f"ignore-persist if {{ req.cook(LBSRV),field(1,|) -m str {s} }} !{{ srv_is_up(web.fv.default.live/{s}) }}" in serving
    assert "http-check expect string 'ACTIVE'" in serving
    assert "http-check expect status 200" in live and not any("expect string" in x for x in live)
    assert "server a 127.0.0.21:8080 check" in live and "server b 127.0.0.22:8080 check disabled" in live
    # the frontend sends a cookie client to its server's group while the server is alive
    assert "{ srv_is_up(web.fv.default.live/a) }" in cfg


def test_other_profiles_keep_the_body_check_as_up_or_down(tmp_path):
    doc = yaml.safe_load(FLYNET_DOC)
    doc["services"]["fv"]["profile"] = "generic"
    doc["services"]["fv"]["health"] = {"http": {"path": "/h", "expect_body": "ACTIVE"}}
    doc["services"]["fv"]["stickiness"] = {"mode": "cookie"}
    result, files = compile_doc(tmp_path, doc)
    assert ".live" not in files["haproxy.cfg"] and "option persist" not in files["haproxy.cfg"]


def test_flynet_drain_with_source_ip_is_refused(tmp_path):
    doc = yaml.safe_load(FLYNET_DOC)
    doc["services"]["fv"]["stickiness"] = {"mode": "source-ip"}
    result, files = compile_doc(tmp_path, doc)
    assert files is None and any(d.id == "LBC801" and "health.drain-on-body" in d.message for d in result.diagnostics)


def test_live_checks_speak_tls_like_the_serving_ones_when_bridging(tmp_path):
    doc = yaml.safe_load(FLYNET_DOC)
    doc["services"]["fv"]["upstream_tls"] = {"ca": "ca.pem", "verify_name": "fv.internal"}
    doc["certificates"] = {"c": {"cert": "c.pem", "key": "c.key", "names": ["fv.example.com"]}}
    doc["listeners"][0].update(port=443, tls={"mode": "bridge", "certificates": ["c"]})
    result, files = compile_doc(tmp_path, doc)
    live = [x for x in _backend(files["haproxy.cfg"], "web.fv.default.live") if x.startswith("server a ")]
    assert "check-ssl check-sni fv.internal" in live[0] and "verify required" in live[0], live


def test_http_check_behind_passthrough_goes_over_tls(tmp_path):
    doc = yaml.safe_load(FLYNET_DOC.replace("profile: flynet", "profile: generic"))
    svc = doc["services"]["fv"]
    svc.update(health={"http": {"path": "/h", "host": "fv.example.com"}}, stickiness={"mode": "source-ip"})
    del svc["fallback"]
    doc["listeners"][0].update(port=443, tls={"mode": "passthrough"})
    result, files = compile_doc(tmp_path, doc)
    line = next(x for x in _backend(files["haproxy.cfg"], "web.fv.default") if x.startswith("server a "))
    assert "check-ssl verify none check-sni fv.example.com" in line and " ssl " not in f" {line} ", line
    # not behind passthrough: clear text as before
    doc["listeners"][0].update(port=80, tls={"mode": "none"}, protocol="http")
    result, files = compile_doc(tmp_path, doc)
    assert "check-ssl" not in files["haproxy.cfg"]
