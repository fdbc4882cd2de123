"""InterPodAffinity: Filter with upstream's reasons and the cases of filtering_test.go
(TestRequiredAffinitySingleNode, TestRequiredAffinityMultipleNodes), Score with scoring_test.go
(TestPreferredAffinity, TestPreferredAffinityWithHardPodAffinitySymmetricWeight), and berth's
own concerns: the incremental pod index, row-locality for batching, namespace labels, args."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from plugins import inter_pod_affinity
from plugins.inter_pod_affinity import InterPodAffinity, InterPodAffinityArgs
from scheduler.decode import ConfigError
from scheduler.framework import Code, CycleState, QueueingHint
from scheduler.handle import in_memory
from scheduler.model import compile_node, compile_pod
from scheduler.namespaces import NamespaceLabels
from tests.builders import NodeBuilder, PodBuilder, make_node, make_pod
from tests.unit.tables import build_table, registered, rows, run_hint, unresolvable

JSON = dict[str, Any]
Expr = tuple[str, ...]  # key, operator, values...

AFFINITY = "node(s) didn't match pod affinity rules"
ANTI = "node(s) didn't match pod anti-affinity rules"
EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"
SKIP = "skip"

# filtering_test.go / scoring_test.go's namespaces.
TEAM1 = {"team": "team1"}
TEAM2 = {"team": "team2"}
NAMESPACES = {
    "subteam1.team1": TEAM1,
    "subteam2.team1": TEAM1,
    "subteam1.team2": TEAM2,
    "subteam2.team2": TEAM2,
}
SERVICE = {"service": "securityscan"}
S1 = {"security": "S1"}
S2 = {"security": "S2"}


def plugin(hard: int = 1, ignore: bool = False) -> InterPodAffinity:
    return InterPodAffinity(InterPodAffinityArgs(hard, ignore), NamespaceLabels(NAMESPACES))


def node(name: str, **labels: str) -> JSON:
    builder = make_node(name)
    builder.obj["metadata"]["labels"] = dict(labels)  # exactly these labels, as upstream's tests
    return builder.obj_()


def pod(
    name: str = "pod", labels: dict[str, str] | None = None, ns: str = "default", on: str = ""
) -> PodBuilder:
    builder = make_pod(name).namespace(ns)
    for key, value in (labels or {}).items():
        builder.label(key, value)
    if on:
        builder.node(on)
    return builder


def term(
    topology: str,
    *exprs: Expr,
    namespaces: list[str] | None = None,
    ns_selector: JSON | None = None,
) -> JSON:
    out: JSON = {
        "labelSelector": {
            "matchExpressions": [
                {"key": e[0], "operator": e[1]} | ({"values": list(e[2:])} if e[2:] else {})
                for e in exprs
            ]
        },
        "topologyKey": topology,
    }
    if namespaces is not None:
        out["namespaces"] = namespaces
    if ns_selector is not None:
        out["namespaceSelector"] = ns_selector
    return out


def team_selector(team: str) -> JSON:
    return {"matchExpressions": [{"key": "team", "operator": "In", "values": [team]}]}


def run_filter(
    p: InterPodAffinity, incoming: JSON, nodes: list[JSON], pods: list[JSON]
) -> str | dict[str, list[str]]:
    """PreFilter then Filter over every node: "skip", or node -> rejection reasons."""
    table = build_table(nodes, pods)
    compiled = compile_pod(incoming)
    state = CycleState()
    status = p.pre_filter(state, compiled, table)
    if status is not None:
        assert status.code is Code.SKIP, status
        return SKIP
    result = p.filter(state, compiled, table, rows(table))
    out = {}
    for i, name in enumerate(table.row_of):
        reasons = [r.message for r in result.reasons if r.rejected[i]]
        assert bool(result.mask[i]) == (not reasons), (name, reasons)
        out[name] = reasons
    return out


def run_score(
    p: InterPodAffinity, incoming: JSON, nodes: list[JSON], pods: list[JSON]
) -> str | dict[str, int]:
    """PreScore, Score and Normalize over every node: "skip", or node -> final score."""
    table = build_table(nodes, pods)
    compiled = compile_pod(incoming)
    state = CycleState()
    status = p.pre_score(state, compiled, table, rows(table))
    if status is not None:
        assert status.code is Code.SKIP, status
        return SKIP
    final = p.normalize(p.score(state, compiled, table, rows(table)))
    return {name: int(final[i]) for i, name in enumerate(table.row_of)}


# --- Filter: TestRequiredAffinitySingleNode -------------------------------------------------

NODE1 = node("node1", region="r1", zone="z11")
EXISTING_POD = pod("existing", SERVICE, on="node1").obj_()
SECURITYSCAN = ("service", "In", "securityscan", "value2")
ANTIVIRUS = ("service", "In", "antivirusscan", "value2")


@pytest.mark.parametrize(
    ("incoming", "pods", "expected"),
    [
        pytest.param(pod().obj_(), [], SKIP, id="no-affinity-no-pods-skips"),
        pytest.param(
            pod(labels=S1).pod_affinity_term(term("region", SECURITYSCAN)).obj_(),
            [EXISTING_POD],
            [],
            id="affinity-in-matches-existing-pod",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", ("service", "NotIn", "securityscan3", "value3")))
            .obj_(),
            [EXISTING_POD],
            [],
            id="affinity-notin-matches-existing-pod",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("", SECURITYSCAN, namespaces=["DiffNameSpace"]))
            .obj_(),
            [pod("other", SERVICE, ns="ns", on="node1").obj_()],
            [AFFINITY],
            id="affinity-other-namespace-does-not-match",
        ),
        pytest.param(
            pod(labels=SERVICE).pod_affinity_term(term("", ANTIVIRUS)).obj_(),
            [EXISTING_POD],
            [AFFINITY],
            id="affinity-selector-does-not-match",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", ("service", "Exists"), ("wrongkey", "DoesNotExist")))
            .pod_affinity_term(
                term(
                    "region",
                    ("service", "In", "securityscan"),
                    ("service", "NotIn", "WrongValue"),
                )
            )
            .obj_(),
            [EXISTING_POD],
            [],
            id="affinity-multiple-terms-different-operators",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", ("service", "Exists"), ("wrongkey", "DoesNotExist")))
            .pod_affinity_term(
                term(
                    "region",
                    ("service", "In", "securityscan2"),
                    ("service", "NotIn", "WrongValue"),
                )
            )
            .obj_(),
            [EXISTING_POD],
            [AFFINITY],
            id="affinity-requirements-are-anded",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", SECURITYSCAN))
            .pod_affinity_term(term("node", ANTIVIRUS), anti=True)
            .obj_(),
            [EXISTING_POD],
            [],
            id="affinity-and-anti-affinity-satisfied",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", SECURITYSCAN))
            .pod_affinity_term(term("node", ANTIVIRUS), anti=True)
            .obj_(),
            [
                pod("existing", SERVICE, on="node1")
                .pod_affinity_term(term("node", ANTIVIRUS), anti=True)
                .obj_()
            ],
            [],
            id="affinity-anti-affinity-and-symmetry-satisfied",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", SECURITYSCAN))
            .pod_affinity_term(term("zone", SECURITYSCAN), anti=True)
            .obj_(),
            [EXISTING_POD],
            [ANTI],
            id="anti-affinity-violated",
        ),
        pytest.param(
            pod(labels=SERVICE)
            .pod_affinity_term(term("region", SECURITYSCAN))
            .pod_affinity_term(term("node", ANTIVIRUS), anti=True)
            .obj_(),
            [
                pod("existing", SERVICE, on="node1")
                .pod_affinity_term(term("zone", SECURITYSCAN), anti=True)
                .obj_()
            ],
            [EXISTING],
            id="existing-anti-affinity-violated",
        ),
        pytest.param(
            pod(labels=SERVICE)
            .pod_affinity_term(term("region", ("service", "NotIn", "securityscan", "value2")))
            .obj_(),
            [pod("existing", SERVICE, on="node2").obj_()],
            [AFFINITY],
            id="pod-does-not-match-its-own-affinity",
        ),
        pytest.param(
            pod(labels=SERVICE).obj_(),
            [
                pod("existing", SERVICE, on="node1")
                .pod_affinity_term(term("zone", SECURITYSCAN), anti=True)
                .obj_()
            ],
            [EXISTING],
            id="existing-anti-affinity-repels-pod-without-affinity",
        ),
        pytest.param(
            pod(labels=SERVICE).obj_(),
            [
                pod("existing", SERVICE, on="node1")
                .pod_affinity_term(
                    term("zone", ("service", "NotIn", "securityscan", "value2")), anti=True
                )
                .obj_()
            ],
            SKIP,
            id="existing-anti-affinity-not-matching-skips",
        ),
        pytest.param(
            pod(labels=SERVICE)
            .pod_affinity_term(term("region", ("service", "Exists")), anti=True)
            .pod_affinity_term(term("region", ("security", "Exists")), anti=True)
            .obj_(),
            [
                pod("existing", S1, on="node1")
                .pod_affinity_term(term("zone", ("security", "Exists")), anti=True)
                .obj_()
            ],
            [ANTI],
            id="anti-affinity-matches-existing-but-symmetry-not-checked-first",
        ),
        pytest.param(
            pod(labels=SERVICE)
            .pod_affinity_term(term("zone", ("service", "Exists")), anti=True)
            .pod_affinity_term(term("zone", ("security", "Exists")), anti=True)
            .obj_(),
            [
                pod("existing", S1, on="node1")
                .pod_affinity_term(term("zone", ("security", "Exists")), anti=True)
                .obj_()
            ],
            [ANTI],
            id="symmetry-a1-partial-match",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("zone", ("security", "Exists")), anti=True)
            .obj_(),
            [
                pod("existing", SERVICE, on="node1")
                .pod_affinity_term(term("zone", ("service", "Exists")), anti=True)
                .pod_affinity_term(term("zone", ("security", "Exists")), anti=True)
                .obj_()
            ],
            [EXISTING],
            id="symmetry-a2-partial-match",
        ),
        pytest.param(
            pod(labels={"abc": "", "xyz": ""})
            .pod_affinity_term(term("zone", ("abc", "Exists")), anti=True)
            .pod_affinity_term(term("zone", ("def", "Exists")), anti=True)
            .obj_(),
            [
                pod("existing", {"def": "", "xyz": ""}, on="node1")
                .pod_affinity_term(term("zone", ("abc", "Exists")), anti=True)
                .pod_affinity_term(term("zone", ("def", "Exists")), anti=True)
                .obj_()
            ],
            [ANTI],
            id="symmetry-b1-partial-match",
        ),
        pytest.param(
            pod(labels={"def": "", "xyz": ""})
            .pod_affinity_term(term("zone", ("abc", "Exists")), anti=True)
            .pod_affinity_term(term("zone", ("def", "Exists")), anti=True)
            .obj_(),
            [
                pod("existing", {"abc": "", "xyz": ""}, on="node1")
                .pod_affinity_term(term("zone", ("abc", "Exists")), anti=True)
                .pod_affinity_term(term("zone", ("def", "Exists")), anti=True)
                .obj_()
            ],
            [ANTI],
            id="symmetry-b2-partial-match",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", SECURITYSCAN, ns_selector=team_selector("team1")))
            .obj_(),
            [pod("existing", SERVICE, ns="subteam1.team1", on="node1").obj_()],
            [],
            id="affinity-namespace-selector-matches",
        ),
        pytest.param(
            pod(labels=S1)
            .pod_affinity_term(term("region", SECURITYSCAN, ns_selector=team_selector("team1")))
            .obj_(),
            [pod("existing", SERVICE, ns="subteam1.team2", on="node1").obj_()],
            [AFFINITY],
            id="affinity-namespace-selector-does-not-match",
        ),
        pytest.param(
            pod(labels=S1, ns="subteam1.team1")
            .pod_affinity_term(
                term("zone", SECURITYSCAN, ns_selector=team_selector("team1")), anti=True
            )
            .obj_(),
            [pod("existing", SERVICE, ns="subteam2.team1", on="node1").obj_()],
            [ANTI],
            id="anti-affinity-namespace-selector-matches",
        ),
        pytest.param(
            pod(labels=S1, ns="subteam1.team1")
            .pod_affinity_term(term("zone", SECURITYSCAN, ns_selector={}), anti=True)
            .obj_(),
            [pod("existing", SERVICE, ns="subteam2.team1", on="node1").obj_()],
            [ANTI],
            id="anti-affinity-empty-namespace-selector-matches-all",
        ),
        pytest.param(
            pod(labels=S1, ns="subteam1.team1")
            .pod_affinity_term(
                term("zone", SECURITYSCAN, ns_selector=team_selector("team1")), anti=True
            )
            .obj_(),
            [pod("existing", SERVICE, ns="subteam1.team2", on="node1").obj_()],
            [],
            id="anti-affinity-namespace-selector-does-not-match",
        ),
    ],
)
def test_filter_single_node(incoming: JSON, pods: list[JSON], expected: Any) -> None:
    """filtering_test.go TestRequiredAffinitySingleNode: the verdict on node1."""
    nodes = [NODE1, node("node2")]  # node2 (no labels) only hosts pods placed "elsewhere"
    got = run_filter(plugin(), incoming, nodes, pods)
    assert (got if got == SKIP else cast(dict[str, list[str]], got)["node1"]) == expected


# --- Filter: TestRequiredAffinityMultipleNodes ----------------------------------------------

CHINA = {"region": "China"}
CHINA_AZ1 = {"region": "China", "az": "az1"}
INDIA = {"region": "India"}


def abc_nodes(*zones: str) -> list[JSON]:
    names = ["nodeA", "nodeB", "nodeC"]
    return [node(names[i], region="r1", zone=z, hostname=names[i]) for i, z in enumerate(zones)]


@pytest.mark.parametrize(
    ("incoming", "pods", "nodes", "expected"),
    [
        pytest.param(
            pod().pod_affinity_term(term("region", ("foo", "In", "bar"))).obj_(),
            [pod("p1", {"foo": "bar"}, on="node1").obj_()],
            [node("node1", **CHINA), node("node2", **CHINA_AZ1), node("node3", **INDIA)],
            {"node1": [], "node2": [], "node3": [AFFINITY]},
            id="affinity-whole-topology-domain-fits",
        ),
        pytest.param(
            pod(labels={"foo": "bar", "service": "securityscan"})
            .pod_affinity_term(term("zone", ("foo", "In", "bar")))
            .pod_affinity_term(term("zone", ("service", "In", "securityscan")))
            .obj_(),
            [pod("p1", {"foo": "bar"}, on="nodeA").obj_()],
            [node("nodeA", zone="az1", hostname="h1"), node("nodeB", zone="az2", hostname="h2")],
            {"nodeA": [], "nodeB": []},
            id="first-pod-of-self-affine-group-goes-anywhere",
        ),
        pytest.param(
            pod(labels={"foo": "bar", "service": "securityscan"})
            .pod_affinity_term(term("zone", ("foo", "In", "bar")))
            .pod_affinity_term(term("zone", ("service", "In", "securityscan")))
            .obj_(),
            [pod("p1", {"foo": "bar"}, on="nodeA").obj_()],
            [
                node("nodeA", zoneLabel="az1", hostname="h1"),
                node("nodeB", zoneLabel="az2", hostname="h2"),
            ],
            {"nodeA": [AFFINITY], "nodeB": [AFFINITY]},
            id="first-pod-of-group-needs-the-topology-keys",
        ),
        pytest.param(
            pod().pod_affinity_term(term("region", ("foo", "In", "abc")), anti=True).obj_(),
            [pod("p1", {"foo": "abc"}, on="nodeA").obj_()],
            [
                node("nodeA", region="r1", hostname="nodeA"),
                node("nodeB", region="r1", hostname="nodeB"),
            ],
            {"nodeA": [ANTI], "nodeB": [ANTI]},
            id="anti-affinity-whole-topology-domain-rejected",
        ),
        pytest.param(
            pod()
            .pod_affinity_term(term("region", ("foo", "In", "abc")), anti=True)
            .pod_affinity_term(term("zone", ("service", "In", "securityscan")), anti=True)
            .obj_(),
            [pod("p1", {"foo": "abc", "service": "securityscan"}, on="nodeA").obj_()],
            abc_nodes("z1", "z2"),
            {"nodeA": [ANTI], "nodeB": [ANTI]},
            id="anti-affinity-any-term-matching-rejects",
        ),
        pytest.param(
            pod().pod_affinity_term(term("region", ("foo", "In", "abc")), anti=True).obj_(),
            [pod("p1", {"foo": "abc"}, on="nodeA").obj_()],
            [node("nodeA", **CHINA), node("nodeB", **CHINA_AZ1), node("nodeC", **INDIA)],
            {"nodeA": [ANTI], "nodeB": [ANTI], "nodeC": []},
            id="anti-affinity-other-region-fits",
        ),
        pytest.param(
            pod(labels={"foo": "123"}, ns="NS1")
            .pod_affinity_term(term("region", ("foo", "In", "bar")), anti=True)
            .obj_(),
            [
                pod("p1", {"foo": "bar"}, ns="NS1", on="nodeA").obj_(),
                pod("p2", ns="NS2", on="nodeC")
                .pod_affinity_term(term("region", ("foo", "In", "123")), anti=True)
                .obj_(),
            ],
            [node("nodeA", **CHINA), node("nodeB", **CHINA_AZ1), node("nodeC", **INDIA)],
            {"nodeA": [ANTI], "nodeB": [ANTI], "nodeC": []},
            id="existing-anti-affinity-in-other-namespace-ignored",
        ),
        pytest.param(
            pod(labels={"foo": ""}).obj_(),
            [
                pod("p1", on="nodeA")
                .pod_affinity_term(term("invalid-node-label", ("foo", "Exists")), anti=True)
                .obj_()
            ],
            abc_nodes("z1", "z1"),
            SKIP,
            id="existing-anti-affinity-topology-key-missing-skips",
        ),
        pytest.param(
            pod(on="nodeA")
            .pod_affinity_term(term("invalid-node-label", ("foo", "Exists")), anti=True)
            .obj_(),
            [pod("p1", {"foo": ""}, on="nodeA").obj_()],
            abc_nodes("z1", "z1"),
            {"nodeA": [], "nodeB": []},
            id="anti-affinity-topology-key-missing-fits",
        ),
        pytest.param(
            pod(labels={"foo": "", "bar": ""}).obj_(),
            [
                pod("p1", on="nodeA")
                .pod_affinity_term(term("zone", ("foo", "Exists")), anti=True)
                .obj_(),
                pod("p2", on="nodeA")
                .pod_affinity_term(term("region", ("bar", "Exists")), anti=True)
                .obj_(),
            ],
            abc_nodes("z1", "z2"),
            {"nodeA": [EXISTING], "nodeB": [EXISTING]},
            id="existing-anti-affinity-each-term-rejects",
        ),
        pytest.param(
            pod()
            .pod_affinity_term(term("zone", ("foo", "Exists")), anti=True)
            .pod_affinity_term(term("region", ("bar", "Exists")), anti=True)
            .obj_(),
            [
                pod("p1", {"foo": ""}, on="nodeA").obj_(),
                pod("p2", {"bar": ""}, on="nodeB").obj_(),
            ],
            abc_nodes("z1", "z2"),
            {"nodeA": [ANTI], "nodeB": [ANTI]},
            id="anti-affinity-violates-one-term-each",
        ),
        pytest.param(
            pod(labels={"foo": "", "bar": ""}).obj_(),
            [
                pod("p1", on="nodeA")
                .pod_affinity_term(term("invalid-node-label", ("foo", "Exists")), anti=True)
                .pod_affinity_term(term("zone", ("bar", "Exists")), anti=True)
                .obj_()
            ],
            abc_nodes("z1", "z2"),
            {"nodeA": [EXISTING], "nodeB": []},
            id="existing-anti-affinity-selector-and-topology-both-needed",
        ),
        pytest.param(
            pod()
            .pod_affinity_term(term("invalid-node-label", ("foo", "Exists")), anti=True)
            .pod_affinity_term(term("zone", ("bar", "Exists")), anti=True)
            .obj_(),
            [pod("podA", {"foo": "", "bar": ""}, on="nodeA").obj_()],
            abc_nodes("z1", "z2"),
            {"nodeA": [ANTI], "nodeB": []},
            id="anti-affinity-selector-and-topology-both-needed",
        ),
        pytest.param(
            pod(labels={"foo": "", "bar": ""}).obj_(),
            [
                pod("p1", on="nodeA")
                .pod_affinity_term(term("region", ("foo", "Exists")), anti=True)
                .pod_affinity_term(term("zone", ("bar", "Exists")), anti=True)
                .obj_()
            ],
            abc_nodes("z1", "z2"),
            {"nodeA": [EXISTING], "nodeB": [EXISTING]},
            id="existing-anti-affinity-all-topology-keys-valid",
        ),
        pytest.param(
            pod()
            .pod_affinity_term(term("region", ("foo", "Exists")), anti=True)
            .pod_affinity_term(term("zone", ("bar", "Exists")), anti=True)
            .obj_(),
            [pod("p1", {"foo": "", "bar": ""}, on="nodeA").obj_()],
            abc_nodes("z1", "z2"),
            {"nodeA": [ANTI], "nodeB": [ANTI]},
            id="anti-affinity-all-topology-keys-valid",
        ),
        pytest.param(
            pod(labels={"foo": "", "bar": ""}).obj_(),
            [
                pod("p1", on="nodeA")
                .pod_affinity_term(term("zone", ("foo", "Exists")), anti=True)
                .pod_affinity_term(term("zone", ("labelA", "Exists")), anti=True)
                .obj_(),
                pod("p2", on="nodeB")
                .pod_affinity_term(term("zone", ("bar", "Exists")), anti=True)
                .pod_affinity_term(term("zone", ("labelB", "Exists")), anti=True)
                .obj_(),
            ],
            abc_nodes("z1", "z2", "z3"),
            {"nodeA": [EXISTING], "nodeB": [EXISTING], "nodeC": []},
            id="existing-anti-affinity-only-third-zone-fits",
        ),
        pytest.param(
            pod()
            .pod_affinity_term(term("region", ("foo", "Exists")))
            .pod_affinity_term(term("zone", ("bar", "Exists")))
            .obj_(),
            [pod("pod1", {"foo": "", "bar": ""}, on="nodeA").obj_()],
            abc_nodes("z1", "z1"),
            {"nodeA": [], "nodeB": []},
            id="affinity-all-terms-then-all-topology-keys",
        ),
        pytest.param(
            pod()
            .pod_affinity_term(term("region", ("foo", "Exists")))
            .pod_affinity_term(term("zone", ("bar", "Exists")))
            .obj_(),
            [
                pod("pod1", {"foo": ""}, on="nodeA").obj_(),
                pod("pod2", {"bar": ""}, on="nodeB").obj_(),
            ],
            abc_nodes("z1", "z2"),
            {"nodeA": [AFFINITY], "nodeB": [AFFINITY]},
            id="affinity-terms-must-match-the-same-pod",
        ),
    ],
)
def test_filter_multiple_nodes(
    incoming: JSON, pods: list[JSON], nodes: list[JSON], expected: Any
) -> None:
    """filtering_test.go TestRequiredAffinityMultipleNodes."""
    assert run_filter(plugin(), incoming, nodes, pods) == expected


def test_filter_reasons_resolvability() -> None:
    """Affinity failures are unresolvable (preemption cannot add pods); anti-affinity ones
    are resolvable (evicting the matching pods helps), as upstream's status codes."""
    p = plugin()
    nodes = [node("n1", zone="a"), node("n2", zone="b"), node("n3")]
    pods = [pod("x", {"app": "x"}, on="n1").obj_()]
    incoming = pod().pod_affinity_term(term("zone", ("app", "In", "x")), anti=True).obj_()
    assert unresolvable(p, incoming, build_table(nodes, pods)) == {"n1": False}
    incoming = pod().pod_affinity_term(term("zone", ("app", "In", "x"))).obj_()
    assert unresolvable(p, incoming, build_table(nodes, pods)) == {"n2": True, "n3": True}


