"""Equivalence batching must place pods exactly as scheduling them one at a time does."""

from __future__ import annotations

import random
from typing import Any

import pytest

import plugins
from scheduler import config as cfg
from scheduler.app import build_profiles
from scheduler.cache import Cache
from scheduler.cycle import Scheduler
from scheduler.handle import in_memory
from scheduler.model import compile_node, compile_pod
from scheduler.queue import SchedulingQueue
from scheduler.runtime import NullObserver
from tests.builders import make_node, make_pod


class _Quiet(NullObserver):
    def scheduled(self, *args: Any) -> None: ...
    def failed(self, *args: Any) -> None: ...


def _cluster(seed: int, nodes: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(nodes):
        node = make_node(f"n{i:04d}").label("topology.kubernetes.io/zone", f"z{i % 3}")
        node.capacity(cpu=rng.choice(["4", "8", "16"]), memory=rng.choice(["8Gi", "32Gi"]))
        if rng.random() < 0.3:
            node.label("disk", "ssd")
        if rng.random() < 0.1:
            node.taint("dedicated", "gpu")
        if rng.random() < 0.1:
            node.taint("flaky", "yes", effect="PreferNoSchedule")
        out.append(node.obj_())
    return out


def _workload(seed: int, pods: int) -> list[dict[str, Any]]:
    """Interleaved classes: plain, SSD-only, tolerating GPU, preferring a zone, too big."""
    rng = random.Random(seed + 1)
    out = []
    for i in range(pods):
        kind = rng.choice(["plain", "plain", "ssd", "gpu", "zone", "huge"])
        pod = make_pod(f"p{i:05d}").scheduler("berth")
        if kind == "plain":
            pod.req(cpu="500m", memory="1Gi")
        elif kind == "ssd":
            pod.req(cpu="1", memory="2Gi").node_selector(disk="ssd")
        elif kind == "gpu":
            pod.req(cpu="2", memory="4Gi").toleration("dedicated", "gpu")
        elif kind == "zone":
            pod.req(cpu="250m").preferred_affinity(10, "topology.kubernetes.io/zone", "In", "z1")
        else:
            pod.req(cpu="64")
        out.append(pod.obj_())
    return out


async def _schedule(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], *, batching: bool, seed: int
) -> tuple[dict[str, str], int]:
    config = cfg.parse(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "berth"}],
        },
        plugins.registry().keys(),
    )
    profiles = build_profiles(config, in_memory(), _Quiet())
    cache = Cache()
    for node in nodes:
        cache.upsert_node(compile_node(node))
    profile = profiles["berth"]
    assert profile.queue_sort is not None
    queue = SchedulingQueue(profile.queue_sort.sort_key, clock=lambda: 0.0)
    scheduler = Scheduler(
        cache, queue, profiles, _Quiet(), _Quiet(), batching=batching, rng=random.Random(seed)
    )
    placed = {}
    for raw in pods:
        pod = compile_pod(raw)
        queue.add(pod)
        entry = queue.pop_nowait()
        assert entry is not None
        placed[pod.name] = scheduler.schedule_one(entry).node
    await scheduler.drain()
    return placed, scheduler.classes.hits


@pytest.mark.parametrize(
    ("seed", "nodes", "pods"),
    [
        pytest.param(1, 40, 400, id="small-cluster-below-100-nodes"),
        pytest.param(2, 300, 1500, id="sampled-300-nodes"),
        pytest.param(3, 700, 2000, id="sampled-700-nodes-adaptive"),
    ],
)
async def test_batched_placement_equals_one_by_one(seed: int, nodes: int, pods: int) -> None:
    """Same cluster, same pods, same random seed: identical placements with and without
    equivalence batching (including the pods that fit nowhere)."""
    cluster, workload = _cluster(seed, nodes), _workload(seed, pods)
    batched, hits = await _schedule(cluster, workload, batching=True, seed=seed)
    single, no_hits = await _schedule(cluster, workload, batching=False, seed=seed)
    assert batched == single
    assert hits > pods // 2 and no_hits == 0  # the batched run really used the class cache
    assert sum(1 for node in batched.values() if node) > pods // 2
