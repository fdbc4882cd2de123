"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods that tolerate
the node.kubernetes.io/unschedulable:NoSchedule taint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler.framework import (
    NODE,
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
)
from scheduler.model import NodeInfo, PodInfo, Taint
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"
_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


class NodeUnschedulable:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """A node added schedulable or uncordoned; the pod itself gaining a toleration."""
        return [
            ClusterEventWithHint(
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT),
                self.is_schedulable_after_node_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_TOLERATION),
                self.is_schedulable_after_pod_toleration_change,
            ),
        ]

    @staticmethod
    def is_schedulable_after_node_change(
        pod: PodInfo, old: NodeInfo | None, new: NodeInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterNodeChange: a node added schedulable, or updated from
        unschedulable to schedulable."""
        if not new.unschedulable and (old is None or old.unschedulable):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_pod_toleration_change(
        pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterTargetPodTolerationChange: the pod now tolerates the
        unschedulable taint (tolerations can only be added, so the old ones did not)."""
        if any(t.tolerates(_TAINT) for t in new.tolerations):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        if any(t.tolerates(_TAINT) for t in pod.tolerations):
            return FilterResult.all_pass(rows.size)
        mask = ~table.unschedulable[rows]
        return FilterResult.reject(np.asarray(mask), REASON, resolvable=False)


def new(args: Mapping[str, Any], handle: Handle) -> NodeUnschedulable:
    return NodeUnschedulable()
