"""Volumes and host ports end to end: claims bound to local PVs, missing and unbound claims,
pods with volumes that need nothing, and hostPort conflicts, on a real API server.

No controller-manager runs on the test control plane, so nothing binds claims: each test
binds its PV and PVC itself (spec.volumeName, the PV's claimRef, the bind-completed annotation
and status.phase Bound through the status subresource), as the PV controller would.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from scheduler.kube.client import Client
from tests.builders import make_pod
from tests.e2e.conftest import Running
from tests.e2e.provisioner import delete_volume

T = TypeVar("T")
JSON = dict[str, Any]
HOSTNAME = "kubernetes.io/hostname"


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float = 60.0) -> T:
    """Poll until `probe` returns something truthy (bounded, not a timing assertion)."""
    for _ in range(int(timeout / 0.2)):
        if result := await probe():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s")


async def bound_to(client: Client, namespace: str, name: str) -> str:
    async def probe() -> str | None:
        pod = await client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        node: str | None = pod["spec"].get("nodeName")
        return node

    return await wait_for(probe)


async def failed_message(client: Client, namespace: str, name: str) -> str:
    async def probe() -> str | None:
        events = await client.get(
            f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
            fieldSelector=f"regarding.name={name},reason=FailedScheduling",
        )
        items = events["items"]
        return str(items[-1]["note"]) if items else None

    return await wait_for(probe)


async def create_pod(client: Client, namespace: str, pod: JSON) -> None:
    await client.post(f"/api/v1/namespaces/{namespace}/pods", pod)


def berth_pod(name: str, *volumes: JSON) -> JSON:
    raw = make_pod(name).scheduler("berth").req(cpu="10m", memory="16Mi").for_api()
    if volumes:
        raw["spec"]["volumes"] = list(volumes)
    return raw


def claim(name: str) -> JSON:
    return {"name": name, "persistentVolumeClaim": {"claimName": name}}


async def node_names(client: Client) -> list[str]:
    nodes = (await client.get("/api/v1/nodes"))["items"]
    return sorted(
        n["metadata"]["name"]
        for n in nodes
        if not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])
        and not n["spec"].get("unschedulable")
    )


@pytest.fixture
async def volumes(client: Client) -> AsyncIterator[list[str]]:
    """PVs made by a test (cluster-scoped), removed afterwards with their protection
    finalizer, which nothing would clear without a controller-manager."""
    made: list[str] = []
    yield made
    for name in made:
        await delete_volume(client, name)


async def bound_claim(
    client: Client, namespace: str, name: str, node: str, made: list[str]
) -> None:
    """A PV with node affinity to `node` and a PVC, pre-bound to each other; the cluster's PV
    controller (kube-controller-manager's binder) completes the binding, as in any cluster."""
    pv_name = f"{namespace}-{name}"
    made.append(pv_name)
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "persistentVolumeReclaimPolicy": "Retain",
            "local": {"path": f"/mnt/{name}"},
            "claimRef": {"namespace": namespace, "name": name},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": HOSTNAME, "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            },
        },
    }
    await client.post("/api/v1/persistentvolumes", pv)
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": pv_name,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    await client.post(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)

    async def bound() -> bool:
        path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"
        claim = await client.get(path)
        return (claim.get("status") or {}).get("phase") == "Bound"

    await wait_for(bound)


async def test_pod_with_claim_bound_to_local_pv_lands_on_its_node(
    berth_scheduler: Running, client: Client, namespace: str, volumes: list[str]
) -> None:
    """The PV's node affinity decides: the pod goes to the one node the volume is on."""
    nodes = await node_names(client)
    target = nodes[len(nodes) // 2]
    await bound_claim(client, namespace, "data", target, volumes)
    await create_pod(client, namespace, berth_pod("db", claim("data")))
    assert await bound_to(client, namespace, "db") == target


async def test_pod_with_missing_claim_fails_with_upstreams_reason(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A claim that does not exist fails the pod at PreFilter, on every node."""
    await create_pod(client, namespace, berth_pod("orphan", claim("missing")))
    message = await failed_message(client, namespace, "orphan")
    pattern = r'0/\d+ nodes are available: persistentvolumeclaim "missing" not found\.'
    assert re.match(pattern, message), message


async def test_pod_with_unbound_immediate_claim_fails(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A claim nobody bound (no class: Immediate) keeps the pod pending with upstream's reason."""
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "later"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    await client.post(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)
    await create_pod(client, namespace, berth_pod("waits", claim("later")))
    message = await failed_message(client, namespace, "waits")
    pattern = r"0/\d+ nodes are available: pod has unbound immediate PersistentVolumeClaims\."
    assert re.match(pattern, message), message


async def test_pods_with_volumes_that_need_nothing_schedule(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """emptyDir, configMap, secret, projected, downwardAPI and hostPath volumes do not
    constrain scheduling (the referenced objects need not exist to be scheduled)."""
    volumes: list[JSON] = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "absent"}},
        {"name": "secret", "secret": {"secretName": "absent"}},
        {"name": "projected", "projected": {"sources": [{"configMap": {"name": "absent"}}]}},
        {"name": "downward", "downwardAPI": {"items": []}},
        {"name": "host", "hostPath": {"path": "/var/log"}},
    ]
    for i, volume in enumerate(volumes):
        await create_pod(client, namespace, berth_pod(f"v{i}", volume))
    await create_pod(client, namespace, berth_pod("all", *volumes))
    for i in range(len(volumes)):
        assert await bound_to(client, namespace, f"v{i}")
    assert await bound_to(client, namespace, "all")


def with_host_port(pod: JSON, port: int, node: str | None = None) -> JSON:
    pod["spec"]["containers"][0]["ports"] = [
        {"containerPort": 80, "hostPort": port, "protocol": "TCP"}
    ]
    if node is not None:
        pod["spec"]["nodeSelector"] = {HOSTNAME: node}
    return pod


async def test_host_port_conflict_keeps_a_second_pod_off_the_node(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A second pod asking for the same hostPort cannot share the node: pinned there it waits
    with NodePorts' reason; unpinned it goes elsewhere."""
    port = 20000 + zlib.crc32(namespace.encode()) % 10000  # distinct per test run
    target = (await node_names(client))[0]
    await create_pod(client, namespace, with_host_port(berth_pod("first"), port, target))
    assert await bound_to(client, namespace, "first") == target
    await create_pod(client, namespace, with_host_port(berth_pod("pinned"), port, target))
    message = await failed_message(client, namespace, "pinned")
    assert "1 node(s) didn't have free ports for the requested pod ports" in message, message
    placed = set()
    for i in range(3):
        await create_pod(client, namespace, with_host_port(berth_pod(f"free{i}"), port))
        placed.add(await bound_to(client, namespace, f"free{i}"))
    assert target not in placed and len(placed) == 3
    pinned = await client.get(f"/api/v1/namespaces/{namespace}/pods/pinned")
    assert not pinned["spec"].get("nodeName")
