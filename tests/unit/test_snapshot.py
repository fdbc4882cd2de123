"""scheduler.snapshot: NodeTable rows (add, update, remove, reuse, growth), pod accounting,
upstream's zone-interleaved node order, and the selector masks over label columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scheduler.model import (
    DEFAULT_MEMORY,
    DEFAULT_MILLI_CPU,
    Requirement,
    SelectorTerm,
    Taint,
    compile_node,
    compile_pod,
)
from scheduler.snapshot import NodeTable, requirement_mask, selector_mask, term_mask, zone_key
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, rows

Gi = 2**30


def column(table: NodeTable, name: str, resource: str) -> int:
    return int(table.allocatable[table.row_of[name], table.resource_index[resource]])


def used(table: NodeTable, name: str, resource: str) -> int:
    return int(table.requested[table.row_of[name], table.resource_index[resource]])


# --- rows ------------------------------------------------------------------------------------


def test_add_nodes_takes_rows_in_order() -> None:
    """New nodes take the lowest free rows and their columns are filled in."""
    table = build_table(
        [
            make_node("n1").capacity(cpu="4", memory="8Gi").label("disk", "ssd").obj_(),
            make_node("n2").capacity(cpu="2").taint("gpu", "yes").unschedulable().obj_(),
        ]
    )
    assert table.row_of == {"n1": 0, "n2": 1}
    assert len(table) == 2
    assert table.names([1, 0]) == ["n2", "n1"]
    assert [column(table, "n1", "cpu"), column(table, "n1", "memory")] == [4000, 8 * Gi]
    assert table.alive[:3].tolist() == [True, True, False]
    assert table.unschedulable[:2].tolist() == [False, True]
    assert table.taint_sets[int(table.taint_set[1])] == (Taint("gpu", "yes", "NoSchedule"),)
    assert int(table.taint_set[0]) == 0  # the shared "no taints" set


def test_update_keeps_row_and_pods_and_bumps_generation() -> None:
    """Upserting a known node rewrites its attributes in place; its pods stay counted."""
    table = build_table(
        [make_node("n1").capacity(cpu="4").label("disk", "ssd").obj_()],
        [make_pod("p").req(cpu="1").node("n1").obj_()],
    )
    before = int(table.generation[0])
    row = table.upsert_node(compile_node(make_node("n1").capacity(cpu="8").taint("t").obj_()))
    assert row == 0
    assert (column(table, "n1", "cpu"), used(table, "n1", "cpu")) == (8000, 1000)
    assert list(table.pods[0]) == ["uid-p"]
    assert int(table.label_column("disk")[0]) == -1  # the label was dropped
    assert table.taint_sets[int(table.taint_set[0])] == (Taint("t", "", "NoSchedule"),)
    assert int(table.generation[0]) > before


def test_remove_node_frees_and_clears_the_row_for_reuse() -> None:
    """Removal returns the node's pods, clears every column and the row is taken next."""
    table = build_table(
        [
            make_node("n1").capacity(cpu="4").label("disk", "ssd").obj_(),
            make_node("n2").obj_(),
        ],
        [make_pod("p").req(cpu="1").node("n1").obj_()],
    )
    pods = table.remove_node("n1")
    assert list(pods) == ["uid-p"]
    assert (table.row_of, len(table)) == ({"n2": 1}, 1)
    assert (bool(table.alive[0]), int(table.requested[0].sum())) == (False, 0)
    assert (int(table.allocatable[0].sum()), int(table.nonzero_requested[0].sum())) == (0, 0)
    assert int(table.label_column("disk")[0]) == -1
    assert table.remove_node("n1") == {}  # unknown: nothing to do

    row = table.upsert_node(compile_node(make_node("n3").capacity(cpu="1").obj_()))
    assert row == 0
    assert (column(table, "n3", "cpu"), used(table, "n3", "cpu"), table.pods[0]) == (1000, 0, {})


