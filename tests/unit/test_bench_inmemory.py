"""`berth bench --in-memory` on small clusters: the real engine places every schedulable pod,
reports the rest, and overcommits no node."""

from __future__ import annotations

import pytest

from scheduler.bench import inmemory, workloads
from scheduler.bench.stats import overcommitted


@pytest.mark.parametrize(
    ("name", "nodes", "pods"),
    [
        pytest.param("basic", 20, 100, id="basic"),
        pytest.param("mixed", 20, 100, id="mixed"),
        pytest.param("service", 20, 100, id="service-default-spreading"),
        pytest.param("basic", 3, 200, id="basic-fills-the-nodes"),
    ],
)
async def test_in_memory_places_pods_without_overcommitting(
    name: str, nodes: int, pods: int
) -> None:
    """Bound + unschedulable covers every pod; the placements fit the nodes."""
    workload = workloads.get(name)
    result = await inmemory.run_once(workload, nodes, pods, timeout=120)
    # basic-fills-the-nodes: 3 nodes of 4 CPU hold 120 pods of 100m; the rest cannot fit.
    fit = min(pods - workload.expected_unschedulable(pods), nodes * 40)
    assert (result.bound, result.unschedulable) == (fit, pods - fit)
    assert len(result.placement) == fit
    assert (
        overcommitted(workload.nodes(nodes), workload.pods(pods, "berth"), result.placement) == {}
    )
    assert result.pods_per_s > 0 and result.us_per_pod > 0
    assert result.peak_rss_mb > 10  # MiB: this Python process with numpy loaded


def test_in_memory_table_has_a_row_per_result() -> None:
    """The printed table: one row per node count, the numbers formatted."""
    row = inmemory.InMemoryResult(
        "basic",
        5000,
        10000,
        10000,
        0,
        2.0,
        5000.0,
        200.0,
        190.0,
        60.0,
        0.3,
        peak_rss_mb=1234.4,
        node_setup_cpu_s=0.25,
    )
    table = inmemory.render_markdown([row])
    assert "| node setup s | node setup CPU s | peak RSS MB |" in table
    assert (
        "| basic | 5,000 | 10,000 | 10,000 | 0 | 2.000 | 5,000 | 200.0 | 190.0 | 60.0 | 0.30 "
        "| 0.25 | 1,234 |" in table
    )
    assert "placement" not in row.to_json()
