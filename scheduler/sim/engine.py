"""One simulation: berth's engine, wired as `berth run` wires it, on a snapshot, in memory.

    snapshot objects ──ADDED──▶ EventHandlers ──▶ Cache (NodeTable) + stores + SchedulingQueue
    Scheduler (the same profiles, QueueSort, batching, percentageOfNodesToScore, preemption)
       bind     ──▶ SimApi records it, and feeds the pod back bound (the watch's MODIFIED)
       preempt  ──▶ SimApi records the victim, and feeds its deletion (the watch's DELETED)
       volumes  ──▶ the claim is marked bound (what the PV controller / provisioner would do)

The engine is scheduler.app.wire's, as `berth run` has it. The objects go through its event
handlers (every kind, then nodes, then pods: `order` "name" is the API's list order,
namespace/name, "given" the snapshot's), and scheduling starts once all are in, as
`berth run` starts after its caches synced. Pods then leave the queue in QueueSort order, so a
burst of pods created before berth looks is placed as `berth run` would place it; `seed` fixes
the random choices among equally scored nodes (`berth run --tie-break-seed` takes the same).

Run until nothing is left to try: every pod is bound, or waits unschedulable (or gated) with
the message of its last attempt. Nominated pods wait for their victims, which go at once.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.app import wire
from scheduler.cache import Cache
from scheduler.config import SchedulerConfig
from scheduler.eventhandlers import SELECTOR_SOURCES, VOLUME_SOURCES
from scheduler.handle import InMemoryApi
from scheduler.kube.informer import ADDED, DELETED, MODIFIED
from scheduler.metrics import Metrics
from scheduler.model import COSCHEDULING_POD_GROUPS, UPSTREAM_POD_GROUPS, PodInfo
from scheduler.queue import ACTIVE, ASSUMED, BACKOFF, IN_FLIGHT
from scheduler.sim import provisioning
from scheduler.sim.snapshot import ClusterSnapshot
from scheduler.volumes import Claim

JSON = dict[str, Any]

IDLE_CHECK_SECONDS = 0.005


@dataclass(frozen=True)
class Preemption:
    victim: str  # "ns/name"
    node: str
    preemptor: str


@dataclass
class Outcome:
    """The simulation's answer. Pods are "ns/name" keys of the pods that were pending."""

    placed: dict[str, str] = field(default_factory=dict)  # pod -> node
    pending: dict[str, str] = field(default_factory=dict)  # pod -> upstream's message
    nominated: dict[str, str] = field(default_factory=dict)  # pending pod -> nominated node
    preempted: list[Preemption] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)  # pod -> why it was not scheduled
    # Pending pods of schedulers the configuration has no profile for, per schedulerName.
    ignored: dict[str, int] = field(default_factory=dict)
    cycles: int = 0
    seconds: float = 0.0
    # Per node: (allocatable, requested before, requested after) for cpu (millicores) and
    # memory (bytes), and the node's labels, for utilisation reports.
    nodes: dict[str, NodeUse] = field(default_factory=dict)
    # Seconds from each placed pod's arrival (the start, for a burst) to its bind.
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class NodeUse:
    labels: Mapping[str, str]
    cpu: int  # allocatable millicores
    memory: int  # allocatable bytes
    pods: int  # allocatable pods
    cpu_before: int
    memory_before: int
    pods_before: int
    cpu_after: int
    memory_after: int
    pods_after: int


class SimApi(InMemoryApi):
    """InMemoryApi that remembers who preempted whom and completes volume binding."""

    def __init__(
        self,
        on_bound: Callable[[PodInfo, str], None],
        on_evict: Callable[[PodInfo], bool],
        on_volume: Callable[[Claim, str], None],
    ) -> None:
        super().__init__(on_bound, on_evict)
        self.preemptions: list[Preemption] = []
        self._on_volume = on_volume

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        await super().preempt(preemptor, victim, node)
        self.preemptions.append(Preemption(victim.key, node, preemptor.key))

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        super().preempted_in_memory(preemptor, victim, node)
        self.preemptions.append(Preemption(victim.key, node, preemptor.key))

    async def bind_volume(self, pv: str, claim: Claim) -> None:
        await super().bind_volume(pv, claim)
        self._on_volume(claim, pv)

    async def select_node(self, claim: Claim, node: str) -> None:
        await super().select_node(claim, node)
        self._on_volume(claim, f"pvc-{claim.uid or claim.name}")


