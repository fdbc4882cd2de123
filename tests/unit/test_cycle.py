"""scheduler.cycle: upstream's sample size, the round-robin start, placement on the best node,
upstream's "0/N nodes are available" message, and the binding cycle's outcomes. Everything runs
on an in-memory cache and queue with virtual clocks; binds go to a recording handle."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import numpy as np
import pytest

import plugins
from scheduler.app import build_profiles, queue_for
from scheduler.cache import Cache
from scheduler.config import parse
from scheduler.cycle import NO_NODES, AlreadyBound, Attempt, Scheduler, num_feasible_nodes_to_find
from scheduler.device_classes import DeviceClassStore
from scheduler.dra.claims import Claim as DraClaim
from scheduler.dra.claims import ClaimStore
from scheduler.dra.slices import SliceStore
from scheduler.framework import SKIP, Code, CycleState, FilterResult, Status
from scheduler.handle import ClusterHandle, InMemoryApi
from scheduler.model import PodInfo, compile_node, compile_pod
from scheduler.queue import ASSUMED, BACKOFF, UNSCHEDULABLE
from scheduler.runtime import Framework
from scheduler.snapshot import NodeTable, Rows
from tests.builders import make_node, make_pod

JSON = dict[str, Any]
NAME = "berth"


# --- num_feasible_nodes_to_find --------------------------------------------------------------


@pytest.mark.parametrize(
    ("percentage", "total", "expected"),
    [
        # Upstream's TestNumFeasibleNodesToFind cases first.
        pytest.param(None, 10, 10, id="unset-below-100-nodes-all"),
        pytest.param(40, 10, 10, id="set-below-100-nodes-all"),
        pytest.param(None, 1000, 420, id="unset-1000-nodes-adaptive-42-percent"),
        pytest.param(40, 1000, 400, id="set-40-percent-of-1000"),
        pytest.param(None, 6000, 300, id="unset-6000-nodes-floor-5-percent"),
        pytest.param(40, 6000, 2400, id="set-40-percent-of-6000"),
        # And the edges around them.
        pytest.param(None, 0, 0, id="no-nodes"),
        pytest.param(None, 99, 99, id="99-nodes-all"),
        pytest.param(None, 100, 100, id="100-nodes-minimum-100"),
        pytest.param(None, 5000, 500, id="5000-nodes-10-percent"),
        pytest.param(None, 5624, 337, id="6-percent-just-before-the-floor"),
        pytest.param(None, 5625, 281, id="5-percent-at-the-floor"),
        pytest.param(None, 10000, 500, id="10000-nodes-floor-5-percent"),
        pytest.param(0, 1000, 420, id="zero-means-adaptive"),
        pytest.param(100, 1000, 1000, id="100-percent-all"),
        pytest.param(1, 1000, 100, id="explicit-percentage-still-at-least-100"),
        pytest.param(5, 3000, 150, id="explicit-5-percent"),
    ],
)
def test_num_feasible_nodes_to_find(percentage: int | None, total: int, expected: int) -> None:
    """Below 100 nodes all; else percentage% (adaptive 50 - n/125, floor 5) but at least 100."""
    assert num_feasible_nodes_to_find(percentage, total) == expected


# --- fixtures --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingHandle:
    """handle.ClusterApi: records binds; `fail` makes the next binds raise it. Its DeviceClass
    store is the one the profiles' handle gives the plugins."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail: Exception | None = None
        self.device_classes = DeviceClassStore()
        self.resource_claims = ClaimStore()
        self.resource_slices = SliceStore()
        self.claims = InMemoryApi()  # its claim_writes: what DynamicResources wrote

    async def reserve_claim(self, claim: JSON, allocation: JSON | None, consumer: JSON) -> JSON:
        return await self.claims.reserve_claim(claim, allocation, consumer)

    async def unreserve_claim(self, claim: DraClaim, pod_uid: str) -> None:
        await self.claims.unreserve_claim(claim, pod_uid)

    async def deallocate_claim(self, claim: JSON) -> None:
        await self.claims.deallocate_claim(claim)

    async def create_claim(self, claim: JSON) -> JSON:
        return await self.claims.create_claim(claim)

    async def delete_claim(self, claim: JSON) -> None:
        await self.claims.delete_claim(claim)

    async def set_extended_claim_status(
        self, pod: PodInfo, claim_name: str, mappings: list[JSON]
    ) -> None:
        await self.claims.set_extended_claim_status(pod, claim_name, mappings)

    async def bind(self, pod: PodInfo, node: str) -> None:
        self.calls.append((pod.key, node))
        if self.fail is not None:
            raise self.fail

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        pass

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        pass


