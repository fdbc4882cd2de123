"""Gang scheduling in memory: PodGroups through the event handlers, the queue and the group
cycle, with binds to an in-memory API (issue 13). The e2e suite repeats the main cases on a
real control plane."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

import plugins
from plugins import gang_scheduling
from scheduler.app import build_profiles, queue_for
from scheduler.cache import Cache
from scheduler.config import parse
from scheduler.cycle import Scheduler
from scheduler.eventhandlers import EventHandlers
from scheduler.framework import Code, CycleState
from scheduler.handle import ClusterHandle, InMemoryApi
from scheduler.kube import podgroups as podgroup_status
from scheduler.model import InvalidObject, compile_pod
from scheduler.podgroups import PodGroup, compile_pod_group, quorum_message
from scheduler.queue import GATED, UNSCHEDULABLE
from tests.builders import make_node, make_pod
from tests.unit.test_cycle import FakeClock, RecordingObserver, RecordingReporter

JSON = dict[str, Any]
NAME = "berth"
UPSTREAM = "scheduling.k8s.io"
CRD = "scheduling.x-k8s.io"


def pod_group(name: str, min_count: int | None, *, topology: str = "", priority: int = 0) -> JSON:
    policy: JSON = {"gang": {"minCount": min_count}} if min_count else {"basic": {}}
    spec: JSON = {"schedulingPolicy": policy, "priority": priority}
    if topology:
        spec["schedulingConstraints"] = {"topology": [{"key": topology}]}
    return {
        "apiVersion": "scheduling.k8s.io/v1beta1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "default", "uid": f"pg-{name}", "generation": 1},
        "spec": spec,
    }


def crd_group(name: str, min_member: int) -> JSON:
    return {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "default", "uid": f"crd-{name}"},
        "spec": {"minMember": min_member, "scheduleTimeoutSeconds": 30},
    }


def member(name: str, group: str, cpu: str = "1", crd: bool = False) -> JSON:
    builder = make_pod(name).scheduler(NAME).req(cpu=cpu)
    raw = builder.obj_()
    if crd:
        raw["metadata"].setdefault("labels", {})["scheduling.x-k8s.io/pod-group"] = group
    else:
        raw["spec"]["schedulingGroup"] = {"podGroupName": group}
    return raw


def node(name: str, cpu: str = "2", labels: dict[str, str] | None = None) -> JSON:
    builder = make_node(name).capacity(cpu=cpu, memory="16Gi", pods="110")
    for key, value in (labels or {}).items():
        builder.label(key, value)
    return builder.obj_()


class GangWorld:
    """Event handlers, cache, queue and Scheduler as `berth run` wires them, in memory."""

    def __init__(self, nodes: list[JSON]) -> None:
        self.clock = FakeClock()
        self.cache = Cache()
        self.api = InMemoryApi(on_evict=self._evict)
        self.handle = ClusterHandle(self.api, snapshot=self.cache.table)
        cache = self.cache
        self.handle.pod_groups.placed = lambda uid: cache.node_of(uid) is not None
        self.handle.pod_groups.served = {UPSTREAM, CRD}
        doc = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": NAME}],
        }
        made = build_profiles(parse(doc, plugins.registry().keys()), self.handle)
        self.queue = queue_for(made, clock=self.clock, initial_backoff=1.0, max_backoff=10.0)
        self.handle.activator = self.queue.activate
        self.handle.ungater = self.queue.ungate
        self.reporter = RecordingReporter()
        self.groups: list[tuple[str, str, str]] = []
        self.scheduler = Scheduler(
            self.cache,
            self.queue,
            made,
            self.reporter,
            RecordingObserver(),
            clock=self.clock,
            batching=False,
            pod_groups=self.handle.pod_groups,
            on_group=lambda g, result, s, message, p: self.groups.append((g.name, result, message)),
        )
        self.handlers = EventHandlers(self.cache, self.queue, self.handle, profiles=[NAME])
        for raw in nodes:
            self.handlers.on_node("ADDED", raw, None)

    def _evict(self, victim: Any) -> bool:
        """What the watch of a victim's deletion does."""
        if self.cache.node_of(victim.uid) is None:
            return False
        self.handlers.on_pod("DELETED", victim.raw, None)
        return True

    def add(self, *raws: JSON) -> None:
        for raw in raws:
            if raw["kind"] == "PodGroup":
                api = raw["apiVersion"].split("/")[0]
                self.handlers.pod_group_handler(api)("ADDED", raw, None)
            else:
                self.handlers.on_pod("ADDED", raw, None)

    async def run(self) -> None:
        """Schedule until the active queue is empty, then let the bindings finish."""
        while (entry := self.queue.pop_nowait()) is not None:
            if entry.where != "in-flight":
                break
            self.scheduler.schedule_one(entry)
        await self.scheduler.drain()

    def placement(self) -> dict[str, str]:
        return {key.split("/")[1]: n for key, n in self.api.placement.items()}

    def failures(self, name: str) -> list[str]:
        return [
            e[2] for e in self.reporter.events if e[0] == "failed" and e[1] == f"default/{name}"
        ]

    def where(self, name: str) -> str:
        return next(e.where for e in self.queue.pods.values() if e.pod.name == name)


