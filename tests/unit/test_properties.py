"""Invariants of the scheduling cycle over random clusters and pod sequences (hypothesis):
no node is ever overcommitted, and a pod that fits an empty cluster is always placed."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins
from scheduler.app import build_profiles, queue_for
from scheduler.cache import Cache
from scheduler.config import parse
from scheduler.cycle import Scheduler
from scheduler.handle import ClusterHandle
from scheduler.model import PodInfo, compile_node, compile_pod
from tests.builders import make_node, make_pod

JSON = dict[str, Any]
NAME = "berth"
Gi = 2**30
EXTENDED = "example.com/gpu"

SETTINGS = settings(
    max_examples=100,
    deadline=None,  # virtual time only: no wall-clock limits
    suppress_health_check=[HealthCheck.too_slow],
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Handle:
    """handle.ClusterApi: records binds."""

    def __init__(self) -> None:
        self.bound: list[tuple[str, str]] = []

    async def bind(self, pod: PodInfo, node: str) -> None:
        self.bound.append((pod.uid, node))

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        pass

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        pass


class Quiet:
    """Reporter and Observer that drop everything."""

    def scheduled(self, *args: Any) -> None: ...

    def failed(self, *args: Any) -> None: ...

    def attempt(self, *args: Any) -> None: ...

    def extension_point(self, *args: Any) -> None: ...

    def plugin(self, *args: Any) -> None: ...

    def algorithm(self, *args: Any) -> None: ...

    def permit_wait(self, *args: Any) -> None: ...

    def queueing_hint(self, *args: Any) -> None: ...

    def preemption_goroutine(self, *args: Any) -> None: ...


PROFILES_DOC = {
    "apiVersion": "kubescheduler.config.k8s.io/v1",
    "kind": "KubeSchedulerConfiguration",
    "profiles": [{"schedulerName": NAME}],
}


HANDLE = Handle()
# Plugins are stateless apart from the binder's handle, so one set of profiles serves every
# example (building them per example would dominate the run time).
PROFILES = build_profiles(
    parse(PROFILES_DOC, plugins.registry().keys()), ClusterHandle(HANDLE), Quiet()
)


def scheduler_for(nodes: list[JSON], seed: int, batching: bool) -> tuple[Scheduler, Handle]:
    clock = Clock()
    HANDLE.bound = []
    cache = Cache()
    for node in nodes:
        cache.upsert_node(compile_node(node))
    queue = queue_for(PROFILES, clock=clock, initial_backoff=1.0, max_backoff=10.0)
    quiet = Quiet()
    scheduler = Scheduler(
        cache,
        queue,
        PROFILES,
        quiet,
        quiet,
        batching=batching,
        clock=clock,
        rng=random.Random(seed),
    )
    return scheduler, HANDLE


node_shapes = st.builds(
    dict,
    cpu=st.integers(min_value=0, max_value=8000),  # milli
    memory=st.integers(min_value=0, max_value=16),  # Gi
    pods=st.integers(min_value=0, max_value=6),
    gpu=st.integers(min_value=0, max_value=2),
)
pod_shapes = st.builds(
    dict,
    cpu=st.integers(min_value=0, max_value=4000),
    memory=st.integers(min_value=0, max_value=8),
    gpu=st.integers(min_value=0, max_value=1),
    requestless=st.integers(min_value=0, max_value=1),  # extra containers without requests
)


def node_json(i: int, shape: dict[str, int]) -> JSON:
    resources = {
        "cpu": f"{shape['cpu']}m",
        "memory": f"{shape['memory']}Gi",
        "pods": str(shape["pods"]),
    }
    if shape["gpu"]:
        resources[EXTENDED] = str(shape["gpu"])
    return make_node(f"node-{i}").resources(resources).obj_()


def pod_json(i: int, shape: dict[str, int]) -> JSON:
    requests: dict[str, str] = {}
    if shape["cpu"]:
        requests["cpu"] = f"{shape['cpu']}m"
    if shape["memory"]:
        requests["memory"] = f"{shape['memory']}Gi"
    if shape["gpu"]:
        requests[EXTENDED] = str(shape["gpu"])
    containers = [requests] + [{}] * shape["requestless"]
    return make_pod(f"pod-{i}").scheduler(NAME).containers(*containers).obj_()


def overcommitted(scheduler: Scheduler) -> list[str]:
    """Nodes whose placed pods' summed requests exceed allocatable for some resource (and a
    check that the table's requested columns agree with those sums)."""
    table = scheduler.cache.table
    bad = []
    for name, row in table.row_of.items():
        allocatable = table.node(row).allocatable
        totals: dict[str, int] = {}
        for placed in table.pods[row].values():
            for resource, amount in placed.requests.items():
                totals[resource] = totals.get(resource, 0) + amount
        columns = {r: int(table.requested[row, table.resource_index[r]]) for r in totals}
        assert columns == totals, name
        bad += [
            f"{name}: {r} {amount} > {allocatable.get(r, 0)}"
            for r, amount in totals.items()
            if amount > allocatable.get(r, 0)
        ]
    return bad


