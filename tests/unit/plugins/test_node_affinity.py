"""NodeAffinity: nodeSelector / required affinity / addedAffinity as a Filter with upstream's
reasons, preferred affinity as a Score with node_affinity_test.go's numbers."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import node_affinity
from plugins.node_affinity import NodeAffinity
from scheduler.framework import SKIP, Code, CycleState, QueueingHint, Status
from scheduler.handle import in_memory
from scheduler.model import compile_pod
from tests.builders import NodeBuilder, PodBuilder, make_node, make_pod
from tests.unit.tables import (
    build_table,
    filter_reasons,
    registered,
    run_hint,
    scores,
    unresolvable,
)

JSON = dict[str, Any]
POD_REASON = "node(s) didn't match Pod's node affinity/selector"
ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
NARROWED = "node(s) didn't satisfy plugin(s) [NodeAffinity]"
CYCLE = "berth"  # the schedulerName of tests.unit.test_cycle's profile


def plugin(args: JSON | None = None) -> NodeAffinity:
    return node_affinity.new(args or {}, in_memory())


def expr(key: str, op: str, *values: str) -> JSON:
    out: JSON = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def required(*terms: JSON) -> JSON:
    """Required node affinity with these terms; a bare expression is a one-expression term."""
    wrapped = [{"matchExpressions": [t]} if "operator" in t else t for t in terms]
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": wrapped}}


def node(name: str, **labels: str) -> JSON:
    builder = make_node(name)
    builder.obj["metadata"]["labels"] = dict(labels)  # exactly these labels, as upstream's tests
    return builder.obj_()


@pytest.mark.parametrize(
    ("incoming", "labels", "args", "expected"),
    [
        # Upstream's TestNodeAffinity (Filter) cases, in our table form.
        pytest.param(make_pod("p").obj_(), {}, None, [], id="no-selector-matches"),
        pytest.param(
            make_pod("p").node_selector(foo="bar").obj_(),
            {},
            None,
            [POD_REASON],
            id="missing-labels",
        ),
        pytest.param(
            make_pod("p").node_selector(foo="bar").obj_(),
            {"foo": "bar"},
            None,
            [],
            id="same-labels",
        ),
        pytest.param(
            make_pod("p").node_selector(foo="bar").obj_(),
            {"foo": "bar", "baz": "blah"},
            None,
            [],
            id="node-labels-superset",
        ),
        pytest.param(
            make_pod("p").node_selector(foo="bar", baz="blah").obj_(),
            {"foo": "bar"},
            None,
            [POD_REASON],
            id="node-labels-subset",
        ),
        pytest.param(
            make_pod("p").node_affinity(required(expr("foo", "In", "bar", "value2"))).obj_(),
            {"foo": "bar"},
            None,
            [],
            id="matchexpressions-in",
        ),
        pytest.param(
            make_pod("p").node_affinity(required(expr("kernel-version", "Gt", "0204"))).obj_(),
            {"kernel-version": "0206"},
            None,
            [],
            id="matchexpressions-gt-with-leading-zeros",
        ),
        pytest.param(
            make_pod("p").node_affinity(required(expr("mem-type", "NotIn", "DDR", "DDR2"))).obj_(),
            {"mem-type": "DDR3"},
            None,
            [],
            id="matchexpressions-notin",
        ),
        pytest.param(
            make_pod("p").node_affinity(required(expr("GPU", "Exists"))).obj_(),
            {"GPU": "NVIDIA-GRID-K1"},
            None,
            [],
            id="matchexpressions-exists",
        ),
        pytest.param(
            make_pod("p").node_affinity(required(expr("foo", "In", "value1", "value2"))).obj_(),
            {"foo": "bar"},
            None,
            [POD_REASON],
            id="matchexpressions-no-value-matches",
        ),
        pytest.param(
            make_pod("p").node_affinity(required()).obj_(),
            {"foo": "bar"},
            None,
            [POD_REASON],
            id="empty-nodeselectorterms-match-nothing",
        ),
        pytest.param(
            make_pod("p").node_affinity(required({})).obj_(),
            {"foo": "bar"},
            None,
            [POD_REASON],
            id="empty-term-matches-nothing",
        ),
        pytest.param(
            make_pod("p").node_affinity(required({"matchExpressions": []})).obj_(),
            {"foo": "bar"},
            None,
            [POD_REASON],
            id="term-with-empty-matchexpressions-matches-nothing",
        ),
        pytest.param(
            make_pod("p").node_affinity({}).obj_(),
            {"foo": "bar"},
            None,
            [],
            id="nil-required-affinity-matches",
        ),
        pytest.param(
            make_pod("p")
            .node_affinity(
                required(
                    {
                        "matchExpressions": [
                            expr("GPU", "Exists"),
                            expr("GPU", "NotIn", "AMD", "INTER"),
                        ]
                    }
                )
            )
            .obj_(),
            {"GPU": "NVIDIA-GRID-K1"},
            None,
            [],
            id="all-expressions-of-a-term-hold",
        ),
        pytest.param(
            make_pod("p")
            .node_affinity(
                required(
                    {"matchExpressions": [expr("GPU", "Exists"), expr("GPU", "In", "AMD", "INTER")]}
                )
            )
            .obj_(),
            {"GPU": "NVIDIA-GRID-K1"},
            None,
            [POD_REASON],
            id="one-expression-of-a-term-fails",
        ),
        pytest.param(
            make_pod("p")
            .node_affinity(
                required(
                    {"matchExpressions": [expr("foo", "In", "bar", "value2")]},
                    {"matchExpressions": [expr("diffkey", "In", "wrong", "value2")]},
                )
            )
            .obj_(),
            {"foo": "bar"},
            None,
            [],
            id="terms-are-ored",
        ),
        pytest.param(
            make_pod("p")
            .node_selector(foo="bar")
            .node_affinity(required(expr("foo", "Exists")))
            .obj_(),
            {"foo": "bar"},
            None,
            [],
            id="selector-and-affinity-both-match",
        ),
        pytest.param(
            make_pod("p")
            .node_selector(foo="bar")
            .node_affinity(required(expr("foo", "Exists")))
            .obj_(),
            {"foo": "barrrrrr"},
            None,
            [POD_REASON],
            id="affinity-matches-selector-does-not",
        ),
        pytest.param(
            make_pod("p")
            .node_affinity(required({"matchFields": [expr("metadata.name", "In", "node1")]}))
            .obj_(),
            {},
            None,
            [],
            id="matchfields-name-matches",
        ),
        pytest.param(
            make_pod("p")
            .node_affinity(required({"matchFields": [expr("metadata.name", "In", "node2")]}))
            .obj_(),
            {},
            None,
            [POD_REASON],
            id="matchfields-name-does-not-match",
        ),
        pytest.param(
            make_pod("p")
            .node_affinity(
                required(
                    {
                        "matchFields": [expr("metadata.name", "In", "node1")],
                        "matchExpressions": [expr("foo", "In", "bar")],
                    }
                )
            )
            .obj_(),
            {"foo": "bar"},
            None,
            [],
            id="matchfields-and-matchexpressions-in-one-term",
        ),
        pytest.param(
            make_pod("p")
            .node_affinity(
                required(
                    {
                        "matchFields": [expr("metadata.name", "In", "node1")],
                        "matchExpressions": [expr("foo", "In", "not-bar")],
                    }
                )
            )
            .obj_(),
            {"foo": "bar"},
            None,
            [POD_REASON],
            id="matchfields-match-matchexpressions-do-not",
        ),
        # addedAffinity (scheduler-enforced).
        pytest.param(
            make_pod("p").node_affinity(required(expr("zone", "In", "foo"))).obj_(),
            {"zone": "foo"},
            {"addedAffinity": required({"matchFields": [expr("metadata.name", "In", "node1")]})},
            [],
            id="matches-added-and-pod-affinity",
        ),
        pytest.param(
            make_pod("p").node_affinity(required(expr("zone", "In", "bar"))).obj_(),
            {"zone": "foo"},
            {"addedAffinity": required({"matchFields": [expr("metadata.name", "In", "node1")]})},
            [POD_REASON],
            id="matches-added-not-pod-affinity",
        ),
        pytest.param(
            make_pod("p").obj_(),
            {"zone": "foo"},
            {"addedAffinity": required(expr("zone", "In", "bar"))},
            [ENFORCED],
            id="does-not-match-added-affinity",
        ),
        pytest.param(
            make_pod("p").node_selector(zone="elsewhere").obj_(),
            {"zone": "foo"},
            {"addedAffinity": required(expr("zone", "In", "bar"))},
            [ENFORCED],
            id="added-affinity-is-checked-first",
        ),
    ],
)
def test_filter(
    incoming: JSON, labels: dict[str, str], args: JSON | None, expected: list[str]
) -> None:
    """One node named node1 with exactly `labels`."""
    table = build_table([node("node1", **labels)])
    assert filter_reasons(plugin(args), incoming, table) == {"node1": expected}


def test_filter_is_unresolvable_and_vectorized() -> None:
    """Several nodes in one call; every rejection is UnschedulableAndUnresolvable."""
    table = build_table([node("a", zone="a"), node("b", zone="b"), node("c")])
    incoming = make_pod("p").node_affinity(required(expr("zone", "In", "b"))).obj_()
    assert filter_reasons(plugin(), incoming, table) == {
        "a": [POD_REASON],
        "b": [],
        "c": [POD_REASON],
    }
    assert unresolvable(plugin(), incoming, table) == {"a": True, "c": True}


@pytest.mark.parametrize(
    ("incoming", "args", "skipped"),
    [
        pytest.param(make_pod("p").obj_(), None, True, id="nothing-to-do"),
        pytest.param(make_pod("p").node_selector(a="b").obj_(), None, False, id="selector"),
        pytest.param(make_pod("p").node_affinity(required()).obj_(), None, False, id="required"),
        pytest.param(
            make_pod("p").obj_(),
            {"addedAffinity": required(expr("a", "Exists"))},
            False,
            id="added-affinity",
        ),
    ],
)
def test_pre_filter_skip(incoming: JSON, args: JSON | None, skipped: bool) -> None:
    """PreFilter returns Skip only when there is nothing to check."""
    status = plugin(args).pre_filter(CycleState(), compile_pod(incoming), build_table([]))
    assert (status == SKIP) is skipped


def named(*names: str) -> JSON:
    """A term of `metadata.name In [name]` field requirements, one per name (the API allows
    one value per name requirement), which are ANDed."""
    return {"matchFields": [expr("metadata.name", "In", n) for n in names]}


FOO_BAR = {"matchExpressions": [expr("foo", "In", "bar")]}
FOO_NOT_BAR = {"matchExpressions": [expr("foo", "In", "not-match-to-bar")]}


@pytest.mark.parametrize(
    ("affinity", "status", "nodes"),
    [
        # Upstream's TestNodeAffinity cases that check PreFilter (status, PreFilterResult).
        pytest.param(None, SKIP, None, id="Pod with no Affinity will schedule onto a node"),
        pytest.param(
            {},
            SKIP,
            None,
            id="Pod with Affinity but nil NodeSelector will schedule onto a node",
        ),
        pytest.param(
            required(named("node1")),
            None,
            {"node1"},
            id="Pod with matchFields using In operator that matches the existing node",
        ),
        pytest.param(
            required(named("node1", "node2"), FOO_BAR),
            None,
            None,
            id="Pod with two terms: matchFields does not match, but matchExpressions matches",
        ),
        pytest.param(
            required(named("node1") | FOO_BAR),
            None,
            {"node1"},
            id="Pod with one term: matchFields does not match, but matchExpressions matches",
        ),
        pytest.param(
            required(named("node1"), FOO_NOT_BAR),
            None,
            None,
            id="Pod with two terms: both matchFields and matchExpressions do not match",
        ),
        pytest.param(
            required(named("node1"), named("node2")),
            None,
            {"node1", "node2"},
            id="Pod with two terms of node.Name affinity",
        ),
        pytest.param(
            required(named("node1", "node2")),
            Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (node_affinity.CONFLICT,)),
            None,
            id="Pod with two conflicting mach field requirements",
        ),
        # berth: what else the PreFilter result follows from.
        pytest.param(
            required(named("node1", "node1")),
            None,
            {"node1"},
            id="berth: the same name twice in a term is no conflict",
        ),
        pytest.param(
            required({"matchFields": [expr("metadata.name", "NotIn", "node1")]}),
            None,
            None,
            id="berth: only In narrows the nodes",
        ),
        pytest.param(
            required(named("node1", "node2"), named("node3")),
            None,
            {"node3"},
            id="berth: a conflicting term among others leaves the others' nodes",
        ),
        pytest.param(
            required(), None, None, id="berth: no terms narrow nothing (the Filter rejects all)"
        ),
    ],
)
def test_pre_filter(affinity: JSON | None, status: Status | None, nodes: set[str] | None) -> None:
    """The PreFilter status, and the nodes left to filter (None: all of them)."""
    builder = make_pod("p")
    if affinity is not None:
        builder.node_affinity(affinity)
    state = CycleState()
    assert plugin().pre_filter(state, compile_pod(builder.obj_()), build_table([])) == status
    assert state.node_names == (None if nodes is None else frozenset(nodes))


def test_added_affinity_does_not_narrow() -> None:
    """Only the pod's own terms narrow the nodes, as upstream: addedAffinity is left to Filter."""
    state = CycleState()
    args = {"addedAffinity": required(named("node1"))}
    assert (
        plugin(args).pre_filter(state, compile_pod(make_pod("p").obj_()), build_table([])) is None
    )
    assert state.node_names is None


