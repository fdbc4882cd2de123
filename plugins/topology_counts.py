"""PodTopologySpread's counting: matching pods per row, and per topology domain.

Upstream's PodTopologySpread walks every node in PreFilter and PreScore, counting the pods that
match each constraint's selector and summing them per domain (pkg/scheduler/framework/plugins/
podtopologyspread, filtering.go calPreFilterState and scoring.go PreScore). Here both counts are
kept between cycles with the row generations they were taken at, so a cycle redoes only the rows
that changed since (in a burst, the node the previous pod landed on):

    MatchCounter    (namespace, selector)          -> matching pods per row
    DomainCounter   (namespace, selector, key,     -> matching pods per domain (value id of
                     which rows count)                the key) and counted rows per domain

A change of table structure (a row added or removed, a column added), or another table,
starts an entry over. The answers equal a full recount on the table as it is.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler.model import LabelSelector, PodInfo
from scheduler.snapshot import Mask, NodeTable, Rows, selector_mask, term_mask

Counts = npt.NDArray[np.int64]


class MatchCounter:
    """Per (namespace, selector), the number of matching pods on each row: pods of the
    namespace that are not terminating (upstream bypasses those, kubernetes#87621)."""

    def __init__(self, capacity: int = 32) -> None:
        self._entries: OrderedDict[tuple[str, LabelSelector], _Counts] = OrderedDict()
        self._capacity = capacity
        # (namespace, id(selector)) -> (the selector, its entry): a selector object reused pod
        # after pod (default constraints) finds its entry without hashing it. An entry the LRU
        # dropped stays right through here: its generations keep it consistent.
        self._alias: dict[tuple[str, int], tuple[LabelSelector, _Counts]] = {}

    def counts(
        self, table: NodeTable, namespace: str, selectors: Sequence[LabelSelector]
    ) -> list[Counts]:
        """Per selector (in order), matching pods per row: arrays as wide as the table, owned
        by the counter (they move on with the table: copy what must stay)."""
        entries = [self._entry(table, namespace, selector) for selector in selectors]
        unique = list({id(entry): (selector, entry) for selector, entry in entries}.values())
        # Rows to rescan: those whose generation moved for any of the selectors (usually
        # the same rows for all), scanned once for all selectors together.
        changed = unique[0][1].seen != table.generation if unique else None
        for _, entry in unique[1:]:
            changed |= entry.seen != table.generation
        if changed is not None:
            rows = np.flatnonzero(changed).tolist()
            if rows:
                _scan(table, namespace, unique, rows)
        return [entry.counts for _, entry in entries]

    def _entry(
        self, table: NodeTable, namespace: str, selector: LabelSelector
    ) -> tuple[LabelSelector, _Counts]:
        alias = self._alias.get((namespace, id(selector)))
        if alias is not None and alias[0] is selector:
            entry = alias[1]
            if entry.table() is table and entry.structure == table.structure:
                return selector, entry
        key = (namespace, selector)
        found = self._entries.get(key)
        if found is not None and found.table() is table and found.structure == table.structure:
            entry = found
        else:
            entry = _Counts(
                weakref.ref(table),
                table.structure,
                np.full(table.generation.size, -1, dtype=np.int64),
                np.zeros(table.generation.size, dtype=np.int64),
            )
            self._entries[key] = entry
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        if len(self._alias) >= 256:
            self._alias.clear()
        self._alias[(namespace, id(selector))] = (selector, entry)
        return selector, entry


@dataclass
class _Counts:
    table: weakref.ref[NodeTable]
    structure: int
    seen: npt.NDArray[np.int64]  # row generations the counts were taken at
    counts: Counts


def _scan(
    table: NodeTable,
    namespace: str,
    entries: Sequence[tuple[LabelSelector, _Counts]],
    rows: list[int],
) -> None:
    for row in rows:
        hits = [0] * len(entries)
        for pod in table.pods[row].values():
            if pod.deleting or pod.namespace != namespace:
                continue
            for j, (selector, _) in enumerate(entries):
                if selector.matches(pod.labels):
                    hits[j] += 1
        generation = table.generation[row]
        for j, (_, entry) in enumerate(entries):
            entry.counts[row] = hits[j]
            entry.seen[row] = generation


class Inclusion:
    """Which rows a constraint counts, per its nodeAffinityPolicy / nodeTaintsPolicy; the
    affinity and taint masks over `rows` are computed once per pod, on first use."""

    def __init__(self, table: NodeTable, pod: PodInfo, rows: Rows) -> None:
        self.table, self.pod, self.rows = table, pod, rows
        self._affinity: Mask | None = None
        self._taints: Mask | None = None

    def mask(self, honor_affinity: bool, honor_taints: bool) -> Mask:
        mask = np.ones(self.rows.size, dtype=np.bool_)
        if honor_affinity:
            mask &= self.affinity()
        if honor_taints:
            mask &= self.tolerated()
        return mask

    def affinity(self) -> Mask:
        """The pod's nodeSelector and required node affinity (upstream's
        GetRequiredNodeAffinity; the profile's addedAffinity is not part of it)."""
        if self._affinity is None:
            table, pod, rows = self.table, self.pod, self.rows
            mask = selector_mask(table, pod.node_selector, rows)
            if pod.required_terms is not None:
                terms = np.zeros(rows.size, dtype=np.bool_)
                for term in pod.required_terms:
                    terms |= term_mask(table, term, rows)
                mask &= terms
            self._affinity = mask
        return self._affinity

    def tolerated(self) -> Mask:
        """No NoSchedule / NoExecute taint the pod does not tolerate (judged per taint set)."""
        if self._taints is None:
            sets = self.table.taint_set[self.rows]
            ok = np.ones(len(self.table.taint_sets), dtype=np.bool_)
            for ident in np.unique(sets).tolist():
                ok[ident] = all(
                    taint.effect not in ("NoSchedule", "NoExecute")
                    or any(t.tolerates(taint) for t in self.pod.tolerations)
                    for taint in self.table.taint_sets[ident]
                )
            self._taints = ok[sets]
        return self._taints


def all_keys(table: NodeTable, keys: Sequence[str], rows: Rows) -> Mask:
    """Which of `rows` carry every one of `keys` (upstream's nodeLabelsMatchSpreadConstraints)."""
    mask = np.ones(rows.size, dtype=np.bool_)
    for key in keys:
        mask &= table.label_column(key)[rows] >= 0
    return mask


@dataclass(frozen=True)
class Domains:
    """What one constraint counts: pods of `namespace` matching `selector`, on rows that carry
    `topology_key` and every key in `required`, and pass the pod's required node affinity
    (`honor_affinity`) and tolerate its taints (`honor_taints`)."""

    namespace: str
    selector: LabelSelector
    topology_key: str
    required: tuple[str, ...]
    honor_affinity: bool
    honor_taints: bool
    # Hashed once: the counter looks it up for every pod, and the selector's hash is deep.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.namespace, self.selector, self.topology_key, self.required)
        object.__setattr__(self, "_hash", hash((*fields, self.honor_affinity, self.honor_taints)))

    def __hash__(self) -> int:
        return self._hash


class DomainCounter:
    """Per Domains (and the parts of the pod its inclusion policies read), matching pods per
    value id of the topology key, and how many counted rows carry each value id (a domain
    exists where that is above 0). Kept per row with the generation it was taken at: a row
    whose generation moved has its old contribution taken out and its new one put in."""

    def __init__(self, capacity: int = 32) -> None:
        self._entries: OrderedDict[Hashable, _DomainEntry] = OrderedDict()
        self._capacity = capacity

    def domains(
        self, table: NodeTable, pod: PodInfo, what: Domains, matches: Counts
    ) -> tuple[Counts, Counts]:
        """(pods, rows) per value id of `what.topology_key`, both as long as the key's
        interned values; `matches` are MatchCounter's per-row counts for the selector, taken
        on the table as it is. The arrays are the caller's."""
        key: tuple[Any, ...] = (
            what,
            (tuple(sorted(pod.node_selector.items())), pod.required_terms)
            if what.honor_affinity
            else None,
            pod.tolerations if what.honor_taints else None,
        )
        size = len(table.label_values.get(what.topology_key, {}))
        entry = self._entries.get(key)
        if entry is None or entry.table() is not table or entry.structure != table.structure:
            entry = _DomainEntry(
                weakref.ref(table),
                table.structure,
                np.full(table.generation.size, -1, dtype=np.int64),
                np.zeros(table.generation.size, dtype=np.int64),
                np.full(table.generation.size, -1, dtype=np.int64),
                np.zeros(size, dtype=np.int64),
                np.zeros(size, dtype=np.int64),
            )
            self._entries[key] = entry
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        if entry.pods.size < size:  # a value interned since: room for it
            grow = size - entry.pods.size
            entry.pods = np.concatenate((entry.pods, np.zeros(grow, dtype=np.int64)))
            entry.rows = np.concatenate((entry.rows, np.zeros(grow, dtype=np.int64)))
        stale = np.flatnonzero(entry.seen != table.generation)
        if stale.size:
            _recount(entry, table, pod, what, matches, stale)
        return entry.pods[:size].copy(), entry.rows[:size].copy()


@dataclass
class _DomainEntry:
    table: weakref.ref[NodeTable]
    structure: int
    seen: npt.NDArray[np.int64]  # row generations the contributions were taken at
    contribution: Counts  # per row: matching pods it adds to its domain
    domain: Counts  # per row: the value id it counts for, -1 when it is not counted
    pods: Counts  # per value id: matching pods
    rows: Counts  # per value id: counted rows


def _recount(
    entry: _DomainEntry,
    table: NodeTable,
    pod: PodInfo,
    what: Domains,
    matches: Counts,
    stale: Rows,
) -> None:
    """Take the old contributions of `stale` rows out of their domains, put the new ones in."""
    affinity = what.honor_affinity and bool(pod.node_selector or pod.required_terms is not None)
    if stale.size <= 16 and not affinity and not what.honor_taints:
        _recount_few(entry, table, what, matches, stale.tolist())
        return
    ids = table.label_column(what.topology_key)[stale].astype(np.int64)
    ok = table.alive[stale] & (ids >= 0)
    if what.required:
        ok &= all_keys(table, what.required, stale)
    if affinity or what.honor_taints:
        ok &= Inclusion(table, pod, stale).mask(affinity, what.honor_taints)
    now = np.where(ok, ids, -1)
    contribution = np.where(ok, matches[stale], 0)
    was = entry.domain[stale]
    counted = was >= 0
    np.subtract.at(entry.pods, was[counted], entry.contribution[stale][counted])
    np.subtract.at(entry.rows, was[counted], 1)
    np.add.at(entry.pods, now[ok], contribution[ok])
    np.add.at(entry.rows, now[ok], 1)
    entry.domain[stale] = now
    entry.contribution[stale] = contribution
    entry.seen[stale] = table.generation[stale]


def _recount_few(
    entry: _DomainEntry, table: NodeTable, what: Domains, matches: Counts, stale: list[int]
) -> None:
    """_recount for a few rows and no inclusion policy to apply (the usual case: the rows the
    last pods landed on), row by row: a dozen numpy calls cost more than these items."""
    column = table.label_column(what.topology_key)
    required = [table.label_column(key) for key in what.required]
    pods, rows = entry.pods, entry.rows
    for row in stale:
        before = int(entry.domain[row])
        if before >= 0:
            pods[before] -= entry.contribution[row]
            rows[before] -= 1
        now = int(column[row])
        if now >= 0 and table.alive[row] and all(c[row] >= 0 for c in required):
            adds = int(matches[row])
            pods[now] += adds
            rows[now] += 1
        else:
            now, adds = -1, 0
        entry.domain[row] = now
        entry.contribution[row] = adds
        entry.seen[row] = table.generation[row]