class RecordingReporter:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def scheduled(self, pod: PodInfo, node: str) -> None:
        self.events.append(("scheduled", pod.key, node))

    def failed(self, pod: PodInfo, message: str, reason: str) -> None:
        self.events.append(("failed", pod.key, message, reason))


class RecordingObserver:
    def __init__(self) -> None:
        self.attempts: list[tuple[str, str]] = []
        self.scheduled_pods: list[tuple[int, float]] = []

    def attempt(self, result: str, profile: str, seconds: float) -> None:
        self.attempts.append((result, profile))

    def scheduled(self, attempts: int, seconds_since_arrival: float, flushed: bool) -> None:
        self.scheduled_pods.append((attempts, seconds_since_arrival))

    def queueing_hint(self, plugin: str, event: str, hint: str, seconds: float) -> None:
        pass

    def preemption_goroutine(self, result: str, seconds: float) -> None:
        pass

    def extension_point(self, point: str, status: str, profile: str, seconds: float) -> None:
        pass

    def plugin(self, plugin: str, point: str, status: str, seconds: float) -> None:
        pass

    def algorithm(self, seconds: float) -> None:
        pass

    def permit_wait(self, status: str, seconds: float) -> None:
        pass


def profiles(
    handle: RecordingHandle, profile_percentage: int | None = None, **extra: Any
) -> dict[str, Framework]:
    entry: JSON = {"schedulerName": NAME}
    if profile_percentage is not None:
        entry["percentageOfNodesToScore"] = profile_percentage
    entry.update(extra)
    doc = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [entry],
    }
    cluster = ClusterHandle(
        handle,
        device_classes=handle.device_classes,
        resource_claims=handle.resource_claims,
        resource_slices=handle.resource_slices,
    )
    return build_profiles(parse(doc, plugins.registry().keys()), cluster)


class World:
    """A cache, a queue and a Scheduler wired together in virtual time."""

    def __init__(
        self,
        nodes: list[JSON],
        *,
        percentage: int | None = None,
        profile_percentage: int | None = None,
        batching: bool = False,
        seed: int = 0,
    ) -> None:
        self.clock = FakeClock()
        self.handle = RecordingHandle()
        self.reporter = RecordingReporter()
        self.observer = RecordingObserver()
        self.cache = Cache()
        for node in nodes:
            self.cache.upsert_node(compile_node(node))
        made = profiles(self.handle, profile_percentage)
        self.queue = queue_for(made, clock=self.clock, initial_backoff=1.0, max_backoff=10.0)
        self.scheduler = Scheduler(
            self.cache,
            self.queue,
            made,
            self.reporter,
            self.observer,
            percentage_of_nodes_to_score=percentage,
            batching=batching,
            clock=self.clock,
            rng=random.Random(seed),
        )

    def bound(self, raw: JSON) -> None:
        """A pod already running on its spec.nodeName."""
        self.cache.add_pod(compile_pod(raw))

    def schedule(self, raw: JSON) -> Attempt:
        self.queue.add(compile_pod(raw))
        entry = self.queue.pop_nowait()
        assert entry is not None
        return self.scheduler.schedule_one(entry)


def pod(name: str, **requests: str) -> JSON:
    builder = make_pod(name).scheduler(NAME)
    if requests:
        builder.req(**requests)
    return builder.obj_()


def nodes(count: int, prefix: str = "n", **capacity: str) -> list[JSON]:
    return [make_node(f"{prefix}{i:04d}").capacity(**capacity).obj_() for i in range(count)]


# --- sampling and the round-robin start ------------------------------------------------------


