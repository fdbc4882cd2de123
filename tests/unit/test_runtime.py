"""scheduler.runtime through the cycle: fake plugins at every extension point, and what the
framework does with each status (upstream's framework_test.go and schedule_one_test.go cases):
Reserve failure runs Unreserve in reverse order, Permit wait then allow / reject / timeout,
PreBind failure, Bind Skip falling through, PostBind after a bind."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scheduler.cache import Cache
from scheduler.cycle import Scheduler
from scheduler.framework import Code, CycleState, FilterResult, Status
from scheduler.handle import ClusterHandle
from scheduler.model import PodInfo, compile_node, compile_pod
from scheduler.queue import BACKOFF, UNSCHEDULABLE, SchedulingQueue
from scheduler.runtime import Framework, NullObserver, WaitingPods, go_duration
from scheduler.snapshot import NodeTable, Rows
from tests.builders import make_node, make_pod

NAME = "berth"


class Log:
    """The calls fake plugins make, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class Sort:
    name = "Sort"

    def sort_key(self, pod: PodInfo, arrival: float) -> tuple[Any, ...]:
        return (arrival,)


class PassAll:
    name = "PassAll"

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        return FilterResult.all_pass(rows.size)


class Reserve:
    def __init__(self, name: str, log: Log, fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        self.log.calls.append(f"reserve:{self.name}")
        return Status.unschedulable("no room", plugin=self.name) if self.fail else None

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        self.log.calls.append(f"unreserve:{self.name}")


class Permit:
    def __init__(self, name: str, log: Log, answer: Status | None, timeout: float = 0) -> None:
        self.name, self.log, self.answer, self.timeout = name, log, answer, timeout

    def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status | None, float]:
        self.log.calls.append(f"permit:{self.name}")
        return self.answer, self.timeout


class PreBind:
    def __init__(self, name: str, log: Log, answer: Status | None) -> None:
        self.name, self.log, self.answer = name, log, answer

    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        self.log.calls.append(f"prebind:{self.name}")
        return self.answer


class Bind:
    def __init__(self, name: str, log: Log, answer: Status | None) -> None:
        self.name, self.log, self.answer = name, log, answer

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        self.log.calls.append(f"bind:{self.name}")
        return self.answer


class PostBind:
    def __init__(self, log: Log) -> None:
        self.name, self.log = "PostBind", log

    def post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None:
        self.log.calls.append("postbind")


class Reporter:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def scheduled(self, pod: PodInfo, node: str) -> None:
        self.events.append(("scheduled", pod.key, node))

    def failed(self, pod: PodInfo, message: str, reason: str) -> None:
        self.events.append(("failed", pod.key, message, reason))


class PermitObserver(NullObserver):
    def __init__(self) -> None:
        self.waits: list[str] = []
        self.points: list[tuple[str, str]] = []

    def permit_wait(self, status: str, seconds: float) -> None:
        self.waits.append(status)

    def extension_point(self, point: str, status: str, profile: str, seconds: float) -> None:
        self.points.append((point, status))


class World:
    """One node, one profile of fake plugins, a Scheduler."""

    def __init__(self, log: Log, **points: Sequence[Any]) -> None:
        self.cache = Cache()
        self.cache.upsert_node(compile_node(make_node("n1").capacity(cpu="4").obj_()))
        self.observer = PermitObserver()
        self.waiting = WaitingPods()
        self.framework = Framework(
            NAME,
            None,
            queue_sort=Sort(),
            filter=[PassAll()],
            observer=self.observer,
            waiting_pods=self.waiting,
            bind=points.pop("bind", [Bind("Binder", log, None)]),
            **points,
        )
        self.queue = SchedulingQueue(Sort().sort_key, clock=lambda: 0.0)
        self.reporter = Reporter()
        self.scheduler = Scheduler(
            self.cache, self.queue, {NAME: self.framework}, self.reporter, self.observer
        )

    def add(self, name: str) -> PodInfo:
        pod = compile_pod(make_pod(name).scheduler(NAME).obj_())
        self.queue.add(pod)
        return pod

    async def schedule(self) -> None:
        entry = self.queue.pop_nowait()
        assert entry is not None
        self.scheduler.schedule_one(entry)
        await asyncio.sleep(0)

    def where(self, pod: PodInfo) -> str:
        return self.queue.pods[pod.uid].where


async def test_reserve_failure_runs_unreserve_of_every_plugin_in_reverse_order() -> None:
    """Upstream: a failed Reserve calls Unreserve on all Reserve plugins, last first."""
    log = Log()
    world = World(log, reserve=[Reserve("A", log), Reserve("B", log, fail=True), Reserve("C", log)])
    pod = world.add("p")
    await world.schedule()
    assert log.calls == [
        "reserve:A",
        "reserve:B",
        "unreserve:C",
        "unreserve:B",
        "unreserve:A",
    ]
    assert world.cache.node_of(pod.uid) is None  # forgotten
    assert world.where(pod) == UNSCHEDULABLE
    assert world.queue.pods[pod.uid].unschedulable_plugins == {"B"}
    assert world.reporter.events[-1][2] == "0/1 nodes are available: 1 no room."


