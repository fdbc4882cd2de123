"""DefaultPreemption: victim selection, node choice and eligibility as upstream's
default_preemption_test.go (TestSelectNodesForPreemption, TestPickOneNodeForPreemption,
TestPodEligibleToPreemptOthers, TestDryRunPreemption's candidate counts), and the scheduling
cycle around it: the message suffix, nomination, and nominated pods reserving their node."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import pytest

from plugins import default_preemption
from plugins.default_preemption import (
    NEVER,
    NO_VICTIMS,
    NOT_HELPFUL,
    TERMINATING,
    Candidate,
    DefaultPreemption,
    PreemptionArgs,
    dry_run,
    fit_error,
    pick_one,
    potential_rows,
    select_victims,
    split_by_budget,
)
from plugins.node_resources_fit import NodeResourcesFit
from plugins.node_resources_fit import new as new_fit
from scheduler.framework import Code, CycleState, Diagnosis, FilterResult, Handle, Status
from scheduler.model import DisruptionBudget, PodInfo, compile_pdb, compile_pod
from scheduler.snapshot import NodeTable
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table
from tests.unit.test_cycle import NAME, World, nodes

JSON = dict[str, Any]
LOW, MID, HIGH, VERY_HIGH = 0, 100, 1000, 2000
NEG = -100
SMALL = "100m"
LARGE = "300m"  # with node cpu 500m: one large and one small pod fit, not two large


def victim(
    name: str, node: str, priority: int, cpu: str = SMALL, start: str = "", **labels: str
) -> JSON:
    builder = make_pod(name).node(node).priority(priority).req(cpu=cpu)
    for key, value in labels.items():
        builder = builder.label(key, value)
    raw = builder.obj_()
    if start:
        raw["status"] = {"startTime": start}
    return raw


def preemptor(cpu: str = LARGE, priority: int = HIGH, **spec: Any) -> PodInfo:
    raw = make_pod("preemptor").priority(priority).req(cpu=cpu).obj_()
    raw["spec"].update(spec)
    return compile_pod(raw)


def cluster(pods: Sequence[JSON], names: Sequence[str] = ("node1", "node2")) -> NodeTable:
    return build_table([make_node(n).capacity(cpu="500m").obj_() for n in names], pods)


class FitCheck:
    """The NodeCheck the scheduler gives the plugin, with NodeResourcesFit as the only filter
    (as upstream's tests register it)."""

    def __init__(self, table: NodeTable) -> None:
        self.table = table
        self.fit: NodeResourcesFit = new_fit({}, cast(Handle, None))
        self.calls = 0

    def __call__(self, pod: PodInfo, row: int) -> Status | None:
        self.calls += 1
        state = CycleState()
        self.fit.pre_filter(state, pod, self.table)
        result = self.fit.filter(state, pod, self.table, np.asarray([row]))
        if result.mask[0]:
            return None
        return Status.unschedulable(*(r.message for r in result.reasons if r.rejected[0]))


def budget(allowed: int, app: str = "foo", disrupted: Sequence[str] = ()) -> DisruptionBudget:
    return compile_pdb(
        {
            "metadata": {"namespace": "default", "name": f"pdb-{app}"},
            "spec": {"selector": {"matchLabels": {"app": app}}},
            "status": {
                "disruptionsAllowed": allowed,
                "disruptedPods": {p: "2024-01-01T00:00:00Z" for p in disrupted},
            },
        }
    )


def names(pods: Sequence[PodInfo]) -> list[str]:
    return [p.name for p in pods]


def summary(
    found: tuple[list[Candidate], dict[str, Status]],
) -> tuple[list[tuple[str, list[str], int]], dict[str, tuple[str, ...]]]:
    """A dry run's candidates as (node, victims, PDB violations), and each other node's
    reasons: what two dry runs are compared by."""
    candidates, statuses = found
    return (
        [(c.node, names(c.victims), c.pdb_violations) for c in candidates],
        {n: s.reasons for n, s in statuses.items()},
    )


def snapshot(table: NodeTable) -> dict[str, list[str]]:
    return {table.node(int(r)).name: sorted(table.pods[int(r)]) for r in table.live_rows()}


# --- SelectVictimsOnNode / DryRunPreemption ---------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "pod", "budgets", "expected", "statuses"),
    [
        pytest.param(
            [victim("p1", "node1", MID, LARGE), victim("p2", "node2", MID, LARGE)],
            preemptor(cpu="600m"),
            [],
            {},
            {"node1": ["Insufficient cpu"], "node2": ["Insufficient cpu"]},
            id="pod-does-not-fit-even-without-victims",
        ),
        pytest.param(
            [victim("p1", "node1", MID, LARGE), victim("p2", "node2", MID, LARGE)],
            preemptor(),
            [],
            {"node1": (["p1"], 0), "node2": (["p2"], 0)},
            {},
            id="fits-on-both-nodes-when-lower-priority-pods-go",
        ),
        pytest.param(
            [victim("p1", "node1", HIGH, LARGE), victim("p2", "node2", MID, LARGE)],
            preemptor(),
            [],
            {"node2": (["p2"], 0)},
            {"node1": [NO_VICTIMS]},
            id="equal-priority-pods-are-never-victims",
        ),
        pytest.param(
            [
                victim("p1.1", "node1", LOW, SMALL),
                victim("p1.2", "node1", MID, LARGE),
                victim("p2", "node2", VERY_HIGH, LARGE),
            ],
            preemptor(),
            [],
            {"node1": (["p1.2"], 0)},
            {"node2": [NO_VICTIMS]},
            id="lower-priority-pod-reprieved-when-a-bigger-one-makes-room",
        ),
        pytest.param(
            [
                victim("p1.1", "node1", LOW, SMALL),
                victim("p1.2", "node1", MID, SMALL),
                victim("p1.3", "node1", LOW, SMALL),
                victim("p1.4", "node1", MID, SMALL),
            ],
            preemptor(),
            [],
            # 400m used, 300m wanted: two must go; mid-priority pods are reprieved first.
            {"node1": (["p1.1", "p1.3"], 0)},
            {"node2": [NO_VICTIMS]},
            id="reprieve-highest-priority-first",
        ),
        pytest.param(
            [
                victim("p1.1", "node1", MID, SMALL, start="2024-01-01T00:00:02Z"),
                victim("p1.2", "node1", MID, SMALL, start="2024-01-01T00:00:01Z"),
                victim("p1.3", "node1", MID, SMALL, start="2024-01-01T00:00:03Z"),
            ],
            preemptor(cpu="400m"),
            [],
            # 300m used, 400m wanted: two go; the longest running (p1.2) is reprieved.
            {"node1": (["p1.1", "p1.3"], 0)},
            {"node2": [NO_VICTIMS]},
            id="equal-priority-earliest-start-reprieved-first",
        ),
        pytest.param(
            [
                victim("a", "node1", MID, SMALL, app="foo"),
                victim("b", "node1", MID, SMALL, app="foo"),
            ],
            preemptor(cpu="500m"),
            [budget(1)],
            # Equal importance: the violating pod (tried first) stays first.
            {"node1": (["b", "a"], 1)},
            {"node2": [NO_VICTIMS]},
            id="one-of-two-pods-under-a-pdb-allowing-one-violates",
        ),
        pytest.param(
            [
                victim("a", "node1", MID, SMALL, app="foo"),
                victim("b", "node1", MID, SMALL, app="foo"),
            ],
            preemptor(cpu="500m"),
            [budget(1, disrupted=["a"])],
            {"node1": (["a", "b"], 0)},
            {"node2": [NO_VICTIMS]},
            id="pods-already-disrupted-do-not-count",
        ),
        pytest.param(
            [
                victim("a", "node1", LOW, SMALL, app="foo"),
                victim("b", "node1", MID, SMALL),
                victim("c", "node1", LOW, SMALL),
            ],
            preemptor(cpu="400m"),
            [budget(0)],
            # 300m used, 400m wanted: two go. The PDB-covered pod is reprieved first although
            # its priority is lowest.
            {"node1": (["b", "c"], 0)},
            {"node2": [NO_VICTIMS]},
            id="pdb-violating-pods-are-reprieved-first",
        ),
        pytest.param(
            [victim("a", "node1", MID, SMALL, app="foo")],
            preemptor(cpu="500m"),
            [budget(0, app="bar")],
            {"node1": (["a"], 0)},
            {"node2": [NO_VICTIMS]},
            id="pdb-of-another-selector-does-not-apply",
        ),
    ],
)
def test_dry_run(
    pods: list[JSON],
    pod: PodInfo,
    budgets: list[DisruptionBudget],
    expected: dict[str, tuple[list[str], int]],
    statuses: dict[str, list[str]],
) -> None:
    """Candidates (victims most important first, PDB violations) and why other nodes are out;
    the table is left as it was."""
    table = cluster(pods)
    before = snapshot(table)
    rows = table.order()
    found, why = dry_run(pod, table, rows, FitCheck(table), budgets, 0, rows.size)
    assert {c.node: (names(c.victims), c.pdb_violations) for c in found} == expected
    assert {n: list(s.reasons) for n, s in why.items()} == statuses
    assert snapshot(table) == before
    for row in table.live_rows():
        assert table.requested[int(row), 0] == sum(
            p.requests.get("cpu", 0) for p in table.pods[int(row)].values()
        )


