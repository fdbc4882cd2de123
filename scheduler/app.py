"""Wires everything: informers → cache + queue, the scheduling loop, binding, events, leader
election, metrics and health. The only module that knows all the parts.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

import plugins as plugin_registry
from plugins import inter_pod_affinity
from scheduler import default_selector, framework, volumes
from scheduler.cache import Cache
from scheduler.config import ConfigError, PluginRef, SchedulerConfig, expand_plugins
from scheduler.cycle import AlreadyBound, Scheduler
from scheduler.default_selector import SelectorSources
from scheduler.device_classes import DeviceClass, DeviceClassStore
from scheduler.kube import binder, preemption
from scheduler.kube.client import ApiError, Client
from scheduler.kube.discovery import ServerInfo, discover
from scheduler.kube.events import Recorder
from scheduler.kube.informer import DELETED, Informer
from scheduler.kube.leader import LeaderElector, LeaseConfig
from scheduler.metrics import Metrics
from scheduler.model import (
    DisruptionBudget,
    InvalidObject,
    LabelSelector,
    PodInfo,
    compile_node,
    compile_pdb,
    compile_pod,
    resize_state,
)
from scheduler.queue import ACTIVE, BACKOFF, GATED, UNSCHEDULABLE, QueuedPod, SchedulingQueue
from scheduler.server import Server
from scheduler.volumes import VolumeStore

log = logging.getLogger("berth")

JSON = dict[str, Any]


# --- profiles from config ----------------------------------------------------------------


class _ApiHandle:
    """framework.PreemptionHandle over the API client; translates a 409 into AlreadyBound."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.volumes = VolumeStore()  # framework.VolumeHandle: filled by App's volume informers
        self.recorder: Recorder | None = None
        self.budgets: dict[str, DisruptionBudget] = {}  # "namespace/name" -> budget
        self.selectors = SelectorSources()  # filled by App's workload informers
        # framework.DeviceClassHandle: filled by App's DeviceClass informer (when served)
        self.device_classes = DeviceClassStore()

    def disruption_budgets(self) -> Sequence[DisruptionBudget]:
        return list(self.budgets.values())

    def default_spread_selector(self, pod: PodInfo) -> LabelSelector | None:
        """PodTopologySpread's default constraints select by this (default_selector.py)."""
        return self.selectors.default_selector(pod)

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        assert self.client is not None
        deleted = await preemption.preempt(
            self.client, victim.namespace, victim.name, victim.uid, preemptor.scheduler_name
        )
        log.info(
            "preempted" if deleted else "victim already gone",
            extra={"pod": victim.key, "preemptor": preemptor.key, "node": node},
        )
        if deleted and self.recorder is not None:
            self.recorder.preempted(
                victim.namespace,
                victim.name,
                victim.uid,
                {"namespace": preemptor.namespace, "name": preemptor.name, "uid": preemptor.uid},
                node,
            )

    async def bind(self, pod: PodInfo, node: str) -> None:
        assert self.client is not None
        try:
            await binder.bind(self.client, pod.namespace, pod.name, pod.uid, node)
        except ApiError as err:
            if err.status == 409:
                raise AlreadyBound(str(err)) from err
            raise


def plugin_points() -> dict[str, frozenset[str]]:
    """Which extension points each registered plugin implements (from its factory's type)."""
    out = {}
    for name, factory in plugin_registry.registry().items():
        plugin_type = typing.get_type_hints(factory).get("return")
        out[name] = framework.implements(plugin_type) if plugin_type else frozenset()
    return out


