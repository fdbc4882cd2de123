"""Test hardware for e2e tests: a real control plane.

The cluster is the one named by $KUBECONFIG when it is set (a kind cluster works), else one this
session starts with `berth cluster up` (etcd + kube-apiserver + upstream kube-scheduler + KWOK on
loopback) and stops at the end. Each test gets a namespace of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scheduler.kube.client import ApiError, Client

LOCAL_NODES = 6
LOCAL_ZONES = 3
LOCAL_NODE_CPU = "8"
LOCAL_NODE_MEMORY = "32Gi"


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    local: bool  # started by this session, so its nodes are the ones asked for above
    directory: Path | None = None


def berth(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the berth CLI of this checkout in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if kubeconfig := os.environ.get("KUBECONFIG"):
        yield Cluster(kubeconfig=kubeconfig, local=False)
        return
    directory = tmp_path_factory.mktemp("cluster")
    result = berth(
        "cluster",
        "up",
        "--dir",
        str(directory),
        "--nodes",
        str(LOCAL_NODES),
        "--zones",
        str(LOCAL_ZONES),
        "--node-cpu",
        LOCAL_NODE_CPU,
        "--node-memory",
        LOCAL_NODE_MEMORY,
        "--kube-scheduler",
        "--kwok",
    )
    if result.returncode != 0:
        pytest.fail(f"berth cluster up failed:\n{result.stderr}", pytrace=False)
    try:
        yield Cluster(kubeconfig=str(directory / "kubeconfig"), local=True, directory=directory)
    finally:
        berth("cluster", "down", "--dir", str(directory))


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, qps=0) as c:
        yield c


@pytest.fixture
async def namespace(client: Client) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    await client.post("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    try:
        await client.delete(f"/api/v1/namespaces/{name}")
    except ApiError as err:
        if err.status != 404:
            raise