@pytest.mark.parametrize(
    "big",
    [
        pytest.param(
            make_pod("big")
            .node("node1")
            .priority(MID)
            .req(cpu="10m")
            .pod_requests({"cpu": "300m"}),
            id="pod-level-requests",
        ),
        pytest.param(
            make_pod("big")
            .node("node1")
            .priority(MID)
            .req(cpu="100m")
            .container_status("c", allocated={"cpu": "300m"}),
            id="resize-down-not-yet-allocated",
        ),
    ],
)
@pytest.mark.parametrize("shortcut", [False, True], ids=["checked", "predicted"])
def test_victims_free_their_effective_requests(big: Any, shortcut: bool) -> None:
    """A victim frees what it counts on its node (its pod-level requests, or during a resize
    the larger of spec and status), in the simulation and in the resource arithmetic alike:
    here only the 300m pod makes room, so the smaller, lower-priority one is reprieved."""
    table = cluster([big.obj_(), victim("small", "node1", LOW, "100m")], ("node1",))
    row = table.row_of["node1"]
    assert table.requested[row, 0] == 400
    pod = preemptor(cpu="300m")
    fit = default_preemption.ResourceFit.of(pod, table) if shortcut else None
    found, why = dry_run(pod, table, table.order(), FitCheck(table), [], 0, 1, fit=fit)
    assert ([(c.node, names(c.victims)) for c in found], why) == ([("node1", ["big"])], {})
    assert table.requested[row, 0] == 400


