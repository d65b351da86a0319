"""Scenarios S28 (HSTS and header changes) and S31 (TLS profiles) of CONFORMANCE.md, against every
selected target.

The fixtures, helpers and outcome recording are the conformance suite's (integration/conftest.py,
integration/test_conformance.py): results land in the same scenario x target matrix.
"""
from __future__ import annotations

import ssl

import pytest

from harness import client
from harness.env import server
from lbc.tls_profiles import PROFILES
from test_conformance import CLIENT, scenario

pytestmark = [pytest.mark.conformance, pytest.mark.integration]

# Literal text that each target's substitution syntax would read (HAProxy `%[`, nginx `$`, Envoy `%..%`,
# Tcl `$ [ ] { } \\`, config quotes and comments): it must arrive byte for byte.
HOSTILE_VALUE = "100% %[src] $host ${x} %UPSTREAM_HOST% 'q' \"d\" \\ {x} [y]; #z"
# as the topology writes it: `${` starts an lbc placeholder, `$${` is a literal `${`
WRITTEN = HOSTILE_VALUE.replace("${", "$${")
HSTS = "max-age=31536000; includeSubDomains"
# Whether the answers the proxy writes itself (here: 404 for a host no route names) carry HSTS, as the
# targets' capability notes declare it.
OWN_ANSWERS_CARRY_HSTS = {"haproxy": True, "nginx": True, "envoy": False}

HEADERS = {"request": {"set": {"X-Lbc-Env": WRITTEN}, "remove": ["X-Debug"]},
           "response": {"set": {"X-Frame-Options": "DENY"}, "add": {"X-Lbc-Added": WRITTEN},
                        "remove": ["X-Remove-Me"]}}
ASK = "/?respond_header=X-Remove-Me:1&respond_header=X-Lbc-Added:server&respond_header=X-Frame-Options:ALLOW"


def _check_changes(r) -> None:
    assert r.status == 200, (r.status, r.text[:200])
    assert r.seen_header("X-Lbc-Env") == [HOSTILE_VALUE], "set replaces the client's value, literally"
    assert r.seen_header("X-Debug") == [], "remove takes the client's header away"
    assert r.header_all("X-Remove-Me") == [], "remove takes the server's header away"
    assert r.header_all("X-Frame-Options") == ["DENY"], "set replaces the server's value"
    assert sorted(r.header_all("X-Lbc-Added")) == sorted(["server", HOSTILE_VALUE]), "add keeps the server's"


@scenario("S28")
def test_s28_hsts_and_header_changes(env):
    a, b = env.backends("a", "b")
    cert = env.cert("lb-hsts", ["hsts.test"])
    lb = env.deploy({"app": {"servers": [server(a), server(b)]}},
                    [{"name": "web", "headers": HEADERS, "routes": [{"service": "app"}]},
                     {"name": "tls", "tls": {"mode": "terminate", "certificates": ["hsts"]},
                      "hsts": {"max_age": "1y", "include_subdomains": True}, "headers": HEADERS,
                      "routes": [{"hosts": ["hsts.test"], "service": "app"}]}],
                    certificates={"hsts": {"cert": cert.cert, "key": cert.key}})
    ctx = client.tls_context(env.ca)
    sent = {"X-Debug": "1", "X-Lbc-Env": "from-the-client"}
    addr, port = lb.addr("tls")
    for _ in range(4):                                   # both servers, fresh connections
        r = client.request(addr, port, ASK, host="hsts.test", tls=ctx, source=CLIENT, headers=sent)
        _check_changes(r)
        assert r.header_all("Strict-Transport-Security") == [HSTS]
    # an answer the proxy writes itself: no route for this host name
    r = client.request(addr, port, "/", host="other.test", sni="hsts.test", tls=ctx, source=CLIENT)
    assert r.status == 404, r.status
    assert r.header_all("Strict-Transport-Security") == ([HSTS] if OWN_ANSWERS_CARRY_HSTS[env.target] else [])
    # plain HTTP: the same header changes, never HSTS
    addr, port = lb.addr("web")
    for _ in range(4):
        r = client.request(addr, port, ASK, source=CLIENT, headers=sent)
        _check_changes(r)
        assert r.header_all("Strict-Transport-Security") == []


