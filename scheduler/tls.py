"""Throwaway certificates: a self-signed CA and serving certificates it signs.

Used by the local control plane (scheduler/harness/pki.py) and by `berth webhook` when it is
given no certificate of its own, and by `berth run`'s HTTPS port (its self-signed pair, as
apiserver's MaybeDefaultWithSelfSignedCerts makes one, and its `ssl.SSLContext`). Keys are EC
P-256, certificates valid for a year from five minutes ago (clock skew between processes on one
machine).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID = dt.timedelta(days=365)


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _start() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate_authority(common_name: str) -> Issued:
    """A self-signed CA that may sign leaf certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = _start()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def serving_certificate(ca: Issued, common_name: str, hosts: Iterable[str]) -> Issued:
    """A server certificate signed by `ca` for `hosts` (IP addresses or DNS names)."""
    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    start = _start()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALID)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(key, cert)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only (created so: never briefly world-readable)."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)


def self_signed_serving(host: str, ips: Iterable[str] = ("127.0.0.1",)) -> tuple[Issued, Issued]:
    """A CA and the serving certificate it signs for `host` (a DNS name) and `ips`, named as
    client-go's GenerateSelfSignedCertKey names them (`<host>-ca@<unix time>`,
    `<host>@<unix time>`); apiserver's MaybeDefaultWithSelfSignedCerts uses them when a
    component is given no certificate."""
    stamp = int(dt.datetime.now(dt.UTC).timestamp())
    ca = certificate_authority(f"{host}-ca@{stamp}")
    return ca, serving_certificate(ca, f"{host}@{stamp}", [host, *ips])


def write_self_signed(
    directory: Path, pair: str, host: str, ips: Iterable[str]
) -> tuple[Path, Path]:
    """`<directory>/<pair>.crt` (the serving certificate, then its CA) and `<pair>.key`,
    generated unless both exist already (kept across restarts, as upstream keeps them)."""
    cert, key = directory / f"{pair}.crt", directory / f"{pair}.key"
    if cert.is_file() and key.is_file():
        return cert, key
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    ca, leaf = self_signed_serving(host, ips)
    cert.write_bytes(leaf.cert_pem() + ca.cert_pem())
    write_private(key, leaf.key_pem())
    return cert, key


_TLS_VERSIONS = {
    "VersionTLS10": ssl.TLSVersion.TLSv1,
    "VersionTLS11": ssl.TLSVersion.TLSv1_1,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}


def server_context(
    cert_file: Path,
    key_file: Path,
    *,
    min_version: str = "VersionTLS12",
    ciphers: str = "",
    client_ca: bytes | None = None,
) -> ssl.SSLContext:
    """A TLS server context: `min_version` is Go's name (VersionTLS10..13), `ciphers` an
    OpenSSL cipher string ("" = the library's default), `client_ca` PEM CA certificates that
    client certificates are verified against (asked for, not required: a client without one
    authenticates otherwise). Raises ssl.SSLError/OSError for unreadable or mismatched files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS[min_version]
    if ciphers:
        ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca:
        ctx.load_verify_locations(cadata=client_ca.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def fingerprint(pem: bytes) -> str:
    """Hex SHA-256 of the DER form of the first certificate in `pem` (what a client pins)."""
    cert = x509.load_pem_x509_certificate(pem)
    return cert.fingerprint(hashes.SHA256()).hex()


def client_certificate(ca: Issued, user: str, groups: Iterable[str] = ()) -> Issued:
    """A client certificate signed by `ca` for Kubernetes' x509 authentication: the user is
    the CN, each group an O (apiserver's CommonNameUserConversion)."""
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    key = ec.generate_private_key(ec.SECP256R1())
    start = _start()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALID)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(key, cert)
