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

Cost: per-row and per-domain counts of matching pods are kept between cycles and redone only
for rows whose generation moved (plugins/topology_counts.py), so PreFilter and PreScore cost
little more than the rows that changed since the last pod; Filter and Score are vector lookups.
That is what lets a pod with only `ScheduleAnyway` constraints (the system defaults) take the
equivalence-batched path: its Filter is row-local, and PreScore + Score run over each pod's
sampled window (`window_scored_for`).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plugins.topology_counts import DomainCounter, Domains, MatchCounter, all_keys
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
from scheduler.snapshot import ZONE, Mask, NodeTable, Rows

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


class Counters:
    """The plugin's counts kept between cycles (plugins/topology_counts.py)."""

    def __init__(self) -> None:
        self.matches = MatchCounter()
        self.domains = DomainCounter()
        # id(constraint) -> (it, required keys, namespace, what it counts): a constraint
        # object is reused for every pod of a workload (the defaults), so this skips hashing
        # its selector for each pod.
        self._what: dict[int, tuple[Constraint, tuple[str, ...], str, Domains]] = {}

    def what(self, c: Constraint, namespace: str, required: tuple[str, ...]) -> Domains:
        """What constraint `c` counts for a pod of `namespace` (DomainCounter's key)."""
        known = self._what.get(id(c))
        if known is not None and known[0] is c and known[1] == required and known[2] == namespace:
            return known[3]
        what = Domains(
            namespace, c.selector, c.topology_key, required, c.honor_affinity, c.honor_taints
        )
        if len(self._what) >= 256:
            self._what.clear()
        self._what[id(c)] = (c, required, namespace, what)
        return what


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
    ignored: Mask | None  # per row: misses a topology key (scored 0); None: no row does


class PodTopologySpread:
    name = NAME

    def __init__(
        self, args: PodTopologySpreadArgs, default_selector: DefaultSelector | None = None
    ) -> None:
        self.args = args
        self.system_defaulted = args.defaulting_type == SYSTEM
        self.defaults = SYSTEM_DEFAULTS if self.system_defaulted else args.default_constraints
        self.default_selector = default_selector
        self._default_actions = tuple(
            dict.fromkeys(
                c.when_unsatisfiable
                for c in self.defaults
                if c.when_unsatisfiable in (DO_NOT_SCHEDULE, SCHEDULE_ANYWAY)
            )
        )
        self.counts = Counters()
        # (action, the default selector) -> the default constraints built on it, and what each
        # counts: asked several times per pod, and the selector object is the same for every
        # pod the same workload objects select (SelectorSources keeps its answers).
        self._defaulted: dict[tuple[str, int], tuple[LabelSelector, tuple[Constraint, ...]]] = {}

    def row_local_for(self, pod: PodInfo) -> bool:
        """Only a pod this plugin does nothing for keeps the batched path: with constraints, a
        node's answer depends on the pods of every node in its domain."""
        if pod.spread_constraints:
            return not any(
                c.when_unsatisfiable in (DO_NOT_SCHEDULE, SCHEDULE_ANYWAY)
                for c in pod.spread_constraints
            )
        # Without constraints of its own: only the actions the defaults have can apply (one
        # question for the system defaults instead of two: this runs for every pod).
        return not any(self.constraints(pod, action) for action in self._default_actions)

    def window_scored_for(self, pod: PodInfo) -> bool:
        """A pod with only ScheduleAnyway constraints (the system defaults, typically): PreFilter
        skips, so Filter is row-local; Score reads per-domain counts and weights taken over the
        scored nodes, so the batched path runs PreScore and Score over each pod's window."""
        return not self.constraints(pod, DO_NOT_SCHEDULE)

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
        state.write(_FILTER_KEY, _filter_state(table, pod, constraints, self.counts))
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        s: _FilterState | None = state.data.get(_FILTER_KEY)
        if s is None:  # PreFilter did not run: recompute, as upstream's Filter contract asks
            constraints = self.constraints(pod, DO_NOT_SCHEDULE)
            if not constraints:
                return FilterResult.all_pass(rows.size)
            s = _filter_state(table, pod, constraints, self.counts)
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
            _SCORE_KEY, _score_state(table, pod, constraints, rows, require_all, self.counts)
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
            # Per-domain counts end with a 0 that id -1 (no such label) indexes.
            count = s.counts[i][rows] if s.per_row[i] else s.counts[i][ids]
            # Upstream's scoreForCount, summed in constraint order in float64.
            total += np.where(has, count * s.weights[i] + float(c.max_skew - 1), 0.0)
        # math.Round: halves away from zero (every total here is >= 0). The fraction is exact.
        rounded = np.floor(total)
        rounded += total - rounded >= 0.5
        out: Scores = rounded.astype(np.int64)
        if s.ignored is not None:
            # A negative raw score marks a node that misses a topology key: normalize() gives
            # it 0.
            out = np.where(s.ignored[rows], -1, out)
        return out

    def normalize(self, scores: Scores) -> Scores:
        """Fewer matching pods is better: 100 * (max + min - score) / max over the scored
        nodes, 100 for all when max is 0; ignored nodes get 0."""
        if scores.size and int(scores.min()) >= 0:
            # No node ignored (the usual case): the same formula without the masks.
            low, high = int(scores.min()), int(scores.max())
            if high == 0:
                return np.full(scores.size, 100, dtype=np.int64)
            every: Scores = 100 * (high + low - scores) // high
            return every
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
        key = (action, id(selector))
        known = self._defaulted.get(key)
        if known is not None and known[0] is selector:
            return known[1]
        built = tuple(_internal(c, selector) for c in defaults)
        if len(self._defaulted) >= 256:
            self._defaulted.clear()
        self._defaulted[key] = (selector, built)
        return built


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


