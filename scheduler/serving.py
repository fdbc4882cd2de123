"""`berth run`'s serving flags: HTTPS with delegated authentication and authorization, as
kube-scheduler v1.37 takes them, and an explicit plain-HTTP port for local use.

The flags, their names and defaults mirror what kube-scheduler registers through apiserver's
`SecureServingOptions`, `DelegatingAuthenticationOptions` and `DelegatingAuthorizationOptions`
(k8s.io/apiserver pkg/server/options, with the overrides in kube-scheduler's
cmd/kube-scheduler/app/options/options.go: `--authentication-tolerate-lookup-failure` defaults to
true there, both kubeconfigs are optional, the certificate pair is named after the component and
kept in memory unless `--cert-dir` is set):

    --secure-port 10259 (0: no HTTPS)      --bind-address 0.0.0.0
    --cert-dir ""  --tls-cert-file  --tls-private-key-file
    --tls-min-version VersionTLS12 (Go's default)  --tls-cipher-suites (Go's names)
    --client-ca-file
    --authentication-kubeconfig ""  --authentication-skip-lookup false
    --authentication-token-webhook-cache-ttl 10s  --authentication-tolerate-lookup-failure true
    --authorization-kubeconfig ""  --authorization-always-allow-paths /healthz,/readyz,/livez
    --authorization-webhook-cache-authorized-ttl 10s
    --authorization-webhook-cache-unauthorized-ttl 10s
    --port 0   plain HTTP without authentication or authorization (kube-scheduler's long-gone
               insecure port), for tests and local runs only

Boolean flags take Go's forms (`--flag`, `--flag=true`, `--flag=false`); durations take Go's
(`10s`, `1m30s`, `500ms`). The requestheader flags (`--requestheader-*`: an authenticating
proxy in front of the scheduler) are not offered.

`serving_options(args)` turns the parsed flags into a frozen `ServingOptions` and raises
`ServingError` naming the flag for a bad value; `berth run` prints it and exits 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SECURE_PORT = 10259
"""kube-scheduler's HTTPS port (pkg/scheduler/apis/config DefaultKubeSchedulerPort)."""

DEFAULT_ALWAYS_ALLOW_PATHS = ("/healthz", "/readyz", "/livez")

TLS_VERSIONS = ("VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13")

# Go's TLS 1.0-1.2 cipher suite names (crypto/tls, as component-base/cli/flag accepts them)
# and the OpenSSL names Python's ssl module selects them by.
CIPHER_SUITES: Mapping[str, str] = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
# TLS 1.3 suites: Go accepts their names but does not let them be chosen; nor does Python.
TLS13_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)


class ServingError(ValueError):
    """A serving flag has a bad value; the message names the flag."""


@dataclass(frozen=True)
class ServingOptions:
    """Where and how `berth run` serves /metrics, the health probes, /configz and /debug.

    Ports are TCP ports; 0 turns that listener off (`secure_port`) or leaves it off (`port`).
    `port_free` asks for an ephemeral plain port instead (in-process tests read the bound one
    from `App.port`). TTLs are seconds. An empty kubeconfig path means the scheduler's own
    credentials, as upstream falls back to its in-cluster config."""

    secure_port: int = DEFAULT_SECURE_PORT
    bind_address: str = "0.0.0.0"
    port: int = 0
    port_free: bool = False
    cert_dir: str = ""
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    tls_min_version: str = "VersionTLS12"
    tls_cipher_suites: tuple[str, ...] = ()
    client_ca_file: str = ""
    authentication_kubeconfig: str = ""
    authentication_skip_lookup: bool = False
    authentication_token_webhook_cache_ttl: float = 10.0
    authentication_tolerate_lookup_failure: bool = True
    authorization_kubeconfig: str = ""
    authorization_always_allow_paths: tuple[str, ...] = DEFAULT_ALWAYS_ALLOW_PATHS
    authorization_always_allow_groups: tuple[str, ...] = field(default=("system:masters",))
    authorization_webhook_cache_authorized_ttl: float = 10.0
    authorization_webhook_cache_unauthorized_ttl: float = 10.0

    @classmethod
    def local(cls, bind_address: str = "127.0.0.1") -> ServingOptions:
        """Plain HTTP on a free port of `bind_address` and no HTTPS: in-process tests, demos."""
        return cls(secure_port=0, bind_address=bind_address, port_free=True)

    @property
    def serves_plain(self) -> bool:
        return self.port > 0 or self.port_free

    @property
    def openssl_ciphers(self) -> str:
        """The `--tls-cipher-suites` as an OpenSSL cipher string ("" = the library's default)."""
        return ":".join(
            dict.fromkeys(CIPHER_SUITES[s] for s in self.tls_cipher_suites if s in CIPHER_SUITES)
        )


