"""An independent check of what the pods claimed: no device given twice, no volume on another
node, no pod bound without what it claims.

A scheduler that binds a pod with claims first has them satisfied: DRA's ResourceClaims
allocated (status.allocation) and reserved for the pod (status.reservedFor), a
WaitForFirstConsumer PersistentVolumeClaim bound to a volume (spec.volumeName) that the pod's
node can reach. `devices()` and `volumes()` read a run's final state as raw API JSON and say
what breaks that, one message per broken rule, naming the objects; they are written from the
API reference and import nothing of berth's engine, so `berth bench` judges berth with code
that shares no bug with it.

Devices (resource.k8s.io/v1):

- a device is `driver/pool/device`, as a ResourceSlice publishes it and as an allocation
  result names it; a device allocated to two claims (or twice to one), neither result with
  adminAccess, is given twice;
- a device that no slice publishes was invented;
- a bound pod's claim (spec.resourceClaims, named by resourceClaimName or by the pod's
  status.resourceClaimStatuses for a template) must exist, be allocated, list the pod in
  status.reservedFor, and hold only devices of the pod's node (a slice's spec.nodeName; a
  slice for all nodes or a node selector is not judged).

Volumes (v1 PersistentVolumeClaim and PersistentVolume):

- a bound pod's claim must exist and be bound (spec.volumeName), to a volume that exists and
  whose required node affinity on kubernetes.io/hostname allows the pod's node's hostname
  (a volume without such affinity is not judged);
- two claims naming the same volume, or a volume whose claimRef names another claim, is one
  volume given twice.

A pod counts as bound when spec.nodeName is set and metadata.deletionTimestamp is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.harness.nodes import HOSTNAME
from scheduler.harness.storage import volume_hostnames

JSON = Mapping[str, Any]


@dataclass(frozen=True)
class ClaimCount:
    """What the check found: claims in the namespace, how many of them are satisfied
    (allocated, or bound to a volume), and every broken rule."""

    claims: int = 0
    satisfied: int = 0
    violations: list[str] = field(default_factory=list)


def _key(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def _bound_pods(pods: Iterable[JSON]) -> list[JSON]:
    return [
        p
        for p in pods
        if (p.get("spec") or {}).get("nodeName")
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]


# --- devices ------------------------------------------------------------------------------


def device_nodes(slices: Iterable[JSON]) -> dict[str, str | None]:
    """driver/pool/device -> the node of the slice that publishes it (None: not one node)."""
    out: dict[str, str | None] = {}
    for item in slices:
        spec = item.get("spec") or {}
        driver, pool = spec.get("driver"), (spec.get("pool") or {}).get("name")
        for device in spec.get("devices") or []:
            out[f"{driver}/{pool}/{device.get('name')}"] = spec.get("nodeName") or None
    return out


def allocated_devices(claim: JSON) -> list[tuple[str, bool]]:
    """(driver/pool/device, adminAccess) of every result of the claim's allocation."""
    allocation = (claim.get("status") or {}).get("allocation") or {}
    return [
        (f"{r.get('driver')}/{r.get('pool')}/{r.get('device')}", bool(r.get("adminAccess")))
        for r in (allocation.get("devices") or {}).get("results") or []
    ]


def pod_claim_names(pod: JSON) -> dict[str, str | None]:
    """The pod's claim entries: entry name -> the ResourceClaim's name (None: a template's
    claim not made yet)."""
    made = {
        s.get("name"): s.get("resourceClaimName")
        for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []
    }
    return {
        str(entry.get("name")): entry.get("resourceClaimName") or made.get(entry.get("name"))
        for entry in (pod.get("spec") or {}).get("resourceClaims") or []
    }


