"""Client behaviour: cancellation of in-flight writes, which failures of a write are retried, and
what the client reports to its observer (client-go's rest_client_* metrics), against fakes and a
local aiohttp server on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from scheduler.kube import binder
from scheduler.kube.client import ApiError, Client, Credentials, RateLimiter
from scheduler.kube.http import Answer
from scheduler.metrics import Metrics


class _Answer:
    """A write pool whose one request waits for the test to answer it."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    async def request(
        self, method: str, path: str, data: bytes, ctype: str, auth: str | None = None
    ) -> Answer:
        return await self.answer

    async def close(self) -> None:
        return None


async def test_cancel_that_races_the_answer_still_cancels() -> None:
    """The answer arrives in the same loop step as the cancel. The write must still end in
    CancelledError: a worker that swallows it (asyncio.wait_for on 3.11 did) never stops, and
    `berth demo` hung on Recorder.stop()."""
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    fake = _Answer()
    client._fast = fake  # type: ignore[assignment]
    task = asyncio.create_task(client.post("/api/v1/namespaces/x/events", {"a": 1}))
    await asyncio.sleep(0)  # the write is now waiting for its answer
    await asyncio.sleep(0)
    fake.answer.set_result((201, b"{}", None))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class _Answers:
    """A write pool answering each request with the next of `answers`: a status code, or an
    exception to raise."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests = 0

    async def request(
        self, method: str, path: str, data: bytes, ctype: str, auth: str | None = None
    ) -> Answer:
        self.requests += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer, b"{}" if answer < 300 else b'{"reason": "x", "message": "y"}', None

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("answers", "requests", "error"),
    [
        pytest.param((429, 201), 2, None, id="429-retried"),
        pytest.param((500, 201), 2, None, id="500-retried"),
        pytest.param((503, 503, 201), 3, None, id="503-retried"),
        pytest.param((ConnectionRefusedError(), 201), 2, None, id="refused-retried"),
        pytest.param((500, 500, 500, 500, 201), 4, 500, id="four-tries-at-most"),
        pytest.param((502, 201), 1, 502, id="502-not-retried"),
        pytest.param((ConnectionResetError(), 201), 1, ConnectionResetError, id="reset-not"),
        pytest.param((409, 201), 1, 409, id="conflict-not-retried"),
    ],
)
async def test_binding_post_is_retried_as_upstreams_bind_pod(
    answers: tuple[int | Exception, ...],
    requests: int,
    error: int | type[Exception] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Binding POST is retried on 500, 503 and refused connections, four tries in all
    (upstream's util.BindPod with retry.DefaultBackoff), and on 429 by the client; a reset
    connection (the Binding may have landed) is not retried."""
    monkeypatch.setattr("scheduler.kube.client._backoff", lambda attempt: 0.0)
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    fake = _Answers(*answers)
    client._fast = fake  # type: ignore[assignment]
    bind = binder.bind(client, "default", "p", "uid-p", "n1")
    if error is None:
        await bind
    elif isinstance(error, int):
        with pytest.raises(ApiError) as info:
            await bind
        assert info.value.status == error
    else:
        with pytest.raises(error):
            await bind
    assert fake.requests == requests


# --- what a client reports: client-go's rest_client_* metrics ----------------------------------


class VirtualClock:
    """A monotonic clock that moves only when the fake API server works or someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0  # from 0, the durations the tests expect come out exact

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Recorded:
    """A RequestObserver that keeps every report, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str | float]] = []

    def count_request(self, method: str, host: str, code: str) -> None:
        self.calls.append(("count", method, host, code))

    def observe_request(self, verb: str, host: str, seconds: float) -> None:
        self.calls.append(("request", verb, host, seconds))

    def observe_rate_limiter(self, verb: str, host: str, seconds: float) -> None:
        self.calls.append(("limiter", verb, host, seconds))


SERVER_TIME = 0.3
"""Virtual seconds the fake API server spends on each answer of its timed routes."""


