"""ResourceSlices (scheduler.dra.slices): a slice as berth reads it, which nodes it offers its
devices to, and SliceStore.pools_for, upstream's GatherPools for one node (newest generation
only, incomplete and invalid pools marked)."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.dra.cel import CelRuntimeError, compile_selector
from scheduler.dra.slices import BINDING_CONDITIONS, Device, Pool, Slice, SliceStore
from scheduler.model import InvalidObject
from tests.unit.dra.builders import (
    ALL_NODES,
    DRIVER_A,
    DRIVER_B,
    NODE1,
    NODE2,
    PER_DEVICE,
    POOL1,
    POOL2,
    REGION1,
    device,
    label_selector,
    labels_of,
    local_selector,
    slice_with_devices,
    store_of,
)

JSON = dict[str, Any]
L1, L2 = labels_of(NODE1), labels_of(NODE2)


def summary(pools: list[Pool]) -> list[tuple[str, list[str], bool, bool]]:
    """Each pool as (id, its slices' names, incomplete, invalid)."""
    return [(p.id, [s.name for s in p.slices], p.incomplete, p.invalid) for p in pools]


def device_names(pool: Pool, node: str = NODE1) -> list[str]:
    return [d.name for d in pool.devices(node, labels_of(node))]


# --- one slice -------------------------------------------------------------------------


def test_compile() -> None:
    """What berth reads of a slice and its devices."""
    raw = slice_with_devices(
        "s1",
        NODE1,
        device("gpu-0", {"model": {"string": "a100"}}, {"memory": "80Gi"}),
        device("gpu-1", allowMultipleAllocations=True),
        pool=POOL2,
        driver=DRIVER_B,
        generation=3,
        count=2,
    )
    compiled = Slice.compile(raw)
    assert (compiled.name, compiled.driver, compiled.pool) == ("s1", DRIVER_B, POOL2)
    assert (compiled.generation, compiled.slice_count) == (3, 2)
    assert (compiled.node_name, compiled.all_nodes, compiled.node_terms) == (NODE1, False, None)
    assert not compiled.per_device
    first, second = compiled.devices
    assert first.id == f"{DRIVER_B}/{POOL2}/gpu-0"
    assert first.attributes == {"model": {"string": "a100"}}
    assert first.capacity == {"memory": "80Gi"}
    assert (first.allow_multiple, second.allow_multiple) == (False, True)
    assert first.unsupported == "" and not first.everywhere


def test_compile_defaults() -> None:
    """A pool without a count is one slice; a missing generation is 0."""
    compiled = Slice.compile(
        {"metadata": {"name": "s"}, "spec": {"driver": DRIVER_A, "pool": {"name": POOL1}}}
    )
    assert (compiled.generation, compiled.slice_count, compiled.devices) == (0, 1, ())


@pytest.mark.parametrize(
    ("raw", "unsupported"),
    [
        pytest.param(device("d"), "", id="plain"),
        pytest.param(
            device("d", consumesCounters=[{"counterSet": "s", "counters": {}}]),
            "consumes shared counters (partitionable devices)",
            id="consumes-counters",
        ),
        pytest.param(
            device("d", bindingConditions=["Ready"]), BINDING_CONDITIONS, id="binding-conditions"
        ),
        pytest.param(
            device(
                "d",
                bindingConditions=["Ready"],
                consumesCounters=[{"counterSet": "s", "counters": {}}],
            ),
            BINDING_CONDITIONS,
            id="binding-conditions-first",
        ),
        pytest.param(
            device("d", taints=[{"key": "k", "effect": "NoSchedule"}]),
            "is tainted",
            id="taint-no-schedule",
        ),
        pytest.param(
            device("d", taints=[{"key": "k", "effect": "NoExecute"}]),
            "is tainted",
            id="taint-no-execute",
        ),
        pytest.param(
            device("d", taints=[{"key": "k", "effect": "None"}]), "", id="taint-effect-none"
        ),
    ],
)
def test_unsupported_devices(raw: JSON, unsupported: str) -> None:
    """Why berth never allocates a device ("" = it may)."""
    [compiled] = Slice.compile(slice_with_devices("s", NODE1, raw)).devices
    assert compiled.unsupported == unsupported


def test_shared_counters_slice() -> None:
    """Every device of a slice with shared counters is left alone."""
    raw = slice_with_devices("s", NODE1, device("d"), sharedCounters=[{"name": "set"}])
    [compiled] = Slice.compile(raw).devices
    assert compiled.unsupported == "consumes shared counters (partitionable devices)"


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param(NODE1, {NODE1: True, NODE2: False}, id="node-name"),
        pytest.param(ALL_NODES, {NODE1: True, NODE2: True}, id="all-nodes"),
        pytest.param(label_selector("region", REGION1), {NODE1: True, NODE2: False}, id="labels"),
        pytest.param(local_selector(NODE2), {NODE1: False, NODE2: True}, id="fields"),
        pytest.param({"nodeSelectorTerms": []}, {NODE1: False, NODE2: False}, id="no-terms"),
        pytest.param(None, {NODE1: False, NODE2: False}, id="no-node-selection"),
    ],
)
def test_targets(node: Any, expected: dict[str, bool]) -> None:
    """upstream's NodeMatches for the slice's own node selection."""
    compiled = Slice.compile(slice_with_devices("s", node, device("d")))
    assert {n: compiled.targets(n, labels_of(n)) for n in (NODE1, NODE2)} == expected


