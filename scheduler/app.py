"""Wires everything: informers → cache + queue, the scheduling loop, binding, events, leader
election, metrics and health. The only module that knows all the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

import plugins as plugin_registry
from scheduler import configdump, features, framework, health
from scheduler.cache import Cache
from scheduler.config import ConfigError, PluginRef, SchedulerConfig, expand_plugins
from scheduler.cycle import Reporter, Scheduler
from scheduler.dra import extended
from scheduler.dra.claims import Claim as DraClaim
from scheduler.dra.diagnose import diagnose
from scheduler.eventhandlers import SELECTOR_SOURCES, VOLUME_SOURCES, EventHandlers
from scheduler.extender_client import build_extenders
from scheduler.handle import ClusterApi, ClusterHandle, KubeApi, generation
from scheduler.kube import podgroups as podgroup_status
from scheduler.kube.client import ApiError, Client
from scheduler.kube.debug_endpoint import base_url
from scheduler.kube.discovery import ServerInfo, discover
from scheduler.kube.events import Recorder
from scheduler.kube.informer import Informer
from scheduler.kube.leader import LeaderElector, LeaseConfig
from scheduler.metrics import Metrics
from scheduler.model import COSCHEDULING_POD_GROUPS, UPSTREAM_POD_GROUPS, PodInfo
from scheduler.node_verdict import node_verdict
from scheduler.podgroups import PodGroup
from scheduler.queue import (
    ACTIVE,
    ASSUMED,
    BACKOFF,
    GATED,
    UNSCHEDULABLE,
    QueuedPod,
    SchedulingQueue,
)
from scheduler.resource_metrics import PodResourceCollector
from scheduler.runtime import Framework, NullObserver, Observer, WaitingPods
from scheduler.secure_serving import Prepared, SetupError, prepare
from scheduler.server import HealthChecks, Server
from scheduler.serving import ServingOptions

log = logging.getLogger("berth")

JSON = dict[str, Any]


# --- profiles from config ----------------------------------------------------------------


def plugin_type(factory: Any) -> type | str:
    """The class a plugin factory's return annotation names, or why it cannot be told. Only
    that one annotation is resolved, in the factory's module, so names a module imports for
    type checking alone do not matter."""
    annotation = getattr(factory, "__annotations__", {}).get("return")
    if annotation is None:
        return "new() has no return annotation naming the plugin class"
    if isinstance(annotation, str):
        try:
            # What typing.get_type_hints does, for this one annotation only.
            annotation = eval(annotation, getattr(factory, "__globals__", {}))
        except Exception as err:
            return f"new()'s return annotation {annotation!r} cannot be resolved: {err}"
    if not isinstance(annotation, type):
        return f"new()'s return annotation {annotation!r} is not a class"
    return annotation


def plugin_points(
    registry: Mapping[str, Any],
) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """Which extension points each registered plugin implements (from its factory's return
    type), and, for a plugin whose type cannot be told, why (it then implements none)."""
    points: dict[str, frozenset[str]] = {}
    problems: dict[str, str] = {}
    for name, factory in registry.items():
        kind = plugin_type(factory)
        if isinstance(kind, str):
            problems[name] = kind
            points[name] = frozenset()
        else:
            points[name] = framework.implements(kind)
    return points, problems


def build_profiles(
    config: SchedulerConfig,
    handle: ClusterHandle,
    observer: Observer | None = None,
    waiting_pods: WaitingPods | None = None,
) -> dict[str, Framework]:
    """Instantiate each profile's plugins into a Framework; bad plugin args raise
    ConfigError with the path. Every Framework shares the handle's waiting pods."""
    registry = plugin_registry.registry()
    points, problems = plugin_points(registry)
    defaults = [PluginRef(name, weight) for name, weight in plugin_registry.defaults()]
    profiles: dict[str, Framework] = {}
    errors: list[str] = []
    for i, spec in enumerate(config.profiles):
        try:
            expanded = expand_plugins(spec, defaults, points, path=f"profiles[{i}].plugins")
        except ConfigError as err:
            # A plugin whose type cannot be told "implements nothing": say why instead.
            errors.extend(_with_problems(err.errors, problems))
            continue
        instances: dict[str, Any] = {}
        failed: set[str] = set()
        for refs in expanded.values():
            for ref in refs:
                if ref.name in instances or ref.name in failed:
                    continue
                try:
                    instances[ref.name] = registry[ref.name](
                        spec.plugin_config.get(ref.name, {}), handle
                    )
                except Exception as err:  # a plugin's own bug is a config error too
                    failed.add(ref.name)
                    why = (
                        str(err)
                        if isinstance(err, ValueError | TypeError | KeyError)
                        else (f"{type(err).__name__}: {err}")
                    )
                    errors.append(f"profiles[{i}].pluginConfig[{ref.name}].args: {why}")
        if errors:
            continue

        def at(
            point: str,
            refs: Mapping[str, list[PluginRef]] = expanded,
            made: Mapping[str, Any] = instances,
        ) -> list[Any]:
            return [made[r.name] for r in refs.get(point, [])]

        queue_sort = at("queueSort")
        profiles[spec.scheduler_name] = Framework(
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
            waiting_pods=waiting_pods or handle.waiting_pods,
            pods_in_pre_bind=handle.pods_in_pre_bind,
            observer=observer or NullObserver(),
        )
    if errors:
        raise ConfigError(errors)
    return profiles