def test_filter_without_pre_filter_recomputes() -> None:
    """Filter works when PreFilter did not run for the state (as upstream recomputes)."""
    table = build_table(
        [node("n1", zone="a"), node("n2", zone="b")], [pod("x", {"app": "x"}, on="n1").obj_()]
    )
    incoming = compile_pod(
        pod().pod_affinity_term(term("zone", ("app", "In", "x")), anti=True).obj_()
    )
    result = plugin().filter(CycleState(), incoming, table, rows(table))
    assert result.mask.tolist() == [False, True]


# --- Score: TestPreferredAffinity -----------------------------------------------------------

AZ1 = {"az": "az1"}
AZ2 = {"az": "az2"}
IN_S1 = ("security", "In", "S1")
IN_S2 = ("security", "In", "S2")


def stay_with_s1_in_region(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(term("region", IN_S1), weight=5)


def stay_with_s2_in_region(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(term("region", IN_S2), weight=6)


def affinity3(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(
        term("region", ("security", "NotIn", "S1"), IN_S2), weight=8
    ).pod_affinity_term(
        term("region", ("security", "Exists"), ("wrongkey", "DoesNotExist")), weight=2
    )


def hard_affinity(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(
        term("region", ("security", "In", "S1", "value2"))
    ).pod_affinity_term(term("region", ("security", "Exists"), ("wrongkey", "DoesNotExist")))


def away_from_s1_in_az(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(term("az", IN_S1), anti=True, weight=5)


def away_from_s2_in_az(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(term("az", IN_S2), anti=True, weight=5)


def stay_with_s1_in_region_away_from_s2_in_az(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(term("region", IN_S1), weight=8).pod_affinity_term(
        term("az", IN_S2), anti=True, weight=5
    )


def namespace_selector_term() -> JSON:
    return term("region", IN_S1, namespaces=["subteam2.team2"], ns_selector=team_selector("team1"))


def affinity_namespace_selector(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(namespace_selector_term(), weight=5)


def anti_affinity_namespace_selector(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(namespace_selector_term(), anti=True, weight=5)


def on(name: str, labels: dict[str, str] | None = None, ns: str = "default") -> PodBuilder:
    return pod(f"p-{name}-{len(labels or {})}-{ns}", labels, ns=ns, on=name)


def many(*builders: PodBuilder) -> list[JSON]:
    """Existing pods, each with its own uid (several may share a node and labels)."""
    return [b.uid(f"uid-{i}").obj_() for i, b in enumerate(builders)]


MAX = 100


@pytest.mark.parametrize(
    ("incoming", "pods", "nodes", "ignore", "expected"),
    [
        pytest.param(
            pod(labels=S1).obj_(),
            [],
            [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)],
            False,
            SKIP,
            id="no-affinity-skips",
        ),
        pytest.param(
            stay_with_s1_in_region(pod(labels=S1)).obj_(),
            many(on("node1", S1), on("node2", S2), on("node3", S1)),
            [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)],
            False,
            {"node1": MAX, "node2": 0, "node3": 0},
            id="affinity-topology-and-pods-match",
        ),
        pytest.param(
            stay_with_s1_in_region(pod()).obj_(),
            many(on("node1", S1)),
            [node("node1", **CHINA), node("node2", **CHINA_AZ1), node("node3", **INDIA)],
            False,
            {"node1": MAX, "node2": MAX, "node3": 0},
            id="affinity-same-topology-value-same-score",
        ),
        pytest.param(
            stay_with_s2_in_region(pod(labels=S1)).obj_(),
            many(
                on("node1", S2),
                on("node1", S2),
                on("node2", S2),
                on("node3", S2),
                on("node4", S2),
                on("node5", S2),
            ),
            [
                node("node1", **CHINA),
                node("node2", **INDIA),
                node("node3", **CHINA),
                node("node4", **CHINA),
                node("node5", **INDIA),
            ],
            False,
            {"node1": MAX, "node2": 0, "node3": MAX, "node4": MAX, "node5": 0},
            id="affinity-region-with-more-matches-wins",
        ),
        pytest.param(
            affinity3(pod(labels=S1)).obj_(),
            many(on("node1", S1), on("node2", S2), on("node3", S1)),
            [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)],
            False,
            {"node1": 20, "node2": MAX, "node3": 0},
            id="affinity-operators-and-match-failures",
        ),
        pytest.param(
            pod(labels=S2).obj_(),
            many(stay_with_s1_in_region(on("node1", S1)), stay_with_s2_in_region(on("node2", S2))),
            [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)],
            False,
            {"node1": 0, "node2": MAX, "node3": 0},
            id="affinity-symmetry-preferred",
        ),
        pytest.param(
            pod(labels=S1, ns="subteam1.team1").obj_(),
            many(
                affinity_namespace_selector(on("node1", S1)),
                stay_with_s2_in_region(on("node2", S2)),
            ),
            [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)],
            False,
            {"node1": MAX, "node2": 0, "node3": 0},
            id="affinity-symmetry-namespace-selector",
        ),
        pytest.param(
            pod(labels=S1, ns="subteam1.team1").obj_(),
            many(
                anti_affinity_namespace_selector(on("node1", S1)),
                stay_with_s2_in_region(on("node2", S2)),
            ),
            [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)],
            False,
            {"node1": 0, "node2": MAX, "node3": MAX},
            id="anti-affinity-symmetry-namespace-selector",
        ),
        pytest.param(
            pod(labels=S1).obj_(),
            many(hard_affinity(on("node1", S1)), hard_affinity(on("node2", S2))),
            [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)],
            False,
            {"node1": MAX, "node2": MAX, "node3": 0},
            id="affinity-symmetry-required-terms",
        ),
        pytest.param(
            away_from_s1_in_az(pod(labels=S1)).obj_(),
            many(on("node1", S1), on("node2", S2)),
            [node("node1", **AZ1), node("node2", **CHINA)],
            False,
            {"node1": 0, "node2": MAX},
            id="anti-affinity-not-matching-pods-scores-high",
        ),
        pytest.param(
            away_from_s1_in_az(pod(labels=S1)).obj_(),
            many(on("node1", S1), on("node2", S1)),
            [node("node1", **AZ1), node("node2", **CHINA)],
            False,
            {"node1": 0, "node2": MAX},
            id="anti-affinity-missing-topology-key-scores-high",
        ),
        pytest.param(
            away_from_s1_in_az(pod(labels=S1)).obj_(),
            many(on("node1", S1), on("node1", S1), on("node2", S2)),
            [node("node1", **AZ1), node("node2", **INDIA)],
            False,
            {"node1": 0, "node2": MAX},
            id="anti-affinity-more-matches-scores-low",
        ),
        pytest.param(
            pod(labels=S2).obj_(),
            many(away_from_s2_in_az(on("node1", S1)), away_from_s1_in_az(on("node2", S2))),
            [node("node1", **AZ1), node("node2", **AZ2)],
            False,
            {"node1": 0, "node2": MAX},
            id="anti-affinity-symmetry",
        ),
        pytest.param(
            stay_with_s1_in_region_away_from_s2_in_az(pod(labels=S1)).obj_(),
            many(on("node1", S1), on("node2", S1)),
            [node("node1", **CHINA), node("node2", **AZ1)],
            False,
            {"node1": MAX, "node2": 0},
            id="affinity-and-anti-affinity",
        ),
        pytest.param(
            stay_with_s1_in_region_away_from_s2_in_az(pod(labels=S1)).obj_(),
            many(
                on("node1", S1),
                on("node1", S1),
                on("node2", S1),
                on("node3", S1),
                on("node3", S1),
                on("node4", S1),
                on("node5", S1),
            ),
            [
                node("node1", **CHINA_AZ1),
                node("node2", **INDIA),
                node("node3", **CHINA),
                node("node4", **CHINA),
                node("node5", **INDIA),
            ],
            False,
            {"node1": MAX, "node2": 0, "node3": MAX, "node4": MAX, "node5": 0},
            id="affinity-and-anti-affinity-same-labels",
        ),
        pytest.param(
            stay_with_s1_in_region_away_from_s2_in_az(pod(labels=S1)).obj_(),
            many(
                on("node1", S1),
                on("node2", S2),
                stay_with_s1_in_region_away_from_s2_in_az(on("node3")),
                away_from_s1_in_az(on("node4")),
            ),
            [
                node("node1", **CHINA),
                node("node2", **AZ1),
                node("node3", **INDIA),
                node("node4", **AZ2),
            ],
            False,
            {"node1": MAX, "node2": 0, "node3": MAX, "node4": 0},
            id="affinity-anti-affinity-and-symmetry",
        ),
        pytest.param(
            pod(labels=S1).obj_(),
            many(on("node1", S1), stay_with_s1_in_region_away_from_s2_in_az(on("node2"))),
            [node("node1", **CHINA), node("node2", **CHINA)],
            False,
            {"node1": 0, "node2": 0},
            id="partial-topology-with-affinity-pods",
        ),
        pytest.param(
            affinity_namespace_selector(pod(labels=S1, ns="subteam1.team1")).obj_(),
            many(
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam1.team2"),
                on("node2", S1, ns="subteam2.team1"),
            ),
            [node("node1", **CHINA), node("node2", **INDIA)],
            False,
            {"node1": MAX, "node2": 0},
            id="affinity-namespace-selector",
        ),
        pytest.param(
            affinity_namespace_selector(pod(labels=S1, ns="subteam1.team1")).obj_(),
            many(
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam2.team2"),
                on("node2", S1, ns="subteam2.team1"),
            ),
            [node("node1", **CHINA), node("node2", **INDIA)],
            False,
            {"node1": MAX, "node2": 0},
            id="affinity-namespace-selector-and-namespaces",
        ),
        pytest.param(
            anti_affinity_namespace_selector(pod(labels=S1, ns="subteam1.team1")).obj_(),
            many(
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam1.team2"),
                on("node2", S1, ns="subteam2.team1"),
            ),
            [node("node1", **CHINA), node("node2", **INDIA)],
            False,
            {"node1": 0, "node2": MAX},
            id="anti-affinity-namespace-selector",
        ),
        pytest.param(
            anti_affinity_namespace_selector(pod(labels=S1, ns="subteam1.team1")).obj_(),
            many(
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam1.team1"),
                on("node1", S1, ns="subteam2.team2"),
                on("node2", S1, ns="subteam2.team1"),
            ),
            [node("node1", **CHINA), node("node2", **INDIA)],
            False,
            {"node1": 0, "node2": MAX},
            id="anti-affinity-namespace-selector-and-namespaces",
        ),
        pytest.param(
            pod(labels=S2).obj_(),
            many(
                stay_with_s1_in_region_away_from_s2_in_az(on("node1", S1)),
                stay_with_s2_in_region(on("node2", S2)),
            ),
            [node("node1", **CHINA), node("node2", **INDIA)],
            True,
            SKIP,
            id="ignore-preferred-terms-of-existing-pods",
        ),
        pytest.param(
            pod(labels=S2).obj_(),
            many(
                stay_with_s1_in_region_away_from_s2_in_az(on("node1", S1)),
                stay_with_s2_in_region(on("node2", S2)),
            ),
            [node("node1", **CHINA), node("node2", **INDIA)],
            False,
            {"node1": 0, "node2": MAX},
            id="do-not-ignore-preferred-terms-of-existing-pods",
        ),
        pytest.param(pod(labels=S2).obj_(), [], [], False, SKIP, id="no-nodes-to-score"),
    ],
)
def test_score(
    incoming: JSON, pods: list[JSON], nodes: list[JSON], ignore: bool, expected: Any
) -> None:
    """scoring_test.go TestPreferredAffinity (hardPodAffinityWeight 1)."""
    assert run_score(plugin(1, ignore), incoming, nodes, pods) == expected


# --- Score: TestPreferredAffinityWithHardPodAffinitySymmetricWeight -------------------------


def hard_pod_affinity(b: PodBuilder) -> PodBuilder:
    return b.pod_affinity_term(
        term(
            "region",
            ("service", "In", "S1"),
            namespaces=["default", "subteam2.team2"],
            ns_selector=team_selector("team1"),
        )
    )


@pytest.mark.parametrize(
    ("namespace", "weight", "expected"),
    [
        pytest.param("default", 1, {"node1": MAX, "node2": MAX, "node3": 0}, id="default-weight"),
        pytest.param("default", 0, SKIP, id="zero-weight"),
        pytest.param("subteam1.team2", 1, SKIP, id="no-matching-namespace"),
        pytest.param(
            "subteam1.team1", 1, {"node1": MAX, "node2": MAX, "node3": 0}, id="namespace-selector"
        ),
        pytest.param(
            "subteam2.team2", 1, {"node1": MAX, "node2": MAX, "node3": 0}, id="namespaces"
        ),
    ],
)
def test_score_hard_pod_affinity_weight(namespace: str, weight: int, expected: Any) -> None:
    """Existing pods' required affinity counts with hardPodAffinityWeight."""
    incoming = pod(labels={"service": "S1"}, ns=namespace).obj_()
    pods = many(hard_pod_affinity(on("node1")), hard_pod_affinity(on("node2")))
    nodes = [node("node1", **CHINA), node("node2", **INDIA), node("node3", **AZ1)]
    assert run_score(plugin(weight), incoming, nodes, pods) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param([-5, 0, 5], [0, 50, 100], id="negative-raw-scores"),
        pytest.param([1, 2, 4], [0, 33, 100], id="truncated-like-int64-of-float"),
        pytest.param([7, 7], [0, 0], id="all-equal-all-zero"),
        pytest.param([], [], id="empty"),
    ],
)
def test_normalize(raw: list[int], expected: list[int]) -> None:
    """Upstream's min-max normalization over the scored nodes."""
    got = plugin().normalize(np.asarray(raw, dtype=np.int64))
    assert got.tolist() == expected


