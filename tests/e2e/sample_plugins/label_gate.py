"""LabelGate: a sample PreEnqueue plugin that keeps pods labelled `gate.berth.dev/hold` out of
the active queue, and the queueing hint that lets them in once the label is removed.

It shows the per-profile PreEnqueue set (only profiles that enable it gate anything) and an
out-of-tree plugin's queueing hint on the pod's own update (TargetPod, UpdatePodLabel).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import (
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    Handle,
    QueueingHint,
    Status,
)
from scheduler.model import PodInfo

NAME = "LabelGate"
HOLD = "gate.berth.dev/hold"


class LabelGate:
    name = NAME

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        if HOLD in pod.labels:
            return Status.unschedulable(f"held by label {HOLD}", resolvable=False)
        return None

    def events_to_register(self) -> list[ClusterEventWithHint]:
        return [
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_LABEL), self.released
            )
        ]

    def released(self, pod: PodInfo, old: Any, new: Any) -> QueueingHint:
        return QueueingHint.QUEUE if HOLD not in new.labels else QueueingHint.SKIP


def new(args: Mapping[str, Any], handle: Handle) -> LabelGate:
    if args:
        raise ValueError(f"unknown field {sorted(args)[0]!r}")
    return LabelGate()