def build_profiles(
    config: SchedulerConfig, handle: framework.Handle
) -> dict[str, framework.Profile]:
    """Instantiate each profile's plugins; bad plugin args raise ConfigError with the path."""
    registry = plugin_registry.registry()
    points = plugin_points()
    defaults = [PluginRef(name, weight) for name, weight in plugin_registry.DEFAULTS]
    profiles: dict[str, framework.Profile] = {}
    errors: list[str] = []
    for i, spec in enumerate(config.profiles):
        try:
            expanded = expand_plugins(spec, defaults, points, path=f"profiles[{i}].plugins")
        except ConfigError as err:
            errors.extend(err.errors)
            continue
        instances: dict[str, Any] = {}
        for refs in expanded.values():
            for ref in refs:
                if ref.name in instances:
                    continue
                try:
                    instances[ref.name] = registry[ref.name](
                        spec.plugin_config.get(ref.name, {}), handle
                    )
                except (ValueError, TypeError, KeyError) as err:
                    errors.append(f"profiles[{i}].pluginConfig[{ref.name}].args: {err}")
        if errors:
            continue

        def at(
            point: str,
            refs: Mapping[str, list[PluginRef]] = expanded,
            made: Mapping[str, Any] = instances,
        ) -> list[Any]:
            return [made[r.name] for r in refs.get(point, [])]

        queue_sort = at("queueSort")
        profiles[spec.scheduler_name] = framework.Profile(
            scheduler_name=spec.scheduler_name,
            percentage_of_nodes_to_score=spec.percentage_of_nodes_to_score,
            pre_enqueue=at("preEnqueue"),
            queue_sort=queue_sort[0] if queue_sort else None,
            pre_filter=at("preFilter"),
            filter=at("filter"),
            post_filter=at("postFilter"),
            pre_score=at("preScore"),
            score=[(instances[r.name], r.weight or 1) for r in expanded.get("score", [])],
            reserve=at("reserve"),
            permit=at("permit"),
            pre_bind=at("preBind"),
            bind=at("bind"),
            post_bind=at("postBind"),
        )
    if errors:
        raise ConfigError(errors)
    return profiles


# --- the running scheduler ---------------------------------------------------------------


@dataclass
class MetricsObserver:
    """cycle.Observer onto the Prometheus metrics (also used by the in-memory bench, so
    their cost is part of the engine's there too)."""

    metrics: Metrics

    def attempt(self, result: str, profile: str, seconds: float) -> None:
        self.metrics.observe_attempt(result, profile, seconds)

    def scheduled(self, attempts: int, seconds_since_arrival: float) -> None:
        self.metrics.observe_sli(attempts, seconds_since_arrival)

    def extension_point(self, point: str, status: str, profile: str, seconds: float) -> None:
        self.metrics.observe_extension_point(point, status, profile, seconds)

    def plugin(self, plugin: str, point: str, seconds: float) -> None:
        self.metrics.observe_plugin(plugin, point, "Success", seconds)


@dataclass
class _Reporter:
    recorder: Recorder

    def scheduled(self, pod: PodInfo, node: str) -> None:
        self.recorder.scheduled(pod.namespace, pod.name, pod.uid, node)

    def failed(self, pod: PodInfo, message: str, reason: str) -> None:
        self.recorder.failed(pod.namespace, pod.name, pod.uid, message, reason)


