"""scheduler.metrics: kube-scheduler v1.37's names, labels, help texts and buckets; the hot-path
recorders."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.kube.client import RequestObserver
from scheduler.kube.informer import InformerObserver
from scheduler.kube.leader import LeaderMetrics
from scheduler.metrics import CONTENT_TYPE, NO_RESPONSE, Metrics, exponential_buckets

Labels = dict[str, str]
Action = Callable[[Metrics], None]

PROFILE = "default-scheduler"
HOST = "10.0.0.1:6443"  # client-go's host label: the API server's host:port
LEASE = "kube-scheduler"
PODS = {"name": "kube-scheduler", "group": "", "version": "v1", "resource": "pods"}


def text(m: Metrics) -> str:
    return m.render()[0].decode()


def samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every exposed sample, keyed by its exposed name and its labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text(m))
        for s in family.samples
    }


def value(m: Metrics, name: str, /, **labels: str) -> float | None:
    """The exposed sample `name{labels}`, or None if it is not exposed (positional `name`, so
    that a label may be called name too)."""
    return samples(m).get((name, frozenset(labels.items())))


def touch_every_family(m: Metrics) -> None:
    """Give every labelled family one series, so its label names show in the exposition."""
    m.observe_attempt("scheduled", PROFILE, 0.01)
    m.observe_algorithm(0.01)
    m.observe_extension_point("Filter", "Success", PROFILE, 0.001)
    m.observe_plugin("NodeAffinity", "Filter", "Success", 0.0001)
    m.observe_sli(1, 0.5)
    m.set_pending(1, 2, 3, 4)
    m.incoming("active", "PodAdd")
    m.observe_preemption(2)
    m.add_unschedulable(["NodeResourcesFit"], PROFILE, 1)
    m.set_cache_size(3, 2, 1)
    m.plugin_evaluated("NodeAffinity", "Filter", PROFILE)
    m.observe_event("NodeAdd", 0.001)
    m.observe_permit_wait("Success", 0.01)
    m.observe_podgroup("scheduled", PROFILE, 0.01)
    m.observe_podgroup("bound", PROFILE, 0.5)
    m.set_binding_goroutines(1)
    m.binding_inflight.inc()
    m.count_request("GET", HOST, "200")
    m.observe_request("GET", HOST, 0.01)
    m.observe_rate_limiter("GET", HOST, 0.0)
    m.set_leader(LEASE, True)
    m.informer_observer("", "v1", "pods").observe_processing(0.001)
    m.inflight("NodeAdd", 1)
    m.observe_queueing_hint("NodeAffinity", "NodeAdd", "Queue", 0.00001)
    m.observe_preemption_goroutine("success", 0.05)
    m.pod_scheduled_after_flush.inc()
    m.flush()


@pytest.mark.parametrize(
    ("name", "kind", "labels"),
    [
        pytest.param(
            "scheduler_schedule_attempts_total",
            "counter",
            {"result", "profile"},
            id="schedule_attempts_total",
        ),
        pytest.param(
            "scheduler_scheduling_attempt_duration_seconds",
            "histogram",
            {"result", "profile"},
            id="scheduling_attempt_duration_seconds",
        ),
        pytest.param(
            "scheduler_scheduling_algorithm_duration_seconds",
            "histogram",
            set(),
            id="scheduling_algorithm_duration_seconds",
        ),
        pytest.param(
            "scheduler_pod_scheduling_sli_duration_seconds",
            "histogram",
            {"attempts"},
            id="pod_scheduling_sli_duration_seconds",
        ),
        pytest.param(
            "scheduler_pod_scheduling_attempts", "histogram", set(), id="pod_scheduling_attempts"
        ),
        pytest.param(
            "scheduler_framework_extension_point_duration_seconds",
            "histogram",
            {"extension_point", "status", "profile"},
            id="framework_extension_point_duration_seconds",
        ),
        pytest.param(
            "scheduler_plugin_execution_duration_seconds",
            "histogram",
            {"plugin", "extension_point", "status"},
            id="plugin_execution_duration_seconds",
        ),
        pytest.param("scheduler_pending_pods", "gauge", {"queue"}, id="pending_pods"),
        pytest.param(
            "scheduler_queue_incoming_pods_total",
            "counter",
            {"queue", "event"},
            id="queue_incoming_pods_total",
        ),
        pytest.param(
            "scheduler_preemption_attempts_total", "counter", set(), id="preemption_attempts_total"
        ),
        pytest.param("scheduler_preemption_victims", "histogram", set(), id="preemption_victims"),
        pytest.param(
            "scheduler_unschedulable_pods", "gauge", {"plugin", "profile"}, id="unschedulable_pods"
        ),
        pytest.param("scheduler_cache_size", "gauge", {"type"}, id="cache_size"),
        pytest.param(
            "scheduler_plugin_evaluation_total",
            "counter",
            {"plugin", "extension_point", "profile"},
            id="plugin_evaluation_total",
        ),
        pytest.param(
            "scheduler_event_handling_duration_seconds",
            "histogram",
            {"event"},
            id="event_handling_duration_seconds",
        ),
        pytest.param(
            "scheduler_permit_wait_duration_seconds",
            "histogram",
            {"result"},
            id="permit_wait_duration_seconds",
        ),
        pytest.param(
            "scheduler_podgroup_schedule_attempts_total",
            "counter",
            {"result", "profile"},
            id="podgroup_schedule_attempts_total",
        ),
        pytest.param(
            "scheduler_podgroup_scheduling_attempt_duration_seconds",
            "histogram",
            {"result", "profile"},
            id="podgroup_scheduling_attempt_duration_seconds",
        ),
        pytest.param(
            "berth_podgroup_quorum_to_bound_seconds",
            "histogram",
            {"profile"},
            id="berth_podgroup_quorum_to_bound_seconds",
        ),
        pytest.param("berth_pods_waiting_on_permit", "gauge", set(), id="pods_waiting_on_permit"),
        pytest.param("scheduler_goroutines", "gauge", {"operation"}, id="goroutines"),
        pytest.param("scheduler_queued_entities", "gauge", {"queue", "type"}, id="queued_entities"),
        pytest.param("berth_binding_inflight", "gauge", set(), id="berth_binding_inflight"),
        pytest.param(
            "rest_client_requests_total",
            "counter",
            {"code", "method", "host"},
            id="rest_client_requests_total",
        ),
        pytest.param(
            "rest_client_request_duration_seconds",
            "histogram",
            {"verb", "host"},
            id="rest_client_request_duration_seconds",
        ),
        pytest.param(
            "rest_client_rate_limiter_duration_seconds",
            "histogram",
            {"verb", "host"},
            id="rest_client_rate_limiter_duration_seconds",
        ),
        pytest.param(
            "leader_election_master_status", "gauge", {"name"}, id="leader_election_master_status"
        ),
        pytest.param(
            "informer_store_resource_version",
            "gauge",
            {"name", "group", "version", "resource"},
            id="informer_store_resource_version",
        ),
        pytest.param(
            "informer_queued_items",
            "gauge",
            {"name", "group", "version", "resource"},
            id="informer_queued_items",
        ),
        pytest.param(
            "informer_processing_latency_seconds",
            "histogram",
            {"name", "group", "version", "resource"},
            id="informer_processing_latency_seconds",
        ),
    ],
)
def test_family_is_exposed_with_upstream_name_type_and_labels(
    name: str, kind: str, labels: set[str]
) -> None:
    """Each family's TYPE line and its samples use upstream's exact name and label names."""
    m = Metrics(process_metrics=False)
    touch_every_family(m)

    assert f"# TYPE {name} {kind}\n" in text(m)
    suffixes = ("_bucket", "_count", "_sum") if kind == "histogram" else ("",)
    found = {
        (sample_name, frozenset(k for k, _ in label_items if k != "le"))
        for sample_name, label_items in samples(m)
        if sample_name in {name + suffix for suffix in suffixes}
    }
    assert found
    assert {keys for _, keys in found} == {frozenset(labels)}


# v1.37's HELP line of every upstream family berth exposes: component-base puts the stability
# level in brackets before metrics.go's Help text (STABLE included).
HELP = {
    "scheduler_schedule_attempts_total": "[STABLE] Number of attempts to schedule pods, by the "
    "result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal "
    "scheduler problem.",
    "scheduler_scheduling_attempt_duration_seconds": "[STABLE] Scheduling attempt latency in "
    "seconds (scheduling algorithm + binding)",
    "scheduler_scheduling_algorithm_duration_seconds": "[BETA] Scheduling algorithm latency in "
    "seconds",
    "scheduler_pod_scheduling_sli_duration_seconds": "[BETA] E2e latency for a pod being "
    "scheduled, from the time the pod enters the scheduling queue and might involve multiple "
    "scheduling attempts.",
    "scheduler_pod_scheduling_attempts": "[STABLE] Number of attempts to successfully schedule a "
    "pod.",
    "scheduler_framework_extension_point_duration_seconds": "[STABLE] Latency for running all "
    "plugins of a specific extension point.",
    "scheduler_plugin_execution_duration_seconds": "[BETA] Duration for running a plugin at a "
    "specific extension point.",
    "scheduler_pending_pods": "[STABLE] Number of pending pods, by the queue type. 'active' means "
    "number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means "
    "number of pods in unschedulableEntities that the scheduler attempted to schedule and failed; "
    "'gated' is the number of unschedulable pods that the scheduler never attempted to schedule "
    "because they are gated; 'incomplete' means number of pods in incompletePodGroupPods; "
    "'pending' means number of pods in pendingPodGroupPods.",
    "scheduler_queue_incoming_pods_total": "[STABLE] Number of pods added to scheduling queues by "
    "event and queue type.",
    "scheduler_preemption_attempts_total": "[STABLE] Total preemption attempts in the cluster till "
    "now",
    "scheduler_queue_incoming_entities_total": "[ALPHA] Number of scheduling entities added to "
    "scheduling queues by event, queue type, and entity type. Entity types are either 'pod' (for "
    "individual pods that are not members of any podgroup) or 'podgroup'.",
    "scheduler_pod_scheduled_after_flush_total": "[ALPHA] Number of pods that were successfully "
    "scheduled after being flushed from unschedulableEntities due to timeout. This metric helps "
    "detect potential queueing hint misconfigurations or event handling issues.",
    "scheduler_inflight_events": "[ALPHA] Number of events currently tracked in the scheduling "
    "queue.",
    "scheduler_queueing_hint_execution_duration_seconds": "[ALPHA] Duration for running a "
    "queueing hint function of a plugin.",
    "scheduler_preemption_goroutines_duration_seconds": "[ALPHA] (Deprecated since 1.37.0) "
    "Duration in seconds for running goroutines for the preemption.",
    "scheduler_preemption_goroutines_execution_total": "[ALPHA] Number of preemption goroutines "
    "executed.",
    "scheduler_preemption_victims": "[STABLE] Number of selected preemption victims for "
    "preemption initiated by a single pod",
    "scheduler_unschedulable_pods": "[BETA] The number of unschedulable pods broken down by plugin "
    "name. A pod will increment the gauge for all plugins that caused it to not schedule and so "
    "this metric have meaning only when broken down by plugin.",
    "scheduler_cache_size": "[ALPHA] Number of nodes, pods, and assumed (bound) pods in the "
    "scheduler cache.",
    "scheduler_plugin_evaluation_total": "[BETA] Number of attempts to schedule pods by each "
    "plugin and the extension point (available only in PreFilter, Filter, PreScore, and Score).",
    "scheduler_event_handling_duration_seconds": "[ALPHA] Event handling latency in seconds.",
    "scheduler_permit_wait_duration_seconds": "[BETA] Duration of waiting on permit.",
    "scheduler_dra_bindingconditions_allocations_total": "[ALPHA] Number of allocations using "
    "devices with BindingConditions, counted per driver per scheduling attempt",
    "scheduler_dra_bindingconditions_wait_duration_seconds": "[ALPHA] Time in seconds spent "
    "waiting for BindingConditions to be satisfied during PreBind.",
    "scheduler_podgroup_schedule_attempts_total": "[ALPHA] Number of attempts to schedule pod "
    "group, by the result. 'unschedulable' means a pod group could not be scheduled, while "
    "'error' means an internal scheduler problem.",
    "scheduler_podgroup_scheduling_attempt_duration_seconds": "[ALPHA] Pod group scheduling "
    "attempt latency in seconds",
    "scheduler_goroutines": "[BETA] Number of running goroutines split by the work they do such "
    "as binding.",
    "scheduler_queued_entities": "[ALPHA] Number of queued scheduling entities ('pod' or "
    "'podgroup'; 'pod' stands for individual pods that are not members of any podgroup) by the "
    "queue type. 'active' means number of entities in activeQ; 'backoff' means number of "
    "entities in backoffQ; 'unschedulable' means number of entities in unschedulableEntities "
    "that the scheduler attempted to schedule and failed; 'gated' is the number of "
    "unschedulable entities that the scheduler never attempted to schedule because they are "
    "gated.",
    # client-go's, as component-base v0.37 registers them (metrics/prometheus/restclient and
    # metrics/prometheus/clientgo/leaderelection).
    "rest_client_requests_total": "[ALPHA] Number of HTTP requests, partitioned by status code, "
    "method, and host.",
    "rest_client_request_duration_seconds": "[ALPHA] Request latency in seconds. Broken down by "
    "verb, and host.",
    "rest_client_rate_limiter_duration_seconds": "[ALPHA] Client side rate limiter latency in "
    "seconds. Broken down by verb, and host.",
    "leader_election_master_status": "[ALPHA] Gauge of if the reporting system is master of the "
    "relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to "
    "identify the lease. Please make sure to group by name.",
    # client-go's informer metrics, as component-base v0.37 registers them
    # (metrics/prometheus/clientgo/fifo).
    "informer_store_resource_version": "[ALPHA] The 15 least significant digits of the resource "
    "version of the store.",
    "informer_queued_items": "[ALPHA] Number of items currently queued in the FIFO.",
    "informer_processing_latency_seconds": "[ALPHA] Time taken to process events after popping "
    "from the queue.",
}
UPSTREAM_PREFIXES = ("scheduler_", "rest_client_", "leader_election_", "informer_")


@pytest.mark.parametrize(
    ("name", "help_text"), [pytest.param(name, text, id=name) for name, text in HELP.items()]
)
def test_help_is_upstreams_with_its_stability_level(name: str, help_text: str) -> None:
    """Each family's HELP line is v1.37's, stability level included (BETA since v1.36/v1.37 for
    the algorithm, plugin execution, unschedulable pods, plugin evaluation and permit wait)."""
    m = Metrics(process_metrics=False)
    touch_every_family(m)

    assert f"# HELP {name} {help_text}\n" in text(m)


def test_every_upstream_family_has_its_help_pinned() -> None:
    """No scheduler_*, rest_client_*, leader_election_* or informer_* family is exposed without
    a HELP entry
    above, and none that v1.34 removed (scheduler_scheduler_cache_size) is exposed."""
    m = Metrics(process_metrics=False)
    touch_every_family(m)
    exposed = {
        family.name
        for family in text_string_to_metric_families(text(m))
        if family.name.startswith(UPSTREAM_PREFIXES)
    }

    assert exposed == {name.removesuffix("_total") for name in HELP}
    assert "scheduler_scheduler_cache_size" not in text(m)


# v1.37 families berth does not expose, by the docs/compat.md row that says why.
NOT_EXPOSED = {
    # Row 49: PreQueueingHints are off, so v1.37 never creates a series of it either.
    "pre-queueing-hints": ("scheduler_pre_queueing_hint_evaluations_total",),
    # Row 50 (deliberate): berth's batching has no hints or hint cache to count.
    "batching": (
        "scheduler_batch_attempts_total",
        "scheduler_batch_cache_flushed_total",
        "scheduler_batch_rescore_attempts_total",
        "scheduler_batch_rescore_duration_seconds",
        "scheduler_get_node_hint_duration_seconds",
        "scheduler_store_schedule_results_duration_seconds",
    ),
    # Row 52: the claims upstream creates for DRA-backed extended resources, which berth
    # does not create (row 39).
    "dra": ("dynamic_resource_allocation_resourceclaim_creates_total",),
    # Row 53: registered only by gates that are off in v1.37.
    "gated-off": (
        "scheduler_async_api_call_execution_total",
        "scheduler_async_api_call_execution_duration_seconds",
        "scheduler_pending_async_api_calls",
        "scheduler_podgroup_scheduling_algorithm_duration_seconds",
        "scheduler_workload_preemption_attempts_total",
        "scheduler_workload_preemption_victims",
        "scheduler_preemption_workload_disruptions",
        "scheduler_preemption_evaluation_duration_seconds",
        "scheduler_preemption_execution_duration_seconds",
        "scheduler_preemption_pdb_violations_total",
        "scheduler_generated_placements_total",
        "scheduler_placement_evaluations_total",
        "scheduler_placement_evaluation_duration_seconds",
    ),
}


@pytest.mark.parametrize(
    "families", [pytest.param(names, id=row) for row, names in NOT_EXPOSED.items()]
)
def test_families_berth_does_not_expose(families: tuple[str, ...]) -> None:
    """Pins what berth leaves out today; each group changes with its row in docs/compat.md."""
    m = Metrics(process_metrics=False)
    touch_every_family(m)
    exposed = {family.name for family in text_string_to_metric_families(text(m))}

    # A counter's family drops its _total suffix; any other type keeps it.
    assert not {n for name in families for n in (name, name.removesuffix("_total"))} & exposed


def test_pending_pods_has_no_gang_queues() -> None:
    """pending_pods{queue="incomplete"|"pending"} only fill with GenericWorkload on (row 53)."""
    m = Metrics(process_metrics=False)
    touch_every_family(m)

    assert value(m, "scheduler_pending_pods", queue="incomplete") is None
    assert value(m, "scheduler_pending_pods", queue="pending") is None


@pytest.mark.parametrize(
    "point",
    [
        pytest.param("Sign", id="sign"),
        pytest.param("PlacementGenerate", id="placement-generate"),
        pytest.param("PlacementFeasible", id="placement-feasible"),
        pytest.param("PodGroupPostFilter", id="pod-group-post-filter"),
    ],
)
def test_extension_points_berth_does_not_run(point: str) -> None:
    """v1.37's new extension_point values are refused: berth has no such points (row 51;
    pins today's behaviour, changes with #11 and #13)."""
    m = Metrics(process_metrics=False)
    with pytest.raises(ValueError):
        m.observe_extension_point(point, "Success", PROFILE, 0.001)


