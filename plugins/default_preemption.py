"""DefaultPreemption: when no node fits a pod, find lower-priority pods whose removal would make
room, pick the node where that hurts least, delete those pods and nominate the node.

This mirrors upstream's defaultpreemption plugin and framework/preemption evaluator
(kubernetes v1.33):

1. The pod must be eligible: not `preemptionPolicy: Never`, and if it is already nominated to a
   node, that node must not still be draining lower-priority pods terminated by preemption
   (unless filters now call the nominated node unresolvable).
2. Candidates are the nodes rejected for resolvable reasons. From a random offset, nodes are
   dry-run until `max(minCandidateNodesPercentage% of them, minCandidateNodesAbsolute)`
   candidates are found, at least one of them without PDB violations.
3. On a node: remove every lower-priority pod; if the pod still does not fit, the node is out.
   Otherwise add the pods back, most important first, PDB-violating ones before the others,
   keeping each one that still lets the pod fit; the rest are the victims.
4. The node: fewest PDB violations, then the lowest highest-victim priority, the smallest sum of
   priorities, the fewest victims, the latest start among the highest-priority victims, first.

The scheduling-cycle part is pure: it simulates on the NodeTable (removing and re-adding pods,
restoring it exactly) and returns the victims. Deleting them goes into the result's `execute`,
which the scheduler runs asynchronously after the cycle.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scheduler.framework import (
    Code,
    CycleState,
    Diagnosis,
    Handle,
    NodeCheck,
    PostFilterResult,
    PreemptionHandle,
    Status,
)
from scheduler.model import DisruptionBudget, PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "DefaultPreemption"
PREFIX = "preemption: "
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
# Priorities are int32; adding 2^31 makes them all >= 0 so that a sum over more pods of negative
# priority is never smaller than a sum over fewer (upstream's minSumPrioritiesScoreFunc).
_SHIFT = 2**31
# A pod without status.startTime counts as started now, i.e. later than any real start time
# (upstream's GetPodStartTime); RFC 3339 UTC times compare correctly as strings.
_NOT_STARTED = "\uffff"

log = logging.getLogger("berth.preemption")


@dataclass(frozen=True)
class Candidate:
    """A node where preempting `victims` (most important first) lets the pod fit."""

    node: str
    row: int
    victims: tuple[PodInfo, ...]
    pdb_violations: int


class DefaultPreemption:
    name = NAME

    def __init__(
        self, args: PreemptionArgs, handle: Handle | None, rng: random.Random | None = None
    ) -> None:
        self.args = args
        self.handle = handle if isinstance(handle, PreemptionHandle) else None
        self._rng = rng or random.Random()
        # Victims chosen by this scheduler whose deletion may not be visible yet: they count as
        # terminating by preemption (upstream marks them with the DisruptionTarget condition).
        self._preempting: set[str] = set()

    # --- PostFilter ----------------------------------------------------------------------

    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        diagnosis: Diagnosis,
        check: NodeCheck,
    ) -> PostFilterResult:
        if reason := self.ineligible(pod, table, diagnosis):
            return PostFilterResult(Status.unschedulable(PREFIX + reason, plugin=NAME))
        potential = potential_rows(table, diagnosis)
        budgets = list(self.handle.disruption_budgets()) if self.handle is not None else []
        offset = self._rng.randrange(potential.size) if potential.size else 0
        wanted = self.args.num_candidates(int(potential.size))
        candidates, statuses = dry_run(pod, table, potential, check, budgets, offset, wanted)
        if not candidates:
            message = fit_error(len(table), statuses)
            return PostFilterResult(
                Status.unschedulable(PREFIX + message, plugin=NAME), clear_nomination=True
            )
        best = pick_one(candidates)
        self._preempting.update(v.uid for v in best.victims)
        if len(self._preempting) > 100_000:  # forget victims long gone
            live = {uid for row in table.live_rows() for uid in table.pods[int(row)]}
            self._preempting &= live
        return PostFilterResult(
            None,
            nominated_node=best.node,
            victims=best.victims,
            execute=(lambda: self._execute(pod, best)) if self.handle is not None else None,
        )

    def ineligible(self, pod: PodInfo, table: NodeTable, diagnosis: Diagnosis) -> str:
        """Upstream's PodEligibleToPreemptOthers: "" when the pod may preempt, else why not."""
        if (pod.raw.get("spec") or {}).get("preemptionPolicy") == "Never":
            return NEVER
        nominated = pod.nominated_node_name
        row = table.row_of.get(nominated) if nominated else None
        if row is None or row in diagnosis.unresolvable_rows or _prefilter_unresolvable(diagnosis):
            return ""
        for other in table.pods[row].values():
            if other.priority < pod.priority and self._terminating(other):
                return TERMINATING
        return ""

    def _terminating(self, pod: PodInfo) -> bool:
        """Terminating because a scheduler preempted it (DisruptionTarget with reason
        PreemptionByScheduler), or chosen by us and its deletion not yet seen."""
        if pod.uid in self._preempting:
            return True
        if not pod.deleting:
            return False
        for condition in (pod.raw.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "DisruptionTarget":
                return bool(
                    condition.get("status") == "True"
                    and condition.get("reason") == "PreemptionByScheduler"
                )
        return False

    async def _execute(self, preemptor: PodInfo, best: Candidate) -> None:
        """Delete the victims (in parallel); a failure frees the victim for another try."""
        assert self.handle is not None
        handle = self.handle

        async def one(victim: PodInfo) -> None:
            try:
                await handle.preempt(preemptor, victim, best.node)
            except Exception as err:
                self._preempting.discard(victim.uid)
                log.warning(
                    "preemption failed",
                    extra={"pod": preemptor.key, "victim": victim.key, "error": str(err)},
                )
                raise

        # Victims already being deleted need no API call (upstream skips them too).
        todo = [v for v in best.victims if not v.deleting]
        await asyncio.gather(*(one(v) for v in todo), return_exceptions=True)


# --- args --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreemptionArgs:
    """DefaultPreemptionArgs: dry-run at least this share (and at least this many) of the
    candidate nodes before choosing; upstream's defaults."""

    min_candidate_nodes_percentage: int = 10
    min_candidate_nodes_absolute: int = 100

    def validate(self) -> list[str]:
        errors = []
        if not 0 <= self.min_candidate_nodes_percentage <= 100:
            errors.append("minCandidateNodesPercentage: must be in the range [0, 100]")
        if self.min_candidate_nodes_absolute < 0:
            errors.append("minCandidateNodesAbsolute: must be non-negative")
        if self.min_candidate_nodes_percentage == 0 and self.min_candidate_nodes_absolute == 0:
            errors.append(
                "minCandidateNodesPercentage, minCandidateNodesAbsolute: "
                "cannot both be zero at the same time"
            )
        return errors

    def num_candidates(self, nodes: int) -> int:
        """Upstream's calculateNumCandidates: never more than there are nodes."""
        n = nodes * self.min_candidate_nodes_percentage // 100
        return min(max(n, self.min_candidate_nodes_absolute), nodes)


def new(args: Mapping[str, Any], handle: Handle) -> DefaultPreemption:
    known = {"minCandidateNodesPercentage", "minCandidateNodesAbsolute", "apiVersion", "kind"}
    if unknown := sorted(set(args) - known):
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    parsed = PreemptionArgs(
        int(args.get("minCandidateNodesPercentage", 10)),
        int(args.get("minCandidateNodesAbsolute", 100)),
    )
    if errors := parsed.validate():
        raise ValueError("; ".join(errors))
    return DefaultPreemption(parsed, handle)


# --- the pure core -----------------------------------------------------------------------


def potential_rows(table: NodeTable, diagnosis: Diagnosis) -> Rows:
    """Nodes where removing pods may help: those not rejected as unresolvable, in node-tree
    order (upstream's NodesForStatusCode(Unschedulable)). A PreFilter rejection applies to
    every node alike."""
    order = table.order()
    if diagnosis.pre_filter is not None:
        return order if diagnosis.pre_filter.code is Code.UNSCHEDULABLE else order[:0]
    if not diagnosis.unresolvable_rows:
        return order
    out = np.fromiter(diagnosis.unresolvable_rows, dtype=np.int64)
    return order[~np.isin(order, out)]


def importance(pod: PodInfo) -> tuple[int, str]:
    """Sort key, most important first: higher priority, then the earlier start
    (upstream's MoreImportantPod)."""
    return (-pod.priority, start_time(pod))


def start_time(pod: PodInfo) -> str:
    started = (pod.raw.get("status") or {}).get("startTime")
    return str(started) if started else _NOT_STARTED


def split_by_budget(
    pods: Sequence[PodInfo], budgets: Sequence[DisruptionBudget]
) -> tuple[list[PodInfo], list[PodInfo]]:
    """(violating, non-violating), each in the given order: a pod violates when deleting it,
    after the pods before it, takes a covering budget below zero disruptions allowed; pods the
    budget already lists as disrupted do not count (upstream's filterPodsWithPDBViolation)."""
    allowed = [b.disruptions_allowed for b in budgets]
    violating: list[PodInfo] = []
    fine: list[PodInfo] = []
    for pod in pods:
        violated = False
        for i, budget in enumerate(budgets):
            if not budget.covers(pod) or pod.name in budget.disrupted:
                continue
            allowed[i] -= 1
            if allowed[i] < 0:
                violated = True
        (violating if violated else fine).append(pod)
    return violating, fine


def select_victims(
    pod: PodInfo,
    table: NodeTable,
    row: int,
    check: NodeCheck,
    budgets: Sequence[DisruptionBudget],
) -> tuple[list[PodInfo], int, Status | None]:
    """The fewest pods to remove from `row` so that `pod` fits: (victims most important
    first, how many of them violate a PDB, None) or ([], 0, why not). The table is restored."""
    potential = [p for p in table.pods[row].values() if p.priority < pod.priority]
    if not potential:
        return [], 0, Status.unschedulable(NO_VICTIMS, plugin=NAME, resolvable=False)
    for p in potential:
        table.remove_pod(row, p)
    victims: list[PodInfo] = []
    try:
        if (status := check(pod, row)) is not None:
            return [], 0, status
        potential.sort(key=importance)
        violating, fine = split_by_budget(potential, budgets)
        violations = 0
        for group in (violating, fine):
            for p in group:
                table.add_pod(row, p)
                if check(pod, row) is not None:
                    table.remove_pod(row, p)
                    victims.append(p)
                    violations += group is violating
        if violating and fine:
            victims.sort(key=importance)
        return victims, violations, None
    finally:
        for p in potential:
            table.add_pod(row, p)  # a no-op for the pods already back


def dry_run(
    pod: PodInfo,
    table: NodeTable,
    rows: Rows,
    check: NodeCheck,
    budgets: Sequence[DisruptionBudget],
    offset: int,
    wanted: int,
) -> tuple[list[Candidate], dict[str, Status]]:
    """Try nodes from `offset` (wrapping) until `wanted` candidates are found, one of them
    without PDB violations; candidates without violations come first. Also returns, per node
    that cannot be a candidate, why (upstream's DryRunPreemption, run sequentially)."""
    fine: list[Candidate] = []
    violating: list[Candidate] = []
    statuses: dict[str, Status] = {}
    n = int(rows.size)
    for i in range(n):
        row = int(rows[(offset + i) % n])
        name = table.node(row).name
        victims, violations, status = select_victims(pod, table, row, check, budgets)
        if status is None and not victims:
            status = Status.error(f'expected at least one victim pod on node "{name}"')
        if status is not None:
            statuses[name] = status
            continue
        found = Candidate(name, row, tuple(victims), violations)
        (violating if violations else fine).append(found)
        if fine and len(fine) + len(violating) >= wanted:
            break
    return fine + violating, statuses


def pick_one(candidates: Sequence[Candidate]) -> Candidate:
    """Upstream's pickOneNodeForPreemption: each criterion in turn keeps the best-scoring
    candidates; the first one left wins."""
    criteria: tuple[Callable[[Candidate], Any], ...] = (
        lambda c: -c.pdb_violations,
        lambda c: -c.victims[0].priority,
        lambda c: -sum(v.priority + _SHIFT for v in c.victims),
        lambda c: -len(c.victims),
        lambda c: _earliest_top_start(c.victims),
    )
    left = list(candidates)
    for score in criteria:
        if len(left) == 1:
            break
        best = max(score(c) for c in left)
        left = [c for c in left if score(c) == best]
    return left[0]


def _earliest_top_start(victims: Iterable[PodInfo]) -> str:
    """The earliest start time among the highest-priority victims (upstream's
    GetEarliestPodStartTime); later is better."""
    pods = list(victims)
    top = max(p.priority for p in pods)
    return min(start_time(p) for p in pods if p.priority == top)


def fit_error(total: int, statuses: Mapping[str, Status]) -> str:
    """Upstream's FitError text over the dry run: each node's reasons counted, every node
    that was not tried (rejected as unresolvable) counted as "not helpful"."""
    counts: dict[str, int] = {}
    for status in statuses.values():
        for reason in status.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    absent = total - len(statuses)
    if absent > 0:
        counts[NOT_HELPFUL] = counts.get(NOT_HELPFUL, 0) + absent
    parts = sorted(f"{n} {reason}" for reason, n in counts.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."


def _prefilter_unresolvable(diagnosis: Diagnosis) -> bool:
    status = diagnosis.pre_filter
    return status is not None and status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
