"""DefaultBinder: binds through the handle and reports success."""

from __future__ import annotations

from plugins import default_binder
from scheduler.framework import CycleState
from scheduler.model import PodInfo, compile_pod
from tests.builders import make_pod


class RecordingHandle:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def bind(self, pod: PodInfo, node: str) -> None:
        self.calls.append((pod.key, node))


async def test_bind_goes_through_the_handle() -> None:
    """bind() calls handle.bind(pod, node) once and returns success (None)."""
    handle = RecordingHandle()
    binder = default_binder.new({}, handle)
    pod = compile_pod(make_pod("a").obj_())
    assert await binder.bind(CycleState(), pod, "node-1") is None
    assert handle.calls == [("default/a", "node-1")]