class FakeApi:
    """An aiohttp server on localhost answering a few API paths. Timed routes move the shared
    virtual clock by SERVER_TIME; /watch streams one event and holds the stream open until
    `end_watch` is set."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.end_watch = asyncio.Event()
        app = web.Application()
        app.router.add_get("/api/v1/nodes", self._timed(200, {"kind": "NodeList", "items": []}))
        app.router.add_get("/api/v1/nodes/gone", self._timed(404, _status("NotFound")))
        app.router.add_post("/api/v1/namespaces/x/events", self._timed(201, {"kind": "Event"}))
        app.router.add_get("/version", self._instant)
        app.router.add_get("/api/v1/pods", self._watch)
        app.router.add_get("/api/v1/secrets", self._timed(403, _status("Forbidden")))
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def _timed(self, status: int, body: dict[str, str | list[str]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            self.clock.now += SERVER_TIME
            return web.json_response(body, status=status)

        return handle

    async def _instant(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "37"})

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type": "ADDED", "object": {}}\n')
        await self.end_watch.wait()
        await resp.write_eof()
        return resp


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _status(reason: str) -> dict[str, str | list[str]]:
    return {"kind": "Status", "reason": reason, "message": reason.lower()}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def api(clock: VirtualClock) -> AsyncIterator[FakeApi]:
    fake = FakeApi(clock)
    await fake.server.start_server()
    yield fake
    fake.end_watch.set()
    await fake.server.close()


def exposed(m: Metrics, name: str, /, **labels: str) -> float | None:
    """The sample `name{labels}` in m's text exposition, or None if it is not exposed."""
    for family in text_string_to_metric_families(m.render()[0].decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


@pytest.mark.parametrize(
    ("method", "path", "write_connections", "status"),
    [
        pytest.param("GET", "/api/v1/nodes", 64, 200, id="get-200"),
        pytest.param("GET", "/api/v1/nodes/gone", 64, 404, id="get-404"),
        pytest.param("POST", "/api/v1/namespaces/x/events", 64, 201, id="post-201-pipelined"),
        pytest.param("POST", "/api/v1/namespaces/x/events", 0, 201, id="post-201-aiohttp"),
    ],
)
async def test_each_request_is_counted_and_timed(
    api: FakeApi,
    clock: VirtualClock,
    method: str,
    path: str,
    write_connections: int,
    status: int,
) -> None:
    """One call reports its status code once and its duration once, on either HTTP client; an
    unlimited client (qps=0) reports no rate-limiter wait."""
    observer = Recorded()
    body = {"kind": "Event"} if method == "POST" else None
    async with Client(
        Credentials(api.url),
        qps=0,
        write_connections=write_connections,
        observer=observer,
        clock=clock,
    ) as client:
        if status < 300:
            await client.request(method, path, body=body)
        else:
            with pytest.raises(ApiError):
                await client.request(method, path, body=body)

    assert observer.calls == [
        ("count", method, api.host, str(status)),
        ("request", method, api.host, SERVER_TIME),
    ]


async def test_request_moves_rest_client_metrics(api: FakeApi, clock: VirtualClock) -> None:
    """A GET through a Client with Metrics attached increments
    rest_client_requests_total{code,host,method} and observes its duration."""
    m = Metrics(process_metrics=False)
    async with Client(Credentials(api.url), qps=0, clock=clock) as client:
        client.observer = m  # as the app attaches it to a client it was handed
        await client.get("/api/v1/nodes")
        await client.get("/api/v1/nodes")

    host = api.host
    assert exposed(m, "rest_client_requests_total", code="200", method="GET", host=host) == 2
    duration = "rest_client_request_duration_seconds"
    assert exposed(m, duration + "_count", verb="GET", host=host) == 2
    assert exposed(m, duration + "_sum", verb="GET", host=host) == pytest.approx(0.6)
    assert exposed(m, duration + "_bucket", verb="GET", host=host, le="0.25") == 0
    assert exposed(m, duration + "_bucket", verb="GET", host=host, le="0.5") == 2


async def test_rate_limited_client_reports_its_waits(api: FakeApi, clock: VirtualClock) -> None:
    """At qps=2, burst=1, three calls wait 0, 0.5 and 0.5 s for the limiter; each wait is
    observed, and (as client-go times it) is part of its call's duration."""
    m = Metrics(process_metrics=False)
    observer = Recorded()
    async with Client(Credentials(api.url), qps=2, burst=1, clock=clock) as client:
        client.limiter = RateLimiter(2, 1, clock=clock, sleep=clock.sleep)
        for sink in (observer, m, m):
            client.observer = sink
            await client.get("/version")

    host = api.host
    assert observer.calls == [
        ("limiter", "GET", host, 0.0),
        ("count", "GET", host, "200"),
        ("request", "GET", host, 0.0),
    ]
    limiter = "rest_client_rate_limiter_duration_seconds"
    assert exposed(m, limiter + "_count", verb="GET", host=host) == 2
    assert exposed(m, limiter + "_sum", verb="GET", host=host) == pytest.approx(1.0)
    assert exposed(m, limiter + "_bucket", verb="GET", host=host, le="0.25") == 0
    assert exposed(m, limiter + "_bucket", verb="GET", host=host, le="0.5") == 2
    duration = "rest_client_request_duration_seconds"
    assert exposed(m, duration + "_sum", verb="GET", host=host) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("answers", "counted"),
    [
        pytest.param((201,), ["201"], id="answered"),
        pytest.param((429, 429, 201), ["429", "429", "201"], id="every-retry-counted"),
        pytest.param((ConnectionRefusedError(),), ["<error>"], id="no-response"),
        pytest.param((TimeoutError(),), ["<error>"], id="timeout"),
    ],
)
async def test_every_attempt_is_counted_and_the_call_timed_once(
    answers: tuple[int | Exception, ...],
    counted: list[str],
    clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """client-go counts every attempt by its code ("<error>" without a response) and times the
    call once, retries and all."""
    monkeypatch.setattr("scheduler.kube.client._backoff", lambda attempt: 0.0)
    observer = Recorded()
    client = Client(Credentials("http://10.0.0.1:6443"), qps=0, observer=observer, clock=clock)
    client._fast = _Answers(*answers)  # type: ignore[assignment]
    post = client.post("/api/v1/namespaces/x/events", {"a": 1})
    if isinstance(answers[-1], Exception):
        with pytest.raises(type(answers[-1])):
            await post
    else:
        await post

    host = "10.0.0.1:6443"
    assert observer.calls == [
        *(("count", "POST", host, code) for code in counted),
        ("request", "POST", host, 0.0),
    ]


async def test_unreachable_server_counts_error(clock: VirtualClock) -> None:
    """A GET that gets no connection at all is counted with code "<error>" and still timed."""
    closed = TestServer(web.Application(), host="127.0.0.1")
    await closed.start_server()
    url, host = f"http://127.0.0.1:{closed.port}", f"127.0.0.1:{closed.port}"
    await closed.close()
    observer = Recorded()
    async with Client(Credentials(url), qps=0, retries=0, observer=observer, clock=clock) as client:
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.get("/api/v1/nodes")

    assert observer.calls == [("count", "GET", host, "<error>"), ("request", "GET", host, 0.0)]


async def test_watch_is_counted_when_headers_arrive(api: FakeApi, clock: VirtualClock) -> None:
    """A watch is counted once its response headers arrive, while the stream is still open,
    and never timed (client-go's Request.Watch)."""
    observer = Recorded()
    async with Client(Credentials(api.url), qps=0, observer=observer, clock=clock) as client:
        lines = client.stream_lines("/api/v1/pods", {"watch": 1}, timeout=10)
        first = await anext(lines)
        assert observer.calls == [("count", "GET", api.host, "200")]
        api.end_watch.set()
        rest = [line async for line in lines]

    assert first.startswith(b'{"type": "ADDED"') and rest == []
    assert observer.calls == [("count", "GET", api.host, "200")]


async def test_refused_watch_is_counted_with_its_code(api: FakeApi, clock: VirtualClock) -> None:
    """A watch the server refuses is counted with the refusal's status code."""
    observer = Recorded()
    async with Client(Credentials(api.url), qps=0, observer=observer, clock=clock) as client:
        with pytest.raises(ApiError):
            async for _ in client.stream_lines("/api/v1/secrets", {"watch": 1}, timeout=10):
                pass

    assert observer.calls == [("count", "GET", api.host, "403")]


def test_host_label_is_the_servers_host_and_port() -> None:
    """The host label is the URL's host:port (Go's URL.Host), without any user info."""
    assert Client(Credentials("https://u:p@[fd00::1]:6443/"), qps=0).host == "[fd00::1]:6443"
    assert Client(Credentials("https://kubernetes.default.svc"), qps=0).host == (
        "kubernetes.default.svc"
    )


async def test_a_429_on_the_write_path_waits_its_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pipelined write client reads Retry-After, and the retry waits what it says (as
    client-go does), not the client's own backoff."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("scheduler.kube.client.asyncio.sleep", sleep)

    class Busy:
        def __init__(self) -> None:
            self.answers: list[Answer] = [(429, b"{}", "7"), (201, b"{}", None)]

        async def request(
        self, method: str, path: str, data: bytes, ctype: str, auth: str | None = None
    ) -> Answer:
            return self.answers.pop(0)

        async def close(self) -> None:
            return None

    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    client._fast = Busy()  # type: ignore[assignment]
    await client.post("/api/v1/namespaces/x/events", {"a": 1})
    assert waits == [7.0]
