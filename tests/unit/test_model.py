"""scheduler.model: quantities, effective pod requests and tolerations,
table by table, with upstream's cases where upstream has a test for the same thing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scheduler.model import (
    DEFAULT_MEMORY,
    DEFAULT_MILLI_CPU,
    InvalidObject,
    Taint,
    Toleration,
    compile_node,
    compile_pod,
    parse_quantity,
    pod_nonzero_requests,
    pod_requests,
    resize_state,
)
from tests.builders import make_node, make_pod

Ki, Mi, Gi = 2**10, 2**20, 2**30

# --- quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "milli", "expected"),
    [
        pytest.param("1", False, 1, id="plain"),
        pytest.param("1", True, 1000, id="plain-milli"),
        pytest.param("0", False, 0, id="zero"),
        pytest.param("+3", False, 3, id="explicit-sign"),
        pytest.param("1Ki", False, Ki, id="Ki"),
        pytest.param("1Mi", False, Mi, id="Mi"),
        pytest.param("1Gi", False, Gi, id="Gi"),
        pytest.param("1Ti", False, 2**40, id="Ti"),
        pytest.param("1Pi", False, 2**50, id="Pi"),
        pytest.param("1Ei", False, 2**60, id="Ei"),
        pytest.param("1k", False, 10**3, id="k"),
        pytest.param("1M", False, 10**6, id="M"),
        pytest.param("1G", False, 10**9, id="G"),
        pytest.param("1T", False, 10**12, id="T"),
        pytest.param("1P", False, 10**15, id="P"),
        pytest.param("1E", False, 10**18, id="E-alone-is-exa"),
        pytest.param("250m", True, 250, id="m-milli"),
        pytest.param("1500m", False, 2, id="m-rounds-up-to-whole"),
        pytest.param("1m", False, 1, id="m-below-one-rounds-up"),
        pytest.param("1u", True, 1, id="u-milli-rounds-up"),
        pytest.param("1500u", True, 2, id="u-milli"),
        pytest.param("1n", True, 1, id="n-milli-rounds-up"),
        pytest.param("2000000n", True, 2, id="n-milli"),
        pytest.param("0.5", False, 1, id="decimal-rounds-up"),
        pytest.param("0.5", True, 500, id="decimal-milli"),
        pytest.param("0.1", True, 100, id="decimal-tenth-cpu"),
        pytest.param("0.0001", True, 1, id="decimal-below-a-milli-rounds-up"),
        pytest.param("1.5Gi", False, 3 * Gi // 2, id="decimal-binary-suffix"),
        pytest.param("2.5k", False, 2500, id="decimal-si-suffix"),
        pytest.param("1e3", False, 1000, id="exponent"),
        pytest.param("1E3", False, 1000, id="exponent-upper"),
        pytest.param("1e+3", False, 1000, id="exponent-plus"),
        pytest.param("12e-1", False, 2, id="negative-exponent-rounds-up"),
        pytest.param("1e-3", True, 1, id="negative-exponent-milli"),
        pytest.param("  5 ", False, 5, id="surrounding-space-trimmed-as-json-unmarshal"),
    ],
)
def test_parse_quantity(text: str, milli: bool, expected: int) -> None:
    """Every suffix, decimals and exponents, rounded up to a whole unit (or milli-unit)."""
    assert parse_quantity(text, milli=milli) == expected


@pytest.mark.parametrize(
    ("value", "milli", "expected"),
    [
        pytest.param(2, False, 2, id="int"),
        pytest.param(2, True, 2000, id="int-milli"),
        pytest.param(0.25, True, 250, id="float-milli"),
        pytest.param(0.25, False, 1, id="float-rounds-up"),
    ],
)
def test_parse_quantity_numbers(value: int | float, milli: bool, expected: int) -> None:
    """JSON numbers are quantities too."""
    assert parse_quantity(value, milli=milli) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("abc", id="letters"),
        pytest.param("Gi", id="suffix-only"),
        pytest.param("1K", id="upper-K-is-not-a-suffix"),
        pytest.param("1KI", id="wrong-case-binary"),
        pytest.param("1 Gi", id="space-inside"),
        pytest.param("1.2.3", id="two-points"),
        pytest.param(".", id="point-only"),
        pytest.param("1e", id="exponent-without-digits"),
        pytest.param("1e3Ki", id="exponent-and-suffix"),
        pytest.param("0x10", id="hex"),
        pytest.param("1_000", id="underscore"),
        pytest.param(True, id="bool"),
    ],
)
def test_parse_quantity_rejects_garbage(value: Any) -> None:
    """Anything the API server would not accept is an InvalidObject naming the value."""
    with pytest.raises(InvalidObject, match="quantity"):
        parse_quantity(value)


def test_invalid_request_names_the_field() -> None:
    """A malformed request names the container and field it came from."""
    pod = make_pod("a").containers({"cpu": "1"}, {"memory": "lots"}).obj_()
    with pytest.raises(InvalidObject, match=r"spec\.containers\[1\]\.resources\.requests"):
        compile_pod(pod)


def test_invalid_affinity_names_the_field() -> None:
    """An unknown selector operator names spec.affinity.nodeAffinity."""
    pod = make_pod("a").required_affinity("zone", "Near", "a").obj_()
    with pytest.raises(InvalidObject, match=r"spec\.affinity\.nodeAffinity: .*'Near'"):
        compile_pod(pod)


# --- effective requests ----------------------------------------------------------------------


def _spec(builder: Any) -> dict[str, Any]:
    spec: dict[str, Any] = builder.obj_()["spec"]
    return spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(_spec(make_pod("p").containers()), {"pods": 1}, id="no-containers"),
        pytest.param(_spec(make_pod("p").containers({})), {"pods": 1}, id="requestless-container"),
        pytest.param(
            _spec(make_pod("p").containers({"cpu": "1", "memory": "1Gi"}, {"cpu": "500m"})),
            {"cpu": 1500, "memory": Gi, "pods": 1},
            id="containers-add-up",
        ),
        pytest.param(
            _spec(make_pod("p").containers({"cpu": "1"}).init_container({"cpu": "3"})),
            {"cpu": 3000, "pods": 1},
            id="init-container-max",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "2", "memory": "1Gi"})
                .init_container({"cpu": "1", "memory": "2Gi"})
                .init_container({"cpu": "3"})
            ),
            {"cpu": 3000, "memory": 2 * Gi, "pods": 1},
            id="init-max-per-resource",
        ),
        # The next four are upstream's component-helpers/resource helpers_test.go cases.
        pytest.param(
            _spec(
                make_pod("p").containers({"cpu": "1"}).init_container({"cpu": "1"}, sidecar=True)
            ),
            {"cpu": 2000, "pods": 1},
            id="restartable-init-container",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "1"})
                .init_container({"cpu": "5"})
                .init_container({"cpu": "1"}, sidecar=True)
                .init_container({"cpu": "2"}, sidecar=True)
                .init_container({"cpu": "3"}, sidecar=True)
            ),
            {"cpu": 7000, "pods": 1},
            id="multiple-restartable-init-containers",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "1"})
                .init_container({"cpu": "5"})
                .init_container({"cpu": "1"}, sidecar=True)
                .init_container({"cpu": "2"}, sidecar=True)
                .init_container({"cpu": "5"})
                .init_container({"cpu": "3"}, sidecar=True)
            ),
            {"cpu": 8000, "pods": 1},
            id="multiple-restartable-and-regular-init-containers",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "100"})
                .init_container({"cpu": "10"}, sidecar=True)
                .init_container({"cpu": "200"})
            ),
            {"cpu": 210_000, "pods": 1},
            id="restartable-init-init-and-regular",
        ),
        pytest.param(
            _spec(make_pod("p").containers({"cpu": "1"}).overhead(cpu="500m", memory="1Mi")),
            {"cpu": 1500, "memory": Mi, "pods": 1},
            id="overhead-added",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "1"})
                .init_container({"cpu": "3"})
                .overhead(cpu="500m")
            ),
            {"cpu": 3500, "pods": 1},
            id="overhead-added-after-init-max",
        ),
        pytest.param(
            _spec(make_pod("p").containers({"example.com/gpu": "1"}, {"example.com/gpu": "2"})),
            {"example.com/gpu": 3, "pods": 1},
            id="extended-resource",
        ),
    ],
)
def test_pod_requests(spec: dict[str, Any], expected: dict[str, int]) -> None:
    """Effective requests, as upstream's resource helper computes them (pods always 1)."""
    assert pod_requests(spec) == expected


