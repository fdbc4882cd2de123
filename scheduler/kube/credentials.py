"""Credentials that stay fresh: the token or client certificate each request carries.

`Credentials` (where the API server is, how to reach it, and the credential source; also
importable from `scheduler.kube.client`) is loaded from a kubeconfig or the in-cluster service
account by `Credentials.load`.

client-go never trusts a credential to last. A bearer token read from a file (the in-cluster
service account's projected token, a kubeconfig's `tokenFile`) is cached and read again once the
cached copy is older than a minute less ten seconds (transport/token_source.go,
`NewCachedFileTokenSource`: period 1 min, leeway 10 s), because the kubelet rotates projected
tokens well before they expire. An exec credential plugin (plugin/pkg/client/auth/exec/exec.go)
is run when the cached credential passes its `expirationTimestamp`, and again when the API server
answers 401 to a request that carried it. berth does the same with these sources, shared by every
`Client` built from one `Credentials` (the scheduler's, the events', the lease's):

    source          get()                                    refresh(used) after a 401
    StaticToken     the token it was given                   the same: nothing to refresh
    TokenFile       the cached token, re-read past 50 s       re-read now, unless already re-read
    ExecPlugin      the cached credential until it expires    run now, unless already rotated

On a 401 the client asks `refresh(used)` once and, if the credential changed, sends the request
once more; it never loops. (client-go's exec round-tripper only refreshes and leaves the retry
to the next request; one immediate retry turns a rotation into no error at all.)

Failures name their source: `CredentialError("token file /x: ...")`. A token file that cannot be
read while a token is cached keeps the cached one (client-go logs "Unable to rotate token");
nothing cached means the request fails. The plugin is run with asyncio's subprocess support so
the event loop never blocks on it, and within `EXEC_TIMEOUT_SECONDS`. The `kubernetes` package's
`ExecProvider` was not used: it runs the plugin synchronously without a bound (it would stall the
scheduler), decides interactivity from whether stdout is a terminal rather than from
`interactiveMode`, and leaves client certificates to its caller. berth runs unattended, so a
plugin never gets a terminal: `interactiveMode: Always` is refused as client-go refuses it when
stdin is no terminal.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("berth.credentials")

TOKEN_FILE_PERIOD_SECONDS = 60.0
"""client-go's fileTokenSource period: a token read from a file is good for a minute."""

TOKEN_FILE_LEEWAY_SECONDS = 10.0
"""client-go's cachingTokenSource leeway: the file is read again 10 s before the period ends."""

EXEC_TIMEOUT_SECONDS = 60.0
"""How long a credential plugin may run. client-go waits without bound; berth bounds it because
every request waits for the plugin, and one that hangs would stop the scheduler silently."""

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")


class CredentialError(ConnectionError):
    """A credential could not be had; the message names its source and why. A ConnectionError
    because, to a caller, it is a request that could not be sent: retried later like one."""


@dataclass(frozen=True)
class ClientCert:
    """A client certificate and its key, PEM, as an exec plugin returns them."""

    cert_pem: str
    key_pem: str = field(repr=False)


@dataclass(frozen=True, eq=False)
class Auth:
    """One credential as handed out: compared by identity, so that `refresh(used)` can tell
    whether `used` is still the current one (client-go compares the cached pointer)."""

    token: str | None
    cert: ClientCert | None = None

    def header(self) -> str | None:
        """The Authorization header value, or None when there is no token."""
        return f"Bearer {self.token}" if self.token else None

    def same(self, other: Auth) -> bool:
        """Whether both carry the same token and certificate (a retry would change nothing)."""
        return self.token == other.token and self.cert == other.cert


class CredentialSource(Protocol):
    """Where a client gets its credential. Both methods may raise CredentialError."""

    async def get(self) -> Auth:
        """The credential for the next request: cached, or refreshed if stale."""

    async def refresh(self, used: Auth) -> Auth:
        """`used` was refused (401): refresh it unless it has been refreshed already, and
        return the current credential (possibly the same)."""


class StaticToken:
    """A fixed token (a kubeconfig's `token`, a client certificate only, or nothing)."""

    def __init__(self, token: str | None) -> None:
        self._auth = Auth(token)

    async def get(self) -> Auth:
        return self._auth

    async def refresh(self, used: Auth) -> Auth:
        return self._auth


