"""A fake DRA driver: the resource.k8s.io/v1 objects a GPU driver and its users would create.

No kubelet or DRA driver runs on the test control plane, so nothing publishes ResourceSlices;
tests and benchmarks publish them through `publish` and build the classes and claims that ask
for the devices with the pure builders here. Every builder returns the JSON body to POST.

One node's slice, as `gpu_slice("node-1", count=2)` builds it::

    ResourceSlice "node-1-gpu.example.com"
      spec.driver    gpu.example.com
      spec.nodeName  node-1
      spec.pool      {name: node-1, generation: 0, resourceSliceCount: 1}
      spec.devices   gpu-0 {model: a100, index: 0, uuid: node-1-gpu-0} memory 80Gi
                     gpu-1 {model: a100, index: 1, uuid: node-1-gpu-1} memory 80Gi

Attribute and capacity names are unqualified in the slice; CEL selectors and constraints see
them qualified by the driver (`device.attributes["gpu.example.com"].model`, matchAttribute
`gpu.example.com/model`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from scheduler.kube.client import ApiError, Client

JSON = dict[str, Any]

DRIVER = "gpu.example.com"
API_VERSION = "resource.k8s.io/v1"
SLICES = f"/apis/{API_VERSION}/resourceslices"
DEVICE_CLASSES = f"/apis/{API_VERSION}/deviceclasses"


def slice_name(node: str, driver: str = DRIVER) -> str:
    """The name `gpu_slice` gives a node's slice unless told another: `<node>-<driver>`."""
    return f"{node}-{driver}"


def gpu_slice(
    node: str,
    *,
    count: int = 8,
    model: str = "a100",
    memory: str = "80Gi",
    driver: str = DRIVER,
    pool: str | None = None,
    name: str | None = None,
) -> JSON:
    """A ResourceSlice of `count` GPUs on `node`, the whole of its pool (named after the node
    unless `pool` is given). Devices are gpu-0..gpu-<count-1>; each has the attributes
    {"model": {"string": model}, "index": {"int": i}, "uuid": {"string": "<node>-gpu-<i>"}}
    and the capacity {"memory": {"value": memory}}."""
    devices = [
        {
            "name": f"gpu-{i}",
            "attributes": {
                "model": {"string": model},
                "index": {"int": i},
                "uuid": {"string": f"{node}-gpu-{i}"},
            },
            "capacity": {"memory": {"value": memory}},
        }
        for i in range(count)
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceSlice",
        "metadata": {"name": name or slice_name(node, driver)},
        "spec": {
            "driver": driver,
            "nodeName": node,
            "pool": {"name": pool or node, "generation": 0, "resourceSliceCount": 1},
            "devices": devices,
        },
    }


def mixed_slice(node: str) -> JSON:
    """8 GPUs on `node` of two kinds: gpu-0..3 a100 with 40Gi, gpu-4..7 h100 with 80Gi (for
    matchAttribute and capacity selectors)."""
    body = gpu_slice(node, count=8)
    for device in body["spec"]["devices"]:
        big = int(device["name"].split("-")[1]) >= 4
        device["attributes"]["model"] = {"string": "h100" if big else "a100"}
        device["capacity"]["memory"] = {"value": "80Gi" if big else "40Gi"}
    return body


def device_class(
    name: str = DRIVER, *, driver: str = DRIVER, extended_resource_name: str | None = None
) -> JSON:
    """A DeviceClass selecting every device of `driver` (CEL `device.driver == "<driver>"`);
    `extended_resource_name` also lets pods ask for its devices as that extended resource
    (spec.extendedResourceName)."""
    spec: JSON = {"selectors": [{"cel": {"expression": f'device.driver == "{driver}"'}}]}
    if extended_resource_name is not None:
        spec["extendedResourceName"] = extended_resource_name
    return {
        "apiVersion": API_VERSION,
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": spec,
    }


def claim_spec(
    *,
    count: int = 1,
    device_class: str = DRIVER,
    selectors: Sequence[str] = (),
    match_attribute: str | None = None,
    requests: int = 1,
) -> JSON:
    """A ResourceClaimSpec asking for `count` devices of the class, all matching the CEL
    `selectors`. One request is named "gpu"; `requests` > 1 makes gpu-0..gpu-<requests-1>,
    each of `count` devices. `match_attribute` (fully qualified, e.g. "gpu.example.com/model")
    adds one constraint that all the devices of all the requests share that attribute::

        {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": ...,
                       "allocationMode": "ExactCount", "count": 2, "selectors": [{"cel":
                       {"expression": ...}}]}}],
                     "constraints": [{"requests": ["gpu"], "matchAttribute": ...}]}}
    """
    names = ["gpu"] if requests == 1 else [f"gpu-{i}" for i in range(requests)]
    exactly: JSON = {
        "deviceClassName": device_class,
        "allocationMode": "ExactCount",
        "count": count,
    }
    if selectors:
        exactly["selectors"] = [{"cel": {"expression": s}} for s in selectors]
    devices: JSON = {"requests": [{"name": n, "exactly": dict(exactly)} for n in names]}
    if match_attribute is not None:
        devices["constraints"] = [{"requests": names, "matchAttribute": match_attribute}]
    return {"devices": devices}


def claim_template(name: str, **spec: Any) -> JSON:
    """A ResourceClaimTemplate whose claims have `claim_spec(**spec)` as their spec
    (namespace it by the path it is posted to)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": claim_spec(**spec)},
    }


def claim(name: str, **spec: Any) -> JSON:
    """A ResourceClaim with `claim_spec(**spec)` as its spec, for pods to share by name."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": claim_spec(**spec),
    }


async def publish(
    client: Client, nodes: Iterable[str], *, concurrency: int = 32, **gpu_slice_kwargs: Any
) -> None:
    """Publish one `gpu_slice(node, **gpu_slice_kwargs)` per node, as each node's driver
    would. A slice that exists already is replaced, so publishing again is safe."""
    nodes = list(nodes)
    if gpu_slice_kwargs.get("name") and len(nodes) > 1:
        raise ValueError("one slice name given for several nodes")
    gate = asyncio.Semaphore(concurrency)

    async def one(node: str) -> None:
        body = gpu_slice(node, **gpu_slice_kwargs)
        async with gate:
            try:
                await client.post(SLICES, body)
            except ApiError as err:
                if err.status != 409:
                    raise
                path = f"{SLICES}/{body['metadata']['name']}"
                current = await client.get(path)
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                await client.put(path, body)

    await asyncio.gather(*(one(n) for n in nodes))


async def unpublish(
    client: Client, nodes: Iterable[str], *, driver: str = DRIVER, concurrency: int = 32
) -> None:
    """Delete the slices `publish` made for the nodes (named by `slice_name`); a slice
    already gone is fine."""
    gate = asyncio.Semaphore(concurrency)

    async def one(node: str) -> None:
        async with gate:
            try:
                await client.delete(f"{SLICES}/{slice_name(node, driver)}")
            except ApiError as err:
                if err.status != 404:
                    raise

    await asyncio.gather(*(one(n) for n in nodes))