# --- berth: row-locality, the pod index, namespaces, args, compilation ----------------------


def test_row_local_only_when_the_plugin_cannot_affect_the_pod() -> None:
    """row_local_for is True exactly when PreFilter and PreScore would both skip."""
    p = plugin()
    plain = compile_pod(pod("plain", {"app": "web"}).obj_())
    assert not p.row_local_for(plain)  # no cycle seen yet: take the one-pod path first
    table = build_table([node("n1", zone="a"), node("n2", zone="b")])
    assert p.pre_filter(CycleState(), plain, table) is not None  # SKIP, and the table is known
    assert p.row_local_for(plain)
    with_terms = compile_pod(pod("t").pod_affinity_term(term("zone", ("app", "Exists"))).obj_())
    assert not p.row_local_for(with_terms)
    # An existing pod whose required anti-affinity selects app=web makes web pods non-local.
    repel = compile_pod(
        pod("repel", on="n1")
        .pod_affinity_term(term("zone", ("app", "In", "web")), anti=True)
        .obj_()
    )
    table.add_pod(table.row_of["n1"], repel)
    assert not p.row_local_for(plain)
    assert p.row_local_for(compile_pod(pod("db", {"app": "db"}).obj_()))
    table.remove_pod(table.row_of["n1"], repel)
    assert p.row_local_for(plain)


