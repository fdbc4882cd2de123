"""NodeName: a pod that names its node (spec.nodeName) fits only that node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import CycleState, FilterResult, Handle
from scheduler.model import PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = NAME
    row_local = True  # Filter/Score of a node depend on the pod and that node only

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        if not pod.node_name:
            return FilterResult.all_pass(rows.size)
        row = table.row_of.get(pod.node_name, -1)
        return FilterResult.reject(rows == row, REASON, resolvable=False)


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    return NodeName()
