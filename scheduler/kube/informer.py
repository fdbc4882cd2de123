"""List + watch of one resource, feeding raw JSON events to a handler.

A paginated LIST fills the store, then a WATCH from its resourceVersion streams changes, with
bookmarks so the resourceVersion keeps moving on quiet resources. When the watch ends (server
timeout, dropped connection) it resumes from the last resourceVersion; a watch that has been
silent for `WATCH_IDLE_SECONDS` is resumed the same way on a new connection, because a silent
watch cannot be told from a dead one (see WATCH_IDLE_SECONDS); when the server says
that version is gone (410, as an HTTP status or an ERROR event) it relists and turns the
difference between the old store and the new list into synthetic events, so handlers never
miss a deletion. Reconnects back off with jitter. managedFields are dropped on arrival.

An optional `InformerObserver` hears what client-go's informer metrics report (v1.37's
kube-scheduler exposes them as `informer_*{name="kube-scheduler",group,version,resource}`):
the store's resource version, the events waiting for their handler, and how long each event
took to handle. Unlike client-go's informer, this one has no queue between the watch and the
handlers: it handles each event before it reads the next, so nothing ever waits (see
`InformerObserver.set_queued_items`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import aiohttp
import orjson

from scheduler.kube.client import ApiError, Client, StreamIdle

log = logging.getLogger("berth.informer")

JSON = dict[str, Any]
# handler(event_type, new_or_deleted_object, previous_object_or_None)
Handler = Callable[[str, JSON, JSON | None], None]

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

WATCH_IDLE_SECONDS = 30.0
"""A watch that receives nothing for this long is resumed from its resourceVersion on a new
connection. A healthy watch from v1.37's API server carries every change and, with
allowWatchBookmarks, a bookmark about once a minute, so silence proves nothing before a minute;
a connection dropped by a NAT or load balancer is silent forever. Rather than wait that minute,
berth resumes any watch quiet for 30 s (client-go's HTTP/2 ReadIdleTimeout): a dead watch is
replaced within 30 s of its last byte, and a quiet one costs one resumed watch request per 30 s,
served from the API server's watch cache without a relist."""


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): relist."""


class GroupVersionResource(NamedTuple):
    """What an informer watches, as client-go's `schema.GroupVersionResource` names it (group ""
    for the core API); the group, version and resource labels of its metrics."""

    group: str
    version: str
    resource: str


class InformerObserver(Protocol):
    """What an Informer reports about its store and its events: client-go's informer metrics
    (`InformerMetricsProvider`, tools/cache/informer_metrics.go), which v1.37's kube-scheduler
    exposes for its informers. `scheduler.metrics.Metrics.informer_observer()` returns one,
    bound to one informer's labels. Called on the event loop, once per event; must not block.
    """

    def set_resource_version(self, resource_version: int) -> None:
        """The store is now at `resource_version`, as `metric_resource_version()` gives it:
        after each list and each watch event (bookmarks included), as client-go's store sets it
        on Replace, Add, Update, Delete and Bookmark."""

    def set_queued_items(self, items: int) -> None:
        """`items` received events wait for their handler. client-go counts the deltas queued
        in the informer's RealFIFO, between the reflector that reads the watch and the loop
        that pops them (a whole list is one item there). This informer has no such queue: it
        stores and handles each event before it reads the next, so it reports 0, after each
        list."""

    def observe_processing(self, seconds: float) -> None:
        """One event took `seconds` from its arrival (its decoding included) to the end of its
        handler; a list counts as one event, from its last page to its last synthetic event's
        handler, as client-go processes a list as one ReplacedAll delta. client-go times the
        store update and the hand-off to the handlers (a shared informer's handlers run later,
        on goroutines of their own); this informer's handlers run inline, so their time is in."""


