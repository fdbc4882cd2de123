"""Benchmark workloads: deterministic, valid objects, the advertised mix, and room for the
schedulable pods."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from scheduler.bench import command, inmemory, workloads
from scheduler.bench.runner import Tracker
from scheduler.bench.stats import overcommitted
from scheduler.harness.nodes import ZONE
from scheduler.model import NodeInfo, PodInfo, compile_node, compile_pod, requirement_matches

JSON = dict[str, Any]


def _group(pod: JSON) -> str:
    group: str = pod["metadata"]["labels"][f"{workloads.PREFIX}/group"]
    return group


def test_cli_knows_every_workload() -> None:
    """The CLI's light copy of the names matches the registry."""
    assert set(command.WORKLOAD_NAMES) == set(workloads.WORKLOADS)


def test_unknown_workload_names_the_known_ones() -> None:
    """get() of an unknown name says which names exist."""
    with pytest.raises(KeyError, match="basic, service, mixed, spread, affinity, preemption"):
        workloads.get("nope")


@pytest.mark.parametrize("name", sorted(workloads.WORKLOADS))
def test_generation_is_deterministic(name: str) -> None:
    """The same arguments give the same objects, so a run can be checked from placements."""
    w = workloads.get(name)
    assert w.nodes(30) == w.nodes(30)
    assert w.pods(60, "berth") == w.pods(60, "berth")
    # Taken a page at a time (the in-memory bench loads a million nodes so), the same nodes.
    assert w.nodes(12) + w.nodes(11, first=13) + w.nodes(7, first=24) == w.nodes(30)


@pytest.mark.parametrize("name", sorted(workloads.WORKLOADS))
def test_objects_compile_and_carry_the_scheduler_name(name: str) -> None:
    """Every node and pod compiles with berth's model; pods name the scheduler, pod-000001..."""
    w = workloads.get(name)
    for node in w.nodes(25):
        compile_node(node)
    pods = w.pods(40, "bench-null")
    assert [p["metadata"]["name"] for p in pods[:2]] == ["pod-000001", "pod-000002"]
    for pod in pods:
        info = compile_pod({**pod, "metadata": {**pod["metadata"], "uid": "u"}})
        assert info.scheduler_name == "bench-null"
        assert "namespace" not in pod["metadata"]


def test_basic_is_upstream_scheduling_basic() -> None:
    """Upstream's node-default (4 CPU, 32Gi, 110 pods) and pod-default (100m, 500Mi)."""
    w = workloads.get("basic")
    node = compile_node(w.nodes(1)[0])
    assert node.allocatable == {"cpu": 4000, "memory": 32 * 2**30, "pods": 110}
    pods = w.pods(5, "berth")
    assert {str(p["spec"]["containers"][0]["resources"]["requests"]) for p in pods} == {
        str({"cpu": "100m", "memory": "500Mi"})
    }
    assert w.expected_unschedulable(1000) == 0


@pytest.mark.parametrize(
    ("zones", "expected"),
    [
        pytest.param(1, {"zone-0": 9}, id="one-zone"),
        pytest.param(3, {"zone-0": 3, "zone-1": 3, "zone-2": 3}, id="three-zones"),
    ],
)
def test_nodes_are_dealt_over_zones(zones: int, expected: dict[str, int]) -> None:
    """Zones are dealt round-robin, as the harness does."""
    nodes = workloads.get("basic", zones).nodes(9)
    assert Counter(n["metadata"]["labels"][ZONE] for n in nodes) == expected


def test_mixed_has_the_advertised_mix() -> None:
    """Every 20 pods: 8 default, 3 ssd, 3 zonal, 2 batch, 2 large, 2 too big (10%)."""
    w = workloads.get("mixed")
    pods = w.pods(200, "berth")
    assert Counter(_group(p) for p in pods) == {
        "default": 80,
        "ssd": 30,
        "zonal": 30,
        "batch": 20,
        "large": 20,
        "too-big": 20,
    }
    assert w.expected_unschedulable(200) == 20
    # Interleaved: the first slots cycle through every group.
    assert [_group(p) for p in pods[:6]] == ["default", "ssd", "zonal", "batch", "large", "too-big"]


