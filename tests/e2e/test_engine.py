"""berth end to end on a real API server: binding, events, conditions, plugins, metrics, HA."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from scheduler.kube.client import ApiError, Client
from scheduler.kube.discovery import discover
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Cluster, Running, start_berth

T = TypeVar("T")
NOT_HELPFUL = "Preemption is not helpful for scheduling"  # all rejections here are unresolvable
JSON = dict[str, Any]


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float = 60.0) -> T:
    """Poll until `probe` returns something truthy (bounded, not a timing assertion)."""
    for _ in range(int(timeout / 0.2)):
        if result := await probe():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s")


async def create(client: Client, namespace: str, pod: JSON) -> None:
    await client.post(f"/api/v1/namespaces/{namespace}/pods", pod)


async def get_pod(client: Client, namespace: str, name: str) -> JSON:
    pod: JSON = await client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    return pod


async def bound_to(client: Client, namespace: str, name: str) -> str:
    """Wait until the pod is bound; return its node."""

    async def probe() -> str | None:
        return (await get_pod(client, namespace, name))["spec"].get("nodeName")

    return await wait_for(probe)


async def events_for(client: Client, namespace: str, name: str, reason: str) -> list[JSON]:
    events = await client.get(
        f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
        fieldSelector=f"regarding.name={name},reason={reason}",
    )
    items: list[JSON] = events["items"]
    return items


async def failed_message(client: Client, namespace: str, name: str) -> str:
    """The latest FailedScheduling message of a pod; one written by an older kube-scheduler is
    given in v1.37's words (as_v1_37), so one expectation serves berth and the plane's
    kube-scheduler on every supported version."""

    async def probe() -> JSON | None:
        items = await events_for(client, namespace, name, "FailedScheduling")
        return items[-1] if items else None

    event = await wait_for(probe)
    note = str(event["note"])
    if event.get("reportingController") == "default-scheduler":
        note = as_v1_37(note, (await discover(client)).minor)
    return note


def as_v1_37(message: str, minor: int) -> str:
    """kube-scheduler v1.35 and v1.36's message in v1.37's words: their DynamicResources
    PostFilter added "no new claims to deallocate" before every preemption part, and v1.37
    dropped it (docs/compat.md). Nothing else differs in the messages the tests compare."""
    if minor < 37:
        return message.replace("no new claims to deallocate, ", "")
    return message


async def node_count(client: Client) -> int:
    return len((await client.get("/api/v1/nodes"))["items"])


@pytest.fixture
async def extra_nodes(client: Client) -> Any:
    """Create nodes for one test and delete them afterwards."""
    made: list[str] = []

    async def add(node: JSON) -> None:
        await client.post("/api/v1/nodes", node)
        made.append(node["metadata"]["name"])

    yield add
    for name in made:
        try:
            await client.delete(f"/api/v1/nodes/{name}")
        except ApiError as err:
            if err.status != 404:
                raise


async def test_pods_are_bound_with_scheduled_event(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """Pods for berth are bound to existing nodes, each with a Scheduled event."""
    for i in range(20):
        await create(
            client,
            namespace,
            make_pod(f"p{i}").scheduler("berth").req(cpu="100m", memory="64Mi").for_api(),
        )
    nodes = {n["metadata"]["name"] for n in (await client.get("/api/v1/nodes"))["items"]}
    for i in range(20):
        assert await bound_to(client, namespace, f"p{i}") in nodes
    events = await wait_for(lambda: events_for(client, namespace, "p0", "Scheduled"))
    assert events[0]["note"].startswith(f"Successfully assigned {namespace}/p0 to ")
    assert events[0]["reportingController"] == "berth"


async def test_pods_of_other_schedulers_are_left_alone(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A pod naming another scheduler stays pending while berth's own pod is bound."""
    await create(client, namespace, make_pod("foreign").scheduler("someone-else").for_api())
    await create(client, namespace, make_pod("mine").scheduler("berth").for_api())
    await bound_to(client, namespace, "mine")
    await asyncio.sleep(1.0)  # give a wrong scheduler every chance to act
    assert not (await get_pod(client, namespace, "foreign"))["spec"].get("nodeName")