@pytest.mark.parametrize(
    ("ignore", "hard", "kind", "local"),
    [
        pytest.param(False, 1, "preferred", False, id="existing-preferred-scores"),
        pytest.param(True, 1, "preferred", True, id="existing-preferred-ignored"),
        pytest.param(False, 1, "required", False, id="existing-required-hard-weight"),
        pytest.param(False, 0, "required", True, id="existing-required-zero-weight"),
        pytest.param(True, 1, "anti", False, id="existing-required-anti-always-counts"),
    ],
)
def test_row_local_follows_scoring_args(ignore: bool, hard: int, kind: str, local: bool) -> None:
    """Existing pods' scoring terms matter unless ignorePreferredTermsOfExistingPods (or a
    zero hardPodAffinityWeight for required affinity); required anti-affinity always does."""
    p = plugin(hard, ignore)
    selects_web = term("zone", ("app", "In", "web"))
    existing = pod("existing", on="n1")
    if kind == "preferred":
        existing.pod_affinity_term(selects_web, weight=3)
    elif kind == "required":
        existing.pod_affinity_term(selects_web)
    else:
        existing.pod_affinity_term(selects_web, anti=True)
    table = build_table([node("n1", zone="a"), node("n2", zone="b")], [existing.obj_()])
    web = compile_pod(pod("web", {"app": "web"}).obj_())
    state = CycleState()
    p.pre_filter(state, web, table)
    assert p.row_local_for(web) is local
    skipped = p.pre_score(state, web, table, rows(table)) is not None
    if local:
        assert skipped  # a row-local pod is one the plugin leaves alone


