"""NodePorts end to end, each case run by berth and by upstream kube-scheduler (the cluster's
default-scheduler) with the same expectations: a sidecar's host port is taken, and only an empty
hostIP or 0.0.0.0 is a wildcard ("::" is one more address)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import pytest

from scheduler.kube.client import Client
from tests.builders import make_pod
from tests.e2e.conftest import Running
from tests.e2e.test_engine import bound_to, create, failed_message, get_pod, node_count

JSON = dict[str, Any]
HOSTNAME = "kubernetes.io/hostname"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
SCHEDULERS = pytest.mark.parametrize("scheduler", ["berth", "default-scheduler"])


async def target_node(client: Client) -> str:
    """A node every pod may use (no NoSchedule taint, not cordoned)."""
    nodes = (await client.get("/api/v1/nodes"))["items"]
    return sorted(
        n["metadata"]["name"]
        for n in nodes
        if not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])
        and not n["spec"].get("unschedulable")
    )[0]


def base_port(namespace: str) -> int:
    """Host ports of their own per test run, so runs never see each other's pods."""
    return 20000 + zlib.crc32(namespace.encode()) % 10000


def port(number: int, ip: str = "") -> JSON:
    entry: JSON = {"containerPort": number, "hostPort": number, "protocol": "TCP"}
    if ip:
        entry["hostIP"] = ip
    return entry


def pinned(name: str, scheduler: str, node: str) -> Any:
    return make_pod(name).scheduler(scheduler).req(cpu="10m").node_selector(**{HOSTNAME: node})


@SCHEDULERS
async def test_sidecar_host_port_is_taken(
    berth_scheduler: Running, client: Client, namespace: str, scheduler: str
) -> None:
    """A pod whose sidecar (restartable init container) holds hostPort P keeps a pod asking
    for P in an ordinary container off its node."""
    node, number = await target_node(client), base_port(namespace)
    sidecar = pinned("sidecar", scheduler, node).init_container_ports(port(number), sidecar=True)
    await create(client, namespace, sidecar.for_api())
    assert await bound_to(client, namespace, "sidecar") == node
    app = pinned("app", scheduler, node).container_ports(port(number))
    await create(client, namespace, app.for_api())
    total = await node_count(client)
    message = await failed_message(client, namespace, "app")
    assert message.startswith(
        f"0/{total} nodes are available: "
        "1 node(s) didn't have free ports for the requested pod ports, "
        f"{total - 1} node(s) didn't match Pod's node affinity/selector. preemption: "
    ), message
    await asyncio.sleep(1.0)
    assert not (await get_pod(client, namespace, "app"))["spec"].get("nodeName")


@SCHEDULERS
async def test_only_empty_and_zero_host_ip_are_wildcards(
    berth_scheduler: Running, client: Client, namespace: str, scheduler: str
) -> None:
    """With 10.0.0.1:P/TCP and [::]:P+1/TCP taken on the node, [::]:P and 10.0.0.2:P+1 both
    fit it; 0.0.0.0:P does not."""
    node, number = await target_node(client), base_port(namespace)
    taken = pinned("taken", scheduler, node).container_ports(
        port(number, "10.0.0.1"), port(number + 1, "::")
    )
    await create(client, namespace, taken.for_api())
    assert await bound_to(client, namespace, "taken") == node
    v6 = pinned("v6", scheduler, node).container_ports(port(number, "::"))
    v4 = pinned("v4", scheduler, node).container_ports(port(number + 1, "10.0.0.2"))
    await create(client, namespace, v6.for_api())
    await create(client, namespace, v4.for_api())
    assert await bound_to(client, namespace, "v6") == node
    assert await bound_to(client, namespace, "v4") == node
    anywhere = pinned("anywhere", scheduler, node).container_ports(port(number, "0.0.0.0"))
    await create(client, namespace, anywhere.for_api())
    message = await failed_message(client, namespace, "anywhere")
    assert "1 node(s) didn't have free ports for the requested pod ports" in message, message
