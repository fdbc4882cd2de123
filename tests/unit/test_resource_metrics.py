"""scheduler.resource_metrics: kube-scheduler's /metrics/resources families, from pod JSON."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from scheduler.resource_metrics import PodResourceCollector, pod_limits, pod_requests

JSON = dict[str, Any]


def container(requests: JSON | None = None, limits: JSON | None = None, **extra: Any) -> JSON:
    return {"name": "c", "resources": {"requests": requests or {}, "limits": limits or {}}, **extra}


def pod(name: str, spec: JSON, phase: str = "Pending") -> JSON:
    meta = {"namespace": "ns", "name": name}
    return {
        "metadata": meta,
        "spec": {"schedulerName": "berth", **spec},
        "status": {"phase": phase},
    }


def samples(pods: list[tuple[JSON, str]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = PodResourceCollector(lambda: pods).render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(pod: str, node: str, resource: str, unit: str, priority: str = "") -> tuple[Any, ...]:
    return tuple(
        sorted(
            {
                "namespace": "ns",
                "pod": pod,
                "node": node,
                "scheduler": "berth",
                "priority": priority,
                "resource": resource,
                "unit": unit,
            }.items()
        )
    )


def test_requests_and_limits_with_units_and_labels() -> None:
    """CPU in cores, memory in bytes, extended resources unitless; zero amounts and terminal
    pods are left out; pending pods have node ""."""
    web = pod(
        "web",
        {
            "priority": 100,
            "containers": [
                container({"cpu": "250m", "memory": "64Mi"}, {"cpu": "1", "memory": "128Mi"}),
                container({"example.com/gpu": "1", "ephemeral-storage": "0"}),
            ],
        },
    )
    done = pod("done", {"containers": [container({"cpu": "1"})]}, phase="Succeeded")
    got = samples(
        [
            (web, "node-a"),
            (done, "node-a"),
            (pod("p", {"containers": [container({"cpu": "2"})]}), ""),
        ]
    )
    assert got == {
        ("kube_pod_resource_request", labels("web", "node-a", "cpu", "cores", "100")): 0.25,
        ("kube_pod_resource_request", labels("web", "node-a", "memory", "bytes", "100")): 64
        * 2**20,
        ("kube_pod_resource_request", labels("web", "node-a", "example.com/gpu", "", "100")): 1.0,
        ("kube_pod_resource_limit", labels("web", "node-a", "cpu", "cores", "100")): 1.0,
        ("kube_pod_resource_limit", labels("web", "node-a", "memory", "bytes", "100")): 128 * 2**20,
        ("kube_pod_resource_request", labels("p", "", "cpu", "cores")): 2.0,
    }


def test_init_containers_sidecars_pod_level_and_overhead() -> None:
    """component-helpers' PodRequests/PodLimits: the larger of the running sum and each init
    container with the sidecars before it; pod-level cpu/memory replace; overhead is added to
    every request but only to limits that are set."""
    spec = {
        "initContainers": [
            container({"cpu": "100m"}, {"cpu": "100m"}, restartPolicy="Always"),  # sidecar
            container({"cpu": "2"}, {"cpu": "3"}),
        ],
        "containers": [container({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1"})],
        "overhead": {"cpu": "10m", "memory": "1Mi"},
    }
    assert {k: float(v) for k, v in pod_requests(spec).items()} == {
        "cpu": 2.1 + 0.01,
        "memory": 2**30 + 2**20,
    }
    assert {k: float(v) for k, v in pod_limits(spec).items()} == {"cpu": 3.1 + 0.01}
    spec["resources"] = {"requests": {"cpu": "4", "example.com/x": "9"}, "limits": {"cpu": "5"}}
    assert float(pod_requests(spec)["cpu"]) == 4.01
    assert "example.com/x" not in pod_requests(spec)
    assert float(pod_limits(spec)["cpu"]) == 5.01