def test_select_victims_restores_the_table_when_the_pod_cannot_fit() -> None:
    """Removing every lower-priority pod is undone even when the node is no candidate."""
    table = cluster([victim("p1", "node1", MID, LARGE)])
    row = table.row_of["node1"]
    generation_before = snapshot(table)
    victims, violations, status = select_victims(
        preemptor(cpu="600m"), table, row, FitCheck(table), []
    )
    assert (victims, violations) == ([], 0)
    assert status is not None and status.reasons == ("Insufficient cpu",)
    assert snapshot(table) == generation_before
    assert table.requested[row, 0] == 300


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
    wanted = args.num_candidates(potential)
    candidates, _ = dry_run(preemptor(), table, rows, check, [], offset, wanted)
    assert len(candidates) == found
    expected_first = table.node(int(rows[offset % rows.size])).name
    assert candidates[0].node == expected_first
    assert check.calls == 2 * tried  # once without all victims, once per reprieve


def test_non_violating_candidates_are_preferred_and_searched_for() -> None:
    """Dry run goes past the wanted count until it has a candidate without PDB violations, and
    lists those first."""
    table = cluster(
        [
            victim("a", "node1", LOW, "500m", app="foo"),
            victim("b", "node2", LOW, "500m", app="foo"),
            victim("c", "node3", LOW, "500m"),
        ],
        ("node1", "node2", "node3"),
    )
    found, _ = dry_run(preemptor(), table, table.order(), FitCheck(table), [budget(0)], 0, 1)
    assert [(c.node, c.pdb_violations) for c in found] == [("node3", 0), ("node1", 1), ("node2", 1)]


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
    assert args.num_candidates(count) == expected


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        pytest.param({}, None, id="defaults"),
        pytest.param(
            {"minCandidateNodesPercentage": 101},
            "minCandidateNodesPercentage: must be in the range [0, 100]",
            id="percentage-too-large",
        ),
        pytest.param(
            {"minCandidateNodesAbsolute": -1},
            "minCandidateNodesAbsolute: must be non-negative",
            id="negative-absolute",
        ),
        pytest.param(
            {"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0},
            "minCandidateNodesPercentage, minCandidateNodesAbsolute: "
            "cannot both be zero at the same time",
            id="both-zero",
        ),
        pytest.param({"bogus": 1}, "unknown field(s) bogus", id="unknown-field"),
    ],
)
def test_args(args: JSON, errors: str | None) -> None:
    """DefaultPreemptionArgs defaults and validation, as upstream's validation."""
    if errors is None:
        plugin = default_preemption.new(args, cast(Handle, None))
        assert plugin.args == PreemptionArgs(10, 100)
        return
    with pytest.raises(ValueError, match="^" + re.escape(errors)):
        default_preemption.new(args, cast(Handle, None))


# --- pickOneNodeForPreemption -----------------------------------------------------------------


