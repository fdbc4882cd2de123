"""events.k8s.io/v1 Events and the pod status writes, off the hot path.

The scheduler only enqueues; workers write to the API.

- **Events** (Scheduled, FailedScheduling, Preempted) wait in a queue of at most `backlog`
  (20,000) writes; beyond that a new one is dropped and counted. A transient failure (no
  answer, 5xx; the client itself retries a 429) is retried with jittered backoff, up to
  `EVENT_ATTEMPTS` tries (about a minute, like client-go's event sink, which tries 12 times
  10 s apart), without holding a worker. An event keeps its name across tries, so a try
  whose answer was lost but which landed makes the next one a 409, counted as written.
- **Status writes** (PodScheduled=False, nominatedNodeName) go through `StatusDispatcher`: per
  pod, in order, merged, superseded by a Binding and retried (see kube.dispatcher).

A pod that keeps failing with the same message gets one FailedScheduling event a minute, not
one per attempt. Every write ends in the observer's api_call_* counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
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

log = logging.getLogger("berth.events")

REPEAT_SECONDS = 60.0
EVENT = "event"
"""The call type events are counted under (berth's; upstream's dispatcher carries no events)."""
EVENT_ATTEMPTS = 8


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_seconds() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{secrets.token_hex(8)}", "namespace": namespace},
        "eventTime": now_micro(),
        "reportingController": controller,
        "reportingInstance": instance,
        "action": action,
        "reason": reason,
        "note": note[:1024],
        "type": type_,
        "regarding": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
            "name": name,
            "uid": uid,
        },
    }


class Recorder:
    def __init__(
        self,
        client: Client,
        *,
        controller: str,
        instance: str,
        workers: int = 8,
        backlog: int = 20000,
        clock: Callable[[], float] | None = None,
        observer: CallObserver | None = None,
        status: StatusDispatcher | None = None,
    ) -> None:
        """`status` writes the pod status changes (default: a dispatcher on the same client,
        reporting to `observer`)."""
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
        self._last_failure: dict[str, tuple[str, float]] = {}
        self._clock = clock or asyncio.get_event_loop().time
        self.status = status or StatusDispatcher(client, observer=self.observer, clock=clock)
        self.dropped = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
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

    def scheduled(
        self, namespace: str, name: str, uid: str, node: str, controller: str = ""
    ) -> None:
        """A Scheduled event (the pod is bound: no status write for it is made after this).
        `controller` (default: the recorder's) is the reporting controller: upstream reports
        each profile's events under its scheduler name."""
        self._last_failure.pop(uid, None)
        self.status.bound(uid)
        body = event_body(
            namespace=namespace,
            name=name,
            uid=uid,
            reason="Scheduled",
            action="Binding",
            note=f"Successfully assigned {namespace}/{name} to {node}",
            type_="Normal",
            controller=controller or self.controller,
            instance=self.instance,
        )
        self._put(
            lambda: self.client.post(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)
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
    ) -> None:
        """A FailedScheduling event and PodScheduled=False (reason Unschedulable or
        SchedulerError, observedGeneration the pod's `generation` when it has one, as
        PodObservedGenerationTracking, GA in v1.35, writes it), unless the same message was
        written for this pod within a minute."""
        now = self._clock()
        last = self._last_failure.get(uid)
        if last is not None and last[0] == message and now - last[1] < REPEAT_SECONDS:
            return
        self._last_failure[uid] = (message, now)
        if len(self._last_failure) > 100000:
            self._last_failure.pop(next(iter(self._last_failure)))
        body = event_body(
            namespace=namespace,
            name=name,
            uid=uid,
            reason="FailedScheduling",
            action="Scheduling",
            note=message,
            type_="Warning",
            controller=controller or self.controller,
            instance=self.instance,
        )
        condition: dict[str, Any] = {
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": now_seconds(),
        }
        if generation > 0:
            condition["observedGeneration"] = generation
        self._put(
            lambda: self.client.post(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)
        )
        self.status.patch(StatusPatch(namespace, name, uid, condition=condition))

    def preempted(
        self,
        namespace: str,
        name: str,
        uid: str,
        preemptor: dict[str, str],
        node: str,
        controller: str = "",
        in_memory: bool = False,
    ) -> None:
        """A Preempted event on the victim, related to the preemptor (keys namespace, name,
        uid), with upstream's note."""
        body = event_body(
            namespace=namespace,
            name=name,
            uid=uid,
            reason="Preempted",
            action="Preempting",
            note=f"Preempted by pod {preemptor['uid']} on node {node}"
            + (" (in kube-scheduler memory)." if in_memory else ""),
            type_="Normal",
            controller=controller or self.controller,
            instance=self.instance,
        )
        body["related"] = {"apiVersion": "v1", "kind": "Pod", **preemptor}
        self._put(
            lambda: self.client.post(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)
        )

    def nominate(self, namespace: str, name: str, uid: str, node: str) -> None:
        """Set (or, with "", clear) the pod's status.nominatedNodeName."""
        self.status.patch(StatusPatch(namespace, name, uid, nominated=node))

    def forget(self, uid: str) -> None:
        """The pod is gone."""
        self._last_failure.pop(uid, None)
        self.status.deleted(uid)

    def _put(self, write: Callable[[], Awaitable[Any]], attempt: int = 0) -> None:
        try:
            self._queue.put_nowait((write, attempt))
        except asyncio.QueueFull:
            self.dropped += 1
            self.observer.api_call_skipped(EVENT, "backlog")

    def _retry(self, write: Callable[[], Awaitable[Any]], attempt: int) -> None:
        """Queue `write` again after its backoff, without holding a worker meanwhile."""

        def again() -> None:
            self._retrying.discard(handle)
            self._put(write, attempt)

        handle = asyncio.get_running_loop().call_later(backoff(attempt - 1), again)
        self._retrying.add(handle)

    async def _work(self) -> None:
        while True:
            write, attempt = await self._queue.get()
            start = self._clock()
            try:
                await write()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if isinstance(err, ApiError) and err.status == 409 and attempt:
                    # An earlier try landed although its answer was lost.
                    self.observer.api_call_done(EVENT, "success", self._clock() - start)
                elif isinstance(err, ApiError) and err.status == 404:
                    self.observer.api_call_skipped(EVENT, "gone")  # the namespace is gone
                elif transient(err) and attempt + 1 < EVENT_ATTEMPTS:
                    self._retry(write, attempt + 1)
                else:
                    log.warning("event write failed", extra={"error": str(err) or repr(err)})
                    self.observer.api_call_done(EVENT, "error", self._clock() - start)
            else:
                self.observer.api_call_done(EVENT, "success", self._clock() - start)
            finally:
                self._queue.task_done()
