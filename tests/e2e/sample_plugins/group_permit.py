"""GroupPermit: a sample Permit plugin that holds the pods of a group until N of them have a
node, then allows them all (the core of gang scheduling, on berth's WaitingPod API).

A pod joins group G of size N with labels `permit.berth.dev/group: G` and
`permit.berth.dev/size: "N"`. Its Permit waits (up to `timeoutSeconds`, default 60) while
fewer than N members are waiting; the member that makes N allows every waiting one and passes
itself. Pods without the labels pass at once. Args are checked strictly: an unknown field or a
timeout outside (0, 900] raises ValueError, which `berth run` reports with the field path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import Code, CycleState, Handle, Status
from scheduler.model import PodInfo

NAME = "GroupPermit"
GROUP = "permit.berth.dev/group"
SIZE = "permit.berth.dev/size"


class GroupPermit:
    name = NAME

    def __init__(self, handle: Handle, timeout: float) -> None:
        self.handle = handle
        self.timeout = timeout

    def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status | None, float]:
        group = pod.labels.get(GROUP)
        if not group:
            return None, 0.0
        size = int(pod.labels.get(SIZE, "1"))
        waiting = [
            w
            for w in self.handle.iterate_waiting_pods()
            if w.pod.labels.get(GROUP) == group and w.pod.namespace == pod.namespace
        ]
        if len(waiting) + 1 < size:
            return Status(
                Code.WAIT, (f"waiting for {size - len(waiting) - 1} more of {group}",)
            ), self.timeout
        for member in waiting:
            member.allow(NAME)
        return None, 0.0


def new(args: Mapping[str, Any], handle: Handle) -> GroupPermit:
    unknown = sorted(set(args) - {"timeoutSeconds"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    timeout = args.get("timeoutSeconds", 60)
    if not isinstance(timeout, int | float) or not 0 < timeout <= 900:
        raise ValueError(f"timeoutSeconds: Invalid value: {timeout!r}: must be in (0, 900]")
    return GroupPermit(handle, float(timeout))
