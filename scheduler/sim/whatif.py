"""What-if changes to a snapshot: drain nodes, add nodes like one that exists.

Both return a new ClusterSnapshot (the input is not changed) and lines for the report.

    drain(snap, ["node-3"])   as `kubectl drain --ignore-daemonsets`: the node is cordoned
                              (spec.unschedulable and the node.kubernetes.io/unschedulable
                              NoSchedule taint the node lifecycle controller adds); its pods
                              are evicted, and those a controller owns (ReplicaSet,
                              StatefulSet, Job, ReplicationController) come back pending, as
                              their controllers recreate them; DaemonSet and mirror pods stay;
                              a bare pod is lost (reported).
    add_nodes(snap, 5, "n")   five copies of node n, named n-sim-1..5, with its labels
                              (kubernetes.io/hostname set to the new name), taints and
                              allocatable, Ready, and no pods.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scheduler.labels import LabelSelector
from scheduler.model import InvalidObject, label_selector
from scheduler.sim.manifests import suffix
from scheduler.sim.snapshot import ClusterSnapshot

JSON = dict[str, Any]

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
HOSTNAME = "kubernetes.io/hostname"
RECREATED_BY = ("ReplicaSet", "StatefulSet", "Job", "ReplicationController")
MIRROR = "kubernetes.io/config.mirror"


class WhatIfError(Exception):
    """A what-if option names something the snapshot lacks (the message names the option)."""


def _copy(snap: ClusterSnapshot) -> ClusterSnapshot:
    return ClusterSnapshot(
        objects={k: list(v) for k, v in snap.objects.items()},
        missing=dict(snap.missing),
        server=snap.server,
        source=snap.source,
        taken_at=snap.taken_at,
    )


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def drain(snap: ClusterSnapshot, names: Iterable[str]) -> tuple[ClusterSnapshot, list[str]]:
    """Cordon and drain `names` (see the module docstring). WhatIfError for an unknown node."""
    wanted = list(dict.fromkeys(names))
    known = {_name(n) for n in snap.of("nodes")}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise WhatIfError(f"--drain: no node named {', '.join(unknown)} in the cluster")
    out = _copy(snap)
    nodes = []
    for node in snap.of("nodes"):
        if _name(node) in wanted:
            node = copy.deepcopy(node)
            spec = node.setdefault("spec", {})
            spec["unschedulable"] = True
            taints = [t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE_TAINT]
            taints.append({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"})
            spec["taints"] = taints
        nodes.append(node)
    out.objects["nodes"] = nodes
    pods, lines = [], []
    moved = lost = blocked = 0
    budgets = _budgets(snap)
    for pod in snap.of("pods"):
        spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
        if spec.get("nodeName") not in wanted:
            pods.append(pod)
            continue
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        kind = owner.get("kind") if owner else None
        if kind == "DaemonSet" or MIRROR in (meta.get("annotations") or {}):
            pods.append(pod)
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        guards = [b for b in budgets if b.covers(pod)]
        stuck = next((b for b in guards if b.allowed <= 0), None)
        if stuck is not None:
            blocked += 1
            pods.append(pod)
            lines.append(
                f"drain: pod {key} stays: PodDisruptionBudget {stuck.key} allows no more "
                "disruptions (kubectl drain would retry the eviction until it does)"
            )
            continue
        for budget in guards:
            budget.allowed -= 1
        if kind not in RECREATED_BY:
            lost += 1
            lines.append(
                f"drain: pod {key} has no controller: deleted and not recreated "
                "(kubectl drain needs --force for it)"
            )
            continue
        moved += 1
        again = copy.deepcopy(pod)
        new_meta = again["metadata"]
        if kind != "StatefulSet":  # a StatefulSet recreates the same name
            new_meta["name"] = f"{str(meta.get('name'))[:50]}-d{suffix(str(meta.get('uid')))}"
        new_meta["uid"] = f"drained-{meta.get('uid')}"
        new_meta.pop("resourceVersion", None)
        again["spec"].pop("nodeName", None)
        again["status"] = {"phase": "Pending"}
        pods.append(again)
    out.objects["pods"] = pods
    summary = f"drain {', '.join(wanted)}: {moved} pods recreated by their controllers"
    summary += f", {lost} deleted" if lost else ""
    summary += f", {blocked} held by PodDisruptionBudgets" if blocked else ""
    lines.insert(0, summary)
    return out, lines


@dataclass
class _Budget:
    key: str
    namespace: str
    selector: LabelSelector
    allowed: int  # status.disruptionsAllowed, as the disruption controller last wrote it

    def covers(self, pod: JSON) -> bool:
        meta = pod.get("metadata") or {}
        return meta.get("namespace") == self.namespace and self.selector.matches(
            meta.get("labels") or {}
        )


def _budgets(snap: ClusterSnapshot) -> list[_Budget]:
    """The snapshot's PDBs; a malformed selector selects nothing (the API server refuses it)."""
    out = []
    for pdb in snap.of("poddisruptionbudgets"):
        meta = pdb.get("metadata") or {}
        try:
            selector = label_selector((pdb.get("spec") or {}).get("selector"), "spec.selector")
        except InvalidObject:
            continue
        allowed = (pdb.get("status") or {}).get("disruptionsAllowed")
        out.append(
            _Budget(
                f"{meta.get('namespace')}/{meta.get('name')}",
                str(meta.get("namespace") or ""),
                selector,
                allowed if isinstance(allowed, int) else 0,
            )
        )
    return out


