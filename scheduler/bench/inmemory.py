"""`berth bench --in-memory`: berth's engine and plugins with no API server.

The same pieces `berth run` wires (scheduler.app.wire: Cache, profiles, queue,
Scheduler with its own loop, the Prometheus metrics) run against nodes and pods compiled from
the workload's JSON, with the one in-memory Handle (scheduler.handle: ClusterHandle on an
InMemoryApi): a bind is recorded at once, and preempting removes the victim from the cache and
raises AssignedPodDelete, as its deletion's watch event would. The workload's init pods are in the
cache, bound, before the clock starts. What is timed is the
scheduling loop from the first pop until every pod is bound or reported unschedulable: queue,
PreFilter/Filter/Score, Reserve, assume, and the asynchronous binding cycle, both by the wall
clock and as this process's CPU time (which a busy machine does not inflate). Compiling the
pods (which the informer does in a real run) is timed separately, and so is loading the nodes:
compile_node and Cache.upsert_node for each, a page of node objects at a time, the objects
themselves made outside the clock (an informer receives them) and dropped after their page.
The peak RSS is the process's, so far (ru_maxrss): run one size per process to read it alone.

Not included, because they are the app's I/O rather than the engine: Events and the
PodScheduled condition (the reporter does nothing), and the watch confirming each bind.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import plugins as plugin_registry
from scheduler import framework
from scheduler.app import wire
from scheduler.bench import gangcheck
from scheduler.bench.progress import Progress, render
from scheduler.bench.workloads import Workload, init_namespace
from scheduler.config import parse
from scheduler.default_selector import SERVICE
from scheduler.handle import InMemoryApi
from scheduler.metrics import Metrics
from scheduler.model import UPSTREAM_POD_GROUPS, PodInfo, compile_node, compile_pod
from scheduler.podgroups import compile_pod_group
from scheduler.queue import SchedulingQueue

JSON = dict[str, Any]

DEFAULT_NODES = (5000, 50000)
DEFAULT_PODS = 10000
NODE_PAGE = 1000  # node objects made, then loaded, at a time (an informer's list page)
SCHEDULER_NAME = "berth"


@dataclass(frozen=True)
class InMemoryResult:
    workload: str
    nodes: int
    pods: int
    bound: int
    unschedulable: int
    seconds: float  # the scheduling loop, first pop to last bind (wall clock)
    pods_per_s: float
    us_per_pod: float
    cpu_us_per_pod: float  # this process's CPU time over the same loop: robust to a busy machine
    compile_us_per_pod: float  # compile_pod, as the informer would
    node_setup_s: float  # compile_node + cache.upsert_node for every node
    preempted: int = 0  # victims deleted by preemption
    groups: int = 0  # gang workloads: PodGroups, those bound whole, those partly bound (0!)
    groups_placed: int = 0
    partially_bound: int = 0
    peak_rss_mb: float = 0.0  # the process's peak resident set so far (ru_maxrss), MiB
    node_setup_cpu_s: float = 0.0  # node_setup_s as this process's CPU time
    placement: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> JSON:
        out = asdict(self)
        del out["placement"]
        return out


class _Reporter:
    def __init__(self, done: Callable[[], None]) -> None:
        self.failed_uids: set[str] = set()
        self._done = done

    def scheduled(self, pod: PodInfo, node: str) -> None:
        pass

    def failed(self, pod: PodInfo, message: str, reason: str) -> None:
        if pod.nominated_node_name:
            return  # nominated by preemption: it waits for its victims to go
        if pod.uid not in self.failed_uids:
            self.failed_uids.add(pod.uid)
            self._done()


async def run_once(
    workload: Workload,
    nodes: int,
    pods: int,
    progress: Progress | None = None,
    timeout: float = 3600.0,
) -> InMemoryResult:
    workload = workload.for_size(nodes, pods)
    config = parse(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": SCHEDULER_NAME}],
        },
        plugin_registry.registry().keys(),
    )
    queue: SchedulingQueue | None = None
    total = pods
    bound = 0

    def one_done() -> None:
        if bound + len(reporter.failed_uids) >= total and queue is not None:
            queue.close()

    def on_bound(pod: PodInfo, node: str) -> None:
        nonlocal bound
        bound += 1
        reporter.failed_uids.discard(pod.uid)  # failed before, e.g. to preempt
        one_done()

    def on_evict(victim: PodInfo) -> bool:
        if cache.remove_pod(victim.uid) is None:
            return False  # already gone: another preemptor chose it too
        if queue is not None:
            queue.on_event(framework.ASSIGNED_POD_DELETE, victim, None)
        return True

    reporter = _Reporter(one_done)
    api = InMemoryApi(on_bound, on_evict)
    metrics = Metrics(process_metrics=False)
    # Wired as `berth run` wires it (scheduler.app.wire), with no events or status writes.
    engine = wire(config, api, reporter, metrics=metrics)
    cache, handle, queue, scheduler = engine.cache, engine.handle, engine.queue, engine.scheduler
    groups = handle.pod_groups
    pod_groups = workload.pod_groups(pods)
    if pod_groups:  # what the PodGroup informer would have fed
        groups.served.add(UPSTREAM_POD_GROUPS)
        for obj in pod_groups:
            obj["metadata"]["namespace"] = "bench"
            group = compile_pod_group(UPSTREAM_POD_GROUPS, obj)
            groups.apply(group, group.key)
    for service in workload.service_objects():
        service["metadata"]["namespace"] = "bench"
        handle.selectors.apply(SERVICE, service, deleted=False)

    node_setup = node_setup_cpu = 0.0
    node_names: list[str] = []
    for first in range(1, nodes + 1, NODE_PAGE):
        page = workload.nodes(min(NODE_PAGE, nodes + 1 - first), first)
        start, cpu_start = time.perf_counter(), time.process_time()
        for obj in page:
            cache.upsert_node(compile_node(obj))
        node_setup += time.perf_counter() - start
        node_setup_cpu += time.process_time() - cpu_start
        node_names.extend(obj["metadata"]["name"] for obj in page)
    init = workload.init_pods(node_names, "bench")
    del node_names
    for obj in init:
        obj["metadata"].update(
            namespace=init_namespace("bench"), uid=f"uid-init-{obj['metadata']['name']}"
        )
        cache.add_pod(compile_pod(obj))

    raw = workload.pods(pods, SCHEDULER_NAME)
    for obj in raw:
        obj["metadata"].update(namespace="bench", uid=f"uid-{obj['metadata']['name']}")
    start = time.perf_counter()
    compiled = [compile_pod(obj) for obj in raw]
    compile_s = time.perf_counter() - start
    # Every pod is known before any enters the queue (the informer's first list does the
    # same): a gang's members pass PreEnqueue at once.
    for pod in compiled:
        if pod.pod_group is not None:
            groups.track(pod)
    for pod in compiled:
        queue.add(pod)

    label = f"in-memory {workload.name} {nodes:,} nodes"

    began = time.perf_counter()

    async def show() -> None:
        while progress is not None:
            done, elapsed = bound, time.perf_counter() - began
            rate = done / elapsed if elapsed > 0 else 0.0
            progress.update(
                render(label, done, total, f"bound  {elapsed:6.1f}s  {rate:8.0f} pods/s")
            )
            await asyncio.sleep(0.25)

    shower = asyncio.create_task(show())
    cpu_start = time.process_time()
    start = began = time.perf_counter()
    try:
        if total:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                await scheduler.run()
        await scheduler.drain()
    finally:
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        shower.cancel()
    if progress is not None:
        progress.done(
            render(label, bound, total, f"bound  {seconds:6.2f}s  {total / seconds:8.0f} pods/s")
        )
    placement = {key.split("/", 1)[1]: node for key, node in api.placement.items()}
    for obj in raw:
        obj["spec"]["nodeName"] = placement.get(obj["metadata"]["name"], "")
    counted = gangcheck.count(pod_groups, raw)
    return InMemoryResult(
        groups=len(counted),
        groups_placed=sum(1 for c in counted if c.bound >= c.quorum),
        partially_bound=sum(1 for c in counted if c.partial),
        workload=workload.name,
        nodes=nodes,
        pods=pods,
        bound=bound,
        unschedulable=len(reporter.failed_uids),
        preempted=len(api.preempted),
        seconds=round(seconds, 4),
        pods_per_s=round(pods / seconds, 1) if seconds > 0 else 0.0,
        us_per_pod=round(seconds / pods * 1e6, 1) if pods else 0.0,
        cpu_us_per_pod=round(cpu / pods * 1e6, 1) if pods else 0.0,
        compile_us_per_pod=round(compile_s / pods * 1e6, 1) if pods else 0.0,
        node_setup_s=round(node_setup, 3),
        peak_rss_mb=round(peak_rss_mb(), 1),
        node_setup_cpu_s=round(node_setup_cpu, 3),
        placement=placement,
    )


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MiB (ru_maxrss: KiB on Linux, bytes on
    macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def render_markdown(results: list[InMemoryResult]) -> str:
    """The results as a table; gang runs add their groups (placed whole, partly bound)."""
    gangs = any(r.groups for r in results)
    extra = " groups | placed whole | partly bound |" if gangs else ""
    lines = [
        "| workload | nodes | pods | bound | unschedulable | seconds | pods/s | µs/pod "
        "| CPU µs/pod | compile µs/pod | node setup s | node setup CPU s | peak RSS MB |" + extra,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" * 3 if gangs else ""),
    ]
    for r in results:
        row = (
            f"| {r.workload} | {r.nodes:,} | {r.pods:,} | {r.bound:,} | {r.unschedulable:,} "
            f"| {r.seconds:.3f} | {r.pods_per_s:,.0f} | {r.us_per_pod:,.1f} "
            f"| {r.cpu_us_per_pod:,.1f} | {r.compile_us_per_pod:,.1f} | {r.node_setup_s:.2f} "
            f"| {r.node_setup_cpu_s:.2f} | {r.peak_rss_mb:,.0f} |"
        )
        if gangs:
            row += f" {r.groups:,} | {r.groups_placed:,} | {r.partially_bound:,} |"
        lines.append(row)
    return "\n".join(lines) + "\n"
