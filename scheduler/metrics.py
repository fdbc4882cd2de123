"""Prometheus metrics shaped exactly like kube-scheduler v1.37's, so its dashboards work unchanged.

Every family below keeps upstream's name, label names, help text and histogram buckets (see
`pkg/scheduler/metrics/metrics.go` at v1.37; the `rest_client_*`, `leader_election_*` and
`informer_*` families are client-go's, as component-base v0.37 registers them in kube-scheduler:
`metrics/prometheus/restclient`, `metrics/prometheus/clientgo/leaderelection` and
`metrics/prometheus/clientgo/fifo`). Three things
make the exposition match client_golang's byte for byte where a dashboard could notice:

- Counters are declared with their full `_total` name; prometheus_client strips the suffix from the
  family name and puts it back on the sample, so the exposed series is `..._total` either way.
- prometheus_client adds a `<name>_created` series to every counter and histogram child; Go's client
  does not, so `render()` drops them (a view over the registry, no process-wide switch).
- Bucket bounds come from `exponential_buckets()`, which multiplies step by step as client_golang's
  `ExponentialBuckets` does, so `le` strings such as `1.5000000000000002e-05` match upstream's, and
  integral bounds print as Go prints them (`le="1"`, not `le="1.0"`).

Each `Metrics` owns its `CollectorRegistry`, so tests build fresh ones freely.

Label children are looked up with `labels()` once per label combination and cached in a dict: the
engine calls the `observe_*` methods on its hot path, and `labels()` takes a lock and builds a tuple
every time. A label value from a closed upstream set (attempt result, queue, extension point,
status) is checked against that set when its child is first bound, so a typo fails loudly at once
instead of quietly splitting a dashboard's series, and costs nothing afterwards.

Help texts are upstream's, word for word, after the stability level as component-base prints it
(`[STABLE] `, `[BETA] `, `[ALPHA] `; v1.36 and v1.37 promoted several families to BETA);
`berth_*` families are berth's own and have no upstream counterpart.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

# The text format kube-scheduler's /metrics answers with by default.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# result label of schedule_attempts_total and scheduling_attempt_duration_seconds.
SCHEDULED = "scheduled"
UNSCHEDULABLE = "unschedulable"
ERROR = "error"
RESULTS = frozenset({SCHEDULED, UNSCHEDULABLE, ERROR})

# queue label of pending_pods; queue_incoming_pods_total never uses "gated" upstream (a gated pod
# enters the unschedulable pool and is counted there).
ACTIVE = "active"
BACKOFF = "backoff"
GATED = "gated"
PENDING_QUEUES = frozenset({ACTIVE, BACKOFF, UNSCHEDULABLE, GATED})
INCOMING_QUEUES = frozenset({ACTIVE, BACKOFF, UNSCHEDULABLE})

# extension_point label values, spelled as upstream spells them.
EXTENSION_POINTS = frozenset(
    {
        "PreEnqueue",  # observed by upstream's scheduling queue (scheduling_queue.go)
        "PreFilter",
        "Filter",
        "PreFilterExtensionAddPod",
        "PreFilterExtensionRemovePod",
        "PostFilter",
        "PreScore",
        "Score",
        "ScoreExtensionNormalize",
        "PreBindPreFlight",
        "PreBind",
        "Bind",
        "PostBind",
        "Reserve",
        "Unreserve",
        "Permit",
    }
)

# status label values: the framework status code's name, as upstream's Code.String() prints it.
STATUSES = frozenset(
    {"Success", "Error", "Unschedulable", "UnschedulableAndUnresolvable", "Wait", "Skip", "Pending"}
)

# type label of queued_entities: berth has no podgroup entities (GenericWorkload is off).
POD = "pod"

# operation label of goroutines that berth has: one per binding cycle. Upstream's other
# operations count the goroutines of its parallel Filter, Score and preemption loops, which
# berth runs vectorized on one thread.
BINDING = "binding"

# type label of the cache-size gauges.
CACHE_TYPES = ("nodes", "pods", "assumed_pods")

# pod_scheduling_sli_duration_seconds caps its attempts label here to bound cardinality.
ATTEMPTS_CAP = 15

# code label of rest_client_requests_total for an attempt that got no HTTP response: client-go's
# (`sanitize` in rest/request.go), so that error strings never become label values.
NO_RESPONSE = "<error>"


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """`count` bounds from `start`, each `factor` times the last, computed as client_golang does.

    Multiplying step by step (not `start * factor**i`) keeps the float rounding, and therefore the
    `le` strings, identical to upstream's.
    """
    if start <= 0 or factor <= 1 or count < 1:
        raise ValueError(f"exponential_buckets({start}, {factor}, {count}): need start>0, factor>1")
    bounds = []
    for _ in range(count):
        bounds.append(start)
        start *= factor
    return tuple(bounds)


# Upstream's buckets, by the metric that uses them.
ATTEMPT_DURATION_BUCKETS = exponential_buckets(0.001, 2, 15)  # 1ms .. ~16s
SLI_DURATION_BUCKETS = exponential_buckets(0.01, 2, 20)  # 10ms .. ~87min
ATTEMPTS_BUCKETS = exponential_buckets(1, 2, 5)  # 1 .. 16
EXTENSION_POINT_BUCKETS = exponential_buckets(0.0001, 2, 12)  # 0.1ms .. ~200ms
PLUGIN_BUCKETS = exponential_buckets(0.00001, 1.5, 20)  # 10µs .. ~22ms, fine-grained
PREEMPTION_VICTIMS_BUCKETS = exponential_buckets(1, 2, 7)  # 1 .. 64
EVENT_HANDLING_BUCKETS = exponential_buckets(0.0001, 2, 12)  # 0.1ms .. ~200ms
# client-go's request and rate-limiter latencies: listed, not computed, upstream too.
REST_CLIENT_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
# client-go's informer processing latency (component-base metrics/prometheus/clientgo/fifo).
INFORMER_PROCESSING_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# name label of the informer_* families: the InformerName kube-scheduler gives its informers
# (cmd/kube-scheduler/app/server.go: cache.NewInformerName("kube-scheduler")).
INFORMER_NAME = "kube-scheduler"


class Metrics:
    """kube-scheduler's metric families on a registry of their own, plus hot-path recorders.

    Attributes are the families themselves, named after the upstream metric without its
    `scheduler_` prefix and `_total`/`_seconds` suffix; use them directly for anything the
    `observe_*`/`set_*` helpers do not cover.
    """

    def __init__(self, *, process_metrics: bool = True) -> None:
        """process_metrics: also expose process_* (CPU, memory, fds, start time) and
        go_goroutines, as component-base's legacy registry does for every Go component."""
        self.registry = CollectorRegistry()
        reg = self.registry
        if process_metrics:
            ProcessCollector(registry=reg)
            # Python has no goroutines; the event loop's tasks are what goroutines are to
            # kube-scheduler (one per binding cycle, informer, timer...), so a leak or a pile-up
            # shows on the kubernetes-mixin "Goroutines" panel the same way (docs/compat.md).
            tasks = Gauge(
                "go_goroutines",
                "Number of goroutines that currently exist. berth: the number of asyncio tasks "
                "of its event loop.",
                registry=reg,
            )
            tasks.set_function(_asyncio_tasks)

        self.schedule_attempts = Counter(
            "scheduler_schedule_attempts_total",
            "[STABLE] Number of attempts to schedule pods, by the result. 'unschedulable' means "
            "a pod could not be scheduled, while 'error' means an internal scheduler problem.",
            ["result", "profile"],
            registry=reg,
        )
        self.scheduling_attempt_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds",
            "[STABLE] Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            ["result", "profile"],
            buckets=ATTEMPT_DURATION_BUCKETS,
            registry=reg,
        )
        self.scheduling_algorithm_duration = Histogram(
            "scheduler_scheduling_algorithm_duration_seconds",
            "[BETA] Scheduling algorithm latency in seconds",
            buckets=ATTEMPT_DURATION_BUCKETS,
            registry=reg,
        )
        self.pod_scheduling_sli_duration = Histogram(
            "scheduler_pod_scheduling_sli_duration_seconds",
            "[BETA] E2e latency for a pod being scheduled, from the time the pod enters the "
            "scheduling queue and might involve multiple scheduling attempts.",
            ["attempts"],
            buckets=SLI_DURATION_BUCKETS,
            registry=reg,
        )
        self.pod_scheduling_attempts = Histogram(
            "scheduler_pod_scheduling_attempts",
            "[STABLE] Number of attempts to successfully schedule a pod.",
            buckets=ATTEMPTS_BUCKETS,
            registry=reg,
        )
        self.framework_extension_point_duration = Histogram(
            "scheduler_framework_extension_point_duration_seconds",
            "[STABLE] Latency for running all plugins of a specific extension point.",
            ["extension_point", "status", "profile"],
            buckets=EXTENSION_POINT_BUCKETS,
            registry=reg,
        )
        self.plugin_execution_duration = Histogram(
            "scheduler_plugin_execution_duration_seconds",
            "[BETA] Duration for running a plugin at a specific extension point.",
            ["plugin", "extension_point", "status"],
            buckets=PLUGIN_BUCKETS,
            registry=reg,
        )
        self.pending_pods = Gauge(
            "scheduler_pending_pods",
            # v1.37's text names the gang queues ('incomplete', 'pending') too, although
            # they only fill with GenericWorkload on.
            "[STABLE] Number of pending pods, by the queue type. 'active' means number of pods "
            "in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means "
            "number of pods in unschedulableEntities that the scheduler attempted to schedule "
            "and failed; 'gated' is the number of unschedulable pods that the scheduler never "
            "attempted to schedule because they are gated; 'incomplete' means number of pods "
            "in incompletePodGroupPods; 'pending' means number of pods in pendingPodGroupPods.",
            ["queue"],
            registry=reg,
        )
        self.queue_incoming_pods = Counter(
            "scheduler_queue_incoming_pods_total",
            "[STABLE] Number of pods added to scheduling queues by event and queue type.",
            ["queue", "event"],
            registry=reg,
        )
        self.preemption_attempts = Counter(
            "scheduler_preemption_attempts_total",
            "[STABLE] Total preemption attempts in the cluster till now",
            registry=reg,
        )
        self.preemption_victims = Histogram(
            "scheduler_preemption_victims",
            "[STABLE] Number of selected preemption victims for preemption initiated by a "
            "single pod",
            buckets=PREEMPTION_VICTIMS_BUCKETS,
            registry=reg,
        )
        self.queue_incoming_entities = Counter(
            "scheduler_queue_incoming_entities_total",
            "[ALPHA] Number of scheduling entities added to scheduling queues by event, queue "
            "type, and entity type. Entity types are either 'pod' (for individual pods that are "
            "not members of any podgroup) or 'podgroup'.",
            ["queue", "event", "type"],
            registry=reg,
        )
        self.pod_scheduled_after_flush = Counter(
            "scheduler_pod_scheduled_after_flush_total",
            "[ALPHA] Number of pods that were successfully scheduled after being flushed from "
            "unschedulableEntities due to timeout. This metric helps detect potential queueing "
            "hint misconfigurations or event handling issues.",
            registry=reg,
        )
        self.inflight_events = Gauge(
            "scheduler_inflight_events",
            "[ALPHA] Number of events currently tracked in the scheduling queue.",
            ["event"],
            registry=reg,
        )
        self.queueing_hint_execution_duration = Histogram(
            "scheduler_queueing_hint_execution_duration_seconds",
            "[ALPHA] Duration for running a queueing hint function of a plugin.",
            ["plugin", "event", "hint"],
            buckets=PLUGIN_BUCKETS,
            registry=reg,
        )
        self.preemption_goroutines_duration = Histogram(
            "scheduler_preemption_goroutines_duration_seconds",
            "[ALPHA] (Deprecated since 1.37.0) Duration in seconds for running goroutines for "
            "the preemption.",
            ["result"],
            buckets=exponential_buckets(0.01, 2, 20),
            registry=reg,
        )
        self.preemption_goroutines_execution = Counter(
            "scheduler_preemption_goroutines_execution_total",
            "[ALPHA] Number of preemption goroutines executed.",
            ["result"],
            registry=reg,
        )
        self.unschedulable_pods = Gauge(
            "scheduler_unschedulable_pods",
            "[BETA] The number of unschedulable pods broken down by plugin name. A pod will "
            "increment the gauge for all plugins that caused it to not schedule and so this "
            "metric have meaning only when broken down by plugin.",
            ["plugin", "profile"],
            registry=reg,
        )
        self.cache_size = Gauge(
            "scheduler_cache_size",
            "[ALPHA] Number of nodes, pods, and assumed (bound) pods in the scheduler cache.",
            ["type"],
            registry=reg,
        )
        self.plugin_evaluation = Counter(
            "scheduler_plugin_evaluation_total",
            "[BETA] Number of attempts to schedule pods by each plugin and the extension point "
            "(available only in PreFilter, Filter, PreScore, and Score).",
            ["plugin", "extension_point", "profile"],
            registry=reg,
        )
        self.event_handling_duration = Histogram(
            "scheduler_event_handling_duration_seconds",
            "[ALPHA] Event handling latency in seconds.",
            ["event"],
            buckets=EVENT_HANDLING_BUCKETS,
            registry=reg,
        )
        self.permit_wait_duration = Histogram(
            "scheduler_permit_wait_duration_seconds",
            "[BETA] Duration of waiting on permit.",
            ["result"],
            buckets=ATTEMPT_DURATION_BUCKETS,
            registry=reg,
        )
        # DRA binding conditions (DRADeviceBindingConditions, beta and on in v1.37): the
        # families exist as upstream's do; they stay empty, as berth never allocates a device
        # with binding conditions (docs/compat.md row 38).
        self.dra_bindingconditions_allocations = Counter(
            "scheduler_dra_bindingconditions_allocations_total",
            "[ALPHA] Number of allocations using devices with BindingConditions, counted per "
            "driver per scheduling attempt",
            ["profile", "driver", "status"],
            registry=reg,
        )
        self.dra_bindingconditions_wait = Histogram(
            "scheduler_dra_bindingconditions_wait_duration_seconds",
            "[ALPHA] Time in seconds spent waiting for BindingConditions to be satisfied "
            "during PreBind.",
            ["profile", "driver", "status"],
            buckets=[0.1 * 2**i for i in range(14)],
            registry=reg,
        )
        self.podgroup_schedule_attempts = Counter(
            "scheduler_podgroup_schedule_attempts_total",
            "[ALPHA] Number of attempts to schedule pod group, by the result. 'unschedulable' "
            "means a pod group could not be scheduled, while 'error' means an internal "
            "scheduler problem.",
            ["result", "profile"],
            registry=reg,
        )
        self.podgroup_scheduling_attempt_duration = Histogram(
            "scheduler_podgroup_scheduling_attempt_duration_seconds",
            "[ALPHA] Pod group scheduling attempt latency in seconds",
            ["result", "profile"],
            buckets=ATTEMPT_DURATION_BUCKETS,
            registry=reg,
        )
        # berth's own: what a gang's user waits for, from the moment minCount members
        # exist to the bind of the last member placed by the cycle that met the quorum.
        self.podgroup_quorum_to_bound = Histogram(
            "berth_podgroup_quorum_to_bound_seconds",
            "Time from a gang PodGroup having minCount pods to the last bind of the group "
            "cycle that placed it.",
            ["profile"],
            buckets=SLI_DURATION_BUCKETS,
            registry=reg,
        )
        self.pods_waiting_on_permit = Gauge(
            "berth_pods_waiting_on_permit",
            "Pods assumed on a node and waiting in Permit (gang members among them).",
            registry=reg,
        )
        self.goroutines = Gauge(
            "scheduler_goroutines",
            "[BETA] Number of running goroutines split by the work they do such as binding.",
            ["operation"],
            registry=reg,
        )
        self.queued_entities = Gauge(
            "scheduler_queued_entities",
            "[ALPHA] Number of queued scheduling entities ('pod' or 'podgroup'; 'pod' stands for "
            "individual pods that are not members of any podgroup) by the queue type. 'active' "
            "means number of entities in activeQ; 'backoff' means number of entities in "
            "backoffQ; 'unschedulable' means number of entities in unschedulableEntities that "
            "the scheduler attempted to schedule and failed; 'gated' is the number of "
            "unschedulable entities that the scheduler never attempted to schedule because they "
            "are gated.",
            ["queue", "type"],
            registry=reg,
        )
        self.rest_client_requests = Counter(
            "rest_client_requests_total",
            "[ALPHA] Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"],
            registry=reg,
        )
        self.rest_client_request_duration = Histogram(
            "rest_client_request_duration_seconds",
            "[ALPHA] Request latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=REST_CLIENT_BUCKETS,
            registry=reg,
        )
        self.rest_client_rate_limiter_duration = Histogram(
            "rest_client_rate_limiter_duration_seconds",
            "[ALPHA] Client side rate limiter latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=REST_CLIENT_BUCKETS,
            registry=reg,
        )
        # Not registered yet: component-base registers it with the first leader elector, so a
        # process that does not elect exposes no such family (set_leader registers it).
        self.leader_election_master_status = Gauge(
            "leader_election_master_status",
            "[ALPHA] Gauge of if the reporting system is master of the relevant lease, 0 "
            "indicates backup, 1 indicates master. 'name' is the string used to identify the "
            "lease. Please make sure to group by name.",
            ["name"],
            registry=None,
        )
        # client-go's informer metrics, one series per informer: component-base registers them
        # with kube-scheduler's first informer, and it always has informers.
        self.informer_store_resource_version = Gauge(
            "informer_store_resource_version",
            "[ALPHA] The 15 least significant digits of the resource version of the store.",
            ["name", "group", "version", "resource"],
            registry=reg,
        )
        self.informer_queued_items = Gauge(
            "informer_queued_items",
            "[ALPHA] Number of items currently queued in the FIFO.",
            ["name", "group", "version", "resource"],
            registry=reg,
        )
        self.informer_processing_latency = Histogram(
            "informer_processing_latency_seconds",
            "[ALPHA] Time taken to process events after popping from the queue.",
            ["name", "group", "version", "resource"],
            buckets=INFORMER_PROCESSING_BUCKETS,
            registry=reg,
        )
        # Shaped like upstream's async API dispatcher families (scheduler_async_api_call_*,
        # registered only with SchedulerAsyncAPICalls, off in v1.37), under berth's prefix:
        # berth always writes pod status this way, and counts its events as call_type="event".
        self.async_api_call_execution = Counter(
            "berth_async_api_call_execution_total",
            "API calls (pod status writes, events) executed off the scheduling path.",
            ["call_type", "result"],
            registry=reg,
        )
        self.async_api_call_duration = Histogram(
            "berth_async_api_call_execution_duration_seconds",
            "Duration in seconds of an API call off the scheduling path, retries included.",
            ["call_type", "result"],
            buckets=ATTEMPT_DURATION_BUCKETS,
            registry=reg,
        )
        self.pending_async_api_calls = Gauge(
            "berth_pending_async_api_calls",
            "API calls waiting off the scheduling path (pod status writes: one per pod).",
            ["call_type"],
            registry=reg,
        )
        self.async_api_calls_skipped = Counter(
            "berth_async_api_calls_skipped_total",
            "API calls never made: stale (the pod is bound or being bound), superseded (merged "
            "into a newer write for the same pod), backlog (no room: dropped), gone (the pod "
            "or its namespace no longer exists).",
            ["call_type", "reason"],
            registry=reg,
        )
        self.binding_inflight = Gauge(
            "berth_binding_inflight",
            "Binding cycles started and not yet finished (Permit wait, PreBind, Bind).",
            registry=reg,
        )

        self._pending = tuple(
            self.pending_pods.labels(q) for q in (ACTIVE, BACKOFF, UNSCHEDULABLE, GATED)
        )
        # Upstream binds a queue's entities child on the first entity that enters the queue.
        self._entities: list[Gauge | None] = [None] * len(self._pending)
        self._binding_goroutines: Gauge | None = None
        self._cache = tuple(self.cache_size.labels(t) for t in CACHE_TYPES)
        self._attempt: dict[tuple[str, str], tuple[Counter, _Buffered]] = {}
        self._point: dict[tuple[str, str, str], _Buffered] = {}
        self._plugin: dict[tuple[str, str, str], _Buffered] = {}
        self._algorithm = _Buffered(self.scheduling_algorithm_duration)
        self._buffers: list[_Buffered] = [self._algorithm]
        self._sli: dict[int, Histogram] = {}
        self._incoming: dict[tuple[str, str], tuple[Counter, Counter]] = {}
        self._inflight: dict[str, int] = {}
        self._hint: dict[tuple[str, str, str], _Buffered] = {}
        self._evaluation: dict[tuple[str, str, str], Counter] = {}
        self._event: dict[str, Histogram] = {}
        self._permit: dict[str, Histogram] = {}
        self._requests: dict[tuple[str, str, str], Counter] = {}
        self._request_duration: dict[tuple[str, str], Histogram] = {}
        self._rate_limiter: dict[tuple[str, str], Histogram] = {}
        self._leader: dict[str, Gauge] = {}
        self._informers: dict[tuple[str, str, str, str], InformerSeries] = {}
        self._view = _UpstreamView(reg)
        self.before_render: list[Callable[[], None]] = [self.flush]

    def flush(self) -> None:
        """Hand the buffered observations of the hot-path histograms to their families, and
        the in-flight event counts to their gauge."""
        for buffered in self._buffers:
            buffered.flush()
        for event, count in self._inflight.items():
            self.inflight_events.labels(event).set(count)

    def _buffer(self, child: Histogram) -> _Buffered:
        buffered = _Buffered(child)
        self._buffers.append(buffered)
        return buffered

    # Hot-path recorders. Each looks its children up in a dict and binds them on the first miss.

    def observe_attempt(self, result: str, profile: str, seconds: float) -> None:
        """One scheduling attempt ended with `result` (scheduled, unschedulable or error)."""
        children = self._attempt.get((result, profile))
        if children is None:
            _check("result", result, RESULTS)
            children = self._attempt[result, profile] = (
                self.schedule_attempts.labels(result, profile),
                self._buffer(self.scheduling_attempt_duration.labels(result, profile)),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_algorithm(self, seconds: float) -> None:
        """The scheduling algorithm (filter and score) of one attempt took `seconds`."""
        values = self._algorithm.values  # _Buffered.observe, inlined (once per cycle)
        values.append(seconds)
        if len(values) >= _Buffered.FLUSH_EVERY:
            self._algorithm.flush()

    def observe_extension_point(
        self, point: str, status: str, profile: str, seconds: float
    ) -> None:
        """All plugins of extension point `point` ran in `seconds`, ending with `status`."""
        child = self._point.get((point, status, profile))
        if child is None:
            _check("extension point", point, EXTENSION_POINTS)
            _check("status", status, STATUSES)
            child = self._point[point, status, profile] = self._buffer(
                self.framework_extension_point_duration.labels(point, status, profile)
            )
        values = child.values  # _Buffered.observe, inlined: nine calls per scheduling cycle
        values.append(seconds)
        if len(values) >= _Buffered.FLUSH_EVERY:
            child.flush()

    def observe_plugin(self, plugin: str, point: str, status: str, seconds: float) -> None:
        """Plugin `plugin` ran at `point` in `seconds`, returning `status`.

        Upstream samples this (10% of scheduling cycles) because it is per plugin per pod; the
        caller decides whether to do the same.
        """
        child = self._plugin.get((plugin, point, status))
        if child is None:
            _check("extension point", point, EXTENSION_POINTS)
            _check("status", status, STATUSES)
            child = self._plugin[plugin, point, status] = self._buffer(
                self.plugin_execution_duration.labels(plugin, point, status)
            )
        child.observe(seconds)

    def observe_sli(self, attempts: int, seconds: float) -> None:
        """A pod got scheduled after `attempts` attempts, `seconds` after it entered the queue.

        The attempts label stops at "15+", as upstream's does.
        """
        key = min(attempts, ATTEMPTS_CAP)
        child = self._sli.get(key)
        if child is None:
            if attempts < 1:
                raise ValueError(f"attempts must be at least 1, got {attempts}")
            label = f"{ATTEMPTS_CAP}+" if key == ATTEMPTS_CAP else str(key)
            child = self._sli[key] = self.pod_scheduling_sli_duration.labels(label)
        child.observe(seconds)
        self.pod_scheduling_attempts.observe(attempts)

    def set_pending(self, active: int, backoff: int, unschedulable: int, gated: int) -> None:
        """The queue now holds this many pods in each of its pools.

        queued_entities{type="pod"} follows pending_pods: berth queues every pod on its own, as
        upstream does while GenericWorkload is off (no podgroup entities).
        """
        counts = (active, backoff, unschedulable, gated)
        queues = (ACTIVE, BACKOFF, UNSCHEDULABLE, GATED)
        for i, (pods, count) in enumerate(zip(self._pending, counts, strict=True)):
            pods.set(count)
            entities = self._entities[i]
            if entities is None and count:
                entities = self._entities[i] = self.queued_entities.labels(queues[i], POD)
            if entities is not None:
                entities.set(count)

    def set_binding_goroutines(self, running: int) -> None:
        """`running` binding cycles are in flight (upstream's goroutines{operation="binding"}:
        one goroutine per binding cycle, from its start to the end of PostBind or its failure
        handling)."""
        child = self._binding_goroutines
        if child is None:
            child = self._binding_goroutines = self.goroutines.labels(BINDING)
        child.set(running)
        self.binding_inflight.set(running)  # berth's own name for the same count

    def incoming(self, queue: str, event: str) -> None:
        """A pod entered `queue` (active, backoff or unschedulable) because of `event`.

        Events use upstream's labels: PodAdd, ScheduleAttemptFailure, BackoffComplete,
        PopFromBackoffQ, ForceActivate, UnschedulableTimeout, or a cluster event such as
        NodeAdd.
        """
        children = self._incoming.get((queue, event))
        if children is None:
            _check("queue", queue, INCOMING_QUEUES)
            children = self._incoming[queue, event] = (
                self.queue_incoming_pods.labels(queue, event),
                # Every entity is a pod while gangs (GenericWorkload) are off.
                self.queue_incoming_entities.labels(queue, event, "pod"),
            )
        children[0].inc()
        children[1].inc()

    def inflight(self, event: str, delta: int) -> None:
        """The queue tracks `delta` more in-flight events labelled `event` ("PodPopped" for
        pods in flight). Kept in an int per label and set on the gauge at scrape time."""
        self._inflight[event] = self._inflight.get(event, 0) + delta

    def observe_queueing_hint(self, plugin: str, event: str, hint: str, seconds: float) -> None:
        """`plugin`'s queueing hint for `event` said `hint` (Queue, QueueSkip, Error)."""
        child = self._hint.get((plugin, event, hint))
        if child is None:
            child = self._hint[plugin, event, hint] = self._buffer(
                self.queueing_hint_execution_duration.labels(plugin, event, hint)
            )
        child.observe(seconds)

    def api_call_done(self, call_type: str, result: str, seconds: float) -> None:
        """kube.dispatcher.CallObserver: a status write or event ended."""
        self.async_api_call_execution.labels(call_type, result).inc()
        self.async_api_call_duration.labels(call_type, result).observe(seconds)

    def api_call_skipped(self, call_type: str, reason: str) -> None:
        self.async_api_calls_skipped.labels(call_type, reason).inc()

    def api_calls_pending(self, call_type: str, pending: int) -> None:
        self.pending_async_api_calls.labels(call_type).set(pending)

    def observe_preemption_goroutine(self, result: str, seconds: float) -> None:
        """A preemption's API work (deleting its victims) ended with `result`."""
        self.preemption_goroutines_duration.labels(result).observe(seconds)
        self.preemption_goroutines_execution.labels(result).inc()

    def observe_preemption(self, victims: int | None) -> None:
        """A preemption attempt ended; `victims` is how many it chose, None if it found no node."""
        self.preemption_attempts.inc()
        if victims is not None:
            self.preemption_victims.observe(victims)

    def add_unschedulable(self, plugins: Iterable[str], profile: str, delta: int) -> None:
        """A pod rejected by `plugins` entered (delta=1) or left (delta=-1) unschedulable pods."""
        for plugin in plugins:
            self.unschedulable_pods.labels(plugin, profile).inc(delta)

    def plugin_evaluated(self, plugin: str, point: str, profile: str, count: int = 1) -> None:
        """Plugin `plugin` was evaluated `count` more times at `point`."""
        child = self._evaluation.get((plugin, point, profile))
        if child is None:
            _check("extension point", point, EXTENSION_POINTS)
            child = self._evaluation[plugin, point, profile] = self.plugin_evaluation.labels(
                plugin, point, profile
            )
        child.inc(count)

    def observe_event(self, event: str, seconds: float) -> None:
        """Handling cluster event `event` (upstream's label, e.g. NodeAdd) took `seconds`."""
        child = self._event.get(event)
        if child is None:
            child = self._event[event] = self.event_handling_duration.labels(event)
        child.observe(seconds)

    def observe_podgroup(self, result: str, profile: str, seconds: float) -> None:
        """One group cycle: scheduler_podgroup_* (result scheduled, unschedulable, error),
        or with result "bound" the quorum-to-bound latency of a group it placed."""
        if result == "bound":
            self.podgroup_quorum_to_bound.labels(profile).observe(seconds)
            return
        self.podgroup_schedule_attempts.labels(result, profile).inc()
        self.podgroup_scheduling_attempt_duration.labels(result, profile).observe(seconds)

    def observe_permit_wait(self, status: str, seconds: float) -> None:
        """A pod waited `seconds` at Permit and the wait ended with `status`."""
        child = self._permit.get(status)
        if child is None:
            _check("status", status, STATUSES)
            child = self._permit[status] = self.permit_wait_duration.labels(status)
        child.observe(seconds)

    def set_cache_size(self, nodes: int, pods: int, assumed_pods: int) -> None:
        """The cache now holds this many nodes, pods and assumed pods."""
        for child, value in zip(self._cache, (nodes, pods, assumed_pods), strict=True):
            child.set(value)

    # client-go's REST client and leader election: scheduler.kube's Client and LeaderElector call
    # these (they match the RequestObserver and LeaderMetrics protocols there).

    def count_request(self, method: str, host: str, code: str) -> None:
        """One HTTP attempt to `host` (host:port) ended with status `code` ("200"), or with
        NO_RESPONSE when no response came. client-go counts every attempt, retries included,
        and a watch when its response headers arrive."""
        child = self._requests.get((code, method, host))
        if child is None:
            if code != NO_RESPONSE and not (len(code) == 3 and code.isdigit()):
                raise ValueError(f"code {code!r} is neither an HTTP status nor {NO_RESPONSE!r}")
            child = self._requests[code, method, host] = self.rest_client_requests.labels(
                code, method.upper(), host
            )
        child.inc()

    def observe_request(self, verb: str, host: str, seconds: float) -> None:
        """One API call (`verb` is its HTTP method) took `seconds`, from before its rate-limiter
        wait to its last attempt's answer, as client-go's Request.request() times it."""
        child = self._request_duration.get((verb, host))
        if child is None:
            child = self._request_duration[verb, host] = self.rest_client_request_duration.labels(
                verb.upper(), host
            )
        child.observe(seconds)

    def observe_rate_limiter(self, verb: str, host: str, seconds: float) -> None:
        """A request waited `seconds` for a token of the client-side rate limiter (0 when one was
        saved up; client-go observes every pass through its limiter)."""
        child = self._rate_limiter.get((verb, host))
        if child is None:
            child = self._rate_limiter[verb, host] = self.rest_client_rate_limiter_duration.labels(
                verb.upper(), host
            )
        child.observe(seconds)

    def set_leader(self, name: str, leading: bool) -> None:
        """This process now leads (1) or stands by (0) for lease `name`.

        The first call registers the family, as client-go's first leader elector does; it then
        stays exposed, at 0 after leadership is lost.
        """
        child = self._leader.get(name)
        if child is None:
            if not self._leader:
                self.registry.register(self.leader_election_master_status)
            child = self._leader[name] = self.leader_election_master_status.labels(name)
        child.set(1 if leading else 0)

    def informer_observer(
        self, group: str, version: str, resource: str, *, name: str = INFORMER_NAME
    ) -> InformerSeries:
        """The series of one informer, labelled as client-go labels them (group "" for the core
        API), for scheduler.kube's Informer to report to (an InformerObserver).

        Its series are exposed from this call on, gauges at 0, as client-go binds them when it
        builds the informer. Asking again for the same labels returns the same series: client-go
        publishes one informer per name and resource, and berth has one per resource.
        """
        key = (name, group, version, resource)
        series = self._informers.get(key)
        if series is None:
            series = self._informers[key] = InformerSeries(
                self.informer_store_resource_version.labels(*key),
                self.informer_queued_items.labels(*key),
                self.informer_processing_latency.labels(*key),
            )
        return series

    def disable(self, names: Iterable[str]) -> None:
        """component-base's `--disabled-metrics`: these families are not exported (a counter
        may be named with or without its `_total`, as upstream names it with)."""
        self._view.disabled = frozenset(names)

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every family, and its Content-Type. The `before_render`
        hooks run first (counts kept in plain ints on the hot path are handed over there)."""
        for hook in self.before_render:
            hook()
        return generate_latest(self._view), CONTENT_TYPE


class _Buffered:
    """One child of a hot-path histogram whose observations are kept in a list and handed
    to it in bulk (at every scrape, and every FLUSH_EVERY observations, so memory stays
    bounded without scrapes).

    Why not observe directly: prometheus_client's Histogram.observe takes a lock and walks
    the bucket list in Python, about 1.5 µs; a v1.37 cycle observes nine extension points,
    the algorithm and the attempt, and `berth bench --in-memory --workload basic` spent
    about 10% of its CPU there. Appending costs about 0.05 µs, and the bulk hand-over adds
    each bucket's count once. The exposition is prometheus_client's, unchanged."""

    FLUSH_EVERY = 4096
    __slots__ = ("child", "values")

    def __init__(self, child: Histogram) -> None:
        self.child = child
        self.values: list[float] = []

    def observe(self, seconds: float) -> None:
        values = self.values
        values.append(seconds)
        if len(values) >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        values, self.values = self.values, []
        if not values:
            return
        # prometheus_client's own fields: the same updates observe() makes, counted first.
        child: Any = self.child
        bounds = child._upper_bounds
        counts = [0] * len(bounds)
        for value in values:
            counts[bisect.bisect_left(bounds, value)] += 1  # first bound >= value: le
        for index, count in enumerate(counts):
            if count:
                child._buckets[index].inc(count)
        total = child._sum.get()
        for value in values:  # in order, so the sum is the one observe() would have made
            total += value
        child._sum.set(total)


class InformerSeries:
    """One informer's children of the informer_* families, bound once; it is what
    scheduler.kube.informer.InformerObserver describes, called once per watch event."""

    __slots__ = ("_latency", "_queued", "_resource_version")

    def __init__(self, resource_version: Gauge, queued: Gauge, latency: Histogram) -> None:
        self._resource_version = resource_version
        self._queued = queued
        self._latency = latency

    def set_resource_version(self, resource_version: int) -> None:
        """The informer's store is at this resource version (its 15 last digits)."""
        self._resource_version.set(resource_version)

    def set_queued_items(self, items: int) -> None:
        """`items` received events wait for their handler."""
        self._queued.set(items)

    def observe_processing(self, seconds: float) -> None:
        """One event took `seconds` to store and handle."""
        self._latency.observe(seconds)


def _asyncio_tasks() -> float:
    """Tasks not yet done on the running event loop; 0 when rendered outside one (a scrape
    always renders on the loop, from its handler's own task)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running event loop
        return 0


def _check(what: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of upstream's: {', '.join(sorted(allowed))}")


class _UpstreamView:
    """The registry as client_golang would expose it: no `_created` series, Go-style `le`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.disabled: frozenset[str] = frozenset()

    def collect(self) -> Iterator[Metric]:
        # collect() builds fresh Metric objects on every call, so editing them here is safe.
        for family in self._registry.collect():
            if family.name in self.disabled or f"{family.name}_total" in self.disabled:
                continue
            if family.type in ("counter", "histogram"):
                created = family.name + "_created"
                family.samples = [_go_le(s) for s in family.samples if s.name != created]
            yield family


def _go_le(sample: Sample) -> Sample:
    # prometheus_client prints bound 1 as "1.0"; Go's strconv prints "1". Every other bound in use
    # already prints the same in both (shortest round-trip digits, same exponent style).
    le = sample.labels.get("le")
    if le is None or not le.endswith(".0"):
        return sample
    return sample._replace(labels={**sample.labels, "le": le[:-2]})
