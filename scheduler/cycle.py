"""One scheduling cycle: the Scheduler, its loop, and upstream's schedulePod for one pod.

The scheduling cycle is synchronous: from PreFilter to Reserve nothing awaits, so the live
NodeTable is a consistent snapshot. After Reserve the pod is assumed in the cache and its
binding runs as a task (bounded concurrency) while the next pod is scheduled.

The exception is a pod an HTTP extender is interested in (config `extenders`): its cycle
awaits the extenders between Filter and Score and revalidates the table after the await
(`schedule_one_extended`; docs/extenders.md).

`Scheduler` holds the state every part of the cycle shares; the parts that are not the
one-pod path are module functions taking the Scheduler, one module per concern:

    cycle.py             Scheduler: the loop, schedule_one, scheduling_cycle (upstream's
                         schedulePod: nominated node, batched path, Filter, Score,
                         select_host), assume + Reserve + Permit, the attempts kept for explain
    nomination.py        filters with the nominated pods counted, the nominated node first,
                         PostFilter (preemption) and the nominations it writes
    extender_cycle.py    the HTTP extenders' calls and the extended cycle around them
    group_cycle.py       the group cycle for PodGroups, and the starvation guard
    group_preemption.py  workload-aware (gang) preemption
    binding_cycle.py     WaitOnPermit, PreBind, Bind, PostBind, as a task per pod
    attempt.py           what a cycle decided (Attempt, Scoring), read by all of them
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from scheduler import batch, binding_cycle, extender_cycle, group_cycle, nomination
from scheduler.attempt import Attempt, Scoring, one_node_diagnosis, rejecting_plugins
from scheduler.cache import Cache, CacheError
from scheduler.extender_client import ExtenderError, HTTPExtender
from scheduler.extender_cycle import interested
from scheduler.framework import AlreadyBound, Code, CycleState, Diagnosis, PluginError, Status
from scheduler.model import PodInfo
from scheduler.podgroups import PodGroup, PodGroupStore
from scheduler.queue import QueuedPod, SchedulingQueue
from scheduler.runtime import Framework, Observer
from scheduler.snapshot import Rows

log = logging.getLogger("berth.cycle")

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
NO_NODES = "no nodes available to schedule pods"  # upstream's ErrNoNodesAvailable
KEEP_ATTEMPTS = 10000
KEEP_SCORES = 256
# Rows of scores kept over all those attempts (each row: its total and each plugin's part):
# with a million nodes a window is 50,000 rows, and 256 of them held 400 MB.
KEEP_SCORE_ROWS = 1 << 20
PLUGIN_SAMPLE_EVERY = 10  # per-plugin timings on one cycle in ten, as upstream

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
        self._scored: deque[tuple[Attempt, int]] = deque()  # with the rows of its scores
        self._scored_rows = 0  # their sum
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
        # Set when the batched path has just found that no node fits the pod (its class's
        # results are up to date on every row): the one-pod path, which must still explain
        # the failure node by node, then filters every node in one chunk.
        self._fits_nowhere = False

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
        group = group_cycle.group_of(self, pod, profile)
        if group is not None:
            return group_cycle.schedule_group(self, entry, profile, group)
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
            binding_cycle.start_binding(self, entry, profile, bind_state, attempt.node, start)
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
            nomination.set_nominated(self, pod, "")
        if plugins is None:
            plugins = rejecting_plugins(attempt)
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
                nomination.post_filter(self, pod, profile, state, attempt)
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
            attempt.diagnosis = one_node_diagnosis(status)
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
        self._fits_nowhere = False
        if state.node_names is None:
            placed = nomination.place_nominated(self, pod, profile)
            if placed is None and self.batching and not nomination.nominated_by_row(self, pod):
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
        message = one_node_diagnosis(status).message()
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
        windowed = profile.window_scored(pod)
        if windowed is None:
            return None
        table = self.cache.table
        start = time.perf_counter()
        cached = self.classes.lookup(profile, pod, table, windowed)
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
            self._fits_nowhere = True
            return None
        self.observer.extension_point(
            "Filter", "Success", profile.scheduler_name, time.perf_counter() - start
        )
        if rows.size == 1:
            self.next_start = (first + processed) % total
            return int(rows[0]), cached.state
        start = time.perf_counter()
        scored = batch.window_scores(profile, cached, pod, table, rows)
        if isinstance(scored, Status):
            # The one-pod path filters again from the same start, runs PreScore again and
            # reports its failure.
            return None
        self.next_start = (first + processed) % total
        totals, parts = scored
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
        chunk = total if self._fits_nowhere else max(wanted, 256)
        self._fits_nowhere = False
        found: list[Rows] = []
        count = processed = 0
        by_row = nomination.nominated_by_row(self, pod)
        while processed < total and count < wanted:
            rows = rotated[processed : processed + chunk]
            passed = nomination.run_filters_with_nominated(
                self, profile, state, pod, rows, by_row, diagnosis
            )
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
        if profile is None or group_cycle.group_of(self, pod, profile) is not None:
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
            state, filtered = await extender_cycle.extended_cycle(
                self, pod, profile, state, attempt, extenders
            )
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

    # --- attempts kept for explain --------------------------------------------------------

    def _remember(self, attempt: Attempt) -> None:
        """Keep the last attempts for explain; scores only for the most recent ones, since
        their arrays are as wide as the sampled node set."""
        if attempt.diagnosis is not None:
            # Only this cycle's PostFilter needs the rows. Kept, a set of up to every node per
            # unschedulable pod took `berth bench --in-memory --workload mixed` (1,000 such
            # pods, 5,000 nodes) from 130 MB to 779 MB peak RSS.
            attempt.diagnosis.unresolvable_rows = set()
        self.last[attempt.pod.key] = attempt
        size = attempt.scoring.rows.size if attempt.scoring is not None else 0
        self._scored.append((attempt, size))
        self._scored_rows += size
        while len(self._scored) > 1 and (
            len(self._scored) > KEEP_SCORES or self._scored_rows > KEEP_SCORE_ROWS
        ):
            old, rows = self._scored.popleft()
            old.scoring = None
            self._scored_rows -= rows
        if len(self.last) > KEEP_ATTEMPTS:
            self.last.pop(next(iter(self.last)))
