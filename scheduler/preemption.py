"""The preemption evaluator: when no node fits a pod, find lower-priority pods whose removal
would make room, pick the node where that hurts least, and delete those pods through the Handle.

This is upstream's pkg/scheduler/framework/preemption (Evaluator, DryRunPreemption,
SelectCandidate, pickOneNodeForPreemption) with the victim selection of its default plugin
(SelectVictimsOnNode). What a preemption plugin decides comes in through `Interface`, as
upstream's preemption.Interface: whether the pod may preempt at all, where the dry run starts
and how many candidates it wants, and which victims are the more important
(plugins/default_preemption.py). This module imports no plugin.

1. Candidates are the nodes rejected for resolvable reasons (potential_rows). From the
   plugin's offset, nodes are dry-run until the plugin's number of candidates is found, at
   least one of them without PDB violations (dry_run_preemption).
2. On a node: remove every lower-priority pod; if the pod still does not fit, the node is out.
   Otherwise add the pods back, most important first, PDB-violating ones before the others,
   keeping each one that still lets the pod fit; the rest are the victims
   (select_victims_on_node).
3. The node: fewest PDB violations, then the lowest highest-victim priority, the smallest sum of
   priorities, the fewest victims, the latest start among the highest-priority victims, first
   (pick_one_node_for_preemption).

The scheduling-cycle part is pure: it simulates on the NodeTable (removing and re-adding pods,
restoring it exactly) and returns the victims. Deleting them goes into the result's `execute`,
which the scheduler runs asynchronously after the cycle.

Each filter check in the dry run costs a full Filter pass on one row, and the dry run visits
at least 100 nodes, so two shortcuts keep the number of checks down without changing the
result. Both apply only when the resource filter (NodeResourcesFit, whose rules the plugin
hands in as ResourceRules) is known to be a filter of the profile (it rejected some node in
this cycle), because they predict its verdict from the cpu, memory and pods columns (never
ignored by it), and a request that does not fit there fails every check:

- a node where even removing every lower-priority pod leaves too little cpu, memory or room
  for pods is out without a simulation (the first check of step 2 would fail);
- the pods that step 2 adds back one by one are first replayed on those columns alone, which
  says which of them cannot come back. The others are added back together and checked once:
  when the pod fits, each of them would have passed its own check in turn (filters only get
  stricter as pods are added to a node), so the victims are exactly the predicted ones. That
  monotonicity holds for the in-tree filters except required pod affinity, which more pods
  can satisfy, so such pods, and any failed verification, take the one-by-one path.

A burst of identical preemptors (a Deployment of high-priority pods) dry-runs hundreds of nodes
each, and between two of them only the node the previous one was nominated to has changed. When
the filters are row-local for the pod, a node's outcome depends only on its row, the pods
nominated to it, the pod's equivalence class and the PDBs, so outcomes are kept per class and
PDB set with the row's stamp (RowMemo, the victim cache), and a dry run tries only the nodes
whose stamp moved. `berth bench --in-memory --workload preemption --nodes 5000`: 100 ms per
preemptor before, 13 ms after.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from scheduler.framework import (
    Code,
    CycleState,
    Diagnosis,
    Handle,
    NodeCheck,
    PostFilterResult,
    Status,
)
from scheduler.model import CPU, MEMORY, PODS, DisruptionBudget, PodInfo
from scheduler.snapshot import NodeTable, Rows

NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
# What a successful preemption adds to the pod's failure message since v1.37 (v1.33: nothing).
FOUND = "found a potential placement for pod on node {node}, preempting {victims} victims"
# Upstream's Preempt when the extenders left no candidate.
NO_CANDIDATE = "no candidate node for preemption"

# What the extenders' preempt verbs kept (upstream's callExtenders result): node -> (its
# victims, their PDB violations). Set by the cycle for one PostFilter run (see Evaluator).
ExtenderVerdict = Mapping[str, tuple[Sequence[PodInfo], int]]
# Priorities are int32; adding 2^31 makes them all >= 0 so that a sum over more pods of negative
# priority is never smaller than a sum over fewer (upstream's minSumPrioritiesScoreFunc).
_SHIFT = 2**31
# A pod without status.startTime counts as started now, i.e. later than any real start time
# (upstream's GetPodStartTime); RFC 3339 UTC times compare correctly as strings.
_NOT_STARTED = "\uffff"
# The resource columns the shortcuts predict: checked by the resource filter whenever requested
# (pods: always), whatever its args.
_PREDICTED = (CPU, MEMORY, PODS)

# Preemptor classes whose dry-run outcomes are kept (usually one or two are preempting at once).
MEMO_CLASSES = 8
# Rows whose predicted victims one vectorized pass verifies, at least.
CHUNK = 32

log = logging.getLogger("berth.preemption")

VictimOrder = Callable[[PodInfo], Any]
"""A sort key putting the more important of two victims first (upstream's MoreImportantVictim)."""


class Interface(Protocol):
    """What a preemption plugin decides (upstream's preemption.Interface)."""

    def get_offset_and_num_candidates(self, nodes: int) -> tuple[int, int]:
        """Where among `nodes` potential nodes the dry run starts, and how many candidates it
        looks for (never more than `nodes`)."""

    def pod_eligible_to_preempt_others(
        self, pod: PodInfo, table: NodeTable, diagnosis: Diagnosis
    ) -> tuple[bool, str]:
        """Whether `pod` may preempt at all; when not, why (the status message)."""

    def victim_order(self, pod: PodInfo) -> Any:
        """The sort key of victims, more important first (upstream's MoreImportantVictim)."""


@dataclass(frozen=True)
class ResourceRules:
    """What the resource filter exports so that its verdict can be predicted: its name, its
    test of a request against free capacity, and its reason for a resource that is short
    (NodeResourcesFit's, plugins/node_resources_fit.py, handed in by the preemption plugin)."""

    plugin: str
    fits: Callable[[int, int], bool]
    insufficient: Callable[[str], str]


@dataclass(frozen=True)
class Candidate:
    """A node where preempting `victims` (most important first) lets the pod fit."""

    node: str
    row: int
    victims: tuple[PodInfo, ...]
    pdb_violations: int

    @functools.cached_property
    def rank(self) -> tuple[Any, ...]:
        """pick_one_node_for_preemption's key for this candidate. Cached: dry-run outcomes
        (and so candidates) are kept across preemptors of a class (RowMemo), and ranking
        hundreds of candidates afresh for every preemptor took a quarter of the CPU of
        `berth bench --in-memory --workload preemption`."""
        return _rank(Victims(self.victims, self.pdb_violations))


@dataclass(frozen=True)
class Victims:
    """Upstream's extenderv1.Victims: the pods to preempt on one node, most important first,
    and how many of them violate a PDB."""

    pods: tuple[PodInfo, ...]
    num_pdb_violations: int


@runtime_checkable
class Preempting(Protocol):
    """A PostFilter plugin that preempts through an Evaluator (DefaultPreemption): the cycle
    hands its extenders' verdict on the candidates to it."""

    evaluator: Evaluator


class Evaluator:
    """Runs preemption for one plugin (upstream's preemption.Evaluator): `preempt` is its
    PostFilter. Keeps the victims it chose until their deletion is seen, and the dry-run
    outcomes of recent preemptor classes.

    `extender_verdict`, when the cycle sets it for one run, stands for upstream's
    callExtenders between findCandidates and SelectCandidate: the candidates become the
    extenders' nodes with the extenders' victims (the cycle awaited their answers before,
    on the candidates of the same dry run; see extender_cycle._extended_post_filter)."""

    def __init__(
        self,
        plugin_name: str,
        handle: Handle,
        interface: Interface,
        resources: ResourceRules | None = None,
    ) -> None:
        self.plugin_name = plugin_name
        self.extender_verdict: ExtenderVerdict | None = None
        self.handle = handle
        self.interface = interface
        self.resources = resources
        # Victims chosen by this scheduler whose deletion may not be visible yet: they count as
        # terminating by preemption (upstream marks them with the DisruptionTarget condition).
        self._preempting: set[str] = set()
        # Preemptors whose victims are being deleted: uid -> (node, the last victim's uid
        # once its deletion started). Upstream's Executor.preempting and
        # lastVictimsPendingPreemption.
        self.running: dict[str, tuple[str, str]] = {}
        # Dry-run outcomes per row, by (pod class, PDBs): table.structure they belong to, and
        # row -> (stamp, outcome) (RowMemo).
        self._memos: OrderedDict[
            tuple[Any, ...], tuple[int, dict[int, tuple[Hashable, Candidate | Status]]]
        ] = OrderedDict()

    def preempt(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        diagnosis: Diagnosis,
        check: NodeCheck,
    ) -> PostFilterResult:
        """Upstream's Evaluator.Preempt: the pod nominated to the best candidate with its
        victims, whose deletion is the result's `execute`; or why not. With no candidate at
        all the status is the dry run's FitError, and the pod's nomination is cleared."""
        eligible, why = self.interface.pod_eligible_to_preempt_others(pod, table, diagnosis)
        if not eligible:
            return PostFilterResult(Status.unschedulable(why, plugin=self.plugin_name))
        candidates, statuses = self.find_candidates(pod, table, diagnosis, check)
        if self.extender_verdict is not None and candidates:
            candidates = _extender_candidates(table, self.extender_verdict)
            if not candidates:
                return PostFilterResult(Status.unschedulable(NO_CANDIDATE, plugin=self.plugin_name))
        best = select_candidate(candidates)
        if best is None:
            return PostFilterResult(
                Status.unschedulable(fit_error(len(table), statuses), plugin=self.plugin_name),
                clear_nomination=True,
            )
        self._preempting.update(v.uid for v in best.victims)
        if len(self._preempting) > 100_000:  # forget victims long gone
            live = {uid for row in table.live_rows() for uid in table.pods[int(row)]}
            self._preempting &= live
        return PostFilterResult(
            None,
            nominated_node=best.node,
            victims=best.victims,
            execute=lambda: self.actuate(pod, best),
            message=FOUND.format(node=best.node, victims=len(best.victims)),
        )

    def find_candidates(
        self, pod: PodInfo, table: NodeTable, diagnosis: Diagnosis, check: NodeCheck
    ) -> tuple[list[Candidate], dict[str, Status]]:
        """Upstream's findCandidates: the dry run over the potential nodes, from the plugin's
        offset, for the plugin's number of candidates; and why each other node tried is out."""
        potential = potential_rows(table, diagnosis)
        if potential.size == 0:
            return [], {}
        budgets = list(self.handle.disruption_budgets())
        offset, wanted = self.interface.get_offset_and_num_candidates(int(potential.size))
        fit = None
        if self.resources is not None and self.resources.plugin in diagnosis.by_plugin:
            fit = ResourceFit.of(pod, table, check.nominated, rules=self.resources)
        return dry_run_preemption(
            pod,
            table,
            potential,
            check,
            budgets,
            offset,
            wanted,
            fit=fit,
            memo=self._memo(pod, table, check, budgets),
            order=self.interface.victim_order,
        )

    def _memo(
        self, pod: PodInfo, table: NodeTable, check: NodeCheck, budgets: Sequence[DisruptionBudget]
    ) -> RowMemo | None:
        """The kept outcomes for the pod's class under these PDBs, when the check's verdicts
        depend on the rows alone (it offers `stamp`)."""
        if check.stamp is None or check.many is None:
            return None
        key = (pod.class_key, tuple(budgets))
        kept = self._memos.get(key)
        if kept is None or kept[0] != table.structure:  # rows came or went: start over
            kept = (table.structure, {})
            self._memos[key] = kept
            if len(self._memos) > MEMO_CLASSES:
                self._memos.popitem(last=False)
        self._memos.move_to_end(key)
        return RowMemo(check.stamp, kept[1])

    def mark_preempting(self, victims: Iterable[PodInfo]) -> None:
        """Victims chosen outside `preempt` (a pod group's) count as terminating by
        preemption until their deletion is seen."""
        self._preempting.update(v.uid for v in victims)

    def terminating_by_preemption(self, pod: PodInfo) -> bool:
        """Terminating because a scheduler preempted it (pod_terminating_by_preemption), or
        chosen as a victim by this evaluator and its deletion not yet seen."""
        return pod.uid in self._preempting or pod_terminating_by_preemption(pod)

    def is_running(self, pod: PodInfo) -> bool:
        """Upstream's IsPodRunningPreemption: the pod's victims are still being deleted. Once
        the deletion of the last one has started and the cache no longer holds it (or sees
        it terminating), the preemption counts as done, so a pod that heard of the last
        deletion before actuate() returned is not held back."""
        running = self.running.get(pod.uid)
        if running is None:
            return False
        node, last = running
        if not last:
            return True
        table = self.handle.snapshot
        row = table.row_of.get(node)
        if row is None:
            return False
        victim = table.pods[row].get(last)
        return victim is not None and not victim.deleting

    async def actuate(self, preemptor: PodInfo, best: Candidate) -> None:
        """Delete the victims (upstream's Executor.prepareCandidateAsync): all but the last in
        parallel, then the last, so is_running() can tell when it is done. A failure frees
        the victim for another try; then, or when the last victim was preempted in memory
        (no deletion event will come), the preemptor is activated."""

        async def one(victim: PodInfo) -> bool:
            try:
                await self.handle.preempt(preemptor, victim, best.node, self.plugin_name)
            except Exception as err:
                self._preempting.discard(victim.uid)
                log.warning(
                    "preemption failed",
                    extra={"pod": preemptor.key, "victim": victim.key, "error": str(err)},
                )
                return False
            return True

        # Victims already being deleted need no API call (upstream skips them too).
        todo = [v for v in best.victims if not v.deleting]
        if not todo:
            return
        self.running[preemptor.uid] = (best.node, "")
        failed = in_memory = False
        try:
            failed = not all(await asyncio.gather(*(one(v) for v in todo[:-1])))
            if not failed:
                last = todo[-1]
                self.running[preemptor.uid] = (best.node, last.uid)
                in_memory = self.handle.get_waiting_pod(last.uid) is not None
                failed = not await one(last)
        finally:
            self.running.pop(preemptor.uid, None)
            # Deletion events seen while the preemptor was gated as "waiting for the
            # preemption" (victims other preemptors deleted first, say) were spent on the
            # gate; no more may come. Let it through now rather than at the 5-minute flush.
            self.handle.ungate([preemptor], self.plugin_name)
        if failed or in_memory:
            # No deletion event will bring the preemptor back: activate it (upstream).
            self.handle.activate([preemptor])
        if failed:
            # Counted as an error preemption goroutine (upstream's GoroutineResultError).
            raise PreemptionFailed(f"preemption for {preemptor.key} on {best.node} failed")


class PreemptionFailed(Exception):
    """Deleting a victim failed; the preemptor was activated to try again."""


# --- candidates ----------------------------------------------------------------------------


def potential_rows(table: NodeTable, diagnosis: Diagnosis) -> Rows:
    """Nodes where removing pods may help: those not rejected as unresolvable, in node-tree
    order (upstream's NodesForStatusCode(Unschedulable)). A PreFilter rejection applies to
    every node alike."""
    order = table.order()
    if diagnosis.pre_filter is not None:
        return order if diagnosis.pre_filter.code is Code.UNSCHEDULABLE else order[:0]
    if not diagnosis.unresolvable_rows:
        return order
    if len(diagnosis.unresolvable_rows) >= order.size:
        # Every node (the rows are live rows): a pod that fits no node even empty, whose
        # set of thousands of rows is not worth turning into an array.
        return order[:0]
    out = np.fromiter(diagnosis.unresolvable_rows, dtype=np.int64)
    return order[~np.isin(order, out)]


def dry_run_preemption(
    pod: PodInfo,
    table: NodeTable,
    rows: Rows,
    check: NodeCheck,
    budgets: Sequence[DisruptionBudget],
    offset: int,
    wanted: int,
    fit: ResourceFit | None = None,
    memo: RowMemo | None = None,
    order: VictimOrder | None = None,
) -> tuple[list[Candidate], dict[str, Status]]:
    """Try nodes from `offset` (wrapping) until `wanted` candidates are found, one of them
    without PDB violations; candidates without violations come first. Also returns, per node
    that cannot be a candidate, why (upstream's DryRunPreemption, run sequentially).
    `memo`: outcomes kept from earlier dry runs for the pod's class; rows it answers are not
    tried again, and the rows tried are added to it. `order`: of victims (default
    more_important_pod)."""
    order = order or more_important_pod
    fine: list[Candidate] = []
    violating: list[Candidate] = []
    statuses: dict[str, Status] = {}
    n = int(rows.size)
    many = check.many
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
                    verified = _verify(pod, table, ahead, budgets, fit, many, order)
            with table.trial():
                outcome = _outcome(pod, table, row, check, budgets, fit, verified.get(row), order)
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
    order: VictimOrder,
) -> Candidate | Status:
    """The node as a candidate, or why it is not one: from its verified plan, if it has one,
    else by select_victims_on_node."""
    if verified is not None:
        victims, violations, status = verified.victims()
    else:
        victims, violations, status = select_victims_on_node(
            pod, table, row, check, budgets, fit, order
        )
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


