"""PodGroups: which pods are placed together, all or nothing (upstream v1.37's PodGroupManager).

Two APIs name a group:
- upstream's `scheduling.k8s.io/v1beta1` PodGroup (GenericWorkload, beta in v1.37, off by
  default): `spec.schedulingPolicy` is `basic: {}` or `gang: {minCount}`, the optional
  `spec.schedulingConstraints.topology[0].key` (alpha TopologyAwareWorkloadScheduling) keeps
  the group in one domain; pods join with `spec.schedulingGroup.podGroupName`.
- scheduler-plugins' `scheduling.x-k8s.io/v1alpha1` PodGroup CRD (coscheduling): `minMember`
  is the gang's minCount, `scheduleTimeoutSeconds` the Permit wait; pods join with the
  `scheduling.x-k8s.io/pod-group` label. Served where the cluster installed the CRD.

berth reads the annotation `berth.dev/topology-key` on either kind when the upstream field is
absent (it is dropped by API servers without the alpha gate, and the CRD has no such field).

The store is a pure holder the event handlers fill (groups from their informers, members from
the pod informer); plugins and the group cycle read it through the Handle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.model import (
    COSCHEDULING_POD_GROUPS,
    InvalidObject,
    PodInfo,
)

JSON = dict[str, Any]

GroupKey = tuple[str, str, str]
"""(API group, namespace, name): the two APIs' groups never share a key."""

TOPOLOGY_ANNOTATION = "berth.dev/topology-key"
PERMIT_TIMEOUT_SECONDS = 300.0  # upstream's permitTimeoutDuration (gangscheduling.go)
INITIALLY_SCHEDULED = "PodGroupInitiallyScheduled"

GANG = "gang"
BASIC = "basic"


@dataclass(frozen=True, slots=True)
class PodGroup:
    """The scheduling-relevant parts of one PodGroup version. `min_count` is 1 for a basic
    group; `priority` is upstream's spec.priority (None on the CRD and when unset)."""

    key: GroupKey
    uid: str
    generation: int
    policy: str  # GANG or BASIC
    min_count: int
    topology_key: str = ""
    priority: int | None = None
    permit_timeout: float = PERMIT_TIMEOUT_SECONDS
    initially_scheduled: bool = False  # the PodGroupInitiallyScheduled condition is True
    # spec.disruptionMode: "all" (preempting one member preempts every member) or "single"
    disruption_mode: str = "single"
    conditions: tuple[JSON, ...] = ()

    @property
    def api(self) -> str:
        return self.key[0]

    @property
    def namespace(self) -> str:
        return self.key[1]

    @property
    def name(self) -> str:
        return self.key[2]

    @property
    def is_gang(self) -> bool:
        return self.policy == GANG


