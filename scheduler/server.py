"""berth's serving endpoints, as kube-scheduler v1.37 serves them (cmd/kube-scheduler/app/
server.go: newEndpointsHandler, buildHandlerChain).

One aiohttp application behind up to two listeners:
- HTTPS (`start(secure=...)`, normally port 10259) with delegated authentication and
  authorization: a verified client certificate (user = its CN, groups = its O) or a bearer token
  (a TokenReview) names the user; a request with neither is `system:anonymous`. A token the API
  server rejects, or that cannot be reviewed, is answered 401 (`Unauthorized`). Then the path is
  authorized: the always-allowed paths (default /healthz, /readyz, /livez, exact unless the
  pattern ends in `*`) and members of `system:masters` pass; anyone else needs a
  SubjectAccessReview allowing verb `get` (the lower-case method) on the non-resource URL, or
  gets 403 `forbidden: User "<name>" cannot get path "<path>"`. Both answers are Status JSON.
- plain HTTP (`start(plain_port=...)`, only when `berth run --port` asks): the same routes, no
  authentication or authorization, for local use.

Routes:
- `/metrics`: `Metrics.render()`.   `/metrics/slis`: the health check SLIs (scheduler.health).
- `/metrics/resources`: kube_pod_resource_request/limit (scheduler.resource_metrics) while
  `leading()`; a follower answers 200 with an empty body, as kube-scheduler does.
- `/configz`: `{"componentconfig": <configz()>}`.
- `/healthz`, `/livez`, `/readyz` and `/<path>/<check>`: scheduler.health's layout.
- GET routes added with `add_json_route()` (the engine's `/debug/...` views), JSON via orjson.

Routes are fixed once `start()` has run: aiohttp freezes its router when the app starts.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from scheduler import health
from scheduler.kube.delegation import ANONYMOUS, Decision, UserInfo
from scheduler.metrics import CONTENT_TYPE, Metrics

JsonHandler = Callable[[web.Request], Awaitable[Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("berth.server")

DEFAULT_PORT = 10259

# orjson options for JSON routes: numpy arrays and scalars (snapshot columns) and non-string dict
# keys (node rows by index) appear in debug views and should not need converting by hand.
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
MASTERS = "system:masters"


class TokenAuthenticator(Protocol):
    """Bearer token → user, or None when the token is not valid (kube.delegation.TokenReviews);
    raises when it cannot tell."""

    async def authenticate(self, token: str) -> UserInfo | None: ...


class PathAuthorizer(Protocol):
    """May a user <verb> a non-resource path? (kube.delegation.AccessReviews); raises when it
    cannot tell."""

    async def authorize(self, user: UserInfo, path: str, verb: str) -> Decision: ...


@dataclass(frozen=True)
class Security:
    """How the HTTPS listener serves: its TLS context, and who decides who may read what.
    `tokens` None: bearer tokens are not accepted (401). `authorizer` None: only the
    always-allowed paths and groups are served (403 otherwise)."""

    ssl_context: ssl.SSLContext
    tokens: TokenAuthenticator | None
    authorizer: PathAuthorizer | None
    always_allow_paths: tuple[str, ...] = ("/healthz", "/readyz", "/livez")
    always_allow_groups: tuple[str, ...] = (MASTERS,)


@dataclass(frozen=True)
class HealthChecks:
    """The checks of each health path (none given: `ping`, as apiserver installs them)."""

    healthz: Sequence[health.Check] = ()
    livez: Sequence[health.Check] = ()
    readyz: Sequence[health.Check] = ()


class Server:
    """The aiohttp server for one scheduler's endpoints (module docstring)."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        checks: HealthChecks | None = None,
        configz: Callable[[], Any] | None = None,
        resource_metrics: Callable[[], bytes] | None = None,
        leading: Callable[[], bool] = lambda: True,
        bind_address: str = "127.0.0.1",
    ) -> None:
        """`configz()` returns the defaulted configuration document (None: no /configz);
        `resource_metrics()` renders /metrics/resources (None: not served); `leading()` must be
        cheap and not block."""
        self._metrics = metrics
        self._bind = bind_address
        self._leading = leading
        self._configz = configz
        self._resource_metrics = resource_metrics
        self.slis = health.HealthSLIs()
        self._security: Security | None = None
        self._app = web.Application(middlewares=[self._guard])
        self._app.router.add_get("/metrics", self._serve_metrics)
        self._app.router.add_get("/metrics/slis", self._serve_slis)
        if resource_metrics is not None:
            self._app.router.add_get("/metrics/resources", self._serve_resources)
        if configz is not None:
            self._app.router.add_get("/configz", self._serve_configz)
        checks = checks or HealthChecks()
        for kind, given in (
            ("healthz", checks.healthz),
            ("livez", checks.livez),
            ("readyz", checks.readyz),
        ):
            self._add_health(kind, health.with_default(given))
        self._runner: web.AppRunner | None = None
        self.plain_port = 0
        self.secure_port = 0

    def add_json_route(self, path: str, handler: JsonHandler) -> None:
        """Serve GET `path` (aiohttp patterns such as `/debug/pods/{ns}/{name}` work) as JSON.

        The handler returns any value orjson can encode; raising an `aiohttp.web.HTTPException`
        (e.g. `HTTPNotFound`) answers with that status instead. Call it before `start()`.
        """
        if self._runner is not None:
            raise RuntimeError(f"cannot add route {path!r}: the server has already started")

        async def serve(request: web.Request) -> web.Response:
            body = orjson.dumps(await handler(request), option=_JSON_OPTIONS)
            return web.Response(body=body, content_type="application/json")

        self._app.router.add_get(path, serve)

    async def start(
        self, *, secure: Security | None = None, secure_port: int = 0, plain_port: int | None = None
    ) -> None:
        """Listen: HTTPS on `secure_port` when `secure` is given, plain HTTP on `plain_port`
        when it is not None (0 = a free port). The ports bound are then `secure_port` and
        `plain_port`. Raises OSError when a port cannot be bound."""
        if self._runner is not None:
            raise RuntimeError("the server has already started")
        self._security = secure
        # No access log: a scrape every few seconds and probes every second would drown real logs.
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            if secure is not None:
                site = web.TCPSite(runner, self._bind, secure_port, ssl_context=secure.ssl_context)
                await site.start()
                self.secure_port = int(runner.addresses[-1][1])
            if plain_port is not None:
                await web.TCPSite(runner, self._bind, plain_port).start()
                self.plain_port = int(runner.addresses[-1][1])
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and close open connections; a no-op if not started."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- authentication and authorization (apiserver's WithAuthentication/Authorization) ---

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        security = self._security
        if not request.secure or security is None:
            return await handler(request)  # the plain port: local use, no auth
        user = await self._authenticate(request, security)
        if user is None:
            return _status(401, "Unauthorized", "Unauthorized")
        path, verb = request.path, request.method.lower()
        if not _always_allowed(path, user, security):
            if security.authorizer is None:
                decision = Decision(False)
            else:
                try:
                    decision = await security.authorizer.authorize(user, path, verb)
                except Exception as err:  # the review failed: upstream answers 500
                    log.warning("authorization failed", extra={"path": path, "error": str(err)})
                    return _status(500, "InternalError", f"Internal error occurred: {err}")
            if not decision.allowed:
                message = f'forbidden: User "{user.name}" cannot {verb} path "{path}"'
                if decision.reason:
                    message += f": {decision.reason}"
                return _status(403, "Forbidden", message, details=True)
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-cache, private")
        return response

    async def _authenticate(self, request: web.Request, security: Security) -> UserInfo | None:
        """The request's user (ANONYMOUS without credentials), or None for 401."""
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        if cert:  # present only when verified against the client CA
            return _certificate_user(cert)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return ANONYMOUS
        if security.tokens is None:
            return None
        try:
            return await security.tokens.authenticate(token)
        except Exception as err:  # cannot be reviewed: not authenticated
            log.warning("token review failed", extra={"error": str(err)})
            return None

    # --- routes ----------------------------------------------------------------------------

    def _add_health(self, kind: str, checks: Sequence[health.Check]) -> None:
        async def root(request: web.Request) -> web.Response:
            status, text = health.evaluate(
                kind,
                checks,
                request.query.getall("exclude", []),
                verbose="verbose" in request.query,
                slis=self.slis,
            )
            return _text(status, text)

        self._app.router.add_get(f"/{kind}", root)
        for check in checks:

            async def one(request: web.Request, check: health.Check = check) -> web.Response:
                return _text(*health.evaluate_one(check))

            self._app.router.add_get(f"/{kind}/{check.name}", one)

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        # aiohttp's content_type argument cannot carry parameters (version, charset).
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _serve_slis(self, request: web.Request) -> web.Response:
        return web.Response(body=self.slis.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _serve_resources(self, request: web.Request) -> web.Response:
        assert self._resource_metrics is not None
        if not self._leading():
            return web.Response(body=b"")  # kube-scheduler: a follower writes nothing
        body = self._resource_metrics()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _serve_configz(self, request: web.Request) -> web.Response:
        assert self._configz is not None
        body = orjson.dumps({"componentconfig": self._configz()})
        return web.Response(body=body, content_type="application/json")


def _always_allowed(path: str, user: UserInfo, security: Security) -> bool:
    """apiserver's path authorizer (exact, or prefix for a pattern ending in `*`) and its
    always-allow-groups authorizer."""
    if any(group in security.always_allow_groups for group in user.groups):
        return True
    for pattern in security.always_allow_paths:
        if pattern.endswith("*"):
            if path.startswith(pattern[:-1]):
                return True
        elif path == pattern:
            return True
    return False


def _certificate_user(cert: dict[str, Any]) -> UserInfo:
    """apiserver's CommonNameUserConversion: user = CN, groups = O values."""
    name, groups = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    return UserInfo(name, groups=(*groups, "system:authenticated"))


def _text(status: int, text: str) -> web.Response:
    return web.Response(
        status=status,
        text=text,
        headers={"X-Content-Type-Options": "nosniff"},
        content_type="text/plain",
        charset="utf-8",
    )


def _status(code: int, reason: str, message: str, *, details: bool = False) -> web.Response:
    """A metav1.Status failure, as apiserver's responsewriters write it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = {}
    body["code"] = code
    return web.Response(
        status=code,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-cache, private", "X-Content-Type-Options": "nosniff"},
    )