def gang(prefix: str, size: int, group: str, cpu: str = "1", crd: bool = False) -> list[JSON]:
    return [member(f"{prefix}-{i}", group, cpu, crd) for i in range(size)]


# --- PreEnqueue ------------------------------------------------------------------------------


async def test_members_wait_in_pre_enqueue_for_their_group_then_for_min_count() -> None:
    world = GangWorld([node("n1", cpu="8")])
    world.add(*gang("w", 2, "job"))
    assert world.where("w-0") == GATED
    entry = next(iter(world.queue.pods.values()))
    assert entry.gate_message == (
        'waiting for pods\'s pod group "job" to appear in scheduling queue'
    )

    world.add(pod_group("job", 3))
    assert {world.where("w-0"), world.where("w-1")} == {GATED}
    assert (
        entry.gate_message == "waiting for minCount pods from a gang to appear in scheduling queue"
    )

    world.add(member("w-2", "job"))  # the third completes the quorum: all three leave the gate
    await world.run()
    assert sorted(world.placement()) == ["w-0", "w-1", "w-2"]
    assert world.groups == [("job", "scheduled", ""), ("job", "bound", "")]


# --- all or nothing --------------------------------------------------------------------------


async def test_a_gang_of_8_where_6_fit_stays_entirely_pending_until_capacity_appears() -> None:
    world = GangWorld([node("n1"), node("n2"), node("n3")])  # 3 x 2 CPU: room for 6
    world.add(pod_group("job", 8), *gang("w", 8, "job"))
    await world.run()

    assert world.placement() == {}
    assert world.cache.sizes()["assumed_pods"] == 0  # every reservation was undone
    assert {world.where(f"w-{i}") for i in range(8)} == {UNSCHEDULABLE}
    messages = {m for i in range(8) for m in world.failures(f"w-{i}")}
    # The group's message, then (as upstream appends it) what preemption found.
    group_message = (
        "minCount (8) cannot be satisfied: 6 scheduled, 1 remaining, "
        "pod group preemption: No preemption victims found for incoming preemptor"
    )
    assert group_message in messages
    assert "0/3 nodes are available: 3 Insufficient cpu." in messages
    assert world.groups == [("job", "unschedulable", group_message)]

    world.handlers.on_node("ADDED", node("n4"), None)  # room for 2 more: the Node/Add event
    world.clock.now += 20  # past every member's backoff
    world.queue.flush_backoff()
    await world.run()
    assert len(world.placement()) == 8


