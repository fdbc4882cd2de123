"""Gang scheduling end to end on the real control plane (issue 13): upstream v1.37's
scheduling.k8s.io/v1beta1 PodGroups (GenericWorkload, which the harness turns on for the API
server). Each case uses nodes of its own, kept apart from the shared ones by a `pool` node
selector, and waits generously for what berth does; nothing is timed.

Skipped on a server that does not serve scheduling.k8s.io/v1beta1 (K8S_VERSION 1.35 and 1.36).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Cluster, Running, assert_no_traceback, start_berth, wait_ready
from tests.e2e.test_controller_e2e import podgroup_crd
from tests.e2e.test_engine import create, extra_nodes, failed_message, get_pod, wait_for

JSON = dict[str, Any]
__all__ = ["extra_nodes", "podgroup_crd"]

GROUPS = "/apis/scheduling.k8s.io/v1beta1/namespaces/{namespace}/podgroups"
RACK = "topology.kubernetes.io/rack"


@pytest.fixture
async def served(client: Client) -> AsyncIterator[None]:
    try:
        await client.get("/apis/scheduling.k8s.io/v1beta1")
    except ApiError:
        pytest.skip("scheduling.k8s.io/v1beta1 (GenericWorkload) is not served")
    yield


async def make_group(
    client: Client, namespace: str, name: str, min_count: int, *, topology: str = ""
) -> None:
    spec: JSON = {"schedulingPolicy": {"gang": {"minCount": min_count}}}
    meta: JSON = {"name": name}
    if topology:
        spec["schedulingConstraints"] = {"topology": [{"key": topology}]}
        # Served only with the alpha TopologyAwareWorkloadScheduling gate; berth's annotation
        # says the same on any server.
        meta["annotations"] = {"berth.dev/topology-key": topology}
    body = {"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup", "metadata": meta}
    body["spec"] = spec
    await client.post(GROUPS.format(namespace=namespace), body)


async def make_gang(
    client: Client, namespace: str, group: str, size: int, prefix: str, cpu: str = "1"
) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(size)]
    for name in names:
        pod = make_pod(name).scheduler("berth").req(cpu=cpu).node_selector(pool=namespace)
        body = pod.for_api()
        body["spec"]["schedulingGroup"] = {"podGroupName": group}
        await create(client, namespace, body)
    return names


async def pool_node(add: Any, namespace: str, name: str, cpu: str = "2", rack: str = "") -> None:
    node = make_node(f"{name}-{namespace}").capacity(cpu=cpu, memory="16Gi", pods="110")
    node.label("pool", namespace)
    if rack:
        node.label(RACK, rack)
    await add(node.obj_())


async def nodes_of(client: Client, namespace: str, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        node = (await get_pod(client, namespace, name))["spec"].get("nodeName")
        if node:
            out[name] = node
    return out


async def all_bound(client: Client, namespace: str, names: list[str]) -> dict[str, str]:
    async def probe() -> dict[str, str] | None:
        placed = await nodes_of(client, namespace, names)
        return placed if len(placed) == len(names) else None

    return await wait_for(probe, timeout=90)


async def group_condition(client: Client, namespace: str, name: str, status: str) -> JSON:
    async def probe() -> JSON | None:
        group = await client.get(f"{GROUPS.format(namespace=namespace)}/{name}")
        for cond in (group.get("status") or {}).get("conditions") or []:
            if cond["type"] == "PodGroupInitiallyScheduled" and cond["status"] == status:
                return dict(cond)
        return None

    return await wait_for(probe, timeout=60)


async def test_a_gang_of_8_where_6_fit_stays_pending_then_binds_whole(
    served: None, berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    for i in range(3):  # 3 x 2 CPU: room for 6 of the 8 one-CPU members
        await pool_node(extra_nodes, namespace, f"n{i}")
    await make_group(client, namespace, "job", 8)
    names = await make_gang(client, namespace, "job", 8, "w")

    messages = [await failed_message(client, namespace, name) for name in names]
    group_message = (
        "minCount (8) cannot be satisfied: 6 scheduled, 1 remaining, "
        "pod group preemption: No preemption victims found for incoming preemptor"
    )
    assert messages.count(group_message) >= 6, messages
    assert any("Insufficient cpu" in m for m in messages), messages
    cond = await group_condition(client, namespace, "job", "False")
    assert (cond["reason"], cond["message"]) == ("Unschedulable", group_message)
    assert await nodes_of(client, namespace, names) == {}  # none bound: all or nothing

    await pool_node(extra_nodes, namespace, "n3")  # room for 2 more
    placed = await all_bound(client, namespace, names)
    assert len(placed) == 8
    cond = await group_condition(client, namespace, "job", "True")
    assert cond["reason"] == "Scheduled"


async def test_two_gangs_that_fit_alone_but_not_together_resolve_without_deadlock(
    served: None, berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    for i in range(4):  # room for 8: either gang of 6, never both
        await pool_node(extra_nodes, namespace, f"n{i}")
    await make_group(client, namespace, "a", 6)
    await make_group(client, namespace, "b", 6)
    gang_a = await make_gang(client, namespace, "a", 6, "a")
    gang_b = await make_gang(client, namespace, "b", 6, "b")

    async def one_whole() -> tuple[list[str], list[str]] | None:
        placed_a = await nodes_of(client, namespace, gang_a)
        placed_b = await nodes_of(client, namespace, gang_b)
        if len(placed_a) == 6:
            return gang_a, gang_b
        if len(placed_b) == 6:
            return gang_b, gang_a
        return None

    winner, loser = await wait_for(one_whole, timeout=90)
    await failed_message(client, namespace, loser[0])
    assert await nodes_of(client, namespace, loser) == {}

    for name in winner:  # the winner finishes: the loser gets the room, whole
        await client.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")
    assert len(await all_bound(client, namespace, loser)) == 6


async def test_a_topology_constrained_gang_never_straddles_racks(
    served: None, berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    for i in range(2):
        await pool_node(extra_nodes, namespace, f"a{i}", rack=f"a-{namespace}")  # 4 slots
    for i in range(3):
        await pool_node(extra_nodes, namespace, f"b{i}", rack=f"b-{namespace}")  # 6 slots
    await make_group(client, namespace, "fits", 5, topology=RACK)
    fits = await make_gang(client, namespace, "fits", 5, "f")
    placed = await all_bound(client, namespace, fits)
    assert {node.split("-")[0][0] for node in placed.values()} == {"b"}, placed

    await make_group(client, namespace, "split", 3, topology=RACK)  # 4 + 1 slots left, 3 racks
    split = await make_gang(client, namespace, "split", 3, "s")
    placed = await all_bound(client, namespace, split)
    assert {node.split("-")[0][0] for node in placed.values()} == {"a"}, placed

    await make_group(client, namespace, "never", 2, topology=RACK)  # 1 + 1 left: no rack holds 2
    never = await make_gang(client, namespace, "never", 2, "x")
    message = await failed_message(client, namespace, "x-0")
    assert message.startswith("0/"), message
    assert "placements are available" in message or "minCount (2)" in message, message
    await asyncio.sleep(2)
    assert await nodes_of(client, namespace, never) == {}


async def test_a_member_waits_in_pre_enqueue_for_its_group(
    served: None, berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    await pool_node(extra_nodes, namespace, "n0", cpu="4")
    names = await make_gang(client, namespace, "late-group", 2, "w")
    await asyncio.sleep(2)  # berth has seen them; gated pods get no FailedScheduling
    assert await nodes_of(client, namespace, names) == {}
    await make_group(client, namespace, "late-group", 2)
    assert len(await all_bound(client, namespace, names)) == 2


async def priority_class(client: Client, name: str, value: int) -> None:
    body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass"}
    body |= {"metadata": {"name": name}, "value": value}
    try:
        await client.post("/apis/scheduling.k8s.io/v1/priorityclasses", body)
    except ApiError as err:
        if err.status != 409:
            raise


async def test_gang_preemption_evicts_only_when_the_whole_gang_then_fits(
    served: None, berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    await priority_class(client, "berth-e2e-gang-high", 1000)
    for i in range(2):
        await pool_node(extra_nodes, namespace, f"n{i}")
    low = []
    for i in range(4):  # both nodes full of priority-0 pods, bound by "someone else"
        name = f"low-{i}"
        pod = make_pod(name).scheduler("other").req(cpu="1").node(f"n{i // 2}-{namespace}")
        await create(client, namespace, pod.for_api())
        low.append(name)

    async def high_gang(group: str, size: int) -> list[str]:
        body = {
            "apiVersion": "scheduling.k8s.io/v1beta1",
            "kind": "PodGroup",
            "metadata": {"name": group},
            "spec": {
                "schedulingPolicy": {"gang": {"minCount": size}},
                "priorityClassName": "berth-e2e-gang-high",
            },
        }
        await client.post(GROUPS.format(namespace=namespace), body)
        names = []
        for i in range(size):
            pod = make_pod(f"{group}-{i}").scheduler("berth").req(cpu="1")
            body = pod.node_selector(pool=namespace).for_api()
            body["spec"]["schedulingGroup"] = {"podGroupName": group}
            body["spec"]["priorityClassName"] = "berth-e2e-gang-high"
            await create(client, namespace, body)
            names.append(f"{group}-{i}")
        return names

    async def low_left() -> list[str]:
        items = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
        return sorted(
            p["metadata"]["name"]
            for p in items
            if p["metadata"]["name"].startswith("low-")
            and not p["metadata"].get("deletionTimestamp")
        )

    too_big = await high_gang("big", 5)  # 5 CPUs on 4: preemption cannot help the gang
    await failed_message(client, namespace, too_big[0])
    cond = await group_condition(client, namespace, "big", "False")
    assert "pod group preemption: minCount (5) cannot be satisfied" in cond["message"], cond
    assert await low_left() == low  # nobody was evicted

    for name in too_big:
        await client.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")
    fits = await high_gang("fits", 3)
    placed = await all_bound(client, namespace, fits)
    assert len(placed) == 3
    assert len(await low_left()) == 1  # three victims, chosen together; one given back


async def test_a_gang_job_goes_through_the_pod_group_its_controller_creates(
    served: None, berth_scheduler: Running, client: Client, namespace: str, extra_nodes: Any
) -> None:
    """v1.37's Job controller (WorkloadWithJob, which the harness turns on) creates a Workload
    and a PodGroup for a new Job and names the group in its pods: berth places them as a gang."""
    for i in range(3):  # room for 3 of the 4 workers
        await pool_node(extra_nodes, namespace, f"n{i}", cpu="1")
    template = make_pod("worker").scheduler("berth").req(cpu="1").node_selector(pool=namespace)
    pod_spec = template.for_api()["spec"]
    pod_spec["restartPolicy"] = "Never"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train"},
        "spec": {
            "parallelism": 4,
            "completions": 4,
            "scheduling": {"schedulingPolicy": {"gang": {"minCount": 4}}},
            "template": {"metadata": {"labels": {"job": "train"}}, "spec": pod_spec},
        },
    }
    try:
        await client.post(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)
    except ApiError as err:
        pytest.skip(f"this server's Job API has no spec.scheduling: {err}")

    async def workers() -> list[JSON] | None:
        pods = await client.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector="job=train")
        items: list[JSON] = pods["items"]
        return items if len(items) == 4 else None

    pods = await wait_for(workers, timeout=60)
    if not all(p["spec"].get("schedulingGroup") for p in pods):
        pytest.skip("the Job controller did not create a PodGroup (WorkloadWithJob is off)")
    group = pods[0]["spec"]["schedulingGroup"]["podGroupName"]
    names = [p["metadata"]["name"] for p in pods]
    await failed_message(client, namespace, names[0])
    assert await nodes_of(client, namespace, names) == {}
    await pool_node(extra_nodes, namespace, "n3", cpu="1")
    assert len(await all_bound(client, namespace, names)) == 4
    cond = await group_condition(client, namespace, group, "True")
    assert cond["reason"] == "Scheduled"


async def test_scheduler_plugins_crd_gangs_are_all_or_nothing(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: Any,
    podgroup_crd: None,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    """The same engine on scheduler-plugins' PodGroup CRD (any supported server): a berth
    started once the CRD is served watches it; pods join with the label. A gang of 3 on room
    for 2 stays pending whole, binds whole when room appears; of two competing gangs one is
    placed whole."""
    groups = f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{namespace}/podgroups"
    running = start_berth(BERTH_CRD_CONFIG, cluster.kubeconfig, tmp_path, "crd")
    try:
        wait_ready(running)
        for i in range(2):
            await pool_node(extra_nodes, namespace, f"n{i}", cpu="1")

        async def crd_gang(group: str, size: int) -> list[str]:
            body = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup"}
            body |= {"metadata": {"name": group}, "spec": {"minMember": size}}
            await client.post(groups, body)
            names = []
            for i in range(size):
                pod = make_pod(f"{group}-{i}").scheduler("berth-crd").req(cpu="1")
                pod.node_selector(pool=namespace).label("scheduling.x-k8s.io/pod-group", group)
                await create(client, namespace, pod.for_api())
                names.append(f"{group}-{i}")
            return names

        three = await crd_gang("three", 3)
        message = await failed_message(client, namespace, three[0])
        assert "minCount (3) cannot be satisfied" in message or "Insufficient cpu" in message
        assert await nodes_of(client, namespace, three) == {}
        await pool_node(extra_nodes, namespace, "n2", cpu="1")
        assert len(await all_bound(client, namespace, three)) == 3

        for i in range(3, 7):  # four more slots: gangs of 3 and 3 compete for them
            await pool_node(extra_nodes, namespace, f"n{i}", cpu="1")
        a, b = await crd_gang("a", 3), await crd_gang("b", 3)

        async def one_whole() -> bool:
            placed = [len(await nodes_of(client, namespace, g)) for g in (a, b)]
            return sorted(placed) == [0, 3]

        assert await wait_for(one_whole, timeout=90)
        await failed_message(
            client, namespace, a[0] if (await nodes_of(client, namespace, b)) else b[0]
        )
        assert sorted([len(await nodes_of(client, namespace, g)) for g in (a, b)]) == [0, 3]
    finally:
        running.stop()
    assert_no_traceback(running)


BERTH_CRD_CONFIG = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: berth-crd
"""


