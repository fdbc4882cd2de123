"""What the scheduling cycle asks its extenders, and how the answers enter the cycle.

Mirrors upstream's pkg/scheduler/schedule_one.go: `find_nodes_that_pass_extenders` (after the
Filter plugins, on the feasible nodes, each interested extender in order on what the previous
one left) and the extender half of `prioritizeNodes` (the interested prioritizers concurrently,
each node's score * weight * MaxNodeScore / MaxExtenderPriority added to the plugins' total),
`extenders_binding` (the first interested binder binds instead of the Bind plugins), and
`call_extenders_preemption` (the preempt verbs on preemption's candidates, upstream's
framework/preemption callExtenders).

Nodes an extender reports in `FailedNodes` / `FailedAndUnresolvableNodes` enter the diagnosis
with the extender's message under the pseudo-plugin "Extender <urlPrefix>" (upstream's
ExtenderName and the extender's Name()), so `berth explain` names the extender and the
FailedScheduling message counts them as upstream's FitError does; nodes it drops without a
reason are not counted, as upstream. Errors of an ignorable extender skip it; others fail the
attempt (raised as ExtenderError).

The extended cycle (`extended_cycle`, run by Scheduler.schedule_one_extended for a pod some
extender is interested in) is the one-pod cycle cut in two around these calls: the
nominated node or PreFilter + Filter on the table as it is; the filter verbs, then the
prioritize verbs, awaited; then, if the table or the nominations moved meanwhile
(`_table_mark`), PreFilter and Filter again on the nodes the extenders passed
(`_refilter`), and Score, select_host, assume, Reserve, Permit as usual. Its PostFilter
(`_extended_post_filter`) awaits the preempt verbs between the dry run and the choice of a
candidate. These take the Scheduler, whose state they share (scheduler/cycle.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from scheduler import nomination
from scheduler.attempt import Attempt
from scheduler.extender_client import ExtenderError, HTTPExtender, extender_scores
from scheduler.framework import Code, CycleState, Diagnosis, Status
from scheduler.model import PodInfo
from scheduler.preemption import Preempting
from scheduler.runtime import Framework
from scheduler.snapshot import Rows

if TYPE_CHECKING:
    from scheduler.cycle import Scheduler

log = logging.getLogger("berth.extenders")

EXTENDER = "Extender"  # upstream's framework.ExtenderName, the rejector the queue remembers

__all__ = [
    "EXTENDER",
    "call_extenders_preemption",
    "extended_cycle",
    "extenders_binding",
    "find_nodes_that_pass_extenders",
    "interested",
    "prioritize_with_extenders",
]


def interested(extenders: Sequence[HTTPExtender], pod: PodInfo) -> list[HTTPExtender]:
    return [e for e in extenders if e.is_interested(pod)]


async def find_nodes_that_pass_extenders(
    extenders: Sequence[HTTPExtender],
    pod: PodInfo,
    nodes: Sequence[str],
    diagnosis: Diagnosis,
    row_of: Mapping[str, int],
) -> list[str]:
    """The names of `nodes` every interested filter extender passes, in the order of the
    last answer. Failed nodes are recorded in `diagnosis` (a later extender's verdict on a
    node replaces an earlier one, as upstream's NodeToStatus map)."""
    feasible = list(nodes)
    verdicts: dict[str, tuple[str, bool, str]] = {}  # node -> (message, unresolvable, by)
    for extender in extenders:
        if not feasible:
            break
        if not extender.is_filter or not extender.is_interested(pod):
            continue
        try:
            result = await extender.filter(pod, feasible)
        except ExtenderError as err:
            if extender.ignorable:
                log.info(
                    "skipping extender as it returned error and has ignorable flag set",
                    extra={"extender": extender.name, "error": str(err)},
                )
                continue
            raise
        by = f"{EXTENDER} {extender.name}"
        for node, message in result.unresolvable.items():
            verdicts[node] = (message, True, by)
        for node, message in result.failed.items():
            if node not in result.unresolvable:  # the unresolvable verdict takes precedence
                verdicts[node] = (message, False, by)
        feasible = list(result.nodes)
    for node, (message, unresolvable, by) in verdicts.items():
        diagnosis.counts[message] = diagnosis.counts.get(message, 0) + 1
        per_plugin = diagnosis.by_plugin.setdefault(by, {})
        per_plugin[message] = per_plugin.get(message, 0) + 1
        if unresolvable and node in row_of:
            diagnosis.unresolvable_rows.add(row_of[node])
    return feasible


async def prioritize_with_extenders(
    extenders: Sequence[HTTPExtender],
    pod: PodInfo,
    nodes: Sequence[str],
    running: Callable[[int], None] = lambda delta: None,
) -> dict[str, npt.NDArray[np.int64]]:
    """Each interested prioritizer's weighted scores over `nodes` (same order), by extender
    name; an extender whose call fails gives no scores (upstream ignores prioritize errors).
    `running(+1/-1)` counts the calls in flight (scheduler_goroutines, operation
    "prioritizing_extender")."""
    chosen = [e for e in extenders if e.is_prioritizer and e.is_interested(pod)]

    async def one(extender: HTTPExtender) -> list[tuple[str, int]] | None:
        running(1)
        try:
            return await extender.prioritize(pod, nodes)
        except ExtenderError as err:
            log.debug(
                "extender's prioritize failed, no score from it",
                extra={"extender": extender.name, "pod": pod.key, "error": str(err)},
            )
            return None
        finally:
            running(-1)

    answers = await asyncio.gather(*(one(e) for e in chosen))
    index = {name: i for i, name in enumerate(nodes)}
    out: dict[str, npt.NDArray[np.int64]] = {}
    for extender, answer in zip(chosen, answers, strict=True):
        if answer is None:
            continue
        scores = np.zeros(len(nodes), dtype=np.int64)
        for node, total in extender_scores([(extender.config.weight, answer)]).items():
            if node in index:  # scores for nodes not asked about are dropped, as upstream
                scores[index[node]] += total
        out[extender.name] = scores
    return out


async def extenders_binding(
    extenders: Sequence[HTTPExtender], pod: PodInfo, node: str
) -> tuple[bool, str]:
    """Upstream's extendersBinding: (bound by an extender?, its error or ""). An ignorable
    binder's error lets the next binder (or the Bind plugins) try."""
    for extender in extenders:
        if not extender.is_binder or not extender.is_interested(pod):
            continue
        try:
            await extender.bind(pod, node)
        except ExtenderError as err:
            if extender.ignorable:
                log.info(
                    "skipping extender in bind as it returned error and has ignorable flag set",
                    extra={"extender": extender.name, "error": str(err)},
                )
                continue
            return True, str(err)
        return True, ""
    return False, ""


async def call_extenders_preemption(
    extenders: Sequence[HTTPExtender],
    pod: PodInfo,
    victims: Mapping[str, tuple[Sequence[PodInfo], int]],
    pods_on: Callable[[str], Mapping[str, PodInfo]],
) -> dict[str, tuple[Sequence[PodInfo], int]]:
    """Upstream's callExtenders: each interested extender with a preempt verb, in order, on
    what the previous one kept (node -> (victims, PDB violations)). Answers name victims by
    UID; `pods_on(node)` (uid -> pod) turns them back into pods. A node answered without
    victims is an error (an ignorable extender's such node is dropped instead); any other
    error of an ignorable extender skips it, of another one is raised."""
    current: dict[str, tuple[Sequence[PodInfo], int]] = dict(victims)
    for extender in extenders:
        if not extender.supports_preemption or not extender.is_interested(pod):
            continue
        try:
            answer = await extender.process_preemption(pod, current)
            kept: dict[str, tuple[Sequence[PodInfo], int]] = {}
            for node, (uids, pdb) in answer.items():
                if not uids:
                    if extender.ignorable:
                        continue
                    raise ExtenderError(f'expected at least one victim pod on node "{node}"')
                on_node = pods_on(node)
                missing = [uid for uid in uids if uid not in on_node]
                if missing:
                    raise ExtenderError(
                        f"extender: {extender.name} claims to preempt pod (UID: {missing[0]}) "
                        f"on node: {node}, but the pod is not found on that node"
                    )
                kept[node] = ([on_node[uid] for uid in uids], pdb)
        except ExtenderError as err:
            if extender.ignorable:
                log.info(
                    "skipped extender as it returned error and has ignorable flag set",
                    extra={"extender": extender.name, "error": str(err)},
                )
                continue
            raise
        current = kept
        if not current:  # no preemption can happen, whatever the others say
            break
    return current


# --- the extended cycle (Scheduler.schedule_one_extended) ------------------------------


async def extended_cycle(
    sched: Scheduler,
    pod: PodInfo,
    profile: Framework,
    state: CycleState,
    attempt: Attempt,
    extenders: Sequence[HTTPExtender],
) -> tuple[CycleState, bool]:
    """The three steps of schedule_one_extended; returns the cycle state that holds, and
    whether an extender filtered nodes out."""
    table = sched.cache.table
    algorithm_start = time.perf_counter()
    before = sched._mark_at_filter = _table_mark(
        sched,
    )
    diagnosis = Diagnosis(total_nodes=len(table))
    names: list[str] = []
    passed: list[str] = []
    nominated = nomination.place_nominated(sched, pod, profile)
    if nominated is not None:  # upstream's evaluateNominatedNode runs the extenders too
        names = table.names([nominated[0]])
        passed = await find_nodes_that_pass_extenders(
            extenders, pod, names, diagnosis, table.row_of
        )
        if passed:
            state = nominated[1]
    if not passed:
        feasible = sched._find_nodes(pod, profile, state, attempt)
        if feasible is None:
            await _extended_post_filter(sched, pod, profile, state, attempt, extenders)
            return state, False
        diagnosis = attempt.diagnosis or diagnosis
        names = table.names(feasible)
        passed = await find_nodes_that_pass_extenders(
            extenders, pod, names, diagnosis, table.row_of
        )
    attempt.diagnosis = diagnosis
    sent = set(names)  # a NodeList answer could name nodes never asked about: dropped
    passed = [name for name in passed if name in sent]
    filtered = len(passed) != len(names)
    extra: dict[str, npt.NDArray[np.int64]] = {}
    if len(passed) > 1:
        extra = await prioritize_with_extenders(extenders, pod, passed, sched._on_prioritizing)
    # Step 3: synchronous from here to Reserve.
    table = sched.cache.table
    rows = np.asarray([table.row_of.get(name, -1) for name in passed], dtype=np.int64)
    if (
        _table_mark(
            sched,
        )
        != before
    ):
        state, rows, extra = _refilter(sched, pod, profile, attempt, rows, extra)
    if rows.size == 0:
        if attempt.status is None:
            attempt.status = Status.unschedulable(diagnosis.message())
        await _extended_post_filter(sched, pod, profile, state, attempt, extenders)
        return state, filtered
    placed = sched._prioritize(pod, profile, state, rows, attempt, extra)
    sched.observer.algorithm(time.perf_counter() - algorithm_start)
    if placed is not None:
        row, state = placed
        sched._commit(pod, profile, state, table.node(row).name, attempt)
    return state, filtered


async def _extended_post_filter(
    sched: Scheduler,
    pod: PodInfo,
    profile: Framework,
    state: CycleState,
    attempt: Attempt,
    extenders: Sequence[HTTPExtender],
) -> None:
    """PostFilter for a pod extenders are interested in. With an extender that has a
    preempt verb, upstream's Preempt calls it between the dry run and the choice of a
    candidate; here: a dry run (synchronous) to learn the candidates, the preempt verbs
    awaited on them, then post_filter as usual with the extenders' verdict handed to
    the evaluator, which builds its candidates from it (a node gone meanwhile is left
    out; the dry run itself runs again on the table as it is then). An extender error
    fails the attempt as upstream's PostFilter error does."""
    preempters = [e for e in extenders if e.supports_preemption]
    diagnosis, status = attempt.diagnosis, attempt.status
    evaluators = [p.evaluator for p in profile.post_filter if isinstance(p, Preempting)]
    if (
        not preempters
        or not evaluators
        or diagnosis is None
        or diagnosis.total_nodes == 0
        or status is None
        or status.code not in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
    ):
        nomination.post_filter(sched, pod, profile, state, attempt)
        return
    evaluator, table = evaluators[0], sched.cache.table
    check = nomination.node_check(sched, profile, state, pod, finished=diagnosis.pre_filter is None)
    eligible, _ = evaluator.interface.pod_eligible_to_preempt_others(pod, table, diagnosis)
    candidates = evaluator.find_candidates(pod, table, diagnosis, check)[0] if eligible else []
    if not candidates:
        nomination.post_filter(sched, pod, profile, state, attempt)
        return
    victims = {c.node: (c.victims, c.pdb_violations) for c in candidates}

    def pods_on(node: str) -> Mapping[str, PodInfo]:
        row = sched.cache.table.row_of.get(node)
        return sched.cache.table.pods[row] if row is not None else {}

    try:
        verdict = await call_extenders_preemption(extenders, pod, victims, pods_on)
    except ExtenderError as err:
        attempt.status = Status.error(str(err), evaluator.plugin_name)
        return
    if (
        diagnosis.pre_filter is None
        and _table_mark(
            sched,
        )
        != sched._mark_at_filter
    ):
        # The table moved while the extenders answered: the dry run needs PreFilter's
        # state for the table as it is now.
        state = CycleState()
        if profile.run_pre_filter(state, pod, sched.cache.table) is not None:
            nomination.post_filter(sched, pod, profile, state, attempt)
            return
    evaluator.extender_verdict = verdict
    try:
        nomination.post_filter(sched, pod, profile, state, attempt)
    finally:
        evaluator.extender_verdict = None


def _table_mark(sched: Scheduler) -> tuple[int, int, bytes]:
    """What the cycle's verdicts depend on besides the pod: rows, their generations, and
    the nominations (a copy of the generation column: O(nodes), once per await)."""
    table = sched.cache.table
    return table.structure, sched.queue.nominator.version, table.generation.tobytes()


def _refilter(
    sched: Scheduler,
    pod: PodInfo,
    profile: Framework,
    attempt: Attempt,
    rows: Rows,
    extra: dict[str, npt.NDArray[np.int64]],
) -> tuple[CycleState, Rows, dict[str, npt.NDArray[np.int64]]]:
    """The table moved while the extenders answered: PreFilter afresh, and Filter again on
    the rows the extenders passed that still exist. Rows that fail now count in the
    diagnosis; the extenders' scores follow the rows that stay."""
    table = sched.cache.table
    diagnosis = attempt.diagnosis or Diagnosis(total_nodes=len(table))
    state = CycleState()
    status = profile.run_pre_filter(state, pod, table)
    if status is not None:
        if status.code is Code.ERROR:
            attempt.status = status
        else:
            diagnosis.pre_filter = status
            attempt.status = Status.unschedulable(diagnosis.message(), plugin=status.plugin)
        return state, rows[:0], {}
    alive = rows >= 0
    kept = nomination.run_filters_with_nominated(
        sched, profile, state, pod, rows[alive], nomination.nominated_by_row(sched, pod), diagnosis
    )
    keep = alive & np.isin(rows, kept)
    return state, rows[keep], {name: scores[keep] for name, scores in extra.items()}
