"""/metrics/resources: what every pod requests and is limited to, as kube-scheduler reports it.

Mirrors k8s.io/kubernetes pkg/scheduler/metrics/resources (v1.37): two gauge families,
`kube_pod_resource_request` and `kube_pod_resource_limit`, labelled namespace, pod, node,
scheduler, priority, resource, unit, one series per non-zero resource of every pod that is not
terminal (Succeeded/Failed); pending pods have node "". Amounts are component-helpers'
PodRequests / PodLimits with default options (the spec, not the in-place resize status):
containers summed, init containers and sidecars as they run, pod-level resources replacing
cpu, memory and hugepages, the overhead added (to limits only where a limit is set). Units:
cpu in cores; memory, storage, ephemeral-storage and hugepages-* in bytes; attachable-volumes-*
"integer"; anything else "".

The families are rendered on demand from the pods given by a callable (the scheduler's cache
and queue); kube-scheduler renders them only while it leads, and berth's server does the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from scheduler.model import InvalidObject, parse_quantity_decimal

JSON = dict[str, Any]
Amounts = dict[str, Decimal]

LABELS = ["namespace", "pod", "node", "scheduler", "priority", "resource", "unit"]
_HELP_TAIL = (
    " on the cluster, broken down by pod. This shows the resource usage the scheduler and kubelet"
    " expect per pod for resources along with the unit for the resource if any."
)
REQUEST_HELP = "[STABLE] Resources requested by workloads" + _HELP_TAIL
LIMIT_HELP = "[STABLE] Resources limit for workloads" + _HELP_TAIL

_BYTES = frozenset({"memory", "storage", "ephemeral-storage"})


def unit(resource: str) -> str:
    """The `unit` label upstream gives `resource`."""
    if resource == "cpu":
        return "cores"
    if resource in _BYTES or resource.startswith("hugepages-"):
        return "bytes"
    if resource.startswith("attachable-volumes-"):
        return "integer"
    return ""


def _amounts(raw: Mapping[str, Any] | None) -> Amounts:
    out: Amounts = {}
    for name, value in (raw or {}).items():
        try:
            out[name] = parse_quantity_decimal(value)
        except InvalidObject:
            continue  # the API server validates quantities; a bad one is not worth a scrape
    return out


def _add(into: Amounts, more: Amounts) -> None:
    for name, value in more.items():
        into[name] = into.get(name, Decimal(0)) + value


def _max(into: Amounts, other: Amounts) -> None:
    for name, value in other.items():
        if value > into.get(name, Decimal(0)):
            into[name] = value


def _aggregate(spec: JSON, field: str) -> Amounts:
    """component-helpers' aggregateContainerResourcesByFn over `field` (requests or limits):
    app containers and sidecars summed; each other init container with the sidecars started
    before it; the larger of the two."""
    total: Amounts = {}
    for container in spec.get("containers") or ():
        _add(total, _amounts((container.get("resources") or {}).get(field)))
    sidecars: Amounts = {}
    init_peak: Amounts = {}
    for container in spec.get("initContainers") or ():
        own = _amounts((container.get("resources") or {}).get(field))
        if container.get("restartPolicy") == "Always":
            _add(total, own)
            _add(sidecars, own)
            running = dict(sidecars)
        else:
            running = dict(own)
            _add(running, sidecars)
        _max(init_peak, running)
    _max(total, init_peak)
    return total


def _pod_level(spec: JSON, field: str) -> Amounts:
    """spec.resources.<field>, the resources PodLevelResources supports only."""
    raw = _amounts((spec.get("resources") or {}).get(field))
    return {k: v for k, v in raw.items() if k in ("cpu", "memory") or k.startswith("hugepages-")}


def pod_requests(spec: JSON) -> Amounts:
    """component-helpers' PodRequests with default options."""
    requests = _aggregate(spec, "requests")
    requests.update(_pod_level(spec, "requests"))
    _add(requests, _amounts(spec.get("overhead")))
    return requests


def pod_limits(spec: JSON) -> Amounts:
    """component-helpers' PodLimits with default options."""
    limits = _aggregate(spec, "limits")
    limits.update(_pod_level(spec, "limits"))
    for name, value in _amounts(spec.get("overhead")).items():
        if limits.get(name):
            limits[name] += value
    return limits


class PodResourceCollector:
    """The two families for the pods `pods()` yields as (raw Pod JSON, node name or "")."""

    def __init__(self, pods: Callable[[], Iterable[tuple[JSON, str]]]) -> None:
        self._pods = pods
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        requests = GaugeMetricFamily("kube_pod_resource_request", REQUEST_HELP, labels=LABELS)
        limits = GaugeMetricFamily("kube_pod_resource_limit", LIMIT_HELP, labels=LABELS)
        for pod, node in self._pods():
            if ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed"):
                continue
            meta = pod.get("metadata") or {}
            spec = pod.get("spec") or {}
            priority = spec.get("priority")
            common = [
                str(meta.get("namespace") or ""),
                str(meta.get("name") or ""),
                node,
                str(spec.get("schedulerName") or ""),
                "" if priority is None else str(int(priority)),
            ]
            for family, amounts in ((requests, pod_requests(spec)), (limits, pod_limits(spec))):
                for resource, amount in sorted(amounts.items()):
                    if amount:
                        family.add_metric([*common, resource, unit(resource)], float(amount))
        yield requests
        yield limits

    def render(self) -> bytes:
        return generate_latest(self.registry)