class _Reporter:
    def __init__(self) -> None:
        self.messages: dict[str, str] = {}  # pod key -> its last attempt's message
        self.nominated: dict[str, str] = {}

    def scheduled(self, pod: PodInfo, node: str) -> None:
        self.messages.pop(pod.key, None)

    def failed(self, pod: PodInfo, message: str, reason: str) -> None:
        self.messages[pod.key] = message
        if pod.nominated_node_name:
            self.nominated[pod.key] = pod.nominated_node_name


async def simulate(
    snapshot: ClusterSnapshot,
    config: SchedulerConfig,
    *,
    seed: int = 0,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    timeout: float = 3600.0,
    arrival_rate: float | None = None,
    order: str = "name",
) -> Outcome:
    """Schedule every pending pod of the snapshot (those of the config's profiles) on top of
    it: all at once (a burst), or `arrival_rate` pods per second. `order` is the order they
    reach the queue: "name" (namespace/name, as a list returns them: berth starting, or
    restarting, on pods created before) or "given" (the snapshot's order: the cluster's pending
    pods, then the manifests' in the order written, as they arrive at a running berth).
    `on_progress(placed or given up, pending in all)` now and then. Raises TimeoutError
    after `timeout` seconds of wall clock."""
    outcome = Outcome()
    reporter = _Reporter()
    arrival: dict[str, float] = {}  # pending pod key -> when it arrived (s since start)
    start = time.perf_counter()

    def on_bound(pod: PodInfo, node: str) -> None:
        outcome.placed[pod.key] = node
        if pod.key in arrival:
            outcome.latencies.append(time.perf_counter() - start - arrival.pop(pod.key))
        reporter.messages.pop(pod.key, None)
        # A shallow copy: nothing changes the JSON a PodInfo was compiled from.
        bound = {**pod.raw, "spec": {**(pod.raw.get("spec") or {}), "nodeName": node}}
        handlers.on_pod(MODIFIED, bound, pod.raw)  # the watch confirming the bind

    def on_evict(victim: PodInfo) -> bool:
        if cache.bound_pod(victim.uid) is None and not cache.is_assumed(victim.uid):
            return False  # already gone: two preemptors chose it
        outcome.placed.pop(victim.key, None)
        handlers.on_pod(DELETED, victim.raw, None)
        return True

    def on_volume(claim: Claim, volume: str) -> None:
        """What the PV controller (and a provisioner, for a claim with no PV chosen) would
        do: bind the claim and the PV to each other (scheduler.sim.provisioning)."""
        key = (claim.namespace, claim.name)
        pvc = raw_claims.get(key) or _claim_json(claim)
        pv = raw_volumes.get(volume)
        if pv is None:
            pv = provisioning.provisioned(pvc)
        pvc, pv = provisioning.bind(pvc, pv)
        raw_claims[key] = pvc
        name = str(pv["metadata"]["name"])
        feeders["persistentvolumes"](ADDED if name not in raw_volumes else MODIFIED, pv, None)
        raw_volumes[name] = pv
        feeders["persistentvolumeclaims"](MODIFIED, pvc, None)

    claims, made = provisioning.immediate(
        snapshot.of("persistentvolumeclaims"), snapshot.of("storageclasses")
    )
    objects = {**snapshot.objects, "persistentvolumeclaims": claims}
    objects["persistentvolumes"] = [*snapshot.of("persistentvolumes"), *made]
    raw_claims = {_list_order(obj): obj for obj in claims}
    raw_volumes = {
        str((obj.get("metadata") or {}).get("name")): obj for obj in objects["persistentvolumes"]
    }

    def invalid(obj: JSON, message: str) -> None:
        meta = obj.get("metadata") or {}
        outcome.invalid[f"{meta.get('namespace')}/{meta.get('name')}"] = message

    api = SimApi(on_bound, on_evict, on_volume)
    # Wired as `berth run` wires it (scheduler.app.wire), with no events or status writes.
    engine = wire(
        config,
        api,
        reporter,
        metrics=Metrics(process_metrics=False),
        seed=seed,
        handler_hooks={"report_failure": invalid},
    )
    cache, handle, handlers = engine.cache, engine.handle, engine.handlers
    queue, scheduler, profiles = engine.queue, engine.scheduler, engine.profiles
    feeders: dict[str, Callable[[str, JSON, JSON | None], None]] = {
        "namespaces": handlers.on_namespace,
        "priorityclasses": handlers.on_priority_class,
        "poddisruptionbudgets": handlers.on_pdb,
        **{path.rsplit("/", 1)[1]: handlers.volume_handler(k) for path, k in VOLUME_SOURCES},
        **{path.rsplit("/", 1)[1]: handlers.selector_handler(k) for path, k in SELECTOR_SOURCES},
        "deviceclasses": handlers.on_device_class,
        "resourceslices": handlers.on_resource_slice,
        "resourceclaims": handlers.on_resource_claim,
        "podgroups": handlers.pod_group_handler(UPSTREAM_POD_GROUPS),
        "podgroups.scheduling.x-k8s.io": handlers.pod_group_handler(COSCHEDULING_POD_GROUPS),
        "nodes": handlers.on_node,
    }
    handle.pod_groups.served = {
        api_group
        for key, api_group in (
            ("podgroups", UPSTREAM_POD_GROUPS),
            ("podgroups.scheduling.x-k8s.io", COSCHEDULING_POD_GROUPS),
        )
        if key not in snapshot.missing
    }
    for key, feed in feeders.items():
        for obj in objects.get(key, ()):
            _feed(outcome, key, feed, obj)
    pending_total = 0
    paced: list[JSON] = []  # pending pods that arrive over time (arrival_rate)
    pods = snapshot.of("pods")
    for obj in sorted(pods, key=_list_order) if order == "name" else pods:
        spec = obj.get("spec")
        if not isinstance(spec, dict) or not isinstance(obj.get("metadata"), dict):
            outcome.invalid[_key(obj)] = "malformed pod: metadata and spec must be mappings"
            continue
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") and phase not in ("Succeeded", "Failed"):
            name = spec.get("schedulerName") or "default-scheduler"
            if name not in profiles:
                outcome.ignored[name] = outcome.ignored.get(name, 0) + 1
            else:
                pending_total += 1
                if arrival_rate:
                    paced.append(obj)
                    continue
                arrival[_key(obj)] = 0.0
        _feed(outcome, "pods", handlers.on_pod, obj)
    pending_total -= sum(1 for k in outcome.invalid if k in arrival)
    for k in outcome.invalid:
        arrival.pop(k, None)
    # What the nodes held before anything was placed: the bound pods are in, no pending one.
    before = _usage(cache)

    def settled() -> bool:
        counts = queue.counts()
        moving = counts[ACTIVE] + counts[BACKOFF] + counts[IN_FLIGHT] + counts[ASSUMED]
        return moving == 0 and not paced

    async def watch() -> None:
        while True:
            await asyncio.sleep(IDLE_CHECK_SECONDS)
            on_progress(len(outcome.placed) + len(reporter.messages), pending_total)
            if settled():
                await scheduler.drain()  # preemptions in flight: their deletions move pods
                if settled():
                    queue.close()
                    return

    async def arrive() -> None:
        """Pod i arrives at i / arrival_rate seconds: as a controller creating them would."""
        assert arrival_rate
        fed = 0
        while fed < len(paced):
            due = min(len(paced), int((time.perf_counter() - start) * arrival_rate) + 1)
            for obj in paced[fed:due]:
                arrival[_key(obj)] = time.perf_counter() - start
                handlers.on_pod(ADDED, obj, None)
            fed = max(fed, due)
            await asyncio.sleep(0.001)
        paced.clear()

    # The snapshot's objects live as long as the run: moved out of the collector's sight, a
    # full collection does not walk millions of node dicts. Without this, shards of a
    # million-node snapshot stalled 5-6 s at a time, a p99 latency of 6.3 s instead of 0.3.
    gc.freeze()
    start = time.perf_counter()
    watcher = asyncio.create_task(watch())
    feeder = asyncio.create_task(arrive()) if paced else None
    try:
        async with asyncio.timeout(timeout):
            await scheduler.run()
            await scheduler.drain()
    finally:
        watcher.cancel()
        if feeder is not None:
            feeder.cancel()
        gc.unfreeze()
    outcome.seconds = time.perf_counter() - start
    outcome.cycles = queue.scheduling_cycle
    outcome.pending = {k: m for k, m in reporter.messages.items() if k not in outcome.placed}
    for entry in queue.pods.values():
        key = entry.pod.key
        if key not in outcome.placed and key not in outcome.pending:
            outcome.pending[key] = entry.gate_message or "waiting (gated)"
    outcome.nominated = {k: n for k, n in reporter.nominated.items() if k in outcome.pending}
    outcome.preempted = list(api.preemptions)
    outcome.nodes = _nodes(cache, before)
    return outcome


