"""InterPodAffinity: required pod affinity and anti-affinity as a Filter (including the
symmetric rule that existing pods' required anti-affinity repels the new pod), preferred terms
and existing pods' terms as a Score, as upstream's interpodaffinity plugin (v1.33).

Cost is bounded by the pods that matter, not nodes x pods. The plugin keeps an index of the
pods in the NodeTable, grouped by (namespace, labels), and of the pods that carry affinity
terms, grouped by their compiled terms; the index is brought up to date from the rows whose
generation moved since it last looked. PreFilter/PreScore match each term once per group, then
turn the matching groups' rows into topology values with numpy over the interned label
columns; Filter and Score are column lookups of those per-value counts.

Namespace selectors need namespace labels: the plugin reads the handle's NamespaceLabels
(scheduler/namespaces.py), which the app's event handlers feed from a Namespace watch. Until it
is fed, terms with a namespaceSelector match only the namespaces they list (and `{}` still
matches all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler import pluginargs
from scheduler.framework import (
    ASSIGNED_POD,
    MAX_NODE_SCORE,
    NAMESPACE,
    NODE,
    SKIP,
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
    Reason,
    Scores,
    Status,
)
from scheduler.model import NodeInfo, PodAffinity, PodAffinityTerm, PodInfo
from scheduler.namespaces import NamespaceLabels
from scheduler.pluginargs import InterPodAffinityArgs
from scheduler.snapshot import NodeTable, Rows

NAME = "InterPodAffinity"
AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"

_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME

_NO_IDS = np.zeros(0, dtype=np.int32)
_LabelsKey = tuple[tuple[str, str], ...]


# --- per-cycle state ------------------------------------------------------------------------


@dataclass
class _FilterState:
    """Topology values (interned ids per key) that hold at least one matching pod."""

    affinity: dict[str, set[int]] = field(default_factory=dict)
    anti_affinity: dict[str, set[int]] = field(default_factory=dict)
    existing_anti_affinity: dict[str, set[int]] = field(default_factory=dict)
    self_match: bool = False  # the pod matches all its own required affinity terms


@dataclass
class _ScoreState:
    """Per topology key, the summed weight of every interned value (index = value id)."""

    scores: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)


# --- the plugin -----------------------------------------------------------------------------


class InterPodAffinity:
    name = NAME

    def __init__(self, args: InterPodAffinityArgs, namespaces: NamespaceLabels) -> None:
        self.args = args
        self.namespaces = namespaces
        self._index = _PodIndex()

    def row_local_for(self, pod: PodInfo) -> bool:
        """True exactly when this plugin cannot affect the pod: the pod has no inter-pod
        affinity terms and no existing pod's term (required anti-affinity; for scoring also
        required affinity and preferred terms, unless ignorePreferredTermsOfExistingPods)
        matches it. Then PreFilter and PreScore both say SKIP."""
        if pod.pod_affinity is not None:
            return False
        table = self._index.table
        if table is None:
            return False  # not seen a cycle yet: the one-pod path runs PreFilter first
        if table.affinity_pods == 0:
            return True  # no existing pod has terms: nothing can match this pod
        self._index.refresh(table)
        if not self._index.affine:
            return True
        key = (pod.namespace, _labels_key(pod.labels))
        memo = self._index.memo
        stamp = (self._index.affine_version, self.namespaces.version)
        if memo.get("stamp") != stamp or len(memo) > 4096:
            memo.clear()
            memo["stamp"] = stamp
        cached = memo.get(key)
        if cached is None:
            cached = not any(self._existing_terms_match(a, pod) for a in self._index.affine)
            memo[key] = cached
        return bool(cached)

    # --- events ---------------------------------------------------------------------------

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's: a bound pod added (it may satisfy the pod's affinity), relabelled or
        deleted (it may stop matching the pod's anti-affinity, or take its own anti-affinity
        away); the pod itself relabelled; a node added or relabelled (topology keys).

        Beyond upstream, which has no Namespace event (its pods wait for the 5-minute flush
        after a namespace is relabelled): a namespace relabelled may change which namespaces
        the pod's namespaceSelector terms select."""
        return [
            ClusterEventWithHint(
                ClusterEvent(
                    ASSIGNED_POD,
                    ActionType.ADD | ActionType.UPDATE_POD_LABEL | ActionType.DELETE,
                ),
                self.is_schedulable_after_assigned_pod_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_LABEL),
                self.is_schedulable_after_target_pod_update_label,
            ),
            ClusterEventWithHint(
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),
                self.is_schedulable_after_node_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(NAMESPACE, ActionType.UPDATE),
                self.is_schedulable_after_namespace_change,
            ),
        ]

    def is_schedulable_after_assigned_pod_change(
        self, pod: PodInfo, old: PodInfo | None, new: PodInfo | None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterAssignedPodChange. Added: the pod matches all of the
        rejected pod's affinity terms. Relabelled: it now matches all of them, or no longer
        matches an anti-affinity term. Deleted: it matched an anti-affinity term, or its own
        anti-affinity selected the rejected pod. Pods neither bound nor nominated never help.

        Terms match with the namespace labels the handle knows; upstream's hint passes none,
        so there a namespaceSelector with requirements never matches."""
        for p in (old, new):
            if p is not None and not p.node_name and not p.nominated_node_name:
                return QueueingHint.SKIP
        affinity = pod.pod_affinity or PodAffinity()
        if old is not None and new is not None:
            required, anti = affinity.required, affinity.required_anti
            if self._matches_all(required, new.namespace, new.labels) and not self._matches_all(
                required, old.namespace, old.labels
            ):
                return QueueingHint.QUEUE
            if self._matches_any(anti, old.namespace, old.labels) and not self._matches_any(
                anti, new.namespace, new.labels
            ):
                return QueueingHint.QUEUE
            return QueueingHint.SKIP
        if new is not None:
            if self._matches_all(affinity.required, new.namespace, new.labels):
                return QueueingHint.QUEUE
            return QueueingHint.SKIP
        assert old is not None
        if self._matches_any(affinity.required_anti, old.namespace, old.labels):
            return QueueingHint.QUEUE
        theirs = old.pod_affinity.required_anti if old.pod_affinity is not None else ()
        if self._matches_any(theirs, pod.namespace, pod.labels):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_target_pod_update_label(
        pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterTargetPodUpdateLabel: with other labels, other pods'
        anti-affinity may no longer select the pod."""
        return QueueingHint.QUEUE

    @staticmethod
    def is_schedulable_after_node_change(
        pod: PodInfo, old: NodeInfo | None, new: NodeInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterNodeChange. Affinity: a node added with a term's
        topology key, or updated to gain it or move to another value of it. Anti-affinity: any
        node added, or one updated to lose a term's topology key or change its value."""
        affinity = pod.pod_affinity or PodAffinity()
        for term in affinity.required:
            key = term.topology_key
            if old is None:
                if key in new.labels:
                    return QueueingHint.QUEUE
                continue
            if key in new.labels and old.labels.get(key) != new.labels[key]:
                return QueueingHint.QUEUE  # gained the key, or moved to another domain
        for term in affinity.required_anti:
            key = term.topology_key
            if old is None:
                # A node without the key always takes the pod; whether the domain it joins
                # holds pods the pod repels is more than a hint should work out.
                return QueueingHint.QUEUE
            if key in old.labels and old.labels[key] != new.labels.get(key):
                return QueueingHint.QUEUE  # lost the key, or moved to another domain
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_namespace_change(
        pod: PodInfo,
        old: tuple[str, Mapping[str, str]] | None,
        new: tuple[str, Mapping[str, str]] | None,
    ) -> QueueingHint:
        """berth's own (upstream has no Namespace event): a namespace relabelled helps only a
        pod with a required term whose namespaceSelector now judges that namespace
        differently."""
        affinity = pod.pod_affinity
        if affinity is None:
            return QueueingHint.SKIP
        before = dict(old[1]) if old is not None else {}
        after = dict(new[1]) if new is not None else {}
        for term in (*affinity.required, *affinity.required_anti):
            selector = term.namespace_selector
            if selector.nothing or not selector.requirements:
                continue  # no selector (or `{}`, every namespace): labels change nothing
            if selector.matches(before) != selector.matches(after):
                return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def _matches_all(
        self, terms: tuple[PodAffinityTerm, ...], namespace: str, labels: dict[str, str]
    ) -> bool:
        """Upstream's podMatchesAllAffinityTerms: false without terms."""
        ns_labels = self.namespaces.get(namespace)
        return bool(terms) and all(t.matches(namespace, labels, ns_labels) for t in terms)

    def _matches_any(
        self, terms: tuple[PodAffinityTerm, ...], namespace: str, labels: dict[str, str]
    ) -> bool:
        """Upstream's podMatchesAnyAffinityTerms."""
        ns_labels = self.namespaces.get(namespace)
        return any(t.matches(namespace, labels, ns_labels) for t in terms)

    # --- PreFilter / Filter ---------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        affinity = pod.pod_affinity
        has_required = affinity is not None and bool(affinity.required or affinity.required_anti)
        if not has_required and table.affinity_pods == 0:
            self._index.attach(table)  # no existing pod has terms to repel it: read rows later
            return SKIP
        computed = self._filter_state(pod, table)
        if not computed.existing_anti_affinity and not has_required:
            return SKIP
        state.write(_PRE_FILTER_KEY, computed)
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        computed = state.data.get(_PRE_FILTER_KEY)
        if computed is None:  # PreFilter did not run for this state: recompute, as upstream
            computed = self._filter_state(pod, table)
        affinity = pod.pod_affinity or PodAffinity()
        affinity_ok = np.ones(rows.size, dtype=np.bool_)
        if affinity.required:
            keys_exist = np.ones(rows.size, dtype=np.bool_)
            pods_exist = np.ones(rows.size, dtype=np.bool_)
            for term in affinity.required:
                column = table.label_column(term.topology_key)[rows]
                keys_exist &= column >= 0
                pods_exist &= _isin(column, computed.affinity.get(term.topology_key))
            # The first pod of a group with affinity to itself may go anywhere the topology
            # keys exist, as long as no other pod matches its terms anywhere.
            first_of_group = not computed.affinity and computed.self_match
            affinity_ok = keys_exist & (pods_exist | first_of_group)
        anti = np.zeros(rows.size, dtype=np.bool_)
        if computed.anti_affinity:
            for term in affinity.required_anti:
                column = table.label_column(term.topology_key)[rows]
                anti |= _isin(column, computed.anti_affinity.get(term.topology_key))
        existing = np.zeros(rows.size, dtype=np.bool_)
        for key, ids in computed.existing_anti_affinity.items():
            existing |= _isin(table.label_column(key)[rows], ids)
        # One reason per node, in upstream's order of checks.
        anti &= affinity_ok
        existing &= affinity_ok & ~anti
        return FilterResult(
            affinity_ok & ~anti & ~existing,
            (
                Reason(AFFINITY_REASON, ~affinity_ok, resolvable=False),
                Reason(ANTI_AFFINITY_REASON, anti),
                Reason(EXISTING_ANTI_AFFINITY_REASON, existing),
            ),
        )

    # --- PreScore / Score -----------------------------------------------------------------

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        affinity = pod.pod_affinity
        has_preferred = affinity is not None and bool(affinity.preferred or affinity.preferred_anti)
        if not has_preferred and (
            self.args.ignore_preferred_terms_of_existing_pods or table.affinity_pods == 0
        ):
            self._index.attach(table)
            return SKIP
        index = self._index
        index.refresh(table)
        acc = _ScoreAccumulator(table)
        if affinity is not None and has_preferred:
            # The new pod's preferred terms, over every existing pod (group by group).
            weighted = [(w.weight, w.term) for w in affinity.preferred]
            weighted += [(-w.weight, w.term) for w in affinity.preferred_anti]
            for weight, term in weighted:
                selected = index.selected(term, self._namespaces_of(term))
                acc.add(term.topology_key, _rows_of(selected), weight)
        ns_labels = self.namespaces.get(pod.namespace)
        hard = self.args.hard_pod_affinity_weight
        for existing, group in index.affine.items():
            # Existing pods' terms that the new pod matches.
            if hard > 0:
                for term in existing.required:
                    if term.matches(pod.namespace, pod.labels, ns_labels):
                        acc.add(term.topology_key, group.arrays(), hard)
            for w in existing.preferred:
                if w.term.matches(pod.namespace, pod.labels, ns_labels):
                    acc.add(w.term.topology_key, group.arrays(), w.weight)
            for w in existing.preferred_anti:
                if w.term.matches(pod.namespace, pod.labels, ns_labels):
                    acc.add(w.term.topology_key, group.arrays(), -w.weight)
        if not acc.touched:
            return SKIP
        state.write(_PRE_SCORE_KEY, _ScoreState(acc.scores))
        return None

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        computed: _ScoreState | None = state.data.get(_PRE_SCORE_KEY)
        total = np.zeros(rows.size, dtype=np.int64)
        if computed is None:
            return total
        for key, per_value in computed.scores.items():
            column = table.label_column(key)[rows]
            known = (column >= 0) & (column < per_value.size)
            total[known] += per_value[column[known]]
        return total

    def normalize(self, scores: Scores) -> Scores:
        """Upstream's min-max rescale: 100 * (score - min) / (max - min), truncated; all 0
        when every node scores the same. Raw scores may be negative."""
        if scores.size == 0:
            return scores
        low, high = int(scores.min()), int(scores.max())
        if high == low:
            return np.zeros(scores.size, dtype=np.int64)
        scaled = float(MAX_NODE_SCORE) * ((scores - low).astype(np.float64) / float(high - low))
        return scaled.astype(np.int64)

    # --- helpers --------------------------------------------------------------------------

    def _filter_state(self, pod: PodInfo, table: NodeTable) -> _FilterState:
        index = self._index
        index.refresh(table)
        out = _FilterState()
        ns_labels = self.namespaces.get(pod.namespace)
        for existing, group in index.affine.items():
            for term in existing.required_anti:
                if term.matches(pod.namespace, pod.labels, ns_labels):
                    _add_values(out.existing_anti_affinity, table, term.topology_key, [group])
        affinity = pod.pod_affinity
        if affinity is None or not (affinity.required or affinity.required_anti):
            return out
        required = [(t, self._namespaces_of(t)) for t in affinity.required]
        if required:
            # An existing pod counts for affinity only if it matches every required term.
            both = index.selected(*required[0])
            for t, ns in required[1:]:
                keys = {id(g) for g in index.selected(t, ns)}
                both = [g for g in both if id(g) in keys]
            for term, _ in required:
                _add_values(out.affinity, table, term.topology_key, both)
        for term in affinity.required_anti:
            selected = index.selected(term, self._namespaces_of(term))
            _add_values(out.anti_affinity, table, term.topology_key, selected)
        out.self_match = bool(required) and all(
            _selects(t, ns, pod.namespace, pod.labels) for t, ns in required
        )
        return out

    def _namespaces_of(self, term: PodAffinityTerm) -> frozenset[str] | None:
        """The namespaces a term of the *new* pod selects, its namespaceSelector resolved
        against the known namespaces (upstream's mergeAffinityTermNamespacesIfNotEmpty);
        None = every namespace (an empty namespaceSelector)."""
        selector = term.namespace_selector
        if selector.nothing:
            return term.namespaces
        if not selector.requirements:
            return None
        chosen = {n for n, labels in self.namespaces.labels.items() if selector.matches(labels)}
        return term.namespaces | chosen

    def _existing_terms_match(self, existing: PodAffinity, pod: PodInfo) -> bool:
        """Could any term of an existing pod change the new pod's Filter or Score?"""
        ns_labels = self.namespaces.get(pod.namespace)
        terms: list[PodAffinityTerm] = list(existing.required_anti)
        if not self.args.ignore_preferred_terms_of_existing_pods:
            if self.args.hard_pod_affinity_weight > 0:
                terms += existing.required
            terms += [w.term for w in (*existing.preferred, *existing.preferred_anti)]
        return any(t.matches(pod.namespace, pod.labels, ns_labels) for t in terms)


# --- the pod index --------------------------------------------------------------------------


@dataclass
class _Group:
    """Pods with the same namespace and labels (or the same affinity terms), by row."""

    namespace: str
    labels: dict[str, str]
    count: Counter[int] = field(default_factory=Counter)  # row -> number of pods
    _arrays: tuple[Rows, npt.NDArray[np.int64]] | None = None

    def arrays(self) -> tuple[Rows, npt.NDArray[np.int64]]:
        """(rows, pods per row) as numpy arrays, cached until the group changes."""
        if self._arrays is None:
            rows = np.fromiter(self.count.keys(), dtype=np.int64, count=len(self.count))
            counts = np.fromiter(self.count.values(), dtype=np.int64, count=len(self.count))
            self._arrays = (rows, counts)
        return self._arrays

    def change(self, row: int, delta: int) -> None:
        self.count[row] += delta
        if self.count[row] <= 0:
            del self.count[row]
        self._arrays = None


@dataclass
class _Entry:
    pod: PodInfo
    labels: tuple[str, _LabelsKey]


class _PodIndex:
    """The NodeTable's pods grouped for affinity, updated from rows whose generation moved.

    groups: every pod, by (namespace, labels): what the new pod's terms select.
    affine: pods with inter-pod affinity terms, by their terms: what may select the new pod.
    """

    def __init__(self) -> None:
        self.table: NodeTable | None = None
        self.affine_version = 0  # moves when a distinct set of terms appears or goes
        self._reset()

    def _reset(self) -> None:
        self.seen = np.zeros(0, dtype=np.int64)
        self.rows: dict[int, dict[str, _Entry]] = {}
        self.groups: dict[tuple[str, _LabelsKey], _Group] = {}
        self.affine: dict[PodAffinity, _Group] = {}
        self.affine_version += 1
        self.memo: dict[Any, Any] = {}
        # (term, resolved namespaces) -> group key -> does the term select that group; a
        # group key is (namespace, labels), so an answer never goes stale.
        self.selections: dict[Any, dict[tuple[str, _LabelsKey], bool]] = {}

    def selected(self, term: PodAffinityTerm, namespaces: frozenset[str] | None) -> list[_Group]:
        """The groups of existing pods that a term of the new pod selects; each (term,
        group) pair is judged once, then remembered across cycles."""
        memo = self.selections.get((term, namespaces))
        if memo is None or len(memo) > 2 * len(self.groups) + 1024:
            if len(self.selections) > 256:
                self.selections.clear()
            memo = self.selections[(term, namespaces)] = {}
        out = []
        for key, group in self.groups.items():
            hit = memo.get(key)
            if hit is None:
                hit = memo[key] = _selects(term, namespaces, group.namespace, group.labels)
            if hit:
                out.append(group)
        return out

    def attach(self, table: NodeTable) -> None:
        """Index `table` from now on (a different table starts it over); rows are read at
        the next refresh."""
        if table is not self.table:
            self._reset()
            self.table = table

    def refresh(self, table: NodeTable) -> None:
        """Bring the index up to date with `table` (a different table starts it over)."""
        self.attach(table)
        size = table.generation.size
        if self.seen.size != size:
            grown = np.full(size, -1, dtype=np.int64)
            grown[: min(size, self.seen.size)] = self.seen[:size]
            self.seen = grown
        stale = np.flatnonzero(table.generation != self.seen)
        for row in stale.tolist():
            self._rescan(table, row)
        self.seen[stale] = table.generation[stale]

    def _rescan(self, table: NodeTable, row: int) -> None:
        before = self.rows.get(row, {})
        now = table.pods[row] if table.alive[row] else {}
        after: dict[str, _Entry] = {}
        for uid, entry in before.items():
            pod = now.get(uid)
            if pod is entry.pod:
                after[uid] = entry
            else:
                self._apply(row, entry, -1)
        for uid, pod in now.items():
            if uid not in after:
                entry = _Entry(pod, (pod.namespace, _labels_key(pod.labels)))
                self._apply(row, entry, +1)
                after[uid] = entry
        if after:
            self.rows[row] = after
        else:
            self.rows.pop(row, None)

    def _apply(self, row: int, entry: _Entry, delta: int) -> None:
        pod = entry.pod
        group = self.groups.get(entry.labels)
        if group is None:
            group = self.groups[entry.labels] = _Group(pod.namespace, dict(pod.labels))
        group.change(row, delta)
        if not group.count:
            del self.groups[entry.labels]
        if pod.pod_affinity is None:
            return
        affine = self.affine.get(pod.pod_affinity)
        if affine is None:
            affine = self.affine[pod.pod_affinity] = _Group(pod.namespace, {})
            self.affine_version += 1
        affine.change(row, delta)
        if not affine.count:
            del self.affine[pod.pod_affinity]
            self.affine_version += 1


class _ScoreAccumulator:
    def __init__(self, table: NodeTable) -> None:
        self.table = table
        self.scores: dict[str, npt.NDArray[np.int64]] = {}
        self.touched = False  # some term matched a pod on a node with its topology key

    def add(self, key: str, rows_counts: tuple[Rows, npt.NDArray[np.int64]], weight: int) -> None:
        rows, counts = rows_counts
        values = self.table.label_column(key)[rows]
        has = values >= 0
        if not has.any():
            return
        self.touched = True
        per_value = self.scores.get(key)
        size = len(self.table.label_values.get(key, {}))
        if per_value is None:
            per_value = self.scores[key] = np.zeros(size, dtype=np.int64)
        np.add.at(per_value, values[has], counts[has] * weight)


def _labels_key(labels: dict[str, str]) -> _LabelsKey:
    return tuple(sorted(labels.items()))


def _selects(
    term: PodAffinityTerm, namespaces: frozenset[str] | None, namespace: str, labels: dict[str, str]
) -> bool:
    """A term of the new pod (namespaces already resolved) against a pod's namespace/labels."""
    if namespaces is not None and namespace not in namespaces:
        return False
    return term.selector.matches(labels)


def _rows_of(groups: list[_Group]) -> tuple[Rows, npt.NDArray[np.int64]]:
    """The rows of the groups' pods, with the number of pods on each (rows may repeat)."""
    if not groups:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(groups) == 1:
        return groups[0].arrays()
    parts = [g.arrays() for g in groups]
    return np.concatenate([r for r, _ in parts]), np.concatenate([c for _, c in parts])


def _add_values(
    into: dict[str, set[int]], table: NodeTable, key: str, groups: list[_Group]
) -> None:
    if not groups:
        return
    rows, _ = _rows_of(groups)
    values = table.label_column(key)[rows]
    found = values[values >= 0]
    if found.size:
        into.setdefault(key, set()).update(found.tolist())


def _isin(column: npt.NDArray[np.int32], ids: Iterable[int] | None) -> npt.NDArray[np.bool_]:
    if not ids:
        return np.zeros(column.size, dtype=np.bool_)
    return np.isin(column, np.fromiter(ids, dtype=np.int32))


def new(args: InterPodAffinityArgs | Mapping[str, Any], handle: Handle) -> InterPodAffinity:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return InterPodAffinity(pluginargs.coerce(NAME, InterPodAffinityArgs, args), handle.namespaces)
