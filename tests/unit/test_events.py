"""scheduler.kube.events and scheduler.kube.preemption against a recording client: what is
written for a failure, a preemption and its victim, that the writes wait off the hot path, and
that repeats become event series as client-go's events broadcaster makes them."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from scheduler.kube import events, preemption
from scheduler.kube.client import ApiError, Client
from scheduler.kube.event_series import FINISH_SECONDS
from scheduler.kube.events import Recorder

JSON = dict[str, Any]
EVENTS = "/apis/events.k8s.io/v1/namespaces/default/events"
START_NS = 1_800_000_000_000_000_000  # 2027-01-15T08:00:00Z, the fake wall clock at 0 s


class RecordingClient:
    """The writes a Recorder or preempt() makes, in order: (method, path, body). `answers`
    holds, per method, the errors its next calls raise (after recording them)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, JSON]] = []
        self.answers: dict[str, list[ApiError]] = {}

    def _answer(self, method: str, path: str, body: JSON) -> None:
        self.calls.append((method, path, body))
        if self.answers.get(method):
            raise self.answers[method].pop(0)

    async def post(self, path: str, body: JSON) -> None:
        self._answer("POST", path, body)

    async def patch(self, path: str, body: JSON) -> None:
        self._answer("PATCH", path, body)

    async def delete(self, path: str, body: JSON) -> None:
        self.calls.append(("DELETE", path, body))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> int:
        """The same moment as Unix nanoseconds."""
        return START_NS + int(self.now * 1e9)


def recorder(client: RecordingClient, clock: FakeClock | None = None) -> Recorder:
    clock = clock or FakeClock()
    return Recorder(
        cast(Client, client),
        controller="default-scheduler",
        instance="berth-0",
        workers=1,
        clock=clock,
        wall=clock.wall,
    )


async def written(rec: Recorder) -> None:
    rec.start()
    await rec.flush()
    await rec.stop()


async def test_writes_wait_for_a_worker_off_the_hot_path() -> None:
    """failed() only enqueues: nothing reaches the API until a worker takes it (DESIGN
    decisions 5 and 7; upstream writes these inline while SchedulerAsyncAPICalls is off)."""
    client = RecordingClient()
    rec = recorder(client)
    rec.failed("default", "p", "uid-p", "0/1 nodes are available: ...", "Unschedulable")
    assert client.calls == []
    await written(rec)
    assert [(method, path) for method, path, _ in client.calls] == [
        ("POST", "/apis/events.k8s.io/v1/namespaces/default/events"),
        ("PATCH", "/api/v1/namespaces/default/pods/p/status"),
    ]


@pytest.mark.parametrize(
    ("generation", "observed"),
    [pytest.param(3, 3, id="the-pods-generation"), pytest.param(0, None, id="none-without-one")],
)
async def test_pod_scheduled_condition_carries_the_observed_generation(
    generation: int, observed: int | None
) -> None:
    """The PodScheduled=False condition carries the pod's metadata.generation as
    observedGeneration (PodObservedGenerationTracking, GA in v1.35), omitted when the pod has
    none (Go's omitempty)."""
    client = RecordingClient()
    rec = recorder(client)
    rec.failed("default", "p", "uid-p", "no fit", "Unschedulable", generation=generation)
    await written(rec)
    _, _, patch = client.calls[1]
    [condition] = patch["status"]["conditions"]
    assert condition.get("observedGeneration") == observed
    assert (condition["type"], condition["status"], condition["message"]) == (
        "PodScheduled",
        "False",
        "no fit",
    )


def micro(seconds: float) -> str:
    """The fake wall clock at `seconds`, as a MicroTime."""
    return events.micro_time(START_NS + int(seconds * 1e9))


def writes(client: RecordingClient) -> list[tuple[str, str, JSON]]:
    """The event writes (status writes left out)."""
    return [call for call in client.calls if call[1].startswith(EVENTS)]


async def test_an_event_is_named_and_stamped_as_client_go_makes_it() -> None:
    """`<pod>.<unix ns in hex>`, eventTime that moment in microseconds, regarding the pod at
    the resourceVersion the scheduler holds (client-go's makeEvent and GetReference)."""
    client, clock = RecordingClient(), FakeClock()
    clock.now = 1.5
    rec = recorder(client, clock)
    rec.failed("default", "p", "uid-p", "no fit", "Unschedulable", resource_version="42")
    await written(rec)
    [(_, _, event)] = writes(client)
    assert event["metadata"] == {"name": f"p.{clock.wall():x}", "namespace": "default"}
    assert event["eventTime"] == micro(1.5) == "2027-01-15T08:00:01.500000Z"
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": "default",
        "name": "p",
        "uid": "uid-p",
        "resourceVersion": "42",
    }
    assert (event["reportingController"], event["reportingInstance"]) == (
        "default-scheduler",
        "berth-0",
    )
    assert "series" not in event


