"""NodeResourcesFit: Filter reasons as upstream's fit_test.go (TestEnoughRequests and friends),
and the three scoring strategies with the numbers of upstream's least_allocated_test.go,
most_allocated_test.go and requested_to_capacity_ratio_test.go."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from plugins import node_resources_fit
from plugins.node_resources_fit import NodeResourcesFit, _broken_linear
from scheduler.decode import ConfigError
from scheduler.framework import DeviceClass, DeviceClassStore, QueueingHint
from scheduler.handle import in_memory
from scheduler.model import compile_pod
from scheduler.pluginargs import ResourceSpec
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
EXT_A, EXT_B = "example.com/aaa", "example.com/bbb"
FOO, BAR = "intel.com/foo", "intel.com/bar"


def plugin(args: JSON | None = None) -> NodeResourcesFit:
    return node_resources_fit.new(args or {}, in_memory())


# --- Filter ----------------------------------------------------------------------------------

# Upstream's makeResources(10, 20, 32, 5, 20, 5): 10m cpu, 20 bytes of memory, 32 pods, 5 of an
# extended resource, 20 bytes of ephemeral storage, 5 hugepages.
NODE = {
    "cpu": "10m",
    "memory": "20",
    "pods": "32",
    EXT_A: "5",
    "ephemeral-storage": "20",
    "hugepages-2Mi": "5",
}


def res(cpu: int = 0, memory: int = 0, more: dict[str, int] | None = None) -> dict[str, str]:
    """A container's requests in upstream's test units (milli-CPU and bytes)."""
    out = {"cpu": f"{cpu}m", "memory": str(memory)} if cpu or memory else {}
    out.update({k: str(v) for k, v in (more or {}).items()})
    return out


def existing(cpu: int, memory: int, more: dict[str, int] | None = None) -> JSON:
    return make_pod("existing").containers(res(cpu, memory, more)).node("node").obj_()


INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"


@pytest.mark.parametrize(
    ("pod", "on_node", "args", "expected"),
    [
        pytest.param(make_pod("p").containers(), existing(10, 20), None, [], id="no-request-fits"),
        pytest.param(
            make_pod("p").containers(res(1, 1)),
            existing(10, 20),
            None,
            [INSUFFICIENT_CPU, INSUFFICIENT_MEMORY],
            id="too-many-resources-fails",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).init_container(res(3, 1)),
            existing(8, 19),
            None,
            [INSUFFICIENT_CPU],
            id="init-container-cpu-fails",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).init_container(res(3, 1)).init_container(res(2, 1)),
            existing(8, 19),
            None,
            [INSUFFICIENT_CPU],
            id="highest-init-container-cpu-fails",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).init_container(res(1, 3)),
            existing(9, 19),
            None,
            [INSUFFICIENT_MEMORY],
            id="init-container-memory-fails",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).init_container(res(1, 1)),
            existing(9, 19),
            None,
            [],
            id="init-container-is-max-not-sum",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)), existing(5, 5), None, [], id="both-resources-fit"
        ),
        pytest.param(
            make_pod("p").containers(res(2, 1)),
            existing(9, 5),
            None,
            [INSUFFICIENT_CPU],
            id="only-memory-fits",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 2)),
            existing(5, 19),
            None,
            [INSUFFICIENT_MEMORY],
            id="only-cpu-fits",
        ),
        pytest.param(
            make_pod("p").containers(res(5, 1)), existing(5, 19), None, [], id="equal-edge-case"
        ),
        pytest.param(
            make_pod("p").containers(res(4, 1)).init_container(res(5, 1)),
            existing(5, 19),
            None,
            [],
            id="equal-edge-case-for-init-container",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_A: 1})),
            existing(0, 0),
            None,
            [],
            id="extended-resource-fits",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_A: 10})),
            existing(0, 0),
            None,
            [f"Insufficient {EXT_A}"],
            id="extended-resource-capacity-enforced",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_A: 1})),
            existing(0, 0, {EXT_A: 5}),
            None,
            [f"Insufficient {EXT_A}"],
            id="extended-resource-allocatable-enforced",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_A: 3}), res(more={EXT_A: 3})),
            existing(0, 0, {EXT_A: 2}),
            None,
            [f"Insufficient {EXT_A}"],
            id="extended-resource-enforced-for-multiple-containers",
        ),
        pytest.param(
            make_pod("p")
            .containers()
            .init_container(res(more={EXT_A: 3}))
            .init_container(res(more={EXT_A: 3})),
            existing(0, 0, {EXT_A: 2}),
            None,
            [],
            id="extended-resource-admits-multiple-init-containers",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_B: 1})),
            existing(0, 0),
            None,
            [f"Insufficient {EXT_B}"],
            id="unknown-extended-resource-enforced",
        ),
        pytest.param(
            make_pod("p").containers(res(more={"kubernetes.io/something": 1})),
            existing(0, 0),
            {"ignoredResources": ["kubernetes.io/something"]},
            ["Insufficient kubernetes.io/something"],
            id="kubernetes-io-resource-cannot-be-ignored",
        ),
        pytest.param(
            make_pod("p").containers(res(more={"hugepages-2Mi": 10})),
            existing(0, 0),
            None,
            ["Insufficient hugepages-2Mi"],
            id="hugepages-capacity-enforced",
        ),
        pytest.param(
            make_pod("p").containers(res(more={"hugepages-2Mi": 3})),
            existing(0, 0, {"hugepages-2Mi": 2}),
            None,
            [],
            id="hugepages-fit",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_B: 2})),
            existing(0, 0),
            {"ignoredResources": [EXT_B]},
            [],
            id="ignored-extended-resource-skipped",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_B: 2})),
            existing(0, 0),
            {"ignoredResourceGroups": ["example.com"]},
            [],
            id="ignored-resource-group-skipped",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).overhead(cpu="3m", memory="13"),
            existing(5, 5),
            None,
            [],
            id="requests-plus-overhead-fit",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).overhead(cpu="1m", memory="15"),
            existing(5, 5),
            None,
            [INSUFFICIENT_MEMORY],
            id="requests-plus-overhead-do-not-fit",
        ),
        pytest.param(
            make_pod("p").containers(res(more={EXT_A: 0})),
            existing(0, 0, {EXT_A: 5}),
            None,
            [],
            id="zero-quantity-not-checked",
        ),
        pytest.param(
            make_pod("p").containers(res(more={"ephemeral-storage": 25})),
            existing(0, 0),
            None,
            ["Insufficient ephemeral-storage"],
            id="ephemeral-storage-enforced",
        ),
        pytest.param(
            make_pod("p").containers(res(more={"ephemeral-storage": 10})),
            existing(0, 0, {"ephemeral-storage": 10}),
            None,
            [],
            id="ephemeral-storage-fits",
        ),
        # Upstream's pod-level cases (PodLevelResources, on by default).
        pytest.param(
            make_pod("p").containers(res(1, 1)).pod_requests({"cpu": "1m", "memory": "2"}),
            existing(5, 5),
            None,
            [],
            id="both-pod-level-and-container-level-resources-fit",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).pod_requests({"cpu": "7m", "memory": "2"}),
            existing(5, 5),
            None,
            [INSUFFICIENT_CPU],
            id="pod-level-cpu-resource-not-fit",
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).pod_requests({"cpu": "3m", "memory": "2"}),
            existing(5, 19),
            None,
            [INSUFFICIENT_MEMORY],
            id="pod-level-memory-resource-not-fit",
        ),
        pytest.param(
            make_pod("p")
            .containers({})
            .pod_requests({"cpu": "3m", "memory": "2", "hugepages-2Mi": "5"}),
            existing(0, 0),
            None,
            [],
            id="pod-level-hugepages-resource-fit",
        ),
        pytest.param(
            make_pod("p")
            .containers(res(1, 1, {"hugepages-2Mi": 3}))
            .pod_requests({"cpu": "3m", "memory": "2", "hugepages-2Mi": "5"}),
            existing(0, 0),
            None,
            [],
            id="both-pod-level-and-container-level-hugepages-resource-fit",
        ),
        pytest.param(
            make_pod("p")
            .containers({})
            .pod_requests({"cpu": "3m", "memory": "2", "hugepages-2Mi": "10"}),
            existing(0, 0),
            None,
            ["Insufficient hugepages-2Mi"],
            id="pod-level-hugepages-resource-not-fit",
        ),
        pytest.param(
            make_pod("p")
            .containers(res(1, 1))
            .pod_requests({"cpu": "3m", "memory": "2"})
            .init_container(res(1, 1)),
            existing(5, 19),
            None,
            [INSUFFICIENT_MEMORY],
            id="one-pod-level-cpu-resource-fits-and-all-init-and-non-init-containers-resources-fit",
        ),
    ],
)
def test_filter(pod: Any, on_node: JSON, args: JSON | None, expected: list[str]) -> None:
    """One node of upstream's makeResources shape with one existing pod."""
    table = build_table([make_node("node").resources(NODE).obj_()], [on_node])
    assert filter_reasons(plugin(args), pod.obj_(), table) == {"node": expected}


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(make_pod("p").containers(), ["Too many pods"], id="no-request"),
        pytest.param(
            make_pod("p").containers(res(1, 1)), ["Too many pods"], id="fits-but-too-many-pods"
        ),
        pytest.param(
            make_pod("p").containers(res(1, 1)).init_container(res(3, 1)),
            [INSUFFICIENT_CPU, "Too many pods"],
            id="too-many-pods-and-insufficient-cpu",
        ),
    ],
)
def test_filter_too_many_pods(pod: Any, expected: list[str]) -> None:
    """A node full of pods (allocatable pods = 1, one pod on it) rejects every pod."""
    node = make_node("node").resources(NODE | {"pods": "1"}).obj_()
    table = build_table([node], [existing(8, 19)])
    assert filter_reasons(plugin(), pod.obj_(), table) == {"node": expected}


