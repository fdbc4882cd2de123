"""The runner: a Framework per profile runs every extension point, timed in one place.

Mirrors upstream's pkg/scheduler/framework/runtime (framework.go, waiting_pods_map.go). The
scheduling cycle (cycle.py), the equivalence-batched path (batch.py) and preemption's dry run
all go through these methods, so a plugin is called one way whichever path a pod takes:

    run_pre_enqueue ─ sort_key ─ run_pre_filter ─ run_filters / filter_mask ─ run_post_filter
    ─ run_pre_score ─ run_scores (Score + NormalizeScore + weights) ─ run_reserve
    ─ run_permit (Wait parks a WaitingPod) ─ wait_on_permit ─ run_pre_bind ─ run_bind
    ─ run_post_bind;  run_unreserve (reverse order) on any failure after Reserve

Status codes do what upstream's do (framework.Code). Extension point durations are observed
on every call; per-plugin durations on the cycles the caller samples (`sample_plugins`), as
upstream samples 10% of cycles; plugin evaluations are counted in plain ints and handed to the
metrics on scrape (`take_evaluations`), since a Prometheus counter per plugin call would cost
more than most plugins.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from scheduler.framework import (
    NARROWED_TO_NONE,
    NARROWED_TO_NONE_MANY,
    SKIP,
    BatchablePlugin,
    BindPlugin,
    ClusterEvent,
    Code,
    CycleState,
    Diagnosis,
    EnqueueExtensions,
    FilterPlugin,
    FilterResult,
    NodeCheck,
    PermitPlugin,
    PostBindPlugin,
    PostFilterPlugin,
    PostFilterResult,
    PreBindPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    QueueingHint,
    QueueingHintFn,
    QueueSortPlugin,
    ReservePlugin,
    ScorePlugin,
    Scores,
    Status,
    WindowScoredPlugin,
)
from scheduler.model import PodInfo
from scheduler.snapshot import Mask, NodeTable, Rows

log = logging.getLogger("berth.runtime")

MAX_PERMIT_TIMEOUT = 15 * 60.0  # upstream's maxTimeout for a Permit Wait
_ASKED_TO_WAIT = "one or more plugins asked to wait and no plugin rejected pod"


class Observer(Protocol):
    """Where the runtime and the cycle report what they measure (metrics.py behind it)."""

    def attempt(self, result: str, profile: str, seconds: float) -> None: ...

    def algorithm(self, seconds: float) -> None: ...

    def scheduled(self, attempts: int, seconds_since_arrival: float, flushed: bool) -> None:
        """A pod was bound; `flushed`: it had been moved by the 5-minute flush."""

    def extension_point(self, point: str, status: str, profile: str, seconds: float) -> None: ...

    def plugin(self, plugin: str, point: str, status: str, seconds: float) -> None: ...

    def permit_wait(self, status: str, seconds: float) -> None: ...

    def queueing_hint(self, plugin: str, event: str, hint: str, seconds: float) -> None:
        """A plugin's queueing hint ran for `event`, saying `hint` (Queue, QueueSkip,
        Error)."""

    def preemption_goroutine(self, result: str, seconds: float) -> None:
        """A preemption's API work ended with `result` (success, error)."""


class NullObserver:
    """An Observer that keeps nothing (unit tests of the runtime)."""

    def attempt(self, result: str, profile: str, seconds: float) -> None:
        pass

    def algorithm(self, seconds: float) -> None:
        pass

    def scheduled(self, attempts: int, seconds_since_arrival: float, flushed: bool) -> None:
        pass

    def queueing_hint(self, plugin: str, event: str, hint: str, seconds: float) -> None:
        pass

    def preemption_goroutine(self, result: str, seconds: float) -> None:
        pass

    def extension_point(self, point: str, status: str, profile: str, seconds: float) -> None:
        pass

    def plugin(self, plugin: str, point: str, status: str, seconds: float) -> None:
        pass

    def permit_wait(self, status: str, seconds: float) -> None:
        pass


