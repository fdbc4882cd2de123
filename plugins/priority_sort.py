"""PrioritySort: higher priority first, then earlier arrival in the queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import Handle
from scheduler.model import PodInfo

NAME = "PrioritySort"


class PrioritySort:
    name = NAME
    row_local = True  # Filter/Score of a node depend on the pod and that node only

    def sort_key(self, pod: PodInfo, arrival: float) -> tuple[Any, ...]:
        return (-pod.priority, arrival)


def new(args: Mapping[str, Any], handle: Handle) -> PrioritySort:
    return PrioritySort()