class TokenFile:
    """A bearer token read from `path`, cached for TOKEN_FILE_PERIOD - LEEWAY seconds by
    `clock` (monotonic seconds), as client-go's NewCachedFileTokenSource. `initial`, when given,
    is used until the first re-read (client-go starts from the token it loaded)."""

    def __init__(
        self,
        path: str,
        *,
        initial: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        period: float = TOKEN_FILE_PERIOD_SECONDS,
        leeway: float = TOKEN_FILE_LEEWAY_SECONDS,
    ) -> None:
        self.path = path
        self._clock = clock
        self._fresh_for = period - leeway
        self._auth = Auth(initial) if initial else None
        self._read_at = clock()
        self.reads = 0

    async def get(self) -> Auth:
        if self._auth is not None and self._clock() - self._read_at < self._fresh_for:
            return self._auth
        return self._read()

    async def refresh(self, used: Auth) -> Auth:
        if self._auth is not None and self._auth is not used:
            return self._auth  # re-read since `used` was handed out
        return self._read()

    def _read(self) -> Auth:
        """Read the file now (a few bytes: not worth a thread); keep the cached token when
        it cannot be read, fail when there is none."""
        self.reads += 1
        try:
            with open(self.path, encoding="utf-8") as f:
                token = f.read().strip()
            why = "" if token else "empty"
        except (OSError, UnicodeDecodeError) as err:
            token, why = "", str(getattr(err, "strerror", None) or err)
        if why:
            failed = CredentialError(f"token file {self.path}: {why}")
            if self._auth is None:
                raise failed
            log.warning("unable to rotate token", extra={"error": str(failed)})
            return self._auth
        if self._auth is None or self._auth.token != token:
            self._auth = Auth(token)
        self._read_at = self._clock()
        return self._auth


