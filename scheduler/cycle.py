"""One scheduling cycle, and the asynchronous binding cycle that follows it.

The scheduling cycle is synchronous: from PreFilter to Reserve nothing awaits, so the live
NodeTable is a consistent snapshot. After Reserve the pod is assumed in the cache and its
binding runs as a task (bounded concurrency) while the next pod is scheduled.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from scheduler import batch
from scheduler.cache import Cache
from scheduler.framework import Code, CycleState, Diagnosis, Profile, Status
from scheduler.model import PodInfo
from scheduler.queue import QueuedPod, SchedulingQueue
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

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        best = np.argsort(-self.totals, kind="stable")[:n]
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
    ) -> None:
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
        """Wait for the binding tasks in flight."""
        while self._binding:
            await asyncio.gather(*list(self._binding), return_exceptions=True)

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
            plugins = frozenset(attempt.diagnosis.by_plugin) if attempt.diagnosis else frozenset()
            self.queue.requeue(entry, plugins, error=error)
            message = status.message if status else "unknown"
            self.reporter.failed(pod, message, "SchedulerError" if error else "Unschedulable")
        return attempt

    def _decide(self, pod: PodInfo, profile: Profile, state: CycleState) -> Attempt:
        table = self.cache.table
        attempt = Attempt(pod)
        try:
            placed = self._place_batched(pod, profile, attempt) if self.batching else None
            if placed is None:
                placed = self._place(pod, profile, state, attempt)
            if placed is None:
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
        self.queue.done(pod.uid)
        task = asyncio.get_running_loop().create_task(
            self._binding_cycle(pod, profile, state, node)
        )
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)
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
        until enough feasible nodes are found (upstream's percentageOfNodesToScore)."""
        order = self.cache.table.order()
        total = order.size
        if total == 0:
            return order
        wanted = self._wanted(profile, total)
        start = self.next_start % total
        rotated = np.concatenate((order[start:], order[:start]))
        chunk = max(wanted, 256)
        found: list[Rows] = []
        count = processed = 0
        while processed < total and count < wanted:
            rows = rotated[processed : processed + chunk]
            passed = profile.run_filters(state, pod, self.cache.table, rows, diagnosis)
            if count + passed.size > wanted:
                # Stop exactly at the wanted-th feasible node, as upstream does.
                passed = passed[: wanted - count]
                last = int(np.flatnonzero(rows == passed[-1])[0])
                processed += last + 1
            else:
                processed += rows.size
            found.append(passed)
            count += passed.size
        self.next_start = (start + processed) % total
        return np.concatenate(found) if found else order[:0]

    def _pick(
        self, rows: Rows, totals: npt.NDArray[np.int64], parts: dict[str, Any], attempt: Attempt
    ) -> int:
        """The highest total wins; ties are broken at random (upstream's reservoir choice)."""
        best = np.flatnonzero(totals == totals.max())
        choice = int(best[0]) if best.size == 1 else int(best[self._rng.randrange(best.size)])
        attempt.scoring = Scoring(self.cache.table, rows, totals, parts)
        return int(rows[choice])

    def _unreserve(self, profile: Profile, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in reversed(profile.reserve):
            plugin.unreserve(state, pod, node)

    def _remember(self, attempt: Attempt) -> None:
        """Keep the last attempts for explain; scores only for the most recent ones, since
        their arrays are as wide as the sampled node set."""
        self.last[attempt.pod.key] = attempt
        self._scored.append(attempt)
        if len(self._scored) > KEEP_SCORES:
            self._scored.popleft().scoring = None
        if len(self.last) > KEEP_ATTEMPTS:
            self.last.pop(next(iter(self.last)))

    # --- binding cycle -------------------------------------------------------------------

    async def _binding_cycle(
        self, pod: PodInfo, profile: Profile, state: CycleState, node: str
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
        entry = self.queue.pods.pop(pod.uid, None)
        if entry is not None:
            self.observer.scheduled(entry.attempts, self._clock() - entry.arrival)
        self.reporter.scheduled(pod, node)

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
