"""TLS profiles: Mozilla's server-side recommendations, the one table every target lowers.

The data is Mozilla's "Server Side TLS" guidelines, version 5.7 (the JSON the Mozilla SSL
Configuration Generator publishes as guidelines/5.7.json): for each of modern, intermediate and old,
the TLS versions, the TLS 1.2-and-older cipher suites (OpenSSL names, in Mozilla's order), the TLS 1.3
cipher suites, the key-exchange groups and whether the server's cipher order wins.

What the targets' TLS libraries make of it (verified here, see docs/topology.md "TLS profiles"):
- Debian 12's OpenSSL 3.0 refuses TLS 1.0 and 1.1 at its default security level (their handshake signs
  with SHA-1); `openssl_ciphers()` therefore appends `@SECLEVEL=0` when a listener accepts them, as
  Mozilla's generator does for OpenSSL 3. It has no 3DES (DES-CBC3-SHA) at any level: OpenSSL skips
  the name, the other suites stay.
- Envoy's BoringSSL has no DHE suites and no CBC suites with SHA-384 or with plain-RSA SHA-256; the
  Envoy target keeps the profile's suites BoringSSL offers (targets/envoy.py BORINGSSL_CIPHERS), and
  BoringSSL's TLS 1.3 suites are fixed (the three below, which are also every profile's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

TlsProfileName = Literal["modern", "intermediate", "old"]
PROFILE_NAMES: tuple[str, ...] = get_args(TlsProfileName)
GUIDELINES = 'Mozilla "Server Side TLS" guidelines 5.7 (ssl-config.mozilla.org, guidelines/5.7.json)'
VERSIONS = ("1.0", "1.1", "1.2", "1.3")


@dataclass(frozen=True)
class TlsProfile:
    name: str
    versions: tuple[str, ...]            # the TLS versions the profile accepts, oldest first
    ciphers: tuple[str, ...]             # TLS 1.2 and older, OpenSSL names, preferred first
    ciphersuites: tuple[str, ...]        # TLS 1.3
    curves: tuple[str, ...]              # key-exchange groups, OpenSSL names
    server_order: bool                   # the server's cipher order wins (old only)

    @property
    def min_versions(self) -> tuple[str, ...]:
        """The min_version values that agree with the profile: its oldest version, and for `old` also
        1.1 and 1.2 (old ciphers for clients that speak TLS 1.2 only); never 1.3 unless modern (a 1.3
        floor leaves no use for the profile's TLS 1.2 suites: that is `modern`)."""
        return self.versions[:1] if self.name != "old" else ("1.0", "1.1", "1.2")


_TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
_CURVES = ("X25519", "prime256v1", "secp384r1")
_INTERMEDIATE = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
                 "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305")
_OLD = _INTERMEDIATE + (
    "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256",
    "AES256-SHA256", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA")

PROFILES: dict[str, TlsProfile] = {
    "modern": TlsProfile("modern", ("1.3",), (), _TLS13, _CURVES, server_order=False),
    "intermediate": TlsProfile("intermediate", ("1.2", "1.3"), _INTERMEDIATE, _TLS13, _CURVES, server_order=False),
    "old": TlsProfile("old", VERSIONS, _OLD, _TLS13, _CURVES, server_order=True),
}


# The names an explicit list may use: what the profiles name, and the other groups OpenSSL and
# BoringSSL both know. A name outside these would be refused by one proxy or silently skipped by another.
KNOWN_CIPHERS = frozenset(_OLD)
KNOWN_CIPHERSUITES = frozenset(_TLS13) | {"TLS_AES_128_CCM_SHA256"}
KNOWN_CURVES = frozenset(_CURVES) | {"X448", "secp521r1", "P-256", "P-384", "P-521"}
# other names of the same group: OpenSSL refuses a list that names one group twice
CURVE_ALIASES = {"P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1"}


def profile_for_min_version(min_version: str) -> str:
    """The profile a listener that names only `min_version` gets (so such topologies keep meaning
    what they said): 1.3 modern, 1.2 intermediate, 1.0 and 1.1 old."""
    return {"1.3": "modern", "1.2": "intermediate"}.get(min_version, "old")


def openssl_ciphers(ciphers: tuple[str, ...], min_version: str) -> str:
    """The TLS 1.2-and-older suites as an OpenSSL cipher string (HAProxy `ciphers`, nginx `ssl_ciphers`).
    TLS 1.0/1.1 need security level 0 on OpenSSL 3 (see the module's docstring)."""
    return ":".join(ciphers) + (":@SECLEVEL=0" if min_version in ("1.0", "1.1") else "")
