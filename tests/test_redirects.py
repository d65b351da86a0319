"""redirect_https (S27) below the proxies: the model's reference semantics, and a topology with many
except prefixes (HAProxy's pattern-file form) through every target's real validator. About 5 s."""
from __future__ import annotations

import pytest
import yaml

from lbc import targets
from lbc.model import RedirectHttps

from helpers import check_text
from validators import VALIDATORS

PREFIXES = [f"/p{i}/" for i in range(10)] + ["/.well-known/acme-challenge/"]
DOC = {"lbc": 1, "vips": {"v": {"address": "192.0.2.10"}},
       "services": {"web": {"servers": [{"name": "w1", "address": "10.0.0.11", "port": 8080}]}},
       "listeners": [{"name": "http", "vip": "v", "port": 80,
                      "redirect_https": {"status": 307, "port": 8443, "except": PREFIXES},
                      "routes": [{"hosts": ["www.example.com"], "service": "web"}]}]}


def test_reference_semantics():
    rd = RedirectHttps(308, ("/.well-known/acme-challenge/", "/api/"))
    assert not rd.redirects("/.well-known/acme-challenge/tok") and not rd.redirects("/api/")
    assert rd.redirects("/api") and rd.redirects("/API/x") and rd.redirects("/")
    assert rd.port_suffix == "" and RedirectHttps(301, port=8443).port_suffix == ":8443"


@pytest.mark.parametrize("target", targets.available())
def test_many_except_prefixes_pass_the_real_validator(target, tmp_path):
    tgt = targets.get(target)
    result = check_text(tmp_path, yaml.safe_dump(DOC, sort_keys=False), target=tgt)
    assert not result.failed, [str(d) for d in result.diagnostics]
    files = tgt.render(result.model)
    text = "\n".join(files.values())
    assert all(p.replace(".", "\\\\.") in text or p in text for p in PREFIXES)
    if target == "haproxy":     # beyond 8 prefixes: a pattern file, one line each
        assert files["acl/http.redirect-except"].splitlines()[1:] == PREFIXES
        assert "unless { path_beg -f acl/http.redirect-except }" in files["haproxy.cfg"]
    (tmp_path / "v").mkdir()
    ok, output = VALIDATORS[target](files, tmp_path / "v")
    assert ok, output
