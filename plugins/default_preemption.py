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

Each filter check in the dry run costs a full Filter pass on one row, and the dry run visits
at least 100 nodes, so two shortcuts keep the number of checks down without changing the
result. Both apply only when NodeResourcesFit is known to be a filter of the profile (it
rejected some node in this cycle), because they predict its verdict from the cpu, memory and
pods columns (never ignored by it), and a request that does not fit there fails every check:

- a node where even removing every lower-priority pod leaves too little cpu, memory or room
  for pods is out without a simulation (the first check of step 3 would fail);
- the pods that step 3 adds back one by one are first replayed on those columns alone, which
  says which of them cannot come back. The others are added back together and checked once:
  when the pod fits, each of them would have passed its own check in turn (filters only get
  stricter as pods are added to a node), so the victims are exactly the predicted ones. That
  monotonicity holds for the in-tree filters except required pod affinity, which more pods
  can satisfy, so such pods, and any failed verification, take the one-by-one path.

A burst of identical preemptors (a Deployment of high-priority pods) dry-runs hundreds of nodes
each, and between two of them only the node the previous one was nominated to has changed. When
the filters are row-local for the pod, a node's outcome depends only on its row, the pods
nominated to it, the pod's equivalence class and the PDBs, so outcomes are kept per class and
PDB set with the row's stamp (RowMemo), and a dry run tries only the nodes whose stamp moved.
`berth bench --in-memory --workload preemption --nodes 5000`: 100 ms per preemptor before,
13 ms after.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
# What a successful preemption adds to the pod's failure message since v1.37 (v1.33: nothing).
FOUND = "found a potential placement for pod on node {node}, preempting {victims} victims"
TERMINATING = "not eligible due to a terminating pod on the nominated node."
# Priorities are int32; adding 2^31 makes them all >= 0 so that a sum over more pods of negative
# priority is never smaller than a sum over fewer (upstream's minSumPrioritiesScoreFunc).
_SHIFT = 2**31
# A pod without status.startTime counts as started now, i.e. later than any real start time
# (upstream's GetPodStartTime); RFC 3339 UTC times compare correctly as strings.
_NOT_STARTED = "\uffff"

# Preemptor classes whose dry-run outcomes are kept (usually one or two are preempting at once).
MEMO_CLASSES = 8

log = logging.getLogger("berth.preemption")


@dataclass(frozen=True)
class Candidate:
    """A node where preempting `victims` (most important first) lets the pod fit."""

    node: str
    row: int
    victims: tuple[PodInfo, ...]
    pdb_violations: int

    @functools.cached_property
    def rank(self) -> tuple[Any, ...]:
        """Upstream's pickOneNodeForPreemption criteria in turn, each higher = better: fewest
        PDB violations, lowest highest-victim priority, smallest sum of priorities, fewest
        victims, latest start among the highest-priority victims."""
        return (
            -self.pdb_violations,
            -self.victims[0].priority,
            -sum(v.priority + _SHIFT for v in self.victims),
            -len(self.victims),
            _earliest_top_start(self.victims),
        )


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
        # Dry-run outcomes per row, by (pod class, PDBs): table.structure they belong to, and
        # row -> (stamp, outcome) (RowMemo).
        self._memos: OrderedDict[
            tuple[Any, ...], tuple[int, dict[int, tuple[Hashable, Candidate | Status]]]
        ] = OrderedDict()

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
        fit = None
        if RESOURCE_FILTER in diagnosis.by_plugin:
            fit = ResourceFit.of(pod, table, getattr(check, "nominated", None))
        memo = self._memo(pod, table, check, budgets)
        candidates, statuses = dry_run(
            pod, table, potential, check, budgets, offset, wanted, fit=fit, memo=memo
        )
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
            message=PREFIX + FOUND.format(node=best.node, victims=len(best.victims)),
        )

    def _memo(
        self, pod: PodInfo, table: NodeTable, check: NodeCheck, budgets: Sequence[DisruptionBudget]
    ) -> RowMemo | None:
        """The kept outcomes for the pod's class under these PDBs, when the check's verdicts
        depend on the rows alone (it offers `stamp`)."""
        stamp = getattr(check, "stamp", None)
        if stamp is None or getattr(check, "many", None) is None:
            return None
        key = (pod.class_key, tuple(budgets))
        kept = self._memos.get(key)
        if kept is None or kept[0] != table.structure:  # rows came or went: start over
            kept = (table.structure, {})
            self._memos[key] = kept
            if len(self._memos) > MEMO_CLASSES:
                self._memos.popitem(last=False)
        self._memos.move_to_end(key)
        return RowMemo(stamp, kept[1])

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

