"""The app's wiring without an API server: informer events through the real event handlers,
queue and metrics, under a virtual clock (the 5-minute flush through housekeeping), and two
profiles in one process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import plugins
from scheduler.app import App
from scheduler.config import API_VERSION, KIND, parse
from scheduler.kube.client import Client, Credentials
from scheduler.queue import ACTIVE, GATED, UNSCHEDULABLE
from scheduler.serving import ServingOptions
from tests.builders import make_node, make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def incoming(app: App) -> dict[tuple[str, str], float]:
    return {
        (s.labels["queue"], s.labels["event"]): s.value
        for family in app.metrics.registry.collect()
        if family.name == "scheduler_queue_incoming_pods"
        for s in family.samples
        if s.name.endswith("_total")
    }


def gauge(app: App, name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(sorted(s.labels.values())): s.value
        for family in app.metrics.registry.collect()
        if family.name == name
        for s in family.samples
    }


def build(clock: Clock, profiles: list[dict[str, Any]] | None = None) -> App:
    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
    if profiles:
        doc["profiles"] = profiles
    config = parse(doc, plugins.registry().keys())
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    return App(config, client, serving=ServingOptions.local(), clock=clock)


@pytest.fixture
async def app() -> AsyncIterator[tuple[App, Clock]]:
    clock = Clock()
    made = build(clock)
    try:
        yield made, clock
    finally:
        await made.event_client.close()
        await made.lease_client.close()


async def test_the_five_minute_flush_runs_through_housekeeping_in_virtual_time(
    app: tuple[App, Clock],
) -> None:
    """A pod rejected by NodeResourcesFit waits in the pool through events that cannot help
    it (a node too small added: the hint says skip; a node relabelled: not registered); 30 s
    housekeeping ticks flush it once it has waited strictly longer than 5 minutes."""
    app_, clock = app
    app_.handlers.on_pod("ADDED", make_pod("big").req(cpu="64").obj_(), None)
    entry = app_.queue.pop_nowait()
    assert entry is not None
    app_.queue.requeue(entry, frozenset({"NodeResourcesFit"}))
    node = make_node("n1").capacity(cpu="4").obj_()
    app_.handlers.on_node("ADDED", node, None)
    relabelled = make_node("n1").capacity(cpu="4").label("x", "y").obj_()
    app_.handlers.on_node("MODIFIED", relabelled, node)
    assert entry.where == UNSCHEDULABLE
    clock.now += 300
    app_.housekeeping(30)
    assert entry.where == UNSCHEDULABLE  # exactly 5 minutes: not yet
    clock.now += 30
    app_.housekeeping(60)
    assert entry.where == ACTIVE
    moved = {event for (_, event), n in incoming(app_).items() if n}
    assert moved == {"UnscheduledPodAdd", "UnschedulableTimeout", "ScheduleAttemptFailure"}


async def test_healthz_fails_only_when_the_api_is_silent_and_pods_wait(
    app: tuple[App, Clock],
) -> None:
    """`App.unhealthy`: the API server silent for api_unreachable_timeout is unhealthy only
    while pods wait; an answer, or an empty queue, makes it healthy again."""
    app_, _ = app
    now = [500.0]
    app_.client._clock = lambda: now[0]
    app_.client.last_response = 500.0
    app_.api_unreachable_timeout = 60
    now[0] = 570.0
    assert app_.unhealthy() is None  # silent, but nothing waits
    app_.handlers.on_pod("ADDED", make_pod("p").obj_(), None)
    failing = app_.unhealthy()
    assert failing is not None and failing[0] == "apiserver-reachable"
    assert "for 70s while 1 pods wait to be scheduled" in failing[1]
    app_.client.last_response = 565.0  # the server answered something
    assert app_.unhealthy() is None
    now[0] = 700.0
    app_.api_unreachable_timeout = 0  # --api-unreachable-timeout 0: never
    assert app_.unhealthy() is None


async def test_node_add_moves_a_pod_rejected_for_resources(app: tuple[App, Clock]) -> None:
    app_, clock = app
    app_.handlers.on_pod("ADDED", make_pod("p").req(cpu="2").obj_(), None)
    entry = app_.queue.pop_nowait()
    assert entry is not None
    app_.queue.requeue(entry, frozenset({"NodeResourcesFit"}))
    clock.now += 20  # past its backoff
    app_.handlers.on_node("ADDED", make_node("n1").capacity(cpu="4").obj_(), None)
    assert entry.where == ACTIVE
    assert incoming(app_)[ACTIVE, "NodeAdd"] == 1


async def test_a_gated_pod_through_the_handlers_queue_and_metrics(
    app: tuple[App, Clock],
) -> None:
    """A gated pod is counted incoming to the unschedulable pool as UnscheduledPodAdd and
    under SchedulingGates in scheduler_unschedulable_pods; its gates going moves it."""
    app_, _ = app
    gated = make_pod("g").gate("example.com/wait").obj_()
    app_.handlers.on_pod("ADDED", gated, None)
    assert app_.queue.counts()[GATED] == 1
    assert incoming(app_) == {(UNSCHEDULABLE, "UnscheduledPodAdd"): 1}
    assert gauge(app_, "scheduler_unschedulable_pods") == {
        ("SchedulingGates", "default-scheduler"): 1
    }
    lifted = make_pod("g").obj_()
    lifted["metadata"]["resourceVersion"] = "2"
    app_.handlers.on_pod("MODIFIED", lifted, gated)
    assert app_.queue.counts()[ACTIVE] == 1
    assert incoming(app_)[ACTIVE, "TargetPodUpdatePodSchedulingGatesEliminated"] == 1
    assert gauge(app_, "scheduler_unschedulable_pods") == {
        ("SchedulingGates", "default-scheduler"): 0
    }


async def test_two_profiles_run_their_own_pre_enqueue() -> None:
    """SchedulingGates disabled in one profile: that profile's gated pod is not held by the
    queue (the API server keeps gated pods from binding, not berth), the other's is."""
    clock = Clock()
    made = build(
        clock,
        [
            {"schedulerName": "gates-on"},
            {
                "schedulerName": "gates-off",
                "plugins": {"preEnqueue": {"disabled": [{"name": "SchedulingGates"}]}},
            },
        ],
    )
    try:
        for name, profile in (("on", "gates-on"), ("off", "gates-off")):
            pod = make_pod(name).scheduler(profile).gate("example.com/wait").obj_()
            made.handlers.on_pod("ADDED", pod, None)
        where = {e.pod.name: e.where for e in made.queue.pods.values()}
        assert where == {"on": GATED, "off": ACTIVE}
    finally:
        await made.event_client.close()
        await made.lease_client.close()