async def test_two_gangs_that_fit_alone_but_not_together_place_one_whole() -> None:
    world = GangWorld([node(f"n{i}") for i in range(4)])  # room for 8
    world.add(pod_group("a", 6), pod_group("b", 6))
    world.add(*gang("a", 6, "a"), *gang("b", 6, "b"))
    await world.run()

    placed = world.placement()
    assert sorted({name.split("-")[0] for name in placed}) in (["a"], ["b"])
    assert len(placed) == 6
    assert world.cache.sizes()["assumed_pods"] == 6  # only the bound gang's, nothing held
    results = sorted(r for _, r, _ in world.groups if r != "bound")
    assert results == ["scheduled", "unschedulable"]


async def test_a_member_arriving_later_joins_a_placed_group() -> None:
    world = GangWorld([node("n1", cpu="8")])
    world.add(pod_group("job", 2), *gang("w", 2, "job"))
    await world.run()
    assert len(world.placement()) == 2

    world.add(member("late", "job"))
    await world.run()
    assert "late" in world.placement()


async def test_scheduler_plugins_crd_group_is_the_same_engine() -> None:
    world = GangWorld([node("n1"), node("n2")])  # room for 4
    world.add(crd_group("job", 5), *gang("w", 5, "job", crd=True))
    await world.run()
    assert world.placement() == {}
    assert world.groups[-1][1] == "unschedulable"

    world.handlers.pod_group_handler(CRD)("MODIFIED", crd_group("job", 4), crd_group("job", 5))
    world.clock.now += 20
    world.queue.flush_unschedulable()  # or any event: here the 5-minute flush's path
    world.clock.now += 400
    world.queue.flush_unschedulable()
    await world.run()
    assert len(world.placement()) == 4


# --- topology --------------------------------------------------------------------------------

RACK = "topology.kubernetes.io/rack"


def racks() -> list[JSON]:
    small = [node(f"a{i}", labels={RACK: "a"}) for i in range(2)]  # 4 slots
    large = [node(f"b{i}", labels={RACK: "b"}) for i in range(3)]  # 6 slots
    return [*small, *large, node("loose")]  # "loose" has no rack label: never used


async def test_a_group_with_a_topology_key_lands_in_one_domain_where_it_fits() -> None:
    world = GangWorld(racks())
    world.add(pod_group("job", 5, topology=RACK), *gang("w", 5, "job"))
    await world.run()

    nodes = set(world.placement().values())
    assert len(world.placement()) == 5
    assert nodes <= {"b0", "b1", "b2"}


async def test_a_group_that_fits_no_single_domain_is_not_split() -> None:
    world = GangWorld(racks())  # 12 slots in all, but at most 6 in one rack
    world.add(pod_group("job", 7, topology=RACK), *gang("w", 7, "job"))
    await world.run()

    assert world.placement() == {}
    message = world.groups[-1][2]
    assert message.startswith("0/2 placements are available, first placement status: ")


async def test_late_members_go_to_the_domain_of_the_placed_ones() -> None:
    world = GangWorld(racks())
    world.add(pod_group("job", 2, topology=RACK), *gang("w", 2, "job"))
    await world.run()
    first = {world.cache.table.nodes[world.cache.table.row_of[n]].labels[RACK]  # type: ignore[union-attr]
             for n in world.placement().values()}  # fmt: skip
    world.add(member("late", "job"))
    await world.run()
    late = world.placement()["late"]
    assert world.cache.table.nodes[world.cache.table.row_of[late]].labels[RACK] in first  # type: ignore[union-attr]


# --- Permit ----------------------------------------------------------------------------------