def test_growth_beyond_initial_capacity() -> None:
    """More nodes than the initial capacity: every column grows and old rows keep their data."""
    table = build_table(
        [make_node(f"n{i}").capacity(cpu=str(i + 1)).label("idx", str(i)).obj_() for i in range(5)],
        [make_pod("p").req(cpu="500m").node("n0").obj_()],
        capacity=2,
    )
    assert table.row_of == {f"n{i}": i for i in range(5)}
    assert [column(table, f"n{i}", "cpu") for i in range(5)] == [1000, 2000, 3000, 4000, 5000]
    assert used(table, "n0", "cpu") == 500
    assert table.label_column("idx")[:5].tolist() == [0, 1, 2, 3, 4]
    assert table.alive.size == table.label_column("idx").size == len(table.nodes) >= 5
    assert table.alive[5:].tolist() == [False] * (table.alive.size - 5)


def test_new_resource_column_after_growth() -> None:
    """An extended resource first seen late gets a column on every row, zero elsewhere."""
    table = build_table([make_node(f"n{i}").obj_() for i in range(3)], capacity=2)
    table.upsert_node(compile_node(make_node("gpu").resources({"example.com/gpu": "4"}).obj_()))
    assert column(table, "gpu", "example.com/gpu") == 4
    assert [column(table, f"n{i}", "example.com/gpu") for i in range(3)] == [0, 0, 0]
    assert table.allocatable.shape == table.requested.shape


# --- pods ------------------------------------------------------------------------------------


def test_add_and_remove_pod_accounting() -> None:
    """Requests and non-zero requests follow add/remove; adding a pod twice counts once."""
    table = build_table([make_node("n1").obj_()])
    sized = compile_pod(make_pod("a").req(cpu="1", memory="1Gi").obj_())
    bare = compile_pod(make_pod("b").obj_())
    for pod in (sized, sized, bare):
        table.add_pod(0, pod)
    cpu, mem, pods = (table.resource_index[r] for r in ("cpu", "memory", "pods"))
    assert table.requested[0, [cpu, mem, pods]].tolist() == [1000, Gi, 2]
    assert table.nonzero_requested[0].tolist() == [1000 + DEFAULT_MILLI_CPU, Gi + DEFAULT_MEMORY]
    table.remove_pod(0, sized)
    table.remove_pod(0, sized)
    assert table.requested[0, [cpu, mem, pods]].tolist() == [0, 0, 1]
    assert table.nonzero_requested[0].tolist() == [DEFAULT_MILLI_CPU, DEFAULT_MEMORY]


def test_request_vector_follows_columns() -> None:
    """A pod's requests as a vector over the table's resource columns."""
    table = build_table([make_node("n1").obj_()])
    pod = compile_pod(make_pod("a").containers({"cpu": "2", "example.com/x": "3"}).obj_())
    vector = table.request_vector(pod)
    assert dict(zip(table.resources, vector.tolist(), strict=True)) == {
        "cpu": 2000,
        "memory": 0,
        "ephemeral-storage": 0,
        "pods": 1,
        "example.com/x": 3,
    }


# --- zone-interleaved order ------------------------------------------------------------------


def zoned(name: str, zone: str | None, region: str | None = None) -> dict[str, Any]:
    builder = make_node(name)
    if zone is not None:
        builder.zone(zone, region)
    elif region is not None:
        builder.label("topology.kubernetes.io/region", region)
    return builder.obj_()


def order_names(table: NodeTable) -> list[str]:
    return table.names(table.order())


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(
            [zoned("n1", None), zoned("n2", None), zoned("n3", None)],
            ["n1", "n2", "n3"],
            id="no-zones-insertion-order",
        ),
        pytest.param(
            [zoned("z", "a"), zoned("y", "a"), zoned("x", "a")],
            ["z", "y", "x"],
            id="one-zone-insertion-order-not-name-order",
        ),
        pytest.param(
            [
                zoned("a1", "a"),
                zoned("b1", "b"),
                zoned("a2", "a"),
                zoned("c1", "c"),
                zoned("b2", "b"),
                zoned("a3", "a"),
            ],
            ["a1", "b1", "c1", "a2", "b2", "a3"],
            id="round-robin-zones-in-order-of-first-appearance",
        ),
        pytest.param(
            [zoned("b1", "b"), zoned("a1", "a"), zoned("b2", "b")],
            ["b1", "a1", "b2"],
            id="zone-order-is-not-sorted",
        ),
        pytest.param(
            [zoned("r1a", "a", "r1"), zoned("r2a", "a", "r2"), zoned("r1a2", "a", "r1")],
            ["r1a", "r2a", "r1a2"],
            id="region-distinguishes-zones-of-the-same-name",
        ),
        pytest.param(
            [zoned("none", None), zoned("a1", "a"), zoned("none2", None), zoned("a2", "a")],
            ["none", "a1", "none2", "a2"],
            id="nodes-without-zone-form-their-own-zone",
        ),
        pytest.param(
            [
                make_node("beta").label("failure-domain.beta.kubernetes.io/zone", "a").obj_(),
                zoned("ga", "a"),
                zoned("b", "b"),
            ],
            ["beta", "b", "ga"],
            id="beta-zone-label-counts-as-the-same-zone",
        ),
    ],
)
def test_order_interleaves_zones_like_upstream_node_tree(
    nodes: list[dict[str, Any]], expected: list[str]
) -> None:
    """Zones in order of first appearance, nodes in insertion order, listed round-robin."""
    assert order_names(build_table(nodes)) == expected


