"""Two berth shards with disjoint node pools, and the webhook routing a burst between them.

Each shard is a `berth run` with its own schedulerName, its own Lease and a `nodeSelector` (its
node pool). The webhook's rules send GPU pods and training pods to one shard and every other pod
of the test namespace to the other. 2,000 pods are created at once; every one must end up bound
by the shard its rule chose, on a node of that shard's pool, with no node over capacity.

The pool nodes are made for this test (unique labels, deleted afterwards) and carry a NoSchedule
taint that only this test's pods tolerate, so no other scheduler in the cluster can use them.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.kube.client import ApiError, Client
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Cluster, Running, start_berth
from tests.e2e.test_deploy import http_ok, wait_for
from tests.e2e.test_webhook import registered, skip_unless_loopback, start_webhook

JSON = dict[str, Any]

POOL_LABEL = "berth-test/pool"
NODES_PER_POOL = 10
# Room for 105 pods of 100m a node: a pool is 95% full after its 1,000 pods, so a scheduler
# that lost track of capacity would overcommit (or leave pods pending) rather than get lucky.
NODE_MILLI_CPU = 10_500
NODE_MEMORY_GI = 64
NODE_PODS = 110
GPUS_PER_NODE = 8
POD_MILLI_CPU, POD_MEMORY_MI = 100, 256
WEB, TRAINING, GPU = 1000, 950, 50  # pods: 1,000 per shard
CONCURRENCY = 64  # parallel creates


@dataclass(frozen=True)
class Shard:
    name: str
    scheduler: str
    pool: str

    def config(self, namespace: str) -> str:
        return f"""\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  qps: 2000
  burst: 4000
leaderElection:
  leaderElect: true
  # Generous: on a small shared test machine a Lease write can wait seconds behind the
  # burst's thousands of requests, and a lapsed renew deadline would stop the shard.
  leaseDuration: 60s
  renewDeadline: 45s
  retryPeriod: 2s
  resourceName: {self.name}
  resourceNamespace: {namespace}
nodeSelector:
  {POOL_LABEL}: {self.pool}
