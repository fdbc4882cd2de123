"""NodeName: a pod naming its node fits only that node (upstream v1.37's node_name_test.go:
TestNodeName and TestNodeName_PreFilter), and what v1.37's default order (NodeName before
NodeUnschedulable) reports for a pod that names a cordoned node."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from plugins import node_name
from scheduler.framework import Code, CycleState, Diagnosis, Status
from scheduler.handle import in_memory
from scheduler.model import compile_pod
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, registered, unresolvable

PLUGIN = node_name.new({}, in_memory())
REASON = "node(s) didn't match the requested node name"
NARROWED = "node(s) didn't satisfy plugin(s) [NodeName]"
CORDONED = "node(s) were unschedulable"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
CYCLE = "berth"  # the schedulerName of tests.unit.test_cycle's profile


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        pytest.param(make_pod("p").obj_(), {"foo": [], "bar": []}, id="no-host-specified"),
        pytest.param(make_pod("p").node("foo").obj_(), {"foo": [], "bar": [REASON]}, id="match"),
        pytest.param(
            make_pod("p").node("baz").obj_(), {"foo": [REASON], "bar": [REASON]}, id="unknown-node"
        ),
    ],
)
def test_filter(incoming: dict[str, Any], expected: dict[str, list[str]]) -> None:
    """Only the named node passes; every other node gets upstream's reason."""
    table = build_table([make_node("foo").obj_(), make_node("bar").obj_()])
    assert filter_reasons(PLUGIN, incoming, table) == expected


def test_rejection_is_unresolvable() -> None:
    """Preemption cannot change a pod's nodeName."""
    table = build_table([make_node("foo").obj_(), make_node("bar").obj_()])
    assert unresolvable(PLUGIN, make_pod("p").node("foo").obj_(), table) == {"bar": True}


@pytest.mark.parametrize(
    ("incoming", "narrowed_to"),
    [
        pytest.param(
            make_pod("p").node("foo").obj_(),
            frozenset({"foo"}),
            id="assigned-pod-with-node-name-set-prefilter-restricts-to-assigned-node",
        ),
        pytest.param(
            make_pod("p").obj_(),
            None,
            id="unassigned-pod-without-node-name-set-prefilter-returns-nil",
        ),
    ],
)
def test_pre_filter(incoming: dict[str, Any], narrowed_to: frozenset[str] | None) -> None:
    """v1.37: PreFilter narrows the nodes to spec.nodeName (no gate), and never skips."""
    state = CycleState()
    table = build_table([make_node("foo").obj_(), make_node("bar").obj_()])
    assert PLUGIN.pre_filter(state, compile_pod(incoming), table) is None
    assert state.node_names == narrowed_to
    assert state.narrowed_by == ({"NodeName"} if narrowed_to else set())


def test_default_filter_order_names_node_name_first() -> None:
    """In v1.37's default order NodeName filters before NodeUnschedulable, so a node failing
    both at Filter (PreFilter not run) counts under NodeName's reason."""
    from tests.unit.test_cycle import RecordingHandle, profiles

    profile = profiles(RecordingHandle())[CYCLE]
    names = [p.name for p in profile.filter]
    assert names.index("NodeName") < names.index("NodeUnschedulable")
    table = build_table([make_node("foo").obj_(), make_node("bar").unschedulable().obj_()])
    pod = compile_pod(make_pod("p").scheduler(CYCLE).node("foo").obj_())
    diagnosis = Diagnosis()
    rows = np.asarray([table.row_of["bar"]], dtype=np.int64)
    assert profile.run_filters(CycleState(), pod, table, rows, diagnosis).size == 0
    assert diagnosis.by_plugin == {"NodeName": {REASON: 1}}


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_cycle_pod_naming_a_cordoned_node(batching: bool) -> None:
    """As v1.37 reports it: the other cordoned node is left out by NodeName's PreFilter, the
    named one is filtered and fails NodeUnschedulable (v1.33: "2 node(s) were
    unschedulable")."""
    from tests.unit.test_cycle import World

    world = World([make_node(n).unschedulable().obj_() for n in ("foo", "bar")], batching=batching)
    attempt = world.schedule(make_pod("p").scheduler(CYCLE).node("foo").obj_())
    assert attempt.status is not None
    assert attempt.status.message == (
        f"0/2 nodes are available: 1 {NARROWED}, 1 {CORDONED}. "
        f"preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}."
    )
    assert attempt.diagnosis is not None
    assert attempt.diagnosis.by_plugin == {
        "NodeName": {NARROWED: 1},
        "NodeUnschedulable": {CORDONED: 1},
    }
    await world.scheduler.drain()


async def test_cycle_node_name_and_node_affinity_pinning_apart() -> None:
    """NodeName's and NodeAffinity's PreFilter results intersect to nothing: upstream's
    "simultaneously" status, unresolvable (what PostFilter appends is DynamicResources'
    business, tested there)."""
    from tests.unit.test_cycle import World

    world = World([make_node(n).obj_() for n in ("foo", "bar")])
    pinned = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["bar"]}]}
    raw = (
        make_pod("p")
        .scheduler(CYCLE)
        .node("foo")
        .node_affinity(
            {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [pinned]}}
        )
        .obj_()
    )
    attempt = world.schedule(raw)
    simultaneously = "node(s) didn't satisfy plugin(s) [NodeAffinity NodeName] simultaneously"
    assert attempt.diagnosis is not None
    assert attempt.diagnosis.pre_filter == Status(
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (simultaneously,), "NodeAffinity"
    )
    assert attempt.status is not None
    assert attempt.status.message.startswith(f"0/2 nodes are available: {simultaneously}. ")
    await world.scheduler.drain()


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: Node/Add, without a hint (every added node is worth a
    retry)."""
    assert registered(PLUGIN) == [("NodeAdd", False)]