async def test_unschedulable_pod_reports_and_binds_when_a_node_fits(
    berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    """FailedScheduling with upstream's message and PodScheduled=False, then bound once a
    matching node appears."""
    total = await node_count(client)
    pod = make_pod("waiting").scheduler("berth").node_selector(pool=namespace)
    await create(client, namespace, pod.for_api())
    message = await failed_message(client, namespace, "waiting")
    assert message == (
        f"0/{total} nodes are available: {total} node(s) didn't match Pod's node affinity/selector."
        f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
    )

    async def condition() -> JSON | None:
        conditions = (await get_pod(client, namespace, "waiting"))["status"].get("conditions", [])
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    scheduled = await wait_for(condition)
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    await extra_nodes(make_node(f"fit-{namespace}").label("pool", namespace).obj_())
    assert await bound_to(client, namespace, "waiting") == f"fit-{namespace}"


async def test_taints_tolerations_and_resource_fit(
    berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    """A taint keeps out pods that do not tolerate it; requests larger than any node fail
    with Insufficient cpu."""
    tainted = f"tainted-{namespace}"
    await extra_nodes(make_node(tainted).label("pool", namespace).taint("dedicated", "ml").obj_())
    total = await node_count(client)
    await create(
        client,
        namespace,
        make_pod("intolerant").scheduler("berth").node_selector(pool=namespace).for_api(),
    )
    await create(
        client,
        namespace,
        make_pod("tolerant")
        .scheduler("berth")
        .node_selector(pool=namespace)
        .toleration("dedicated", "ml")
        .for_api(),
    )
    assert await bound_to(client, namespace, "tolerant") == tainted
    message = await failed_message(client, namespace, "intolerant")
    assert message == (
        f"0/{total} nodes are available: 1 node(s) had untolerated taint(s), "
        f"{total - 1} node(s) didn't match Pod's node affinity/selector."
        f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
    )

    await create(
        client,
        namespace,
        make_pod("huge").scheduler("berth").req(cpu="1000").toleration("dedicated", "ml").for_api(),
    )
    message = await failed_message(client, namespace, "huge")
    assert message == (
        f"0/{total} nodes are available: {total} Insufficient cpu."
        f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
    )


async def test_node_affinity_is_respected(
    cluster: Cluster, berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """Required node affinity on the zone label places every pod in that zone."""
    nodes = (await client.get("/api/v1/nodes"))["items"]
    zone_of = {
        n["metadata"]["name"]: n["metadata"]["labels"].get("topology.kubernetes.io/zone")
        for n in nodes
    }
    zones = sorted({z for z in zone_of.values() if z})
    if not zones:
        pytest.skip("the cluster's nodes have no zone labels")
    for i in range(6):
        await create(
            client,
            namespace,
            make_pod(f"z{i}")
            .scheduler("berth")
            .required_affinity("topology.kubernetes.io/zone", "In", zones[-1])
            .for_api(),
        )
    placed = Counter([zone_of[await bound_to(client, namespace, f"z{i}")] for i in range(6)])
    assert placed == Counter({zones[-1]: 6})


async def test_metrics_are_exposed(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """/metrics carries kube-scheduler's metric names after pods were scheduled."""
    await create(client, namespace, make_pod("m").scheduler("berth").for_api())
    await bound_to(client, namespace, "m")
    url = f"http://127.0.0.1:{berth_scheduler.port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert 'scheduler_schedule_attempts_total{profile="berth",result="scheduled"}' in body
    for name in (
        "scheduler_scheduling_attempt_duration_seconds_bucket",
        "scheduler_pod_scheduling_sli_duration_seconds_bucket",
        "scheduler_pending_pods",
        "scheduler_queue_incoming_pods_total",
    ):
        assert name in body
    ready = await asyncio.to_thread(
        lambda: urllib.request.urlopen(url.replace("metrics", "readyz"), timeout=5).status
    )
    assert ready == 200


def test_malformed_config_exits_2(tmp_path: Path) -> None:
    """A bad config is refused with exit code 2 and the field path in the message."""
    config = tmp_path / "bad.yaml"
    config.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "podMaxBackoffSeconds: -3\n"
        "profiles:\n- schedulerName: berth\n  plugins:\n    score:\n"
        "      enabled:\n      - name: NoSuchPlugin\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "run",
            "--config",
            str(config),
            "--secure-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "podMaxBackoffSeconds" in result.stderr
    assert "profiles[0].plugins.score.enabled[0]" in result.stderr
    assert "NoSuchPlugin" in result.stderr


async def test_two_instances_with_leader_election_bind_each_pod_once(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    """Two `berth run` with leader election: every pod is bound, exactly one Scheduled each."""
    config = f"""\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
  leaseDuration: 4s
  renewDeadline: 3s
  retryPeriod: 500ms
  resourceName: berth-ha
  resourceNamespace: {namespace}
profiles:
- schedulerName: berth-ha
"""
    first = start_berth(config, cluster.kubeconfig, tmp_path, "a")
    second = start_berth(config, cluster.kubeconfig, tmp_path, "b")
    try:
        for i in range(30):
            await create(client, namespace, make_pod(f"ha{i}").scheduler("berth-ha").for_api())
        for i in range(30):
            await bound_to(client, namespace, f"ha{i}")
        lease = await client.get(
            f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/berth-ha"
        )
        holder = lease["spec"]["holderIdentity"]
        for i in range(30):
            scheduled = await wait_for(
                lambda i=i: events_for(client, namespace, f"ha{i}", "Scheduled")
            )
            assert len(scheduled) == 1
            assert scheduled[0]["reportingInstance"] == holder
    finally:
        first.stop()
        second.stop()
