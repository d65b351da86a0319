"""Test certificates made at test time (never committed): the files the rules' examples name.

certs/site.pem   *.example.com, example.com        certs/a.pem  a.example.com
certs/b.pem      b.example.com                     certs/expiring.pem  *.example.com, 10 days left
certs/other.key  a key that matches no certificate certs/ca.pem  a CA certificate
certs/broken.pem not PEM at all                    certs/locked.key  a passphrase-protected key
"""
from __future__ import annotations

import datetime
import functools
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


@functools.lru_cache(maxsize=None)
def _key(label: str):
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(label: str, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return _key(label).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def cert_pem(label: str, names: list[str], days_left: int = 365, days_valid_from: int = -1,
             ca: bool = False, san: bool = True) -> bytes:
    key = _key(label)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else label)])
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOW + datetime.timedelta(days=days_valid_from))
         .not_valid_after(NOW + datetime.timedelta(days=days_left)))
    if san and names:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def write_standard_set(folder: pathlib.Path) -> pathlib.Path:
    """Write the certificates the rule examples name into folder/certs; returns that folder."""
    d = folder / "certs"
    d.mkdir(parents=True, exist_ok=True)
    files = {
        "site.pem": cert_pem("site", ["*.example.com", "example.com"]), "site.key": key_pem("site"),
        "a.pem": cert_pem("a", ["a.example.com"]), "a.key": key_pem("a"),
        "b.pem": cert_pem("b", ["b.example.com"]), "b.key": key_pem("b"),
        "expiring.pem": cert_pem("expiring", ["*.example.com", "example.com"], days_left=10),
        "expiring.key": key_pem("expiring"),
        "other.key": key_pem("other"),
        "ca.pem": cert_pem("ca", ["Test CA"], ca=True, san=False),
        "broken.pem": b"this is not a certificate\n",
        "locked.key": key_pem("site", password=b"secret"),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d