def cand(node: str, *victims: tuple[int, str], violations: int = 0) -> Candidate:
    """A candidate with victims given as (priority, start time), most important first."""
    pods = tuple(
        compile_pod(
            make_pod(f"{node}-v{i}").priority(p).obj_()
            | ({"status": {"startTime": t}} if t else {})
        )
        for i, (p, t) in enumerate(victims)
    )
    return Candidate(node, 0, pods, violations)


T1, T2, T3 = "2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z", "2024-01-01T00:00:03Z"


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        pytest.param(
            [cand("node1", (MID, T1), violations=1), cand("node2", (HIGH, T1), (HIGH, T1))],
            "node2",
            id="fewest-pdb-violations-first",
        ),
        pytest.param(
            [cand("node1", (MID, T1)), cand("node2", (LOW, T1), (LOW, T1)), cand("n3", (MID, T1))],
            "node2",
            id="lowest-highest-priority-victim",
        ),
        pytest.param(
            [
                cand("node1", (MID, T1), (MID, T1), (LOW, T1)),
                cand("node2", (MID, T1), (LOW, T1), (LOW, T1)),
                cand("node3", (MID, T1), (MID, T1), (MID, T1)),
            ],
            "node2",
            id="same-highest-then-smallest-sum",
        ),
        pytest.param(
            [
                cand("node1", (MID, T1), (NEG, T1), (NEG, T1)),
                cand("node2", (MID, T1), (NEG, T1)),
            ],
            "node2",
            id="sum-is-of-shifted-priorities-so-more-negative-pods-cost-more",
        ),
        pytest.param(
            [
                cand("node1", (MID, T1), (MID - 50, T1)),
                cand("node2", (MID, T1), (LOW, T1)),
            ],
            "node2",
            id="same-count-smaller-sum",
        ),
        pytest.param(
            [
                # Shifted sums equal: (100 + 2^31) = (100 + 2^31) + (-2^31 + 2^31).
                cand("node1", (MID, T1), (-(2**31), T1)),
                cand("node2", (MID, T1)),
            ],
            "node2",
            id="same-sum-fewest-victims",
        ),
        pytest.param(
            [cand("node1", (MID, T1)), cand("node2", (MID, T3)), cand("node3", (MID, T2))],
            "node2",
            id="same-everything-latest-start",
        ),
        pytest.param(
            [
                cand("node1", (MID, T3), (MID, T1), (LOW, T3)),
                cand("node2", (MID, T2), (MID, T2), (LOW, T1)),
            ],
            "node2",
            id="latest-of-the-earliest-start-among-top-priority-victims",
        ),
        pytest.param(
            [cand("node1", (MID, "")), cand("node2", (MID, T3))],
            "node1",
            id="not-started-counts-as-now",
        ),
        pytest.param(
            [cand("node1", (MID, T1)), cand("node2", (MID, T1))], "node1", id="ties-first-wins"
        ),
    ],
)
def test_pick_one(candidates: list[Candidate], expected: str) -> None:
    """Upstream's pickOneNodeForPreemption criteria, each only breaking the previous ties."""
    assert pick_one(candidates).node == expected


# --- PDB grouping ------------------------------------------------------------------------------


def test_split_by_budget_counts_down_in_order() -> None:
    """The budget allows one disruption: the first covered pod fits in it, the second violates;
    pods without labels or in another namespace never match."""
    pods = [
        compile_pod(victim("a", "n", LOW, app="foo")),
        compile_pod(victim("b", "n", LOW, app="foo")),
        compile_pod(victim("c", "n", LOW)),
        compile_pod(make_pod("d").namespace("other").label("app", "foo").obj_()),
    ]
    violating, fine = split_by_budget(pods, [budget(1)])
    assert (names(violating), names(fine)) == (["b"], ["a", "c", "d"])


def test_empty_pdb_selector_matches_nothing() -> None:
    """Upstream: a PDB with a nil or empty selector covers no pod."""
    empty = compile_pdb({"metadata": {"namespace": "default"}, "spec": {"selector": {}}})
    missing = compile_pdb({"metadata": {"namespace": "default"}, "spec": {}})
    pod = compile_pod(victim("a", "n", LOW, app="foo"))
    assert not empty.covers(pod) and not missing.covers(pod)


# --- eligibility and the PostFilter result ------------------------------------------------------


def diagnosis_for(table: NodeTable, unresolvable: Sequence[str] = ()) -> Diagnosis:
    return Diagnosis(
        total_nodes=len(table), unresolvable_rows={table.row_of[n] for n in unresolvable}
    )


def post_filter(
    plugin: DefaultPreemption, pod: PodInfo, table: NodeTable, diagnosis: Diagnosis
) -> Any:
    return plugin.post_filter(CycleState(), pod, table, diagnosis, FitCheck(table))


