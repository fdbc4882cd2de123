"""TaintToleration: Filter with upstream's reason string and the cases of
taint_toleration_test.go (TestTaintTolerationFilter), Score with TestTaintTolerationScore."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import taint_toleration
from scheduler.framework import QueueingHint
from scheduler.handle import in_memory
from tests.builders import NodeBuilder, make_node, make_pod
from tests.unit.tables import (
    build_table,
    filter_reasons,
    registered,
    run_hint,
    scores,
    unresolvable,
)

JSON = dict[str, Any]
Taint = tuple[str, str, str]  # key, value, effect
Tol = dict[str, str]
SLA = "node.kubernetes.io/sla"

PLUGIN = taint_toleration.new({}, in_memory())
# v1.37's Filter reason, word for word: it no longer names the taint (v1.34.2).
UNTOLERATED = "node(s) had untolerated taint(s)"


def node(name: str, *taints: Taint) -> JSON:
    builder = make_node(name)
    for key, value, effect in taints:
        builder.taint(key, value, effect)
    return builder.obj_()


def pod(*tolerations: Tol) -> JSON:
    raw = make_pod("pod1").obj_()
    if tolerations:
        raw["spec"]["tolerations"] = [dict(t) for t in tolerations]
    return raw


@pytest.mark.parametrize(
    ("incoming", "taints", "expected"),
    [
        pytest.param(
            pod(),
            [("dedicated", "user1", "NoSchedule")],
            [UNTOLERATED],
            id="no-tolerations-nonempty-taints",
        ),
        pytest.param(
            pod({"key": "dedicated", "value": "user1", "effect": "NoSchedule"}),
            [("dedicated", "user1", "NoSchedule")],
            [],
            id="tolerated-dedicated-node-default-operator",
        ),
        pytest.param(
            pod(
                {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}
            ),
            [("dedicated", "user1", "NoSchedule")],
            [UNTOLERATED],
            id="value-mismatch",
        ),
        pytest.param(
            pod({"key": "foo", "operator": "Exists", "effect": "NoSchedule"}),
            [("foo", "bar", "NoSchedule")],
            [],
            id="exists-tolerates-any-value",
        ),
        pytest.param(
            pod(
                {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"},
                {"key": "foo", "operator": "Exists", "effect": "NoSchedule"},
            ),
            [("dedicated", "user2", "NoSchedule"), ("foo", "bar", "NoSchedule")],
            [],
            id="all-taints-tolerated",
        ),
        pytest.param(
            pod({"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}),
            [("foo", "bar", "NoSchedule")],
            [UNTOLERATED],
            id="nonempty-effect-mismatch",
        ),
        pytest.param(
            pod({"key": "foo", "operator": "Equal", "value": "bar"}),
            [("foo", "bar", "NoSchedule")],
            [],
            id="empty-toleration-effect-matches-all",
        ),
        pytest.param(
            pod(
                {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}
            ),
            [("dedicated", "user1", "PreferNoSchedule")],
            [],
            id="prefer-no-schedule-does-not-filter",
        ),
        pytest.param(
            pod(), [("dedicated", "user1", "PreferNoSchedule")], [], id="no-tolerations-prefer"
        ),
        pytest.param(
            pod(),
            [("gone", "", "NoExecute")],
            [UNTOLERATED],
            id="no-execute-filters-and-empty-value",
        ),
        pytest.param(
            pod({"key": "a", "operator": "Exists"}),
            [("a", "1", "NoSchedule"), ("b", "2", "NoSchedule"), ("c", "3", "NoExecute")],
            [UNTOLERATED],
            id="several-untolerated-taints-one-reason",
        ),
        pytest.param(
            pod({"operator": "Exists"}),
            [("a", "1", "NoSchedule"), ("c", "3", "NoExecute")],
            [],
            id="exists-without-key-tolerates-everything",
        ),
        # Lt and Gt with TaintTolerationComparisonOperators off (its v1.37 default): upstream's
        # TestTaintTolerationFilterWithFeatureGate, gate-off cases.
        pytest.param(
            pod({"key": SLA, "operator": "Gt", "value": "750", "effect": "NoSchedule"}),
            [(SLA, "950", "NoSchedule")],
            [UNTOLERATED],
            id="gt-toleration-cannot-be-scheduled-when-feature-gate-is-disabled",
        ),
        pytest.param(
            pod({"key": SLA, "operator": "Lt", "value": "950", "effect": "NoSchedule"}),
            [(SLA, "800", "NoSchedule")],
            [UNTOLERATED],
            id="lt-toleration-cannot-be-scheduled-when-feature-gate-is-disabled",
        ),
        pytest.param(
            pod(
                {"key": "dedicated", "operator": "Equal", "value": "user1", "effect": "NoSchedule"},
                {"key": SLA, "operator": "Gt", "value": "750", "effect": "NoSchedule"},
            ),
            [("dedicated", "user1", "NoSchedule")],
            [],
            id="mixed-equal-and-gt-when-feature-gate-is-disabled-only-equal-is-honored",
        ),
        pytest.param(
            pod(
                {"key": "dedicated", "operator": "Equal", "value": "user1", "effect": "NoSchedule"},
                {"key": SLA, "operator": "Gt", "value": "750", "effect": "NoSchedule"},
            ),
            [("dedicated", "user1", "NoSchedule"), (SLA, "950", "NoSchedule")],
            [UNTOLERATED],
            id="mixed-gt-needed-but-filtered-out-when-feature-gate-is-disabled",
        ),
        pytest.param(
            pod({"key": SLA, "operator": "Lt", "value": "950", "effect": "NoSchedule"}),
            [(SLA, "950", "NoSchedule")],
            [UNTOLERATED],
            id="lt-with-the-taint-value-is-not-equal",
        ),
        pytest.param(
            pod({"key": "foo", "operator": "Matches", "value": "bar", "effect": "NoSchedule"}),
            [("foo", "bar", "NoSchedule")],
            [UNTOLERATED],
            id="unknown-operator-tolerates-nothing",
        ),
    ],
)
def test_filter(incoming: JSON, taints: list[Taint], expected: list[str]) -> None:
    """Untolerated NoSchedule/NoExecute taints reject the node with one reason that names no
    taint."""
    table = build_table([node("nodeA", *taints)])
    assert filter_reasons(PLUGIN, incoming, table) == {"nodeA": expected}


def test_filter_one_reason_for_every_taint_set_and_unresolvable() -> None:
    """Nodes sharing a taint set share the verdict; different untolerated taints give the same
    reason, so they count together, and taint rejections are unresolvable (preemption cannot
    remove a taint)."""
    table = build_table(
        [
            node("a1", ("dedicated", "a", "NoSchedule")),
            node("clean"),
            node("b1", ("dedicated", "b", "NoSchedule")),
            node("a2", ("dedicated", "a", "NoSchedule")),
        ]
    )
    incoming = pod()
    assert filter_reasons(PLUGIN, incoming, table) == {
        "a1": [UNTOLERATED],
        "clean": [],
        "b1": [UNTOLERATED],
        "a2": [UNTOLERATED],
    }
    assert unresolvable(PLUGIN, incoming, table) == {"a1": True, "b1": True, "a2": True}


PREFER = "PreferNoSchedule"


@pytest.mark.parametrize(
    ("incoming", "nodes", "expected"),
    [
        pytest.param(
            pod({"key": "foo", "operator": "Equal", "value": "bar", "effect": PREFER}),
            [node("nodeA", ("foo", "bar", PREFER)), node("nodeB", ("foo", "blah", PREFER))],
            {"nodeA": 100, "nodeB": 0},
            id="tolerated-node-scores-higher",
        ),
        pytest.param(
            pod(
                {"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": PREFER},
                {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": PREFER},
            ),
            [
                node("nodeA"),
                node("nodeB", ("cpu-type", "arm64", PREFER)),
                node("nodeC", ("cpu-type", "arm64", PREFER), ("disk-type", "ssd", PREFER)),
            ],
            {"nodeA": 100, "nodeB": 100, "nodeC": 100},
            id="count-of-tolerated-taints-does-not-matter",
        ),
        pytest.param(
            pod({"key": "foo", "operator": "Equal", "value": "bar", "effect": PREFER}),
            [
                node("nodeA"),
                node("nodeB", ("cpu-type", "arm64", PREFER)),
                node("nodeC", ("cpu-type", "arm64", PREFER), ("disk-type", "ssd", PREFER)),
            ],
            {"nodeA": 100, "nodeB": 50, "nodeC": 0},
            id="more-intolerable-taints-lower-score",
        ),
        pytest.param(
            pod(
                {"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": "NoSchedule"},
                {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"},
            ),
            [
                node("nodeA"),
                node("nodeB", ("cpu-type", "arm64", "NoSchedule")),
                node("nodeC", ("cpu-type", "arm64", PREFER), ("disk-type", "ssd", PREFER)),
            ],
            {"nodeA": 100, "nodeB": 100, "nodeC": 0},
            id="only-prefer-no-schedule-counts",
        ),
        pytest.param(
            pod(),
            [node("nodeA"), node("nodeB", ("cpu-type", "arm64", PREFER))],
            {"nodeA": 100, "nodeB": 0},
            id="no-tolerations-lands-on-untainted",
        ),
        pytest.param(
            pod({"key": "foo", "operator": "Exists"}),
            [node("nodeA", ("foo", "x", PREFER)), node("nodeB", ("bar", "x", PREFER))],
            {"nodeA": 100, "nodeB": 0},
            id="empty-effect-toleration-counts-for-prefer",
        ),
        pytest.param(
            pod(),
            [node("nodeA"), node("nodeB")],
            {"nodeA": 100, "nodeB": 100},
            id="no-taints-anywhere",
        ),
        pytest.param(
            pod(),
            [
                node("n0"),
                node("n1", ("a", "", PREFER)),
                node("n2", ("a", "", PREFER), ("b", "", PREFER)),
                node("n3", ("a", "", PREFER), ("b", "", PREFER), ("c", "", PREFER)),
            ],
            {"n0": 100, "n1": 67, "n2": 34, "n3": 0},
            id="reverse-normalize-truncates-like-go",
        ),
        pytest.param(
            pod({"key": SLA, "operator": "Gt", "value": "950", "effect": PREFER}),
            [node("nodeA", (SLA, "800", PREFER)), node("nodeB", (SLA, "999", PREFER))],
            # Upstream's numeric Gt case gives 0 and 100 with the gate on; off, the toleration
            # tolerates neither taint.
            {"nodeA": 0, "nodeB": 0},
            id="numeric-gt-operator-with-feature-gate-disabled-tolerates-nothing",
        ),
        pytest.param(
            pod({"key": SLA, "operator": "Lt", "value": "800", "effect": PREFER}),
            [node("nodeA", (SLA, "950", PREFER)), node("nodeB", (SLA, "800", PREFER))],
            {"nodeA": 0, "nodeB": 0},
            id="numeric-lt-operator-with-feature-gate-disabled-tolerates-nothing",
        ),
    ],
)
def test_score(incoming: JSON, nodes: list[JSON], expected: dict[str, int]) -> None:
    """Fewer untolerated PreferNoSchedule taints score higher (normalized and reversed)."""
    assert scores(PLUGIN, incoming, build_table(nodes)) == expected


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: Node/Add|UpdateNodeTaint and TargetPod/UpdatePodToleration,
    both with hints."""
    assert registered(PLUGIN) == [
        ("NodeAdd", True),
        ("NodeUpdateNodeTaint", True),
        ("TargetPodUpdatePodToleration", True),
    ]