def test_filter_unresolvable_only_when_the_node_can_never_fit() -> None:
    """Insufficient X is unresolvable when the request exceeds the whole node, not when it
    exceeds what is free; "Too many pods" is always resolvable (preemption frees a slot)."""
    table = build_table(
        [
            make_node("small").resources({"cpu": "1", "pods": "1"}).obj_(),
            make_node("busy").resources({"cpu": "4", "pods": "10"}).obj_(),
            make_node("fits").resources({"cpu": "4", "pods": "10"}).obj_(),
            make_node("no-pods").resources({"cpu": "4", "pods": "0"}).obj_(),
        ],
        [
            make_pod("a").req(cpu="3").node("busy").obj_(),
            make_pod("b").containers().node("small").obj_(),
        ],
    )
    pod = make_pod("p").req(cpu="2").obj_()
    assert filter_reasons(plugin(), pod, table) == {
        "small": [INSUFFICIENT_CPU, "Too many pods"],
        "busy": [INSUFFICIENT_CPU],
        "fits": [],
        "no-pods": ["Too many pods"],
    }
    assert unresolvable(plugin(), pod, table) == {"small": True, "busy": False, "no-pods": False}


def test_filter_pod_level_hugepages_beyond_the_node_are_unresolvable() -> None:
    """Upstream's "pod-level hugepages resource not fit": UnschedulableAndUnresolvable, since
    the pod-level request is larger than the node's whole allocatable."""
    table = build_table([make_node("node").resources(NODE).obj_()])
    pod = make_pod("p").containers({}).pod_requests({"hugepages-2Mi": "10"}).obj_()
    assert unresolvable(plugin(), pod, table) == {"node": True}


# Upstream's extendedResourceDRA and the DeviceClass that backs it (deviceClassWithExtend-
# ResourceName); NODE does not list it.
EXT_DRA = "extended.resource.dra.io/something"
DRA_CLASS = {"metadata": {"name": "device-class-name"}, "spec": {"extendedResourceName": EXT_DRA}}


def with_classes(*classes: JSON, args: JSON | None = None) -> NodeResourcesFit:
    """The plugin over a handle whose DeviceClass store holds `classes`."""
    store = DeviceClassStore()
    for obj in classes:
        store.apply(obj, deleted=False)
    return node_resources_fit.new(args or {}, in_memory(device_classes=store))


