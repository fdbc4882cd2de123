"""Pod fields that change where a pod fits, end to end: pod-level requests (PodLevelResources)
and an in-place resize of a bound pod (InPlacePodVerticalScaling).

No kubelet runs here: KWOK marks bound pods Running but never acts on a resize, so the tests
write the container status a kubelet would report (allocatedResources, resources) themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from scheduler.kube.client import Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Running
from tests.e2e.test_engine import (
    NOT_HELPFUL,
    bound_to,
    create,
    extra_nodes,
    failed_message,
    get_pod,
    node_count,
    wait_for,
)
from tests.e2e.test_explain import explain

JSON = dict[str, Any]
AddNode = Callable[[JSON], Awaitable[None]]

__all__ = ["extra_nodes"]  # a fixture, imported for its side effect on pytest


async def test_pod_level_requests_decide_where_the_pod_fits(
    berth_scheduler: Running, client: Client, namespace: str, extra_nodes: AddNode
) -> None:
    """The containers' 200m fit both nodes of the pool, and the one with more free memory
    would score best for them, but the pod-level 3 cpu fit only the node with 4 cpu; 5 cpu fit
    neither, and `berth explain` shows the pod-level figure."""
    small, large = f"small-{namespace}", f"large-{namespace}"
    for name, cpu, memory in ((small, "2", "64Gi"), (large, "4", "4Gi")):
        await extra_nodes(
            make_node(name).label("pool", namespace).capacity(cpu=cpu, memory=memory).obj_()
        )
    total = await node_count(client)

    def pod(name: str, cpu: str) -> JSON:
        return (
            make_pod(name)
            .scheduler("berth")
            .node_selector(pool=namespace)
            .containers({"cpu": "100m", "memory": "1Gi"}, {"cpu": "100m", "memory": "1Gi"})
            .pod_requests({"cpu": cpu})
            .for_api()
        )

    await create(client, namespace, pod("three", "3"))
    assert await bound_to(client, namespace, "three") == large

    await create(client, namespace, pod("five", "5"))
    message = await failed_message(client, namespace, "five")
    reasons = sorted(
        ["2 Insufficient cpu", f"{total - 2} node(s) didn't match Pod's node affinity/selector"]
    )
    assert message == (
        f"0/{total} nodes are available: {', '.join(reasons)}."
        f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
    )
    out = await explain(berth_scheduler, f"{namespace}/five")
    assert "Effective requests: cpu 5, memory 2Gi" in out.splitlines()


async def _report_resources(client: Client, namespace: str, name: str, cpu: str) -> None:
    """Write what a kubelet reports once it has allocated and actuated `cpu` for the pod's
    container: allocatedResources and resources.requests in its container status."""

    async def running() -> JSON | None:
        pod = await get_pod(client, namespace, name)
        statuses = pod["status"].get("containerStatuses")
        return pod if pod["status"].get("phase") == "Running" and statuses else None

    pod = await wait_for(running)  # KWOK has written its status: ours goes on top of it
    statuses = pod["status"]["containerStatuses"]
    for status in statuses:
        status["allocatedResources"] = {"cpu": cpu}
        status["resources"] = {"requests": {"cpu": cpu}}
    await client.patch(
        f"/api/v1/namespaces/{namespace}/pods/{name}/status",
        {"status": {"containerStatuses": statuses}},
        kind="merge",
    )


async def test_scale_down_in_place_moves_the_pod_waiting_for_room(
    berth_scheduler: Running, client: Client, namespace: str, extra_nodes: AddNode
) -> None:
    """A node filled by a pod that is resized down through pods/resize: the waiting pod stays
    out while the node still holds the old allocation (the larger of spec and status counts),
    and is bound as soon as the status shows the resize applied (the scale-down moves it, with
    no other event and long before the 5-minute flush)."""
    node = f"resize-{namespace}"
    await extra_nodes(make_node(node).label("pool", namespace).capacity(cpu="2").obj_())
    big = make_pod("big").scheduler("berth").node_selector(pool=namespace).req(cpu="1500m")
    await create(client, namespace, big.for_api())
    assert await bound_to(client, namespace, "big") == node
    await _report_resources(client, namespace, "big", "1500m")

    waiting = make_pod("waiting").scheduler("berth").node_selector(pool=namespace).req(cpu="1")
    await create(client, namespace, waiting.for_api())
    assert "1 Insufficient cpu" in await failed_message(client, namespace, "waiting")

    await client.patch(
        f"/api/v1/namespaces/{namespace}/pods/big/resize",
        {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}},
    )
    resized = await get_pod(client, namespace, "big")
    assert resized["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    await asyncio.sleep(3.0)  # the node still holds 1500m: give a wrong move every chance
    assert not (await get_pod(client, namespace, "waiting"))["spec"].get("nodeName")

    await _report_resources(client, namespace, "big", "500m")
    assert await bound_to(client, namespace, "waiting") == node