ONE_MI = Mi


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # Upstream's noderesources TestResourceAllocationScorerCalculateRequests, one by one.
        pytest.param(
            _spec(make_pod("p").containers().overhead(cpu="1", memory="1Mi")),
            (1000, ONE_MI),
            id="overhead-only",
        ),
        pytest.param(
            _spec(make_pod("p").containers({})),
            (DEFAULT_MILLI_CPU, DEFAULT_MEMORY),
            id="1x-requestless-container",
        ),
        pytest.param(
            _spec(make_pod("p").containers({}, {})),
            (2 * DEFAULT_MILLI_CPU, 2 * DEFAULT_MEMORY),
            id="2x-requestless-container",
        ),
        pytest.param(
            _spec(make_pod("p").containers({"cpu": "1", "memory": "1Mi"}, {})),
            (1000 + DEFAULT_MILLI_CPU, ONE_MI + DEFAULT_MEMORY),
            id="request-container-and-requestless-container",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "1", "memory": "1Mi"}, {})
                .overhead(cpu="1", memory="1Mi")
            ),
            (2000 + DEFAULT_MILLI_CPU, 2 * ONE_MI + DEFAULT_MEMORY),
            id="container-requestless-container-and-overhead",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "1", "memory": "1Mi"}, {})
                .init_container({"cpu": "3"})
                .overhead(cpu="1", memory="1Mi")
            ),
            (4000, 2 * ONE_MI + DEFAULT_MEMORY),
            id="init-container-container-requestless-container-and-overhead",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "3m", "memory": "3"})
                .init_container({})
                .init_container({"cpu": "1m", "memory": "1"})
            ),
            (DEFAULT_MILLI_CPU, DEFAULT_MEMORY),
            id="requestless-init-small-init-small-container",
        ),
        pytest.param(
            _spec(
                make_pod("p")
                .containers({"cpu": "3m", "memory": "3"}, {})
                .init_container({})
                .init_container({"cpu": "1m", "memory": "1"})
            ),
            (3 + DEFAULT_MILLI_CPU, 3 + DEFAULT_MEMORY),
            id="requestless-init-small-init-small-container-requestless-container",
        ),
        pytest.param(
            _spec(make_pod("p").containers({"cpu": "3", "memory": "0"})),
            (3000, 0),
            id="explicit-zero-is-not-missing",
        ),
    ],
)
def test_pod_nonzero_requests(spec: dict[str, Any], expected: tuple[int, int]) -> None:
    """Scoring requests: each container missing cpu/memory counts as 100m/200Mi."""
    assert pod_nonzero_requests(spec) == expected


