"""Manifests → the pods their controllers would create, as the API server would store them.

`berth sim place -f FILE` takes what users apply: Pods, Deployments, ReplicaSets,
StatefulSets, Jobs and PodGroups, plus the objects that change how pods are scheduled
(Namespaces, PriorityClasses, PodDisruptionBudgets, Services, PVCs/PVs/StorageClasses).
Replicas are expanded the way the controllers name and label them:

    Deployment web (3)   → ReplicaSet web-<hash>, pods web-<hash>-<suffix> with
                           pod-template-hash (pkg/controller/deployment)
    StatefulSet db (2)   → pods db-0, db-1 with statefulset.kubernetes.io/pod-name, hostname,
                           subdomain, and the PVCs of volumeClaimTemplates, <tmpl>-db-<i>
                           (pkg/controller/statefulset)
    Job batch (p=4)      → min(parallelism, completions) pods batch-<suffix> with job-name and
                           controller-uid labels; Indexed: completion index and hostname
                           (pkg/controller/job)

and each pod gets what admission and defaulting would give it: a namespace, a uid,
`schedulerName: default-scheduler` when unset, `spec.priority` (and preemptionPolicy) from
its PriorityClass or the global default (plugin/pkg/admission/priority), the not-ready and
unreachable NoExecute tolerations for 300 s (DefaultTolerationSeconds), and requests copied
from limits where only limits are set (core/v1 defaults). LimitRange defaults are not
applied. Names carry a deterministic suffix, so two runs of the same input name pods alike.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

JSON = dict[str, Any]

# The alphabet of apimachinery's rand.SafeEncodeString (no vowels, no confusable digits).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
DEFAULT_TOLERATION_SECONDS = 300
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"

# Objects of these kinds go into the simulated cluster as they are (snapshot keys).
PASSTHROUGH = {
    ("v1", "Namespace"): "namespaces",
    ("scheduling.k8s.io/v1", "PriorityClass"): "priorityclasses",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("v1", "Service"): "services",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "PersistentVolume"): "persistentvolumes",
    ("storage.k8s.io/v1", "StorageClass"): "storageclasses",
    ("scheduling.k8s.io/v1beta1", "PodGroup"): "podgroups",
    ("scheduling.x-k8s.io/v1alpha1", "PodGroup"): "podgroups.scheduling.x-k8s.io",
    ("resource.k8s.io/v1", "ResourceClaim"): "resourceclaims",
    ("resource.k8s.io/v1", "DeviceClass"): "deviceclasses",
}
NAMESPACED = {
    "poddisruptionbudgets",
    "services",
    "persistentvolumeclaims",
    "podgroups",
    "podgroups.scheduling.x-k8s.io",
    "resourceclaims",
}


class ManifestError(Exception):
    """A manifest berth cannot expand; the message names the file, document and field."""


@dataclass
class Expanded:
    """What the manifests add: pods (pending, in creation order per owner), other objects by
    snapshot key, and each pod's owner as "Kind/namespace/name" for the report."""

    pods: list[JSON] = field(default_factory=list)
    objects: dict[str, list[JSON]] = field(default_factory=dict)
    owner_of: dict[str, str] = field(default_factory=dict)  # "ns/name" -> "Kind/ns/name"
    warnings: list[str] = field(default_factory=list)

    def add(self, key: str, obj: JSON) -> None:
        self.objects.setdefault(key, []).append(obj)


def read(paths: Iterable[str]) -> list[tuple[str, JSON]]:
    """(where, document) for every YAML document in the files (a directory: its *.yaml,
    *.yml and *.json files, sorted; "-": stdin); `kind: List` is unpacked."""
    import sys

    docs: list[tuple[str, JSON]] = []
    for name in paths:
        files: list[tuple[str, str]] = []
        if name == "-":
            files.append(("<stdin>", sys.stdin.read()))
        else:
            path = Path(name)
            targets = (
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
                if path.is_dir()
                else [path]
            )
            for target in targets:
                try:
                    files.append((str(target), target.read_text(encoding="utf-8")))
                except OSError as err:
                    raise ManifestError(f"{target}: {err.strerror or err}") from None
        for where, text in files:
            try:
                loaded = list(yaml.safe_load_all(text))
            except yaml.YAMLError as err:
                raise ManifestError(f"{where}: not YAML: {err}") from None
            for i, doc in enumerate(loaded):
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise ManifestError(f"{where}: document {i + 1}: expected a mapping")
                items = doc.get("items") if doc.get("kind") == "List" else [doc]
                for j, item in enumerate(items or []):
                    if not isinstance(item, dict):
                        raise ManifestError(f"{where}: document {i + 1}: items[{j}]: not a mapping")
                    docs.append((f"{where}: document {i + 1}", item))
    return docs


