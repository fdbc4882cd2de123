"""events.k8s.io/v1 Events and the pod status writes, off the hot path.

The scheduler only enqueues; workers write to the API.

- **Events** (Scheduled, FailedScheduling, Preempted) are aggregated into series as
  client-go's events broadcaster does (kube.event_series): an event is created the first
  time, PATCHed with `series: {count: 2, lastObservedTime}` the second time, and only
  counted after that; a series is written again every 30 minutes while it lasts and a last
  time 6 minutes after its last occurrence. A PATCH answered 404 (the Event expired or was
  deleted) creates it, series included; that create answered 409 (the first write landed
  meanwhile) is retried, so the PATCH goes again.
- The writes wait in a queue of at most `backlog` (20,000); beyond that a new one is dropped
  and counted. A transient failure (no answer, 5xx; the client itself retries a 429) is
  retried with jittered backoff, up to `EVENT_ATTEMPTS` tries (about a minute, like
  client-go's event sink, which tries 12 times 10 s apart), without holding a worker. An
  event keeps its name across tries, so a create answered 409 has landed: counted as written.
- **Status writes** (PodScheduled=False, nominatedNodeName) go through `StatusDispatcher`: per
  pod, in order, merged, superseded by a Binding and retried (see kube.dispatcher). As
  upstream's updatePod, a PodScheduled condition equal to the last one queued for the pod
  (status, reason, message, observedGeneration) is not written again, and lastTransitionTime
  stays that of the first False.

Every write ends in the observer's api_call_* counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from scheduler.kube.client import ApiError, Client
from scheduler.kube.dispatcher import (
    CallObserver,
    NullCallObserver,
    StatusDispatcher,
    StatusPatch,
    backoff,
    transient,
)
from scheduler.kube.event_series import (
    FINISH_SECONDS,
    REFRESH_SECONDS,
    Key,
    SeriesCache,
    event_name,
    micro_time,
)

log = logging.getLogger("berth.events")
JSON = dict[str, Any]

EVENT = "event"
"""The call type events are counted under (berth's; upstream's dispatcher carries no events)."""
EVENT_ATTEMPTS = 8
SLICE = 2_000
"""Series keys looked at in one go by the periodic passes."""
KEEP_CONDITIONS = 100_000
"""How many pods' last PodScheduled condition is remembered, to skip writing it again."""


def seconds_time(unix_ns: int) -> str:
    """A metav1.Time: RFC 3339 in UTC to the second."""
    return dt.datetime.fromtimestamp(unix_ns // 10**9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_seconds() -> str:
    """The current metav1.Time."""
    return seconds_time(time.time_ns())


class _Again(Exception):
    """A series write found its Event created meanwhile: PATCH it again (transient)."""


def event_body(
    *,
    namespace: str,
    name: str,
    uid: str,
    reason: str,
    note: str,
    action: str,
    type_: str,
    controller: str,
    instance: str,
    resource_version: str = "",
    unix_ns: int | None = None,
) -> dict[str, Any]:
    """An events.k8s.io/v1 Event regarding a Pod (callers change `regarding` for other kinds),
    as client-go's recorder makes it: named `<name>.<unix ns in hex>`, eventTime the same
    moment (`unix_ns`, default now) in microseconds, the note cut at 1 KiB (the API's limit),
    `regarding.resourceVersion` when given."""
    unix_ns = time.time_ns() if unix_ns is None else unix_ns
    regarding = {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": namespace,
        "name": name,
        "uid": uid,
    }
    if resource_version:
        regarding["resourceVersion"] = resource_version
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": event_name(name, unix_ns), "namespace": namespace},
        "eventTime": micro_time(unix_ns),
        "reportingController": controller,
        "reportingInstance": instance,
        "action": action,
        "reason": reason,
        "note": note[:1024],
        "type": type_,
        "regarding": regarding,
    }