def test_compiled_pod_carries_both_request_views() -> None:
    """compile_pod keeps real requests (Filter) and non-zero ones (Score) side by side."""
    pod = compile_pod(make_pod("a").containers({"memory": "1Gi"}, {}).obj_())
    assert (pod.requests, pod.nonzero_requests) == (
        {"memory": Gi, "pods": 1},
        (2 * DEFAULT_MILLI_CPU, Gi + DEFAULT_MEMORY),
    )


def test_class_key_separates_pods_that_score_differently() -> None:
    """Equal requests but different container layout score differently, so the classes differ."""
    one = compile_pod(make_pod("a").containers({}).obj_())
    two = compile_pod(make_pod("b").containers({}, {}).obj_())
    assert one.requests == two.requests
    assert one.class_key != two.class_key


# --- pod-level resources (PodLevelResources) -------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        # Upstream's component-helpers TestPodLevelResourceRequests (PodLevelResources on).
        pytest.param(make_pod("p").containers(), {"pods": 1}, id="nil"),
        pytest.param(
            make_pod("p").containers().pod_requests({"memory": "2Mi"}),
            {"memory": 2 * Mi, "pods": 1},
            id="pod-level-memory-resource",
        ),
        pytest.param(
            make_pod("p").containers({"cpu": "2m"}).pod_requests({"memory": "2Mi"}),
            {"memory": 2 * Mi, "cpu": 2, "pods": 1},
            id="pod-level-memory-and-container-level-cpu-resources",
        ),
        pytest.param(
            make_pod("p").containers({"storage": "3Mi"}).pod_requests({"storage": "2Mi"}),
            {"storage": 3 * Mi, "pods": 1},
            id="pod-level-unsupported-resources-set-at-both-pod-level-and-container-level",
        ),
        pytest.param(
            make_pod("p").containers({"memory": "3Mi"}).pod_requests({"storage": "2Mi"}),
            {"memory": 3 * Mi, "pods": 1},
            id="pod-level-unsupported-resources-set-at-pod-level",
        ),
        pytest.param(
            make_pod("p")
            .containers({"memory": "3Mi", "cpu": "2m"})
            .pod_requests({"memory": "6Mi", "cpu": "8m"}),
            {"memory": 6 * Mi, "cpu": 8, "pods": 1},
            id="both-container-level-and-pod-level-resources-set",
        ),
        pytest.param(
            make_pod("p")
            .containers({"memory": "3Mi", "cpu": "2m"})
            .init_container({"memory": "5Mi", "cpu": "4m"}, sidecar=True)
            .init_container({"memory": "6Mi", "cpu": "8m"}),
            {"memory": 11 * Mi, "cpu": 12, "pods": 1},
            id="container-level-resources-init-and-sidecar-container-set",
        ),
        pytest.param(
            make_pod("p")
            .containers({"memory": "3Mi", "cpu": "2m"})
            .init_container({"memory": "5Mi", "cpu": "4m"}, sidecar=True)
            .init_container({"memory": "6Mi", "cpu": "8m"})
            .pod_requests({"memory": "15Mi", "cpu": "18m"}),
            {"memory": 15 * Mi, "cpu": 18, "pods": 1},
            id="pod-level-resources-container-level-resources-init-and-sidecar-container-set",
        ),
        pytest.param(
            make_pod("p").containers().pod_requests({"memory": "10Mi", "hugepages-2Mi": "2Mi"}),
            {"memory": 10 * Mi, "hugepages-2Mi": 2 * Mi, "pods": 1},
            id="pod-level-resources-hugepage-request-single-page-size",
        ),
        pytest.param(
            make_pod("p")
            .containers()
            .pod_requests({"cpu": "1", "hugepages-2Mi": "2Mi", "hugepages-1Gi": "1Gi"}),
            {"cpu": 1000, "hugepages-2Mi": 2 * Mi, "hugepages-1Gi": Gi, "pods": 1},
            id="pod-level-resources-hugepage-request-multiple-page-sizes",
        ),
        pytest.param(
            make_pod("p")
            .containers({"hugepages-2Mi": "6Mi"})
            .pod_requests({"cpu": "1", "hugepages-2Mi": "10Mi"}),
            {"cpu": 1000, "hugepages-2Mi": 10 * Mi, "pods": 1},
            id="pod-level-resources-container-level-resources-hugepage-single-page-size",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "1", "hugepages-1Gi": "2Gi"})
            .pod_requests({"cpu": "1", "hugepages-2Mi": "10Mi", "hugepages-1Gi": "2Gi"}),
            {"cpu": 1000, "hugepages-2Mi": 10 * Mi, "hugepages-1Gi": 2 * Gi, "pods": 1},
            id="pod-level-resources-container-level-resources-hugepage-multiple-page-sizes",
        ),
        pytest.param(
            make_pod("p")
            .containers({"memory": "4Mi", "hugepages-1Gi": "1Gi"})
            .pod_requests({"cpu": "1", "hugepages-2Mi": "10Mi"}),
            {
                "cpu": 1000,
                "memory": 4 * Mi,
                "hugepages-2Mi": 10 * Mi,
                "hugepages-1Gi": Gi,
                "pods": 1,
            },
            id="hugepage-multiple-page-sizes-between-pod-level-and-container-level",
        ),
        # PodRequests adds the overhead after the pod-level requests replaced the aggregate.
        pytest.param(
            make_pod("p").containers({"cpu": "2"}).pod_requests({"cpu": "1"}).overhead(cpu="250m"),
            {"cpu": 1250, "pods": 1},
            id="overhead-added-to-pod-level-requests",
        ),
    ],
)
def test_pod_level_requests(pod: Any, expected: dict[str, int]) -> None:
    """Pod-level cpu, memory and hugepages replace the container aggregate; other names at
    pod level are ignored; the overhead comes on top."""
    assert pod_requests(_spec(pod)) == expected


