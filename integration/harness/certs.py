"""A certificate factory: a CA, server and client certificates, made per test run (never checked in).

Each certificate is written as NAME.pem (certificate) and NAME.key (private key, PKCS#8), EC P-256
for speed. Issued.names are the SAN DNS names; clients trust a CA through CA.cert.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    name: str
    cert: str                 # PEM certificate path
    key: str                  # PEM private key path
    names: tuple[str, ...] = ()


@dataclass
class CA(Issued):
    _key: object = field(default=None, repr=False)
    _cert: object = field(default=None, repr=False)


def _write_key(key, path: str) -> None:
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)


class CertFactory:
    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def _path(self, name: str, ext: str) -> str:
        return os.path.join(self.folder, f"{name}.{ext}")

    def ca(self, name: str = "lbc-test-ca") -> CA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=7))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        ca = CA(name, self._path(name, "pem"), self._path(name, "key"), (), key, cert)
        with open(ca.cert, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, ca.key)
        return ca

    def issue(self, name: str, ca: CA, names: Sequence[str] = (), *, client: bool = False,
              ips: Sequence[str] = ()) -> Issued:
        """A leaf certificate for `names` (SAN DNS; CN = first name or `name`) signed by `ca`."""
        key = ec.generate_private_key(ec.SECP256R1())
        cn = names[0] if names else name
        now = datetime.datetime.now(datetime.timezone.utc)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                   .issuer_name(ca._cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                         else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca._key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca._key, hashes.SHA256())
        issued = Issued(name, self._path(name, "pem"), self._path(name, "key"), tuple(names))
        with open(issued.cert, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, issued.key)
        return issued

    def client(self, name: str, ca: CA) -> Issued:
        return self.issue(name, ca, (), client=True)


def subject_cn(peer_cert: Optional[dict]) -> Optional[str]:
    """The CN of a certificate as ssl.SSLSocket.getpeercert() returns it."""
    if not peer_cert:
        return None
    return dict(x[0] for x in peer_cert.get("subject", ())).get("commonName")


def san_names(peer_cert: Optional[dict]) -> tuple[str, ...]:
    if not peer_cert:
        return ()
    return tuple(v for k, v in peer_cert.get("subjectAltName", ()) if k == "DNS")