def test_permit_waits_until_min_count_members_are_placed() -> None:
    world = GangWorld([node("n1", cpu="8")])
    world.add(pod_group("job", 2), *gang("w", 2, "job"))
    plugin = gang_scheduling.GangScheduling(world.handle)
    first = compile_pod(member("w-0", "job"))
    first.uid = next(e.pod.uid for e in world.queue.pods.values() if e.pod.name == "w-0")
    world.cache.assume(first, "n1")

    status, timeout = plugin.permit(CycleState(), first, "n1")
    assert status is not None and status.code is Code.WAIT
    assert status.message == "waiting for minCount pods from a gang to be scheduled"
    assert timeout == 300.0

    second = next(e.pod for e in world.queue.pods.values() if e.pod.name == "w-1")
    world.cache.assume(second, "n1")
    assert plugin.permit(CycleState(), second, "n1") == (None, 0.0)


# --- the API objects -------------------------------------------------------------------------


def test_compile_pod_group_reads_both_apis() -> None:
    upstream = compile_pod_group(UPSTREAM, pod_group("job", 4, topology=RACK, priority=7))
    assert (upstream.policy, upstream.min_count, upstream.topology_key) == ("gang", 4, RACK)
    assert upstream.priority == 7
    basic = compile_pod_group(UPSTREAM, pod_group("b", None))
    assert (basic.policy, basic.min_count) == ("basic", 1)
    crd = compile_pod_group(CRD, crd_group("job", 3))
    assert (crd.policy, crd.min_count, crd.permit_timeout) == ("gang", 3, 30.0)


@pytest.mark.parametrize(
    ("api", "spec", "field"),
    [
        pytest.param(UPSTREAM, {"schedulingPolicy": {"gang": {"minCount": 0}}}, "minCount"),
        pytest.param(UPSTREAM, {"schedulingPolicy": {"gang": {}}}, "minCount"),
        pytest.param(UPSTREAM, {"schedulingPolicy": "gang"}, "schedulingPolicy"),
        pytest.param(CRD, {"minMember": "abc"}, "spec.minMember"),
        pytest.param(CRD, {"minMember": 2, "scheduleTimeoutSeconds": "x"}, "scheduleTimeout"),
    ],
)
def test_malformed_pod_groups_are_refused_naming_the_field(
    api: str, spec: JSON, field: str
) -> None:
    with pytest.raises(InvalidObject, match=field):
        compile_pod_group(api, {"metadata": {"name": "g"}, "spec": spec})


def test_a_malformed_scheduling_group_is_an_invalid_pod() -> None:
    raw = member("w", "job")
    raw["spec"]["schedulingGroup"] = {"podGroupName": 3}
    with pytest.raises(InvalidObject, match=r"spec\.schedulingGroup\.podGroupName"):
        compile_pod(raw)


def test_quorum_messages_are_upstreams() -> None:
    assert quorum_message(8, 6, 1) == "minCount (8) cannot be satisfied: 6 scheduled, 1 remaining"
    assert quorum_message(8, 6, 2) == "minCount (8) is not yet satisfied: 6 scheduled, 2 remaining"
    assert quorum_message(8, 8, 0) is None


def test_the_condition_is_written_once_and_never_turned_back() -> None:
    now = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
    first = podgroup_status.condition([], "False", "Unschedulable", "m", 1, now)
    assert first == {
        "type": "PodGroupInitiallyScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "m",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-11-30T00:00:00Z",
    }
    assert podgroup_status.condition([first], "False", "Unschedulable", "m", 1, now) is None
    later = now + datetime.timedelta(minutes=1)
    changed = podgroup_status.condition([first], "False", "Unschedulable", "other", 1, later)
    assert changed is not None and changed["lastTransitionTime"] == "2026-11-30T00:00:00Z"
    done = podgroup_status.condition([first], "True", "Scheduled", "", 1, later)
    assert done is not None and done["lastTransitionTime"] == "2026-11-30T00:01:00Z"
    assert podgroup_status.condition([done], "False", "Unschedulable", "x", 2, later) is None


def test_pod_group_is_frozen_data() -> None:
    group = compile_pod_group(UPSTREAM, pod_group("job", 2))
    assert isinstance(group, PodGroup) and group.key == (UPSTREAM, "default", "job")


# --- preemption ------------------------------------------------------------------------------