def test_targets_per_device() -> None:
    """With perDeviceNodeSelection a slice reaches a node when any of its devices does."""
    compiled = Slice.compile(
        slice_with_devices(
            "s",
            PER_DEVICE,
            device("a", nodeName=NODE1),
            device("b", nodeSelector=label_selector("region", REGION1)),
        )
    )
    assert compiled.targets(NODE1, L1)
    assert not compiled.targets(NODE2, L2)
    assert [d.everywhere for d in compiled.devices] == [False, False]


def test_everywhere() -> None:
    """A device is offered everywhere through its slice's or its own allNodes."""
    on_all = Slice.compile(slice_with_devices("s", ALL_NODES, device("d")))
    per_device = Slice.compile(
        slice_with_devices("t", PER_DEVICE, device("a", allNodes=True), device("b", nodeName=NODE1))
    )
    local = Slice.compile(slice_with_devices("u", NODE1, device("d")))
    assert [d.everywhere for d in on_all.devices] == [True]
    assert [d.everywhere for d in per_device.devices] == [True, False]
    assert [d.everywhere for d in local.devices] == [False]


def test_bad_node_selectors() -> None:
    """A node selector berth cannot read is an InvalidObject, naming where it is."""
    bad = {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Near"}]}]}
    with pytest.raises(InvalidObject, match=r"spec\.nodeSelector"):
        Slice.compile(slice_with_devices("s", bad, device("d")))
    with pytest.raises(InvalidObject, match="device 'd': nodeSelector"):
        Slice.compile(slice_with_devices("s", PER_DEVICE, device("d", nodeSelector=bad)))


@pytest.mark.parametrize(
    ("attributes", "qualified", "expected"),
    [
        pytest.param({"numa": {"int": 1}}, f"{DRIVER_A}/numa", ("int", 1), id="driver-domain"),
        pytest.param(
            {f"{DRIVER_A}/numa": {"int": 1}}, f"{DRIVER_A}/numa", ("int", 1), id="qualified"
        ),
        pytest.param(
            {"x.example.com/m": {"string": "a"}}, "x.example.com/m", ("string", "a"), id="other"
        ),
        pytest.param({"m": {"string": "a"}}, "x.example.com/m", None, id="other-domain-bare"),
        pytest.param(
            {"v": {"version": "1.0.0"}}, f"{DRIVER_A}/v", ("version", "1.0.0"), id="version"
        ),
        pytest.param({"b": {"bool": False}}, f"{DRIVER_A}/b", ("bool", False), id="bool"),
        pytest.param({}, f"{DRIVER_A}/missing", None, id="missing"),
    ],
)
def test_attribute(attributes: JSON, qualified: str, expected: Any) -> None:
    """upstream's lookupAttribute: the value with its type, or None."""
    d = Device(DRIVER_A, POOL1, "d", attributes, {})
    assert d.attribute(qualified) == expected


def test_selected_by_caches_per_expression() -> None:
    """A selector is evaluated once per device; errors are raised (and not cached)."""
    d = Device(DRIVER_A, POOL1, "d", {"model": {"string": "a100"}}, {"memory": "1Gi"})
    model = compile_selector(f'device.attributes["{DRIVER_A}"].model == "a100"')
    assert d.selected_by(model) is True
    assert d.matches == {model.expression: True}
    d.matches[model.expression] = False  # the cache is what is read next time
    assert d.selected_by(model) is False
    broken = compile_selector(f'device.attributes["{DRIVER_A}"].nokey == 1')
    for _ in range(2):
        with pytest.raises(CelRuntimeError, match="no such key: nokey"):
            d.selected_by(broken)
    assert broken.expression not in d.matches


def test_selected_by_bad_capacity() -> None:
    """A capacity that is not a quantity is an InvalidObject when first evaluated."""
    d = Device(DRIVER_A, POOL1, "d", {}, {"memory": "lots"})
    with pytest.raises(InvalidObject):
        d.selected_by(compile_selector("true"))


# --- the store -----------------------------------------------------------------------------


def test_store_apply_and_delete() -> None:
    """Slices are recorded by name, replaced, and forgotten; every change bumps
    `generation`."""
    store = SliceStore()
    assert not store
    store.apply(slice_with_devices("s", NODE1, device("a")), deleted=False)
    assert store and store.generation == 1
    store.apply(slice_with_devices("s", NODE2, device("b")), deleted=False)
    assert store.generation == 2
    assert store.pools_for(NODE1, L1) == []
    assert [device_names(p, NODE2) for p in store.pools_for(NODE2, L2)] == [["b"]]
    store.apply(slice_with_devices("s", NODE2, device("b")), deleted=True)
    assert not store and store.generation == 3
    assert store.pools_for(NODE2, L2) == []


def test_store_invalid_slice_forgets_old_version() -> None:
    """A slice berth cannot read raises, and its earlier version is no longer offered."""
    store = store_of(slice_with_devices("s", ALL_NODES, device("a")))
    bad = {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Near"}]}]}
    with pytest.raises(InvalidObject):
        store.apply(slice_with_devices("s", bad, device("a")), deleted=False)
    assert store.pools_for(NODE1, L1) == []


def test_store_slice_moves_between_pools() -> None:
    """A slice that changes pool leaves its old one."""
    store = store_of(slice_with_devices("s", NODE1, device("a"), pool=POOL1))
    store.apply(slice_with_devices("s", NODE1, device("a"), pool=POOL2), deleted=False)
    assert summary(store.pools_for(NODE1, L1)) == [(f"{DRIVER_A}/{POOL2}", ["s"], False, False)]


@pytest.mark.parametrize(
    ("slices", "node", "expected"),
    [
        pytest.param([], NODE1, [], id="no-slices"),
        pytest.param(
            [slice_with_devices("s1", NODE1, device("a"))],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["s1"], False, False)],
            id="one-local-slice",
        ),
        pytest.param(
            [slice_with_devices("s1", NODE2, device("a"))], NODE1, [], id="other-nodes-slice"
        ),
        pytest.param(
            [
                slice_with_devices("s-b", NODE1, device("a"), driver=DRIVER_B),
                slice_with_devices("s-2", ALL_NODES, device("a"), pool=POOL2),
                slice_with_devices("s-1", label_selector("region", REGION1), device("a")),
            ],
            NODE1,
            [
                (f"{DRIVER_A}/{POOL1}", ["s-1"], False, False),
                (f"{DRIVER_A}/{POOL2}", ["s-2"], False, False),
                (f"{DRIVER_B}/{POOL1}", ["s-b"], False, False),
            ],
            id="pools-sorted-by-driver-and-name",
        ),
        pytest.param(
            [
                slice_with_devices("s2", NODE1, device("b"), count=2),
                slice_with_devices("s1", NODE1, device("a"), count=2),
            ],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["s1", "s2"], False, False)],
            id="slices-sorted-by-name",
        ),
        pytest.param(
            [slice_with_devices("s1", NODE1, device("a"), count=2)],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["s1"], True, False)],
            id="incomplete",
        ),
        pytest.param(
            [
                slice_with_devices("s1", NODE1, device("a"), count=2),
                slice_with_devices("s2", NODE2, device("b"), count=2),
            ],
            NODE1,
            # The other slice reaches another node but completes the pool.
            [(f"{DRIVER_A}/{POOL1}", ["s1"], False, False)],
            id="complete-across-nodes",
        ),
        pytest.param(
            [
                slice_with_devices("old", NODE1, device("a"), generation=1),
                slice_with_devices("new", NODE1, device("b"), generation=2),
            ],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["new"], False, False)],
            id="obsolete-generation-ignored",
        ),
        pytest.param(
            [
                slice_with_devices("old", NODE1, device("a"), generation=1, count=2),
                slice_with_devices("new", NODE1, device("b"), generation=2, count=2),
            ],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["new"], True, False)],
            id="newer-generation-incomplete",
        ),
        pytest.param(
            [
                slice_with_devices("old", NODE1, device("a"), generation=1),
                slice_with_devices("new", NODE2, device("a"), generation=2),
            ],
            NODE1,
            [],
            id="only-obsolete-slices-reach-the-node",
        ),
        pytest.param(
            [
                slice_with_devices("s1", NODE1, device("a"), count=2),
                slice_with_devices("s2", NODE1, device("a"), count=2),
            ],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["s1", "s2"], False, True)],
            id="duplicate-device-names-invalid",
        ),
        pytest.param(
            [slice_with_devices("s1", NODE1, device("a"), device("a"))],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["s1"], False, True)],
            id="duplicate-device-names-in-one-slice",
        ),
        pytest.param(
            [
                slice_with_devices("s1", NODE1, device("a"), count=2),
                slice_with_devices("s2", NODE2, device("a"), count=2),
            ],
            NODE1,
            # As upstream, only the slices that reach the node are checked.
            [(f"{DRIVER_A}/{POOL1}", ["s1"], False, False)],
            id="duplicate-device-names-on-other-node-not-checked",
        ),
        pytest.param(
            [
                slice_with_devices("s1", NODE1, device("a"), pool=POOL1),
                slice_with_devices("s2", NODE1, device("a"), pool=POOL2),
            ],
            NODE1,
            [
                (f"{DRIVER_A}/{POOL1}", ["s1"], False, False),
                (f"{DRIVER_A}/{POOL2}", ["s2"], False, False),
            ],
            id="same-device-name-in-two-pools",
        ),
        pytest.param(
            [
                slice_with_devices(
                    "s1", PER_DEVICE, device("a", nodeName=NODE2), device("b", allNodes=True)
                )
            ],
            NODE1,
            [(f"{DRIVER_A}/{POOL1}", ["s1"], False, False)],
            id="per-device-node-selection",
        ),
        pytest.param(
            [slice_with_devices("s1", None, device("a"))], NODE1, [], id="no-node-selection"
        ),
    ],
)
def test_pools_for(
    slices: list[JSON], node: str, expected: list[tuple[str, list[str], bool, bool]]
) -> None:
    """upstream's GatherPools for one node."""
    assert summary(store_of(*slices).pools_for(node, labels_of(node))) == expected


