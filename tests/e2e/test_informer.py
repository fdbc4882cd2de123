"""The informer against a real API server: list, watch, and relist after 410 Gone."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from typing import Any

import pytest

from scheduler.kube.client import Client
from scheduler.kube.informer import ADDED, DELETED, MODIFIED, Expired, Informer
from tests.builders import make_pod
from tests.e2e.conftest import Cluster

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


def compact_etcd(cluster: Cluster) -> None:
    """Compact the local plane's etcd at its current revision, as kube-apiserver does every
    five minutes, so an old resourceVersion is really gone. Since v1.35 the API server serves a
    watch from an old (but uncompacted) resourceVersion out of etcd instead of answering 410."""
    if cluster.directory is None:
        pytest.skip("needs the local plane's etcd to compact it (run without KUBECONFIG)")
    port = json.loads((cluster.directory / "cluster.json").read_text())["ports"]["etcd"]
    base = f"http://127.0.0.1:{port}/v3/kv"

    def post(path: str, body: JSON) -> JSON:
        request = urllib.request.Request(f"{base}/{path}", data=json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer: JSON = json.loads(resp.read())
            return answer

    revision = post("range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"]
    post("compaction", {"revision": revision, "physical": True})


async def test_expired_watch_relists_and_synthesizes_missed_events(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    """After 410 Gone the relist turns what the informer missed into ADDED/DELETED events.

    ConfigMaps, because the local plane serves them without a watch cache (plane.py): a
    cached resource answers an old resourceVersion from the cache instead of with 410."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await client.post(path, {"metadata": {"name": "old"}})
    seen = Recorder()
    # Not the namespace's kube-root-ca.crt, which kube-controller-manager adds at any time.
    informer = Informer(client, path, seen, field_selector="metadata.name!=kube-root-ca.crt")
    await informer._list()
    assert seen.events == [(ADDED, "old")]
    seen.events.clear()
    # While "disconnected": one object goes, another comes, and etcd forgets the history.
    await client.delete(f"{path}/old")
    await client.post(path, {"metadata": {"name": "new"}})
    compact_etcd(cluster)
    informer.resource_version = "1"  # far older than anything the server still keeps
    informer.min_watch_seconds = 5
    with pytest.raises(Expired):
        await informer._watch()
    await informer._list()
    assert sorted(seen.events) == [(ADDED, "new"), (DELETED, "old")]
    assert set(informer.store) == {f"{namespace}/new"}
