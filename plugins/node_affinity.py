"""NodeAffinity: nodeSelector and required node affinity as a Filter, preferred node affinity
as a Score (sum of the weights of the matching terms, normalized to 0..100).

`addedAffinity` in the plugin args applies to every pod of the profile, on top of its own.

PreFilter narrows the nodes when every required term names nodes with a `metadata.name In`
field requirement (how DaemonSet pods are pinned): only those nodes are filtered, and a term
whose name requirements exclude each other leaves none ("pod affinity terms conflict").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler import pluginargs
from scheduler.framework import (
    NODE,
    SKIP,
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
    NodeInfo,
    PodInfo,
    SelectorTerm,
    requirement_matches,
)
from scheduler.pluginargs import NodeAffinityArgs
from scheduler.snapshot import NodeTable, Rows, selector_mask, term_mask

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"
ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
CONFLICT = "pod affinity terms conflict"
NAME_FIELD = "metadata.name"


class NodeAffinity:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def __init__(self, args: NodeAffinityArgs) -> None:
        self.args = args

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """A node added, or its labels changed."""
        return [
            ClusterEventWithHint(
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),
                self.is_schedulable_after_node_change,
            )
        ]

    def is_schedulable_after_node_change(
        self, pod: PodInfo, old: NodeInfo | None, new: NodeInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterNodeChange: the node (added, or updated) matches the
        profile's addedAffinity and the pod's required node affinity, and an updated node did
        not match the pod's before."""
        added = self.args.added_required
        if added is not None and not _node_matches_any(new, added):
            return QueueingHint.SKIP
        if not _required_match(pod, new):
            return QueueingHint.SKIP
        if old is not None and _required_match(pod, old):
            return QueueingHint.SKIP  # it matched before: the update changed nothing for the pod
        return QueueingHint.QUEUE

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        if (
            not pod.node_selector
            and pod.required_terms is None
            and (self.args.added_required is None)
        ):
            return SKIP
        if not pod.required_terms:
            return None
        names = _named_nodes(pod.required_terms)
        if names is None:
            return None
        if not names:
            return Status.unschedulable(CONFLICT, resolvable=False)
        state.restrict_nodes(NAME, names)
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        # As upstream: the profile's addedAffinity is checked first and has its own reason; a
        # node it rejects is not also counted against the pod's own affinity.
        enforced = np.ones(rows.size, dtype=np.bool_)
        if self.args.added_required is not None:
            enforced = _any_term(table, self.args.added_required, rows)
        own = selector_mask(table, pod.node_selector, rows)
        if pod.required_terms is not None:
            own &= _any_term(table, pod.required_terms, rows)
        return FilterResult(
            enforced & own,
            (
                Reason(ENFORCED, ~enforced, resolvable=False),
                Reason(REASON, enforced & ~own, resolvable=False),
            ),
        )

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        if not pod.preferred_terms and not self.args.added_preferred:
            return SKIP
        return None

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        total = np.zeros(rows.size, dtype=np.int64)
        for preferred in (*pod.preferred_terms, *self.args.added_preferred):
            if preferred.weight:
                total += term_mask(table, preferred.term, rows) * preferred.weight
        return total

    def normalize(self, scores: Scores) -> Scores:
        top = int(scores.max(initial=0))
        return scores if top == 0 else scores * 100 // top


def _named_nodes(terms: tuple[SelectorTerm, ...]) -> frozenset[str] | None:
    """The nodes the required terms can match by name, or None when some term does not
    restrict the name (terms are ORed, so then any node may match). A term's `metadata.name
    In` requirements are ANDed: their intersection may be empty."""
    names: frozenset[str] = frozenset()
    for term in terms:
        term_names: frozenset[str] | None = None
        for req in term.fields:
            if req.key == NAME_FIELD and req.operator == "In":
                values = frozenset(req.values)
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return names


def _required_match(pod: PodInfo, node: NodeInfo) -> bool:
    """Upstream's GetRequiredNodeAffinity(pod).Match(node): nodeSelector and required terms."""
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    return pod.required_terms is None or _node_matches_any(node, pod.required_terms)


def _node_matches_any(node: NodeInfo, terms: tuple[SelectorTerm, ...]) -> bool:
    """One node against ORed NodeSelectorTerms, as snapshot.term_mask judges a row: a term
    without requirements matches nothing; matchFields knows metadata.name In/NotIn only."""
    for term in terms:
        if not term.expressions and not term.fields:
            continue
        if not all(requirement_matches(r, node.labels.get(r.key)) for r in term.expressions):
            continue
        if all(
            r.key == NAME_FIELD
            and r.operator in ("In", "NotIn")
            and requirement_matches(r, node.name)
            for r in term.fields
        ):
            return True
    return False


def _any_term(table: NodeTable, terms: tuple[SelectorTerm, ...], rows: Rows) -> Any:
    mask = np.zeros(rows.size, dtype=np.bool_)
    for term in terms:
        mask |= term_mask(table, term, rows)
    return mask


def new(args: NodeAffinityArgs | Mapping[str, Any], handle: Handle) -> NodeAffinity:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return NodeAffinity(pluginargs.coerce(NAME, NodeAffinityArgs, args))
