"""scheduler.server: /metrics, the health probes and JSON routes, on a real socket (port 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from scheduler.metrics import Metrics
from scheduler.server import JsonHandler, Server


@asynccontextmanager
async def serving(
    metrics: Metrics | None = None,
    *,
    ready: Callable[[], bool] = lambda: True,
    unhealthy: Callable[[], tuple[str, str] | None] = lambda: None,
    routes: Mapping[str, JsonHandler] | None = None,
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """A started Server on a free loopback port, its base URL, and a client session."""
    server = Server(
        metrics or Metrics(process_metrics=False),
        host="127.0.0.1",
        port=0,
        ready=ready,
        unhealthy=unhealthy,
    )
    for path, handler in (routes or {}).items():
        server.add_json_route(path, handler)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield f"http://127.0.0.1:{port}", session
    finally:
        await server.stop()


def _raise() -> bool:
    raise RuntimeError("informers not synced")


@pytest.mark.parametrize(
    ("path", "ready", "status", "body"),
    [
        pytest.param("/healthz", lambda: True, 200, "ok", id="healthz"),
        pytest.param("/livez", lambda: True, 200, "ok", id="livez"),
        pytest.param("/healthz", lambda: False, 200, "ok", id="healthz-ignores-readiness"),
        pytest.param("/readyz", lambda: True, 200, "ok", id="readyz-ready"),
        pytest.param("/readyz", lambda: False, 503, "not ready", id="readyz-not-ready"),
        pytest.param(
            "/readyz",
            _raise,
            503,
            "not ready: readiness check failed: informers not synced",
            id="readyz-check-raises",
        ),
    ],
)
async def test_probe_answers(path: str, ready: Callable[[], bool], status: int, body: str) -> None:
    """Health probes answer while the loop runs; readiness follows the `ready` callable."""
    async with serving(ready=ready) as (url, session), session.get(url + path) as resp:
        assert (resp.status, await resp.text()) == (status, body)


@pytest.mark.parametrize("path", ["/healthz", "/livez"])
async def test_a_failing_health_check_answers_500_with_its_reason(path: str) -> None:
    """The engine's check failing turns /healthz and /livez to 500 in upstream's layout, and
    back to 200 "ok" as soon as it passes; /readyz is not affected."""
    state: dict[str, tuple[str, str] | None] = {"failing": ("apiserver-reachable", "silent 61s")}
    async with serving(unhealthy=lambda: state["failing"]) as (url, session):
        async with session.get(url + path) as bad:
            assert (bad.status, await bad.text()) == (
                500,
                "[+]ping ok\n[-]apiserver-reachable failed: silent 61s\nhealthz check failed\n",
            )
        async with session.get(url + "/readyz") as ready:
            assert ready.status == 200
        state["failing"] = None
        async with session.get(url + path) as good:
            assert (good.status, await good.text()) == (200, "ok")


async def test_readiness_is_asked_on_every_request() -> None:
    """/readyz turns 200 as soon as `ready` does, with no caching in between."""
    state = {"ready": False}
    async with serving(ready=lambda: state["ready"]) as (url, session):
        async with session.get(url + "/readyz") as before:
            assert before.status == 503
        state["ready"] = True
        async with session.get(url + "/readyz") as after:
            assert after.status == 200


async def test_metrics_endpoint_serves_render() -> None:
    """/metrics answers with Metrics.render()'s body and content type."""
    metrics = Metrics(process_metrics=False)
    metrics.observe_attempt("scheduled", "default-scheduler", 0.01)

    async with serving(metrics) as (url, session), session.get(url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == metrics.render()[1]
        text = await resp.text()

    values = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = frozenset({"result": "scheduled", "profile": "default-scheduler"}.items())
    assert values[("scheduler_schedule_attempts_total", key)] == 1


async def _pods(request: web.Request) -> Any:
    return {"pods": ["default/a", "default/b"], "count": 2}


async def _pod(request: web.Request) -> Any:
    return {"namespace": request.match_info["ns"], "name": request.match_info["name"]}


async def _rows(request: web.Request) -> Any:
    return {0: np.array([1, 2, 3], dtype=np.int64), 1: np.float64(0.5)}


async def _missing(request: web.Request) -> Any:
    raise web.HTTPNotFound(text="no such pod")


@pytest.mark.parametrize(
    ("route", "handler", "path", "status", "expected"),
    [
        pytest.param(
            "/debug/pods",
            _pods,
            "/debug/pods",
            200,
            {"pods": ["default/a", "default/b"], "count": 2},
            id="plain-value",
        ),
        pytest.param(
            "/debug/pods/{ns}/{name}",
            _pod,
            "/debug/pods/kube-system/coredns",
            200,
            {"namespace": "kube-system", "name": "coredns"},
            id="path-parameters",
        ),
        pytest.param(
            "/debug/rows",
            _rows,
            "/debug/rows",
            200,
            {"0": [1, 2, 3], "1": 0.5},
            id="numpy-and-int-keys",
        ),
        pytest.param("/debug/missing", _missing, "/debug/missing", 404, None, id="http-exception"),
    ],
)
async def test_json_route(
    route: str, handler: JsonHandler, path: str, status: int, expected: Any
) -> None:
    """An added route answers with its handler's value as JSON, or the HTTP error it raised."""
    async with serving(routes={route: handler}) as (url, session), session.get(url + path) as resp:
        assert resp.status == status
        if expected is not None:
            assert resp.content_type == "application/json"
            assert await resp.json() == expected


async def test_unknown_path_is_404() -> None:
    """Paths nobody registered answer 404."""
    async with serving() as (url, session), session.get(url + "/debug/nothing") as resp:
        assert resp.status == 404


@pytest.mark.parametrize("path", ["/flagz", "/statusz", "/configz"])
async def test_component_status_pages_are_not_served(path: str) -> None:
    """v1.36+ serves /flagz and /statusz by default and /configz with apiVersion/kind; berth
    serves none of them (pins today's behaviour; changes with #15)."""
    async with serving() as (url, session), session.get(url + path) as resp:
        assert resp.status == 404


async def test_add_route_after_start_is_refused() -> None:
    """Routes are fixed once the server runs; adding one then raises."""
    server = Server(Metrics(process_metrics=False), host="127.0.0.1", port=0)
    await server.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.add_json_route("/debug/late", _pods)
    finally:
        await server.stop()


async def test_stop_closes_the_port_and_is_idempotent() -> None:
    """After stop() nothing listens on the port, and a second stop() does nothing."""
    server = Server(Metrics(process_metrics=False), host="127.0.0.1", port=0)
    port = await server.start()
    assert port != 0
    await server.stop()
    await server.stop()

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/healthz")
