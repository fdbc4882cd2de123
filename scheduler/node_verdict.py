"""Why not node X: each Filter plugin's verdict on one node for one pod, now, and the score the
node would get (`berth explain NS/POD --node X`, served as `GET /debug/pods/NS/NAME?node=X`).

The pod's profile runs as a scheduling cycle runs it, through the Framework's own runners
(PreFilter, Filter, PreScore, Score + NormalizeScore + weights), against the live NodeTable, and
nothing changes: no assume, no Reserve, no queue move, no nomination. The pods nominated to the
node are counted on its row inside `NodeTable.trial()` and taken off again before returning, as
the scheduling cycle's own filter does. The runners are those of a copy of the Framework with its
own evaluation counts and a null observer, so the scheduler's plugin metrics count scheduling
only. Synchronous, like a scheduling cycle: no other cycle sees the table in between.

Where it differs from one scheduling cycle, on purpose:

- Every Filter plugin is asked about the node, not only up to the first that rejects it: the
  question is which plugins say no. (Upstream's nearest view is a FitError's node-to-status map,
  which names the first rejecting plugin per node.)
- The score is the node's among every node that passes the filters now, not among the sample a
  cycle takes (`percentageOfNodesToScore`): normalized scores depend on the other candidates,
  and a sample depends on the round-robin start.

Shape of `node_verdict(...)` (JSON-able; `explain.render_node` renders it):

    {"node": str,
     "pre_filter": {"plugin": str, "reason": str} | None,  # rejected before any Filter ran
     "filters": [{"plugin": str,
                  "verdict": "pass" | "fail" | "skip",     # skip: PreFilter said nothing to do
                  "reasons": [str, ...],                   # upstream's reason strings
                  "unresolvable": bool,                    # preemption cannot help
                  "with_nominated": bool}],                # fails only with nominated pods
     "nominated": [ns/name, ...],                          # counted on the node (priority >=)
     "feasible": bool,
     "score": {"total": int, "plugins": {name: 0..100}, "weights": {name: int},
               "rank": int, "feasible_nodes": int, "best": {"node": str, "total": int}}
              | {"error": str} | None}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from scheduler.framework import (
    NARROWED_OUT,
    CycleState,
    Diagnosis,
    FilterPlugin,
    PluginError,
)
from scheduler.model import PodInfo
from scheduler.nominator import Nominator
from scheduler.runtime import Framework, NullObserver
from scheduler.snapshot import NodeTable

JSON = dict[str, Any]


def node_verdict(
    profile: Framework, pod: PodInfo, table: NodeTable, node: str, nominator: Nominator
) -> JSON:
    """The verdict of `profile`'s plugins on `node` for `pod` (shape in the module docstring).

    Raises KeyError when the table has no such node (the caller says why: unknown, or left out
    by berth's nodeSelector). A plugin that cannot decide (PluginError) makes the verdict carry
    its message as the failing plugin's reason, as the cycle would report it."""
    row = table.row_of[node]
    quiet = dataclasses.replace(profile, observer=NullObserver(), evaluations={})
    state = CycleState()
    out: JSON = {"node": node, "pre_filter": None, "filters": [], "nominated": [], "score": None}
    status = quiet.run_pre_filter(state, pod, table)
    if status is not None:
        out["pre_filter"] = {"plugin": status.plugin, "reason": status.message}
        out["feasible"] = False
        return out
    rows = np.asarray([row], dtype=np.int64)
    narrowed = state.node_mask(table, rows)
    out_of_result = narrowed is not None and not bool(narrowed[0])
    nominated = nominator.counted_against(pod, table.row_of).get(row, [])
    out["nominated"] = [p.key for p in nominated]
    verdicts = []
    for plugin in quiet.filter:
        if plugin.name in state.skip_filter:
            verdicts.append(_entry(plugin.name, "skip"))
            continue
        if out_of_result and plugin.name in state.narrowed_by:
            # PreFilterResult left the node out: the cycle never filters it, and counts it as
            # UnschedulableAndUnresolvable under the narrowing plugins (Diagnosis.narrowed_out).
            message = NARROWED_OUT.format(" ".join(sorted(state.narrowed_by)))
            verdicts.append(_entry(plugin.name, "fail", [message], unresolvable=True))
            continue
        verdict = _one(quiet, plugin, state, pod, table, rows)
        if verdict["verdict"] == "pass" and nominated:
            with table.trial():
                placed = [(row, p) for p in nominated]
                table.add_pods(placed)
                try:
                    verdict = _one(quiet, plugin, state, pod, table, rows)
                finally:
                    table.remove_pods(placed)
            verdict["with_nominated"] = verdict["verdict"] == "fail"
        verdicts.append(verdict)
    out["filters"] = verdicts
    out["feasible"] = not out_of_result and all(v["verdict"] != "fail" for v in verdicts)
    if out["feasible"]:
        out["score"] = _score(quiet, state, pod, table, row)
    return out


def _entry(
    plugin: str, verdict: str, reasons: Sequence[str] = (), *, unresolvable: bool = False
) -> JSON:
    return {
        "plugin": plugin,
        "verdict": verdict,
        "reasons": list(reasons),
        "unresolvable": unresolvable,
        "with_nominated": False,
    }


def _one(
    profile: Framework,
    plugin: FilterPlugin,
    state: CycleState,
    pod: PodInfo,
    table: NodeTable,
    rows: Any,
) -> JSON:
    """One Filter plugin on one row, through the runtime's runner (a Framework of that one
    plugin), its reasons taken from the Diagnosis the runner fills."""
    alone = dataclasses.replace(profile, filter=[plugin])
    seen = Diagnosis(total_nodes=1)
    try:
        passed = alone.run_filters(state, pod, table, rows, seen)
    except PluginError as err:
        return _entry(plugin.name, "fail", [err.status.message], unresolvable=False)
    if passed.size:
        return _entry(plugin.name, "pass")
    reasons = sorted((seen.by_plugin.get(plugin.name) or {}).keys())
    return _entry(plugin.name, "fail", reasons, unresolvable=bool(seen.unresolvable_rows))


def _score(profile: Framework, state: CycleState, pod: PodInfo, table: NodeTable, row: int) -> JSON:
    """The node's normalized scores and weighted total among every node that passes the
    filters now (nominated pods not counted on the others), its rank there, and the best."""
    order = table.order()
    narrowed = state.node_mask(table, order)
    candidates = order if narrowed is None else order[narrowed]
    try:
        feasible = profile.run_filters(state, pod, table, candidates, None)
    except PluginError as err:
        return {"error": err.status.message}
    if row not in feasible:
        feasible = np.append(feasible, row)  # feasible here with its own nominated-pod check
    status = profile.run_pre_score(state, pod, table, feasible)
    if status is not None:  # an error: SKIP only turns that plugin's Score off
        return {"error": status.message}
    totals, parts = profile.run_scores(state, pod, table, feasible)
    at = int(np.flatnonzero(feasible == row)[0])
    best = int(np.argmax(totals))
    return {
        "total": int(totals[at]),
        "plugins": {name: int(scores[at]) for name, scores in parts.items()},
        "weights": {
            plugin.name: weight for plugin, weight in profile.score if plugin.name in parts
        },
        "rank": 1 + int((totals > totals[at]).sum()),
        "feasible_nodes": int(feasible.size),
        "best": {"node": table.node(int(feasible[best])).name, "total": int(totals[best])},
    }
