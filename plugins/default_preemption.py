"""DefaultPreemption: when no node fits a pod, preempt lower-priority pods to make room for it.

A thin plugin over the engine's evaluator (scheduler/preemption.py), as upstream's
plugins/defaultpreemption over framework/preemption. The plugin holds the policy upstream
keeps in it: its args, whether the pod may preempt at all (PodEligibleToPreemptOthers: not
`preemptionPolicy: Never`, and if it is already nominated to a node, that node must not still
be draining lower-priority pods terminated by preemption, unless filters now call the
nominated node unresolvable), how many nodes to dry-run from a random offset
(GetOffsetAndNumCandidates: `max(minCandidateNodesPercentage% of them,
minCandidateNodesAbsolute)`), and which victims are the more important (MoreImportantVictim).
The evaluator does the rest; PostFilter prefixes its messages with "preemption: ".

The evaluator predicts NodeResourcesFit's verdict from resource arithmetic (its dry-run
shortcuts), by that plugin's own rules: this module hands them in, the one place a plugin
imports another (as upstream's kubelet imports noderesources.Fits), so the engine imports none.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

from plugins import node_resources_fit
from scheduler import pluginargs
from scheduler.framework import (
    ASSIGNED_POD_DELETE,
    ClusterEventWithHint,
    Code,
    CycleState,
    Diagnosis,
    Handle,
    NodeCheck,
    PostFilterResult,
    QueueingHint,
    Status,
)
from scheduler.model import PodInfo
from scheduler.pluginargs import DefaultPreemptionArgs
from scheduler.preemption import Evaluator, ResourceRules, more_important_pod
from scheduler.snapshot import NodeTable

NAME = "DefaultPreemption"
PREFIX = "preemption: "
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."

# NodeResourcesFit's rules, for the evaluator's predictions of its verdict.
RESOURCES = ResourceRules(
    node_resources_fit.NAME, node_resources_fit.fits, node_resources_fit.insufficient
)


RUNNING = "waiting for the preemption for this pod to be finished"


def _skip(pod: PodInfo, old: Any, new: Any) -> QueueingHint:
    return QueueingHint.SKIP


class DefaultPreemption:
    name = NAME

    def __init__(
        self, args: DefaultPreemptionArgs, handle: Handle, rng: random.Random | None = None
    ) -> None:
        self.args = args
        self._rng = rng or handle.new_random()
        self.evaluator = Evaluator(NAME, handle, self, RESOURCES)

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        """Upstream's PreEnqueue (async preemption, on since v1.33): a pod whose victims are
        still being deleted stays out of the active queue."""
        if self.evaluator.is_running(pod):
            return Status.unschedulable(RUNNING, resolvable=False)
        return None

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's: a bound pod deleted may end the preemption a pod waits for. The hint
        always says skip: the plugins whose rejection the preemption resolves decide."""
        return [ClusterEventWithHint(ASSIGNED_POD_DELETE, _skip)]

    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        diagnosis: Diagnosis,
        check: NodeCheck,
    ) -> PostFilterResult:
        """The evaluator's result, its messages prefixed "preemption: " (upstream's
        PostFilter)."""
        result = self.evaluator.preempt(state, pod, table, diagnosis, check)
        status = result.status
        if status is not None and status.message:
            status = Status(status.code, (PREFIX + status.message,), status.plugin)
        message = PREFIX + result.message if result.message else ""
        return dataclasses.replace(result, status=status, message=message)

    def get_offset_and_num_candidates(self, nodes: int) -> tuple[int, int]:
        """Upstream's GetOffsetAndNumCandidates: a random node to start the dry run at, and
        calculateNumCandidates."""
        return (self._rng.randrange(nodes) if nodes else 0), num_candidates(self.args, nodes)

    def pod_eligible_to_preempt_others(
        self, pod: PodInfo, table: NodeTable, diagnosis: Diagnosis
    ) -> tuple[bool, str]:
        """Upstream's PodEligibleToPreemptOthers: (True, "") when the pod may preempt, else
        (False, why not)."""
        if (pod.raw.get("spec") or {}).get("preemptionPolicy") == "Never":
            return False, NEVER
        nominated = pod.nominated_node_name
        row = table.row_of.get(nominated) if nominated else None
        if row is None or row in diagnosis.unresolvable_rows or _prefilter_unresolvable(diagnosis):
            return True, ""
        for other in table.pods[row].values():
            if other.priority < pod.priority and self.evaluator.terminating_by_preemption(other):
                return False, TERMINATING
        return True, ""

    def victim_order(self, pod: PodInfo) -> tuple[int, str]:
        """Upstream's MoreImportantVictim (GenericWorkload off): higher priority first, then
        the longer running."""
        return more_important_pod(pod)


# --- args and constructor ------------------------------------------------------------------


def num_candidates(args: DefaultPreemptionArgs, nodes: int) -> int:
    """Upstream's calculateNumCandidates: dry-run at least this share (and at least this many)
    of the candidate nodes, never more than there are."""
    n = nodes * args.min_candidate_nodes_percentage // 100
    return min(max(n, args.min_candidate_nodes_absolute), nodes)


def new(args: DefaultPreemptionArgs | Mapping[str, Any], handle: Handle) -> DefaultPreemption:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return DefaultPreemption(pluginargs.coerce(NAME, DefaultPreemptionArgs, args), handle)


def _prefilter_unresolvable(diagnosis: Diagnosis) -> bool:
    status = diagnosis.pre_filter
    return status is not None and status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
