"""NodeResourcesBalancedAllocation: PreScore skip and the scores of upstream's
balanced_allocation_test.go (TestNodeResourcesBalancedAllocation)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from plugins import node_resources_balanced_allocation
from plugins.node_resources_balanced_allocation import BalancedAllocation
from scheduler.framework import Handle
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, scores

JSON = dict[str, Any]
GPU = "nvidia.com/gpu"


def plugin(*resources: str) -> BalancedAllocation:
    args = {"resources": [{"name": r, "weight": 1} for r in resources]} if resources else {}
    return node_resources_balanced_allocation.new(args, cast(Handle, None))


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
            {"node1": 87, "node2": 100},
            id="nothing-scheduled-resources-requested-differently-sized-nodes",
        ),
        pytest.param(
            pod(*CPU_AND_MEMORY),
            [mk("node1", 10000, 20000), mk("node2", 10000, 20000)],
            EXISTING,
            (),
            {"node1": 82, "node2": 95},
            id="resources-requested-pods-scheduled-with-resources",
        ),
        pytest.param(
            pod(*CPU_AND_MEMORY),
            [mk("node1", 10000, 20000), mk("node2", 10000, 50000)],
            EXISTING,
            (),
            {"node1": 82, "node2": 80},
            id="resources-requested-pods-scheduled-with-resources-differently-sized-nodes",
        ),
        pytest.param(
            pod(*CPU_ONLY),
            [mk("node1", 6000, 10000), mk("node2", 6000, 10000)],
            EXISTING,
            (),
            {"node1": 50, "node2": 75},
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
            {"node1": 70, "node2": 65},
            id="include-scalar-resource-on-a-node",
        ),
        pytest.param(
            pod(*CPU_AND_MEMORY),
            [mk("node1", 3500, 40000, gpu=8), mk("node2", 3500, 40000)],
            [],
            ("cpu", "memory", GPU),
            {"node1": 63, "node2": 63},
            id="node-with-a-scalar-the-pod-does-not-request-skips-it",
        ),
        pytest.param(
            pod({"cpu": "1", "memory": "1Gi"}),
            [make_node("empty").resources({}).obj_()],
            [],
            (),
            {"empty": 100},
            id="no-resource-on-the-node-means-no-deviation",
        ),
        pytest.param(
            pod({"cpu": "1", "memory": "1Gi"}),
            [mk("node1", 4000, 2**32)],
            [],
            ("cpu", "pods"),
            {"node1": 100},
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
    """(1 - std of the fractions) * 100, truncated; upstream's cases and numbers."""
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
