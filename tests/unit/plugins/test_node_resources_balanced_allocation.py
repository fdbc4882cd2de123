"""NodeResourcesBalancedAllocation: PreScore skip and the scores of upstream v1.37's
balanced_allocation_test.go (TestNodeResourcesBalancedAllocation); its two DRA extended
resource cases wait for DRA-backed extended resources (docs/compat.md row 39)."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import node_resources_balanced_allocation
from plugins.node_resources_balanced_allocation import BalancedAllocation
from scheduler.handle import in_memory
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, scores

JSON = dict[str, Any]
GPU = "nvidia.com/gpu"


def plugin(*resources: str) -> BalancedAllocation:
    args = {"resources": [{"name": r, "weight": 1} for r in resources]} if resources else {}
    return node_resources_balanced_allocation.new(args, in_memory())


def mk(name: str, milli_cpu: int, memory: int, gpu: int | None = None) -> JSON:
    """Upstream's makeNode(name, milliCPU, memory, scalar resources)."""
    resources = {"cpu": f"{milli_cpu}m", "memory": str(memory)}
    if gpu is not None:
        resources[GPU] = str(gpu)
    return make_node(name).resources(resources).obj_()


# Upstream's pod specs: two containers each.
CPU_AND_MEMORY = [{"cpu": "1000m", "memory": "2000"}, {"cpu": "2000m", "memory": "3000"}]
CPU_ONLY = [{"cpu": "1000m", "memory": "0"}, {"cpu": "2000m", "memory": "0"}]
CPU_MEMORY_GPU = [{"cpu": "1000m", "memory": "2000"}, {"cpu": "2000m", "memory": "3000", GPU: "3"}]


def pod(*containers: dict[str, str]) -> JSON:
    return make_pod("p").containers(*containers).obj_()


def placed(name: str, node: str, containers: list[dict[str, str]]) -> JSON:
    return make_pod(name).containers(*containers).node(node).obj_()


EXISTING = [
    placed("cpu-only", "node1", CPU_ONLY),
    placed("cpu-and-memory", "node2", CPU_AND_MEMORY),
]


@pytest.mark.parametrize(
    ("incoming", "nodes", "existing", "resources", "expected"),
    [
        pytest.param(
            pod(*CPU_AND_MEMORY),
            [mk("node1", 4000, 10000), mk("node2", 6000, 10000)],
            [],
            (),
            # node1: balance 100 -> 87; node2: 100 -> 100.
            {"node1": 68, "node2": 75},
            id="nothing-scheduled-resources-requested-differently-sized-nodes",
        ),
        pytest.param(
            pod(*CPU_AND_MEMORY),
            [mk("node1", 10000, 20000), mk("node2", 10000, 20000)],
            EXISTING,
            (),
            # node1: 85 -> 82; node2: 97 -> 95.
            {"node1": 73, "node2": 74},
            id="resources-requested-pods-scheduled-with-resources",
        ),
        pytest.param(
            pod(*CPU_AND_MEMORY),
            [mk("node1", 10000, 20000), mk("node2", 10000, 50000)],
            EXISTING,
            (),
            # node1: 85 -> 82; node2: 90 -> 80.
            {"node1": 73, "node2": 70},
            id="resources-requested-pods-scheduled-with-resources-differently-sized-nodes",
        ),
        pytest.param(
            pod({"memory": "2000"}, {"memory": "3000"}),
            [mk("node1", 3000, 5000), mk("node2", 3000, 5000)],
            [placed("cpu-only", "node1", CPU_ONLY)],
            (),
            # node1: 50 -> 100 (the pod fills the idle memory); node2: 100 -> 50.
            {"node1": 100, "node2": 50},
            id="resources-requested-pods-scheduled-with-resources-nodes-to-reach-min-max-score",
        ),
        pytest.param(
            pod(*CPU_ONLY),
            [mk("node1", 6000, 10000), mk("node2", 6000, 10000)],
            EXISTING,
            (),
            # node1: 75 -> 50; node2: 100 -> 75.
            {"node1": 62, "node2": 62},
            id="requested-resources-at-node-capacity",
        ),
        pytest.param(
            pod({"memory": "0", GPU: "1"}),
            [mk("node1", 3500, 40000, gpu=8), mk("node2", 3500, 40000, gpu=8)],
            [
                placed("cpu-and-memory", "node2", CPU_AND_MEMORY),
                placed("cpu-memory-gpu", "node1", CPU_MEMORY_GPU),
            ],
            ("cpu", "memory", GPU),
            # node1: 69 -> 70; node2: 62 -> 65.
            {"node1": 75, "node2": 76},
            id="include-scalar-resource-on-a-node",
        ),
        pytest.param(
            pod(*CPU_AND_MEMORY),
            [mk("node1", 3500, 40000, gpu=8), mk("node2", 3500, 40000)],
            [],
            ("cpu", "memory", GPU),
            # Both: 100 -> 63.
            {"node1": 56, "node2": 56},
            id="node-with-a-scalar-the-pod-does-not-request-skips-it",
        ),
        pytest.param(
            pod({"cpu": "1", "memory": "1Gi"}),
            [make_node("empty").resources({}).obj_()],
            [],
            (),
            # No fraction with or without the pod: no change in balance.
            {"empty": 75},
            id="no-resource-on-the-node-means-no-deviation",
        ),
        pytest.param(
            pod({"cpu": "1", "memory": "1Gi"}),
            [mk("node1", 4000, 2**32)],
            [],
            ("cpu", "pods"),
            {"node1": 75},
            id="pods-is-not-scored",
        ),
    ],
)
def test_score(
    incoming: JSON,
    nodes: list[JSON],
    existing: list[JSON],
    resources: tuple[str, ...],
    expected: dict[str, int],
) -> None:
    """50 + (50 + balance with the pod - balance without it) / 2, each balance
    (1 - std of the fractions) * 100 truncated; upstream v1.37's cases and numbers."""
    assert scores(plugin(*resources), incoming, build_table(nodes, existing)) == expected