def test_preemption_policy_never_is_not_eligible() -> None:
    table = cluster([victim("p1", "node1", LOW, LARGE)])
    plugin = DefaultPreemption(PreemptionArgs(), None, random.Random(0))
    result = post_filter(plugin, preemptor(preemptionPolicy="Never"), table, diagnosis_for(table))
    assert result.status == Status(
        Code.UNSCHEDULABLE, ("preemption: " + NEVER,), "DefaultPreemption"
    )


def test_terminating_victim_on_nominated_node_blocks_another_preemption() -> None:
    """Once victims are chosen, the nominated node counts as draining until they are gone."""
    table = cluster([victim("p1", "node1", LOW, LARGE), victim("p2", "node2", LOW, LARGE)])
    plugin = DefaultPreemption(PreemptionArgs(), None, random.Random(0))
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
    plugin = DefaultPreemption(PreemptionArgs(), None, random.Random(0))
    assert plugin.ineligible(preemptor(), table, diagnosis_for(table)) == ""
    nominated = preemptor()
    nominated.nominated_node_name = "node1"
    assert plugin.ineligible(nominated, table, diagnosis_for(table)) == TERMINATING


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
    plugin = DefaultPreemption(PreemptionArgs(), None, random.Random(0))
    result = post_filter(plugin, preemptor(cpu="600m"), table, diagnosis_for(table, unresolvable))
    assert result.status is not None
    assert result.status.message == "preemption: " + message
    assert result.clear_nomination


def test_potential_rows_follow_prefilter_status() -> None:
    """A PreFilter rejection applies to every node: resolvable = all are candidates."""
    table = cluster([])
    diagnosis = diagnosis_for(table)
    diagnosis.pre_filter = Status.unschedulable("x")
    assert potential_rows(table, diagnosis).size == 2
    diagnosis.pre_filter = Status.unschedulable("x", resolvable=False)
    assert potential_rows(table, diagnosis).size == 0


def test_fit_error_sorts_rendered_counts() -> None:
    statuses = {f"n{i}": Status.unschedulable("Insufficient cpu") for i in range(10)}
    assert fit_error(12, statuses) == (
        f"0/12 nodes are available: 10 Insufficient cpu, 2 {NOT_HELPFUL}."
    )


class PreemptingHandle:
    """framework.PreemptionHandle recording what it was asked to do."""

    def __init__(self, budgets: Sequence[DisruptionBudget] = ()) -> None:
        self.budgets = list(budgets)
        self.preempted: list[tuple[str, str, str]] = []

    async def bind(self, pod: PodInfo, node: str) -> None:
        pass

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        self.preempted.append((preemptor.key, victim.key, node))

    def disruption_budgets(self) -> Sequence[DisruptionBudget]:
        return self.budgets


async def test_execute_deletes_victims_through_the_handle() -> None:
    """The result's execute() preempts each victim not already terminating."""
    terminating = victim("p1.2", "node1", LOW, SMALL)
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    table = cluster([victim("p1.1", "node1", LOW, LARGE), terminating], ("node1",))
    handle = PreemptingHandle()
    plugin = DefaultPreemption(PreemptionArgs(), handle, random.Random(0))
    result = post_filter(plugin, preemptor(cpu="500m"), table, diagnosis_for(table))
    assert result.status is None and result.nominated_node == "node1"
    assert sorted(names(result.victims)) == ["p1.1", "p1.2"]
    assert result.execute is not None
    await result.execute()
    assert handle.preempted == [("default/preemptor", "default/p1.1", "node1")]


async def test_success_message_names_the_node_and_counts_every_victim() -> None:
    """Success carries v1.37's "found a potential placement" text; the count is of every
    victim chosen, the already terminating one included (upstream's len(Victims().Pods))."""
    terminating = victim("p1.2", "node1", LOW, SMALL)
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    table = cluster([victim("p1.1", "node1", LOW, LARGE), terminating], ("node1",))
    plugin = DefaultPreemption(PreemptionArgs(), PreemptingHandle(), random.Random(0))
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
    assert world.scheduler.nominated == {"uid-high": "n0000"}
    # Both nodes empty now: the nominated one is tried first and taken without scoring.
    world.cache.remove_pod("uid-low")
    world.cache.remove_pod("uid-mid")
    world.queue.move_all("AssignedPodDelete")
    world.clock.now += 60
    entry = world.queue.pop_nowait()
    assert entry is not None
    again = world.scheduler.schedule_one(entry)
    assert again.node == "n0000"
    assert world.scheduler.nominated == {}
    await world.scheduler.drain()