@pytest.mark.parametrize(
    ("fit", "pod", "node", "expected"),
    [
        # Upstream's DRAExtendedResource cases of TestEnoughRequests, on its makeResources node.
        pytest.param(
            with_classes(DRA_CLASS),
            make_pod("p").containers(res(more={EXT_A: 1})),
            NODE,
            [],
            id="extended resource backed by device plugin",
        ),
        pytest.param(
            with_classes(DRA_CLASS),
            make_pod("p").containers(res(1, 1, {EXT_DRA: 1})),
            NODE,
            [],
            id="extended resource backed by DRA",
        ),
        pytest.param(
            plugin(),
            make_pod("p").containers(res(1, 1, {EXT_DRA: 1})),
            NODE,
            [f"Insufficient {EXT_DRA}"],
            # berth: a handle without DeviceClasses (a server without resource.k8s.io/v1)
            # leaves every request to this plugin, as upstream with the gate off.
            id="extended resource backed by DRA not enabled",
        ),
        pytest.param(
            with_classes(DRA_CLASS),
            make_pod("p").containers(res(1, 1, {EXT_B: 1})),
            NODE,
            [f"Insufficient {EXT_B}"],
            id="extended resource NOT backed by DRA",
        ),
        pytest.param(
            with_classes(DRA_CLASS),
            make_pod("p").containers(res(more={EXT_DRA: 1})),
            NODE | {EXT_DRA: "0"},
            [],
            # upstream puts the zero on a pod of the node; berth on the node's allocatable,
            # which is what its shouldDelegateResourceToDRA reads.
            id="extended resource was backed by Device Plugin (Allocatable: 0)",
        ),
        pytest.param(
            with_classes(DRA_CLASS | {"spec": {"extendedResourceName": EXT_A}}),
            make_pod("p").containers(res(more={EXT_A: 6})),
            NODE,
            [f"Insufficient {EXT_A}"],
            id="berth: a backed resource the node lists is checked as before",
        ),
        pytest.param(
            with_classes({"metadata": {"name": "gpu"}}),
            make_pod("p").containers(res(more={"deviceclass.resource.kubernetes.io/gpu": 1})),
            NODE,
            [],
            id="berth: the implicit name of a class",
        ),
        pytest.param(
            with_classes({"metadata": {"name": "gpu"}}),
            make_pod("p").containers(res(more={"deviceclass.resource.kubernetes.io/other": 1})),
            NODE,
            ["Insufficient deviceclass.resource.kubernetes.io/other"],
            id="berth: the implicit name of a class that does not exist",
        ),
        pytest.param(
            with_classes(DRA_CLASS),
            make_pod("p").containers(res(20, 1, {EXT_DRA: 1})),
            NODE,
            [INSUFFICIENT_CPU],
            id="berth: the other requests are still checked",
        ),
    ],
)
def test_filter_dra_extended_resources(
    fit: NodeResourcesFit, pod: Any, node: dict[str, str], expected: list[str]
) -> None:
    """A request a DeviceClass backs is not checked on a node whose allocatable lacks it (or
    has none of it): DynamicResources judges that node. Nodes that list it check it as ever."""
    table = build_table([make_node("node").resources(node).obj_()])
    assert filter_reasons(fit, pod.obj_(), table) == {"node": expected}


def test_filter_dra_extended_resources_without_pre_filter() -> None:
    """Filter finds the backed requests itself when PreFilter did not run."""
    from scheduler.framework import CycleState

    table = build_table([make_node("node").resources(NODE).obj_()])
    pod = compile_pod(make_pod("p").containers(res(more={EXT_DRA: 1})).obj_())
    result = with_classes(DRA_CLASS).filter(CycleState(), pod, table, np.array([0]))
    assert result.mask.tolist() == [True]


def test_pods_with_backed_requests_are_not_row_local() -> None:
    """A pod requesting a backed resource is never served a kept (batched) verdict: it also
    depends on the DeviceClasses. Every other pod still is."""
    fit = with_classes(DRA_CLASS)
    assert not fit.row_local_for(compile_pod(make_pod("p").req(**{EXT_DRA: "1"}).obj_()))
    assert fit.row_local_for(compile_pod(make_pod("p").req(**{EXT_A: "1"}).obj_()))
    assert plugin().row_local_for(compile_pod(make_pod("p").req(**{EXT_DRA: "1"}).obj_()))


@pytest.mark.parametrize(
    ("on_node", "expected"),
    [
        pytest.param(make_pod("e").containers(res(1, 1)), [], id="spec-only"),
        pytest.param(
            make_pod("e").containers(res(1, 1)).container_status("c0", allocated=res(8, 1)),
            [INSUFFICIENT_CPU],
            id="allocated-larger-than-spec-counts",
        ),
        pytest.param(
            make_pod("e").containers(res(1, 1)).container_status("c0", actual=res(8, 1)),
            [INSUFFICIENT_CPU],
            id="actuated-larger-than-spec-counts",
        ),
        pytest.param(
            make_pod("e")
            .containers(res(8, 1))
            .container_status("c0", allocated=res(1, 1), actual=res(1, 1))
            .condition("PodResizePending", "Infeasible"),
            [],
            id="infeasible-resize-counts-what-is-allocated",
        ),
        pytest.param(
            make_pod("e").containers({}).pod_requests({"cpu": "8m", "memory": "1"}),
            [INSUFFICIENT_CPU],
            id="pod-level-requests-of-a-bound-pod-count",
        ),
    ],
)
def test_filter_counts_bound_pods_as_upstream(on_node: Any, expected: list[str]) -> None:
    """A pod on the node counts its effective requests (upstream's NodeInfo): its pod-level
    requests, and during an in-place resize the larger of spec and status (the status alone
    while the resize is infeasible)."""
    table = build_table([make_node("node").resources(NODE).obj_()], [on_node.node("node").obj_()])
    pod = make_pod("p").containers(res(3, 1)).obj_()
    assert filter_reasons(plugin(), pod, table) == {"node": expected}


def test_filter_without_pre_filter() -> None:
    """Filter recomputes the request vector when PreFilter did not run."""
    from scheduler.framework import CycleState
    from scheduler.model import compile_pod
    from tests.unit.tables import rows

    table = build_table([make_node("n").resources({"cpu": "1", "pods": "5"}).obj_()])
    result = plugin().filter(
        CycleState(), compile_pod(make_pod("p").req(cpu="2").obj_()), table, rows(table)
    )
    assert (result.mask.tolist(), [r.message for r in result.reasons]) == (
        [False],
        [INSUFFICIENT_CPU],
    )


# --- Score -----------------------------------------------------------------------------------


def node(name: str, extended: dict[str, str] | None = None, **capacity: str) -> JSON:
    return make_node(name).resources(capacity | (extended or {})).obj_()


def on(node_name: str, *requests: dict[str, str]) -> JSON:
    return make_pod(f"on-{node_name}-{len(requests)}").containers(*requests).node(node_name).obj_()


def existing_pods(*pods: tuple[str, dict[str, str] | None]) -> list[JSON]:
    return [
        make_pod(f"e{i}").containers(*([r] if r is not None else [])).node(n).obj_()
        for i, (n, r) in enumerate(pods)
    ]