@dataclass(frozen=True)
class ExecConfig:
    """A kubeconfig user's `exec` stanza, checked (client-go's clientcmd validation)."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    interactive_mode: str = "IfAvailable"
    cluster: Mapping[str, Any] | None = None
    """What `provideClusterInfo: true` hands the plugin (ExecCredential spec.cluster)."""

    @classmethod
    def parse(
        cls, stanza: Mapping[str, Any], where: str, cluster: Mapping[str, Any] | None = None
    ) -> ExecConfig:
        """From the `exec` mapping at `where` (e.g. "users[ci].user.exec"); `cluster` is
        the ExecCredential cluster, used only if the stanza asks for it. Raises
        CredentialError naming the field."""
        command = stanza.get("command")
        if not isinstance(command, str) or not command:
            raise CredentialError(f"{where}.command: required")
        version = stanza.get("apiVersion")
        if version not in EXEC_API_VERSIONS:
            raise CredentialError(
                f"{where}.apiVersion: must be one of {', '.join(EXEC_API_VERSIONS)}, "
                f"not {version!r}"
            )
        mode = stanza.get("interactiveMode")
        if not mode and version.endswith("/v1"):
            raise CredentialError(f"{where}.interactiveMode: required for {version}")
        mode = mode or "IfAvailable"  # v1beta1's default, for backwards compatibility
        if mode not in INTERACTIVE_MODES:
            raise CredentialError(f"{where}.interactiveMode: invalid: {mode!r}")
        if mode == "Always":
            raise CredentialError(
                f"{where}.interactiveMode: Always: berth runs unattended, and standard input "
                "is not a terminal"
            )
        args = stanza.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise CredentialError(f"{where}.args: must be a list of strings")
        env: list[tuple[str, str]] = []
        for i, item in enumerate(stanza.get("env") or []):
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise CredentialError(f"{where}.env[{i}]: must have a name and a value")
            env.append((item["name"], str(item.get("value", ""))))
        provide = bool(stanza.get("provideClusterInfo"))
        return cls(command, version, tuple(args), tuple(env), mode, cluster if provide else None)


class ExecPlugin:
    """A credential from an exec plugin, cached until its expirationTimestamp (never, without
    one), run again then or after a 401. `now` is the wall clock (expiry is a wall time).
    `cwd` is where a relative command is found (the kubeconfig's directory)."""

    def __init__(
        self,
        config: ExecConfig,
        *,
        cwd: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: float = EXEC_TIMEOUT_SECONDS,
    ) -> None:
        self.config = config
        self._cwd = cwd
        self._now = now
        self._timeout = timeout
        self._auth: Auth | None = None
        self._expires: datetime | None = None
        self._lock = asyncio.Lock()
        self.runs = 0

    def _valid(self) -> bool:
        return self._auth is not None and (self._expires is None or self._now() < self._expires)

    async def get(self) -> Auth:
        if self._valid():
            assert self._auth is not None
            return self._auth
        async with self._lock:  # concurrent requests wait for one run
            if not self._valid():
                await self._run()
            assert self._auth is not None
            return self._auth

    async def refresh(self, used: Auth) -> Auth:
        async with self._lock:
            if self._auth is None or self._auth is used:
                await self._run()
            assert self._auth is not None
            return self._auth

    async def _run(self) -> None:
        """Run the plugin once and take its credential (exec.go refreshCredsLocked)."""
        self.runs += 1
        conf = self.config
        name = f"exec plugin {conf.command}"
        spec: dict[str, Any] = {"interactive": False}
        if conf.cluster is not None:
            spec["cluster"] = dict(conf.cluster)
        info = {"kind": "ExecCredential", "apiVersion": conf.api_version, "spec": spec}
        env = {**os.environ, **dict(conf.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
        command = conf.command
        if self._cwd and os.sep in command and not os.path.isabs(command):
            command = os.path.join(self._cwd, command)  # as kubectl: relative to the kubeconfig
        try:
            proc = await asyncio.create_subprocess_exec(
                command,
                *conf.args,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as err:
            raise CredentialError(f"{name}: cannot run: {err.strerror or err}") from None
        try:
            async with asyncio.timeout(self._timeout):
                out, err_out = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CredentialError(f"{name}: no answer within {self._timeout:g}s") from None
        if proc.returncode != 0:
            tail = err_out.decode(errors="replace").strip()[-500:]
            raise CredentialError(
                f"{name}: exit code {proc.returncode}" + (f": {tail}" if tail else "")
            )
        self._take(name, out)

    def _take(self, name: str, out: bytes) -> None:
        try:
            cred = json.loads(out)
        except ValueError as err:
            raise CredentialError(f"{name}: decoding stdout: {err}") from None
        if not isinstance(cred, dict) or cred.get("kind") != "ExecCredential":
            raise CredentialError(f"{name}: stdout is not an ExecCredential")
        if cred.get("apiVersion") != self.config.api_version:
            raise CredentialError(
                f"{name}: configured to use API version {self.config.api_version}, "
                f"plugin returned version {cred.get('apiVersion')}"
            )
        status = cred.get("status")
        if not isinstance(status, dict):
            raise CredentialError(f"{name}: didn't return a status field")
        token = status.get("token") or None
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if not token and not cert and not key:
            raise CredentialError(f"{name}: didn't return a token or cert/key pair")
        if bool(cert) != bool(key):
            raise CredentialError(f"{name}: returned only certificate or key, not both")
        expires: datetime | None = None
        stamp = status.get("expirationTimestamp")
        if stamp:
            try:
                expires = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            except ValueError:
                raise CredentialError(
                    f"{name}: status.expirationTimestamp: not RFC 3339: {stamp!r}"
                ) from None
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
        self._auth = Auth(token, ClientCert(cert, key) if cert and key else None)
        self._expires = expires


def cluster_info(cluster: Mapping[str, Any], base_dir: str) -> dict[str, Any]:
    """The ExecCredential `spec.cluster` for a kubeconfig cluster (client-go's
    rest.ConfigToExecCluster): the CA as base64 data even when the kubeconfig names a file."""
    info: dict[str, Any] = {"server": cluster.get("server", "")}
    ca_data = cluster.get("certificate-authority-data")
    ca_file = cluster.get("certificate-authority")
    if not ca_data and ca_file:
        path = ca_file if os.path.isabs(ca_file) else os.path.join(base_dir, ca_file)
        try:
            with open(path, "rb") as f:
                ca_data = base64.b64encode(f.read()).decode()
        except OSError as err:
            raise CredentialError(
                f"certificate-authority {path}: failed to load CA bundle for the exec plugin: "
                f"{err.strerror or err}"
            ) from None
    for key, value in (
        ("certificate-authority-data", ca_data),
        ("tls-server-name", cluster.get("tls-server-name")),
        ("insecure-skip-tls-verify", cluster.get("insecure-skip-tls-verify")),
        ("proxy-url", cluster.get("proxy-url")),
    ):
        if value:
            info[key] = value
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, Mapping) and ext.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = ext.get("extension")
    return info


def load_kubeconfig(path: str, conf: Any) -> tuple[CredentialSource | None, str | None]:
    """Fill `conf` (a `kubernetes.client.Configuration`) from the kubeconfig(s) at `path`
    (colon-separated, merged as kubectl merges them) with the `kubernetes` package, and return
    the refreshable source of its current user, if it has one, with the token the package
    loaded. An `exec` stanza is taken out before the package loads the file, so that the plugin
    runs only under berth's rules (asynchronously, on demand); a `tokenFile` is read by the
    package once, then by TokenFile. Raises CredentialError, or the package's ConfigException."""
    from kubernetes.config.kube_config import KubeConfigLoader, KubeConfigMerger

    root = KubeConfigMerger(path).config  # type: ignore[no-untyped-call]
    if root is None:
        raise CredentialError(f"kubeconfig {path}: no configuration found")
    context = root["contexts"].get_with_name(root["current-context"])["context"]
    user_name = context.safe_get("user")
    has_users = bool(root.safe_get("users")) and bool(user_name)
    user_item = root["users"].get_with_name(user_name, safe=True) if has_users else None
    user = user_item["user"] if user_item else None
    stanza = user.safe_get("exec") if user is not None else None
    exec_config: ExecConfig | None = None
    base_dir = os.path.dirname(os.path.abspath(user.path)) if user is not None else ""
    if user is not None and stanza is not None:
        cluster = root["clusters"].get_with_name(context["cluster"])["cluster"]
        where = f"users[{user_name}].user.exec"
        exec_config = ExecConfig.parse(dict(stanza), where, cluster_info(cluster.value, base_dir))
        user.value.pop("exec")  # from the merger's parsed copy; nothing writes it back
    loader = KubeConfigLoader(config_dict=root, config_base_path=None)  # type: ignore[no-untyped-call]
    loader.load_and_set(conf)  # type: ignore[no-untyped-call]
    auth = conf.api_key.get("authorization") or conf.api_key.get("BearerToken")
    token = auth.split(" ", 1)[1] if auth and auth.lower().startswith("bearer ") else auth
    if exec_config is not None:
        return ExecPlugin(exec_config, cwd=base_dir), token
    token_file = user.safe_get("tokenFile") if user is not None else None
    if token_file:
        file = token_file if os.path.isabs(token_file) else os.path.join(base_dir, token_file)
        return TokenFile(file, initial=token), token
    return None, token


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate to it.

    `token` is the bearer token as loaded; `source`, when set, is where every request gets its
    credential instead (a token file re-read, an exec plugin re-run: scheduler.kube.credentials).
    Clients built from one Credentials share its source, hence one cache and one plugin run."""

    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    insecure: bool = False
    source: CredentialSource | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, kubeconfig: str | None = None) -> Credentials:
        """From the named kubeconfig, else $KUBECONFIG, else the in-cluster service account
        (whose token file is re-read as client-go's InClusterConfig re-reads it)."""
        from kubernetes import client as kclient
        from kubernetes import config as kconfig
        from kubernetes.config.incluster_config import SERVICE_TOKEN_FILENAME

        conf = kclient.Configuration()
        path = kubeconfig or os.environ.get("KUBECONFIG")
        source: CredentialSource | None
        if path:
            source, token = load_kubeconfig(path, conf)
        else:
            kconfig.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
            auth = conf.api_key.get("authorization") or conf.api_key.get("BearerToken")
            token = auth.split(" ", 1)[1] if auth and auth.lower().startswith("bearer ") else auth
            source = TokenFile(SERVICE_TOKEN_FILENAME, initial=token)
        return cls(
            server=conf.host.rstrip("/"),
            ca_file=conf.ssl_ca_cert,
            cert_file=conf.cert_file,
            key_file=conf.key_file,
            token=token,
            insecure=not conf.verify_ssl,
            source=source,
        )

    def credential_source(self) -> CredentialSource:
        """Where requests get their credential: `source`, else the fixed `token`."""
        return self.source if self.source is not None else StaticToken(self.token)

    def ssl_context(self, cert: ClientCert | None = None) -> ssl.SSLContext | bool:
        """The TLS context for new connections; `cert` (an exec plugin's) replaces the
        kubeconfig's client certificate."""
        if not self.server.startswith("https"):
            return False
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert is not None:
            _load_pem_pair(ctx, cert)
        elif self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _load_pem_pair(ctx: ssl.SSLContext, cert: ClientCert) -> None:
    """ssl loads a certificate only from files: write the pair to a private directory for the
    moment it takes, then remove it."""
    with tempfile.TemporaryDirectory(prefix="berth-cert-") as tmp:
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for where, pem in ((cert_path, cert.cert_pem), (key_path, cert.key_pem)):
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pem)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as err:
            raise CredentialError(f"exec plugin client certificate: {err}") from None