def low(name: str, node_name: str, cpu: str = "1") -> JSON:
    raw = make_pod(name).scheduler("other").req(cpu=cpu).node(node_name).obj_()
    raw["spec"]["priority"] = 0
    raw["status"] = {"phase": "Running", "startTime": f"2026-11-30T00:00:0{name[-1]}Z"}
    return raw


def high_gang(prefix: str, size: int, group: str) -> list[JSON]:
    out = gang(prefix, size, group)
    for raw in out:
        raw["spec"]["priority"] = 10
    return out


async def test_a_gang_preempts_only_what_the_whole_gang_needs() -> None:
    world = GangWorld([node("n1"), node("n2")])  # 4 CPUs, all taken by low-priority pods
    world.add(low("l1", "n1"), low("l2", "n1"), low("l3", "n2"), low("l4", "n2"))
    world.add(pod_group("job", 3, priority=10), *high_gang("w", 3, "job"))
    await world.run()

    assert world.placement() == {}
    assert len(world.api.preempted) == 3  # not 4: one low pod is given back
    assert world.groups[0][1] == "waiting_on_preemption"
    assert world.groups[0][2].endswith(
        "pod group preemption: found a placement for podgroup, preempting 3 victims"
    )
    nominated = {e.pod.name: e.pod.nominated_node_name for e in world.queue.pods.values()}
    assert all(nominated[f"w-{i}"] for i in range(3))

    world.clock.now += 20
    world.queue.flush_backoff()
    await world.run()
    assert sorted(world.placement()) == ["w-0", "w-1", "w-2"]


async def test_a_gang_that_cannot_fit_even_by_preemption_evicts_nobody() -> None:
    world = GangWorld([node("n1"), node("n2")])
    world.add(low("l1", "n1"), low("l2", "n2"))
    world.add(pod_group("job", 5, priority=10), *high_gang("w", 5, "job"))  # 5 CPUs > 4
    await world.run()

    assert world.api.preempted == []
    assert world.groups[-1][1] == "unschedulable"
    assert "pod group preemption: minCount (5) cannot be satisfied" in world.groups[-1][2]


async def test_a_gang_does_not_preempt_pods_of_equal_priority() -> None:
    world = GangWorld([node("n1")])
    world.add(low("l1", "n1"), low("l2", "n1"))
    world.add(pod_group("job", 2, priority=0), *gang("w", 2, "job"))
    await world.run()
    assert world.api.preempted == []
    assert world.groups[-1][2].endswith(
        "pod group preemption: No preemption victims found for incoming preemptor"
    )


async def test_members_with_another_priority_than_their_group_are_a_scheduler_error() -> None:
    world = GangWorld([node("n1", cpu="8")])
    pods = gang("w", 2, "job")
    pods[1]["spec"]["priority"] = 5
    world.add(pod_group("job", 2), *pods)
    await world.run()
    assert world.placement() == {}
    message = (
        "all pods in a single pod group should have the same priority as the pod group's "
        "priority, got 5 and 0"
    )
    assert world.groups == [("job", "error", message)]
    assert world.failures("w-0") == [message]


# --- starvation ------------------------------------------------------------------------------


def finish(world: GangWorld, prefix: str) -> None:
    """The members of a placed gang complete: the watch shows them bound, then gone."""
    table = world.cache.table
    for row in table.live_rows():
        for pod in list(table.pods[int(row)].values()):
            if pod.name.startswith(prefix + "-"):
                bound = copy.deepcopy(pod.raw)
                bound["spec"]["nodeName"] = table.node(int(row)).name
                world.handlers.on_pod("MODIFIED", bound, pod.raw)
                world.handlers.on_pod("DELETED", bound, None)


