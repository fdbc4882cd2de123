"""Pod status writes (the PodScheduled condition, nominatedNodeName): per pod, in order, merged,
dropped when the pod's later state makes them stale, and retried when the failure is transient.

This mirrors upstream's API dispatcher (`pkg/scheduler/backend/api_dispatcher`, feature
SchedulerAsyncAPICalls) for its `pod_status_patch` call, and its rule that a Binding is more
relevant than a status patch:

```
  patch(p) ──▶ pending[p.uid] (merged with a pending one) ──▶ FIFO of uids ──▶ worker
                 ▲  a newer patch for a uid in flight waits      │ one call per uid at a time
                 │  and goes after it                            ▼
  binding(uid): pending patch dropped; an in-flight one is awaited; patches are skipped until
                binding_failed(uid) or for good after bound(uid)
```

Without this, a burst in which pods first fail, then preempt, then bind left bound pods with
`PodScheduled=False` and a stale `nominatedNodeName`: a failure patch queued before the bind
landed after it (the API server sets PodScheduled=True and, since v1.35, clears the nomination
when it binds).

A transient failure (no answer, 5xx) is retried with jittered exponential backoff, up to
`attempts` tries over about a minute (a 429 has been retried by the client already); a 404
means the pod is gone. Every call ends in one
`result` reported to the observer: success, error (given up or refused), or skipped (stale,
superseded by a newer write, or no room: at most `max_pending` pods may have a write waiting).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from scheduler.kube.client import ApiError, Client

log = logging.getLogger("berth.dispatcher")

POD_STATUS_PATCH = "pod_status_patch"
"""Upstream's call type name (framework/api_calls)."""

KEEP_BOUND = 200_000
"""How many recently bound pod UIDs are remembered, to skip status writes for them."""


class CallObserver(Protocol):
    """Hears about each call (upstream's async_api_call metrics; `scheduler.metrics.Metrics`
    is one)."""

    def api_call_done(self, call_type: str, result: str, seconds: float) -> None:
        """A call ended: result is "success" or "error"; seconds from its start to its end,
        retries included."""

    def api_call_skipped(self, call_type: str, reason: str) -> None:
        """A call was never made: reason "stale", "superseded", "backlog" or "gone"."""

    def api_calls_pending(self, call_type: str, pending: int) -> None:
        """`pending` calls wait (not in flight)."""


class NullCallObserver:
    def api_call_done(self, call_type: str, result: str, seconds: float) -> None:
        return None

    def api_call_skipped(self, call_type: str, reason: str) -> None:
        return None

    def api_calls_pending(self, call_type: str, pending: int) -> None:
        return None


def transient(err: BaseException) -> bool:
    """Worth retrying here: no answer at all, or the server failing (5xx). Not 429: the
    client has retried that already, waiting what Retry-After said, and retrying its
    retries would multiply the load on a server that asked for less (six tries times
    eight)."""
    if isinstance(err, ApiError):
        return err.status >= 500
    return isinstance(err, TimeoutError | ConnectionError | OSError | aiohttp.ClientError)


def backoff(attempt: int, base: float = 0.5, cap: float = 16.0) -> float:
    """Jittered exponential backoff: ~0.5 s, 1 s, 2 s, ... capped near `cap`."""
    return float(min(cap, base * 2**attempt)) * (0.5 + random.random())


@dataclass
class StatusPatch:
    """One pod's status change: `condition` (a PodScheduled condition) and/or `nominated`
    (None: leave it; "": clear it). Upstream's PodStatusPatchCall."""

    namespace: str
    name: str
    uid: str
    condition: dict[str, Any] | None = None
    nominated: str | None = None

    def over(self, older: StatusPatch) -> StatusPatch:
        """This patch merged over an older one for the same pod: what this one leaves alone,
        the older one still sets (upstream's Merge)."""
        return StatusPatch(
            self.namespace,
            self.name,
            self.uid,
            self.condition if self.condition is not None else older.condition,
            self.nominated if self.nominated is not None else older.nominated,
        )

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {}
        if self.condition is not None:
            status["conditions"] = [self.condition]
        if self.nominated is not None:
            status["nominatedNodeName"] = self.nominated or None
        return {"status": status}