def test_order_after_removals_and_zone_changes() -> None:
    """A zone keeps its place while it has nodes; a zone that empties rejoins at the end;
    a node whose zone changes moves to the end of its new zone (nodeTree.updateNode)."""
    table = build_table([zoned("a1", "a"), zoned("b1", "b"), zoned("a2", "a"), zoned("c1", "c")])
    assert order_names(table) == ["a1", "b1", "c1", "a2"]

    table.remove_node("a1")  # zone a still has a2: stays first
    assert order_names(table) == ["a2", "b1", "c1"]

    table.remove_node("b1")  # zone b empties and is forgotten
    table.upsert_node(compile_node(zoned("b2", "b")))
    assert order_names(table) == ["a2", "c1", "b2"]

    table.upsert_node(compile_node(zoned("c2", "c")))
    table.upsert_node(compile_node(zoned("c1", "b")))  # c1 moves from zone c to zone b
    assert order_names(table) == ["a2", "c2", "b2", "c1"]

    table.upsert_node(compile_node(make_node("a2").zone("a").label("x", "y").obj_()))
    assert order_names(table) == ["a2", "c2", "b2", "c1"]  # same zone: no move


def test_zone_key() -> None:
    """GetZoneKey: region and zone joined, GA labels before beta ones, "" without either."""
    assert [
        zone_key({}),
        zone_key({"topology.kubernetes.io/zone": "a"}),
        zone_key({"topology.kubernetes.io/region": "r"}),
        zone_key(
            {"failure-domain.beta.kubernetes.io/zone": "b", "topology.kubernetes.io/zone": "a"}
        ),
        zone_key(
            {
                "failure-domain.beta.kubernetes.io/region": "r",
                "failure-domain.beta.kubernetes.io/zone": "b",
            }
        ),
    ] == ["", ":\x00:a", "r:\x00:", ":\x00:a", "r:\x00:b"]


# --- masks -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled() -> NodeTable:
    return build_table(
        [
            make_node("n1").label("zone", "a").label("gen", "3").obj_(),
            make_node("n2").label("zone", "b").label("gen", "10").obj_(),
            make_node("n3").label("zone", "c").label("gen", "x").obj_(),
            make_node("n4").obj_(),
        ]
    )


def matching(table: NodeTable, mask: Any) -> list[str]:
    return [n for n, hit in zip(table.row_of, mask.tolist(), strict=True) if hit]


def r(key: str, op: str, *values: str) -> Requirement:
    return Requirement(key, op, values)