async def test_a_failed_bind_keeps_the_nomination() -> None:
    """A nominated pod whose bind fails keeps its nominatedNodeName: berth clears it only when
    preemption finds no candidate, where v1.35+ clears it on every failure that does not
    nominate (pins today's behaviour; changes with #12)."""
    world = World(nodes(1, cpu="2"))
    world.bound(running("low", "n0000", LOW, "2"))
    nominations: list[tuple[str, str]] = []
    world.scheduler._nominate = lambda pod, node: nominations.append((pod.key, node))
    assert world.schedule(pending("high", HIGH, "2")).nominated == "n0000"
    world.cache.remove_pod("uid-low")
    world.queue.move_all("AssignedPodDelete")
    world.clock.now += 60
    world.handle.fail = RuntimeError("connection reset")
    entry = world.queue.pop_nowait()
    assert entry is not None
    assert world.scheduler.schedule_one(entry).node == "n0000"
    await world.scheduler.drain()
    assert world.reporter.events[-1][3] == "SchedulerError"
    assert nominations == [("default/high", "n0000")]


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


def test_default_pre_enqueue_is_scheduling_gates_alone() -> None:
    """DefaultPreemption has no PreEnqueue in berth (the preemptor waits unschedulable for its
    victims instead), so the default preEnqueue list is SchedulingGates alone where upstream's
    is SchedulingGates, DefaultPreemption (pins today's behaviour; changes with #11)."""
    world = World(nodes(1))
    assert [p.name for p in world.scheduler.profiles[NAME].pre_enqueue] == ["SchedulingGates"]


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
    assert isinstance(plugin, DefaultPreemption) and plugin._memos, "the outcomes were kept"
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


# --- the resource shortcuts (ResourceFit) ---------------------------------------------------


class BlockingCheck(FitCheck):
    """NodeResourcesFit, and a filter of another kind: a node holding a pod called `blocker`
    is out (monotone, as in-tree filters are, but invisible to ResourceFit)."""

    def __call__(self, pod: PodInfo, row: int) -> Status | None:
        if any(p.name == "blocker" for p in self.table.pods[row].values()):
            self.calls += 1
            return Status.unschedulable("blocked")
        return super().__call__(pod, row)


def random_cluster(seed: int) -> tuple[NodeTable, list[DisruptionBudget], PodInfo]:
    rng = random.Random(seed)
    node_names = [f"node{i}" for i in range(12)]
    pods = []
    for i in range(60):
        name = "blocker" if i == 7 else f"p{i}"
        cpu = rng.choice(["50m", "100m", "150m", "250m"])
        start = f"2024-01-01T00:00:{rng.randrange(60):02d}Z"
        pods.append(
            victim(
                name,
                rng.choice(node_names),
                rng.choice([LOW, MID, HIGH]),
                cpu,
                start,
                app=rng.choice(["foo", "bar"]),
            )
        )
    table = build_table([make_node(n).capacity(cpu="1").obj_() for n in node_names], pods)
    budgets = [budget(rng.randrange(3), app="foo")] if rng.random() < 0.5 else []
    return (
        table,
        budgets,
        preemptor(
            cpu=rng.choice(["300m", "600m", "900m"]),
            priority=VERY_HIGH if rng.random() < 0.5 else HIGH,
        ),
    )


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("check_kind", [FitCheck, BlockingCheck], ids=["fit", "blocking"])
def test_resource_shortcuts_change_nothing_but_the_cost(seed: int, check_kind: type) -> None:
    """With NodeResourcesFit known to be a filter, the dry run finds the same candidates,
    victims and reasons as checking pod by pod, with no more checks, and restores the table."""
    table, budgets, pod = random_cluster(seed)
    before = snapshot(table)
    rows = table.order()
    slow_check, fast_check = check_kind(table), check_kind(table)
    slow = dry_run(pod, table, rows, slow_check, budgets, 0, rows.size)
    fit = default_preemption.ResourceFit.of(pod, table)
    fast = dry_run(pod, table, rows, fast_check, budgets, 0, rows.size, fit=fit)

    (fast_found, fast_why), (slow_found, slow_why) = summary(fast), summary(slow)
    assert fast_found == slow_found
    assert fast_why.keys() == slow_why.keys()
    if check_kind is FitCheck:
        # With another filter, a node ruled out by the resource arithmetic may name
        # NodeResourcesFit's reason where the first failing filter named its own.
        assert fast_why == slow_why
    assert fast_check.calls <= slow_check.calls
    assert snapshot(table) == before


