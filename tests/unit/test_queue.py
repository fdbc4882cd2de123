"""scheduler.queue in virtual time: ordering, gates, backoff, the unschedulable pool, moves,
the 5-minute flush and deletes, with a fake clock instead of sleeps."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import node_resources_fit
from plugins.priority_sort import PrioritySort
from plugins.scheduling_gates import SchedulingGates
from scheduler import framework as fw
from scheduler.framework import ASSIGNED_POD_SCALE_DOWN, ClusterEvent, Status, pod_scaled_down
from scheduler.handle import in_memory
from scheduler.metrics import Metrics
from scheduler.model import PodInfo, compile_pod
from scheduler.queue import (
    ACTIVE,
    ASSUMED,
    BACKOFF,
    GATED,
    IN_FLIGHT,
    UNSCHEDULABLE,
    QueuedPod,
    SchedulingQueue,
)
from scheduler.runtime import Framework
from tests.builders import make_pod

NODE_LABELS = ClusterEvent(fw.NODE, fw.ActionType.UPDATE_NODE_LABEL)
GATES = Framework("default-scheduler", None, pre_enqueue=[SchedulingGates()])
ZERO_COUNTS = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0, IN_FLIGHT: 0, ASSUMED: 0}


class FakeClock:
    """Virtual time: only advance() moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Incoming:
    """Records on_incoming(queue, event) calls."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, queue: str, event: str) -> None:
        self.events.append((queue, event))


def worth(entry: QueuedPod, event: ClusterEvent, old: Any, new: Any) -> bool:
    """The gates profile's queueing hints (SchedulingGates registers the gates' removal)."""
    return GATES.worth_requeuing(entry.pod, entry.unschedulable_plugins, event, old, new)


def new_queue(clock: FakeClock, incoming: Incoming | None = None) -> SchedulingQueue:
    return SchedulingQueue(
        PrioritySort().sort_key,
        GATES.run_pre_enqueue,
        clock=clock,
        worth=worth,
        on_incoming=incoming or Incoming(),
    )


def pod(name: str, priority: int = 0, **extra: Any) -> PodInfo:
    builder = make_pod(name).priority(priority)
    for gate in extra.get("gates", ()):
        builder.gate(gate)
    if "cpu" in extra:
        builder.req(cpu=extra["cpu"])
    return compile_pod(builder.obj_())


def drain(queue: SchedulingQueue) -> list[str]:
    out = []
    while (entry := queue.pop_nowait()) is not None:
        out.append(entry.pod.name)
    return out


def fail(
    queue: SchedulingQueue, name: str, *, error: bool = False, plugins: frozenset[str] = frozenset()
) -> QueuedPod:
    """Pop the named pod (it must be next) and report a failed attempt."""
    entry = queue.pop_nowait()
    assert entry is not None and entry.pod.name == name
    queue.requeue(entry, plugins, error=error)
    return entry


# --- ordering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrivals", "expected"),
    [
        pytest.param([("a", 0), ("b", 0), ("c", 0)], ["a", "b", "c"], id="fifo-at-equal-priority"),
        pytest.param([("low", 0), ("high", 10)], ["high", "low"], id="priority-first"),
        pytest.param(
            [("a", 1), ("b", 5), ("c", 1), ("d", 5), ("e", -1)],
            ["b", "d", "a", "c", "e"],
            id="priority-then-arrival",
        ),
    ],
)
def test_pop_by_priority_then_arrival(arrivals: list[tuple[str, int]], expected: list[str]) -> None:
    """PrioritySort order: priority descending, then arrival time (one second apart here)."""
    clock = FakeClock()
    queue = new_queue(clock)
    for name, priority in arrivals:
        queue.add(pod(name, priority))
        clock.advance(1)
    assert drain(queue) == expected


def test_pop_empty_and_same_instant_ties() -> None:
    """Nothing queued pops None; pods added at the same instant keep insertion order."""
    queue = new_queue(FakeClock())
    assert queue.pop_nowait() is None
    for name in ("x", "y", "z"):
        queue.add(pod(name))
    assert drain(queue) == ["x", "y", "z"]


def test_update_resorts_an_active_pod() -> None:
    """Raising the priority of a waiting pod moves it ahead; it is popped once."""
    clock = FakeClock()
    queue = new_queue(clock)
    for name in ("a", "b", "c"):
        queue.add(pod(name))
        clock.advance(1)
    queue.update(pod("c", priority=100))
    assert drain(queue) == ["c", "a", "b"]


def test_pop_counts_attempts_and_cycles() -> None:
    """Each pop is a new scheduling cycle and one more attempt for that pod."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a"))
    queue.add(pod("b"))
    first = queue.pop_nowait()
    second = queue.pop_nowait()
    assert first is not None and second is not None
    assert [(first.cycle, first.attempts), (second.cycle, second.attempts)] == [(1, 1), (2, 1)]
    assert (first.where, queue.counts()[IN_FLIGHT]) == (IN_FLIGHT, 2)


