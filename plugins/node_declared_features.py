"""NodeDeclaredFeatures: Filter rejects nodes that do not declare every feature the pod needs.

A kubelet lists the features it supports in status.declaredFeatures; a pod that uses one
(a restart rule that restarts all containers, host network in a user namespace, bind mount
options) needs a node that declares it. Which pod fields need which feature is the registry in
scheduler/declared_features.py (upstream's component-helpers nodedeclaredfeatures). Both sides
are compiled once per object version into feature sets (bitmasks): PreFilter skips the pods
that need nothing, nearly all of them, and Filter is one vectorized test over the rows.

Upstream's PreFilter infers the requirements and keeps them in the cycle state, and its Filter
fails without that state. berth's Filter reads them off the compiled pod, so it needs no state
and gives the same answer whether or not PreFilter ran.

Events (upstream's EventsToRegister): a node added, a node update that changes its
declaredFeatures, and an update of the pod that changes what it needs, each with upstream's
hint.

Not mirrored: with InPlacePodVerticalScalingSchedulerPreemption (alpha, off by default in
v1.37) upstream also skips pods whose in-place resize is deferred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import (
    NODE,
    SKIP,
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
    Status,
)
from scheduler.model import NodeInfo, PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeDeclaredFeatures"
ERR_REASON_UNSATISFIED_REQUIREMENTS = "node(s) didn't match Pod's required features"


class NodeDeclaredFeatures:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """A node added or declaring other features; the pod itself needing other features."""
        return [
            ClusterEventWithHint(
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_DECLARED_FEATURE),
                self.is_schedulable_after_node_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE),
                self.is_schedulable_after_pod_update,
            ),
        ]

    @staticmethod
    def is_schedulable_after_node_change(
        pod: PodInfo, old: NodeInfo | None, new: NodeInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterNodeChange: a node added, or its declared features
        changed."""
        if old is not None and old.declared_features == new.declared_features:
            return QueueingHint.SKIP
        return QueueingHint.QUEUE

    @staticmethod
    def is_schedulable_after_pod_update(pod: PodInfo, old: PodInfo, new: PodInfo) -> QueueingHint:
        """Upstream's isSchedulableAfterTargetPodUpdate: the features the pod needs changed."""
        if old.required_features == new.required_features:
            return QueueingHint.SKIP
        return QueueingHint.QUEUE

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        return None if pod.required_features else SKIP

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        needed = pod.required_features
        if not needed:
            return FilterResult.all_pass(rows.size)
        declared = table.declared_features[rows]
        # Only a node missing a feature can fix that (its kubelet), never preemption.
        return FilterResult.reject(
            (declared & needed) == needed, ERR_REASON_UNSATISFIED_REQUIREMENTS, resolvable=False
        )


def new(args: Mapping[str, Any], handle: Handle) -> NodeDeclaredFeatures:
    return NodeDeclaredFeatures()
