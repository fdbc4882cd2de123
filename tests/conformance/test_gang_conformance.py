"""All or nothing, checked from the outside: gang runs on the conformance plane, judged by the
independent checker (gangs.py: partially_bound), which reads only API JSON.

- a run of competing gangs, more demand than room: once settled, every gang is whole or absent;
- a large gang whose berth is killed with SIGKILL while it binds: a Binding is one API call per
  pod, so the kill can leave some members bound (kube-scheduler has the same window). The
  checker runs once a new berth has taken over: it finds the members bound before the kill
  counted as scheduled and the rest placed with them, never a gang left short.

Each case runs its own `berth run` with a schedulerName of its own, so the session's berth
leaves its pods alone. Skipped where scheduling.k8s.io/v1beta1 is not served (1.35, 1.36).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.conformance.gangs import partially_bound
from tests.e2e.conftest import (
    Running,
    assert_no_traceback,
    fresh_namespace,
    start_berth,
    wait_ready,
)

JSON = dict[str, Any]
GROUPS = "/apis/scheduling.k8s.io/v1beta1/namespaces/{namespace}/podgroups"
QUIET = 3.0  # seconds without a new bind before a run counts as settled


def config(name: str) -> str:
    return (
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "leaderElection:\n  leaderElect: false\n"
        f"profiles:\n- schedulerName: {name}\n"
    )


@pytest.fixture
async def client(conformance_plane: str) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(conformance_plane, qps=0) as c:
        try:
            await c.get("/apis/scheduling.k8s.io/v1beta1")
        except ApiError:
            pytest.skip("scheduling.k8s.io/v1beta1 (GenericWorkload) is not served")
        yield c


@contextlib.asynccontextmanager
async def pool(client: Client, name: str, count: int, cpu: str) -> AsyncIterator[None]:
    """`count` nodes labelled pool=name, deleted afterwards."""
    names = [f"{name}-{i}" for i in range(count)]
    for node in names:
        body = make_node(node).capacity(cpu=cpu, memory="64Gi", pods="110").label("pool", name)
        await client.post("/api/v1/nodes", body.obj_())
    try:
        yield
    finally:
        for node in names:
            with contextlib.suppress(ApiError):
                await client.delete(f"/api/v1/nodes/{node}")


async def make_gang(
    client: Client, namespace: str, scheduler: str, group: str, size: int, cpu: str
) -> None:
    body = {"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup"}
    body |= {
        "metadata": {"name": group},
        "spec": {"schedulingPolicy": {"gang": {"minCount": size}}},
    }
    await client.post(GROUPS.format(namespace=namespace), body)
    for i in range(size):
        pod = make_pod(f"{group}-{i}").scheduler(scheduler).req(cpu=cpu)
        raw = pod.node_selector(pool=namespace).for_api()
        raw["spec"]["schedulingGroup"] = {"podGroupName": group}
        await client.post(f"/api/v1/namespaces/{namespace}/pods", raw)


async def state(client: Client, namespace: str) -> tuple[list[JSON], list[JSON]]:
    groups = (await client.get(GROUPS.format(namespace=namespace)))["items"]
    pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
    return groups, pods


async def settle(client: Client, namespace: str, timeout: float = 120.0) -> list[JSON]:
    """Wait until no pod was bound for QUIET seconds; the pods then."""
    last = -1
    quiet_since = asyncio.get_running_loop().time()
    deadline = quiet_since + timeout
    while asyncio.get_running_loop().time() < deadline:
        _, pods = await state(client, namespace)
        bound = sum(1 for p in pods if p["spec"].get("nodeName"))
        now = asyncio.get_running_loop().time()
        if bound != last:
            last, quiet_since = bound, now
        elif now - quiet_since >= QUIET:
            return pods
        await asyncio.sleep(0.3)
    raise AssertionError(f"still binding after {timeout}s")


def run_berth(plane: str, directory: Path, name: str) -> Running:
    running = start_berth(config(name), plane, directory, name=name)
    wait_ready(running)
    return running


async def test_competing_gangs_are_each_whole_or_absent(
    conformance_plane: str, client: Client, tmp_path: Path
) -> None:
    async with fresh_namespace(client, "gangs") as namespace, pool(client, namespace, 6, "4"):
        running = run_berth(conformance_plane, tmp_path, "berth-gangs")
        try:
            # 24 CPUs of room for 8 + 16 + 8 + 12 + 4 + 16 = 64 one-CPU members.
            for i, size in enumerate((8, 16, 8, 12, 4, 16)):
                await make_gang(client, namespace, "berth-gangs", f"job-{i}", size, "1")
            await settle(client, namespace)
            groups, pods = await state(client, namespace)
            assert partially_bound(groups, pods) == []
            bound = sum(1 for p in pods if p["spec"].get("nodeName"))
            assert 0 < bound <= 24
        finally:
            running.stop()
        assert_no_traceback(running)


async def test_a_gang_stays_whole_when_berth_is_killed_while_it_binds(
    conformance_plane: str, client: Client, tmp_path: Path
) -> None:
    async with fresh_namespace(client, "kill") as namespace, pool(client, namespace, 8, "8"):
        name = "berth-kill"
        await make_gang(client, namespace, name, "large", 64, "500m")  # 32 of 64 CPUs
        first = run_berth(conformance_plane, tmp_path / "first", name)
        killed_at = -1
        try:
            for _ in range(600):  # until the first bind, then kill at once
                _, pods = await state(client, namespace)
                bound = sum(1 for p in pods if p["spec"].get("nodeName"))
                if bound:
                    first.process.send_signal(signal.SIGKILL)
                    first.process.wait()
                    killed_at = bound
                    break
                await asyncio.sleep(0.05)
        finally:
            first.stop()
        assert killed_at > 0, "berth bound nothing"
        _, pods = await state(client, namespace)
        at_kill = sum(1 for p in pods if p["spec"].get("nodeName"))
        print(f"members bound when berth was killed: {at_kill} of 64")

        second = run_berth(conformance_plane, tmp_path / "second", name)
        try:
            pods = await settle(client, namespace)
            groups, pods = await state(client, namespace)
            assert partially_bound(groups, pods) == [], f"{at_kill} bound when killed"
            assert sum(1 for p in pods if p["spec"].get("nodeName")) == 64
        finally:
            second.stop()
        assert_no_traceback(second)
