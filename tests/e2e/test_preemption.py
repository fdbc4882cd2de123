"""DefaultPreemption end to end: a high-priority pod preempts lower-priority ones through the
API (DisruptionTarget, deletion, Preempted event, nominatedNodeName), `preemptionPolicy: Never`
does not, and a PodDisruptionBudget steers the choice to another node."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Running
from tests.e2e.test_engine import (
    bound_to,
    create,
    events_for,
    extra_nodes,
    failed_message,
    get_pod,
    node_count,
    wait_for,
)

JSON = dict[str, Any]

__all__ = ["extra_nodes"]  # a fixture, imported for its side effect on pytest


@pytest.fixture
async def priority_class(client: Client, namespace: str) -> AsyncIterator[Callable[..., Any]]:
    """Create PriorityClasses named after the test's namespace; delete them afterwards."""
    made: list[str] = []

    async def make(suffix: str, value: int, policy: str | None = None) -> str:
        name = f"{namespace}-{suffix}"
        body: JSON = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
        }
        if policy is not None:
            body["preemptionPolicy"] = policy
        await client.post("/apis/scheduling.k8s.io/v1/priorityclasses", body)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            await client.delete(f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}")
        except ApiError as err:
            if err.status != 404:
                raise


def pod(name: str, namespace: str, cpu: str, priority_class: str, **labels: str) -> JSON:
    """A berth pod confined to this test's nodes (label pool=<namespace>)."""
    builder = make_pod(name).scheduler("berth").req(cpu=cpu).node_selector(pool=namespace)
    for key, value in labels.items():
        builder = builder.label(key, value)
    body = builder.for_api()
    body["spec"]["priorityClassName"] = priority_class
    body["spec"]["terminationGracePeriodSeconds"] = 0
    return body


async def gone(client: Client, namespace: str, name: str) -> bool:
    try:
        await get_pod(client, namespace, name)
    except ApiError as err:
        if err.status == 404:
            return True
        raise
    return False


class PodWatch:
    """Every version of every pod in a namespace, as a watch delivers them (KWOK deletes
    terminating pods at once, so intermediate states are only visible this way)."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.seen: list[tuple[str, JSON]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PodWatch:
        listed = await self.client.get(f"/api/v1/namespaces/{self.namespace}/pods")
        version = listed["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._run(version))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self, version: str) -> None:
        # Resumed from the last version whenever the stream ends: the API server closes a
        # watch that falls behind (a test busy creating a thousand pods), and a gap would
        # hide exactly the versions a test looks for.
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        while True:
            params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
            async for line in self.client.stream_lines(path, params, timeout=300):
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    raise AssertionError(f"pod watch failed: {obj}")
                version = obj["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    self.seen.append((event["type"], obj))

    def versions(self, name: str) -> list[JSON]:
        return [obj for _, obj in self.seen if obj["metadata"]["name"] == name]

    def deleted(self) -> set[str]:
        return {obj["metadata"]["name"] for kind, obj in self.seen if kind == "DELETED"}


def condition(pod: JSON, kind: str) -> JSON | None:
    return next((c for c in pod["status"].get("conditions", []) if c["type"] == kind), None)


async def test_high_priority_pod_preempts_lower_ones(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: Callable[[JSON], Awaitable[None]],
    priority_class: Callable[..., Awaitable[str]],
) -> None:
    """The fewest low-priority pods are deleted (DisruptionTarget first, Preempted event), the
    preemptor is nominated to their node and bound there once they are gone; the attempt that
    preempted fails with v1.37's "found a potential placement" message."""
    node = f"pre-{namespace}"
    await extra_nodes(make_node(node).label("pool", namespace).capacity(cpu="2").obj_())
    total = await node_count(client)
    low = await priority_class("low", 100)
    high = await priority_class("high", 1000)
    for name in ("low-a", "low-b"):
        await create(client, namespace, pod(name, namespace, "1", low))
        assert await bound_to(client, namespace, name) == node
    async with PodWatch(client, namespace) as watch:
        await create(client, namespace, pod("high", namespace, "1", high))
        assert await bound_to(client, namespace, "high") == node

        async def victims() -> set[str] | None:
            return watch.deleted() or None

        (victim,) = await wait_for(victims)  # one low pod makes enough room
    survivor = "low-b" if victim == "low-a" else "low-a"
    marked = [v for v in watch.versions(victim) if condition(v, "DisruptionTarget")]
    assert marked, "the victim was deleted without the DisruptionTarget condition"
    target = condition(marked[0], "DisruptionTarget")
    assert target is not None
    assert (target["status"], target["reason"]) == ("True", "PreemptionByScheduler")
    assert target["message"] == "berth: preempting to accommodate a higher priority pod"
    assert not marked[0]["metadata"].get("deletionTimestamp")  # marked before the delete
    nominated = [v for v in watch.versions("high") if v["status"].get("nominatedNodeName")]
    assert nominated and nominated[0]["status"]["nominatedNodeName"] == node
    assert not nominated[0]["spec"].get("nodeName")  # nominated before it was bound
    events = await wait_for(lambda: events_for(client, namespace, victim, "Preempted"))
    high_uid = (await get_pod(client, namespace, "high"))["metadata"]["uid"]
    assert events[0]["note"] == f"Preempted by pod {high_uid} on node {node}"
    assert events[0]["related"]["name"] == "high"
    # The attempt that preempted fails with the reasons, then what preemption found (v1.37;
    # v1.33 ended at the reasons), in the event and in the PodScheduled condition alike.
    reasons = sorted(
        ["1 Insufficient cpu", f"{total - 1} node(s) didn't match Pod's node affinity/selector"]
    )
    expected = (
        f"0/{total} nodes are available: {', '.join(reasons)}. "
        f"preemption: found a potential placement for pod on node {node}, preempting 1 victims"
    )
    notes = [e["note"] for e in await events_for(client, namespace, "high", "FailedScheduling")]
    assert expected in notes, notes
    scheduled = [condition(v, "PodScheduled") for v in watch.versions("high")]
    assert expected in [c["message"] for c in scheduled if c and c["status"] == "False"]
    assert not (await get_pod(client, namespace, survivor))["metadata"].get("deletionTimestamp")


