"""SchedulingGates: PreEnqueue keeps gated pods out of the active queue."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import scheduling_gates
from scheduler.framework import Code, QueueingHint, Status
from scheduler.handle import in_memory
from scheduler.model import compile_pod
from tests.builders import make_pod
from tests.unit.tables import registered, run_hint

PLUGIN = scheduling_gates.new({}, in_memory())


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


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: TargetPod/UpdatePodSchedulingGatesEliminated, with a
    hint."""
    assert registered(PLUGIN) == [("TargetPodUpdatePodSchedulingGatesEliminated", True)]


def test_is_schedulable_after_update_target_pod_scheduling_gates_eliminated() -> None:
    """Upstream's TestIsSchedulableAfterUpdateTargetPodSchedulingGatesEliminated: the pod's
    gates gone, it is queued."""
    gated = make_pod("p").gate("foo")
    label = "TargetPodUpdatePodSchedulingGatesEliminated"
    assert run_hint(PLUGIN, label, gated, gated, make_pod("p")) is QueueingHint.QUEUE
