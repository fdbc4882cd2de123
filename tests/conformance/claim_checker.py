"""The conformance checker's rules for volumes and DRA devices, written from the Kubernetes
documentation (Persistent Volumes, Dynamic Resource Allocation) like checker.py, on whose
selector and quantity helpers it builds; it imports nothing from berth.

`claim_violations()` checks what the bound pods' claims got: each volume claim Bound to a PV
that names it, fits it and whose node affinity admits the pod's node, no PV bound twice; each
ResourceClaim allocated and reserved for its pods, its node selector admitting the node, every
device published on that node, each request's count and matchAttribute met, no device given to
two claims (admin access and multi-allocatable devices aside).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.conformance.checker import JSON, Placed, node_selector_term_matches, quantity


@dataclass(frozen=True)
class Claimed:
    """What the pods' claims got, as the API lists the objects at the end of a run:
    PersistentVolumeClaims and PersistentVolumes (v1), ResourceClaims and ResourceSlices
    (resource.k8s.io/v1). Empty lists when nothing was claimed."""

    volume_claims: list[JSON] = field(default_factory=list)
    volumes: list[JSON] = field(default_factory=list)
    resource_claims: list[JSON] = field(default_factory=list)
    resource_slices: list[JSON] = field(default_factory=list)


def _key(obj: JSON) -> tuple[str, str]:
    meta = obj["metadata"]
    return str(meta.get("namespace") or ""), str(meta["name"])


def _namespace(p: Placed) -> str:
    return str(p.pod["metadata"].get("namespace") or "")


def _admits(selector: JSON | None, node: JSON) -> bool:
    """A NodeSelector (terms ORed); none admits every node."""
    if selector is None:
        return True
    return any(node_selector_term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [])


def pod_volume_claims(pod: JSON) -> list[str]:
    """The PersistentVolumeClaims a pod uses: its persistentVolumeClaim volumes, and for a
    generic ephemeral volume the claim `<pod>-<volume>` that Kubernetes makes for it."""
    out = []
    for volume in pod["spec"].get("volumes") or []:
        if volume.get("persistentVolumeClaim"):
            out.append(str(volume["persistentVolumeClaim"]["claimName"]))
        elif volume.get("ephemeral"):
            out.append(f"{pod['metadata']['name']}-{volume['name']}")
    return out


def _volume_violations(nodes: dict[str, JSON], placed: list[Placed], claimed: Claimed) -> list[str]:
    """A bound pod's claims are Bound, each to a volume of its class, size and access modes
    whose required node affinity admits the pod's node; a volume is bound to one claim, the
    one its claimRef names; a ReadWriteOncePod claim is used by one pod."""
    out: list[str] = []
    claims = {_key(c): c for c in claimed.volume_claims}
    volumes = {str(v["metadata"]["name"]): v for v in claimed.volumes}
    holders: dict[str, list[str]] = defaultdict(list)
    for c in claimed.volume_claims:
        if volume := c["spec"].get("volumeName"):
            holders[volume].append("/".join(_key(c)))
    for volume, names in sorted(holders.items()):
        if len(names) > 1:
            out.append(f"PV {volume} is bound to {len(names)} claims: {', '.join(names)}")
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p in placed:
        if p.node is None or p.node not in nodes:
            continue
        ns = _namespace(p)
        for name in pod_volume_claims(p.pod):
            users[ns, name].append(p.name)
            pvc = claims.get((ns, name))
            if pvc is None:
                out.append(f"{p.name}: claim {name} does not exist")
                continue
            volume = pvc["spec"].get("volumeName")
            if (pvc.get("status") or {}).get("phase") != "Bound" or not volume:
                out.append(f"{p.name}: claim {name} is not Bound")
                continue
            pv = volumes.get(volume)
            if pv is None:
                out.append(f"{p.name}: claim {name} is bound to PV {volume}, which does not exist")
                continue
            out += [f"{p.name}: claim {name}: {bad}" for bad in _volume_mismatch(pvc, pv)]
            affinity = (pv["spec"].get("nodeAffinity") or {}).get("required")
            if not _admits(affinity, nodes[p.node]):
                out.append(
                    f"{p.name}: PV {volume} of claim {name} is not reachable from node "
                    f"{p.node} (its nodeAffinity)"
                )
    for (ns, name), pods in sorted(users.items()):
        pvc = claims.get((ns, name))
        if pvc and "ReadWriteOncePod" in (pvc["spec"].get("accessModes") or []) and len(pods) > 1:
            out.append(f"claim {name} is ReadWriteOncePod but used by {', '.join(pods)}")
    return out


def _volume_mismatch(pvc: JSON, pv: JSON) -> list[str]:
    """Why a Bound claim's volume could not serve it: claimRef, class, size, access modes."""
    out = []
    name = pv["metadata"]["name"]
    ref = pv["spec"].get("claimRef") or {}
    uid = pvc["metadata"].get("uid")
    if (str(ref.get("namespace") or ""), ref.get("name")) != _key(pvc) or (
        ref.get("uid") and uid and ref["uid"] != uid
    ):
        out.append(f"PV {name}'s claimRef names {ref.get('namespace')}/{ref.get('name')}")
    if (pv["spec"].get("storageClassName") or "") != (pvc["spec"].get("storageClassName") or ""):
        out.append(f"PV {name} is of class {pv['spec'].get('storageClassName')!r}")
    want = ((pvc["spec"].get("resources") or {}).get("requests") or {}).get("storage")
    have = (pv["spec"].get("capacity") or {}).get("storage")
    if want is not None and (have is None or quantity(have) < quantity(want)):
        out.append(f"PV {name} holds {have}, the claim requests {want}")
    missing = set(pvc["spec"].get("accessModes") or []) - set(pv["spec"].get("accessModes") or [])
    if missing:
        out.append(f"PV {name} lacks access modes {sorted(missing)}")
    return out


