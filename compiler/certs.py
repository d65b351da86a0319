"""Reading PEM certificates: SAN names, validity, key match; RFC 6125 host coverage."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional


@dataclass(frozen=True)
class CertInfo:
    names: tuple[str, ...]     # SAN DNS names, lower case (the CN only when there is no SAN)
    not_after: str             # ISO 8601, UTC


@lru_cache(maxsize=1024)
def read_certificate(path: Optional[str]) -> Optional[CertInfo]:
    """The first certificate of a PEM file, or None when the file is absent or unreadable."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(1024 * 1024)
    except OSError:
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
        names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return CertInfo(tuple(sorted({str(n).lower() for n in names})), cert.not_valid_after_utc.isoformat())


def covers(cert_name: str, host: str) -> bool:
    """RFC 6125: a wildcard matches exactly one whole leftmost label."""
    cert_name, host = cert_name.lower().rstrip("."), host.lower().rstrip(".")
    if cert_name == host:
        return True
    if cert_name.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == cert_name[2:] and head != "*"
    return False
