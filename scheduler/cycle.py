"""One scheduling cycle, and the asynchronous binding cycle that follows it.

The scheduling cycle is synchronous: from PreFilter to Reserve nothing awaits, so the live
NodeTable is a consistent snapshot. After Reserve the pod is assumed in the cache and its
binding runs as a task (bounded concurrency) while the next pod is scheduled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from scheduler import batch
from scheduler.cache import Cache
from scheduler.framework import Code, CycleState, Diagnosis, NodeCheck, Profile, Status
from scheduler.model import PodInfo
from scheduler.queue import ASSUMED, QueuedPod, SchedulingQueue
from scheduler.snapshot import NodeTable, Rows

log = logging.getLogger("berth.cycle")

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
NO_NODES = "no nodes available to schedule pods"  # upstream's ErrNoNodesAvailable
KEEP_ATTEMPTS = 10000
KEEP_SCORES = 256
PLUGIN_SAMPLE_EVERY = 10  # per-plugin timings on one cycle in ten, as upstream


class AlreadyBound(Exception):
    """The API server says the pod is bound already (409 on the binding): drop it."""


class Reporter(Protocol):
    """API side effects of a result, fire-and-forget (Events, the PodScheduled condition)."""

    def scheduled(self, pod: PodInfo, node: str) -> None: ...

    def failed(self, pod: PodInfo, message: str, reason: str) -> None: ...


class Observer(Protocol):
    """Metrics hooks."""

    def attempt(self, result: str, profile: str, seconds: float) -> None: ...

    def scheduled(self, attempts: int, seconds_since_arrival: float) -> None: ...

    def extension_point(self, point: str, status: str, profile: str, seconds: float) -> None: ...

    def plugin(self, plugin: str, point: str, seconds: float) -> None: ...


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


class Scheduler:
    def __init__(
        self,
        cache: Cache,
        queue: SchedulingQueue,
        profiles: Mapping[str, Profile],
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
    ) -> None:
        """`nominate(pod, node)` writes status.nominatedNodeName ("" clears it);
        `on_preemption(victims)` counts a preemption attempt (None: no node found);
        `on_binding(running)` is told how many binding cycles run whenever that changes."""
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
        self.next_start = 0
        self._cycles = 0
        self.batching = batching
        self.classes = batch.EquivalenceCache()
        self._scored: deque[Attempt] = deque()
        self.last: dict[str, Attempt] = {}  # pod key -> last attempt (bounded, for explain)
        # Pods nominated by preemption: uid -> node. They are tried there first, and count
        # against that node for pods of lower or equal priority (upstream's nominator).
        self.nominated: dict[str, str] = {}
        self._by_row: tuple[tuple[str, int], dict[int, list[PodInfo]]] | None = None
        self._nominate = nominate
        self._on_preemption = on_preemption
        self._on_binding = on_binding
        self._side: set[asyncio.Task[None]] = set()  # preemption API calls in flight

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
            self.schedule_one(entry)
            # Let the informer and the binding tasks in at least every few milliseconds.
            if time.perf_counter() - budget_start > 0.005:
                await asyncio.sleep(0)
                budget_start = time.perf_counter()

    async def drain(self) -> None:
        """Wait for the binding (and preemption) tasks in flight."""
        while self._binding or self._side:
            await asyncio.gather(*list(self._binding | self._side), return_exceptions=True)

    # --- scheduling cycle ----------------------------------------------------------------

    def schedule_one(self, entry: QueuedPod) -> Attempt:
        pod = entry.pod
        profile = self.profiles[pod.scheduler_name]
        self._cycles += 1
        profile.observe = self.observer.plugin if self._cycles % PLUGIN_SAMPLE_EVERY == 0 else None
        start = time.perf_counter()
        attempt = self._decide(pod, profile, CycleState())
        elapsed = time.perf_counter() - start
        self._remember(attempt)
        if attempt.node:
            self.observer.attempt("scheduled", profile.scheduler_name, elapsed)
        else:
            status = attempt.status
            error = status is not None and status.code is Code.ERROR
            self.observer.attempt(
                "error" if error else "unschedulable", profile.scheduler_name, elapsed
            )
            plugins = _rejecting_plugins(attempt)
            self.queue.requeue(entry, plugins, error=error)
            message = status.message if status else "unknown"
            self.reporter.failed(pod, message, "SchedulerError" if error else "Unschedulable")
        return attempt

    def _decide(self, pod: PodInfo, profile: Profile, state: CycleState) -> Attempt:
        table = self.cache.table
        attempt = Attempt(pod)
        try:
            placed = self._place_nominated(pod, profile)
            if placed is None and self.batching and not self._nominated_by_row(pod):
                # Class results cannot count other pods' nominations: those take the slow path.
                placed = self._place_batched(pod, profile, attempt)
            if placed is None:
                placed = self._place(pod, profile, state, attempt)
            if placed is None:
                self._post_filter(pod, profile, state, attempt)
                return attempt
            row, state = placed
            node = table.node(row).name
            self.cache.assume(pod, node)
            for plugin in profile.reserve:
                status = plugin.reserve(state, pod, node)
                if status is not None:
                    self._unreserve(profile, state, pod, node)
                    self.cache.forget(pod)
                    attempt.status = Status(status.code, status.reasons, plugin.name)
                    return attempt
        except Exception as err:  # a plugin bug must not stop the scheduler
            log.exception("scheduling cycle failed", extra={"pod": pod.key})
            self.classes.clear()
            attempt.status = Status.error(f"scheduling cycle failed: {err}")
            return attempt
        attempt.node = node
        self.nominated.pop(pod.uid, None)
        queued = self.queue.pods.get(pod.uid)
        self.queue.done(pod.uid)
        task = asyncio.get_running_loop().create_task(
            self._binding_cycle(pod, profile, state, node, queued)
        )
        self._binding.add(task)
        task.add_done_callback(self._binding_ended)
        if self._on_binding is not None:
            self._on_binding(len(self._binding))
        return attempt

    def _place(
        self, pod: PodInfo, profile: Profile, state: CycleState, attempt: Attempt
    ) -> tuple[int, CycleState] | None:
        """The one-pod-at-a-time path: every plugin runs for this pod alone, and a failure
        is explained node by node (the diagnosis)."""
        table = self.cache.table
        diagnosis = attempt.diagnosis = Diagnosis(total_nodes=len(table))
        if len(table) == 0:
            # Upstream fails before PreFilter with ErrNoNodesAvailable, not a "0/0" FitError.
            attempt.status = Status.unschedulable(NO_NODES, resolvable=False)
            return None
        name = profile.scheduler_name
        point = self.observer.extension_point
        start = time.perf_counter()
        status = profile.run_pre_filter(state, pod, table)
        point("PreFilter", _status_label(status), name, time.perf_counter() - start)
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
        point("Filter", filtered, name, time.perf_counter() - start)
        if feasible.size == 0:
            attempt.status = Status.unschedulable(diagnosis.message())
            return None
        start = time.perf_counter()
        if feasible.size == 1:
            row = int(feasible[0])  # upstream skips scoring with a single candidate
        else:
            totals, parts = profile.run_scores(state, pod, table, feasible)
            row = self._pick(feasible, totals, parts, attempt)
        point("Score", "Success", name, time.perf_counter() - start)
        return row, state

    def _place_batched(
        self, pod: PodInfo, profile: Profile, attempt: Attempt
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
        row = self._pick(rows, totals, parts, attempt)
        self.observer.extension_point(
            "Score", "Success", profile.scheduler_name, time.perf_counter() - start
        )
        return row, cached.state

    def _wanted(self, profile: Profile, total: int) -> int:
        percentage = profile.percentage_of_nodes_to_score
        return num_feasible_nodes_to_find(
            percentage if percentage is not None else self.percentage, total
        )

    def _find_feasible(
        self, pod: PodInfo, profile: Profile, state: CycleState, diagnosis: Diagnosis
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

    def _pick(
        self, rows: Rows, totals: npt.NDArray[np.int64], parts: dict[str, Any], attempt: Attempt
    ) -> int:
        """The highest total wins; ties are broken at random (upstream's reservoir choice)."""
        best = np.flatnonzero(totals == totals.max())
        choice = int(best[0]) if best.size == 1 else int(best[self._rng.randrange(best.size)])
        attempt.scoring = Scoring(self.cache.table, rows, totals, parts, choice)
        return int(rows[choice])

    # --- nomination and preemption -------------------------------------------------------

    def _nominated_by_row(self, pod: PodInfo) -> dict[int, list[PodInfo]]:
        """The pods nominated to a node that count against `pod` there, by row: those of
        priority >= its own, other than itself (upstream's addNominatedPods). Nominations of
        pods that left the queue or were assumed are dropped here. Nominations change only
        after a cycle's filters and dry run, so the answer is kept for the rest of the cycle."""
        if not self.nominated:
            return {}
        if self._by_row is not None and self._by_row[0] == (pod.uid, self._cycles):
            return self._by_row[1]
        by_row: dict[int, list[PodInfo]] = {}
        pods, row_of, priority = self.queue.pods, self.cache.table.row_of, pod.priority
        for uid, node in list(self.nominated.items()):
            entry = pods.get(uid)
            if entry is None or entry.where == ASSUMED:
                del self.nominated[uid]
            elif entry.pod.priority >= priority and uid != pod.uid:
                row = row_of.get(node)
                if row is not None:
                    if row in by_row:
                        by_row[row].append(entry.pod)
                    else:
                        by_row[row] = [entry.pod]
        self._by_row = ((pod.uid, self._cycles), by_row)
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
        profile: Profile,
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

    def _place_nominated(self, pod: PodInfo, profile: Profile) -> tuple[int, CycleState] | None:
        """A pod nominated to a node tries that node first; if it fits there, it goes there
        without scoring (upstream's evaluateNominatedNode)."""
        node = self.nominated.get(pod.uid) or pod.nominated_node_name
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
        self, profile: Profile, state: CycleState, pod: PodInfo, finished: bool
    ) -> NodeCheck:
        """Filters on one row as the table stands, for preemption's dry run.

        When the cycle's PreFilter `finished`, its state is reused for the plugins that are
        row-local for the pod (their state cannot depend on the pods being removed or added
        back); the others redo PreFilter on a copy, on the table as it is then (upstream
        updates their state incrementally instead, with PreFilterExtensions AddPod/RemovePod).
        Otherwise PreFilter runs afresh for every check.

        The pods nominated elsewhere do not change during a dry run, so they are looked up
        once. When every PreFilter and Filter plugin is row-local for the pod, the check also
        offers `many(pod, rows)`: one vectorized filter pass over many rows, each as if it
        were checked alone, and `stamp(row)`, what a row's verdict depends on besides the pod
        (framework.NodeCheck)."""
        table = self.cache.table
        redo = [p for p in profile.pre_filter if not finished or not _row_local(p, pod)]
        by_row = self._nominated_by_row(pod)

        def check(pod: PodInfo, row: int) -> Status | None:
            cycle_state = state
            if not finished:
                cycle_state = CycleState()
            elif redo:
                cycle_state = CycleState(
                    dict(state.data), set(state.skip_filter), set(state.skip_score)
                )
            for plugin in redo:
                cycle_state.skip_filter.discard(plugin.name)
                status = plugin.pre_filter(cycle_state, pod, table)
                if status is None:
                    continue
                if status.code is Code.SKIP:
                    cycle_state.skip_filter.add(plugin.name)
                    continue
                return Status(status.code, status.reasons, plugin.name)
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

        if not redo and all(_row_local(p, pod) for p in profile.filter):
            return _NodeCheck(check, nominated, many, stamp)
        return _NodeCheck(check, nominated, None, None)

    def _post_filter(
        self, pod: PodInfo, profile: Profile, state: CycleState, attempt: Attempt
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
        messages: list[str] = []
        stopped = Status(Code.UNSCHEDULABLE)
        start = time.perf_counter()
        for plugin in profile.post_filter:
            result = plugin.post_filter(state, pod, self.cache.table, diagnosis, check)
            if result.status is None:
                if self._on_preemption is not None:
                    self._on_preemption(len(result.victims))
                self._nominated(pod, result.nominated_node)
                attempt.nominated = result.nominated_node
                attempt.victims = tuple(v.key for v in result.victims)
                if result.execute is not None:
                    task = asyncio.get_running_loop().create_task(result.execute())
                    self._side.add(task)
                    task.add_done_callback(self._side.discard)
                # The successful plugin's message replaces what those before it said.
                messages = [result.message] if result.message else []
                break
            if result.preemption and self._on_preemption is not None:
                self._on_preemption(None)
            if result.clear_nomination:
                self._nominated(pod, "")
            if result.status.code in (Code.ERROR, Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
                stopped = result.status
                messages = [stopped.message] if stopped.message else []
                break
            if result.status.message:
                messages.append(result.status.message)
        label = "Success" if attempt.nominated else _status_label(stopped)
        self.observer.extension_point(
            "PostFilter", label, profile.scheduler_name, time.perf_counter() - start
        )
        diagnosis.post_filter = ", ".join(messages)
        attempt.status = Status(status.code, (diagnosis.message(),), status.plugin)

    def _nominated(self, pod: PodInfo, node: str) -> None:
        """Record (or clear, with "") the pod's nominated node here and in its status. A pod
        nominated over lower-priority ones on the same node takes their nomination away
        (upstream's getLowerPriorityNominatedPods)."""
        changed = (self.nominated.get(pod.uid) or pod.nominated_node_name) != node
        if node:
            self.nominated[pod.uid] = node
            for uid, other_node in list(self.nominated.items()):
                entry = self.queue.pods.get(uid)
                if other_node == node and entry is not None and entry.pod.priority < pod.priority:
                    self._nominated(entry.pod, "")
        else:
            self.nominated.pop(pod.uid, None)
        pod.nominated_node_name = node
        if changed and self._nominate is not None:
            self._nominate(pod, node)

    def _unreserve(self, profile: Profile, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in reversed(profile.reserve):
            plugin.unreserve(state, pod, node)

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

    async def _binding_cycle(
        self,
        pod: PodInfo,
        profile: Profile,
        state: CycleState,
        node: str,
        queued: QueuedPod | None = None,
    ) -> None:
        async with self._bind_gate:
            try:
                await self._permit(profile, state, pod, node)
                for pre in profile.pre_bind:
                    if (status := await pre.pre_bind(state, pod, node)) is not None:
                        raise _Rejected(status)
                start = time.perf_counter()
                for binder in profile.bind:
                    status = await binder.bind(state, pod, node)
                    if status is None:
                        break
                    if status.code is not Code.SKIP:
                        raise _Rejected(status)
                self.observer.extension_point(
                    "Bind", "Success", profile.scheduler_name, time.perf_counter() - start
                )
            except AlreadyBound:
                # Someone bound it first; the watch will show where. Never bind twice.
                self.cache.forget(pod)
                self.queue.delete(pod.uid)
                return
            except Exception as err:
                self._binding_failed(profile, state, pod, node, err)
                return
        self.cache.finish_binding(pod)
        for post in profile.post_bind:
            post.post_bind(state, pod, node)
        # The watch may already have taken the pod out of the queue: the SLI uses what the
        # queue knew when the pod was assumed.
        self.queue.pods.pop(pod.uid, None)
        if queued is not None:
            self.observer.scheduled(queued.attempts, self._clock() - queued.arrival)
        self.reporter.scheduled(pod, node)

    def _binding_ended(self, task: asyncio.Task[None]) -> None:
        self._binding.discard(task)
        if self._on_binding is not None:
            self._on_binding(len(self._binding))

    async def _permit(self, profile: Profile, state: CycleState, pod: PodInfo, node: str) -> None:
        waits = []
        for plugin in profile.permit:
            status, timeout = plugin.permit(state, pod, node)
            if status is None:
                continue
            if status.code is Code.WAIT:
                waits.append(timeout)
                continue
            raise _Rejected(Status(status.code, status.reasons, plugin.name))
        if waits:
            # No plugin berth ships allows a waiting pod early; the wait ends at its timeout
            # with a rejection, as upstream does when nobody calls Allow.
            await asyncio.sleep(min(waits))
            raise _Rejected(
                Status.unschedulable(
                    f"rejected due to timeout after waiting {min(waits):.0f}s at permit"
                )
            )

    def _binding_failed(
        self, profile: Profile, state: CycleState, pod: PodInfo, node: str, err: Exception
    ) -> None:
        log.warning("binding failed", extra={"pod": pod.key, "node": node, "error": str(err)})
        self._unreserve(profile, state, pod, node)
        self.cache.forget(pod)
        entry = self.queue.pods.get(pod.uid)
        if entry is not None:
            self.queue.requeue(entry, error=True)
        message = err.status.message if isinstance(err, _Rejected) else str(err)
        self.reporter.failed(pod, f"Binding rejected: {message}", "SchedulerError")


@dataclass(frozen=True)
class _NodeCheck:
    """framework.NodeCheck: one row at a time, and (when the filters allow) many at once."""

    one: Callable[[PodInfo, int], Status | None]
    nominated: Callable[[int], Sequence[PodInfo]]
    many: Callable[[PodInfo, Sequence[int]], set[int]] | None
    stamp: Callable[[int], Hashable] | None

    def __call__(self, pod: PodInfo, row: int) -> Status | None:
        return self.one(pod, row)


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


def _row_local(plugin: Any, pod: PodInfo) -> bool:
    """Does the plugin's answer for a node depend only on the pod and that node's row?"""
    if getattr(plugin, "row_local", False):
        return True
    check = getattr(plugin, "row_local_for", None)
    return check is not None and bool(check(pod))


_STATUS_LABELS = {
    Code.SUCCESS: "Success",
    Code.ERROR: "Error",
    Code.UNSCHEDULABLE: "Unschedulable",
    Code.UNSCHEDULABLE_AND_UNRESOLVABLE: "UnschedulableAndUnresolvable",
    Code.WAIT: "Wait",
    Code.SKIP: "Skip",
    Code.PENDING: "Pending",
}


def _status_label(status: Status | None) -> str:
    return "Success" if status is None else _STATUS_LABELS[status.code]


class _Rejected(Exception):
    def __init__(self, status: Status) -> None:
        super().__init__(status.message)
        self.status = status