profiles:
- schedulerName: {self.scheduler}
"""


def pool_node(name: str, pool: str, taint: str, gpus: int) -> JSON:
    node = make_node(name).label(POOL_LABEL, pool).taint(POOL_LABEL, taint).obj_()
    node["status"]["capacity"] = node["status"]["allocatable"] = {
        "cpu": f"{NODE_MILLI_CPU}m",
        "memory": f"{NODE_MEMORY_GI}Gi",
        "pods": str(NODE_PODS),
        **({"nvidia.com/gpu": str(gpus)} if gpus else {}),
    }
    return node


@pytest.fixture
async def pools(client: Client) -> AsyncIterator[tuple[str, str, str]]:
    """Two pools of fresh nodes; yields (pool a, pool b, taint value). Deleted afterwards."""
    run_id = uuid.uuid4().hex[:8]
    a, b = f"{run_id}-a", f"{run_id}-b"
    nodes = [pool_node(f"{a}-{i:02d}", a, run_id, GPUS_PER_NODE) for i in range(NODES_PER_POOL)]
    nodes += [pool_node(f"{b}-{i:02d}", b, run_id, 0) for i in range(NODES_PER_POOL)]
    made = []
    try:
        for node in nodes:
            await client.post("/api/v1/nodes", node)
            made.append(node["metadata"]["name"])
        yield a, b, run_id
    finally:
        for name in made:
            try:
                await client.delete(f"/api/v1/nodes/{name}")
            except ApiError as err:
                if err.status != 404:
                    raise


def scheduled_count(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "scheduler_schedule_attempts":
            return sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels.get("result") == "scheduled"
            )
    return 0.0


async def test_two_shards_schedule_a_burst_routed_by_the_webhook(
    cluster: Cluster,
    client: Client,
    namespace: str,
    pools: tuple[str, str, str],
    tmp_path: Path,
) -> None:
    """2,000 pods created at once: each is bound by its rule's shard, onto that shard's pool,
    and no node holds more than its allocatable CPU, memory, GPUs or pod count."""
    skip_unless_loopback(cluster)
    pool_a, pool_b, run_id = pools
    train = Shard(f"train-{run_id}", f"berth-train-{run_id}", pool_a)
    web = Shard(f"web-{run_id}", f"berth-web-{run_id}", pool_b)
    selector = {"berth-test/shards": run_id}
    await client.patch(f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": selector}})
    rules = {
        "rules": [
            {"name": "gpu", "schedulerName": train.scheduler,
             "match": {"resources": ["nvidia.com/gpu"]}},
            {"name": "training", "schedulerName": train.scheduler,
             "match": {"podSelector": {"matchLabels": {"workload": "training"}}}},
            {"name": "rest", "schedulerName": web.scheduler,
             "match": {"namespaceSelector": {"matchLabels": selector}}},
        ]
    }  # fmt: skip
    webhook = start_webhook(rules, cluster.kubeconfig, tmp_path / "webhook")
    shards: dict[Shard, Running] = {}
    try:
        for shard in (train, web):
            shards[shard] = start_berth(
                shard.config(namespace), cluster.kubeconfig, tmp_path, shard.name
            )
        for running in shards.values():
            assert await wait_for(lambda r=running: http_ok(f"http://127.0.0.1:{r.port}/readyz"))
        assert await wait_for(lambda: http_ok(f"http://127.0.0.1:{webhook.health_port}/healthz"))

        def pod(name: str, kind: str) -> JSON:
            builder = make_pod(name).req(cpu=f"{POD_MILLI_CPU}m", memory=f"{POD_MEMORY_MI}Mi")
            obj = builder.toleration(POOL_LABEL, run_id).for_api()
            if kind == "training":
                obj["metadata"]["labels"] = {"workload": "training"}
            if kind == "gpu":
                obj["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "1"}
            return obj

        expected = {f"web-{i}": web for i in range(WEB)}
        expected |= {f"training-{i}": train for i in range(TRAINING)}
        expected |= {f"gpu-{i}": train for i in range(GPU)}
        burst = [pod(name, name.split("-")[0]) for name in expected]

        # Longer than the chart's 3 s: on a loaded test machine a fail-open pod (left to
        # default-scheduler) would fail this test for a reason that is not berth's.
        async with registered(client, webhook, selector, timeoutSeconds=10):
            # The configuration reaches the API server's webhook cache a moment after creation.
            async def active() -> bool:
                probe = await client.request(
                    "POST",
                    f"/api/v1/namespaces/{namespace}/pods",
                    body=pod("probe", "gpu"),
                    params={"dryRun": "All"},
                )
                return bool(probe["spec"]["schedulerName"] == train.scheduler)

            await wait_for(active, timeout=30)

            start = time.monotonic()
            queue: asyncio.Queue[JSON] = asyncio.Queue()
            for obj in burst:
                queue.put_nowait(obj)

            async def creator() -> None:
                while not queue.empty():
                    await client.post(f"/api/v1/namespaces/{namespace}/pods", queue.get_nowait())

            await asyncio.gather(*(creator() for _ in range(CONCURRENCY)))
            created = time.monotonic() - start

            async def all_bound() -> list[JSON] | None:
                for shard, running in shards.items():
                    if running.process.poll() is not None:
                        raise AssertionError(
                            f"shard {shard.name} exited ({running.process.returncode}):\n"
                            + running.log.read_text()[-3000:]
                        )
                items: list[JSON] = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))[
                    "items"
                ]
                done = sum(1 for p in items if p["spec"].get("nodeName"))
                return items if done == len(expected) else None

            pods = await wait_for(all_bound, timeout=120)
            bound = time.monotonic() - start
        print(f"\n{len(pods)} pods: created in {created:.1f}s, all bound after {bound:.1f}s")

        nodes = {n["metadata"]["name"]: n for n in (await client.get("/api/v1/nodes"))["items"]}
        per_node: dict[str, list[JSON]] = defaultdict(list)
        for p in pods:
            name, node = p["metadata"]["name"], p["spec"]["nodeName"]
            shard = expected[name]
            assert p["spec"]["schedulerName"] == shard.scheduler, name
            assert nodes[node]["metadata"]["labels"].get(POOL_LABEL) == shard.pool, (name, node)
            per_node[node].append(p)
        for node_name, placed in per_node.items():
            # Every pod asks for the same CPU and memory; the GPU pods for one GPU each.
            gpus = sum(1 for p in placed if p["metadata"]["name"].startswith("gpu-"))
            assert len(placed) * POD_MILLI_CPU <= NODE_MILLI_CPU, node_name
            assert len(placed) * POD_MEMORY_MI <= NODE_MEMORY_GI * 1024, node_name
            assert len(placed) <= NODE_PODS, node_name
            assert gpus <= (GPUS_PER_NODE if node_name.startswith(pool_a) else 0), node_name
        assert Counter(nodes[n]["metadata"]["labels"][POOL_LABEL] for n in per_node) == {
            pool_a: NODES_PER_POOL,
            pool_b: NODES_PER_POOL,
        }
        for shard, count in ((train, TRAINING + GPU), (web, WEB)):
            assert scheduled_count(shards[shard].port) == count, shard.name
    finally:
        webhook.stop()
        for running in shards.values():
            running.stop()
        # Free the pool nodes before the fixture deletes them.
        await client.request(
            "DELETE", f"/api/v1/namespaces/{namespace}/pods", params={"gracePeriodSeconds": 0}
        )
