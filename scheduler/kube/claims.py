"""ResourceClaim writes, as upstream v1.37's DynamicResources makes them (dynamicresources.go):

- `reserve`: PreBind's bindClaim. With an allocation to write, the claim first gets the
  delete-protection finalizer (a plain update), then status.allocation and the pod in
  status.reservedFor (an update of the status subresource). A conflict fetches the claim again
  and retries, up to upstream's retry.DefaultRetry (5 tries); a claim deleted, or allocated by
  someone else, meanwhile is an error with upstream's text.
- `unreserve`: Unreserve's strategic merge patch deleting the pod's reservedFor entry.
- `deallocate`: PostFilter's status update clearing allocation, reservedFor and devices.
- `create`, `delete`, `set_extended_status`: the claim PreBind makes for a pod's DRA-backed
  extended resources (upstream's extendeddynamicresources.go), and the pod's record of it.

Objects go in and out as JSON; nothing of the engine is imported.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from scheduler.kube.client import ApiError, Client

JSON = dict[str, Any]

PATH = "/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims/{name}"
FINALIZER = "resource.kubernetes.io/delete-protection"
TRIES = 5


async def reserve(
    client: Client, cached: Mapping[str, Any], allocation: JSON | None, consumer: JSON
) -> JSON:
    """Write `allocation` (if any) and add `consumer` ({"resource": "pods", "name", "uid"})
    to reservedFor, starting from the `cached` claim. Returns the claim as written."""
    meta = cached.get("metadata") or {}
    path = PATH.format(namespace=meta.get("namespace"), name=meta.get("name"))
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    claim: JSON = copy.deepcopy(dict(cached))
    for attempt in range(TRIES):
        if attempt:
            claim = await client.get(path)
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            raise RuntimeError(f"claim {key} got deleted in the meantime")
        status = claim.setdefault("status", {})
        try:
            if allocation is not None:
                if status.get("allocation"):
                    raise RuntimeError(f"claim {key} got allocated elsewhere in the meantime")
                finalizers = claim["metadata"].setdefault("finalizers", [])
                if FINALIZER not in finalizers:
                    finalizers.append(FINALIZER)
                    try:
                        claim = await client.put(path, claim)
                    except ApiError as err:
                        if err.status == 409:
                            continue
                        raise RuntimeError(f"add finalizer to claim {key}: {err.message}") from err
                    status = claim.setdefault("status", {})
                status["allocation"] = allocation
            reserved = status.setdefault("reservedFor", [])
            if not any(r.get("uid") == consumer.get("uid") for r in reserved):
                reserved.append(consumer)
            result: JSON = await client.put(path + "/status", claim)
            return result
        except ApiError as err:
            if err.status == 409:
                continue
            what = "add allocation and reservation to" if allocation else "add reservation to"
            raise RuntimeError(f"{what} claim {key}: {err.message}") from err
    raise RuntimeError(f"claim {key}: still conflicting after {TRIES} tries")


async def unreserve(
    client: Client, namespace: str, name: str, claim_uid: str, pod_uid: str
) -> None:
    """Remove the pod's entry from reservedFor (the uid precondition keeps a newer claim of
    the same name untouched). A claim already gone is not an error."""
    body = {
        "metadata": {"uid": claim_uid},
        "status": {"reservedFor": [{"$patch": "delete", "uid": pod_uid}]},
    }
    try:
        await client.patch(PATH.format(namespace=namespace, name=name) + "/status", body)
    except ApiError as err:
        if err.status != 404:
            raise


async def deallocate(client: Client, cached: Mapping[str, Any]) -> None:
    """Clear the claim's allocation, reservations and device status."""
    meta = cached.get("metadata") or {}
    claim: JSON = copy.deepcopy(dict(cached))
    status = claim.setdefault("status", {})
    for field in ("allocation", "reservedFor", "devices"):
        status.pop(field, None)
    path = PATH.format(namespace=meta.get("namespace"), name=meta.get("name"))
    await client.put(path + "/status", claim)


async def create(client: Client, claim: Mapping[str, Any]) -> JSON:
    """Create a claim (the one PreBind makes for a pod's DRA-backed extended resources: its
    generateName, owner and annotation are set by the caller). Returns it as created."""
    namespace = (claim.get("metadata") or {}).get("namespace")
    path = f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims"
    try:
        created: JSON = await client.post(path, dict(claim))
    except ApiError as err:
        raise RuntimeError(f"create claim for extended resources: {err.message}") from err
    return created


async def delete(client: Client, cached: Mapping[str, Any]) -> None:
    """Upstream's deleteClaim: drop the delete-protection finalizer (retried on conflict),
    then delete. A claim already gone is not an error."""
    meta = cached.get("metadata") or {}
    path = PATH.format(namespace=meta.get("namespace"), name=meta.get("name"))
    claim: JSON = copy.deepcopy(dict(cached))
    for attempt in range(TRIES):
        try:
            if attempt:
                claim = await client.get(path)
            finalizers = claim.get("metadata", {}).get("finalizers") or []
            if FINALIZER in finalizers:
                finalizers.remove(FINALIZER)
                await client.put(path, claim)
            break
        except ApiError as err:
            if err.status == 404:
                return
            if err.status != 409:
                raise
    try:
        await client.delete(path)
    except ApiError as err:
        if err.status != 404:
            raise


async def set_extended_status(
    client: Client, namespace: str, name: str, claim_name: str, mappings: list[JSON]
) -> None:
    """Record on the pod which claim holds its DRA-backed extended resources and which
    request serves each container's resource (status.extendedResourceClaimStatus)."""
    body = {
        "status": {
            "extendedResourceClaimStatus": {
                "requestMappings": mappings,
                "resourceClaimName": claim_name,
            }
        }
    }
    await client.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", body, kind="merge")
