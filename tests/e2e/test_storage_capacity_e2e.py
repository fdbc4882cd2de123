"""Storage capacity (CSIStorageCapacity) on the real control plane: a WaitForFirstConsumer claim
of a CSI driver that asks for capacity checks (`CSIDriver.spec.storageCapacity: true`) is
provisioned only on a node whose CSIStorageCapacity of the class holds it (maximumVolumeSize
when reported, else capacity), as upstream's volume binder does.

Like tests/e2e/test_volume_binding_e2e.py (whose fixtures and helpers this reuses), the case
runs with upstream kube-scheduler and with berth, so the expectations are upstream's own; the
test provisioner (tests/e2e/provisioner.py) stands in for the CSI driver's external
provisioner. No CSI driver publishes capacity here: the test writes the CSIStorageCapacity
objects itself, and nothing lowers them when a volume is made (nor does a scheduler).
"""

from __future__ import annotations

from typing import Any

from scheduler.kube.client import Client
from tests.e2e.provisioner import (
    CLASSES,
    HOSTNAME,
    SELECTED_NODE,
    TestProvisioner,
    claim,
    storage_class,
    volume_hostnames,
)
from tests.e2e.test_engine import create, extra_nodes, failed_message, get_pod
from tests.e2e.test_volume_binding_e2e import (
    Make,
    bound_volume,
    claims_path,
    make,
    placed,
    pool,
    pool_pod,
    scheduled_by,
    scheduler,
    unschedulable,
)

JSON = dict[str, Any]
__all__ = ["extra_nodes", "make", "scheduler"]

DRIVERS = "/apis/storage.k8s.io/v1/csidrivers"
# Upstream's volumebinding ErrReasonNotEnoughSpace (binder.go).
NOT_ENOUGH_SPACE = "node(s) did not have enough free storage"


def csi_driver(name: str) -> JSON:
    """A CSIDriver that asks the scheduler to check storage capacity."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": name},
        "spec": {"attachRequired": False, "storageCapacity": True},
    }


def storage_capacity(
    name: str, storage_class_name: str, node: str, size: str, maximum: str = ""
) -> JSON:
    """A CSIStorageCapacity of the class for the one node whose hostname label is `node`."""
    body: JSON = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIStorageCapacity",
        "metadata": {"name": name},
        "storageClassName": storage_class_name,
        "nodeTopology": {"matchLabels": {HOSTNAME: node}},
        "capacity": size,
    }
    if maximum:
        body["maximumVolumeSize"] = maximum
    return body


async def test_a_claim_is_provisioned_only_where_storage_capacity_holds_it(
    scheduler: str, client: Client, namespace: str, extra_nodes: Any, make: Make
) -> None:
    """Node A reports 10Gi, node B 100Gi but volumes of at most 2Gi, node C nothing: a 5Gi
    claim's pod goes to A and gets its volume there. A 50Gi claim fits no node: its pod
    waits with upstream's reason and no node is written on the claim, until B's driver
    reports room for 64Gi volumes; that CSIStorageCapacity update moves the pod (the
    queueing hint: the limit grew), and it goes to B."""
    node_a, node_b, _ = await pool(extra_nodes, namespace, 3)
    driver = f"{namespace}.csi.berth.io"
    cls = f"{namespace}-capacity"
    await make(DRIVERS, csi_driver(driver))
    await make(CLASSES, storage_class(cls, driver))
    capacities = f"/apis/storage.k8s.io/v1/namespaces/{namespace}/csistoragecapacities"
    await client.post(capacities, storage_capacity("node-a", cls, node_a, "10Gi"))
    await client.post(capacities, storage_capacity("node-b", cls, node_b, "100Gi", "2Gi"))
    await client.post(claims_path(namespace), claim("data", cls, size="5Gi"))
    await client.post(claims_path(namespace), claim("big", cls, size="50Gi"))
    async with TestProvisioner(client, driver, namespace=namespace) as provisioner:
        await create(client, namespace, pool_pod("db", scheduler, namespace, "data"))
        assert await placed(client, namespace, "db") == node_a
        assert volume_hostnames(await bound_volume(client, namespace, "data")) == [node_a]

        await create(client, namespace, pool_pod("huge", scheduler, namespace, "big"))
        message = await failed_message(client, namespace, "huge")
        assert message == await unschedulable(client, namespace, 3, NOT_ENOUGH_SPACE)
        assert not (await get_pod(client, namespace, "huge"))["spec"].get("nodeName")
        big = await client.get(f"{claims_path(namespace)}/big")
        assert SELECTED_NODE not in (big["metadata"].get("annotations") or {})

        await client.patch(f"{capacities}/node-b", {"maximumVolumeSize": "64Gi"}, kind="merge")
        assert await placed(client, namespace, "huge") == node_b
        assert volume_hostnames(await bound_volume(client, namespace, "big")) == [node_b]
    assert set(provisioner.provisioned) == {f"{namespace}/data", f"{namespace}/big"}
    for pod in ("db", "huge"):
        assert await scheduled_by(client, namespace, pod) == scheduler
