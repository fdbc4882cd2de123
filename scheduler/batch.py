"""Equivalence batching: Filter and Score results kept per class of identical pods.

Pods with the same scheduling-relevant spec (model.PodInfo.class_key) get the same Filter
verdict and the same raw Score on a node in the same state. So for a class, berth keeps, for
every row of the NodeTable, whether it is feasible and each Score plugin's raw score, together
with the row generations they were computed at. The next pod of the class recomputes only the
rows whose generation moved (typically the one node the previous pod landed on), then picks its
sampling window and normalizes scores over that window exactly as the one-by-one path does, so
the placement is the same as scheduling the pods one at a time.

Only pods for which every Filter/Score plugin is row-local take this path
(Framework.batchable(pod)); the others are scheduled one at a time. Plugins are called
through the runtime (runtime.Framework), exactly as on the one-pod path.

A plugin whose Filter is row-local for the pod but whose Score is not (PodTopologySpread with
ScheduleAnyway constraints: per-domain counts, weights over the scored nodes) is
window-scored (Framework.window_scored(pod)): no per-row scores are kept for it; its PreScore
and Score run for each pod over that pod's window, as on the one-pod path, and keep their own
incremental counts so that costs little.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler.framework import CycleState, Status
from scheduler.model import PodInfo
from scheduler.runtime import Framework
from scheduler.snapshot import Mask, NodeTable, Rows

MAX_CLASSES = 32


@dataclass
class ClassState:
    """Per-row Filter/Score results of one equivalence class."""

    structure: int
    seen: npt.NDArray[np.int64]  # row generations the results below were computed at
    feasible: Mask  # per row
    raw: list[npt.NDArray[np.int64]]  # per score plugin (profile order), per row
    state: CycleState
    scored: set[str] = field(default_factory=set)  # score plugins not skipped by PreScore
    # Plugins scored per pod over its window (Framework.window_scored): no columns kept.
    windowed: frozenset[str] = frozenset()
    # The table's change journal (NodeTable.cursor) when every row changed before it was
    # last brought up to date: only rows changed since can be stale.
    cursor: int = 0
    # Live rows that are not feasible: none, and the window is a slice of the order.
    infeasible: int = 0


class EquivalenceCache:
    def __init__(self, max_classes: int = MAX_CLASSES) -> None:
        self._classes: OrderedDict[tuple[Any, ...], ClassState] = OrderedDict()
        self._max = max_classes
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._classes.clear()

    def forget(self, key: tuple[Any, ...]) -> None:
        self._classes.pop(key, None)

    def lookup(
        self,
        profile: Framework,
        pod: PodInfo,
        table: NodeTable,
        windowed: frozenset[str] = frozenset(),
    ) -> ClassState | Status | None:
        """Up-to-date per-row results for the pod's class, `windowed` the plugins scored per
        window for this pod (Framework.window_scored). Returns a PreFilter Status when the
        pod is rejected before filtering (the caller takes the slow path to explain it), and
        None when its PreFilter narrowed the nodes (the slow path filters only those)."""
        key = (profile.scheduler_name, pod.class_key)
        cached = self._classes.get(key)
        # Which plugins are window-scored can change within a class (a Service now selects
        # the pods): the kept columns then do not fit, start over.
        if cached is None or cached.structure != table.structure or cached.windowed != windowed:
            self.misses += 1
            fresh = _compute(profile, pod, table, windowed)
            if isinstance(fresh, ClassState):
                self._classes[key] = fresh
                if len(self._classes) > self._max:
                    self._classes.popitem(last=False)
            return fresh
        self.hits += 1
        self._classes.move_to_end(key)
        return cached


def _compute(
    profile: Framework, pod: PodInfo, table: NodeTable, windowed: frozenset[str]
) -> ClassState | Status | None:
    state = CycleState()
    status = profile.run_pre_filter(state, pod, table)
    if status is not None:
        return status
    if state.node_names is not None:
        # PreFilter narrowed the nodes (a pod pinned by metadata.name, like a DaemonSet's):
        # the one-pod path filters just those, and such pods rarely share a class.
        return None
    size = table.generation.size
    rows = table.live_rows()
    feasible = np.zeros(size, dtype=np.bool_)
    feasible[rows] = profile.filter_mask(state, pod, table, rows)
    passing = rows[feasible[rows]]
    pre_score = profile.run_pre_score(state, pod, table, passing, exclude=windowed)
    if pre_score is not None:
        return pre_score
    raw = []
    for column_scores in profile.raw_scores(state, pod, table, passing, exclude=windowed):
        column = np.zeros(size, dtype=np.int64)
        if column_scores is not None and passing.size:
            column[passing] = column_scores
        raw.append(column)
    scored = {p.name for p, _ in profile.score} - state.skip_score - windowed
    return ClassState(
        table.structure,
        table.generation.copy(),
        feasible,
        raw,
        state,
        scored,
        windowed,
        cursor=table.cursor(),
        infeasible=rows.size - passing.size,
    )


def _refresh(
    cached: ClassState, profile: Framework, pod: PodInfo, table: NodeTable, rows: Rows
) -> None:
    """Recompute Filter and raw Scores of `rows` (rows whose generation moved)."""
    cached.seen[rows] = table.generation[rows]
    ok = profile.filter_mask(cached.state, pod, table, rows)
    cached.infeasible += int(np.count_nonzero(cached.feasible[rows])) - int(np.count_nonzero(ok))
    cached.feasible[rows] = ok
    passing = rows[ok]
    if passing.size == 0:
        return
    fresh = profile.raw_scores(cached.state, pod, table, passing, exclude=cached.windowed)
    for column, scores in zip(cached.raw, fresh, strict=True):
        if scores is not None:
            column[passing] = scores


def window(
    cached: ClassState,
    profile: Framework,
    pod: PodInfo,
    table: NodeTable,
    order: Rows,
    start: int,
    wanted: int,
) -> tuple[Rows, int]:
    """The first `wanted` feasible rows in `order` rotated to `start`, and how many rows of
    the order were examined to find them (upstream's processed-nodes count).

    Rows that changed since the class last looked are recomputed only once one of them falls
    inside the examined prefix: with the round-robin start, the node the previous pod landed on
    is usually outside the next window, so recomputations batch up and run many rows at once.
    """
    rows, processed = _feasible_window(cached, order, start, wanted)
    # Only rows in the table's change journal since the class was last brought up to date
    # can be stale: comparing every row's generation costs a millisecond per pod at a
    # million nodes.
    now = table.cursor()
    changed = table.changed_since(cached.cursor)
    if changed is None:  # the journal was trimmed past it
        stale = np.flatnonzero(table.generation != cached.seen)
    else:
        stale = changed[table.generation[changed] != cached.seen[changed]]
    if stale.size == 0:
        cached.cursor = now
        return rows, processed
    offsets = (table.position()[stale] - start) % order.size
    if not (offsets < processed).any():
        return rows, processed
    # Refresh every changed row at once, not just those in the window: one plugin call
    # per few pods instead of one per pod (a call's fixed cost dwarfs a row's work).
    # Then no row of the order is stale (a row that left the table left the order).
    _refresh(cached, profile, pod, table, stale[table.alive[stale]])
    cached.cursor = now
    return _feasible_window(cached, order, start, wanted)


def _feasible_window(cached: ClassState, order: Rows, start: int, wanted: int) -> tuple[Rows, int]:
    """_first_feasible, or where every row is feasible the next `wanted` rows of the order
    (a copy: an attempt keeps its rows for explain, and a view would keep the whole order
    alive with them)."""
    if cached.infeasible == 0:
        size = min(wanted, order.size)
        return np.array(_rotated(order, start, size)), size
    return _first_feasible(order, cached.feasible, start, wanted)


def _first_feasible(order: Rows, feasible: Mask, start: int, wanted: int) -> tuple[Rows, int]:
    """Walk `order` from `start` (wrapping) until `wanted` feasible rows are seen: one chunk
    first (enough where most rows are feasible), then the rest of the order in one go
    (where few are: one numpy pass instead of a chunk at a time)."""
    total = order.size
    first = min(max(2 * wanted, 1024), total)
    rows = _rotated(order, start, first)
    hits = np.flatnonzero(feasible[rows])
    if hits.size >= wanted:
        return rows[hits[:wanted]], int(hits[wanted - 1]) + 1
    if first == total:
        return rows[hits], total
    rest = _rotated(order, (start + first) % total, total - first)
    more = np.flatnonzero(feasible[rest])
    need = wanted - hits.size
    if more.size >= need:
        return np.concatenate((rows[hits], rest[more[:need]])), first + int(more[need - 1]) + 1
    return np.concatenate((rows[hits], rest[more])), total


def _rotated(order: Rows, begin: int, size: int) -> Rows:
    """`size` rows of `order` from `begin`, wrapping around its end."""
    end = begin + size
    if end <= order.size:
        return order[begin:end]
    return np.concatenate((order[begin:], order[: end - order.size]))


def window_scores(
    profile: Framework, cached: ClassState, pod: PodInfo, table: NodeTable, rows: Rows
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]]] | Status:
    """Normalized, weighted scores over the window, as Framework.run_scores would give
    after PreScore over the same rows; a window-scored plugin's PreScore failure is returned
    (the caller then takes the one-pod path, which reports it)."""
    per_window: dict[str, npt.NDArray[np.int64] | None] = {}
    if cached.windowed:
        ran = profile.window_raw_scores(cached.state, pod, table, rows, cached.windowed)
        if isinstance(ran, Status):
            return ran
        per_window = ran
    window_raw = [
        per_window[plugin.name]
        if plugin.name in per_window
        else column[rows]
        if plugin.name in cached.scored
        else None
        for (plugin, _), column in zip(profile.score, cached.raw, strict=True)
    ]
    return profile.combine(window_raw, rows.size)