def fits(node: JSON, pod: PodInfo) -> bool:
    allocatable = compile_node(node).allocatable
    return all(amount <= allocatable.get(r, 0) for r, amount in pod.requests.items() if amount)


@SETTINGS
@given(
    node_list=st.lists(node_shapes, min_size=1, max_size=6),
    pod_list=st.lists(pod_shapes, min_size=1, max_size=25),
    seed=st.integers(min_value=0, max_value=2**16),
    batching=st.booleans(),
)
def test_no_node_is_ever_overcommitted(
    node_list: list[dict[str, int]],
    pod_list: list[dict[str, int]],
    seed: int,
    batching: bool,
) -> None:
    """Whatever pods arrive in whatever order, the pods assumed on a node never ask for more
    than its allocatable, for every resource (pods included)."""

    async def run() -> None:
        nodes = [node_json(i, shape) for i, shape in enumerate(node_list)]
        scheduler, handle = scheduler_for(nodes, seed, batching)
        placed = {}
        for i, shape in enumerate(pod_list):
            scheduler.queue.add(compile_pod(pod_json(i, shape)))
            entry = scheduler.queue.pop_nowait()
            assert entry is not None
            attempt = scheduler.schedule_one(entry)
            if attempt.node:
                placed[entry.pod.uid] = attempt.node
            assert overcommitted(scheduler) == []
        await scheduler.drain()
        assert dict(handle.bound) == placed
        assert overcommitted(scheduler) == []

    asyncio.run(run())


@SETTINGS
@given(
    node_list=st.lists(node_shapes, min_size=0, max_size=6),
    shape=pod_shapes,
    seed=st.integers(min_value=0, max_value=2**16),
    batching=st.booleans(),
)
def test_every_pod_that_fits_an_empty_cluster_is_placed(
    node_list: list[dict[str, int]], shape: dict[str, int], seed: int, batching: bool
) -> None:
    """If some empty node can hold the pod, the cycle places it on such a node; if none can,
    it is reported unschedulable."""

    async def run() -> None:
        nodes = [node_json(i, s) for i, s in enumerate(node_list)]
        scheduler, handle = scheduler_for(nodes, seed, batching)
        pod = compile_pod(pod_json(0, shape))
        feasible = {n["metadata"]["name"] for n in nodes if fits(n, pod)}
        scheduler.queue.add(pod)
        entry = scheduler.queue.pop_nowait()
        assert entry is not None
        attempt = scheduler.schedule_one(entry)
        await scheduler.drain()
        if feasible:
            assert attempt.node in feasible
            assert handle.bound == [(pod.uid, attempt.node)]
        else:
            assert (attempt.node, handle.bound) == ("", [])
            assert attempt.status is not None

    asyncio.run(run())
