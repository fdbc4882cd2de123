"""The scheduling queue: active heap, backoff heap, unschedulable pool and gated pods.

    new pod ──PreEnqueue──▶ gated ──(update lifts gates)──┐
        │                                                  ▼
        └──────────────────────────────────────────────▶ active ──pop──▶ scheduling cycle
                                                           ▲                 │ failure
                  backoff ──(backoff expired, flush)───────┘                 ▼
                     ▲                                            unschedulable pool
                     └──(cluster event that may help, or 5 min flush)────────┘

A pod that failed goes to the unschedulable pool, unless a cluster event arrived while it was
being scheduled: then it goes to backoff at once (upstream's moveRequestCycle rule), because
the event may already have made it schedulable. Backoff is initial * 2^(attempts-1), capped.
Time comes from an injected clock, so tests run in virtual time.

When the active heap is empty, the pod whose backoff ends first is popped anyway (upstream's
SchedulerPopFromBackoffQ, beta and on by default since v1.33): an idle scheduler has no reason
to make a pod wait that an event may have made schedulable. Pods backing off after an error
(no plugin rejected them) sit in a heap of their own and always wait their whole backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.framework import PreEnqueuePlugin
from scheduler.model import PodInfo

ACTIVE = "active"
BACKOFF = "backoff"
UNSCHEDULABLE = "unschedulable"
GATED = "gated"
IN_FLIGHT = "in-flight"
ASSUMED = "assumed"  # placed on a node, binding in flight; back to backoff if the bind fails

UNSCHEDULABLE_FLUSH_SECONDS = 300.0

SortKey = Callable[[PodInfo, float], tuple[Any, ...]]


@dataclass
class QueuedPod:
    pod: PodInfo
    arrival: float  # when the pod first entered the queue (the SLI starts here)
    attempts: int = 0
    where: str = ACTIVE
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    cycle: int = 0  # the scheduling cycle in which it was last popped
    token: int = 0  # bumps on every move, so stale heap items are skipped
    gate_message: str = ""
    unschedulable_plugins: frozenset[str] = field(default_factory=frozenset)


class SchedulingQueue:
    def __init__(
        self,
        sort_key: SortKey,
        pre_enqueue: Sequence[PreEnqueuePlugin] = (),
        *,
        clock: Callable[[], float],
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        on_incoming: Callable[[str, str], None] = lambda queue, event: None,
        pop_from_backoff: bool = True,
    ) -> None:
        self._sort_key = sort_key
        self._pre_enqueue = pre_enqueue
        self._clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._on_incoming = on_incoming
        self.pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[tuple[Any, ...], int, str, int]] = []
        self._backoff: list[tuple[float, int, str, int]] = []
        self._error_backoff: list[tuple[float, int, str, int]] = []
        self.pop_from_backoff = pop_from_backoff
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._wakeup = asyncio.Event()
        self._closed = False

    # --- informer side -------------------------------------------------------------------

    def add(self, pod: PodInfo) -> None:
        """A new pending pod."""
        if pod.uid in self.pods:
            self.update(pod)
            return
        entry = QueuedPod(pod=pod, arrival=self._clock())
        self.pods[pod.uid] = entry
        self._enqueue(entry, "PodAdd")

    def update(self, pod: PodInfo) -> None:
        """A pending pod changed: take the new version; a gated or unschedulable pod whose
        spec changed gets another chance."""
        entry = self.pods.get(pod.uid)
        if entry is None:
            self.add(pod)
            return
        changed = entry.pod.class_key != pod.class_key or entry.pod.gates != pod.gates
        entry.pod = pod
        if entry.where == GATED and changed:
            self._enqueue(entry, "PodUpdate")
        elif entry.where == UNSCHEDULABLE and changed:
            self._move(entry, "PodUpdate")
        elif entry.where == ACTIVE:
            self._push_active(entry)  # the sort key may have changed (priority)

    def delete(self, uid: str) -> None:
        entry = self.pods.pop(uid, None)
        if entry is not None:
            entry.token = 0

    def move_all(self, event: str, worth: Callable[[QueuedPod], bool] | None = None) -> None:
        """A cluster event that may make unschedulable pods schedulable (node added or
        changed, assigned pod deleted): move them to backoff or active; only those `worth`
        approves when given (the queueing hints of the plugins that rejected each)."""
        self._move_request_cycle = self.scheduling_cycle
        for entry in list(self.pods.values()):
            if entry.where == UNSCHEDULABLE and (worth is None or worth(entry)):
                self._move(entry, event)

    # --- scheduler side ------------------------------------------------------------------

    async def pop(self) -> QueuedPod | None:
        """The next pod to schedule; waits for one. None once closed."""
        while True:
            entry = self.pop_nowait()
            if entry is not None:
                return entry
            if self._closed:
                return None
            self._wakeup.clear()
            timeout = self._next_backoff_in()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the wait completes, and the task then never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    def pop_nowait(self) -> QueuedPod | None:
        self.flush_backoff()
        entry = self._pop_active()
        if entry is None and self.pop_from_backoff:
            entry = self._pop_backoff()
        return entry

    def done(self, uid: str) -> None:
        """The pod was assumed on a node; it leaves the queue once its bind is seen."""
        entry = self.pods.get(uid)
        if entry is not None:
            entry.where = ASSUMED
            entry.token = next(self._tokens)

    def requeue(
        self, entry: QueuedPod, plugins: frozenset[str] = frozenset(), error: bool = False
    ) -> None:
        """After a failed attempt: errors and pods that saw a cluster event during their
        cycle go to backoff; the others wait in the unschedulable pool."""
        if self.pods.get(entry.pod.uid) is not entry:
            return  # deleted meanwhile
        # Upstream keeps no rejecting plugins for an error: that sends it to the error backoff.
        entry.unschedulable_plugins = frozenset() if error else plugins
        now = self._clock()
        if error or self._move_request_cycle >= entry.cycle:
            self._to_backoff(entry, now)
            self._on_incoming(BACKOFF, "ScheduleAttemptFailure")
        else:
            entry.where = UNSCHEDULABLE
            entry.unschedulable_since = now
            # Upstream's backoff runs from the failed attempt whichever queue the pod waits in,
            # so an event that moves it back soon after still sends it to backoff first.
            entry.backoff_until = now + self.backoff_duration(entry.attempts)
            entry.token = next(self._tokens)
            self._on_incoming(UNSCHEDULABLE, "ScheduleAttemptFailure")

    def flush_backoff(self) -> None:
        now = self._clock()
        for heap in (self._backoff, self._error_backoff):
            while heap and heap[0][0] <= now:
                _, _, uid, token = heapq.heappop(heap)
                entry = self.pods.get(uid)
                if entry is not None and entry.token == token and entry.where == BACKOFF:
                    self._push_active(entry)
                    self._on_incoming(ACTIVE, "BackoffComplete")

    def flush_unschedulable(self) -> None:
        """Pods unschedulable for longer than 5 minutes get another try anyway."""
        now = self._clock()
        for entry in list(self.pods.values()):
            # Strictly longer than the limit, as upstream's flushUnschedulablePodsLeftover.
            if entry.where == UNSCHEDULABLE and (
                now - entry.unschedulable_since > UNSCHEDULABLE_FLUSH_SECONDS
            ):
                self._move(entry, "UnschedulableTimeout")

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0, IN_FLIGHT: 0, ASSUMED: 0}
        for entry in self.pods.values():
            out[entry.where] += 1
        return out

    def backoff_duration(self, attempts: int) -> float:
        duration = self.initial_backoff * 2 ** max(0, attempts - 1)
        return float(min(duration, self.max_backoff))

    # --- internals -----------------------------------------------------------------------

    def _enqueue(self, entry: QueuedPod, event: str) -> None:
        for plugin in self._pre_enqueue:
            status = plugin.pre_enqueue(entry.pod)
            if status is not None:
                newly_gated = entry.where != GATED
                entry.where = GATED
                entry.gate_message = status.message
                entry.token = next(self._tokens)
                if newly_gated:
                    # Upstream keeps gated pods in its unschedulable pool and counts them
                    # incoming there once, when they enter it; "gated" is no incoming queue.
                    self._on_incoming(UNSCHEDULABLE, event)
                return
        entry.gate_message = ""
        self._push_active(entry)
        self._on_incoming(ACTIVE, event)

    def _move(self, entry: QueuedPod, event: str) -> None:
        now = self._clock()
        if entry.backoff_until > now:
            self._to_backoff(entry, now, keep_deadline=True)
            self._on_incoming(BACKOFF, event)
        else:
            self._push_active(entry)
            self._on_incoming(ACTIVE, event)

    def _to_backoff(self, entry: QueuedPod, now: float, keep_deadline: bool = False) -> None:
        if not keep_deadline:
            entry.backoff_until = now + self.backoff_duration(entry.attempts)
        entry.where = BACKOFF
        entry.token = next(self._tokens)
        # Upstream's podErrorBackoffQ: a pod that no plugin rejected failed on an error.
        heap = self._backoff if entry.unschedulable_plugins else self._error_backoff
        heapq.heappush(heap, (entry.backoff_until, next(self._seq), entry.pod.uid, entry.token))
        self._wakeup.set()

    def _push_active(self, entry: QueuedPod) -> None:
        entry.where = ACTIVE
        entry.token = next(self._tokens)
        key = self._sort_key(entry.pod, entry.arrival)
        heapq.heappush(self._active, (key, next(self._seq), entry.pod.uid, entry.token))
        self._wakeup.set()

    def _pop_active(self) -> QueuedPod | None:
        while self._active:
            _, _, uid, token = heapq.heappop(self._active)
            entry = self.pods.get(uid)
            if entry is not None and entry.token == token and entry.where == ACTIVE:
                return self._take(entry)
        return None

    def _pop_backoff(self) -> QueuedPod | None:
        """The pod whose backoff ends first, before it ends (SchedulerPopFromBackoffQ)."""
        while self._backoff:
            _, _, uid, token = heapq.heappop(self._backoff)
            entry = self.pods.get(uid)
            if entry is not None and entry.token == token and entry.where == BACKOFF:
                self._on_incoming(ACTIVE, "PopFromBackoffQ")
                return self._take(entry)
        return None

    def _take(self, entry: QueuedPod) -> QueuedPod:
        self.scheduling_cycle += 1
        entry.cycle = self.scheduling_cycle
        entry.attempts += 1
        entry.where = IN_FLIGHT
        entry.token = next(self._tokens)
        return entry

    def _next_backoff_in(self) -> float | None:
        ends = [heap[0][0] for heap in (self._backoff, self._error_backoff) if heap]
        if not ends:
            return None
        return max(0.0, min(ends) - self._clock())