def test_shortcut_checks_each_candidate_node_once() -> None:
    """Upstream PreemptionBasic's shape: a full node of equal low-priority pods costs one
    check, where pod by pod it costs one per pod plus one."""
    table = cluster([victim(f"p{i}", "node1", LOW, "100m") for i in range(5)], ("node1",))
    pod = preemptor(cpu="250m")
    check = FitCheck(table)
    found, _ = dry_run(
        pod,
        table,
        table.order(),
        check,
        [],
        0,
        1,
        fit=default_preemption.ResourceFit.of(pod, table),
    )
    assert [len(c.victims) for c in found] == [3]
    assert check.calls == 1


def test_shortcut_rejects_a_node_that_even_empty_cannot_hold_the_pod() -> None:
    """Removing every lower-priority pod would not free enough: no simulation, no check."""
    table = cluster([victim("p1", "node1", LOW, "100m"), victim("p2", "node1", HIGH, "300m")])
    pod = preemptor(cpu="300m")
    check = FitCheck(table)
    row = table.row_of["node1"]
    victims, _, status = select_victims(
        pod, table, row, check, [], default_preemption.ResourceFit.of(pod, table)
    )
    assert victims == [] and status is not None and status.reasons == ("Insufficient cpu",)
    assert check.calls == 0


class ManyCheck(BlockingCheck):
    """BlockingCheck that also offers the scheduler's vectorized `many(pod, rows)`: each row
    judged on its own pods alone (row-local), as the real check guarantees."""

    def __init__(self, table: NodeTable) -> None:
        super().__init__(table)
        self.passes = 0

    def many(self, pod: PodInfo, rows: Sequence[int]) -> set[int]:
        self.passes += 1
        calls = self.calls
        passed = {row for row in rows if BlockingCheck.__call__(self, pod, row) is None}
        self.calls = calls  # one vectorized pass, not a check per row
        return passed


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("wanted", [1, 3, 100])
def test_chunked_verification_finds_what_one_by_one_finds(seed: int, wanted: int) -> None:
    """Verifying the predicted victims of many nodes in one pass (`many`) gives the same
    candidates, victims, violations and reasons as the one-by-one dry run, stops at the same
    node, and restores the table."""
    table, budgets, pod = random_cluster(seed)
    before = snapshot(table)
    rows = table.order()
    fit = default_preemption.ResourceFit.of(pod, table)
    slow = dry_run(pod, table, rows, BlockingCheck(table), budgets, 5, wanted, fit=fit)
    chunked_check = ManyCheck(table)
    fast = dry_run(pod, table, rows, chunked_check, budgets, 5, wanted, fit=fit)
    assert summary(fast) == summary(slow)
    assert snapshot(table) == before


def test_chunked_verification_needs_no_single_row_check_when_predictions_hold() -> None:
    """PreemptionBasic's shape on many nodes: one vectorized pass, no per-node checks."""
    nodes = [f"node{i}" for i in range(40)]
    pods = [victim(f"p{n}-{i}", n, LOW, "100m") for n in nodes for i in range(5)]
    table = cluster(pods, tuple(nodes))
    pod = preemptor(cpu="250m")
    check = ManyCheck(table)
    found, _ = dry_run(
        pod,
        table,
        table.order(),
        check,
        [],
        0,
        10,
        fit=default_preemption.ResourceFit.of(pod, table),
    )
    assert len(found) == 10 and all(len(c.victims) == 3 for c in found)
    assert (check.calls, check.passes) == (0, 1)


# --- outcomes kept between dry runs (RowMemo) --------------------------------------------------


class StampedCheck(ManyCheck):
    """ManyCheck as the scheduler offers it for row-local filters: pods `nominated` to a row
    (priority >= the preemptor's) count there while it is checked, and `stamp(row)` is the
    row's generation with those pods."""

    def __init__(self, table: NodeTable) -> None:
        super().__init__(table)
        self.by_row: dict[int, list[PodInfo]] = {}

    @contextlib.contextmanager
    def _counting_nominated(self, rows: Sequence[int]) -> Iterator[None]:
        added = [(r, p) for r in rows for p in self.by_row.get(r, ())]
        with self.table.trial():
            for r, p in added:
                self.table.add_pod(r, p)
            try:
                yield
            finally:
                for r, p in added:
                    self.table.remove_pod(r, p)

    def __call__(self, pod: PodInfo, row: int) -> Status | None:
        with self._counting_nominated([row]):
            return super().__call__(pod, row)

    def many(self, pod: PodInfo, rows: Sequence[int]) -> set[int]:
        with self._counting_nominated(rows):
            return super().many(pod, rows)

    def nominated(self, row: int) -> Sequence[PodInfo]:
        return self.by_row.get(row, ())

    def stamp(self, row: int) -> Any:
        return int(self.table.generation[row]), tuple(p.uid for p in self.by_row.get(row, ()))


