"""Status writes never contradict a binding (issue 12): after a burst in which pods first fail,
then preempt, then bind, every bound pod has PodScheduled=True and no nominatedNodeName.

A failure status or a nomination queued before a pod's Binding used to land after it; the pod
then read as unschedulable for ever, and a cluster-settled wait never ended."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from scheduler.kube.client import Client
from tests.builders import make_node
from tests.e2e.conftest import Running
from tests.e2e.test_engine import create, extra_nodes, wait_for
from tests.e2e.test_preemption import condition, pod, priority_class

JSON = dict[str, Any]

__all__ = ["extra_nodes", "priority_class"]  # fixtures, imported for pytest

NODES = 4
NODE_CPU = 4  # cores each
LOW_PODS = 160  # 100m each: the nodes are full
HIGH_PODS = 120  # 200m each: 80 fit once every low pod is preempted, 40 stay pending


async def pods(client: Client, namespace: str) -> list[JSON]:
    items: list[JSON] = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
    return items


def contradictions(items: list[JSON]) -> list[str]:
    """Bound pods whose status says otherwise: PodScheduled not True, or still nominated."""
    wrong = []
    for item in items:
        if not item["spec"].get("nodeName") or item["metadata"].get("deletionTimestamp"):
            continue
        scheduled = condition(item, "PodScheduled")
        nominated = item["status"].get("nominatedNodeName")
        if scheduled is None or scheduled["status"] != "True" or nominated:
            state = scheduled["status"] if scheduled else None
            wrong.append(f"{item['metadata']['name']}: PodScheduled={state} nominated={nominated}")
    return wrong


async def test_no_bound_pod_is_left_unschedulable_or_nominated_after_a_preemption_burst(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: Callable[[JSON], Awaitable[None]],
    priority_class: Callable[..., Awaitable[str]],
) -> None:
    """160 low-priority pods fill four nodes; 120 high-priority pods then arrive at once,
    fail, preempt and bind (80 of them). Once the cluster settles, every bound pod reads
    PodScheduled=True without a nomination, and stays so."""
    for i in range(NODES):
        node = make_node(f"st-{namespace}-{i}").label("pool", namespace)
        await extra_nodes(node.capacity(cpu=str(NODE_CPU), pods="200").obj_())
    low = await priority_class("low", 100)
    high = await priority_class("high", 1000)
    await asyncio.gather(
        *(
            create(client, namespace, pod(f"low-{i}", namespace, "100m", low))
            for i in range(LOW_PODS)
        )
    )

    async def all_low_bound() -> bool:
        items = await pods(client, namespace)
        return sum(1 for p in items if p["spec"].get("nodeName")) == LOW_PODS

    await wait_for(all_low_bound, timeout=180)
    await asyncio.gather(
        *(
            create(client, namespace, pod(f"high-{i}", namespace, "200m", high))
            for i in range(HIGH_PODS)
        )
    )
    fits = NODES * NODE_CPU * 1000 // 200

    async def settled() -> list[JSON] | None:
        items = await pods(client, namespace)
        bound = [p for p in items if p["spec"].get("nodeName") and p["metadata"]["name"][0] == "h"]
        lows = [p for p in items if p["metadata"]["name"].startswith("low-")]
        return items if len(bound) == fits and not lows and not contradictions(items) else None

    try:
        await wait_for(settled, timeout=300)
    except AssertionError:
        items = await pods(client, namespace)
        bound = sum(1 for p in items if p["spec"].get("nodeName"))
        raise AssertionError(
            f"not settled: {bound} bound; contradictions: {contradictions(items)[:10]}"
        ) from None
    # A stale write would land after the fact: look again once the queues have had time.
    await asyncio.sleep(5)
    items = await pods(client, namespace)
    assert contradictions(items) == []
    # The path under test was taken: bound pods that had failed (and were nominated) first.
    events = await client.get(
        f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
        fieldSelector="reason=FailedScheduling",
    )
    failed = {e["regarding"]["name"] for e in events["items"]}
    failed_then_bound = [
        p["metadata"]["name"]
        for p in items
        if p["spec"].get("nodeName") and p["metadata"]["name"] in failed
    ]
    assert failed_then_bound, "no pod failed before it bound: the burst did not preempt"