# --- gates -----------------------------------------------------------------------------------


def test_gates_keep_a_pod_out_until_an_update_lifts_them() -> None:
    """A gated pod never pops; an update that keeps a gate keeps it out, removing the last
    gate enqueues it."""
    incoming = Incoming()
    queue = new_queue(FakeClock(), incoming)
    queue.add(pod("g", gates=["a", "b"]))
    assert (queue.pop_nowait(), queue.counts()[GATED]) == (None, 1)
    assert queue.pods["uid-g"].gate_message == "waiting for scheduling gates: [a, b]"

    queue.update(pod("g", gates=["b"]))
    assert (queue.pop_nowait(), queue.counts()[GATED]) == (None, 1)
    assert queue.pods["uid-g"].gate_message == "waiting for scheduling gates: [b]"

    queue.update(pod("g"))
    assert queue.counts()[ACTIVE] == 1
    assert queue.pods["uid-g"].gate_message == ""
    assert drain(queue) == ["g"]
    # A gated pod enters upstream's unschedulable pool once; an update that keeps it gated
    # moves it nowhere.
    assert incoming.events == [
        (UNSCHEDULABLE, "UnscheduledPodAdd"),
        (ACTIVE, "TargetPodUpdatePodSchedulingGatesEliminated"),
    ]


def test_gated_pods_count_as_incoming_to_the_unschedulable_pool() -> None:
    """With the real metrics behind on_incoming, a gated pod is counted where upstream counts it
    (queue="unschedulable"); "gated" is no incoming queue and would raise."""
    metrics = Metrics(process_metrics=False)
    queue = SchedulingQueue(
        PrioritySort().sort_key,
        GATES.run_pre_enqueue,
        clock=FakeClock(),
        worth=worth,
        on_incoming=metrics.incoming,
        on_unschedulable=metrics.add_unschedulable,
    )
    queue.add(pod("g", gates=["a", "b"]))
    queue.update(pod("g", gates=["b"]))
    queue.update(pod("g"))
    counted = {
        (s.labels["queue"], s.labels["event"]): s.value
        for family in metrics.registry.collect()
        if family.name == "scheduler_queue_incoming_pods"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert counted == {
        ("unschedulable", "UnscheduledPodAdd"): 1,
        ("active", "TargetPodUpdatePodSchedulingGatesEliminated"): 1,
    }


def test_gated_pod_ignores_cluster_events() -> None:
    """move_all does not release gated pods: only removing the gates does."""
    queue = new_queue(FakeClock())
    queue.add(pod("g", gates=["a"]))
    queue.on_event(fw.NODE_ADD)
    assert (queue.pop_nowait(), queue.counts()[GATED]) == (None, 1)


# --- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [
        pytest.param(0, 0.0, id="never-rejected"),
        pytest.param(1, 1.0, id="1"),
        pytest.param(2, 2.0, id="2"),
        pytest.param(3, 4.0, id="3"),
        pytest.param(4, 8.0, id="4"),
        pytest.param(5, 10.0, id="5-capped"),
        pytest.param(12, 10.0, id="12-capped"),
    ],
)
def test_backoff_duration(attempts: int, seconds: float) -> None:
    """initial * 2^(count-1), capped at 10 s, 0 for 0, as upstream's
    calculateBackoffDuration."""
    assert new_queue(FakeClock()).backoff_duration(attempts) == seconds