async def test_a_crd_installed_after_berth_started_is_watched_soon(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: Any,
    podgroup_crd: None,
) -> None:
    """The session's berth started before the CRD existed: it looks again every 30 s and
    starts watching the PodGroups once served (its log says so); from then its gangs are all
    or nothing."""

    async def noticed() -> bool:
        log = berth_scheduler.log.read_text(errors="replace")
        return "API now served: feature on" in log and "scheduling.x-k8s.io/v1alpha1" in log

    await wait_for(noticed, timeout=90)
    await asyncio.sleep(1)  # the informer's first list
    for i in range(2):
        await pool_node(extra_nodes, namespace, f"n{i}", cpu="1")
    groups = f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{namespace}/podgroups"
    body = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup"}
    await client.post(groups, body | {"metadata": {"name": "late"}, "spec": {"minMember": 3}})
    names = []
    for i in range(3):
        pod = make_pod(f"late-{i}").scheduler("berth").req(cpu="1").node_selector(pool=namespace)
        await create(
            client, namespace, pod.label("scheduling.x-k8s.io/pod-group", "late").for_api()
        )
        names.append(f"late-{i}")
    await failed_message(client, namespace, names[0])
    assert await nodes_of(client, namespace, names) == {}
    await pool_node(extra_nodes, namespace, "n2", cpu="1")
    assert len(await all_bound(client, namespace, names)) == 3