def pinned(name: str, *nodes: str) -> JSON:
    """A pod of the cycle's profile pinned by name, as a DaemonSet pins its pods."""
    return make_pod(name).scheduler(CYCLE).node_affinity(required(named(*nodes))).obj_()


NOT_HELPFUL = "Preemption is not helpful for scheduling"


async def test_cycle_conflicting_terms_fail_at_pre_filter() -> None:
    """Upstream's message is the PreFilter status, then "not found": DynamicResources'
    PostFilter finds no state (its PreFilter never ran) and stops PostFilter before
    preemption (plugins/dynamic_resources.py)."""
    from tests.unit.test_cycle import World

    world = World([make_node(n).obj_() for n in ("a", "b", "c")])
    attempt = world.schedule(pinned("p", "a", "b"))
    assert attempt.status is not None
    assert attempt.status.message == f"0/3 nodes are available: {node_affinity.CONFLICT}. not found"
    assert attempt.diagnosis is not None
    assert attempt.diagnosis.pre_filter == Status(
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (node_affinity.CONFLICT,), "NodeAffinity"
    )
    await world.scheduler.drain()


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_cycle_missing_node_is_left_out_by_pre_filter(batching: bool) -> None:
    """A pod pinned to a node that does not exist: every node fails as not satisfying
    NodeAffinity's PreFilter result (upstream's absent-nodes status), no filter runs."""
    from tests.unit.test_cycle import World

    world = World([make_node(n).obj_() for n in ("a", "b", "c")], batching=batching)
    attempt = world.schedule(pinned("p", "gone"))
    assert attempt.status is not None
    assert attempt.status.message == (
        f"0/3 nodes are available: 3 {NARROWED}. "
        f"preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}."
    )
    assert attempt.diagnosis is not None
    assert attempt.diagnosis.by_plugin == {"NodeAffinity": {NARROWED: 3}}
    await world.scheduler.drain()


