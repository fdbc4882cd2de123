"""The scheduling queue: active heap, backoff heap, unschedulable pool and gated pods.

    new pod ──PreEnqueue──▶ gated ──(update lifts gates)──┐
        │                                                  ▼
        └──────────────────────────────────────────────▶ active ──pop──▶ scheduling cycle
                                                           ▲                 │ failure
                  backoff ──(backoff expired, flush)───────┘                 ▼
                     ▲                                            unschedulable pool
                     └──(cluster event that may help, or 5 min flush)────────┘

A pod that failed goes to the unschedulable pool, remembering the plugins that rejected it.
A cluster event moves it out only when one of those plugins registered the event and its
queueing hint says Queue (`worth`, upstream's isPodWorthRequeuing); a pod no plugin rejected
(an error) moves on any event. Events that arrive while a pod is in flight (popped and not yet
done: its cycle, its Permit wait) are kept and checked when it fails, so none is lost
(upstream's in-flight events). Backoff is initial * 2^(count-1), capped, counting
consecutive errors while there are any, else rejections (upstream v1.34+). Time comes from an
injected clock, so tests run in virtual time. The queue owns the nominator (nominator.py).

Gated pods (kept out by a PreEnqueue plugin) wait in the unschedulable pool as upstream's do:
the gating plugin joins their rejectors, only events that plugin registered are looked at, and
they are counted incoming there once. PreEnqueue runs again whenever a pod would enter the
active queue (after backoff, on a move), as upstream's moveToActiveQ does.

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
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scheduler import framework as fw
from scheduler.framework import ClusterEvent, Status
from scheduler.model import PodInfo, claim_statuses
from scheduler.nominator import Nominator

ACTIVE = "active"
BACKOFF = "backoff"
UNSCHEDULABLE = "unschedulable"
GATED = "gated"
IN_FLIGHT = "in-flight"
ASSUMED = "assumed"  # placed on a node, binding in flight; back to backoff if the bind fails

UNSCHEDULABLE_FLUSH_SECONDS = 300.0
PODS_IN_FLIGHT = "PodPopped"  # upstream's PodPoppedInFlightEvent label of inflight_events

SortKey = Callable[[PodInfo, float], tuple[Any, ...]]
PreEnqueue = Callable[[PodInfo], Status | None]
"""The pod's profile's PreEnqueue plugins (runtime.Framework.run_pre_enqueue)."""
Worth = Callable[["QueuedPod", ClusterEvent, Any, Any], bool]
"""(a waiting pod, an event, the object before, after) -> may the event make it schedulable?"""


def _always(entry: QueuedPod, event: ClusterEvent, old: Any, new: Any) -> bool:
    return True


def _pod_updated(old: PodInfo, new: PodInfo) -> bool:
    """Upstream's isPodUpdated: anything but status, resourceVersion and generation changed."""
    old_meta, new_meta = old.raw.get("metadata") or {}, new.raw.get("metadata") or {}
    ignored = ("resourceVersion", "generation", "managedFields")
    if claim_statuses(old.raw) != claim_statuses(new.raw):
        return True  # the generated ResourceClaims (DynamicResources' TargetPod event)
    return old.raw.get("spec") != new.raw.get("spec") or any(
        old_meta.get(k) != new_meta.get(k)
        for k in set(old_meta) | set(new_meta)
        if k not in ignored
    )


def pod_update_events(old: PodInfo, new: PodInfo, resource: str) -> list[ClusterEvent]:
    """Upstream's PodSchedulingPropertiesChange: the specific updates from `old` to `new`
    (labels, scale down, scale up, gates eliminated, tolerations added), or a plain Update
    when none of them changed. `resource` is AssignedPod, UnscheduledPod or TargetPod."""
    actions = []
    if old.labels != new.labels:
        actions.append(fw.ActionType.UPDATE_POD_LABEL)
    if fw.pod_scaled_down(old, new):
        actions.append(fw.ActionType.UPDATE_POD_SCALE_DOWN)
    if fw.pod_scaled_up(old, new):
        actions.append(fw.ActionType.UPDATE_POD_SCALE_UP)
    if old.gates and not new.gates:
        actions.append(fw.ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED)
    if len(old.tolerations) != len(new.tolerations):
        actions.append(fw.ActionType.UPDATE_POD_TOLERATION)
    if claim_statuses(old.raw) != claim_statuses(new.raw):
        actions.append(fw.ActionType.UPDATE_POD_GENERATED_RESOURCE_CLAIM)
    if not actions:
        actions.append(fw.ActionType.UPDATE)
    return [ClusterEvent(resource, action) for action in actions]


