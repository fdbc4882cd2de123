"""How `berth explain` reaches the berth replica that schedules, and asks it as the user.

Without `--server`:

1. The Lease (`--lease-namespace`/`--lease-name`, default deploy/'s berth-system/berth) is read
   with the kubeconfig's credentials (`--kubeconfig`, $KUBECONFIG, in-cluster).
2. Its holder's debug endpoint comes from the berth.dev/debug-endpoint annotation the leader
   writes (scheduler.kube.debug_endpoint); one that belongs to another holder does not count.
3. The leader is asked directly: GET <url>/debug/pods/NS/NAME[?node=X], carrying the kubeconfig's
   bearer token or client certificate (berth authenticates it with a TokenReview or its client
   CA, and authorizes `get` on the path with a SubjectAccessReview, as kube-scheduler does).
4. When the leader's address does not answer (a network the client is outside of, such as a
   laptop outside the pod network), the API server's pod proxy is tried:
   GET /api/v1/namespaces/<lease namespace>/pods/<scheme>:<pod>:<port>/proxy/debug/pods/...,
   the pod being the holder identity's host name part. That path can carry no user: the API
   server authorizes the user for `pods/proxy`, then drops the Authorization header (apiserver's
   WithAuthentication) and connects with no client certificate and without verifying the pod's
   certificate (kube-apiserver's CreateProxyTransport). berth therefore sees an anonymous
   request, which delegated authorization refuses unless system:anonymous is granted
   /debug/* (not advisable) or berth serves plain HTTP (`--port`). The fallback is tried all
   the same, and its 401/403 is explained; `kubectl port-forward` to the leader pod and
   `--server https://127.0.0.1:PORT` is the way that keeps the user's credentials.

With `--server URL` (http or https) that URL is asked and nothing is looked up.

TLS towards berth (its certificate is self-signed unless the operator gives it one):

- `--certificate-authority FILE`: the chain and the host name are verified against FILE.
- otherwise, when the Lease pins the leader's certificate (certSHA256), the certificate must
  hash to the pin; the pin was read over the API server's verified TLS, so this is as strong as
  the Lease's RBAC, and needs no flag. This is the default.
- otherwise `--insecure-skip-tls-verify` accepts any certificate: the user's token then goes to
  whatever answers at the leader's address, so it is never the default.
- otherwise the system's trust store verifies it (a berth with a certificate from a public or
  corporate CA); a self-signed one fails, with the two flags named.

Credentials go only over HTTPS: a plain-HTTP berth (`--port`) has no authentication to use them.
Errors are `ExplainError`s whose message says what to do; `explain.main` prints them, exit 1.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

from scheduler.explain import DEFAULT_LEASE_NAME, DEFAULT_LEASE_NAMESPACE
from scheduler.kube.client import ApiError, Client, Credentials
from scheduler.kube.debug_endpoint import DebugEndpoint, of_lease

JSON = dict[str, Any]

RBAC_HINT = (
    "it needs `get` on the non-resource URL /debug/* (a ClusterRole with nonResourceURLs: "
    '["/debug/*"], verbs: ["get"], bound to the user)'
)


class ExplainError(Exception):
    """The scheduler could not be asked (the message says why, and what to do)."""


@dataclass(frozen=True)
class Options:
    """Where to ask and how: `server` set means ask it, else find the leader by its Lease."""

    server: str | None = None
    kubeconfig: str | None = None
    lease_namespace: str = DEFAULT_LEASE_NAMESPACE
    lease_name: str = DEFAULT_LEASE_NAME
    certificate_authority: str | None = None
    insecure_skip_tls_verify: bool = False
    timeout: float = 10.0
    """Seconds for each connection and answer."""


@dataclass(frozen=True)
class Caller:
    """What the request carries: the kubeconfig's bearer token or client certificate files."""

    token: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def debug_path(namespace: str, name: str, node: str | None = None) -> str:
    """`/debug/pods/NS/NAME`, with `?node=X` when a node is asked about."""
    path = "/debug/pods/{}/{}".format(
        urllib.parse.quote(namespace, safe=""), urllib.parse.quote(name, safe="")
    )
    return path + ("?" + urllib.parse.urlencode({"node": node}) if node is not None else "")


