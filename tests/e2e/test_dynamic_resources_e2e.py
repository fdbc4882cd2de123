"""DynamicResources end to end: berth never binds a pod with resourceClaims (it allocates no
DRA devices yet); the pod gets a FailedScheduling event saying why, `berth explain` names the
plugin, and pods without claims are bound as usual."""

from __future__ import annotations

import asyncio

from scheduler.kube.client import Client
from tests.builders import make_pod
from tests.e2e.conftest import Running
from tests.e2e.test_engine import bound_to, create, failed_message, get_pod, node_count
from tests.e2e.test_explain import explain

NOT_HELPFUL = "Preemption is not helpful for scheduling"
REASON = "berth does not allocate DRA devices yet: pod has resourceClaims [{}]"


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