def test_pool_devices_per_device_node_selection() -> None:
    """A pool offers, of a per-device slice, only the devices that reach the node."""
    store = store_of(
        slice_with_devices(
            "s1",
            PER_DEVICE,
            device("on-1", nodeName=NODE1),
            device("on-2", nodeName=NODE2),
            device("everywhere", allNodes=True),
            device("region-1", nodeSelector=label_selector("region", REGION1)),
        ),
        slice_with_devices("s2", NODE1, device("local"), pool=POOL2),
    )
    first, second = store.pools_for(NODE1, L1)
    assert device_names(first, NODE1) == ["on-1", "everywhere", "region-1"]
    assert device_names(second, NODE1) == ["local"]
    assert [device_names(p, NODE2) for p in store.pools_for(NODE2, L2)] == [["on-2", "everywhere"]]


def test_pool_devices_in_slice_order() -> None:
    """Slice by slice (by name), device by device (as listed)."""
    store = store_of(
        slice_with_devices("s2", NODE1, device("c"), count=2),
        slice_with_devices("s1", NODE1, device("b"), device("a"), count=2),
    )
    [pool] = store.pools_for(NODE1, L1)
    assert pool.id == f"{DRIVER_A}/{POOL1}"
    assert device_names(pool) == ["b", "a", "c"]