# --- victims on one node -------------------------------------------------------------------


def select_victims_on_node(
    pod: PodInfo,
    table: NodeTable,
    row: int,
    check: NodeCheck,
    budgets: Sequence[DisruptionBudget],
    fit: ResourceFit | None = None,
    order: VictimOrder | None = None,
) -> tuple[list[PodInfo], int, Status | None]:
    """The fewest pods to remove from `row` so that `pod` fits: (victims most important
    first, how many of them violate a PDB, None) or ([], 0, why not). The table is restored.
    `fit`: the resource filter is a filter, so its verdict may be predicted (module
    docstring). `order`: of victims (default more_important_pod)."""
    order = order or more_important_pod
    plan = _plan(pod, table, row, budgets, fit, order)
    if isinstance(plan, Status):
        return [], 0, plan
    potential, added_back, mixed = plan.potential, plan.order, plan.mixed
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
        for p, violates in added_back:
            table.add_pod(row, p)
            if check(pod, row) is not None:
                table.remove_pod(row, p)
                victims.append(p)
                violations += violates
        if mixed:
            victims.sort(key=order)
        return victims, violations, None
    finally:
        for p in potential:
            table.add_pod(row, p)  # a no-op for the pods already back


@dataclass
class _Plan:
    """select_victims_on_node's first steps on one node: the lower-priority pods, most
    important first, and the order they are added back in (PDB-violating ones first). With a
    resource prediction, `lost` is the (pod, violates PDB) predicted not to come back and
    `kept` the others; the prediction holds when the pod passes with just `lost` removed."""

    potential: list[PodInfo]
    order: list[tuple[PodInfo, bool]]
    mixed: bool  # both PDB-violating and other pods: victims are re-sorted by importance
    victim_order: VictimOrder
    lost: list[tuple[PodInfo, bool]] | None = None
    kept: list[PodInfo] = field(default_factory=list)

    def victims(self) -> tuple[list[PodInfo], int, None]:
        """The predicted victims as select_victims_on_node returns them."""
        lost = self.lost or []
        victims = [p for p, _ in lost]
        if self.mixed:
            victims.sort(key=self.victim_order)
        return victims, sum(v for _, v in lost), None


