"""Equivalence batching must place pods exactly as scheduling them one at a time does."""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import pytest

import plugins
from scheduler import batch
from scheduler import config as cfg
from scheduler.app import build_profiles
from scheduler.cache import Cache
from scheduler.cycle import Scheduler
from scheduler.default_selector import SERVICE
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


ZONE = "topology.kubernetes.io/zone"


def _spread_cluster(seed: int, nodes: int) -> list[dict[str, Any]]:
    """Zones of uneven size, a few nodes without a zone label (the system defaults still spread
    those by hostname), some tainted."""
    rng = random.Random(seed)
    out = []
    for i in range(nodes):
        node = make_node(f"n{i:04d}").capacity(cpu=rng.choice(["2", "4", "8"]), memory="32Gi")
        if rng.random() > 0.05:
            node.label(ZONE, rng.choice(["z0", "z0", "z1", "z2"]))
        if rng.random() < 0.1:
            node.taint("dedicated", "batch")
        out.append(node.obj_())
    return out


def _service(name: str, app: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"selector": {"app": app}}}


def _spread_events(seed: int, nodes: list[dict[str, Any]], pods: int) -> list[tuple[str, Any]]:
    """Pods of several kinds interleaved, with a Service appearing part way (its pods' class
    turns from row-local to window-scored) and nodes moving zone (domain counts move)."""
    rng = random.Random(seed + 1)
    events: list[tuple[str, Any]] = [("service", _service("web", "web"))]
    for i in range(pods):
        if i == pods // 3:
            events.append(("service", _service("api", "api")))
        if i in (pods // 2, 2 * pods // 3):
            for node in rng.sample(nodes, 5):
                moved = copy.deepcopy(node)
                moved["metadata"]["labels"][ZONE] = rng.choice(["z1", "z3"])
                events.append(("node", moved))
        kind = rng.choice(["web", "web", "api", "own", "honor", "strict", "huge"])
        pod = make_pod(f"p{i:05d}").scheduler("berth").label("app", kind)
        cpu = rng.choice(["100m", "250m", "500m"])
        if kind in ("web", "api"):
            pod.req(cpu=cpu, memory="256Mi")
        elif kind == "own":
            selector = {"matchLabels": {"app": "own"}}
            pod.req(cpu=cpu).spread(2, ZONE, "ScheduleAnyway", selector)
            pod.spread(1, "kubernetes.io/hostname", "ScheduleAnyway", selector)
        elif kind == "honor":
            selector = {"matchLabels": {"app": "honor"}}
            pod.req(cpu=cpu).spread(1, ZONE, "ScheduleAnyway", selector, node_taints_policy="Honor")
            if rng.random() < 0.3:
                pod.node_selector(**{ZONE: "z0"})  # nodeAffinityPolicy Honor: only z0 counts
        elif kind == "strict":
            pod.req(cpu=cpu).spread(1, ZONE, "DoNotSchedule", {"matchLabels": {"app": "strict"}})
        else:
            pod.req(cpu="64")
        events.append(("pod", pod.obj_()))
    return events


async def _schedule_events(
    nodes: list[dict[str, Any]], events: list[tuple[str, Any]], *, batching: bool, seed: int
) -> tuple[dict[str, str], int, int]:
    """Placements, class-cache hits and window-scored PreScore runs."""
    config = cfg.parse(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "berth"}],
        },
        plugins.registry().keys(),
    )
    handle = in_memory()
    profiles = build_profiles(config, handle, _Quiet())
    cache = Cache()
    for node in nodes:
        cache.upsert_node(compile_node(node))
    profile = profiles["berth"]
    assert profile.queue_sort is not None
    queue = SchedulingQueue(profile.queue_sort.sort_key, clock=lambda: 0.0)
    scheduler = Scheduler(
        cache, queue, profiles, _Quiet(), _Quiet(), batching=batching, rng=random.Random(seed)
    )
    windowed = 0
    original = profile.window_raw_scores

    def counted(*args: Any) -> Any:
        nonlocal windowed
        windowed += 1
        return original(*args)

    profile.window_raw_scores = counted  # type: ignore[method-assign]
    placed = {}
    for kind, obj in events:
        if kind == "service":
            handle.selectors.apply(SERVICE, obj, deleted=False)
        elif kind == "node":
            cache.upsert_node(compile_node(obj))
        else:
            pod = compile_pod(obj)
            queue.add(pod)
            entry = queue.pop_nowait()
            assert entry is not None
            placed[pod.name] = scheduler.schedule_one(entry).node
    await scheduler.drain()
    return placed, scheduler.classes.hits, windowed


@pytest.mark.parametrize(
    ("seed", "nodes", "pods"),
    [
        pytest.param(4, 60, 500, id="spread-below-100-nodes"),
        pytest.param(5, 400, 1500, id="spread-sampled-400-nodes"),
    ],
)
async def test_spread_batched_placement_equals_one_by_one(seed: int, nodes: int, pods: int) -> None:
    """PodTopologySpread's ScheduleAnyway pods (the system defaults through a Service, the
    pod's own constraints, nodeTaintsPolicy Honor) take the batched path with the spreading
    scored per window, and land exactly where one-by-one scheduling puts them, while
    Services appear and nodes change zone."""
    cluster = _spread_cluster(seed, nodes)
    events = _spread_events(seed, cluster, pods)
    batched, hits, windowed = await _schedule_events(cluster, events, batching=True, seed=seed)
    single, no_hits, none = await _schedule_events(cluster, events, batching=False, seed=seed)
    assert batched == single
    assert hits > pods // 3 and no_hits == 0
    assert windowed > pods // 3 and none == 0  # the spreading really was scored per window
    assert sum(1 for node in batched.values() if node) > pods // 2


def _walk(order: list[int], feasible: list[bool], start: int, wanted: int) -> tuple[list[int], int]:
    """The reference: one row at a time from `start`, wrapping."""
    found: list[int] = []
    for processed in range(len(order)):
        row = order[(start + processed) % len(order)]
        if feasible[row]:
            found.append(row)
            if len(found) == wanted:
                return found, processed + 1
    return found, len(order)


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(4)])
def test_first_feasible_walks_like_one_row_at_a_time(seed: int) -> None:
    """The window's walk (a chunk, then the rest at once) finds the rows, and counts the rows
    examined, exactly as a walk one row at a time from the round-robin start does."""
    rng = random.Random(seed)
    for _ in range(300):
        total = rng.choice([1, 7, 100, 1500, 3000])
        order = list(range(total))
        rng.shuffle(order)
        density = rng.choice([0.0, 0.01, 0.1, 0.5, 1.0])
        feasible = [rng.random() < density for _ in range(total)]
        start, wanted = rng.randrange(total), rng.randint(1, total)
        rows, processed = batch._first_feasible(
            np.asarray(order, dtype=np.int64), np.asarray(feasible), start, wanted
        )
        assert (rows.tolist(), processed) == _walk(order, feasible, start, wanted)
