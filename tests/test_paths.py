"""File paths in a topology: every target writes them as written, so the output does not depend on
where the topology was compiled; lbc's own checks read a relative path from the topology's folder."""
from __future__ import annotations


import pytest
import yaml

from lbc import targets
from lbc.pipeline import Options, check_file, render

from helpers import EXAMPLES, example_path, ids
from rules.pki import cert_pem, key_pem

CASES = [(t, e) for t in targets.available() for e in EXAMPLES]


def _named_files(doc: dict) -> dict[str, bytes]:
    """PEM contents for every file a topology names: certificates with their declared names and
    matching keys, CA certificates for the CA bundles."""
    out: dict[str, bytes] = {}
    for name, c in (doc.get("certificates") or {}).items():
        out[c["cert"]] = cert_pem(name, c.get("names") or [f"{name}.example.com"])
        if "key" in c:
            out[c["key"]] = key_pem(name)
    cas = [l["tls"].get("client_ca") for l in doc["listeners"] if l.get("tls")]
    cas += [(s.get("upstream_tls") or {}).get("ca") for s in doc["services"].values()]
    for ca in filter(None, cas):
        out[ca] = cert_pem("ca", ["Test CA"], ca=True, san=False)
    return out


def _copy(example: str, folder, files: dict[str, bytes]) -> str:
    folder.mkdir(parents=True)
    dest = folder / example
    with open(example_path(example), encoding="utf-8") as f:
        dest.write_text(f.read(), encoding="utf-8")
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return str(dest)


@pytest.mark.parametrize("target_name,example", CASES, ids=[f"{t}-{e}" for t, e in CASES])
def test_same_topology_in_two_folders_compiles_to_the_same_bytes(tmp_path, target_name, example):
    tgt = targets.get(target_name)
    with open(example_path(example), encoding="utf-8") as f:
        files = _named_files(yaml.safe_load(f))
    outputs = []
    for folder in (tmp_path / "one", tmp_path / "two" / "checkout" / "examples"):
        result = check_file(_copy(example, folder, files), Options(), tgt)
        assert "LBC106" not in ids(result)          # the files beside the copy were found and read
        outputs.append(None if result.failed else render(result.model, tgt))
    assert outputs[0] == outputs[1]
    for text in (outputs[0] or {}).values():
        assert str(tmp_path) not in text


def test_relative_certificate_is_read_beside_the_topology_not_in_the_current_directory(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    for folder, names in ((project, ["a.example.com", "b.example.com"]), (elsewhere, ["wrong.example.org"])):
        (folder / "certs").mkdir(parents=True)
        (folder / "certs" / "site.pem").write_bytes(cert_pem("site", names))
        (folder / "certs" / "site.key").write_bytes(key_pem("site"))
    (project / "topology.yaml").write_text("""\
lbc: 1
vips: {v: {address: 127.0.0.10}}
certificates:
  site: {cert: certs/site.pem, key: certs/site.key}
services:
  app: {servers: [{name: a1, address: 127.0.0.11, port: 8080}]}
listeners:
  - name: web
    vip: v
    port: 8443
    tls: {mode: terminate, certificates: [site]}
    routes: [{hosts: [a.example.com, b.example.com], service: app}]
""", encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    result = check_file(str(project / "topology.yaml"), Options())
    assert result.model is not None and not result.failed, [str(d) for d in result.diagnostics]
    site = result.model.certificate("site")
    assert site.names_from_file and site.names == ("a.example.com", "b.example.com")
    assert (site.cert, site.key) == ("certs/site.pem", "certs/site.key")      # kept as written for the targets
    assert result.model.local_file(site.cert) == str(project / "certs" / "site.pem")
    assert "LBC106" not in ids(result)


def test_absolute_path_is_read_and_written_as_it_is(tmp_path):
    pem = tmp_path / "pki" / "site.pem"
    pem.parent.mkdir()
    pem.write_bytes(cert_pem("site", ["a.example.com"]))
    (tmp_path / "topology.yaml").write_text(f"""\
lbc: 1
vips: {{v: {{address: 127.0.0.10}}}}
certificates:
  site: {{cert: {pem}}}
services:
  app: {{servers: [{{name: a1, address: 127.0.0.11, port: 8080}}]}}
listeners:
  - {{name: web, vip: v, port: 8443, tls: {{mode: passthrough, certificates: [site]}},
     routes: [{{hosts: [a.example.com], service: app}}]}}
""", encoding="utf-8")
    result = check_file(str(tmp_path / "topology.yaml"), Options())
    assert result.model is not None, [str(d) for d in result.diagnostics]
    site = result.model.certificate("site")
    assert site.names_from_file and site.cert == str(pem) == result.model.local_file(site.cert)


def test_missing_relative_file_is_reported_where_lbc_looked(tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "topology.yaml").write_text("""\
lbc: 1
vips: {v: {address: 127.0.0.10}}
certificates:
  site: {cert: certs/missing.pem, names: [a.example.com]}
services:
  app: {servers: [{name: a1, address: 127.0.0.11, port: 8080}]}
listeners:
  - {name: web, vip: v, port: 8443, tls: {mode: passthrough, certificates: [site]},
     routes: [{hosts: [a.example.com], service: app}]}
""", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = check_file(str(tmp_path / "project" / "topology.yaml"), Options())
    missing = [d for d in result.diagnostics if d.id == "LBC106"]
    assert len(missing) == 1 and str(tmp_path / "project" / "certs" / "missing.pem") in missing[0].message