_STATUS_LABELS = {
    Code.SUCCESS: "Success",
    Code.ERROR: "Error",
    Code.UNSCHEDULABLE: "Unschedulable",
    Code.UNSCHEDULABLE_AND_UNRESOLVABLE: "UnschedulableAndUnresolvable",
    Code.WAIT: "Wait",
    Code.SKIP: "Skip",
    Code.PENDING: "Pending",
}


def status_label(status: Status | None) -> str:
    """Upstream's Code.String() of a status (None is Success), as metrics label it."""
    return "Success" if status is None else _STATUS_LABELS[status.code]


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it: 10s, 1m30s, 1.5s, 500ms."""
    if seconds < 1:
        millis = seconds * 1000
        return f"{millis:g}ms"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    secs = f"{rest:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


# --- waiting pods (Permit) ------------------------------------------------------------------


class WaitingPodImpl:
    """framework.WaitingPod: parked by Permit Wait until every waiting plugin allows it, one
    rejects it, or a plugin's timeout rejects it (upstream's waitingPod)."""

    def __init__(
        self, pod: PodInfo, node: str, timeouts: dict[str, float], clock: Callable[[], float]
    ) -> None:
        self._pod = pod
        self._node = node
        self.started = clock()
        self._result: asyncio.Future[Status | None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        self._pending: dict[str, asyncio.TimerHandle] = {
            plugin: loop.call_later(timeout, self._timed_out, plugin, timeout)
            for plugin, timeout in timeouts.items()
        }

    @property
    def pod(self) -> PodInfo:
        return self._pod

    @property
    def node(self) -> str:
        return self._node

    def pending_plugins(self) -> list[str]:
        return list(self._pending)

    def allow(self, plugin: str) -> None:
        timer = self._pending.pop(plugin, None)
        if timer is not None:
            timer.cancel()
        if not self._pending and not self._result.done():
            self._result.set_result(None)

    def reject(self, plugin: str, message: str) -> None:
        self._stop(Status(Code.UNSCHEDULABLE, (message,), plugin))

    def preempt(self, plugin: str, message: str) -> bool:
        """Preempted while waiting (upstream's waitingPod.Preempt): the pod is unreserved
        and backs off, as after an error, instead of being deleted. False if its wait had
        already ended."""
        if self._result.done():
            return False
        self._stop(Status(Code.ERROR, (message,), plugin))
        return True

    def _timed_out(self, plugin: str, timeout: float) -> None:
        self.reject(
            plugin,
            f"rejected due to timeout after waiting {go_duration(timeout)} at plugin {plugin}",
        )

    @property
    def done(self) -> bool:
        return self._result.done()

    def _stop(self, status: Status) -> None:
        for timer in self._pending.values():
            timer.cancel()
        self._pending.clear()
        if not self._result.done():
            self._result.set_result(status)

    async def wait(self) -> Status | None:
        return await self._result


class WaitingPods:
    """uid -> WaitingPod, shared by every profile's Framework and the Handle."""

    def __init__(self) -> None:
        self._pods: dict[str, WaitingPodImpl] = {}

    def add(self, waiting: WaitingPodImpl) -> None:
        self._pods[waiting.pod.uid] = waiting

    def remove(self, uid: str) -> None:
        self._pods.pop(uid, None)

    def get(self, uid: str) -> WaitingPodImpl | None:
        return self._pods.get(uid)

    def __iter__(self) -> Iterator[WaitingPodImpl]:
        return iter(self._pods.values())

    def __len__(self) -> int:
        return len(self._pods)


class PodsInPreBind:
    """uid -> the task running a pod's PreBind plugins (upstream's podsInPreBind map, v1.36):
    preemption may cancel a victim there, in memory, instead of deleting it."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Status | None]] = {}
        self.reasons: dict[str, str] = {}  # uid -> why it was cancelled

    def add(self, uid: str, task: asyncio.Task[Status | None]) -> None:
        self._tasks[uid] = task

    def remove(self, uid: str) -> None:
        self._tasks.pop(uid, None)

    def __contains__(self, uid: str) -> bool:
        return uid in self._tasks

    def cancel(self, uid: str, reason: str) -> bool:
        """Stop the pod's PreBind (upstream's CancelPod): True when it was still running."""
        task = self._tasks.pop(uid, None)
        if task is None or task.done():
            return False
        self.reasons[uid] = reason
        task.cancel()
        return True


@dataclass(frozen=True)
class PostFilterOutcome:
    """What run_post_filter decided: the successful plugin's result (None if none succeeded),
    the messages that end the pod's failure message, and how the loop ended."""

    result: PostFilterResult | None
    messages: list[str]
    status: Status | None  # None = a plugin succeeded
    attempts: list[PostFilterResult] = field(default_factory=list)  # every result, in order