def test_mixed_constraints_are_in_the_pod_specs() -> None:
    """Selectors, node affinity and tolerations appear where the groups say."""
    by_group = {_group(p): p["spec"] for p in workloads.get("mixed").pods(20, "berth")}
    assert by_group["ssd"]["nodeSelector"] == {workloads.DISK: "ssd"}
    assert by_group["batch"]["nodeSelector"] == {workloads.POOL: "batch"}
    assert by_group["batch"]["tolerations"][0]["key"] == workloads.DEDICATED
    affinity = by_group["zonal"]["affinity"]["nodeAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 10
    assert by_group["too-big"]["containers"][0]["resources"]["requests"]["cpu"] == "9"


def test_mixed_node_pools() -> None:
    """Per ten nodes: one tainted batch node, two large, three ssd, four default."""
    nodes = workloads.get("mixed").nodes(20)
    pools: Counter[str] = Counter()
    for node in nodes:
        info = compile_node(node)
        if info.taints:
            assert info.labels[workloads.POOL] == "batch"
            pools["batch"] += 1
        elif info.labels.get(workloads.SIZE) == "large":
            assert info.allocatable["cpu"] == 8000
            pools["large"] += 1
        elif info.labels.get(workloads.DISK) == "ssd":
            pools["ssd"] += 1
        else:
            pools["default"] += 1
    assert pools == {"batch": 2, "large": 4, "ssd": 6, "default": 8}


@pytest.mark.parametrize(
    ("name", "nodes", "pods"),
    [
        pytest.param("basic", 20, 100, id="basic-e2e-size"),
        pytest.param("mixed", 20, 100, id="mixed-e2e-size"),
        pytest.param("mixed", 100, 400, id="mixed-4-pods-per-node"),
    ],
)
def test_schedulable_pods_fit_somewhere(name: str, nodes: int, pods: int) -> None:
    """A first-fit placement honouring selectors, affinity and taints places every
    schedulable pod without overcommitting a node: the workload is feasible by construction."""
    w = workloads.get(name)
    node_objs = w.nodes(nodes)
    infos = [compile_node(n) for n in node_objs]
    free = {i.name: dict(i.allocatable) for i in infos}
    placement: dict[str, str] = {}
    for pod in w.pods(pods, "berth"):
        info = compile_pod({**pod, "metadata": {**pod["metadata"], "uid": "u"}})
        for node in infos:
            if not _admits(node, info) or any(
                free[node.name].get(r, 0) < a for r, a in info.requests.items()
            ):
                continue
            for r, a in info.requests.items():
                free[node.name][r] -= a
            placement[pod["metadata"]["name"]] = node.name
            break
    assert len(placement) == pods - w.expected_unschedulable(pods)
    assert overcommitted(node_objs, w.pods(pods, "berth"), placement) == {}


def _admits(node: NodeInfo, pod: PodInfo) -> bool:
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    for taint in node.taints:
        if not any(t.tolerates(taint) for t in pod.tolerations):
            return False
    if pod.required_terms:
        return any(
            all(requirement_matches(r, node.labels.get(r.key)) for r in term.expressions)
            for term in pod.required_terms
        )
    return True


# --- workloads that start from pods on the nodes (spread, affinity, preemption) ---------------


def _compile(pod: JSON, namespace: str = "bench") -> PodInfo:
    meta = {**pod["metadata"], "uid": f"uid-{pod['metadata']['name']}", "namespace": namespace}
    return compile_pod({**pod, "metadata": meta})


def _names(count: int) -> list[str]:
    return [f"n{i}" for i in range(1, count + 1)]


@pytest.mark.parametrize(
    ("name", "per_node", "classes"),
    [
        pytest.param("basic", [0], [], id="basic-none"),
        pytest.param("mixed", [0], [], id="mixed-none"),
        pytest.param("spread", [2], [], id="spread-two-plain"),
        pytest.param("affinity", [1], [], id="affinity-one"),
        pytest.param("preemption", [8], ["bench-high", "bench-low"], id="preemption-eight-low"),
    ],
)
def test_init_pods_are_bound_and_classes_listed(
    name: str, per_node: list[int], classes: list[str]
) -> None:
    """Init pods are bound to the given nodes (spec.nodeName), named init-000001...,
    deterministic, and compile; the PriorityClasses their pods name are listed."""
    w = workloads.get(name)
    pods = w.init_pods(_names(10), "ns")
    assert pods == w.init_pods(_names(10), "ns")
    assert sorted(set(Counter(p["spec"]["nodeName"] for p in pods).values()) or [0]) == per_node
    if pods:
        assert pods[0]["metadata"]["name"] == "init-000001"
        assert len({p["metadata"]["name"] for p in pods}) == len(pods)
    for pod in pods:
        _compile(pod, workloads.init_namespace("ns"))
    assert [c["metadata"]["name"] for c in w.priority_classes()] == classes
    for pc in w.priority_classes():
        assert pc["value"] == workloads.PRIORITY_CLASSES[pc["metadata"]["name"]]


def test_spread_is_upstream_topology_spreading() -> None:
    """pod-with-topology-spreading: zone constraint, maxSkew 5, DoNotSchedule, over the
    pods' own label, which the plain init pods do not carry."""
    w = workloads.get("spread")
    pod = w.pods(1, "berth")[0]
    (constraint,) = pod["spec"]["topologySpreadConstraints"]
    assert constraint == {
        "maxSkew": 5,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"color": "blue"}},
    }
    assert pod["metadata"]["labels"]["color"] == "blue"
    assert all("color" not in p["metadata"]["labels"] for p in w.init_pods(_names(3)))
    assert _compile(pod).requests["cpu"] == 100


