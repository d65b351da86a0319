"""Certificate reading (SAN names, validity, key match) and RFC 6125 host coverage."""
from __future__ import annotations

import datetime

import pytest

from lbc import certs
from lbc.pipeline import check_file

from rules.pki import NOW, cert_pem, key_pem


@pytest.mark.parametrize("name,host,ok", [
    ("push.example.com", "push.example.com", True),
    ("PUSH.example.com.", "push.EXAMPLE.com", True),
    ("*.example.com", "push.example.com", True),
    ("*.example.com", "example.com", False),             # a wildcard needs one label
    ("*.example.com", "a.push.example.com", False),      # and only one
    ("*.example.com", "*.example.com", True),            # a routed wildcard host equals the certificate name
    ("*.push.example.com", "*.example.com", False),
    ("*.example.com", "*.push.example.com", False),
    ("push.example.com", "push1.example.com", False),
])
def test_covers(name, host, ok):
    assert certs.covers(name, host) is ok


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_reads_san_names_lower_case(tmp_path):
    p = write(tmp_path, "c.pem", cert_pem("c", ["Push.Example.com", "*.push.example.com"]))
    info = certs.read_certificate(p)
    assert info.names == ("*.push.example.com", "push.example.com")


def test_falls_back_to_the_common_name_without_san(tmp_path):
    p = write(tmp_path, "cn.pem", cert_pem("cn", ["legacy.example.com"], san=False))
    assert certs.read_certificate(p).names == ("legacy.example.com",)


def test_absent_or_broken_files_read_as_none(tmp_path):
    assert certs.read_certificate(str(tmp_path / "absent.pem")) is None
    assert certs.read_certificate(write(tmp_path, "junk.pem", b"junk")) is None
    assert certs.read_private_key(str(tmp_path / "absent.key")).status == "absent"
    assert certs.read_private_key(write(tmp_path, "junk.key", b"junk")).status == "not-pem"
    bad_key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert certs.read_private_key(write(tmp_path, "bad.key", bad_key)).status == "not-pem"
    assert certs.count_certificates(write(tmp_path, "junk-ca.pem", b"junk")) == 0


def test_key_match_also_in_a_combined_pem(tmp_path):
    cert = cert_pem("k", ["k.example.com"])
    info = certs.read_certificate(write(tmp_path, "k.pem", cert))
    combined = certs.read_private_key(write(tmp_path, "combined.pem", cert + key_pem("k")))
    other = certs.read_private_key(write(tmp_path, "other.key", key_pem("other-k")))
    assert combined.status == "ok" and combined.public_key == info.public_key
    assert other.status == "ok" and other.public_key != info.public_key
    locked = certs.read_private_key(write(tmp_path, "locked.key", key_pem("k", password=b"pw")))
    assert locked.status == "encrypted"


def test_validity_window():
    info = certs.CertInfo(("a",), (NOW + datetime.timedelta(days=40)).isoformat(),
                          (NOW - datetime.timedelta(days=1)).isoformat())
    assert certs.validity_problem(info, NOW) is None
    assert "in 9 day" in certs.validity_problem(info, NOW + datetime.timedelta(days=30, hours=12))
    assert certs.validity_problem(info, NOW + datetime.timedelta(days=41)).startswith("expired on")
    assert certs.validity_problem(info, NOW - datetime.timedelta(days=2)).startswith("is not valid before")


def test_bundle_counts_every_certificate(tmp_path):
    p = write(tmp_path, "bundle.pem", cert_pem("ca1", ["CA 1"], ca=True) + cert_pem("ca2", ["CA 2"], ca=True))
    assert certs.count_certificates(p) == 2


TOPOLOGY = """\
lbc: 1
vips:
  public: {address: 192.0.2.10}
certificates:
  push: {cert: push.pem, key: push.key, names: [push.example.com]}
services:
  push:
    servers:
      - {name: ls1, address: 10.0.6.11, port: 8080}
listeners:
  - name: push
    vip: public
    port: 443
    tls: {mode: terminate, certificates: [push]}
    routes:
      - {hosts: [push.example.com, push1.example.com], service: push}
"""


def test_file_names_win_over_declared_names(tmp_path):
    """CI (no file) trusts the declared names; with the file, its SAN decides, and LBC214 shows the gap."""
    t = tmp_path / "t.yaml"
    t.write_text(TOPOLOGY)
    without = check_file(str(t))
    assert sorted(d.id for d in without.diagnostics) == ["LBC106", "LBC106", "LBC204"]
    (tmp_path / "push.pem").write_bytes(cert_pem("push", ["*.example.com"]))
    (tmp_path / "push.key").write_bytes(key_pem("push"))
    certs.read_certificate.cache_clear()
    certs.read_private_key.cache_clear()
    with_file = check_file(str(t))
    assert with_file.model.certificate("push").names == ("*.example.com",)
    assert with_file.model.certificate("push").names_from_file
    assert [d.id for d in with_file.diagnostics] == []


def test_rules_run_deterministically(tmp_path):
    t = tmp_path / "t.yaml"
    t.write_text(TOPOLOGY)
    runs = [[d.to_dict() for d in check_file(str(t)).diagnostics] for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
