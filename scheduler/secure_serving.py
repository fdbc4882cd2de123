"""Turns `ServingOptions` into what the HTTPS listener needs (`server.Security`), as
kube-scheduler's options Config() does before it serves:

- the serving certificate: `--tls-cert-file`/`--tls-private-key-file`, else a self-signed pair
  for `localhost` and 127.0.0.1 (apiserver's MaybeDefaultWithSelfSignedCerts), kept as
  `berth.crt`/`berth.key` in `--cert-dir`, or only in memory when no directory is given;
- the client CA that client certificates are verified against: `--client-ca-file`, else the
  `client-ca-file` of kube-system/extension-apiserver-authentication unless
  `--authentication-skip-lookup`; a failed lookup is a warning with
  `--authentication-tolerate-lookup-failure` (the default) and an error without it;
- TokenReviews and SubjectAccessReviews through `--authentication-kubeconfig` and
  `--authorization-kubeconfig`, or the scheduler's own credentials when those are empty, each on
  a client of its own so that reviews never queue behind bindings.

Errors (unreadable files, a certificate that does not match its key, a failed lookup that is
not tolerated) raise `SetupError` with a message naming the flag.
"""

from __future__ import annotations

import logging
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scheduler import tls
from scheduler.kube.client import Client, Credentials
from scheduler.kube.delegation import AccessReviews, TokenReviews, client_ca_from_cluster
from scheduler.server import Security
from scheduler.serving import ServingOptions

log = logging.getLogger("berth.serving")

PAIR_NAME = "berth"
"""The self-signed pair's file names in --cert-dir (kube-scheduler's is "kube-scheduler")."""

SELF_SIGNED_HOST = "localhost"
SELF_SIGNED_IPS = ("127.0.0.1",)


class SetupError(Exception):
    """Secure serving cannot be set up; the message names the flag or the step."""


@dataclass
class Prepared:
    """The listener's Security, and the clients made for it (close them when done)."""

    security: Security
    clients: list[Client]
    cert_sha256: str
    """Hex SHA-256 of the serving certificate (DER), for clients that pin it."""

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


async def prepare(options: ServingOptions, client: Client) -> Prepared:
    """Security for `options` (module docstring); `client` is the scheduler's own."""
    clients: list[Client] = []
    try:
        authn = _review_client(
            "--authentication-kubeconfig", options.authentication_kubeconfig, client, clients
        )
        authz = _review_client(
            "--authorization-kubeconfig", options.authorization_kubeconfig, client, clients
        )
        client_ca = await _client_ca(options, authn)
        context, fingerprint = _ssl_context(options, client_ca)
    except BaseException:
        for made in clients:
            await made.close()
        raise
    security = Security(
        ssl_context=context,
        tokens=TokenReviews(authn, ttl=options.authentication_token_webhook_cache_ttl),
        authorizer=AccessReviews(
            authz,
            authorized_ttl=options.authorization_webhook_cache_authorized_ttl,
            unauthorized_ttl=options.authorization_webhook_cache_unauthorized_ttl,
        ),
        always_allow_paths=options.authorization_always_allow_paths,
        always_allow_groups=options.authorization_always_allow_groups,
    )
    return Prepared(security, clients, fingerprint)


def _review_client(flag: str, kubeconfig: str, own: Client, made: list[Client]) -> Client:
    if kubeconfig:
        try:
            creds = Credentials.load(kubeconfig)
        except Exception as err:  # kubernetes' ConfigException, an unreadable file
            raise SetupError(f"{flag}: cannot load {kubeconfig}: {err}") from err
    else:
        creds = own.creds
    # Reviews are small and few (cached 10 s): no rate limit, a couple of connections.
    review = Client(creds, qps=0, connections=4, write_connections=2, user_agent="berth/auth")
    made.append(review)
    return review


async def _client_ca(options: ServingOptions, client: Client) -> bytes | None:
    if options.client_ca_file:
        try:
            return Path(options.client_ca_file).read_bytes()
        except OSError as err:
            raise SetupError(f"--client-ca-file: {err}") from err
    if options.authentication_skip_lookup:
        return None
    try:
        return await client_ca_from_cluster(client)
    except Exception as err:  # 403 without the reader Role, 404, the API server unreachable
        if not options.authentication_tolerate_lookup_failure:
            raise SetupError(
                "cannot read kube-system/extension-apiserver-authentication (client CA); "
                "--authentication-tolerate-lookup-failure=true serves without client"
                f" certificate authentication: {err}"
            ) from err
        log.warning(
            "cannot read the client CA from the cluster; client certificates are not accepted",
            extra={"error": str(err)},
        )
        return None


def _ssl_context(options: ServingOptions, client_ca: bytes | None) -> tuple[ssl.SSLContext, str]:
    if options.tls_cert_file:
        cert, key = Path(options.tls_cert_file), Path(options.tls_private_key_file)
        return _load(options, cert, key, client_ca, "--tls-cert-file/--tls-private-key-file")
    if options.cert_dir:
        try:
            cert, key = tls.write_self_signed(
                Path(options.cert_dir), PAIR_NAME, SELF_SIGNED_HOST, SELF_SIGNED_IPS
            )
        except OSError as err:
            raise SetupError(
                f"--cert-dir: cannot write the self-signed certificate: {err}"
            ) from err
        log.info("serving with a self-signed certificate", extra={"cert": str(cert)})
        return _load(options, cert, key, client_ca, "--cert-dir")
    # In memory only, as kube-scheduler's default: Python's ssl loads keys from files, so they
    # pass through a private temporary directory that is removed at once.
    with tempfile.TemporaryDirectory(prefix="berth-serving-") as scratch:
        cert, key = tls.write_self_signed(
            Path(scratch), PAIR_NAME, SELF_SIGNED_HOST, SELF_SIGNED_IPS
        )
        return _load(options, cert, key, client_ca, "the self-signed certificate")


def _load(
    options: ServingOptions, cert: Path, key: Path, client_ca: bytes | None, what: str
) -> tuple[ssl.SSLContext, str]:
    try:
        context = tls.server_context(
            cert,
            key,
            min_version=options.tls_min_version,
            ciphers=options.openssl_ciphers,
            client_ca=client_ca,
        )
        return context, tls.fingerprint(cert.read_bytes())
    except (OSError, ssl.SSLError, ValueError) as err:
        raise SetupError(f"{what}: cannot be used for serving: {err}") from err
