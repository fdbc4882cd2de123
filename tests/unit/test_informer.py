"""The informer without an API server: what it tells its observer (client-go's informer
metrics) after each list and watch event, under a virtual clock; and the resource labels it
derives from its path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.kube.client import Client, StreamIdle
from scheduler.kube.informer import (
    ADDED,
    DELETED,
    MODIFIED,
    WATCH_IDLE_SECONDS,
    GroupVersionResource,
    Informer,
    metric_resource_version,
    resource_of,
)
from scheduler.metrics import Metrics

JSON = dict[str, Any]
Call = tuple[str, float]

PODS = "/api/v1/pods"
HANDLER_SECONDS = 0.002  # virtual time each handler call takes
# informer_processing_latency_seconds' bounds as kube-scheduler prints them.
LATENCY_BOUNDS = (
    "0.001",
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1",
    "2.5",
    "5",
    "10",
    "+Inf",
)


def pod(name: str, rv: str) -> JSON:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeApi:
    """Answers LISTs with the next of `lists` (the last one again when they run out) and
    WATCHes with the events fed to it; `handled()` returns once the informer has handled
    everything fed so far."""

    def __init__(self, *lists: JSON) -> None:
        self.lists = list(lists)
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()

    async def request(
        self, method: str, path: str, *, params: Mapping[str, str | int], timeout: float
    ) -> JSON:
        return self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]

    async def stream_lines(
        self, path: str, params: Mapping[str, str | int], timeout: float, idle: float | None
    ) -> AsyncIterator[bytes]:
        while True:
            line = await self.lines.get()
            try:
                yield line  # the informer asks for the next line once this one is handled
            finally:
                self.lines.task_done()

    def feed(self, kind: str, obj: JSON) -> None:
        self.lines.put_nowait(orjson.dumps({"type": kind, "object": obj}))

    async def handled(self) -> None:
        await asyncio.wait_for(self.lines.join(), 5)


def listed(rv: str, *items: JSON) -> JSON:
    return {"metadata": {"resourceVersion": rv}, "items": list(items)}


class Observer:
    """Records every report, in order: ("resource_version", rv), ("queued_items", n) and
    ("processing", seconds)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def set_resource_version(self, resource_version: int) -> None:
        self.calls.append(("resource_version", resource_version))

    def set_queued_items(self, items: int) -> None:
        self.calls.append(("queued_items", items))

    def observe_processing(self, seconds: float) -> None:
        self.calls.append(("processing", seconds))


class Handler:
    """Records (event, name) and takes HANDLER_SECONDS of virtual time; raises if told to."""

    def __init__(self, clock: Clock, *, fail: bool = False) -> None:
        self.clock, self.fail = clock, fail
        self.events: list[tuple[str, str]] = []

    def __call__(self, kind: str, obj: JSON, old: JSON | None) -> None:
        self.clock.now += HANDLER_SECONDS
        self.events.append((kind, obj["metadata"]["name"]))
        if self.fail:
            raise RuntimeError("handler bug")


def noop(kind: str, obj: JSON, old: JSON | None) -> None:
    pass