# --- states ---------------------------------------------------------------------------------


def _filter_state(
    table: NodeTable, pod: PodInfo, constraints: tuple[Constraint, ...], counts: Counters
) -> _FilterState:
    matches = counts.matches.counts(table, pod.namespace, [c.selector for c in constraints])
    keys = tuple(c.topology_key for c in constraints)  # a node must carry them all
    columns, domain_counts, minimum, self_match = [], [], [], []
    for c, matching in zip(constraints, matches, strict=True):
        what = counts.what(c, pod.namespace, keys)
        pods, rows = counts.domains.domains(table, pod, what, matching)
        present = rows > 0
        domains = int(present.sum())
        low = int(pods[present].min()) if domains else _NO_DOMAIN
        # Fewer eligible domains than minDomains: the global minimum is taken as 0.
        minimum.append(0 if domains < c.min_domains else low)
        columns.append(table.label_column(c.topology_key))
        domain_counts.append(pods)
        self_match.append(int(c.selector.matches(pod.labels)))
    return _FilterState(constraints, columns, domain_counts, minimum, self_match)


def _score_state(
    table: NodeTable,
    pod: PodInfo,
    constraints: tuple[Constraint, ...],
    rows: Rows,
    require_all: bool,
    counts: Counters,
) -> _ScoreState:
    keys = tuple(c.topology_key for c in constraints)
    ignored: Mask | None = None
    scored = rows
    if require_all:
        ignored = np.zeros(table.generation.size, dtype=np.bool_)
        ignored[rows] = ~all_keys(table, keys, rows)
        scored = rows[~ignored[rows]]
    matches = counts.matches.counts(table, pod.namespace, [c.selector for c in constraints])
    columns, per_domain, per_row, weights = [], [], [], []
    for c, matching in zip(constraints, matches, strict=True):
        column = table.label_column(c.topology_key)
        columns.append(column)
        if c.topology_key == HOSTNAME:
            # Counted on the node itself during Score, whatever the inclusion policies.
            per_domain.append(matching.copy())  # the counter's array moves on
            per_row.append(True)
            weights.append(_weight(scored.size))
            continue
        ids = column[scored]
        # Domains are the values on the scored nodes; as upstream, nodes without the key
        # (allowed for system defaults) form one more domain, the empty value.
        named = ids[ids >= 0]
        domains = int(np.count_nonzero(np.bincount(named))) if named.size else 0
        domains += int(named.size < ids.size)
        what = counts.what(c, pod.namespace, keys if require_all else ())
        pods, _ = counts.domains.domains(table, pod, what, matching)
        per_domain.append(np.append(pods, 0))  # for id -1: see score()
        per_row.append(False)
        weights.append(_weight(domains))
    return _ScoreState(constraints, columns, per_domain, per_row, weights, ignored)


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
