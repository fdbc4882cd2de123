"""One scheduling cycle, and the asynchronous binding cycle that follows it.

The scheduling cycle is synchronous: from PreFilter to Reserve nothing awaits, so the live
NodeTable is a consistent snapshot. After Reserve the pod is assumed in the cache and its
binding runs as a task (bounded concurrency) while the next pod is scheduled.

The exception is a pod an HTTP extender is interested in (config `extenders`): its cycle
awaits the extenders between Filter and Score and revalidates the table after the await
(`schedule_one_extended`; docs/extenders.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from scheduler import batch
from scheduler.cache import Cache, CacheError
from scheduler.extender_client import ExtenderError, HTTPExtender
from scheduler.extender_cycle import (
    call_extenders_preemption,
    extenders_binding,
    find_nodes_that_pass_extenders,
    interested,
    prioritize_with_extenders,
)
from scheduler.framework import (
    AlreadyBound,
    Code,
    CycleState,
    Diagnosis,
    NodeCheck,
    PluginError,
    Status,
)
from scheduler.model import UPSTREAM_POD_GROUPS, PodInfo
from scheduler.podgroups import (
    PodGroup,
    PodGroupStore,
    group_key,
    placement_message,
    quorum_message,
)
from scheduler.preemption import Preempting, filter_pods_with_pdb_violation, more_important_pod
from scheduler.queue import QueuedPod, SchedulingQueue
from scheduler.runtime import Framework, Observer
from scheduler.snapshot import NodeTable, Rows

log = logging.getLogger("berth.cycle")

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
NO_NODES = "no nodes available to schedule pods"  # upstream's ErrNoNodesAvailable
KEEP_ATTEMPTS = 10000
KEEP_SCORES = 256
PLUGIN_SAMPLE_EVERY = 10  # per-plugin timings on one cycle in ten, as upstream
# A gang failing its group cycle for this long may hold younger gangs back (_note_starving).
STARVATION_SECONDS = 60.0

__all__ = ["AlreadyBound", "Attempt", "Scheduler", "num_feasible_nodes_to_find"]


class Reporter(Protocol):
    """API side effects of a result, fire-and-forget (Events, the PodScheduled condition)."""

    def scheduled(self, pod: PodInfo, node: str) -> None: ...

    def failed(self, pod: PodInfo, message: str, reason: str) -> None: ...


def num_feasible_nodes_to_find(percentage: int | None, total: int) -> int:
    """Upstream's adaptive sample size: below 100 nodes all of them; else percentage% of the
    nodes (adaptive when unset or 0: 50% minus 1% per 125 nodes, at least 5%), at least 100."""
    if total < MIN_FEASIBLE_NODES:
        return total
    if not percentage:
        percentage = max(50 - total // 125, MIN_FEASIBLE_PERCENTAGE)
    if percentage >= 100:
        return total
    return max(total * percentage // 100, MIN_FEASIBLE_NODES)


@dataclass(frozen=True)
class Scoring:
    """An attempt's candidate nodes and scores, kept as the arrays the cycle computed (no
    work on the hot path); `top()` renders the best few for explain. Names are looked up when
    rendered: only recent attempts keep scores, so rows are very unlikely to have been reused."""

    table: NodeTable
    rows: npt.NDArray[np.int64]
    totals: npt.NDArray[np.int64]
    parts: dict[str, npt.NDArray[np.int64]]
    chosen: int = 0  # index into rows of the node that won (ties are broken at random)

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The chosen node first, then the next best (so a random tie-break is visible)."""
        order = [int(i) for i in np.argsort(-self.totals, kind="stable") if i != self.chosen]
        best = [self.chosen, *order[: n - 1]]
        return [
            {
                "node": self.table.names([self.rows[i]])[0],
                "total": int(self.totals[i]),
                "plugins": {p: int(s[i]) for p, s in self.parts.items()},
            }
            for i in best
        ]


@dataclass
class Attempt:
    """What one scheduling cycle decided, for callers and `explain`."""

    pod: PodInfo
    node: str = ""
    status: Status | None = None
    diagnosis: Diagnosis | None = None
    scoring: Scoring | None = None
    nominated: str = ""  # the node preemption nominated in this attempt
    victims: tuple[str, ...] = ()  # the pods it preempts there (namespace/name)
    bind_state: CycleState | None = None  # the cycle state the binding cycle goes on with
    group: dict[str, Any] | None = None  # a PodGroup member's group attempt, for explain