# Upstream's bucket bounds as kube-scheduler prints them.
MS_X2_15 = (
    "0.001",
    "0.002",
    "0.004",
    "0.008",
    "0.016",
    "0.032",
    "0.064",
    "0.128",
    "0.256",
    "0.512",
    "1.024",
    "2.048",
    "4.096",
    "8.192",
    "16.384",
)
TEN_MS_X2_20 = (
    "0.01",
    "0.02",
    "0.04",
    "0.08",
    "0.16",
    "0.32",
    "0.64",
    "1.28",
    "2.56",
    "5.12",
    "10.24",
    "20.48",
    "40.96",
    "81.92",
    "163.84",
    "327.68",
    "655.36",
    "1310.72",
    "2621.44",
    "5242.88",
)
TENTH_MS_X2_12 = (
    "0.0001",
    "0.0002",
    "0.0004",
    "0.0008",
    "0.0016",
    "0.0032",
    "0.0064",
    "0.0128",
    "0.0256",
    "0.0512",
    "0.1024",
    "0.2048",
)


# component-base's restclient buckets, listed there rather than computed.
REST_CLIENT = (
    "0.005",
    "0.025",
    "0.1",
    "0.25",
    "0.5",
    "1",
    "2",
    "4",
    "8",
    "15",
    "30",
    "60",
)