@pytest.mark.parametrize(
    ("incoming", "resources", "skipped"),
    [
        pytest.param(pod(), (), True, id="no-containers"),
        pytest.param(pod({}), (), True, id="best-effort-container"),
        pytest.param(pod({"cpu": "0", "memory": "0"}), (), True, id="explicit-zero-requests"),
        pytest.param(pod({"example.com/x": "1"}), (), True, id="only-unscored-resources"),
        pytest.param(pod({"cpu": "1m"}), (), False, id="cpu-request"),
        pytest.param(pod({GPU: "1"}), ("cpu", "memory", GPU), False, id="configured-scalar"),
        pytest.param(pod({}), ("cpu", "pods"), True, id="pods-does-not-count-as-a-request"),
    ],
)
def test_pre_score_skips_best_effort_pods(
    incoming: JSON, resources: tuple[str, ...], skipped: bool
) -> None:
    """PreScore returns Skip when the pod requests none of the scored resources."""
    table = build_table([mk("node1", 4000, 10000, gpu=4)])
    assert (scores(plugin(*resources), incoming, table) is None) is skipped


@pytest.mark.parametrize(
    ("incoming", "existing", "expected"),
    [
        pytest.param(
            make_pod("p").containers({}).pod_requests({"cpu": "2000m", "memory": "2000"}).obj_(),
            [],
            # Balance 100 -> 87.
            {"node1": 68},
            id="pod-level-requests-of-the-pod",
        ),
        pytest.param(
            pod({"cpu": "1000m", "memory": "1000"}),
            [
                make_pod("e")
                .containers({})
                .pod_requests({"cpu": "1000m", "memory": "3000"})
                .node("node1")
                .obj_()
            ],
            # Balance 93 -> 100.
            {"node1": 78},
            id="pod-level-requests-of-a-pod-on-the-node",
        ),
        pytest.param(
            pod({"cpu": "1000m", "memory": "1000"}),
            [
                make_pod("e")
                .containers({"cpu": "1000m", "memory": "1000"})
                .container_status("c0", allocated={"cpu": "3000m", "memory": "1000"})
                .node("node1")
                .obj_()
            ],
            # Balance 68 -> 62.
            {"node1": 72},
            id="resize-down-not-yet-allocated-counts-the-allocation",
        ),
    ],
)
def test_score_effective_requests(
    incoming: JSON, existing: list[JSON], expected: dict[str, int]
) -> None:
    """The fractions use effective requests: pod-level requests (the pod's own and those of
    the pods on the node), and the larger of spec and status for a pod being resized."""
    assert scores(plugin(), incoming, build_table([mk("node1", 4000, 8000)], existing)) == expected