POD_1000_2000_2000_3000 = make_pod("p").containers(
    {"cpu": "1000", "memory": "2000"}, {"cpu": "2000", "memory": "3000"}
)
BARE_POD = make_pod("p").containers()
DEFAULT = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
EXTENDED_SET = [*DEFAULT, {"name": "intel.com/foo", "weight": 1}]


def strategy(kind: str, resources: list[JSON], shape: list[JSON] | None = None) -> JSON:
    out: JSON = {"type": kind, "resources": resources}
    if shape is not None:
        out["requestedToCapacityRatio"] = {"shape": shape}
    return {"scoringStrategy": out}


CASES_LEAST = [
    pytest.param(
        BARE_POD,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="4000", memory="10000")],
        [],
        DEFAULT,
        {"node1": 100, "node2": 100},
        id="nothing-scheduled-nothing-requested",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="6000", memory="10000")],
        [],
        DEFAULT,
        {"node1": 37, "node2": 50},
        id="nothing-scheduled-resources-requested-differently-sized-nodes",
    ),
    pytest.param(
        BARE_POD,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="4000", memory="10000")],
        existing_pods(("node1", None), ("node1", None), ("node2", None), ("node2", None)),
        DEFAULT,
        {"node1": 100, "node2": 100},
        id="no-resources-requested-pods-scheduled",
    ),
    pytest.param(
        BARE_POD,
        [node("node1", cpu="10000", memory="20000"), node("node2", cpu="10000", memory="20000")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        {"node1": 70, "node2": 57},
        id="no-resources-requested-pods-scheduled-with-resources",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="10000", memory="20000"), node("node2", cpu="10000", memory="20000")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        {"node1": 57, "node2": 45},
        id="resources-requested-pods-scheduled-with-resources",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="10000", memory="20000"), node("node2", cpu="10000", memory="50000")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        {"node1": 57, "node2": 60},
        id="resources-requested-pods-scheduled-with-resources-differently-sized-nodes",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "3000", "memory": "0"}),
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="4000", memory="10000")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        {"node1": 50, "node2": 25},
        id="requested-resources-exceed-node-capacity",
    ),
    pytest.param(
        BARE_POD,
        [node("node1"), node("node2")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        {"node1": 0, "node2": 0},
        id="zero-node-resources-pods-scheduled-with-resources",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="6000", memory="10000")],
        [],
        [{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}],
        {"node1": 41, "node2": 50},
        id="different-weights-on-cpu-and-memory",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [
            node("node1", cpu="6000", memory="10000"),
            node("node2", {FOO: "4"}, cpu="6000", memory="10000"),
        ],
        [],
        EXTENDED_SET,
        {"node1": 50, "node2": 50},
        id="bypass-extended-resource-the-pod-does-not-request",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "3000", "memory": "5000", "intel.com/foo": "2"}),
        [
            node("node1", {FOO: "4"}, cpu="6000", memory="10000"),
            node("node2", {FOO: "10"}, cpu="6000", memory="10000"),
        ],
        [],
        EXTENDED_SET,
        {"node1": 50, "node2": 60},
        id="honor-extended-resource-the-pod-requests",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "3000", "memory": "4000"}),
        [
            node("node1", cpu="6000", memory="10000"),
            node("node2", {FOO: "4"}, cpu="6000", memory="10000"),
        ],
        [],
        [
            {"name": "intel.com/foo", "weight": 2},
            {"name": "cpu", "weight": 1},
            {"name": "memory", "weight": 1},
        ],
        {"node1": 55, "node2": 55},
        id="node-without-the-resource",
    ),
]


@pytest.mark.parametrize(("pod", "nodes", "pods", "resources", "expected"), CASES_LEAST)
def test_least_allocated(
    pod: Any, nodes: list[JSON], pods: list[JSON], resources: list[JSON], expected: dict[str, int]
) -> None:
    """LeastAllocated: upstream's TestLeastAllocatedScoringStrategy numbers."""
    fit = plugin(strategy("LeastAllocated", resources))
    assert scores(fit, pod.obj_(), build_table(nodes, pods)) == expected


@pytest.mark.parametrize(
    ("pod", "nodes", "pods", "expected"),
    [
        pytest.param(
            make_pod("p")
            .containers({"cpu": "1m", "memory": "1"})
            .pod_requests({"cpu": "3000m", "memory": "5000"}),
            [
                node("node1", cpu="4000m", memory="10000"),
                node("node2", cpu="6000m", memory="10000"),
            ],
            [],
            {"node1": 37, "node2": 50},
            id="pod-level-requests-of-the-pod",
        ),
        pytest.param(
            make_pod("p").containers({"cpu": "1000m", "memory": "1000"}),
            [
                node("node1", cpu="4000m", memory="10000"),
                node("node2", cpu="6000m", memory="10000"),
            ],
            [
                make_pod("e")
                .containers({})
                .pod_requests({"cpu": "2000m", "memory": "4000"})
                .node("node1")
                .obj_()
            ],
            {"node1": 37, "node2": 86},
            id="pod-level-requests-of-a-pod-on-the-node-without-defaults",
        ),
        pytest.param(
            make_pod("p").containers({"memory": "100"}, {}).pod_requests({"cpu": "1000m"}),
            [node("node1", cpu="4000m", memory="1Gi")],
            [],
            {"node1": 77},
            id="pod-level-cpu-and-a-requestless-container-scored-at-the-default-memory",
        ),
    ],
)
def test_least_allocated_pod_level(
    pod: Any, nodes: list[JSON], pods: list[JSON], expected: dict[str, int]
) -> None:
    """Pod-level requests count on both sides of the score: the pod's own (with upstream's
    per-container defaults where the pod level sets nothing) and those of the pods on a node
    (where a default fills only a resource no level requests)."""
    assert scores(plugin(), pod.obj_(), build_table(nodes, pods)) == expected