# component-base's informer (fifo) processing latency buckets, listed there too.
INFORMER_FIFO = (
    "0.001",
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1",
    "2.5",
    "5",
    "10",
)


def _le(*bounds: str) -> list[str]:
    return [*bounds, "+Inf"]


@pytest.mark.parametrize(
    ("family", "action", "expected"),
    [
        pytest.param(
            "scheduler_scheduling_attempt_duration_seconds",
            lambda m: m.observe_attempt("scheduled", PROFILE, 0.01),
            _le(*MS_X2_15),
            id="attempt-duration-1ms-x2-15",
        ),
        pytest.param(
            "scheduler_scheduling_algorithm_duration_seconds",
            lambda m: m.observe_algorithm(0.01),
            _le(*MS_X2_15),
            id="algorithm-duration-1ms-x2-15",
        ),
        pytest.param(
            "scheduler_pod_scheduling_sli_duration_seconds",
            lambda m: m.observe_sli(1, 1.0),
            _le(*TEN_MS_X2_20),
            id="sli-duration-10ms-x2-20",
        ),
        pytest.param(
            "scheduler_pod_scheduling_attempts",
            lambda m: m.observe_sli(1, 1.0),
            _le("1", "2", "4", "8", "16"),
            id="attempts-1-x2-5",
        ),
        pytest.param(
            "scheduler_framework_extension_point_duration_seconds",
            lambda m: m.observe_extension_point("Score", "Success", PROFILE, 0.001),
            _le(*TENTH_MS_X2_12),
            id="extension-point-0.1ms-x2-12",
        ),
        pytest.param(
            "scheduler_plugin_execution_duration_seconds",
            lambda m: m.observe_plugin("TaintToleration", "Filter", "Success", 0.001),
            # Go's step-by-step multiplication, printed with shortest round-trip digits.
            _le(
                "1e-05",
                "1.5000000000000002e-05",
                "2.2500000000000005e-05",
                "3.375000000000001e-05",
                "5.062500000000001e-05",
                "7.593750000000002e-05",
                "0.00011390625000000003",
                "0.00017085937500000006",
                "0.0002562890625000001",
                "0.00038443359375000017",
                "0.0005766503906250003",
                "0.0008649755859375004",
                "0.0012974633789062506",
                "0.0019461950683593758",
                "0.0029192926025390638",
                "0.004378938903808595",
                "0.006568408355712893",
                "0.009852612533569338",
                "0.014778918800354007",
                "0.02216837820053101",
            ),
            id="plugin-execution-10us-x1.5-20",
        ),
        pytest.param(
            "scheduler_preemption_victims",
            lambda m: m.observe_preemption(1),
            _le("1", "2", "4", "8", "16", "32", "64"),
            id="preemption-victims-1-x2-7",
        ),
        pytest.param(
            "scheduler_event_handling_duration_seconds",
            lambda m: m.observe_event("NodeAdd", 0.001),
            _le(*TENTH_MS_X2_12),
            id="event-handling-0.1ms-x2-12",
        ),
        pytest.param(
            "scheduler_permit_wait_duration_seconds",
            lambda m: m.observe_permit_wait("Success", 0.01),
            _le(*MS_X2_15),
            id="permit-wait-1ms-x2-15",
        ),
        pytest.param(
            "rest_client_request_duration_seconds",
            lambda m: m.observe_request("GET", HOST, 0.01),
            _le(*REST_CLIENT),
            id="rest-client-request-duration",
        ),
        pytest.param(
            "rest_client_rate_limiter_duration_seconds",
            lambda m: m.observe_rate_limiter("GET", HOST, 0.01),
            _le(*REST_CLIENT),
            id="rest-client-rate-limiter-duration",
        ),
        pytest.param(
            "informer_processing_latency_seconds",
            lambda m: m.informer_observer("", "v1", "pods").observe_processing(0.01),
            _le(*INFORMER_FIFO),
            id="informer-processing-latency",
        ),
    ],
)
def test_histogram_buckets_match_upstream(family: str, action: Action, expected: list[str]) -> None:
    """Bucket bounds and their `le` strings are exactly what kube-scheduler exposes."""
    m = Metrics(process_metrics=False)
    action(m)

    les = [
        s.labels["le"]
        for f in text_string_to_metric_families(text(m))
        for s in f.samples
        if s.name == family + "_bucket"
    ]
    assert les == expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        pytest.param(
            lambda m: m.observe_attempt("scheduled", PROFILE, 0.003),
            [
                (
                    "scheduler_schedule_attempts_total",
                    {"result": "scheduled", "profile": PROFILE},
                    1,
                ),
                (
                    "scheduler_scheduling_attempt_duration_seconds_bucket",
                    {"result": "scheduled", "profile": PROFILE, "le": "0.002"},
                    0,
                ),
                (
                    "scheduler_scheduling_attempt_duration_seconds_bucket",
                    {"result": "scheduled", "profile": PROFILE, "le": "0.004"},
                    1,
                ),
                (
                    "scheduler_scheduling_attempt_duration_seconds_sum",
                    {"result": "scheduled", "profile": PROFILE},
                    0.003,
                ),
            ],
            id="attempt-scheduled",
        ),
        pytest.param(
            lambda m: [m.observe_attempt("unschedulable", "other", 1.0) for _ in range(3)],
            [
                (
                    "scheduler_schedule_attempts_total",
                    {"result": "unschedulable", "profile": "other"},
                    3,
                ),
                (
                    "scheduler_scheduling_attempt_duration_seconds_count",
                    {"result": "unschedulable", "profile": "other"},
                    3,
                ),
                (
                    "scheduler_schedule_attempts_total",
                    {"result": "scheduled", "profile": "other"},
                    None,
                ),
            ],
            id="attempt-repeated-uses-cached-children",
        ),
        pytest.param(
            lambda m: m.observe_extension_point("PreFilter", "Unschedulable", PROFILE, 0.0003),
            [
                (
                    "scheduler_framework_extension_point_duration_seconds_bucket",
                    {
                        "extension_point": "PreFilter",
                        "status": "Unschedulable",
                        "profile": PROFILE,
                        "le": "0.0004",
                    },
                    1,
                ),
                (
                    "scheduler_framework_extension_point_duration_seconds_count",
                    {"extension_point": "PreFilter", "status": "Unschedulable", "profile": PROFILE},
                    1,
                ),
            ],
            id="extension-point",
        ),
        pytest.param(
            lambda m: m.observe_plugin("NodePorts", "Filter", "Success", 0.00002),
            [
                (
                    "scheduler_plugin_execution_duration_seconds_count",
                    {"plugin": "NodePorts", "extension_point": "Filter", "status": "Success"},
                    1,
                ),
                (
                    "scheduler_plugin_execution_duration_seconds_bucket",
                    {
                        "plugin": "NodePorts",
                        "extension_point": "Filter",
                        "status": "Success",
                        "le": "2.2500000000000005e-05",
                    },
                    1,
                ),
            ],
            id="plugin",
        ),
        pytest.param(
            lambda m: m.observe_sli(3, 0.5),
            [
                ("scheduler_pod_scheduling_sli_duration_seconds_count", {"attempts": "3"}, 1),
                ("scheduler_pod_scheduling_sli_duration_seconds_sum", {"attempts": "3"}, 0.5),
                ("scheduler_pod_scheduling_attempts_bucket", {"le": "2"}, 0),
                ("scheduler_pod_scheduling_attempts_bucket", {"le": "4"}, 1),
            ],
            id="sli-3-attempts",
        ),
        pytest.param(
            lambda m: [m.observe_sli(n, 1.0) for n in (15, 40)],
            [
                ("scheduler_pod_scheduling_sli_duration_seconds_count", {"attempts": "15+"}, 2),
                ("scheduler_pod_scheduling_sli_duration_seconds_count", {"attempts": "15"}, None),
                ("scheduler_pod_scheduling_attempts_bucket", {"le": "16"}, 1),
                ("scheduler_pod_scheduling_attempts_count", {}, 2),
            ],
            id="sli-attempts-label-capped-at-15+",
        ),
        pytest.param(
            lambda m: [m.set_pending(9, 9, 9, 9), m.set_pending(1, 2, 3, 4)],
            [
                ("scheduler_pending_pods", {"queue": "active"}, 1),
                ("scheduler_pending_pods", {"queue": "backoff"}, 2),
                ("scheduler_pending_pods", {"queue": "unschedulable"}, 3),
                ("scheduler_pending_pods", {"queue": "gated"}, 4),
            ],
            id="pending-latest-values-win",
        ),
        pytest.param(
            lambda m: [
                m.set_pending(0, 0, 0, 0),
                m.set_pending(2, 0, 1, 0),
                m.set_pending(0, 0, 3, 0),
            ],
            [
                ("scheduler_queued_entities", {"queue": "active", "type": "pod"}, 0),
                ("scheduler_queued_entities", {"queue": "unschedulable", "type": "pod"}, 3),
                # upstream binds a queue's child when the first entity enters it
                ("scheduler_queued_entities", {"queue": "backoff", "type": "pod"}, None),
                ("scheduler_queued_entities", {"queue": "gated", "type": "pod"}, None),
            ],
            id="queued-entities-are-pods",
        ),
        pytest.param(
            lambda m: [m.set_binding_goroutines(n) for n in (1, 3, 2)],
            [
                ("scheduler_goroutines", {"operation": "binding"}, 2),
                ("berth_binding_inflight", {}, 2),
            ],
            id="goroutines-binding",
        ),
        pytest.param(
            lambda m: [m.incoming("active", "PodAdd"), m.incoming("active", "PodAdd")],
            [("scheduler_queue_incoming_pods_total", {"queue": "active", "event": "PodAdd"}, 2)],
            id="incoming",
        ),
        pytest.param(
            lambda m: [m.observe_preemption(3), m.observe_preemption(None)],
            [
                ("scheduler_preemption_attempts_total", {}, 2),
                ("scheduler_preemption_victims_count", {}, 1),
                ("scheduler_preemption_victims_bucket", {"le": "2"}, 0),
                ("scheduler_preemption_victims_bucket", {"le": "4"}, 1),
            ],
            id="preemption-victims-only-when-found",
        ),
        pytest.param(
            lambda m: [
                m.add_unschedulable(["NodeAffinity", "TaintToleration"], PROFILE, 1),
                m.add_unschedulable(["NodeAffinity"], PROFILE, -1),
            ],
            [
                ("scheduler_unschedulable_pods", {"plugin": "NodeAffinity", "profile": PROFILE}, 0),
                (
                    "scheduler_unschedulable_pods",
                    {"plugin": "TaintToleration", "profile": PROFILE},
                    1,
                ),
            ],
            id="unschedulable-per-plugin",
        ),
        pytest.param(
            lambda m: m.set_cache_size(5, 40, 2),
            [
                ("scheduler_cache_size", {"type": "nodes"}, 5),
                ("scheduler_cache_size", {"type": "pods"}, 40),
                ("scheduler_cache_size", {"type": "assumed_pods"}, 2),
                # the doubled-prefix name v1.33 also set was removed in v1.34
                ("scheduler_scheduler_cache_size", {"type": "nodes"}, None),
            ],
            id="cache-size",
        ),
        pytest.param(
            lambda m: m.plugin_evaluated("NodeAffinity", "Filter", PROFILE, count=5),
            [
                (
                    "scheduler_plugin_evaluation_total",
                    {"plugin": "NodeAffinity", "extension_point": "Filter", "profile": PROFILE},
                    5,
                )
            ],
            id="plugin-evaluation",
        ),
        pytest.param(
            lambda m: m.observe_event("AssignedPodDelete", 0.0005),
            [
                (
                    "scheduler_event_handling_duration_seconds_count",
                    {"event": "AssignedPodDelete"},
                    1,
                )
            ],
            id="event-handling",
        ),
        pytest.param(
            lambda m: m.observe_permit_wait("Unschedulable", 0.2),
            [("scheduler_permit_wait_duration_seconds_count", {"result": "Unschedulable"}, 1)],
            id="permit-wait",
        ),
        pytest.param(
            lambda m: [
                m.count_request("POST", HOST, "201"),
                m.count_request("POST", HOST, "201"),
                m.count_request("GET", HOST, NO_RESPONSE),
            ],
            [
                ("rest_client_requests_total", {"code": "201", "method": "POST", "host": HOST}, 2),
                (
                    "rest_client_requests_total",
                    {"code": "<error>", "method": "GET", "host": HOST},
                    1,
                ),
                (
                    "rest_client_requests_total",
                    {"code": "201", "method": "GET", "host": HOST},
                    None,
                ),
            ],
            id="rest-client-requests-by-code-method-host",
        ),
        pytest.param(
            lambda m: m.count_request("patch", HOST, "200"),
            [
                ("rest_client_requests_total", {"code": "200", "method": "PATCH", "host": HOST}, 1),
                (
                    "rest_client_requests_total",
                    {"code": "200", "method": "patch", "host": HOST},
                    None,
                ),
            ],
            id="rest-client-method-upper-case",
        ),
        pytest.param(
            lambda m: m.observe_request("PUT", HOST, 0.2),
            [
                (
                    "rest_client_request_duration_seconds_bucket",
                    {"verb": "PUT", "host": HOST, "le": "0.1"},
                    0,
                ),
                (
                    "rest_client_request_duration_seconds_bucket",
                    {"verb": "PUT", "host": HOST, "le": "0.25"},
                    1,
                ),
                ("rest_client_request_duration_seconds_sum", {"verb": "PUT", "host": HOST}, 0.2),
            ],
            id="rest-client-request-duration",
        ),
        pytest.param(
            lambda m: [m.observe_rate_limiter("POST", HOST, s) for s in (0.0, 0.5)],
            [
                (
                    "rest_client_rate_limiter_duration_seconds_count",
                    {"verb": "POST", "host": HOST},
                    2,
                ),
                (
                    "rest_client_rate_limiter_duration_seconds_bucket",
                    {"verb": "POST", "host": HOST, "le": "0.005"},
                    1,
                ),
                (
                    "rest_client_rate_limiter_duration_seconds_sum",
                    {"verb": "POST", "host": HOST},
                    0.5,
                ),
            ],
            id="rest-client-rate-limiter",
        ),
        pytest.param(
            lambda m: m.set_leader(LEASE, False),
            [("leader_election_master_status", {"name": LEASE}, 0)],
            id="leader-standby",
        ),
        pytest.param(
            lambda m: m.set_leader(LEASE, True),
            [("leader_election_master_status", {"name": LEASE}, 1)],
            id="leader-leading",
        ),
        pytest.param(
            lambda m: [m.set_leader(LEASE, leading) for leading in (False, True, False)],
            [("leader_election_master_status", {"name": LEASE}, 0)],
            id="leader-lost",
        ),
        pytest.param(
            lambda m: m.informer_observer("", "v1", "pods"),
            [
                ("informer_store_resource_version", PODS, 0),
                ("informer_queued_items", PODS, 0),
                ("informer_processing_latency_seconds_count", PODS, 0),
            ],
            id="informer-series-exposed-once-bound",
        ),
        pytest.param(
            lambda m: [
                m.informer_observer("", "v1", "pods").set_resource_version(rv)
                for rv in (41, 987654321098765)
            ],
            [
                ("informer_store_resource_version", PODS, 987654321098765),
                (
                    "informer_store_resource_version",
                    {**PODS, "group": "apps", "resource": "replicasets"},
                    None,
                ),
            ],
            id="informer-resource-version-latest-wins",
        ),
        pytest.param(
            lambda m: [m.informer_observer("", "v1", "pods").set_queued_items(n) for n in (3, 0)],
            [("informer_queued_items", PODS, 0)],
            id="informer-queued-items",
        ),
        pytest.param(
            lambda m: [
                m.informer_observer("policy", "v1", "poddisruptionbudgets").observe_processing(s)
                for s in (0.003, 0.2)
            ],
            [
                (
                    "informer_processing_latency_seconds_bucket",
                    {**PODS, "group": "policy", "resource": "poddisruptionbudgets", "le": "0.005"},
                    1,
                ),
                (
                    "informer_processing_latency_seconds_bucket",
                    {**PODS, "group": "policy", "resource": "poddisruptionbudgets", "le": "0.25"},
                    2,
                ),
                (
                    "informer_processing_latency_seconds_sum",
                    {**PODS, "group": "policy", "resource": "poddisruptionbudgets"},
                    0.203,
                ),
            ],
            id="informer-processing-latency-by-group-version-resource",
        ),
    ],
)
def test_recorder_moves_the_right_series(
    action: Action, expected: list[tuple[str, Labels, float | None]]
) -> None:
    """Each recorder changes exactly the series upstream's code path would (None: not exposed)."""
    m = Metrics(process_metrics=False)
    action(m)

    for name, labels, want in expected:
        got = value(m, name, **labels)
        if want is None:
            assert got is None, (name, labels)
        else:
            assert got == pytest.approx(want), (name, labels)


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda m: m.observe_attempt("success", PROFILE, 1.0), id="attempt-result"),
        pytest.param(
            lambda m: m.observe_extension_point("filter", "Success", PROFILE, 1.0),
            id="extension-point-spelling",
        ),
        pytest.param(
            lambda m: m.observe_extension_point("Filter", "OK", PROFILE, 1.0),
            id="extension-point-status",
        ),
        pytest.param(lambda m: m.observe_plugin("P", "Sort", "Success", 1.0), id="plugin-point"),
        pytest.param(lambda m: m.observe_plugin("P", "Filter", "ok", 1.0), id="plugin-status"),
        pytest.param(lambda m: m.incoming("gated", "PodAdd"), id="incoming-gated"),
        pytest.param(lambda m: m.observe_sli(0, 1.0), id="sli-zero-attempts"),
        pytest.param(lambda m: m.plugin_evaluated("P", "Bindd", PROFILE), id="evaluation-point"),
        pytest.param(lambda m: m.observe_permit_wait("Allowed", 1.0), id="permit-status"),
        pytest.param(lambda m: m.count_request("GET", HOST, "timeout"), id="request-code-text"),
        pytest.param(lambda m: m.count_request("GET", HOST, ""), id="request-code-empty"),
    ],
)
def test_recorder_rejects_label_outside_upstream_set(action: Action) -> None:
    """A label value upstream never uses raises at once instead of splitting a series."""
    m = Metrics(process_metrics=False)
    with pytest.raises(ValueError):
        action(m)


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param("scheduler_pending_pods", {"queue": q}, id=f"pending-{q}")
        for q in ("active", "backoff", "unschedulable", "gated")
    ]
    + [
        pytest.param("scheduler_cache_size", {"type": t}, id=f"scheduler_cache_size-{t}")
        for t in ("nodes", "pods", "assumed_pods")
    ],
)
def test_fixed_gauges_start_at_zero(name: str, labels: Labels) -> None:
    """Queue and cache gauges are exposed as 0 before anything sets them, not missing."""
    assert value(Metrics(process_metrics=False), name, **labels) == 0


