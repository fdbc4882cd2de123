"""Event series: which events.k8s.io/v1 writes an event needs, as client-go's events broadcaster
decides them (`k8s.io/client-go/tools/events`, event_broadcaster.go `recordToSink`,
`refreshExistingEventSeries`, `finishSeries`). Pure: times come in as arguments.

```
  observe(event) ─▶ key seen? ── no ──▶ cache it; write it (create)
                        │ yes, a singleton ─▶ series {count 2, lastObservedTime now}; write (patch)
                        └ yes, a series ────▶ count += 1, lastObservedTime = now; no write
  refresh()        every 30 min: write every series again (its current count)
  finish(now)      every 6 min: a series not seen for 6 min is written a last time and
                   forgotten; a singleton older than 6 min is forgotten
```

So a pod failing alike every second costs a create, a patch on its second failure and a patch
when the series ends (plus one every 30 min while it lasts), whatever the number of failures.
A write carrying `series` is a PATCH of the existing Event; the caller creates it instead when
the PATCH answers 404 (upstream's recordEvent).

The key is upstream's `eventKey` (type, action, reason, reporting controller and instance,
the full `regarding` and `related` references, resourceVersion included) plus the note, a
deliberate difference (docs/compat.md): upstream's series splits when the scheduler's own
PodScheduled write changes the pod's resourceVersion, but berth's queue keeps the pod version
it was given until the spec or labels change, so without the note a new failure message would
be counted under the first one's note for as long as the pod waits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

FINISH_SECONDS = 6 * 60.0
"""upstream's finishTime: a series not seen for this long is over; the finish pass runs this
often, too."""
REFRESH_SECONDS = 30 * 60.0
"""upstream's refreshTime: every series in the cache is written again this often."""
MAX_KEYS = 200_000
"""Entries kept at most (upstream's cache has no bound): past it the oldest key is forgotten,
and a repeat of it starts a new Event."""
MAX_NAME = 253  # a DNS subdomain, as metadata.name must be


def micro_time(unix_ns: int) -> str:
    """A metav1.MicroTime: RFC 3339 in UTC with microseconds ("2026-01-02T03:04:05.123456Z")."""
    stamp = dt.datetime.fromtimestamp(unix_ns // 1000 / 1e6, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_name(regarding: str, unix_ns: int) -> str:
    """`<regarding name>.<unix ns in hex>`, or a random UUID when that is no valid name
    (client-go's GenerateEventName)."""
    name = f"{regarding}.{unix_ns:x}"
    return name if len(name) <= MAX_NAME else str(uuid.uuid4())


Key = tuple[object, ...]


def _reference(ref: JSON | None) -> tuple[str, ...]:
    """An ObjectReference's fields, all of them as Go compares the struct."""
    if not ref:
        return ()
    get = ref.get
    return (
        get("kind", ""),
        get("apiVersion", ""),
        get("namespace", ""),
        get("name", ""),
        get("uid", ""),
        get("resourceVersion", ""),
        get("fieldPath", ""),
    )


def key_of(event: JSON) -> Key:
    """What makes two events one series (see the module docstring)."""
    return (
        event.get("type", ""),
        event.get("action", ""),
        event.get("reason", ""),
        event.get("reportingController", ""),
        event.get("reportingInstance", ""),
        _reference(event.get("regarding")),
        _reference(event.get("related")),
        event.get("note", ""),
    )


@dataclass(slots=True)
class _Entry:
    event: JSON  # the first occurrence, as created
    first: float  # clock seconds of the first occurrence
    last: float  # clock seconds of the latest occurrence
    count: int = 1
    last_observed: str = ""  # series.lastObservedTime, once a series

    def with_series(self) -> JSON:
        return {
            **self.event,
            "series": {"count": self.count, "lastObservedTime": self.last_observed},
        }


class SeriesCache:
    """The isomorphic events seen lately, by key (upstream's eventCache)."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._entries: dict[Key, _Entry] = {}
        self._max_keys = max_keys

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, event: JSON, now: float, unix_ns: int) -> JSON | None:
        """One more occurrence of `event` at `now` (clock seconds; `unix_ns` wall time): the
        Event to write (with `series` when it is a PATCH of the first one), or None."""
        key = key_of(event)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._max_keys:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = _Entry(event, now, now)
            return event
        entry.count += 1
        entry.last = now
        entry.last_observed = micro_time(unix_ns)
        # The third and later occurrences only count: the refresh and finish passes write them.
        return entry.with_series() if entry.count == 2 else None

    def keys(self) -> list[Key]:
        """The keys now cached, for a pass done in slices (`keys=` of refresh and finish)."""
        return list(self._entries)

    def refresh(self, keys: Iterable[Key] | None = None) -> list[JSON]:
        """Every series (of `keys`, default all), to write again (upstream's
        refreshExistingEventSeries)."""
        writes: list[JSON] = []
        for key in self._entries if keys is None else keys:
            entry = self._entries.get(key)
            if entry is not None and entry.count > 1:
                writes.append(entry.with_series())
        return writes

    def finish(self, now: float, keys: Iterable[Key] | None = None) -> list[JSON]:
        """The series (of `keys`, default all) not seen since `now - FINISH_SECONDS`, to write
        a last time; they and singletons older than that are forgotten (upstream's
        finishSeries)."""
        writes: list[JSON] = []
        for key in self.keys() if keys is None else keys:
            entry = self._entries.get(key)
            if entry is None:
                continue
            if entry.count > 1 and entry.last < now - FINISH_SECONDS:
                writes.append(entry.with_series())
                del self._entries[key]
            elif entry.count == 1 and entry.first < now - FINISH_SECONDS:
                del self._entries[key]
        return writes
