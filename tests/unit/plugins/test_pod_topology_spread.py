"""PodTopologySpread: Filter and Score tables mirroring upstream's filtering_test.go
(TestSingleConstraint, TestMultipleConstraints) and scoring_test.go
(TestPodTopologySpreadScore), plus defaulting, batching and args validation."""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
import pytest

from plugins import pod_topology_spread
from plugins.pod_topology_spread import MISSING_LABEL, REASON, PodTopologySpread
from scheduler.decode import ConfigError
from scheduler.default_selector import SERVICE, SelectorSources
from scheduler.framework import SKIP, CycleState, QueueingHint
from scheduler.handle import ClusterHandle, in_memory
from scheduler.model import LabelSelector, Requirement, compile_node, compile_pod
from scheduler.snapshot import NodeTable
from tests.builders import NodeBuilder, PodBuilder, make_node, make_pod
from tests.unit.tables import (
    build_table,
    filter_reasons,
    registered,
    rows,
    run_hint,
    unresolvable,
)

JSON = dict[str, Any]
HOST = "kubernetes.io/hostname"
FOO = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
BAR = {"matchExpressions": [{"key": "bar", "operator": "Exists"}]}
DNS, SA = "DoNotSchedule", "ScheduleAnyway"
OK, SKEW, LABEL = "ok", "skew", "label"  # Success, Unschedulable, UnschedulableAndUnresolvable

_names = itertools.count()


def plugin(args: JSON | None = None, handle: ClusterHandle | None = None) -> PodTopologySpread:
    return pod_topology_spread.new(args or {}, handle or in_memory())


def node(name: str, labels: dict[str, str], *, tainted: bool = False) -> JSON:
    builder = make_node(name)
    builder.obj["metadata"]["labels"] = dict(labels)  # exactly these labels, as upstream
    if tainted:
        builder.taint("node.kubernetes.io/unschedulable")
    return builder.obj_()


def zn(name: str, zone: str | None = None, **extra: str) -> JSON:
    """A node labelled node=<name> (and zone=<zone>), as upstream's filter tests."""
    labels = {"node": name} | ({"zone": zone} if zone else {}) | extra
    return node(name, labels)


def hn(name: str, zone: str | None = None) -> JSON:
    """A node labelled with the hostname key (and zone), as upstream's score tests."""
    return node(name, {HOST: name} | ({"zone": zone} if zone else {}))


def on(
    node_name: str, count: int = 1, *labels: str, ns: str = "default", terminating: bool = False
) -> list[JSON]:
    """`count` existing pods on a node, each labelled with every key of `labels` (value "");
    no labels given means `foo`."""
    out = []
    for _ in range(count):
        builder = make_pod(f"p-{node_name}-{next(_names)}").node(node_name).namespace(ns)
        for key in labels or ("foo",):
            builder.label(key)
        if terminating:
            builder.terminating()
        out.append(builder.obj_())
    return out


def incoming(*labels: str) -> PodBuilder:
    builder = make_pod("p")
    for key in labels or ("foo",):
        builder.label(key)
    return builder


def verdicts(result: dict[str, list[str]]) -> dict[str, str]:
    names = {(): OK, (REASON,): SKEW, (MISSING_LABEL,): LABEL}
    return {n: names[tuple(reasons)] for n, reasons in result.items()}


FOUR_ZONED = [
    zn("node-a", "zone1"),
    zn("node-b", "zone1"),
    zn("node-x", "zone2"),
    zn("node-y", "zone2"),
]
SPREAD_2103 = [*on("node-a", 2), *on("node-b", 1), *on("node-y", 3)]


