"""The pods nominated to nodes, as the scheduling cycle sees them, and PostFilter.

A nominated pod (one preemption made room for) is not on its node yet but counts there:
`run_filters_with_nominated` is upstream's RunFilterPluginsWithNominatedPods, over rows;
`place_nominated` is upstream's evaluateNominatedNode (the nominated node first, unscored).
`post_filter` runs PostFilter (preemption) when no node fits, with `node_check` as the
dry run's Filter on one row, and records the node it nominates (`set_nominated`, which also
writes status.nominatedNodeName); the victims' deletion runs as a task (`preempting`).

The nominations themselves are kept by scheduler/nominator.py (the queue's nominator); this
module is the cycle's use of them. Module functions taking the Scheduler, whose state they
share (scheduler/cycle.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from scheduler.attempt import Attempt
from scheduler.framework import Code, CycleState, Diagnosis, NodeCheck, Status
from scheduler.model import PodInfo
from scheduler.runtime import Framework
from scheduler.snapshot import Rows

if TYPE_CHECKING:
    from scheduler.cycle import Scheduler

log = logging.getLogger("berth.cycle")

__all__ = [
    "node_check",
    "nominated_by_row",
    "place_nominated",
    "post_filter",
    "preempting",
    "run_filters_with_nominated",
    "set_nominated",
]


def nominated_by_row(sched: Scheduler, pod: PodInfo) -> dict[int, list[PodInfo]]:
    """The pods nominated to a node that count against `pod` there, by row (the
    nominator's counted_against). Nominations change only after a cycle's filters and
    dry run, so the answer is kept for the rest of the cycle."""
    nominator = sched.queue.nominator
    if not len(nominator):
        return {}
    key = (pod.uid, sched._cycles, nominator.version)
    if sched._by_row is not None and sched._by_row[0] == key:
        return sched._by_row[1]
    by_row = nominator.counted_against(pod, sched.cache.table.row_of)
    sched._by_row = (key, by_row)
    return by_row


@contextlib.contextmanager
def _reserve(
    sched: Scheduler, by_row: Mapping[int, list[PodInfo]], rows: Iterable[int]
) -> Iterator[None]:
    """Count the nominated pods `by_row` on those of `rows` they are nominated to while
    filters run; the table, row generations included, is restored afterwards."""
    table = sched.cache.table
    added = [
        (row, other)
        for row in rows
        for other in by_row.get(row, ())
        if other.uid not in table.pods[row]
    ]
    if not added:
        yield
        return
    with table.trial():
        table.add_pods(added)
        try:
            yield
        finally:
            table.remove_pods(added)


def run_filters_with_nominated(
    sched: Scheduler,
    profile: Framework,
    state: CycleState,
    pod: PodInfo,
    rows: Rows,
    by_row: Mapping[int, list[PodInfo]],
    diagnosis: Diagnosis | None,
) -> Rows:
    """The rows that pass the filters both as they are and with the pods nominated to
    them (`by_row`) counted, as upstream's RunFilterPluginsWithNominatedPods requires:
    nominated pods make resources and anti-affinity stricter, but may be what satisfies a
    pod affinity, and they may end up elsewhere.

    Upstream checks with the nominated pods first; berth checks without them first and
    counts them only on the rows that passed. A busy cluster has hundreds of nominated
    pods, and counting them all cost a tenth of a preemption burst's CPU. The verdicts
    are the same; a node that fails both ways is reported with the reasons of the first
    check, where upstream's could name one more (e.g. a resource the nominated pods take)."""
    table = sched.cache.table
    passed = profile.run_filters(state, pod, table, rows, diagnosis)
    crowded = [row for row in passed.tolist() if row in by_row] if by_row else []
    if not crowded:
        return passed
    with _reserve(sched, by_row, crowded):
        kept = profile.run_filters(state, pod, table, np.asarray(crowded), diagnosis)
    if kept.size == len(crowded):
        return passed
    dropped = np.setdiff1d(np.asarray(crowded), kept)
    return passed[~np.isin(passed, dropped)]


def place_nominated(
    sched: Scheduler, pod: PodInfo, profile: Framework
) -> tuple[int, CycleState] | None:
    """A pod nominated to a node tries that node first; if it fits there, it goes there
    without scoring (upstream's evaluateNominatedNode)."""
    node = sched.queue.nominator.node_of(pod.uid) or pod.nominated_node_name
    table = sched.cache.table
    row = table.row_of.get(node) if node else None
    if row is None:
        return None
    state = CycleState()
    if profile.run_pre_filter(state, pod, table) is not None:
        return None
    by_row = nominated_by_row(sched, pod)
    passed = run_filters_with_nominated(sched, profile, state, pod, np.asarray([row]), by_row, None)
    return (row, state) if passed.size else None


def node_check(
    sched: Scheduler, profile: Framework, state: CycleState, pod: PodInfo, finished: bool
) -> NodeCheck:
    """Filters on one row as the table stands, for preemption's dry run.

    When the cycle's PreFilter `finished`, its state is reused for the plugins that are
    row-local for the pod (their state cannot depend on the pods being removed or added
    back); the others redo PreFilter on a copy, on the table as it is then (upstream
    updates their state incrementally instead, with PreFilterExtensions AddPod/RemovePod;
    the verdicts are the same). Otherwise PreFilter runs afresh for every check.

    The pods nominated elsewhere do not change during a dry run, so they are looked up
    once. When every PreFilter and Filter plugin is row-local for the pod, the check also
    offers `many` and `stamp` (framework.NodeCheck)."""
    table = sched.cache.table
    redo = [p for p in profile.pre_filter if not finished or not profile.row_local(p, pod)]
    by_row = nominated_by_row(sched, pod)

    def check(pod: PodInfo, row: int) -> Status | None:
        cycle_state = state
        if not finished:
            cycle_state = CycleState()
        elif redo:
            cycle_state = CycleState(
                dict(state.data), set(state.skip_filter), set(state.skip_score)
            )
        status = profile.redo_pre_filter(cycle_state, pod, table, redo)
        if status is not None:
            return status
        seen = Diagnosis(total_nodes=1)
        passed = run_filters_with_nominated(
            sched, profile, cycle_state, pod, np.asarray([row]), by_row, seen
        )
        if passed.size:
            return None
        return Status.unschedulable(*seen.counts, resolvable=not seen.unresolvable_rows)

    def many(pod: PodInfo, rows: Sequence[int]) -> set[int]:
        passed = run_filters_with_nominated(
            sched, profile, state, pod, np.asarray(rows), by_row, None
        )
        return {int(r) for r in passed}

    def stamp(row: int) -> Hashable:
        # All a row-local verdict depends on besides the pod: the row, and the nominated
        # pods counted on it (a new version of one is another pod here).
        nominated = tuple((p.uid, p.resource_version) for p in by_row.get(row, ()))
        return int(table.generation[row]), nominated

    def nominated(row: int) -> Sequence[PodInfo]:
        return by_row.get(row, ())

    if not redo and all(profile.row_local(p, pod) for p in profile.filter):
        return NodeCheck(check, nominated, many, stamp)
    return NodeCheck(check, nominated)


def post_filter(
    sched: Scheduler, pod: PodInfo, profile: Framework, state: CycleState, attempt: Attempt
) -> None:
    """No node fits: run PostFilter (preemption). Success nominates a node and starts the
    victims' deletion; the pod still fails this attempt and waits for them to go."""
    diagnosis, status = attempt.diagnosis, attempt.status
    if not profile.post_filter or diagnosis is None or diagnosis.total_nodes == 0:
        return
    if status is None or status.code not in (
        Code.UNSCHEDULABLE,
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
    ):
        return
    # A PreFilter rejection left the state unfinished: the dry run redoes it per node.
    check = node_check(sched, profile, state, pod, finished=diagnosis.pre_filter is None)
    outcome = profile.run_post_filter(state, pod, sched.cache.table, diagnosis, check)
    for result in outcome.attempts:
        if result is outcome.result:
            break
        if result.preemption and sched._on_preemption is not None:
            sched._on_preemption(None)
        if result.clear_nomination:
            set_nominated(sched, pod, "")
        if result.execute is not None:
            # An unsuccessful PostFilter's own API work (DynamicResources deallocating or
            # deleting a claim), after the cycle, as upstream makes it inside PostFilter.
            task = asyncio.get_running_loop().create_task(_post_filter_work(result.execute))
            sched._side.add(task)
            task.add_done_callback(sched._side.discard)
    if outcome.result is not None:
        result = outcome.result
        if sched._on_preemption is not None:
            sched._on_preemption(len(result.victims))
        set_nominated(sched, pod, result.nominated_node)
        attempt.nominated = result.nominated_node
        attempt.victims = tuple(v.key for v in result.victims)
        if result.execute is not None:
            task = asyncio.get_running_loop().create_task(preempting(sched, result.execute))
            sched._side.add(task)
            task.add_done_callback(sched._side.discard)
    diagnosis.post_filter = ", ".join(outcome.messages)
    attempt.status = Status(status.code, (diagnosis.message(),), status.plugin)


async def _post_filter_work(execute: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        await execute()
    except Exception as err:
        log.warning("PostFilter API call failed", extra={"error": str(err)})


async def preempting(sched: Scheduler, execute: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """A preemption's API side effects, timed as upstream's preemption goroutine."""
    start = time.perf_counter()
    result = "success"
    try:
        await execute()
    except Exception as err:
        result = "error"
        log.warning("preemption failed", extra={"error": str(err)})
    sched.observer.preemption_goroutine(result, time.perf_counter() - start)


def set_nominated(sched: Scheduler, pod: PodInfo, node: str) -> None:
    """Record (or clear, with "") the pod's nominated node in the nominator and in its
    status. A pod nominated over lower-priority ones on the same node takes their
    nomination away (upstream's getLowerPriorityNominatedPods)."""
    nominator = sched.queue.nominator
    changed = (nominator.node_of(pod.uid) or pod.nominated_node_name) != node
    if node:
        for other in nominator.lower_priority_on(node, pod.priority):
            set_nominated(sched, other, "")
    nominator.add(pod, node)
    pod.nominated_node_name = node
    if changed and sched._nominate is not None:
        sched._nominate(pod, node)
