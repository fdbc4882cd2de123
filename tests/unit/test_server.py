"""scheduler.server: /metrics, the health probes, /configz, /metrics/resources, /metrics/slis
and JSON routes, on a real socket (plain HTTP, port 0). HTTPS with delegated authn/authz is
tested against a real API server in tests/e2e/test_secure_serving_e2e.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from scheduler.health import Check
from scheduler.metrics import Metrics
from scheduler.server import HealthChecks, JsonHandler, Server


@asynccontextmanager
async def serving(
    metrics: Metrics | None = None,
    *,
    checks: HealthChecks | None = None,
    routes: Mapping[str, JsonHandler] | None = None,
    configz: Callable[[], Any] | None = None,
    resource_metrics: Callable[[], bytes] | None = None,
    leading: Callable[[], bool] = lambda: True,
) -> AsyncIterator[tuple[str, aiohttp.ClientSession, Server]]:
    """A started Server on a free loopback port (plain HTTP), its base URL, a client session."""
    server = Server(
        metrics or Metrics(process_metrics=False),
        checks=checks,
        configz=configz,
        resource_metrics=resource_metrics,
        leading=leading,
    )
    for path, handler in (routes or {}).items():
        server.add_json_route(path, handler)
    await server.start(plain_port=0)
    try:
        async with aiohttp.ClientSession() as session:
            yield f"http://127.0.0.1:{server.plain_port}", session, server
    finally:
        await server.stop()


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as resp:
        return resp.status, await resp.text()


WITHHELD = "[-]apiserver-reachable failed: reason withheld\nhealthz check failed\n"


def _failing(why: str) -> Check:
    return Check("apiserver-reachable", lambda: why)


@pytest.mark.parametrize(
    ("checks", "path", "expected"),
    [
        pytest.param(HealthChecks(), "/healthz", (200, "ok"), id="healthz-ping"),
        pytest.param(HealthChecks(), "/livez?verbose", (200, "[+]ping ok\nlivez check passed\n"),
                     id="livez-verbose"),
        pytest.param(HealthChecks(healthz=[_failing("silent 61s")]), "/healthz",
                     (500, WITHHELD), id="healthz-failing-withholds-the-reason"),
        pytest.param(HealthChecks(healthz=[_failing("silent 61s")]), "/healthz/apiserver-reachable",
                     (500, "internal server error: silent 61s\n"), id="subpath-shows-the-reason"),
        pytest.param(HealthChecks(healthz=[_failing("x")]), "/healthz?exclude=apiserver-reachable",
                     (200, "ok"), id="excluded"),
        pytest.param(HealthChecks(healthz=[_failing("x")]), "/livez", (200, "ok"),
                     id="livez-not-affected"),
        pytest.param(HealthChecks(readyz=[Check("sched-handler-sync", lambda: "not synced")]),
                     "/readyz",
                     (500, "[-]sched-handler-sync failed: reason withheld\nreadyz check failed\n"),
                     id="readyz-not-ready"),
        pytest.param(HealthChecks(), "/readyz/ping", (200, "ok"), id="subpath-ok"),
        pytest.param(HealthChecks(), "/healthz/nothing", (404, "404: Not Found"),
                     id="unknown-check-404"),
    ],
)  # fmt: skip
async def test_probe_answers(checks: HealthChecks, path: str, expected: tuple[int, str]) -> None:
    """Health paths answer in apiserver's layout, with per-check subpaths."""
    async with serving(checks=checks) as (url, session, _):
        assert await get(session, url + path) == expected


async def test_checks_run_on_every_request() -> None:
    """/readyz turns 200 as soon as its check passes, with no caching in between."""
    state = {"ready": False}
    check = Check("sched-handler-sync", lambda: None if state["ready"] else "not yet")
    async with serving(checks=HealthChecks(readyz=[check])) as (url, session, _):
        assert (await get(session, url + "/readyz"))[0] == 500
        state["ready"] = True
        assert await get(session, url + "/readyz") == (200, "ok")