@pytest.mark.parametrize(
    ("pod", "nodes", "existing", "expected"),
    [
        # --- TestSingleConstraint ---
        pytest.param(
            incoming().spread(1, "zone", DNS, FOO),
            FOUR_ZONED,
            [],
            {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
            id="no-existing-pods",
        ),
        pytest.param(
            incoming().spread(1, "zone", DNS, BAR),
            FOUR_ZONED,
            [],
            {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
            id="no-existing-pods-pod-does-not-match-itself",
        ),
        pytest.param(
            incoming().spread(1, "zone", DNS, FOO),
            FOUR_ZONED,
            [*on("node-a", 1, ns="ns1"), *on("node-a", 1, ns="ns2"), *on("node-x"), *on("node-y")],
            {"node-a": OK, "node-b": OK, "node-x": SKEW, "node-y": SKEW},
            id="pods-in-other-namespaces-do-not-count",
        ),
        pytest.param(
            incoming().spread(1, "zone", DNS, None),
            FOUR_ZONED,
            [*on("node-x"), *on("node-y")],
            {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
            id="null-selector-matches-no-pod",
        ),
        pytest.param(
            incoming().spread(1, "zone", DNS, FOO),
            FOUR_ZONED,
            [*on("node-a", 2), *on("node-b"), *on("node-y", 3)],
            {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
            id="zones-3-3-all-fit",
        ),
        pytest.param(
            incoming().spread(1, "zone", DNS, FOO),
            [
                zn("node-a", "zone1"),
                node("node-b", {"zon": "zone1", "node": "node-b"}),
                zn("node-x", "zone2"),
                zn("node-y", "zone2"),
            ],
            [*on("node-a"), *on("node-b"), *on("node-x"), *on("node-y")],
            {"node-a": OK, "node-b": LABEL, "node-x": SKEW, "node-y": SKEW},
            id="zones-1-2-node-b-lacks-zone-label",
        ),
        pytest.param(
            incoming().spread(1, "rack", DNS, FOO),
            [zn("node-a", "zone1"), zn("node-x", "zone2")],
            [],
            {"node-a": LABEL, "node-x": LABEL},
            id="no-node-has-the-rack-label",
        ),
        pytest.param(
            incoming().spread(1, "node", DNS, FOO),
            FOUR_ZONED,
            SPREAD_2103,
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW},
            id="nodes-2-1-0-3-only-node-x-fits",
        ),
        pytest.param(
            incoming().spread(2, "node", DNS, FOO),
            FOUR_ZONED,
            SPREAD_2103,
            {"node-a": SKEW, "node-b": OK, "node-x": OK, "node-y": SKEW},
            id="nodes-2-1-0-3-maxskew-2",
        ),
        pytest.param(
            incoming("bar").spread(1, "node", DNS, FOO),
            FOUR_ZONED,
            SPREAD_2103,
            {"node-a": SKEW, "node-b": OK, "node-x": OK, "node-y": SKEW},
            id="nodes-2-1-0-3-pod-does-not-match-itself",
        ),
        pytest.param(
            incoming()
            .required_affinity("node", "In", "node-a", "node-y")
            .spread(1, "node", DNS, FOO),
            FOUR_ZONED,
            SPREAD_2103,
            # node-b and node-x are not counted; NodeAffinity (not run here) rejects them.
            {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": SKEW},
            id="node-affinity-limits-counted-nodes",
        ),
        pytest.param(
            incoming().spread(1, "node", DNS, FOO),
            [zn("node-a"), zn("node-b")],
            [*on("node-a", terminating=True), *on("node-b")],
            {"node-a": OK, "node-b": SKEW},
            id="terminating-pods-are-excluded",
        ),
        pytest.param(
            incoming().required_affinity("node", "NotIn", "node-b").spread(1, "zone", DNS, FOO),
            FOUR_ZONED,
            [*on("node-b", 2), *on("node-y")],
            {"node-a": OK, "node-b": OK, "node-x": SKEW, "node-y": SKEW},
            id="node-affinity-zones-0-2-0-1",
        ),
        pytest.param(
            incoming().spread(2, "node", DNS, FOO, min_domains=4),
            [zn("node-a"), zn("node-b"), zn("node-c")],
            [*on("node-a", 2), *on("node-b", 2), *on("node-c")],
            {"node-a": SKEW, "node-b": SKEW, "node-c": OK},
            id="fewer-domains-than-min-domains",
        ),
        pytest.param(
            incoming().spread(2, "node", DNS, FOO, min_domains=2),
            [zn("node-a"), zn("node-b"), zn("node-c")],
            [*on("node-a", 2), *on("node-b", 2), *on("node-c")],
            {"node-a": OK, "node-b": OK, "node-c": OK},
            id="more-domains-than-min-domains",
        ),
        pytest.param(
            incoming().spread(2, "zone", DNS, FOO, min_domains=3),
            FOUR_ZONED,
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK},
            id="zones-2-1-fewer-domains-than-min-domains",
        ),
        pytest.param(
            incoming().spread(2, "zone", DNS, FOO, min_domains=1),
            FOUR_ZONED,
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
            id="zones-2-1-more-domains-than-min-domains",
        ),
        pytest.param(
            incoming().node_selector(foo="").spread(1, "node", DNS, FOO),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-x", foo=""), zn("node-y")],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK},
            id="node-affinity-policy-honored-node-selector",
        ),
        pytest.param(
            incoming()
            .node_selector(foo="")
            .spread(1, "node", DNS, FOO, node_affinity_policy="Ignore"),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-x", foo=""), zn("node-y")],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW},
            id="node-affinity-policy-ignored-node-selector",
        ),
        pytest.param(
            incoming().required_affinity("foo", "In", "").spread(1, "node", DNS, FOO),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-x", foo=""), zn("node-y")],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK},
            id="node-affinity-policy-honored-required-affinity",
        ),
        pytest.param(
            incoming()
            .required_affinity("foo", "In", "")
            .spread(1, "node", DNS, FOO, node_affinity_policy="Ignore"),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-x", foo=""), zn("node-y")],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW},
            id="node-affinity-policy-ignored-required-affinity",
        ),
        pytest.param(
            incoming().spread(1, "node", DNS, FOO, node_taints_policy="Honor"),
            [
                zn("node-a"),
                zn("node-b"),
                zn("node-x"),
                node("node-y", {"node": "node-y"}, tainted=True),
            ],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK},
            id="node-taints-policy-honored",
        ),
        pytest.param(
            incoming().spread(1, "node", DNS, FOO),
            [
                zn("node-a"),
                zn("node-b"),
                zn("node-x"),
                node("node-y", {"node": "node-y"}, tainted=True),
            ],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW},
            id="node-taints-policy-ignored",
        ),
        pytest.param(
            incoming()
            .toleration("node.kubernetes.io/unschedulable", operator="Exists")
            .spread(1, "node", DNS, FOO, node_taints_policy="Honor"),
            [
                zn("node-a"),
                zn("node-b"),
                zn("node-x"),
                node("node-y", {"node": "node-y"}, tainted=True),
            ],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW},
            id="node-taints-policy-honored-tolerated-taint-counts",
        ),
        pytest.param(
            incoming()
            .toleration("node.kubernetes.io/unschedulable", operator="Gt")
            .spread(1, "node", DNS, FOO, node_taints_policy="Honor"),
            [
                zn("node-a"),
                zn("node-b"),
                zn("node-x"),
                node("node-y", {"node": "node-y"}, tainted=True),
            ],
            [*on("node-a"), *on("node-b"), *on("node-y")],
            # Gt tolerates nothing with TaintTolerationComparisonOperators off (v1.37), even
            # with the taint's own value, so node-y stays out of the counts.
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK},
            id="node-taints-policy-honored-gt-toleration-with-gate-off-does-not-count",
        ),
        # --- TestMultipleConstraints ---
        pytest.param(
            incoming().spread(1, "zone", DNS, FOO).spread(1, "node", DNS, FOO),
            FOUR_ZONED,
            SPREAD_2103,
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW},
            id="zone-and-node-3-3-and-2-1-0-3",
        ),
        pytest.param(
            incoming().spread(1, "zone", DNS, FOO).spread(1, "node", DNS, FOO),
            FOUR_ZONED,
            [*on("node-a", 2), *on("node-b"), *on("node-y", 4)],
            {"node-a": SKEW, "node-b": SKEW, "node-x": SKEW, "node-y": SKEW},
            id="zone-and-node-3-4-and-2-1-0-4-nothing-fits",
        ),
        pytest.param(
            incoming("foo", "bar").spread(1, "zone", DNS, FOO).spread(1, "node", DNS, BAR),
            FOUR_ZONED,
            [*on("node-a", 1, "foo"), *on("node-y", 1, "bar")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW},
            id="different-selectors-1-0-and-1-0-0-1",
        ),
        pytest.param(
            incoming("foo", "bar").spread(1, "zone", DNS, FOO).spread(1, "node", DNS, BAR),
            FOUR_ZONED,
            [*on("node-a", 1, "foo"), *on("node-x", 1, "bar"), *on("node-y", 1, "bar")],
            {"node-a": SKEW, "node-b": SKEW, "node-x": SKEW, "node-y": SKEW},
            id="different-selectors-1-0-and-0-0-1-1-nothing-fits",
        ),
        pytest.param(
            incoming().spread(1, "zone", DNS, FOO).spread(1, "node", DNS, FOO),
            [zn("node-a", "zone1"), zn("node-b", "zone1"), node("node-x", {"zone": "zone2"})],
            [*on("node-a"), *on("node-b")],
            # node-x (no node label) is not counted: zone1 is the only domain (min 2), so
            # every zone fits; node-x then fails unresolvably on the node key.
            {"node-a": OK, "node-b": OK, "node-x": LABEL},
            id="node-missing-second-key",
        ),
        # --- matchLabelKeys (merged into the selector) ---
        pytest.param(
            incoming().label("app", "web").spread(1, "node", DNS, FOO, match_label_keys=["app"]),
            [zn("node-a"), zn("node-b")],
            [*on("node-a", 2), *on("node-b", 1, "foo", "app")],
            # Existing pods carry app="", not app=web: none count.
            {"node-a": OK, "node-b": OK},
            id="match-label-keys-value-must-equal",
        ),
        pytest.param(
            incoming().label("app").spread(1, "node", DNS, FOO, match_label_keys=["app"]),
            [zn("node-a"), zn("node-b")],
            [*on("node-a", 2), *on("node-b", 1, "foo", "app")],
            # Pods with foo and app="": 0 on node-a, 1 on node-b.
            {"node-a": OK, "node-b": SKEW},
            id="match-label-keys-anded-with-selector",
        ),
        pytest.param(
            incoming().label("app").spread(1, "node", DNS, None, match_label_keys=["app"]),
            [zn("node-a"), zn("node-b")],
            [*on("node-a", 1, "app"), *on("node-a", 1, "app"), *on("node-b", 1, "foo")],
            # A nil selector with matchLabelKeys matches by those labels alone.
            {"node-a": SKEW, "node-b": OK},
            id="match-label-keys-with-null-selector",
        ),
        pytest.param(
            incoming().spread(1, "node", DNS, FOO, match_label_keys=["missing"]),
            [zn("node-a"), zn("node-b")],
            [*on("node-a", 2)],
            {"node-a": SKEW, "node-b": OK},
            id="match-label-keys-absent-on-pod-ignored",
        ),
    ],
)
def test_filter(
    pod: PodBuilder, nodes: list[JSON], existing: list[JSON], expected: dict[str, str]
) -> None:
    """Which nodes pass, and the reason kind of each rejection."""
    table = build_table(nodes, existing)
    assert (
        verdicts(filter_reasons(plugin({"defaultingType": "List"}), pod.obj_(), table)) == expected
    )