def test_index_follows_table_changes() -> None:
    """Pods added, removed or moved after a cycle are seen by the next one (the index
    refreshes the rows whose generation moved), and a node's removal drops its pods."""
    p = plugin()
    table = build_table([node("n1", zone="a"), node("n2", zone="b"), node("n3", zone="c")])
    incoming = compile_pod(
        pod().pod_affinity_term(term("zone", ("app", "In", "x")), anti=True).obj_()
    )

    def feasible() -> list[str]:
        state = CycleState()
        p.pre_filter(state, incoming, table)
        result = p.filter(state, incoming, table, rows(table))
        return [n for i, n in enumerate(table.row_of) if result.mask[i]]

    assert feasible() == ["n1", "n2", "n3"]
    x = compile_pod(pod("x", {"app": "x"}, on="n1").obj_())
    table.add_pod(table.row_of["n1"], x)
    assert feasible() == ["n2", "n3"]
    table.remove_pod(table.row_of["n1"], x)
    table.add_pod(table.row_of["n2"], x)
    assert feasible() == ["n1", "n3"]
    table.remove_node("n2")
    assert feasible() == ["n1", "n3"]


def test_index_starts_over_for_another_table() -> None:
    """A plugin used against a new table (tests, a rebuilt cache) does not keep old pods."""
    p = plugin()
    anti = pod().pod_affinity_term(term("zone", ("app", "In", "x")), anti=True).obj_()
    first = build_table([node("n1", zone="a")], [pod("x", {"app": "x"}, on="n1").obj_()])
    assert run_filter(p, anti, [node("n1", zone="a")], []) == {"n1": []}
    state = CycleState()
    p.pre_filter(state, compile_pod(anti), first)
    assert not p.filter(state, compile_pod(anti), first, rows(first)).mask.any()