# ---------------------------------------------------------------- S31 TLS profiles

def _handshake(lb, listener: str, *, versions: tuple, ciphers: str = "", ca=None):
    """(TLS version, cipher) a client offering only `versions` and `ciphers` (OpenSSL names; TLS 1.2 and
    older) negotiates, or None when the balancer refuses it. The certificates here are ECDSA."""
    ctx = client.tls_context(ca)
    ctx.minimum_version, ctx.maximum_version = versions
    if ciphers:
        ctx.set_ciphers(ciphers)
    addr, port = lb.addr(listener)
    try:
        with client.connect(addr, port, source=CLIENT, tls=ctx, sni="tls.test") as s:
            return s.version(), s.cipher()[0]
    except (ssl.SSLError, ConnectionError, OSError):
        return None


TLS10, TLS12, TLS13 = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
CBC = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"                 # TLS 1.2 with CBC only
GCM = "ECDHE-ECDSA-AES128-GCM-SHA256"


@scenario("S31")
def test_s31_tls_profiles(env):
    """Mozilla's guidelines 5.7: modern is TLS 1.3 only; intermediate is TLS 1.2 with AEAD suites (no CBC:
    a CBC-only TLS 1.2 client is refused there too, unlike CONFORMANCE.md's wording); old takes it, and
    TLS 1.0 (OpenSSL 3 at security level 0, which the client must lower as well)."""
    a = env.backend("a")
    cert = env.cert("lb-tls", ["tls.test"])
    lb = env.deploy({"app": {"servers": [server(a)]}},
                    [{"name": p, "tls": {"mode": "terminate", "certificates": ["site"], "profile": p},
                      "routes": [{"service": "app"}]} for p in ("modern", "intermediate", "old")],
                    certificates={"site": {"cert": cert.cert, "key": cert.key}})
    within = {p: set(PROFILES[p].ciphers) | set(PROFILES[p].ciphersuites) for p in PROFILES}
    # a client offering only TLS 1.2 with CBC suites
    assert _handshake(lb, "modern", versions=(TLS12, TLS12), ciphers=CBC, ca=env.ca) is None
    assert _handshake(lb, "intermediate", versions=(TLS12, TLS12), ciphers=CBC, ca=env.ca) is None
    got = _handshake(lb, "old", versions=(TLS12, TLS12), ciphers=CBC, ca=env.ca)
    assert got is not None and got[0] == "TLSv1.2" and got[1] in within["old"] and "GCM" not in got[1], got
    # TLS 1.2 with an AEAD suite: intermediate and old, not modern
    assert _handshake(lb, "modern", versions=(TLS12, TLS12), ciphers=GCM, ca=env.ca) is None
    for p in ("intermediate", "old"):
        got = _handshake(lb, p, versions=(TLS12, TLS12), ciphers=GCM, ca=env.ca)
        assert got == ("TLSv1.2", GCM), (p, got)
    # TLS 1.3: every profile, with one of its suites
    for p in ("modern", "intermediate", "old"):
        got = _handshake(lb, p, versions=(TLS13, TLS13), ca=env.ca)
        assert got is not None and got[0] == "TLSv1.3" and got[1] in within[p], (p, got)
    # TLS 1.0: old only
    for p in ("modern", "intermediate"):
        assert _handshake(lb, p, versions=(TLS10, TLS10), ciphers=CBC + ":@SECLEVEL=0", ca=env.ca) is None, p
    got = _handshake(lb, "old", versions=(TLS10, TLS10), ciphers=CBC + ":@SECLEVEL=0", ca=env.ca)
    assert got is not None and got[0] == "TLSv1" and got[1] in within["old"], got
    # and the listeners serve HTTP once the handshake is done
    addr, port = lb.addr("old")
    assert client.request(addr, port, "/", host="tls.test", tls=client.tls_context(env.ca), source=CLIENT).status == 200