@pytest.mark.parametrize(
    ("answer", "where", "reason"),
    [
        pytest.param(
            Status.unschedulable("not now", plugin="P"),
            UNSCHEDULABLE,
            "Unschedulable",
            id="rejected",
        ),
        pytest.param(Status.error("broken"), BACKOFF, "SchedulerError", id="error"),
    ],
)
async def test_permit_rejection_in_the_scheduling_cycle(
    answer: Status, where: str, reason: str
) -> None:
    """A Permit rejection unreserves and forgets the pod; a rejection waits as unschedulable
    (rejected by that plugin), an error backs off."""
    log = Log()
    world = World(log, reserve=[Reserve("R", log)], permit=[Permit("P", log, answer)])
    pod = world.add("p")
    await world.schedule()
    assert log.calls == ["reserve:R", "permit:P", "unreserve:R"]
    assert world.where(pod) == where
    assert world.reporter.events[-1][3] == reason
    assert world.cache.node_of(pod.uid) is None


async def test_permit_wait_then_allow_binds_without_holding_a_slot_while_waiting() -> None:
    """Wait parks the pod as a WaitingPod; allow() by every waiting plugin lets the binding
    cycle go on to PreBind, Bind and PostBind."""
    log = Log()
    wait = Status(Code.WAIT)
    world = World(
        log,
        permit=[Permit("P1", log, wait, 30), Permit("P2", log, wait, 30)],
        pre_bind=[PreBind("PB", log, None)],
        post_bind=[PostBind(log)],
    )
    pod = world.add("p")
    await world.schedule()
    waiting = world.waiting.get(pod.uid)
    assert waiting is not None
    assert sorted(waiting.pending_plugins()) == ["P1", "P2"]
    assert world.scheduler._holding == 0  # no binding slot while waiting
    assert world.cache.node_of(pod.uid) == "n1"  # assumed resources held
    waiting.allow("P1")
    await asyncio.sleep(0)
    assert "bind:Binder" not in log.calls  # P2 still pending
    waiting.allow("P2")
    await world.scheduler.drain()
    assert log.calls[-3:] == ["prebind:PB", "bind:Binder", "postbind"]
    assert world.reporter.events[-1] == ("scheduled", "default/p", "n1")
    assert world.observer.waits == ["Success"]
    assert world.waiting.get(pod.uid) is None


async def test_permit_wait_then_reject_unreserves_and_records_the_plugin() -> None:
    log = Log()
    world = World(
        log, reserve=[Reserve("R", log)], permit=[Permit("Gang", log, Status(Code.WAIT), 30)]
    )
    pod = world.add("p")
    await world.schedule()
    waiting = world.waiting.get(pod.uid)
    assert waiting is not None
    waiting.reject("Gang", "group lost quorum")
    await world.scheduler.drain()
    assert log.calls[-1] == "unreserve:R"
    assert world.cache.node_of(pod.uid) is None
    assert world.where(pod) == UNSCHEDULABLE
    assert world.queue.pods[pod.uid].unschedulable_plugins == {"Gang"}
    assert world.reporter.events[-1][2] == "0/1 nodes are available: 1 group lost quorum."
    assert world.observer.waits == ["Unschedulable"]


async def test_permit_wait_times_out_with_upstreams_message() -> None:
    log = Log()
    world = World(log, permit=[Permit("Slow", log, Status(Code.WAIT), 0.01)])
    pod = world.add("p")
    await world.schedule()
    await world.scheduler.drain()
    assert world.where(pod) == UNSCHEDULABLE
    message = world.reporter.events[-1][2]
    assert message == (
        "0/1 nodes are available: 1 rejected due to timeout after waiting 10ms at plugin Slow."
    )


async def test_prebind_failure_unreserves_and_backs_off() -> None:
    """Past Permit nothing can make the pod unschedulable: it backs off (upstream)."""
    log = Log()
    world = World(
        log,
        reserve=[Reserve("R", log)],
        pre_bind=[PreBind("PB", log, Status.unschedulable("volume not ready"))],
    )
    pod = world.add("p")
    await world.schedule()
    await world.scheduler.drain()
    assert log.calls == ["reserve:R", "prebind:PB", "unreserve:R"]
    assert world.where(pod) == BACKOFF
    assert world.reporter.events[-1][2].startswith("Binding rejected: volume not ready")


async def test_bind_skip_falls_through_to_the_next_bind_plugin() -> None:
    log = Log()
    world = World(log, bind=[Bind("Skipper", log, Status(Code.SKIP)), Bind("Binder", log, None)])
    world.add("p")
    await world.schedule()
    await world.scheduler.drain()
    assert log.calls == ["bind:Skipper", "bind:Binder"]
    assert world.reporter.events[-1][0] == "scheduled"


