"""DynamicResources end to end on the real control plane: DRA devices allocated at scheduling
time (issue 14). No kubelet or driver runs here, so each test publishes fake GPUs as a driver
would (scheduler.harness.fakedra: one ResourceSlice per node) on nodes of its own, labelled
pool=<namespace>; kube-controller-manager's ResourceClaim controller turns the pods' templates
into claims. Claim cases run with upstream kube-scheduler (`default-scheduler`) and with berth,
so the expectations are upstream's own; waits are generous and nothing is timed.

Extended resources backed by DRA (a DeviceClass's extendedResourceName) are allocated through
a claim the scheduler creates, or served by a device plugin where a node lists them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scheduler.harness import fakedra
from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Running
from tests.e2e.test_engine import (
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
__all__ = ["extra_nodes"]

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NOT_IN_POOL = "node(s) didn't match Pod's node affinity/selector"
CANNOT_ALLOCATE = "cannot allocate all claims"
DEVICE_CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"
TIMEOUT = 90.0  # generous: a loaded 2-core machine runs the whole control plane
MEMORY_AT_LEAST_100GI = (
    'device.capacity["gpu.example.com"].memory.compareTo(quantity("100Gi")) >= 0'
)
MEMORY_AT_LEAST_64GI = 'device.capacity["gpu.example.com"].memory.compareTo(quantity("64Gi")) >= 0'


@pytest.fixture(params=["default-scheduler", "berth"])
def scheduler(request: pytest.FixtureRequest) -> str:
    """The schedulerName of the case's pods (berth's session process is started for berth)."""
    name: str = request.param
    if name == "berth":
        request.getfixturevalue("berth_scheduler")
    return name


@pytest.fixture
async def gpus(client: Client, namespace: str, extra_nodes: Any) -> AsyncIterator[Any]:
    """`await gpus(count, slice_for=...)` makes `count` nodes in the namespace's pool, each
    publishing a slice (`slice_for(node)`, default 8 fake a100 GPUs), and a DeviceClass named
    after the namespace; returns (node names, class name). Slices and class are deleted
    afterwards."""
    made: list[str] = []
    device_class = f"gpu-{namespace}"

    async def make(count: int, slice_for: Any = None) -> tuple[list[str], str]:
        names = [f"n{i}-{namespace}" for i in range(count)]
        for name in names:
            await extra_nodes(make_node(name).label("pool", namespace).obj_())
            body = slice_for(name) if slice_for else fakedra.gpu_slice(name)
            await client.post(fakedra.SLICES, body)
            made.append(body["metadata"]["name"])
        await client.post(DEVICE_CLASSES, fakedra.device_class(device_class))
        return names, device_class

    yield make
    for name in made:
        with contextlib.suppress(ApiError):
            await client.delete(f"{fakedra.SLICES}/{name}")
    with contextlib.suppress(ApiError):
        await client.delete(f"{DEVICE_CLASSES}/{device_class}")


def claim_pod(name: str, scheduler: str, namespace: str, template: str) -> JSON:
    """A small pod for the namespace's pool with one claim from `template`."""
    pod = make_pod(name).scheduler(scheduler).req(cpu="10m", memory="16Mi")
    return pod.node_selector(pool=namespace).resource_claim("gpu", template=template).for_api()


async def template(client: Client, namespace: str, name: str, **spec: Any) -> None:
    path = f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaimtemplates"
    await client.post(path, fakedra.claim_template(name, **spec))


async def allocation_of(client: Client, namespace: str, pod: str) -> tuple[JSON, JSON]:
    """Wait until the pod is bound and its generated claim allocated and reserved for it;
    (the pod, the claim)."""

    async def probe() -> tuple[JSON, JSON] | None:
        raw = await get_pod(client, namespace, pod)
        statuses = (raw.get("status") or {}).get("resourceClaimStatuses") or []
        if not raw["spec"].get("nodeName") or not statuses:
            return None
        name = statuses[0]["resourceClaimName"]
        claim = await client.get(
            f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims/{name}"
        )
        status = claim.get("status") or {}
        reserved = [r.get("uid") for r in status.get("reservedFor") or []]
        if not status.get("allocation") or raw["metadata"]["uid"] not in reserved:
            return None
        return raw, claim

    return await wait_for(probe, timeout=TIMEOUT)


def devices(claim: JSON) -> list[tuple[str, str]]:
    """(pool, device) of each allocated device."""
    results = claim["status"]["allocation"]["devices"]["results"]
    return [(r["pool"], r["device"]) for r in results]


async def unschedulable(client: Client, pool_size: int, reason: str) -> str:
    """Upstream's message for a pod `reason` keeps off every pool node (the others are
    outside the pool): reasons sorted as strings, count first."""
    total = await node_count(client)
    reasons = ", ".join(sorted([f"{pool_size} {reason}", f"{total - pool_size} {NOT_IN_POOL}"]))
    return (
        f"0/{total} nodes are available: {reasons}."
        f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
    )