async def test_a_repeated_failure_is_created_then_patched_once_then_only_counted() -> None:
    """The first failure creates the Event; the second PATCHes `series: {count: 2,
    lastObservedTime}` onto it; later ones only count until the series is finished, 6 minutes
    after its last occurrence, with the final count (upstream's recordToSink, finishSeries)."""
    client, clock = RecordingClient(), FakeClock()
    rec = recorder(client, clock)
    for second in range(120):
        clock.now = float(second)
        rec.failed("default", "p", "uid-p", "no fit", "Unschedulable")
    clock.now = 119 + FINISH_SECONDS
    rec.finish_series()  # not yet: seen 6 minutes ago to the second
    clock.now += 1.0
    rec.finish_series()
    rec.finish_series()  # forgotten: nothing more
    await written(rec)
    (create, second, last) = writes(client)
    name = create[2]["metadata"]["name"]
    assert create[:2] == ("POST", EVENTS)
    assert second == (
        "PATCH",
        f"{EVENTS}/{name}",
        {"series": {"count": 2, "lastObservedTime": micro(1)}},
    )
    assert last == (
        "PATCH",
        f"{EVENTS}/{name}",
        {"series": {"count": 120, "lastObservedTime": micro(119)}},
    )
    clock.now += 1.0
    rec.failed("default", "p", "uid-p", "no fit", "Unschedulable")
    await written(rec)
    assert writes(client)[-1][0] == "POST"  # the finished series is forgotten: a new Event


async def test_the_running_recorder_finishes_series_by_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """start() runs the finish pass every FINISH_SECONDS (here shortened), over the keys in
    slices (here of one key), and the ended series get their last write."""
    monkeypatch.setattr(events, "FINISH_SECONDS", 0.01)
    monkeypatch.setattr(events, "SLICE", 1)
    client, clock = RecordingClient(), FakeClock()
    rec = recorder(client, clock)
    for pod in ("p", "q"):
        for second in range(3):
            clock.now = float(second)
            rec.failed("default", pod, f"uid-{pod}", "no fit", "Unschedulable")
    clock.now = 1000.0  # the series window (6 minutes) is over
    rec.start()
    for _ in range(500):  # generous: the pass is due after 10 ms
        if len(writes(client)) == 6:
            break
        await asyncio.sleep(0.01)
    await rec.stop()
    assert [body.get("series", {}).get("count") for _, _, body in writes(client)][-2:] == [3, 3]
    assert len(rec.series) == 0


async def test_a_singleton_is_forgotten_after_six_minutes() -> None:
    """A repeat within 6 minutes of a lone event starts its series; one after the finish pass
    forgot it is a new Event."""
    client, clock = RecordingClient(), FakeClock()
    rec = recorder(client, clock)
    rec.failed("default", "p", "uid-p", "no fit", "Unschedulable")
    clock.now = FINISH_SECONDS + 1
    rec.finish_series()
    rec.failed("default", "p", "uid-p", "no fit", "Unschedulable")
    await written(rec)
    assert [method for method, _, _ in writes(client)] == ["POST", "POST"]


async def test_every_series_is_refreshed() -> None:
    """The refresh pass (every 30 minutes) writes each running series with its current count;
    lone events are left alone."""
    client, clock = RecordingClient(), FakeClock()
    rec = recorder(client, clock)
    for second in range(5):
        clock.now = float(second)
        rec.failed("default", "p", "uid-p", "no fit", "Unschedulable")
    rec.failed("default", "q", "uid-q", "no fit", "Unschedulable")
    rec.refresh_series()
    await written(rec)
    assert [body for method, _, body in writes(client) if method == "PATCH"] == [
        {"series": {"count": 2, "lastObservedTime": micro(1)}},
        {"series": {"count": 5, "lastObservedTime": micro(4)}},
    ]


@pytest.mark.parametrize(
    ("second", "new_event"),
    [
        pytest.param({}, False, id="same-event-is-a-series"),
        pytest.param({"message": "other"}, True, id="other-note"),
        pytest.param({"controller": "other-scheduler"}, True, id="other-reporting-controller"),
        pytest.param({"resource_version": "2"}, True, id="other-pod-version"),
        pytest.param({"uid": "uid-other"}, True, id="other-pod"),
    ],
)
async def test_isomorphic_key(second: dict[str, str], new_event: bool) -> None:
    """Events are one series when type, action, reason, reporting controller and instance,
    regarding (resourceVersion included) and related are the same (upstream's eventKey), and
    the note too (berth's addition, docs/compat.md)."""
    client = RecordingClient()
    rec = recorder(client)
    first = {"message": "no fit", "controller": "", "resource_version": "1", "uid": "uid-p"}
    for args in (first, first | second):
        rec.failed(
            "default",
            "p",
            args["uid"],
            args["message"],
            "Unschedulable",
            controller=args["controller"],
            resource_version=args["resource_version"],
        )
    await written(rec)
    assert [method for method, _, _ in writes(client)] == [
        "POST",
        "POST" if new_event else "PATCH",
    ]


