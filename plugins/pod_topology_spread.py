"""PodTopologySpread: spread matching pods evenly across topology domains (zones, nodes, ...).

Filter enforces the pod's `DoNotSchedule` constraints: a node fails when placing the pod there
would make its domain hold more than `maxSkew` matching pods above the global minimum (taken as
0 while fewer than `minDomains` domains exist), and a node without a constraint's topology label
fails unresolvably. Score prefers nodes whose domains hold fewer matching pods for the
`ScheduleAnyway` constraints, each count weighted by log(number of domains + 2), as upstream
(pkg/scheduler/framework/plugins/podtopologyspread).

Counting, as upstream: pods in the incoming pod's namespace whose labels match the constraint's
selector (merged with the pod's values for `matchLabelKeys`), not terminating, on nodes that
carry every constraint's topology key and pass the pod's required node affinity
(`nodeAffinityPolicy: Honor`, the default) and, with `nodeTaintsPolicy: Honor`, its tolerations
(`Ignore` is the default).

Cost: a per-row count of matching pods per (namespace, selector), kept between cycles and
refreshed only for rows whose generation moved (MatchCounter); per-domain counts are then one
`np.bincount` over the interned label column of the topology key, and Filter / Score are vector
lookups.

Default constraints apply to pods without constraints of their own: the system defaults
(hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) with `defaultingType: System`, or the
profile's `defaultConstraints` with `defaultingType: List`. Their selector is built, as
upstream's helper.DefaultSelector, from the Services, ReplicationControllers, ReplicaSets and
StatefulSets that select the pod, and upstream skips the defaults when no selector can be built.
The objects come from App's informers (scheduler/default_selector.py) through the handle
(`handle.default_spread_selector(pod) -> LabelSelector | None`); a cluster nobody watches (unit
tests, the in-memory bench) has none, which leaves the default constraints inert, as upstream
does for a pod that no workload object selects.
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler import pluginargs
from scheduler.framework import (
    ASSIGNED_POD,
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
from scheduler.model import (
    LabelSelector,
    NodeInfo,
    PodInfo,
    Requirement,
    SpreadConstraint,
)
from scheduler.pluginargs import PodTopologySpreadArgs
from scheduler.snapshot import ZONE, Mask, NodeTable, Rows, selector_mask, term_mask

NAME = "PodTopologySpread"
REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = REASON + " (missing required label)"

HOSTNAME = "kubernetes.io/hostname"
DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"
HONOR = "Honor"
IGNORE = "Ignore"
SYSTEM = "System"
LIST = "List"

_NOTHING = LabelSelector(nothing=True)
SYSTEM_DEFAULTS: tuple[SpreadConstraint, ...] = (
    SpreadConstraint(3, HOSTNAME, SCHEDULE_ANYWAY, _NOTHING),
    SpreadConstraint(5, ZONE, SCHEDULE_ANYWAY, _NOTHING),
)

_FILTER_KEY = "PreFilter" + NAME
_SCORE_KEY = "PreScore" + NAME
_NO_DOMAIN = np.iinfo(np.int64).max // 4  # global minimum when no domain is eligible

DefaultSelector = Callable[[PodInfo], LabelSelector | None]


@dataclass(frozen=True)
class Constraint:
    """A constraint after defaulting (upstream's internal topologySpreadConstraint)."""

    max_skew: int
    topology_key: str
    selector: LabelSelector
    min_domains: int = 1
    honor_affinity: bool = True  # nodeAffinityPolicy Honor (the default)
    honor_taints: bool = False  # nodeTaintsPolicy Ignore (the default)


@dataclass
class _FilterState:
    constraints: tuple[Constraint, ...]
    columns: list[npt.NDArray[np.int32]]  # per constraint: label value id per row (-1 absent)
    domain_counts: list[npt.NDArray[np.int64]]  # per constraint: matching pods per value id
    minimum: list[int]  # per constraint: the global minimum (minDomains applied)
    self_match: list[int]  # per constraint: 1 if the pod matches its own selector


@dataclass
class _ScoreState:
    constraints: tuple[Constraint, ...]
    columns: list[npt.NDArray[np.int32]]
    # Per constraint, the count each row is scored with: a per-domain count for most keys, the
    # node's own count for the hostname key (upstream counts that one during Score).
    counts: list[npt.NDArray[np.int64]]
    per_row: list[bool]  # True: counts[i] is indexed by row, else by value id
    weights: list[float]
    ignored: Mask  # per row: misses a topology key (scored 0)


class PodTopologySpread:
    name = NAME

    def __init__(
        self, args: PodTopologySpreadArgs, default_selector: DefaultSelector | None = None
    ) -> None:
        self.args = args
        self.system_defaulted = args.defaulting_type == SYSTEM
        self.defaults = SYSTEM_DEFAULTS if self.system_defaulted else args.default_constraints
        self.default_selector = default_selector
        self.counter = MatchCounter()

    def row_local_for(self, pod: PodInfo) -> bool:
        """Only a pod this plugin does nothing for keeps the batched path: with constraints, a
        node's answer depends on the pods of every node in its domain."""
        return not self.constraints(pod, DO_NOT_SCHEDULE) and not self.constraints(
            pod, SCHEDULE_ANYWAY
        )

    # --- events ------------------------------------------------------------------------

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's: a bound pod added, relabelled or deleted (the counts); the pod itself
        relabelled (its selectors, through matchLabelKeys) or given a toleration (nodes that
        nodeTaintsPolicy: Honor counts); a node added, deleted, relabelled or retainted (the
        domains)."""
        return [
            ClusterEventWithHint(
                ClusterEvent(
                    ASSIGNED_POD,
                    ActionType.ADD | ActionType.UPDATE_POD_LABEL | ActionType.DELETE,
                ),
                self.is_schedulable_after_assigned_pod_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(
                    TARGET_POD, ActionType.UPDATE_POD_TOLERATION | ActionType.UPDATE_POD_LABEL
                ),
                self.is_schedulable_after_target_pod_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(
                    NODE,
                    ActionType.ADD
                    | ActionType.DELETE
                    | ActionType.UPDATE_NODE_LABEL
                    | ActionType.UPDATE_NODE_TAINT,
                ),
                self.is_schedulable_after_node_change,
            ),
        ]

    def is_schedulable_after_assigned_pod_change(
        self, pod: PodInfo, old: PodInfo | None, new: PodInfo | None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterAssignedPodChange: a pod of the same namespace, bound
        or nominated, added or deleted matching a DoNotSchedule constraint's selector, or
        relabelled into or out of one."""
        for p in (old, new):
            if p is not None and not _involved(p, pod):
                return QueueingHint.SKIP
        constraints = self.constraints(pod, DO_NOT_SCHEDULE)
        if old is not None and new is not None:
            return _after_label_change(old, new, constraints)
        changed = new if new is not None else old
        assert changed is not None
        if any(c.selector.matches(changed.labels) for c in constraints):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def is_schedulable_after_target_pod_change(
        self, pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterTargetPodChange: a new toleration when a constraint
        honors taints, or a label change that moves the pod into or out of a selector."""
        constraints = self.constraints(pod, DO_NOT_SCHEDULE)
        if old.tolerations != new.tolerations and any(c.honor_taints for c in constraints):
            return QueueingHint.QUEUE
        return _after_label_change(old, new, constraints)

    def is_schedulable_after_node_change(
        self, pod: PodInfo, old: NodeInfo | None, new: NodeInfo | None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterNodeChange: a node added or deleted that carries every
        constraint's topology key; one updated to gain or lose them; or one carrying them
        whose topology values or taints changed."""
        constraints = self.constraints(pod, DO_NOT_SCHEDULE)
        was = old is not None and _has_keys(old.labels, constraints)
        now = new is not None and _has_keys(new.labels, constraints)
        if old is not None and new is not None:
            if was != now:
                return QueueingHint.QUEUE
            moved = any(
                old.labels.get(c.topology_key) != new.labels.get(c.topology_key)
                for c in constraints
            )
            if now and (moved or old.taints != new.taints):
                return QueueingHint.QUEUE
            return QueueingHint.SKIP
        return QueueingHint.QUEUE if was or now else QueueingHint.SKIP

    # --- Filter ------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        constraints = self.constraints(pod, DO_NOT_SCHEDULE)
        if not constraints:
            return SKIP
        state.write(_FILTER_KEY, _filter_state(table, pod, constraints, self.counter))
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        s: _FilterState | None = state.data.get(_FILTER_KEY)
        if s is None:  # PreFilter did not run: recompute, as upstream's Filter contract asks
            constraints = self.constraints(pod, DO_NOT_SCHEDULE)
            if not constraints:
                return FilterResult.all_pass(rows.size)
            s = _filter_state(table, pod, constraints, self.counter)
            state.write(_FILTER_KEY, s)
        # As upstream, the first constraint a node fails decides its reason.
        undecided = np.ones(rows.size, dtype=np.bool_)
        missing = np.zeros(rows.size, dtype=np.bool_)
        skewed = np.zeros(rows.size, dtype=np.bool_)
        for i, c in enumerate(s.constraints):
            ids = s.columns[i][rows]
            absent = undecided & (ids < 0)
            missing |= absent
            undecided &= ~absent
            match = _lookup(s.domain_counts[i], ids)
            over = undecided & (match + s.self_match[i] - s.minimum[i] > c.max_skew)
            skewed |= over
            undecided &= ~over
        return FilterResult(
            undecided,
            (Reason(MISSING_LABEL, missing, resolvable=False), Reason(REASON, skewed)),
        )

    # --- Score -------------------------------------------------------------------------

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        if len(table) == 0:
            return SKIP
        constraints = self.constraints(pod, SCHEDULE_ANYWAY)
        if not constraints:
            return SKIP
        # Only constraints of the pod's own (or a List profile's) require every topology key on
        # a node; the system defaults still spread by hostname on nodes without a zone label.
        require_all = bool(pod.spread_constraints) or not self.system_defaulted
        state.write(
            _SCORE_KEY, _score_state(table, pod, constraints, rows, require_all, self.counter)
        )
        return None

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        s: _ScoreState | None = state.data.get(_SCORE_KEY)
        if s is None:
            return np.zeros(rows.size, dtype=np.int64)
        total = np.zeros(rows.size, dtype=np.float64)
        for i, c in enumerate(s.constraints):
            ids = s.columns[i][rows]
            has = ids >= 0
            count = s.counts[i][rows] if s.per_row[i] else _lookup(s.counts[i], ids)
            # Upstream's scoreForCount, summed in constraint order in float64.
            total += np.where(has, count * s.weights[i] + float(c.max_skew - 1), 0.0)
        # math.Round: halves away from zero (every total here is >= 0).
        rounded = np.floor(total)
        rounded = np.where(total - rounded >= 0.5, rounded + 1, rounded).astype(np.int64)
        # A negative raw score marks a node that misses a topology key: normalize() gives it 0.
        out: Scores = np.where(s.ignored[rows], -1, rounded)
        return out

    def normalize(self, scores: Scores) -> Scores:
        """Fewer matching pods is better: 100 * (max + min - score) / max over the scored
        nodes, 100 for all when max is 0; ignored nodes get 0."""
        valid = scores >= 0
        if not valid.any():
            return np.zeros(scores.size, dtype=np.int64)
        low, high = int(scores[valid].min()), int(scores[valid].max())
        if high == 0:
            return np.where(valid, 100, 0).astype(np.int64)
        out: Scores = np.where(valid, 100 * (high + low - scores) // high, 0).astype(np.int64)
        return out

    # --- constraints -------------------------------------------------------------------

    def constraints(self, pod: PodInfo, action: str) -> tuple[Constraint, ...]:
        """The pod's constraints for `action` (DoNotSchedule or ScheduleAnyway), or the
        default ones when it has none of its own and a default selector can be built."""
        if pod.spread_constraints:
            return tuple(
                _internal(c, _merged_selector(c, pod.labels))
                for c in pod.spread_constraints
                if c.when_unsatisfiable == action
            )
        defaults = [c for c in self.defaults if c.when_unsatisfiable == action]
        if not defaults or self.default_selector is None:
            return ()
        selector = self.default_selector(pod)
        if selector is None or selector.nothing or not selector.requirements:
            return ()  # upstream: an empty default selector means no default constraints
        return tuple(_internal(c, selector) for c in defaults)


def _involved(other: PodInfo, pod: PodInfo) -> bool:
    """Upstream's involvedInTopologySpreading: `other` is bound (or nominated) and in the
    pod's namespace, so it counts for the pod's constraints."""
    if not other.node_name and not other.nominated_node_name:
        return False
    return other.namespace == pod.namespace


def _has_keys(labels: Mapping[str, str], constraints: Sequence[Constraint]) -> bool:
    """Upstream's nodeLabelsMatchSpreadConstraints: every topology key is on the node."""
    return all(c.topology_key in labels for c in constraints)


def _after_label_change(
    old: PodInfo, new: PodInfo, constraints: Sequence[Constraint]
) -> QueueingHint:
    """Upstream's isSchedulableAfterPodLabelChange: the labels changed whether the pod
    matches some constraint's selector."""
    if old.labels == new.labels:
        return QueueingHint.SKIP
    if any(c.selector.matches(old.labels) != c.selector.matches(new.labels) for c in constraints):
        return QueueingHint.QUEUE
    return QueueingHint.SKIP


def _internal(c: SpreadConstraint, selector: LabelSelector) -> Constraint:
    return Constraint(
        max_skew=c.max_skew,
        topology_key=c.topology_key,
        selector=selector,
        min_domains=1 if c.min_domains is None else c.min_domains,
        honor_affinity=c.node_affinity_policy != IGNORE,
        honor_taints=c.node_taints_policy == HONOR,
    )


def _merged_selector(c: SpreadConstraint, labels: Mapping[str, str]) -> LabelSelector:
    """matchLabelKeys: the pod's values for those keys are ANDed into the selector (a nil
    selector then matches by those labels alone, as upstream's mergeLabelSetWithSelector)."""
    extra = tuple(Requirement(k, "In", (labels[k],)) for k in c.match_label_keys if k in labels)
    if not extra:
        return c.selector
    return LabelSelector(tuple(sorted(extra, key=lambda r: r.key)) + c.selector.requirements)


# --- counting ------------------------------------------------------------------------------


class MatchCounter:
    """Per (namespace, selector), the number of matching pods on each row: pods of the
    namespace that are not terminating (upstream bypasses those, kubernetes#87621).

    Counts are kept between cycles with the row generations they were taken at, so a cycle
    rescans only the rows that changed since (in a burst, the node the last pod landed on);
    a change of table structure, or another table, starts over."""

    def __init__(self, capacity: int = 32) -> None:
        self._entries: OrderedDict[tuple[str, LabelSelector], _Counts] = OrderedDict()
        self._capacity = capacity

    def counts(
        self, table: NodeTable, namespace: str, selectors: Sequence[LabelSelector]
    ) -> dict[LabelSelector, npt.NDArray[np.int64]]:
        out: dict[LabelSelector, npt.NDArray[np.int64]] = {}
        stale: dict[LabelSelector, _Counts] = {}
        for selector in dict.fromkeys(selectors):
            key = (namespace, selector)
            entry = self._entries.get(key)
            if entry is None or entry.table() is not table or entry.structure != table.structure:
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
            stale[selector] = entry
            out[selector] = entry.counts
        # Rows to rescan: those whose generation moved for any of the selectors (usually
        # the same rows for all), scanned once for all selectors together.
        changed = np.zeros(table.generation.size, dtype=np.bool_)
        for entry in stale.values():
            changed |= entry.seen != table.generation
        rows = np.flatnonzero(changed).tolist()
        if rows:
            _scan(table, namespace, stale, rows)
        return out


@dataclass
class _Counts:
    table: weakref.ref[NodeTable]
    structure: int
    seen: npt.NDArray[np.int64]  # row generations the counts were taken at
    counts: npt.NDArray[np.int64]


def _scan(
    table: NodeTable, namespace: str, entries: Mapping[LabelSelector, _Counts], rows: list[int]
) -> None:
    selectors = list(entries)
    for row in rows:
        hits = [0] * len(selectors)
        for pod in table.pods[row].values():
            if pod.deleting or pod.namespace != namespace:
                continue
            for j, selector in enumerate(selectors):
                if selector.matches(pod.labels):
                    hits[j] += 1
        for j, selector in enumerate(selectors):
            entry = entries[selector]
            entry.counts[row] = hits[j]
            entry.seen[row] = table.generation[row]


class _Inclusion:
    """Which rows a constraint counts, per its nodeAffinityPolicy / nodeTaintsPolicy; the
    affinity and taint masks are computed once per pod, on first use."""

    def __init__(self, table: NodeTable, pod: PodInfo, rows: Rows) -> None:
        self.table, self.pod, self.rows = table, pod, rows
        self._affinity: Mask | None = None
        self._taints: Mask | None = None

    def mask(self, c: Constraint) -> Mask:
        mask = np.ones(self.rows.size, dtype=np.bool_)
        if c.honor_affinity:
            mask &= self.affinity()
        if c.honor_taints:
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


def _all_keys(table: NodeTable, constraints: Sequence[Constraint], rows: Rows) -> Mask:
    mask = np.ones(rows.size, dtype=np.bool_)
    for c in constraints:
        mask &= table.label_column(c.topology_key)[rows] >= 0
    return mask


def _per_domain(
    table: NodeTable, key: str, rows: Rows, per_row: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], Mask]:
    """Matching pods per value id of `key` over `rows` (which all carry the key), and which
    value ids are domains at all (hold at least one of the rows)."""
    size = len(table.label_values.get(key, {}))
    ids = table.label_column(key)[rows]
    counts = np.bincount(ids, weights=per_row[rows], minlength=size).astype(np.int64)
    present = np.bincount(ids, minlength=size) > 0
    return counts, present


def _filter_state(
    table: NodeTable, pod: PodInfo, constraints: tuple[Constraint, ...], counter: MatchCounter
) -> _FilterState:
    live = table.live_rows()
    keyed = live[_all_keys(table, constraints, live)]
    inclusion = _Inclusion(table, pod, keyed)
    matches = counter.counts(table, pod.namespace, [c.selector for c in constraints])
    columns, domain_counts, minimum, self_match = [], [], [], []
    for c in constraints:
        eligible = keyed[inclusion.mask(c)]
        counts, present = _per_domain(table, c.topology_key, eligible, matches[c.selector])
        domains = int(present.sum())
        low = int(counts[present].min()) if domains else _NO_DOMAIN
        # Fewer eligible domains than minDomains: the global minimum is taken as 0.
        minimum.append(0 if domains < c.min_domains else low)
        columns.append(table.label_column(c.topology_key))
        domain_counts.append(counts)
        self_match.append(int(c.selector.matches(pod.labels)))
    return _FilterState(constraints, columns, domain_counts, minimum, self_match)


def _score_state(
    table: NodeTable,
    pod: PodInfo,
    constraints: tuple[Constraint, ...],
    rows: Rows,
    require_all: bool,
    counter: MatchCounter,
) -> _ScoreState:
    ignored = np.zeros(table.generation.size, dtype=np.bool_)
    if require_all:
        ignored[rows] = ~_all_keys(table, constraints, rows)
    scored = rows[~ignored[rows]]
    live = table.live_rows()
    counted = live[_all_keys(table, constraints, live)] if require_all else live
    inclusion = _Inclusion(table, pod, counted)
    matches = counter.counts(table, pod.namespace, [c.selector for c in constraints])
    columns, counts, per_row, weights = [], [], [], []
    for c in constraints:
        column = table.label_column(c.topology_key)
        columns.append(column)
        if c.topology_key == HOSTNAME:
            # Counted on the node itself during Score, whatever the inclusion policies.
            counts.append(matches[c.selector].copy())  # the counter's array moves on
            per_row.append(True)
            weights.append(_weight(scored.size))
            continue
        ids = column[scored]
        # Domains are the values on the scored nodes; as upstream, nodes without the key
        # (allowed for system defaults) form one more domain, the empty value.
        domains = np.unique(ids[ids >= 0]).size + int((ids < 0).any())
        eligible = counted[inclusion.mask(c) & (column[counted] >= 0)]
        domain_counts, _ = _per_domain(table, c.topology_key, eligible, matches[c.selector])
        counts.append(domain_counts)
        per_row.append(False)
        weights.append(_weight(domains))
    return _ScoreState(constraints, columns, counts, per_row, weights, ignored)


def _weight(domains: int) -> float:
    """Upstream's topologyNormalizingWeight: counts in topologies with few domains weigh less,
    so a small topology is not watered down by a big one."""
    return math.log(domains + 2)


def _lookup(values: npt.NDArray[np.int64], ids: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    """values[id] per entry; 0 where the id is -1 or beyond the array."""
    ok = (ids >= 0) & (ids < values.size)
    out: npt.NDArray[np.int64] = np.zeros(ids.size, dtype=np.int64)
    out[ok] = values[ids[ok]]
    return out


def new(args: PodTopologySpreadArgs | Mapping[str, Any], handle: Handle) -> PodTopologySpread:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return PodTopologySpread(
        pluginargs.coerce(NAME, PodTopologySpreadArgs, args), handle.default_spread_selector
    )