def add_serving_flags(parser: argparse.ArgumentParser) -> None:
    """Register the serving flags (module docstring) on `berth run`'s parser. Values are
    checked by `serving_options`, so that each error can name its flag."""
    group = parser.add_argument_group("secure serving (as kube-scheduler)")
    group.add_argument(
        "--secure-port",
        default=str(DEFAULT_SECURE_PORT),
        help="port for HTTPS with authentication and authorization (0: no HTTPS)",
    )
    group.add_argument(
        "--bind-address",
        default="0.0.0.0",
        help="IP address to listen on (0.0.0.0 or :: for all interfaces)",
    )
    group.add_argument(
        "--cert-dir",
        default="",
        help="where the self-signed certificate is kept when --tls-cert-file is not given"
        " (empty: in memory only)",
    )
    group.add_argument("--tls-cert-file", default="", help="x509 serving certificate (PEM)")
    group.add_argument("--tls-private-key-file", default="", help="its private key (PEM)")
    group.add_argument(
        "--tls-min-version", default="", help=f"minimum TLS version: {', '.join(TLS_VERSIONS)}"
    )
    group.add_argument(
        "--tls-cipher-suites", default="", help="comma-separated Go cipher suite names"
    )
    group.add_argument(
        "--client-ca-file",
        default="",
        help="CA bundle for client certificates (default: the cluster's"
        " extension-apiserver-authentication ConfigMap)",
    )
    auth = parser.add_argument_group("delegated authentication and authorization")
    auth.add_argument(
        "--authentication-kubeconfig",
        default="",
        help="kubeconfig for TokenReviews (empty: the scheduler's own credentials)",
    )
    auth.add_argument("--authentication-skip-lookup", nargs="?", const="true", default="false")
    auth.add_argument(
        "--authentication-token-webhook-cache-ttl",
        default="10s",
        help="how long TokenReview answers are cached",
    )
    auth.add_argument(
        "--authentication-tolerate-lookup-failure", nargs="?", const="true", default="true"
    )
    auth.add_argument(
        "--authorization-kubeconfig",
        default="",
        help="kubeconfig for SubjectAccessReviews (empty: the scheduler's own credentials)",
    )
    auth.add_argument(
        "--authorization-always-allow-paths",
        default=",".join(DEFAULT_ALWAYS_ALLOW_PATHS),
        help="paths served without authorization (a trailing * matches a prefix)",
    )
    auth.add_argument("--authorization-webhook-cache-authorized-ttl", default="10s")
    auth.add_argument("--authorization-webhook-cache-unauthorized-ttl", default="10s")
    parser.add_argument(
        "--port",
        default="0",
        help="plain HTTP port WITHOUT authentication or authorization, for local use (0: off)",
    )