async def test_cycle_named_node_that_fails_a_filter() -> None:
    """The named node is filtered and reports its own reason; the others count as left out
    and unresolvable, so preemption only looks at the named node."""
    from tests.unit.test_cycle import World

    world = World([make_node(n).capacity(cpu="1").obj_() for n in ("a", "b", "c")])
    raw = pinned("p", "b")
    raw["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
    world.bound(make_pod("hog").req(cpu="800m").node("b").priority(10).obj_())
    attempt = world.schedule(raw)
    assert attempt.status is not None
    assert attempt.status.message == (
        f"0/3 nodes are available: 1 Insufficient cpu, 2 {NARROWED}. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        f"2 {NOT_HELPFUL}."
    )
    await world.scheduler.drain()


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_cycle_pinned_pods_land_on_their_nodes(batching: bool) -> None:
    """Pods pinned by name go to their node; a term naming two nodes picks one of them."""
    from tests.unit.test_cycle import World

    world = World([make_node(f"n{i}").obj_() for i in range(6)], batching=batching)
    for i in range(6):
        assert world.schedule(pinned(f"ds-{i}", f"n{i}")).node == f"n{i}"
    raw = make_pod("either").scheduler(CYCLE).node_affinity(required(named("n1"), named("n4")))
    assert world.schedule(raw.obj_()).node in {"n1", "n4"}
    await world.scheduler.drain()


def preferred(*terms: tuple[int, list[JSON]]) -> JSON:
    return {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": w, "preference": {"matchExpressions": exprs}} for w, exprs in terms
        ]
    }


