"""Helpers for the pure unit tests: a NodeTable from builder JSON, and plugin runs reported
per node name so a test compares whole dicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from scheduler.framework import Code, CycleState
from scheduler.model import compile_node, compile_pod
from scheduler.snapshot import NodeTable, Rows

JSON = dict[str, Any]


def build_table(nodes: Iterable[JSON], pods: Iterable[JSON] = (), capacity: int = 256) -> NodeTable:
    """Nodes in the given order; each pod is placed on its spec.nodeName."""
    table = NodeTable(capacity)
    for node in nodes:
        table.upsert_node(compile_node(node))
    for raw in pods:
        pod = compile_pod(raw)
        table.add_pod(table.row_of[pod.node_name], pod)
    return table


def rows(table: NodeTable, names: Iterable[str] | None = None) -> Rows:
    """Rows of `names` (default: every node, in the order they were added)."""
    names = list(table.row_of) if names is None else list(names)
    return np.asarray([table.row_of[n] for n in names], dtype=np.int64)


def filter_reasons(plugin: Any, pod_json: JSON, table: NodeTable) -> dict[str, list[str]]:
    """Run PreFilter (if any) and Filter over every node: node -> its rejection reasons
    ([] = feasible). A SKIP from PreFilter means every node passes, as in the framework."""
    pod = compile_pod(pod_json)
    state = CycleState()
    all_rows = rows(table)
    names = list(table.row_of)
    if hasattr(plugin, "pre_filter"):
        status = plugin.pre_filter(state, pod, table)
        if status is not None and status.code is Code.SKIP:
            return {n: [] for n in names}
        assert status is None, status
    result = plugin.filter(state, pod, table, all_rows)
    out: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        reasons = [r.message for r in result.reasons if r.rejected[i]]
        assert bool(result.mask[i]) == (not reasons), (name, reasons)
        out[name] = reasons
    return out


def unresolvable(plugin: Any, pod_json: JSON, table: NodeTable) -> dict[str, bool]:
    """Per rejected node: is any of its reasons unresolvable (preemption cannot help)?"""
    pod = compile_pod(pod_json)
    state = CycleState()
    if hasattr(plugin, "pre_filter"):
        plugin.pre_filter(state, pod, table)
    result = plugin.filter(state, pod, table, rows(table))
    return {
        name: any(not r.resolvable for r in result.reasons if r.rejected[i])
        for i, name in enumerate(table.row_of)
        if not result.mask[i]
    }


def scores(plugin: Any, pod_json: JSON, table: NodeTable) -> dict[str, int] | None:
    """PreScore (if any), Score and Normalize over every node: node -> final score.
    None when PreScore says SKIP."""
    pod = compile_pod(pod_json)
    state = CycleState()
    all_rows = rows(table)
    if hasattr(plugin, "pre_score"):
        status = plugin.pre_score(state, pod, table, all_rows)
        if status is not None and status.code is Code.SKIP:
            return None
        assert status is None, status
    raw = plugin.score(state, pod, table, all_rows)
    final = plugin.normalize(raw)
    return {name: int(final[i]) for i, name in enumerate(table.row_of)}