def test_namespace_labels_set_and_delete() -> None:
    """The handle's holder, as the event handlers feed it; selectors see changes at once."""
    handle = in_memory()
    holder = handle.namespaces
    p = inter_pod_affinity.new({}, handle)
    incoming = (
        pod(labels=S1)
        .pod_affinity_term(term("region", SECURITYSCAN, ns_selector=team_selector("team1")))
        .obj_()
    )
    pods = [pod("existing", SERVICE, ns="blue", on="node1").obj_()]
    assert run_filter(p, incoming, [NODE1], pods) == {"node1": [AFFINITY]}
    assert holder.set("blue", TEAM1)
    assert holder.version == 1 and holder.get("blue") == TEAM1
    assert run_filter(p, incoming, [NODE1], pods) == {"node1": []}
    assert not holder.set("blue", TEAM1)  # unchanged: the version stays
    assert holder.set("blue", TEAM2)
    assert run_filter(p, incoming, [NODE1], pods) == {"node1": [AFFINITY]}
    holder.delete("blue")
    holder.delete("blue")  # already gone: no change
    assert holder.labels == {} and holder.version == 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param({}, InterPodAffinityArgs(1, False), id="defaults"),
        pytest.param(
            {"hardPodAffinityWeight": 0, "ignorePreferredTermsOfExistingPods": True},
            InterPodAffinityArgs(0, True),
            id="explicit",
        ),
        pytest.param(
            {"hardPodAffinityWeight": 101},
            "args.hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]",
            id="weight-too-high",
        ),
        pytest.param(
            {"hardPodAffinityWeight": -1},
            "args.hardPodAffinityWeight: Invalid value: -1: not in valid range [0, 100]",
            id="weight-negative",
        ),
        pytest.param(
            {"hardPodAffinityWeight": "1"},
            'args.hardPodAffinityWeight: must be an integer (got "1")',
            id="weight-not-integer",
        ),
        pytest.param(
            {"ignorePreferredTermsOfExistingPods": "yes"},
            'args.ignorePreferredTermsOfExistingPods: must be true or false (got "yes")',
            id="ignore-not-boolean",
        ),
    ],
)
def test_args(args: JSON, expected: InterPodAffinityArgs | str) -> None:
    """InterPodAffinityArgs with upstream's defaults and range check."""
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as caught:
            inter_pod_affinity.new(args, in_memory())
        assert caught.value.errors == [expected]
    else:
        assert inter_pod_affinity.new(args, in_memory()).args == expected


def test_compiled_terms() -> None:
    """Terms compile as upstream's AffinityTerm: own namespace by default, a missing
    labelSelector matches nothing, matchLabelKeys/mismatchLabelKeys merged from the labels."""
    raw = (
        pod(labels={"app": "web", "rev": "7"}, ns="shop")
        .pod_affinity_term(
            term("zone", ("app", "Exists")) | {"matchLabelKeys": ["rev", "absent"]}, weight=4
        )
        .pod_affinity_term({"topologyKey": "zone", "mismatchLabelKeys": ["app"]}, anti=True)
        .pod_affinity_term(term("zone", namespaces=["a"], ns_selector={}))
        .obj_()
    )
    compiled = compile_pod(raw).pod_affinity
    assert compiled is not None
    preferred = compiled.preferred[0]
    assert preferred.weight == 4 and preferred.term.namespaces == frozenset({"shop"})
    assert preferred.term.selector.matches({"app": "x", "rev": "7"})
    assert not preferred.term.selector.matches({"app": "x", "rev": "8"})
    assert not compiled.required_anti[0].selector.matches({})  # nil labelSelector
    required = compiled.required[0]
    assert required.namespaces == frozenset({"a"})
    assert required.namespace_selector.matches({"any": "thing"})  # {} selects every namespace
    assert compile_pod(pod().obj_()).pod_affinity is None
    assert compile_pod(raw).class_key != compile_pod(pod(ns="shop").obj_()).class_key


def test_registered_with_upstream_default_weight() -> None:
    """InterPodAffinity is a default plugin with Score weight 2, after PodTopologySpread."""
    import plugins

    assert "InterPodAffinity" in plugins.registry()
    names = [name for name, _ in plugins.DEFAULTS]
    assert dict(plugins.DEFAULTS)["InterPodAffinity"] == 2
    assert names.index("InterPodAffinity") > names.index("NodeResourcesFit")
    assert names.index("InterPodAffinity") < names.index("NodeResourcesBalancedAllocation")


# --- berth: equivalence batching stays exact with affinity pods around ----------------------


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


async def _place(
    pods: list[JSON], nodes: list[JSON], *, batching: bool
) -> tuple[dict[str, str], int]:
    import random

    import plugins
    from scheduler import config as cfg
    from scheduler.app import build_profiles
    from scheduler.cache import Cache
    from scheduler.cycle import Scheduler
    from scheduler.queue import SchedulingQueue

    config = cfg.parse(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "berth"}],
        },
        plugins.registry().keys(),
    )
    profile = build_profiles(config, in_memory())["berth"]
    cache = Cache()
    for raw in nodes:
        cache.upsert_node(compile_node(raw))
    assert profile.queue_sort is not None
    queue = SchedulingQueue(profile.queue_sort.sort_key, clock=lambda: 0.0)
    scheduler = Scheduler(
        cache,
        queue,
        {"berth": profile},
        _Quiet(),
        _Quiet(),
        batching=batching,
        rng=random.Random(7),
    )
    placed = {}
    for raw in pods:
        compiled = compile_pod(raw)
        queue.add(compiled)
        entry = queue.pop_nowait()
        assert entry is not None
        placed[compiled.name] = scheduler.schedule_one(entry).node
    await scheduler.drain()
    return placed, scheduler.classes.hits