def tainted(*values: str) -> NodeBuilder:
    """Upstream's nodeWithTaints("nodeA", dedicated=<value>:NoSchedule, ...)."""
    builder = make_node("nodeA")
    for value in values:
        builder.taint("dedicated", value, "NoSchedule")
    return builder


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterNodeChange (objects of the wrong type: no
        # counterpart).
        pytest.param(
            None,
            tainted("user1"),
            QueueingHint.SKIP,
            id="skip-queue-on-untoleratedtaint-node-added",
        ),
        pytest.param(
            None, tainted("user2"), QueueingHint.QUEUE, id="queue-on-toleratedtaint-node-added"
        ),
        pytest.param(
            tainted("user1"),
            tainted("user1", "user3"),
            QueueingHint.SKIP,
            id="skip-unrelated-change",
        ),
        pytest.param(
            tainted("user1"), tainted("user2"), QueueingHint.QUEUE, id="queue-on-taint-change"
        ),
    ],
)
def test_is_schedulable_after_node_change(
    old: NodeBuilder | None, new: NodeBuilder, expected: QueueingHint
) -> None:
    """A node moves the pod when it had an untolerated NoSchedule/NoExecute taint (or is new)
    and has none now."""
    pod = make_pod("pod1").toleration("dedicated", "user2", "NoSchedule")
    assert run_hint(PLUGIN, "NodeUpdateNodeTaint", pod, old, new) is expected


def test_is_schedulable_after_target_pod_toleration_change() -> None:
    """Upstream's Test_isSchedulableAfterTargetPodTolerationChange, queue-on-toleration-added:
    any toleration the pod gains may be the missing one."""
    pod = make_pod("pod-1").namespace("ns-1")
    new = make_pod("pod-1").namespace("ns-1").toleration("foo", effect="NoSchedule")
    assert run_hint(PLUGIN, "TargetPodUpdatePodToleration", pod, pod, new) is QueueingHint.QUEUE