async def test_every_bind_plugin_skipping_is_an_error() -> None:
    log = Log()
    world = World(log, bind=[Bind("Skipper", log, Status(Code.SKIP))])
    pod = world.add("p")
    await world.schedule()
    await world.scheduler.drain()
    assert world.where(pod) == BACKOFF
    assert ("Bind", "Skip") in world.observer.points


def test_unreserve_keeps_going_when_a_plugin_raises() -> None:
    log = Log()

    class Broken(Reserve):
        def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
            raise RuntimeError("bug")

    framework = Framework(NAME, None, reserve=[Reserve("A", log), Broken("B", log)])
    pod = compile_pod(make_pod("p").obj_())
    framework.run_unreserve(CycleState(), pod, "n1")
    assert log.calls == ["unreserve:A"]


def test_pre_score_non_skip_status_is_an_error_named_after_the_plugin() -> None:
    class Bad:
        name = "Bad"

        def pre_score(
            self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
        ) -> Status:
            return Status.unschedulable("nope")

    framework = Framework(NAME, None, pre_score=[Bad()])
    status = framework.run_pre_score(
        CycleState(), compile_pod(make_pod("p").obj_()), NodeTable(), np.zeros(0, dtype=np.int64)
    )
    assert status is not None and status.code is Code.ERROR and status.plugin == "Bad"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(10, "10s", id="seconds"),
        pytest.param(90, "1m30s", id="minutes"),
        pytest.param(900, "15m0s", id="max-timeout"),
        pytest.param(1.5, "1.5s", id="fraction"),
        pytest.param(0.01, "10ms", id="millis"),
    ],
)
def test_go_duration(seconds: float, expected: str) -> None:
    """Durations print as Go's time.Duration.String()."""
    assert go_duration(seconds) == expected


class RecordingApi:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.in_memory: list[str] = []

    async def bind(self, pod: PodInfo, node: str) -> None:
        pass

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        self.deleted.append(victim.key)

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        self.in_memory.append(victim.key)


async def test_a_victim_waiting_in_permit_is_preempted_in_memory() -> None:
    """Upstream's Executor.PreemptPod: a waiting victim is not deleted; its wait ends as an
    error, so it is unreserved and backs off; a bound victim is deleted through the API."""
    log = Log()
    world = World(
        log, reserve=[Reserve("R", log)], permit=[Permit("P", log, Status(Code.WAIT), 30)]
    )
    api = RecordingApi()
    handle = ClusterHandle(api, waiting_pods=world.waiting)
    victim = world.add("victim")
    await world.schedule()
    preemptor = compile_pod(make_pod("high").priority(100).obj_())
    await handle.preempt(preemptor, victim, "n1")
    await world.scheduler.drain()
    assert (api.in_memory, api.deleted) == (["default/victim"], [])
    assert log.calls[-1] == "unreserve:R"
    assert world.where(victim) == BACKOFF
    bound = compile_pod(make_pod("bound").node("n1").obj_())
    await handle.preempt(preemptor, bound, "n1")
    assert api.deleted == ["default/bound"]


class SlowPreBind:
    """A PreBind plugin that waits (as VolumeBinding waits for the PV controller) until
    `release` is set."""

    name = "Slow"

    def __init__(self, log: Log) -> None:
        self.log = log
        self.release = asyncio.Event()

    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        self.log.calls.append("prebind:start")
        await self.release.wait()
        self.log.calls.append("prebind:end")
        return None


async def test_a_victim_in_pre_bind_is_preempted_in_memory() -> None:
    """Upstream's podInPreBind.CancelPod (v1.36): a victim whose PreBind is running is not
    deleted; its PreBind stops, the binding fails with the preemption's reason, it is
    unreserved and backs off, never bound. Once PreBind has finished there is nothing to
    cancel: the victim is deleted through the API."""
    log = Log()
    slow = SlowPreBind(log)
    world = World(log, reserve=[Reserve("R", log)], pre_bind=[slow])
    api = RecordingApi()
    handle = ClusterHandle(
        api, waiting_pods=world.waiting, pods_in_pre_bind=world.framework.pods_in_pre_bind
    )
    victim = world.add("victim")
    await world.schedule()
    await asyncio.sleep(0)
    assert log.calls[-1] == "prebind:start"
    preemptor = compile_pod(make_pod("high").priority(100).obj_())
    await handle.preempt(preemptor, victim, "n1")
    await world.scheduler.drain()
    assert (api.in_memory, api.deleted) == (["default/victim"], [])
    assert "prebind:end" not in log.calls and log.calls[-1] == "unreserve:R"
    assert world.where(victim) == BACKOFF
    assert world.reporter.events[-1][2] == "Binding rejected: preempted by DefaultPreemption"
    assert not any(call.startswith("bind") for call in log.calls)
    await handle.preempt(preemptor, victim, "n1")  # no longer in PreBind
    assert api.deleted == ["default/victim"]
