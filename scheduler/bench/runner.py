"""One benchmark run per (scheduler, repeat): a cluster, the scheduler, the pods, the watch.

    fresh cluster (default)                      shared cluster (--kubeconfig)
    ───────────────────────                      ─────────────────────────────
    plane.up(DIR, no nodes)                      create the workload's nodes (bench-node-*)
    create the workload's nodes                    once, delete them at the end
    create its PriorityClasses and init pods     the same, init pods in a namespace per run
    start the scheduler, wait until ready        start the scheduler, wait until ready
    measure (below)                              measure in a namespace of its own
    stop the scheduler, plane.down(DIR)          stop it, delete the pods and the namespace

measure: list+watch the namespace's pods (and its FailedScheduling events), read the
scheduler's and kube-apiserver's CPU from /proc, create the pods as fast as the API server
takes them (a bounded number of requests in flight), and stop when every pod is bound or
known unschedulable, when nothing changed for `idle_timeout` seconds, or at `timeout`.

A workload of gangs (`gang`) differs in three places. Before the scheduler starts, the run
checks that the server serves the workload's APIs (scheduling.k8s.io/v1beta1) and refuses
otherwise (`Unsupported`), and creates one PodGroup per job in the measured namespace; the
scheduler runs with the workload's feature gates (kube-scheduler: GenericWorkload). How many
pods can be placed is not known in advance (it depends on which gangs the scheduler picks),
and a gang scheduler may report a pod unschedulable and place it later with its group, so
"every pod bound or reported" does not end the run: it ends when every pod is bound, or when
no pod was bound for `idle_timeout` seconds after every pod was created (or at `timeout`).
Then it reads the PodGroups and pods back from the API and counts the groups left partially
bound (scheduler.bench.gangcheck).

A workload whose pods claim devices or volumes (`devices`, `statefulset`) runs with
kube-controller-manager in the fresh cluster (its resource-claim controller makes each pod's
ResourceClaim from its template; its PV controller completes the binding of claim and volume
that the scheduler starts), and gets its objects before the scheduler starts: fakedra's
DeviceClass, one ResourceSlice per node and the ResourceClaimTemplates, or the StorageClass,
the static local PVs and the pods' claims. After the run it reads the claims back and judges
them (scheduler.bench.claimcheck): no device allocated twice, no volume on another node, no pod
bound without its claims satisfied. On a shared cluster the run's slices and PVs are deleted
afterwards with its namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from scheduler.bench import claimcheck, gangcheck, processes, procstat
from scheduler.bench.processes import Limits, SchedulerProcess
from scheduler.bench.progress import Progress, render
from scheduler.bench.stats import RunData
from scheduler.bench.workloads import DRA_API, GANG_API, Workload, init_namespace
from scheduler.harness import fakedra, plane, storage
from scheduler.harness.nodes import HOSTNAME, NodeShape, create_nodes
from scheduler.kube.client import ApiError, Client
from scheduler.kube.discovery import ServerInfo, discover
from scheduler.kube.informer import DELETED, Informer

log = logging.getLogger("berth.bench")

JSON = dict[str, Any]
T = TypeVar("T")

CREATE_CONCURRENCY = 64  # create requests in flight: enough to keep a loopback API server busy
SHARED_NODE_PREFIX = "bench-node-"


class Unsupported(RuntimeError):
    """The cluster cannot run the workload (an API it needs is not served)."""


@dataclass(frozen=True)
class Options:
    workload: Workload
    nodes: int
    pods: int
    schedulers: tuple[str, ...]
    limits: Limits
    repeat: int
    out: Path
    kubeconfig: str | None = None  # a cluster to reuse instead of fresh ones
    idle_timeout: float = 30.0
    timeout: float = 1800.0
    create_concurrency: int = CREATE_CONCURRENCY
    # pluginConfig entries for every scheduler's profile (--plugin-config)
    plugin_config: list[dict[str, Any]] = field(default_factory=list)


# --- what the watch sees ------------------------------------------------------------------


class Tracker:
    """Turns watch events into per-pod times (seconds since `start()`), placements and the
    set of pods the scheduler reported unschedulable (PodScheduled=False, or a
    FailedScheduling event). Pure apart from the injected clock."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        group_of: dict[str, str] | None = None,
        min_count: dict[str, int] | None = None,
    ) -> None:
        self._clock = clock
        # Gangs: pod -> its group, group -> minCount; groups_placed counts the groups with
        # minCount members bound so far (for the progress line).
        self.group_of = group_of or {}
        self.min_count = min_count or {}
        self._bound_in: dict[str, int] = {}
        self.groups_placed = 0
        self.last_bind: float | None = None  # clock() of the latest new bind
        self.t0: float | None = None
        self.created_at: dict[str, float] = {}
        self.bound_at: dict[str, float] = {}
        self.node_of: dict[str, str] = {}
        self.unschedulable: set[str] = set()
        # Pods nominated to a node by preemption: reported unschedulable for now, but waiting
        # for their victims to go rather than settled.
        self.nominated: set[str] = set()
        self.sent = 0
        self.create_errors = 0
        self.last_change = clock()

    def start(self) -> None:
        self.t0 = self._clock()
        self.last_change = self.t0

    def now(self) -> float:
        return 0.0 if self.t0 is None else self._clock() - self.t0

    def on_pod(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind == DELETED:
            return
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        name = meta.get("name", "")
        now = self.now()
        if name not in self.created_at:
            self.created(name, now)
        node = spec.get("nodeName")
        if node:
            if name not in self.bound_at:
                self.bound_at[name] = now
                self.node_of[name] = node
                self.last_change = self.last_bind = self._clock()
                group = self.group_of.get(name)
                if group is not None:
                    n = self._bound_in[group] = self._bound_in.get(group, 0) + 1
                    self.groups_placed += n == self.min_count.get(group)
            return
        status = obj.get("status") or {}
        if status.get("nominatedNodeName"):
            if name not in self.nominated:
                self.nominated.add(name)
                self.last_change = self._clock()
        else:
            self.nominated.discard(name)
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                self._mark_unschedulable(name)

    def created(self, name: str, at: float | None = None) -> None:
        """The pod exists: its create request was answered, or the watch showed it, whichever
        this process noticed first (under load either one can lag the other)."""
        at = self.now() if at is None else at
        if at < self.created_at.get(name, float("inf")):
            self.created_at[name] = at
            self.last_change = self._clock()

    def on_event(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind == DELETED or obj.get("reason") != "FailedScheduling":
            return
        regarding = obj.get("regarding") or obj.get("involvedObject") or {}
        if regarding.get("kind", "Pod") == "Pod" and regarding.get("name"):
            self._mark_unschedulable(regarding["name"])

    def _mark_unschedulable(self, name: str) -> None:
        if name not in self.bound_at and name not in self.unschedulable:
            self.unschedulable.add(name)
            self.last_change = self._clock()

    @property
    def pending_unschedulable(self) -> int:
        return len(self.left_unschedulable)

    @property
    def left_unschedulable(self) -> set[str]:
        """Reported unschedulable, not bound, and not waiting for a preemption."""
        return self.unschedulable - self.bound_at.keys() - self.nominated

    def settled(self, total: int) -> bool:
        """Every pod is bound or reported unschedulable."""
        return len(self.bound_at) + self.pending_unschedulable >= total

    def idle_for(self) -> float:
        return self._clock() - self.last_change

    def bind_idle_for(self, since: float) -> float:
        """Seconds without a new bind, counted from `since` (a clock() value) at the earliest."""
        return self._clock() - max(since, self.last_bind or since)

    def done(self, total: int, created_all: float, quiet: float) -> str | None:
        """Why the run is over once every pod was created (at clock() `created_all`), or None.
        Without gangs: every pod is bound or reported unschedulable. With gangs (see the
        module docstring): every pod is bound, or none was bound for `quiet` seconds."""
        if not self.min_count:
            return "all pods bound or unschedulable" if self.settled(total) else None
        if len(self.bound_at) >= total:
            return "all pods bound"
        if self.bind_idle_for(created_all) > quiet:
            return f"no bind for {quiet:.0f}s after every pod was created"
        return None


# --- one run ------------------------------------------------------------------------------


@dataclass
class Watched:
    """What measure() needs to know about the processes it reads from /proc."""

    scheduler: SchedulerProcess
    apiserver_pid: int | None
    etcd_pid: int | None = None
    controller_manager_pid: int | None = None  # workloads with claims only

    def cpu(self) -> dict[str, float | None]:
        """CPU seconds so far of each process measured (None: unknown or gone)."""
        pids = {
            "scheduler": self.scheduler.pid,
            "apiserver": self.apiserver_pid,
            "etcd": self.etcd_pid,
            "controller_manager": self.controller_manager_pid,
            "bench": os.getpid(),
        }
        out = {k: procstat.cpu_seconds(pid) if pid else None for k, pid in pids.items()}
        out["machine"] = procstat.machine_busy_seconds()
        return out


async def measure(
    kubeconfig: str,
    namespace: str,
    pods: list[JSON],
    watched: Watched,
    opts: Options,
    progress: Progress,
    label: str,
    run: int,
) -> RunData:
    total = len(pods)
    jobs = opts.workload.jobs(total)
    tracker = Tracker(
        group_of={pod: job.name for job in jobs for pod in job.pod_names},
        min_count={job.name: job.size for job in jobs},
    )
    partial: list[str] = []
    checked = claimcheck.ClaimCount()
    async with (
        Client.from_kubeconfig(kubeconfig, qps=0, user_agent="berth-bench-watch") as watcher,
        Client.from_kubeconfig(
            kubeconfig,
            qps=0,
            connections=opts.create_concurrency,
            user_agent="berth-bench-create",
        ) as creator,
    ):
        with contextlib.suppress(ApiError):  # 409: it exists (a shared cluster)
            await creator.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
        informers = [
            Informer(watcher, f"/api/v1/namespaces/{namespace}/pods", tracker.on_pod),
            Informer(
                watcher,
                f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
                tracker.on_event,
                field_selector="reason=FailedScheduling",
            ),
        ]
        tasks = [asyncio.create_task(i.run()) for i in informers]
        try:
            async with asyncio.timeout(60):  # not wait_for: it can swallow a cancel on 3.11
                await asyncio.gather(*(i.synced.wait() for i in informers))
            cpu0 = watched.cpu()
            tracker.start()
            creating = asyncio.create_task(
                _create_pods(creator, namespace, pods, opts.create_concurrency, tracker)
            )
            deadline = time.monotonic() + opts.timeout
            why = ""
            created_all: float | None = None
            while True:
                await asyncio.sleep(0.1)
                progress.update(_line(label, tracker, total))
                if creating.done() and created_all is None:
                    created_all = time.monotonic()
                if created_all is not None:
                    done = tracker.done(total, created_all, opts.idle_timeout)
                    if done:
                        why = done
                        break
                if not watched.scheduler.alive():
                    why = f"{watched.scheduler.kind} exited (see {watched.scheduler.log})"
                    break
                if tracker.idle_for() > opts.idle_timeout:
                    why = f"no progress for {opts.idle_timeout:.0f}s"
                    break
                if time.monotonic() > deadline:
                    why = f"timeout after {opts.timeout:.0f}s"
                    break
            ended = tracker.now()
            cpu1 = watched.cpu()
            rss = procstat.max_rss_mb(watched.scheduler.pid)
            progress.done(_line(label, tracker, total) + f"  ({why})")
            if not creating.done():
                creating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await creating
            if jobs:
                partial = await _partially_bound(watcher, namespace)
            if opts.workload.claims:
                checked = await check_claims(watcher, namespace, opts.workload.claims)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return RunData(
        scheduler=watched.scheduler.kind,
        run=run,
        pods=total,
        created_at=tracker.created_at,
        bound_at=tracker.bound_at,
        node_of=tracker.node_of,
        unschedulable=tracker.left_unschedulable,
        ended_s=ended,
        create_errors=tracker.create_errors,
        scheduler_cpu_s=_delta(cpu0, cpu1, "scheduler"),
        scheduler_max_rss_mb=rss,
        apiserver_cpu_s=_delta(cpu0, cpu1, "apiserver"),
        etcd_cpu_s=_delta(cpu0, cpu1, "etcd"),
        controller_manager_cpu_s=_delta(cpu0, cpu1, "controller_manager"),
        bench_cpu_s=_delta(cpu0, cpu1, "bench"),
        machine_cpu_s=_delta(cpu0, cpu1, "machine"),
        scheduler_version=watched.scheduler.version,
        feature_gates=watched.scheduler.feature_gates,
        min_count=tracker.min_count,
        group_of=tracker.group_of,
        partially_bound=partial,
        claim_kind=opts.workload.claims,
        claims=checked.claims,
        claims_satisfied=checked.satisfied,
        claim_violations=checked.violations,
    )


async def check_claims(client: Client, namespace: str, kind: str) -> claimcheck.ClaimCount:
    """The namespace's claims, judged by claimcheck: `kind` "devices" (ResourceClaims against
    the ResourceSlices) or "volumes" (PersistentVolumeClaims against the PVs and nodes)."""
    pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
    if kind == "devices":
        slices = (await client.get(fakedra.SLICES))["items"]
        path = f"/apis/{DRA_API}/namespaces/{namespace}/resourceclaims"
        return claimcheck.devices(slices, (await client.get(path))["items"], pods)
    claims = (await client.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"))["items"]
    volumes = (await client.get(storage.VOLUMES))["items"]
    nodes = (await client.get("/api/v1/nodes"))["items"]
    return claimcheck.volumes(volumes, claims, pods, nodes)


async def _partially_bound(client: Client, namespace: str) -> list[str]:
    """The groups the API's state leaves partially bound, by the conformance suite's checker."""
    groups = await client.get(
        f"/apis/{gangcheck.UPSTREAM}/v1beta1/namespaces/{namespace}/podgroups"
    )
    pods = await client.get(f"/api/v1/namespaces/{namespace}/pods")
    return gangcheck.partially_bound(groups.get("items") or [], pods.get("items") or [])


def missing_apis(workload: Workload, server: ServerInfo) -> list[str]:
    """The group-versions `workload` needs that `server` does not serve."""
    return [gv for gv in workload.apis if not server.serves(gv)]


async def check_server(kubeconfig: str, workload: Workload) -> None:
    """Raise Unsupported, saying what to do, if the server lacks an API the workload needs."""
    if not workload.apis:
        return
    async with Client.from_kubeconfig(kubeconfig, qps=0, user_agent="berth-bench") as client:
        server = await discover(client)
    missing = missing_apis(workload, server)
    if missing:
        raise Unsupported(
            f"workload {workload.name!r} needs {', '.join(missing)}, which this API server "
            f"({server.git_version or 'version unknown'}) does not serve. "
            + " ".join(API_HINTS.get(gv, "") for gv in missing).strip()
        )


# What to do when a workload's API is not served.
API_HINTS = {
    GANG_API: (
        "Kubernetes v1.37 serves it with kube-apiserver "
        "--runtime-config=scheduling.k8s.io/v1beta1=true --feature-gates=GenericWorkload=true "
        "(the local control plane passes both from v1.37: K8S_VERSION=v1.37); v1.35 and "
        "v1.36 have no v1beta1 PodGroup."
    ),
    DRA_API: (
        "DRA's API is GA and served by default from Kubernetes v1.34; the cluster's admin "
        "turned it off (kube-apiserver --runtime-config=resource.k8s.io/v1=false)."
    ),
}


def _delta(
    before: dict[str, float | None], after: dict[str, float | None], key: str
) -> float | None:
    a, b = before.get(key), after.get(key)
    return None if a is None or b is None else b - a


async def _create_pods(
    client: Client, namespace: str, pods: list[JSON], concurrency: int, tracker: Tracker
) -> None:
    """POST every pod with `concurrency` requests in flight, in the workload's order."""
    path = f"/api/v1/namespaces/{namespace}/pods"
    items: Iterator[JSON] = iter(pods)

    async def worker() -> None:
        for pod in items:  # one shared iterator: each pod goes to exactly one worker
            try:
                await client.post(path, pod)
                tracker.created(pod["metadata"]["name"])
                tracker.sent += 1
            except (ApiError, aiohttp.ClientError, TimeoutError) as err:
                tracker.create_errors += 1
                log.warning(
                    "create failed", extra={"pod": pod["metadata"]["name"], "error": str(err)}
                )

    await asyncio.gather(*(worker() for _ in range(min(concurrency, max(1, len(pods))))))


def _line(label: str, tracker: Tracker, total: int) -> str:
    elapsed = tracker.now()
    bound = len(tracker.bound_at)
    rate = bound / elapsed if elapsed > 0 else 0.0
    groups = (
        f"{tracker.groups_placed}/{len(tracker.min_count)} groups  " if tracker.min_count else ""
    )
    return render(
        label,
        bound,
        total,
        f"bound  {groups}{tracker.pending_unschedulable} unschedulable  {tracker.sent} created  "
        f"{elapsed:6.1f}s  {rate:7.1f} pods/s",
    )


# --- fresh clusters -----------------------------------------------------------------------


def run_fresh(kind: str, run: int, opts: Options, progress: Progress) -> RunData:
    """One run on a control plane of its own, torn down afterwards."""
    directory = (opts.out / "clusters" / f"{kind}-{run}").resolve()
    quiet: Callable[[str], None] = lambda message: log.debug(message)  # noqa: E731
    plane.down(directory, log=quiet)  # leftovers of an interrupted run
    label = _label(kind, run, opts)
    progress.say(f"{label}: starting a control plane with {opts.nodes} nodes in {directory}")
    spec = plane.ClusterSpec(
        nodes=0, shape=NodeShape(), controller_manager=opts.workload.needs_control_plane
    )
    state = plane.up(directory, spec, log=quiet)
    try:
        asyncio.run(check_server(state.kubeconfig, opts.workload))
        nodes = opts.workload.nodes(opts.nodes)
        asyncio.run(_create_nodes(state.kubeconfig, nodes))
        node_names = [n["metadata"]["name"] for n in nodes]
        asyncio.run(
            _create_init_pods(state.kubeconfig, opts.workload, node_names, "bench", opts.pods)
        )
        asyncio.run(create_claimed(state.kubeconfig, opts.workload, node_names, "bench", opts.pods))
        name = processes.scheduler_name(kind)
        scheduler = processes.start(
            kind,
            kubeconfig=state.kubeconfig,
            directory=directory,
            limits=opts.limits,
            name=name,
            plugin_config=opts.plugin_config,
            feature_gates=dict(opts.workload.feature_gates),
        )
        # Registered with the plane, so `berth cluster down --dir` also stops it after a crash.
        state.pids[f"bench-{kind}"] = scheduler.pid
        state.save()
        try:
            pods = opts.workload.pods(opts.pods, name, "bench")
            watched = Watched(
                scheduler,
                state.pids.get("kube-apiserver"),
                state.pids.get("etcd"),
                state.pids.get("kube-controller-manager"),
            )
            return _run_loop(
                measure(state.kubeconfig, "bench", pods, watched, opts, progress, label, run)
            )
        finally:
            scheduler.stop()
    finally:
        plane.down(directory, log=quiet)


async def _create_nodes(kubeconfig: str, nodes: list[JSON]) -> None:
    async with Client.from_kubeconfig(kubeconfig, qps=0) as client:
        await create_nodes(client, nodes)


async def _create_init_pods(
    kubeconfig: str, workload: Workload, node_names: list[str], namespace: str, count: int = 0
) -> None:
    """The workload's PriorityClasses (kept if they exist), its Services and the PodGroups of
    its first `count` pods in `namespace`, and its init pods, bound to their nodes, in
    init_namespace(namespace). Nothing to do for a workload without them. Runs before the
    scheduler starts, so its caches hold them."""
    classes = workload.priority_classes()
    services = workload.service_objects()
    groups = workload.pod_groups(count)
    pods = workload.init_pods(node_names, namespace)
    if not classes and not services and not groups and not pods:
        return
    async with Client.from_kubeconfig(
        kubeconfig, qps=0, connections=CREATE_CONCURRENCY, user_agent="berth-bench-init"
    ) as client:
        for pc in classes:
            with contextlib.suppress(ApiError):  # 409: it exists
                await client.post("/apis/scheduling.k8s.io/v1/priorityclasses", pc)
        if services or groups:
            with contextlib.suppress(ApiError):  # 409: it exists
                await client.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
            for service in services:
                await client.post(f"/api/v1/namespaces/{namespace}/services", service)
        await _post_all(client, f"/apis/{GANG_API}/namespaces/{namespace}/podgroups", groups)
        if not pods:
            return
        ns = init_namespace(namespace)
        with contextlib.suppress(ApiError):
            await client.post("/api/v1/namespaces", {"metadata": {"name": ns}})
        path = f"/api/v1/namespaces/{ns}/pods"
        # The Priority admission plugin learns of new PriorityClasses through its informer:
        # the first pod may be refused for a moment.
        for attempt in range(100):
            try:
                await client.post(path, pods[0])
                break
            except ApiError as err:
                if err.status not in (403, 404) or attempt == 99:
                    raise
                await asyncio.sleep(0.1)
        await _post_all(client, path, pods[1:])


async def create_claimed(
    kubeconfig: str, workload: Workload, node_names: list[str], namespace: str, count: int
) -> list[str]:
    """What the pods of a workload with claims claim from (see the module docstring), before
    the scheduler starts, so its caches hold it: the DeviceClass and StorageClass (kept if
    they exist), a ResourceSlice per node, and in `namespace` the claim templates; the static
    PVs (named after `namespace`) and the first `count` pods' claims. Returns the PVs' names."""
    if not workload.claims:
        return []
    volumes = workload.local_volumes(node_names, count, namespace)
    async with Client.from_kubeconfig(
        kubeconfig, qps=0, connections=CREATE_CONCURRENCY, user_agent="berth-bench-init"
    ) as client:
        with contextlib.suppress(ApiError):  # 409: it exists
            await client.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
        for device_class in workload.device_classes():
            with contextlib.suppress(ApiError):  # 409: it exists
                await client.post(fakedra.DEVICE_CLASSES, device_class)
        if workload.gpus_per_node:
            await fakedra.publish(client, node_names, count=workload.gpus_per_node)
        await _post_all(
            client,
            f"/apis/{DRA_API}/namespaces/{namespace}/resourceclaimtemplates",
            workload.claim_templates(),
        )
        for storage_class in workload.storage_classes():
            with contextlib.suppress(ApiError):  # 409: it exists
                await client.post(storage.CLASSES, storage_class)
        await _post_all(client, storage.VOLUMES, volumes)
        await _post_all(
            client,
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
            workload.volume_claims(count),
        )
    return [v["metadata"]["name"] for v in volumes]


async def _remove_claimed(
    kubeconfig: str, workload: Workload, node_names: list[str], volumes: list[str]
) -> None:
    """Undo create_claimed on a shared cluster: the slices and the PVs (the namespace's
    deletion takes the claims and templates)."""
    async with Client.from_kubeconfig(kubeconfig, qps=0) as client:
        if workload.gpus_per_node:
            await fakedra.unpublish(client, node_names)
        gate = asyncio.Semaphore(32)

        async def remove(name: str) -> None:
            async with gate:
                await storage.delete_volume(client, name)

        await asyncio.gather(*(remove(v) for v in volumes))


async def _post_all(client: Client, path: str, objects: list[JSON]) -> None:
    """POST every object to `path`, CREATE_CONCURRENCY at a time."""
    items = iter(objects)

    async def worker() -> None:
        for obj in items:
            await client.post(path, obj)

    await asyncio.gather(*(worker() for _ in range(min(CREATE_CONCURRENCY, len(objects)))))


# --- a shared cluster (--kubeconfig) ------------------------------------------------------


class SharedCluster:
    """A cluster the benchmark did not start: it adds the workload's nodes under names of its
    own and removes them, and each run's namespace, when it is done."""

    def __init__(self, kubeconfig: str, opts: Options) -> None:
        self.kubeconfig = kubeconfig
        self.opts = opts
        self.created_nodes: list[str] = []
        self.node_names: list[str] = []
        state = plane.ClusterState.load(Path(kubeconfig).resolve().parent)
        # A `berth cluster up` cluster: its API server and etcd are local processes to measure.
        running = state.running() if state else {}
        self.apiserver_pid = running.get("kube-apiserver")
        self.etcd_pid = running.get("etcd")
        self.controller_manager_pid = running.get("kube-controller-manager")

    def __enter__(self) -> SharedCluster:
        _run_loop(check_server(self.kubeconfig, self.opts.workload))
        self.created_nodes = _run_loop(self._add_nodes())
        return self

    def __exit__(self, *exc: object) -> None:
        _run_loop(self._remove_nodes())

    def run(self, kind: str, run: int, progress: Progress) -> RunData:
        opts = self.opts
        directory = (opts.out / "shared" / f"{kind}-{run}").resolve()
        label = _label(kind, run, opts)
        namespace = f"bench-{kind}-{run}-{uuid.uuid4().hex[:6]}"
        name = processes.scheduler_name(kind, shared_cluster=True)
        progress.say(f"{label}: namespace {namespace} on {self.kubeconfig}")
        _run_loop(
            _create_init_pods(self.kubeconfig, opts.workload, self.node_names, namespace, opts.pods)
        )
        volumes = _run_loop(
            create_claimed(self.kubeconfig, opts.workload, self.node_names, namespace, opts.pods)
        )
        scheduler = processes.start(
            kind,
            kubeconfig=self.kubeconfig,
            directory=directory,
            limits=opts.limits,
            name=name,
            plugin_config=opts.plugin_config,
            feature_gates=dict(opts.workload.feature_gates),
        )
        try:
            pods = opts.workload.pods(opts.pods, name, namespace)
            watched = Watched(
                scheduler, self.apiserver_pid, self.etcd_pid, self.controller_manager_pid
            )
            return _run_loop(
                measure(self.kubeconfig, namespace, pods, watched, opts, progress, label, run)
            )
        finally:
            scheduler.stop()
            _run_loop(self._remove_namespace(namespace))
            _run_loop(self._remove_namespace(init_namespace(namespace)))
            _run_loop(_remove_claimed(self.kubeconfig, opts.workload, self.node_names, volumes))

    async def _add_nodes(self) -> list[str]:
        nodes = self.opts.workload.nodes(self.opts.nodes)
        for node in nodes:
            name = SHARED_NODE_PREFIX + node["metadata"]["name"].removeprefix("node-")
            node["metadata"]["name"] = name
            node["metadata"]["labels"][HOSTNAME] = name
        async with Client.from_kubeconfig(self.kubeconfig, qps=0) as client:
            existing = {n["metadata"]["name"] for n in (await client.get("/api/v1/nodes"))["items"]}
            await create_nodes(client, nodes)
        self.node_names = [n["metadata"]["name"] for n in nodes]
        return [n for n in self.node_names if n not in existing]

    async def _remove_nodes(self) -> None:
        async with Client.from_kubeconfig(self.kubeconfig, qps=0) as client:
            gate = asyncio.Semaphore(32)

            async def remove(name: str) -> None:
                async with gate:
                    with contextlib.suppress(ApiError):
                        await client.delete(f"/api/v1/nodes/{name}")

            await asyncio.gather(*(remove(n) for n in self.created_nodes))

    async def _remove_namespace(self, namespace: str) -> None:
        """Delete the run's pods at once (no kubelet will ever confirm them) and wait until
        they are gone, so the next run starts from empty nodes; then the namespace."""
        async with Client.from_kubeconfig(self.kubeconfig, qps=0) as client:
            path = f"/api/v1/namespaces/{namespace}/pods"
            with contextlib.suppress(ApiError):
                await client.request("DELETE", path, params={"gracePeriodSeconds": 0})
            for _ in range(600):
                if not (await client.get(path, limit=1))["items"]:
                    break
                await asyncio.sleep(0.1)
            with contextlib.suppress(ApiError):
                await client.delete(f"/api/v1/namespaces/{namespace}")


# --- the whole benchmark ------------------------------------------------------------------


def run_all(
    opts: Options, progress: Progress, on_run: Callable[[RunData], object] = lambda r: None
) -> list[RunData]:
    """Every (repeat, scheduler) run, schedulers interleaved within each repeat so slow drift
    of the machine does not favour one of them. `on_run` sees each run as soon as it ends
    (the command writes its raw record then, so a later failure keeps it)."""
    runs: list[RunData] = []
    if opts.kubeconfig:
        with SharedCluster(opts.kubeconfig, opts) as shared:
            for run in range(1, opts.repeat + 1):
                for kind in opts.schedulers:
                    runs.append(shared.run(kind, run, progress))
                    on_run(runs[-1])
        return runs
    for run in range(1, opts.repeat + 1):
        for kind in opts.schedulers:
            runs.append(run_fresh(kind, run, opts, progress))
            on_run(runs[-1])
    return runs


def _label(kind: str, run: int, opts: Options) -> str:
    width = max(len(s) for s in opts.schedulers)
    suffix = f" {run}/{opts.repeat}" if opts.repeat > 1 else ""
    return f"{kind:<{width}}{suffix}"


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is there (as `berth run` does), so the observer is cheap."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    result: T = uvloop.run(coro)
    return result