RESOURCE_FILTER = "NodeResourcesFit"
_TOO_MANY_PODS = "Too many pods"
_FIT_RESOURCES = ("cpu", "memory", "pods")  # checked by NodeResourcesFit whenever requested


@dataclass(frozen=True)
class ResourceFit:
    """What NodeResourcesFit checks that arithmetic can predict: the pod's cpu, memory and pods
    requests against a node's allocatable minus what its pods and the pods nominated to it
    request. Each is a necessary condition for passing the check, which counts them too."""

    columns: tuple[int, ...]  # NodeTable resource columns the pod requests
    names: tuple[str, ...]
    request: tuple[int, ...]  # the pod's request in those columns
    # The pods nominated to a row that the check counts there (NodeCheck.nominated).
    nominated: Callable[[int], Sequence[PodInfo]] | None = None
    # A dry run asks for the same pods' requests on every node it visits (a fifth of its time
    # in PreemptionBasic's shape); they are kept by uid, which holds for one PostFilter run
    # (a resize makes a new PodInfo, never in the middle of a cycle).
    _requests: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        pod: PodInfo,
        table: NodeTable,
        nominated: Callable[[int], Sequence[PodInfo]] | None = None,
    ) -> ResourceFit:
        vector = table.request_vector(pod)
        picked = [
            (table.resource_index[r], r)
            for r in _FIT_RESOURCES
            if r in table.resource_index and (r == "pods" or vector[table.resource_index[r]] > 0)
        ]
        return cls(
            tuple(c for c, _ in picked),
            tuple(r for _, r in picked),
            tuple(int(vector[c]) for c, _ in picked),
            nominated,
        )

    def free(self, table: NodeTable, row: int) -> list[int]:
        """What the node has left in those columns, the nominated pods counted there taken
        off (without them, a node full of nominated pods fails every prediction)."""
        columns = list(self.columns)
        left = [int(x) for x in table.allocatable[row, columns] - table.requested[row, columns]]
        for other in self.nominated(row) if self.nominated is not None else ():
            if other.uid not in table.pods[row]:
                left = [x - r for x, r in zip(left, self.requests(other), strict=True)]
        return left

    def requests(self, pod: PodInfo) -> tuple[int, ...]:
        """`pod`'s requests in the same columns."""
        found = self._requests.get(pod.uid)
        if found is None:
            found = tuple(1 if r == "pods" else pod.requests.get(r, 0) for r in self.names)
            self._requests[pod.uid] = found
        return found

    def short(self, free: Sequence[int]) -> list[str]:
        """The reasons NodeResourcesFit would give with `free` left on the node ([]: fits)."""
        return [
            _TOO_MANY_PODS if name == "pods" else f"Insufficient {name}"
            for name, need, left in zip(self.names, self.request, free, strict=True)
            if need > left
        ]


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
    fit: ResourceFit | None = None,
) -> tuple[list[PodInfo], int, Status | None]:
    """The fewest pods to remove from `row` so that `pod` fits: (victims most important
    first, how many of them violate a PDB, None) or ([], 0, why not). The table is restored.
    `fit`: NodeResourcesFit is a filter, so its verdict may be predicted (module docstring)."""
    plan = _plan(pod, table, row, budgets, fit)
    if isinstance(plan, Status):
        return [], 0, plan
    potential, order, mixed = plan.potential, plan.order, plan.mixed
    if plan.lost is not None:
        lost = plan.lost
        for p, _ in lost:
            table.remove_pod(row, p)
        try:
            status = check(pod, row)
        finally:
            for p, _ in lost:
                table.add_pod(row, p)
        if status is None:
            return plan.victims()
        if not plan.kept:  # that was the check with every candidate victim removed
            return [], 0, status
    for p in potential:
        table.remove_pod(row, p)
    victims = []
    try:
        if (status := check(pod, row)) is not None:
            return [], 0, status
        violations = 0
        for p, violates in order:
            table.add_pod(row, p)
            if check(pod, row) is not None:
                table.remove_pod(row, p)
                victims.append(p)
                violations += violates
        if mixed:
            victims.sort(key=importance)
        return victims, violations, None
    finally:
        for p in potential:
            table.add_pod(row, p)  # a no-op for the pods already back