@pytest.mark.parametrize(
    ("requirement", "field", "expected"),
    [
        pytest.param(r("zone", "In", "a", "c"), False, ["n1", "n3"], id="in"),
        pytest.param(r("zone", "In", "zzz"), False, [], id="in-unknown-value"),
        pytest.param(r("nope", "In", "a"), False, [], id="in-unknown-key"),
        pytest.param(
            r("zone", "NotIn", "a"), False, ["n2", "n3", "n4"], id="notin-includes-absent"
        ),
        pytest.param(
            r("nope", "NotIn", "a"), False, ["n1", "n2", "n3", "n4"], id="notin-unknown-key"
        ),
        pytest.param(r("zone", "Exists"), False, ["n1", "n2", "n3"], id="exists"),
        pytest.param(r("zone", "DoesNotExist"), False, ["n4"], id="doesnotexist"),
        pytest.param(r("nope", "DoesNotExist"), False, ["n1", "n2", "n3", "n4"], id="dne-unknown"),
        pytest.param(r("gen", "Gt", "4"), False, ["n2"], id="gt-numeric-not-lexical"),
        pytest.param(r("gen", "Lt", "4"), False, ["n1"], id="lt-skips-non-numeric"),
        pytest.param(r("gen", "Gt", "x"), False, [], id="gt-non-numeric-value"),
        pytest.param(r("metadata.name", "In", "n2", "n4"), True, ["n2", "n4"], id="field-in"),
        pytest.param(r("metadata.name", "In", "gone"), True, [], id="field-in-unknown-node"),
        pytest.param(r("metadata.name", "NotIn", "n2"), True, ["n1", "n3", "n4"], id="field-notin"),
        pytest.param(r("metadata.uid", "In", "n2"), True, [], id="field-unsupported-key"),
        pytest.param(r("metadata.name", "Exists"), True, [], id="field-unsupported-operator"),
    ],
)
def test_requirement_mask(
    labelled: NodeTable, requirement: Requirement, field: bool, expected: list[str]
) -> None:
    """One requirement over whole label columns (or metadata.name for matchFields)."""
    mask = requirement_mask(labelled, requirement, rows(labelled), field=field)
    assert matching(labelled, mask) == expected


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        pytest.param(SelectorTerm(), [], id="empty-term-matches-nothing"),
        pytest.param(
            SelectorTerm((r("zone", "In", "a", "b"), r("gen", "Gt", "5"))), ["n2"], id="and"
        ),
        pytest.param(
            SelectorTerm((r("zone", "Exists"),), (r("metadata.name", "In", "n3"),)),
            ["n3"],
            id="expressions-and-fields",
        ),
        pytest.param(
            SelectorTerm(fields=(r("metadata.name", "NotIn", "n1"),)),
            ["n2", "n3", "n4"],
            id="fields-only",
        ),
    ],
)
def test_term_mask(labelled: NodeTable, term: SelectorTerm, expected: list[str]) -> None:
    """A NodeSelectorTerm: every requirement must hold; an empty term matches no node."""
    assert matching(labelled, term_mask(labelled, term, rows(labelled))) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({}, ["n1", "n2", "n3", "n4"], id="empty-matches-all"),
        pytest.param({"zone": "b"}, ["n2"], id="one-label"),
        pytest.param({"zone": "b", "gen": "10"}, ["n2"], id="two-labels"),
        pytest.param({"zone": "b", "gen": "3"}, [], id="two-labels-disagree"),
        pytest.param({"zone": "nowhere"}, [], id="unknown-value"),
        pytest.param({"nope": "a"}, [], id="unknown-key"),
    ],
)
def test_selector_mask(labelled: NodeTable, selector: dict[str, str], expected: list[str]) -> None:
    """A nodeSelector map: every label equal."""
    assert matching(labelled, selector_mask(labelled, selector, rows(labelled))) == expected


def test_masks_over_a_subset_of_rows(labelled: NodeTable) -> None:
    """Masks line up with the rows passed in, whatever their order."""
    subset = rows(labelled, ["n4", "n2"])
    assert requirement_mask(labelled, r("zone", "Exists"), subset).tolist() == [False, True]
    assert selector_mask(labelled, {"zone": "b"}, subset).tolist() == [False, True]
    field = requirement_mask(labelled, r("metadata.name", "In", "n4"), subset, field=True)
    assert np.asarray(field).tolist() == [True, False]


def test_trial_puts_generations_back_and_later_changes_still_show() -> None:
    """Changes undone inside a trial leave every row's generation as it was, so per-row
    caches keep their results; a generation seen inside is never seen again, and a real
    change afterwards still moves the row on."""
    table = build_table(
        [make_node("n1").capacity(cpu="4").obj_(), make_node("n2").capacity(cpu="4").obj_()],
        [make_pod("p").req(cpu="1").node("n1").obj_()],
    )
    before = table.generation.copy()
    extra = compile_pod(make_pod("q").req(cpu="1").obj_())
    with table.trial():
        table.add_pod(0, extra)
        inside = int(table.generation[0])
        table.remove_pod(0, extra)
    assert table.generation.tolist() == before.tolist()
    assert inside != int(before[0])
    table.add_pod(1, extra)
    assert int(table.generation[1]) > inside