@pytest.mark.parametrize(
    ("pod", "requests", "nonzero"),
    [
        # Upstream's framework TestPodInfoCalculateResources, pod-level cases.
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .init_container({"cpu": "500m", "memory": "500Mi"})
            .pod_requests({"cpu": "1200m", "memory": "1200Mi"}),
            {"cpu": 1200, "memory": 1200 * Mi, "pods": 1},
            (1200, 1200 * Mi),
            id="1x-container-and-1x-init-container-with-pod-level-requests",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .init_container({"cpu": "500m", "memory": "500Mi"}, sidecar=True)
            .pod_requests({"cpu": "1200m", "memory": "1200Mi"}),
            {"cpu": 1200, "memory": 1200 * Mi, "pods": 1},
            (1200, 1200 * Mi),
            id="1x-container-and-1x-sidecar-container-with-pod-level-requests",
        ),
        pytest.param(
            make_pod("p").containers({}).init_container({}).pod_requests({"memory": "1200Mi"}),
            {"memory": 1200 * Mi, "pods": 1},
            (DEFAULT_MILLI_CPU, 1200 * Mi),
            id="1x-container-with-pod-level-memory-requests",
        ),
        pytest.param(
            make_pod("p").containers({}).init_container({}).pod_requests({"cpu": "500m"}),
            {"cpu": 500, "pods": 1},
            (500, DEFAULT_MEMORY),
            id="1x-container-with-pod-level-cpu-requests",
        ),
        pytest.param(
            make_pod("p")
            .containers({"ephemeral-storage": "800Mi"})
            .init_container({"ephemeral-storage": "500Mi"})
            .pod_requests({"cpu": "500m"}),
            {"cpu": 500, "ephemeral-storage": 800 * Mi, "pods": 1},
            (500, DEFAULT_MEMORY),
            id="1x-container-unsupported-resources-and-pod-level-supported-resources",
        ),
        # With pod-level requests a default fills only a resource no level requests: here the
        # container's memory stands, and the requestless container adds none.
        pytest.param(
            make_pod("p").containers({"memory": "100Mi"}, {}).pod_requests({"cpu": "1"}),
            {"cpu": 1000, "memory": 100 * Mi, "pods": 1},
            (1000, 100 * Mi),
            id="pod-level-cpu-and-container-memory-need-no-default",
        ),
    ],
)
def test_calculate_resource_pod_level(
    pod: Any, requests: dict[str, int], nonzero: tuple[int, int]
) -> None:
    """Requests and the non-zero (Non0CPU, Non0Mem) figures a pod adds to its node."""
    compiled = compile_pod(pod.obj_())
    assert (compiled.requests, compiled.nonzero_requests) == (requests, nonzero)