async def until(condition: Callable[[], bool]) -> None:
    """Let the informer's task run until `condition` holds (no wall-clock waits)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


async def running(informer: Informer) -> asyncio.Task[None]:
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(informer.synced.wait(), 5)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def approx(calls: list[Call]) -> list[Any]:
    return [(what, pytest.approx(n)) for what, n in calls]


async def test_list_reports_its_version_one_processing_time_and_nothing_queued() -> None:
    """After a list the store's version is the list's; the whole list is one processed event
    (client-go's ReplacedAll), from its arrival to the last handler; nothing is queued."""
    clock, observer = Clock(), Observer()
    api = FakeApi(listed("10", pod("a", "7"), pod("b", "8"), pod("c", "9")))
    handler = Handler(clock)
    informer = Informer(cast(Client, api), PODS, handler, observer=observer, clock=clock)

    task = await running(informer)
    await stop(task)

    assert handler.events == [(ADDED, "a"), (ADDED, "b"), (ADDED, "c")]
    assert observer.calls == approx(
        [("resource_version", 10), ("processing", 3 * HANDLER_SECONDS), ("queued_items", 0)]
    )


@pytest.mark.parametrize(
    ("events", "fail", "expected"),
    [
        pytest.param(
            [(ADDED, pod("d", "11"))],
            False,
            [("resource_version", 11), ("processing", HANDLER_SECONDS)],
            id="added",
        ),
        pytest.param(
            [(MODIFIED, pod("a", "12")), (DELETED, pod("a", "13"))],
            False,
            [
                ("resource_version", 12),
                ("processing", HANDLER_SECONDS),
                ("resource_version", 13),
                ("processing", HANDLER_SECONDS),
            ],
            id="modified-then-deleted",
        ),
        pytest.param(
            [("BOOKMARK", {"metadata": {"resourceVersion": "20"}})],
            False,
            [("resource_version", 20), ("processing", 0.0)],
            id="bookmark-moves-the-version-without-a-handler",
        ),
        pytest.param(
            [(ADDED, pod("d", "11"))],
            True,
            [("resource_version", 11), ("processing", HANDLER_SECONDS)],
            id="failing-handler-still-timed",
        ),
        pytest.param(
            [(ADDED, pod("d", "9876543210123456789"))],
            False,
            [("resource_version", 543210123456789), ("processing", HANDLER_SECONDS)],
            id="version-cut-to-its-last-15-digits",
        ),
        pytest.param(
            [(ADDED, pod("d", "opaque-11"))],
            False,
            [("processing", HANDLER_SECONDS)],
            id="non-numeric-version-not-reported",
        ),
    ],
)
async def test_each_watch_event_reports_after_its_handler(
    events: list[tuple[str, JSON]], fail: bool, expected: list[Call]
) -> None:
    """Each watch event reports the store's version and its time from arrival to the end of
    its handler (a bookmark has no handler; a failing one is logged and still timed)."""
    clock, observer = Clock(), Observer()
    api = FakeApi(listed("10", pod("a", "7")))
    informer = Informer(cast(Client, api), PODS, Handler(clock, fail=fail), clock=clock)
    task = await running(informer)
    informer.observer = observer  # set after the list, so only the watch's reports show

    for kind, obj in events:
        api.feed(kind, obj)
    await api.handled()
    await stop(task)

    assert observer.calls == approx(expected)


async def test_expired_watch_reports_nothing_then_the_relist() -> None:
    """An ERROR event (410 Gone) stores nothing and is not timed; the relist that follows
    reports its own version, its deletions' handling time and nothing queued."""
    clock, observer = Clock(), Observer()
    api = FakeApi(listed("10", pod("a", "7"), pod("b", "8")), listed("30", pod("a", "7")))
    handler = Handler(clock)
    informer = Informer(cast(Client, api), PODS, handler, clock=clock)
    task = await running(informer)
    informer.observer = observer

    api.feed("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})
    await until(lambda: informer.resource_version == "30" and len(observer.calls) == 3)
    await stop(task)

    assert handler.events[-1] == (DELETED, "b")
    assert observer.calls == approx(
        [("resource_version", 30), ("processing", HANDLER_SECONDS), ("queued_items", 0)]
    )


async def test_without_an_observer_events_flow_as_before() -> None:
    """No observer (the default): the informer lists and watches exactly as it did."""
    clock = Clock()
    api = FakeApi(listed("10", pod("a", "7")))
    handler = Handler(clock)
    informer = Informer(cast(Client, api), PODS, handler, clock=clock)
    task = await running(informer)

    api.feed(MODIFIED, pod("a", "11"))
    await api.handled()
    await stop(task)

    assert informer.observer is None
    assert handler.events == [(ADDED, "a"), (MODIFIED, "a")]
    assert informer.resource_version == "11"


async def test_metrics_exposes_what_the_informer_reports() -> None:
    """Wired as the app wires it (Metrics.informer_observer(*informer.resource)), the informer's
    reports show as kube-scheduler's informer_* series for group "", version v1, pods."""
    clock, metrics = Clock(), Metrics(process_metrics=False)
    api = FakeApi(listed("10", pod("a", "7")))
    informer = Informer(cast(Client, api), PODS, Handler(clock), clock=clock)
    informer.observer = metrics.informer_observer(*informer.resource)
    task = await running(informer)

    api.feed(ADDED, pod("b", "11"))
    await api.handled()
    await stop(task)

    labels = {"name": "kube-scheduler", "group": "", "version": "v1", "resource": "pods"}
    exposed = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for s in family.samples
        if s.name.startswith("informer_") and s.labels.items() >= labels.items()
    }
    expected: dict[tuple[str, str | None], Any] = {
        ("informer_store_resource_version", None): 11,
        ("informer_queued_items", None): 0,
        ("informer_processing_latency_seconds_count", None): 2,
        ("informer_processing_latency_seconds_sum", None): pytest.approx(2 * HANDLER_SECONDS),
    }
    for le in LATENCY_BOUNDS:  # the list and the watch event took 2ms each
        expected["informer_processing_latency_seconds_bucket", le] = 0 if le == "0.001" else 2
    assert exposed == expected


@pytest.mark.parametrize(
    ("resource_version", "expected"),
    [
        pytest.param("12345", 12345, id="short"),
        pytest.param("123456789012345", 123456789012345, id="fifteen-digits"),
        pytest.param("9876543210123456789", 543210123456789, id="last-fifteen-digits"),
        pytest.param("1000000000000000007", 7, id="leading-zeros-dropped"),
        pytest.param("", 0, id="empty"),
        pytest.param("abc", None, id="opaque"),
        pytest.param("12a45", None, id="mixed"),
        pytest.param("١٢٣", None, id="non-ascii-digits"),
    ],
)
def test_metric_resource_version(resource_version: str, expected: int | None) -> None:
    """As client-go's parseRVForMetricsWithTruncation: the last 15 digits, 0 when empty, and
    nothing (the gauge left alone) when they are not a decimal number."""
    assert metric_resource_version(resource_version) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/api/v1/nodes", ("", "v1", "nodes"), id="core"),
        pytest.param("/api/v1/namespaces", ("", "v1", "namespaces"), id="namespaces"),
        pytest.param("/api/v1/namespaces/ns/pods", ("", "v1", "pods"), id="core-namespaced"),
        pytest.param(
            "/apis/policy/v1/poddisruptionbudgets",
            ("policy", "v1", "poddisruptionbudgets"),
            id="group",
        ),
        pytest.param(
            "/apis/resource.k8s.io/v1/deviceclasses",
            ("resource.k8s.io", "v1", "deviceclasses"),
            id="dotted-group",
        ),
        pytest.param(
            "/apis/apps/v1/namespaces/ns/replicasets",
            ("apps", "v1", "replicasets"),
            id="group-namespaced",
        ),
    ],
)
def test_resource_of(path: str, expected: tuple[str, str, str]) -> None:
    """The group, version and resource client-go labels an informer's metrics with."""
    assert resource_of(path) == GroupVersionResource(*expected)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/healthz", id="not-the-api"),
        pytest.param("/api/v1", id="no-resource"),
        pytest.param("/apis/apps/v1", id="group-no-resource"),
        pytest.param("/api/v1/namespaces/ns", id="one-object"),
        pytest.param("/api/v1/nodes/n1/status", id="subresource"),
    ],
)
def test_resource_of_rejects_other_paths(path: str) -> None:
    """A path that names no collection is refused when the informer is built."""
    with pytest.raises(ValueError):
        resource_of(path)