class StatusDispatcher:
    """See the module docstring. `start()` the workers on the loop, `stop()` them."""

    def __init__(
        self,
        client: Client,
        *,
        workers: int = 4,
        max_pending: int = 100_000,
        attempts: int = 8,
        observer: CallObserver | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.attempts = attempts
        self.max_pending = max_pending
        self.observer: CallObserver = observer or NullCallObserver()
        self._clock = clock or asyncio.get_event_loop().time
        self._sleep = sleep
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: dict[str, StatusPatch] = {}  # waiting, by uid (merged)
        self._order: deque[str] = deque()  # uids with a pending patch, not in flight
        self._queued: set[str] = set()  # the uids in _order: each at most once
        self._in_flight: dict[str, asyncio.Event] = {}  # set when that uid's call ends
        self._stale: dict[str, asyncio.Event] = {}  # set to cut that uid's retry backoff
        self._binding: set[str] = set()
        self._bound: OrderedDict[str, None] = OrderedDict()
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def flush(self) -> None:
        """Wait until nothing is pending or in flight."""
        while self._pending or self._in_flight:
            self._idle.clear()
            await self._idle.wait()

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- what the scheduler says ----------------------------------------------------------

    def patch(self, patch: StatusPatch) -> None:
        """Queue `patch` behind (merged with) any pending one for the same pod; skipped when
        the pod is bound or being bound."""
        uid = patch.uid
        if uid in self._bound or uid in self._binding:
            self.observer.api_call_skipped(POD_STATUS_PATCH, "stale")
            return
        older = self._pending.get(uid)
        if older is not None:
            self._pending[uid] = patch.over(older)
            self.observer.api_call_skipped(POD_STATUS_PATCH, "superseded")
            return
        if len(self._pending) >= self.max_pending:
            self.observer.api_call_skipped(POD_STATUS_PATCH, "backlog")
            return
        self._pending[uid] = patch
        if uid not in self._in_flight:
            self._enqueue(uid)
        self._report_pending()

    async def binding(self, uid: str) -> None:
        """A Binding for this pod is about to be sent: a pending status write is dropped
        (the Binding sets PodScheduled=True and clears the nomination), one in flight is
        waited for, so it cannot land after the Binding; later writes are skipped until
        `binding_failed` or, for good, `bound`."""
        self._binding.add(uid)
        if self._pending.pop(uid, None) is not None:
            self.observer.api_call_skipped(POD_STATUS_PATCH, "stale")
            self._report_pending()
        done = self._in_flight.get(uid)
        if done is not None:
            self._wake(uid)  # a write waiting to retry gives up now, not after its backoff
            await done.wait()

    def binding_failed(self, uid: str) -> None:
        self._binding.discard(uid)

    def bound(self, uid: str) -> None:
        """The pod is bound (by berth, or seen bound by the watch): nothing pending or later
        for it is written. Only pods the dispatcher has heard of are remembered: the watch
        reports every bound pod of the cluster (a relist, a hundred thousand of them), and a
        pod berth never wrote for has nothing to supersede."""
        known = uid in self._binding or uid in self._pending or uid in self._in_flight
        self._binding.discard(uid)
        if uid in self._bound or not known:
            return
        self._bound[uid] = None
        self._wake(uid)
        if len(self._bound) > KEEP_BOUND:
            self._bound.popitem(last=False)
        if self._pending.pop(uid, None) is not None:
            self.observer.api_call_skipped(POD_STATUS_PATCH, "stale")
            self._report_pending()

    def deleted(self, uid: str) -> None:
        """The pod is gone: drop what waits for it and forget it."""
        self._binding.discard(uid)
        self._bound.pop(uid, None)
        if self._pending.pop(uid, None) is not None:
            self.observer.api_call_skipped(POD_STATUS_PATCH, "gone")
            self._report_pending()

    # --- the workers ----------------------------------------------------------------------

    def _wake(self, uid: str) -> None:
        stale = self._stale.get(uid)
        if stale is not None:
            stale.set()

    async def _pause(self, uid: str, seconds: float) -> None:
        """The backoff before a retry, cut short when the pod's Binding makes it moot."""
        stale = self._stale[uid]
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(stale.wait())
        try:
            await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()

    def _report_pending(self) -> None:
        self.observer.api_calls_pending(POD_STATUS_PATCH, len(self._pending))

    def _enqueue(self, uid: str) -> None:
        """Put `uid` in line once: a uid left in line by a dropped write (binding) and queued
        again would otherwise run two writes for one pod at once."""
        if uid not in self._queued:
            self._queued.add(uid)
            self._order.append(uid)
        self._ready.set()

    def _next(self) -> tuple[str, StatusPatch] | None:
        while self._order:
            uid = self._order.popleft()
            self._queued.discard(uid)
            if uid in self._in_flight:
                continue  # its write in flight queues it again when it ends
            patch = self._pending.pop(uid, None)
            if patch is not None:  # else dropped while it waited
                self._report_pending()
                return uid, patch
        self._ready.clear()
        return None

    async def _work(self) -> None:
        while True:
            picked = self._next()
            if picked is None:
                if not self._in_flight and not self._pending:
                    self._idle.set()
                await self._ready.wait()
                continue
            uid, patch = picked
            done = self._in_flight[uid] = asyncio.Event()
            self._stale[uid] = asyncio.Event()
            try:
                await self._execute(patch)
            finally:
                del self._in_flight[uid], self._stale[uid]
                done.set()
                if uid in self._pending:  # a newer write arrived meanwhile: it goes next
                    self._enqueue(uid)

    async def _execute(self, patch: StatusPatch) -> None:
        start = self._clock()
        path = f"/api/v1/namespaces/{patch.namespace}/pods/{patch.name}/status"
        for attempt in range(self.attempts):
            server_wait = 0.0  # a 5xx's Retry-After: wait at least that long
            if patch.uid in self._bound or patch.uid in self._binding:
                self.observer.api_call_skipped(POD_STATUS_PATCH, "stale")
                return
            if attempt and patch.uid in self._pending:
                # A newer write, merged over this one, is waiting: it carries this one's
                # content, so this one is done.
                self.observer.api_call_skipped(POD_STATUS_PATCH, "superseded")
                return
            try:
                await self.client.patch(path, patch.body())
            except ApiError as err:
                if err.status == 404:
                    self.observer.api_call_skipped(POD_STATUS_PATCH, "gone")
                    return
                if not transient(err) or attempt + 1 == self.attempts:
                    self._give_up(patch, err, start)
                    return
                server_wait = err.retry_after or 0.0
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if not transient(err) or attempt + 1 == self.attempts:
                    self._give_up(patch, err, start)
                    return
            else:
                self.observer.api_call_done(POD_STATUS_PATCH, "success", self._clock() - start)
                return
            await self._pause(patch.uid, max(backoff(attempt), server_wait))

    def _give_up(self, patch: StatusPatch, err: BaseException, start: float) -> None:
        log.warning(
            "pod status write failed",
            extra={"pod": f"{patch.namespace}/{patch.name}", "error": str(err) or repr(err)},
        )
        self.observer.api_call_done(POD_STATUS_PATCH, "error", self._clock() - start)
