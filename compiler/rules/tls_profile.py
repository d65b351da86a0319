"""LBC227-LBC230: TLS profiles (Mozilla's server-side recommendations) and explicit cipher lists.

No vendor guide of the seeds names cipher suites; the rules rest on Mozilla's Server Side TLS
guidelines (lbc.tls_profiles holds the tables) and RFC 8446/8996.
"""
from __future__ import annotations

from typing import Iterator

from ..model import Topology
from ..tls_profiles import CURVE_ALIASES, GUIDELINES, KNOWN_CIPHERS, KNOWN_CIPHERSUITES, KNOWN_CURVES, PROFILES
from . import Finding, Rule, register
from .common import E, replace_in, tls_path, y

BASE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    certificates:
      site: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com", example.com]}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
        health: {tcp: true}
    listeners:
      - name: web
        vip: public
        port: 443
        tls: {mode: terminate, certificates: [site], profile: modern}
        routes:
          - {hosts: [www.example.com], service: web}
    """)


def variant(*pairs: str) -> str:
    return replace_in(BASE, *pairs)




# ------------------------------------------------------------------ LBC227
def check_profile_min_version(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        t = l.tls
        if not t.decrypts or not {"profile", "min_version"} <= set(t.written):
            continue
        p = PROFILES[t.profile]
        if t.min_version not in p.min_versions:
            yield Finding(tls_path(l, "min_version"), f"listener '{l.name}': TLS profile {t.profile} accepts TLS "
                          f"{', '.join(p.versions)}, so min_version {t.min_version} contradicts it",
                          hint=f"drop min_version (the profile gives {p.versions[0]}), or choose the profile that "
                               f"starts at TLS {t.min_version}: "
                               f"{'modern' if t.min_version == '1.3' else 'intermediate' if t.min_version == '1.2' else 'old'}",
                          related=((tls_path(l, "profile"), "the profile"),))


register(Rule(
    "LBC227", "tls-profile-min-version", E,
    "min_version must agree with the TLS profile: modern is TLS 1.3, intermediate starts at 1.2, old at 1.0 "
    "(1.1 or 1.2 allowed).",
    "Drop min_version and let the profile set it, or choose the profile that starts at that version.",
    f"{GUIDELINES}; RFC 8996 (Deprecating TLS 1.0 and TLS 1.1)",
    why="A profile is a set of versions and the cipher suites made for them. modern with min_version 1.2 would "
        "accept TLS 1.2 with no TLS 1.2 cipher suite to offer (handshakes fail); intermediate with 1.3 never "
        "uses its TLS 1.2 suites, which is modern under another name; intermediate with 1.0 accepts versions "
        "its AEAD-only suites cannot serve. `old` may start later than 1.0: old cipher suites for clients "
        "that speak TLS 1.2 but not AES-GCM.",
    bad=variant("profile: modern}", 'profile: modern, min_version: "1.2"}'),
    good=variant("profile: modern}", 'profile: intermediate, min_version: "1.2"}'),
    check=check_profile_min_version,
))


# ------------------------------------------------------------------ LBC228
def check_tls_settings_need_decrypt(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        if l.decrypts:
            continue
        t = l.tls
        given = [k for k in ("profile", "ciphers", "ciphersuites", "curves") if k in t.written]
        if t.mode == "none" or not given:
            continue
        yield Finding(tls_path(l, given[0]), f"listener '{l.name}' passes TLS through: the servers, not the "
                      f"balancer, choose versions and cipher suites, so `{given[0]}` has no effect", key=True,
                      hint="set these on the servers, or terminate (or bridge) TLS at the balancer")


register(Rule(
    "LBC228", "tls-profile-needs-decrypt", E,
    "A TLS profile or cipher list on a passthrough listener (the servers hold the TLS settings there).",
    "Remove the setting, or use tls mode terminate or bridge.",
    f"{GUIDELINES}; RFC 8446 (TLS 1.3) §4.1",
    why="In passthrough the client's handshake reaches the servers unchanged; the balancer only reads the "
        "server name. Which versions and suites are accepted is decided by the servers' own TLS settings.",
    bad=variant("tls: {mode: terminate, certificates: [site], profile: modern}", "tls: {mode: passthrough, profile: modern}"),
    good=variant("tls: {mode: terminate, certificates: [site], profile: modern}", "tls: {mode: passthrough}"),
    check=check_tls_settings_need_decrypt,
))


# ------------------------------------------------------------------ LBC229
def check_ciphers_without_tls12(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        t = l.tls
        if t.decrypts and t.min_version == "1.3" and t.ciphers is not None:
            yield Finding(tls_path(l, "ciphers"), f"listener '{l.name}' accepts TLS 1.3 only: its `ciphers` "
                          "(TLS 1.2 and older suites) are never used", key=True,
                          hint="TLS 1.3 suites go in `ciphersuites`; or accept TLS 1.2 (profile intermediate)")


register(Rule(
    "LBC229", "tls12-ciphers-with-tls13-only", E,
    "Explicit `ciphers` (TLS 1.2 and older) on a listener that accepts TLS 1.3 only.",
    "Name TLS 1.3 suites in `ciphersuites`, or accept TLS 1.2.",
    f"{GUIDELINES}; RFC 8446 (TLS 1.3) §B.4",
    why="TLS 1.3 negotiates its own cipher suites (TLS_AES_128_GCM_SHA256 and the like), configured apart "
        "from the TLS 1.2 list. A TLS 1.2 list on a TLS 1.3-only listener is a setting that does nothing, "
        "most likely a profile or min_version chosen by mistake.",
    bad=variant("profile: modern}", "profile: modern, ciphers: [ECDHE-RSA-AES128-GCM-SHA256]}"),
    good=variant("profile: modern}", "profile: modern, ciphersuites: [TLS_AES_256_GCM_SHA384]}"),
    check=check_ciphers_without_tls12,
))


# ------------------------------------------------------------------ LBC230
def check_known_names(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        t = l.tls
        for key, known in (("ciphers", KNOWN_CIPHERS), ("ciphersuites", KNOWN_CIPHERSUITES), ("curves", KNOWN_CURVES)):
            seen: dict[str, str] = {}
            for k, name in enumerate(getattr(t, key) or ()):
                if name not in known:
                    yield Finding(tls_path(l, key) + (k,), f"listener '{l.name}': '{name}' is not a {key[:-1]} lbc knows",
                                  hint=f"use one of: {', '.join(sorted(known))}")
                same = CURVE_ALIASES.get(name, name)
                if same in seen:
                    yield Finding(tls_path(l, key) + (k,), f"listener '{l.name}': '{name}' names the same {key[:-1]} "
                                  f"as '{seen[same]}' (OpenSSL refuses the list)", hint="list each one once")
                seen.setdefault(same, name)


register(Rule(
    "LBC230", "tls-unknown-name", E,
    "An explicit cipher suite or group name that lbc does not know, or one listed twice.",
    "Use the OpenSSL name of a suite from Mozilla's profiles, a TLS 1.3 suite, or a known group.",
    f"{GUIDELINES}; RFC 8446 (TLS 1.3) §B.4",
    why="Each proxy treats an unknown name its own way: OpenSSL skips it while one other name matches (the "
        "listener then offers less than the topology says), BoringSSL (Envoy) refuses the whole listener. lbc "
        "accepts the names of Mozilla's profiles (the old profile lists every suite still worth offering), the "
        "TLS 1.3 suites and the common groups, which every target can express.",
    bad=variant("profile: modern}", "profile: intermediate, ciphers: [ECDHE-RSA-AES128-GCM-SHA256, RC4-MD5]}"),
    good=variant("profile: modern}", "profile: intermediate, ciphers: [ECDHE-RSA-AES128-GCM-SHA256]}"),
    check=check_known_names,
))