def _with_problems(errors: list[str], problems: Mapping[str, str]) -> list[str]:
    out = []
    for error in errors:
        named = [name for name in problems if f'"{name}"' in error or f"'{name}'" in error]
        out.append(f"{error} ({named[0]}: {problems[named[0]]})" if named else error)
    return out


# --- the running scheduler ---------------------------------------------------------------


@dataclass
class MetricsObserver:
    """cycle.Observer onto the Prometheus metrics (also used by the in-memory bench, so
    their cost is part of the engine's there too)."""

    metrics: Metrics

    def __post_init__(self) -> None:
        # The runtime reports nine extension points per cycle: no wrapper call in between.
        self.extension_point = self.metrics.observe_extension_point  # type: ignore[method-assign]
        self.algorithm = self.metrics.observe_algorithm  # type: ignore[method-assign]

    def attempt(self, result: str, profile: str, seconds: float) -> None:
        self.metrics.observe_attempt(result, profile, seconds)

    def algorithm(self, seconds: float) -> None:
        self.metrics.observe_algorithm(seconds)

    def permit_wait(self, status: str, seconds: float) -> None:
        self.metrics.observe_permit_wait(status, seconds)

    def scheduled(self, attempts: int, seconds_since_arrival: float, flushed: bool) -> None:
        self.metrics.observe_sli(attempts, seconds_since_arrival)
        if flushed:
            self.metrics.pod_scheduled_after_flush.inc()

    def queueing_hint(self, plugin: str, event: str, hint: str, seconds: float) -> None:
        self.metrics.observe_queueing_hint(plugin, event, hint, seconds)

    def preemption_goroutine(self, result: str, seconds: float) -> None:
        self.metrics.observe_preemption_goroutine(result, seconds)

    def extension_point(self, point: str, status: str, profile: str, seconds: float) -> None:
        self.metrics.observe_extension_point(point, status, profile, seconds)

    def plugin(self, plugin: str, point: str, status: str, seconds: float) -> None:
        self.metrics.observe_plugin(plugin, point, status, seconds)


@dataclass
class _Reporter:
    """cycle.Reporter: events and conditions under the pod's profile's name."""

    recorder: Recorder

    def scheduled(self, pod: PodInfo, node: str) -> None:
        self.recorder.scheduled(
            pod.namespace,
            pod.name,
            pod.uid,
            node,
            controller=pod.scheduler_name,
            resource_version=pod.resource_version,
        )

    def failed(self, pod: PodInfo, message: str, reason: str) -> None:
        self.recorder.failed(
            pod.namespace,
            pod.name,
            pod.uid,
            message,
            reason,
            controller=pod.scheduler_name,
            generation=generation(pod.raw),
            resource_version=pod.resource_version,
        )


