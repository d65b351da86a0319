"""The schema as editors use it: yaml-language-server (VS Code's YAML extension and others) shows
lbc's own words for a bad pattern, each enum value's description and the defaults.

Runs where node and npm are present (CI runs it when they are); the server is
installed from the npm registry into a temporary folder (~5 s), and the test is skipped, with the
reason, when that fails. The LSP client is tests/editor/yaml_ls.py. About 10 s in all.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
YAML_LS_VERSION = "1.25.0"   # the version the ecosystem probe used


@pytest.fixture(scope="module")
def server_js(tmp_path_factory) -> str:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed: the editor check needs yaml-language-server")
    folder = tmp_path_factory.mktemp("yaml-ls")
    try:
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder),
                            f"yaml-language-server@{YAML_LS_VERSION}"], capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install yaml-language-server took more than 180 s")
    js = folder / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if r.returncode != 0 or not js.exists():
        pytest.skip(f"npm could not install yaml-language-server: {(r.stderr or r.stdout).strip()[-300:]}")
    return str(js)


def editor(server_js: str, tmp_path, text: str, line: int | None = None, col: int | None = None) -> dict:
    schema = tmp_path / "schema.json"
    out = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "schema"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    schema.write_text(out)
    doc = tmp_path / "edge.lbc.yaml"
    doc.write_text(textwrap.dedent(text))
    argv = [sys.executable, os.path.join(HERE, "editor", "yaml_ls.py"), server_js, str(schema), str(doc)]
    if line is not None:
        argv += [str(line), str(col)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


TOPOLOGY = """\
    lbc: 1
    vips:
      v: {address: 192.0.2.300}
    services:
      web:
        balance: round-robin
        health:
          http: {path: /}
          interval: 5 seconds
        servers:
          - {name: s1, address: 10.0.0.1, port: 80}
    listeners:
      - {name: web, vip: v, port: 80, routes: [{service: web}]}
"""


def test_pattern_errors_speak_lbcs_words(server_js, tmp_path):
    got = editor(server_js, tmp_path, TOPOLOGY)
    by_line = {d["range"]["start"]["line"]: d["message"] for d in got["diagnostics"]}
    assert by_line[2].startswith("An IPv4 address such as 192.0.2.10"), by_line
    assert by_line[8].startswith("A whole number above zero with a unit: ms, s, m, h or d"), by_line
    assert not any("does not match the pattern" in m for m in by_line.values()), by_line


def test_a_valid_topology_has_no_editor_diagnostics(server_js, tmp_path):
    fixed = TOPOLOGY.replace("192.0.2.300", "192.0.2.30").replace("5 seconds", "5s")
    assert editor(server_js, tmp_path, fixed)["diagnostics"] == []


def test_enum_values_carry_descriptions(server_js, tmp_path):
    got = editor(server_js, tmp_path, TOPOLOGY, 5, 13)    # after `balance: `
    docs = {i["label"]: (i.get("documentation") or {}).get("value", "") for i in got["completion"]}
    assert set(docs) == {"round-robin", "least-connections", "weighted-random", "source-hash"}
    assert docs["least-connections"] == "Each new session goes to the server with the fewest open connections."


def test_completion_offers_the_defaults(server_js, tmp_path):
    text = TOPOLOGY.replace("interval: 5 seconds", "in")
    got = editor(server_js, tmp_path, text, 8, 8)           # typing a key in `health:`
    inserts = {i["label"]: i.get("insertText", "") for i in got["completion"]}
    assert inserts["interval"] == "interval: ${1:5s}" and inserts["fall"] == "fall: ${1:3}", inserts
