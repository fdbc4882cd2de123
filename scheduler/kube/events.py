"""events.k8s.io/v1 Events and the PodScheduled condition, written off the hot path.

The scheduler only enqueues; a few worker tasks write to the API. When the backlog is full,
new writes are dropped (and counted) rather than slowing scheduling down. A pod that keeps
failing with the same message gets one FailedScheduling event a minute, not one per attempt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from scheduler.kube.client import ApiError, Client

log = logging.getLogger("berth.events")

REPEAT_SECONDS = 60.0


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
    ) -> None:
        self.client = client
        self.controller = controller
        self.instance = instance
        self._queue: asyncio.Queue[Callable[[], Awaitable[Any]]] = asyncio.Queue(backlog)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._last_failure: dict[str, tuple[str, float]] = {}
        self._clock = clock or asyncio.get_event_loop().time
        self.dropped = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def flush(self) -> None:
        await self._queue.join()

    def scheduled(
        self, namespace: str, name: str, uid: str, node: str, controller: str = ""
    ) -> None:
        """A Scheduled event. `controller` (default: the recorder's) is the reporting
        controller: upstream reports each profile's events under its scheduler name."""
        self._last_failure.pop(uid, None)
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
    ) -> None:
        """A FailedScheduling event and PodScheduled=False (reason Unschedulable or
        SchedulerError), unless the same message was written for this pod within a minute."""
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
        patch = {
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": reason,
                        "message": message,
                        "lastProbeTime": None,
                        "lastTransitionTime": now_seconds(),
                    }
                ]
            }
        }
        self._put(
            lambda: self.client.post(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)
        )
        self._put(
            lambda: self.client.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", patch)
        )

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

    def nominate(self, namespace: str, name: str, node: str) -> None:
        """Set (or, with "", clear) the pod's status.nominatedNodeName."""
        patch = {"status": {"nominatedNodeName": node or None}}
        self._put(
            lambda: self.client.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", patch)
        )

    def forget(self, uid: str) -> None:
        self._last_failure.pop(uid, None)

    def _put(self, write: Callable[[], Awaitable[Any]]) -> None:
        try:
            self._queue.put_nowait(write)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _work(self) -> None:
        while True:
            write = await self._queue.get()
            try:
                await write()
            except ApiError as err:
                if err.status not in (404, 409):  # the pod is gone: nothing to report
                    log.warning("event write failed", extra={"error": str(err)})
            except Exception as err:
                log.warning("event write failed", extra={"error": str(err)})
            finally:
                self._queue.task_done()