def test_add_pods_and_remove_pods_are_add_pod_and_remove_pod_for_each() -> None:
    """The bulk forms leave every column as the one-at-a-time forms do, two pods on one row,
    a pod already there and a new extended resource included."""
    nodes = [make_node(f"n{i}").capacity(cpu="8", memory="8Gi").obj_() for i in range(3)]
    bound = [make_pod("there").req(cpu="1").node("n0").obj_()]
    pods = [
        compile_pod(make_pod("a").req(cpu="1", memory="1Gi").obj_()),
        compile_pod(make_pod("b").req(cpu="500m").obj_()),
        compile_pod(make_pod("c").req(**{"example.com/gpu": "2"}).obj_()),
        compile_pod(bound[0]),
    ]
    placed = [(0, pods[0]), (0, pods[1]), (2, pods[2]), (0, pods[3])]
    one, bulk = build_table(nodes, bound), build_table(nodes, bound)
    for row, pod in placed:
        one.add_pod(row, pod)
    bulk.add_pods(placed)

    def columns(table: NodeTable) -> Any:
        live = table.live_rows()
        wanted = sorted(table.resource_index)
        requested = {r: table.requested[live, table.resource_index[r]].tolist() for r in wanted}
        pods = [sorted(table.pods[int(row)]) for row in live]
        return requested, table.nonzero_requested[live].tolist(), pods

    assert columns(bulk) == columns(one)
    assert all(bulk.generation[row] > 0 for row in (0, 2))
    for row, pod in placed[:3]:
        one.remove_pod(row, pod)
    bulk.remove_pods(placed[:3])
    assert columns(bulk) == columns(one)


# --- scale: row reuse, the change journal, the order as one sort ------------------------------


def test_a_reused_row_keeps_nothing_of_the_node_before() -> None:
    """A free row is all defaults again, so a new node in it reads as that node alone: not
    unschedulable, no taints, no labels of the old node, only its own allocatable."""
    table = build_table(
        [
            make_node("old")
            .capacity(cpu="8", memory="8Gi")
            .label("disk", "ssd")
            .taint("gpu", "yes")
            .unschedulable()
            .obj_(),
        ]
    )
    row = table.row_of["old"]
    table.remove_node("old")
    new = compile_node(make_node("new").capacity(cpu="2").obj_())
    assert table.upsert_node(new) == row
    assert not table.unschedulable[row]
    assert int(table.taint_set[row]) == 0
    assert int(table.label_column("disk")[row]) == -1
    assert [column(table, "new", r) for r in ("cpu", "memory")] == [
        new.allocatable["cpu"],
        new.allocatable.get("memory", 0),
    ]


def test_nodes_sharing_an_allocatable_dict_after_a_new_resource_column() -> None:
    """Nodes of one shape share their allocatable (compile_node); a resource column added by
    another node in between still reads 0 for them, and their own amounts stay."""
    plain = make_node("a").capacity(cpu="4", memory="8Gi").obj_()
    table = build_table([plain])
    table.upsert_node(compile_node(make_node("gpu").resources({"example.com/gpu": "2"}).obj_()))
    second = compile_node({**plain, "metadata": {**plain["metadata"], "name": "b"}})
    assert second.allocatable is table.node(table.row_of["a"]).allocatable
    table.upsert_node(second)
    assert [column(table, "b", r) for r in ("cpu", "memory", "example.com/gpu")] == [
        4000,
        8 * Gi,
        0,
    ]
    assert column(table, "gpu", "example.com/gpu") == 2