def test_exposition_has_no_created_series() -> None:
    """Unlike prometheus_client's default, no `_created` series appears (client_golang has none)."""
    m = Metrics(process_metrics=False)
    touch_every_family(m)

    assert "_created" not in text(m)


def test_integral_bounds_print_like_go() -> None:
    """Integral bucket bounds print as `le="1"`, as Go prints them, not `le="1.0"`."""
    m = Metrics(process_metrics=False)
    m.observe_preemption(1)

    body = text(m)
    assert 'scheduler_preemption_victims_bucket{le="1"} 1.0\n' in body
    assert 'le="1.0"' not in body


def test_render_returns_prometheus_text_content_type() -> None:
    """render() answers with the text format 0.0.4 content type kube-scheduler uses."""
    body, content_type = Metrics(process_metrics=False).render()

    assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert body.startswith(b"# HELP ")


@pytest.mark.parametrize(
    ("process_metrics", "exposed"),
    [
        pytest.param(True, True, id="on"),
        pytest.param(False, False, id="off"),
    ],
)
def test_process_metrics_are_optional(process_metrics: bool, exposed: bool) -> None:
    """process_* families (as Go exposes them) appear only when asked for."""
    body = text(Metrics(process_metrics=process_metrics))

    assert ("process_cpu_seconds_total" in body) is exposed