def test_filter_reasons_and_resolvability() -> None:
    """A missing label is UnschedulableAndUnresolvable; a skew failure can be resolved."""
    table = build_table(
        [zn("node-a", "zone1"), node("node-b", {"node": "node-b"}), zn("node-x", "zone2")],
        on("node-a"),
    )
    pod = incoming().spread(1, "zone", DNS, FOO).obj_()
    assert filter_reasons(plugin(), pod, table) == {
        "node-a": [REASON],
        "node-b": [MISSING_LABEL],
        "node-x": [],
    }
    assert unresolvable(plugin(), pod, table) == {"node-a": False, "node-b": True}


def test_filter_first_failing_constraint_names_the_reason() -> None:
    """As upstream, constraints are checked in order: node-b fails the zone skew before its
    missing rack label is looked at."""
    nodes = [
        node("node-a", {"zone": "z1", "rack": "r1"}),
        node("node-b", {"zone": "z1"}),
        node("node-c", {"zone": "z2", "rack": "r2"}),
    ]
    table = build_table(nodes, on("node-a", 2))
    pod = incoming().spread(1, "zone", DNS, FOO).spread(1, "rack", DNS, FOO).obj_()
    assert verdicts(filter_reasons(plugin(), pod, table)) == {
        "node-a": SKEW,
        "node-b": SKEW,
        "node-c": OK,
    }


def test_filter_without_pre_filter_recomputes() -> None:
    """Filter works when PreFilter did not run (upstream's contract for preemption)."""
    table = build_table(FOUR_ZONED, SPREAD_2103)
    pod = compile_pod(incoming().spread(1, "node", DNS, FOO).obj_())
    result = plugin().filter(CycleState(), pod, table, rows(table))
    assert result.mask.tolist() == [False, False, True, False]


def score_nodes(
    pl: PodTopologySpread, pod_json: JSON, table: NodeTable, candidates: list[str]
) -> dict[str, int] | None:
    """PreScore over the candidates only (the rest failed Filter), then Score + Normalize."""
    pod = compile_pod(pod_json)
    state = CycleState()
    feasible = rows(table, candidates)
    status = pl.pre_score(state, pod, table, feasible)
    if status == SKIP:
        return None
    assert status is None, status
    final = pl.normalize(pl.score(state, pod, table, feasible))
    return {name: int(final[i]) for i, name in enumerate(candidates)}


def service_selector(**labels: str) -> ClusterHandle:
    """A handle whose cluster has one Service, in the pods' namespace, selecting `labels`
    (upstream's objs)."""
    sources = SelectorSources()
    service = {"metadata": {"namespace": "default", "name": "svc"}, "spec": {"selector": labels}}
    sources.apply(SERVICE, service, deleted=False)
    return in_memory(selectors=sources)


FOUR_HOSTS = [hn("node-a"), hn("node-b"), hn("node-c"), hn("node-d")]
SPREAD_4321 = [*on("node-a", 4), *on("node-b", 3), *on("node-c", 2), *on("node-d", 1)]
MIXED = [
    *on("node-a", 1, "foo"),
    *on("node-b", 1, "foo", "bar"),
    *on("node-y", 1, "foo"),
    *on("node-y", 1, "bar"),
]