@pytest.mark.parametrize(
    ("pod", "scoring"),
    [
        pytest.param(
            make_pod("p").containers({"memory": "100Mi"}, {}).pod_requests({"cpu": "1"}),
            (1000, 100 * Mi + DEFAULT_MEMORY),
            id="requestless-container-defaults-where-pod-level-does-not-replace",
        ),
        pytest.param(
            make_pod("p").containers({}, {}).pod_requests({"cpu": "1", "memory": "1Gi"}),
            (1000, Gi),
            id="pod-level-replaces-both-defaults",
        ),
        pytest.param(
            make_pod("p").containers({"memory": "100Mi"}, {}),
            (2 * DEFAULT_MILLI_CPU, 100 * Mi + DEFAULT_MEMORY),
            id="no-pod-level-same-as-nonzero",
        ),
    ],
)
def test_scoring_requests(pod: Any, scoring: tuple[int, int]) -> None:
    """NodeResourcesFit scores the pod itself with per-container defaults, then the pod-level
    requests (upstream's resourceAllocationScorer.calculatePodResourceRequest), even where the
    figure its node counts has no default (CalculateResource)."""
    assert compile_pod(pod.obj_()).scoring_requests == scoring


# --- in-place resize (InPlacePodVerticalScaling) ---------------------------------------------

M500 = 500 * Mi
M800 = 800 * Mi


def _bound(pod: Any) -> Any:
    return pod.node("n1")


@pytest.mark.parametrize(
    ("pod", "requests"),
    [
        # Upstream's framework TestCalculatePodResourcesWithResize: requests and non-zero
        # figures of a bound pod, by its spec and its status.
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .container_status("c0", actual={"cpu": "500m", "memory": "500Mi"}),
            (500, M500),
            id="pod-with-no-pending-resize",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .pod_requests({"cpu": "700m", "memory": "500Mi"})
            .container_status("c0", actual={"cpu": "700m", "memory": "500Mi"})
            .pod_status_resources(actual={"cpu": "500m", "memory": "500Mi"}),
            (700, M500),
            id="pod-with-pod-level-resources-no-pending-resize",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .container_status("c0", actual={"cpu": "500m", "memory": "500Mi"})
            .condition("PodResizeInProgress"),
            (500, M500),
            id="pod-with-resize-in-progress",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .pod_requests({"cpu": "700m", "memory": "500Mi"})
            .container_status("c0", actual={"cpu": "700m", "memory": "500Mi"})
            .pod_status_resources(actual={"cpu": "500m", "memory": "500Mi"})
            .condition("PodResizeInProgress"),
            (700, M500),
            id="pod-with-pod-level-resources-and-resize-in-progress",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "700m", "memory": "800Mi"})
            .container_status("c0", actual={"cpu": "500m", "memory": "500Mi"})
            .condition("PodResizePending", "Deferred"),
            (700, M800),
            id="pod-with-deferred-resize",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .pod_requests({"cpu": "700m", "memory": "800Mi"})
            .container_status("c0", actual={"cpu": "500m", "memory": "500Mi"})
            .pod_status_resources(actual={"cpu": "500m", "memory": "500Mi"})
            .condition("PodResizePending", "Deferred"),
            (700, M800),
            id="pod-with-pod-level-resources-and-with-deferred-resize",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "700m", "memory": "800Mi"})
            .container_status("c0", actual={"cpu": "500m", "memory": "500Mi"})
            .condition("PodResizePending", "Infeasible"),
            (500, M500),
            id="pod-with-infeasible-resize",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .init_container({"cpu": "700m", "memory": "800Mi"})
            .container_status("c0", actual={"cpu": "500m", "memory": "500Mi"})
            .container_status("init0", actual={"cpu": "700m", "memory": "800Mi"}, init=True),
            (700, M800),
            id="pod-with-init-container-and-no-pending-resize",
        ),
        pytest.param(
            make_pod("p")
            .containers({"cpu": "500m", "memory": "500Mi"})
            .init_container({"cpu": "700m", "memory": "800Mi"})
            .init_container({"cpu": "700m", "memory": "800Mi"}, sidecar=True)
            .container_status("c0", actual={"cpu": "500m", "memory": "500Mi"})
            .container_status("init0", actual={"cpu": "700m", "memory": "800Mi"}, init=True)
            .container_status("init1", actual={"cpu": "700m", "memory": "800Mi"}, init=True),
            (1200, M500 + M800),
            id="pod-with-sidecar-container-and-no-pending-resize",
        ),
    ],
)
def test_calculate_resource_with_resize(pod: Any, requests: tuple[int, int]) -> None:
    """A bound pod counts the larger of its spec and its status, and only its status while
    the resize is infeasible; requests and non-zero figures alike."""
    compiled = compile_pod(_bound(pod).obj_())
    cpu, memory = requests
    assert compiled.requests == {"cpu": cpu, "memory": memory, "pods": 1}
    assert compiled.nonzero_requests == requests


