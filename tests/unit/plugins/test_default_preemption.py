"""DefaultPreemption, the plugin over the engine's evaluator: its args and candidate count
(TestDryRunPreemption's counts, calculateNumCandidates), eligibility
(TestPodEligibleToPreemptOthers), the PostFilter result ("preemption: " messages, execute
through the Handle), and the scheduling cycle around it: the message suffix, nomination, and
nominated pods reserving their node. The evaluator's own parts are tested in
tests/unit/test_preemption.py."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np
import pytest

from plugins import default_preemption
from plugins.default_preemption import NEVER, TERMINATING, DefaultPreemption, num_candidates
from scheduler.decode import ConfigError
from scheduler.framework import Code, CycleState, Diagnosis, FilterResult, Status
from scheduler.handle import ClusterHandle, in_memory
from scheduler.model import PodInfo
from scheduler.pluginargs import DefaultPreemptionArgs as PreemptionArgs
from scheduler.preemption import NO_VICTIMS, NOT_HELPFUL, dry_run_preemption
from scheduler.snapshot import NodeTable
from tests.builders import make_pod
from tests.unit.test_cycle import NAME, World, nodes
from tests.unit.test_preemption import (
    HIGH,
    JSON,
    LARGE,
    LOW,
    MID,
    SMALL,
    VERY_HIGH,
    FitCheck,
    cluster,
    diagnosis_for,
    names,
    preemptor,
    victim,
)

# --- DryRunPreemption's candidate count ------------------------------------------------------


@pytest.mark.parametrize(
    ("potential", "args", "offset", "tried", "found"),
    [
        pytest.param(10, PreemptionArgs(10, 100), 0, 10, 10, id="fewer-than-absolute-all"),
        pytest.param(10, PreemptionArgs(10, 3), 0, 3, 3, id="absolute-3"),
        pytest.param(10, PreemptionArgs(40, 1), 0, 4, 4, id="percentage-40"),
        pytest.param(10, PreemptionArgs(10, 3), 8, 3, 3, id="offset-wraps"),
    ],
)
def test_candidate_count(
    potential: int, args: PreemptionArgs, offset: int, tried: int, found: int
) -> None:
    """Dry run stops at numCandidates = max(percentage% of the nodes, absolute), capped at the
    node count, starting at the offset and wrapping (upstream's TestDryRunPreemption)."""
    node_names = [f"node{i}" for i in range(potential)]
    table = cluster([victim(f"p{i}", n, LOW, LARGE) for i, n in enumerate(node_names)], node_names)
    check = FitCheck(table)
    rows = table.order()
    wanted = num_candidates(args, potential)
    candidates, _ = dry_run_preemption(
        preemptor(), table, rows, check.node_check(), [], offset, wanted
    )
    assert len(candidates) == found
    expected_first = table.node(int(rows[offset % rows.size])).name
    assert candidates[0].node == expected_first
    assert check.calls == 2 * tried  # once without all victims, once per reprieve


@pytest.mark.parametrize(
    ("count", "args", "expected"),
    [
        pytest.param(0, PreemptionArgs(), 0, id="no-nodes"),
        pytest.param(50, PreemptionArgs(), 50, id="below-absolute"),
        pytest.param(5000, PreemptionArgs(), 500, id="ten-percent"),
        pytest.param(5000, PreemptionArgs(1, 10), 50, id="one-percent"),
        pytest.param(5000, PreemptionArgs(0, 10), 10, id="absolute-only"),
        pytest.param(5, PreemptionArgs(100, 10), 5, id="capped-at-nodes"),
    ],
)
def test_num_candidates(count: int, args: PreemptionArgs, expected: int) -> None:
    """Upstream's calculateNumCandidates."""
    assert num_candidates(args, count) == expected


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        pytest.param({}, None, id="defaults"),
        pytest.param(
            {"minCandidateNodesPercentage": 101},
            "args.minCandidateNodesPercentage: Invalid value: 101: not in valid range [0, 100]",
            id="percentage-too-large",
        ),
        pytest.param(
            {"minCandidateNodesAbsolute": -1},
            "args.minCandidateNodesAbsolute: Invalid value: -1: not in valid range [0, inf)",
            id="negative-absolute",
        ),
        pytest.param({"bogus": 1}, 'args.bogus: unknown field "bogus"', id="unknown-field"),
    ],
)
def test_args(args: JSON, errors: str | None) -> None:
    """new() takes a raw mapping too: decoded, defaulted and validated as the configuration
    does (the cases of every args type are in tests/unit/test_pluginargs.py)."""
    if errors is None:
        plugin = default_preemption.new(args, in_memory())
        assert plugin.args == PreemptionArgs(10, 100)
        return
    with pytest.raises(ConfigError) as caught:
        default_preemption.new(args, in_memory())
    assert caught.value.errors == [errors]