def devices(slices: Iterable[JSON], claims: Iterable[JSON], pods: Iterable[JSON]) -> ClaimCount:
    """The DRA rules of the module docstring over ResourceSlices, ResourceClaims and pods."""
    where = device_nodes(slices)
    claims = list(claims)
    violations: list[str] = []
    owners: dict[str, list[str]] = {}
    for claim in claims:
        for device, admin in allocated_devices(claim):
            if device not in where:
                violations.append(f"claim {_key(claim)}: {device} is published by no slice")
            if not admin:
                owners.setdefault(device, []).append(_key(claim))
    for device, names in sorted(owners.items()):
        if len(names) > 1:
            violations.append(f"device {device} allocated {len(names)} times: {', '.join(names)}")
    by_key = {_key(c): c for c in claims}
    for pod in _bound_pods(pods):
        meta, node = pod.get("metadata") or {}, pod["spec"]["nodeName"]
        namespace = meta.get("namespace")
        name = _key(pod)
        for entry, claim_name in pod_claim_names(pod).items():
            key = f"{namespace}/{claim_name}" if namespace else str(claim_name)
            found = by_key.get(key) if claim_name else None
            if found is None:
                violations.append(f"pod {name} bound to {node} without its claim {entry!r}")
                continue
            results = allocated_devices(found)
            if not results:
                violations.append(f"pod {name} bound to {node}; its claim {key} is not allocated")
                continue
            reserved = (found.get("status") or {}).get("reservedFor") or []
            if not any(r.get("uid") == meta.get("uid") for r in reserved):
                violations.append(f"pod {name} bound; its claim {key} is not reserved for it")
            elsewhere = sorted(
                d for d, _ in results if where.get(d) is not None and where[d] != node
            )
            if elsewhere:
                violations.append(
                    f"pod {name} bound to {node}; its claim {key} holds devices of another "
                    f"node: {', '.join(elsewhere)}"
                )
    satisfied = sum(1 for c in claims if allocated_devices(c))
    return ClaimCount(len(claims), satisfied, violations)


# --- volumes ------------------------------------------------------------------------------


def volumes(
    pvs: Iterable[JSON], claims: Iterable[JSON], pods: Iterable[JSON], nodes: Iterable[JSON]
) -> ClaimCount:
    """The volume rules of the module docstring over PVs, claims, pods and nodes."""
    claims = list(claims)
    by_pv = {str((v.get("metadata") or {}).get("name")): v for v in pvs}
    by_claim = {_key(c): c for c in claims}
    hostname = {
        str((n.get("metadata") or {}).get("name")): (
            (n.get("metadata") or {}).get("labels") or {}
        ).get(HOSTNAME)
        for n in nodes
    }
    violations: list[str] = []
    users: dict[str, list[str]] = {}
    for claim in claims:
        volume = (claim.get("spec") or {}).get("volumeName")
        if not volume:
            continue
        users.setdefault(volume, []).append(_key(claim))
        ref = ((by_pv.get(volume) or {}).get("spec") or {}).get("claimRef") or {}
        uid = (claim.get("metadata") or {}).get("uid")
        if ref and ref.get("uid") and uid and ref.get("uid") != uid:
            violations.append(
                f"claim {_key(claim)} names volume {volume}, whose claimRef is "
                f"{ref.get('namespace')}/{ref.get('name')}"
            )
    for volume, names in sorted(users.items()):
        if len(names) > 1:
            violations.append(f"volume {volume} bound to {len(names)} claims: {', '.join(names)}")
    for pod in _bound_pods(pods):
        namespace, node = (pod.get("metadata") or {}).get("namespace"), pod["spec"]["nodeName"]
        for entry in (pod.get("spec") or {}).get("volumes") or []:
            source = entry.get("persistentVolumeClaim")
            if not source:
                continue
            key = f"{namespace}/{source.get('claimName')}" if namespace else source.get("claimName")
            found = by_claim.get(str(key))
            volume = ((found or {}).get("spec") or {}).get("volumeName")
            if found is None or not volume:
                state = "does not exist" if found is None else "is not bound"
                violations.append(f"pod {_key(pod)} bound to {node}; its claim {key} {state}")
                continue
            if volume not in by_pv:
                violations.append(f"pod {_key(pod)}: its claim {key} names no volume ({volume})")
                continue
            allowed = volume_hostnames(by_pv[volume])
            if allowed and hostname.get(node, node) not in allowed:
                violations.append(
                    f"pod {_key(pod)} bound to {node}; its volume {volume} is on "
                    f"{', '.join(allowed)}"
                )
    satisfied = sum(1 for c in claims if (c.get("spec") or {}).get("volumeName"))
    return ClaimCount(len(claims), satisfied, violations)