def test_backoff_doubles_per_attempt_in_virtual_time() -> None:
    """Each failed attempt waits 1, 2, 4, 8, then 10 s before the pod pops again."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a"))
    entry = queue.pop_nowait()
    waits = []
    for _ in range(6):
        assert entry is not None
        queue.requeue(entry, error=True)
        start = clock.now
        while (entry := queue.pop_nowait()) is None:
            clock.advance(0.5)
        waits.append(clock.now - start)
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_is_not_popped_early() -> None:
    """A pod in backoff stays out until exactly its deadline."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a"))
    fail(queue, "a", error=True)
    assert queue.counts()[BACKOFF] == 1
    clock.advance(0.999)
    assert queue.pop_nowait() is None
    clock.advance(0.001)
    assert drain(queue) == ["a"]


FIT = frozenset({"NodeResourcesFit"})


def backing_off(
    clock: FakeClock, incoming: Incoming | None = None, **kwargs: Any
) -> SchedulingQueue:
    """A queue holding "a" in backoff after NodeResourcesFit rejected it while a node was
    added (the moveRequestCycle rule), its backoff 1 s."""
    queue = SchedulingQueue(
        PrioritySort().sort_key, clock=clock, on_incoming=incoming or Incoming(), **kwargs
    )
    queue.add(pod("a"))
    entry = queue.pop_nowait()
    assert entry is not None
    queue.on_event(fw.NODE_ADD)
    queue.requeue(entry, FIT)
    assert queue.counts()[BACKOFF] == 1
    return queue


def test_an_idle_queue_pops_from_backoff_before_the_deadline() -> None:
    """SchedulerPopFromBackoffQ (on by default since v1.33): with nothing active, the pod
    backing off is tried at once, counted as an attempt and reported as PopFromBackoffQ."""
    clock, incoming = FakeClock(), Incoming()
    queue = backing_off(clock, incoming)
    start = clock.now
    entry = queue.pop_nowait()
    assert entry is not None and entry.pod.name == "a" and entry.attempts == 2
    assert incoming.events[-1] == (ACTIVE, "PopFromBackoffQ")
    assert clock.now == start


def test_active_pods_go_before_pods_backing_off() -> None:
    clock = FakeClock()
    queue = backing_off(clock)
    queue.add(pod("b"))
    assert drain(queue) == ["b", "a"]


def test_the_pod_whose_backoff_ends_first_pops_first() -> None:
    clock = FakeClock()
    queue = backing_off(clock)  # "a": 1 s, until t=1
    queue.add(pod("b"))
    entry = queue.pop_nowait()
    assert entry is not None
    entry.attempts = 3  # its backoff is 4 s, until t=4
    queue.on_event(fw.NODE_ADD)
    queue.requeue(entry, FIT)
    assert drain(queue) == ["a", "b"]


def test_a_pod_backing_off_after_an_error_waits_its_whole_backoff() -> None:
    """Upstream's podErrorBackoffQ is never popped early."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a"))
    fail(queue, "a", error=True, plugins=FIT)
    assert queue.pop_nowait() is None
    clock.advance(1)
    assert drain(queue) == ["a"]


def test_errors_do_not_lengthen_the_backoff_of_later_rejections() -> None:
    """v1.34+ counts rejections and consecutive errors apart: after two errors, the first
    rejection backs off 1 s."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a"))
    fail(queue, "a", error=True)
    clock.advance(1)
    fail(queue, "a", error=True)
    clock.advance(2)
    entry = queue.pop_nowait()
    assert entry is not None and entry.attempts == 3
    queue.on_event(fw.NODE_ADD)
    queue.requeue(entry, FIT)
    assert queue.pods["uid-a"].backoff_until - clock.now == 1.0


def test_popping_from_backoff_can_be_turned_off() -> None:
    clock = FakeClock()
    queue = backing_off(clock, pop_from_backoff=False)
    assert queue.pop_nowait() is None
    clock.advance(1)
    assert drain(queue) == ["a"]


