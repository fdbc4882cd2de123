"""Certificates and keys for a loopback control plane.

kube-apiserver needs a serving certificate, and a key pair to sign and verify service-account
tokens. Clients authenticate with a static bearer token in system:masters, so no client
certificates are needed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scheduler import tls


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_public: Path
    sa_private: Path
    token_file: Path
    admin_token: str


def write_pki(directory: Path) -> Pki:
    """Write a CA, a serving cert for 127.0.0.1/localhost, SA keys and a static token file."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = tls.certificate_authority("berth-test-ca")
    hosts = ("localhost", "kubernetes", "kubernetes.default.svc", "127.0.0.1", "10.0.0.1")
    serving = tls.serving_certificate(ca, "kube-apiserver", hosts)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = secrets.token_hex(24)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_public=directory / "sa.pub",
        sa_private=directory / "sa.key",
        token_file=directory / "tokens.csv",
        admin_token=token,
    )
    pem = serialization.Encoding.PEM
    pki.ca_cert.write_bytes(ca.cert_pem())
    pki.serving_cert.write_bytes(serving.cert_pem())
    tls.write_private(pki.serving_key, serving.key_pem())
    tls.write_private(
        pki.sa_private,
        sa_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    pki.sa_public.write_bytes(
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    tls.write_private(
        pki.token_file, f'{token},berth-admin,berth-admin,"system:masters"\n'.encode()
    )
    return pki


def load_pki(directory: Path) -> Pki:
    """The Pki that write_pki() wrote into `directory` earlier (to restart a component)."""
    token_file = directory / "tokens.csv"
    token = token_file.read_text().split(",", 1)[0]
    return Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_public=directory / "sa.pub",
        sa_private=directory / "sa.key",
        token_file=token_file,
        admin_token=token,
    )