@pytest.mark.parametrize(
    ("percentage", "profile_percentage", "processed"),
    [
        pytest.param(None, None, 420, id="adaptive"),
        pytest.param(40, None, 400, id="global-percentage"),
        pytest.param(40, 20, 200, id="profile-percentage-wins"),
        pytest.param(None, 100, 1000, id="profile-100-percent"),
    ],
)
@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_sample_size_sets_how_far_the_start_moves(
    percentage: int | None, profile_percentage: int | None, processed: int, batching: bool
) -> None:
    """With 1000 feasible nodes a cycle examines exactly numFeasibleNodesToFind of them."""
    world = World(
        nodes(1000),
        percentage=percentage,
        profile_percentage=profile_percentage,
        batching=batching,
    )
    world.schedule(pod("p"))
    assert world.scheduler.next_start == processed % 1000
    await world.scheduler.drain()


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_round_robin_start_advances_by_processed_count(batching: bool) -> None:
    """Each cycle starts where the previous one stopped, wrapping around: 150 nodes with a
    sample of 100 start at 0, 100, 50, 0 ..."""
    world = World(nodes(150), batching=batching)
    starts = []
    for i in range(4):
        world.schedule(pod(f"p{i}"))
        starts.append(world.scheduler.next_start)
    assert starts == [100, 50, 0, 100]
    await world.scheduler.drain()


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_rejected_nodes_count_as_processed(batching: bool) -> None:
    """Nodes rejected on the way count: 10 tainted nodes first means 110 processed."""
    tainted = [make_node(f"a{i:04d}").taint("dedicated", "x").obj_() for i in range(10)]
    world = World(tainted + nodes(140), batching=batching)
    world.schedule(pod("p"))
    assert world.scheduler.next_start == 110
    await world.scheduler.drain()


async def test_failed_cycle_processes_every_node() -> None:
    """A pod that fits nowhere examines all nodes, so the start comes back to where it was."""
    world = World(nodes(150, cpu="1"))
    world.schedule(pod("small"))
    assert world.scheduler.next_start == 100
    world.schedule(pod("huge", cpu="64"))
    assert world.scheduler.next_start == 100
    await world.scheduler.drain()


async def test_sample_follows_zone_interleaved_order() -> None:
    """The nodes examined are the first of the zone-interleaved order from the start."""
    zoned = [make_node(f"{z}{i:03d}").zone(z).obj_() for z in ("a", "b") for i in range(100)]
    world = World(zoned)
    order = world.cache.table.names(world.cache.table.order())
    assert order[:4] == ["a000", "b000", "a001", "b001"]
    attempt = world.schedule(pod("p"))
    assert world.scheduler.next_start == 100
    assert attempt.node in set(order[:100])
    await world.scheduler.drain()


# --- placement -------------------------------------------------------------------------------


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_fitting_pod_is_assumed_on_the_best_node_and_bound(batching: bool) -> None:
    """The highest total score wins; the pod is assumed at once, bound through the handle,
    and leaves the queue when the bind succeeds."""
    world = World(nodes(3, cpu="4", memory="8Gi"), batching=batching)
    world.bound(make_pod("busy0").req(cpu="3", memory="6Gi").node("n0000").obj_())
    world.bound(make_pod("busy2").req(cpu="2", memory="4Gi").node("n0002").obj_())
    attempt = world.schedule(pod("p", cpu="1", memory="2Gi"))
    assert (attempt.node, attempt.status) == ("n0001", None)
    assert world.cache.is_assumed("uid-p")
    assert world.queue.pods["uid-p"].where == ASSUMED
    await world.scheduler.drain()
    assert world.handle.calls == [("default/p", "n0001")]
    assert world.reporter.events == [("scheduled", "default/p", "n0001")]
    assert world.observer.attempts == [("scheduled", NAME)]
    assert world.observer.scheduled_pods == [(1, 0.0)]
    assert "uid-p" not in world.queue.pods
    assert world.cache.node_of("uid-p") == "n0001"