# --- requeue and moves -----------------------------------------------------------------------


def test_requeue_goes_to_unschedulable_without_a_move_request() -> None:
    """An unschedulable pod that saw no cluster event during its cycle waits in the pool."""
    incoming = Incoming()
    queue = new_queue(FakeClock(), incoming)
    queue.add(pod("a"))
    queue.on_event(fw.NODE_ADD)  # before the pod's cycle: does not count
    fail(queue, "a")
    assert queue.counts() == ZERO_COUNTS | {UNSCHEDULABLE: 1}
    assert incoming.events[-1] == (UNSCHEDULABLE, "ScheduleAttemptFailure")


def test_requeue_goes_to_backoff_after_a_move_request_during_the_cycle() -> None:
    """A cluster event while the pod was being scheduled may already have made it
    schedulable: it goes to backoff (upstream's moveRequestCycle rule)."""
    clock = FakeClock()
    incoming = Incoming()
    queue = new_queue(clock, incoming)
    queue.add(pod("a"))
    entry = queue.pop_nowait()
    assert entry is not None
    queue.on_event(fw.NODE_ADD)
    queue.requeue(entry)
    assert queue.counts() == ZERO_COUNTS | {BACKOFF: 1}
    assert incoming.events[-1] == (BACKOFF, "ScheduleAttemptFailure")
    clock.advance(1)
    assert drain(queue) == ["a"]


def test_errors_always_go_to_backoff() -> None:
    """An error status (not unschedulable) goes to backoff even without a move request."""
    queue = new_queue(FakeClock())
    queue.add(pod("a"))
    fail(queue, "a", error=True)
    assert queue.counts() == ZERO_COUNTS | {BACKOFF: 1}


def test_move_all_sends_backing_off_pods_to_backoff_and_others_to_active() -> None:
    """move_all: a pod whose backoff (counted from its failed attempt) has not run out goes
    to backoff, one past it goes straight to active."""
    clock = FakeClock()
    incoming = Incoming()
    queue = new_queue(clock, incoming)
    queue.add(pod("old"))
    fail(queue, "old")
    clock.advance(5)
    queue.add(pod("new"))
    fail(queue, "new")
    clock.advance(0.5)
    queue.on_event(fw.NODE_ADD)
    assert queue.counts() == ZERO_COUNTS | {ACTIVE: 1, BACKOFF: 1}
    assert incoming.events[-2:] == [(ACTIVE, "NodeAdd"), (BACKOFF, "NodeAdd")]
    assert drain(queue) == ["old"]
    clock.advance(0.5)  # "new" failed 1 s ago: its first backoff is over
    assert drain(queue) == ["new"]


def test_move_all_leaves_other_states_alone() -> None:
    """Only unschedulable pods move; active, backoff and in-flight pods stay where they are."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("backoff"))
    fail(queue, "backoff", error=True)
    queue.add(pod("flight"))
    queue.pop_nowait()
    queue.add(pod("active"))
    queue.on_event(NODE_LABELS)
    assert queue.counts() == ZERO_COUNTS | {ACTIVE: 1, BACKOFF: 1, IN_FLIGHT: 1}


def test_update_of_an_unschedulable_pod_moves_it_only_when_its_spec_changed() -> None:
    """A new version with a different scheduling spec gets another chance; a status-only
    update does not."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a", cpu="4"))
    fail(queue, "a")
    clock.advance(2)
    queue.update(pod("a", cpu="4"))
    assert queue.counts()[UNSCHEDULABLE] == 1
    queue.update(pod("a", cpu="1"))
    assert drain(queue) == ["a"]
    assert queue.pods["uid-a"].pod.requests["cpu"] == 1000