def expand(
    docs: Iterable[tuple[str, JSON]],
    *,
    namespace: str = "default",
    priority_classes: Iterable[JSON] = (),
    nodes: Iterable[JSON] = (),
) -> Expanded:
    """Expand the documents (see the module docstring). `priority_classes` are the cluster's
    (those in the manifests are added); `nodes` is unused today (DaemonSets are reported as
    not expanded). ManifestError names the document and the field that is wrong."""
    del nodes
    out = Expanded()
    docs = list(docs)
    classes = {str((pc.get("metadata") or {}).get("name")): pc for pc in priority_classes}
    for _where, doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) == ("scheduling.k8s.io/v1", "PriorityClass"):
            classes[str((doc.get("metadata") or {}).get("name"))] = doc
    serial = 0
    for where, doc in docs:
        api, kind = doc.get("apiVersion"), doc.get("kind")
        meta = doc.get("metadata")
        if not isinstance(meta, dict):
            raise ManifestError(f"{where}: metadata: required")
        if not meta.get("name") and meta.get("generateName"):  # as `kubectl create` takes
            meta = {**meta, "name": f"{meta['generateName']}{replica_suffix(where, serial)}"}
            doc = {**doc, "metadata": meta}
        if not meta.get("name"):
            raise ManifestError(f"{where}: metadata.name: required")
        if not isinstance(doc.get("spec", {}), dict):
            raise ManifestError(f"{where}: spec: expected a mapping")
        name, ns = str(meta["name"]), str(meta.get("namespace") or namespace)
        key = PASSTHROUGH.get((str(api), str(kind)))
        if key is not None:
            obj = copy.deepcopy(doc)
            if key in NAMESPACED:
                obj["metadata"]["namespace"] = ns
            obj["metadata"].setdefault("uid", f"sim-{kind}-{ns}-{name}".lower())
            out.add(key, obj)
            continue
        templates: list[tuple[str, JSON, JSON]] = []  # (pod name, labels/annotations, spec)
        if (api, kind) == ("v1", "Pod"):
            templates = [(name, copy.deepcopy(meta), copy.deepcopy(doc.get("spec") or {}))]
        elif (api, kind) in (("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet")):
            templates = _replica_set(where, doc, name, ns, kind == "Deployment", out)
        elif (api, kind) == ("apps/v1", "StatefulSet"):
            templates = _stateful_set(where, doc, name, ns, out)
        elif (api, kind) == ("batch/v1", "Job"):
            templates = _job(where, doc, name)
        else:
            out.warnings.append(f"{where}: {kind} ({api}) is not expanded; ignored")
            continue
        owner = f"{kind}/{ns}/{name}"
        for pod_name, pod_meta, spec in templates:
            made = out.owner_of.get(f"{ns}/{pod_name}")
            if made is not None:
                raise ManifestError(f"{where}: pod {ns}/{pod_name} is also made by {made}")
            serial += 1
            pod = _admit(where, pod_name, ns, pod_meta, spec, classes, serial)
            out.pods.append(pod)
            out.owner_of[f"{ns}/{pod_name}"] = owner
    return out


