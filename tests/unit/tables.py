"""Helpers for the pure unit tests: a NodeTable from builder JSON, plugin runs reported per
node name so a test compares whole dicts, and a plugin's registered events by upstream label."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from scheduler.framework import (
    ActionType,
    Code,
    CycleState,
    EnqueueExtensions,
    QueueingHint,
    QueueingHintFn,
)
from scheduler.model import compile_node, compile_pod
from scheduler.snapshot import NodeTable, Rows
from tests.builders import NodeBuilder, PodBuilder

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


_SINGLE = (ActionType.ADD, ActionType.DELETE, *(a for a in ActionType if a & ActionType.UPDATE))


def _labels(resource: str, action: ActionType) -> list[str]:
    """Upstream's labels of one registered event, one per action it covers; a whole Update is
    "Update", as upstream registers it."""
    names = []
    for single in _SINGLE:
        if single & ActionType.UPDATE and action & ActionType.UPDATE == ActionType.UPDATE:
            continue
        if action & single:
            names.append(resource + single.upstream)
    if action & ActionType.UPDATE == ActionType.UPDATE:
        names.append(resource + "Update")
    return names


def registered(plugin: EnqueueExtensions) -> list[tuple[str, bool]]:
    """plugin.events_to_register() as (upstream label, has a hint), one per action: a
    registered Node/Add|UpdateNodeLabel with a hint is [("NodeAdd", True),
    ("NodeUpdateNodeLabel", True)]."""
    return [
        (label, r.hint is not None)
        for r in plugin.events_to_register()
        for label in _labels(r.event.resource, r.event.action)
    ]


def hint_for(plugin: EnqueueExtensions, label: str) -> QueueingHintFn:
    """The hint the plugin registered with the event of upstream label `label`."""
    (hint,) = [
        r.hint
        for r in plugin.events_to_register()
        if label in _labels(r.event.resource, r.event.action)
    ]
    assert hint is not None, label
    return hint


def _compiled(obj: Any) -> Any:
    if isinstance(obj, PodBuilder):
        return compile_pod(obj.obj_())
    if isinstance(obj, NodeBuilder):
        return compile_node(obj.obj_())
    return obj


def run_hint(
    plugin: EnqueueExtensions, label: str, pod: PodBuilder, old: Any, new: Any
) -> QueueingHint:
    """The plugin's hint for the event `label` on (pod, old, new); pod and node builders
    are compiled first (old None: an Add; new None: a Delete), other objects passed as they
    are."""
    return hint_for(plugin, label)(_compiled(pod), _compiled(old), _compiled(new))