async def test_single_feasible_node_is_taken_without_scoring() -> None:
    """Only one node passes the filters: it is chosen."""
    world = World(
        [
            make_node("small").capacity(cpu="1").obj_(),
            make_node("big").capacity(cpu="8").obj_(),
        ]
    )
    attempt = world.schedule(pod("p", cpu="2"))
    assert attempt.node == "big"
    await world.scheduler.drain()


async def test_ties_are_broken_by_the_injected_rng() -> None:
    """Equal scores: the seeded rng decides, and different seeds can pick different nodes."""
    picks = set()
    for seed in range(20):
        world = World(nodes(4), seed=seed)
        picks.add(world.schedule(pod("p")).node)
        await world.scheduler.drain()
    assert picks == {"n0000", "n0001", "n0002", "n0003"}


async def test_successive_pods_see_assumed_capacity() -> None:
    """An assumed pod's requests count at once: the next pod goes elsewhere."""
    world = World(nodes(2, cpu="2"))
    first = world.schedule(pod("a", cpu="2"))
    second = world.schedule(pod("b", cpu="2"))
    third = world.schedule(pod("c", cpu="2"))
    assert {first.node, second.node} == {"n0000", "n0001"}
    assert third.node == ""
    assert third.status is not None
    assert third.status.message == (
        "0/2 nodes are available: 2 Insufficient cpu. preemption: "
        "0/2 nodes are available: 2 No preemption victims found for incoming pod."
    )
    await world.scheduler.drain()


# --- failures --------------------------------------------------------------------------------


async def test_unfit_pod_gets_upstreams_message_sorted_and_counted() -> None:
    """Every rejected node is counted under the first filter that rejected it (several reasons
    from one filter all count), sorted as strings, like upstream's FitError."""
    world = World(
        [
            make_node("cordoned").unschedulable().obj_(),
            make_node("tainted").taint("dedicated", "x").obj_(),
            make_node("wrong-zone").label("zone", "b").obj_(),
            make_node("small").capacity(cpu="1", memory="1Gi").obj_(),
            make_node("busy").capacity(cpu="2").obj_(),
        ]
    )
    world.bound(make_pod("hog").req(cpu="1500m").node("busy").obj_())
    raw = make_pod("p").scheduler(NAME).req(cpu="1", memory="2Gi").obj_()
    raw["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}
                ]
            }
        }
    }
    attempt = world.schedule(raw)
    message = (
        "0/5 nodes are available: "
        "1 Insufficient cpu, "
        "1 Insufficient memory, "
        "1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint(s), "
        "1 node(s) were unschedulable. preemption: 0/5 nodes are available: "
        "1 No preemption victims found for incoming pod, "
        "4 Preemption is not helpful for scheduling."
    )
    assert attempt.node == ""
    assert attempt.status is not None
    assert (attempt.status.code, attempt.status.message) == (Code.UNSCHEDULABLE, message)
    assert world.reporter.events == [("failed", "default/p", message, "Unschedulable")]
    assert world.observer.attempts == [("unschedulable", NAME)]
    assert world.queue.pods["uid-p"].where == UNSCHEDULABLE
    assert world.cache.node_of("uid-p") is None
    await world.scheduler.drain()
    assert world.handle.calls == []


async def test_counts_sort_as_strings_like_upstream() -> None:
    """ "10 ..." sorts before "2 ..." because upstream sorts the rendered strings."""
    world = World(
        nodes(10, prefix="small", cpu="1")
        + [make_node(f"t{i}").taint("k", "v").obj_() for i in range(2)]
    )
    attempt = world.schedule(pod("p", cpu="2"))
    assert attempt.status is not None
    assert attempt.status.message == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) had untolerated taint(s). "
        # A request larger than the whole node is unresolvable: preemption cannot help.
        "preemption: 0/12 nodes are available: 12 Preemption is not helpful for scheduling."
    )


async def test_no_nodes_at_all() -> None:
    """An empty cluster fails with upstream's ErrNoNodesAvailable text, not a 0/0 FitError."""
    world = World([])
    attempt = world.schedule(pod("p"))
    assert attempt.status is not None
    assert (attempt.status.code, attempt.status.message) == (
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        NO_NODES,
    )
    assert world.reporter.events == [("failed", "default/p", NO_NODES, "Unschedulable")]