def test_changed_since_lists_every_row_whose_generation_moved() -> None:
    """Whatever happens (nodes added, updated, removed, pods placed one by one or in bulk,
    a trial undone), every row whose generation differs from what a cursor saw is listed
    by changed_since(cursor); once the journal is trimmed past a cursor, None."""
    rng = np.random.default_rng(7)
    table = NodeTable(4)
    pods = [compile_pod(make_pod(f"p{i}").req(cpu="10m").obj_()) for i in range(40)]
    placed: list[tuple[int, Any]] = []
    seen: list[tuple[int, Any]] = []
    for step in range(300):
        seen.append((table.cursor(), table.generation.copy()))
        action = int(rng.integers(6))
        names = list(table.row_of)
        if action == 0 or not names:
            name = f"n{int(rng.integers(12))}"
            table.upsert_node(compile_node(make_node(name).zone(f"z{step % 3}").obj_()))
        elif action == 1:
            name = names[int(rng.integers(len(names)))]
            pods_gone = table.remove_node(name)
            placed = [(r, p) for r, p in placed if p.uid not in pods_gone]
        elif action == 2:
            pod = pods[int(rng.integers(len(pods)))]
            if all(p.uid != pod.uid for _, p in placed):
                row = table.row_of[names[int(rng.integers(len(names)))]]
                table.add_pod(row, pod)
                placed.append((row, pod))
        elif action == 3 and placed:
            row, pod = placed.pop(int(rng.integers(len(placed))))
            table.remove_pod(row, pod)
        elif action == 4:
            fresh = [p for p in pods if all(p.uid != q.uid for _, q in placed)][:9]
            bulk = [(table.row_of[names[i % len(names)]], p) for i, p in enumerate(fresh)]
            table.add_pods(bulk)
            placed.extend(bulk)
        else:
            seen.append((table.cursor(), table.generation.copy()))
            with table.trial():
                table.touch(table.row_of[names[0]])
                seen.append((table.cursor(), table.generation.copy()))  # looked inside
        for cursor, generation in [seen[0], *seen[-30:]]:
            changed = table.changed_since(cursor)
            assert changed is not None
            moved = np.flatnonzero(table.generation[: generation.size] != generation)
            added = generation.size + np.flatnonzero(table.alive[generation.size :])
            assert set(moved.tolist()) | set(added.tolist()) <= set(changed.tolist()), step
    cursor = table.cursor()
    row = next(iter(table.row_of.values()))
    for _ in range(1 << 17):
        table.touch(row)
    assert table.changed_since(cursor) is None
    assert table.changed_since(table.cursor()) is not None


def test_order_matches_the_node_tree_walk_for_many_zones() -> None:
    """The one-sort order equals upstream's walk (first node of each zone, then the second,
    ...) for zones of very different sizes, after removals too."""
    rng = np.random.default_rng(3)
    table = NodeTable()
    for i in range(600):
        zone = f"z{min(int(rng.geometric(0.3)), 9)}"
        table.upsert_node(compile_node(make_node(f"n{i}").zone(zone).obj_()))
    for i in rng.choice(600, 150, replace=False).tolist():
        table.remove_node(f"n{i}")

    def walk() -> list[int]:
        lists = list(table._zones.values())
        out: list[int] = []
        for i in range(max(len(zone_rows) for zone_rows in lists)):
            out.extend(zone_rows[i] for zone_rows in lists if i < len(zone_rows))
        return out

    assert table.order().tolist() == walk()
    assert table.position()[table.order()].tolist() == list(range(450))


def test_nested_trials_put_back_what_each_changed() -> None:
    """An inner trial puts back the rows it changed, to what they were when it began; the
    outer one then puts back every row either changed, bulk add_pods included; the rows
    put back are in the change journal."""
    table = build_table([make_node(f"n{i}").capacity(cpu="64").obj_() for i in range(4)])
    before = table.generation.copy()
    cursor = table.cursor()
    pods = [compile_pod(make_pod(f"p{i}").req(cpu="1").obj_()) for i in range(10)]
    with table.trial():
        table.touch(0)
        after_outer_touch = table.generation.copy()
        with table.trial():
            table.touch(0)
            table.add_pods([(1 + i % 2, p) for i, p in enumerate(pods)])  # numpy path
            assert (table.generation[:3] != after_outer_touch[:3]).all()
        assert table.generation.tolist() == after_outer_touch.tolist()
        table.remove_pods([(1 + i % 2, p) for i, p in enumerate(pods)])
        table.touch(3)
    assert table.generation.tolist() == before.tolist()
    changed = table.changed_since(cursor)
    assert changed is not None and {0, 1, 2, 3} <= set(changed.tolist())