async def test_pods_claiming_three_gpus_fill_two_nodes_and_the_fifth_waits(
    scheduler: str, client: Client, namespace: str, gpus: Any
) -> None:
    """2 nodes x 8 GPUs, 5 pods claiming 3 each from a template: 4 are bound, each claim
    allocated on its pod's node and reserved for it, no device allocated twice; the 5th gets
    "cannot allocate all claims" on both nodes and stays unbound."""
    nodes, device_class = await gpus(2)
    await template(client, namespace, "three", count=3, device_class=device_class)
    for i in range(5):
        await create(client, namespace, claim_pod(f"p{i}", scheduler, namespace, "three"))
    taken: list[tuple[str, str]] = []
    placed: list[str] = []
    waiting = None
    for i in range(5):
        try:
            pod, claim = await allocation_of(client, namespace, f"p{i}")
        except AssertionError:
            assert waiting is None, "more than one pod left unbound"
            waiting = f"p{i}"
            continue
        placed.append(pod["spec"]["nodeName"])
        assert {p for p, _ in devices(claim)} == {pod["spec"]["nodeName"]}
        assert len(devices(claim)) == 3
        taken += devices(claim)
    assert sorted(placed) == sorted(nodes * 2)
    assert len(set(taken)) == len(taken) == 12
    assert waiting is not None
    message = await failed_message(client, namespace, waiting)
    assert message == await unschedulable(client, 2, CANNOT_ALLOCATE)
    assert not (await get_pod(client, namespace, waiting))["spec"].get("nodeName")


async def test_match_attribute_and_a_memory_selector_are_honoured(
    scheduler: str, client: Client, namespace: str, gpus: Any
) -> None:
    """One node with 4 small a100s and 4 large h100s. A pod asking for 4 GPUs of >= 64Gi
    gets exactly the h100s; one asking for 2 of one model (matchAttribute) gets two of the
    same model; a second big-memory pod finds none left and waits."""
    _, device_class = await gpus(1, slice_for=fakedra.mixed_slice)
    await template(
        client,
        namespace,
        "big",
        count=4,
        device_class=device_class,
        selectors=[MEMORY_AT_LEAST_64GI],
    )
    await template(
        client,
        namespace,
        "pair",
        count=2,
        device_class=device_class,
        match_attribute="gpu.example.com/model",
    )
    await template(
        client,
        namespace,
        "big-one",
        count=1,
        device_class=device_class,
        selectors=[MEMORY_AT_LEAST_64GI],
    )
    await create(client, namespace, claim_pod("big", scheduler, namespace, "big"))
    _, claim = await allocation_of(client, namespace, "big")
    assert sorted(d for _, d in devices(claim)) == [f"gpu-{i}" for i in range(4, 8)]
    await create(client, namespace, claim_pod("pair", scheduler, namespace, "pair"))
    _, pair = await allocation_of(client, namespace, "pair")
    chosen = sorted(d for _, d in devices(pair))
    assert len(chosen) == 2 and all(int(d.split("-")[1]) < 4 for d in chosen)
    await create(client, namespace, claim_pod("late", scheduler, namespace, "big-one"))
    assert await failed_message(client, namespace, "late") == await unschedulable(
        client, 1, CANNOT_ALLOCATE
    )


async def test_a_shared_claim_is_used_by_two_pods_on_one_node(
    scheduler: str, client: Client, namespace: str, gpus: Any
) -> None:
    """A claim by name, used by two pods: allocated once, both pods on the allocation's node
    and both in reservedFor."""
    _, device_class = await gpus(2)
    path = f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims"
    await client.post(path, fakedra.claim("shared", count=2, device_class=device_class))
    for name in ("a", "b"):
        pod = make_pod(name).scheduler(scheduler).req(cpu="10m", memory="16Mi")
        raw = pod.node_selector(pool=namespace).resource_claim("gpu", claim="shared").for_api()
        await create(client, namespace, raw)
    nodes = {await bound_to(client, namespace, name) for name in ("a", "b")}

    async def reserved() -> JSON | None:
        claim: JSON = await client.get(f"{path}/shared")
        status = claim.get("status") or {}
        return claim if len(status.get("reservedFor") or []) == 2 else None

    claim = await wait_for(reserved, timeout=TIMEOUT)
    assert len(nodes) == 1 and {p for p, _ in devices(claim)} == nodes
    assert len(devices(claim)) == 2


async def test_explain_names_the_reason(
    berth_scheduler: Running, client: Client, namespace: str, gpus: Any
) -> None:
    """`berth explain` on a pod whose claim fits nowhere prints the message and
    DynamicResources' reason with the node count."""
    _, device_class = await gpus(1)
    await template(client, namespace, "nine", count=9, device_class=device_class)
    await create(client, namespace, claim_pod("nine", "berth", namespace, "nine"))
    message = await failed_message(client, namespace, "nine")
    lines = (await explain(berth_scheduler, f"{namespace}/nine")).splitlines()
    assert message in lines
    row = next(line for line in lines if line.startswith("DynamicResources"))
    assert row.split() == ["DynamicResources", *CANNOT_ALLOCATE.split(), "1"]
    # Then the devices, node by node: the pool node first (the only one with devices), its
    # 8 GPUs all matching, 9 wanted.
    start = lines.index("Devices (DynamicResources), by node:")
    assert lines[start + 1].split()[:4] == ["NODE", "REQUEST", "WANTS", "MATCH/DEVICES"]
    node, request, wants, match, in_use, rejected = lines[start + 2].split()
    assert (node, wants, match, in_use, rejected) == (f"n0-{namespace}", "9", "8/8", "0", "-")
    assert request.startswith(f"{namespace}/nine-gpu-") and request.endswith("/gpu")


