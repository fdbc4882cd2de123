"""SchedulingGates: PreEnqueue keeps gated pods out of the active queue."""

from __future__ import annotations

from typing import Any, cast

import pytest

from plugins import scheduling_gates
from scheduler.framework import Code, Handle, Status
from scheduler.model import compile_pod
from tests.builders import make_pod

PLUGIN = scheduling_gates.new({}, cast(Handle, None))


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        pytest.param(make_pod("p").obj_(), None, id="no-gates"),
        pytest.param(
            make_pod("p").gate("example.com/a").obj_(),
            Status(
                Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                ("waiting for scheduling gates: [example.com/a]",),
                "SchedulingGates",
            ),
            id="one-gate",
        ),
        pytest.param(
            make_pod("p").gate("a").gate("b").obj_(),
            Status(
                Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                ("waiting for scheduling gates: [a, b]",),
                "SchedulingGates",
            ),
            id="two-gates",
        ),
    ],
)
def test_pre_enqueue(incoming: dict[str, Any], expected: Status | None) -> None:
    """Gated pods get UnschedulableAndUnresolvable naming their gates, as upstream."""
    assert PLUGIN.pre_enqueue(compile_pod(incoming)) == expected