# --- eligibility and the PostFilter result ------------------------------------------------------


def post_filter(
    plugin: DefaultPreemption, pod: PodInfo, table: NodeTable, diagnosis: Diagnosis
) -> Any:
    return plugin.post_filter(CycleState(), pod, table, diagnosis, FitCheck(table).node_check())


def test_preemption_policy_never_is_not_eligible() -> None:
    table = cluster([victim("p1", "node1", LOW, LARGE)])
    plugin = DefaultPreemption(PreemptionArgs(), in_memory(), random.Random(0))
    result = post_filter(plugin, preemptor(preemptionPolicy="Never"), table, diagnosis_for(table))
    assert result.status == Status(
        Code.UNSCHEDULABLE, ("preemption: " + NEVER,), "DefaultPreemption"
    )


def test_terminating_victim_on_nominated_node_blocks_another_preemption() -> None:
    """Once victims are chosen, the nominated node counts as draining until they are gone."""
    table = cluster([victim("p1", "node1", LOW, LARGE), victim("p2", "node2", LOW, LARGE)])
    plugin = DefaultPreemption(PreemptionArgs(), in_memory(), random.Random(0))
    pod = preemptor()
    first = post_filter(plugin, pod, table, diagnosis_for(table))
    assert first.status is None
    pod.nominated_node_name = first.nominated_node
    again = post_filter(plugin, pod, table, diagnosis_for(table))
    assert again.status is not None and again.status.message == "preemption: " + TERMINATING
    # Unless filters now call the nominated node unresolvable: then it may preempt elsewhere.
    elsewhere = post_filter(plugin, pod, table, diagnosis_for(table, [first.nominated_node]))
    assert elsewhere.status is None
    assert elsewhere.nominated_node != first.nominated_node


