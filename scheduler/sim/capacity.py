"""`berth sim capacity`: how many more of one pod fit, and what runs out first.

As cluster-capacity does: copies of the pod are scheduled one after another, without
preemption (preemptionPolicy Never: capacity is free room, not room that could be taken),
until one does not fit. Because every copy is the same, berth's equivalence batching places
them as one class. How many copies to offer is bounded first from the free resources (per
node, the smallest of free / request over the pod's requests, and free pod slots); the copy
past that bound fails, and its message is what runs out. Per group of nodes (the zone by
default, any node label with --group-by): the copies placed there and, per node left, the
resources that no longer fit another copy.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.model import compile_node, compile_pod
from scheduler.sim.engine import Outcome
from scheduler.sim.snapshot import ClusterSnapshot

JSON = dict[str, Any]

DEFAULT_MAX = 100_000


@dataclass
class Capacity:
    fits: int  # copies placed
    offered: int  # copies offered (the bound + 1, or --max)
    capped: bool  # the bound was above --max: at least `fits` fit
    stop_message: str  # the first copy that did not fit: upstream's message ("" if none)
    groups: dict[str, GroupCapacity] = field(default_factory=dict)


@dataclass
class GroupCapacity:
    nodes: int
    fits: int
    limits: Counter[str] = field(default_factory=Counter)  # resource -> nodes it stops


def upper_bound(snapshot: ClusterSnapshot, pod: JSON) -> int:
    """Copies of `pod` the free resources could hold at most (taints, affinity and spreading
    can only lower it): per schedulable node, min over requested resources and pod slots."""
    compiled = compile_pod(pod)
    used: dict[str, Counter[str]] = defaultdict(Counter)
    for obj in snapshot.of("pods"):
        node = (obj.get("spec") or {}).get("nodeName")
        if node and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            p = compile_pod(obj)
            used[node].update(p.requests)
            if "pods" not in p.requests:  # a pod takes one slot, whether counted or not
                used[node]["pods"] += 1
    total = 0
    for obj in snapshot.of("nodes"):
        if (obj.get("spec") or {}).get("unschedulable"):
            continue
        node = compile_node(obj)
        fit = node.allocatable.get("pods", 0) - used[node.name]["pods"]
        for resource, amount in compiled.requests.items():
            if amount > 0:
                free = node.allocatable.get(resource, 0) - used[node.name][resource]
                fit = min(fit, free // amount)
        total += max(0, fit)
    return total


def copies(
    pod: JSON, count: int, claims: Mapping[str, JSON] | None = None
) -> tuple[list[JSON], list[JSON]]:
    """`count` copies of `pod`, named <name>-cap-000001..., preemptionPolicy Never, and for
    each copy its own copy of the claims it uses that are in `claims` (claim name -> PVC:
    those a StatefulSet's volumeClaimTemplates made), as each replica would get its own."""
    claims = claims or {}
    pods, pvcs = [], []
    meta = pod.get("metadata") or {}
    for i in range(1, count + 1):
        c = copy.deepcopy(pod)
        c["metadata"]["name"] = f"{meta.get('name')}-cap-{i:06d}"
        c["metadata"]["uid"] = f"{meta.get('uid')}-cap-{i:06d}"
        c["spec"]["preemptionPolicy"] = "Never"
        for volume in c["spec"].get("volumes") or []:
            ref = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
            if isinstance(ref, dict) and ref.get("claimName") in claims:
                pvc = copy.deepcopy(claims[ref["claimName"]])
                pvc["metadata"]["name"] = f"{ref['claimName']}-cap-{i:06d}"
                pvc["metadata"]["uid"] = f"{pvc['metadata'].get('uid')}-cap-{i:06d}"
                ref["claimName"] = pvc["metadata"]["name"]
                pvcs.append(pvc)
        pods.append(c)
    return pods, pvcs


def summarise(outcome: Outcome, pod: JSON, offered: int, capped: bool, group_by: str) -> Capacity:
    """Per group: copies placed; per node, the resources that no longer fit one more copy
    (requests against allocatable after the simulation), counted over the group's nodes."""
    compiled = compile_pod(pod)
    stop = sorted(outcome.pending.items())
    result = Capacity(
        fits=len(outcome.placed),
        offered=offered,
        capped=capped,
        stop_message=stop[0][1] if stop else "",
    )
    per_node = Counter(outcome.placed.values())
    cpu = compiled.requests.get("cpu", 0)
    memory = compiled.requests.get("memory", 0)
    for name, use in outcome.nodes.items():
        group = use.labels.get(group_by, "(none)")
        g = result.groups.setdefault(group, GroupCapacity(nodes=0, fits=0))
        g.nodes += 1
        g.fits += per_node.get(name, 0)
        if use.pods_after + 1 > use.pods:
            g.limits["pods"] += 1
        if cpu and use.cpu_after + cpu > use.cpu:
            g.limits["cpu"] += 1
        if memory and use.memory_after + memory > use.memory:
            g.limits["memory"] += 1
    return result


def markdown(cap: Capacity, name: str, group_by: str) -> str:
    head = f"at least {cap.fits:,}" if cap.capped else f"{cap.fits:,}"
    lines = [f"## capacity: {head} more pods like {name} fit", ""]
    if cap.stop_message:
        lines += [f"The next one does not: {cap.stop_message}", ""]
    elif cap.capped:
        lines += [f"(stopped at --max {cap.offered:,} copies)", ""]
    lines += [
        f"| {group_by} | nodes | fit | nodes full of: cpu | memory | pods |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for group, g in sorted(cap.groups.items()):
        lines.append(
            f"| {group} | {g.nodes:,} | {g.fits:,} | {g.limits['cpu']:,} "
            f"| {g.limits['memory']:,} | {g.limits['pods']:,} |"
        )
    return "\n".join(lines) + "\n"