class Informer:
    def __init__(
        self,
        client: Client,
        path: str,
        handler: Handler,
        *,
        page_size: int = 500,
        min_watch_seconds: int = 300,
        watch_idle_seconds: float = WATCH_IDLE_SECONDS,
        field_selector: str = "",
        observer: InformerObserver | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`observer`, when set, hears about the store and every event (see InformerObserver); it
        may be set after construction. `clock` (seconds) times the events."""
        self.client = client
        self.path = path
        self.handler = handler
        self.page_size = page_size
        self.min_watch_seconds = min_watch_seconds
        self.watch_idle_seconds = watch_idle_seconds
        self.field_selector = field_selector
        self.resource = resource_of(path)
        self.observer = observer
        self._clock = clock
        self.store: dict[str, JSON] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.relists = 0
        self.idle_restarts = 0
        self._streamed = False  # the current watch has delivered at least one event

    async def run(self) -> None:
        """List, then watch forever; reconnect and relist as needed."""
        failures = 0
        need_list = True
        while True:
            self._streamed = False
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Expired:
                log.info("watch expired, relisting", extra={"resource": self.path})
                need_list = True
            except (TimeoutError, aiohttp.ClientError, ApiError, ConnectionError) as err:
                # A watch that streamed events before it broke was healthy: its cut starts the
                # backoff over (repeated cuts of working watches must not add up to 30 s).
                failures = 1 if self._streamed else failures + 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * (0.5 + random.random())
                log.warning(
                    "watch failed, retrying",
                    extra={"resource": self.path, "error": str(err), "delay": round(delay, 2)},
                )
                if isinstance(err, ApiError) and err.status == 410:
                    need_list = True
                if isinstance(err, ApiError) and err.retry_after is not None:
                    # The server said when (a 429 the client's own retries did not outlast):
                    # never sooner than that.
                    delay = max(delay, err.retry_after)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        fresh: dict[str, JSON] = {}
        params: dict[str, str | int] = {"limit": self.page_size}
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        while True:
            page = await self.client.request("GET", self.path, params=params, timeout=120)
            for obj in page.get("items") or []:
                _trim(obj)
                fresh[_key(obj)] = obj
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            params = {**params, "continue": token}
        start = self._clock()
        self.resource_version = page["metadata"]["resourceVersion"]
        old, self.store = self.store, fresh
        if self.synced.is_set():
            self.relists += 1
        for key, obj in fresh.items():
            previous = old.pop(key, None)
            if previous is None:
                self._deliver(ADDED, obj, None)
            elif _rv(previous) != _rv(obj):
                self._deliver(MODIFIED, obj, previous)
        for gone in old.values():
            self._deliver(DELETED, gone, None)
        self.synced.set()
        if self.observer is not None:
            self._observe(self.observer, start)
            self.observer.set_queued_items(0)

    async def _watch(self) -> None:
        timeout = self.min_watch_seconds + random.randint(0, self.min_watch_seconds)
        params: dict[str, str | int] = {
            "watch": "true",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout,
        }
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        try:
            lines = self.client.stream_lines(
                self.path, params, timeout + 30, idle=self.watch_idle_seconds
            )
            async for line in lines:
                start = self._clock()
                self._streamed = True
                self._apply(orjson.loads(line))
                if self.observer is not None:
                    self._observe(self.observer, start)
        except StreamIdle:
            # Quiet or dead, it cannot be told: resume from the resourceVersion (see
            # WATCH_IDLE_SECONDS). Not a failure: no backoff, no warning.
            self.idle_restarts += 1
            log.debug("watch idle, resuming", extra={"resource": self.path})
        except ApiError as err:
            if err.status == 410:
                raise Expired from err
            raise

    def _observe(self, observer: InformerObserver, start: float) -> None:
        """An event that arrived at `start` has been stored and handled."""
        seconds = self._clock() - start
        rv = metric_resource_version(self.resource_version)
        if rv is not None:
            observer.set_resource_version(rv)
        observer.observe_processing(seconds)

    def _deliver(self, kind: str, obj: JSON, previous: JSON | None) -> None:
        """Hand one event to the handler; a failing handler is logged, never kills the watch."""
        try:
            self.handler(kind, obj, previous)
        except Exception:
            log.exception(
                "event handler failed",
                extra={"resource": self.path, "object": _key(obj), "event": kind},
            )

    def _apply(self, event: JSON) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired
            raise ApiError(
                int(obj.get("code") or 500),
                obj.get("reason", ""),
                obj.get("message", ""),
                "WATCH",
                self.path,
            )
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        if kind == "BOOKMARK":
            return
        _trim(obj)
        key = _key(obj)
        if kind == DELETED:
            previous = self.store.pop(key, None)
            self._deliver(DELETED, obj, previous)
        elif kind in (ADDED, MODIFIED):
            previous = self.store.get(key)
            self.store[key] = obj
            self._deliver(MODIFIED if previous is not None else ADDED, obj, previous)


def resource_of(path: str) -> GroupVersionResource:
    """The resource a list/watch path names: `/api/v1/nodes` is ("", "v1", "nodes"),
    `/apis/apps/v1/namespaces/ns/replicasets` is ("apps", "v1", "replicasets")."""
    parts = path.strip("/").split("/")
    core = parts[0] == "api"
    head = 2 if core else 3  # api/<version>, apis/<group>/<version>
    rest = parts[head:]
    if len(rest) == 3 and rest[0] == "namespaces":
        rest = rest[2:]  # one namespace's: namespaces/<namespace>/<resource>
    if parts[0] not in ("api", "apis") or len(rest) != 1 or not rest[0]:
        raise ValueError(f"{path!r} is not the path of a resource collection")
    return GroupVersionResource("" if core else parts[1], parts[head - 1], rest[0])


def metric_resource_version(resource_version: str) -> int | None:
    """A resource version as client-go's informer_store_resource_version gives it: its 15 least
    significant digits as an integer (a float64 holds those exactly), 0 when empty, None when
    they are not decimal digits (versions are opaque; client-go leaves the gauge alone then)."""
    digits = resource_version[-15:]
    if not digits:
        return 0
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


def _key(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


def _rv(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _trim(obj: JSON) -> None:
    meta = obj.get("metadata")
    if meta:
        meta.pop("managedFields", None)
