"""NodeName: a pod that names its node (spec.nodeName) fits only that node.

Since v1.37 PreFilter says so too (upstream's PreFilterResult, not behind a gate): only the
named node is filtered, and the others count as "node(s) didn't satisfy plugin(s) [NodeName]",
unresolvable. The scheduler only sees such pods in tests and tools: a pod with spec.nodeName
is already bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import (
    NODE,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    Status,
)
from scheduler.model import PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Only a node added can be the one the pod names. No hint, as upstream: every Node/Add
        is worth a retry (a wrong guess costs one backoff)."""
        return [ClusterEventWithHint(ClusterEvent(NODE, ActionType.ADD))]

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        if pod.node_name:
            state.restrict_nodes(NAME, (pod.node_name,))
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        if not pod.node_name:
            return FilterResult.all_pass(rows.size)
        row = table.row_of.get(pod.node_name, -1)
        return FilterResult.reject(rows == row, REASON, resolvable=False)


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    return NodeName()
