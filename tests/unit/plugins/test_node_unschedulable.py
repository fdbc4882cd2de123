"""NodeUnschedulable: cordoned nodes take only pods tolerating the unschedulable taint
(upstream's node_unschedulable_test.go)."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import node_unschedulable
from scheduler.framework import QueueingHint
from scheduler.handle import in_memory
from tests.builders import NodeBuilder, PodBuilder, make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, registered, run_hint, unresolvable

PLUGIN = node_unschedulable.new({}, in_memory())
REASON = "node(s) were unschedulable"
TAINT_KEY = "node.kubernetes.io/unschedulable"


def tolerating(key: str, effect: str, operator: str = "Exists") -> dict[str, Any]:
    return make_pod("p").toleration(key, effect=effect, operator=operator).obj_()


@pytest.mark.parametrize(
    ("incoming", "cordoned", "expected"),
    [
        pytest.param(make_pod("p").obj_(), True, [REASON], id="cordoned-rejects"),
        pytest.param(make_pod("p").obj_(), False, [], id="schedulable-node"),
        pytest.param(tolerating(TAINT_KEY, "NoSchedule"), True, [], id="tolerates-the-taint"),
        pytest.param(tolerating(TAINT_KEY, ""), True, [], id="tolerates-all-effects"),
        pytest.param(tolerating("", ""), True, [], id="tolerates-everything"),
        pytest.param(tolerating(TAINT_KEY, "NoExecute"), True, [REASON], id="wrong-effect"),
        pytest.param(tolerating("other", "NoSchedule"), True, [REASON], id="wrong-key"),
        # Lt/Gt tolerate nothing while TaintTolerationComparisonOperators is off (v1.37).
        pytest.param(
            tolerating(TAINT_KEY, "NoSchedule", operator="Gt"), True, [REASON], id="gt-operator"
        ),
        pytest.param(
            tolerating(TAINT_KEY, "NoSchedule", operator="Lt"), True, [REASON], id="lt-operator"
        ),
    ],
)
def test_filter(incoming: dict[str, Any], cordoned: bool, expected: list[str]) -> None:
    """spec.unschedulable rejects unless the pod tolerates the unschedulable taint."""
    builder = make_node("n")
    if cordoned:
        builder.unschedulable()
    table = build_table([builder.obj_()])
    assert filter_reasons(PLUGIN, incoming, table) == {"n": expected}


def test_rejection_is_unresolvable() -> None:
    """Preemption cannot uncordon a node."""
    table = build_table([make_node("a").unschedulable().obj_(), make_node("b").obj_()])
    assert unresolvable(PLUGIN, make_pod("p").obj_(), table) == {"a": True}


# --- events ----------------------------------------------------------------------------------

UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: Node/Add|UpdateNodeTaint (spec.unschedulable turned off
    counts as a taint update) and TargetPod/UpdatePodToleration, both with hints."""
    assert registered(PLUGIN) == [
        ("NodeAdd", True),
        ("NodeUpdateNodeTaint", True),
        ("TargetPodUpdatePodToleration", True),
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterNodeChange (its cases with objects of the wrong type
        # have no counterpart: berth's hints get compiled NodeInfos).
        pytest.param(
            None,
            make_node("n").unschedulable(),
            QueueingHint.SKIP,
            id="skip-queue-on-unschedulable-node-added",
        ),
        pytest.param(
            None, make_node("n"), QueueingHint.QUEUE, id="queue-on-schedulable-node-added"
        ),
        pytest.param(
            make_node("n").unschedulable(),
            make_node("n").unschedulable().taint("node.kubernetes.io/not-ready", "", "NoExecute"),
            QueueingHint.SKIP,
            id="skip-unrelated-change-unschedulable-true",
        ),
        pytest.param(
            make_node("n"),
            make_node("n").taint("node.kubernetes.io/not-ready", "", "NoExecute"),
            QueueingHint.SKIP,
            id="skip-unrelated-change-unschedulable-false",
        ),
        pytest.param(
            make_node("n").unschedulable(),
            make_node("n"),
            QueueingHint.QUEUE,
            id="queue-on-unschedulable-field-change",
        ),
    ],
)
def test_is_schedulable_after_node_change(
    old: NodeBuilder | None, new: NodeBuilder, expected: QueueingHint
) -> None:
    """A node added schedulable, or uncordoned, moves the pod."""
    assert run_hint(PLUGIN, "NodeUpdateNodeTaint", make_pod("p"), old, new) is expected


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterPodTolerationChange (objects of the wrong type: no
        # counterpart).
        pytest.param(
            make_pod("p").uid("uid").toleration(UNSCHEDULABLE, effect="", operator="Exists"),
            QueueingHint.QUEUE,
            id="queue-when-the-unsched-pod-gets-toleration",
        ),
        pytest.param(
            make_pod("p").uid("uid").toleration("unrelated-key", effect="", operator="Exists"),
            QueueingHint.SKIP,
            id="skip-when-the-unsched-pod-gets-unrelated-toleration",
        ),
    ],
)
def test_is_schedulable_after_pod_toleration_change(
    new: PodBuilder, expected: QueueingHint
) -> None:
    """The pod itself now tolerating the unschedulable taint moves it."""
    pod = make_pod("p").uid("uid")
    assert run_hint(PLUGIN, "TargetPodUpdatePodToleration", pod, pod, new) is expected
