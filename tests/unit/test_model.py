"""scheduler.model: quantities, effective pod requests, tolerations and selector requirements,
table by table, with upstream's cases where upstream has a test for the same thing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scheduler.model import (
    DEFAULT_MEMORY,
    DEFAULT_MILLI_CPU,
    InvalidObject,
    Requirement,
    Taint,
    Toleration,
    compile_node,
    compile_pod,
    parse_quantity,
    pod_nonzero_requests,
    pod_requests,
    requirement_matches,
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


# --- selector requirements -------------------------------------------------------------------


def req(op: str, *values: str) -> Requirement:
    return Requirement("key", op, values)


@pytest.mark.parametrize(
    ("requirement", "value", "expected"),
    [
        pytest.param(req("In", "a", "b"), "a", True, id="in-listed"),
        pytest.param(req("In", "a", "b"), "c", False, id="in-not-listed"),
        pytest.param(req("In", "a"), None, False, id="in-label-absent"),
        pytest.param(req("In", ""), "", True, id="in-empty-value"),
        pytest.param(req("NotIn", "a", "b"), "a", False, id="notin-listed"),
        pytest.param(req("NotIn", "a", "b"), "c", True, id="notin-not-listed"),
        pytest.param(req("NotIn", "a"), None, True, id="notin-label-absent"),
        pytest.param(req("Exists"), "x", True, id="exists-present"),
        pytest.param(req("Exists"), "", True, id="exists-present-empty"),
        pytest.param(req("Exists"), None, False, id="exists-absent"),
        pytest.param(req("DoesNotExist"), "x", False, id="doesnotexist-present"),
        pytest.param(req("DoesNotExist"), None, True, id="doesnotexist-absent"),
        pytest.param(req("Gt", "3"), "5", True, id="gt-greater"),
        pytest.param(req("Gt", "3"), "3", False, id="gt-equal"),
        pytest.param(req("Gt", "3"), "2", False, id="gt-smaller"),
        pytest.param(req("Gt", "-2"), "-1", True, id="gt-negative"),
        pytest.param(req("Gt", "6"), "+7", True, id="gt-explicit-plus"),
        pytest.param(req("Gt", "3"), None, False, id="gt-label-absent"),
        pytest.param(req("Gt", "3"), "abc", False, id="gt-label-not-a-number"),
        pytest.param(req("Gt", "x"), "5", False, id="gt-value-not-a-number"),
        pytest.param(req("Gt", "1.5"), "5", False, id="gt-value-decimal"),
        pytest.param(req("Gt", "3", "4"), "5", False, id="gt-two-values"),
        pytest.param(req("Gt"), "5", False, id="gt-no-value"),
        pytest.param(req("Gt", "999"), "1_000", False, id="gt-underscore-is-not-a-number"),
        pytest.param(req("Gt", "3"), " 7", False, id="gt-space-is-not-a-number"),
        pytest.param(req("Gt", "3"), "7\n", False, id="gt-newline-is-not-a-number"),
        pytest.param(req("Gt", "0"), str(2**63), False, id="gt-beyond-int64"),
        pytest.param(req("Gt", "0"), str(2**63 - 1), True, id="gt-int64-max"),
        pytest.param(req("Lt", "3"), "2", True, id="lt-smaller"),
        pytest.param(req("Lt", "3"), "3", False, id="lt-equal"),
        pytest.param(req("Lt", "3"), "4", False, id="lt-greater"),
        pytest.param(req("Lt", "0"), "-1", True, id="lt-negative"),
        pytest.param(req("Lt", "3"), None, False, id="lt-label-absent"),
        pytest.param(req("Lt", "3"), "two", False, id="lt-label-not-a-number"),
        pytest.param(req("Lt", "three"), "2", False, id="lt-value-not-a-number"),
    ],
)
def test_requirement_matches(requirement: Requirement, value: str | None, expected: bool) -> None:
    """Every operator, with labels.Requirement's rules for Gt/Lt (base-10 int64 or no match)."""
    assert requirement_matches(requirement, value) is expected


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
