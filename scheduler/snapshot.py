"""The columnar node table that plugins read: one row per node, numpy columns per attribute.

Filter and Score plugins work on whole columns (allocatable, requested, interned labels, taint
sets) instead of looping over nodes in Python. Rows are reused after a node is deleted, so a row
index is only meaningful within one scheduling cycle; `generation[row]` moves on every change
to that row (pod added or removed, node updated), which is what equivalence batching checks.

The scheduling cycle never awaits between PreFilter and Reserve, so the live table *is* the
snapshot of that cycle: informer updates are applied between cycles.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler.model import (
    CPU,
    EPHEMERAL,
    MEMORY,
    PODS,
    NodeInfo,
    PodInfo,
    Requirement,
    SelectorTerm,
    Taint,
    requirement_matches,
)

Rows = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
# The deprecated labels upstream still falls back to when the GA ones are missing.
_BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
_BETA_REGION = "failure-domain.beta.kubernetes.io/region"

_BASE_RESOURCES = (CPU, MEMORY, EPHEMERAL, PODS)


class NodeTable:
    """Nodes as rows, with the pods assigned to each (bound or assumed)."""

    def __init__(self, capacity: int = 256) -> None:
        self.resources: list[str] = list(_BASE_RESOURCES)
        self.resource_index: dict[str, int] = {r: i for i, r in enumerate(self.resources)}
        self._cap = capacity
        self.allocatable = np.zeros((capacity, len(self.resources)), dtype=np.int64)
        self.requested = np.zeros((capacity, len(self.resources)), dtype=np.int64)
        # Requests with upstream's non-zero defaults for scoring: columns cpu, memory.
        self.nonzero_requested = np.zeros((capacity, 2), dtype=np.int64)
        self.alive = np.zeros(capacity, dtype=np.bool_)
        self.unschedulable = np.zeros(capacity, dtype=np.bool_)
        self.taint_set = np.zeros(capacity, dtype=np.int32)
        # Each node's known declared features, as a feature set (NodeInfo.feature_set).
        self.declared_features = np.zeros(capacity, dtype=np.int64)
        self.generation = np.zeros(capacity, dtype=np.int64)
        self.nodes: list[NodeInfo | None] = [None] * capacity
        self.pods: list[dict[str, PodInfo]] = [{} for _ in range(capacity)]
        self.row_of: dict[str, int] = {}
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        # Labels: per key an int32 column of interned value ids (-1 = label absent).
        self.label_columns: dict[str, npt.NDArray[np.int32]] = {}
        self.label_values: dict[str, dict[str, int]] = {}
        # Taint sets are interned: rows with the same taints share an id; id 0 = no taints.
        self.taint_sets: list[tuple[Taint, ...]] = [()]
        self._taint_set_ids: dict[tuple[Taint, ...], int] = {(): 0}
        # Upstream's nodeTree: zone key -> rows in the order the nodes joined the zone; the dict
        # keeps zones in the order they first appeared (a zone that empties is forgotten).
        self._zones: dict[str, list[int]] = {}
        self._order: Rows | None = None
        self._position: Rows = np.zeros(0, dtype=np.int64)
        self._clock = 0  # generation counter shared by all rows
        # Rows whose generation moved, in order (changed_since): a per-row cache finds what
        # changed without comparing every row's generation, which at a million rows costs a
        # millisecond per pod. Trimmed to the newest half when it passes _JOURNAL_MAX;
        # `_journal_start` is the cursor of its first entry.
        self._journal: list[int] = []
        self._journal_start = 0
        # Open trials, innermost last: row -> its generation before the trial changed it.
        self._trials: list[dict[int, int]] = []
        # Bumps when rows appear or disappear, or columns are added: per-row caches
        # (equivalence batching) must then start over.
        self.structure = 0
        # Bumps when a node appears, goes, or changes its labels: caches of which rows a
        # node selector matches (VolumeBinding's PV node affinity) start over.
        self.labels_version = 0
        # Pods with inter-pod (anti-)affinity terms on all rows: while there are none, pods
        # without terms of their own cannot be affected by InterPodAffinity.
        self.affinity_pods = 0
        # add_pods' per-pod amounts: uid -> (the PodInfo, _amounts(pod)).
        self._amounts_of: dict[str, tuple[PodInfo, tuple[int, ...]]] = {}
        # upsert_node's allocatable rows: id(dict) -> (the dict, its vector over the columns).
        self._allocatable_of: dict[int, tuple[dict[str, int], npt.NDArray[np.int64]]] = {}

    # --- nodes ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.row_of)

    def node(self, row: int) -> NodeInfo:
        node = self.nodes[row]
        assert node is not None, f"row {row} is free"
        return node

    def upsert_node(self, node: NodeInfo) -> int:
        """Add a node or replace its attributes; the pods on it are kept.

        Cost: a few microseconds and a dozen numpy element writes per node, the informer's
        whole initial list of a million nodes included; a free row is all defaults
        (remove_node clears it), so a new node writes only what differs from them."""
        row = self.row_of.get(node.name)
        previous = None
        if row is None:
            row = self._take_row()
            self.row_of[node.name] = row
            self._zones.setdefault(zone_key(node.labels), []).append(row)
            self._order = None
            self.structure += 1
        else:
            previous = self.nodes[row]
            old_zone, new_zone = zone_key(self.node(row).labels), zone_key(node.labels)
            if old_zone != new_zone:
                # As upstream's nodeTree.updateNode: leave the old zone, join the new one last.
                self._leave_zone(old_zone, row)
                self._zones.setdefault(new_zone, []).append(row)
                self._order = None
        if previous is None or previous.labels != node.labels:
            self.labels_version += 1
            self._set_labels(row, node.labels, clean=previous is None)
        self.nodes[row] = node
        self.alive[row] = True
        if previous is not None or node.unschedulable:
            self.unschedulable[row] = node.unschedulable
        if previous is not None or node.taints:
            self.taint_set[row] = self._intern_taints(node.taints)
        if previous is not None or node.feature_set:
            self.declared_features[row] = node.feature_set
        self.allocatable[row] = self._allocatable_vector(node.allocatable)
        self._touch(row)
        return row

    def remove_node(self, name: str) -> dict[str, PodInfo]:
        """Drop a node's row; returns the pods that were on it."""
        row = self.row_of.pop(name, None)
        if row is None:
            return {}
        pods = self.pods[row]
        self.affinity_pods -= sum(1 for p in pods.values() if p.pod_affinity is not None)
        self._leave_zone(zone_key(self.node(row).labels), row)
        self.pods[row] = {}
        self.nodes[row] = None
        self.alive[row] = False
        self.requested[row] = 0
        self.nonzero_requested[row] = 0
        self.allocatable[row] = 0
        self.declared_features[row] = 0
        self.unschedulable[row] = False
        self.taint_set[row] = 0
        for column in self.label_columns.values():
            column[row] = -1
        self._touch(row)
        self._free.append(row)
        self._order = None
        self.structure += 1
        self.labels_version += 1
        return pods

    # --- pods ----------------------------------------------------------------------------

    def add_pod(self, row: int, pod: PodInfo) -> None:
        if pod.uid in self.pods[row]:
            return
        self.pods[row][pod.uid] = pod
        self._apply(row, pod, +1)
        if pod.pod_affinity is not None:
            self.affinity_pods += 1

    def remove_pod(self, row: int, pod: PodInfo) -> None:
        old = self.pods[row].pop(pod.uid, None)
        if old is not None:
            self._apply(row, old, -1)
            if old.pod_affinity is not None:
                self.affinity_pods -= 1

    def add_pods(self, placed: Sequence[tuple[int, PodInfo]]) -> None:
        """add_pod for each (row, pod), with one numpy update for all of them: counting the
        pods nominated to nodes costs a few hundred of these per scheduling cycle."""
        fresh = [(row, pod) for row, pod in placed if pod.uid not in self.pods[row]]
        for row, pod in fresh:
            self.pods[row][pod.uid] = pod
        self._apply_many(fresh, +1)
        self.affinity_pods += sum(pod.pod_affinity is not None for _, pod in fresh)

    def remove_pods(self, placed: Sequence[tuple[int, PodInfo]]) -> None:
        """remove_pod for each (row, pod), as add_pods."""
        gone = []
        for row, pod in placed:
            old = self.pods[row].pop(pod.uid, None)
            if old is not None:
                gone.append((row, old))
        self._apply_many(gone, -1)
        self.affinity_pods -= sum(pod.pod_affinity is not None for _, pod in gone)

    def request_vector(self, pod: PodInfo) -> npt.NDArray[np.int64]:
        """The pod's requests as a vector over this table's resource columns."""
        columns = {self._resource_column(name): amount for name, amount in pod.requests.items()}
        vec = np.zeros(len(self.resources), dtype=np.int64)
        for column, amount in columns.items():
            vec[column] = amount
        return vec

    def _apply(self, row: int, pod: PodInfo, sign: int) -> None:
        columns = {self._resource_column(name): amount for name, amount in pod.requests.items()}
        requested, nonzero = self.requested, self.nonzero_requested
        for column, amount in columns.items():
            if amount > _HUGE or requested[row, column] > _HUGE:  # could wrap: saturate
                requested[row, column] = _saturated(int(requested[row, column]) + sign * amount)
            else:
                requested[row, column] += sign * amount
        cpu, memory = pod.nonzero_requests
        if cpu > _HUGE or memory > _HUGE or nonzero[row, 0] > _HUGE or nonzero[row, 1] > _HUGE:
            nonzero[row, 0] = _saturated(int(nonzero[row, 0]) + sign * cpu)
            nonzero[row, 1] = _saturated(int(nonzero[row, 1]) + sign * memory)
        else:
            nonzero[row, 0] += sign * cpu
            nonzero[row, 1] += sign * memory
        self._touch(row)

    def _apply_many(self, placed: Sequence[tuple[int, PodInfo]], sign: int) -> None:
        if len(placed) < 8:  # numpy's fixed cost is more than a few pods' own
            for row, pod in placed:
                self._apply(row, pod, sign)
            return
        # One flat run of ints for all pods: numpy builds it fast, unlike many small arrays.
        amounts = [self._amounts(pod) for _, pod in placed]
        width = len(self.resources)
        if any(len(a) != width + 2 for a in amounts):  # a pod brought a new resource column
            amounts = [self._amounts(pod) for _, pod in placed]
        flat = np.fromiter(
            itertools.chain.from_iterable(amounts), dtype=np.int64, count=len(amounts) * (width + 2)
        ).reshape(len(amounts), width + 2)
        if int(flat.max(initial=0)) > _HUGE:
            # Sums near int64 could wrap in numpy: the saturating one-by-one path instead.
            for row, pod in placed:
                self._apply(row, pod, sign)
            return
        if sign < 0:
            flat = -flat
        at = [row for row, _ in placed]
        np.add.at(self.requested, at, flat[:, :width])
        np.add.at(self.nonzero_requested, at, flat[:, width:])
        if self._trials:
            saved = self._trials[-1]
            for row in at:
                if row not in saved:
                    saved[row] = int(self.generation[row])
        self.generation[at] = np.arange(self._clock + 1, self._clock + 1 + len(at))
        self._clock += len(at)
        self._journal.extend(at)
        self._trim_journal()

    def _amounts(self, pod: PodInfo) -> tuple[int, ...]:
        """The pod's request vector over the resource columns, then its non-zero cpu and
        memory: kept per pod version while no column is added, since the nominated pods are
        counted again in every cycle."""
        kept = self._amounts_of.get(pod.uid)
        width = len(self.resources)
        if kept is not None and kept[0] is pod and len(kept[1]) == width + 2:
            return kept[1]
        amounts = (*self.request_vector(pod).tolist(), *pod.nonzero_requests)
        if len(self._amounts_of) >= 50_000:  # mostly pods long gone
            self._amounts_of.clear()
        self._amounts_of[pod.uid] = (pod, amounts)
        return amounts

    # --- queries -------------------------------------------------------------------------

    def live_rows(self) -> Rows:
        return np.flatnonzero(self.alive).astype(np.int64)

    def order(self) -> Rows:
        """All live rows, interleaved across zones as upstream's node tree lists them:
        the first node of each zone, then the second of each zone, and so on."""
        if self._order is None:
            # Row k of zone z goes at (k, z) in (rank in zone, zone) order: one sort instead of
            # a Python loop over every row (a million nodes: 0.1 s instead of 0.5 s).
            zones = [np.asarray(rows, dtype=np.int64) for rows in self._zones.values()]
            rows = np.concatenate(zones) if zones else np.zeros(0, dtype=np.int64)
            rank = np.concatenate([np.arange(z.size) for z in zones]) if zones else rows
            zone = np.repeat(np.arange(len(zones)), [z.size for z in zones]) if zones else rows
            self._order = rows[np.argsort(rank * max(len(zones), 1) + zone, kind="stable")]
            self._position = np.full(self._cap, np.iinfo(np.int64).max // 2, dtype=np.int64)
            self._position[self._order] = np.arange(self._order.size)
        return self._order

    def position(self) -> Rows:
        """Each row's index in order() (free rows: a huge number)."""
        self.order()
        return self._position

    def cursor(self) -> int:
        """Where the change journal is now: changed_since(cursor()) later lists the rows
        changed in between."""
        return self._journal_start + len(self._journal)

    def changed_since(self, cursor: int) -> Rows | None:
        """The rows whose generation moved since `cursor` (from cursor()), each once, sorted;
        None when the journal no longer reaches back that far (then compare `generation`
        with what was seen, row by row). A row may be listed although its generation is
        back where it was (trial), so callers still compare the listed rows' generations.
        Rows added or removed since are listed too (and bump `structure`)."""
        at = cursor - self._journal_start
        if at < 0:
            return None
        return np.unique(np.asarray(self._journal[at:], dtype=np.int64))

    def label_column(self, key: str) -> npt.NDArray[np.int32]:
        column = self.label_columns.get(key)
        if column is None:
            return np.full(self._cap, -1, dtype=np.int32)
        return column

    def value_ids(self, key: str, values: Iterable[str]) -> list[int]:
        known = self.label_values.get(key, {})
        return [known[v] for v in values if v in known]

    def names(self, rows: Iterable[int]) -> list[str]:
        return [self.node(int(r)).name for r in rows]

    # --- internals -----------------------------------------------------------------------

    def _leave_zone(self, zone: str, row: int) -> None:
        rows = self._zones[zone]
        rows.remove(row)
        if not rows:
            del self._zones[zone]

    def touch(self, row: int) -> None:
        """Mark a row changed without changing its columns (e.g. a pod's labels moved)."""
        self._touch(row)

    @contextlib.contextmanager
    def trial(self) -> Iterator[None]:
        """For changes the caller undoes before leaving (a preemption dry run, nominated pods
        counted while filters run): row generations are put back afterwards, so per-row caches
        keyed by generation keep what they computed for the rows as they are again. Safe because
        the clock never goes back: a result computed inside carries a generation no row will
        have again."""
        # Each open trial saves a row's generation when the row first changes inside it, so a
        # trial costs what it touches, not a copy of every row's generation (a preemption dry
        # run opens one per candidate node).
        saved: dict[int, int] = {}
        self._trials.append(saved)
        try:
            yield
        finally:
            self._trials.pop()
            if saved:
                rows = list(saved)
                self.generation[rows] = list(saved.values())
                # A row put back changed again for whoever looked inside the trial.
                self._journal.extend(rows)
                self._trim_journal()
                # An enclosing trial needs nothing from these: the rows are as they were when
                # this one began, which is what it saves if it changes them later.

    def _touch(self, row: int) -> None:
        if self._trials and row not in self._trials[-1]:
            self._trials[-1][row] = int(self.generation[row])
        self._clock += 1
        self.generation[row] = self._clock
        self._journal.append(row)
        if len(self._journal) > _JOURNAL_MAX:
            self._trim_journal()

    def _trim_journal(self) -> None:
        if len(self._journal) > _JOURNAL_MAX:
            drop = len(self._journal) - _JOURNAL_MAX // 2
            del self._journal[:drop]
            self._journal_start += drop

    def _take_row(self) -> int:
        if not self._free:
            self._grow()
        return self._free.pop()

    def _grow(self) -> None:
        old, new = self._cap, self._cap * 2

        def widen(array: Any, fill: Any = 0) -> Any:
            shape = (new, *array.shape[1:])
            out = np.full(shape, fill, dtype=array.dtype)
            out[:old] = array
            return out

        self.allocatable = widen(self.allocatable)
        self.requested = widen(self.requested)
        self.nonzero_requested = widen(self.nonzero_requested)
        self.alive = widen(self.alive, False)
        self.unschedulable = widen(self.unschedulable, False)
        self.taint_set = widen(self.taint_set)
        self.declared_features = widen(self.declared_features)
        self.generation = widen(self.generation)
        self.label_columns = {k: widen(v, -1) for k, v in self.label_columns.items()}
        self.nodes.extend([None] * (new - old))
        self.pods.extend({} for _ in range(new - old))
        self._free.extend(range(new - 1, old - 1, -1))
        self._cap = new
        self.structure += 1

    def _resource_column(self, name: str) -> int:
        index = self.resource_index.get(name)
        if index is None:
            index = len(self.resources)
            self.resources.append(name)
            self.resource_index[name] = index
            pad = np.zeros((self._cap, 1), dtype=np.int64)
            self.allocatable = np.hstack([self.allocatable, pad])
            self.requested = np.hstack([self.requested, pad])
            self.structure += 1
        return index

    def _intern_taints(self, taints: tuple[Taint, ...]) -> int:
        key = taints  # as the node lists them; nodes with the same list share an id
        ident = self._taint_set_ids.get(key)
        if ident is None:
            ident = len(self.taint_sets)
            self.taint_sets.append(key)
            self._taint_set_ids[key] = ident
        return ident

    def _set_labels(self, row: int, labels: dict[str, str], clean: bool = False) -> None:
        """Write the row's label value ids; `clean`: the row has no labels yet (a free row)."""
        columns = self.label_columns
        if not clean:
            for key, old in columns.items():
                if key not in labels:
                    old[row] = -1
        for key, value in labels.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = np.full(self._cap, -1, dtype=np.int32)
                self.label_values[key] = {}
            ids = self.label_values[key]
            ident = ids.get(value)
            if ident is None:
                ident = ids[value] = len(ids)
            column[row] = ident

    def _allocatable_vector(self, allocatable: dict[str, int]) -> npt.NDArray[np.int64]:
        """The node's allocatable over the resource columns, kept per allocatable dict
        (nodes of a shape share theirs, see model.compile_node) while no column is added."""
        kept = self._allocatable_of.get(id(allocatable))
        if kept is not None and kept[0] is allocatable and kept[1].size == len(self.resources):
            return kept[1]
        # Resolve columns first: a new resource widens the arrays.
        columns = {self._resource_column(name): amount for name, amount in allocatable.items()}
        vector = np.zeros(len(self.resources), dtype=np.int64)
        for column, amount in columns.items():
            vector[column] = amount
        if len(self._allocatable_of) >= 4096:  # mostly one-off dicts of nodes long updated
            self._allocatable_of.clear()
        # The dict is kept with its vector, so its id cannot be reused while cached.
        self._allocatable_of[id(allocatable)] = (allocatable, vector)
        return vector


def zone_key(labels: dict[str, str]) -> str:
    """Upstream's GetZoneKey: region and zone (GA labels, else the beta ones); "" if neither."""
    zone = labels.get(ZONE, labels.get(_BETA_ZONE, ""))
    region = labels.get(REGION, labels.get(_BETA_REGION, ""))
    if not zone and not region:
        return ""
    return f"{region}:\x00:{zone}"


# --- selectors over label columns ---------------------------------------------------------


def requirement_mask(table: NodeTable, req: Requirement, rows: Rows, field: bool = False) -> Mask:
    """Which of `rows` satisfy one node selector requirement, evaluated on whole columns.

    `field=True` evaluates a matchFields requirement; only metadata.name is supported there,
    as upstream.
    """
    if field:
        if req.key != "metadata.name" or req.operator not in ("In", "NotIn"):
            return np.zeros(rows.size, dtype=np.bool_)
        wanted = [table.row_of[n] for n in req.values if n in table.row_of]
        hit = np.isin(rows, np.asarray(wanted, dtype=np.int64))
        return hit if req.operator == "In" else ~hit
    column = table.label_column(req.key)[rows]
    op = req.operator
    if op == "Exists":
        return column >= 0
    if op == "DoesNotExist":
        return column < 0
    if op in ("In", "NotIn"):
        hit = np.isin(column, np.asarray(table.value_ids(req.key, req.values), dtype=np.int32))
        return hit if op == "In" else ~hit
    ids = [
        ident
        for value, ident in table.label_values.get(req.key, {}).items()
        if requirement_matches(req, value)
    ]
    return np.isin(column, np.asarray(ids, dtype=np.int32))


def term_mask(table: NodeTable, term: SelectorTerm, rows: Rows) -> Mask:
    """A NodeSelectorTerm: every requirement holds. A term with none matches no node."""
    if not term.expressions and not term.fields:
        return np.zeros(rows.size, dtype=np.bool_)
    mask = np.ones(rows.size, dtype=np.bool_)
    for req in term.expressions:
        mask &= requirement_mask(table, req, rows)
    for req in term.fields:
        mask &= requirement_mask(table, req, rows, field=True)
    return mask


def selector_mask(table: NodeTable, selector: dict[str, str], rows: Rows) -> Mask:
    """A plain nodeSelector map: every label equal."""
    mask = np.ones(rows.size, dtype=np.bool_)
    for key, value in selector.items():
        ids = table.value_ids(key, [value])
        if not ids:
            return np.zeros(rows.size, dtype=np.bool_)
        mask &= table.label_column(key)[rows] == ids[0]
    return mask


_INT64_MAX = 2**63 - 1
# Journal entries kept (changed_since): a consumer that looks less often than every ~32,000
# row changes compares generations instead.
_JOURNAL_MAX = 1 << 16
# Below this, adding one pod's amounts to a column cannot wrap (columns saturate far above).
_HUGE = 2**52


def _saturated(value: int) -> int:
    """A column value kept within [0, int64 max]: requests are capped at int64 when parsed
    (model.parse_quantity), and a node holding several such pods stays full instead of
    wrapping negative (upstream compares requests against free capacity for the same
    reason)."""
    return 0 if value < 0 else min(value, _INT64_MAX)