def _populated(pod: Any) -> Any:
    """Upstream's populatePodStatusResourcesForTest: the pod-level status a kubelet with
    InPlacePodLevelResourcesVerticalScaling reports, summed from the container statuses."""
    status = pod.obj.setdefault("status", {})
    allocated: dict[str, int] = {}
    actual: dict[str, int] = {}
    for field_name in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(field_name) or []:
            for into, raw in (
                (allocated, cs.get("allocatedResources")),
                (actual, (cs.get("resources") or {}).get("requests")),
            ):
                for name, value in (raw or {}).items():
                    into[name] = into.get(name, 0) + parse_quantity(value, milli=name == "cpu")
    as_text = {"cpu": lambda v: f"{v}m"}

    def text(amounts: dict[str, int]) -> dict[str, str]:
        return {k: as_text.get(k, str)(v) for k, v in amounts.items()}

    return pod.pod_status_resources(allocated=text(allocated), actual=text(actual))


RESIZED = [
    # Upstream's component-helpers TestPodResourceRequests, resize cases (UseStatusResources).
    pytest.param(
        make_pod("p")
        .containers({"cpu": "4"})
        .container_status("c0", actual={"cpu": "2"})
        .condition("PodResizePending", "Infeasible"),
        {"cpu": 2000},
        id="resized-infeasible",
    ),
    pytest.param(
        make_pod("p")
        .containers({"cpu": "6"})
        .container_status("c0", allocated={"cpu": "4"}, actual={"cpu": "2"})
        .condition("PodResizePending", "Infeasible"),
        {"cpu": 4000},
        id="resized-infeasible-and-in-progress",
    ),
    pytest.param(
        make_pod("p").containers({"cpu": "4"}).container_status("c0", actual={"cpu": "2"}),
        {"cpu": 4000},
        id="resized-no-resize-status",
    ),
    pytest.param(
        make_pod("p")
        .containers({"cpu": "30m", "memory": "20M", "ephemeral-storage": "10G"})
        .container_status(
            "c0",
            allocated={"cpu": "20m", "memory": "10M", "ephemeral-storage": "30G"},
            actual={"cpu": "10m", "memory": "30M", "ephemeral-storage": "20G"},
        ),
        {"cpu": 30, "memory": 30 * 10**6, "ephemeral-storage": 30 * 10**9},
        id="resized-per-resource-3-way-maximum",
    ),
    pytest.param(
        make_pod("p")
        .containers()
        .init_container({"cpu": "4"}, sidecar=True)
        .container_status("init0", actual={"cpu": "2"}, init=True)
        .condition("PodResizePending", "Infeasible"),
        {"cpu": 2000},
        id="resized-restartable-init-container-infeasible",
    ),
    pytest.param(
        make_pod("p")
        .containers()
        .init_container({"cpu": "4"}, sidecar=True)
        .container_status("init0", actual={"cpu": "2"}, init=True),
        {"cpu": 4000},
        id="resized-restartable-init-container-no-resize-status",
    ),
    pytest.param(
        make_pod("p")
        .containers({"cpu": "1"}, {"cpu": "2"})
        .container_status("c0", allocated={"cpu": "2"})
        .container_status("c1", allocated={"cpu": "1"}),
        {"cpu": 3000},
        id="aggregate-request-resolves-max-of-sums-instead-of-sum-of-maxes",
    ),
]


@pytest.mark.parametrize(("pod", "expected"), RESIZED)
@pytest.mark.parametrize("pod_level_status", [False, True], ids=["containers", "pod-level"])
def test_pod_requests_resized(pod: Any, expected: dict[str, int], pod_level_status: bool) -> None:
    """The same answers from container statuses alone and from the pod-level aggregates a
    newer kubelet also reports (then those are read instead)."""
    pod = copy.deepcopy(pod)
    if pod_level_status:
        pod = _populated(pod)
    raw = pod.obj_()
    assert pod_requests(raw["spec"], raw["status"]) == expected | {"pods": 1}