# --- the Framework -------------------------------------------------------------------------


@dataclass
class Framework:
    """The plugins of one schedulerName, ordered per extension point, and their runner
    (upstream's frameworkImpl). `score` pairs each Score plugin with its weight."""

    scheduler_name: str
    percentage_of_nodes_to_score: int | None
    pre_enqueue: Sequence[PreEnqueuePlugin] = ()
    queue_sort: QueueSortPlugin | None = None
    pre_filter: Sequence[PreFilterPlugin] = ()
    filter: Sequence[FilterPlugin] = ()
    post_filter: Sequence[PostFilterPlugin] = ()
    pre_score: Sequence[PreScorePlugin] = ()
    score: Sequence[tuple[ScorePlugin, int]] = ()
    reserve: Sequence[ReservePlugin] = ()
    permit: Sequence[PermitPlugin] = ()
    pre_bind: Sequence[PreBindPlugin] = ()
    bind: Sequence[BindPlugin] = ()
    post_bind: Sequence[PostBindPlugin] = ()
    observer: Observer = field(default_factory=NullObserver)
    waiting_pods: WaitingPods = field(default_factory=WaitingPods)
    pods_in_pre_bind: PodsInPreBind = field(default_factory=PodsInPreBind)
    clock: Callable[[], float] = time.monotonic
    # True on the cycles whose per-plugin durations are observed (the caller samples).
    sample_plugins: bool = False
    # (plugin, extension point) -> evaluations since the last take_evaluations().
    evaluations: dict[tuple[str, str], int] = field(default_factory=dict)
    # Caches: the (plugin, hint) pairs an incoming event matches; each plugin's
    # row_local_for (None: it declares no batching capability).
    _hints_by_event: dict[ClusterEvent, list[tuple[str, QueueingHintFn | None]]] = field(
        default_factory=dict, repr=False
    )
    _row_local_of: dict[str, Any] = field(default_factory=dict, repr=False)

    # --- queue side ----------------------------------------------------------------------

    def run_pre_enqueue(self, pod: PodInfo) -> Status | None:
        """The first PreEnqueue plugin that keeps the pod out of the active queue, named."""
        start = time.perf_counter()
        result: Status | None = None
        for plugin in self.pre_enqueue:
            status = plugin.pre_enqueue(pod)
            if status is not None:
                result = Status(status.code, status.reasons, plugin.name)
                break
        self._point("PreEnqueue", result, start)
        return result

    def sort_key(self, pod: PodInfo, arrival: float) -> tuple[Any, ...]:
        if self.queue_sort is None:
            return (arrival,)
        return self.queue_sort.sort_key(pod, arrival)

    # --- scheduling cycle ----------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        """PreFilter in order: SKIP turns that plugin's Filter off; the first other non-None
        status is returned, named; results that leave no node are unresolvable."""
        start = time.perf_counter()
        result = self._pre_filter(state, pod, table, self.pre_filter)
        self._point("PreFilter", result, start)
        return result

    def _pre_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        plugins: Sequence[PreFilterPlugin],
    ) -> Status | None:
        evaluations, sample = self.evaluations, self.sample_plugins
        for plugin in plugins:
            key = (plugin.name, "PreFilter")
            evaluations[key] = evaluations.get(key, 0) + 1
            began = time.perf_counter() if sample else 0.0
            status = plugin.pre_filter(state, pod, table)
            if sample:
                self.observer.plugin(
                    plugin.name, "PreFilter", status_label(status), time.perf_counter() - began
                )
            if status is None:
                if state.node_names is not None and not state.node_names:
                    return _narrowed_to_none(state.narrowed_by, plugin.name)
                continue
            if status.code is Code.SKIP:
                state.skip_filter.add(plugin.name)
                continue
            return Status(status.code, status.reasons, plugin.name)
        return None

    def redo_pre_filter(
        self, state: CycleState, pod: PodInfo, table: NodeTable, plugins: Sequence[PreFilterPlugin]
    ) -> Status | None:
        """PreFilter again for `plugins` only (preemption's dry run on a changed table)."""
        for plugin in plugins:
            state.skip_filter.discard(plugin.name)
        return self._pre_filter(state, pod, table, plugins)

    def filter_mask(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Mask:
        """Which of `rows` pass every Filter (no diagnosis kept)."""
        mask = np.ones(rows.size, dtype=np.bool_)
        alive = np.arange(rows.size)
        for plugin in self.filter:
            if alive.size == 0:
                break
            if plugin.name in state.skip_filter:
                continue
            result = self._filter_one(plugin, state, pod, table, rows[alive])
            mask[alive[~result.mask]] = False
            alive = alive[result.mask]
        return mask

    def run_filters(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        rows: Rows,
        diagnosis: Diagnosis | None,
    ) -> Rows:
        """The rows that pass every Filter; rejections are counted into `diagnosis`."""
        for plugin in self.filter:
            if rows.size == 0:
                break
            if plugin.name in state.skip_filter:
                continue
            result = self._filter_one(plugin, state, pod, table, rows)
            if diagnosis is not None and not result.mask.all():
                _count(diagnosis, plugin.name, rows, result)
            rows = rows[result.mask]
        return rows

    def _filter_one(
        self, plugin: FilterPlugin, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> FilterResult:
        key = (plugin.name, "Filter")
        # Upstream calls Filter once per node; berth once per batch of rows, counted as rows.
        self.evaluations[key] = self.evaluations.get(key, 0) + int(rows.size)
        if not self.sample_plugins:
            return plugin.filter(state, pod, table, rows)
        began = time.perf_counter()
        result = plugin.filter(state, pod, table, rows)
        label = "Success" if result.mask.all() else "Unschedulable"
        self.observer.plugin(plugin.name, "Filter", label, time.perf_counter() - began)
        return result

    def run_post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        diagnosis: Diagnosis,
        check: NodeCheck,
    ) -> PostFilterOutcome:
        """PostFilter in order (upstream's RunPostFilterPlugins): the first success stops the
        loop and its message replaces the others; UNSCHEDULABLE adds its message and goes on;
        ERROR and UNSCHEDULABLE_AND_UNRESOLVABLE stop the loop with their message alone."""
        start = time.perf_counter()
        messages: list[str] = []
        stopped = Status(Code.UNSCHEDULABLE)
        results: list[PostFilterResult] = []
        for plugin in self.post_filter:
            result = plugin.post_filter(state, pod, table, diagnosis, check)
            results.append(result)
            if result.status is None:
                messages = [result.message] if result.message else []
                self._point("PostFilter", None, start)
                return PostFilterOutcome(result, messages, None, results)
            if result.status.code in (Code.ERROR, Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
                stopped = result.status
                messages = [stopped.message] if stopped.message else []
                break
            if result.status.message:
                messages.append(result.status.message)
        self._point("PostFilter", stopped, start)
        return PostFilterOutcome(None, messages, stopped, results)

    def run_pre_score(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        rows: Rows,
        exclude: Collection[str] = frozenset(),
    ) -> Status | None:
        """PreScore in order: SKIP turns that plugin's Score off; any other non-None status
        fails the attempt as an error, named (upstream's RunPreScorePlugins). Plugins named in
        `exclude` are left out (the batched path runs them per window: window_raw_scores)."""
        start = time.perf_counter()
        result = self._pre_scores(
            state, pod, table, rows, lambda name: name not in exclude, state.skip_score
        )
        self._point("PreScore", result, start)
        return result

    def _pre_scores(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        rows: Rows,
        wanted: Callable[[str], bool],
        skipped: set[str],
    ) -> Status | None:
        """The PreScore plugins `wanted` by name, in order: a SKIP adds the plugin to
        `skipped`; any other non-None status stops with upstream's error, named."""
        evaluations = self.evaluations
        for plugin in self.pre_score:
            if not wanted(plugin.name):
                continue
            key = (plugin.name, "PreScore")
            evaluations[key] = evaluations.get(key, 0) + 1
            status = plugin.pre_score(state, pod, table, rows)
            if status is None:
                continue
            if status.code is Code.SKIP:
                skipped.add(plugin.name)
                continue
            return Status.error(
                f'running PreScore plugin "{plugin.name}": {status.message}', plugin.name
            )
        return None

    def raw_scores(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        rows: Rows,
        exclude: Collection[str] = frozenset(),
    ) -> list[Scores | None]:
        """Each Score plugin's raw scores over `rows` (profile order); None for a plugin its
        PreScore skipped, and for those named in `exclude`."""
        out: list[Scores | None] = []
        evaluations, sample = self.evaluations, self.sample_plugins
        for plugin, _ in self.score:
            if plugin.name in state.skip_score or plugin.name in exclude:
                out.append(None)
                continue
            if rows.size == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            key = (plugin.name, "Score")
            evaluations[key] = evaluations.get(key, 0) + int(rows.size)
            began = time.perf_counter() if sample else 0.0
            out.append(plugin.score(state, pod, table, rows))
            if sample:
                self.observer.plugin(plugin.name, "Score", "Success", time.perf_counter() - began)
        return out

    def window_raw_scores(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows, names: Collection[str]
    ) -> dict[str, Scores | None] | Status:
        """PreScore then Score of the plugins in `names` over one pod's window `rows`, as
        run_pre_score and raw_scores would run them for that pod alone: name -> raw scores,
        None for a plugin its PreScore skipped (not recorded in `state`, which the class
        shares), or PreScore's failure as run_pre_score would return it."""
        evaluations, sample = self.evaluations, self.sample_plugins
        skipped: set[str] = set()
        failed = self._pre_scores(state, pod, table, rows, names.__contains__, skipped)
        if failed is not None:
            return failed
        out: dict[str, Scores | None] = {}
        for scorer, _ in self.score:
            if scorer.name not in names:
                continue
            if scorer.name in skipped or scorer.name in state.skip_score:
                out[scorer.name] = None
                continue
            key = (scorer.name, "Score")
            evaluations[key] = evaluations.get(key, 0) + int(rows.size)
            began = time.perf_counter() if sample else 0.0
            out[scorer.name] = scorer.score(state, pod, table, rows)
            if sample:
                self.observer.plugin(scorer.name, "Score", "Success", time.perf_counter() - began)
        return out

    def combine(self, raw: Sequence[Scores | None], size: int) -> tuple[Scores, dict[str, Scores]]:
        """NormalizeScore each plugin's raw scores and sum them with the plugins' weights:
        the total per row, and each plugin's normalized scores (for explain)."""
        total = np.zeros(size, dtype=np.int64)
        parts: dict[str, Scores] = {}
        for (plugin, weight), scores in zip(self.score, raw, strict=True):
            if scores is None:
                continue
            normalized = plugin.normalize(scores)
            parts[plugin.name] = normalized
            total += normalized * weight
        return total, parts

    def run_scores(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> tuple[Scores, dict[str, Scores]]:
        """Score + NormalizeScore + weights over the feasible rows (PreScore already ran)."""
        start = time.perf_counter()
        out = self.combine(self.raw_scores(state, pod, table, rows), rows.size)
        self._point("Score", None, start)
        return out

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Reserve in order; the first failure is returned, named. The caller then runs
        run_unreserve (every plugin, as upstream)."""
        if not self.reserve:
            self.observer.extension_point("Reserve", "Success", self.scheduler_name, 0.0)
            return None
        start = time.perf_counter()
        result: Status | None = None
        for plugin in self.reserve:
            status = plugin.reserve(state, pod, node)
            if status is not None:
                code = Code.ERROR if status.code is Code.ERROR else status.code
                result = Status(code, status.reasons, plugin.name)
                break
        self._point("Reserve", result, start)
        return result

    def run_unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        """Unreserve every Reserve plugin in reverse order. Unreserve must be idempotent and
        cannot fail: an exception is logged and the next plugin still runs."""
        start = time.perf_counter()
        for plugin in reversed(self.reserve):
            try:
                plugin.unreserve(state, pod, node)
            except Exception:
                log.exception("unreserve failed", extra={"pod": pod.key, "plugin": plugin.name})
        self._point("Unreserve", None, start)

    def run_permit(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Permit in order (upstream's RunPermitPlugins): a rejection stops at once, named;
        Wait from any plugin (timeout capped at 15 minutes) parks the pod as a WaitingPod
        and returns WAIT; None lets the binding go on."""
        if not self.permit:
            self.observer.extension_point("Permit", "Success", self.scheduler_name, 0.0)
            return None
        start = time.perf_counter()
        timeouts: dict[str, float] = {}
        result: Status | None = None
        for plugin in self.permit:
            try:
                status, timeout = plugin.permit(state, pod, node)
            except Exception as err:
                log.exception("permit failed", extra={"pod": pod.key, "plugin": plugin.name})
                status, timeout = Status.error(str(err)), 0.0
            if status is None or status.code is Code.SUCCESS:
                continue
            if status.code is Code.WAIT:
                timeouts[plugin.name] = min(max(timeout, 0.0), MAX_PERMIT_TIMEOUT)
                continue
            if status.code is Code.ERROR:
                message = f'running Permit plugin "{plugin.name}": {status.message}'
                result = Status.error(message, plugin.name)
            else:
                result = Status(status.code, status.reasons, plugin.name)
            break
        if result is None and timeouts:
            self.waiting_pods.add(WaitingPodImpl(pod, node, timeouts, self.clock))
            result = Status(Code.WAIT, (_ASKED_TO_WAIT,))
        self._point("Permit", result, start)
        return result

    async def wait_on_permit(self, pod: PodInfo) -> Status | None:
        """Wait until the pod's WaitingPod is allowed (None) or rejected (its status); None
        at once when the pod is not waiting."""
        waiting = self.waiting_pods.get(pod.uid)
        if waiting is None:
            return None
        start = self.clock()
        try:
            status = await waiting.wait()
        finally:
            self.waiting_pods.remove(pod.uid)
        self.observer.permit_wait(status_label(status), self.clock() - start)
        return status

    def run_pre_bind_pre_flight(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Upstream's RunPreBindPreFlights: None (success) when some PreBind plugin will have
        work, SKIP when none will (those that skip are skipped at PreBind too), an error
        status when a plugin fails or answers anything but success or skip."""
        start = time.perf_counter()
        result: Status | None = SKIP
        for plugin in self.pre_bind:
            check = getattr(plugin, "pre_bind_pre_flight", None)
            status = check(state, pod, node) if check is not None else None
            if status is None:
                result = None
            elif status.code is Code.SKIP:
                state.skip_pre_bind.add(plugin.name)
            elif status.code is Code.ERROR:
                result = Status.error(f'running PreBindPreFlight "{plugin.name}": {status.message}')
                break
            else:
                code = _STATUS_LABELS[status.code]
                result = Status.error(
                    f'PreBindPreFlight {plugin.name} returned "{code}", which is unsupported.'
                    " It is supposed to return Success, Skip, or Error status"
                )
                break
        self._point("PreBindPreFlight", result, start)
        return result

    async def run_pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        if not self.pre_bind:
            self.observer.extension_point("PreBind", "Success", self.scheduler_name, 0.0)
            return None
        start = time.perf_counter()
        result: Status | None = None
        for plugin in self.pre_bind:
            if plugin.name in state.skip_pre_bind:
                continue
            status = await plugin.pre_bind(state, pod, node)
            if status is not None and status.code is not Code.SKIP:
                result = Status(status.code, status.reasons, plugin.name)
                break
        self._point("PreBind", result, start)
        return result

    async def run_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Bind plugins in order until one does not SKIP; SKIP from all (or none configured)
        returns SKIP, which the caller treats as an error."""
        start = time.perf_counter()
        result: Status | None = Status(Code.SKIP, ("no bind plugin bound the pod",))
        for plugin in self.bind:
            status = await plugin.bind(state, pod, node)
            if status is not None and status.code is Code.SKIP:
                continue
            result = None if status is None else Status(status.code, status.reasons, plugin.name)
            break
        self._point("Bind", result, start)
        return result

    def run_post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None:
        if not self.post_bind:
            self.observer.extension_point("PostBind", "Success", self.scheduler_name, 0.0)
            return
        start = time.perf_counter()
        for plugin in self.post_bind:
            try:
                plugin.post_bind(state, pod, node)
            except Exception:
                log.exception("post-bind failed", extra={"pod": pod.key, "plugin": plugin.name})
        self._point("PostBind", None, start)

    def _point(self, point: str, status: Status | None, start: float) -> None:
        label = "Success" if status is None else _STATUS_LABELS[status.code]
        self.observer.extension_point(
            point, label, self.scheduler_name, time.perf_counter() - start
        )

    def take_evaluations(self) -> dict[tuple[str, str], int]:
        """The plugin evaluations counted since the last call, (plugin, point) -> count."""
        taken, self.evaluations = self.evaluations, {}
        return taken

    # --- capabilities --------------------------------------------------------------------

    @functools.cached_property
    def plugins(self) -> dict[str, Any]:
        """Every plugin of the profile by name (one instance serves all its points)."""
        out: dict[str, Any] = {}
        groups: tuple[Sequence[Any], ...] = (
            self.pre_enqueue,
            self.pre_filter,
            self.filter,
            self.post_filter,
            self.pre_score,
            [p for p, _ in self.score],
            self.reserve,
            self.permit,
            self.pre_bind,
            self.bind,
            self.post_bind,
        )
        for group in groups:
            for plugin in group:
                out.setdefault(plugin.name, plugin)
        return out

    @functools.cached_property
    def _cycle_plugins(self) -> list[Any]:
        unique: dict[str, Any] = {}
        for p in (*self.pre_filter, *self.filter, *self.pre_score, *(p for p, _ in self.score)):
            unique.setdefault(p.name, p)
        return list(unique.values())

    @functools.cached_property
    def _row_local_checks(
        self,
    ) -> list[tuple[str, Callable[[PodInfo], bool], Callable[[PodInfo], bool] | None]] | None:
        plugins = self._cycle_plugins
        if not all(isinstance(p, BatchablePlugin) for p in plugins):
            return None
        return [
            (
                p.name,
                p.row_local_for,
                p.window_scored_for if isinstance(p, WindowScoredPlugin) else None,
            )
            for p in plugins
        ]

    def batchable(self, pod: PodInfo) -> bool:
        """True when the pod can take the equivalence-batched path (see window_scored)."""
        return self.window_scored(pod) is not None

    def window_scored(self, pod: PodInfo) -> frozenset[str] | None:
        """None unless every PreFilter, Filter, PreScore and Score plugin declares itself
        row-local for this pod (framework.BatchablePlugin) or, failing that, window-scored
        (framework.WindowScoredPlugin); else the names of the window-scored ones. Results
        for one equivalence class can then be kept and only changed rows redone, while the
        window-scored plugins run PreScore and Score per pod over its window."""
        checks = self._row_local_checks
        if checks is None:
            return None
        windowed: frozenset[str] = frozenset()
        for name, row_local, window in checks:
            if row_local(pod):
                continue
            if window is None or not window(pod):
                return None
            windowed = windowed | {name}
        return windowed

    def row_local(self, plugin: Any, pod: PodInfo) -> bool:
        """Does the plugin's answer for a node depend only on the pod and that node's row?"""
        check = self._row_local_of.get(plugin.name, False)
        if check is False:
            # An isinstance against a runtime Protocol costs tens of µs: once per plugin.
            check = plugin.row_local_for if isinstance(plugin, BatchablePlugin) else None
            self._row_local_of[plugin.name] = check
        return check is not None and bool(check(pod))

    @functools.cached_property
    def queueing_hints(self) -> dict[ClusterEvent, list[tuple[str, QueueingHintFn | None]]]:
        """Upstream's queueingHintMap for this profile: registered event -> (plugin, hint)."""
        out: dict[ClusterEvent, list[tuple[str, QueueingHintFn | None]]] = {}
        for name, plugin in self.plugins.items():
            if isinstance(plugin, EnqueueExtensions):
                for registered in plugin.events_to_register():
                    out.setdefault(registered.event, []).append((name, registered.hint))
        return out

    def hints_for(self, event: ClusterEvent) -> list[tuple[str, QueueingHintFn | None]]:
        """The (plugin, hint) pairs registered for events `event` matches, cached by event."""
        cached = self._hints_by_event.get(event)
        if cached is None:
            cached = [
                pair
                for registered, pairs in self.queueing_hints.items()
                if registered.matches(event)
                for pair in pairs
            ]
            self._hints_by_event[event] = cached
        return cached

    def worth_requeuing(
        self, pod: PodInfo, rejected_by: frozenset[str], event: ClusterEvent, old: Any, new: Any
    ) -> bool:
        """Upstream's isPodWorthRequeuing: a pod no plugin rejected, or a wildcard event,
        moves; else a plugin that rejected it must have registered the event, with a hint
        that says QUEUE (a hint that raises counts as QUEUE)."""
        if not rejected_by or event.wildcard:
            return True
        for name, hint in self.hints_for(event):
            if name not in rejected_by:
                continue
            if hint is None:
                return True
            start = time.perf_counter()
            try:
                answer = hint(pod, old, new)
            except Exception:
                log.exception("queueing hint failed", extra={"plugin": name, "pod": pod.key})
                answer = None
            label = "Error" if answer is None else answer.value
            self.observer.queueing_hint(name, event.label, label, time.perf_counter() - start)
            if answer is not QueueingHint.SKIP:
                return True
        return False


def _narrowed_to_none(plugins: set[str], last: str) -> Status:
    """The PreFilter results leave no node at all: unresolvable, as upstream (which names no
    plugin on the status; berth names the one whose result emptied the set, for explain and
    the pod's rejecting plugins)."""
    names = sorted(plugins)
    if len(names) == 1:
        message = NARROWED_TO_NONE.format(names[0])
    else:
        message = NARROWED_TO_NONE_MANY.format(" ".join(names))
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), last)


def _count(diagnosis: Diagnosis, plugin: str, rows: Rows, result: FilterResult) -> None:
    rejected = ~result.mask
    per_plugin = diagnosis.by_plugin.setdefault(plugin, {})
    covered = np.zeros(rows.size, dtype=np.bool_)
    for reason in result.reasons:
        hit = reason.rejected & rejected
        n = int(hit.sum())
        if n == 0:
            continue
        covered |= hit
        diagnosis.counts[reason.message] = diagnosis.counts.get(reason.message, 0) + n
        per_plugin[reason.message] = per_plugin.get(reason.message, 0) + n
        if not reason.resolvable:
            diagnosis.unresolvable_rows.update(rows[hit].tolist())  # ints, not a genexpr
    missing = int((rejected & ~covered).sum())
    if missing:
        message = f"node(s) were rejected by {plugin}"
        diagnosis.counts[message] = diagnosis.counts.get(message, 0) + missing
        per_plugin[message] = per_plugin.get(message, 0) + missing