def _feed(
    outcome: Outcome, kind: str, handler: Callable[[str, JSON, JSON | None], None], obj: JSON
) -> None:
    """Give one snapshot object to its handler. The handlers expect what the API server
    serves; a snapshot file edited by hand may hold shapes it never would (a node without
    metadata, containers that are not a list): such an object is reported and skipped."""
    try:
        handler(ADDED, obj, None)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        key = _key(obj) if kind == "pods" else f"{kind}/{_key(obj)}"
        outcome.invalid[key] = f"malformed {kind} object: {err!r}"


def _key(obj: JSON) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


def _list_order(obj: JSON) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _claim_json(claim: Claim) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim.name, "namespace": claim.namespace, "uid": claim.uid},
        "spec": {},
    }


def _usage(cache: Cache) -> dict[str, tuple[int, int, int]]:
    """Per node name: requested (cpu millicores, memory bytes, pods)."""
    table = cache.table
    cpu, mem, pods = (table.resource_index[r] for r in ("cpu", "memory", "pods"))
    return {
        name: (
            int(table.requested[row, cpu]),
            int(table.requested[row, mem]),
            int(table.requested[row, pods]),
        )
        for name, row in table.row_of.items()
    }


def _nodes(cache: Cache, before: Mapping[str, tuple[int, int, int]]) -> dict[str, NodeUse]:
    table = cache.table
    cpu, mem, pods = (table.resource_index[r] for r in ("cpu", "memory", "pods"))
    after = _usage(cache)
    out = {}
    for name, row in sorted(table.row_of.items()):
        b = before.get(name, (0, 0, 0))
        a = after[name]
        out[name] = NodeUse(
            labels=dict(table.node(row).labels),
            cpu=int(table.allocatable[row, cpu]),
            memory=int(table.allocatable[row, mem]),
            pods=int(table.allocatable[row, pods]),
            cpu_before=b[0],
            memory_before=b[1],
            pods_before=b[2],
            cpu_after=a[0],
            memory_after=a[1],
            pods_after=a[2],
        )
    return out


def owners(pods: Iterable[JSON]) -> dict[str, str]:
    """Pod key -> its controller as "Kind/namespace/name" (the pod itself when it has none);
    a ReplicaSet's pods are reported under the ReplicaSet's name."""
    out = {}
    for obj in pods:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace") or "default", meta.get("name") or ""
        ref = next(
            (
                r
                for r in meta.get("ownerReferences") or []
                if isinstance(r, dict) and r.get("controller")
            ),
            None,
        )
        out[f"{ns}/{name}"] = (
            f"{ref.get('kind')}/{ns}/{ref.get('name')}" if ref else f"Pod/{ns}/{name}"
        )
    return out
