"""`berth explain` against a running berth: the per-plugin breakdown of a pending pod, and the
top-scoring nodes of a bound one."""

from __future__ import annotations

import asyncio

from scheduler.kube.client import Client
from tests.builders import make_pod
from tests.e2e.conftest import Running, berth
from tests.e2e.test_engine import bound_to, create, failed_message, node_count


async def explain(running: Running, target: str) -> str:
    result = await asyncio.to_thread(
        berth, "explain", target, "--server", f"http://127.0.0.1:{running.port}"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_pending_pod_shows_message_and_plugin_table(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """The upstream message, then a PLUGIN / REASON / NODES table naming the rejecting
    plugins with their node counts."""
    total = await node_count(client)
    pod = make_pod("stuck").scheduler("berth").node_selector(pool=f"none-{namespace}")
    await create(client, namespace, pod.for_api())
    message = await failed_message(client, namespace, "stuck")
    out = await explain(berth_scheduler, f"{namespace}/stuck")
    lines = out.splitlines()
    assert lines[0].startswith(f"Pod {namespace}/stuck: pending (queue: ")
    assert message in lines
    assert f"Rejected nodes by plugin (of {total} nodes):" in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("PLUGIN"))
    assert lines[header].split() == ["PLUGIN", "REASON", "NODES"]
    row = lines[header + 1]
    assert row.startswith("NodeAffinity ")
    assert "node(s) didn't match Pod's node affinity/selector" in row
    assert row.split()[-1] == str(total)


async def test_bound_pod_shows_top_nodes_with_plugin_scores(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """The node it went to, then the best nodes with the total and each score plugin."""
    await create(client, namespace, make_pod("placed").scheduler("berth").req(cpu="100m").for_api())
    node = await bound_to(client, namespace, "placed")
    out = await explain(berth_scheduler, f"{namespace}/placed")
    lines = out.splitlines()
    assert lines[0] == f"Pod {namespace}/placed: scheduled to {node}"
    header = next(i for i, line in enumerate(lines) if line.startswith("NODE "))
    columns = lines[header].split()
    assert columns[:2] == ["NODE", "TOTAL"]
    assert "NodeResourcesFit" in columns
    rows = [line.split() for line in lines[header + 1 :] if line.strip()]
    assert rows and all(len(r) == len(columns) for r in rows)
    totals = [int(r[1]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    assert node in {r[0] for r in rows if int(r[1]) == totals[0]}


async def test_unknown_pod_and_unreachable_server() -> None:
    """A pod the scheduler never saw is said so (exit 0); no server answers exit 1."""
    result = await asyncio.to_thread(
        berth, "explain", "nowhere/nothing", "--server", "http://127.0.0.1:9"
    )
    assert result.returncode == 1
    assert "cannot reach the scheduler" in result.stderr
