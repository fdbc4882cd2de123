"""Status writes never contradict a binding (issue 12): after a burst in which pods first fail,
then preempt, then bind, every bound pod has PodScheduled=True and no nominatedNodeName.

A failure status or a nomination queued before a pod's Binding used to land after it; the pod
then read as unschedulable for ever, and a cluster-settled wait never ended. It takes a backlog
of writes, as behind a burst of thousands of pods: here, hundreds of pods that fit nowhere fail
just before the preemption burst, and their events and status writes (at the client's default
50 writes a second) queue ahead of those of the preemptors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from scheduler.kube.client import Client
from tests.builders import make_node
from tests.e2e.conftest import Running
from tests.e2e.test_engine import create, extra_nodes, wait_for
from tests.e2e.test_preemption import PodWatch, condition, pod, priority_class

JSON = dict[str, Any]

__all__ = ["extra_nodes", "priority_class"]  # fixtures, imported for pytest

NODES = 2
NODE_CPU = 4  # cores each
LOW_PODS = 80  # 100m each: the nodes are full
HIGH_PODS = 20  # 200m each, preempting: 4 cores, 40 low pods' worth
WAITERS = 20  # 100m each, never preempting: they fail, and bind once the test frees room
FILLER_PODS = 1500  # fit no node: 3,000 writes, a minute of backlog at 50 a second


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


async def pending_writes(port: int) -> float:
    """berth's pod status writes waiting (its berth_pending_async_api_calls gauge)."""
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith('berth_pending_async_api_calls{call_type="pod_status_patch"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def stale_after_binding(seen: list[tuple[str, JSON]]) -> list[str]:
    """Pod versions, in watch order, that follow the pod's binding and yet read
    PodScheduled=False or carry a nomination."""
    bound: set[str] = set()
    stale = []
    for kind, obj in seen:
        name = obj["metadata"]["name"]
        if kind == "DELETED" or not obj["spec"].get("nodeName"):
            continue
        scheduled = condition(obj, "PodScheduled")
        nominated = obj["status"].get("nominatedNodeName")
        if name in bound and ((scheduled and scheduled["status"] != "True") or nominated):
            stale.append(f"{name}: PodScheduled={scheduled and scheduled['status']} {nominated=}")
        bound.add(name)
    return stale


async def test_no_bound_pod_is_left_unschedulable_or_nominated_after_a_preemption_burst(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: Callable[[JSON], Awaitable[None]],
    priority_class: Callable[..., Awaitable[str]],
) -> None:
    """80 low-priority pods fill two nodes; 1,500 pods that fit nowhere fail; then 20
    high-priority pods arrive at once, fail and preempt, and 20 that never preempt fail;
    the test deletes the rest of the low pods, and all 40 bind while the writes of their
    failures still queue. No version of a bound pod reads PodScheduled other than
    True or carries a nomination, and once the writes are done every bound pod reads
    PodScheduled=True without one."""
    for i in range(NODES):
        node = make_node(f"st-{namespace}-{i}").label("pool", namespace)
        await extra_nodes(node.capacity(cpu=str(NODE_CPU), pods="200").obj_())
    low = await priority_class("low", 100)
    high = await priority_class("high", 1000)
    await asyncio.gather(
        *(
            create(client, namespace, pod(f"low-{i}", namespace, "100m", low, tier="low"))
            for i in range(LOW_PODS)
        )
    )

    async def all_low_bound() -> bool:
        items = await pods(client, namespace)
        return sum(1 for p in items if p["spec"].get("nodeName")) == LOW_PODS

    await wait_for(all_low_bound, timeout=180)
    filler = pod("filler", namespace, "100m", low)
    filler["spec"]["nodeSelector"] = {"pool": f"{namespace}-none"}
    mid = await priority_class("mid", 500, "Never")
    port = berth_scheduler.port
    async with PodWatch(client, namespace) as watch:
        await asyncio.gather(
            *(
                create(client, namespace, {**filler, "metadata": {"name": f"filler-{i}"}})
                for i in range(FILLER_PODS)
            )
        )

        # The premise: the fillers' failures have been written only in part. (berth takes
        # pods by priority: created together, the others would go first.)
        async def backlog() -> bool:
            return await pending_writes(port) >= FILLER_PODS * 2 / 3

        await wait_for(backlog, timeout=60)
        burst = [pod(f"high-{i}", namespace, "200m", high) for i in range(HIGH_PODS)]
        burst += [pod(f"waiter-{i}", namespace, "100m", mid) for i in range(WAITERS)]
        await asyncio.gather(*(create(client, namespace, body) for body in burst))

        # Every pod of the burst has failed once (the preemptors preempting); then the test
        # frees the rest of the room while their failures' writes still wait.
        async def all_tried() -> bool:
            async with aiohttp.ClientSession() as session:
                for body in burst:
                    name = body["metadata"]["name"]
                    url = f"http://127.0.0.1:{port}/debug/pods/{namespace}/{name}"
                    async with session.get(url) as resp:
                        if resp.status != 200 or not (await resp.json()).get("attempts"):
                            return False
            return True

        await wait_for(all_tried, timeout=120)
        assert await pending_writes(port) > 0
        await client.request(
            "DELETE",
            f"/api/v1/namespaces/{namespace}/pods",
            params={"labelSelector": "tier=low", "gracePeriodSeconds": 0},
        )

        async def settled() -> list[JSON] | None:
            items = await pods(client, namespace)
            bound = [p for p in items if p["spec"].get("nodeName")]
            return items if len(bound) == HIGH_PODS + WAITERS else None

        try:
            await wait_for(settled, timeout=300)
        except AssertionError:
            items = await pods(client, namespace)
            bound = sum(1 for p in items if p["spec"].get("nodeName"))
            raise AssertionError(f"not settled: {bound} bound") from None

        # Every status write berth queued has been made (or dropped), and seen by the watch.
        async def writes_done() -> bool:
            return await pending_writes(port) == 0

        await wait_for(writes_done, timeout=300)
        await asyncio.sleep(3)
    # No version of a pod, once bound, says otherwise: a stale write would show here even if
    # something (KWOK's kubelet) wrote PodScheduled=True over it later.
    assert stale_after_binding(watch.seen) == []
    items = await pods(client, namespace)
    assert contradictions(items) == []
    # The path under test was taken: bound pods had failed first (and some had preempted).
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
    assert failed_then_bound, "no pod failed before it bound"
    preempted = await client.get(
        f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", fieldSelector="reason=Preempted"
    )
    assert preempted["items"], "no pod was preempted"