async def test_batched_placement_equals_one_by_one_with_affinity() -> None:
    """Plain pods batch even while pods with (anti-)affinity come and go; pods an existing
    anti-affinity term selects, and pods with terms, go one by one; the placements are those
    of scheduling every pod one at a time."""
    nodes = [
        make_node(f"n{i:02d}").zone(f"z{i % 3}").capacity(cpu="8", memory="32Gi").obj_()
        for i in range(30)
    ]
    pods = []
    for i in range(240):
        kind = i % 6
        b = make_pod(f"p{i:03d}").scheduler("berth").req(cpu="250m", memory="256Mi")
        if kind == 1:  # one per host, and keeps "cache" pods off its host
            b.label("app", "db").pod_affinity_term(
                term("kubernetes.io/hostname", ("app", "In", "db", "cache")), anti=True
            )
        elif kind == 2:  # prefers the zones of db pods
            b.label("app", "cache").pod_affinity_term(
                term("topology.kubernetes.io/zone", ("app", "In", "db")), weight=10
            )
        elif kind == 3:  # a web pod: selected by nothing but plain pods' labels
            b.label("app", "web")
        pods.append(b.obj_())
    batched, hits = await _place(pods, nodes, batching=True)
    single, _ = await _place(pods, nodes, batching=False)
    assert batched == single
    assert hits > 0
    db = [batched[f"p{i:03d}"] for i in range(240) if i % 6 == 1 and batched[f"p{i:03d}"]]
    cache = {batched[f"p{i:03d}"] for i in range(240) if i % 6 == 2}
    assert len(db) == len(set(db)) > 0  # required anti-affinity: at most one db per node
    assert not set(db) & cache  # ... and no cache pod next to a db pod, in either order


# --- events ----------------------------------------------------------------------------------

QUEUE, NO = QueueingHint.QUEUE, QueueingHint.SKIP


def test_events_to_register() -> None:
    """Upstream's EventsToRegister (AssignedPod/Add|UpdatePodLabel|Delete,
    TargetPod/UpdatePodLabel, Node/Add|UpdateNodeLabel), plus berth's Namespace/Update; all
    with hints."""
    assert registered(plugin()) == [
        ("AssignedPodAdd", True),
        ("AssignedPodDelete", True),
        ("AssignedPodUpdatePodLabel", True),
        ("TargetPodUpdatePodLabel", True),
        ("NodeAdd", True),
        ("NodeUpdateNodeLabel", True),
        ("NamespaceUpdate", True),
    ]


def affine(b: PodBuilder) -> PodBuilder:
    """Upstream's PodAffinityIn("service", "region", ["securityscan", "value2"])."""
    return b.pod_affinity("service", "In", "region", "securityscan", "value2")


def repelling(b: PodBuilder) -> PodBuilder:
    """Upstream's PodAntiAffinityIn("service", "region", ["securityscan", "value2"])."""
    return b.pod_affinity("service", "In", "region", "securityscan", "value2", anti=True)


def two_anti_terms(b: PodBuilder) -> PodBuilder:
    """Anti-affinity to service=securityscan and to app=web, both in region."""
    b.pod_affinity("service", "In", "region", "securityscan", anti=True)
    return b.pod_affinity("app", "In", "region", "web", anti=True)


def other(*labels: tuple[str, str], node: str = "fake-node") -> PodBuilder:
    """Upstream's MakePod().UID("other").Node(node).Label(...)..."""
    builder = make_pod("other").uid("other")
    if node:
        builder.node(node)
    for key, value in labels:
        builder.label(key, value)
    return builder


def pod_event(old: object, new: object) -> str:
    """The AssignedPod event an (old, new) pair is: Add, Delete or a label update."""
    if old is None:
        return "AssignedPodAdd"
    return "AssignedPodDelete" if new is None else "AssignedPodUpdatePodLabel"


@pytest.mark.parametrize(
    ("incoming", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterAssignedPodChange.
        pytest.param(
            affine(make_pod("p")),
            None,
            other(("service", "securityscan")),
            QUEUE,
            id="add a pod which matches the pod affinity",
        ),
        pytest.param(
            affine(make_pod("p")),
            None,
            other(("service", "securityscan"), node=""),
            NO,
            id="add an un-scheduled pod",
        ),
        pytest.param(
            affine(make_pod("p")),
            None,
            other(("aaa", "a")),
            NO,
            id="add a pod which doesn't match the pod affinity",
        ),
        pytest.param(
            affine(make_pod("p")),
            other(("aaa", "a")),
            other(("service", "securityscan")),
            QUEUE,
            id="update a pod from non-match to match pod affinity",
        ),
        pytest.param(
            affine(make_pod("p")),
            other(("service", "value2")),
            other(("service", "securityscan")),
            NO,
            id="the updating pod matches target pod's affinity both before and after label changes",
        ),
        pytest.param(
            affine(make_pod("p")),
            other(("aaa", "a"), node=""),
            other(("service", "securityscan"), node=""),
            NO,
            id="update an un-scheduled pod",
        ),
        pytest.param(
            affine(make_pod("p")),
            other(("service", "securityscan")),
            other(("aaa", "a")),
            NO,
            id="update a pod from match to non-match the pod affinity",
        ),
        pytest.param(
            make_pod("p")
            .pod_affinity("aaa", "Exists", "hostname")
            .pod_affinity("bbb", "Exists", "hostname"),
            other(("aaa", "a")),
            other(("service", "securityscan")),
            NO,
            id="update a pod from match to non-match pod's affinity - multiple terms case",
        ),
        pytest.param(
            make_pod("p")
            .pod_affinity("aaa", "Exists", "hostname")
            .pod_affinity("bbb", "Exists", "hostname"),
            other(("aaa", "a")),
            other(("aaa", ""), ("bbb", "")),
            QUEUE,
            id="update a pod from non-match to match pod's affinity - multiple terms case",
        ),
        pytest.param(
            repelling(make_pod("p")),
            other(("service", "securityscan")),
            other(("service", "aaaa")),
            QUEUE,
            id="modify pod label to change it from satisfying pod anti-affinity to not "
            "satisfying anti-affinity",
        ),
        pytest.param(
            repelling(make_pod("p")),
            other(("service", "bbb")),
            other(("service", "securityscan")),
            NO,
            id="modify pod label to change it from not satisfying pod anti-affinity to "
            "satisfying anti-affinity",
        ),
        pytest.param(
            repelling(make_pod("p")),
            other(("aaa", "a")),
            None,
            NO,
            id="delete a pod which doesn't match pod's anti-affinity",
        ),
        pytest.param(
            repelling(make_pod("p")),
            other(("service", "securityscan")),
            None,
            QUEUE,
            id="delete a pod which matches pod's anti-affinity",
        ),
        pytest.param(
            make_pod("p").label("service", "securityscan"),
            repelling(other()),
            None,
            QUEUE,
            id="delete a pod with anti-affinity that matches pending pod",
        ),
        pytest.param(
            make_pod("p").label("service", "foo"),
            repelling(other()),
            None,
            NO,
            id="delete a pod with anti-affinity that doesn't match pending pod",
        ),
        pytest.param(
            repelling(make_pod("p")).label("service", "foo"),
            repelling(other()).label("service", "foo"),
            None,
            NO,
            id="delete a pod which doesn't match pending pod's anti-affinity and has "
            "anti-affinity that doesn't match pending pod",
        ),
        pytest.param(
            repelling(make_pod("p")),
            other(("aaa", "a"), node="").nominated("fake-node"),
            None,
            NO,
            id="delete a nominated pod which doesn't match pod's anti-affinity",
        ),
        pytest.param(
            repelling(make_pod("p")),
            other(("service", "securityscan"), node="").nominated("fake-node"),
            None,
            QUEUE,
            id="delete a nominated pod which matches pod's anti-affinity",
        ),
        pytest.param(
            two_anti_terms(make_pod("p")),
            other(("service", "securityscan"), ("app", "bar")),
            other(("service", "foo"), ("app", "bar")),
            QUEUE,
            id="modify pod label to change it from matching only one of target pod's "
            "anti-affinity terms to matching none",
        ),
        pytest.param(
            two_anti_terms(make_pod("p")),
            other(("service", "securityscan"), ("app", "bar")),
            other(("service", "foo"), ("app", "web")),
            NO,
            id="modify pod label but it still matches one of target pod's anti-affinity terms",
        ),
        pytest.param(
            two_anti_terms(make_pod("p")),
            other(("service", "securityscan")),
            None,
            QUEUE,
            id="delete a pod which matches only one of target pod's anti-affinity terms",
        ),
        pytest.param(
            make_pod("p").label("service", "securityscan"),
            two_anti_terms(other()),
            None,
            QUEUE,
            id="delete a pod with anti-affinity that matches pending pod on only one term",
        ),
        # berth: terms match with the namespace labels the handle knows (upstream's hint has
        # none, so its namespaceSelector terms with requirements never match there).
        pytest.param(
            make_pod("p").pod_affinity_term(
                term("region", SECURITYSCAN, ns_selector=team_selector("team1"))
            ),
            None,
            other(("service", "securityscan")).namespace("subteam2.team1"),
            QUEUE,
            id="add a pod in a namespace the affinity term's namespaceSelector selects",
        ),
        pytest.param(
            make_pod("p").pod_affinity_term(
                term("region", SECURITYSCAN, ns_selector=team_selector("team1"))
            ),
            None,
            other(("service", "securityscan")).namespace("subteam1.team2"),
            NO,
            id="add a pod in a namespace the affinity term's namespaceSelector does not select",
        ),
    ],
)
def test_is_schedulable_after_assigned_pod_change(
    incoming: PodBuilder,
    old: PodBuilder | None,
    new: PodBuilder | None,
    expected: QueueingHint,
) -> None:
    """A bound pod added, relabelled or deleted moves the pod when it may now satisfy the
    pod's affinity, or no longer repel it (by its labels or its own anti-affinity)."""
    assert run_hint(plugin(), pod_event(old, new), incoming, old, new) is expected


