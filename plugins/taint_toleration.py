"""TaintToleration: Filter rejects nodes with a NoSchedule/NoExecute taint the pod does not
tolerate; Score prefers nodes with fewer untolerated PreferNoSchedule taints.

Nodes share interned taint sets, so each distinct set is judged once per pod and the answer is
spread over the rows with one numpy take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler.framework import (
    NODE,
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
    Scores,
)
from scheduler.model import NodeInfo, PodInfo, Taint, Toleration
from scheduler.snapshot import NodeTable, Rows

NAME = "TaintToleration"
# Since v1.34.2 the reason no longer names the taint (v1.33 printed "{key: value}" of the first
# untolerated one), so every rejected node counts under this one text.
ERR_REASON_UNTOLERATED = "node(s) had untolerated taint(s)"


def first_untolerated(
    taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...]
) -> Taint | None:
    for taint in taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not any(
            t.tolerates(taint) for t in tolerations
        ):
            return taint
    return None


class TaintToleration:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """A node added or whose taints changed; the pod itself gaining a toleration."""
        return [
            ClusterEventWithHint(
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT),
                self.is_schedulable_after_node_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_TOLERATION),
                self.is_schedulable_after_pod_toleration_change,
            ),
        ]

    @staticmethod
    def is_schedulable_after_node_change(
        pod: PodInfo, old: NodeInfo | None, new: NodeInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterNodeChange: the node had an untolerated NoSchedule or
        NoExecute taint (an added node counts as having had one) and has none now."""
        was = old is None or first_untolerated(old.taints, pod.tolerations) is not None
        now = first_untolerated(new.taints, pod.tolerations) is not None
        return QueueingHint.QUEUE if was and not now else QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_pod_toleration_change(
        pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterTargetPodTolerationChange: any new toleration of the
        rejected pod may be the one it lacked."""
        return QueueingHint.QUEUE

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        sets = table.taint_set[rows]
        if not sets.any():
            return FilterResult.all_pass(rows.size)
        untolerated = np.zeros(len(table.taint_sets), dtype=np.bool_)
        for ident in np.unique(sets):
            taint = first_untolerated(table.taint_sets[ident], pod.tolerations)
            untolerated[ident] = taint is not None
        rejected = untolerated[sets]
        if not rejected.any():
            return FilterResult.all_pass(rows.size)
        return FilterResult.reject(~rejected, ERR_REASON_UNTOLERATED, resolvable=False)

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        tolerations = tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))
        sets = table.taint_set[rows]
        counts = np.zeros(len(table.taint_sets), dtype=np.int64)
        for ident in np.unique(sets):
            counts[ident] = sum(
                1
                for taint in table.taint_sets[ident]
                if taint.effect == "PreferNoSchedule"
                and not any(t.tolerates(taint) for t in tolerations)
            )
        return counts[sets]

    def normalize(self, scores: Scores) -> Scores:
        """Fewer untolerated taints is better: 100 - 100 * count / max (all 100 if max is 0)."""
        top = int(scores.max(initial=0))
        if top == 0:
            return np.full(scores.size, 100, dtype=np.int64)
        return 100 - scores * 100 // top


def new(args: Mapping[str, Any], handle: Handle) -> TaintToleration:
    return TaintToleration()