def test_pod_level_status_stands_for_the_container_statuses() -> None:
    """With status.allocatedResources and status.resources.requests both set, the kubelet's
    pod-level aggregates are read instead of the container statuses; with one, they are not."""
    pod = (
        make_pod("p")
        .containers({"cpu": "1"})
        .container_status("c0", allocated={"cpu": "1"}, actual={"cpu": "1"})
    )
    raw = copy.deepcopy(pod).pod_status_resources(allocated={"cpu": "3"}).obj_()
    assert pod_requests(raw["spec"], raw["status"]) == {"cpu": 1000, "pods": 1}
    raw = pod.pod_status_resources(allocated={"cpu": "3"}, actual={"cpu": "2"}).obj_()
    assert pod_requests(raw["spec"], raw["status"]) == {"cpu": 3000, "pods": 1}


def test_resize_infeasible_needs_a_pod_level_status() -> None:
    """While a resize is infeasible the pod-level spec does not count: without a pod-level
    status the container aggregate stands (upstream's effectivePodLevelResources)."""
    pod = (
        make_pod("p")
        .containers({"cpu": "1"})
        .pod_requests({"cpu": "4"})
        .container_status("c0", actual={"cpu": "1"})
        .condition("PodResizePending", "Infeasible")
    )
    raw = pod.obj_()
    assert pod_requests(raw["spec"], raw["status"]) == {"cpu": 4000, "pods": 1}
    raw = copy.deepcopy(pod).pod_status_resources(actual={"cpu": "2"}).obj_()
    assert pod_requests(raw["spec"], raw["status"]) == {"cpu": 2000, "pods": 1}


def test_status_counts_only_once_bound() -> None:
    """A pod being scheduled is judged by its spec (upstream's PreFilter ignores the status);
    once on a node, by the larger of spec and status."""
    pod = make_pod("p").req(cpu="1").container_status("c", allocated={"cpu": "3"})
    assert compile_pod(pod.obj_()).requests == {"cpu": 1000, "pods": 1}
    assert compile_pod(pod.node("n1").obj_()).requests == {"cpu": 3000, "pods": 1}


@pytest.mark.parametrize(
    ("change", "same"),
    [
        pytest.param(lambda p: p, True, id="nothing"),
        pytest.param(lambda p: p.condition("Ready"), True, id="other-condition"),
        pytest.param(
            lambda p: p.container_status("sidecar", allocated={"cpu": "1"}, init=True),
            False,
            id="init-container-allocated",
        ),
        pytest.param(
            lambda p: p.pod_status_resources(allocated={"cpu": "1"}), False, id="pod-allocated"
        ),
        pytest.param(
            lambda p: p.condition("PodResizePending", "Infeasible"), False, id="infeasible"
        ),
    ],
)
def test_resize_state(change: Any, same: bool) -> None:
    """What a status update must touch to change a bound pod's requests."""
    before = make_pod("p").req(cpu="1").container_status("c", actual={"cpu": "1"})
    after = change(copy.deepcopy(before))
    after.obj["status"]["phase"] = "Running"
    assert (resize_state(before.obj_()["status"]) == resize_state(after.obj_()["status"])) is same


# --- tolerations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        # Upstream's core/v1 TestTolerationToleratesTaint cases, in our form.
        pytest.param(
            Toleration("foo", "Exists", "", "NoSchedule"),
            Taint("foo", "", "NoSchedule"),
            True,
            id="same-key-and-effect-exists-taint-without-value",
        ),
        pytest.param(
            Toleration("foo", "Exists", "", "NoSchedule"),
            Taint("foo", "bar", "NoSchedule"),
            True,
            id="same-key-and-effect-exists-taint-with-value",
        ),
        pytest.param(
            Toleration("foo", "Equal", "bar", "NoSchedule"),
            Taint("foo", "bar", "NoSchedule"),
            True,
            id="same-key-effect-and-value-equal",
        ),
        pytest.param(
            Toleration("foo", "Equal", "value1", "NoSchedule"),
            Taint("foo", "value2", "NoSchedule"),
            False,
            id="same-key-and-effect-different-value",
        ),
        pytest.param(
            Toleration("foo", "Equal", "bar", "NoExecute"),
            Taint("foo", "bar", "NoSchedule"),
            False,
            id="same-key-and-value-different-effect",
        ),
        pytest.param(
            Toleration("foo", "Equal", "bar", ""),
            Taint("foo", "bar", "NoExecute"),
            True,
            id="empty-effect-tolerates-every-effect",
        ),
        pytest.param(
            Toleration("", "Exists", "", "NoSchedule"),
            Taint("anything", "x", "NoSchedule"),
            True,
            id="exists-with-empty-key-tolerates-every-key",
        ),
        pytest.param(
            Toleration("", "Exists", "", "NoSchedule"),
            Taint("anything", "x", "PreferNoSchedule"),
            False,
            id="exists-with-empty-key-still-checks-effect",
        ),
        pytest.param(
            Toleration("", "Exists", "", ""),
            Taint("anything", "x", "NoExecute"),
            True,
            id="exists-empty-key-empty-effect-tolerates-everything",
        ),
        pytest.param(
            Toleration("foo", "Exists", "", ""),
            Taint("bar", "", "NoSchedule"),
            False,
            id="different-key",
        ),
        pytest.param(
            Toleration("foo", "Equal", "", "NoSchedule"),
            Taint("foo", "", "NoSchedule"),
            True,
            id="equal-empty-values",
        ),
    ],
)
def test_toleration_tolerates(toleration: Toleration, taint: Taint, expected: bool) -> None:
    """Key, operator, value and effect matching as upstream's ToleratesTaint."""
    assert toleration.tolerates(taint) is expected