class Recorder:
    """Events and pod status writes for the scheduler (see the module docstring). `start()`
    the workers on the loop, `stop()` them; `flush()` waits for what is queued."""

    def __init__(
        self,
        client: Client,
        *,
        controller: str,
        instance: str,
        workers: int = 8,
        backlog: int = 20000,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], int] = time.time_ns,
        observer: CallObserver | None = None,
        status: StatusDispatcher | None = None,
    ) -> None:
        """`clock` (seconds, default the loop's) times the series windows and the writes;
        `wall` (Unix nanoseconds) stamps the events and conditions; `status` writes the pod
        status changes (default: a dispatcher on the same client, reporting to `observer`)."""
        self.client = client
        self.controller = controller
        self.instance = instance
        self.observer: CallObserver = observer or NullCallObserver()
        self._queue: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], int]] = asyncio.Queue(
            backlog
        )
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._retrying: set[asyncio.TimerHandle] = set()
        # uid -> (reason, message, observedGeneration, lastTransitionTime) last queued.
        self._conditions: dict[str, tuple[str, str, int, str]] = {}
        self._clock = clock or asyncio.get_event_loop().time
        self._wall = wall
        self.series = SeriesCache()
        self.status = status or StatusDispatcher(client, observer=self.observer, clock=clock)
        self.dropped = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        self._tasks.append(asyncio.create_task(self._every(FINISH_SECONDS, self.finish_series)))
        self._tasks.append(asyncio.create_task(self._every(REFRESH_SECONDS, self.refresh_series)))
        self.status.start()

    async def stop(self) -> None:
        for handle in self._retrying:
            handle.cancel()
        self._retrying.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.status.stop()

    async def flush(self) -> None:
        """Wait until every queued write (retries due later excepted) is done."""
        await self._queue.join()
        await self.status.flush()

    def finish_series(self, keys: Sequence[Key] | None = None) -> None:
        """Write the series that ended (none for FINISH_SECONDS) a last time and forget them
        (upstream runs finishSeries every 6 minutes; so does `start()`, in slices)."""
        for event in self.series.finish(self._clock(), keys):
            self._put(functools.partial(self._write, event))

    def refresh_series(self, keys: Sequence[Key] | None = None) -> None:
        """Write every series again (upstream's refreshExistingEventSeries, every 30 minutes;
        so does `start()`, in slices), so a long one shows it still happens."""
        for event in self.series.refresh(keys):
            self._put(functools.partial(self._write, event))

    def scheduled(
        self,
        namespace: str,
        name: str,
        uid: str,
        node: str,
        controller: str = "",
        resource_version: str = "",
    ) -> None:
        """A Scheduled event (the pod is bound: no status write for it is made after this).
        `controller` (default: the recorder's) is the reporting controller: upstream reports
        each profile's events under its scheduler name. `resource_version` is the pod's, as
        the scheduler holds it (upstream's `regarding` reference carries it)."""
        self._conditions.pop(uid, None)
        self.status.bound(uid)
        self._event(
            namespace=namespace,
            name=name,
            uid=uid,
            resource_version=resource_version,
            reason="Scheduled",
            action="Binding",
            note=f"Successfully assigned {namespace}/{name} to {node}",
            type_="Normal",
            controller=controller or self.controller,
        )

    def failed(
        self,
        namespace: str,
        name: str,
        uid: str,
        message: str,
        reason: str,
        controller: str = "",
        generation: int = 0,
        resource_version: str = "",
    ) -> None:
        """A FailedScheduling event (a series when it repeats) and PodScheduled=False (reason
        Unschedulable or SchedulerError, observedGeneration the pod's `generation` when it has
        one, as PodObservedGenerationTracking, GA in v1.35, writes it), the condition only
        when it differs from the last one queued for the pod."""
        self._event(
            namespace=namespace,
            name=name,
            uid=uid,
            resource_version=resource_version,
            reason="FailedScheduling",
            action="Scheduling",
            note=message,
            type_="Warning",
            controller=controller or self.controller,
        )
        last = self._conditions.get(uid)
        if last is not None and last[:3] == (reason, message, generation):
            return  # upstream's updatePod: an unchanged condition is not written
        # All of ours are False, so a change of reason or message is no transition.
        transition = last[3] if last is not None else seconds_time(self._wall())
        self._conditions.pop(uid, None)
        self._conditions[uid] = (reason, message, generation, transition)
        if len(self._conditions) > KEEP_CONDITIONS:
            self._conditions.pop(next(iter(self._conditions)))
        condition: dict[str, Any] = {
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": transition,
        }
        if generation > 0:
            condition["observedGeneration"] = generation
        self.status.patch(StatusPatch(namespace, name, uid, condition=condition))

    def preempted(
        self,
        namespace: str,
        name: str,
        uid: str,
        preemptor: Mapping[str, str],
        node: str,
        controller: str = "",
        in_memory: bool = False,
        resource_version: str = "",
    ) -> None:
        """A Preempted event on the victim, related to the preemptor (keys namespace, name,
        uid, and resourceVersion when known), with upstream's note."""
        self._event(
            namespace=namespace,
            name=name,
            uid=uid,
            resource_version=resource_version,
            reason="Preempted",
            action="Preempting",
            note=f"Preempted by pod {preemptor['uid']} on node {node}"
            + (" (in kube-scheduler memory)." if in_memory else ""),
            type_="Normal",
            controller=controller or self.controller,
            related={"apiVersion": "v1", "kind": "Pod", **preemptor},
        )

    def nominate(self, namespace: str, name: str, uid: str, node: str) -> None:
        """Set (or, with "", clear) the pod's status.nominatedNodeName."""
        self.status.patch(StatusPatch(namespace, name, uid, nominated=node))

    def forget(self, uid: str) -> None:
        """The pod is gone. Its series stay until they finish, as upstream's (the last count
        is still written)."""
        self._conditions.pop(uid, None)
        self.status.deleted(uid)

    def _event(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        resource_version: str,
        reason: str,
        action: str,
        note: str,
        type_: str,
        controller: str,
        related: dict[str, str] | None = None,
    ) -> None:
        body = event_body(
            namespace=namespace,
            name=name,
            uid=uid,
            reason=reason,
            note=note,
            action=action,
            type_=type_,
            controller=controller,
            instance=self.instance,
            resource_version=resource_version,
            unix_ns=self._wall(),
        )
        if related is not None:
            body["related"] = related
        event = self.series.observe(body, self._clock(), self._wall())
        if event is not None:
            self._put(lambda: self._write(event))

    async def _write(self, event: JSON) -> None:
        """Create `event`, or PATCH its series onto the existing Event (creating it, series
        and all, when that answers 404), as upstream's recordEvent."""
        meta = event["metadata"]
        events = f"/apis/events.k8s.io/v1/namespaces/{meta['namespace']}/events"
        if "series" not in event:
            await self.client.post(events, event)
            return
        try:
            await self.client.patch(f"{events}/{meta['name']}", {"series": event["series"]})
        except ApiError as err:
            if err.status != 404:
                raise
            try:
                await self.client.post(events, event)
            except ApiError as again:
                if again.status == 409:  # created meanwhile by the first write: PATCH again
                    raise _Again(str(again)) from again
                raise

    def _put(self, write: Callable[[], Awaitable[Any]], attempt: int = 0) -> None:
        try:
            self._queue.put_nowait((write, attempt))
        except asyncio.QueueFull:
            self.dropped += 1
            self.observer.api_call_skipped(EVENT, "backlog")

    def _retry(
        self, write: Callable[[], Awaitable[Any]], attempt: int, at_least: float = 0.0
    ) -> None:
        """Queue `write` again after its backoff (at least `at_least` seconds: a 5xx's
        Retry-After), without holding a worker meanwhile."""

        def again() -> None:
            self._retrying.discard(handle)
            self._put(write, attempt)

        delay = max(backoff(attempt - 1), at_least)
        handle = asyncio.get_running_loop().call_later(delay, again)
        self._retrying.add(handle)

    async def _every(self, seconds: float, task: Callable[[Sequence[Key]], None]) -> None:
        """Run `task` over every cached key each `seconds`, SLICE keys at a time with the loop
        let go in between (200,000 keys take a good part of a second)."""
        while True:
            await asyncio.sleep(seconds)
            keys = self.series.keys()
            for start in range(0, len(keys), SLICE):
                task(keys[start : start + SLICE])
                await asyncio.sleep(0)

    async def _work(self) -> None:
        while True:
            write, attempt = await self._queue.get()
            start = self._clock()
            try:
                await write()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if isinstance(err, ApiError) and err.status == 409:
                    # Our own name (unique to the nanosecond): an earlier try, or a series
                    # write that found the Event missing, created it already.
                    self.observer.api_call_done(EVENT, "success", self._clock() - start)
                elif isinstance(err, ApiError) and err.status == 404:
                    self.observer.api_call_skipped(EVENT, "gone")  # the namespace is gone
                elif (transient(err) or isinstance(err, _Again)) and attempt + 1 < EVENT_ATTEMPTS:
                    wait = err.retry_after if isinstance(err, ApiError) else None
                    self._retry(write, attempt + 1, at_least=wait or 0.0)
                else:
                    log.warning("event write failed", extra={"error": str(err) or repr(err)})
                    self.observer.api_call_done(EVENT, "error", self._clock() - start)
            else:
                self.observer.api_call_done(EVENT, "success", self._clock() - start)
            finally:
                self._queue.task_done()