def test_instances_do_not_share_series() -> None:
    """Each Metrics has its own registry: what one records, another does not see."""
    a, b = Metrics(process_metrics=False), Metrics(process_metrics=False)
    a.observe_attempt("error", PROFILE, 0.1)

    labels = {"result": "error", "profile": PROFILE}
    assert value(a, "scheduler_schedule_attempts_total", **labels) == 1
    assert value(b, "scheduler_schedule_attempts_total", **labels) is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((1, 2, 4), (1, 2, 4, 8), id="integral"),
        pytest.param((0.5, 3, 3), (0.5, 1.5, 4.5), id="fractional"),
        pytest.param(
            (1e-05, 1.5, 3),
            (1e-05, 1.5000000000000002e-05, 2.2500000000000005e-05),
            id="keeps-go-rounding",
        ),
    ],
)
def test_exponential_buckets(args: tuple[float, float, int], expected: tuple[float, ...]) -> None:
    """exponential_buckets() multiplies step by step like client_golang's ExponentialBuckets."""
    assert exponential_buckets(*args) == expected


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((0, 2, 3), id="zero-start"),
        pytest.param((1, 1, 3), id="factor-one"),
        pytest.param((1, 2, 0), id="no-buckets"),
    ],
)
def test_exponential_buckets_rejects_bad_arguments(args: tuple[float, float, int]) -> None:
    """Arguments that cannot make increasing positive bounds are refused."""
    with pytest.raises(ValueError):
        exponential_buckets(*args)


