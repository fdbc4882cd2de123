"""Smoke tests of the test hardware itself: nodes, the upstream baseline scheduler, teardown."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest

from scheduler.harness.nodes import ZONE
from scheduler.kube.client import Client
from tests.e2e.conftest import (
    LOCAL_NODE_CPU,
    LOCAL_NODE_MEMORY,
    LOCAL_NODES,
    LOCAL_ZONES,
    Cluster,
    berth,
)


async def test_nodes_have_requested_zones_and_capacity(cluster: Cluster, client: Client) -> None:
    """The fake nodes exist with the zones, capacity and Ready condition that were asked for."""
    if not cluster.local:
        pytest.skip("node shape is only known for a cluster this session started")
    nodes = (await client.get("/api/v1/nodes"))["items"]
    assert len(nodes) == LOCAL_NODES
    zones = Counter(n["metadata"]["labels"][ZONE] for n in nodes)
    assert len(zones) == LOCAL_ZONES
    assert max(zones.values()) - min(zones.values()) <= 1
    for node in nodes:
        assert node["status"]["allocatable"]["cpu"] == LOCAL_NODE_CPU
        assert node["status"]["allocatable"]["memory"] == LOCAL_NODE_MEMORY
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True"


async def test_upstream_kube_scheduler_binds_a_pod(client: Client, namespace: str) -> None:
    """A pod for default-scheduler is bound to one of the nodes by upstream kube-scheduler."""
    pod = {
        "metadata": {"name": "baseline"},
        "spec": {
            "schedulerName": "default-scheduler",
            "containers": [
                {
                    "name": "c",
                    "image": "registry.invalid/pause",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ],
        },
    }
    await client.post(f"/api/v1/namespaces/{namespace}/pods", pod)
    node_name = ""
    for _ in range(300):
        got = await client.get(f"/api/v1/namespaces/{namespace}/pods/baseline")
        if node_name := got["spec"].get("nodeName", ""):
            break
        await asyncio.sleep(0.1)
    nodes = {n["metadata"]["name"] for n in (await client.get("/api/v1/nodes"))["items"]}
    assert node_name in nodes


def _processes_with_cwd(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_cluster_down_leaves_no_process(tmp_path: Path) -> None:
    """`up` with every component, a refused second `up`, then `down` leaves nothing running."""
    directory = (tmp_path / "plane").resolve()
    up = berth(
        "cluster",
        "up",
        "--dir",
        str(directory),
        "--nodes",
        "2",
        "--zones",
        "2",
        "--kube-scheduler",
        "--kwok",
    )
    assert up.returncode == 0, up.stderr
    try:
        assert len(_processes_with_cwd(directory)) == 4  # etcd, apiserver, scheduler, kwok
        again = berth("cluster", "up", "--dir", str(directory), "--nodes", "2")
        assert again.returncode == 1
        assert "already running" in again.stderr
    finally:
        down = berth("cluster", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert _processes_with_cwd(directory) == []
    assert not (directory / "cluster.json").exists()
