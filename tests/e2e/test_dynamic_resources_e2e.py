"""DynamicResources end to end: berth never binds a pod that needs DRA devices (it allocates
none yet), whether it asks through resourceClaims or through an extended resource that a
DeviceClass backs; the pod gets a FailedScheduling event saying why, `berth explain` names the
plugin, and pods without such needs are bound as usual."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from plugins.dynamic_resources import EXTENDED_NOT_ALLOCATED
from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Running
from tests.e2e.test_engine import (
    bound_to,
    create,
    events_for,
    failed_message,
    get_pod,
    node_count,
    wait_for,
)
from tests.e2e.test_explain import explain

NOT_HELPFUL = "Preemption is not helpful for scheduling"
REASON = "berth does not allocate DRA devices yet: pod has resourceClaims [{}]"
DEVICE_CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"


async def test_pod_with_claims_is_not_bound_and_says_why(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A claim by name and one from a template (which kube-controller-manager's ResourceClaim
    controller turns into a claim): both pods wait with upstream's message shape and berth's
    reason; a pod without claims next to them is bound."""
    total = await node_count(client)
    by_name = make_pod("by-name").scheduler("berth").resource_claim("gpu", claim="some-claim")
    from_template = make_pod("from-template").scheduler("berth")
    from_template.resource_claim("nic", template="some-template")
    await create(client, namespace, by_name.for_api())
    await create(client, namespace, from_template.for_api())
    await create(client, namespace, make_pod("plain").scheduler("berth").for_api())
    assert await bound_to(client, namespace, "plain")
    for name, claim in (("by-name", "gpu"), ("from-template", "nic")):
        assert await failed_message(client, namespace, name) == (
            f"0/{total} nodes are available: {REASON.format(claim)}."
            f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
        )
    await asyncio.sleep(1.0)  # give a wrong bind every chance to happen
    for name in ("by-name", "from-template"):
        assert not (await get_pod(client, namespace, name))["spec"].get("nodeName")


async def test_explain_names_dynamic_resources(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """`berth explain` prints the message, then DynamicResources' reason for all nodes."""
    pod = make_pod("claims").scheduler("berth").resource_claim("gpu", claim="some-claim")
    await create(client, namespace, pod.for_api())
    message = await failed_message(client, namespace, "claims")
    lines = (await explain(berth_scheduler, f"{namespace}/claims")).splitlines()
    assert message in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("PLUGIN"))
    assert lines[header + 1].split() == ["DynamicResources", *REASON.format("gpu").split(), "all"]


@contextlib.asynccontextmanager
async def gpu_class(client: Client, namespace: str) -> AsyncIterator[tuple[str, str]]:
    """A DeviceClass backing an extended resource no node lists, named after the test's
    namespace; yields (class name, resource name) and deletes the class afterwards. Skips on
    a server that drops spec.extendedResourceName (v1.35, where DRAExtendedResource is alpha
    and off, so pods cannot ask for DRA devices this way)."""
    name = f"gpu-{namespace}.example.com"
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"extendedResourceName": f"example.com/gpu-{namespace}"},
    }
    made = await client.post(DEVICE_CLASSES, body)
    resource = (made.get("spec") or {}).get("extendedResourceName")
    try:
        if not resource:
            pytest.skip("the server drops spec.extendedResourceName (DRAExtendedResource off)")
        yield name, resource
    finally:
        with contextlib.suppress(ApiError):
            await client.delete(f"{DEVICE_CLASSES}/{name}")


def gpu_pod(resource: str) -> dict[str, Any]:
    """A berth pod asking for one `resource` (an extended resource's limit must equal its
    request)."""
    raw = make_pod("gpu").scheduler("berth").req(**{resource: "1"}).for_api()
    raw["spec"]["containers"][0]["resources"]["limits"] = {resource: "1"}
    return raw


async def dra_message(client: Client, namespace: str, name: str) -> str:
    """The pod's latest FailedScheduling message that names DRA. A pod tried before berth's
    informer saw the class gets NodeResourcesFit's "Insufficient ..." first; the class
    arriving moves it back (NodeResourcesFit's hint) and the next attempt says DRA."""

    async def probe() -> str | None:
        notes = [
            str(e["note"]) for e in await events_for(client, namespace, name, "FailedScheduling")
        ]
        return next((n for n in reversed(notes) if "DRA" in n), None)

    return await wait_for(probe)


async def test_extended_resource_backed_by_dra_is_not_bound_and_says_why(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A pod requesting an extended resource that a DeviceClass backs, on a cluster whose
    nodes do not list it: FailedScheduling names the resource and the class on every node,
    the pod is never bound, and `berth explain` shows DynamicResources' reason."""
    total = await node_count(client)
    async with gpu_class(client, namespace) as (device_class, resource):
        await create(client, namespace, gpu_pod(resource))
        reason = EXTENDED_NOT_ALLOCATED.format(resource=resource, device_class=device_class)
        message = await dra_message(client, namespace, "gpu")
        assert message == (
            f"0/{total} nodes are available: {total} {reason}."
            f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
        )
        lines = (await explain(berth_scheduler, f"{namespace}/gpu")).splitlines()
        assert message in lines
        header = next(i for i, line in enumerate(lines) if line.startswith("PLUGIN"))
        assert lines[header + 1].split() == ["DynamicResources", *reason.split(), str(total)]
        await asyncio.sleep(1.0)  # give a wrong bind every chance to happen
        assert not (await get_pod(client, namespace, "gpu"))["spec"].get("nodeName")


async def test_extended_resource_backed_by_dra_binds_where_a_device_plugin_lists_it(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A node whose allocatable lists the resource serves it through its device plugin, as
    before: the pod is bound there, the only node that can take it."""
    async with gpu_class(client, namespace) as (_, resource):
        node = f"device-plugin-{namespace}"
        await client.post("/api/v1/nodes", make_node(node).capacity(**{resource: "1"}).obj_())
        try:
            await create(client, namespace, gpu_pod(resource))
            assert await bound_to(client, namespace, "gpu") == node
        finally:
            await client.delete(f"/api/v1/nodes/{node}")
