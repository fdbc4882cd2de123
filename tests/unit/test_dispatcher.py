"""Pod status writes through kube.dispatcher.StatusDispatcher and events through
kube.events.Recorder: ordered per pod, merged, superseded by a Binding, retried when the failure
is transient; against a fake client whose answers the test controls."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from scheduler.kube.client import ApiError, Client
from scheduler.kube.dispatcher import StatusDispatcher, StatusPatch
from scheduler.kube.events import Recorder

JSON = dict[str, Any]
CONDITION = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}


class FakeClient:
    """Records PATCH and POST calls (path, body). `hold` makes the next calls wait on a future
    the test resolves; `fail` is a list of exceptions raised by the next calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, JSON]] = []
        self.fail: list[BaseException] = []
        self.held: list[asyncio.Future[None]] = []
        self.hold = False

    async def _call(self, path: str, body: JSON) -> None:
        if self.hold:
            gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.held.append(gate)
            await gate
        if self.fail:
            raise self.fail.pop(0)
        self.calls.append((path, body))

    async def patch(self, path: str, body: JSON) -> None:
        await self._call(path, body)

    async def post(self, path: str, body: JSON) -> None:
        await self._call(path, body)


class Seen:
    """A CallObserver keeping what it hears."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []
        self.skipped: list[tuple[str, str]] = []

    def api_call_done(self, call_type: str, result: str, seconds: float) -> None:
        self.done.append((call_type, result))

    def api_call_skipped(self, call_type: str, reason: str) -> None:
        self.skipped.append((call_type, reason))

    def api_calls_pending(self, call_type: str, pending: int) -> None:
        pass


async def no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def dispatcher(client: FakeClient, seen: Seen | None = None) -> StatusDispatcher:
    return StatusDispatcher(
        cast(Client, client), workers=2, observer=seen, clock=lambda: 0.0, sleep=no_sleep
    )


def failed(uid: str = "u1", name: str = "p") -> StatusPatch:
    return StatusPatch("ns", name, uid, condition=CONDITION)


def nominated(node: str, uid: str = "u1", name: str = "p") -> StatusPatch:
    return StatusPatch("ns", name, uid, nominated=node)


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


async def test_a_pending_failure_is_dropped_by_the_binding() -> None:
    """A failure status and a nomination still queued when the pod's Binding starts are
    never written: they would contradict PodScheduled=True."""
    client, seen = FakeClient(), Seen()
    d = dispatcher(client, seen)
    d.patch(failed())
    d.patch(nominated("n1"))
    await d.binding("u1")
    d.bound("u1")
    d.start()
    await d.flush()
    await d.stop()
    assert client.calls == []
    assert ("pod_status_patch", "stale") in seen.skipped


async def test_the_binding_waits_for_a_write_in_flight() -> None:
    """A status write already sent when the Binding starts is waited for, so it cannot land
    after the Binding."""
    client = FakeClient()
    client.hold = True
    d = dispatcher(client)
    d.start()
    d.patch(failed())
    await until(lambda: client.held)
    binding = asyncio.create_task(d.binding("u1"))
    await asyncio.sleep(0)
    assert not binding.done()
    client.held[0].set_result(None)
    await asyncio.wait_for(binding, 5)
    assert [path for path, _ in client.calls] == ["/api/v1/namespaces/ns/pods/p/status"]
    await d.stop()


async def test_writes_during_a_binding_are_skipped_until_it_fails() -> None:
    """While the Binding is in flight status writes are skipped; after it failed with an
    answer they go through again."""
    client = FakeClient()
    d = dispatcher(client)
    await d.binding("u1")
    d.patch(nominated(""))
    d.binding_failed("u1")
    d.patch(failed())
    d.start()
    await d.flush()
    await d.stop()
    assert [body for _, body in client.calls] == [{"status": {"conditions": [CONDITION]}}]


async def test_writes_for_one_pod_merge_while_they_wait() -> None:
    """A failure and a nomination queued for the same pod become one write carrying both;
    a later nomination replaces an earlier one."""
    client = FakeClient()
    d = dispatcher(client)
    d.patch(nominated("n1"))
    d.patch(failed())
    d.patch(nominated("n2"))
    d.start()
    await d.flush()
    await d.stop()
    assert client.calls == [
        (
            "/api/v1/namespaces/ns/pods/p/status",
            {"status": {"conditions": [CONDITION], "nominatedNodeName": "n2"}},
        )
    ]


async def test_a_write_queued_behind_one_in_flight_goes_after_it() -> None:
    """One call per pod at a time: a newer write for a pod whose write is in flight waits for
    it and is sent next, never alongside."""
    client = FakeClient()
    client.hold = True
    d = dispatcher(client)
    d.start()
    d.patch(nominated("n1"))
    await until(lambda: len(client.held) == 1)
    d.patch(nominated(""))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(client.held) == 1  # the second waits for the first
    client.hold = False
    client.held[0].set_result(None)
    await d.flush()
    await d.stop()
    assert [body["status"]["nominatedNodeName"] for _, body in client.calls] == ["n1", None]


@pytest.mark.parametrize(
    ("errors", "writes", "result"),
    [
        pytest.param([ConnectionError("reset")], 1, "success", id="no-answer-retried"),
        pytest.param([ApiError(503, "", "", "PATCH", "/")], 1, "success", id="503-retried"),
        pytest.param(
            [ApiError(429, "", "", "PATCH", "/")], 0, "error", id="429-left-to-the-client"
        ),
        pytest.param([ApiError(422, "Invalid", "", "PATCH", "/")], 0, "error", id="422-given-up"),
        pytest.param([TimeoutError()] * 8, 0, "error", id="retries-bounded"),
    ],
)
async def test_transient_failures_are_retried_a_bounded_number_of_times(
    errors: list[BaseException], writes: int, result: str
) -> None:
    """No answer and 5xx are retried with backoff, up to `attempts` tries; anything else
    (a 429 included: the client retried it already) is given up at once. Each call ends in
    one result."""
    client, seen = FakeClient(), Seen()
    client.fail = list(errors)
    d = dispatcher(client, seen)
    d.start()
    d.patch(failed())
    await d.flush()
    await d.stop()
    assert len(client.calls) == writes
    assert seen.done == [("pod_status_patch", result)]


async def test_a_write_for_a_deleted_pod_is_dropped() -> None:
    """404: the pod is gone; nothing is retried."""
    client, seen = FakeClient(), Seen()
    client.fail = [ApiError(404, "NotFound", "", "PATCH", "/")]
    d = dispatcher(client, seen)
    d.start()
    d.patch(failed())
    await d.flush()
    await d.stop()
    assert client.calls == [] and seen.skipped == [("pod_status_patch", "gone")]


async def test_a_pod_seen_bound_by_the_watch_gets_no_more_writes() -> None:
    """bound() (the watch saw spec.nodeName) drops what waits and skips what comes."""
    client = FakeClient()
    d = dispatcher(client)
    d.patch(failed())
    d.bound("u1")
    d.patch(nominated("n1"))
    d.patch(failed(uid="u2", name="q"))
    d.start()
    await d.flush()
    await d.stop()
    assert [path for path, _ in client.calls] == ["/api/v1/namespaces/ns/pods/q/status"]


async def test_a_scheduled_event_whose_write_was_cut_is_retried() -> None:
    """A Scheduled event whose POST got no answer is sent again (same name); if the first
    try had landed, the 409 of the second counts as written."""
    client, seen = FakeClient(), Seen()
    client.fail = [ConnectionError("reset"), ApiError(409, "AlreadyExists", "", "POST", "/")]
    rec = Recorder(
        cast(Client, client),
        controller="berth",
        instance="b-0",
        workers=1,
        clock=lambda: 0.0,
        observer=seen,
    )
    rec.start()
    rec.scheduled("ns", "p", "u1", "n1")
    for _ in range(200):  # the retry comes after a real backoff of under a second
        if seen.done:
            break
        await asyncio.sleep(0.02)
    await asyncio.wait_for(rec.flush(), 5)
    await rec.stop()
    assert seen.done == [("event", "success")]
    assert client.fail == []  # both answers were consumed: the event was tried twice


async def test_a_binding_cuts_a_retry_backoff_short() -> None:
    """A status write waiting out its backoff when the pod's Binding starts gives up at once:
    the Binding does not wait for its retries."""
    client, seen = FakeClient(), Seen()
    client.fail = [ConnectionError("reset")]
    slept: list[float] = []

    async def long_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(3600)

    d = StatusDispatcher(
        cast(Client, client), workers=1, observer=seen, clock=lambda: 0.0, sleep=long_sleep
    )
    d.start()
    d.patch(failed())
    await until(lambda: slept)
    await asyncio.wait_for(d.binding("u1"), 5)
    await d.stop()
    assert client.calls == [] and ("pod_status_patch", "stale") in seen.skipped


async def test_a_pod_queued_again_after_a_failed_binding_has_one_write_at_a_time() -> None:
    """A write dropped by a Binding leaves its pod in line; a new write after the Binding
    failed must not put it in line twice (two writes for one pod at once, a worker dead of a
    KeyError, a later Binding not waiting for the write in flight)."""
    client = FakeClient()
    client.hold = True
    d = dispatcher(client)  # two workers
    d.patch(failed(uid="z", name="z"))  # another pod's write, first in line
    d.patch(nominated("n1"))
    await d.binding("u1")
    d.binding_failed("u1")
    d.patch(nominated("n2"))
    d.start()
    await until(lambda: len(client.held) == 2)  # z, and u1's n2
    d.patch(nominated("n3"))  # waits for n2
    client.held[0].set_result(None)  # z done: the free worker must not take u1 again
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(client.held) == 2
    binding = asyncio.create_task(d.binding("u1"))
    client.held[1].set_result(None)  # n2 done; n3 was dropped by the Binding
    await asyncio.wait_for(binding, 5)
    assert all(not task.done() for task in d._tasks)  # no worker died
    await d.stop()
    nominations = [
        body["status"].get("nominatedNodeName") for path, body in client.calls if "/p/" in path
    ]
    assert nominations == ["n2"]


async def test_pods_bound_without_writes_are_not_remembered() -> None:
    """The watch reports every bound pod; those berth never wrote for are not kept."""
    d = dispatcher(FakeClient())
    for i in range(100):
        d.bound(f"other-{i}")
    await d.binding("u1")
    d.bound("u1")
    assert list(d._bound) == ["u1"]


async def test_a_5xx_retry_waits_at_least_what_retry_after_said() -> None:
    """A 503 whose answer carried Retry-After (the client does not retry a PATCH's 5xx itself)
    is tried again no sooner than the server asked, even when the backoff is shorter."""
    client, seen = FakeClient(), Seen()
    client.fail = [ApiError(503, "", "", "PATCH", "/", retry_after=7.0)]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    d = StatusDispatcher(
        cast(Client, client), workers=1, observer=seen, clock=lambda: 0.0, sleep=sleep
    )
    d.start()
    d.patch(failed())
    await d.flush()
    await d.stop()
    assert slept == [7.0] and len(client.calls) == 1