def distinct_cluster(seed: int) -> tuple[NodeTable, list[DisruptionBudget], PodInfo]:
    """random_cluster with a distinct start time per pod: no two pods are equally important,
    so the victims on a node do not depend on the order its pods are listed in."""
    table, budgets, pod = random_cluster(seed)
    for i, row in enumerate(table.live_rows().tolist()):
        for j, old in enumerate(list(table.pods[row].values())):
            raw = dict(old.raw, status={"startTime": f"2024-01-01T{i:02d}:{j:02d}:00Z"})
            table.remove_pod(row, old)
            table.add_pod(row, compile_pod(raw))
    return table, budgets, pod


@pytest.mark.parametrize("seed", range(30))
def test_kept_outcomes_match_a_fresh_dry_run_as_the_cluster_changes(seed: int) -> None:
    """A dry run that takes kept outcomes for the rows whose stamp did not move finds the same
    candidates, victims and reasons as a fresh one, while pods come and go and pods are
    nominated; and a second dry run over an unchanged cluster tries no node at all."""
    table, budgets, pod = distinct_cluster(seed)
    rng = random.Random(seed)
    rows = table.order()
    fit = default_preemption.ResourceFit.of(pod, table)
    kept_check = StampedCheck(table)
    memo = default_preemption.RowMemo(kept_check.stamp)
    for step in range(15):
        row = int(rng.choice(rows.tolist()))
        change = rng.choice(["add", "remove", "nominate", "unnominate", "none"])
        if change == "add":
            raw = victim(f"new{step}", table.node(row).name, rng.choice([LOW, MID]), "100m")
            raw["status"] = {"startTime": f"2024-02-01T00:00:{step:02d}Z"}
            table.add_pod(row, compile_pod(raw))
        elif change == "remove" and table.pods[row]:
            table.remove_pod(row, rng.choice(list(table.pods[row].values())))
        elif change == "nominate":
            other = compile_pod(
                make_pod(f"nominated{step}").priority(pod.priority).req(cpu="100m").obj_()
            )
            kept_check.by_row.setdefault(row, []).append(other)
        elif change == "unnominate":
            kept_check.by_row.pop(row, None)
        fresh_check = StampedCheck(table)
        fresh_check.by_row = kept_check.by_row
        offset, wanted = rng.randrange(rows.size), rng.choice([1, 3, 100])
        fresh = dry_run(pod, table, rows, fresh_check, budgets, offset, wanted, fit=fit)
        kept = dry_run(pod, table, rows, kept_check, budgets, offset, wanted, fit=fit, memo=memo)
        assert summary(kept) == summary(fresh)
    again = dry_run(pod, table, rows, kept_check, budgets, 0, rows.size, fit=fit, memo=memo)
    cost = kept_check.calls, kept_check.passes
    once_more = dry_run(pod, table, rows, kept_check, budgets, 0, rows.size, fit=fit, memo=memo)
    assert [c.node for c in once_more[0]] == [c.node for c in again[0]]
    assert (kept_check.calls, kept_check.passes) == cost


def test_prediction_counts_the_pods_nominated_to_a_node() -> None:
    """The room a nominated pod holds is taken off before predicting who comes back, so the
    prediction holds and one vectorized pass confirms it (no pod-by-pod checks)."""
    table = build_table(
        [make_node("node1").capacity(cpu="1").obj_()],
        [victim(f"p{i}", "node1", LOW, "100m", f"2024-01-01T00:00:0{i}Z") for i in range(8)],
    )
    pod = preemptor(cpu="300m")
    check = StampedCheck(table)
    nominated = compile_pod(make_pod("waiting").priority(HIGH).req(cpu="300m").obj_())
    check.by_row[table.row_of["node1"]] = [nominated]
    fit = default_preemption.ResourceFit.of(pod, table, check.nominated)
    found, _ = dry_run(pod, table, table.order(), check, [], 0, 1, fit=fit)
    # 1000m - 300m held - 300m wanted leaves room for four of the eight: the latest four go.
    assert [names(c.victims) for c in found] == [["p4", "p5", "p6", "p7"]]
    assert (check.calls, check.passes) == (0, 1)
    one_by_one = StampedCheck(table)
    one_by_one.by_row = check.by_row
    slow, _ = dry_run(pod, table, table.order(), one_by_one, [], 0, 1)
    assert [names(c.victims) for c in slow] == [["p4", "p5", "p6", "p7"]]
