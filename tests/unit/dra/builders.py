"""Builders for the DRA unit tests: the resource.k8s.io/v1 JSON of slices, claims and classes
as the informers hand it over, named like upstream's allocatortesting helpers (`device`,
`slice_with_devices`, `request`, `first_available`, `claim`, `device_class`), and `allocate_on`,
which runs the allocator over slices the way DynamicResources does (through a SliceStore)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scheduler.device_classes import DeviceClass
from scheduler.dra.allocator import allocate
from scheduler.dra.claims import Claim
from scheduler.dra.slices import SliceStore

JSON = dict[str, Any]

NODE1, NODE2 = "node-1", "node-2"
REGION1, REGION2 = "region-1", "region-2"
CLASS_A, CLASS_B = "class-a", "class-b"
DRIVER_A, DRIVER_B = "driver-a", "driver-b"
POOL1, POOL2, POOL3 = "pool-1", "pool-2", "pool-3"
NS = "default"

ALL_NODES = object()  # slice_with_devices(..., node=ALL_NODES): spec.allNodes
PER_DEVICE = object()  # slice_with_devices(..., node=PER_DEVICE): perDeviceNodeSelection


def labels_of(node: str) -> dict[str, str]:
    """upstream's node(name, region): node-1 is in region-1, node-2 in region-2."""
    return {"region": REGION1 if node == NODE1 else REGION2, "planet": "earth"}


def label_selector(key: str, *values: str) -> JSON:
    """upstream's nodeLabelSelector."""
    return {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}
        ]
    }


def local_selector(node: str) -> JSON:
    """upstream's localNodeSelector: what an allocation from node-local devices carries."""
    return {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        ]
    }