LABEL1 = {"foo": "bar"}
LABEL2 = {"key": "value"}
LABEL3 = {"az": "az1"}
LABEL4 = {"abc": "az11", "def": "az22"}
LABEL5 = {"foo": "bar", "key": "value", "az": "az1"}
AFFINITY1 = preferred((2, [expr("foo", "In", "bar")]))
AFFINITY2 = preferred(
    (2, [expr("foo", "In", "bar")]),
    (4, [expr("key", "In", "value")]),
    (5, [expr("foo", "In", "bar"), expr("key", "In", "value"), expr("az", "In", "az1")]),
)


@pytest.mark.parametrize(
    ("affinity", "nodes", "args", "expected"),
    [
        pytest.param(
            None,
            [("node1", LABEL1), ("node2", LABEL2), ("node3", LABEL3)],
            None,
            None,
            id="skip-when-no-preferred-affinity",
        ),
        pytest.param(
            AFFINITY1,
            [("node1", LABEL4), ("node2", LABEL2), ("node3", LABEL3)],
            None,
            {"node1": 0, "node2": 0, "node3": 0},
            id="no-node-matches",
        ),
        pytest.param(
            AFFINITY1,
            [("node1", LABEL1), ("node2", LABEL2), ("node3", LABEL3)],
            None,
            {"node1": 100, "node2": 0, "node3": 0},
            id="only-node1-matches",
        ),
        pytest.param(
            AFFINITY2,
            [("node1", LABEL1), ("node5", LABEL5), ("node2", LABEL2)],
            None,
            {"node1": 18, "node5": 100, "node2": 36},
            id="all-match-with-different-priorities",
        ),
        pytest.param(
            None,
            [("node1", LABEL1), ("node2", LABEL2)],
            {"addedAffinity": AFFINITY1},
            {"node1": 100, "node2": 0},
            id="added-affinity",
        ),
        pytest.param(
            AFFINITY1,
            [("node1", LABEL1), ("node2", LABEL2), ("node3", LABEL5)],
            {"addedAffinity": preferred((3, [expr("key", "In", "value")]))},
            {"node1": 40, "node2": 60, "node3": 100},
            id="added-affinity-and-pod-affinity",
        ),
        pytest.param(
            preferred((0, [expr("foo", "In", "bar")]), (1, [expr("key", "In", "value")])),
            [("node1", LABEL1), ("node2", LABEL2)],
            None,
            {"node1": 0, "node2": 100},
            id="zero-weight-term-ignored",
        ),
    ],
)
def test_score(
    affinity: JSON | None,
    nodes: list[tuple[str, dict[str, str]]],
    args: JSON | None,
    expected: dict[str, int] | None,
) -> None:
    """Sum of matching preferred weights, normalized to 100 (TestNodeAffinityPriority)."""
    builder = make_pod("p")
    if affinity is not None:
        builder.node_affinity(affinity)
    table = build_table([node(name, **labels) for name, labels in nodes])
    assert scores(plugin(args), builder.obj_(), table) == expected


