"""Test hardware for the fault suite: a control plane of its own, and the mode.

The cluster is the one $KUBECONFIG names when it is set; scenarios that stop kube-apiserver then
skip. Otherwise this session starts a plane of its own with `scheduler.harness.plane` (etcd,
kube-apiserver, kube-controller-manager and KWOK, no nodes), not the e2e suite's: a scenario
restarts its API server, which must not disturb the e2e suite's long-lived berth. Each scenario
brings its own tainted nodes, namespace and `berth run` processes (see scenario.py).

The mode is short by default (`make test`: the proxy's unit tests and two network scenarios with
a small burst); BERTH_FAULTS=full (`make faults`) runs every scenario with a few hundred pods.
Tests marked `faults_full` are skipped in short mode.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from scheduler.harness import plane
from scheduler.kube.client import Client
from tests.e2e.conftest import Cluster, fresh_namespace
from tests.faults.scenario import mode


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    full = mode() == "full"
    skip = pytest.mark.skip(reason="full fault suite only: make faults (BERTH_FAULTS=full)")
    for item in items:
        if "/faults/" not in str(item.path):
            continue
        item.add_marker(pytest.mark.faults)
        if item.path.name != "test_proxy.py":
            item.add_marker(pytest.mark.e2e)
        if not full and item.get_closest_marker("faults_full"):
            item.add_marker(skip)


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if kubeconfig := os.environ.get("KUBECONFIG"):
        yield Cluster(kubeconfig=kubeconfig, local=False)
        return
    directory = tmp_path_factory.mktemp("fault-plane")
    spec = plane.ClusterSpec(nodes=0, kwok=True, controller_manager=True)
    try:
        state = plane.up(directory, spec, log=_quiet)
    except plane.ClusterError as err:
        pytest.fail(f"control plane did not start: {err}", pytrace=False)
    try:
        yield Cluster(kubeconfig=state.kubeconfig, local=True, directory=directory)
    finally:
        plane.down(directory, log=_quiet)


@pytest.fixture
async def client(fault_cluster: Cluster) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(fault_cluster.kubeconfig, qps=0) as c:
        yield c


@pytest.fixture
async def namespace(client: Client) -> AsyncIterator[str]:
    """A fresh namespace for one scenario; its pods are deleted at once afterwards."""
    async with fresh_namespace(client, "f") as name:
        yield name
