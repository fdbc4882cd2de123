"""What the PV controller and a provisioner would do, for claims in a simulation.

    immediate(snapshot)       claims of an Immediate StorageClass (the default mode) with a
                              real provisioner are provisioned before scheduling, as the
                              provisioner does when the claim is created
    bind(pvc, pv)             a claim and a PV bound to each other (PreBind's claimRef
                              write, completed by the PV controller)
    provisioned(pvc, node)    the PV a provisioner makes for a WaitForFirstConsumer claim
                              once the scheduler selected a node

A provisioned PV has the claim's request, access modes and class, and no node affinity:
the volume's topology (a zone, a host) is a property of the storage that berth sim does not
know, so later pods sharing that claim are not held to a zone by it (docs/sim.md).
"""

from __future__ import annotations

import copy
from typing import Any

from scheduler.volumes import NO_PROVISIONER

JSON = dict[str, Any]

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def _meta(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def bind(pvc: JSON, pv: JSON) -> tuple[JSON, JSON]:
    """Copies of the claim and the PV, bound to each other (phase Bound)."""
    claim, volume = copy.deepcopy(pvc), copy.deepcopy(pv)
    claim.setdefault("spec", {})["volumeName"] = _meta(volume).get("name")
    claim.setdefault("status", {})["phase"] = "Bound"
    meta = _meta(claim)
    volume.setdefault("spec", {})["claimRef"] = {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }
    volume.setdefault("status", {})["phase"] = "Bound"
    return claim, volume


def provisioned(pvc: JSON) -> JSON:
    """The PV a provisioner would create for `pvc` (named pvc-<uid>, as external-provisioner
    names them), not yet bound."""
    meta, spec = _meta(pvc), pvc.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta.get('uid') or meta.get('name')}"},
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "storageClassName": spec.get("storageClassName") or "",
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": "Delete",
        },
        "status": {"phase": "Available"},
    }


def immediate(claims: list[JSON], classes: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """(claims as they will be, PVs made) once the Immediate classes' provisioners ran: an
    unbound claim whose class (its own, or the default class when it names none) binds
    Immediately and has a provisioner is bound to a new PV."""
    by_name = {str(_meta(c).get("name")): c for c in classes}
    default = next(
        (c for c in classes if _meta(c).get("annotations", {}).get(DEFAULT_CLASS) == "true"),
        None,
    )
    out, made = [], []
    for pvc in claims:
        spec = pvc.get("spec") or {}
        name = spec.get("storageClassName")
        cls = by_name.get(name) if name else (default if name is None else None)
        if (
            spec.get("volumeName")
            or cls is None
            or (cls.get("volumeBindingMode") or "Immediate") != "Immediate"
            or (cls.get("provisioner") or NO_PROVISIONER) == NO_PROVISIONER
        ):
            out.append(pvc)
            continue
        pvc = copy.deepcopy(pvc)
        pvc.setdefault("spec", {})["storageClassName"] = _meta(cls).get("name")
        claim, pv = bind(pvc, provisioned(pvc))
        out.append(claim)
        made.append(pv)
    return out, made
