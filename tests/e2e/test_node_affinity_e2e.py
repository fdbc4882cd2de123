"""NodeAffinity's PreFilter end to end, each case run by berth and by upstream kube-scheduler
(the cluster's default-scheduler) with the same expected FailedScheduling message: names that
conflict in one term, a name that matches no node, and pods pinned by name."""

from __future__ import annotations

import pytest

from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Running
from tests.e2e.test_engine import bound_to, create, failed_message, node_count

JSON = dict[str, object]
NOT_HELPFUL = "Preemption is not helpful for scheduling"
SCHEDULERS = pytest.mark.parametrize("scheduler", ["berth", "default-scheduler"])


def by_name(name: str, scheduler: str, *terms: list[str]) -> JSON:
    """A pod whose required node affinity has one term per list, each list of node names
    ANDed as `metadata.name In [name]` field requirements (one value each, as the API wants)."""
    node_terms = [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]} for n in names]}
        for names in terms
    ]
    affinity = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": node_terms}}
    return make_pod(name).scheduler(scheduler).node_affinity(affinity).for_api()


async def node_names(client: Client) -> list[str]:
    return sorted(n["metadata"]["name"] for n in (await client.get("/api/v1/nodes"))["items"])


@SCHEDULERS
async def test_conflicting_names_in_one_term(
    berth_scheduler: Running, client: Client, namespace: str, scheduler: str
) -> None:
    """One term naming two different nodes matches none: PreFilter says so for all nodes.
    Upstream then ends the message with "not found" instead of preemption's part: its
    DynamicResources PostFilter finds no PreFilter state and stops PostFilter with that error."""
    first, second = (await node_names(client))[:2]
    total = await node_count(client)
    await create(client, namespace, by_name("conflict", scheduler, [first, second]))
    assert await failed_message(client, namespace, "conflict") == (
        f"0/{total} nodes are available: pod affinity terms conflict. not found"
    )


@SCHEDULERS
async def test_missing_node_then_it_appears(
    berth_scheduler: Running, client: Client, namespace: str, scheduler: str
) -> None:
    """A pod pinned to a node that does not exist: every node is left out by NodeAffinity's
    PreFilter result; once the node is created the pod is bound to it."""
    missing = f"{namespace}-{scheduler}"
    total = await node_count(client)
    await create(client, namespace, by_name("pinned", scheduler, [missing]))
    assert await failed_message(client, namespace, "pinned") == (
        f"0/{total} nodes are available: {total} node(s) didn't satisfy plugin(s) [NodeAffinity]."
        f" preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."
    )
    await client.post("/api/v1/nodes", make_node(missing).obj_())
    try:
        assert await bound_to(client, namespace, "pinned") == missing
    finally:
        try:
            await client.delete(f"/api/v1/nodes/{missing}")
        except ApiError as err:
            if err.status != 404:
                raise


@SCHEDULERS
async def test_pods_pinned_by_name_land_on_their_nodes(
    berth_scheduler: Running, client: Client, namespace: str, scheduler: str
) -> None:
    """As a DaemonSet places its pods: one per node, each on the node it names; a pod whose
    terms name two nodes goes to one of them."""
    names = await node_names(client)
    for i, node in enumerate(names):
        await create(client, namespace, by_name(f"ds-{i}", scheduler, [node]))
    await create(client, namespace, by_name("either", scheduler, [names[0]], [names[-1]]))
    for i, node in enumerate(names):
        assert await bound_to(client, namespace, f"ds-{i}") == node
    assert await bound_to(client, namespace, "either") in {names[0], names[-1]}
