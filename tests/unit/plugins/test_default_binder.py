"""DefaultBinder: binds through the handle and reports success."""

from __future__ import annotations

from plugins import default_binder
from scheduler.framework import CycleState
from scheduler.handle import ClusterHandle, InMemoryApi
from scheduler.model import compile_pod
from tests.builders import make_pod


async def test_bind_goes_through_the_handle() -> None:
    """bind() calls handle.bind(pod, node) once and returns success (None)."""
    api = InMemoryApi()
    binder = default_binder.new({}, ClusterHandle(api))
    pod = compile_pod(make_pod("a").obj_())
    assert await binder.bind(CycleState(), pod, "node-1") is None
    assert api.placement == {"default/a": "node-1"}
