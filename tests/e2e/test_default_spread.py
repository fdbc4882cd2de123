"""PodTopologySpread's default constraints select pods by the Services and the controller that
select the new pod (upstream helper.DefaultSelector), read through berth's informers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Cluster, start_berth
from tests.e2e.test_engine import bound_to, create, wait_for

SCHEDULER = "berth-default-spread"
CONFIG = f"""\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: {SCHEDULER}
  pluginConfig:
  - name: PodTopologySpread
    args:
      defaultingType: List
      defaultConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
"""


@pytest.fixture
async def four_nodes(client: Client, namespace: str) -> AsyncIterator[list[str]]:
    """Four empty nodes of this test's own (selected by a label only its pods use)."""
    names = [f"{namespace}-{c}" for c in "abcd"]
    for name in names:
        await client.post("/api/v1/nodes", make_node(name).label("spread-e2e", namespace).obj_())
    yield names
    for name in names:
        try:
            await client.delete(f"/api/v1/nodes/{name}")
        except ApiError as err:
            if err.status != 404:
                raise


async def test_default_constraints_spread_by_replicaset_and_service(
    cluster: Cluster, client: Client, namespace: str, four_nodes: list[str], tmp_path: Path
) -> None:
    """Two pods per node already; the ReplicaSet's pods are on a, b, c and the Service's on
    b, c, d. With hostname maxSkew 1 by default, the ReplicaSet's next pod fits only on d and a
    new Service pod only on a (every other placement has skew 2); all scores are equal.

    The ReplicaSet is a real one: its controller creates the pods (the first three are bound
    by the test before berth starts, the fourth comes from scaling it up and is berth's)."""
    a, b, c, d = four_nodes
    rs_path = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
    template = make_pod("template").scheduler(SCHEDULER).label("app", "web")
    template = template.node_selector(**{"spread-e2e": namespace}).for_api()
    await client.post(
        rs_path,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": template["metadata"], "spec": template["spec"]},
            },
        },
    )
    await client.post(
        f"/api/v1/namespaces/{namespace}/services",
        {
            "metadata": {"name": "api"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]},
        },
    )
    first = await wait_for(lambda: _web_pods(client, namespace, 3))
    for pod, node in zip(sorted(first), (a, b, c), strict=True):
        await client.post(
            f"/api/v1/namespaces/{namespace}/pods/{pod}/binding",
            {"metadata": {"name": pod}, "target": {"kind": "Node", "name": node}},
        )
    placed = {
        "api-0": (b, "api"),
        "api-1": (c, "api"),
        "api-2": (d, "api"),
        "filler-a": (a, "filler"),
        "filler-d": (d, "filler"),
    }
    for name, (node, app) in placed.items():
        await create(client, namespace, make_pod(name).label("app", app).node(node).for_api())
    running = start_berth(CONFIG, cluster.kubeconfig, tmp_path, "default-spread")
    try:
        await client.patch(f"{rs_path}/web", {"spec": {"replicas": 4}}, kind="merge")
        fourth = await wait_for(lambda: _web_pods(client, namespace, 4))
        (new,) = set(fourth) - set(first)
        assert await bound_to(client, namespace, new) == d
        api = (
            make_pod("api-new")
            .scheduler(SCHEDULER)
            .label("app", "api")
            .node_selector(**{"spread-e2e": namespace})
        )
        await create(client, namespace, api.for_api())
        assert await bound_to(client, namespace, "api-new") == a
    finally:
        running.stop()
        print(running.log.read_text()[-3000:])


async def _web_pods(client: Client, namespace: str, count: int) -> list[str] | None:
    """The names of the ReplicaSet's pods once there are `count` of them."""
    pods = await client.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector="app=web")
    names = [p["metadata"]["name"] for p in pods["items"]]
    return names if len(names) == count else None
