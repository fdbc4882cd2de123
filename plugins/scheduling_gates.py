"""SchedulingGates: a pod with spec.schedulingGates stays out of the active queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import (
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    Code,
    Handle,
    QueueingHint,
    Status,
)
from scheduler.model import PodInfo

NAME = "SchedulingGates"


class SchedulingGates:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """The pod itself losing its last scheduling gate."""
        return [
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED),
                self.is_schedulable_after_gates_eliminated,
            )
        ]

    @staticmethod
    def is_schedulable_after_gates_eliminated(
        pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterUpdateTargetPodSchedulingGatesEliminated: always."""
        return QueueingHint.QUEUE

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        if not pod.gates:
            return None
        gates = ", ".join(pod.gates)
        return Status(
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (f"waiting for scheduling gates: [{gates}]",), NAME
        )


def new(args: Mapping[str, Any], handle: Handle) -> SchedulingGates:
    return SchedulingGates()
