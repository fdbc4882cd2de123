"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods that tolerate
the node.kubernetes.io/unschedulable:NoSchedule taint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler.framework import CycleState, FilterResult, Handle
from scheduler.model import PodInfo, Taint
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"
_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


class NodeUnschedulable:
    name = NAME
    row_local = True  # Filter/Score of a node depend on the pod and that node only

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        if any(t.tolerates(_TAINT) for t in pod.tolerations):
            return FilterResult.all_pass(rows.size)
        mask = ~table.unschedulable[rows]
        return FilterResult.reject(np.asarray(mask), REASON, resolvable=False)


def new(args: Mapping[str, Any], handle: Handle) -> NodeUnschedulable:
    return NodeUnschedulable()
