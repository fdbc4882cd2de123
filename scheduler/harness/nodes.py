"""Fake Node objects for the local control plane: pure builders, and one function to post them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from scheduler.kube.client import ApiError, Client

JSON = dict[str, Any]

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"


@dataclass(frozen=True)
class NodeShape:
    """What every fake node looks like; capacity equals allocatable."""

    cpu: str = "32"
    memory: str = "256Gi"
    pods: int = 110
    zones: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[JSON, ...] = ()


def node_name(index: int) -> str:
    """node-00001, node-00002, ... (1-based, zero padded so names sort as numbers)."""
    return f"node-{index:05d}"


def zone_name(index: int) -> str:
    return f"zone-{index}"


def make_node(index: int, shape: NodeShape) -> JSON:
    """The Node object for the `index`-th node (1-based); zones are dealt round-robin."""
    name = node_name(index)
    resources = {"cpu": shape.cpu, "memory": shape.memory, "pods": str(shape.pods)}
    labels = {
        HOSTNAME: name,
        ZONE: zone_name((index - 1) % max(1, shape.zones)),
        REGION: "region-0",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        **shape.labels,
    }
    spec: JSON = {"taints": list(shape.taints)} if shape.taints else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        },
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "fake node created by berth's test harness",
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
            },
        },
    }


async def create_nodes(client: Client, nodes: list[JSON], concurrency: int = 32) -> None:
    """Create the nodes and make sure their status (capacity, Ready) is what was asked.

    The API server keeps a Node's status on create, but a status subresource write afterwards
    is the documented way, so any node whose returned status lacks allocatable gets one.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(node: JSON) -> None:
        async with gate:
            try:
                created = await client.post("/api/v1/nodes", node)
            except ApiError as err:
                if err.status != 409:
                    raise
                created = await client.get(f"/api/v1/nodes/{node['metadata']['name']}")
            if not created.get("status", {}).get("allocatable"):
                await client.patch(
                    f"/api/v1/nodes/{node['metadata']['name']}/status",
                    {"status": node["status"]},
                    kind="merge",
                )

    await asyncio.gather(*(one(n) for n in nodes))