async def test_explain_names_the_selector_that_rejects_devices(
    berth_scheduler: Running, client: Client, namespace: str, gpus: Any
) -> None:
    """A selector no device satisfies: explain counts the devices it rejected, by its
    expression."""
    _, device_class = await gpus(1)
    await template(
        client,
        namespace,
        "big",
        count=1,
        device_class=device_class,
        selectors=[MEMORY_AT_LEAST_100GI],
    )
    await create(client, namespace, claim_pod("big", "berth", namespace, "big"))
    await failed_message(client, namespace, "big")
    lines = (await explain(berth_scheduler, f"{namespace}/big")).splitlines()
    start = lines.index("Devices (DynamicResources), by node:")
    assert f"selector #0 ({MEMORY_AT_LEAST_100GI})" in lines[start + 2]
    assert lines[start + 2].split()[2:5] == ["1", "0/8", "0"]


def gpu_pod(name: str, scheduler: str, namespace: str, resource: str, count: int) -> JSON:
    """A pod of the namespace's pool asking for `count` of `resource` (an extended resource's
    limit must equal its request)."""
    pod = make_pod(name).scheduler(scheduler).req(**{resource: str(count)})
    raw = pod.node_selector(pool=namespace).for_api()
    raw["spec"]["containers"][0]["resources"]["limits"] = {resource: str(count)}
    return raw


async def extended_class(client: Client, namespace: str, device_class: str) -> str:
    """Give the test's DeviceClass an extendedResourceName; returns it. Skips on a server that
    drops the field (v1.35, where DRAExtendedResource is alpha and off)."""
    path = f"{DEVICE_CLASSES}/{device_class}"
    resource = f"example.com/gpu-{namespace}"
    body = await client.get(path)
    body["spec"]["extendedResourceName"] = resource
    made = await client.put(path, body)
    if not (made.get("spec") or {}).get("extendedResourceName"):
        pytest.skip("the server drops spec.extendedResourceName (DRAExtendedResource off)")
    return resource


async def test_extended_resource_backed_by_dra_is_allocated_through_a_claim(
    scheduler: str, client: Client, namespace: str, gpus: Any
) -> None:
    """A pod asking for 3 of an extended resource a DeviceClass backs, on nodes whose
    allocatable does not list it: the scheduler creates a claim owned by the pod (upstream's
    annotation), allocates 3 GPUs of the pod's node to it, reserves it for the pod and records
    it in the pod's status; a pod asking for 9 gets "cannot allocate all claims"."""
    _, device_class = await gpus(2)
    resource = await extended_class(client, namespace, device_class)
    await create(client, namespace, gpu_pod("gpu", scheduler, namespace, resource, 3))
    node = await bound_to(client, namespace, "gpu")

    async def recorded() -> JSON | None:
        status = (await get_pod(client, namespace, "gpu")).get("status") or {}
        found: JSON | None = status.get("extendedResourceClaimStatus")
        return found

    record = await wait_for(recorded, timeout=TIMEOUT)
    claim = await client.get(
        f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims/"
        f"{record['resourceClaimName']}"
    )
    meta = claim["metadata"]
    assert meta["annotations"]["resource.kubernetes.io/extended-resource-claim"] == "true"
    assert meta["ownerReferences"][0]["name"] == "gpu"
    assert record["resourceClaimName"].startswith("gpu-extended-resources-")
    assert [m["resourceName"] for m in record["requestMappings"]] == [resource]
    assert len(devices(claim)) == 3 and {p for p, _ in devices(claim)} == {node}
    pod_uid = (await get_pod(client, namespace, "gpu"))["metadata"]["uid"]
    assert [r["uid"] for r in claim["status"]["reservedFor"]] == [pod_uid]
    await create(client, namespace, gpu_pod("nine", scheduler, namespace, resource, 9))
    assert await failed_message(client, namespace, "nine") == await unschedulable(
        client, 2, CANNOT_ALLOCATE
    )


async def test_extended_resource_backed_by_dra_binds_where_a_device_plugin_lists_it(
    scheduler: str, client: Client, namespace: str, gpus: Any, extra_nodes: Any
) -> None:
    """A node whose allocatable lists the resource serves it through its device plugin: with
    no devices published anywhere, the pod is bound there, and no claim is made."""
    _, device_class = await gpus(0)
    resource = await extended_class(client, namespace, device_class)
    node = f"device-plugin-{namespace}"
    await extra_nodes(make_node(node).label("pool", namespace).capacity(**{resource: "1"}).obj_())
    await create(client, namespace, gpu_pod("gpu", scheduler, namespace, resource, 1))
    assert await bound_to(client, namespace, "gpu") == node
    claims = await client.get(f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims")
    assert claims["items"] == []