def leader_endpoint(lease: JSON) -> DebugEndpoint:
    """The leader's endpoint in a Lease object, or an ExplainError saying why there is none."""
    meta = lease.get("metadata") or {}
    where = f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"
    holder, endpoint = of_lease(lease)
    if not holder:
        raise ExplainError(
            f"no leader: the Lease {where} has no holder (no berth replica leads; is berth "
            "running, and is this its Lease? see --lease-namespace/--lease-name)"
        )
    if endpoint is None:
        raise ExplainError(
            f"the leader {holder!r} (Lease {where}) publishes no debug endpoint: not berth, a "
            "berth without the berth.dev/debug-endpoint annotation, or one that knows no address "
            "of its own (set POD_IP); ask it with --server URL"
        )
    return endpoint


def proxy_path(namespace: str, endpoint: DebugEndpoint, path: str) -> str:
    """The API server's pod-proxy path to `path` on the leader's pod: the pod is named by the
    holder identity's host name part ("<hostname>_<uuid>"), in `namespace`."""
    pod = endpoint.holder.rpartition("_")[0] or endpoint.holder
    parts = urllib.parse.urlsplit(endpoint.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (
        f"/api/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/pods/"
        f"{parts.scheme}:{urllib.parse.quote(pod, safe='')}:{port}/proxy{path}"
    )


def refusal(url: str, status: int, reason: str, body: str) -> ExplainError:
    """An HTTP error from berth, with what it means for the user (berth answers 401 and 403
    with a Status object, as kube-scheduler does: its message is kept)."""
    detail = body.strip().splitlines()[0][:300] if body.strip() else reason
    try:
        status_object = json.loads(body)
    except ValueError:
        status_object = None
    if isinstance(status_object, dict) and isinstance(status_object.get("message"), str):
        detail = status_object["message"]
    if status == 401:
        return ExplainError(
            f"{url}: 401 Unauthorized: berth did not accept the credentials (the kubeconfig's "
            "token must pass a TokenReview, or its client certificate be signed by the "
            f"cluster's client CA): {detail}"
        )
    if status == 403:
        return ExplainError(f"{url}: 403 Forbidden: {RBAC_HINT}: {detail}")
    return ExplainError(f"{url}: HTTP {status} {reason}: {detail}")


def tls_context(options: Options, caller: Caller, pinned: bool) -> ssl.SSLContext:
    """The client TLS context (module docstring's order), with the client certificate."""
    if options.certificate_authority:
        ctx = ssl.create_default_context(cafile=options.certificate_authority)
    elif pinned or options.insecure_skip_tls_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # pinned: checked against the pin once connected
    else:
        ctx = ssl.create_default_context()
    if caller.cert_file and caller.key_file:
        ctx.load_cert_chain(caller.cert_file, caller.key_file)
    return ctx


def get_json(url: str, path: str, options: Options, caller: Caller, pin: str = "") -> JSON:
    """GET `path` on the berth at `url` (http or https) and decode the JSON answer.

    Raises ExplainError; `OSError` (connection refused, no route, timeout) is left to the
    caller, which may try another way."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    full = url.rstrip("/") + path
    headers = {"Accept": "application/json", "User-Agent": "berth-explain"}
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        ctx = tls_context(options, caller, bool(pin) and not options.certificate_authority)
        conn = http.client.HTTPSConnection(host, parts.port, context=ctx, timeout=options.timeout)
        if caller.token:
            headers["Authorization"] = f"Bearer {caller.token}"
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(host, parts.port, timeout=options.timeout)
    else:
        raise ExplainError(f"--server {url}: the scheme must be http or https")
    try:
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as err:
            raise ExplainError(
                f"{url}: its certificate cannot be verified ({err.verify_message}): berth's is "
                "self-signed unless it was given one; pass the CA that signed it with "
                "--certificate-authority, or --insecure-skip-tls-verify"
            ) from err
        if pin and not options.certificate_authority:
            _check_pin(conn, url, pin)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise refusal(full, response.status, response.reason, body.decode(errors="replace"))
    try:
        view: JSON = json.loads(body)
    except ValueError as err:
        raise ExplainError(f"{full}: not JSON: {err}") from err
    return view


def _check_pin(conn: http.client.HTTPConnection, url: str, pin: str) -> None:
    sock = conn.sock
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    got = hashlib.sha256(der).hexdigest() if der else ""
    if got != pin:
        raise ExplainError(
            f"{url}: its certificate (SHA-256 {got or 'none'}) is not the one the Lease pins "
            f"({pin}): not the leader, or it restarted with a new one since; try again"
        )


def caller_of(kubeconfig: str | None, required: bool) -> tuple[Caller, Credentials | None]:
    """The kubeconfig's credentials as a Caller, and the loaded Credentials (None when not
    `required` and none can be loaded)."""
    try:
        creds = Credentials.load(kubeconfig)
    except Exception as err:  # kubernetes' ConfigException, a missing or unreadable file
        if not required:
            return Caller(), None
        where = kubeconfig or "$KUBECONFIG / in-cluster service account"
        raise ExplainError(f"cannot load cluster credentials ({where}): {err}") from err
    # A token file or exec plugin gives its token only when asked (kube.credentials): ask once.
    try:
        auth = asyncio.run(creds.credential_source().get())
    except ConnectionError as err:  # CredentialError: the plugin or token file failed
        raise ExplainError(f"cannot get a credential from the kubeconfig: {err}") from err
    return Caller(auth.token, creds.cert_file, creds.key_file), creds


def ask(options: Options, namespace: str, name: str, node: str | None = None) -> tuple[JSON, str]:
    """The scheduler's debug view of one pod, and where it came from (for the report)."""
    path = debug_path(namespace, name, node)
    if options.server:
        server = options.server
        caller = (
            caller_of(options.kubeconfig, required=False)[0]
            if server.startswith("https")
            else Caller()
        )
        try:
            return get_json(server, path, options, caller), server
        except OSError as err:
            raise ExplainError(f"cannot reach the scheduler at {server}: {err}") from err
    caller, creds = caller_of(options.kubeconfig, required=True)
    assert creds is not None  # required: loaded, or ExplainError
    lease = asyncio.run(_api_get(creds, _lease_path(options)))
    endpoint = leader_endpoint(lease)
    where = f"{endpoint.url} (leader {endpoint.holder})"
    try:
        return get_json(endpoint.url, path, options, caller, endpoint.cert_sha256), where
    except OSError as err:
        unreachable = err
    proxied = proxy_path(options.lease_namespace, endpoint, path)
    try:
        view = asyncio.run(_api_get(creds, proxied, proxy=True))
    except ExplainError as err:
        raise ExplainError(
            f"cannot reach the leader {endpoint.holder} at {endpoint.url}: {unreachable}; "
            f"through the API server's pod proxy: {err}"
        ) from err
    return view, f"{endpoint.url} via the API server's pod proxy (leader {endpoint.holder})"