@dataclass
class _Plan:
    """select_victims' first steps on one node: the lower-priority pods, most important
    first, and the order they are added back in (PDB-violating ones first). With a resource
    prediction, `lost` is the (pod, violates PDB) predicted not to come back and `kept` the
    others; the prediction holds when the pod passes with just `lost` removed."""

    potential: list[PodInfo]
    order: list[tuple[PodInfo, bool]]
    mixed: bool  # both PDB-violating and other pods: victims are re-sorted by importance
    lost: list[tuple[PodInfo, bool]] | None = None
    kept: list[PodInfo] = field(default_factory=list)

    def victims(self) -> tuple[list[PodInfo], int, None]:
        """The predicted victims as select_victims returns them."""
        lost = self.lost or []
        victims = [p for p, _ in lost]
        if self.mixed:
            victims.sort(key=importance)
        return victims, sum(v for _, v in lost), None


def _plan(
    pod: PodInfo,
    table: NodeTable,
    row: int,
    budgets: Sequence[DisruptionBudget],
    fit: ResourceFit | None,
) -> _Plan | Status:
    """The plan for `row`, or why it cannot have victims (no lower-priority pods, or too
    little cpu/memory/pods even without them)."""
    potential = [p for p in table.pods[row].values() if p.priority < pod.priority]
    if not potential:
        return Status.unschedulable(NO_VICTIMS, plugin=NAME, resolvable=False)
    potential.sort(key=importance)
    violating, fine = split_by_budget(potential, budgets)
    order = [(p, True) for p in violating] + [(p, False) for p in fine]
    plan = _Plan(potential, order, bool(violating and fine))
    if fit is not None:
        free = fit.free(table, row)
        for p in potential:
            free = [f + r for f, r in zip(free, fit.requests(p), strict=True)]
        if reasons := fit.short(free):
            return Status.unschedulable(*reasons, plugin=RESOURCE_FILTER)
        if not _needs_pods(pod):
            plan.kept, plan.lost = _predict(fit, order, free)
    return plan


def _needs_pods(pod: PodInfo) -> bool:
    """Required pod affinity: more pods on a node can make it pass, so adding pods back is
    not monotone for it."""
    return pod.pod_affinity is not None and bool(pod.pod_affinity.required)


def _predict(
    fit: ResourceFit, order: Sequence[tuple[PodInfo, bool]], free: Sequence[int]
) -> tuple[list[PodInfo], list[tuple[PodInfo, bool]]]:
    """Replay adding `order` back on the resource columns alone, starting with `free` (every
    candidate victim removed): (the pods that come back, the (pod, violates) that cannot)."""
    left = [f - r for f, r in zip(free, fit.request, strict=True)]
    kept: list[PodInfo] = []
    lost: list[tuple[PodInfo, bool]] = []
    for p, violates in order:
        need = fit.requests(p)
        if all(n <= x for n, x in zip(need, left, strict=True)):
            left = [x - n for x, n in zip(left, need, strict=True)]
            kept.append(p)
        else:
            lost.append((p, violates))
    return kept, lost