def suffix(seed: str, length: int = 5) -> str:
    """`length` characters of the safe alphabet, from a digest of `seed`."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:length])


def replica_suffix(owner: str, index: int) -> str:
    """Five safe characters for replica `index` of `owner`, distinct for every index below
    27^5 (a controller's random suffix retries on a clash; this one cannot clash): the
    index, shifted by a digest of the owner, written in base 27."""
    space = len(_SAFE) ** 5
    value = (index + int.from_bytes(hashlib.sha256(owner.encode()).digest()[:8], "big")) % space
    out = []
    for _ in range(5):
        value, digit = divmod(value, len(_SAFE))
        out.append(_SAFE[digit])
    return "".join(reversed(out))


def _replicas(where: str, spec: JSON, field_name: str = "replicas", default: int = 1) -> int:
    value = spec.get(field_name, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ManifestError(f"{where}: spec.{field_name}: must be a non-negative integer")
    return value


def _template(where: str, doc: JSON) -> tuple[JSON, JSON]:
    template = (doc.get("spec") or {}).get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise ManifestError(f"{where}: spec.template.spec: required")
    return dict(template.get("metadata") or {}), template["spec"]


def _replica_set(
    where: str, doc: JSON, name: str, ns: str, deployment: bool, out: Expanded
) -> list[tuple[str, JSON, JSON]]:
    spec = doc.get("spec") or {}
    tmeta, tspec = _template(where, doc)
    count = _replicas(where, spec)
    labels = dict(tmeta.get("labels") or {})
    selector = copy.deepcopy(spec.get("selector") or {"matchLabels": labels})
    rs_name = name
    if deployment:
        pod_hash = suffix(f"{ns}/{name}/{sorted(labels.items())}/{tspec}", 10)
        rs_name = f"{name}-{pod_hash}"
        labels["pod-template-hash"] = pod_hash
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
    # The ReplicaSet itself: system default spreading selects pods by its selector.
    out.add(
        "replicasets",
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": ns, "uid": f"sim-rs-{ns}-{rs_name}"},
            "spec": {"replicas": count, "selector": selector},
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": rs_name,
        "uid": f"sim-rs-{ns}-{rs_name}",
        "controller": True,
    }
    pods = []
    for i in range(count):
        meta = {**copy.deepcopy(tmeta), "labels": dict(labels), "ownerReferences": [owner]}
        pods.append(
            (f"{rs_name}-{replica_suffix(f'{ns}/{rs_name}', i)}", meta, copy.deepcopy(tspec))
        )
    return pods


def _stateful_set(
    where: str, doc: JSON, name: str, ns: str, out: Expanded
) -> list[tuple[str, JSON, JSON]]:
    spec = doc.get("spec") or {}
    tmeta, tspec = _template(where, doc)
    count = _replicas(where, spec)
    out.add(
        "statefulsets",
        {
            **copy.deepcopy(doc),
            "metadata": {
                **copy.deepcopy(doc.get("metadata") or {}),
                "namespace": ns,
                "uid": f"sim-sts-{ns}-{name}",
            },
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": name,
        "uid": f"sim-sts-{ns}-{name}",
        "controller": True,
    }
    claims = spec.get("volumeClaimTemplates") or []
    pods = []
    for i in range(count):
        pod_name = f"{name}-{i}"
        labels = dict(tmeta.get("labels") or {})
        labels.update(
            {"statefulset.kubernetes.io/pod-name": pod_name, "apps.kubernetes.io/pod-index": str(i)}
        )
        meta = {**copy.deepcopy(tmeta), "labels": labels, "ownerReferences": [owner]}
        pod_spec = copy.deepcopy(tspec)
        pod_spec.setdefault("hostname", pod_name)
        if spec.get("serviceName"):
            pod_spec.setdefault("subdomain", spec["serviceName"])
        volumes = [v for v in pod_spec.get("volumes") or [] if isinstance(v, dict)]
        for j, template in enumerate(claims):
            tname = (
                (template.get("metadata") or {}).get("name") if isinstance(template, dict) else None
            )
            if not tname:
                raise ManifestError(
                    f"{where}: spec.volumeClaimTemplates[{j}].metadata.name: required"
                )
            claim = f"{tname}-{name}-{i}"
            out.add(
                "persistentvolumeclaims",
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": claim,
                        "namespace": ns,
                        "uid": f"sim-pvc-{ns}-{claim}",
                        "labels": dict(tmeta.get("labels") or {}),
                    },
                    "spec": copy.deepcopy(template.get("spec") or {}),
                    "status": {"phase": "Pending"},
                },
            )
            volumes = [v for v in volumes if v.get("name") != tname]
            volumes.append({"name": tname, "persistentVolumeClaim": {"claimName": claim}})
        if claims:
            pod_spec["volumes"] = volumes
        pods.append((pod_name, meta, pod_spec))
    return pods


def _job(where: str, doc: JSON, name: str) -> list[tuple[str, JSON, JSON]]:
    spec = doc.get("spec") or {}
    tmeta, tspec = _template(where, doc)
    parallelism = _replicas(where, spec, "parallelism")
    completions = spec.get("completions")
    count = parallelism
    if completions is not None:
        count = min(parallelism, _replicas(where, spec, "completions"))
    indexed = spec.get("completionMode") == "Indexed"
    uid = f"sim-job-{name}"
    pods = []
    for i in range(count):
        labels = dict(tmeta.get("labels") or {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "job-name": name,
            }
        )
        annotations = dict(tmeta.get("annotations") or {})
        pod_spec = copy.deepcopy(tspec)
        base = name
        if indexed:
            labels["batch.kubernetes.io/job-completion-index"] = str(i)
            annotations["batch.kubernetes.io/job-completion-index"] = str(i)
            pod_spec.setdefault("hostname", f"{name}-{i}")
            base = f"{name}-{i}"
        owner = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": name,
            "uid": uid,
            "controller": True,
        }
        meta = {
            **copy.deepcopy(tmeta),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner],
        }
        pods.append((f"{base}-{replica_suffix(name, i)}", meta, pod_spec))
    return pods


def _admit(
    where: str,
    name: str,
    ns: str,
    meta: JSON,
    spec: JSON,
    classes: Mapping[str, JSON],
    serial: int,
) -> JSON:
    """The pod as the API server would store it (the module docstring's defaults)."""
    meta = {k: v for k, v in meta.items() if k not in ("generateName", "resourceVersion")}
    meta.update(name=name, namespace=ns, uid=f"sim-pod-{serial:06d}-{suffix(f'{ns}/{name}')}")
    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    spec = dict(spec)
    if not spec.get("nodeName"):
        spec.pop("nodeName", None)
    spec.setdefault("schedulerName", "default-scheduler")
    _priority(where, spec, classes)
    if not isinstance(spec.get("tolerations") or [], list):
        raise ManifestError(f"{where}: spec.tolerations: expected a list")
    for group in ("containers", "initContainers"):
        items = spec.get(group) or []
        if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
            raise ManifestError(f"{where}: spec.{group}: expected a list of containers")
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    for key in (NOT_READY, UNREACHABLE):
        if not any(
            t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tolerations
        ) and not any(t.get("operator") == "Exists" and not t.get("key") for t in tolerations):
            tolerations.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }
            )
    spec["tolerations"] = tolerations
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            if isinstance(container, dict):
                resources = container.setdefault("resources", {})
                if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
                    requests = resources.setdefault("requests", {})
                    for res, qty in resources["limits"].items():
                        requests.setdefault(res, qty)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def _priority(where: str, spec: JSON, classes: Mapping[str, JSON]) -> None:
    """plugin/pkg/admission/priority: the class's value (and preemptionPolicy), else the
    global default's, else 0. An unknown class is an error, as admission refuses the pod."""
    name = spec.get("priorityClassName")
    chosen: JSON | None = None
    if name:
        chosen = classes.get(str(name))
        if chosen is None:
            raise ManifestError(
                f"{where}: spec.priorityClassName: no PriorityClass with name {name} was found"
            )
    else:
        defaults = [c for c in classes.values() if c.get("globalDefault")]
        if defaults:
            chosen = min(defaults, key=lambda c: int(c.get("value") or 0))
            spec["priorityClassName"] = (chosen.get("metadata") or {}).get("name")
    spec["priority"] = int(chosen.get("value") or 0) if chosen else 0
    if chosen is not None and chosen.get("preemptionPolicy"):
        spec.setdefault("preemptionPolicy", chosen["preemptionPolicy"])
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