CASES_MOST = [
    pytest.param(
        BARE_POD,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="4000", memory="10000")],
        [],
        DEFAULT,
        {"node1": 0, "node2": 0},
        id="nothing-scheduled-nothing-requested",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="6000", memory="10000")],
        [],
        DEFAULT,
        {"node1": 62, "node2": 50},
        id="nothing-scheduled-resources-requested-differently-sized-nodes",
    ),
    pytest.param(
        BARE_POD,
        [node("node1", cpu="10000", memory="20000"), node("node2", cpu="10000", memory="20000")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        {"node1": 30, "node2": 42},
        id="no-resources-requested-pods-scheduled-with-resources",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="10000", memory="20000"), node("node2", cpu="10000", memory="20000")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "0"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        {"node1": 42, "node2": 55},
        id="resources-requested-pods-scheduled-with-resources",
    ),
    pytest.param(
        make_pod("p").containers(
            {"cpu": "2000", "memory": "4000"}, {"cpu": "3000", "memory": "5000"}
        ),
        [node("node1", cpu="5000", memory="10000"), node("node2", cpu="10000", memory="9000")],
        [],
        DEFAULT,
        {"node1": 95, "node2": 75},
        id="resources-requested-equal-node-capacity",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="6000", memory="10000")],
        [],
        [{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}],
        {"node1": 58, "node2": 50},
        id="different-weights-on-cpu-and-memory",
    ),
    pytest.param(
        make_pod("p").containers({}),
        [node("node1", cpu="250m", memory="1000Mi"), node("node2", cpu="250m", memory="1000Mi")],
        existing_pods(("node1", {}), ("node1", {})),
        DEFAULT,
        {"node1": 80, "node2": 30},
        id="no-resources-requested-pods-scheduled-nonzero-request-for-resource",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [
            node("node1", cpu="6000", memory="10000"),
            node("node2", {FOO: "4"}, cpu="6000", memory="10000"),
        ],
        [],
        EXTENDED_SET,
        {"node1": 50, "node2": 50},
        id="bypass-extended-resource-the-pod-does-not-request",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "3000", "memory": "5000", "intel.com/foo": "2"}),
        [
            node("node1", {FOO: "4"}, cpu="6000", memory="10000"),
            node("node2", {FOO: "10"}, cpu="6000", memory="10000"),
        ],
        [],
        EXTENDED_SET,
        {"node1": 50, "node2": 40},
        id="honor-extended-resource-the-pod-requests",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "3000", "memory": "4000"}),
        [
            node("node1", cpu="6000", memory="10000"),
            node("node2", {FOO: "4"}, cpu="6000", memory="10000"),
        ],
        [],
        [
            {"name": "intel.com/foo", "weight": 2},
            {"name": "cpu", "weight": 1},
            {"name": "memory", "weight": 1},
        ],
        {"node1": 45, "node2": 45},
        id="node-without-the-resource",
    ),
]


@pytest.mark.parametrize(("pod", "nodes", "pods", "resources", "expected"), CASES_MOST)
def test_most_allocated(
    pod: Any, nodes: list[JSON], pods: list[JSON], resources: list[JSON], expected: dict[str, int]
) -> None:
    """MostAllocated: upstream's TestMostAllocatedScoringStrategy numbers."""
    fit = plugin(strategy("MostAllocated", resources))
    assert scores(fit, pod.obj_(), build_table(nodes, pods)) == expected


FALLING = [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]
RISING = [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 1}]
GPU_WEIGHTS = [{"name": FOO, "weight": 3}, {"name": BAR, "weight": 5}]


def mk(name: str, foo: str, bar: str | None = None) -> JSON:
    """Upstream's makeNode(name, 4000 milli-CPU, 10000Mi, {intel.com/foo, intel.com/bar})."""
    resources = {"cpu": "4000m", "memory": str(10000 * 1024 * 1024), FOO: foo}
    if bar is not None:
        resources[BAR] = bar
    return make_node(name).resources(resources).obj_()


