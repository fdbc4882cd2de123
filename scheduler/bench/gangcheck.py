"""An independent check of gang placements: which pod groups are partially bound.

A gang is all or nothing: either at least its quorum of members is bound, or none is. A group
with some members bound and fewer than its quorum holds nodes that nothing can use, which is
exactly what gang scheduling exists to prevent, so a gang scheduler must never leave one.
`partially_bound()` lists every such group of a cluster state given as raw API JSON.

Written from the API reference (Kubernetes v1.37's scheduling.k8s.io/v1beta1 types and
scheduler-plugins' PodGroup CRD), it imports nothing of berth (an import-linter contract in
pyproject.toml keeps it so): the conformance suite (tests/conformance/gangs.py re-exports it)
and `berth bench` judge berth's gangs with code that shares no bug with berth's engine. It lives
here rather than under tests/ because `berth bench` ships in the package and tests/ does not.

The two kinds of group it reads:

- Kubernetes' PodGroup, scheduling.k8s.io/v1beta1 (v1.37, GenericWorkload): the quorum is
  spec.schedulingPolicy.gang.minCount (a `basic` policy has none: never judged); its members
  are the pods of its namespace whose spec.schedulingGroup.podGroupName names it.
- scheduler-plugins' PodGroup CRD, scheduling.x-k8s.io/v1alpha1: the quorum is spec.minMember
  (unset or 0: none, never judged); its members are the pods of its namespace labelled
  scheduling.x-k8s.io/pod-group=<its name>.

The field and the label name groups of different APIs, so a group of one API and a group of
the other with the same name are two groups, and a pod carrying both belongs to both.
Items of a List response carry no apiVersion; an item without one is judged by its spec
(`schedulingPolicy`: v1beta1; `minMember`: the CRD). A pod naming a group that is not given is
not judged here (no quorum is known for it).

A member counts as bound when spec.nodeName is set, metadata.deletionTimestamp is not (a pod
being deleted is on its way off the node) and status.phase is neither Succeeded nor Failed (a
finished pod holds nothing). The check is meant for a settled state: a gang whose members are
being deleted one by one, or that lost a member to disruption after it was placed, looks
partially bound for a while, and is reported, since nothing in the objects tells that apart
from a broken placement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

JSON = Mapping[str, Any]

UPSTREAM = "scheduling.k8s.io"  # Kubernetes' own PodGroup (v1beta1 in v1.37)
COSCHEDULING = "scheduling.x-k8s.io"  # scheduler-plugins' PodGroup CRD (v1alpha1)
COSCHEDULING_LABEL = "scheduling.x-k8s.io/pod-group"
FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True, order=True)
class GroupKey:
    """A group: its namespace, its API group (UPSTREAM or COSCHEDULING) and its name."""

    namespace: str
    api: str
    name: str

    def __str__(self) -> str:
        kind = "PodGroup" if self.api == UPSTREAM else "PodGroup (scheduler-plugins)"
        return f"{kind} {self.namespace}/{self.name} ({self.api})"


@dataclass(frozen=True)
class GroupCount:
    """What the check found for one group with a quorum."""

    key: GroupKey
    quorum: int
    members: int  # pods that name the group
    bound: int  # of which bound (see the module docstring)

    @property
    def partial(self) -> bool:
        return 0 < self.bound < self.quorum

    def message(self) -> str:
        return (
            f"{self.key}: {self.bound} of its {self.members} members bound, "
            f"fewer than its quorum of {self.quorum}"
        )


def quorum_of(podgroup: JSON) -> tuple[GroupKey, int] | None:
    """(the group, its quorum) for a PodGroup of either API; None for a group without a
    quorum (a `basic` policy, minMember unset or 0) or an object that is neither."""
    meta = podgroup.get("metadata") or {}
    spec = podgroup.get("spec") or {}
    api = str(podgroup.get("apiVersion") or "").split("/", 1)[0]
    if not api and "schedulingPolicy" in spec:  # a List item: told apart by its spec
        api = UPSTREAM
    elif not api and "minMember" in spec:
        api = COSCHEDULING
    if api == UPSTREAM:
        gang = (spec.get("schedulingPolicy") or {}).get("gang")
        quorum = gang.get("minCount") if isinstance(gang, Mapping) else None
    elif api == COSCHEDULING:
        quorum = spec.get("minMember")
    else:
        return None
    if not isinstance(quorum, int) or isinstance(quorum, bool) or quorum < 1:
        return None
    return GroupKey(str(meta.get("namespace") or ""), api, str(meta.get("name") or "")), quorum


def groups_of(pod: JSON) -> list[GroupKey]:
    """The groups `pod` names: by spec.schedulingGroup.podGroupName, by the scheduler-plugins
    label, or both."""
    meta = pod.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    out = []
    scheduling_group = (pod.get("spec") or {}).get("schedulingGroup")
    if isinstance(scheduling_group, Mapping) and scheduling_group.get("podGroupName"):
        out.append(GroupKey(namespace, UPSTREAM, str(scheduling_group["podGroupName"])))
    label = (meta.get("labels") or {}).get(COSCHEDULING_LABEL)
    if label:
        out.append(GroupKey(namespace, COSCHEDULING, str(label)))
    return out


def is_bound(pod: JSON) -> bool:
    """spec.nodeName set, not being deleted, not finished."""
    meta = pod.get("metadata") or {}
    return bool(
        (pod.get("spec") or {}).get("nodeName")
        and not meta.get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") not in FINISHED
    )


def count(podgroups: Iterable[JSON], pods: Iterable[JSON]) -> list[GroupCount]:
    """Members and bound members of every group with a quorum, sorted by group."""
    quorums: dict[GroupKey, int] = {}
    for podgroup in podgroups:
        found = quorum_of(podgroup)
        if found is not None:
            quorums[found[0]] = found[1]
    members = dict.fromkeys(quorums, 0)
    bound = dict.fromkeys(quorums, 0)
    for pod in pods:
        for key in groups_of(pod):
            if key in members:
                members[key] += 1
                bound[key] += is_bound(pod)
    return [GroupCount(k, quorums[k], members[k], bound[k]) for k in sorted(quorums)]


def partially_bound(podgroups: Iterable[JSON], pods: Iterable[JSON]) -> list[str]:
    """One message per group with some, but fewer than its quorum of, members bound, naming
    the group and the counts; empty when every gang is all or nothing."""
    return [c.message() for c in count(podgroups, pods) if c.partial]