@pytest.mark.parametrize(
    ("pod", "nodes", "candidates", "existing", "handle", "expected"),
    [
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            [hn("node-a"), hn("node-b")],
            None,
            [],
            None,
            {"node-a": 100, "node-b": 100},
            id="one-constraint-on-node-no-existing-pods",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            [hn("node-a"), hn("node-b")],
            ["node-a"],
            [*on("node-a", 2), *on("node-b")],
            None,
            {"node-a": 100},
            id="only-one-candidate",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            [hn("node-a"), hn("node-b")],
            None,
            [*on("node-a"), *on("node-b")],
            None,
            {"node-a": 100, "node-b": 100},
            id="same-number-of-matching-pods",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            FOUR_HOSTS,
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-d", 3)],
            None,
            {"node-a": 20, "node-b": 60, "node-c": 100, "node-d": 0},
            id="nodes-2-1-0-3",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, None),
            FOUR_HOSTS,
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-d", 3)],
            None,
            {"node-a": 100, "node-b": 100, "node-c": 100, "node-d": 100},
            id="null-selector",
        ),
        pytest.param(
            incoming().spread(2, HOST, SA, FOO),
            FOUR_HOSTS,
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-d", 3)],
            None,
            {"node-a": 33, "node-b": 66, "node-c": 100, "node-d": 16},
            id="nodes-2-1-0-3-maxskew-2",
        ),
        pytest.param(
            incoming().spread(3, HOST, SA, FOO),
            FOUR_HOSTS,
            None,
            SPREAD_4321,
            None,
            {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100},
            id="nodes-4-3-2-1-maxskew-3",
        ),
        pytest.param(
            incoming(),
            FOUR_HOSTS,
            None,
            SPREAD_4321,
            service_selector(foo=""),
            {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100},
            id="system-defaults-nodes-without-zone-pods-match-service",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            [hn("node-a"), hn("node-b"), hn("node-x"), hn("node-y")],
            ["node-a", "node-b", "node-x"],
            [*on("node-a", 4), *on("node-b", 2), *on("node-x"), *on("node-y", 3)],
            None,
            {"node-a": 33, "node-b": 83, "node-x": 100},
            id="three-of-four-candidates",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            [hn("node-a"), node("node-b", {"n": "node-b"}), hn("node-x"), hn("node-y")],
            ["node-a", "node-b", "node-x"],
            [*on("node-a", 4), *on("node-b", 2), *on("node-x"), *on("node-y", 3)],
            None,
            {"node-a": 16, "node-b": 0, "node-x": 100},
            id="candidate-without-topology-key-scores-0",
        ),
        pytest.param(
            incoming().spread(1, "zone", SA, FOO),
            [
                hn("node-a", "zone1"),
                hn("node-b", "zone1"),
                hn("node-x", "zone2"),
                hn("node-y", "zone2"),
            ],
            ["node-a", "node-b", "node-x"],
            [*on("node-a", 4), *on("node-b", 2), *on("node-x"), *on("node-y", 3)],
            None,
            {"node-a": 75, "node-b": 75, "node-x": 100},
            id="one-constraint-on-zone",
        ),
        pytest.param(
            incoming().spread(1, "zone", SA, FOO).spread(1, HOST, SA, FOO),
            [
                hn("node-a", "zone1"),
                hn("node-b", "zone1"),
                hn("node-x", "zone2"),
                hn("node-y", "zone2"),
            ],
            ["node-a", "node-x"],
            [*on("node-a", 2), *on("node-b"), *on("node-x", 2), *on("node-y", 4)],
            None,
            {"node-a": 100, "node-x": 63},
            id="zone-and-node-two-of-four-candidates",
        ),
        pytest.param(
            incoming("foo", "bar").spread(1, "zone", SA, FOO).spread(1, "zone", SA, BAR),
            [
                node("node-a", {"zone": "zone1"}),
                node("node-b", {"zone": "zone1"}),
                node("node-x", {"zone": "zone2"}),
                node("node-y", {"zone": "zone2"}),
            ],
            ["node-a", "node-x"],
            [
                *on("node-a", 1, "foo", "bar"),
                *on("node-a", 1, "foo"),
                *on("node-b", 1, "foo", "bar"),
                *on("node-y", 1, "foo"),
                *on("node-y", 1, "foo", "bar"),
                *on("node-y", 1, "foo"),
            ],
            None,
            {"node-a": 85, "node-x": 100},
            id="two-constraints-on-zone",
        ),
        pytest.param(
            incoming("foo", "bar").spread(1, "zone", SA, FOO).spread(1, HOST, SA, BAR),
            [
                hn("node-a", "zone1"),
                hn("node-b", "zone1"),
                hn("node-x", "zone2"),
                hn("node-y", "zone2"),
            ],
            None,
            MIXED,
            None,
            {"node-a": 60, "node-b": 20, "node-x": 100, "node-y": 60},
            id="zone-and-node-different-selectors",
        ),
        pytest.param(
            incoming("foo", "bar").spread(1, "zone", SA, FOO).spread(1, HOST, SA, BAR),
            [
                hn("node-a", "zone1"),
                hn("node-b", "zone1"),
                hn("node-x", "zone2"),
                hn("node-y", "zone2"),
            ],
            None,
            [*on("node-b", 1, "bar"), *on("node-x", 1, "foo"), *on("node-y", 1, "foo", "bar")],
            None,
            {"node-a": 100, "node-b": 60, "node-x": 40, "node-y": 0},
            id="zone-and-node-different-selectors-some-nodes-empty",
        ),
        pytest.param(
            incoming("foo", "bar").spread(1, "zone", SA, FOO).spread(1, HOST, SA, BAR),
            [
                hn("node-a", "zone1"),
                hn("node-b", "zone1"),
                hn("node-x", "zone2"),
                hn("node-y", "zone2"),
            ],
            ["node-a", "node-b", "node-x"],
            MIXED,
            None,
            {"node-a": 50, "node-b": 25, "node-x": 100},
            id="zone-and-node-different-selectors-three-candidates",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            [hn("node-a"), hn("node-b")],
            None,
            [*on("node-a", 1, ns="ns1"), *on("node-a"), *on("node-b", 2)],
            None,
            {"node-a": 100, "node-b": 33},
            id="pods-in-other-namespaces-do-not-count",
        ),
        pytest.param(
            incoming().spread(1, HOST, SA, FOO),
            [hn("node-a"), hn("node-b")],
            None,
            [*on("node-a", terminating=True), *on("node-b")],
            None,
            {"node-a": 100, "node-b": 0},
            id="terminating-pods-are-excluded",
        ),
        pytest.param(
            incoming().spread(2, "node", SA, FOO, min_domains=10),
            [zn("node-a"), zn("node-b"), zn("node-c")],
            None,
            [*on("node-a", 2), *on("node-b", 2), *on("node-c")],
            None,
            {"node-a": 75, "node-b": 75, "node-c": 100},
            id="min-domains-has-no-effect-on-score",
        ),
        pytest.param(
            incoming().node_selector(foo="").spread(1, "node", SA, FOO),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-c")],
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-c")],
            None,
            {"node-a": 0, "node-b": 33, "node-c": 100},
            id="node-affinity-policy-honored-node-selector",
        ),
        pytest.param(
            incoming()
            .node_selector(foo="")
            .spread(1, "node", SA, FOO, node_affinity_policy="Ignore"),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-c")],
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-c")],
            None,
            {"node-a": 66, "node-b": 100, "node-c": 100},
            id="node-affinity-policy-ignored-node-selector",
        ),
        pytest.param(
            incoming().required_affinity("foo", "In", "").spread(1, "node", SA, FOO),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-c")],
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-c")],
            None,
            {"node-a": 0, "node-b": 33, "node-c": 100},
            id="node-affinity-policy-honored-required-affinity",
        ),
        pytest.param(
            incoming()
            .required_affinity("foo", "In", "")
            .spread(1, "node", SA, FOO, node_affinity_policy="Ignore"),
            [zn("node-a", foo=""), zn("node-b", foo=""), zn("node-c")],
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-c")],
            None,
            {"node-a": 66, "node-b": 100, "node-c": 100},
            id="node-affinity-policy-ignored-required-affinity",
        ),
        pytest.param(
            incoming().spread(1, "node", SA, FOO, node_taints_policy="Honor"),
            [zn("node-a"), zn("node-b"), node("node-c", {"node": "node-c"}, tainted=True)],
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-c")],
            None,
            {"node-a": 0, "node-b": 33, "node-c": 100},
            id="node-taints-policy-honored",
        ),
        pytest.param(
            incoming().spread(1, "node", SA, FOO),
            [zn("node-a"), zn("node-b"), node("node-c", {"node": "node-c"}, tainted=True)],
            None,
            [*on("node-a", 2), *on("node-b"), *on("node-c")],
            None,
            {"node-a": 66, "node-b": 100, "node-c": 100},
            id="node-taints-policy-ignored",
        ),
        pytest.param(
            incoming("foo", "bar")
            .spread(1, "zone", SA, {}, match_label_keys=["foo"])
            .spread(1, HOST, SA, {}, match_label_keys=["bar"]),
            [
                hn("node-a", "zone1"),
                hn("node-b", "zone1"),
                hn("node-c", "zone2"),
                hn("node-d", "zone2"),
            ],
            None,
            [
                *on("node-a", 1, "foo"),
                *on("node-b", 1, "foo", "bar"),
                *on("node-c", 1, "foo"),
                *on("node-c", 1, "bar"),
            ],
            None,
            {"node-a": 60, "node-b": 20, "node-c": 60, "node-d": 100},
            id="match-label-keys-anded-with-empty-selector",
        ),
        pytest.param(
            incoming("foo", "bar", "baz")
            .spread(1, "zone", SA, FOO)
            .spread(1, HOST, SA, BAR, match_label_keys=["baz"]),
            [
                hn("node-a", "zone1"),
                hn("node-b", "zone1"),
                hn("node-c", "zone2"),
                hn("node-d", "zone2"),
            ],
            None,
            [
                *on("node-a", 1, "foo"),
                *on("node-b", 1, "foo", "bar", "baz"),
                *on("node-c", 1, "foo"),
                *on("node-c", 1, "bar"),
                *on("node-c", 1, "bar", "baz"),
            ],
            None,
            {"node-a": 60, "node-b": 20, "node-c": 60, "node-d": 100},
            id="match-label-keys-anded-with-selector",
        ),
    ],
)
def test_score(
    pod: PodBuilder,
    nodes: list[JSON],
    candidates: list[str] | None,
    existing: list[JSON],
    handle: Any,
    expected: dict[str, int],
) -> None:
    """Normalized scores over the candidate nodes (system defaulting, as upstream's test)."""
    table = build_table(nodes, existing)
    names = candidates or [n["metadata"]["name"] for n in nodes]
    assert score_nodes(plugin(None, handle), pod.obj_(), table, names) == expected


