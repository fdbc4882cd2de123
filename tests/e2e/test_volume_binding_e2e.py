"""Volumes bound at scheduling time (WaitForFirstConsumer, issue 14) on the real control plane:
the scheduler chooses the node, kube-controller-manager's PV controller binds, and a test
provisioner (tests/e2e/provisioner.py) stands in for an external one.

Every case runs with upstream kube-scheduler (`default-scheduler`, which the session's plane
runs) and with berth, so the expectations are upstream's own. Each case has its own namespace,
storage classes and nodes, kept apart from the shared ones by a `pool` node selector; waits are
generous and nothing is timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.provisioner import (
    CLASSES,
    HOSTNAME,
    NO_PROVISIONER,
    PROVISIONED_BY,
    SELECTED_NODE,
    VOLUMES,
    TestProvisioner,
    claim,
    delete_volume,
    local_volume,
    storage_class,
    volume_hostnames,
)
from tests.e2e.test_engine import (
    create,
    events_for,
    extra_nodes,
    failed_message,
    get_pod,
    wait_for,
)

JSON = dict[str, Any]
Make = Callable[[str, JSON], Awaitable[None]]
__all__ = ["extra_nodes"]

PROVISIONER = "test.berth.io/local"
TIMEOUT = 90.0  # generous: a loaded 2-core machine runs the whole control plane
NOT_HELPFUL = "Preemption is not helpful for scheduling"
# Upstream's volumebinding ErrReasonBindConflict (binder.go), and NodeAffinity's reason for the
# nodes outside the test's pool.
BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
NOT_IN_POOL = "node(s) didn't match Pod's node affinity/selector"


@pytest.fixture(params=["default-scheduler", "berth"])
def scheduler(request: pytest.FixtureRequest) -> str:
    """The schedulerName of the case's pods; berth's session process is started for berth
    (kube-scheduler is part of the session's plane)."""
    name: str = request.param
    if name == "berth":
        request.getfixturevalue("berth_scheduler")
    return name


@pytest.fixture
async def make(client: Client) -> AsyncIterator[Make]:
    """Create cluster-scoped objects (StorageClasses, PVs) for one test; deleted afterwards."""
    made: list[tuple[str, str]] = []

    async def create_object(collection: str, body: JSON) -> None:
        await client.post(collection, body)
        made.append((collection, body["metadata"]["name"]))

    yield create_object
    for collection, name in reversed(made):
        if collection == VOLUMES:
            await delete_volume(client, name)
            continue
        try:
            await client.delete(f"{collection}/{name}")
        except ApiError as err:
            if err.status != 404:
                raise


async def pool(add: Any, namespace: str, count: int) -> list[str]:
    """`count` nodes labelled pool=<namespace>; their names."""
    names = [f"n{i}-{namespace}" for i in range(count)]
    for name in names:
        await add(make_node(name).label("pool", namespace).obj_())
    return names


def pool_pod(name: str, scheduler: str, namespace: str, *claims: str) -> JSON:
    """A small pod for the namespace's pool with a volume for each claim."""
    pod = make_pod(name).scheduler(scheduler).req(cpu="10m", memory="16Mi")
    raw = pod.node_selector(pool=namespace).for_api()
    raw["spec"]["volumes"] = [
        {"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims
    ]
    return raw


def claims_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"


async def placed(client: Client, namespace: str, name: str) -> str:
    """Wait until the pod is bound; its node."""

    async def probe() -> str | None:
        node: str | None = (await get_pod(client, namespace, name))["spec"].get("nodeName")
        return node

    return await wait_for(probe, timeout=TIMEOUT)


async def bound_volume(client: Client, namespace: str, name: str) -> JSON:
    """Wait until the claim is Bound; its PV."""

    async def probe() -> str | None:
        pvc = await client.get(f"{claims_path(namespace)}/{name}")
        if (pvc.get("status") or {}).get("phase") != "Bound":
            return None
        volume: str | None = pvc["spec"].get("volumeName")
        return volume

    volume: JSON = await client.get(f"{VOLUMES}/{await wait_for(probe, timeout=TIMEOUT)}")
    return volume


async def scheduled_by(client: Client, namespace: str, name: str) -> str:
    """The controller that reported the pod Scheduled: the scheduler that bound it (events
    are written after the binding, so this waits for one)."""

    async def probe() -> str | None:
        events = await events_for(client, namespace, name, "Scheduled")
        return str(events[-1]["reportingController"]) if events else None

    return await wait_for(probe, timeout=TIMEOUT)


async def unschedulable(client: Client, namespace: str, pool_size: int, reason: str) -> str:
    """Upstream's message for a pod that `reason` keeps off every pool node, all other nodes
    being outside the pool: reasons sorted as strings, count first (FitError.Error)."""
    total = len((await client.get("/api/v1/nodes"))["items"])
    reasons = ", ".join(sorted([f"{pool_size} {reason}", f"{total - pool_size} {NOT_IN_POOL}"]))
    return (
        f"0/{total} nodes are available: {reasons}."
        f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
    )


async def test_a_pod_with_an_unbound_claim_gets_a_volume_provisioned_on_its_node(
    scheduler: str, client: Client, namespace: str, extra_nodes: Any, make: Make
) -> None:
    """The scheduler writes its node on the claim, the provisioner makes a PV there, the PV
    controller binds it, and then the pod is bound, to that node."""
    await pool(extra_nodes, namespace, 2)
    await make(CLASSES, storage_class(f"{namespace}-local", PROVISIONER))
    await client.post(claims_path(namespace), claim("data", f"{namespace}-local"))
    async with TestProvisioner(client, PROVISIONER, namespace=namespace) as provisioner:
        await create(client, namespace, pool_pod("db", scheduler, namespace, "data"))
        node = await placed(client, namespace, "db")
        volume = await bound_volume(client, namespace, "data")
    assert await scheduled_by(client, namespace, "db") == scheduler
    assert provisioner.provisioned == {f"{namespace}/data": volume["metadata"]["name"]}
    assert volume_hostnames(volume) == [node]
    assert volume["metadata"]["annotations"][PROVISIONED_BY] == PROVISIONER
    assert volume["spec"]["capacity"] == {"storage": "1Gi"}
    pvc = await client.get(f"{claims_path(namespace)}/data")
    assert pvc["metadata"]["annotations"][SELECTED_NODE] == node


@pytest.mark.parametrize("volumes", ["provisioned", "static"])
async def test_a_stateful_set_gets_a_volume_on_each_replicas_node(
    scheduler: str, volumes: str, client: Client, namespace: str, extra_nodes: Any, make: Make
) -> None:
    """Five replicas with a claim template on a WaitForFirstConsumer class: all Running, each
    claim Bound to a PV on the node of its pod. `provisioned`: the test provisioner makes each
    PV on the node the scheduler chose; `static`: local PVs made beforehand, two per node on
    three nodes (one left over), none given twice."""
    nodes = await pool(extra_nodes, namespace, 3)
    replicas = 5
    if volumes == "provisioned":
        await make(CLASSES, storage_class(f"{namespace}-local", PROVISIONER))
    else:
        await make(CLASSES, storage_class(f"{namespace}-local", NO_PROVISIONER))
        for i in range(6):
            name = f"{namespace}-pv-{i}"
            await make(VOLUMES, local_volume(name, nodes[i % 3], f"{namespace}-local"))
    pod = pool_pod("web", scheduler, namespace)
    pod["spec"].pop("volumes")  # the StatefulSet controller adds one per claim template
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    stateful_set = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"]},
            "volumeClaimTemplates": [claim("data", f"{namespace}-local")],
        },
    }
    names = [f"web-{i}" for i in range(replicas)]
    async with TestProvisioner(client, PROVISIONER, namespace=namespace):
        await client.post(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", stateful_set)

        async def running() -> list[JSON] | None:
            pods = [await get_pod_or_none(client, namespace, name) for name in names]
            ready = [p for p in pods if p and (p.get("status") or {}).get("phase") == "Running"]
            return ready if len(ready) == len(names) else None

        pods = await wait_for(running, timeout=TIMEOUT)
        bound = [await bound_volume(client, namespace, f"data-{name}") for name in names]
    assert len({v["metadata"]["name"] for v in bound}) == replicas
    for pod_, volume in zip(pods, bound, strict=True):
        assert volume_hostnames(volume) == [pod_["spec"]["nodeName"]]
        assert await scheduled_by(client, namespace, pod_["metadata"]["name"]) == scheduler
        if volumes == "provisioned":
            assert volume["metadata"]["annotations"][PROVISIONED_BY] == PROVISIONER
        else:
            assert PROVISIONED_BY not in (volume["metadata"].get("annotations") or {})


async def get_pod_or_none(client: Client, namespace: str, name: str) -> JSON | None:
    try:
        return await get_pod(client, namespace, name)
    except ApiError as err:
        if err.status == 404:
            return None
        raise


async def test_static_local_volumes_bind_where_they_are_one_claim_each(
    scheduler: str, client: Client, namespace: str, extra_nodes: Any, make: Make
) -> None:
    """Two local PVs of a class without a provisioner, both on node A: the two pods that claim
    them go to A, each claim gets a PV of its own, and a third claim finds none anywhere."""
    node_a, _ = await pool(extra_nodes, namespace, 2)
    static = f"{namespace}-static"
    await make(CLASSES, storage_class(static, NO_PROVISIONER))
    pvs = {f"{namespace}-pv{i}" for i in range(2)}
    for name in sorted(pvs):
        await make(VOLUMES, local_volume(name, node_a, static))
    for i in range(3):
        await client.post(claims_path(namespace), claim(f"c{i}", static))
    await asyncio.gather(
        *(
            create(client, namespace, pool_pod(f"p{i}", scheduler, namespace, f"c{i}"))
            for i in (0, 1)
        )
    )
    assert [await placed(client, namespace, f"p{i}") for i in (0, 1)] == [node_a, node_a]
    volumes = [await bound_volume(client, namespace, f"c{i}") for i in (0, 1)]
    assert {v["metadata"]["name"] for v in volumes} == pvs
    assert [await scheduled_by(client, namespace, f"p{i}") for i in (0, 1)] == [scheduler] * 2

    await create(client, namespace, pool_pod("p2", scheduler, namespace, "c2"))
    message = await failed_message(client, namespace, "p2")
    assert message == await unschedulable(client, namespace, 2, BIND_CONFLICT)
    assert not (await get_pod(client, namespace, "p2"))["spec"].get("nodeName")
    assert not (await client.get(f"{claims_path(namespace)}/c2"))["spec"].get("volumeName")


async def test_a_class_whose_topologies_exclude_every_node_keeps_the_pod_pending(
    scheduler: str, client: Client, namespace: str, extra_nodes: Any, make: Make
) -> None:
    """The class's allowedTopologies name no pool node: no node can provision the claim, so
    the pod waits with upstream's reason and no node is written on the claim."""
    await pool(extra_nodes, namespace, 2)
    nowhere = f"{namespace}-nowhere"
    topologies = [(HOSTNAME, [f"nowhere-{namespace}"])]
    await make(CLASSES, storage_class(nowhere, PROVISIONER, allowed_topologies=topologies))
    await client.post(claims_path(namespace), claim("data", nowhere))
    async with TestProvisioner(client, PROVISIONER, namespace=namespace) as provisioner:
        await create(client, namespace, pool_pod("db", scheduler, namespace, "data"))
        message = await failed_message(client, namespace, "db")
        assert message == await unschedulable(client, namespace, 2, BIND_CONFLICT)
    assert provisioner.provisioned == {}
    assert not (await get_pod(client, namespace, "db"))["spec"].get("nodeName")
    pvc = await client.get(f"{claims_path(namespace)}/data")
    assert SELECTED_NODE not in (pvc["metadata"].get("annotations") or {})
    assert (pvc.get("status") or {}).get("phase") == "Pending"