@dataclass
class QueuedPod:
    pod: PodInfo
    arrival: float  # when the pod first entered the queue (the SLI starts here)
    attempts: int = 0
    unschedulable_count: int = 0  # rejections by plugins (upstream's UnschedulableCount)
    consecutive_errors: int = 0  # errors since the last rejection (ConsecutiveErrorsCount)
    where: str = ACTIVE
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    cycle: int = 0  # the scheduling cycle in which it was last popped
    token: int = 0  # bumps on every move, so stale heap items are skipped
    gate_message: str = ""
    unschedulable_plugins: frozenset[str] = field(default_factory=frozenset)
    counted: frozenset[str] = frozenset()  # plugins counted for it in scheduler_unschedulable_pods
    gating_plugin: str = ""  # the PreEnqueue plugin keeping it out of the active queue
    flushed: bool = False  # moved by the 5-minute flush at some point
    indexed: tuple[str, ...] = ()  # the plugin names it is indexed under while parked


class SchedulingQueue:
    def __init__(
        self,
        sort_key: SortKey,
        pre_enqueue: PreEnqueue = lambda pod: None,
        *,
        clock: Callable[[], float],
        worth: Worth = _always,
        interested: Callable[[ClusterEvent], frozenset[str] | None] = lambda event: None,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        on_incoming: Callable[[str, str], None] = lambda queue, event: None,
        on_unschedulable: Callable[[Iterable[str], str, int], None] = lambda p, profile, d: None,
        on_inflight: Callable[[str, int], None] = lambda event, delta: None,
        pop_from_backoff: bool = True,
        unschedulable_flush: float = UNSCHEDULABLE_FLUSH_SECONDS,
    ) -> None:
        """`on_incoming(queue, event label)` counts a pod entering a queue;
        `on_unschedulable(plugins, profile, delta)` keeps scheduler_unschedulable_pods;
        `interested(event)` names the plugins that registered events `event` matches (None:
        any plugin may care), so an event only looks at the pods those plugins rejected;
        `on_inflight(event label, delta)` keeps scheduler_inflight_events (in-flight pods are
        counted as "PodPopped", as upstream counts them)."""
        self._sort_key = sort_key
        self._pre_enqueue = pre_enqueue
        self._worth = worth
        self._interested = interested
        self._clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._on_incoming = on_incoming
        self._on_unschedulable = on_unschedulable
        self._on_inflight = on_inflight
        self.pods: dict[str, QueuedPod] = {}
        # Unschedulable and gated pods, and the same by rejecting plugin ("" for none).
        self._parked: dict[str, QueuedPod] = {}
        self._by_plugin: dict[str, dict[str, QueuedPod]] = {}
        self.nominator = Nominator()
        self._active: list[tuple[tuple[Any, ...], int, str, int]] = []
        self._backoff: list[tuple[float, int, str, int]] = []
        self._error_backoff: list[tuple[float, int, str, int]] = []
        self.pop_from_backoff = pop_from_backoff
        # Seconds (kube-scheduler's --pod-max-in-unschedulable-pods-duration, default 5m).
        self.unschedulable_flush = unschedulable_flush
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self.scheduling_cycle = 0
        # In-flight pods (uid -> event count when popped) and the events seen meanwhile.
        self._in_flight: dict[str, int] = {}
        self._events: deque[tuple[int, ClusterEvent, Any, Any]] = deque()
        self._event_count = 0
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
        self.nominator.update(pod)
        self._enqueue(entry, fw.UNSCHEDULED_POD_ADD.label)

    def update(self, pod: PodInfo) -> None:
        """A pending pod changed: take the new version. A gated or unschedulable pod moves
        when one of its update events passes the hints of the plugins that rejected it (for
        a gated pod, the gating PreEnqueue plugin); an in-flight pod keeps the events."""
        entry = self.pods.get(pod.uid)
        if entry is None:
            self.add(pod)
            return
        old, entry.pod = entry.pod, pod
        self.nominator.update(pod)
        if entry.where == ACTIVE:
            self._push_active(entry)  # the sort key may have changed (priority)
        elif entry.where in (GATED, UNSCHEDULABLE) and _pod_updated(old, pod):
            for event in pod_update_events(old, pod, fw.TARGET_POD):
                if self._worth(entry, event, old, pod):
                    self._move(entry, event.label)
                    break
            if entry.where == GATED:
                # Still gated: say why with the new version (one gate of two removed).
                status = self._pre_enqueue(pod)
                entry.gate_message = status.message if status is not None else ""
        elif pod.uid in self._in_flight:
            for event in pod_update_events(old, pod, fw.TARGET_POD):
                self._record(event, old, pod)

    def delete(self, uid: str) -> None:
        entry = self.pods.pop(uid, None)
        self.nominator.delete(uid)
        if self._landed(uid) is not None:
            self._prune()
        if entry is not None:
            self._unpark(entry)
            entry.token = 0

    def on_event(self, event: ClusterEvent, old: Any = None, new: Any = None) -> None:
        """A cluster event: move the unschedulable (and gated) pods it may help, as `worth`
        says for each; keep it for the pods in flight."""
        plugins = None if event.wildcard else self._interested(event)
        if plugins is not None and not plugins:
            return  # no plugin registered it (upstream's isEventOfInterest)
        self._record(event, old, new)
        if not self._parked:
            return
        if plugins is None:
            candidates = list(self._parked.values())
        else:
            seen: dict[str, QueuedPod] = dict(self._by_plugin.get("", {}))
            for plugin in plugins:
                seen.update(self._by_plugin.get(plugin, {}))
            candidates = list(seen.values())
        for entry in candidates:
            if entry.where in (UNSCHEDULABLE, GATED) and self._worth(entry, event, old, new):
                self._move(entry, event.label)

    def move_all(self, event: ClusterEvent = fw.UNSCHEDULABLE_TIMEOUT) -> None:
        """Move every unschedulable pod, whatever rejected it (a wildcard event)."""
        self.on_event(event)

    def activate(self, uids: Iterable[str]) -> None:
        """Move these pods to the active queue now, from the unschedulable pool or backoff
        (upstream's PodActivator.Activate, event ForceActivate)."""
        for uid in uids:
            entry = self.pods.get(uid)
            if entry is not None and entry.where in (UNSCHEDULABLE, BACKOFF, GATED):
                self._enqueue(entry, fw.FORCE_ACTIVATE.label)

    def ungate(self, uids: Iterable[str], plugin: str) -> None:
        """Run PreEnqueue again now for those of these pods that `plugin` keeps gated
        (framework.Handle.ungate)."""
        for uid in uids:
            entry = self.pods.get(uid)
            if entry is not None and entry.where == GATED and entry.gating_plugin == plugin:
                self._enqueue(entry, fw.FORCE_ACTIVATE.label)

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

    def take(self, uids: Iterable[str]) -> list[QueuedPod]:
        """Pop these pods too, into the scheduling cycle of the pod just popped: the other
        members of its PodGroup, scheduled as one entity as upstream's queue pops a group.
        Only pods waiting in the active, backoff or unschedulable queue are taken; gated and
        in-flight ones stay where they are."""
        out = []
        for uid in uids:
            entry = self.pods.get(uid)
            if entry is None or entry.where not in (ACTIVE, BACKOFF, UNSCHEDULABLE):
                continue
            self._unpark(entry)
            entry.cycle = self.scheduling_cycle
            entry.attempts += 1
            entry.where = IN_FLIGHT
            entry.token = next(self._tokens)
            if uid not in self._in_flight:
                self._on_inflight(PODS_IN_FLIGHT, 1)
            self._in_flight[uid] = self._event_count
            out.append(entry)
        return out

    def assumed(self, uid: str) -> None:
        """The pod was assumed on a node and its binding cycle started; it stays in flight
        (waiting in Permit) until done(), and leaves the queue once its bind is seen."""
        entry = self.pods.get(uid)
        self.nominator.delete(uid)
        if entry is not None:
            entry.where = ASSUMED
            entry.token = next(self._tokens)

    def done(self, uid: str) -> None:
        """The pod's attempt is over (bound, or past Permit): drop its in-flight events."""
        if self._landed(uid) is not None:
            self._prune()

    def requeue(
        self, entry: QueuedPod, plugins: frozenset[str] = frozenset(), error: bool = False
    ) -> None:
        """After a failed attempt: errors, and pods that an event seen while they were in
        flight may help, go to backoff; the others wait in the unschedulable pool."""
        popped_at = self._landed(entry.pod.uid)
        if self.pods.get(entry.pod.uid) is not entry:
            self._prune()
            return  # deleted meanwhile
        # Upstream keeps no rejecting plugins for an error: that sends it to the error backoff.
        entry.unschedulable_plugins = frozenset() if error else plugins
        if error:
            entry.consecutive_errors += 1
        else:
            entry.unschedulable_count += 1
            entry.consecutive_errors = 0
        now = self._clock()
        missed = popped_at is not None and any(
            self._worth(entry, event, old, new)
            for seq, event, old, new in self._events
            if seq > popped_at
        )
        self._prune()
        if error or missed:
            self._to_backoff(entry, now)
            self._on_incoming(BACKOFF, "ScheduleAttemptFailure")
        else:
            entry.where = UNSCHEDULABLE
            entry.unschedulable_since = now
            # Upstream's backoff runs from the failed attempt whichever queue the pod waits in,
            # so an event that moves it back soon after still sends it to backoff first.
            entry.backoff_until = now + self.backoff_for(entry)
            entry.token = next(self._tokens)
            self._park(entry, plugins)
            self._on_incoming(UNSCHEDULABLE, "ScheduleAttemptFailure")

    def flush_backoff(self) -> None:
        now = self._clock()
        for heap in (self._backoff, self._error_backoff):
            while heap and heap[0][0] <= now:
                _, _, uid, token = heapq.heappop(heap)
                entry = self.pods.get(uid)
                if entry is not None and entry.token == token and entry.where == BACKOFF:
                    self._enqueue(entry, "BackoffComplete")

    def flush_unschedulable(self) -> None:
        """Pods unschedulable, or gated, for longer than 5 minutes get another try anyway
        (upstream's flushUnschedulableEntitiesLeftover, whose pool holds gated pods too: a pod
        whose gate would now let it through, but whose gating plugin's event came and went
        while it was gated, is not held for ever). A gated pod is flushed again 5 minutes
        after its last flush, as upstream keeps a flush timestamp."""
        now = self._clock()
        for entry in list(self.pods.values()):
            # Strictly longer than the limit, as upstream's flushUnschedulablePodsLeftover.
            if entry.where in (UNSCHEDULABLE, GATED) and (
                now - entry.unschedulable_since > self.unschedulable_flush
            ):
                entry.flushed = True
                entry.unschedulable_since = now  # the flush timestamp, should it stay gated
                self._move(entry, fw.UNSCHEDULABLE_TIMEOUT.label)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0, IN_FLIGHT: 0, ASSUMED: 0}
        for entry in self.pods.values():
            out[entry.where] += 1
        return out

    def backoff_duration(self, count: int) -> float:
        """Upstream's calculateBackoffDuration: initial * 2^(count-1), capped; 0 for 0."""
        if count <= 0:
            return 0.0
        duration = self.initial_backoff * 2 ** (count - 1)
        return float(min(duration, self.max_backoff))

    def backoff_for(self, entry: QueuedPod) -> float:
        """A pod's backoff counts its consecutive errors while it has any, else its
        rejections (upstream's backoffQueue.getBackoffTime, v1.34+)."""
        count = entry.consecutive_errors or entry.unschedulable_count
        return self.backoff_duration(count)

    # --- internals -----------------------------------------------------------------------

    def _record(self, event: ClusterEvent, old: Any, new: Any) -> None:
        if self._in_flight:
            self._event_count += 1
            self._events.append((self._event_count, event, old, new))
            self._on_inflight(event.label, 1)

    def _landed(self, uid: str) -> int | None:
        """The pod is no longer in flight; when it was popped (event count), if it was."""
        popped_at = self._in_flight.pop(uid, None)
        if popped_at is not None:
            self._on_inflight(PODS_IN_FLIGHT, -1)
        return popped_at

    def _prune(self) -> None:
        """Drop the events no in-flight pod can still need."""
        oldest = min(self._in_flight.values()) if self._in_flight else self._event_count
        while self._events and self._events[0][0] <= oldest:
            self._on_inflight(self._events.popleft()[1].label, -1)

    def _park(
        self, entry: QueuedPod, plugins: frozenset[str], index: tuple[str, ...] | None = None
    ) -> None:
        """The pod waits (unschedulable or gated), rejected by `plugins`: index it under
        `index` (default: those plugins; a gated pod: its gating plugin, whose events alone
        can let it in), and count it under `plugins` in scheduler_unschedulable_pods."""
        self._unpark(entry)
        uid = entry.pod.uid
        self._parked[uid] = entry
        entry.indexed = index if index is not None else (tuple(plugins) or ("",))
        for plugin in entry.indexed:
            self._by_plugin.setdefault(plugin, {})[uid] = entry
        if plugins:
            self._on_unschedulable(plugins, entry.pod.scheduler_name, 1)
        entry.counted = plugins

    def _unpark(self, entry: QueuedPod) -> None:
        uid = entry.pod.uid
        if self._parked.pop(uid, None) is None:
            return
        for plugin in entry.indexed:
            indexed = self._by_plugin.get(plugin)
            if indexed is not None:
                indexed.pop(uid, None)
        entry.indexed = ()
        if entry.counted:
            self._on_unschedulable(entry.counted, entry.pod.scheduler_name, -1)
        entry.counted = frozenset()

    def _enqueue(self, entry: QueuedPod, event: str) -> None:
        """Into the active queue through PreEnqueue (upstream's moveToActiveQ): a plugin that
        says no keeps it gated, and joins its rejectors."""
        status = self._pre_enqueue(entry.pod)
        if status is not None:
            newly_gated = entry.where != GATED
            if newly_gated:
                entry.unschedulable_since = self._clock()
            entry.where = GATED
            entry.gate_message = status.message
            entry.token = next(self._tokens)
            entry.gating_plugin = status.plugin
            rejectors = entry.unschedulable_plugins | ({status.plugin} if status.plugin else set())
            entry.unschedulable_plugins = frozenset(rejectors)
            index = (status.plugin,) if status.plugin else ("",)
            if entry.counted != rejectors or entry.indexed != index:
                self._park(entry, entry.unschedulable_plugins, index)
            if newly_gated:
                # Upstream keeps gated pods in its unschedulable pool and counts them
                # incoming there once, when they enter it; "gated" is no incoming queue.
                self._on_incoming(UNSCHEDULABLE, event)
            return
        entry.gate_message = ""
        entry.gating_plugin = ""
        self._push_active(entry)
        self._on_incoming(ACTIVE, event)

    def _move(self, entry: QueuedPod, event: str) -> None:
        now = self._clock()
        if entry.where != GATED and entry.backoff_until > now:
            self._to_backoff(entry, now, keep_deadline=True)
            self._on_incoming(BACKOFF, event)
        else:
            self._enqueue(entry, event)

    def _to_backoff(self, entry: QueuedPod, now: float, keep_deadline: bool = False) -> None:
        if not keep_deadline:
            entry.backoff_until = now + self.backoff_for(entry)
        self._unpark(entry)
        entry.where = BACKOFF
        entry.token = next(self._tokens)
        # Upstream's podErrorBackoffQ: a pod that no plugin rejected failed on an error.
        heap = self._backoff if entry.unschedulable_plugins else self._error_backoff
        heapq.heappush(heap, (entry.backoff_until, next(self._seq), entry.pod.uid, entry.token))
        self._wakeup.set()

    def _push_active(self, entry: QueuedPod) -> None:
        self._unpark(entry)
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
        if entry.pod.uid not in self._in_flight:
            self._on_inflight(PODS_IN_FLIGHT, 1)
        self._in_flight[entry.pod.uid] = self._event_count
        return entry

    def _next_backoff_in(self) -> float | None:
        ends = [heap[0][0] for heap in (self._backoff, self._error_backoff) if heap]
        if not ends:
            return None
        return max(0.0, min(ends) - self._clock())