def queue_for(
    profiles: Mapping[str, Framework],
    *,
    clock: Callable[[], float],
    initial_backoff: float,
    max_backoff: float,
    metrics: Metrics | None = None,
) -> SchedulingQueue:
    """The scheduling queue for these profiles: the first profile's QueueSort (upstream
    requires every profile to use the same), each pod's own profile's PreEnqueue plugins,
    and queueing hints from the plugins of the pod's profile."""
    first = next(iter(profiles.values()))
    if first.queue_sort is None:
        raise ConfigError(["profiles[0].plugins.queueSort: a queue sort plugin is required"])
    interested: dict[framework.ClusterEvent, frozenset[str] | None] = {}

    def pre_enqueue(pod: PodInfo) -> framework.Status | None:
        profile = profiles.get(pod.scheduler_name)
        return profile.run_pre_enqueue(pod) if profile is not None else None

    def worth(entry: QueuedPod, event: framework.ClusterEvent, old: Any, new: Any) -> bool:
        profile = profiles.get(entry.pod.scheduler_name)
        return profile is None or profile.worth_requeuing(
            entry.pod, entry.unschedulable_plugins, event, old, new
        )

    def plugins_for(event: framework.ClusterEvent) -> frozenset[str] | None:
        if event not in interested:
            interested[event] = frozenset(
                name for p in profiles.values() for name, _ in p.hints_for(event)
            )
        return interested[event]

    return SchedulingQueue(
        first.sort_key,
        pre_enqueue,
        clock=clock,
        worth=worth,
        interested=plugins_for,
        initial_backoff=initial_backoff,
        max_backoff=max_backoff,
        on_incoming=metrics.incoming if metrics is not None else lambda q, e: None,
        on_unschedulable=(
            metrics.add_unschedulable if metrics is not None else lambda p, profile, d: None
        ),
        on_inflight=metrics.inflight if metrics is not None else lambda event, delta: None,
        pop_from_backoff=features.enabled("SchedulerPopFromBackoffQ"),
    )


REDISCOVER_SECONDS = 30
"""How often berth looks again for APIs it found unserved at start (a CRD installed later)."""

SHUTDOWN_FLUSH_SECONDS = 2.0
"""How long a stopping berth lets queued events and status writes go out."""

API_UNREACHABLE_SECONDS = 60.0
"""Default for `berth run --api-unreachable-timeout`: twice the longest time berth takes to
notice and replace a dead connection (30 s, a silent watch), so /healthz fails only when
berth cannot heal itself. With the kubelet's default probe (every 10 s, three failures) a
scheduler cut off from the API server is restarted about 90 s into the outage."""


@dataclass
class Engine:
    """The scheduling engine, wired: what `berth run`, `berth sim` and the in-memory bench
    share, so that a simulation schedules with exactly what berth runs."""

    cache: Cache
    handle: ClusterHandle
    profiles: dict[str, Framework]
    queue: SchedulingQueue
    scheduler: Scheduler
    handlers: EventHandlers


def wire(
    config: SchedulerConfig,
    api: ClusterApi,
    reporter: Reporter,
    *,
    metrics: Metrics,
    clock: Callable[[], float] = time.monotonic,
    seed: int | None = None,
    scheduler_hooks: Mapping[str, Any] | None = None,
    handler_hooks: Mapping[str, Any] | None = None,
) -> Engine:
    """Cache, Handle (on `api`), the config's profiles, queue, Scheduler and EventHandlers,
    connected as DESIGN.md's data flow draws them. `seed` seeds every random choice (ties
    in select_host, plugins' Handle.new_random; None: unseeded). `scheduler_hooks` and
    `handler_hooks` are keyword arguments for Scheduler and EventHandlers (events, metrics,
    status writes). Raises ConfigError for a configuration the plugins refuse."""
    cache = Cache()
    handle = ClusterHandle(api, snapshot=cache.table, seed=seed)
    handle.pod_groups.placed = lambda uid: cache.node_of(uid) is not None
    observer = MetricsObserver(metrics)
    profiles = build_profiles(config, handle, observer)
    queue = queue_for(
        profiles,
        clock=clock,
        initial_backoff=config.pod_initial_backoff_seconds,
        max_backoff=config.pod_max_backoff_seconds,
        metrics=metrics,
    )
    handle.activator = queue.activate
    handle.ungater = queue.ungate
    scheduler = Scheduler(
        cache,
        queue,
        profiles,
        reporter,
        observer,
        percentage_of_nodes_to_score=config.percentage_of_nodes_to_score,
        # berth's equivalence batching is what upstream's OpportunisticBatching gates.
        batching=features.enabled("OpportunisticBatching"),
        clock=clock,
        pod_groups=handle.pod_groups,
        rng=random.Random(seed) if seed is not None else None,
        **(scheduler_hooks or {}),
    )
    handlers = EventHandlers(
        cache,
        queue,
        handle,
        profiles=profiles,
        node_selector=config.node_selector,
        **(handler_hooks or {}),
    )
    return Engine(cache, handle, profiles, queue, scheduler, handlers)