def _int_field(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidObject(f"{path}: must be an integer >= {minimum}, got {value!r}")
    return value


def compile_pod_group(api: str, obj: Mapping[str, Any]) -> PodGroup:
    """Compile a PodGroup of either API; raises InvalidObject naming the bad field."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    key = (api, meta.get("namespace") or "default", meta.get("name") or "")
    annotations = meta.get("annotations") or {}
    topology = str(annotations.get(TOPOLOGY_ANNOTATION) or "")
    conditions = tuple(c for c in status.get("conditions") or () if isinstance(c, dict))
    initially = any(
        c.get("type") == INITIALLY_SCHEDULED and c.get("status") == "True" for c in conditions
    )
    common: JSON = {
        "uid": meta.get("uid") or "",
        "generation": meta.get("generation") if isinstance(meta.get("generation"), int) else 0,
        "initially_scheduled": initially,
        "conditions": conditions,
    }
    if api == COSCHEDULING_POD_GROUPS:
        # scheduler-plugins' own CRD has no minimum on either field: a minMember below 1 asks
        # for no quorum, a timeout below 1 second means the default, as coscheduling reads them.
        min_member = max(_int_field(spec.get("minMember", 1), "spec.minMember", -(2**31)), 1)
        timeout = spec.get("scheduleTimeoutSeconds")
        seconds = PERMIT_TIMEOUT_SECONDS
        if timeout is not None and _int_field(timeout, "spec.scheduleTimeoutSeconds", -(2**31)) > 0:
            seconds = float(timeout)
        return PodGroup(
            key, policy=GANG, min_count=min_member, topology_key=topology,
            permit_timeout=seconds, **common,
        )  # fmt: skip
    policy = spec.get("schedulingPolicy") or {}
    if not isinstance(policy, dict):
        raise InvalidObject("spec.schedulingPolicy: must be an object")
    constraints = spec.get("schedulingConstraints") or {}
    for term in (constraints.get("topology") or [])[:1]:
        topology = str((term or {}).get("key") or "") or topology
    priority = spec.get("priority")
    priority = priority if isinstance(priority, int) and not isinstance(priority, bool) else None
    disruption = spec.get("disruptionMode") or {}
    common["disruption_mode"] = (
        "all" if isinstance(disruption, dict) and "all" in disruption else "single"
    )
    if "gang" in policy:
        gang = policy.get("gang") or {}
        minimum = _int_field(gang.get("minCount"), "spec.schedulingPolicy.gang.minCount", 1)
        return PodGroup(
            key, policy=GANG, min_count=minimum, topology_key=topology, priority=priority,
            **common,
        )  # fmt: skip
    return PodGroup(
        key, policy=BASIC, min_count=1, topology_key=topology, priority=priority, **common
    )


def group_key(pod: PodInfo) -> GroupKey | None:
    if pod.pod_group is None:
        return None
    api, name = pod.pod_group
    return (api, pod.namespace, name)


@dataclass
class PodGroupStore:
    """PodGroups by key, and the pods of each group the scheduler knows (pending for one of
    its profiles, assumed, or bound), kept by the event handlers. `placed(uid)` says whether a
    pod is on a node in the scheduler's cache (assumed or bound); the owner wires it."""

    groups: dict[GroupKey, PodGroup] = field(default_factory=dict)
    members: dict[GroupKey, dict[str, PodInfo]] = field(default_factory=dict)
    placed: Callable[[str], bool] = lambda uid: False
    # The APIs whose PodGroups are watched: a pod naming a group of another API is scheduled
    # on its own (the API server drops spec.schedulingGroup where GenericWorkload is off; a
    # scheduler-plugins label means nothing where the CRD is not installed).
    served: set[str] = field(default_factory=set)
    clock: Callable[[], float] = time.monotonic
    # When each gang first had minCount members known (its quorum), for the quorum-to-bound
    # latency; dropped with the group.
    quorum_at: dict[GroupKey, float] = field(default_factory=dict)
    # Groups whose last version could not be compiled: key -> why (PreEnqueue says so).
    invalid: dict[GroupKey, str] = field(default_factory=dict)
    # Groups whose quorum the running group cycle has just met: their members' Permit need
    # not count the members again, one count per member (measured: 1,000 members took 3.7 s).
    quorum_met: set[GroupKey] = field(default_factory=set)
    _member_of: dict[str, GroupKey] = field(default_factory=dict)

    # --- the informers' side -------------------------------------------------------------

    def apply(self, group: PodGroup | None, key: GroupKey) -> PodGroup | None:
        """Store (or, with None, delete) the group at `key`; return the previous version."""
        old = self.groups.get(key)
        self.invalid.pop(key, None)
        if group is None:
            self.groups.pop(key, None)
            self.quorum_at.pop(key, None)
        else:
            self.groups[key] = group
            self._check_quorum(key)
        return old

    def _check_quorum(self, key: GroupKey) -> None:
        group = self.groups.get(key)
        if (
            group is not None
            and key not in self.quorum_at
            and self.all_count(key) >= group.min_count
        ):
            self.quorum_at[key] = self.clock()

    def track(self, pod: PodInfo) -> None:
        """A pod version seen by the pod informer (pending or bound)."""
        key = group_key(pod)
        before = self._member_of.get(pod.uid)
        if before is not None and before != key:
            self.untrack(pod.uid)
        if key is None:
            return
        self.members.setdefault(key, {})[pod.uid] = pod
        self._member_of[pod.uid] = key
        self._check_quorum(key)

    def untrack(self, uid: str) -> None:
        """The pod is gone (deleted, or terminal)."""
        key = self._member_of.pop(uid, None)
        if key is None:
            return
        members = self.members.get(key)
        if members is not None:
            members.pop(uid, None)
            if not members:
                del self.members[key]

    # --- readers -------------------------------------------------------------------------

    def group_of(self, pod: PodInfo) -> PodGroup | None:
        key = group_key(pod)
        return self.groups.get(key) if key is not None else None

    def pods(self, key: GroupKey) -> Iterator[PodInfo]:
        return iter(list((self.members.get(key) or {}).values()))

    def all_count(self, key: GroupKey) -> int:
        """Upstream's AllPodsCount: every member the scheduler knows."""
        return len(self.members.get(key) or ())

    def is_scheduled(self, pod: PodInfo) -> bool:
        return bool(pod.node_name) or self.placed(pod.uid)

    def scheduled_count(self, key: GroupKey) -> int:
        """Upstream's ScheduledPodsCount: members assumed or bound."""
        return sum(1 for pod in (self.members.get(key) or {}).values() if self.is_scheduled(pod))

    def unscheduled(self, key: GroupKey) -> list[PodInfo]:
        return [p for p in (self.members.get(key) or {}).values() if not self.is_scheduled(p)]


def quorum_message(min_count: int, scheduled: int, remaining: int) -> str | None:
    """Upstream's GangScheduling.PlacementFeasible as a message, or None when the quorum is
    met: "cannot be satisfied" once even the remaining pods cannot reach it."""
    progress = f"{scheduled} scheduled, {remaining} remaining"
    if remaining + scheduled < min_count:
        return f"minCount ({min_count}) cannot be satisfied: {progress}"
    if scheduled < min_count:
        return f"minCount ({min_count}) is not yet satisfied: {progress}"
    return None


def placement_message(placements: int, first: str) -> str:
    """Upstream's message when no topology domain holds the group."""
    return f"0/{placements} placements are available, first placement status: {first}"
