"""Builders for the volume plugins' tests: PVC, PV, StorageClass, CSINode, CSIDriver and
CSIStorageCapacity JSON, pods with volumes, and an in-memory handle that carries a VolumeStore."""

from __future__ import annotations

import copy
from typing import Any

from scheduler.framework import VolumeStore
from scheduler.handle import ClusterHandle, in_memory
from scheduler.model import compile_pod
from scheduler.volumes import (
    CSI_DRIVER,
    CSI_NODE,
    CSI_STORAGE_CAPACITY,
    PV,
    PVC,
    STORAGE_CLASS,
    compile_claim,
    compile_csi_driver,
    compile_csi_limits,
    compile_storage_capacity,
    compile_storage_class,
    compile_volume,
)
from tests.builders import make_pod

JSON = dict[str, Any]
NS = "default"


def pvc(
    name: str,
    *,
    volume: str = "",
    storage_class: str | None = None,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    request: str = "1Gi",
    phase: str = "",
    bound: bool = False,
    deleting: bool = False,
    owner: str = "",
    selector: JSON | None = None,
    namespace: str = NS,
) -> JSON:
    """A claim; `bound=True` marks the binding complete (annotation and phase Bound)."""
    obj: JSON = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": request}}},
        "status": {},
    }
    if volume:
        obj["spec"]["volumeName"] = volume
    if storage_class is not None:
        obj["spec"]["storageClassName"] = storage_class
    if selector is not None:
        obj["spec"]["selector"] = selector
    if bound:
        obj["metadata"]["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
        phase = phase or "Bound"
    if phase:
        obj["status"]["phase"] = phase
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if owner:
        obj["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner, "controller": True}
        ]
    return obj


def pv(
    name: str,
    *,
    capacity: str = "1Gi",
    storage_class: str = "",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    phase: str = "Available",
    claim: str = "",
    node_affinity: list[JSON] | None = None,
    labels: dict[str, str] | None = None,
    csi: tuple[str, str] | None = None,
) -> JSON:
    """A volume; `node_affinity` is the list of required nodeSelectorTerms."""
    obj: JSON = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {
            "capacity": {"storage": capacity},
            "accessModes": list(modes),
            "hostPath": {"path": f"/tmp/{name}"},
        },
        "status": {"phase": phase},
    }
    if storage_class:
        obj["spec"]["storageClassName"] = storage_class
    if claim:
        obj["spec"]["claimRef"] = {"namespace": NS, "name": claim}
    if node_affinity is not None:
        obj["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": node_affinity}}
    if csi is not None:
        del obj["spec"]["hostPath"]
        obj["spec"]["csi"] = {"driver": csi[0], "volumeHandle": csi[1]}
    return obj


def hostname_is(*nodes: str) -> list[JSON]:
    key = "kubernetes.io/hostname"
    return [{"matchExpressions": [{"key": key, "operator": "In", "values": list(nodes)}]}]


def storage_class(
    name: str,
    mode: str | None = "WaitForFirstConsumer",
    provisioner: str = "kubernetes.io/no-provisioner",
    topologies: list[JSON] | None = None,
) -> JSON:
    obj: JSON = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
    }
    if mode is not None:
        obj["volumeBindingMode"] = mode
    if topologies is not None:
        obj["allowedTopologies"] = topologies
    return obj


def csi_node(node: str, **limits: int | None) -> JSON:
    drivers = [
        {"name": d.replace("_", "."), "nodeID": node}
        | ({"allocatable": {"count": n}} if n is not None else {})
        for d, n in limits.items()
    ]
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
            "metadata": {"name": node}, "spec": {"drivers": drivers}}  # fmt: skip