def test_system_defaults_spread_by_zone_and_hostname() -> None:
    """With a default selector, both system constraints score: zone counts weigh in too."""
    nodes = [hn("node-a", "zone1"), hn("node-b", "zone1"), hn("node-x", "zone2")]
    table = build_table(nodes, [*on("node-a", 2), *on("node-b", 2)])
    got = score_nodes(
        plugin(None, service_selector(foo="")),
        incoming().obj_(),
        table,
        ["node-a", "node-b", "node-x"],
    )
    # hostname (maxSkew 3, 3 nodes): 2 * ln 5 + 2; zone (maxSkew 5, 2 zones): 4 * ln 4 + 4;
    # rounded totals 15 / 15 / 6, normalized 100 * (15 + 6 - s) / 15.
    assert got == {"node-a": 40, "node-b": 40, "node-x": 100}


@pytest.mark.parametrize(
    ("args", "handle", "pod", "active"),
    [
        pytest.param(None, None, incoming(), False, id="system-defaults-inert-without-selector"),
        pytest.param(
            None, service_selector(app="x"), incoming(), False, id="no-service-selects-pod"
        ),
        pytest.param(None, service_selector(foo=""), incoming(), True, id="service-selects-pod"),
        pytest.param(
            {"defaultingType": "List"},
            service_selector(foo=""),
            incoming(),
            False,
            id="list-without-constraints",
        ),
        pytest.param(
            {
                "defaultingType": "List",
                "defaultConstraints": [
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": DNS}
                ],
            },
            service_selector(foo=""),
            incoming(),
            True,
            id="list-constraints",
        ),
        pytest.param(None, None, incoming().spread(1, "zone", SA, FOO), True, id="own-constraints"),
    ],
)
def test_row_local_only_without_constraints(
    args: JSON | None, handle: Any, pod: PodBuilder, active: bool
) -> None:
    """Batching stays on exactly for pods the plugin does nothing for (PreFilter and PreScore
    both Skip)."""
    pl = plugin(args, handle)
    info = compile_pod(pod.obj_())
    table = build_table(FOUR_HOSTS)
    skipped = (
        pl.pre_filter(CycleState(), info, table) == SKIP
        and pl.pre_score(CycleState(), info, table, rows(table)) == SKIP
    )
    assert pl.row_local_for(info) is (not active)
    assert skipped is (not active)


def test_list_default_do_not_schedule_filters() -> None:
    """defaultingType List: a DoNotSchedule default constraint filters with the default selector."""
    args = {
        "defaultingType": "List",
        "defaultConstraints": [{"maxSkew": 1, "topologyKey": "node", "whenUnsatisfiable": DNS}],
    }
    table = build_table([zn("node-a"), zn("node-b")], on("node-a"))
    pl = plugin(args, service_selector(foo=""))
    assert verdicts(filter_reasons(pl, incoming().obj_(), table)) == {"node-a": SKEW, "node-b": OK}


def test_counts_follow_the_table() -> None:
    """Counts kept between cycles are refreshed for the rows that changed: a pod assumed, a
    pod removed, a node relabelled; another table starts over."""
    pl = plugin()
    table = build_table([zn("node-a"), zn("node-b")])
    pod = incoming().spread(1, "node", DNS, FOO).obj_()
    assert verdicts(filter_reasons(pl, pod, table)) == {"node-a": OK, "node-b": OK}
    assumed = compile_pod(on("node-a")[0])
    table.add_pod(table.row_of["node-a"], assumed)
    assert verdicts(filter_reasons(pl, pod, table)) == {"node-a": SKEW, "node-b": OK}
    table.remove_pod(table.row_of["node-a"], assumed)
    assert verdicts(filter_reasons(pl, pod, table)) == {"node-a": OK, "node-b": OK}
    other = build_table([zn("node-a"), zn("node-b")], on("node-b"))
    assert verdicts(filter_reasons(pl, pod, other)) == {"node-a": OK, "node-b": SKEW}
    table.upsert_node(compile_node(node("node-b", {"elsewhere": "x"})))
    assert verdicts(filter_reasons(pl, pod, table)) == {"node-a": OK, "node-b": LABEL}