def test_flush_unschedulable_after_five_minutes_of_virtual_time() -> None:
    """Pods stuck in the pool for more than 5 minutes get another try anyway."""
    clock = FakeClock()
    incoming = Incoming()
    queue = new_queue(clock, incoming)
    queue.add(pod("a"))
    fail(queue, "a")
    clock.advance(300)
    queue.flush_unschedulable()
    assert queue.counts()[UNSCHEDULABLE] == 1  # exactly 5 minutes: not yet (strictly longer)
    clock.advance(0.001)
    queue.flush_unschedulable()
    assert incoming.events[-1] == (ACTIVE, "UnschedulableTimeout")
    assert drain(queue) == ["a"]


# --- done and delete -------------------------------------------------------------------------


def test_assumed_parks_the_pod() -> None:
    """An assumed pod is not popped again; a failed bind requeues it to backoff."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a"))
    entry = queue.pop_nowait()
    assert entry is not None
    queue.assumed("uid-a")
    assert (queue.counts()[ASSUMED], queue.pop_nowait()) == (1, None)
    queue.requeue(entry, error=True)
    clock.advance(1)
    assert drain(queue) == ["a"]


def _to_state(queue: SchedulingQueue, clock: FakeClock, state: str) -> None:
    if state == GATED:
        queue.add(pod("a", gates=["g"]))
        return
    queue.add(pod("a"))
    if state == ACTIVE:
        return
    entry = queue.pop_nowait()
    assert entry is not None
    if state == BACKOFF:
        queue.requeue(entry, error=True)
    elif state == UNSCHEDULABLE:
        queue.requeue(entry)
    elif state == ASSUMED:
        queue.assumed("uid-a")


@pytest.mark.parametrize("state", [ACTIVE, BACKOFF, UNSCHEDULABLE, GATED, IN_FLIGHT, ASSUMED])
def test_delete_in_every_state(state: str) -> None:
    """A deleted pod is gone whatever it was doing: nothing pops, nothing moves it back."""
    clock = FakeClock()
    queue = new_queue(clock)
    _to_state(queue, clock, state)
    assert queue.counts()[state] == 1
    queue.delete("uid-a")
    queue.on_event(fw.NODE_ADD)
    clock.advance(600)
    queue.flush_unschedulable()
    assert (queue.pop_nowait(), queue.counts(), queue.pods) == (None, ZERO_COUNTS, {})


def test_requeue_after_delete_is_ignored() -> None:
    """A pod deleted while in flight is not resurrected by its failed attempt."""
    queue = new_queue(FakeClock())
    queue.add(pod("a"))
    entry = queue.pop_nowait()
    assert entry is not None
    queue.delete("uid-a")
    queue.requeue(entry, error=True)
    assert (queue.counts(), queue.pods) == (ZERO_COUNTS, {})


def test_readd_after_delete_starts_fresh() -> None:
    """A pod added again after deletion is a new entry with no attempts."""
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add(pod("a"))
    fail(queue, "a", error=True)
    queue.delete("uid-a")
    queue.add(pod("a"))
    entry = queue.pop_nowait()
    assert entry is not None
    assert (entry.attempts, entry.arrival) == (1, clock.now)


# --- queueing hints: a bound pod scaled down -------------------------------------------------


def _bound(cpu: str, allocated: str | None = None, **requests: str) -> PodInfo:
    builder = make_pod("bound").node("n1").req(cpu=cpu, **requests)
    if allocated is not None:
        builder.container_status("c", allocated={"cpu": allocated})
    return compile_pod(builder.obj_())


@pytest.mark.parametrize(
    ("old", "new", "scaled_down"),
    [
        # Upstream's Test_podSchedulingPropertiesChange, resource cases (status counted).
        pytest.param(
            _bound("101m", "101m"),
            _bound("100m", "100m"),
            True,
            id="pods-resource-request-is-scaled-down",
        ),
        pytest.param(
            _bound("100m", "100m"),
            _bound("101m", "101m"),
            False,
            id="pods-resource-request-is-scaled-up",
        ),
        pytest.param(_bound("1"), _bound("1"), False, id="untracked-properties-of-pod-is-updated"),
        pytest.param(
            _bound("1", memory="1Gi"), _bound("1"), True, id="resource-request-is-removed"
        ),
        pytest.param(
            _bound("1", memory="0"), _bound("1"), True, id="explicit-zero-request-is-removed"
        ),
        pytest.param(
            _bound("2", "2"), _bound("1", "2"), False, id="spec-scaled-down-before-the-allocation"
        ),
        pytest.param(
            _bound("1", "2"), _bound("1", "1"), True, id="allocation-follows-the-scaled-down-spec"
        ),
    ],
)
def test_pod_scaled_down(old: PodInfo, new: PodInfo, scaled_down: bool) -> None:
    """Upstream's extractPodScaleDown over effective requests (spec, status, pod level)."""
    assert pod_scaled_down(old, new) is scaled_down


