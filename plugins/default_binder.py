"""DefaultBinder: binds the pod through the API (a pods/binding subresource POST)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import CycleState, Handle, Status
from scheduler.model import PodInfo

NAME = "DefaultBinder"


class DefaultBinder:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        await self.handle.bind(pod, node)
        return None


def new(args: Mapping[str, Any], handle: Handle) -> DefaultBinder:
    return DefaultBinder(handle)