async def test_failed_bind_forgets_and_backs_off() -> None:
    """A bind error returns the capacity, sends the pod to backoff and reports it."""
    world = World(nodes(1, cpu="1"))
    world.handle.fail = RuntimeError("connection reset")
    attempt = world.schedule(pod("p", cpu="1"))
    assert attempt.node == "n0000"
    await world.scheduler.drain()
    assert world.cache.node_of("uid-p") is None
    assert world.queue.pods["uid-p"].where == BACKOFF
    assert world.reporter.events == [
        ("failed", "default/p", "Binding rejected: connection reset", "SchedulerError")
    ]
    world.handle.fail = None
    world.clock.now += 1  # the first backoff is 1 s of virtual time
    entry = world.queue.pop_nowait()
    assert entry is not None
    assert world.scheduler.schedule_one(entry).node == "n0000"
    await world.scheduler.drain()
    assert world.handle.calls == [("default/p", "n0000"), ("default/p", "n0000")]


async def test_a_bind_whose_answer_was_lost_but_landed_stays_bound() -> None:
    """The Binding's answer is lost (connection dropped) but the watch already shows the pod
    bound there: nothing to forget, no exception escapes the binding task, the pod stays
    bound in the cache."""
    world = World(nodes(1, cpu="1"))
    world.handle.fail = ConnectionError("connection closed")
    obj = pod("p", cpu="1")
    world.schedule(obj)
    bound = compile_pod({**obj, "spec": {**obj["spec"], "nodeName": "n0000"}})
    world.cache.add_pod(bound)  # the watch: bound, before the binding task ends
    tasks = list(world.scheduler._binding)
    await world.scheduler.drain()
    assert all(t.exception() is None for t in tasks)
    assert world.cache.node_of("uid-p") == "n0000"


async def test_already_bound_is_dropped_without_retry() -> None:
    """A 409 on the binding: someone else bound it; forget it and drop it from the queue."""
    world = World(nodes(1))
    world.handle.fail = AlreadyBound("pods/binding: conflict")
    world.schedule(pod("p"))
    await world.scheduler.drain()
    assert (world.cache.node_of("uid-p"), world.queue.pods, world.reporter.events) == (
        None,
        {},
        [],
    )


# --- PreFilter results that narrow the nodes (upstream's PreFilterResult) --------------------


class FakePreFilter:
    """Upstream's NewFakePreFilterPlugin with a PreFilterResult: narrows to `names` (None:
    returns no result)."""

    row_local = True

    def __init__(self, name: str, names: set[str] | None) -> None:
        self.name = name
        self.names = names

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        if self.names is not None:
            state.restrict_nodes(self.name, self.names)
        return None


class FakeFilter:
    """Upstream's NewFakeFilterPlugin: rejects the named nodes."""

    name = "FakeFilter"
    row_local = True

    def __init__(self, *failing: str) -> None:
        self.failing = failing

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        mask = ~np.isin(rows, [table.row_of[n] for n in self.failing])
        return FilterResult.reject(mask, f"injecting failure for pod {pod.name}")


def with_plugins(world: World, *pre_filter: FakePreFilter, filters: Any = ()) -> None:
    """The world's profile with these PreFilter and Filter plugins only (and no PostFilter)."""
    profile = world.scheduler.profiles[NAME]
    world.scheduler.profiles = {
        NAME: dataclasses.replace(profile, pre_filter=pre_filter, filter=filters, post_filter=())
    }