async def test_a_preemption_repeated_is_a_series_related_to_the_same_preemptor() -> None:
    """The related object is part of the key: another preemptor is another Event."""
    client = RecordingClient()
    rec = recorder(client)
    high = {"namespace": "default", "name": "high", "uid": "uid-high"}
    other = {"namespace": "default", "name": "other", "uid": "uid-other"}
    for preemptor in (high, high, other):
        rec.preempted("default", "low", "uid-low", preemptor, "n1")
    await written(rec)
    assert [method for method, _, _ in writes(client)] == ["POST", "PATCH", "POST"]


async def test_a_series_patch_answered_404_creates_the_event_with_its_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Event expired or was deleted: the series write creates it, series and all; a 409
    on that create (the first write landed meanwhile) makes it PATCH again (recordEvent)."""
    monkeypatch.setattr(events, "backoff", lambda attempt: 0.0)
    client = RecordingClient()
    client.answers["PATCH"] = [ApiError(404, "NotFound", "", "PATCH", "")]
    client.answers["POST"] = [
        ApiError(409, "AlreadyExists", "", "POST", ""),  # the first occurrence: exists, fine
        ApiError(409, "AlreadyExists", "", "POST", ""),  # the series create: PATCH again
    ]
    rec = recorder(client)
    rec.failed("default", "p", "uid-p", "no fit", "Unschedulable")
    rec.failed("default", "p", "uid-p", "no fit", "Unschedulable")
    rec.start()
    await rec.flush()
    for _ in range(100):  # the retry is due after a zero backoff, on the loop
        await asyncio.sleep(0)
    await rec.flush()
    await rec.stop()
    calls = writes(client)
    assert [method for method, _, _ in calls] == ["POST", "PATCH", "POST", "PATCH"]
    assert (
        calls[2][2]["series"]["count"] == 2 and calls[2][2]["metadata"] == calls[0][2]["metadata"]
    )


async def test_an_unchanged_condition_is_written_once() -> None:
    """PodScheduled=False is written when it changes (reason, message, observedGeneration),
    keeping the lastTransitionTime of the first False (upstream's updatePod and
    UpdatePodCondition)."""
    client, clock = RecordingClient(), FakeClock()
    rec = recorder(client, clock)
    rec.start()
    for second, message, generation in [
        (0, "a", 0),
        (10, "a", 0),
        (20, "b", 0),
        (30, "b", 0),
        (40, "b", 2),
    ]:
        clock.now = float(second)
        rec.failed("default", "p", "uid-p", message, "Unschedulable", generation=generation)
        await rec.flush()  # one at a time: the dispatcher merges pending ones
    await rec.stop()
    status = [
        body["status"]["conditions"][0]
        for method, path, body in client.calls
        if path.endswith("/status")
    ]
    assert [
        (c["message"], c.get("observedGeneration"), c["lastTransitionTime"]) for c in status
    ] == [
        ("a", None, "2027-01-15T08:00:00Z"),
        ("b", None, "2027-01-15T08:00:00Z"),
        ("b", 2, "2027-01-15T08:00:00Z"),
    ]


async def test_preempted_event_names_the_preemptor_pod() -> None:
    """The victim's Preempted event reads v1.37's "Preempted by pod <uid> on node <n>" and is
    related to the preemptor."""
    client = RecordingClient()
    rec = recorder(client)
    preemptor = {"namespace": "default", "name": "high", "uid": "uid-high"}
    rec.preempted("default", "low", "uid-low", preemptor, "n1")
    await written(rec)
    [(_, _, event)] = client.calls
    assert (event["reason"], event["action"], event["note"]) == (
        "Preempted",
        "Preempting",
        "Preempted by pod uid-high on node n1",
    )
    assert event["related"] == {"apiVersion": "v1", "kind": "Pod", **preemptor}


async def test_victim_gets_disruption_target_then_is_deleted() -> None:
    """DisruptionTarget reads v1.37's "<scheduler>: preempting to accommodate a higher priority
    pod" and carries the victim's generation as observedGeneration; then the victim is
    deleted with its uid as precondition."""
    client = RecordingClient()
    assert await preemption.preempt(
        cast(Client, client), "default", "low", "uid-low", "berth", generation=2
    )
    (patch_call, delete_call) = client.calls
    [condition] = patch_call[2]["status"]["conditions"]
    assert set(condition) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert condition["observedGeneration"] == 2
    assert (condition["type"], condition["reason"], condition["message"]) == (
        "DisruptionTarget",
        "PreemptionByScheduler",
        "berth: preempting to accommodate a higher priority pod",
    )
    assert delete_call[:2] == ("DELETE", "/api/v1/namespaces/default/pods/low")
    assert delete_call[2]["preconditions"] == {"uid": "uid-low"}
