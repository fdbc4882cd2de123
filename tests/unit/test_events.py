"""scheduler.kube.events and scheduler.kube.preemption against a recording client: what is
written for a failure, a preemption and its victim, and that the writes wait off the hot path."""

from __future__ import annotations

from typing import Any, cast

import pytest

from scheduler.kube import preemption
from scheduler.kube.client import Client
from scheduler.kube.events import Recorder

JSON = dict[str, Any]


class RecordingClient:
    """The writes a Recorder or preempt() makes, in order: (method, path, body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, JSON]] = []

    async def post(self, path: str, body: JSON) -> None:
        self.calls.append(("POST", path, body))

    async def patch(self, path: str, body: JSON) -> None:
        self.calls.append(("PATCH", path, body))

    async def delete(self, path: str, body: JSON) -> None:
        self.calls.append(("DELETE", path, body))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def recorder(client: RecordingClient, clock: FakeClock | None = None) -> Recorder:
    return Recorder(
        cast(Client, client),
        controller="default-scheduler",
        instance="berth-0",
        workers=1,
        clock=clock or FakeClock(),
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


async def test_the_same_failure_is_written_once_a_minute() -> None:
    """A pod failing again with the same message gets no new event or patch within 60 s; a new
    message, or a minute later, writes again (until event series come, #15)."""
    client, clock = RecordingClient(), FakeClock()
    rec = recorder(client, clock)
    rec.failed("default", "p", "uid-p", "a", "Unschedulable")
    rec.failed("default", "p", "uid-p", "a", "Unschedulable")
    rec.failed("default", "p", "uid-p", "b", "Unschedulable")
    clock.now = 59.0
    rec.failed("default", "p", "uid-p", "b", "Unschedulable")
    clock.now = 120.0
    rec.failed("default", "p", "uid-p", "b", "Unschedulable")
    await written(rec)
    notes = [body["note"] for method, _, body in client.calls if method == "POST"]
    assert notes == ["a", "b", "b"]


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