async def test_slis_count_every_root_evaluation() -> None:
    """/metrics/slis: kubernetes_healthcheck (last result) and kubernetes_healthchecks_total
    (by status) per check and path, as component-base's slis; subpaths are not counted."""
    state = {"why": "down"}
    check = Check("apiserver-reachable", lambda: state["why"] or None)
    async with serving(checks=HealthChecks(healthz=[check])) as (url, session, _):
        await get(session, url + "/healthz")
        state["why"] = ""
        await get(session, url + "/healthz")
        await get(session, url + "/healthz")
        await get(session, url + "/healthz/apiserver-reachable")
        await get(session, url + "/livez")
        status, text = await get(session, url + "/metrics/slis")
    assert status == 200
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    reach = (("name", "apiserver-reachable"), ("type", "healthz"))
    assert values[("kubernetes_healthcheck", reach)] == 1
    assert (
        values[("kubernetes_healthchecks_total", (*reach[:1], ("status", "error"), reach[1]))] == 1
    )
    assert (
        values[("kubernetes_healthchecks_total", (*reach[:1], ("status", "success"), reach[1]))]
        == 2
    )
    assert values[("kubernetes_healthcheck", (("name", "ping"), ("type", "livez")))] == 1
    assert (
        "# HELP kubernetes_healthcheck [STABLE] This metric records the result of a single" in text
    )
    assert any(name == "process_start_time_seconds" for name, _ in values)


async def test_configz_wraps_the_document_as_componentconfig() -> None:
    """/configz is upstream's configz map: {"componentconfig": <the v1 document>}."""
    document = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
    }
    async with (
        serving(configz=lambda: document) as (url, session, _),
        session.get(url + "/configz") as resp,
    ):
        assert resp.status == 200 and resp.content_type == "application/json"
        assert await resp.json() == {"componentconfig": document}


async def test_resource_metrics_only_while_leading() -> None:
    """/metrics/resources renders while leading; a follower answers 200 with an empty body,
    as kube-scheduler's handler writes nothing when it does not lead."""
    state = {"leading": False}
    body = b"# HELP kube_pod_resource_request x\n"
    async with serving(resource_metrics=lambda: body, leading=lambda: state["leading"]) as (
        url,
        session,
        _,
    ):
        assert await get(session, url + "/metrics/resources") == (200, "")
        state["leading"] = True
        assert await get(session, url + "/metrics/resources") == (200, body.decode())


async def test_metrics_endpoint_serves_render() -> None:
    """/metrics answers with Metrics.render()'s body and content type."""
    metrics = Metrics(process_metrics=False)
    metrics.observe_attempt("scheduled", "default-scheduler", 0.01)

    async with serving(metrics) as (url, session, _), session.get(url + "/metrics") as resp:
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
    async with (
        serving(routes={route: handler}) as (url, session, _),
        session.get(url + path) as resp,
    ):
        assert resp.status == status
        if expected is not None:
            assert resp.content_type == "application/json"
            assert await resp.json() == expected


async def test_unknown_path_is_404() -> None:
    """Paths nobody registered answer 404."""
    async with serving() as (url, session, _), session.get(url + "/debug/nothing") as resp:
        assert resp.status == 404


@pytest.mark.parametrize("path", ["/flagz", "/statusz"])
async def test_component_status_pages_are_not_served(path: str) -> None:
    """v1.36+ serves /flagz and /statusz by default; berth does not (docs/compat.md)."""
    async with serving() as (url, session, _), session.get(url + path) as resp:
        assert resp.status == 404


async def test_add_route_after_start_is_refused() -> None:
    """Routes are fixed once the server runs; adding one then raises."""
    server = Server(Metrics(process_metrics=False))
    await server.start(plain_port=0)
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.add_json_route("/debug/late", _pods)
    finally:
        await server.stop()


async def test_stop_closes_the_port_and_is_idempotent() -> None:
    """After stop() nothing listens on the port, and a second stop() does nothing."""
    server = Server(Metrics(process_metrics=False))
    await server.start(plain_port=0)
    port = server.plain_port
    assert port != 0
    await server.stop()
    await server.stop()

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/healthz")