def test_bad_added_affinity() -> None:
    """addedAffinity that is not a NodeAffinity, or has a bad operator, is refused."""
    with pytest.raises(ValueError, match="addedAffinity"):
        plugin({"addedAffinity": ["zone"]})
    with pytest.raises(ValueError, match="addedAffinity"):
        plugin({"addedAffinity": required(expr("zone", "Near", "a"))})


# --- events ----------------------------------------------------------------------------------


def with_foo_bar() -> PodBuilder:
    """Upstream's podWithNodeAffinity: NodeAffinityIn("foo", ["bar"])."""
    return make_pod("p").required_affinity("foo", "In", "bar")


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: Node/Add|UpdateNodeLabel, with a hint."""
    assert registered(plugin()) == [("NodeAdd", True), ("NodeUpdateNodeLabel", True)]


@pytest.mark.parametrize(
    ("args", "pod", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterNodeChange; its two cases with objects of the wrong
        # type have no counterpart (berth's hints get compiled NodeInfos).
        pytest.param(
            None, with_foo_bar(), None, make_node("n"), QueueingHint.SKIP, id="skip-queue-on-add"
        ),
        pytest.param(
            None,
            with_foo_bar(),
            None,
            make_node("n").label("foo", "bar"),
            QueueingHint.QUEUE,
            id="queue-on-add",
        ),
        pytest.param(
            None,
            with_foo_bar(),
            make_node("n"),
            make_node("n").resources({}),
            QueueingHint.SKIP,
            id="skip-unrelated-changes",
        ),
        pytest.param(
            None,
            with_foo_bar(),
            make_node("n"),
            make_node("n").label("k", "v"),
            QueueingHint.SKIP,
            id="skip-unrelated-changes-on-labels",
        ),
        pytest.param(
            None,
            with_foo_bar(),
            make_node("n").label("foo", "bar"),
            make_node("n").label("k", "v"),
            QueueingHint.SKIP,
            id="skip-labels-changes-on-node-from-suitable-to-unsuitable",
        ),
        pytest.param(
            None,
            with_foo_bar(),
            make_node("n"),
            make_node("n").label("foo", "bar"),
            QueueingHint.QUEUE,
            id="queue-on-labels-change-makes-pod-schedulable",
        ),
        pytest.param(
            None,
            with_foo_bar(),
            make_node("n").label("foo", "bar"),
            make_node("n").resources({}).label("foo", "bar"),
            QueueingHint.SKIP,
            id="skip-unrelated-change-that-keeps-pod-schedulable",
        ),
        pytest.param(
            {"addedAffinity": required(FOO_BAR)},
            with_foo_bar(),
            None,
            make_node("n"),
            QueueingHint.SKIP,
            id="skip-queue-on-add-scheduler-enforced-node-affinity",
        ),
        pytest.param(
            {"addedAffinity": required(FOO_BAR)},
            with_foo_bar(),
            None,
            make_node("n").label("foo", "bar"),
            QueueingHint.QUEUE,
            id="queue-on-add-scheduler-enforced-node-affinity",
        ),
        # berth: the nodeSelector is part of the required affinity (GetRequiredNodeAffinity),
        # and matchFields match the node's name, as in Filter.
        pytest.param(
            None,
            with_foo_bar().node_selector(zone="a"),
            None,
            make_node("n").label("foo", "bar").label("zone", "b"),
            QueueingHint.SKIP,
            id="skip-queue-on-add-node-selector-unmatched",
        ),
        pytest.param(
            None,
            with_foo_bar().node_selector(zone="a"),
            make_node("n").label("foo", "bar"),
            make_node("n").label("foo", "bar").label("zone", "a"),
            QueueingHint.QUEUE,
            id="queue-on-labels-change-matches-node-selector",
        ),
        pytest.param(
            None,
            make_pod("p").node_affinity(required(named("named"))),
            None,
            make_node("named"),
            QueueingHint.QUEUE,
            id="queue-on-add-named-node",
        ),
        pytest.param(
            None,
            make_pod("p").node_affinity(required(named("named"))),
            None,
            make_node("other"),
            QueueingHint.SKIP,
            id="skip-queue-on-add-other-node",
        ),
    ],
)
def test_is_schedulable_after_node_change(
    args: JSON | None,
    pod: PodBuilder,
    old: NodeBuilder | None,
    new: NodeBuilder,
    expected: QueueingHint,
) -> None:
    """A node added or relabelled moves the pod only if it matches the pod's required node
    affinity (and the profile's addedAffinity) now and, when updated, did not before."""
    assert run_hint(plugin(args), "NodeUpdateNodeLabel", pod, old, new) is expected