def test_toleration_operator_defaults_to_equal() -> None:
    """A toleration without an operator is Equal (API defaulting), and effect "" stays empty."""
    raw = make_pod("a").obj_()
    raw["spec"]["tolerations"] = [{"key": "k", "value": "v"}]
    assert compile_pod(raw).tolerations == (Toleration("k", "Equal", "v", ""),)


def _heartbeat(raw: dict[str, Any], rv: str) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    out["metadata"]["resourceVersion"] = rv
    out.setdefault("status", {})["conditions"] = [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": f"2026-01-01T00:00:{rv}Z"}
    ]
    return out


@pytest.mark.parametrize(
    ("change", "same"),
    [
        pytest.param(lambda n: n, True, id="heartbeat-only"),
        pytest.param(lambda n: n.label("disk", "ssd"), False, id="label"),
        pytest.param(lambda n: n.taint("gpu"), False, id="taint"),
        pytest.param(lambda n: n.unschedulable(), False, id="cordoned"),
        pytest.param(lambda n: n.capacity(cpu="8"), False, id="allocatable"),
    ],
)
def test_node_versions_the_same_for_scheduling(change: Any, same: bool) -> None:
    """A status update that only moves heartbeats (and the resourceVersion) changes nothing a
    plugin reads; labels, taints, cordoning and allocatable do."""
    before = compile_node(_heartbeat(make_node("n1").capacity(cpu="4").obj_(), "10"))
    after = compile_node(_heartbeat(change(make_node("n1").capacity(cpu="4")).obj_(), "11"))
    assert before.resource_version != after.resource_version
    assert before.same_for_scheduling(after) is same


def test_nodes_of_one_shape_share_their_parsed_parts() -> None:
    """A million nodes must not hold a million copies of the same few dicts and strings:
    nodes with equal allocatable share one parsed dict, nodes without images one empty
    dict, equal label values one string, and the hostname label the name's string."""

    def node(name: str, cpu: str) -> dict[str, Any]:
        raw = make_node(name).capacity(cpu=cpu).zone("zone-a").obj_()
        raw["metadata"]["labels"]["kubernetes.io/hostname"] = "".join(name)  # a new string
        raw["metadata"]["labels"]["topology.kubernetes.io/zone"] = "".join(["zone-", "a"])
        return copy.deepcopy(raw)

    a, b, c = (
        compile_node(node("n1", "4")),
        compile_node(node("n2", "4")),
        compile_node(node("n3", "8")),
    )
    assert a.allocatable is b.allocatable and a.allocatable == b.allocatable
    assert c.allocatable is not a.allocatable and c.allocatable["cpu"] == 8000
    assert a.images is b.images and a.images == {}
    zone = "topology.kubernetes.io/zone"
    assert a.labels[zone] is b.labels[zone] and a.labels[zone] == "zone-a"
    assert a.labels["kubernetes.io/hostname"] is a.name


def test_node_with_a_malformed_allocatable_names_the_quantity() -> None:
    """The shared parse still rejects what the unshared one did, naming the value."""
    raw = make_node("n1").capacity(cpu="4").obj_()
    raw["status"]["allocatable"]["cpu"] = "four"
    with pytest.raises(InvalidObject, match="'four'"):
        compile_node(raw)


def test_a_boolean_quantity_is_rejected_after_a_node_of_the_same_numbers() -> None:
    """True == 1 in Python: the shared parse must not hand pods: true the parse of pods: 1."""
    good = make_node("n1").capacity(cpu="4").obj_()
    good["status"]["allocatable"] = {"cpu": 4, "pods": 1}
    assert compile_node(good).allocatable == {"cpu": 4000, "pods": 1}
    bad = copy.deepcopy(good)
    bad["status"]["allocatable"] = {"cpu": 4, "pods": True}
    with pytest.raises(InvalidObject, match="True"):
        compile_node(bad)
