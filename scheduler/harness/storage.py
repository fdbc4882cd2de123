"""Storage objects for the local control plane: StorageClasses, claims and static local PVs
(pure builders), and a PV delete that does not wait for its protection finalizer.

No volume plugin runs here, so the volumes are `local` PVs with node affinity: the only kind
the API server takes without a driver behind it, and the kind a scheduler binds by matching a
claim to a PV on the chosen node (upstream's VolumeBinding, for a WaitForFirstConsumer class
whose provisioner is `kubernetes.io/no-provisioner`). The e2e suite's test provisioner
(tests/e2e/provisioner.py) and `berth bench --workload statefulset` build on these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scheduler.harness.nodes import HOSTNAME
from scheduler.kube.client import ApiError, Client

JSON = dict[str, Any]

NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

VOLUMES = "/api/v1/persistentvolumes"
CLAIMS = "/api/v1/persistentvolumeclaims"
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"

__all__ = [
    "CLAIMS",
    "CLASSES",
    "HOSTNAME",
    "NO_PROVISIONER",
    "VOLUMES",
    "WAIT_FOR_FIRST_CONSUMER",
    "claim",
    "delete_volume",
    "local_volume",
    "storage_class",
    "volume_hostnames",
]


def storage_class(
    name: str,
    provisioner: str,
    *,
    binding_mode: str = WAIT_FOR_FIRST_CONSUMER,
    allowed_topologies: Iterable[tuple[str, Iterable[str]]] = (),
) -> JSON:
    """A StorageClass; `allowed_topologies` is (label key, values) pairs, all of which a node
    must match (one topology term)."""
    body: JSON = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": binding_mode,
        "reclaimPolicy": "Delete",
    }
    expressions = [{"key": k, "values": list(v)} for k, v in allowed_topologies]
    if expressions:
        body["allowedTopologies"] = [{"matchLabelExpressions": expressions}]
    return body


def claim(
    name: str, storage_class_name: str, size: str = "1Gi", access_mode: str = "ReadWriteOnce"
) -> JSON:
    """A PersistentVolumeClaim of `size` in the class (also a StatefulSet's claim template)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": [access_mode],
            "storageClassName": storage_class_name,
            "resources": {"requests": {"storage": size}},
        },
    }


def local_volume(
    name: str,
    hostname: str,
    storage_class_name: str,
    *,
    size: str = "1Gi",
    access_modes: Iterable[str] = ("ReadWriteOnce",),
    reclaim_policy: str = "Retain",
    claim_ref: JSON | None = None,
    annotations: dict[str, str] | None = None,
) -> JSON:
    """A local PV (`local.path` /tmp/<name>) usable only on the node whose
    kubernetes.io/hostname label is `hostname` (the API server requires node affinity of a
    local volume); `claim_ref` pre-binds it to a claim."""
    spec: JSON = {
        "capacity": {"storage": size},
        "accessModes": list(access_modes),
        "storageClassName": storage_class_name,
        "persistentVolumeReclaimPolicy": reclaim_policy,
        "local": {"path": f"/tmp/{name}"},
        "nodeAffinity": {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": HOSTNAME, "operator": "In", "values": [hostname]}
                        ]
                    }
                ]
            }
        },
    }
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    meta: JSON = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec}


def volume_hostnames(volume: Mapping[str, Any]) -> list[str]:
    """The kubernetes.io/hostname values a PV's required node affinity allows."""
    required = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}
    return [
        value
        for term in required.get("nodeSelectorTerms") or []
        for expression in term.get("matchExpressions") or []
        if expression.get("key") == HOSTNAME and expression.get("operator") == "In"
        for value in expression.get("values") or []
    ]


async def delete_volume(client: Client, name: str) -> None:
    """Delete a PV now: its protection finalizer (kept while it is Bound) is dropped first."""
    path = f"{VOLUMES}/{name}"
    try:
        await client.patch(path, {"metadata": {"finalizers": None}}, kind="merge")
        await client.delete(path)
    except ApiError as err:
        if err.status != 404:
            raise
