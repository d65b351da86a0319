"""Reading PEM files: certificate SAN names and validity, private keys, key match; RFC 6125 host coverage.

Every reader returns None (or a status) instead of raising: a topology names files that may be
absent (CI without secrets) or broken, and the rules turn each case into a diagnostic.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Optional

from .safeio import read_regular

MAX_PEM_BYTES = 1024 * 1024
_KEY_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)


@dataclass(frozen=True)
class CertInfo:
    names: tuple[str, ...]     # SAN DNS names, lower case (the CN only when there is no SAN)
    not_after: str             # ISO 8601, UTC
    not_before: str = ""       # ISO 8601, UTC
    public_key: bytes = b""    # DER SubjectPublicKeyInfo, to compare with a private key


def _read(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    try:
        return read_regular(path, MAX_PEM_BYTES)[:MAX_PEM_BYTES]
    except OSError:  # absent, unreadable, or not a regular file (a FIFO would block forever)
        return None


def _spki(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@lru_cache(maxsize=1024)
def read_certificate(path: Optional[str]) -> Optional[CertInfo]:
    """The first certificate of a PEM file, or None when the file is absent or unreadable."""
    data = _read(path)
    if data is None:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    except ValueError:  # a malformed extension
        names = []
    try:
        spki = _spki(cert.public_key())
    except Exception:  # noqa: BLE001 - an algorithm cryptography cannot load: no key comparison
        spki = b""
    return CertInfo(tuple(sorted({str(n).lower() for n in names})), cert.not_valid_after_utc.isoformat(),
                    cert.not_valid_before_utc.isoformat(), spki)


def count_certificates(path: Optional[str]) -> int:
    """How many certificates a PEM bundle (CA file) holds; 0 when absent or not PEM."""
    data = _read(path)
    if data is None:
        return 0
    from cryptography import x509
    try:
        return len(x509.load_pem_x509_certificates(data))
    except ValueError:
        return 0


@dataclass(frozen=True)
class KeyInfo:
    status: str                # ok | absent | not-pem | encrypted
    public_key: bytes = b""


@lru_cache(maxsize=1024)
def read_private_key(path: Optional[str]) -> KeyInfo:
    """The private key of a PEM file (which may also hold certificates, as HAProxy's do)."""
    data = _read(path)
    if data is None:
        return KeyInfo("absent")
    block = _KEY_BLOCK.search(data)
    if block is None:
        return KeyInfo("not-pem")
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    try:
        key = load_pem_private_key(block.group(0), password=None)
    except TypeError:  # "password was not given but private key is encrypted"
        return KeyInfo("encrypted")
    except Exception:  # noqa: BLE001 - any parse failure of an untrusted file (bad DER, unknown algorithm)
        return KeyInfo("not-pem")
    return KeyInfo("ok", _spki(key.public_key()))


def exists(path: Optional[str]) -> bool:
    return path is not None and path != "" and os.path.isfile(path)


def validity_problem(info: CertInfo, now: Optional[datetime] = None, warn_days: int = 30) -> Optional[str]:
    """Why a certificate is not (or soon not) valid, or None."""
    now = now or datetime.now(timezone.utc)
    not_after = datetime.fromisoformat(info.not_after)
    if info.not_before and now < datetime.fromisoformat(info.not_before):
        return f"is not valid before {info.not_before[:10]}"
    if now >= not_after:
        return f"expired on {info.not_after[:10]}"
    days = (not_after - now).days
    if days < warn_days:
        return f"expires on {info.not_after[:10]}, in {days} day(s)"
    return None


def covers(cert_name: str, host: str) -> bool:
    """RFC 6125: a wildcard matches exactly one whole leftmost label."""
    cert_name, host = cert_name.lower().rstrip("."), host.lower().rstrip(".")
    if cert_name == host:
        return True
    if cert_name.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == cert_name[2:] and head != "*"
    return False


def covered_by(names: tuple[str, ...] | list[str], host: str) -> bool:
    return any(covers(n, host) for n in names)