def test_terminating_by_preemption_seen_in_the_pod() -> None:
    """A victim another scheduler preempted (deleting, DisruptionTarget) also blocks."""
    raw = victim("p1", "node1", LOW, LARGE)
    raw["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    raw["status"] = {
        "conditions": [
            {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
        ]
    }
    table = cluster([raw])
    plugin = DefaultPreemption(PreemptionArgs(), in_memory(), random.Random(0))
    assert plugin.pod_eligible_to_preempt_others(preemptor(), table, diagnosis_for(table)) == (
        True,
        "",
    )
    nominated = preemptor()
    nominated.nominated_node_name = "node1"
    assert plugin.pod_eligible_to_preempt_others(nominated, table, diagnosis_for(table)) == (
        False,
        TERMINATING,
    )


@pytest.mark.parametrize(
    ("pods", "unresolvable", "message"),
    [
        pytest.param(
            [],
            ["node1"],
            f"0/2 nodes are available: 1 {NO_VICTIMS}, 1 {NOT_HELPFUL}.",
            id="no-victims-and-not-helpful",
        ),
        pytest.param(
            [],
            ["node1", "node2"],
            f"0/2 nodes are available: 2 {NOT_HELPFUL}.",
            id="all-unresolvable",
        ),
        pytest.param(
            [victim("p1", "node1", LOW, LARGE)],
            [],
            f"0/2 nodes are available: 1 Insufficient cpu, 1 {NO_VICTIMS}.",
            id="victims-not-enough",
        ),
    ],
)
def test_no_candidate_message(pods: list[JSON], unresolvable: list[str], message: str) -> None:
    """Upstream's FitError over the dry run's statuses, prefixed "preemption: "; it asks to
    clear the nomination."""
    table = cluster(pods)
    plugin = DefaultPreemption(PreemptionArgs(), in_memory(), random.Random(0))
    result = post_filter(plugin, preemptor(cpu="600m"), table, diagnosis_for(table, unresolvable))
    assert result.status is not None
    assert result.status.message == "preemption: " + message
    assert result.clear_nomination


class RecordingApi:
    """scheduler.handle.ClusterApi recording what it was asked to do."""

    def __init__(self) -> None:
        self.preempted: list[tuple[str, str, str]] = []

    async def bind(self, pod: PodInfo, node: str) -> None:
        pass

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        self.preempted.append((preemptor.key, victim.key, node))

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        pass


async def test_execute_deletes_victims_through_the_handle() -> None:
    """The result's execute() preempts each victim not already terminating."""
    terminating = victim("p1.2", "node1", LOW, SMALL)
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    table = cluster([victim("p1.1", "node1", LOW, LARGE), terminating], ("node1",))
    api = RecordingApi()
    plugin = DefaultPreemption(PreemptionArgs(), ClusterHandle(api), random.Random(0))
    result = post_filter(plugin, preemptor(cpu="500m"), table, diagnosis_for(table))
    assert result.status is None and result.nominated_node == "node1"
    assert sorted(names(result.victims)) == ["p1.1", "p1.2"]
    assert result.execute is not None
    await result.execute()
    assert api.preempted == [("default/preemptor", "default/p1.1", "node1")]


async def test_success_message_names_the_node_and_counts_every_victim() -> None:
    """Success carries v1.37's "found a potential placement" text; the count is of every
    victim chosen, the already terminating one included (upstream's len(Victims().Pods))."""
    terminating = victim("p1.2", "node1", LOW, SMALL)
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    table = cluster([victim("p1.1", "node1", LOW, LARGE), terminating], ("node1",))
    plugin = DefaultPreemption(PreemptionArgs(), ClusterHandle(RecordingApi()), random.Random(0))
    result = post_filter(plugin, preemptor(cpu="500m"), table, diagnosis_for(table))
    assert result.status is None
    assert result.message == (
        "preemption: found a potential placement for pod on node node1, preempting 2 victims"
    )


# --- in the scheduling cycle ---------------------------------------------------------------------


def running(name: str, node: str, priority: int, cpu: str) -> JSON:
    return make_pod(name).node(node).priority(priority).req(cpu=cpu).obj_()


def pending(name: str, priority: int, cpu: str) -> JSON:
    return make_pod(name).scheduler("berth").priority(priority).req(cpu=cpu).obj_()


async def test_cycle_preempts_nominates_and_binds_on_the_nominated_node() -> None:
    """The attempt fails with v1.37's message ending in what preemption found, nominates the
    node; once the victim is gone the pod goes there, even though another node now has more
    room."""
    world = World(nodes(2, cpu="2"))
    world.bound(running("low", "n0000", LOW, "2"))
    world.bound(running("mid", "n0001", MID, "2"))
    nominations: list[tuple[str, str]] = []
    world.scheduler._nominate = lambda pod, node: nominations.append((pod.key, node))
    attempt = world.schedule(pending("high", HIGH, "2"))
    assert attempt.node == ""
    assert (attempt.nominated, attempt.victims) == ("n0000", ("default/low",))
    assert attempt.status is not None
    assert attempt.status.message == (
        "0/2 nodes are available: 2 Insufficient cpu. "
        "preemption: found a potential placement for pod on node n0000, preempting 1 victims"
    )
    assert nominations == [("default/high", "n0000")]
    assert world.queue.nominator.node_of("uid-high") == "n0000"
    # Both nodes empty now: the nominated one is tried first and taken without scoring.
    world.cache.remove_pod("uid-low")
    world.cache.remove_pod("uid-mid")
    world.queue.move_all()
    world.clock.now += 60
    entry = world.queue.pop_nowait()
    assert entry is not None
    again = world.scheduler.schedule_one(entry)
    assert again.node == "n0000"
    assert len(world.queue.nominator) == 0
    await world.scheduler.drain()


async def test_a_failed_bind_clears_the_nomination() -> None:
    """A nominated pod whose bind fails loses its nominatedNodeName, as upstream's
    handleBindingCycleError clears it (clearNominatedNode)."""
    world = World(nodes(1, cpu="2"))
    world.bound(running("low", "n0000", LOW, "2"))
    nominations: list[tuple[str, str]] = []
    world.scheduler._nominate = lambda pod, node: nominations.append((pod.key, node))
    assert world.schedule(pending("high", HIGH, "2")).nominated == "n0000"
    world.cache.remove_pod("uid-low")
    world.queue.move_all()
    world.clock.now += 60
    world.handle.fail = RuntimeError("connection reset")
    entry = world.queue.pop_nowait()
    assert entry is not None
    assert world.scheduler.schedule_one(entry).node == "n0000"
    await world.scheduler.drain()
    assert world.reporter.events[-1][3] == "SchedulerError"
    assert nominations == [("default/high", "n0000"), ("default/high", "")]
    assert not world.queue.nominator.node_of("uid-high")


async def test_a_victim_naming_a_pod_group_is_preempted_alone() -> None:
    """With GenericWorkload off (v1.37's default) a victim's spec.schedulingGroup changes
    nothing: one member of the group is preempted, not the group, and the message counts
    pods."""
    world = World(nodes(1, cpu="2"))
    for name in ("member-0", "member-1"):
        member = running(name, "n0000", LOW, "1")
        member["spec"]["schedulingGroup"] = {"podGroupName": "gang"}
        world.bound(member)
    attempt = world.schedule(pending("high", HIGH, "1"))
    assert len(attempt.victims) == 1
    assert attempt.status is not None
    assert attempt.status.message.endswith(
        "preemption: found a potential placement for pod on node n0000, preempting 1 victims"
    )
    await world.scheduler.drain()


def test_default_pre_enqueue_is_scheduling_gates_then_default_preemption() -> None:
    """As upstream's with async preemption on, in the default plugin order: SchedulingGates,
    DynamicResources (its claims must exist), DefaultPreemption, GangScheduling."""
    world = World(nodes(1))
    names = [p.name for p in world.scheduler.profiles[NAME].pre_enqueue]
    assert names == ["SchedulingGates", "DynamicResources", "DefaultPreemption", "GangScheduling"]


async def test_a_preemptor_is_held_until_its_last_victim_is_deleted() -> None:
    """Upstream's PreEnqueue: while its victims are being deleted the preemptor stays gated
    (DefaultPreemption joins its rejectors); once the last victim is gone from the cache it
    may enter the active queue again."""
    world = World(nodes(1, cpu="2"))
    world.bound(running("low-0", "n0000", LOW, "1"))
    world.bound(running("low-1", "n0000", LOW, "1"))
    release = asyncio.Event()
    deleted: list[str] = []

    async def preempt(preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        await release.wait()
        deleted.append(victim.name)
        world.cache.remove_pod(victim.uid)

    world.handle.preempt = preempt  # type: ignore[method-assign]
    plugin = world.scheduler.profiles[NAME].plugins["DefaultPreemption"]
    assert world.schedule(pending("high", HIGH, "2")).nominated == "n0000"
    await asyncio.sleep(0)
    high = world.queue.pods["uid-high"].pod
    assert plugin.pre_enqueue(high) is not None  # victims not deleted yet
    world.clock.now += 60  # past its backoff: a move would make it active
    world.queue.move_all()
    assert world.queue.pods["uid-high"].where == "gated"
    assert "DefaultPreemption" in world.queue.pods["uid-high"].unschedulable_plugins
    release.set()
    await world.scheduler.drain()
    assert sorted(deleted) == ["low-0", "low-1"]
    assert plugin.pre_enqueue(high) is None


async def test_a_preemptor_gated_while_its_victims_went_is_let_through_at_the_end() -> None:
    """Victims deleted (by others) while the preemptor was gated spent their events on the
    gate: when its preemption ends, the preemptor goes through PreEnqueue again at once
    (Handle.ungate) instead of waiting for the 5-minute flush."""
    world = World(nodes(1, cpu="2"))
    world.bound(running("low-0", "n0000", LOW, "1"))
    world.bound(running("low-1", "n0000", LOW, "1"))
    release = asyncio.Event()

    async def preempt(preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        await release.wait()
        world.cache.remove_pod(victim.uid)

    world.handle.preempt = preempt  # type: ignore[method-assign]
    plugin = world.scheduler.profiles[NAME].plugins["DefaultPreemption"]
    plugin.evaluator.handle.ungater = world.queue.ungate
    assert world.schedule(pending("high", HIGH, "2")).nominated == "n0000"
    await asyncio.sleep(0)
    world.clock.now += 60
    world.queue.move_all()
    assert world.queue.pods["uid-high"].where == "gated"
    release.set()
    await world.scheduler.drain()
    assert world.queue.pods["uid-high"].where == "active"


async def test_nominated_pod_reserves_its_node_against_lower_priority_pods() -> None:
    """A pod nominated to a node counts there for pods of lower or equal priority, not for
    higher ones."""
    world = World(nodes(1, cpu="2"))
    world.bound(running("low", "n0000", LOW, "2"))
    first = world.schedule(pending("high", HIGH, "2"))
    assert first.nominated == "n0000"
    world.cache.remove_pod("uid-low")
    lower = world.schedule(pending("other", MID, "1"))
    assert lower.node == ""
    assert lower.status is not None
    assert lower.status.message.startswith("0/1 nodes are available: 1 Insufficient cpu.")
    higher = world.schedule(pending("urgent", VERY_HIGH, "1"))
    assert higher.node == "n0000"
    await world.scheduler.drain()


async def test_a_second_preemptor_of_the_class_sees_the_first_ones_nomination() -> None:
    """Dry-run outcomes are kept per class between cycles, but a node's outcome is redone once
    a pod is nominated there: the second preemptor does not take the node the first one is
    waiting for, although it needs fewer victims than the other."""
    world = World(nodes(2, cpu="2"))
    world.bound(running("big", "n0000", LOW, "2"))
    world.bound(running("half1", "n0001", LOW, "1"))
    world.bound(running("half2", "n0001", LOW, "1"))
    first = world.schedule(pending("first", HIGH, "2"))
    assert (first.nominated, first.victims) == ("n0000", ("default/big",))
    second = world.schedule(pending("second", HIGH, "2"))
    assert second.nominated == "n0001"
    assert sorted(second.victims) == ["default/half1", "default/half2"]
    # The default PostFilter plugins are DynamicResources, then DefaultPreemption.
    plugin = world.scheduler.profiles[NAME].post_filter[-1]
    assert isinstance(plugin, DefaultPreemption)
    assert plugin.evaluator._memos, "the outcomes were kept"
    await world.scheduler.drain()


class NeedsCompany:
    """A filter that more pods can satisfy, as pod affinity can: a pod labelled `lonely`
    fits only on a node already running a pod labelled `company`."""

    name = "NeedsCompany"

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Any) -> Any:
        if "lonely" not in pod.labels:
            return FilterResult.all_pass(rows.size)
        mask = np.asarray(
            [any("company" in p.labels for p in table.pods[int(r)].values()) for r in rows]
        )
        return FilterResult.reject(mask, "no company")


async def test_a_node_must_fit_the_pod_with_and_without_the_pods_nominated_there() -> None:
    """Upstream's RunFilterPluginsWithNominatedPods: a pod that only a nominated pod lets
    pass does not go there, since that pod may end up elsewhere; nominated pods still count
    against the pods that fit without them."""
    world = World(nodes(1, cpu="4"))
    profile = world.scheduler.profiles[NAME]
    profile.filter = (*profile.filter, NeedsCompany())
    world.bound(running("low", "n0000", LOW, "4"))
    web = make_pod("web").scheduler(NAME).priority(HIGH).req(cpu="2").label("company")
    assert world.schedule(web.obj_()).nominated == "n0000"
    world.cache.remove_pod("uid-low")
    lonely = make_pod("lonely").scheduler(NAME).priority(MID).req(cpu="1").label("lonely")
    attempt = world.schedule(lonely.obj_())
    assert attempt.node == "" and attempt.status is not None
    assert "1 no company" in attempt.status.message
    crowded = world.schedule(pending("crowded", MID, "3"))
    assert crowded.node == "" and crowded.status is not None
    assert "1 Insufficient cpu" in crowded.status.message
    plain = world.schedule(pending("plain", MID, "2"))
    assert plain.node == "n0000"
    await world.scheduler.drain()


async def test_preemption_policy_never_in_the_cycle_message() -> None:
    world = World(nodes(1, cpu="1"))
    world.bound(running("low", "n0000", LOW, "1"))
    raw = pending("high", HIGH, "1")
    raw["spec"]["preemptionPolicy"] = "Never"
    attempt = world.schedule(raw)
    assert attempt.status is not None
    assert attempt.status.message == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: not eligible due to preemptionPolicy=Never."
    )
    assert attempt.nominated == ""
    await asyncio.sleep(0)
