"""List + watch of one resource, feeding raw JSON events to a handler.

A paginated LIST fills the store, then a WATCH from its resourceVersion streams changes, with
bookmarks so the resourceVersion keeps moving on quiet resources. When the watch ends (server
timeout, dropped connection) it resumes from the last resourceVersion; when the server says
that version is gone (410, as an HTTP status or an ERROR event) it relists and turns the
difference between the old store and the new list into synthetic events, so handlers never
miss a deletion. Reconnects back off with jitter. managedFields are dropped on arrival.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from scheduler.kube.client import ApiError, Client

log = logging.getLogger("berth.informer")

JSON = dict[str, Any]
# handler(event_type, new_or_deleted_object, previous_object_or_None)
Handler = Callable[[str, JSON, JSON | None], None]

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): relist."""


class Informer:
    def __init__(
        self,
        client: Client,
        path: str,
        handler: Handler,
        *,
        page_size: int = 500,
        min_watch_seconds: int = 300,
        field_selector: str = "",
    ) -> None:
        self.client = client
        self.path = path
        self.handler = handler
        self.page_size = page_size
        self.min_watch_seconds = min_watch_seconds
        self.field_selector = field_selector
        self.store: dict[str, JSON] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.relists = 0

    async def run(self) -> None:
        """List, then watch forever; reconnect and relist as needed."""
        failures = 0
        need_list = True
        while True:
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
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * (0.5 + random.random())
                log.warning(
                    "watch failed, retrying",
                    extra={"resource": self.path, "error": str(err), "delay": round(delay, 2)},
                )
                if isinstance(err, ApiError) and err.status == 410:
                    need_list = True
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
            async for line in self.client.stream_lines(self.path, params, timeout + 30):
                self._apply(orjson.loads(line))
        except ApiError as err:
            if err.status == 410:
                raise Expired from err
            raise

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