def dry_run(
    pod: PodInfo,
    table: NodeTable,
    rows: Rows,
    check: NodeCheck,
    budgets: Sequence[DisruptionBudget],
    offset: int,
    wanted: int,
    fit: ResourceFit | None = None,
    memo: RowMemo | None = None,
) -> tuple[list[Candidate], dict[str, Status]]:
    """Try nodes from `offset` (wrapping) until `wanted` candidates are found, one of them
    without PDB violations; candidates without violations come first. Also returns, per node
    that cannot be a candidate, why (upstream's DryRunPreemption, run sequentially).
    `memo`: outcomes kept from earlier dry runs for the pod's class; rows it answers are not
    tried again, and the rows tried are added to it."""
    fine: list[Candidate] = []
    violating: list[Candidate] = []
    statuses: dict[str, Status] = {}
    n = int(rows.size)
    many = getattr(check, "many", None)
    if fit is None or _needs_pods(pod):
        many = None  # no prediction to verify in chunks
    verified: dict[int, _Plan] = {}  # rows whose predicted victims one vectorized pass confirmed
    checked_up_to = 0
    for i in range(n):
        row = int(rows[(offset + i) % n])
        outcome = memo.get(row) if memo is not None else None
        if outcome is None:
            if many is not None and fit is not None and i >= checked_up_to:
                # Verify the next rows' predictions together: as many as candidates are still
                # wanted (the usual outcome is that each of them is one), at least CHUNK.
                size = max(wanted - len(fine) - len(violating), CHUNK)
                ahead = [int(rows[(offset + j) % n]) for j in range(i, min(n, i + size))]
                checked_up_to = i + len(ahead)
                if memo is not None:
                    ahead = [r for r in ahead if memo.get(r) is None]
                # Trials put the rows' generations back, so the rows' stamps hold.
                with table.trial():
                    verified = _verify(pod, table, ahead, budgets, fit, many)
            with table.trial():
                outcome = _outcome(pod, table, row, check, budgets, fit, verified.get(row))
            if memo is not None:
                memo.put(row, outcome)
        if isinstance(outcome, Status):
            statuses[table.node(row).name] = outcome
            continue
        (violating if outcome.pdb_violations else fine).append(outcome)
        if fine and len(fine) + len(violating) >= wanted:
            break
    return fine + violating, statuses


def _outcome(
    pod: PodInfo,
    table: NodeTable,
    row: int,
    check: NodeCheck,
    budgets: Sequence[DisruptionBudget],
    fit: ResourceFit | None,
    verified: _Plan | None,
) -> Candidate | Status:
    """The node as a candidate, or why it is not one: from its verified plan, if it has one,
    else by select_victims."""
    if verified is not None:
        victims, violations, status = verified.victims()
    else:
        victims, violations, status = select_victims(pod, table, row, check, budgets, fit)
    name = table.node(row).name
    if status is None and not victims:
        status = Status.error(f'expected at least one victim pod on node "{name}"')
    if status is not None:
        return status
    return Candidate(name, row, tuple(victims), violations)


@dataclass
class RowMemo:
    """Dry-run outcomes by row for one equivalence class of preemptors under one set of PDBs,
    each with the row's stamp (NodeCheck.stamp) when it was computed. Preemptors of a class
    mostly find the same nodes as the one before them, changed only where it was nominated,
    so a dry run over hundreds of nodes tries only the few whose stamp moved."""

    stamp: Callable[[int], Hashable]
    outcomes: dict[int, tuple[Hashable, Candidate | Status]] = field(default_factory=dict)

    def get(self, row: int) -> Candidate | Status | None:
        kept = self.outcomes.get(row)
        if kept is not None and kept[0] == self.stamp(row):
            return kept[1]
        return None

    def put(self, row: int, outcome: Candidate | Status) -> None:
        self.outcomes[row] = (self.stamp(row), outcome)


CHUNK = 32


def _verify(
    pod: PodInfo,
    table: NodeTable,
    rows: Sequence[int],
    budgets: Sequence[DisruptionBudget],
    fit: ResourceFit,
    many: Callable[[PodInfo, Sequence[int]], set[int]],
) -> dict[int, _Plan]:
    """The rows among `rows` where removing just the predicted victims lets `pod` pass, with
    their plans: one filter pass over all of them with every row's victims removed at once
    (valid because `many` is offered only when the filters are row-local). The other rows
    go through select_victims one by one. The table is restored."""
    plans: dict[int, _Plan] = {}
    for row in rows:
        plan = _plan(pod, table, row, budgets, fit)
        if isinstance(plan, _Plan) and plan.lost:
            plans[row] = plan
    removed = [(row, p) for row, plan in plans.items() for p, _ in plan.lost or ()]
    table.remove_pods(removed)
    try:
        passed = many(pod, list(plans)) if plans else set()
    finally:
        table.add_pods(removed)
    return {row: plan for row, plan in plans.items() if row in passed}


def pick_one(candidates: Sequence[Candidate]) -> Candidate:
    """Upstream's pickOneNodeForPreemption: each criterion in turn keeps the best-scoring
    candidates and the first one left wins, which is the first candidate of the highest rank
    (max keeps the first of equals)."""
    return max(candidates, key=lambda c: c.rank)


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