def test_informer_knows_its_resource() -> None:
    """Informer.resource is resource_of(path), what the app passes to informer_observer()."""
    informer = Informer(cast(Client, FakeApi(listed("1"))), "/apis/apps/v1/statefulsets", noop)

    assert informer.resource == ("apps", "v1", "statefulsets")


class IdleApi(FakeApi):
    """A FakeApi whose watches go idle (raise StreamIdle) after the lines fed before them;
    records each watch's resourceVersion."""

    def __init__(self, *lists: JSON) -> None:
        super().__init__(*lists)
        self.watched_from: list[str] = []

    async def stream_lines(
        self, path: str, params: Mapping[str, str | int], timeout: float, idle: float | None
    ) -> AsyncIterator[bytes]:
        self.watched_from.append(str(params["resourceVersion"]))
        assert idle == WATCH_IDLE_SECONDS
        while not self.lines.empty():
            line = self.lines.get_nowait()
            try:
                yield line
            finally:
                self.lines.task_done()
        await asyncio.sleep(0)  # the idle wait, on virtual time
        raise StreamIdle("no data")


async def test_an_idle_watch_resumes_from_its_version_at_once() -> None:
    """A watch silent for WATCH_IDLE_SECONDS is resumed from the last resourceVersion it saw,
    without a relist and without the failure backoff."""
    api = IdleApi(listed("10"))
    api.feed("ADDED", pod("a", "11"))
    informer = Informer(api, "/api/v1/pods", noop)  # type: ignore[arg-type]
    task = await running(informer)
    await until(lambda: len(api.watched_from) >= 3)
    await stop(task)
    assert api.watched_from[:3] == ["10", "11", "11"]
    assert informer.idle_restarts >= 2 and informer.relists == 0