def test_affinity_terms_name_both_namespaces() -> None:
    """3 in 4 pods prefer, 1 in 4 require anti-affinity per hostname to their own kind, in
    the measured namespace and the init one (upstream's `namespaces: [...]`)."""
    w = workloads.get("affinity")
    pods = w.pods(8, "berth", "run-1")
    assert Counter(_group(p) for p in pods) == {"preferred": 6, "required": 2}
    by_group = {_group(p): p["spec"]["affinity"]["podAntiAffinity"] for p in pods}
    (weighted,) = by_group["preferred"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert weighted["weight"] == 1
    assert weighted["podAffinityTerm"] == {
        "labelSelector": {"matchLabels": {"color": "yellow"}},
        "topologyKey": "kubernetes.io/hostname",
        "namespaces": ["run-1", "run-1-init"],
    }
    (term,) = by_group["required"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"] == {"matchLabels": {"color": "green"}}
    assert term["namespaces"] == ["run-1", "run-1-init"]
    info = _compile(pods[1], "run-1")
    assert info.pod_affinity is not None and info.pod_affinity.required_anti


def test_affinity_init_pods_and_limit() -> None:
    """One init pod per node, of the required kind on every fifth node; so the required
    kind fits on the other four fifths and no more."""
    w = workloads.get("affinity")
    kinds = [_group(p) for p in w.init_pods(_names(10))]
    assert kinds == ["preferred"] * 4 + ["required"] + ["preferred"] * 4 + ["required"]
    # 40 pods: 10 of the required kind; 10 nodes leave room for 8 of them.
    assert w.expected_unschedulable(40, nodes=10) == 2
    assert w.expected_unschedulable(40, nodes=20) == 0
    assert w.expected_unschedulable(40) == 0


def test_preemption_needs_four_victims_per_pod() -> None:
    """Eight 450m low-priority pods fill 90% of a 4-CPU node; a 1800m high-priority pod fits
    only after four of them go, and two such pods fit per node."""
    w = workloads.get("preemption")
    node = compile_node(w.nodes(1)[0])
    low = [_compile(p, "bench-init") for p in w.init_pods(["node-00001"])]
    high = _compile(w.pods(1, "berth")[0])
    assert {p.priority for p in low} == {0} and high.priority == 10
    assert {p.raw["spec"]["priorityClassName"] for p in low} == {"bench-low"}
    assert high.raw["spec"]["priorityClassName"] == "bench-high"
    cpu = node.allocatable["cpu"]
    used = sum(p.requests["cpu"] for p in low)
    assert used == 3600 and cpu - used < high.requests["cpu"]
    keep = (cpu - high.requests["cpu"]) // low[0].requests["cpu"]
    assert len(low) - keep == 4
    assert 2 * high.requests["cpu"] <= cpu < 3 * high.requests["cpu"]
    assert w.expected_unschedulable(2000, nodes=1000) == 0
    assert w.expected_unschedulable(2001, nodes=1000) == 1


@pytest.mark.parametrize(
    ("name", "nodes", "pods"),
    [
        pytest.param("spread", 12, 60, id="spread"),
        pytest.param("affinity", 10, 30, id="affinity"),
    ],
)
def test_init_pods_leave_room_for_the_measured_ones(name: str, nodes: int, pods: int) -> None:
    """The init pods and then the measured pods fit without overcommitting a node."""
    w = workloads.get(name)
    node_objs = w.nodes(nodes)
    names = [n["metadata"]["name"] for n in node_objs]
    init = w.init_pods(names)
    placement = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in init}
    measured = w.pods(pods, "berth")
    for i, pod in enumerate(measured):
        placement[pod["metadata"]["name"]] = names[i % nodes]
    assert overcommitted(node_objs, init + measured, placement) == {}


def test_tracker_waits_for_nominated_pods() -> None:
    """A pod that failed its attempt but was nominated by preemption is waiting for its
    victims, not settled; if the nomination is cleared it counts as unschedulable again."""
    tracker = Tracker(lambda: 0.0)
    tracker.start()
    failed = {
        "metadata": {"name": "a"},
        "spec": {},
        "status": {
            "nominatedNodeName": "n1",
            "conditions": [{"type": "PodScheduled", "status": "False"}],
        },
    }
    tracker.on_event("ADDED", {"reason": "FailedScheduling", "regarding": {"name": "a"}}, None)
    assert tracker.settled(1)  # the event came first: nothing says it is nominated yet
    tracker.on_pod("MODIFIED", failed, None)
    assert not tracker.settled(1) and tracker.left_unschedulable == set()
    tracker.on_pod(
        "MODIFIED", {**failed, "status": {"conditions": failed["status"]["conditions"]}}, None
    )
    assert tracker.settled(1) and tracker.left_unschedulable == {"a"}
    tracker.on_pod("MODIFIED", {**failed, "spec": {"nodeName": "n1"}}, None)
    assert tracker.settled(1) and tracker.left_unschedulable == set()


@pytest.mark.parametrize(
    ("name", "nodes", "pods", "preempted"),
    [
        pytest.param("spread", 9, 60, 0, id="spread"),
        pytest.param("affinity", 10, 30, 0, id="affinity"),
        pytest.param("preemption", 6, 12, 48, id="preemption-two-per-node"),
    ],
)
async def test_in_memory_engine_runs_the_workload(
    name: str, nodes: int, pods: int, preempted: int
) -> None:
    """The real engine on the init pods: every measured pod is placed (by preemption where
    needed, four victims each), and the placements honour the workload's hard rules."""
    w = workloads.get(name)
    result = await inmemory.run_once(w, nodes, pods, timeout=120)
    assert (result.bound, result.unschedulable, result.preempted) == (pods, 0, preempted)
    by_node = Counter(result.placement.values())
    if name == "preemption":
        assert set(by_node.values()) == {2}
    if name == "affinity":
        required = {p["metadata"]["name"] for p in w.pods(pods, "x") if _group(p) == "required"}
        taken = {
            p["spec"]["nodeName"]
            for p in w.init_pods([n["metadata"]["name"] for n in w.nodes(nodes)])
            if _group(p) == "required"
        }
        nodes_of_required = [result.placement[p] for p in required]
        assert len(set(nodes_of_required)) == len(nodes_of_required)
        assert not set(nodes_of_required) & taken
    if name == "spread":
        zones = {n["metadata"]["name"]: n["metadata"]["labels"][ZONE] for n in w.nodes(nodes)}
        per_zone = Counter(zones[node] for node in result.placement.values())
        assert max(per_zone.values()) - min(per_zone.values()) <= 5


def test_service_workload_selects_its_pods_so_default_spreading_applies() -> None:
    """Every pod of `service` is selected by the workload's Service (the default spread
    constraints' selector), and the other workloads create none."""
    workload = workloads.get("service")
    (service,) = workload.service_objects()
    selector = service["spec"]["selector"]
    for pod in workload.pods(20, "berth"):
        labels = pod["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in selector.items())
        assert "topologySpreadConstraints" not in pod["spec"]
    assert not workloads.get("basic").service_objects()