@pytest.mark.parametrize(
    ("pre_filter", "filters", "nodes_", "message"),
    [
        # Upstream's TestSchedulerSchedulePod cases with PreFilterResults.
        pytest.param(
            [
                FakePreFilter("FakePreFilter1", None),
                FakePreFilter("FakePreFilter2", {"node2"}),
                FakePreFilter("FakePreFilter3", {"node1"}),
            ],
            [],
            ["node1", "node2", "node3"],
            "0/3 nodes are available: node(s) didn't satisfy plugin(s) "
            "[FakePreFilter2 FakePreFilter3] simultaneously.",
            id="test prefilter plugin returning non-intersecting nodes",
        ),
        pytest.param(
            [FakePreFilter("FakePreFilter1", None), FakePreFilter("FakePreFilter2", set())],
            [],
            ["node1"],
            "0/1 nodes are available: node(s) didn't satisfy plugin FakePreFilter2.",
            id="test prefilter plugin returning empty node set",
        ),
        pytest.param(
            [FakePreFilter("FakePreFilter", {"node2"})],
            [FakeFilter("node2")],
            ["node1", "node2"],
            "0/2 nodes are available: 1 injecting failure for pod test-prefilter, "
            "1 node(s) didn't satisfy plugin(s) [FakePreFilter].",
            id="test some nodes are filtered out by prefilter plugin and other are filtered out "
            "by filter plugin",
        ),
        pytest.param(
            [FakePreFilter("FakePreFilter", {"invalid-node"})],
            [],
            ["1", "2"],
            "0/2 nodes are available: 2 node(s) didn't satisfy plugin(s) [FakePreFilter].",
            id="test prefilter plugin returned an invalid node",
        ),
    ],
)
@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_pre_filter_results_narrow_the_nodes(
    pre_filter: list[FakePreFilter],
    filters: list[FakeFilter],
    nodes_: list[str],
    message: str,
    batching: bool,
) -> None:
    """Only the nodes every PreFilter result names are filtered; the others fail as
    UnschedulableAndUnresolvable with upstream's "didn't satisfy plugin(s)" reason."""
    world = World([make_node(n).obj_() for n in nodes_], batching=batching)
    with_plugins(world, *pre_filter, filters=filters)
    attempt = world.schedule(make_pod("test-prefilter").scheduler(NAME).obj_())
    assert attempt.node == ""
    assert attempt.status is not None
    assert attempt.status.message == message
    await world.scheduler.drain()


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_pre_filter_result_picks_among_its_nodes(batching: bool) -> None:
    """Pods go to the nodes of the result that pass the filters, though every node outside
    the result would pass them too (and would score better once those fill up)."""
    world = World([make_node(f"node{i}").obj_() for i in range(1, 11)], batching=batching)
    narrow = FakePreFilter("FakePreFilter", {"node2", "node3", "node4"})
    with_plugins(world, narrow, filters=[FakeFilter("node2")])
    for i in range(6):
        attempt = world.schedule(make_pod(f"p{i}").scheduler(NAME).req(cpu="100m").obj_())
        assert attempt.node in {"node3", "node4"}
    await world.scheduler.drain()


# --- the binding cycle: what runs, and what is reported --------------------------------------


async def test_binding_cycles_in_flight_are_reported() -> None:
    """on_binding hears how many binding cycles run, one per assumed pod until its bind ends
    (upstream's scheduler_goroutines{operation="binding"})."""
    world = World(nodes(2, cpu="1"))
    running: list[int] = []
    world.scheduler._on_binding = running.append
    slow = asyncio.Event()

    async def bind(pod: PodInfo, node: str) -> None:
        await slow.wait()

    world.handle.bind = bind  # type: ignore[method-assign]
    world.schedule(pod("a", cpu="1"))
    world.schedule(pod("b", cpu="1"))
    assert running == [1, 2]
    slow.set()
    await world.scheduler.drain()
    assert running == [1, 2, 1, 0]


class WaitingPermit:
    """A Permit plugin that makes every pod wait (briefly) and nobody allows."""

    name = "WaitingPermit"

    def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status, float]:
        return Status(Code.WAIT), 0.01


async def test_a_pod_waiting_at_permit_is_nominated_first() -> None:
    """A pod about to wait in Permit gets the chosen node as nominatedNodeName first (v1.35+'s
    NominatedNodeNameForExpectation), cleared when the wait ends in a rejection."""
    world = World(nodes(1))
    profile = world.scheduler.profiles[NAME]
    world.scheduler.profiles = {NAME: dataclasses.replace(profile, permit=[WaitingPermit()])}
    nominations: list[tuple[str, str]] = []
    world.scheduler._nominate = lambda pod, node: nominations.append((pod.key, node))
    assert world.schedule(pod("p")).node == "n0000"
    await world.scheduler.drain()
    assert nominations == [("default/p", "n0000"), ("default/p", "")]
    assert world.handle.calls == []  # nobody allowed it: the wait timed out


