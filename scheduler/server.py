"""berth's one HTTP port: metrics, health probes, and the engine's debug endpoints.

kube-scheduler serves these paths over HTTPS on port 10259. berth keeps the port and the paths, so
probes and scrape configs need only their scheme changed, but serves plain HTTP for now; TLS (and
delegated authn/authz) can come later.

- `/metrics`: `Metrics.render()`, the Prometheus text format.
- `/healthz`, `/livez`: 200 "ok" when the event loop gets round to answering and the `unhealthy`
  callable returns None; else 500 with upstream's failure layout (`[-]<check> failed: <why>`,
  then `healthz check failed`). The engine's check is `App.unhealthy` (the API server has not
  answered for `--api-unreachable-timeout` while pods wait): a scheduler that cannot heal
  itself should be restarted by its liveness probe.
- `/readyz`: 200 "ok" while the `ready` callable returns True, else 503 and a short reason.
- extra GET routes added with `add_json_route()` (the engine's `/debug/...` views), whose
  handlers return a JSON-able value that is encoded with orjson.

Routes are fixed once `start()` has run: aiohttp freezes its router when the app starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from scheduler.metrics import Metrics

JsonHandler = Callable[[web.Request], Awaitable[Any]]

DEFAULT_PORT = 10259

# orjson options for JSON routes: numpy arrays and scalars (snapshot columns) and non-string dict
# keys (node rows by index) appear in debug views and should not need converting by hand.
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class Server:
    """An aiohttp server for one `Metrics`, health and readiness probes, and JSON routes."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        ready: Callable[[], bool] = lambda: True,
        unhealthy: Callable[[], tuple[str, str] | None] = lambda: None,
    ) -> None:
        """port=0 binds a free port; `start()` says which. `ready` must be cheap and not block;
        `unhealthy` returns None, or the failing check's name and why."""
        self._metrics = metrics
        self._host = host
        self._port = port
        self._ready = ready
        self._unhealthy = unhealthy
        self._app = web.Application()
        self._app.router.add_get("/metrics", self._serve_metrics)
        self._app.router.add_get("/healthz", self._serve_health)
        self._app.router.add_get("/livez", self._serve_health)
        self._app.router.add_get("/readyz", self._serve_ready)
        self._runner: web.AppRunner | None = None

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

    async def start(self) -> int:
        """Start listening and return the port bound (the free one chosen when port=0)."""
        if self._runner is not None:
            raise RuntimeError("the server has already started")
        # No access log: a scrape every few seconds and probes every second would drown real logs.
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        return int(addresses[0][1])

    async def stop(self) -> None:
        """Stop listening and close open connections; a no-op if not started."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        # aiohttp's content_type argument cannot carry parameters (version, charset).
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _serve_health(self, request: web.Request) -> web.Response:
        failing = self._unhealthy()
        if failing is None:
            return web.Response(text="ok")
        check, why = failing
        return web.Response(
            status=500, text=f"[+]ping ok\n[-]{check} failed: {why}\nhealthz check failed\n"
        )

    async def _serve_ready(self, request: web.Request) -> web.Response:
        try:
            ready = self._ready()
        except Exception as exc:  # a failing check means not ready, not a 500
            return web.Response(status=503, text=f"not ready: readiness check failed: {exc}")
        if ready:
            return web.Response(text="ok")
        return web.Response(status=503, text="not ready")