def _lease_path(options: Options) -> str:
    ns = urllib.parse.quote(options.lease_namespace, safe="")
    name = urllib.parse.quote(options.lease_name, safe="")
    return f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}"


async def _api_get(creds: Credentials, path: str, *, proxy: bool = False) -> JSON:
    """GET `path` from the API server with the kubeconfig's credentials (scheduler.kube's
    client: the same TLS, token refresh and retries berth itself uses)."""
    client = Client(creds, qps=0, retries=1, user_agent="berth-explain")
    try:
        async with client:
            answer: JSON = await client.get(path)
            return answer
    except ApiError as err:
        raise _api_refusal(err, path, proxy) from err
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        raise ExplainError(f"cannot reach the API server at {creds.server}: {err}") from err


def _api_refusal(err: ApiError, path: str, proxy: bool) -> ExplainError:
    if not proxy:
        if err.status == 404:
            return ExplainError(
                f"no Lease at {path}: no berth with leader election uses it (see "
                "--lease-namespace/--lease-name, or ask one berth with --server URL)"
            )
        if err.status == 403:
            return ExplainError(
                f"cannot read the Lease ({err.message}): the user needs `get` on "
                "leases.coordination.k8s.io in that namespace"
            )
        return ExplainError(f"cannot read the Lease: {err}")
    if err.status == 404:
        return ExplainError(
            f"{err.message} (the holder identity's host name is not a pod in the Lease's "
            "namespace: not a berth pod, or one on the host network)"
        )
    if "pods/proxy" in err.message:
        return ExplainError(f"{err.message} (the pod proxy needs `get` on pods/proxy)")
    if err.status in (401, 403):
        return ExplainError(
            f"berth answered {err.status}: the pod proxy does not forward the user's "
            "credentials, so berth sees an anonymous request; use `kubectl port-forward` to the "
            "leader pod and --server https://127.0.0.1:PORT"
        )
    return ExplainError(f"{err.status} {err.message}")