def _kept_counts_pods() -> list[JSON]:
    """Pods whose counts take every path: DoNotSchedule with taints and node affinity honored
    and minDomains, the pod's own ScheduleAnyway (every key required), the system defaults."""
    return [
        incoming("foo")
        .spread(1, "zone", DNS, FOO, node_taints_policy="Honor", min_domains=3)
        .obj_(),
        incoming("foo").spread(2, "zone", DNS, FOO).node_selector(pool="a").obj_(),
        incoming("foo").spread(1, "zone", SA, FOO).spread(1, HOST, SA, BAR).obj_(),
        incoming().label("app", "web").obj_(),  # the Service's: system defaults
    ]


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(3)])
def test_kept_counts_equal_a_recount(seed: int) -> None:
    """Counts kept between cycles (topology_counts) give the Filter and Score answers a plugin
    counting from scratch gives, whatever happens to the table in between: pods added,
    removed or terminating, nodes relabelled (zone moved or dropped) or retainted."""
    rng = random.Random(seed)
    handle = service_selector(app="web")
    kept = plugin(handle=handle)
    nodes = []
    for i in range(24):
        labels = {HOST: f"n{i}", "zone": rng.choice(["z0", "z1", "z2"]), "pool": "ab"[i % 2]}
        nodes.append(node(f"n{i}", labels, tainted=rng.random() < 0.2))
    table = build_table(nodes)
    placed: list[tuple[int, Any]] = []
    pods = _kept_counts_pods()
    for step in range(120):
        action = rng.random()
        if action < 0.5 or not placed:
            builder = make_pod(f"q{step}").uid(f"uid-q{step}")
            for key in rng.sample(["foo", "bar", "app"], rng.randint(0, 2)):
                builder.label(key, "web" if key == "app" else "")
            if rng.random() < 0.1:
                builder.terminating()
            if rng.random() < 0.1:
                builder.namespace("other")
            row = rng.randrange(len(nodes))
            pod = compile_pod(builder.obj_())
            table.add_pod(row, pod)
            placed.append((row, pod))
        elif action < 0.75:
            row, pod = placed.pop(rng.randrange(len(placed)))
            table.remove_pod(row, pod)
        else:
            i = rng.randrange(len(nodes))
            labels = {HOST: f"n{i}", "pool": "ab"[i % 2]}
            if rng.random() < 0.8:
                labels["zone"] = rng.choice(["z0", "z1", "z2", "z3"])
            table.upsert_node(compile_node(node(f"n{i}", labels, tainted=rng.random() < 0.2)))
        candidates = rng.sample(list(table.row_of), 10)
        for pod_json in pods:
            fresh = plugin(handle=handle)
            assert filter_reasons(kept, pod_json, table) == filter_reasons(fresh, pod_json, table)
            got = score_nodes(kept, pod_json, table, candidates)
            assert got == score_nodes(fresh, pod_json, table, candidates), (step, pod_json)


def test_window_scored_only_without_do_not_schedule() -> None:
    """A pod with only ScheduleAnyway constraints (own or the system defaults) is
    window-scored; one with a DoNotSchedule constraint is not (its Filter reads domains)."""
    pl = plugin(handle=service_selector(app="web"))
    defaults = compile_pod(incoming().label("app", "web").obj_())
    own = compile_pod(incoming().spread(1, "zone", SA, FOO).obj_())
    strict = compile_pod(incoming().spread(1, "zone", SA, FOO).spread(1, HOST, DNS, FOO).obj_())
    assert [pl.row_local_for(p) for p in (defaults, own, strict)] == [False, False, False]
    assert [pl.window_scored_for(p) for p in (defaults, own, strict)] == [True, True, False]


def test_normalize_ignores_marked_nodes() -> None:
    """Raw -1 marks a node without the topology keys: it scores 0 and does not set min/max."""
    pl = plugin()
    got = pl.normalize(np.asarray([-1, 4, 2], dtype=np.int64))
    assert got.tolist() == [0, 50, 100]
    assert pl.normalize(np.asarray([-1, -1], dtype=np.int64)).tolist() == [0, 0]


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        pytest.param(
            {"defaultingType": "Foo"},
            ['defaultingType: Unsupported value: "Foo"'],
            id="bad-defaulting-type",
        ),
        pytest.param(
            {
                "defaultConstraints": [
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": DNS}
                ]
            },
            ['defaultingType: Invalid value: "System": when .defaultConstraints are not empty'],
            id="system-with-constraints",
        ),
        pytest.param(
            {
                "defaultingType": "List",
                "defaultConstraints": [
                    {"maxSkew": 0, "topologyKey": "", "whenUnsatisfiable": "Maybe"},
                    {
                        "maxSkew": 1,
                        "topologyKey": "zone",
                        "whenUnsatisfiable": DNS,
                        "labelSelector": {},
                    },
                    {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": DNS},
                    {"maxSkew": 1, "topologyKey": "bad key!", "whenUnsatisfiable": ""},
                ],
            },
            [
                "defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf)",
                "defaultConstraints[0].topologyKey: Required value: can not be empty",
                'defaultConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe"',
                "defaultConstraints[1].labelSelector: Forbidden: constraint must not define",
                'defaultConstraints[2]: Duplicate value: "{zone, DoNotSchedule}"',
                'defaultConstraints[3].topologyKey: Invalid value: "bad key!"',
                "defaultConstraints[3].whenUnsatisfiable: Required value: can not be empty",
            ],
            id="every-constraint-error-with-its-path",
        ),
    ],
)
def test_args_validation(args: JSON, errors: list[str]) -> None:
    """Every error is reported with its field path, as upstream's ValidatePodTopologySpreadArgs."""
    with pytest.raises(ConfigError) as info:
        plugin(args)
    got = info.value.errors
    assert len(got) == len(errors)
    for error, line in zip(errors, got, strict=True):
        assert line.startswith("args." + error)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param({}, id="empty"),
        pytest.param({"defaultingType": "System"}, id="system"),
        pytest.param({"defaultingType": "List"}, id="list-empty"),
        pytest.param(
            {
                "defaultingType": "List",
                "defaultConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": SA,
                    },
                    {
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": DNS,
                    },
                ],
            },
            id="list-same-key-different-action",
        ),
    ],
)
def test_args_accepted(args: JSON) -> None:
    """Valid args build the plugin."""
    assert plugin(args).name == "PodTopologySpread"


def test_bad_pod_selector_is_an_invalid_object() -> None:
    """A malformed labelSelector in the pod's constraint names the field."""
    from scheduler.model import InvalidObject

    bad = {"matchExpressions": [{"key": "foo", "operator": "In"}]}
    with pytest.raises(InvalidObject, match=r"topologySpreadConstraints\[0\]\.labelSelector"):
        compile_pod(incoming().spread(1, "zone", DNS, bad).obj_())