class App:
    def __init__(
        self,
        config: SchedulerConfig,
        client: Client,
        *,
        port: int = 10259,
        host: str = "0.0.0.0",
        identity: str = "",
    ) -> None:
        self.config = config
        self.client = client
        self.handle = _ApiHandle()
        self.handle.client = client
        self.profiles = build_profiles(config, self.handle)
        self.identity = identity or f"{socket.gethostname()}_{time.time_ns():x}"
        self.metrics = Metrics()
        self.cache = Cache(time.monotonic)
        first = next(iter(self.profiles.values()))
        if first.queue_sort is None:
            raise ConfigError(["profiles[0].plugins.queueSort: a queue sort plugin is required"])
        self.queue = SchedulingQueue(
            first.queue_sort.sort_key,
            first.pre_enqueue,
            clock=time.monotonic,
            initial_backoff=config.pod_initial_backoff_seconds,
            max_backoff=config.pod_max_backoff_seconds,
            on_incoming=self.metrics.incoming,
        )
        # As kube-scheduler does, events and leader election get clients of their own: a lease
        # renewal must never queue behind thousands of bindings (a shard lost its Lease during
        # a 2,000-pod burst when they shared one), and events must not slow bindings down.
        self.event_client = Client(
            client.creds, qps=client.limiter.qps, burst=client.limiter.burst, write_connections=8
        )
        self.lease_client = Client(client.creds, qps=0, write_connections=1, connections=2)
        self.recorder = Recorder(
            self.event_client, controller=first.scheduler_name, instance=self.identity
        )
        self.handle.recorder = self.recorder
        self.scheduler = Scheduler(
            self.cache,
            self.queue,
            self.profiles,
            _Reporter(self.recorder),
            MetricsObserver(self.metrics),
            percentage_of_nodes_to_score=config.percentage_of_nodes_to_score,
            nominate=lambda pod, node: self.recorder.nominate(pod.namespace, pod.name, node),
            on_preemption=self.metrics.observe_preemption,
            on_binding=self.metrics.set_binding_goroutines,
        )
        self.informers = [
            Informer(client, "/api/v1/nodes", self._on_node),
            Informer(client, "/api/v1/pods", self._on_pod),
            Informer(client, "/apis/scheduling.k8s.io/v1/priorityclasses", self._on_priority_class),
            # Namespace labels, for inter-pod affinity terms with a namespaceSelector.
            Informer(client, "/api/v1/namespaces", inter_pod_affinity.NAMESPACES.on_event),
            Informer(client, "/apis/policy/v1/poddisruptionbudgets", self._on_pdb),
        ]
        self.informers += self._volume_informers()
        self.informers += self._selector_informers()
        # Informers for APIs a supported server may not serve: (group-version, feature) each.
        # run() drops those the server lacks (discovery.py), with one log line per feature.
        self.optional_informers: dict[Informer, tuple[str, str]] = {
            Informer(client, "/apis/resource.k8s.io/v1/deviceclasses", self._on_device_class): (
                "resource.k8s.io/v1",
                "DRA extended resources",
            ),
        }
        self.informers += list(self.optional_informers)
        self.server_info: ServerInfo | None = None
        self.priority_classes: dict[str, int] = {}
        self.server = Server(self.metrics, host=host, port=port, ready=self.ready)
        self.server.add_json_route("/debug/pods/{namespace}/{name}", self._debug_pod)
        self.server.add_json_route("/debug/queue", self._debug_queue)
        self.leader: LeaderElector | None = None
        self._leading = asyncio.Event()
        self.port = port

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    async def _discover(self) -> ServerInfo:
        """discover(), retried with backoff (up to 30 s apart) until the server answers."""
        delay = 0.5
        while True:
            try:
                return await discover(self.client)
            except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as err:
                log.warning("cannot read the API server's version", extra={"error": str(err)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _drop_unserved(self, info: ServerInfo) -> None:
        """Turn off what needs an API the server does not serve: its informer never starts,
        so it neither blocks readiness nor retries a 404 forever."""
        log.info(
            "API server",
            extra={"version": info.git_version, "group_versions": len(info.group_versions)},
        )
        if (info.major, info.minor) < (1, 35):
            log.warning(
                "API server older than the oldest supported version (v1.35)",
                extra={"version": info.git_version},
            )
        for informer, (group_version, feature) in self.optional_informers.items():
            if not info.serves(group_version):
                log.info(
                    "API not served: feature off",
                    extra={"api": group_version, "feature": feature, "path": informer.path},
                )
                self.informers.remove(informer)

    def should_schedule(self) -> bool:
        return self.leader is None or self.leader.is_leader

    async def run(self) -> int:
        """Serve until cancelled or leadership is lost (then return 1, as kube-scheduler
        exits so a fresh process can rejoin the election)."""
        self.port = await self.server.start()
        self.server_info = await self._discover()
        self._drop_unserved(self.server_info)
        self.recorder.start()
        tasks = [asyncio.create_task(i.run()) for i in self.informers]
        tasks.append(asyncio.create_task(self._housekeeping()))
        lost = asyncio.Event()
        try:
            await asyncio.gather(*(i.synced.wait() for i in self.informers))
            log.info("caches synced", extra={"nodes": len(self.cache.table)})
            election = self.config.leader_election
            if election.leader_elect:
                self.leader = LeaderElector(
                    self.lease_client,
                    LeaseConfig(
                        namespace=election.resource_namespace,
                        name=election.resource_name,
                        identity=self.identity,
                        lease_duration=election.lease_duration_s,
                        renew_deadline=election.renew_deadline_s,
                        retry_period=election.retry_period_s,
                    ),
                    on_started_leading=self._leading.set,
                    on_stopped_leading=lost.set,
                )
                tasks.append(asyncio.create_task(self.leader.run()))
                await self._wait_either(self._leading, lost)
                if lost.is_set():
                    return 1
                log.info("became leader", extra={"identity": self.identity})
            loop = asyncio.create_task(self.scheduler.run(self.should_schedule))
            await self._wait_either(lost, loop)
            loop.cancel()
            if lost.is_set() or not self.should_schedule():
                # The renew deadline passed (is_leader turns False by the clock, possibly
                # before the elector's own loop notices): exit non-zero so a fresh process
                # rejoins the election, as kube-scheduler does.
                log.error("leadership lost, stopping", extra={"identity": self.identity})
                return 1
            return 0
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.leader is not None and self.leader.is_leader:
                await self.leader.release()
            await self.recorder.stop()
            await self.server.stop()
            await self.event_client.close()
            await self.lease_client.close()

    @staticmethod
    async def _wait_either(*things: asyncio.Event | asyncio.Task[None]) -> None:
        waiters = [
            asyncio.create_task(t.wait()) if isinstance(t, asyncio.Event) else t for t in things
        ]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w, t in zip(waiters, things, strict=True):
            if isinstance(t, asyncio.Event):
                w.cancel()

    async def _housekeeping(self) -> None:
        """Once a second: expire assumed pods, refresh gauges; every 30 s: flush the
        unschedulable pool of pods that waited 5 minutes."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            if self.cache.cleanup_expired():
                self.queue.move_all("AssumedPodExpired")
            self.queue.flush_backoff()
            if tick % 30 == 0:
                self.queue.flush_unschedulable()
            counts = self.queue.counts()
            self.metrics.set_pending(
                counts[ACTIVE], counts[BACKOFF], counts[UNSCHEDULABLE], counts[GATED]
            )
            self.metrics.set_cache_size(**self.cache.sizes())

    # --- informer handlers ---------------------------------------------------------------

    def _node_in_shard(self, obj: JSON) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.config.node_selector.items())

    def _on_node(self, kind: str, obj: JSON, old: JSON | None) -> None:
        name = obj["metadata"]["name"]
        if kind == DELETED or not self._node_in_shard(obj):
            self.cache.remove_node(name)
            return
        try:
            node = compile_node(obj)
        except InvalidObject as err:
            log.warning("ignoring malformed node", extra={"node": name, "error": str(err)})
            return
        table = self.cache.table
        row = table.row_of.get(name)
        known = table.nodes[row] if row is not None else None
        if known is not None and known.same_for_scheduling(node):
            # Kubelets report status every few minutes per node (thousands of updates a minute
            # in a large cluster): moving every pending pod back on each, to be popped again at
            # once from backoff, would keep the scheduler busy retrying pods nothing helped.
            return
        self.cache.upsert_node(node)
        self.queue.move_all("NodeAdd" if old is None else "NodeUpdate")

    def _on_priority_class(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """Kept for explain and preemption; pods carry their resolved spec.priority already."""
        name = obj["metadata"]["name"]
        if kind == DELETED:
            self.priority_classes.pop(name, None)
        else:
            self.priority_classes[name] = int(obj.get("value") or 0)

    def _on_pdb(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """PodDisruptionBudgets, for preemption's choice of victims."""
        key = _key(obj)
        if kind == DELETED:
            self.handle.budgets.pop(key, None)
        else:
            self.handle.budgets[key] = compile_pdb(obj)

    def _on_device_class(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """DeviceClasses, for the extended resources they back (DRAExtendedResource). An added
        or changed class moves the pods NodeResourcesFit's hint picks; upstream registers no
        deletion, which cannot make a pod fit."""
        device_class = self.handle.device_classes.apply(obj, deleted=kind == DELETED)
        if kind == DELETED:
            return
        if old is None:
            self._move_for(framework.DEVICE_CLASS_ADD, None, device_class)
        else:
            self._move_for(framework.DEVICE_CLASS_UPDATE, DeviceClass.compile(old), device_class)

    # --- Services and controllers: the default spread constraints' selector --------------

    def _selector_informers(self) -> list[Informer]:
        def apply(store_kind: str, kind: str, obj: JSON) -> None:
            try:
                self.handle.selectors.apply(store_kind, obj, deleted=kind == DELETED)
            except InvalidObject as err:
                log.warning(
                    "ignoring malformed selector",
                    extra={"kind": store_kind, "object": _key(obj), "error": str(err)},
                )

        return self._store_informers(
            (
                ("/api/v1/services", default_selector.SERVICE),
                ("/api/v1/replicationcontrollers", default_selector.REPLICATION_CONTROLLER),
                ("/apis/apps/v1/replicasets", default_selector.REPLICA_SET),
                ("/apis/apps/v1/statefulsets", default_selector.STATEFUL_SET),
            ),
            apply,
        )

    def _store_informers(
        self,
        sources: Sequence[tuple[str, str]],
        apply: Callable[[str, str, JSON], None],
    ) -> list[Informer]:
        """One informer per (API path, store kind); each event becomes apply(store kind,
        event kind, object)."""

        def handler(store_kind: str) -> Callable[[str, JSON, JSON | None], None]:
            def on_event(kind: str, obj: JSON, old: JSON | None) -> None:
                apply(store_kind, kind, obj)

            return on_event

        return [Informer(self.client, path, handler(kind)) for path, kind in sources]

    # --- volumes: PVCs, PVs, StorageClasses, CSINodes for the volume plugins -------------

    def _volume_informers(self) -> list[Informer]:
        return self._store_informers(
            (
                ("/api/v1/persistentvolumeclaims", volumes.PVC),
                ("/api/v1/persistentvolumes", volumes.PV),
                ("/apis/storage.k8s.io/v1/storageclasses", volumes.STORAGE_CLASS),
                ("/apis/storage.k8s.io/v1/csinodes", volumes.CSI_NODE),
            ),
            self._on_volume_object,
        )

    def _on_volume_object(self, store_kind: str, kind: str, obj: JSON) -> None:
        """Keep the store current; any change may make a pod waiting on volumes schedulable
        (a claim created or bound, a PV added, a CSINode's limits raised)."""
        try:
            self.handle.volumes.apply(store_kind, obj, deleted=kind == DELETED)
        except InvalidObject as err:
            log.warning(
                "ignoring malformed object",
                extra={"kind": store_kind, "object": _key(obj), "error": str(err)},
            )
            return
        self.queue.move_all(f"{store_kind}{'Delete' if kind == DELETED else 'Change'}")

    def _on_pod(self, kind: str, obj: JSON, old: JSON | None) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        uid = meta.get("uid", "")
        phase = (obj.get("status") or {}).get("phase")
        if kind == DELETED or phase in ("Succeeded", "Failed"):
            self.queue.delete(uid)
            self.recorder.forget(uid)
            if self.cache.remove_pod(uid) is not None:
                self.queue.move_all("AssignedPodDelete")
            return
        old_meta = (old or {}).get("metadata") or {}
        unchanged = (
            old is not None
            and old.get("spec") == spec
            and old_meta.get("labels") == meta.get("labels")
            # A deletion starting matters to preemption (victims terminating on a node).
            and old_meta.get("deletionTimestamp") == meta.get("deletionTimestamp")
        )
        if spec.get("nodeName"):
            self.queue.delete(uid)
            if (
                unchanged
                and self.cache.node_of(uid) == spec["nodeName"]
                and resize_state((old or {}).get("status")) == resize_state(obj.get("status"))
            ):
                return  # a status change of a bound pod (kubelet, KWOK) that moves no request
            try:
                pod = compile_pod(obj)
            except InvalidObject as err:
                log.warning("malformed bound pod", extra={"pod": _key(obj), "error": str(err)})
                return
            before = self.cache.bound_pod(uid)
            self.cache.add_pod(pod)
            if before is not None and framework.pod_scaled_down(before, pod):
                self._move_for(framework.ASSIGNED_POD_SCALE_DOWN, before, pod)
            return
        if (spec.get("schedulerName") or "default-scheduler") not in self.profiles:
            return
        if meta.get("deletionTimestamp"):
            self.queue.delete(uid)
            return
        try:
            pod = compile_pod(obj)
        except InvalidObject as err:
            self.recorder.failed(
                meta.get("namespace", ""),
                meta.get("name", ""),
                uid,
                f"invalid pod: {err}",
                "SchedulerError",
            )
            return
        if self.cache.is_assumed(uid):
            return  # binding in flight: the watch will show nodeName soon
        if unchanged and uid in self.queue.pods:
            return  # only status changed (e.g. our own PodScheduled condition)
        self.queue.add(pod)

    def _move_for(self, event: framework.ClusterEvent, old: Any, new: Any) -> None:
        """Move the waiting pods `event` may help, as the hints of the plugins that rejected
        each say (upstream's MoveAllToActiveOrBackoffQueue with queueing hints)."""

        def worth(entry: QueuedPod) -> bool:
            profile = self.profiles.get(entry.pod.scheduler_name)
            return profile is None or profile.worth_requeuing(
                entry.pod, entry.unschedulable_plugins, event, old, new
            )

        self.queue.move_all(event.label, worth)

    # --- debug endpoints -----------------------------------------------------------------

    async def _debug_pod(self, request: Any) -> Any:
        key = f"{request.match_info['namespace']}/{request.match_info['name']}"
        attempt = self.scheduler.last.get(key)
        entry = next((e for e in self.queue.pods.values() if e.pod.key == key), None)
        out: JSON = {
            "pod": key,
            "queue": entry.where if entry else None,
            "attempts": entry.attempts if entry else None,
        }
        if entry is not None and entry.gate_message:
            out["gated"] = entry.gate_message
        if attempt is not None:
            out["node"] = attempt.node or None
            out["message"] = attempt.status.message if attempt.status else None
            if attempt.diagnosis is not None and not attempt.node:
                out["total_nodes"] = attempt.diagnosis.total_nodes
                out["by_plugin"] = attempt.diagnosis.by_plugin
                out["pre_filter"] = (
                    {
                        "plugin": attempt.diagnosis.pre_filter.plugin,
                        "reason": attempt.diagnosis.pre_filter.message,
                    }
                    if attempt.diagnosis.pre_filter is not None
                    else None
                )
                out["preemption"] = attempt.diagnosis.post_filter or None
            # The effective requests the attempt used (pod-level, resize state, overhead).
            out["requests"] = attempt.pod.requests
            if attempt.nominated:
                out["nominated_node"] = attempt.nominated
                out["victims"] = list(attempt.victims)
            out["scores"] = attempt.scoring.top() if attempt.scoring else None
        return out

    async def _debug_queue(self, request: Any) -> Any:
        return self.queue.counts()


def _key(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
