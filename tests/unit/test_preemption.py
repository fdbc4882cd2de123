"""The preemption evaluator's pure parts, as upstream's preemption_test.go and the engine half of
default_preemption_test.go: victim selection on a node (TestSelectNodesForPreemption), the dry
run, the choice of node (TestPickOneNodeForPreemption), PDB grouping, the FitError text, and
the shortcuts that predict NodeResourcesFit (ResourceFit) and keep outcomes (RowMemo), each
checked against the plain one-by-one dry run."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from plugins import node_resources_fit
from plugins.node_resources_fit import FitArgs, NodeResourcesFit
from scheduler.framework import CycleState, Diagnosis, NodeCheck, Status
from scheduler.model import DisruptionBudget, PodInfo, compile_pdb, compile_pod
from scheduler.preemption import (
    NO_VICTIMS,
    NOT_HELPFUL,
    Candidate,
    ResourceFit,
    ResourceRules,
    RowMemo,
    candidates_to_victims,
    dry_run_preemption,
    filter_pods_with_pdb_violation,
    fit_error,
    pick_one_node_for_preemption,
    potential_rows,
    select_candidate,
    select_victims_on_node,
)
from scheduler.snapshot import NodeTable
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table

# What plugins/default_preemption.py hands the evaluator.
RESOURCES = ResourceRules(
    node_resources_fit.NAME, node_resources_fit.fits, node_resources_fit.insufficient
)

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
    """The check the scheduler gives the plugin, with NodeResourcesFit as the only filter (as
    upstream's tests register it), counting its calls."""

    def __init__(self, table: NodeTable) -> None:
        self.table = table
        self.fit = NodeResourcesFit(FitArgs())
        self.calls = 0

    def __call__(self, pod: PodInfo, row: int) -> Status | None:
        self.calls += 1
        state = CycleState()
        self.fit.pre_filter(state, pod, self.table)
        result = self.fit.filter(state, pod, self.table, np.asarray([row]))
        if result.mask[0]:
            return None
        return Status.unschedulable(*(r.message for r in result.reasons if r.rejected[0]))

    def node_check(self) -> NodeCheck:
        """The NodeCheck the runtime builds around this filter."""
        return NodeCheck(self)


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
    found, why = dry_run_preemption(
        pod, table, rows, FitCheck(table).node_check(), budgets, 0, rows.size
    )
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
    fit = ResourceFit.of(pod, table, rules=RESOURCES) if shortcut else None
    found, why = dry_run_preemption(
        pod, table, table.order(), FitCheck(table).node_check(), [], 0, 1, fit=fit
    )
    assert ([(c.node, names(c.victims)) for c in found], why) == ([("node1", ["big"])], {})
    assert table.requested[row, 0] == 400


def test_select_victims_restores_the_table_when_the_pod_cannot_fit() -> None:
    """Removing every lower-priority pod is undone even when the node is no candidate."""
    table = cluster([victim("p1", "node1", MID, LARGE)])
    row = table.row_of["node1"]
    generation_before = snapshot(table)
    victims, violations, status = select_victims_on_node(
        preemptor(cpu="600m"), table, row, FitCheck(table).node_check(), []
    )
    assert (victims, violations) == ([], 0)
    assert status is not None and status.reasons == ("Insufficient cpu",)
    assert snapshot(table) == generation_before
    assert table.requested[row, 0] == 300


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
    found, _ = dry_run_preemption(
        preemptor(), table, table.order(), FitCheck(table).node_check(), [budget(0)], 0, 1
    )
    assert [(c.node, c.pdb_violations) for c in found] == [("node3", 0), ("node1", 1), ("node2", 1)]


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
    assert pick_one_node_for_preemption(candidates_to_victims(candidates)) == expected
    best = select_candidate(candidates)
    assert best is not None and best.node == expected


def test_select_candidate_of_none_or_one() -> None:
    """Upstream's SelectCandidate: no candidate, none chosen; a single one, that one."""
    only = cand("node1", (MID, T1))
    assert select_candidate([]) is None
    assert select_candidate([only]) is only
    assert pick_one_node_for_preemption({}) == ""


# --- PDB grouping ------------------------------------------------------------------------------


def test_pdb_violations_count_down_in_order() -> None:
    """The budget allows one disruption: the first covered pod fits in it, the second violates;
    pods without labels or in another namespace never match."""
    pods = [
        compile_pod(victim("a", "n", LOW, app="foo")),
        compile_pod(victim("b", "n", LOW, app="foo")),
        compile_pod(victim("c", "n", LOW)),
        compile_pod(make_pod("d").namespace("other").label("app", "foo").obj_()),
    ]
    violating, fine = filter_pods_with_pdb_violation(pods, [budget(1)])
    assert (names(violating), names(fine)) == (["b"], ["a", "c", "d"])


def test_empty_pdb_selector_matches_nothing() -> None:
    """Upstream: a PDB with a nil or empty selector covers no pod."""
    empty = compile_pdb({"metadata": {"namespace": "default"}, "spec": {"selector": {}}})
    missing = compile_pdb({"metadata": {"namespace": "default"}, "spec": {}})
    pod = compile_pod(victim("a", "n", LOW, app="foo"))
    assert not empty.covers(pod) and not missing.covers(pod)


def diagnosis_for(table: NodeTable, unresolvable: Sequence[str] = ()) -> Diagnosis:
    return Diagnosis(
        total_nodes=len(table), unresolvable_rows={table.row_of[n] for n in unresolvable}
    )


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
    slow = dry_run_preemption(pod, table, rows, slow_check.node_check(), budgets, 0, rows.size)
    fit = ResourceFit.of(pod, table, rules=RESOURCES)
    fast = dry_run_preemption(
        pod, table, rows, fast_check.node_check(), budgets, 0, rows.size, fit=fit
    )

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
    found, _ = dry_run_preemption(
        pod,
        table,
        table.order(),
        check.node_check(),
        [],
        0,
        1,
        fit=ResourceFit.of(pod, table, rules=RESOURCES),
    )
    assert [len(c.victims) for c in found] == [3]
    assert check.calls == 1


def test_shortcut_rejects_a_node_that_even_empty_cannot_hold_the_pod() -> None:
    """Removing every lower-priority pod would not free enough: no simulation, no check."""
    table = cluster([victim("p1", "node1", LOW, "100m"), victim("p2", "node1", HIGH, "300m")])
    pod = preemptor(cpu="300m")
    check = FitCheck(table)
    row = table.row_of["node1"]
    victims, _, status = select_victims_on_node(
        pod, table, row, check.node_check(), [], ResourceFit.of(pod, table, rules=RESOURCES)
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

    def node_check(self) -> NodeCheck:
        return NodeCheck(self, many=self.many)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("wanted", [1, 3, 100])
def test_chunked_verification_finds_what_one_by_one_finds(seed: int, wanted: int) -> None:
    """Verifying the predicted victims of many nodes in one pass (`many`) gives the same
    candidates, victims, violations and reasons as the one-by-one dry run, stops at the same
    node, and restores the table."""
    table, budgets, pod = random_cluster(seed)
    before = snapshot(table)
    rows = table.order()
    fit = ResourceFit.of(pod, table, rules=RESOURCES)
    slow = dry_run_preemption(
        pod, table, rows, BlockingCheck(table).node_check(), budgets, 5, wanted, fit=fit
    )
    chunked_check = ManyCheck(table)
    fast = dry_run_preemption(
        pod, table, rows, chunked_check.node_check(), budgets, 5, wanted, fit=fit
    )
    assert summary(fast) == summary(slow)
    assert snapshot(table) == before


def test_chunked_verification_needs_no_single_row_check_when_predictions_hold() -> None:
    """PreemptionBasic's shape on many nodes: one vectorized pass, no per-node checks."""
    nodes = [f"node{i}" for i in range(40)]
    pods = [victim(f"p{n}-{i}", n, LOW, "100m") for n in nodes for i in range(5)]
    table = cluster(pods, tuple(nodes))
    pod = preemptor(cpu="250m")
    check = ManyCheck(table)
    found, _ = dry_run_preemption(
        pod,
        table,
        table.order(),
        check.node_check(),
        [],
        0,
        10,
        fit=ResourceFit.of(pod, table, rules=RESOURCES),
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

    def node_check(self) -> NodeCheck:
        return NodeCheck(self, self.nominated, self.many, self.stamp)


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
    fit = ResourceFit.of(pod, table, rules=RESOURCES)
    kept_check = StampedCheck(table)
    memo = RowMemo(kept_check.stamp)
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
        fresh = dry_run_preemption(
            pod, table, rows, fresh_check.node_check(), budgets, offset, wanted, fit=fit
        )
        kept = dry_run_preemption(
            pod, table, rows, kept_check.node_check(), budgets, offset, wanted, fit=fit, memo=memo
        )
        assert summary(kept) == summary(fresh)
    again = dry_run_preemption(
        pod, table, rows, kept_check.node_check(), budgets, 0, rows.size, fit=fit, memo=memo
    )
    cost = kept_check.calls, kept_check.passes
    once_more = dry_run_preemption(
        pod, table, rows, kept_check.node_check(), budgets, 0, rows.size, fit=fit, memo=memo
    )
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
    fit = ResourceFit.of(pod, table, check.nominated, rules=RESOURCES)
    found, _ = dry_run_preemption(pod, table, table.order(), check.node_check(), [], 0, 1, fit=fit)
    # 1000m - 300m held - 300m wanted leaves room for four of the eight: the latest four go.
    assert [names(c.victims) for c in found] == [["p4", "p5", "p6", "p7"]]
    assert (check.calls, check.passes) == (0, 1)
    one_by_one = StampedCheck(table)
    one_by_one.by_row = check.by_row
    slow, _ = dry_run_preemption(pod, table, table.order(), one_by_one.node_check(), [], 0, 1)
    assert [names(c.victims) for c in slow] == [["p4", "p5", "p6", "p7"]]