def device(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    capacity: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSON:
    """A device; `attributes` as the API has them ({"numa": {"int": 1}}), `capacity` as
    quantity text ({"memory": "1Gi"}); `extra` is copied (taints, consumesCounters, ...)."""
    raw: JSON = {"name": name}
    if attributes:
        raw["attributes"] = dict(attributes)
    if capacity:
        raw["capacity"] = {k: {"value": v} for k, v in capacity.items()}
    raw.update(extra)
    return raw


def devices(count: int, start: int = 0) -> list[JSON]:
    """device-<start> .. device-<start+count-1>, as upstream's sliceWithMultipleDevices."""
    return [device(f"device-{i}") for i in range(start, start + count)]


def slice_with_devices(
    name: str,
    node: Any,
    *devs: JSON,
    pool: str = POOL1,
    driver: str = DRIVER_A,
    generation: int = 1,
    count: int = 1,
    **extra: Any,
) -> JSON:
    """A ResourceSlice. `node` is a node name, ALL_NODES, PER_DEVICE, or a node selector."""
    spec: JSON = {
        "driver": driver,
        "pool": {"name": pool, "generation": generation, "resourceSliceCount": count},
        "devices": list(devs),
    }
    if node is ALL_NODES:
        spec["allNodes"] = True
    elif node is PER_DEVICE:
        spec["perDeviceNodeSelection"] = True
    elif isinstance(node, dict):
        spec["nodeSelector"] = node
    elif node is not None:
        spec["nodeName"] = node
    spec.update(extra)
    return {"metadata": {"name": name}, "spec": spec}


def one_device_slice(name: str, node: Any, **kw: Any) -> JSON:
    """upstream's sliceWithOneDevice: one device named device-1."""
    return slice_with_devices(name, node, device("device-1"), **kw)


def cel(expression: str) -> JSON:
    return {"cel": {"expression": expression}}


def device_class(
    name: str,
    driver: str | None = None,
    *,
    selectors: Sequence[str] | None = None,
    config: Sequence[JSON] = (),
) -> DeviceClass:
    """upstream's class(name, driver): one selector `device.driver == "<driver>"` unless
    `selectors` says otherwise."""
    exprs = list(selectors) if selectors is not None else [f'device.driver == "{driver}"']
    spec: JSON = {"selectors": [cel(e) for e in exprs]}
    if config:
        spec["config"] = list(config)
    return DeviceClass.compile({"metadata": {"name": name}, "spec": spec})


def opaque(driver: str, attribute: str) -> JSON:
    """upstream's deviceConfiguration(driver, attribute)."""
    return {"opaque": {"driver": driver, "parameters": {attribute: attribute + "Value"}}}


def request(
    name: str,
    device_class_name: str,
    count: int = 1,
    *selectors: str,
    mode: str = "ExactCount",
    admin: bool = False,
    tolerations: Sequence[JSON] = (),
) -> JSON:
    """An `exactly` request; mode="All" asks for every matching device."""
    exactly: JSON = {"deviceClassName": device_class_name, "allocationMode": mode}
    if mode == "ExactCount":
        exactly["count"] = count
    if selectors:
        exactly["selectors"] = [cel(e) for e in selectors]
    if admin:
        exactly["adminAccess"] = True
    if tolerations:
        exactly["tolerations"] = list(tolerations)
    return {"name": name, "exactly": exactly}


def sub_request(
    name: str, device_class_name: str, count: int = 1, *selectors: str, mode: str = "ExactCount"
) -> JSON:
    sub: JSON = {"name": name, "deviceClassName": device_class_name, "allocationMode": mode}
    if mode == "ExactCount":
        sub["count"] = count
    if selectors:
        sub["selectors"] = [cel(e) for e in selectors]
    return sub


def first_available(name: str, *subs: JSON) -> JSON:
    return {"name": name, "firstAvailable": list(subs)}


def match_attribute(attribute: str, *requests: str) -> JSON:
    out: JSON = {"matchAttribute": attribute}
    if requests:
        out["requests"] = list(requests)
    return out


def claim_json(
    name: str,
    *requests: JSON,
    constraints: Iterable[JSON] = (),
    config: Iterable[JSON] = (),
    uid: str | None = None,
    namespace: str = NS,
    resource_version: str = "1",
    allocation: JSON | None = None,
    deleting: bool = False,
) -> JSON:
    meta: JSON = {
        "name": name,
        "namespace": namespace,
        "uid": uid or f"uid-{name}",
        "resourceVersion": resource_version,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obj: JSON = {
        "metadata": meta,
        "spec": {
            "devices": {
                "requests": list(requests),
                "constraints": list(constraints),
                "config": list(config),
            }
        },
    }
    if allocation is not None:
        obj["status"] = {"allocation": allocation}
    return obj


def claim(name: str, *requests: JSON, **kw: Any) -> Claim:
    return Claim.compile(claim_json(name, *requests, **kw))


def result(
    request_name: str,
    device_name: str,
    *,
    driver: str = DRIVER_A,
    pool: str = POOL1,
    admin: bool = False,
) -> JSON:
    """upstream's deviceAllocationResult."""
    out: JSON = {"request": request_name, "driver": driver, "pool": pool, "device": device_name}
    if admin:
        out["adminAccess"] = True
    return out


def allocation(*results: JSON, node: str | None = NODE1, config: Sequence[JSON] = ()) -> JSON:
    """An expected status.allocation; node=None for one usable everywhere."""
    out: JSON = {"devices": {"results": list(results)}}
    if config:
        out["devices"]["config"] = list(config)
    if node is not None:
        out["nodeSelector"] = local_selector(node)
    return out


def allocated(*ids: str) -> set[str]:
    """Device ids "driver/pool/device" in use elsewhere."""
    return set(ids)


def store_of(*slices: JSON) -> SliceStore:
    store = SliceStore()
    for s in slices:
        store.apply(s, deleted=False)
    return store


def allocate_on(
    claims: Sequence[Claim],
    slices: Sequence[JSON],
    classes: Sequence[DeviceClass],
    *,
    node: str = NODE1,
    in_use: set[str] | None = None,
) -> list[JSON] | None:
    """Allocate on `node` as DynamicResources does: pools gathered by a SliceStore, the
    allocations as the JSON written to status.allocation."""
    labels = labels_of(node)
    pools = store_of(*slices).pools_for(node, labels)
    found = allocate(claims, node, labels, pools, {c.name: c for c in classes}, set(in_use or ()))
    return None if found is None else [a.to_json() for a in found]
