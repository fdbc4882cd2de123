"""A cluster as the scheduler sees it, listed once: what `berth sim` schedules on top of.

    berth sim snapshot --out FILE        list every kind below (read only: get/list), save
    berth sim place --snapshot FILE ...  load it instead of listing a live cluster

The kinds are the ones `berth run`'s informers watch (scheduler.app.App), so a simulation
starts from the state berth would start from. The file is gzip-compressed JSON:

    {"apiVersion": "berth.dev/v1alpha1", "kind": "ClusterSnapshot", "formatVersion": 1,
     "takenAt": RFC 3339, "server": "v1.37.2", "source": "https://...",
     "objects": {"nodes": [Node, ...], "pods": [...], ...}, "missing": {"resourceslices": why}}

`missing` names the kinds the server did not serve (404) or the credentials may not list (403,
for the optional kinds); a simulation treats them as empty, as berth does with an API it
cannot watch. Objects are kept as the API returned them, without managedFields.
"""

from __future__ import annotations

import datetime
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from scheduler.eventhandlers import SELECTOR_SOURCES, VOLUME_SOURCES

JSON = dict[str, Any]

API_VERSION = "berth.dev/v1alpha1"
KIND = "ClusterSnapshot"
FORMAT_VERSION = 1
PAGE_SIZE = 500


@dataclass(frozen=True)
class Source:
    """One listed kind: its key in the file, its API path, and whether a cluster may lack it
    (a missing required kind is an error)."""

    key: str
    path: str
    required: bool = False


# Nodes and pods last: everything a pod's scheduling reads is known when they are fed.
SOURCES: tuple[Source, ...] = (
    Source("namespaces", "/api/v1/namespaces", required=True),
    Source("priorityclasses", "/apis/scheduling.k8s.io/v1/priorityclasses"),
    Source("poddisruptionbudgets", "/apis/policy/v1/poddisruptionbudgets"),
    *(Source(path.rsplit("/", 1)[1], path) for path, _ in VOLUME_SOURCES),
    *(Source(path.rsplit("/", 1)[1], path) for path, _ in SELECTOR_SOURCES),
    Source("deviceclasses", "/apis/resource.k8s.io/v1/deviceclasses"),
    Source("resourceslices", "/apis/resource.k8s.io/v1/resourceslices"),
    Source("resourceclaims", "/apis/resource.k8s.io/v1/resourceclaims"),
    Source("podgroups", "/apis/scheduling.k8s.io/v1beta1/podgroups"),
    Source("podgroups.scheduling.x-k8s.io", "/apis/scheduling.x-k8s.io/v1alpha1/podgroups"),
    Source("nodes", "/api/v1/nodes", required=True),
    Source("pods", "/api/v1/pods", required=True),
)
KEYS = frozenset(s.key for s in SOURCES)


class SnapshotError(Exception):
    """A snapshot cannot be taken or read; the message says which kind or file and why."""


@dataclass
class ClusterSnapshot:
    objects: dict[str, list[JSON]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    server: str = ""
    source: str = ""
    taken_at: str = ""

    def of(self, key: str) -> list[JSON]:
        """The objects of one kind (SOURCES' keys), in the order the API listed them."""
        return self.objects.get(key, [])

    def counts(self) -> dict[str, int]:
        return {key: len(objs) for key, objs in self.objects.items() if objs}

    def to_document(self) -> JSON:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "formatVersion": FORMAT_VERSION,
            "takenAt": self.taken_at,
            "server": self.server,
            "source": self.source,
            "objects": self.objects,
            "missing": self.missing,
        }


def save(snapshot: ClusterSnapshot, path: Path) -> int:
    """Write the snapshot gzip-compressed; returns the bytes written. OSError propagates."""
    data = gzip.compress(orjson.dumps(snapshot.to_document()), compresslevel=6, mtime=0)
    path.write_bytes(data)
    return len(data)


def load(path: Path) -> ClusterSnapshot:
    """Read a file `save` wrote. SnapshotError names the file and what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SnapshotError(f"{path}: {err.strerror or err}") from None
    try:
        doc = orjson.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, EOFError, orjson.JSONDecodeError) as err:
        raise SnapshotError(f"{path}: not a berth snapshot (gzip JSON): {err}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise SnapshotError(f"{path}: kind: expected {KIND!r}")
    version = doc.get("formatVersion")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"{path}: formatVersion: {version!r}; this berth reads {FORMAT_VERSION}"
        )
    objects = doc.get("objects")
    if not isinstance(objects, dict):
        raise SnapshotError(f"{path}: objects: expected a mapping of kind to list")
    problems = [
        f"objects.{key}: expected a list of objects"
        for key, items in objects.items()
        if not isinstance(items, list) or not all(isinstance(o, dict) for o in items)
    ]
    problems += [f"objects.{key}: unknown kind" for key in objects if key not in KEYS]
    missing = doc.get("missing") or {}
    if not isinstance(missing, dict) or not all(isinstance(v, str) for v in missing.values()):
        problems.append("missing: expected a mapping of kind to reason")
    for key, items in objects.items():
        for i, obj in enumerate(items if isinstance(items, list) else []):
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                problems.append(f"objects.{key}[{i}].metadata.name: required")
            elif key == "pods" and not isinstance(obj.get("spec"), dict):
                problems.append(f"objects.{key}[{i}].spec: expected a mapping")
    if problems:
        raise SnapshotError(f"{path}: " + "; ".join(problems))
    return ClusterSnapshot(
        objects={k: list(v) for k, v in objects.items()},
        missing=dict(missing),
        server=str(doc.get("server") or ""),
        source=str(doc.get("source") or ""),
        taken_at=str(doc.get("takenAt") or ""),
    )


Lister = Callable[[str, dict[str, str | int]], Any]
"""(path, query parameters) -> awaitable page (the client's GET)."""


async def take(
    get: Lister,
    *,
    server: str = "",
    source: str = "",
    on_progress: Callable[[str, int], None] = lambda key, n: None,
    sources: Iterable[Source] = SOURCES,
) -> ClusterSnapshot:
    """List every source, page by page (`limit`/`continue`). Only GETs are sent. A required
    kind that cannot be listed raises SnapshotError (naming the kind and the HTTP status);
    an optional one is recorded in `missing`. `on_progress(kind, objects so far)`."""
    from scheduler.kube.client import ApiError

    snap = ClusterSnapshot(
        server=server,
        source=source,
        taken_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    for src in sources:
        items: list[JSON] = []
        params: dict[str, str | int] = {"limit": PAGE_SIZE}
        try:
            while True:
                page = await get(src.path, params)
                for obj in page.get("items") or []:
                    (obj.get("metadata") or {}).pop("managedFields", None)
                    items.append(obj)
                on_progress(src.key, len(items))
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break
                params = {**params, "continue": token}
        except ApiError as err:
            why = {403: "forbidden", 404: "not served"}.get(err.status, f"HTTP {err.status}")
            if src.required or err.status not in (403, 404):
                raise SnapshotError(f"cannot list {src.key} ({src.path}): {why}: {err}") from None
            snap.missing[src.key] = why
            continue
        snap.objects[src.key] = items
    return snap