def test_leader_family_appears_only_with_leader_election() -> None:
    """leader_election_master_status is not exposed at all (no HELP either) until a leader
    elector reports, as component-base registers it with the first elector."""
    m = Metrics(process_metrics=False)
    assert "leader_election_master_status" not in text(m)

    m.set_leader(LEASE, False)

    assert value(m, "leader_election_master_status", name=LEASE) == 0


def test_leader_status_renders_upstream_exposition() -> None:
    """The family renders with component-base's HELP and TYPE lines and one series per lease;
    set_leader toggles it."""
    m = Metrics(process_metrics=False)
    m.set_leader(LEASE, True)
    assert (
        "# HELP leader_election_master_status " + HELP["leader_election_master_status"] + "\n"
        "# TYPE leader_election_master_status gauge\n"
        'leader_election_master_status{name="kube-scheduler"} 1.0\n'
    ) in text(m)

    m.set_leader(LEASE, False)

    assert 'leader_election_master_status{name="kube-scheduler"} 0.0\n' in text(m)


def test_metrics_is_what_the_client_and_elector_report_to() -> None:
    """Metrics satisfies scheduler.kube's observer protocols, so the app attaches it as is."""
    m = Metrics(process_metrics=False)
    observer: RequestObserver = m
    leader: LeaderMetrics = m

    observer.count_request("GET", HOST, "200")
    leader.set_leader(LEASE, True)

    assert value(m, "rest_client_requests_total", code="200", method="GET", host=HOST) == 1
    assert value(m, "leader_election_master_status", name=LEASE) == 1