def csi_driver(name: str, storage_capacity: bool | None = True) -> JSON:
    """A CSIDriver; `storage_capacity` None leaves spec.storageCapacity unset."""
    spec: JSON = {} if storage_capacity is None else {"storageCapacity": storage_capacity}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def capacity(
    name: str,
    storage_class_name: str,
    node: str | None = None,
    size: str = "",
    maximum: str = "",
    *,
    namespace: str = NS,
    topology: JSON | None = None,
    no_topology: bool = False,
) -> JSON:
    """A CSIStorageCapacity (upstream's makeCapacity): nodeTopology selects `node` by its
    kubernetes.io/hostname label, or every node (an empty selector) when `node` is None;
    `topology` replaces the selector, `no_topology` leaves it out (no node has access).
    An empty `size` or `maximum` is not reported."""
    obj: JSON = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIStorageCapacity",
        "metadata": {"name": name, "namespace": namespace},
        "storageClassName": storage_class_name,
    }
    if not no_topology:
        selector = {} if node is None else {"matchLabels": {"kubernetes.io/hostname": node}}
        obj["nodeTopology"] = topology if topology is not None else selector
    if size:
        obj["capacity"] = size
    if maximum:
        obj["maximumVolumeSize"] = maximum
    return obj


def store(*objects: JSON) -> VolumeStore:
    kinds = {
        "PersistentVolumeClaim": PVC,
        "PersistentVolume": PV,
        "StorageClass": STORAGE_CLASS,
        "CSINode": CSI_NODE,
        "CSIDriver": CSI_DRIVER,
        "CSIStorageCapacity": CSI_STORAGE_CAPACITY,
    }
    out = VolumeStore()
    for obj in objects:
        out.apply(kinds[obj["kind"]], obj)
    return out


def record(obj: JSON | None) -> Any:
    """What a queueing hint gets for this object: its compiled record, by kind (a Pod's
    PodInfo, a PVC's Claim, a PV's Volume, a StorageClass, a CSINode's limits, a CSIDriver, a
    CSIStorageCapacity's StorageCapacity); None (no object: an Add's old, a Delete's new)
    stays None."""
    if obj is None:
        return None
    compilers = {
        "Pod": compile_pod,
        "PersistentVolumeClaim": compile_claim,
        "PersistentVolume": compile_volume,
        "StorageClass": compile_storage_class,
        "CSINode": compile_csi_limits,
        "CSIDriver": compile_csi_driver,
        "CSIStorageCapacity": compile_storage_capacity,
    }
    return compilers[obj["kind"]](obj)


def volume_handle(*objects: JSON) -> ClusterHandle:
    """A handle on an in-memory cluster whose volume store holds `objects`."""
    return in_memory(volumes=store(*objects))


def with_volumes(name: str, *volumes: JSON, node: str = "", uid: str = "") -> JSON:
    """A pod with the given spec.volumes entries (on `node` when set)."""
    builder = make_pod(name)
    if node:
        builder.node(node)
    if uid:
        builder.uid(uid)
    raw = builder.obj_()
    raw["spec"]["volumes"] = copy.deepcopy(list(volumes))
    return raw


def csi_volume(driver: str, name: str = "") -> JSON:
    """An inline CSI volume of `driver`."""
    return {"name": name or f"csi-{driver}", "csi": {"driver": driver}}


def claim_volume(claim: str, name: str = "") -> JSON:
    return {"name": name or f"v-{claim}", "persistentVolumeClaim": {"claimName": claim}}


def ephemeral_volume(name: str) -> JSON:
    template = {"spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    return {"name": name, "ephemeral": {"volumeClaimTemplate": template}}


# Volume types that never constrain scheduling: none of them may crash any plugin.
OTHER_VOLUMES: list[JSON] = [
    {"name": "scratch", "emptyDir": {}},
    {"name": "config", "configMap": {"name": "cm"}},
    {"name": "secret", "secret": {"secretName": "s"}},
    {"name": "projected", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
    {"name": "host", "hostPath": {"path": "/var/log"}},
    {"name": "downward", "downwardAPI": {"items": []}},
    {"name": "nfs", "nfs": {"server": "nfs.example", "path": "/export"}},
    {"name": "image", "image": {"reference": "registry.invalid/data:1"}},
    {"name": "bare"},
]