# driver, pool, device: how a ResourceSlice publishes a device and an allocation names it
Device = tuple[str, str, str]


def pod_resource_claims(pod: JSON) -> list[tuple[str, str | None]]:
    """(entry name, ResourceClaim name) of each spec.resourceClaims entry: its
    resourceClaimName, or for a template the claim status.resourceClaimStatuses names (None
    while the ResourceClaim controller has not made it)."""
    generated = {
        s["name"]: s.get("resourceClaimName")
        for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []
    }
    out: list[tuple[str, str | None]] = []
    for entry in pod["spec"].get("resourceClaims") or []:
        if entry.get("resourceClaimName"):
            out.append((entry["name"], str(entry["resourceClaimName"])))
        else:
            out.append((entry["name"], generated.get(entry["name"])))
    return out


def published_devices(slices: list[JSON]) -> dict[Device, tuple[JSON, JSON]]:
    """Every device of the newest generation of its pool: (slice, device)."""
    newest: dict[tuple[str, str], int] = {}
    for s in slices:
        pool = s["spec"]["pool"]
        key = (s["spec"]["driver"], pool["name"])
        newest[key] = max(newest.get(key, 0), int(pool.get("generation") or 0))
    out: dict[Device, tuple[JSON, JSON]] = {}
    for s in slices:
        driver, pool = s["spec"]["driver"], s["spec"]["pool"]
        if int(pool.get("generation") or 0) != newest[driver, pool["name"]]:
            continue
        for device in s["spec"].get("devices") or []:
            out[driver, pool["name"], device["name"]] = (s, device)
    return out


def _device_on_node(slice_: JSON, device: JSON, node: JSON) -> bool:
    """A slice's devices are on its nodeName, on all nodes, or on the nodes its nodeSelector
    admits; with perDeviceNodeSelection each device says so itself."""
    spec = slice_["spec"]
    where = device if spec.get("perDeviceNodeSelection") else spec
    if where.get("allNodes"):
        return True
    if where.get("nodeName"):
        return bool(where["nodeName"] == node["metadata"]["name"])
    if where.get("nodeSelector"):
        return _admits(where["nodeSelector"], node)
    return False


def _attribute(device: Device, published: JSON, qualified: str) -> Any:
    """A device attribute by its qualified name; an unqualified one in the slice belongs to
    the driver's domain."""
    attributes = published.get("attributes") or {}
    domain, _, name = qualified.rpartition("/")
    if qualified in attributes:
        return attributes[qualified]
    return attributes.get(name) if domain == device[0] else None


