"""PrioritySort: higher priority first, then earlier arrival in the queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import Handle
from scheduler.model import PodInfo

NAME = "PrioritySort"


class PrioritySort:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def sort_key(self, pod: PodInfo, arrival: float) -> tuple[Any, ...]:
        return (-pod.priority, arrival)


def new(args: Mapping[str, Any], handle: Handle) -> PrioritySort:
    return PrioritySort()