def test_scale_down_moves_the_pods_its_hints_approve() -> None:
    """Upstream's isPodWorthRequeuing for AssignedPod/UpdatePodScaleDown: a pod NodeResourcesFit
    rejected moves when the bound pod gave back what it requests; one rejected by a plugin that
    registered nothing for the event stays; one no plugin rejected moves."""
    clock, incoming = FakeClock(), Incoming()
    profile = Framework("default-scheduler", None, filter=[node_resources_fit.new({}, in_memory())])

    def worth(entry: QueuedPod, event: ClusterEvent, old: Any, new: Any) -> bool:
        return profile.worth_requeuing(entry.pod, entry.unschedulable_plugins, event, old, new)

    queue = SchedulingQueue(PrioritySort().sort_key, clock=clock, worth=worth, on_incoming=incoming)
    rejected = {
        "wants-cpu": frozenset({"NodeResourcesFit"}),
        "wants-memory": frozenset({"NodeResourcesFit"}),
        "affinity": frozenset({"NodeAffinity", "TaintToleration"}),
        "nobody": frozenset(),
    }
    for name, plugins in rejected.items():
        wants = {"memory": "1Gi"} if name == "wants-memory" else {"cpu": "1"}
        queue.add(compile_pod(make_pod(name).req(**wants).obj_()))
        fail(queue, name, plugins=plugins)
    clock.advance(60)  # every backoff is over: moved pods go straight to active
    old, new = _bound("2", memory="1Gi"), _bound("1", memory="1Gi")
    queue.on_event(ASSIGNED_POD_SCALE_DOWN, old, new)
    assert {e.pod.name: e.where for e in queue.pods.values()} == {
        "wants-cpu": ACTIVE,
        "wants-memory": UNSCHEDULABLE,
        "affinity": UNSCHEDULABLE,
        "nobody": ACTIVE,
    }
    assert incoming.events[-2:] == [(ACTIVE, "AssignedPodUpdatePodScaleDown")] * 2


# --- async pop -------------------------------------------------------------------------------


async def test_pop_returns_ready_pods_and_none_once_closed() -> None:
    """pop() hands out an active pod without waiting, and None after close()."""
    queue = new_queue(FakeClock())
    queue.add(pod("a"))
    entry = await queue.pop()
    assert entry is not None and entry.pod.name == "a"
    queue.close()
    assert await queue.pop() is None


def test_events_seen_while_a_pod_is_in_flight_are_kept_and_counted() -> None:
    """scheduler_inflight_events: a popped pod counts as PodPopped, an event arriving
    meanwhile under its label; both go once no pod in flight needs them. The event sends
    the failed pod to backoff (upstream's in-flight events), a later one does not count."""
    counts: dict[str, int] = {}

    def inflight(event: str, delta: int) -> None:
        counts[event] = counts.get(event, 0) + delta

    clock = FakeClock()
    queue = SchedulingQueue(PrioritySort().sort_key, clock=clock, on_inflight=inflight)
    queue.add(pod("a"))
    entry = queue.pop_nowait()
    assert entry is not None
    assert counts == {"PodPopped": 1}
    queue.on_event(fw.NODE_ADD)
    assert counts == {"PodPopped": 1, "NodeAdd": 1}
    queue.requeue(entry, FIT)
    assert counts == {"PodPopped": 0, "NodeAdd": 0}
    assert entry.where == BACKOFF
    queue.on_event(fw.NODE_ADD)  # nothing in flight: not kept
    assert counts == {"PodPopped": 0, "NodeAdd": 0}