def _plan(
    pod: PodInfo,
    table: NodeTable,
    row: int,
    budgets: Sequence[DisruptionBudget],
    fit: ResourceFit | None,
    order: VictimOrder,
) -> _Plan | Status:
    """The plan for `row`, or why it cannot have victims (no lower-priority pods, or too
    little cpu/memory/pods even without them)."""
    potential = [p for p in table.pods[row].values() if p.priority < pod.priority]
    if not potential:
        return Status.unschedulable(NO_VICTIMS, resolvable=False)
    potential.sort(key=order)
    violating, fine = filter_pods_with_pdb_violation(potential, budgets)
    added_back = [(p, True) for p in violating] + [(p, False) for p in fine]
    plan = _Plan(potential, added_back, bool(violating and fine), order)
    if fit is not None:
        free = fit.free(table, row)
        for p in potential:
            free = [f + r for f, r in zip(free, fit.requests(p), strict=True)]
        if reasons := fit.short(free):
            return Status.unschedulable(*reasons, plugin=fit.rules.plugin)
        if not _needs_pods(pod):
            plan.kept, plan.lost = _predict(fit, added_back, free)
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
    fits = fit.rules.fits
    left = [f - r for f, r in zip(free, fit.request, strict=True)]
    kept: list[PodInfo] = []
    lost: list[tuple[PodInfo, bool]] = []
    for p, violates in order:
        need = fit.requests(p)
        if all(fits(n, x) for n, x in zip(need, left, strict=True)):
            left = [x - n for x, n in zip(left, need, strict=True)]
            kept.append(p)
        else:
            lost.append((p, violates))
    return kept, lost


