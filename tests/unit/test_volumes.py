"""The volume store (scheduler/volumes.py) for the storage capacity objects: CSIDrivers and
CSIStorageCapacities compiled, kept, indexed by class and forgotten."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.model import InvalidObject
from scheduler.volumes import (
    CSI_DRIVER,
    CSI_STORAGE_CAPACITY,
    CSIDriver,
    StorageCapacity,
    VolumeStore,
    compile_csi_driver,
    compile_storage_capacity,
)
from tests.unit.plugins.volume_builders import capacity, csi_driver

JSON = dict[str, Any]
GI = 2**30


@pytest.mark.parametrize(
    ("storage_capacity", "expected"),
    [
        pytest.param(True, True, id="true"),
        pytest.param(False, False, id="false"),
        pytest.param(None, False, id="unset-is-false"),
    ],
)
def test_csi_driver(storage_capacity: bool | None, expected: bool) -> None:
    """spec.storageCapacity: only true asks the scheduler to check capacity."""
    assert compile_csi_driver(csi_driver("d", storage_capacity)) == CSIDriver("d", expected)


@pytest.mark.parametrize(
    ("obj", "capacity_", "maximum", "limit"),
    [
        pytest.param(capacity("c", "sc", size="10Gi"), 10 * GI, None, 10 * GI, id="capacity"),
        pytest.param(
            capacity("c", "sc", size="10Gi", maximum="1Gi"),
            10 * GI,
            GI,
            GI,
            id="maximum-volume-size-is-the-limit",
        ),
        pytest.param(capacity("c", "sc", maximum="1Gi"), None, GI, GI, id="only-maximum"),
        pytest.param(capacity("c", "sc", size="0"), 0, None, 0, id="zero"),
        pytest.param(capacity("c", "sc"), None, None, None, id="neither-no-limit"),
    ],
)
def test_storage_capacity_limit(
    obj: JSON, capacity_: int | None, maximum: int | None, limit: int | None
) -> None:
    """Upstream's volumeLimit: maximumVolumeSize when reported, else capacity."""
    compiled = compile_storage_capacity(obj)
    assert (compiled.capacity, compiled.maximum_volume_size, compiled.limit) == (
        capacity_,
        maximum,
        limit,
    )


@pytest.mark.parametrize(
    ("obj", "selects"),
    [
        pytest.param(capacity("c", "sc"), True, id="empty-selector-selects-every-node"),
        pytest.param(capacity("c", "sc", "node-a"), True, id="hostname"),
        pytest.param(capacity("c", "sc", "node-b"), False, id="other-hostname"),
        pytest.param(capacity("c", "sc", no_topology=True), False, id="no-topology-selects-none"),
    ],
)
def test_storage_capacity_node_topology(obj: JSON, selects: bool) -> None:
    """nodeTopology is a label selector over node labels; a missing one selects no node
    (upstream's nodeHasAccess)."""
    topology = compile_storage_capacity(obj).node_topology
    assert topology.matches({"kubernetes.io/hostname": "node-a"}) is selects


def test_capacities_by_class_in_name_order() -> None:
    """capacities_for(class) lists that class's objects of every namespace by (namespace,
    name), and follows adds, updates and deletes."""
    store = VolumeStore()
    for obj in (
        capacity("b", "fast", "n1", "1Gi"),
        capacity("a", "fast", "n2", "1Gi", namespace="other"),
        capacity("a", "fast", "n3", "1Gi"),
        capacity("c", "slow", "n1", "1Gi"),
    ):
        store.apply(CSI_STORAGE_CAPACITY, obj)

    def listed(cls: str) -> list[tuple[str, str]]:
        return [(c.namespace, c.name) for c in store.capacities_for(cls)]

    assert listed("fast") == [("default", "a"), ("default", "b"), ("other", "a")]
    assert listed("slow") == [("default", "c")]
    assert listed("none") == []
    old, new = store.apply(CSI_STORAGE_CAPACITY, capacity("b", "fast", "n1", "5Gi"))
    assert isinstance(old, StorageCapacity) and old.limit == GI
    assert isinstance(new, StorageCapacity) and new.limit == 5 * GI
    assert store.capacities_for("fast")[1].limit == 5 * GI
    store.apply(CSI_STORAGE_CAPACITY, capacity("a", "fast"), deleted=True)
    assert listed("fast") == [("default", "b"), ("other", "a")]


def test_csi_drivers_by_name() -> None:
    """CSIDrivers are kept by name and forgotten when deleted; the store's version moves."""
    store = VolumeStore()
    before = store.version
    store.apply(CSI_DRIVER, csi_driver("d"))
    assert store.csi_driver("d") == CSIDriver("d", True)
    old, new = store.apply(CSI_DRIVER, csi_driver("d", False))
    assert (old, new) == (CSIDriver("d", True), CSIDriver("d", False))
    store.apply(CSI_DRIVER, csi_driver("d"), deleted=True)
    assert store.csi_driver("d") is None
    assert store.version > before


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(capacity("bad", "sc", size="lots"), id="capacity"),
        pytest.param(capacity("bad", "sc", maximum="1Zi"), id="maximum-volume-size"),
        pytest.param(
            capacity(
                "bad", "sc", topology={"matchExpressions": [{"key": "k", "operator": "Near"}]}
            ),
            id="node-topology",
        ),
    ],
)
def test_malformed_capacity_is_refused_and_forgotten(obj: JSON) -> None:
    """A malformed CSIStorageCapacity raises InvalidObject naming it (the app logs and skips
    it) and its previous version is dropped: better no capacity than a stale one."""
    store = VolumeStore()
    store.apply(CSI_STORAGE_CAPACITY, capacity("bad", "sc", size="1Gi"))
    assert store.capacities_for("sc")
    with pytest.raises(InvalidObject, match="CSIStorageCapacity default/bad"):
        store.apply(CSI_STORAGE_CAPACITY, obj)
    assert store.capacities == {}
    assert store.capacities_for("sc") == ()