class ServeError(Exception):
    """The health and metrics server cannot listen (the port is taken, the address is not
    this host's); the message says where and why."""


class App:
    """berth run: the wiring of every part (DESIGN.md's data flow)."""

    def __init__(
        self,
        config: SchedulerConfig,
        client: Client,
        *,
        serving: ServingOptions | None = None,
        identity: str = "",
        clock: Callable[[], float] = time.monotonic,
        api_unreachable_timeout: float = API_UNREACHABLE_SECONDS,
        tie_break_seed: int | None = None,
    ) -> None:
        """`clock` drives the queue (backoff, the 5-minute flush) and the SLI; tests inject
        a virtual one. `api_unreachable_timeout` (seconds, 0 = never) is how long the API server
        may stay silent while pods wait before /healthz fails (see `unhealthy`).
        `tie_break_seed` seeds the choice among equally scored nodes (None: unseeded), so a
        `berth sim --seed` run on the same pods predicts this one."""
        self.config = config
        self.client = client
        self.api_unreachable_timeout = api_unreachable_timeout
        self.identity = identity or f"{socket.gethostname()}_{time.time_ns():x}"
        self.metrics = Metrics()
        client.observer = self.metrics  # rest_client_* (component-base)
        self.api = KubeApi(client)
        # As kube-scheduler does, events and leader election get clients of their own: a lease
        # renewal must never queue behind thousands of bindings (a shard lost its Lease during
        # a 2,000-pod burst when they shared one), and events must not slow bindings down.
        self.event_client = Client(
            client.creds,
            qps=client.limiter.qps,
            burst=client.limiter.burst,
            write_connections=8,
            observer=self.metrics,
        )
        self.lease_client = Client(
            client.creds, qps=0, write_connections=1, connections=2, observer=self.metrics
        )
        self.recorder = Recorder(
            self.event_client,
            controller=config.profiles[0].scheduler_name,
            instance=self.identity,
            observer=self.metrics,
        )
        self.api.recorder = self.recorder
        engine = wire(
            config,
            self.api,
            _Reporter(self.recorder),
            metrics=self.metrics,
            clock=clock,
            seed=tie_break_seed,
            scheduler_hooks={
                "nominate": lambda pod, node: self.recorder.nominate(
                    pod.namespace, pod.name, pod.uid, node
                ),
                "on_preemption": self.metrics.observe_preemption,
                "on_binding": self.metrics.set_binding_goroutines,
                "on_group": self._group_result,
                "on_prioritizing": self.metrics.goroutines.labels("prioritizing_extender").inc,
            },
            handler_hooks={
                "report_failure": self._invalid_pod,
                "forget": self.recorder.forget,
                "bound": self.recorder.status.bound,
                "observe": self.metrics.observe_event,
            },
        )
        self.cache, self.handle, self.profiles = engine.cache, engine.handle, engine.profiles
        self.queue, self.scheduler, self.handlers = engine.queue, engine.scheduler, engine.handlers
        handlers = self.handlers
        nodes = Informer(client, "/api/v1/nodes", handlers.on_node)
        # The HTTP extenders (config `extenders`), in order; they send nodes as the node
        # informer holds them (its store is replaced on a relist: looked up per call).
        self.scheduler.extenders = build_extenders(
            config.extenders, lambda name: nodes.store.get(name)
        )
        self.informers = [
            nodes,
            Informer(client, "/api/v1/pods", handlers.on_pod),
            Informer(
                client, "/apis/scheduling.k8s.io/v1/priorityclasses", handlers.on_priority_class
            ),
            Informer(client, "/api/v1/namespaces", handlers.on_namespace),
            Informer(client, "/apis/policy/v1/poddisruptionbudgets", handlers.on_pdb),
        ]
        self.informers += [
            Informer(client, path, handlers.volume_handler(kind)) for path, kind in VOLUME_SOURCES
        ]
        self.informers += [
            Informer(client, path, handlers.selector_handler(kind))
            for path, kind in SELECTOR_SOURCES
        ]
        # Informers for APIs a supported server may not serve: (group-version, feature) each.
        # run() drops those the server lacks (discovery.py), with one log line per feature.
        self.optional_informers: dict[Informer, tuple[str, str]] = {
            Informer(client, "/apis/resource.k8s.io/v1/deviceclasses", handlers.on_device_class): (
                "resource.k8s.io/v1",
                "DRA device classes",
            ),
            Informer(
                client, "/apis/resource.k8s.io/v1/resourceslices", handlers.on_resource_slice
            ): ("resource.k8s.io/v1", "DRA devices (ResourceSlices)"),
            Informer(
                client, "/apis/resource.k8s.io/v1/resourceclaims", handlers.on_resource_claim
            ): ("resource.k8s.io/v1", "DRA allocation (ResourceClaims)"),
            Informer(
                client,
                "/apis/scheduling.k8s.io/v1beta1/podgroups",
                handlers.pod_group_handler(UPSTREAM_POD_GROUPS),
            ): ("scheduling.k8s.io/v1beta1", "gang scheduling (PodGroup, GenericWorkload)"),
            Informer(
                client,
                "/apis/scheduling.x-k8s.io/v1alpha1/podgroups",
                handlers.pod_group_handler(COSCHEDULING_POD_GROUPS),
            ): ("scheduling.x-k8s.io/v1alpha1", "gang scheduling (scheduler-plugins PodGroup CRD)"),
        }
        self.informers += list(self.optional_informers)
        self._group_informers = {
            informer: api
            for informer in self.optional_informers
            for api in (UPSTREAM_POD_GROUPS, COSCHEDULING_POD_GROUPS)
            if informer.path.startswith(f"/apis/{api}/")
        }
        self.server_info: ServerInfo | None = None
        # Where and how the endpoints are served (scheduler.serving): plain HTTP on a free
        # loopback port unless told otherwise, which is what in-process callers want.
        self.serving = serving or ServingOptions.local()
        self._stopping = False
        self._resource_metrics = PodResourceCollector(self._pods_for_metrics)
        self.server = Server(
            self.metrics,
            checks=self._health_checks(),
            configz=self._configz,
            resource_metrics=self._resource_metrics.render,
            leading=self._leads,
            bind_address=self.serving.bind_address,
        )
        self._secure: Prepared | None = None
        self.server.add_json_route("/debug/pods/{namespace}/{name}", self._debug_pod)
        self.server.add_json_route("/debug/queue", self._debug_queue)
        self.metrics.before_render.append(self._collect)
        self.host = self.serving.bind_address
        self.leader: LeaderElector | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []  # informers, housekeeping, the elector
        # Optional informers whose API the server did not serve: tried again now and then.
        self._unserved: dict[Informer, tuple[str, str]] = {}
        self._leading = asyncio.Event()
        self.port = 0
        """The plain HTTP port bound (0: none), once run() listens."""
        self.secure_port = 0
        """The HTTPS port bound (0: none), once run() listens."""
        self.serving_cert_sha256 = ""
        """Hex SHA-256 of the HTTPS serving certificate ("": no HTTPS), once run() listens."""

    @property
    def priority_classes(self) -> dict[str, int]:
        return self.handlers.priority_classes

    def _invalid_pod(self, obj: JSON, message: str) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        self.recorder.failed(
            meta.get("namespace", ""),
            meta.get("name", ""),
            meta.get("uid", ""),
            message,
            "SchedulerError",
            controller=spec.get("schedulerName") or "default-scheduler",
            generation=generation(obj),
            resource_version=meta.get("resourceVersion", ""),
        )

    def _group_result(
        self, group: PodGroup, result: str, seconds: float, message: str, profile: str
    ) -> None:
        """A group cycle's result: metrics, and upstream's PodGroupInitiallyScheduled
        condition on a scheduling.k8s.io PodGroup (never turned back once True)."""
        self.metrics.observe_podgroup(result, profile, seconds)
        if result == "bound" or group.api != UPSTREAM_POD_GROUPS:
            return
        latest = self.handle.pod_groups.groups.get(group.key, group)
        status, reason = {
            "scheduled": ("True", "Scheduled"),
            "unschedulable": ("False", "Unschedulable"),
        }.get(result, ("False", "SchedulerError"))
        cond = podgroup_status.condition(
            latest.conditions, status, reason, message, latest.generation
        )
        if cond is None:
            return
        # Remembered at once, so the next cycle's identical result writes nothing.
        others = tuple(c for c in latest.conditions if c.get("type") != cond["type"])
        self.handle.pod_groups.groups[group.key] = dataclasses.replace(
            latest, conditions=(*others, cond), initially_scheduled=status == "True"
        )
        task = asyncio.get_running_loop().create_task(self._write_group_condition(group, cond))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _write_group_condition(self, group: PodGroup, cond: JSON) -> None:
        try:
            await podgroup_status.write_condition(
                self.event_client, group.namespace, group.name, cond
            )
        except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as err:
            log.warning(
                "cannot write the PodGroup condition",
                extra={"podgroup": f"{group.namespace}/{group.name}", "error": str(err)},
            )

    def _collect(self) -> None:
        """Before each scrape: hand the plugin evaluations counted since the last one."""
        for name, profile in self.profiles.items():
            for (plugin, point), count in profile.take_evaluations().items():
                self.metrics.plugin_evaluated(plugin, point, name, count)

    async def _serve(self) -> None:
        """Listen as `self.serving` says: HTTPS with delegated authn/authz on the secure port,
        plain HTTP on --port; raises ServeError naming the address or the flag."""
        serving = self.serving
        try:
            if serving.secure_port:
                self._secure = await prepare(serving, self.client)
                self.serving_cert_sha256 = self._secure.cert_sha256
        except SetupError as err:
            raise ServeError(str(err)) from err
        plain = serving.port if serving.serves_plain else None
        try:
            await self.server.start(
                secure=self._secure.security if self._secure is not None else None,
                secure_port=serving.secure_port,
                plain_port=plain,
            )
        except OSError as err:
            ports = [p for p in (serving.secure_port, serving.port) if p]
            where = ", ".join(f"{serving.bind_address}:{p}" for p in ports) or serving.bind_address
            if self._secure is not None:
                await self._secure.close()
            raise ServeError(f"cannot serve on {where}: {err.strerror or err}") from err
        self.port, self.secure_port = self.server.plain_port, self.server.secure_port

    def _health_checks(self) -> HealthChecks:
        """kube-scheduler's checks (cmd/kube-scheduler/app/server.go): /healthz has the
        leader-election watchdog when electing, and berth's apiserver-reachable; /livez only
        ping; /readyz the watchdog, shutdown and sched-handler-sync (informers synced)."""
        election = self.config.leader_election
        watchdog: list[health.Check] = []
        if election.leader_elect:
            lease = f"{election.resource_namespace}/{election.resource_name}"
            watchdog.append(
                health.LeaderWatchdog(
                    lambda: self.leader, lease_duration=election.lease_duration_s
                ).check(lease)
            )

        def reachable() -> str | None:
            failing = self.unhealthy()
            return None if failing is None else failing[1]

        def shutdown() -> str | None:
            return "process is shutting down" if self._stopping else None

        def synced() -> str | None:
            return None if self.ready() else "handlers are not fully synchronized"

        return HealthChecks(
            healthz=[*watchdog, health.Check("apiserver-reachable", reachable)],
            livez=[],
            readyz=[
                *watchdog,
                health.Check("shutdown", shutdown),
                health.Check("sched-handler-sync", synced),
            ],
        )

    def _configz(self) -> JSON:
        """/configz's componentconfig: the defaulted KubeSchedulerConfiguration v1 document."""
        return configdump.to_v1(self.config)

    def _leads(self) -> bool:
        """kube-scheduler's isLeader for /metrics/resources: leading began (at once without
        leader election, once the caches synced)."""
        if self.config.leader_election.leader_elect:
            return self._leading.is_set() and self.should_schedule()
        return True

    def _pods_for_metrics(self) -> list[tuple[JSON, str]]:
        """Every pod the scheduler knows, with its node ("" while pending): the cache's pods
        (bound and assumed) and the queue's."""
        table = self.cache.table
        pods = [
            (pod.raw, name)
            for name, row in table.row_of.items()
            for pod in table.pods[row].values()
        ]
        pods += [
            (entry.pod.raw, "") for entry in self.queue.pods.values() if entry.where != ASSUMED
        ]
        return pods

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    def unhealthy(self) -> tuple[str, str] | None:
        """/healthz's engine check: fails when the API server has not answered the scheduler's
        client (any answer, a watch's bytes included) for `api_unreachable_timeout` seconds
        while pods wait in the queue (for a node, a binding, or the event that would let them
        be scheduled). Dead connections are replaced within 30 s
        (kube.client), and every informer's watch hears from the server at least that often
        when it is reachable, so silence past twice that means berth cannot heal itself.
        An idle scheduler stays healthy through an outage: a restart would not help it."""
        if self.api_unreachable_timeout <= 0:
            return None
        silent = self.client.silent_for()
        if silent < self.api_unreachable_timeout:
            return None
        # Every pod in the queue waits on the API server: to be bound, or (unschedulable,
        # gated) for the cluster events that would let it be.
        waiting = len(self.queue.pods)
        if waiting == 0:
            return None
        return (
            "apiserver-reachable",
            f"no answer from the API server for {silent:.0f}s while {waiting} pods wait to be"
            " scheduled",
        )

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
                self._unserved[informer] = (group_version, feature)

    async def _rediscover(self) -> None:
        """An API dropped at start may be served now (a CRD installed after berth started,
        scheduler-plugins' PodGroup above all): start its informer, and say so."""
        try:
            info = await discover(self.client)
        except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as err:
            log.info("cannot rediscover the API server's groups", extra={"error": str(err)})
            return
        for informer, (group_version, feature) in list(self._unserved.items()):
            if not info.serves(group_version):
                continue
            del self._unserved[informer]
            log.info(
                "API now served: feature on",
                extra={"api": group_version, "feature": feature, "path": informer.path},
            )
            informer.observer = self.metrics.informer_observer(*informer.resource)
            self.informers.append(informer)
            self._tasks.append(asyncio.create_task(informer.run()))
            api = self._group_informers.get(informer)
            if api is not None:
                await informer.synced.wait()
                self.handle.pod_groups.served.add(api)

    def should_schedule(self) -> bool:
        return self.leader is None or self.leader.is_leader

    async def run(self) -> int:
        """Serve until cancelled or leadership is lost (then return 1, as kube-scheduler
        exits so a fresh process can rejoin the election)."""
        await self._serve()
        self.server_info = await self._discover()
        self._drop_unserved(self.server_info)
        self.handle.pod_groups.served = {
            api for informer, api in self._group_informers.items() if informer in self.informers
        }
        # client-go's informer metrics, labelled as kube-scheduler labels its informers
        # (name="kube-scheduler" and each informer's group, version, resource).
        for informer in self.informers:
            informer.observer = self.metrics.informer_observer(*informer.resource)
        self.recorder.start()
        tasks = self._tasks
        tasks += [asyncio.create_task(i.run()) for i in self.informers]
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
                        debug_url=self._debug_url(),
                        debug_cert_sha256=self.serving_cert_sha256 if self.secure_port else "",
                    ),
                    on_started_leading=self._leading.set,
                    on_stopped_leading=lost.set,
                    metrics=self.metrics,
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
                self.scheduler.abandon()
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
            # What is queued (events, status writes) may go out for a moment; not longer,
            # since the API server may be what is gone.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_FLUSH_SECONDS):
                    await self.recorder.flush()
            await self.recorder.stop()
            self._stopping = True
            await self.server.stop()
            if self._secure is not None:
                await self._secure.close()
            await self.event_client.close()
            await self.lease_client.close()
            for extender in self.scheduler.extenders:
                await extender.close()

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
        """Once a second: refresh gauges; every 30 s: flush the unschedulable pool of pods
        that waited 5 minutes (with the queue's clock); every REDISCOVER_SECONDS: look again
        for the APIs that were not served."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            self.housekeeping(tick)
            if tick % REDISCOVER_SECONDS == 0 and self._unserved:
                self._tasks.append(asyncio.create_task(self._rediscover()))

    def housekeeping(self, tick: int) -> None:
        """One second of housekeeping (tick counts the seconds), callable under a virtual
        clock by tests."""
        self.queue.flush_backoff()
        if tick % 30 == 0:
            self.queue.flush_unschedulable()
        counts = self.queue.counts()
        self.metrics.set_pending(
            counts[ACTIVE], counts[BACKOFF], counts[UNSCHEDULABLE], counts[GATED]
        )
        self.metrics.set_cache_size(**self.cache.sizes())
        self.metrics.pods_waiting_on_permit.set(len(self.handle.waiting_pods))

    # --- debug endpoints -----------------------------------------------------------------

    async def _debug_pod(self, request: Any) -> Any:
        """The pod's last attempt and where it waits (explain.render's input); with
        `?node=NAME`, also each Filter plugin's verdict on that node now ("node_check")."""
        key = f"{request.match_info['namespace']}/{request.match_info['name']}"
        attempt = self.scheduler.last.get(key)
        entry = next((e for e in self.queue.pods.values() if e.pod.key == key), None)
        out: JSON = {
            "pod": key,
            "queue": entry.where if entry else None,
            "attempts": entry.attempts if entry else None,
            # Which replica answers: a standby has tried no pod (explain says so).
            "scheduler": {"identity": self.identity, "leading": self.should_schedule()},
        }
        if "node" in request.query:
            out["node_check"] = self._node_check(entry, request.query["node"])
        if entry is not None and entry.gate_message:
            out["gated"] = entry.gate_message
        waiting = self.handle.waiting_pods.get(entry.pod.uid) if entry is not None else None
        if waiting is not None:
            out["waiting"] = {
                "node": waiting.node,
                "pending_plugins": waiting.pending_plugins(),
                "seconds": round(time.monotonic() - waiting.started, 3),
            }
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
            if attempt.group is not None:
                out["group"] = attempt.group
            backed = self.handle.device_classes.backed(attempt.pod.requests)
            if (attempt.pod.claim_refs or backed) and not attempt.node:
                out["devices"], out["nodes_without_devices"] = self._devices(attempt.pod)
        return out

    def _node_check(self, entry: QueuedPod | None, node: str) -> JSON:
        """Why not `node`, now, for a pod in the queue (scheduler.node_verdict), or why that
        cannot be said. Changes nothing: no assume, no queue move."""
        if entry is None or entry.where == ASSUMED:
            return {
                "node": node,
                "error": "only a pending pod can be checked against a node, and this scheduler"
                " has no such pod waiting (bound or binding, not its schedulerName, or not"
                " seen)",
            }
        profile = self.profiles.get(entry.pod.scheduler_name)
        if profile is None:
            return {"node": node, "error": f"no profile {entry.pod.scheduler_name!r}"}
        if node not in self.cache.table.row_of:
            return {
                "node": node,
                "error": f"node {node!r} is not in the scheduler's cache (no such node, or left"
                " out by the configuration's nodeSelector)",
            }
        try:
            return node_verdict(profile, entry.pod, self.cache.table, node, self.queue.nominator)
        except Exception as err:  # a plugin's bug: say so rather than answer 500
            log.exception("node check failed", extra={"pod": entry.pod.key, "node": node})
            return {"node": node, "error": f"a plugin failed: {type(err).__name__}: {err}"}

    def _debug_url(self) -> str:
        """Where this replica serves /debug, for the Lease's debug-endpoint annotation
        (kube.debug_endpoint): HTTPS on the secure port if served, else plain HTTP on --port;
        at the address in $POD_IP (the downward API's status.podIP), else the bind address when
        it names one, else this host name's address. Empty when nothing is served or no
        address can be told (then no annotation is written)."""
        scheme, port = ("https", self.secure_port) if self.secure_port else ("http", self.port)
        if not port:
            return ""
        address = os.environ.get("POD_IP", "")
        if not address and self.host not in ("", "0.0.0.0", "::"):
            address = self.host
        if not address:
            try:
                address = socket.gethostbyname(socket.gethostname())
            except OSError as err:
                log.warning("no address to advertise for /debug", extra={"error": str(err)})
                return ""
        return base_url(scheme, address, port)

    def _devices(self, pod: PodInfo) -> tuple[list[JSON], int]:
        """Why the pod's claims get no devices, node by node (scheduler.dra.diagnose)."""
        store = self.handle.resource_claims
        claims = [
            c
            for ref in pod.claim_refs
            if ref.claim
            if (c := store.get(pod.namespace, ref.claim)) is not None
        ]
        if len(claims) < sum(1 for ref in pod.claim_refs if ref.claim):
            return [], 0  # a claim is missing: "gated" says which
        backed = self.handle.device_classes.backed(pod.requests)
        if backed:  # as if no node had a device plugin for them
            requests, _ = extended.requests_and_mappings(pod.raw.get("spec") or {}, backed)
            claims.append(DraClaim.compile(extended.claim_for(pod.raw, requests)))
        if not claims:
            return [], 0  # a claim is missing: "gated" says which
        table = self.cache.table
        nodes = [(n.name, n.labels) for row in table.row_of.values() if (n := table.nodes[row])]
        views, bare = diagnose(
            claims,
            nodes,
            self.handle.resource_slices.pools_for,
            self.handle.device_classes.classes,
            store.in_use(),
        )
        return [v.to_json() for v in views], bare

    async def _debug_queue(self, request: Any) -> Any:
        return self.queue.counts()