def serving_options(args: argparse.Namespace) -> ServingOptions:
    """The parsed flags as ServingOptions; raises ServingError naming the first bad flag."""
    secure_port = _port("--secure-port", args.secure_port)
    port = _port("--port", args.port)
    bind = str(args.bind_address)
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise ServingError(f"--bind-address: {bind!r} is not an IP address") from None
    if secure_port and port and secure_port == port:
        raise ServingError(f"--port: {port} is also the --secure-port")
    cert, key = str(args.tls_cert_file), str(args.tls_private_key_file)
    if bool(cert) != bool(key):
        raise ServingError("--tls-cert-file and --tls-private-key-file must be given together")
    for flag, path in (
        ("--tls-cert-file", cert),
        ("--tls-private-key-file", key),
        ("--client-ca-file", str(args.client_ca_file)),
        ("--authentication-kubeconfig", str(args.authentication_kubeconfig)),
        ("--authorization-kubeconfig", str(args.authorization_kubeconfig)),
    ):
        if path and not Path(path).is_file():
            raise ServingError(f"{flag}: {path}: no such file")
    min_version = str(args.tls_min_version) or "VersionTLS12"
    if min_version not in TLS_VERSIONS:
        raise ServingError(
            f"--tls-min-version: {min_version!r} is not one of {', '.join(TLS_VERSIONS)}"
        )
    suites = tuple(s.strip() for s in str(args.tls_cipher_suites).split(",") if s.strip())
    for suite in suites:
        if suite not in CIPHER_SUITES and suite not in TLS13_SUITES:
            raise ServingError(f"--tls-cipher-suites: cipher suite {suite} not supported")
    if min_version == "VersionTLS13" and suites:
        raise ServingError("--tls-cipher-suites: cannot be set with --tls-min-version=VersionTLS13")
    paths = tuple(
        p.strip() for p in str(args.authorization_always_allow_paths).split(",") if p.strip()
    )
    for path in paths:
        # apiserver's path authorizer: a `*` may only end a path.
        if "*" in path[:-1]:
            raise ServingError(
                f"--authorization-always-allow-paths: {path!r}: '*' may only end a path"
            )
    return ServingOptions(
        secure_port=secure_port,
        bind_address=bind,
        port=port,
        cert_dir=str(args.cert_dir),
        tls_cert_file=cert,
        tls_private_key_file=key,
        tls_min_version=min_version,
        tls_cipher_suites=suites,
        client_ca_file=str(args.client_ca_file),
        authentication_kubeconfig=str(args.authentication_kubeconfig),
        authentication_skip_lookup=go_bool(
            "--authentication-skip-lookup", args.authentication_skip_lookup
        ),
        authentication_token_webhook_cache_ttl=go_duration(
            "--authentication-token-webhook-cache-ttl", args.authentication_token_webhook_cache_ttl
        ),
        authentication_tolerate_lookup_failure=go_bool(
            "--authentication-tolerate-lookup-failure",
            args.authentication_tolerate_lookup_failure,
        ),
        authorization_kubeconfig=str(args.authorization_kubeconfig),
        authorization_always_allow_paths=paths,
        authorization_webhook_cache_authorized_ttl=go_duration(
            "--authorization-webhook-cache-authorized-ttl",
            args.authorization_webhook_cache_authorized_ttl,
        ),
        authorization_webhook_cache_unauthorized_ttl=go_duration(
            "--authorization-webhook-cache-unauthorized-ttl",
            args.authorization_webhook_cache_unauthorized_ttl,
        ),
    )


def _port(flag: str, value: object) -> int:
    text = str(value)
    if not text.isdigit() or int(text) > 65535:
        raise ServingError(f"{flag}: {text!r} is not a port number (0-65535; 0: off)")
    return int(text)


# Go's strconv.ParseBool, which pflag's bool flags use.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def go_bool(flag: str, value: object) -> bool:
    """A Go boolean flag value; ServingError naming `flag` otherwise."""
    text = str(value)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ServingError(f"{flag}: {text!r} is not a boolean (true or false)")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(flag: str, value: object) -> float:
    """Go's time.ParseDuration ("10s", "1m30s", "500ms", "0") in seconds, not negative;
    ServingError naming `flag` otherwise."""
    text = str(value).strip()
    if text == "0":
        return 0.0
    seconds, at = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != at:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        at = match.end()
    if not text or at != len(text):
        raise ServingError(f"{flag}: {text!r} is not a duration (such as 10s, 1m30s, 500ms)")
    return seconds