def _verify(
    pod: PodInfo,
    table: NodeTable,
    rows: Sequence[int],
    budgets: Sequence[DisruptionBudget],
    fit: ResourceFit,
    many: Callable[[PodInfo, Sequence[int]], set[int]],
    order: VictimOrder,
) -> dict[int, _Plan]:
    """The rows among `rows` where removing just the predicted victims lets `pod` pass, with
    their plans: one filter pass over all of them with every row's victims removed at once
    (valid because `many` is offered only when the filters are row-local). The other rows
    go through select_victims_on_node one by one. The table is restored."""
    plans: dict[int, _Plan] = {}
    for row in rows:
        plan = _plan(pod, table, row, budgets, fit, order)
        if isinstance(plan, _Plan) and plan.lost:
            plans[row] = plan
    removed = [(row, p) for row, plan in plans.items() for p, _ in plan.lost or ()]
    table.remove_pods(removed)
    try:
        passed = many(pod, list(plans)) if plans else set()
    finally:
        table.add_pods(removed)
    return {row: plan for row, plan in plans.items() if row in passed}


@dataclass(frozen=True)
class ResourceFit:
    """What the resource filter checks that arithmetic can predict: the pod's cpu, memory and
    pods requests against a node's allocatable minus what its pods and the pods nominated to
    it request, by the filter's own rules. Each is a necessary condition for passing the
    check, which counts them too."""

    rules: ResourceRules
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
        *,
        rules: ResourceRules,
    ) -> ResourceFit:
        vector = table.request_vector(pod)
        picked = [
            (table.resource_index[r], r)
            for r in _PREDICTED
            if r in table.resource_index and (r == PODS or vector[table.resource_index[r]] > 0)
        ]
        return cls(
            rules,
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
            found = tuple(1 if r == PODS else pod.requests.get(r, 0) for r in self.names)
            self._requests[pod.uid] = found
        return found

    def short(self, free: Sequence[int]) -> list[str]:
        """The reasons the resource filter would give with `free` left on the node ([]: fits)."""
        return [
            self.rules.insufficient(name)
            for name, need, left in zip(self.names, self.request, free, strict=True)
            if not self.rules.fits(need, left)
        ]


# --- PDBs and importance ---------------------------------------------------------------------


def filter_pods_with_pdb_violation(
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


def more_important_pod(pod: PodInfo) -> tuple[int, str]:
    """Sort key, most important first: higher priority, then the earlier start
    (upstream's MoreImportantPod)."""
    return (-pod.priority, pod_start_time(pod))


def pod_start_time(pod: PodInfo) -> str:
    """status.startTime; a pod not started yet counts as started now (upstream's
    GetPodStartTime)."""
    started = (pod.raw.get("status") or {}).get("startTime")
    return str(started) if started else _NOT_STARTED


def pod_terminating_by_preemption(pod: PodInfo) -> bool:
    """Being deleted, with the DisruptionTarget condition a scheduler's preemption sets
    (upstream's PodTerminatingByPreemption)."""
    if not pod.deleting:
        return False
    for condition in (pod.raw.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget":
            return bool(
                condition.get("status") == "True"
                and condition.get("reason") == "PreemptionByScheduler"
            )
    return False


# --- choosing the node -------------------------------------------------------------------------


def _extender_candidates(table: NodeTable, verdict: ExtenderVerdict) -> list[Candidate]:
    """The extenders' nodes as candidates (upstream builds them from the victims map alone);
    a node gone since is left out. Victims are ordered most important first, as berth's."""
    out = []
    for node, (victims, pdb) in verdict.items():
        row = table.row_of.get(node)
        if row is not None:
            ordered = tuple(sorted(victims, key=more_important_pod))
            out.append(Candidate(node, row, ordered, pdb))
    return out


def select_candidate(candidates: Sequence[Candidate]) -> Candidate | None:
    """Upstream's SelectCandidate: the candidate on the node pick_one_node_for_preemption
    picks (None when there is none)."""
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    # pick_one_node_for_preemption over candidates_to_victims(candidates), with each
    # candidate's rank kept on it: the first candidate of the highest rank.
    return max(candidates, key=lambda c: c.rank)


def candidates_to_victims(candidates: Iterable[Candidate]) -> dict[str, Victims]:
    """Upstream's CandidatesToVictimsMap: node -> its victims, in the candidates' order."""
    return {c.node: Victims(c.victims, c.pdb_violations) for c in candidates}


def pick_one_node_for_preemption(nodes_to_victims: Mapping[str, Victims]) -> str:
    """Upstream's pickOneNodeForPreemption: each criterion in turn keeps the best-scoring
    nodes and the first one left wins, which is the first node of the highest rank (max
    keeps the first of equals). "" when there is none."""
    if not nodes_to_victims:
        return ""
    return max(nodes_to_victims, key=lambda node: _rank(nodes_to_victims[node]))


def _rank(victims: Victims) -> tuple[Any, ...]:
    """pickOneNodeForPreemption's criteria in turn, each higher = better: fewest PDB
    violations, lowest highest-victim priority, smallest sum of priorities, fewest victims,
    latest start among the highest-priority victims."""
    pods = victims.pods
    return (
        -victims.num_pdb_violations,
        -pods[0].priority,
        -sum(v.priority + _SHIFT for v in pods),
        -len(pods),
        _earliest_pod_start_time(pods),
    )


def _earliest_pod_start_time(victims: Iterable[PodInfo]) -> str:
    """The earliest start time among the highest-priority victims (upstream's
    GetEarliestPodStartTime); later is better."""
    pods = list(victims)
    top = max(p.priority for p in pods)
    return min(pod_start_time(p) for p in pods if p.priority == top)