def test_informer_observer_is_one_series_per_name_and_resource() -> None:
    """informer_observer() binds an InformerObserver (scheduler.kube's protocol) to one
    informer's labels, name "kube-scheduler" as upstream's; asking again gives the same one."""
    m = Metrics(process_metrics=False)
    observer: InformerObserver = m.informer_observer("", "v1", "pods")

    observer.set_resource_version(7)

    assert m.informer_observer("", "v1", "pods") is observer
    assert m.informer_observer("", "v1", "pods", name="other") is not observer
    assert value(m, "informer_store_resource_version", **PODS) == 7


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="none"),
        pytest.param([0.0001, 0.0002, 0.0004], id="on-the-bounds"),
        pytest.param([0.00005, 0.00015, 0.3, 99.0], id="between-below-and-above"),
        pytest.param([0.001] * 5000, id="past-flush-every"),
    ],
)
def test_buffered_histogram_equals_observing_directly(values: list[float]) -> None:
    """Extension point durations go through a buffer handed over in bulk; after a render the
    exposition equals observing each value directly (same buckets, count and sum)."""
    buffered, direct = Metrics(process_metrics=False), Metrics(process_metrics=False)
    for value in values:
        buffered.observe_extension_point("Filter", "Success", "p", value)
        direct.framework_extension_point_duration.labels("Filter", "Success", "p").observe(value)
    body, _ = buffered.render()
    expected, _ = direct.render()
    family = "scheduler_framework_extension_point_duration_seconds"
    got = [line for line in body.decode().splitlines() if line.startswith(family)]
    want = [line for line in expected.decode().splitlines() if line.startswith(family)]
    assert got == want


def test_dra_binding_condition_families() -> None:
    """Upstream registers the DRA binding-condition families (DRADeviceBindingConditions, on in
    v1.37) with these labels; berth's stay empty, as it allocates no device with binding
    conditions (row 52)."""
    m = Metrics(process_metrics=False)
    families = {f.name: f for f in text_string_to_metric_families(text(m))}
    allocations = families["scheduler_dra_bindingconditions_allocations"]
    wait = families["scheduler_dra_bindingconditions_wait_duration_seconds"]
    assert (allocations.type, wait.type) == ("counter", "histogram")
    assert allocations.documentation.startswith("[ALPHA] Number of allocations using devices")
    assert not allocations.samples and not wait.samples
    m.dra_bindingconditions_wait.labels(PROFILE, "gpu.example.com", "success").observe(0.3)
    buckets = [
        s.labels["le"]
        for f in text_string_to_metric_families(text(m))
        if f.name == "scheduler_dra_bindingconditions_wait_duration_seconds"
        for s in f.samples
        if s.name.endswith("_bucket")
    ]
    assert buckets[0] == "0.1" and len(buckets) == 15  # 14 exponential buckets, then +Inf