def test_registered_with_default_weight() -> None:
    """In the registry and the default plugin list in upstream's order, weight 2."""
    from plugins import DEFAULTS, registry

    assert "PodTopologySpread" in registry()
    names = [n for n, _ in DEFAULTS]
    before = ("NodeResourcesFit", "VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding")
    after = ("InterPodAffinity", "DefaultPreemption", "NodeResourcesBalancedAllocation")
    here = names.index("PodTopologySpread")
    assert all(names.index(n) < here for n in (*before, "VolumeZone") if n in names)
    assert all(names.index(n) > here for n in (*after, "ImageLocality") if n in names)
    assert dict(DEFAULTS)["PodTopologySpread"] == 2


async def test_cycle_spreads_replicas_evenly() -> None:
    """Through the scheduler's default profile, with batching on: DoNotSchedule on zone and
    ScheduleAnyway on hostname place 6 replicas 3/3 across zones, 1 or 2 per node, while
    pods without constraints keep the batched path."""
    from tests.unit.test_cycle import NAME, World

    nodes = [make_node(f"n{i}").zone("a" if i < 3 else "b").obj_() for i in range(6)]
    world = World(nodes, batching=True)
    zone = "topology.kubernetes.io/zone"
    placed = []
    for i in range(6):
        replica = (
            make_pod(f"web-{i}")
            .scheduler(NAME)
            .label("app", "web")
            .spread(1, zone, DNS, {"matchLabels": {"app": "web"}})
            .spread(1, HOST, SA, {"matchLabels": {"app": "web"}})
        )
        placed.append(world.schedule(replica.obj_()).node)
    assert sorted(placed) == sorted(f"n{i}" for i in range(6))
    hits = world.scheduler.classes.hits
    for i in range(3):
        world.schedule(make_pod(f"plain-{i}").scheduler(NAME).obj_())
    assert world.scheduler.classes.hits > hits
    await world.scheduler.drain()


def test_class_key_tracks_labels_only_with_constraints() -> None:
    """Spread pods self-match by label, so their labels and namespace are part of the
    equivalence class; pods without constraints still share a class across labels."""
    plain = [compile_pod(make_pod(n).label("pod-name", n).obj_()) for n in ("a", "b")]
    assert plain[0].class_key == plain[1].class_key
    spread = [
        compile_pod(make_pod(n).label("app", n).spread(1, "zone", DNS, FOO).obj_())
        for n in ("a", "b")
    ]
    assert spread[0].class_key != spread[1].class_key
    assert spread[0].spread_constraints[0].selector == LabelSelector(
        (Requirement("foo", "Exists", ()),)
    )


# --- events ----------------------------------------------------------------------------------

QUEUE, NO = QueueingHint.QUEUE, QueueingHint.SKIP
LIST_ARGS = {"defaultingType": "List"}  # upstream's tests: ListDefaulting, no defaults
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: AssignedPod/Add|UpdatePodLabel|Delete,
    TargetPod/UpdatePodToleration|UpdatePodLabel and
    Node/Add|Delete|UpdateNodeLabel|UpdateNodeTaint, all with hints."""
    assert registered(plugin()) == [
        ("AssignedPodAdd", True),
        ("AssignedPodDelete", True),
        ("AssignedPodUpdatePodLabel", True),
        ("TargetPodUpdatePodLabel", True),
        ("TargetPodUpdatePodToleration", True),
        ("NodeAdd", True),
        ("NodeDelete", True),
        ("NodeUpdateNodeLabel", True),
        ("NodeUpdateNodeTaint", True),
    ]


def spread_foo(*, zone_taints: str | None = None) -> PodBuilder:
    """A pod labelled foo="" spread by zone over the pods with label foo (upstream's
    SpreadConstraint(1, "zone", DoNotSchedule, fooSelector, ...))."""
    return (
        make_pod("p")
        .uid("p")
        .label("foo")
        .spread(1, "zone", DNS, FOO, node_taints_policy=zone_taints)
    )


def spread_foo_bar(*, zone_taints: str | None = None) -> PodBuilder:
    """spread_foo plus a second constraint, by "node" over the pods with label bar."""
    return spread_foo(zone_taints=zone_taints).spread(1, "node", DNS, BAR)


def exactly(*taints: str, **labels: str) -> NodeBuilder:
    """Upstream's MakeNode().Name("node-a").Label(...): only these labels; a NoSchedule taint
    <key>=bbb per name in `taints`."""
    builder = make_node("node-a")
    builder.obj["metadata"]["labels"] = dict(labels)
    for key in taints:
        builder.taint(key, "bbb")
    return builder


@pytest.mark.parametrize(
    ("incoming", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterNodeChange.
        pytest.param(
            spread_foo(),
            exactly(zone="zone1"),
            exactly(zone="zone2"),
            QUEUE,
            id="node updates label which matches topologyKey",
        ),
        pytest.param(
            spread_foo(),
            exactly(foo="bar1"),
            exactly(foo="bar2"),
            NO,
            id="node that doesn't match topologySpreadConstraints updates non-related label",
        ),
        pytest.param(
            spread_foo_bar(),
            exactly(zone="zone1", node="node1", foo="bar"),
            exactly(zone="zone1", node="node1"),
            NO,
            id="node that match topologySpreadConstraints adds non-related label",
        ),
        pytest.param(
            spread_foo(), None, exactly(foo="bar"), NO, id="create node with non-related labels"
        ),
        pytest.param(
            spread_foo(), None, exactly(zone="zone1"), QUEUE, id="create node with related labels"
        ),
        pytest.param(
            spread_foo(), exactly(foo="bar"), None, NO, id="delete node with non-related labels"
        ),
        pytest.param(
            spread_foo(), exactly(zone="zone1"), None, QUEUE, id="delete node with related labels"
        ),
        pytest.param(
            spread_foo_bar(),
            None,
            exactly(zone="zone1"),
            NO,
            id="add node with related labels that only match one of topologySpreadConstraints",
        ),
        pytest.param(
            spread_foo_bar(),
            None,
            exactly(zone="zone1", node="node1"),
            QUEUE,
            id="add node with related labels that match all topologySpreadConstraints",
        ),
        pytest.param(
            spread_foo_bar(),
            exactly(zone="zone1"),
            exactly(zone="zone1"),
            NO,
            id="update node with related labels that only match one of topologySpreadConstraints",
        ),
        pytest.param(
            spread_foo_bar(),
            exactly(zone="zone1", node="node1"),
            exactly(zone="zone1", node="node2"),
            QUEUE,
            id="update node with related labels that match all topologySpreadConstraints",
        ),
        pytest.param(
            spread_foo_bar(),
            exactly("aaa", zone="zone1", node="node1"),
            exactly("ccc", zone="zone1", node="node1"),
            QUEUE,
            id="update node with different taints that match all topologySpreadConstraints",
        ),
        pytest.param(
            spread_foo_bar(),
            exactly("aaa", node="node1"),
            exactly("ccc", node="node1"),
            NO,
            id="update node with different taints that only match one of topologySpreadConstraints",
        ),
    ],
)
def test_is_schedulable_after_node_change(
    incoming: PodBuilder,
    old: NodeBuilder | None,
    new: NodeBuilder | None,
    expected: QueueingHint,
) -> None:
    """A node moves the pod when it carries (or carried) every constraint's topology key and
    its domain, its taints or its presence changed."""
    label = "NodeAdd" if old is None else "NodeDelete" if new is None else "NodeUpdateNodeLabel"
    assert run_hint(plugin(LIST_ARGS), label, incoming, old, new) is expected


def p2(*labels: tuple[str, str], node: str = "fake-node", ns: str = "") -> PodBuilder:
    """Upstream's MakePod().UID("p2").Node(node).Label(...)..."""
    builder = make_pod("p2").uid("p2")
    if node:
        builder.node(node)
    if ns:
        builder.namespace(ns)
    for key, value in labels:
        builder.label(key, value)
    return builder