async def test_a_large_gang_is_not_starved_by_small_gangs_that_keep_coming() -> None:
    """Berth's rule: a gang that has failed for 60 s, and would fit once the other gangs of no
    higher priority are gone, makes younger gangs wait until it is placed. Here the room each
    small gang frees would otherwise go to the next small gang, for ever."""
    world = GangWorld([node(f"n{i}") for i in range(4)])  # 8 slots
    for i in range(4):
        world.add(pod_group(f"s{i}", 2), *gang(f"s{i}", 2, f"s{i}"))
    await world.run()
    world.clock.now += 1
    world.add(pod_group("big", 8), *gang("big", 8, "big"))
    await world.run()
    assert len(world.placement()) == 8  # the small gangs only

    world.clock.now += 61  # the big gang has starved for a minute; it fails again
    world.queue.flush_unschedulable()
    world.clock.now += 300
    world.queue.flush_unschedulable()
    await world.run()
    for i in range(4):  # each small gang finishes and a new one arrives
        world.add(pod_group(f"t{i}", 2), *gang(f"t{i}", 2, f"t{i}"))
        await world.run()
        finish(world, f"s{i}")
        world.clock.now += 20
        await world.run()
        assert not any(name.startswith(f"t{i}-") for name in world.placement())
    assert sum(name.startswith("big-") for name in world.placement()) == 8
    assert any(
        m.startswith('waiting for the older gang "default/big" to be placed first')
        for m in world.failures("t0-0")
    )


def test_crd_groups_read_out_of_range_numbers_as_coscheduling_does() -> None:
    """scheduler-plugins' CRD has no minimum: minMember below 1 is no quorum, a timeout below
    1 s the default."""
    group = compile_pod_group(CRD, {"metadata": {"name": "g"}, "spec": {"minMember": -3}})
    assert group.min_count == 1
    spec = {"minMember": 2, "scheduleTimeoutSeconds": 0}
    assert compile_pod_group(CRD, {"metadata": {"name": "g"}, "spec": spec}).permit_timeout == 300


async def test_members_of_an_invalid_group_say_so_in_pre_enqueue() -> None:
    world = GangWorld([node("n1")])
    world.add(*gang("w", 2, "job"))
    bad = pod_group("job", 2)
    bad["spec"]["schedulingPolicy"] = {"gang": {"minCount": "two"}}
    world.add(bad)
    entry = next(iter(world.queue.pods.values()))
    assert entry.where == GATED
    assert entry.gate_message.startswith(
        'pod group "job" is invalid: spec.schedulingPolicy.gang.minCount'
    )
    world.add(pod_group("job", 2))  # fixed: both go
    await world.run()
    assert len(world.placement()) == 2


@pytest.mark.parametrize("mode", ["all", "single"])
async def test_a_low_gang_with_disruption_mode_all_is_preempted_whole_or_not_at_all(
    mode: str,
) -> None:
    """Victims come in units (upstream's getCrossNodesVictims): with disruptionMode all the
    low gang's members are given back or evicted together, never one of them alone."""
    world = GangWorld([node("n1"), node("n2")])
    low_group = pod_group("low", 2)
    low_group["spec"]["disruptionMode"] = {mode: {}}
    world.add(low_group)
    members = [low("g-1", "n1"), low("g-2", "n2")]
    for raw in members:
        raw["spec"]["schedulingGroup"] = {"podGroupName": "low"}
        raw["spec"]["schedulerName"] = NAME
        # Started first: pod by pod, a member is the first given back (the more important).
        raw["status"]["startTime"] = "2026-11-29T00:00:00Z"
    world.add(*members, low("s-1", "n1"), low("s-2", "n2"))
    world.add(pod_group("job", 3, priority=10), *high_gang("w", 3, "job"))
    await world.run()

    evicted = {key.split("/")[1] for key in world.api.preempted}
    if mode == "all":  # 3 of the 4 CPUs are needed, so the low gang goes whole
        assert {"g-1", "g-2"} <= evicted and len(evicted) == 3, evicted
    else:  # pod by pod, one member (started first) is given back
        assert len(evicted) == 3 and len({"g-1", "g-2"} & evicted) == 1, evicted