async def test_preemption_policy_never_does_not_preempt(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: Callable[[JSON], Awaitable[None]],
    priority_class: Callable[..., Awaitable[str]],
) -> None:
    """A pod whose PriorityClass says preemptionPolicy: Never waits; nobody is deleted."""
    node = f"never-{namespace}"
    await extra_nodes(make_node(node).label("pool", namespace).capacity(cpu="1").obj_())
    low = await priority_class("low", 100)
    never = await priority_class("never", 1000, policy="Never")
    await create(client, namespace, pod("low", namespace, "1", low))
    assert await bound_to(client, namespace, "low") == node
    await create(client, namespace, pod("high", namespace, "1", never))
    assert (await get_pod(client, namespace, "high"))["spec"]["preemptionPolicy"] == "Never"
    message = await failed_message(client, namespace, "high")
    assert message.endswith(" preemption: not eligible due to preemptionPolicy=Never.")
    assert "1 Insufficient cpu" in message
    low_pod = await get_pod(client, namespace, "low")
    assert not low_pod["metadata"].get("deletionTimestamp")
    assert not (await get_pod(client, namespace, "high"))["spec"].get("nodeName")


async def test_pdb_protects_pods_when_another_node_will_do(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: Callable[[JSON], Awaitable[None]],
    priority_class: Callable[..., Awaitable[str]],
) -> None:
    """Of two equal choices, the node whose victim a PodDisruptionBudget covers is spared."""
    low = await priority_class("low", 100)
    high = await priority_class("high", 1000)
    await client.post(
        f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "keep"},
            # No disruption controller runs on the test plane: status.disruptionsAllowed stays
            # 0, so deleting a covered pod violates the budget.
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "protected"}}},
        },
    )
    for suffix in ("a", "b"):
        node = f"pdb-{suffix}-{namespace}"
        await extra_nodes(make_node(node).label("pool", namespace).capacity(cpu="1").obj_())
    protected = pod("protected", namespace, "1", low, app="protected")
    protected["spec"]["nodeSelector"]["kubernetes.io/hostname"] = f"pdb-a-{namespace}"
    other = pod("other", namespace, "1", low, app="other")
    other["spec"]["nodeSelector"]["kubernetes.io/hostname"] = f"pdb-b-{namespace}"
    await create(client, namespace, protected)
    await create(client, namespace, other)
    assert await bound_to(client, namespace, "protected") == f"pdb-a-{namespace}"
    assert await bound_to(client, namespace, "other") == f"pdb-b-{namespace}"
    await create(client, namespace, pod("high", namespace, "1", high))
    assert await bound_to(client, namespace, "high") == f"pdb-b-{namespace}"
    assert await gone(client, namespace, "other")
    assert not (await get_pod(client, namespace, "protected"))["metadata"].get("deletionTimestamp")