@pytest.mark.parametrize(
    ("incoming", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterAssignedPodChange.
        pytest.param(
            spread_foo(),
            None,
            p2(("foo", "")),
            QUEUE,
            id="add pod with labels match topologySpreadConstraints selector",
        ),
        pytest.param(spread_foo(), None, p2(("foo", ""), node=""), NO, id="add un-scheduled pod"),
        pytest.param(
            spread_foo(),
            p2(("bar", ""), node=""),
            p2(("foo", ""), node=""),
            NO,
            id="update un-scheduled pod",
        ),
        pytest.param(
            spread_foo(), p2(("foo", ""), node=""), None, NO, id="delete un-scheduled pod"
        ),
        pytest.param(
            spread_foo(),
            None,
            p2(("foo", ""), ns="fake-namespace"),
            NO,
            id="add pod with different namespace",
        ),
        pytest.param(
            spread_foo(),
            None,
            p2(("bar", "")),
            NO,
            id="add pod with labels don't match topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("foo", "")),
            None,
            QUEUE,
            id="delete pod with labels that match topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("bar", ""), node="").nominated("fake-node"),
            None,
            NO,
            id="delete nominated pod with labels that don't match topologySpreadConstraints "
            "selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("foo", ""), node="").nominated("fake-node"),
            None,
            QUEUE,
            id="delete nominated pod with labels that match topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("bar", "")),
            None,
            NO,
            id="delete pod with labels that don't match topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("foo", ""), ("bar", "bar1")),
            p2(("foo", ""), ("bar", "bar2")),
            NO,
            id="update pod's non-related label",
        ),
        pytest.param(
            spread_foo(),
            p2(),
            p2(("foo", "")),
            QUEUE,
            id="add pod's label that matches topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("foo", "")),
            p2(),
            QUEUE,
            id="delete pod label that matches topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("foo", "foo1")),
            p2(("foo", "foo2")),
            NO,
            id="change pod's label that matches topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo(),
            p2(("foo", ""), ("bar", "bar1")),
            p2(("foo", ""), ("bar", "bar2")),
            NO,
            id="change pod's label that doesn't match topologySpreadConstraints selector",
        ),
        pytest.param(
            spread_foo_bar(),
            p2(("foo", "")),
            p2(("foo", ""), ("bar", "bar2")),
            QUEUE,
            id="add pod's label that matches topologySpreadConstraints selector with multi "
            "topologySpreadConstraints",
        ),
        pytest.param(
            spread_foo_bar(),
            p2(("foo", "")),
            p2(("foo", ""), ("baz", "")),
            NO,
            id="change pod's label that doesn't match topologySpreadConstraints selector with "
            "multi topologySpreadConstraints",
        ),
        pytest.param(
            spread_foo_bar(),
            p2(("foo", ""), ("bar", "")),
            p2(("foo", ""), ("bar", "bar2")),
            NO,
            id="change pod's label that match topologySpreadConstraints selector with multi "
            "topologySpreadConstraints",
        ),
    ],
)
def test_is_schedulable_after_assigned_pod_change(
    incoming: PodBuilder,
    old: PodBuilder | None,
    new: PodBuilder | None,
    expected: QueueingHint,
) -> None:
    """A bound (or nominated) pod of the namespace added or deleted matching a selector, or
    relabelled into or out of one, moves the pod."""
    if old is None:
        label = "AssignedPodAdd"
    else:
        label = "AssignedPodDelete" if new is None else "AssignedPodUpdatePodLabel"
    assert run_hint(plugin(LIST_ARGS), label, incoming, old, new) is expected


@pytest.mark.parametrize(
    ("incoming", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterTargetPodChange (NodeInclusionPolicyInPodTopology
        # Spread is GA: the policies always count).
        pytest.param(
            spread_foo_bar(zone_taints="Honor"),
            make_pod("p").uid("p").label("foo"),
            make_pod("p")
            .uid("p")
            .label("foo")
            .toleration(UNSCHEDULABLE, effect="", operator="Exists"),
            QUEUE,
            id="the unschedulable Pod has topologySpreadConstraint with NodeTaintsPolicy:Honor "
            "and has got a new toleration",
        ),
        pytest.param(
            spread_foo_bar(zone_taints="Ignore"),
            make_pod("p").uid("p").label("foo"),
            make_pod("p")
            .uid("p")
            .label("foo")
            .toleration(UNSCHEDULABLE, effect="", operator="Exists"),
            NO,
            id="the unschedulable Pod has topologySpreadConstraint without "
            "NodeTaintsPolicy:Honor and has got a new toleration",
        ),
        pytest.param(
            spread_foo_bar(zone_taints="Ignore"),
            make_pod("p").uid("p"),
            make_pod("p").uid("p").label("foo"),
            QUEUE,
            id="the unschedulable Pod has topologySpreadConstraint and has got a new label "
            "matching the selector of the constraint",
        ),
        pytest.param(
            spread_foo_bar(zone_taints="Ignore"),
            make_pod("p").uid("p"),
            make_pod("p").uid("p").label("unrelated"),
            NO,
            id="the unschedulable Pod has topologySpreadConstraint and has got a new unrelated "
            "label",
        ),
    ],
)
def test_is_schedulable_after_target_pod_change(
    incoming: PodBuilder, old: PodBuilder, new: PodBuilder, expected: QueueingHint
) -> None:
    """The pod's own new toleration (when a constraint honors taints) or a label change that
    moves it into or out of a selector moves it."""
    assert (
        run_hint(plugin(LIST_ARGS), "TargetPodUpdatePodToleration", incoming, old, new) is expected
    )
