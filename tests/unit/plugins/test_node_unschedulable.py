"""NodeUnschedulable: cordoned nodes take only pods tolerating the unschedulable taint
(upstream's node_unschedulable_test.go)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from plugins import node_unschedulable
from scheduler.framework import Handle
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, unresolvable

PLUGIN = node_unschedulable.new({}, cast(Handle, None))
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