def add_nodes(snap: ClusterSnapshot, count: int, like: str) -> tuple[ClusterSnapshot, list[str]]:
    """`count` copies of node `like` (see the module docstring). WhatIfError when `like` is
    not a node of the snapshot or count < 1."""
    if count < 1:
        raise WhatIfError("--add-nodes: must be at least 1")
    model = next((n for n in snap.of("nodes") if _name(n) == like), None)
    if model is None:
        raise WhatIfError(f"--like: no node named {like} in the cluster")
    out = _copy(snap)
    taken = {_name(n) for n in snap.of("nodes")}
    added: list[JSON] = []
    i = 0
    while len(added) < count:
        i += 1
        name = f"{like}-sim-{i}"
        if name in taken:
            continue
        node = copy.deepcopy(model)
        meta = node["metadata"]
        meta.update(name=name, uid=f"sim-node-{name}")
        meta.pop("resourceVersion", None)
        labels = meta.setdefault("labels", {})
        if HOSTNAME in labels:
            labels[HOSTNAME] = name
        spec = node.setdefault("spec", {})
        spec.pop("unschedulable", None)
        spec["taints"] = [
            t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE_TAINT
        ]
        spec.pop("providerID", None)
        added.append(node)
    out.objects["nodes"] = [*snap.of("nodes"), *added]
    # The DaemonSets that run on `like` run on its copies too (their pods, bound).
    daemons = [
        p
        for p in snap.of("pods")
        if (p.get("spec") or {}).get("nodeName") == like
        and any(
            r.get("kind") == "DaemonSet" and r.get("controller")
            for r in (p.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
    extra = []
    for node in added:
        name = node["metadata"]["name"]
        for pod in daemons:
            copy_ = copy.deepcopy(pod)
            copy_["metadata"]["name"] = f"{pod['metadata']['name'][:40]}-{suffix(name)}"
            copy_["metadata"]["uid"] = f"sim-ds-{name}-{pod['metadata'].get('uid')}"
            copy_["spec"]["nodeName"] = name
            extra.append(copy_)
    out.objects["pods"] = [*snap.of("pods"), *extra]
    names = [n["metadata"]["name"] for n in added]
    shown = names[0] if count == 1 else f"{names[0]} .. {names[-1]}"
    return out, [f"add {count} node{'s' if count > 1 else ''} like {like}: {shown}"]


def with_objects(snap: ClusterSnapshot, objects: dict[str, list[JSON]]) -> ClusterSnapshot:
    """The snapshot plus `objects` (snapshot key -> objects), e.g. expanded manifests. An
    object already there (same namespace/name) is replaced, as `kubectl apply` would."""
    out = _copy(snap)
    for key, items in objects.items():
        fresh = {_key(o) for o in items}
        out.objects[key] = [o for o in out.of(key) if _key(o) not in fresh] + list(items)
    return out


def _key(obj: JSON) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
