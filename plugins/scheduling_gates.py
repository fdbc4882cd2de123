"""SchedulingGates: a pod with spec.schedulingGates stays out of the active queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import Code, Handle, Status
from scheduler.model import PodInfo

NAME = "SchedulingGates"


class SchedulingGates:
    name = NAME
    row_local = True  # Filter/Score of a node depend on the pod and that node only

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        if not pod.gates:
            return None
        gates = ", ".join(pod.gates)
        return Status(
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (f"waiting for scheduling gates: [{gates}]",), NAME
        )


def new(args: Mapping[str, Any], handle: Handle) -> SchedulingGates:
    return SchedulingGates()
