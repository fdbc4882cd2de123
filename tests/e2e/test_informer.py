"""The informer against a real API server: list, watch, and relist after 410 Gone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scheduler.kube.client import Client
from scheduler.kube.informer import ADDED, DELETED, MODIFIED, Expired, Informer
from tests.builders import make_pod

JSON = dict[str, Any]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, kind: str, obj: JSON, old: JSON | None) -> None:
        assert "managedFields" not in obj["metadata"]
        self.events.append((kind, obj["metadata"]["name"]))


async def until(condition: Any, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met")


async def test_list_then_watch_delivers_every_change(client: Client, namespace: str) -> None:
    """Paginated list, then ADDED/MODIFIED/DELETED from the watch, managedFields dropped."""
    for i in range(5):
        await client.post(
            f"/api/v1/namespaces/{namespace}/pods",
            make_pod(f"pre{i}").scheduler("nobody").for_api(),
        )
    seen = Recorder()
    informer = Informer(client, f"/api/v1/namespaces/{namespace}/pods", seen, page_size=2)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 30)
        assert sorted(seen.events) == [(ADDED, f"pre{i}") for i in range(5)]
        await client.post(
            f"/api/v1/namespaces/{namespace}/pods", make_pod("live").scheduler("nobody").for_api()
        )
        await client.patch(
            f"/api/v1/namespaces/{namespace}/pods/live", {"metadata": {"labels": {"x": "y"}}}
        )
        await client.request(
            "DELETE", f"/api/v1/namespaces/{namespace}/pods/live", params={"gracePeriodSeconds": 0}
        )
        await until(lambda: (DELETED, "live") in seen.events)
        live = [k for k, n in seen.events if n == "live"]
        # Deletion may pass through a MODIFIED (deletionTimestamp set) before DELETED.
        assert live[0] == ADDED and live[-1] == DELETED and MODIFIED in live[1:-1]
    finally:
        task.cancel()


async def test_expired_watch_relists_and_synthesizes_missed_events(
    client: Client, namespace: str
) -> None:
    """After 410 Gone the relist turns what the informer missed into ADDED/DELETED events."""
    path = f"/api/v1/namespaces/{namespace}/pods"
    await client.post(path, make_pod("old").scheduler("nobody").for_api())
    seen = Recorder()
    informer = Informer(client, path, seen)
    await informer._list()
    assert seen.events == [(ADDED, "old")]
    # While "disconnected": one pod goes, another comes.
    await client.request("DELETE", f"{path}/old", params={"gracePeriodSeconds": 0})
    await client.post(path, make_pod("new").scheduler("nobody").for_api())
    informer.resource_version = "1"  # far older than anything the server still keeps
    informer.min_watch_seconds = 5
    with pytest.raises(Expired):
        await informer._watch()
    await informer._list()
    assert seen.events[1:] == [(ADDED, "new"), (DELETED, "old")]
    assert set(informer.store) == {f"{namespace}/new"}