def _device_violations(nodes: dict[str, JSON], placed: list[Placed], claimed: Claimed) -> list[str]:
    """A bound pod's ResourceClaims are allocated and reserved for it; the allocation's
    nodeSelector admits the pod's node; each allocated device is published on that node, each
    request got its count and each matchAttribute constraint holds; no device is allocated to
    two claims, unless with admin access or a device that allows multiple allocations."""
    out: list[str] = []
    claims = {_key(c): c for c in claimed.resource_claims}
    devices = published_devices(claimed.resource_slices)
    holders: dict[Device, list[str]] = defaultdict(list)
    for c in claimed.resource_claims:
        for r in _results(c):
            if not r.get("adminAccess"):
                holders[r["driver"], r["pool"], r["device"]].append("/".join(_key(c)))
    for device, names in sorted(holders.items()):
        # A device that allows multiple allocations (consumable capacity) may be shared.
        shared = (devices.get(device) or ({}, {}))[1].get("allowMultipleAllocations")
        if len(names) > 1 and not shared:
            out.append(f"device {'/'.join(device)} is allocated {len(names)} times: {names}")
    for p in placed:
        if p.node is None or p.node not in nodes:
            continue
        for entry, name in pod_resource_claims(p.pod):
            if name is None:
                out.append(f"{p.name}: the claim of {entry} was never made")
                continue
            claim = claims.get((_namespace(p), name))
            if claim is None:
                out.append(f"{p.name}: claim {name} does not exist")
                continue
            status = claim.get("status") or {}
            if not status.get("allocation"):
                out.append(f"{p.name}: claim {name} is not allocated")
                continue
            if not any(_reserves(r, p.pod) for r in status.get("reservedFor") or []):
                out.append(f"{p.name}: claim {name} is not reserved for it")
            if not _admits(status["allocation"].get("nodeSelector"), nodes[p.node]):
                out.append(f"{p.name}: claim {name}'s allocation does not admit node {p.node}")
            for r in _results(claim):
                device = (r["driver"], r["pool"], r["device"])
                found = devices.get(device)
                if found is None:
                    out.append(f"{p.name}: claim {name} has {'/'.join(device)}, in no slice")
                elif not _device_on_node(*found, nodes[p.node]):
                    out.append(f"{p.name}: claim {name} has {'/'.join(device)}, not on {p.node}")
            out += [f"{p.name}: claim {name}: {bad}" for bad in _request_mismatch(claim, devices)]
    return out


def _results(claim: JSON) -> list[JSON]:
    allocation = (claim.get("status") or {}).get("allocation") or {}
    return list((allocation.get("devices") or {}).get("results") or [])


def _reserves(consumer: JSON, pod: JSON) -> bool:
    uid = pod["metadata"].get("uid")
    return (
        consumer.get("resource") == "pods"
        and consumer.get("name") == pod["metadata"]["name"]
        and (not uid or consumer.get("uid") == uid)
    )


def _request_mismatch(claim: JSON, devices: dict[Device, tuple[JSON, JSON]]) -> list[str]:
    """How an allocation differs from the claim's requests (ExactCount counts; a
    firstAvailable request got one of its subrequests, in full) and constraints
    (matchAttribute: every device of the named requests, all if none are named, has the
    attribute, with one value). CEL selectors are not evaluated here."""
    out = []
    results = _results(claim)
    spec = claim["spec"].get("devices") or {}
    for request in spec.get("requests") or []:
        name = request["name"]
        options = [(name, request["exactly"])] if request.get("exactly") else []
        options += [(f"{name}/{s['name']}", s) for s in request.get("firstAvailable") or []]
        if not options:
            continue
        got = {option: sum(1 for r in results if r["request"] == option) for option, _ in options}
        used = [(option, ask) for option, ask in options if got[option]]
        if len(used) > 1:
            out.append(f"request {name} was given devices of {[o for o, _ in used]}")
            continue
        option, ask = used[0] if used else options[0]
        want = ask.get("count", 1)
        if ask.get("allocationMode", "ExactCount") == "ExactCount" and got[option] != want:
            out.append(f"request {option} got {got[option]} devices, not {want}")
    for constraint in spec.get("constraints") or []:
        qualified = constraint.get("matchAttribute")
        if not qualified:
            continue
        names = set(constraint.get("requests") or [])
        values = set()
        for r in results:
            if names and r["request"].split("/")[0] not in names:
                continue
            device = (r["driver"], r["pool"], r["device"])
            found = devices.get(device)
            value = _attribute(device, found[1], qualified) if found else None
            values.add(json.dumps(value, sort_keys=True))
        if len(values) > 1 or "null" in values:
            out.append(f"matchAttribute {qualified} has values {sorted(values)}")
    return out


def claim_violations(nodes: dict[str, JSON], placed: list[Placed], claimed: Claimed) -> list[str]:
    """Every broken rule of the bound pods' volume and device claims (empty: all good)."""
    return _volume_violations(nodes, placed, claimed) + _device_violations(nodes, placed, claimed)