def test_an_event_before_the_pop_does_not_count_for_the_pod() -> None:
    """Only events after its pop are the pod's in-flight events."""
    queue = SchedulingQueue(PrioritySort().sort_key, clock=FakeClock())
    queue.add(pod("a"))
    queue.add(pod("b"))
    first = queue.pop_nowait()
    queue.on_event(fw.NODE_ADD)  # while "a" is in flight
    second = queue.pop_nowait()
    assert first is not None and second is not None
    queue.requeue(second, FIT)
    assert second.where == UNSCHEDULABLE
    queue.requeue(first, FIT)
    assert first.where == BACKOFF


def test_an_event_no_plugin_registered_is_ignored_altogether() -> None:
    """Upstream's isEventOfInterest: an event no plugin of any profile registered moves
    nothing, not even a pod no plugin rejected, and is not kept for pods in flight."""
    counts: dict[str, int] = {}

    def inflight(event: str, delta: int) -> None:
        counts[event] = counts.get(event, 0) + delta

    pdb = ClusterEvent(fw.POD_DISRUPTION_BUDGET, fw.ActionType.ADD)
    queue = SchedulingQueue(
        PrioritySort().sort_key,
        clock=FakeClock(),
        interested=lambda event: frozenset() if event == pdb else None,
        on_inflight=inflight,
    )
    queue.add(pod("a"))
    fail(queue, "a")  # no rejecting plugin: any event of interest would move it
    queue.add(pod("b"))
    queue.pop_nowait()  # "b" in flight
    queue.on_event(pdb)
    assert queue.pods["uid-a"].where == UNSCHEDULABLE
    assert "policy/PodDisruptionBudgetAdd" not in counts
    queue.on_event(fw.NODE_ADD)
    assert queue.pods["uid-a"].where in (ACTIVE, BACKOFF)


class HoldWhile:
    """A PreEnqueue plugin that gates every pod while `holding` (like DefaultPreemption while
    a preemption runs), and registers no event."""

    name = "Hold"

    def __init__(self) -> None:
        self.holding = True

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        return Status.unschedulable("held", plugin=self.name) if self.holding else None


def held_queue(clock: FakeClock) -> tuple[SchedulingQueue, HoldWhile]:
    hold = HoldWhile()
    profile = Framework("default-scheduler", None, pre_enqueue=[hold])
    queue = SchedulingQueue(PrioritySort().sort_key, profile.run_pre_enqueue, clock=clock)
    return queue, hold


def test_a_gated_pod_is_flushed_after_five_minutes_like_an_unschedulable_one() -> None:
    """Upstream's 5-minute flush covers gated pods too: one whose gate has lifted with no
    event to say so goes through PreEnqueue again and pops; one still gated is flushed
    again only 5 minutes after its last flush."""
    clock = FakeClock()
    queue, hold = held_queue(clock)
    queue.add(pod("a"))
    queue.add(pod("b"))
    assert queue.counts()[GATED] == 2
    clock.advance(301)
    queue.flush_unschedulable()
    assert queue.counts()[GATED] == 2 and queue.pods["uid-a"].flushed
    hold.holding = False
    clock.advance(200)
    queue.flush_unschedulable()  # flushed 200 s ago: not yet
    assert queue.counts()[GATED] == 2
    clock.advance(101)
    queue.flush_unschedulable()
    assert drain(queue) == ["a", "b"]


def test_ungate_runs_pre_enqueue_again_for_pods_its_plugin_gates() -> None:
    """Handle.ungate(pods, plugin): the pods that plugin gates go through PreEnqueue now;
    a pod gated by another plugin, or not gated, is left where it is."""
    clock = FakeClock()
    queue, hold = held_queue(clock)
    queue.add(pod("a"))
    queue.add(pod("b"))
    hold.holding = False
    queue.ungate(["uid-a"], "SchedulingGates")
    assert queue.counts()[GATED] == 2
    queue.ungate(["uid-a"], "Hold")
    assert drain(queue) == ["a"] and queue.pods["uid-b"].where == GATED
