"""The claim for a pod's DRA-backed extended resources (DRAExtendedResource, GA in v1.37), as
upstream's extendeddynamicresources.go builds it.

A pod may ask for devices with an ordinary extended-resource request (`example.com/gpu: 2`)
when a DeviceClass backs that name. On a node whose allocatable does not list the resource the
scheduler allocates the devices through a ResourceClaim it creates itself in PreBind: one claim
per pod, owned by it, annotated `resource.kubernetes.io/extended-resource-claim: "true"`, named
from `<pod>-extended-resources-`. Its requests are built container by container
(`container-<i>-request-<j>`: i over init containers then containers, j the resource's index
among the container's sorted request names), and the pod's status records which request serves
which container's resource (`extendedResourceClaimStatus.requestMappings`).

Init containers that are not sidecars run one at a time before the others: one of them may
reuse the devices of the long-lived containers after it, and all of them share the largest
request among them, as upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.dra.claims import EXTENDED_ANNOTATION
from scheduler.model import InvalidObject, parse_quantity_decimal

JSON = dict[str, Any]

IN_MEMORY_NAME = "<extended-resources>"  # upstream's specialClaimInMemName


def claim_for(pod: Mapping[str, Any], requests: list[JSON]) -> JSON:
    """The claim object before creation (named IN_MEMORY_NAME, with a temporary uid)."""
    meta = pod.get("metadata") or {}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "namespace": meta.get("namespace"),
            "name": IN_MEMORY_NAME,
            "uid": f"extended-resources-{meta.get('uid')}",
            "generateName": f"{meta.get('name')}-extended-resources-",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "controller": True,
                }
            ],
            "annotations": {EXTENDED_ANNOTATION: "true"},
        },
        "spec": {"devices": {"requests": requests}},
    }


def for_creation(claim: Mapping[str, Any]) -> JSON:
    """The body to POST: the in-memory name, uid and any status dropped."""
    meta = {k: v for k, v in (claim.get("metadata") or {}).items() if k not in ("name", "uid")}
    return {**{k: v for k, v in claim.items() if k != "status"}, "metadata": meta}


def requests_and_mappings(
    spec: Mapping[str, Any], needs: Mapping[str, str]
) -> tuple[list[JSON], list[JSON]]:
    """Upstream's createRequestsAndMappings for the resources in `needs` (resource name ->
    backing DeviceClass): the claim's device requests (sorted by name) and the pod's request
    mappings ({containerName, resourceName, requestName})."""
    init = list(spec.get("initContainers") or [])
    containers = init + list(spec.get("containers") or [])
    long_lived = [
        i for i, c in enumerate(containers) if i >= len(init) or c.get("restartPolicy") == "Always"
    ]
    short_lived = [i for i in range(len(init)) if i not in long_lived]
    requests: list[JSON] = []
    mappings: list[JSON] = []
    for resource in sorted(needs):
        device_class = needs[resource]
        long_requests: list[JSON | None] = [None] * len(containers)
        long_mappings: list[JSON] = []
        for i in long_lived:
            request, mapped = _container(i, containers[i], resource, device_class, [])
            long_requests[i] = request
            long_mappings += mapped
        largest: JSON | None = None
        short_names: set[str] = set()
        short_mappings: list[JSON] = []
        for i in short_lived:
            request, mapped = _container(
                i, containers[i], resource, device_class, long_requests[i:]
            )
            if request is not None:
                short_names.add(request["name"])
                if largest is None or largest["exactly"]["count"] < request["exactly"]["count"]:
                    largest = request
            short_mappings += mapped
        if largest is not None and len(short_names) > 1:
            for mapping in short_mappings:
                if mapping["requestName"] in short_names:
                    mapping["requestName"] = largest["name"]
        if largest is not None:
            requests.append(largest)
        requests += [r for r in long_requests if r is not None]
        mappings += long_mappings + short_mappings
    requests.sort(key=lambda r: str(r["name"]))
    return requests, mappings


def _container(
    index: int,
    container: Mapping[str, Any],
    resource: str,
    device_class: str,
    reusable: list[JSON | None],
) -> tuple[JSON | None, list[JSON]]:
    """upstream's createResourceRequestAndMappings for one container and resource."""
    asked = (container.get("resources") or {}).get("requests") or {}
    if resource not in asked:
        return None, []
    wanted = _count(asked[resource])
    if wanted <= 0:
        return None, []
    name = str(container.get("name") or "")
    mappings = []
    covered = 0
    for other in reusable:
        if other is None:
            continue
        covered += int(other["exactly"]["count"])
        mappings.append(
            {"containerName": name, "resourceName": resource, "requestName": other["name"]}
        )
        if covered >= wanted:
            return None, mappings
    position = sorted(asked).index(resource)
    request_name = f"container-{index}-request-{position}"
    request = {
        "name": request_name,
        "exactly": {
            "deviceClassName": device_class,
            "allocationMode": "ExactCount",
            "count": wanted - covered,
        },
    }
    mappings.append({"containerName": name, "resourceName": resource, "requestName": request_name})
    return request, mappings


def _count(value: Any) -> int:
    """A request as a whole number of devices (0 when not one, as AsInt64 fails)."""
    try:
        number = parse_quantity_decimal(value)
    except InvalidObject:
        return 0
    return int(number) if number == number.to_integral_value() else 0