class RecordingPreBind:
    """A PreBind plugin that records when it starts and ends, yielding in between."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        self.log.append(f"{self.name} start")
        await asyncio.sleep(0)
        self.log.append(f"{self.name} end")
        return None


async def test_pre_bind_plugins_run_one_after_another() -> None:
    """PreBind plugins run in order, each to its end before the next starts: no parallel
    PreBind group (v1.36). Pins today's behaviour."""
    world = World(nodes(1))
    log: list[str] = []
    profile = world.scheduler.profiles[NAME]
    pre_bind = [RecordingPreBind("A", log), RecordingPreBind("B", log)]
    world.scheduler.profiles = {NAME: dataclasses.replace(profile, pre_bind=pre_bind)}
    assert world.schedule(pod("p")).node == "n0000"
    await world.scheduler.drain()
    assert log == ["A start", "A end", "B start", "B end"]
    assert world.handle.calls == [("default/p", "n0000")]


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_a_pod_naming_a_pod_group_is_scheduled_on_its_own(batching: bool) -> None:
    """With GenericWorkload off (v1.37's default) spec.schedulingGroup changes nothing: no
    PodGroup needs to exist, no gang waits for minCount, the pod is placed and bound alone as
    the same pod without the field would be."""
    world = World(nodes(3, cpu="1"), batching=batching)
    placed = []
    for name, group in (("plain", None), ("member", {"podGroupName": "gang"})):
        raw = pod(name, cpu="1")
        if group is not None:
            raw["spec"]["schedulingGroup"] = group
        attempt = world.schedule(raw)
        assert attempt.status is None and attempt.node
        placed.append((f"default/{name}", attempt.node))
    await world.scheduler.drain()
    assert sorted(world.handle.calls) == sorted(placed)
    assert [e[0] for e in world.reporter.events] == ["scheduled", "scheduled"]


class FlightPreBind(RecordingPreBind):
    """A PreBind plugin whose PreBindPreFlight answers `flight`."""

    def __init__(self, name: str, log: list[str], flight: Status | None) -> None:
        super().__init__(name, log)
        self.flight = flight

    def pre_bind_pre_flight(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        self.log.append(f"{self.name} flight")
        return self.flight


@pytest.mark.parametrize(
    ("flights", "nominated", "ran", "bound"),
    [
        pytest.param((None, SKIP), True, ["A"], True, id="one has work: nominated first"),
        pytest.param((SKIP, SKIP), False, [], True, id="none has work: no nomination"),
        pytest.param(
            (Status.error("boom"), None), False, [], False, id="an error ends the binding cycle"
        ),
    ],
)
async def test_pre_bind_pre_flight(
    flights: tuple[Status | None, Status | None], nominated: bool, ran: list[str], bound: bool
) -> None:
    """Upstream's RunPreBindPreFlights (v1.34) with NominatedNodeNameForExpectation (v1.35):
    when some PreBind plugin will have work, the chosen node is written as nominatedNodeName
    before PreBind; plugins that skip are not run at PreBind; an error fails the binding."""
    world = World(nodes(1))
    log: list[str] = []
    profile = world.scheduler.profiles[NAME]
    pre_bind = [FlightPreBind("A", log, flights[0]), FlightPreBind("B", log, flights[1])]
    world.scheduler.profiles = {NAME: dataclasses.replace(profile, pre_bind=pre_bind)}
    nominations: list[tuple[str, str]] = []
    world.scheduler._nominate = lambda pod, node: nominations.append((pod.key, node))
    assert world.schedule(pod("p")).node == "n0000"
    await world.scheduler.drain()
    started = [entry.split()[0] for entry in log if entry.endswith("start")]
    assert started == ran
    assert (world.handle.calls == [("default/p", "n0000")]) is bound
    assert nominations == ([("default/p", "n0000")] if nominated else [])
    if not bound:
        assert world.reporter.events[-1][2] == (
            'Binding rejected: running PreBindPreFlight "A": boom'
        )