def test_is_schedulable_after_target_pod_update_label() -> None:
    """Upstream's Test_isSchedulableAfterTargetPodUpdateLabel: the pod's own labels changing
    is always worth a retry."""
    p = make_pod("p").uid("p").label("foo", "baz")
    assert run_hint(plugin(), "TargetPodUpdatePodLabel", p, p, p) is QUEUE


def exactly(**labels: str) -> NodeBuilder:
    """Upstream's MakeNode().Name("node-a").Label(...): only these labels."""
    builder = make_node("node-a")
    builder.obj["metadata"]["labels"] = dict(labels)
    return builder


def zone_anti(b: PodBuilder) -> PodBuilder:
    """Upstream's PodAntiAffinity("zone", {matchLabels: {another: label}})."""
    selector = {"matchLabels": {"another": "label"}}
    return b.pod_affinity_term({"labelSelector": selector, "topologyKey": "zone"}, anti=True)


def zone_affine(key: str = "zone") -> PodBuilder:
    return make_pod("p").pod_affinity("service", "In", key, "securityscan", "value2")


@pytest.mark.parametrize(
    ("incoming", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterNodeChange: affinity.
        pytest.param(
            zone_affine(),
            None,
            exactly(zone="zone1"),
            QUEUE,
            id="add a new node with matched pod affinity topologyKey",
        ),
        pytest.param(
            zone_affine("region"),
            None,
            exactly(zone="zone1"),
            NO,
            id="add a new node without matched topologyKey",
        ),
        pytest.param(
            zone_affine(),
            exactly(aaa="a"),
            exactly(aaa="b"),
            NO,
            id="update node label but not topologyKey",
        ),
        pytest.param(
            zone_affine(),
            exactly(zone="zone1"),
            exactly(zone="zone1", **{"unrelated-label": "unrelated"}),
            NO,
            id="update node label that isn't related to the pod affinity",
        ),
        pytest.param(
            zone_affine(),
            exactly(zone="zone1"),
            exactly(zone="zone2"),
            QUEUE,
            id="update node with different affinity topologyKey value",
        ),
        pytest.param(
            zone_affine(),
            exactly(aaa="a"),
            exactly(zone="zone1"),
            QUEUE,
            id="update node to have the affinity topology label",
        ),
        # anti-affinity
        pytest.param(
            zone_anti(make_pod("p")),
            None,
            exactly(zone="zone1"),
            QUEUE,
            id="add a new node with matched pod anti-affinity topologyKey",
        ),
        pytest.param(
            zone_anti(make_pod("p")),
            None,
            exactly(),
            QUEUE,
            id="add a new node without matched pod anti-affinity topologyKey",
        ),
        pytest.param(
            zone_anti(make_pod("p")),
            exactly(zone="zone1"),
            exactly(zone="zone1", **{"unrelated-label": "unrelated"}),
            NO,
            id="update node label that isn't related to the pod anti-affinity",
        ),
        pytest.param(
            zone_anti(make_pod("p")),
            exactly(zone="zone1"),
            exactly(zone="zone2"),
            QUEUE,
            id="update node with different anti-affinity topologyKey value",
        ),
        pytest.param(
            zone_anti(make_pod("p")),
            exactly(aaa="a"),
            exactly(zone="zone1"),
            NO,
            id="update node to have the anti-affinity topology label",
        ),
        pytest.param(
            zone_anti(make_pod("p")),
            exactly(zone="zone1"),
            exactly(aaa="a"),
            QUEUE,
            id="update node label not to have anti-affinity topology label",
        ),
    ],
)
def test_is_schedulable_after_node_change(
    incoming: PodBuilder, old: NodeBuilder | None, new: NodeBuilder, expected: QueueingHint
) -> None:
    """A node added or relabelled moves the pod when the topology its terms look at changed
    in a way that can help."""
    assert run_hint(plugin(), "NodeUpdateNodeLabel", incoming, old, new) is expected


def by_team(team: str, *, anti: bool = False) -> PodBuilder:
    """A pod with one required term selecting service=securityscan pods in namespaces
    labelled team=<team>."""
    selected = term("region", SECURITYSCAN, ns_selector=team_selector(team))
    return make_pod("p").pod_affinity_term(selected, anti=anti)


@pytest.mark.parametrize(
    ("incoming", "old", "new", "expected"),
    [
        # berth's own: upstream has no Namespace event.
        pytest.param(
            by_team("team1"),
            ("blue", {}),
            ("blue", TEAM1),
            QUEUE,
            id="namespace relabelled into the affinity term's namespaceSelector",
        ),
        pytest.param(
            by_team("team1", anti=True),
            ("blue", TEAM1),
            ("blue", TEAM2),
            QUEUE,
            id="namespace relabelled out of the anti-affinity term's namespaceSelector",
        ),
        pytest.param(
            by_team("team1"),
            ("blue", TEAM2),
            ("blue", {"team": "team2", "other": "x"}),
            NO,
            id="namespace relabelled but the namespaceSelector judges it the same",
        ),
        pytest.param(
            make_pod("p").pod_affinity_term(term("region", SECURITYSCAN, ns_selector={})),
            ("blue", {}),
            ("blue", TEAM1),
            NO,
            id="empty namespaceSelector selects every namespace whatever its labels",
        ),
        pytest.param(
            affine(make_pod("p")),
            ("blue", {}),
            ("blue", TEAM1),
            NO,
            id="pod without a namespaceSelector term",
        ),
        pytest.param(
            make_pod("p").label("service", "securityscan"),
            ("default", {}),
            ("default", TEAM1),
            NO,
            id="pod without inter-pod affinity",
        ),
        pytest.param(
            make_pod("p").pod_affinity_term(
                term("region", SECURITYSCAN, ns_selector=team_selector("team1")), weight=10
            ),
            ("blue", {}),
            ("blue", TEAM1),
            NO,
            id="preferred terms never reject a pod",
        ),
    ],
)
def test_is_schedulable_after_namespace_change(
    incoming: PodBuilder,
    old: tuple[str, dict[str, str]],
    new: tuple[str, dict[str, str]],
    expected: QueueingHint,
) -> None:
    """A namespace relabelled moves the pod only when one of its required terms has a
    namespaceSelector that now judges that namespace differently."""
    assert run_hint(plugin(), "NamespaceUpdate", incoming, old, new) is expected
