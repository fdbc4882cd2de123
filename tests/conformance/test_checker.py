"""The checker itself: it must flag each kind of broken placement (pure, no API server)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.builders import make_node, make_pod
from tests.conformance.checker import Placed, quantity, requests, soft_quality, violations
from tests.conformance.scenarios import FULL_SEEDS, HOSTNAME, ZONE, edge_cases, generated

JSON = dict[str, Any]


def _ns(pod: JSON) -> JSON:
    pod["metadata"]["namespace"] = "ns"
    return pod


NODES = [
    make_node("a").capacity(cpu="1", memory="1Gi", pods="2").zone("z1").label("gen", "3").obj_(),
    make_node("b").capacity(cpu="1", memory="1Gi").zone("z2").taint("t", "v", "NoExecute").obj_(),
]


@pytest.mark.parametrize(
    ("placed", "expect"),
    [
        pytest.param([(make_pod("p").req(cpu="1"), "a")], None, id="exact-fit-ok"),
        pytest.param([(make_pod("p").req(cpu="1001m"), "a")], "cpu requested", id="cpu"),
        pytest.param([(make_pod(f"p{i}"), "a") for i in range(3)], "pods requested", id="pods"),
        pytest.param([(make_pod("p").init_container({"memory": "2Gi"}), "a")], "memory", id="init"),
        pytest.param([(make_pod("p"), "b")], "untolerated", id="noexecute"),
        pytest.param(
            [(make_pod("p").toleration("t", "v", "NoExecute"), "b")], None, id="tolerated"
        ),
        pytest.param(
            [(make_pod("p").toleration("t", operator="Exists", effect=""), "b")],
            None,
            id="exists-any-effect",
        ),
        pytest.param(
            [(make_pod("p").node_selector(**{ZONE: "z2"}), "a")], "nodeSelector", id="selector"
        ),
        pytest.param(
            [(make_pod("p").required_affinity("gen", "Gt", "3"), "a")], "affinity", id="gt"
        ),
        pytest.param([(make_pod("p").required_affinity("gen", "Lt", "4"), "a")], None, id="lt"),
        pytest.param(
            [
                (make_pod("p").label("g", "x").pod_affinity("g", "In", ZONE, "x", anti=True), "a"),
                (make_pod("q").label("g", "x"), "a"),
            ],
            "anti-affinity",
            id="anti",
        ),
        pytest.param(
            [
                (make_pod("p").pod_affinity("g", "In", HOSTNAME, "y"), "a"),
                (make_pod("q").label("g", "y"), None),
            ],
            "required affinity",
            id="affinity-no-partner",
        ),
        pytest.param(
            [(make_pod("p").label("g", "y").pod_affinity("g", "In", HOSTNAME, "y"), "a")],
            None,
            id="affinity-self-match",
        ),
        pytest.param(
            [
                (
                    make_pod(f"p{i}")
                    .label("g", "s")
                    .spread(1, ZONE, selector={"matchLabels": {"g": "s"}}),
                    n,
                )
                for i, n in enumerate(["a", "a"])
            ],
            "spread",
            id="spread-skew",
        ),
        pytest.param(
            [
                (
                    make_pod(f"p{i}")
                    .label("g", "s")
                    .toleration("t", "v", "NoExecute")
                    .spread(1, ZONE, selector={"matchLabels": {"g": "s"}}, min_domains=3),
                    n,
                )
                for i, n in enumerate(["a", "b"])
            ],
            None,
            id="spread-min-domains-ok",
        ),
    ],
)
def test_violations(placed: list[tuple[Any, str | None]], expect: str | None) -> None:
    """Each broken rule is reported, and legal placements are not."""
    state = [Placed(_ns(builder.obj_()), node) for builder, node in placed]
    found = violations(NODES, state)
    if expect is None:
        assert found == []
    else:
        assert any(expect in line for line in found), found


def test_host_port_clash() -> None:
    """Two pods with the same host port on one node clash; a different protocol does not."""

    def with_port(name: str, protocol: str) -> JSON:
        pod = _ns(make_pod(name).obj_())
        pod["spec"]["containers"][0]["ports"] = [
            {"hostPort": 80, "containerPort": 80, "protocol": protocol}
        ]
        return pod

    assert (
        violations(NODES, [Placed(with_port("p", "TCP"), "a"), Placed(with_port("q", "UDP"), "a")])
        == []
    )
    assert violations(
        NODES, [Placed(with_port("p", "TCP"), "a"), Placed(with_port("q", "TCP"), "a")]
    )


def test_sidecar_host_port_clash() -> None:
    """A sidecar (restartable init container) holds its host port; a plain init container,
    which has exited, does not."""

    def with_port(name: str, *, init: bool = False, sidecar: bool = False) -> JSON:
        port = {"hostPort": 9000, "containerPort": 9000}
        builder = make_pod(name)
        if init:
            builder.init_container_ports(port, sidecar=sidecar)
        else:
            builder.container_ports(port)
        return _ns(builder.obj_())

    app = Placed(with_port("app"), "a")
    assert violations(NODES, [app, Placed(with_port("s", init=True, sidecar=True), "a")])
    assert violations(NODES, [app, Placed(with_port("i", init=True), "a")]) == []


def test_soft_quality() -> None:
    """Preferred weights count only when satisfied; PreferNoSchedule placements are counted."""
    nodes = [
        make_node("a").zone("z1").taint("s", effect="PreferNoSchedule").obj_(),
        make_node("b").zone("z2").obj_(),
    ]
    pod = _ns(make_pod("p").preferred_affinity(7, ZONE, "In", "z1").obj_())
    assert soft_quality(nodes, [Placed(pod, "a")]).preferred == 7
    assert soft_quality(nodes, [Placed(pod, "a")]).prefer_no_schedule == 1
    assert soft_quality(nodes, [Placed(pod, "b")]).preferred == 0


def test_quantity() -> None:
    assert quantity("100m") * 10 == 1
    assert quantity("1Gi") == 2**30
    assert quantity("2e3") == 2000


def test_scenarios_are_fixed() -> None:
    """Seeds give the same scenario every time, and names are unique within a scenario."""
    assert generated(3) == generated(3)
    for s in [*edge_cases(), generated(1), generated(2)]:
        names = [p["metadata"]["name"] for p in s.pods]
        assert len(names) == len(set(names)), s.id


@pytest.mark.parametrize("seed", FULL_SEEDS)
def test_generated_pods_fit_smallest_node(seed: int) -> None:
    """All generated pods but the too-big ones fit together on the smallest node, which keeps
    the outcome independent of scheduling order (scenarios.py)."""
    scenario = generated(seed)
    for resource in ("cpu", "memory"):
        smallest = min(quantity(n["status"]["allocatable"][resource]) for n in scenario.nodes)
        total = sum(
            (requests(p)[resource] for p in scenario.pods if requests(p)["cpu"] < 64),
            start=Decimal(0),
        )
        assert total <= smallest, resource
