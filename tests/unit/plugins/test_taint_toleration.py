"""TaintToleration: Filter with upstream's reason string and the cases of
taint_toleration_test.go (TestTaintTolerationFilter), Score with TestTaintTolerationScore."""

from __future__ import annotations

from typing import Any, cast

import pytest

from plugins import taint_toleration
from scheduler.framework import Handle
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, scores, unresolvable

JSON = dict[str, Any]
Taint = tuple[str, str, str]  # key, value, effect
Tol = dict[str, str]

PLUGIN = taint_toleration.new({}, cast(Handle, None))


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
            ["node(s) had untolerated taint {dedicated: user1}"],
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
            ["node(s) had untolerated taint {dedicated: user1}"],
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
            ["node(s) had untolerated taint {foo: bar}"],
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
            ["node(s) had untolerated taint {gone: }"],
            id="no-execute-filters-and-empty-value",
        ),
        pytest.param(
            pod({"key": "a", "operator": "Exists"}),
            [("a", "1", "NoSchedule"), ("b", "2", "NoSchedule"), ("c", "3", "NoExecute")],
            ["node(s) had untolerated taint {b: 2}"],
            id="first-untolerated-taint-names-the-reason",
        ),
        pytest.param(
            pod({"operator": "Exists"}),
            [("a", "1", "NoSchedule"), ("c", "3", "NoExecute")],
            [],
            id="exists-without-key-tolerates-everything",
        ),
    ],
)
def test_filter(incoming: JSON, taints: list[Taint], expected: list[str]) -> None:
    """Untolerated NoSchedule/NoExecute taints reject the node, named by the first one."""
    table = build_table([node("nodeA", *taints)])
    assert filter_reasons(PLUGIN, incoming, table) == {"nodeA": expected}


def test_filter_reasons_per_taint_set_and_unresolvable() -> None:
    """Nodes sharing a taint set share the verdict; each distinct taint names its own
    reason, and taint rejections are unresolvable (preemption cannot remove a taint)."""
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
        "a1": ["node(s) had untolerated taint {dedicated: a}"],
        "clean": [],
        "b1": ["node(s) had untolerated taint {dedicated: b}"],
        "a2": ["node(s) had untolerated taint {dedicated: a}"],
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
    ],
)
def test_score(incoming: JSON, nodes: list[JSON], expected: dict[str, int]) -> None:
    """Fewer untolerated PreferNoSchedule taints score higher (normalized and reversed)."""
    assert scores(PLUGIN, incoming, build_table(nodes)) == expected