CASES_RATIO = [
    pytest.param(
        BARE_POD,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="4000", memory="10000")],
        existing_pods(("node1", None), ("node1", None)),
        DEFAULT,
        FALLING,
        {"node1": 100, "node2": 100},
        id="nothing-scheduled-nothing-requested",
    ),
    pytest.param(
        POD_1000_2000_2000_3000,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="6000", memory="10000")],
        existing_pods(("node1", None), ("node1", None)),
        DEFAULT,
        FALLING,
        {"node1": 38, "node2": 50},
        id="nothing-scheduled-resources-requested-differently-sized-nodes",
    ),
    pytest.param(
        BARE_POD,
        [node("node1", cpu="4000", memory="10000"), node("node2", cpu="6000", memory="10000")],
        existing_pods(
            ("node1", {"cpu": "3000", "memory": "5000"}),
            ("node2", {"cpu": "3000", "memory": "5000"}),
        ),
        DEFAULT,
        FALLING,
        {"node1": 38, "node2": 50},
        id="no-resources-requested-pods-scheduled-with-resources",
    ),
    # TestResourceBinPackingSingleExtended
    pytest.param(
        BARE_POD,
        [mk("node1", "8"), mk("node2", "4")],
        [],
        [{"name": FOO, "weight": 1}],
        RISING,
        {"node1": 0, "node2": 0},
        id="single-extended-nothing-requested",
    ),
    pytest.param(
        make_pod("p").containers({FOO: "2"}),
        [mk("node1", "8"), mk("node2", "4")],
        existing_pods(("node1", None)),
        [{"name": FOO, "weight": 1}],
        RISING,
        {"node1": 2, "node2": 5},
        id="single-extended-less-resources",
    ),
    pytest.param(
        make_pod("p").containers({FOO: "2"}),
        [mk("node1", "8"), mk("node2", "4")],
        existing_pods(("node2", {FOO: "2"})),
        [{"name": FOO, "weight": 1}],
        RISING,
        {"node1": 2, "node2": 10},
        id="single-extended-existing-pod-running",
    ),
    pytest.param(
        make_pod("p").containers({FOO: "4"}),
        [mk("node1", "8"), mk("node2", "4")],
        [],
        [{"name": FOO, "weight": 1}],
        RISING,
        {"node1": 5, "node2": 10},
        id="single-extended-more-resources",
    ),
    # TestResourceBinPackingMultipleExtended
    pytest.param(
        BARE_POD,
        [mk("node1", "8", "4"), mk("node2", "4", "8")],
        [],
        GPU_WEIGHTS,
        RISING,
        {"node1": 0, "node2": 0},
        id="multiple-extended-nothing-requested",
    ),
    pytest.param(
        make_pod("p").containers({FOO: "2", BAR: "2"}),
        [mk("node1", "8", "4"), mk("node2", "4", "8")],
        [],
        GPU_WEIGHTS,
        RISING,
        {"node1": 4, "node2": 3},
        id="multiple-extended-less-resources",
    ),
    pytest.param(
        make_pod("p").containers({FOO: "2", BAR: "2"}),
        [mk("node1", "8", "4"), mk("node2", "4", "8")],
        existing_pods(("node2", {FOO: "4", BAR: "2"})),
        GPU_WEIGHTS,
        RISING,
        {"node1": 4, "node2": 7},
        id="multiple-extended-existing-pod-running",
    ),
    pytest.param(
        make_pod("p").containers({FOO: "4", BAR: "2"}),
        [mk("node1", "8", "4"), mk("node2", "4", "8")],
        [],
        GPU_WEIGHTS,
        RISING,
        {"node1": 5, "node2": 5},
        id="multiple-extended-more-resources",
    ),
    # Beyond upstream's tables, straight from its scorer code:
    pytest.param(
        make_pod("p").containers({FOO: "1", BAR: "10"}),
        [mk("node1", "20", "20")],
        [],
        GPU_WEIGHTS,
        RISING,
        # foo 5% scores 0 and is left out of the weights: (5 * 5) / 5, not (0 * 3 + 5 * 5) / 8.
        {"node1": 5},
        id="resources-scoring-zero-leave-the-weighted-mean",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "3000", "memory": "4800"}),
        [node("node1", cpu="4000", memory="10000")],
        [],
        DEFAULT,
        FALLING,
        # (25 + 52) / 2 = 38.5: math.Round goes away from zero (39), not to even (38).
        {"node1": 39},
        id="half-rounds-away-from-zero",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "1000"}),
        [node("node1", cpu="10000", memory="10000")],
        [],
        [{"name": "cpu", "weight": 1}],
        [{"utilization": 0, "score": 10}, {"utilization": 30, "score": 0}],
        # 100 + (-100 * 10) / 30: Go truncates -33.3 to -33, giving 67 (a float floor gives 66).
        {"node1": 67},
        id="falling-segment-truncates-toward-zero",
    ),
]


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's TestEventsToRegister with v1.37's default gates (both "Register events with
    InPlacePodVerticalScaling feature enabled" and "... with DRAExtendedResource feature
    enabled" hold): a bound pod deleted or scaled down, a node added or given allocatable, a
    DeviceClass added or changed, the pod itself scaled down; every one with a hint."""
    assert registered(plugin()) == [
        ("AssignedPodDelete", True),
        ("NodeAdd", True),
        ("NodeUpdateNodeAllocatable", True),
        ("resource.k8s.io/DeviceClassAdd", True),
        ("resource.k8s.io/DeviceClassUpdate", True),
        ("AssignedPodUpdatePodScaleDown", True),
        ("TargetPodUpdatePodScaleDown", True),
    ]


def _cpu(value: str) -> dict[str, str]:
    return {"cpu": value}


@pytest.mark.parametrize(
    ("pod", "deleted", "expected"),
    [
        # Upstream's Test_isSchedulableAfterAssignedPodDelete. Not mirrored: the wrong-type
        # case (berth's hints get compiled PodInfos) and the two deferred-resize cases
        # (InPlacePodVerticalScalingSchedulerPreemption is alpha, off in v1.37).
        pytest.param(
            make_pod("pod1").req(cpu="1"),
            make_pod("pod2").req(cpu="1").node("fake"),
            QueueingHint.QUEUE,
            id="queue-on-other-pod-deleted",
        ),
        pytest.param(
            make_pod("pod1"),
            make_pod("pod2"),
            QueueingHint.SKIP,
            id="skip-queue-on-unscheduled-pod-deleted",
        ),
        pytest.param(
            make_pod("pod1").req(cpu="1").uid("uid0"),
            make_pod("pod2").req(cpu="2").nominated("fake").uid("uid1"),
            QueueingHint.QUEUE,
            id="queue-on-nominated-pod-deleted",
        ),
    ],
)
def test_is_schedulable_after_assigned_pod_delete(
    pod: PodBuilder, deleted: PodBuilder, expected: QueueingHint
) -> None:
    """Any bound or nominated pod deleted may leave room; an unscheduled one cannot."""
    assert run_hint(plugin(), "AssignedPodDelete", pod, deleted, None) is expected


@pytest.mark.parametrize(
    "pod",
    [
        # Upstream's Test_isSchedulableAfterTargetPodScaleDown.
        pytest.param(
            make_pod("pod1").uid("pod1").req(cpu="1"),
            id="queue-on-target-pod-some-resource-scale-down",
        ),
        pytest.param(
            make_pod("pod1").uid("pod1").pod_requests(_cpu("1")),
            id="queue-on-target-pod-some-pod-level-resource-scale-down",
        ),
    ],
)
def test_is_schedulable_after_target_pod_scale_down(pod: PodBuilder) -> None:
    """The pod itself asking for less is always worth a retry."""
    assert run_hint(plugin(), "TargetPodUpdatePodScaleDown", pod, pod, pod) is QueueingHint.QUEUE


@pytest.mark.parametrize(
    ("pod", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterAssignedPodScaleDown (default feature gates).
        pytest.param(
            make_pod("pod1").req(cpu="1"),
            make_pod("pod2").req(cpu="2"),
            make_pod("pod2").req(cpu="1"),
            QueueingHint.SKIP,
            id="skip-queue-on-other-unscheduled-pod",
        ),
        pytest.param(
            make_pod("pod1").req(cpu="1"),
            make_pod("pod2").req(memory="2").node("fake"),
            make_pod("pod2").req(memory="1").node("fake"),
            QueueingHint.SKIP,
            id="skip-queue-on-other-pod-unrelated-resource-scaled-down",
        ),
        pytest.param(
            make_pod("pod1").pod_requests(_cpu("1")),
            make_pod("pod2").pod_requests({"memory": "2"}).node("fake"),
            make_pod("pod2").pod_requests({"memory": "1"}).node("fake"),
            QueueingHint.SKIP,
            id="skip-queue-on-other-pod-unrelated-pod-level-resource-scaled-down",
        ),
        pytest.param(
            make_pod("pod1").req(cpu="1"),
            make_pod("pod2").req(cpu="2").node("fake"),
            make_pod("pod2").req(cpu="1").node("fake"),
            QueueingHint.QUEUE,
            id="queue-on-other-pod-some-resource-scale-down",
        ),
        pytest.param(
            make_pod("pod1").pod_requests(_cpu("1")),
            make_pod("pod2").pod_requests(_cpu("2")).node("fake"),
            make_pod("pod2").pod_requests(_cpu("1")).node("fake"),
            QueueingHint.QUEUE,
            id="queue-on-other-pod-some-pod-level-resource-scale-down",
        ),
        pytest.param(
            make_pod("pod1").req(cpu="1"),
            make_pod("pod2").req(cpu="2").container_status("c", allocated=_cpu("2")).node("fake"),
            make_pod("pod2").req(cpu="1").container_status("c", allocated=_cpu("2")).node("fake"),
            QueueingHint.SKIP,
            id="skip-queue-while-the-node-still-holds-the-allocation",
        ),
        pytest.param(
            make_pod("pod1").req(cpu="1"),
            make_pod("pod2").req(cpu="1").container_status("c", allocated=_cpu("2")).node("fake"),
            make_pod("pod2").req(cpu="1").container_status("c", allocated=_cpu("1")).node("fake"),
            QueueingHint.QUEUE,
            id="queue-once-the-resize-is-allocated",
        ),
    ],
)
def test_is_schedulable_after_assigned_pod_scale_down(
    pod: PodBuilder, old: PodBuilder, new: PodBuilder, expected: QueueingHint
) -> None:
    """The hint moves a waiting pod only when the bound pod gave back something it requests."""
    assert run_hint(plugin(), "AssignedPodUpdatePodScaleDown", pod, old, new) is expected


def capacity(resources: dict[str, str]) -> NodeBuilder:
    """Upstream's `MakeNode().Capacity(resources)`: those resources and 32 pods."""
    return make_node("n").resources({"pods": "32", **resources})


def resource_pod(memory: int = 0, more: dict[str, int] | None = None) -> PodBuilder:
    """Upstream's newResourcePod(framework.Resource{Memory: memory, ScalarResources: more})."""
    return make_pod("p").containers(res(0, memory, more))


@pytest.mark.parametrize(
    ("fit", "pod", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterNodeChange (its two wrong-type cases: no
        # counterpart).
        pytest.param(
            plugin(),
            resource_pod(memory=2),
            None,
            capacity({"memory": "1"}),
            QueueingHint.SKIP,
            id="skip-queue-on-node-add-without-sufficient-resources",
        ),
        pytest.param(
            plugin(),
            resource_pod(more={EXT_A: 1}),
            None,
            capacity({EXT_B: "1"}),
            QueueingHint.SKIP,
            id="skip-queue-on-node-add-without-required-resource-type",
        ),
        pytest.param(
            plugin(),
            resource_pod(memory=2, more={EXT_A: 1}),
            None,
            capacity({"memory": "4", EXT_A: "2"}),
            QueueingHint.QUEUE,
            id="queue-on-node-add-with-sufficient-resources",
        ),
        pytest.param(
            plugin(),
            resource_pod(memory=2, more={EXT_A: 1}),
            capacity({"memory": "2", EXT_A: "2"}),
            capacity({"memory": "2", EXT_A: "1", EXT_B: "2"}),
            QueueingHint.SKIP,
            id="skip-queue-on-node-unrelated-changes",
        ),
        pytest.param(
            plugin(),
            resource_pod(memory=2, more={EXT_A: 1}),
            capacity({"memory": "2", EXT_A: "1"}),
            capacity({"memory": "2", EXT_A: "2"}),
            QueueingHint.QUEUE,
            id="queue-on-pod-requested-resources-increase",
        ),
        pytest.param(
            plugin(),
            resource_pod(memory=2, more={EXT_A: 1}),
            capacity({"memory": "4", EXT_A: "2"}),
            capacity({"memory": "1", EXT_A: "2"}),
            QueueingHint.SKIP,
            id="skip-queue-on-node-changes-from-suitable-to-unsuitable",
        ),
        pytest.param(
            plugin(),
            resource_pod(memory=2, more={EXT_A: 1}),
            capacity({"memory": "1", EXT_A: "2"}),
            capacity({"memory": "4", EXT_A: "2"}),
            QueueingHint.QUEUE,
            id="queue-on-node-changes-from-unsuitable-to-suitable",
        ),
        # berth: the pod count, and a request a DeviceClass backs (DynamicResources' to judge
        # on a node that does not list it), as upstream's isFit and
        # haveAnyRequestedResourcesIncreased read them.
        pytest.param(
            plugin(),
            resource_pod(memory=2),
            None,
            make_node("n").resources({"memory": "4"}),
            QueueingHint.SKIP,
            id="skip-queue-on-node-add-without-pods-allocatable",
        ),
        pytest.param(
            plugin(),
            resource_pod(memory=2),
            capacity({"memory": "4"}).capacity(pods="1"),
            capacity({"memory": "4"}),
            QueueingHint.QUEUE,
            id="queue-on-allowed-pod-number-increase",
        ),
        pytest.param(
            with_classes(DRA_CLASS),
            resource_pod(more={EXT_DRA: 1}),
            None,
            capacity({}),
            QueueingHint.QUEUE,
            id="queue-on-node-add-with-dra-backed-request",
        ),
        pytest.param(
            with_classes(DRA_CLASS),
            resource_pod(more={EXT_DRA: 1}),
            capacity({"memory": "1"}),
            capacity({"memory": "2"}),
            QueueingHint.QUEUE,
            id="queue-on-node-update-with-dra-backed-request",
        ),
    ],
)
def test_is_schedulable_after_node_change(
    fit: NodeResourcesFit,
    pod: PodBuilder,
    old: NodeBuilder | None,
    new: NodeBuilder,
    expected: QueueingHint,
) -> None:
    """A node moves the pod when the pod fits it empty and it is new, or now offers more of
    something the pod requests."""
    assert run_hint(fit, "NodeUpdateNodeAllocatable", pod, old, new) is expected


def device_class(name: str = "", extended_resource_name: str | None = None) -> DeviceClass:
    spec = (
        {} if extended_resource_name is None else {"extendedResourceName": extended_resource_name}
    )
    return DeviceClass.compile({"metadata": {"name": name}, "spec": spec})


@pytest.mark.parametrize(
    ("requests", "old", "new", "expected"),
    [
        # Upstream's Test_isSchedulableAfterDeviceClassEvent (its two cases with objects of the
        # wrong type have no counterpart: berth's hints get compiled DeviceClasses, where a
        # "pointer" and its value are one thing).
        pytest.param(
            {"memory": "2"},
            device_class(),
            device_class(),
            QueueingHint.SKIP,
            id="skip-queue-on-class-nil-extended-resource-name-pointer",
        ),
        pytest.param(
            {"memory": "2"},
            device_class(extended_resource_name="example.com/gpu"),
            device_class(extended_resource_name="example.com/gpu"),
            QueueingHint.SKIP,
            id="skip-queue-on-class-same-extended-resource-name-pointer",
        ),
        pytest.param(
            {"memory": "2"},
            device_class(extended_resource_name="example.com/gpu"),
            device_class(extended_resource_name="example.com/gpu"),
            QueueingHint.SKIP,
            id="skip-queue-on-class-same-extended-resource-name",
        ),
        pytest.param(
            {"deviceclass.resource.kubernetes.io/gpuclass": "1"},
            None,
            device_class("gpuclass", "example.com/gpu"),
            QueueingHint.QUEUE,
            id="queue-on-class-add-with-implicit-extended-resource-name",
        ),
        pytest.param(
            {"deviceclass.resource.kubernetes.io/gpuclass": "1"},
            None,
            device_class("myclass", "example.com/gpu"),
            QueueingHint.SKIP,
            id="skip-on-class-add-with-implicit-extended-resource-name-not-matching",
        ),
        pytest.param(
            {"example.com/othergpu": "1"},
            None,
            device_class("myclass", "example.com/gpu"),
            QueueingHint.SKIP,
            id="skip-on-class-add-with-explicit-extended-resource-name-not-matching",
        ),
        pytest.param(
            {"deviceclass.resource.kubernetes.io/gpuclass": "1"},
            device_class("gpuclass"),
            device_class("gpuclass", "example.com/gpu"),
            QueueingHint.SKIP,
            id="skip-on-class-update-with-implicit-extended-resource-name",
        ),
        pytest.param(
            {"example.com/gpu": "1"},
            None,
            device_class(extended_resource_name="example.com/gpu"),
            QueueingHint.QUEUE,
            id="queue-on-class-add-with-extended-resource-name",
        ),
        pytest.param(
            {"example.com/gpu": "1"},
            device_class(extended_resource_name="example.com/gpu1"),
            device_class(extended_resource_name="example.com/gpu"),
            QueueingHint.QUEUE,
            id="queue-on-class-update-with-extended-resource-name",
        ),
    ],
)
def test_is_schedulable_after_device_class_event(
    requests: dict[str, str], old: DeviceClass | None, new: DeviceClass, expected: QueueingHint
) -> None:
    """A class added or changed moves a pod this plugin rejected only when it now backs a
    resource the pod requests (the same hint serves both events, as upstream's one)."""
    pod = make_pod("p").req(**requests)
    label = "resource.k8s.io/DeviceClassAdd" if old is None else "resource.k8s.io/DeviceClassUpdate"
    assert run_hint(plugin(), label, pod, old, new) is expected


@pytest.mark.parametrize(("pod", "nodes", "pods", "resources", "shape", "expected"), CASES_RATIO)
def test_requested_to_capacity_ratio(
    pod: Any,
    nodes: list[JSON],
    pods: list[JSON],
    resources: list[JSON],
    shape: list[JSON],
    expected: dict[str, int],
) -> None:
    """RequestedToCapacityRatio: upstream's TestRequestedToCapacityRatioScoringStrategy and
    TestResourceBinPacking{Single,Multiple}Extended numbers."""
    fit = plugin(strategy("RequestedToCapacityRatio", resources, shape))
    assert scores(fit, pod.obj_(), build_table(nodes, pods)) == expected


@pytest.mark.parametrize(
    ("shape", "points"),
    [
        pytest.param(
            [(10, 1), (90, 9)],
            {-10: 1, 0: 1, 9: 1, 10: 1, 15: 1, 19: 1, 20: 2, 89: 8, 90: 9, 99: 9, 100: 9, 110: 9},
            id="rising",
        ),
        pytest.param(
            [(0, 2), (40, 10), (100, 0)],
            {-10: 2, 0: 2, 20: 6, 30: 8, 40: 10, 70: 5, 100: 0, 110: 0},
            id="up-then-down",
        ),
        pytest.param(
            [(0, 2), (40, 2), (100, 2)],
            {-10: 2, 0: 2, 20: 2, 30: 2, 40: 2, 70: 2, 100: 2, 110: 2},
            id="flat",
        ),
    ],
)
def test_broken_linear_function(shape: list[tuple[int, int]], points: dict[int, int]) -> None:
    """Upstream's TestBrokenLinearFunction assertions."""
    got = _broken_linear(np.asarray(list(points), dtype=np.int64), shape)
    assert dict(zip(points, got.tolist(), strict=True)) == points


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"scoringStrategy": {"type": "Fastest"}}, "scoringStrategy.type", id="unknown-type"
        ),
        pytest.param(
            strategy("LeastAllocated", [{"name": "memory", "weight": -1}]),
            r"scoringStrategy.resources\[0\].weight",
            id="negative-weight",
        ),
        pytest.param(
            strategy("MostAllocated", [{"name": "memory", "weight": 101}]),
            r"scoringStrategy.resources\[0\].weight",
            id="weight-above-100",
        ),
        pytest.param(
            strategy("RequestedToCapacityRatio", DEFAULT, []),
            "requestedToCapacityRatio.shape",
            id="empty-shape",
        ),
        pytest.param(
            strategy("RequestedToCapacityRatio", DEFAULT, [{"utilization": 0, "score": 11}]),
            r"shape\[0\]",
            id="score-above-10",
        ),
        pytest.param(
            strategy(
                "RequestedToCapacityRatio",
                DEFAULT,
                [{"utilization": 50, "score": 1}, {"utilization": 50, "score": 2}],
            ),
            r"shape\[1\].utilization: Invalid value: 50: values must be sorted in increasing order",
            id="utilization-not-increasing",
        ),
    ],
)
def test_bad_args(args: JSON, message: str) -> None:
    """Invalid scoring strategies are refused with the field path (upstream's wantErrs)."""
    with pytest.raises(ValueError, match=message):
        plugin(args)


def test_stray_requested_to_capacity_ratio_is_refused() -> None:
    """requestedToCapacityRatio with another strategy type is refused, as v1.36+ does."""
    args = {
        "scoringStrategy": {
            "type": "LeastAllocated",
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 10}]},
        }
    }
    with pytest.raises(ConfigError) as caught:
        plugin(args)
    assert caught.value.errors == [
        "args.scoringStrategy.requestedToCapacityRatio: Forbidden: must be nil when type is not "
        "RequestedToCapacityRatio"
    ]


def test_zero_weight_means_one() -> None:
    """Upstream's defaults turn a resource weight of 0 (or none) into 1."""
    args = strategy("LeastAllocated", [{"name": "memory"}, {"name": "cpu", "weight": 0}])
    assert plugin(args).args.scoring_strategy.resources == (
        ResourceSpec("memory", 1),
        ResourceSpec("cpu", 1),
    )