class Scheduler:
    """schedule_one for each popped pod: the scheduling cycle (synchronous), then the binding
    cycle as a task (upstream's pkg/scheduler/schedule_one.go)."""

    def __init__(
        self,
        cache: Cache,
        queue: SchedulingQueue,
        profiles: Mapping[str, Framework],
        reporter: Reporter,
        observer: Observer,
        *,
        percentage_of_nodes_to_score: int | None = None,
        bind_concurrency: int = 256,
        batching: bool = True,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        nominate: Callable[[PodInfo, str], None] | None = None,
        on_preemption: Callable[[int | None], None] | None = None,
        on_binding: Callable[[int], None] | None = None,
        pod_groups: PodGroupStore | None = None,
        on_group: Callable[[PodGroup, str, float, str, str], None] | None = None,
        extenders: Sequence[HTTPExtender] = (),
        on_prioritizing: Callable[[int], None] = lambda delta: None,
    ) -> None:
        """`pod_groups` (the Handle's) turns on group cycles for PodGroup members;
        `on_group(group, result, seconds, message, profile)` is told each group cycle's
        result (scheduled, unschedulable, error; "bound" with the seconds from the gang's
        quorum once the members it placed are bound), for the condition and metrics.
        `nominate(pod, node)` writes status.nominatedNodeName ("" clears it);
        `on_preemption(victims)` counts a preemption attempt (None: no node found);
        `on_binding(running)` is told how many binding cycles run (waiting in Permit
        included, as upstream's binding goroutines) whenever that changes. `extenders` are
        the configured HTTP extenders in order (see schedule_one_extended);
        `on_prioritizing(+1/-1)` counts their prioritize calls in flight."""
        self.cache = cache
        self.queue = queue
        self.profiles = profiles
        self.reporter = reporter
        self.observer = observer
        self.percentage = percentage_of_nodes_to_score
        self._clock = clock
        self._rng = rng or random.Random()
        self._bind_gate = asyncio.Semaphore(bind_concurrency)
        self._binding: set[asyncio.Task[None]] = set()
        self._holding = 0  # binding cycles holding a slot (not those waiting in Permit)
        self.next_start = 0
        self._cycles = 0
        self.batching = batching
        self.classes = batch.EquivalenceCache()
        self._scored: deque[Attempt] = deque()
        self.last: dict[str, Attempt] = {}  # pod key -> last attempt (bounded, for explain)
        self._by_row: tuple[tuple[str, int, int], dict[int, list[PodInfo]]] | None = None
        self._nominate = nominate
        self._on_preemption = on_preemption
        self._on_binding = on_binding
        self._side: set[asyncio.Task[None]] = set()  # preemption API calls in flight
        self.pod_groups = pod_groups
        self._on_group = on_group
        # Gangs whose quorum a group cycle just met: the binds still to come.
        self._group_binds: dict[tuple[str, str, str], int] = {}
        # The starvation guard: when each gang began failing, the gang others wait behind
        # (its key and priority), and the members held behind it.
        self._starving: dict[tuple[str, str, str], float] = {}
        self._head: tuple[tuple[str, str, str], int] | None = None
        self._held: set[str] = set()
        self.extenders = tuple(extenders)
        self._on_prioritizing = on_prioritizing
        self._mark_at_filter: tuple[int, int, bytes] = (0, 0, b"")

    # --- the loop ------------------------------------------------------------------------

    async def run(self, should_run: Callable[[], bool] = lambda: True) -> None:
        """Pop and schedule pods until the queue closes or `should_run` turns False."""
        budget_start = time.perf_counter()
        while should_run():
            entry = await self.queue.pop()
            if entry is None or not should_run():
                if entry is not None:
                    self.queue.requeue(entry, error=True)
                return
            consulted = self._consulted(entry.pod) if self.extenders else ()
            if consulted:
                await self.schedule_one_extended(entry, consulted)
            else:
                self.schedule_one(entry)
            # Let the informer and the binding tasks in at least every few milliseconds.
            if time.perf_counter() - budget_start > 0.005:
                await asyncio.sleep(0)
                budget_start = time.perf_counter()

    def abandon(self) -> None:
        """Cancel every binding and preemption task now: leadership is lost, and a binding
        sent after that could race the new leader (kube-scheduler exits at once)."""
        for task in self._binding | self._side:
            task.cancel()

    def _forget(self, pod: PodInfo) -> None:
        """Undo the pod's assume. If the watch has already shown it bound (a Binding that
        landed although its answer was lost, or a rival's), there is nothing to undo: the
        error is logged, as upstream logs a failed ForgetPod, and the pod stays bound."""
        try:
            self.cache.forget(pod)
        except CacheError as err:
            log.info("nothing to forget", extra={"pod": pod.key, "why": str(err)})

    async def drain(self) -> None:
        """Wait for the binding (and preemption) tasks in flight."""
        while self._binding or self._side:
            await asyncio.gather(*list(self._binding | self._side), return_exceptions=True)

    # --- scheduling cycle ----------------------------------------------------------------

    def schedule_one(self, entry: QueuedPod) -> Attempt:
        """One scheduling cycle for a popped pod; on success its binding cycle is started.
        A member of a gang (or of a group with a topology constraint) takes its group's
        queued members along into one group cycle."""
        pod = entry.pod
        profile = self.profiles[pod.scheduler_name]
        group = self._group_of(pod, profile)
        if group is not None:
            return self.schedule_group(entry, profile, group)
        self._cycles += 1
        profile.sample_plugins = self._cycles % PLUGIN_SAMPLE_EVERY == 0
        start = time.perf_counter()
        state = CycleState()
        attempt = self.scheduling_cycle(pod, profile, state)
        return self._conclude(entry, profile, state, attempt, start)

    def _conclude(
        self,
        entry: QueuedPod,
        profile: Framework,
        state: CycleState,
        attempt: Attempt,
        start: float,
        plugins: frozenset[str] | None = None,
    ) -> Attempt:
        """After a scheduling cycle: start the binding cycle, or requeue and report the
        failure with the rejecting `plugins` (default: the attempt's)."""
        pod = entry.pod
        self._remember(attempt)
        if attempt.node:
            bind_state, attempt.bind_state = attempt.bind_state or state, None
            # Not kept on the attempt: `last` keeps 10,000 attempts for explain, and a cycle
            # state holds every plugin's per-pod data (affinity counts per topology value).
            self._start_binding(entry, profile, bind_state, attempt.node, start)
            return attempt
        status = attempt.status
        error = status is not None and status.code is Code.ERROR
        self.observer.attempt(
            "error" if error else "unschedulable",
            profile.scheduler_name,
            time.perf_counter() - start,
        )
        diagnosis = attempt.diagnosis
        if error or not profile.post_filter or diagnosis is None or diagnosis.total_nodes == 0:
            # Upstream's clearNominatedNode: every failure but one that went through PostFilter
            # (whose own result says whether the nomination stays) clears it.
            self._nominated(pod, "")
        if plugins is None:
            plugins = _rejecting_plugins(attempt)
        self.queue.requeue(entry, plugins, error=error)
        message = status.message if status else "unknown"
        self.reporter.failed(pod, message, "SchedulerError" if error else "Unschedulable")
        return attempt

    def scheduling_cycle(self, pod: PodInfo, profile: Framework, state: CycleState) -> Attempt:
        """Upstream's schedulingCycle: schedulePod (the nominated node first, the batched
        path, or PreFilter/Filter/PreScore/Score and select_host), PostFilter when nothing
        fits, then assume + Reserve + Permit. Synchronous: nothing awaits in between."""
        table = self.cache.table
        attempt = Attempt(pod)
        try:
            placed = self._algorithm(pod, profile, state, attempt)
            if placed is None:
                self._post_filter(pod, profile, state, attempt)
                return attempt
            row, state = placed
            self._commit(pod, profile, state, table.node(row).name, attempt)
        except PluginError as err:
            attempt.status = err.status
            return attempt
        except Exception as err:  # a plugin bug must not stop the scheduler
            log.exception("scheduling cycle failed", extra={"pod": pod.key})
            self.classes.clear()
            attempt.status = Status.error(f"scheduling cycle failed: {err}")
        return attempt

    def _commit(
        self, pod: PodInfo, profile: Framework, state: CycleState, node: str, attempt: Attempt
    ) -> None:
        """Assume the pod on `node`, then Reserve and Permit; a rejection undoes the assume
        and becomes the attempt's status, success sets `attempt.node`."""
        self.cache.assume(pod, node)
        status = profile.run_reserve(state, pod, node)
        if status is None:
            status = profile.run_permit(state, pod, node)
            if status is not None and status.code is Code.WAIT:
                status = None  # the binding cycle waits on it
        if status is not None:
            profile.run_unreserve(state, pod, node)
            self._forget(pod)
            attempt.status = self._rejected_at(status, node)
            attempt.diagnosis = _one_node_diagnosis(status)
            return
        attempt.node = node
        attempt.bind_state = state

    def _algorithm(
        self, pod: PodInfo, profile: Framework, state: CycleState, attempt: Attempt
    ) -> tuple[int, CycleState] | None:
        """Upstream's schedulePod: the nominated node first, then the batched path, then
        PreFilter/Filter/PreScore/Score and select_host. A state already narrowed (a group's
        topology domain) skips the two shortcuts, which do not see the narrowing."""
        algorithm_start = time.perf_counter()
        placed = None
        if state.node_names is None:
            placed = self._place_nominated(pod, profile)
            if placed is None and self.batching and not self._nominated_by_row(pod):
                # Class results cannot count other pods' nominations: those take the slow path.
                placed = self._place_batched(pod, profile, attempt)
        if placed is None:
            placed = self._place(pod, profile, state, attempt)
        self.observer.algorithm(time.perf_counter() - algorithm_start)
        return placed

    @staticmethod
    def _rejected_at(status: Status, node: str) -> Status:
        """A Reserve or Permit rejection as the pod's failure: an error stays an error;
        a rejection reads as a FitError over the one node (upstream's handling)."""
        if status.code is Code.ERROR:
            return status
        message = _one_node_diagnosis(status).message()
        return Status(status.code, (message,), status.plugin)

    def _place(
        self, pod: PodInfo, profile: Framework, state: CycleState, attempt: Attempt
    ) -> tuple[int, CycleState] | None:
        """The one-pod-at-a-time path: every plugin runs for this pod alone, and a failure
        is explained node by node (the diagnosis)."""
        feasible = self._find_nodes(pod, profile, state, attempt)
        if feasible is None:
            return None
        return self._prioritize(pod, profile, state, feasible, attempt, {})

    def _find_nodes(
        self, pod: PodInfo, profile: Framework, state: CycleState, attempt: Attempt
    ) -> Rows | None:
        """PreFilter and Filter (upstream's findNodesThatPassFilters): the feasible rows, or
        None with the attempt's status and diagnosis set."""
        table = self.cache.table
        diagnosis = attempt.diagnosis = Diagnosis(total_nodes=len(table))
        if len(table) == 0:
            # Upstream fails before PreFilter with ErrNoNodesAvailable, not a "0/0" FitError.
            attempt.status = Status.unschedulable(NO_NODES, resolvable=False)
            return None
        status = profile.run_pre_filter(state, pod, table)
        if status is not None:
            if status.code is Code.ERROR:
                attempt.status = status
                return None
            diagnosis.pre_filter = status
            attempt.status = Status.unschedulable(diagnosis.message(), plugin=status.plugin)
            return None
        start = time.perf_counter()
        feasible = self._find_feasible(pod, profile, state, diagnosis)
        filtered = "Success" if feasible.size else "Unschedulable"
        self.observer.extension_point(
            "Filter", filtered, profile.scheduler_name, time.perf_counter() - start
        )
        if feasible.size == 0:
            attempt.status = Status.unschedulable(diagnosis.message())
            return None
        return feasible

    def _prioritize(
        self,
        pod: PodInfo,
        profile: Framework,
        state: CycleState,
        feasible: Rows,
        attempt: Attempt,
        extra: Mapping[str, npt.NDArray[np.int64]],
    ) -> tuple[int, CycleState] | None:
        """PreScore, Score and select_host over the feasible rows (upstream's
        prioritizeNodes); `extra` are the extenders' weighted scores, by extender, added to
        the plugins' totals. A single feasible row wins unscored, as upstream."""
        if feasible.size == 1:
            return int(feasible[0]), state
        table = self.cache.table
        status = profile.run_pre_score(state, pod, table, feasible)
        if status is not None:
            attempt.status = status
            return None
        totals, parts = profile.run_scores(state, pod, table, feasible)
        if extra:
            totals = totals + sum(extra.values())
            parts = {**parts, **extra}
        return self.select_host(feasible, totals, parts, attempt), state

    def _place_batched(
        self, pod: PodInfo, profile: Framework, attempt: Attempt
    ) -> tuple[int, CycleState] | None:
        """The equivalence-class path (batch.py); None means: take the one-pod path, which
        also explains failures."""
        if not profile.batchable(pod):
            return None
        table = self.cache.table
        start = time.perf_counter()
        cached = self.classes.lookup(profile, pod, table)
        if not isinstance(cached, batch.ClassState):
            return None
        order = table.order()
        total = order.size
        if total == 0:
            return None
        first = self.next_start % total
        wanted = self._wanted(profile, total)
        rows, processed = batch.window(cached, profile, pod, table, order, first, wanted)
        if rows.size == 0:
            return None
        self.next_start = (first + processed) % total
        self.observer.extension_point(
            "Filter", "Success", profile.scheduler_name, time.perf_counter() - start
        )
        if rows.size == 1:
            return int(rows[0]), cached.state
        start = time.perf_counter()
        totals, parts = batch.window_scores(profile, cached, rows)
        self.observer.extension_point(
            "Score", "Success", profile.scheduler_name, time.perf_counter() - start
        )
        return self.select_host(rows, totals, parts, attempt), cached.state

    def _wanted(self, profile: Framework, total: int) -> int:
        percentage = profile.percentage_of_nodes_to_score
        return num_feasible_nodes_to_find(
            percentage if percentage is not None else self.percentage, total
        )

    def _find_feasible(
        self, pod: PodInfo, profile: Framework, state: CycleState, diagnosis: Diagnosis
    ) -> Rows:
        """Filter nodes in zone-interleaved order from the round-robin start, chunk by chunk,
        until enough feasible nodes are found (upstream's percentageOfNodesToScore). Chunk
        sizes do not change the answer, only what it costs.

        When PreFilter narrowed the nodes (upstream's PreFilterResult), only those are
        filtered and the sample is taken among them; the others count in the diagnosis."""
        table = self.cache.table
        order = table.order()
        everywhere = order.size
        narrowed = state.node_mask(table, order)
        if narrowed is not None:
            diagnosis.narrowed_out(state.narrowed_by, order[~narrowed])
            order = order[narrowed]
        total = order.size
        if total == 0:
            return order
        wanted = self._wanted(profile, total)
        start = self.next_start % total
        rotated = np.concatenate((order[start:], order[:start]))
        chunk = max(wanted, 256)
        found: list[Rows] = []
        count = processed = 0
        by_row = self._nominated_by_row(pod)
        while processed < total and count < wanted:
            rows = rotated[processed : processed + chunk]
            passed = self._filter(profile, state, pod, rows, by_row, diagnosis)
            if count + passed.size > wanted:
                # Stop exactly at the wanted-th feasible node, as upstream does.
                passed = passed[: wanted - count]
                last = int(np.flatnonzero(rows == passed[-1])[0])
                processed += last + 1
            else:
                processed += rows.size
            found.append(passed)
            count += passed.size
            # Where few nodes fit, more chunks follow: a pod that fits nowhere walks every
            # node, and each chunk costs every filter plugin a call.
            chunk *= 2
        # Modulo every node, as upstream's nextStartNodeIndex (the same as `start + processed`
        # modulo `total` when nothing was narrowed).
        self.next_start = (self.next_start + processed) % everywhere
        return np.concatenate(found) if found else order[:0]

    def select_host(
        self, rows: Rows, totals: npt.NDArray[np.int64], parts: dict[str, Any], attempt: Attempt
    ) -> int:
        """The highest total wins; ties are broken at random (upstream's reservoir choice)."""
        best = np.flatnonzero(totals == totals.max())
        choice = int(best[0]) if best.size == 1 else int(best[self._rng.randrange(best.size)])
        attempt.scoring = Scoring(self.cache.table, rows, totals, parts, choice)
        return int(rows[choice])

    # --- extenders (upstream's HTTPExtender calls inside schedulePod) ----------------------

    def _consulted(self, pod: PodInfo) -> list[HTTPExtender]:
        """The extenders interested in a popped pod; none for a gang member (group cycles do
        not call extenders, see docs/extenders.md) or when no extender manages what it asks."""
        profile = self.profiles.get(pod.scheduler_name)
        if profile is None or self._group_of(pod, profile) is not None:
            return []
        return interested(self.extenders, pod)

    async def schedule_one_extended(
        self, entry: QueuedPod, extenders: Sequence[HTTPExtender]
    ) -> Attempt:
        """schedule_one for a pod some extender is interested in. An extender is an HTTP call,
        so the cycle is cut in two where upstream calls them:

        1. synchronously, the nominated node or PreFilter + Filter, on the table as it is;
        2. awaited: the filter verbs in order on the feasible node names, then the prioritize
           verbs concurrently on the names that passed;
        3. synchronously again: if the table or the nominations moved meanwhile (any row's
           generation, a row added or removed), PreFilter and Filter run again on the nodes
           the extenders passed, so what is assumed fits the table as it is now; then
           PreScore/Score plus the extenders' scores, select_host, assume, Reserve, Permit.

        Nothing else is scheduled while the calls run (the loop awaits them, as upstream's
        scheduleOne blocks on them), so only informer events and binding results can move
        the table. Equivalence batching is not used: an extender may answer per pod."""
        pod = entry.pod
        profile = self.profiles[pod.scheduler_name]
        self._cycles += 1
        profile.sample_plugins = self._cycles % PLUGIN_SAMPLE_EVERY == 0
        start = time.perf_counter()
        attempt = Attempt(pod)
        state = CycleState()
        filtered = False
        try:
            state, filtered = await self._extended_cycle(pod, profile, state, attempt, extenders)
        except PluginError as err:
            attempt.status = err.status
        except ExtenderError as err:
            attempt.status = Status.error(str(err))
        except Exception as err:  # a plugin bug must not stop the scheduler
            log.exception("scheduling cycle failed", extra={"pod": pod.key})
            attempt.status = Status.error(f"scheduling cycle failed: {err}")
        # A pod an extender rejected nodes for moves on any cluster event (upstream puts
        # ExtenderName, which registers every event, among its unschedulable plugins).
        plugins: frozenset[str] | None = frozenset() if filtered else None
        return self._conclude(entry, profile, state, attempt, start, plugins)

    async def _extended_cycle(
        self,
        pod: PodInfo,
        profile: Framework,
        state: CycleState,
        attempt: Attempt,
        extenders: Sequence[HTTPExtender],
    ) -> tuple[CycleState, bool]:
        """The three steps of schedule_one_extended; returns the cycle state that holds, and
        whether an extender filtered nodes out."""
        table = self.cache.table
        algorithm_start = time.perf_counter()
        before = self._mark_at_filter = self._table_mark()
        diagnosis = Diagnosis(total_nodes=len(table))
        names: list[str] = []
        passed: list[str] = []
        nominated = self._place_nominated(pod, profile)
        if nominated is not None:  # upstream's evaluateNominatedNode runs the extenders too
            names = table.names([nominated[0]])
            passed = await find_nodes_that_pass_extenders(
                extenders, pod, names, diagnosis, table.row_of
            )
            if passed:
                state = nominated[1]
        if not passed:
            feasible = self._find_nodes(pod, profile, state, attempt)
            if feasible is None:
                await self._extended_post_filter(pod, profile, state, attempt, extenders)
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
            extra = await prioritize_with_extenders(extenders, pod, passed, self._on_prioritizing)
        # Step 3: synchronous from here to Reserve.
        table = self.cache.table
        rows = np.asarray([table.row_of.get(name, -1) for name in passed], dtype=np.int64)
        if self._table_mark() != before:
            state, rows, extra = self._refilter(pod, profile, attempt, rows, extra)
        if rows.size == 0:
            if attempt.status is None:
                attempt.status = Status.unschedulable(diagnosis.message())
            await self._extended_post_filter(pod, profile, state, attempt, extenders)
            return state, filtered
        placed = self._prioritize(pod, profile, state, rows, attempt, extra)
        self.observer.algorithm(time.perf_counter() - algorithm_start)
        if placed is not None:
            row, state = placed
            self._commit(pod, profile, state, table.node(row).name, attempt)
        return state, filtered

    async def _extended_post_filter(
        self,
        pod: PodInfo,
        profile: Framework,
        state: CycleState,
        attempt: Attempt,
        extenders: Sequence[HTTPExtender],
    ) -> None:
        """PostFilter for a pod extenders are interested in. With an extender that has a
        preempt verb, upstream's Preempt calls it between the dry run and the choice of a
        candidate; here: a dry run (synchronous) to learn the candidates, the preempt verbs
        awaited on them, then _post_filter as usual with the extenders' verdict handed to
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
            self._post_filter(pod, profile, state, attempt)
            return
        evaluator, table = evaluators[0], self.cache.table
        check = self._node_check(profile, state, pod, finished=diagnosis.pre_filter is None)
        eligible, _ = evaluator.interface.pod_eligible_to_preempt_others(pod, table, diagnosis)
        candidates = evaluator.find_candidates(pod, table, diagnosis, check)[0] if eligible else []
        if not candidates:
            self._post_filter(pod, profile, state, attempt)
            return
        victims = {c.node: (c.victims, c.pdb_violations) for c in candidates}

        def pods_on(node: str) -> Mapping[str, PodInfo]:
            row = self.cache.table.row_of.get(node)
            return self.cache.table.pods[row] if row is not None else {}

        try:
            verdict = await call_extenders_preemption(extenders, pod, victims, pods_on)
        except ExtenderError as err:
            attempt.status = Status.error(str(err), evaluator.plugin_name)
            return
        if diagnosis.pre_filter is None and self._table_mark() != self._mark_at_filter:
            # The table moved while the extenders answered: the dry run needs PreFilter's
            # state for the table as it is now.
            state = CycleState()
            if profile.run_pre_filter(state, pod, self.cache.table) is not None:
                self._post_filter(pod, profile, state, attempt)
                return
        evaluator.extender_verdict = verdict
        try:
            self._post_filter(pod, profile, state, attempt)
        finally:
            evaluator.extender_verdict = None

    def _table_mark(self) -> tuple[int, int, bytes]:
        """What the cycle's verdicts depend on besides the pod: rows, their generations, and
        the nominations (a copy of the generation column: O(nodes), once per await)."""
        table = self.cache.table
        return table.structure, self.queue.nominator.version, table.generation.tobytes()

    def _refilter(
        self,
        pod: PodInfo,
        profile: Framework,
        attempt: Attempt,
        rows: Rows,
        extra: dict[str, npt.NDArray[np.int64]],
    ) -> tuple[CycleState, Rows, dict[str, npt.NDArray[np.int64]]]:
        """The table moved while the extenders answered: PreFilter afresh, and Filter again on
        the rows the extenders passed that still exist. Rows that fail now count in the
        diagnosis; the extenders' scores follow the rows that stay."""
        table = self.cache.table
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
        kept = self._filter(
            profile, state, pod, rows[alive], self._nominated_by_row(pod), diagnosis
        )
        keep = alive & np.isin(rows, kept)
        return state, rows[keep], {name: scores[keep] for name, scores in extra.items()}

    # --- group cycle (PodGroups) ---------------------------------------------------------

    def _group_of(self, pod: PodInfo, profile: Framework) -> PodGroup | None:
        """The group a popped pod is scheduled with: a gang, or any group with a topology
        constraint, when the profile runs GangScheduling. A basic group without one is
        scheduled pod by pod: one cycle per member places each where upstream's group
        cycle would."""
        if pod.pod_group is None or self.pod_groups is None:
            return None
        if not any(p.name == GANG_SCHEDULING for p in profile.permit):
            return None
        group = self.pod_groups.group_of(pod)
        if group is None or not (group.is_gang or group.topology_key):
            return None
        return group

    def schedule_group(self, entry: QueuedPod, profile: Framework, group: PodGroup) -> Attempt:
        """One group cycle (upstream's scheduleOnePodGroup): every queued member of the group
        is placed in turn (assumed and reserved), in queue order. If the members already
        placed and those placed now reach minCount, each goes on to Permit and its binding
        cycle; otherwise every reservation of this cycle is undone, in reverse order, and
        every member waits as unschedulable. Nothing is held between cycles, so two gangs
        that do not fit together never deadlock: one is placed whole, the other waits whole.

        With a topology key the members go to one domain of that node label: each domain is
        tried, the one that places the most members (then the highest total score) wins, and
        the group never straddles domains (members placed earlier fix the domain)."""
        assert self.pod_groups is not None
        store = self.pod_groups
        start = time.perf_counter()
        self._cycles += 1
        profile.sample_plugins = False
        others = [p.uid for p in store.unscheduled(group.key) if p.uid != entry.pod.uid]
        members = [entry, *self.queue.take(others)]
        members.sort(key=lambda e: profile.sort_key(e.pod, e.arrival))
        invalid = validate_group(group, [m.pod for m in members])
        if invalid is not None:
            return self._group_failed(members, profile, group, Status.error(invalid), {}, start)
        behind = self._held_behind(group, [m.pod for m in members])
        if behind is not None:
            status = Status.unschedulable(
                f'waiting for the older gang "{behind[1]}/{behind[2]}" to be placed first',
                plugin=GANG_SCHEDULING,
            )
            self._held.update(m.pod.uid for m in members)
            return self._group_failed(members, profile, group, status, {}, start)
        scheduled = store.scheduled_count(group.key)
        domains = self._domains(group, scheduled)
        if not domains:
            status = Status.unschedulable(
                placement_message(0, f"no node has the label {group.topology_key!r}")
            )
            return self._group_failed(members, profile, group, status, {}, start)
        best: _GroupTry | None = None
        first_status: Status | None = None
        for domain in domains:
            tried = self._try_group(members, profile, group, scheduled, domain)
            if len(domains) > 1:
                self._revert(profile, tried)
                if first_status is None and tried.status is not None:
                    first_status = tried.status
            if best is None or tried.rank() > best.rank():
                best = tried
            if tried.status is not None and tried.status.code is Code.ERROR:
                break
        assert best is not None
        if len(domains) > 1 and best.status is None:
            # Placed again for real in the domain that won (each try was undone).
            best = self._try_group(members, profile, group, scheduled, best.domain)
        if best.status is None:
            return self._group_placed(members, profile, group, best, start)
        if len(domains) == 1:
            self._revert(profile, best)
        status = best.status
        if len(domains) > 1 and status.code is not Code.ERROR:
            first = first_status.message if first_status is not None else status.message
            status = Status.unschedulable(placement_message(len(domains), first))
        nominations: dict[str, str] = {}
        if status.code is not Code.ERROR and profile.post_filter:
            message, nominations = self._group_post_filter(members, profile, group, scheduled)
            if message:
                status = Status(status.code, (*status.reasons, message), status.plugin)
        return self._group_failed(
            members, profile, group, status, best.failures, start, best, nominations
        )

    def _domains(self, group: PodGroup, scheduled: int) -> list[frozenset[str] | None]:
        """The node sets the group may use: every node (no topology key), or one set per
        value of the key; only the domain of members already placed once any are."""
        key = group.topology_key
        if not key:
            return [None]
        table = self.cache.table
        by_value: dict[str, set[str]] = {}
        for node in table.nodes:
            if node is not None and key in node.labels:
                by_value.setdefault(node.labels[key], set()).add(node.name)
        if scheduled and self.pod_groups is not None:
            used = set()
            for pod in self.pod_groups.pods(group.key):
                node_name = pod.node_name or self.cache.node_of(pod.uid) or ""
                row = table.row_of.get(node_name)
                info = table.nodes[row] if row is not None else None
                if info is not None:
                    used.add(info.labels.get(key, ""))
            by_value = {v: names for v, names in by_value.items() if v in used}
        return [frozenset(names) for _, names in sorted(by_value.items())]

    def _try_group(
        self,
        members: list[QueuedPod],
        profile: Framework,
        group: PodGroup,
        scheduled: int,
        domain: frozenset[str] | None,
    ) -> _GroupTry:
        """Place the members in turn (assume + Reserve each), stopping as soon as minCount
        cannot be reached (upstream's PlacementFeasible after each pod)."""
        tried = _GroupTry(domain, scheduled)
        remaining = len(members)
        message = quorum_message(group.min_count, scheduled, remaining)
        if message is not None and remaining + scheduled < group.min_count:
            tried.status = Status.unschedulable(message, plugin=GANG_SCHEDULING)
            return tried
        table = self.cache.table
        for member in members:
            pod = member.pod
            state = CycleState()
            if domain is not None:
                state.restrict_nodes(GANG_SCHEDULING, domain)
            attempt = Attempt(pod)
            try:
                placed = self._algorithm(pod, profile, state, attempt)
                if placed is not None:
                    row, state = placed
                    node = table.node(row).name
                    self.cache.assume(pod, node)
                    status = profile.run_reserve(state, pod, node)
                    if status is not None:
                        profile.run_unreserve(state, pod, node)
                        self._forget(pod)
                        attempt.status = self._rejected_at(status, node)
                        attempt.diagnosis = _one_node_diagnosis(status)
                        placed = None
                    else:
                        tried.placed.append((member, node, state, attempt))
                        if attempt.scoring is not None:
                            tried.score += int(attempt.scoring.totals[attempt.scoring.chosen])
            except PluginError as err:
                tried.status = Status.error(
                    f"failed to schedule other pod from a pod group: {err.status.message}"
                )
                return tried
            except Exception as err:  # a plugin bug must not stop the scheduler
                log.exception("group cycle failed", extra={"pod": pod.key})
                self.classes.clear()
                tried.status = Status.error(
                    f"failed to schedule other pod from a pod group: scheduling cycle failed: {err}"
                )
                return tried
            remaining -= 1
            if placed is None:
                tried.failures[pod.uid] = attempt
                if attempt.status is not None and attempt.status.code is Code.ERROR:
                    tried.status = Status.error(
                        f"failed to schedule other pod from a pod group: {attempt.status.message}"
                    )
                    return tried
            done = scheduled + len(tried.placed)
            if remaining + done < group.min_count:
                message = quorum_message(group.min_count, done, remaining)
                tried.status = Status.unschedulable(message or "", plugin=GANG_SCHEDULING)
                return tried
        done = scheduled + len(tried.placed)
        message = quorum_message(group.min_count, done, 0)
        if message is not None:
            tried.status = Status.unschedulable(message, plugin=GANG_SCHEDULING)
        elif not tried.placed:
            # Upstream turns a "success" that placed nothing into a rejection.
            tried.status = Status.unschedulable(
                next(iter(tried.failures.values())).status.message  # type: ignore[union-attr]
                if tried.failures
                else "no pod of the group could be placed",
                plugin=GANG_SCHEDULING,
            )
        return tried

    def _revert(self, profile: Framework, tried: _GroupTry) -> None:
        """Undo a try's reservations in reverse order (upstream's revert functions)."""
        tried.best_placed = max(tried.best_placed, len(tried.placed))
        for member, node, state, _ in reversed(tried.placed):
            profile.run_unreserve(state, member.pod, node)
            self._forget(member.pod)
        tried.placed = []

    def _group_placed(
        self,
        members: list[QueuedPod],
        profile: Framework,
        group: PodGroup,
        tried: _GroupTry,
        start: float,
    ) -> Attempt:
        """The quorum is met: Permit (GangScheduling allows the whole group at once) and a
        binding cycle for each placed member; members that did not fit wait on their own
        FitError, as upstream's submitPodGroupAlgorithmResult does."""
        summary = self._group_summary(group, tried, len(members))
        if self.pod_groups is not None:
            self.pod_groups.quorum_met.add(group.key)
        try:
            for member, node, state, attempt in tried.placed:
                self._permit_and_bind(member, profile, node, state, attempt, summary, tried, start)
        finally:
            if self.pod_groups is not None:
                self.pod_groups.quorum_met.discard(group.key)
        placed = {m.pod.uid for m, _, _, a in tried.placed if a.node}
        for member in members:
            if member.pod.uid in placed:
                continue
            failed = tried.failures.get(member.pod.uid)
            attempt = failed or Attempt(member.pod, status=Status.unschedulable("not tried"))
            attempt.group = summary
            self._member_failed(member, profile, attempt, attempt.status, start)
        self._group_result(group, "scheduled", start, "", profile)
        self._starving.pop(group.key, None)
        if self._head is not None and self._head[0] == group.key:
            self._release_head()
        if group.is_gang and tried.scheduled < group.min_count and placed:
            self._group_binds[group.key] = len(placed)
        first = next((a for _, _, _, a in tried.placed if a.node), None)
        return first or Attempt(members[0].pod, status=Status.unschedulable("not placed"))

    def _permit_and_bind(
        self,
        member: QueuedPod,
        profile: Framework,
        node: str,
        state: CycleState,
        attempt: Attempt,
        summary: dict[str, Any],
        tried: _GroupTry,
        start: float,
    ) -> None:
        """One placed member: Permit, then its binding cycle; a Permit rejection undoes it."""
        pod = member.pod
        attempt.group = summary
        status = profile.run_permit(state, pod, node)
        if status is not None and status.code is not Code.WAIT:
            profile.run_unreserve(state, pod, node)
            self._forget(pod)
            attempt.status = self._rejected_at(status, node)
            attempt.diagnosis = _one_node_diagnosis(status)
            tried.failures[pod.uid] = attempt
            return
        attempt.node = node
        self._remember(attempt)
        self._start_binding(member, profile, state, node, start)

    def _group_failed(
        self,
        members: list[QueuedPod],
        profile: Framework,
        group: PodGroup,
        status: Status,
        failures: Mapping[str, Attempt],
        start: float,
        tried: _GroupTry | None = None,
        nominations: Mapping[str, str] | None = None,
    ) -> Attempt:
        """Nothing of the group is placed: every member waits. Members that fitted carry the
        group's message; the others their own FitError. All are requeued with every plugin
        that rejected any of them, so an event that may let the missing ones fit moves them,
        and the first to be popped takes the rest along."""
        error = status.code is Code.ERROR
        rejectors: set[str] = {GANG_SCHEDULING}
        for attempt in failures.values():
            rejectors |= _rejecting_plugins(attempt)
        summary = self._group_summary(group, tried, len(members))
        summary["message"] = status.message
        # Why the missing members did not fit, merged over them (explain's table).
        summary["unplaced"] = sorted(a.pod.name for a in failures.values())
        merged: dict[str, dict[str, int]] = {}
        for attempt in failures.values():
            if attempt.diagnosis is not None:
                for plugin, reasons in attempt.diagnosis.by_plugin.items():
                    into = merged.setdefault(plugin, {})
                    for reason, count in reasons.items():
                        into[reason] = into.get(reason, 0) + count
        summary["by_plugin"] = merged
        first: Attempt | None = None
        for member in members:
            own = failures.get(member.pod.uid)
            attempt = (
                own
                if own is not None and not error
                else Attempt(member.pod, status=Status(status.code, status.reasons))
            )
            attempt.group = summary
            nominated = (nominations or {}).get(member.pod.uid, "")
            attempt.nominated = nominated
            self._member_failed(
                member, profile, attempt, attempt.status, start, rejectors, nominated
            )
            first = first or attempt
        result = "error" if error else "unschedulable"
        if nominations:
            result = "waiting_on_preemption"
        elif not error and group.is_gang and not self._held.issuperset(m.pod.uid for m in members):
            self._note_starving(members, profile, group)
        self._group_result(group, result, start, status.message, profile)
        assert first is not None
        return first

    def _member_failed(
        self,
        member: QueuedPod,
        profile: Framework,
        attempt: Attempt,
        status: Status | None,
        start: float,
        rejectors: set[str] | None = None,
        nominated: str = "",
    ) -> None:
        pod = member.pod
        error = status is not None and status.code is Code.ERROR
        self._remember(attempt)
        self.observer.attempt(
            "error" if error else "unschedulable",
            profile.scheduler_name,
            time.perf_counter() - start,
        )
        self._nominated(pod, nominated)
        plugins = frozenset(rejectors) if rejectors else _rejecting_plugins(attempt)
        self.queue.requeue(member, frozenset() if error else plugins, error=error)
        message = status.message if status is not None else "unknown"
        self.reporter.failed(pod, message, "SchedulerError" if error else "Unschedulable")

    def _group_post_filter(
        self, members: list[QueuedPod], profile: Framework, group: PodGroup, scheduled: int
    ) -> tuple[str, dict[str, str]]:
        """Workload-aware preemption (upstream v1.37's PodGroupPostFilter): the whole group
        preempts, or nobody is evicted. Every lower-priority pod (not of the group) is taken
        off the nodes and the group cycle runs again; if the group then fits, the candidates
        are given back one by one, those whose eviction would break a PodDisruptionBudget
        first, then the more important ones first, and each stays only if every member placed
        on its node still passes the filters there. What is left are the victims, chosen for
        the group together. Returns the message part ("pod group preemption: ...") and the
        node each member is nominated to (empty when nothing is preempted)."""
        plugin = next((p for p in profile.post_filter if hasattr(p, "evaluator")), None)
        if plugin is None:
            return "", {}
        evaluator = plugin.evaluator
        prefix = "pod group preemption: "
        priority = group_priority(group, [m.pod for m in members])
        if any((m.pod.raw.get("spec") or {}).get("preemptionPolicy") == "Never" for m in members):
            return prefix + "not eligible due to preemptionPolicy=Never.", {}
        table = self.cache.table
        for m in members:
            node = self.queue.nominator.node_of(m.pod.uid) or m.pod.nominated_node_name
            row = table.row_of.get(node) if node else None
            if row is not None and any(
                other.priority < priority and evaluator.terminating_by_preemption(other)
                for other in table.pods[row].values()
            ):
                keep = {
                    m.pod.uid: self.queue.nominator.node_of(m.pod.uid) or m.pod.nominated_node_name
                    for m in members
                }
                return prefix + "ongoing preemption on nominated nodes", keep
        candidates = [
            (int(row), pod)
            for row in table.live_rows()
            for pod in table.pods[int(row)].values()
            if pod.priority < priority
            and not pod.deleting
            and group_key(pod) != group.key
            and not evaluator.terminating_by_preemption(pod)
        ]
        if not candidates:
            return prefix + "No preemption victims found for incoming preemptor", {}
        victims: list[tuple[int, PodInfo]] = []
        violations = 0
        nominations: dict[str, str] = {}
        with table.trial():
            table.remove_pods(candidates)
            tried: _GroupTry | None = None
            status: Status | None = None
            for domain in self._domains(group, scheduled):
                attempt = self._try_group(members, profile, group, scheduled, domain)
                if attempt.status is None:
                    tried = attempt
                    break
                status = status or attempt.status
                self._revert(profile, attempt)
            if tried is None:
                table.add_pods(candidates)
                return prefix + (status.message if status else "no placement"), {}
            units = self._victim_units(candidates)
            budgets = list(evaluator.handle.disruption_budgets())
            flat = [pod for unit in units for _, pod in unit]
            violating, _ = filter_pods_with_pdb_violation(flat, budgets)
            breaking = {pod.uid for pod in violating}
            # Units that would break a budget are given back first (upstream's reprieve order).
            units.sort(key=lambda unit: not any(pod.uid in breaking for _, pod in unit))
            for unit in units:
                table.add_pods(unit)
                if not all(self._assignments_fit(profile, tried, r) for r in {r for r, _ in unit}):
                    table.remove_pods(unit)
                    victims.extend(unit)
                    violations += sum(pod.uid in breaking for _, pod in unit)
            nominations = {m.pod.uid: node for m, node, _, _ in tried.placed}
            self._revert(profile, tried)
            table.add_pods(victims)
        if not victims:
            return "", {}
        evaluator.mark_preempting([pod for _, pod in victims])
        if self._on_preemption is not None:
            self._on_preemption(len(victims))
        preemptor = members[0].pod
        names = {row: table.node(row).name for row, _ in victims}

        async def execute() -> None:
            await asyncio.gather(
                *(
                    evaluator.handle.preempt(preemptor, pod, names[row], evaluator.plugin_name)
                    for row, pod in victims
                )
            )

        task = asyncio.get_running_loop().create_task(self._preempting(execute))
        self._side.add(task)
        task.add_done_callback(self._side.discard)
        log.info(
            "pod group preemption",
            extra={
                "podgroup": f"{group.namespace}/{group.name}",
                "victims": len(victims),
                "pdb_violations": violations,
            },
        )
        return prefix + f"found a placement for podgroup, preempting {len(victims)} victims", (
            nominations
        )

    # --- the starvation guard -----------------------------------------------------------

    def _held_behind(self, group: PodGroup, pods: Sequence[PodInfo]) -> tuple[str, ...] | None:
        """The key of the gang this gang must wait behind, if any: a younger gang (its quorum
        came later) of no higher priority waits while an older one starves (berth's rule,
        see _note_starving). A head that is gone or placed lets everyone go."""
        if self._head is None or self.pod_groups is None or not group.is_gang:
            return None
        store = self.pod_groups
        head, head_priority = self._head
        if head == group.key:
            return None
        if head not in store.groups or not store.unscheduled(head):
            self._release_head()
            return None
        mine, theirs = store.quorum_at.get(group.key), store.quorum_at.get(head)
        if mine is None or theirs is None or mine <= theirs:
            return None
        if group_priority(group, pods) > head_priority:
            return None
        return head

    def _note_starving(self, members: list[QueuedPod], profile: Framework, group: PodGroup) -> None:
        """A gang failed its group cycle. One that has failed for STARVATION_SECONDS, and
        would fit were the other gangs of no higher priority gone (so it can be placed once
        they finish), becomes the head: younger gangs of no higher priority are held until
        it is placed. Without this a large gang could wait for ever while small gangs take
        each bit of room as it frees. Only the oldest starving gang is the head."""
        store = self.pod_groups
        if store is None:
            return
        now = self._clock()
        since = self._starving.setdefault(group.key, now)
        if now - since < STARVATION_SECONDS:
            return
        mine = store.quorum_at.get(group.key)
        if self._head is not None:
            theirs = store.quorum_at.get(self._head[0])
            if mine is None or theirs is None or mine >= theirs:
                return
        priority = group_priority(group, [m.pod for m in members])
        if self._fits_without_other_gangs(members, profile, group, priority):
            if self._head is not None:
                self._release_head()
            self._head = (group.key, priority)
            log.info(
                "starving gang: younger gangs wait behind it",
                extra={"podgroup": f"{group.namespace}/{group.name}"},
            )

    def _fits_without_other_gangs(
        self, members: list[QueuedPod], profile: Framework, group: PodGroup, priority: int
    ) -> bool:
        """Would the group be placed if the pods of every other gang of no higher priority
        were gone? (Tried on the table, then undone.)"""
        store = self.pod_groups
        assert store is not None
        table = self.cache.table
        gone: list[tuple[int, PodInfo]] = []
        for key, other in store.groups.items():
            if key == group.key or not other.is_gang:
                continue
            pods = list(store.pods(key))
            if group_priority(other, pods) > priority:
                continue
            for pod in pods:
                row = table.row_of.get(pod.node_name or self.cache.node_of(pod.uid) or "")
                if row is not None and pod.uid in table.pods[row]:
                    gone.append((row, table.pods[row][pod.uid]))
        if not gone:
            return False
        scheduled = store.scheduled_count(group.key)
        with table.trial():
            table.remove_pods(gone)
            try:
                for domain in self._domains(group, scheduled):
                    tried = self._try_group(members, profile, group, scheduled, domain)
                    self._revert(profile, tried)
                    if tried.status is None:
                        return True
                return False
            finally:
                table.add_pods(gone)

    def _release_head(self) -> None:
        """The head gang is placed or gone: the gangs held behind it go back to the queue."""
        self._head = None
        held, self._held = self._held, set()
        self.queue.activate(held)

    def _victim_units(
        self, candidates: list[tuple[int, PodInfo]]
    ) -> list[list[tuple[int, PodInfo]]]:
        """The candidates as preemption units, most important first (upstream's
        getCrossNodesVictims and MoreImportantVictim): the pods of a PodGroup whose
        disruptionMode is `all` go together, every other pod alone. Higher priority first,
        then a group before a pod, then the larger group, then the earlier start."""
        store = self.pod_groups
        singles: list[list[tuple[int, PodInfo]]] = []
        together: dict[tuple[str, str, str], list[tuple[int, PodInfo]]] = {}
        for row, pod in candidates:
            group = store.group_of(pod) if store is not None else None
            if group is not None and group.disruption_mode == "all":
                together.setdefault(group.key, []).append((row, pod))
            else:
                singles.append([(row, pod)])

        def importance(grouped: bool, unit: list[tuple[int, PodInfo]]) -> tuple[int, int, int, str]:
            pods = [pod for _, pod in unit]
            earliest = min(more_important_pod(p)[1] for p in pods)
            return (-max(p.priority for p in pods), -int(grouped), -len(pods), earliest)

        ranked = [(importance(False, u), u) for u in singles]
        ranked += [(importance(True, u), u) for u in together.values()]
        ranked.sort(key=lambda pair: pair[0])
        return [unit for _, unit in ranked]

    def _assignments_fit(self, profile: Framework, tried: _GroupTry, row: int) -> bool:
        """Does every member the try placed on `row` still pass the filters there (each one
        checked with the others, and whatever was given back, in place)?"""
        table = self.cache.table
        for member, node, _, _ in tried.placed:
            if table.row_of.get(node) != row:
                continue
            table.remove_pods([(row, member.pod)])
            try:
                check = self._node_check(profile, CycleState(), member.pod, finished=False)
                fits = check(member.pod, row) is None
            finally:
                table.add_pods([(row, member.pod)])
            if not fits:
                return False
        return True

    def _group_summary(
        self, group: PodGroup, tried: _GroupTry | None, queued: int
    ) -> dict[str, Any]:
        """What explain shows of the group attempt."""
        out: dict[str, Any] = {
            "name": f"{group.namespace}/{group.name}",
            "api": group.api,
            "policy": group.policy,
            "min_count": group.min_count,
            "queued": queued,
        }
        if tried is not None:
            out["scheduled_before"] = tried.scheduled
            out["placed"] = len(tried.placed) if tried.status is None else tried.best_placed
            out["failed"] = len(tried.failures)
        if group.topology_key:
            out["topology_key"] = group.topology_key
        return out

    def _group_member_bound(self, pod: PodInfo, profile: Framework) -> None:
        """A member of a gang placed by the cycle that met its quorum is bound; after the
        last one, report the time since the quorum (result "bound")."""
        key = (pod.pod_group[0], pod.namespace, pod.pod_group[1]) if pod.pod_group else None
        if key is None or key not in self._group_binds:
            return
        self._group_binds[key] -= 1
        if self._group_binds[key] > 0:
            return
        del self._group_binds[key]
        store = self.pod_groups
        group = store.groups.get(key) if store is not None else None
        quorum = store.quorum_at.get(key) if store is not None else None
        if group is not None and quorum is not None and self._on_group is not None:
            seconds = store.clock() - quorum  # type: ignore[union-attr]
            self._on_group(group, "bound", seconds, "", profile.scheduler_name)

    def _group_result(
        self, group: PodGroup, result: str, start: float, message: str, profile: Framework
    ) -> None:
        if self._on_group is not None:
            seconds = time.perf_counter() - start
            self._on_group(group, result, seconds, message, profile.scheduler_name)

    # --- nomination and preemption -------------------------------------------------------

    def _nominated_by_row(self, pod: PodInfo) -> dict[int, list[PodInfo]]:
        """The pods nominated to a node that count against `pod` there, by row (the
        nominator's counted_against). Nominations change only after a cycle's filters and
        dry run, so the answer is kept for the rest of the cycle."""
        nominator = self.queue.nominator
        if not len(nominator):
            return {}
        key = (pod.uid, self._cycles, nominator.version)
        if self._by_row is not None and self._by_row[0] == key:
            return self._by_row[1]
        by_row = nominator.counted_against(pod, self.cache.table.row_of)
        self._by_row = (key, by_row)
        return by_row

    @contextlib.contextmanager
    def _reserve(self, by_row: Mapping[int, list[PodInfo]], rows: Iterable[int]) -> Iterator[None]:
        """Count the nominated pods `by_row` on those of `rows` they are nominated to while
        filters run; the table, row generations included, is restored afterwards."""
        table = self.cache.table
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

    def _filter(
        self,
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
        table = self.cache.table
        passed = profile.run_filters(state, pod, table, rows, diagnosis)
        crowded = [row for row in passed.tolist() if row in by_row] if by_row else []
        if not crowded:
            return passed
        with self._reserve(by_row, crowded):
            kept = profile.run_filters(state, pod, table, np.asarray(crowded), diagnosis)
        if kept.size == len(crowded):
            return passed
        dropped = np.setdiff1d(np.asarray(crowded), kept)
        return passed[~np.isin(passed, dropped)]

    def _place_nominated(self, pod: PodInfo, profile: Framework) -> tuple[int, CycleState] | None:
        """A pod nominated to a node tries that node first; if it fits there, it goes there
        without scoring (upstream's evaluateNominatedNode)."""
        node = self.queue.nominator.node_of(pod.uid) or pod.nominated_node_name
        table = self.cache.table
        row = table.row_of.get(node) if node else None
        if row is None:
            return None
        state = CycleState()
        if profile.run_pre_filter(state, pod, table) is not None:
            return None
        by_row = self._nominated_by_row(pod)
        passed = self._filter(profile, state, pod, np.asarray([row]), by_row, None)
        return (row, state) if passed.size else None

    def _node_check(
        self, profile: Framework, state: CycleState, pod: PodInfo, finished: bool
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
        table = self.cache.table
        redo = [p for p in profile.pre_filter if not finished or not profile.row_local(p, pod)]
        by_row = self._nominated_by_row(pod)

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
            passed = self._filter(profile, cycle_state, pod, np.asarray([row]), by_row, seen)
            if passed.size:
                return None
            return Status.unschedulable(*seen.counts, resolvable=not seen.unresolvable_rows)

        def many(pod: PodInfo, rows: Sequence[int]) -> set[int]:
            passed = self._filter(profile, state, pod, np.asarray(rows), by_row, None)
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

    def _post_filter(
        self, pod: PodInfo, profile: Framework, state: CycleState, attempt: Attempt
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
        check = self._node_check(profile, state, pod, finished=diagnosis.pre_filter is None)
        outcome = profile.run_post_filter(state, pod, self.cache.table, diagnosis, check)
        for result in outcome.attempts:
            if result is outcome.result:
                break
            if result.preemption and self._on_preemption is not None:
                self._on_preemption(None)
            if result.clear_nomination:
                self._nominated(pod, "")
            if result.execute is not None:
                # An unsuccessful PostFilter's own API work (DynamicResources deallocating or
                # deleting a claim), after the cycle, as upstream makes it inside PostFilter.
                task = asyncio.get_running_loop().create_task(
                    self._post_filter_work(result.execute)
                )
                self._side.add(task)
                task.add_done_callback(self._side.discard)
        if outcome.result is not None:
            result = outcome.result
            if self._on_preemption is not None:
                self._on_preemption(len(result.victims))
            self._nominated(pod, result.nominated_node)
            attempt.nominated = result.nominated_node
            attempt.victims = tuple(v.key for v in result.victims)
            if result.execute is not None:
                task = asyncio.get_running_loop().create_task(self._preempting(result.execute))
                self._side.add(task)
                task.add_done_callback(self._side.discard)
        diagnosis.post_filter = ", ".join(outcome.messages)
        attempt.status = Status(status.code, (diagnosis.message(),), status.plugin)

    async def _post_filter_work(self, execute: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await execute()
        except Exception as err:
            log.warning("PostFilter API call failed", extra={"error": str(err)})

    async def _preempting(self, execute: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A preemption's API side effects, timed as upstream's preemption goroutine."""
        start = time.perf_counter()
        result = "success"
        try:
            await execute()
        except Exception as err:
            result = "error"
            log.warning("preemption failed", extra={"error": str(err)})
        self.observer.preemption_goroutine(result, time.perf_counter() - start)

    def _nominated(self, pod: PodInfo, node: str) -> None:
        """Record (or clear, with "") the pod's nominated node in the nominator and in its
        status. A pod nominated over lower-priority ones on the same node takes their
        nomination away (upstream's getLowerPriorityNominatedPods)."""
        nominator = self.queue.nominator
        changed = (nominator.node_of(pod.uid) or pod.nominated_node_name) != node
        if node:
            for other in nominator.lower_priority_on(node, pod.priority):
                self._nominated(other, "")
        nominator.add(pod, node)
        pod.nominated_node_name = node
        if changed and self._nominate is not None:
            self._nominate(pod, node)

    def _remember(self, attempt: Attempt) -> None:
        """Keep the last attempts for explain; scores only for the most recent ones, since
        their arrays are as wide as the sampled node set."""
        if attempt.diagnosis is not None:
            # Only this cycle's PostFilter needs the rows. Kept, a set of up to every node per
            # unschedulable pod took `berth bench --in-memory --workload mixed` (1,000 such
            # pods, 5,000 nodes) from 130 MB to 779 MB peak RSS.
            attempt.diagnosis.unresolvable_rows = set()
        self.last[attempt.pod.key] = attempt
        self._scored.append(attempt)
        if len(self._scored) > KEEP_SCORES:
            self._scored.popleft().scoring = None
        if len(self.last) > KEEP_ATTEMPTS:
            self.last.pop(next(iter(self.last)))

    # --- binding cycle -------------------------------------------------------------------

    def _start_binding(
        self, entry: QueuedPod, profile: Framework, state: CycleState, node: str, start: float
    ) -> None:
        pod = entry.pod
        self.queue.assumed(pod.uid)
        task = asyncio.get_running_loop().create_task(
            self.binding_cycle(entry, profile, state, node, start)
        )
        self._binding.add(task)
        task.add_done_callback(self._binding_ended)
        if self._on_binding is not None:
            self._on_binding(len(self._binding))

    def _binding_ended(self, task: asyncio.Task[None]) -> None:
        self._binding.discard(task)
        if self._on_binding is not None:
            self._on_binding(len(self._binding))

    async def binding_cycle(
        self, entry: QueuedPod, profile: Framework, state: CycleState, node: str, start: float
    ) -> None:
        """WaitOnPermit (no binding slot held), then PreBind, Bind, PostBind in a slot.
        Upstream's bindingCycle and handleBindingCycleError."""
        pod = entry.pod
        waiting = profile.waiting_pods.get(pod.uid)
        if self._nominate is not None:
            flight = profile.run_pre_bind_pre_flight(state, pod, node)
            if flight is not None and flight.code is Code.ERROR:
                if waiting is not None:
                    waiting.reject("", flight.message)
                    await profile.wait_on_permit(pod)  # ends at once: the wait is over
                self.queue.done(pod.uid)
                self._binding_failed(entry, profile, state, node, flight, start)
                return
            if flight is None or waiting is not None:
                # NominatedNodeNameForExpectation (beta, on since v1.35): a pod about to wait
                # in Permit, or whose PreBind has work, tells autoscalers where it is going
                # before it is bound.
                pod.nominated_node_name = node
                self._nominate(pod, node)
        if waiting is not None:
            status = await profile.wait_on_permit(pod)
            if status is not None:
                self._permit_failed(entry, profile, state, node, status, start)
                return
        self.queue.done(pod.uid)
        async with self._bind_gate:
            self._holding += 1
            try:
                status = await self._pre_bind(profile, state, pod, node)
                if status is None:
                    status = await self._bind(profile, state, pod, node)
            except AlreadyBound:
                # Someone bound it first; the watch will show where. Never bind twice.
                self._forget(pod)
                self.queue.delete(pod.uid)
                return
            except Exception as err:
                # A timeout's message is empty: name the exception instead.
                status = Status.error(str(err) or type(err).__name__)
            finally:
                self._holding -= 1
        if status is not None:
            self._binding_failed(entry, profile, state, node, status, start)
            return
        self.cache.finish_binding(pod)
        profile.run_post_bind(state, pod, node)
        if pod.pod_group is not None and self._group_binds:
            self._group_member_bound(pod, profile)
        # The watch may already have taken the pod out of the queue: the SLI uses what the
        # queue knew when the pod was assumed.
        self.queue.pods.pop(pod.uid, None)
        # Upstream's attempt duration runs from the start of the scheduling cycle to the end
        # of the binding cycle.
        self.observer.attempt("scheduled", profile.scheduler_name, time.perf_counter() - start)
        self.observer.scheduled(entry.attempts, self._clock() - entry.arrival, entry.flushed)
        self.reporter.scheduled(pod, node)

    async def _bind(
        self, profile: Framework, state: CycleState, pod: PodInfo, node: str
    ) -> Status | None:
        """Upstream's bind: an interested binder extender first, else the Bind plugins."""
        if self.extenders:
            bound, error = await extenders_binding(self.extenders, pod, node)
            if bound:
                return Status.error(error) if error else None
        return await profile.run_bind(state, pod, node)

    async def _pre_bind(
        self, profile: Framework, state: CycleState, pod: PodInfo, node: str
    ) -> Status | None:
        """PreBind as a task preemption may cancel (upstream's podsInPreBind): a cancelled
        one fails the binding cycle with the preemption's reason."""
        if not profile.pre_bind:
            return await profile.run_pre_bind(state, pod, node)
        running = profile.pods_in_pre_bind
        task = asyncio.get_running_loop().create_task(profile.run_pre_bind(state, pod, node))
        running.add(pod.uid, task)
        try:
            return await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if (me is not None and me.cancelling()) or pod.uid not in running.reasons:
                raise  # this binding cycle itself was cancelled (shutdown)
            return Status.error(running.reasons.pop(pod.uid))
        finally:
            running.remove(pod.uid)

    def _permit_failed(
        self,
        entry: QueuedPod,
        profile: Framework,
        state: CycleState,
        node: str,
        status: Status,
        start: float,
    ) -> None:
        """A waiting pod was rejected (or timed out): unreserve, forget, and wait as
        unschedulable with the rejecting plugin recorded (an error goes to backoff)."""
        pod = entry.pod
        profile.run_unreserve(state, pod, node)
        self._forget(pod)
        self._nominated(pod, "")  # upstream's failure handler clears the nomination
        error = status.code is Code.ERROR
        failure = self._rejected_at(status, node)
        self.observer.attempt(
            "error" if error else "unschedulable",
            profile.scheduler_name,
            time.perf_counter() - start,
        )
        self.last[pod.key] = Attempt(pod, status=failure, diagnosis=_one_node_diagnosis(status))
        plugins = frozenset((status.plugin,)) if status.plugin and not error else frozenset()
        if self.queue.pods.get(pod.uid) is entry:
            self.queue.requeue(entry, plugins, error=error)
        self.reporter.failed(pod, failure.message, "SchedulerError" if error else "Unschedulable")

    def _binding_failed(
        self,
        entry: QueuedPod,
        profile: Framework,
        state: CycleState,
        node: str,
        status: Status,
        start: float,
    ) -> None:
        """PreBind or Bind failed: unreserve, forget, back off (never unschedulable: the
        failure is past the last point that can reject, as upstream)."""
        pod = entry.pod
        log.warning("binding failed", extra={"pod": pod.key, "node": node, "error": status.message})
        profile.run_unreserve(state, pod, node)
        self._forget(pod)
        self._nominated(pod, "")  # upstream's handleBindingCycleError: clearNominatedNode
        self.observer.attempt("error", profile.scheduler_name, time.perf_counter() - start)
        if self.queue.pods.get(pod.uid) is entry:
            self.queue.requeue(entry, error=True)
        self.reporter.failed(pod, f"Binding rejected: {status.message}", "SchedulerError")


GANG_SCHEDULING = "GangScheduling"  # the plugin whose Permit and PreEnqueue go with the cycle


def group_priority(group: PodGroup, pods: Sequence[PodInfo]) -> int:
    """The priority a group preempts with: upstream's PodGroupPriority (spec.priority, nil
    meaning 0); a CRD group has none of its own, so its members' highest."""
    if group.api == UPSTREAM_POD_GROUPS or group.priority is not None:
        return group.priority or 0
    return max((p.priority for p in pods), default=0)


def validate_group(group: PodGroup, pods: Sequence[PodInfo]) -> str | None:
    """Upstream's validatePodGroup: one schedulerName, the group's priority (upstream API),
    one preemption policy. The error text, or None."""
    first = pods[0].scheduler_name if pods else ""
    policy = ""
    for pod in pods:
        if pod.scheduler_name != first:
            return (
                "all pods in a single pod group should have the same .spec.schedulerName set, "
                f'got: "{pod.scheduler_name}" and "{first}"'
            )
        if group.api == UPSTREAM_POD_GROUPS and pod.priority != (group.priority or 0):
            return (
                "all pods in a single pod group should have the same priority as the pod "
                f"group's priority, got {pod.priority} and {group.priority or 0}"
            )
        own = (pod.raw.get("spec") or {}).get("preemptionPolicy") or "PreemptLowerPriority"
        if not policy:
            policy = own
        elif own != policy:
            return (
                "all pods in a single pod group should have the same preemption policy, "
                f"got {own} and {policy}"
            )
    return None


@dataclass
class _GroupTry:
    """One pass of a group cycle over its members, in one domain (None: every node)."""

    domain: frozenset[str] | None
    scheduled: int  # members assumed or bound before the cycle
    placed: list[tuple[QueuedPod, str, CycleState, Attempt]] = field(default_factory=list)
    failures: dict[str, Attempt] = field(default_factory=dict)
    status: Status | None = None  # None: the quorum is met
    score: int = 0  # the placed members' total scores (a tie-break between domains)
    best_placed: int = 0  # how many it placed before it was undone

    def rank(self) -> tuple[int, int, int]:
        placed = max(len(self.placed), self.best_placed)
        return (int(self.status is None), placed, self.score)


def _one_node_diagnosis(status: Status) -> Diagnosis:
    """Upstream's FitError over the one node a Reserve or Permit plugin rejected the pod on."""
    diagnosis = Diagnosis(total_nodes=1)
    for reason in status.reasons or (f"rejected by {status.plugin}",):
        diagnosis.counts[reason] = diagnosis.counts.get(reason, 0) + 1
    if status.plugin:
        diagnosis.by_plugin[status.plugin] = dict(diagnosis.counts)
    return diagnosis


def _rejecting_plugins(attempt: Attempt) -> frozenset[str]:
    """The plugins that rejected the pod in this attempt (upstream's UnschedulablePlugins):
    its Filter plugins, or the PreFilter plugin that rejected it for every node."""
    diagnosis = attempt.diagnosis
    if diagnosis is None:
        return frozenset()
    plugins = set(diagnosis.by_plugin)
    if diagnosis.pre_filter is not None and diagnosis.pre_filter.plugin:
        plugins.add(diagnosis.pre_filter.plugin)
    return frozenset(plugins)