async def test_a_pod_deleted_while_waiting_in_permit_is_rejected() -> None:
    """Upstream's handleAssumedPodDeletion: the waiting pod's Permit is rejected at once, so
    its assumed resources go back now, not at the plugin's timeout."""
    from scheduler.framework import Code, CycleState, Status
    from scheduler.model import PodInfo

    class Waits:
        name = "Waits"

        def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status, float]:
            return Status(Code.WAIT), 600.0

    clock = Clock()
    made = build(clock)
    try:
        profile = made.profiles["default-scheduler"]
        profile.permit = [Waits()]
        made.handlers.on_node("ADDED", make_node("n1").capacity(cpu="4").obj_(), None)
        pod = make_pod("p").req(cpu="1").obj_()
        made.handlers.on_pod("ADDED", pod, None)
        entry = made.queue.pop_nowait()
        assert entry is not None
        assert made.scheduler.schedule_one(entry).node == "n1"
        await asyncio.sleep(0)
        assert made.handle.get_waiting_pod("uid-p") is not None
        made.handlers.on_pod("DELETED", pod, None)
        # Bounded: without the rejection the wait would last the plugin's 600 s.
        await asyncio.wait_for(made.scheduler.drain(), timeout=10)
        assert made.handle.get_waiting_pod("uid-p") is None
        assert made.cache.node_of("uid-p") is None
    finally:
        await made.event_client.close()
        await made.lease_client.close()
