"""The checker itself: it must flag each kind of broken placement (pure, no API server)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from scheduler.harness import fakedra, storage
from tests.builders import make_node, make_pod
from tests.conformance.checker import (
    Placed,
    quantity,
    requests,
    soft_quality,
    violations,
)
from tests.conformance.claim_checker import Claimed
from tests.conformance.claim_scenarios import claim_cases
from tests.conformance.scenarios import FULL_SEEDS, GROUP, HOSTNAME, ZONE, edge_cases, generated

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


# --- volume and device claims ----------------------------------------------------------------


@dataclass
class World:
    """Pods and what their claims got; each case below changes one thing of it."""

    pods: list[Placed]
    claimed: Claimed


def _volume_pod(name: str, node: str | None, claim: str = "c") -> Placed:
    pod = _ns(make_pod(name).obj_())
    pod["spec"]["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]
    return Placed(pod, node)


def _bound_claim(name: str, volume: str) -> JSON:
    body = storage.claim(name, "local")
    body["metadata"] |= {"namespace": "ns", "uid": f"uid-{name}"}
    body["spec"]["volumeName"] = volume
    body["status"] = {"phase": "Bound"}
    return body


def _volume(name: str, node: str, claim: str) -> JSON:
    return storage.local_volume(name, node, "local", claim_ref={"namespace": "ns", "name": claim})


def volume_world() -> World:
    """Pod p on node a uses claim c, Bound to the local PV pv-a on a."""
    claimed = Claimed(
        volume_claims=[_bound_claim("c", "pv-a")], volumes=[_volume("pv-a", "a", "c")]
    )
    return World([_volume_pod("p", "a")], claimed)


def _read_write_once_pod(world: World) -> None:
    world.claimed.volume_claims[0]["spec"]["accessModes"] = ["ReadWriteOncePod"]
    world.claimed.volumes[0]["spec"]["accessModes"] = ["ReadWriteOncePod"]
    world.pods.append(_volume_pod("q", "a"))


def _unbound(world: World) -> None:
    world.pods[0] = _volume_pod("p", None)
    world.claimed.volume_claims[0]["status"] = {"phase": "Pending"}
    del world.claimed.volume_claims[0]["spec"]["volumeName"]


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        pytest.param(lambda w: None, None, id="bound-ok"),
        pytest.param(_unbound, None, id="pending-pod-unbound-claim-ok"),
        pytest.param(
            lambda w: w.claimed.volume_claims[0].update(status={"phase": "Pending"}),
            "claim c is not Bound",
            id="claim-not-bound",
        ),
        pytest.param(
            lambda w: w.claimed.volume_claims.clear(), "claim c does not exist", id="no-claim"
        ),
        pytest.param(lambda w: w.claimed.volumes.clear(), "which does not exist", id="no-pv"),
        pytest.param(
            lambda w: w.claimed.volumes[0]["spec"].update(
                nodeAffinity=storage.local_volume("x", "b", "local")["spec"]["nodeAffinity"]
            ),
            "not reachable from node a",
            id="pv-on-another-node",
        ),
        pytest.param(
            lambda w: w.claimed.volume_claims.append(_bound_claim("d", "pv-a")),
            "PV pv-a is bound to 2 claims",
            id="pv-bound-twice",
        ),
        pytest.param(
            lambda w: w.claimed.volumes[0]["spec"]["claimRef"].update(name="d"),
            "claimRef names ns/d",
            id="claim-ref-elsewhere",
        ),
        pytest.param(
            lambda w: w.claimed.volumes[0]["spec"].update(storageClassName="other"),
            "of class 'other'",
            id="class",
        ),
        pytest.param(
            lambda w: w.claimed.volumes[0]["spec"].update(capacity={"storage": "512Mi"}),
            "holds 512Mi, the claim requests 1Gi",
            id="too-small",
        ),
        pytest.param(
            lambda w: w.claimed.volume_claims[0]["spec"].update(accessModes=["ReadWriteMany"]),
            "lacks access modes ['ReadWriteMany']",
            id="access-modes",
        ),
        pytest.param(_read_write_once_pod, "ReadWriteOncePod but used by p, q", id="rwop"),
    ],
)
def test_volume_violations(change: Callable[[World], None], expect: str | None) -> None:
    """Each broken volume rule is reported, and legal states are not."""
    world = volume_world()
    change(world)
    found = violations(NODES, world.pods, world.claimed)
    if expect is None:
        assert found == []
    else:
        assert any(expect in line for line in found), found


def _allocated(name: str, node: str, *devices: str, pod: str = "p", count: int = 1) -> JSON:
    """Claim `name`, allocated `devices` of `node`'s pool for its request "gpu" and reserved
    for `pod`."""
    body = fakedra.claim(name, count=count)
    body["metadata"] |= {"namespace": "ns", "uid": f"uid-{name}"}
    results = [
        {"request": "gpu", "driver": fakedra.DRIVER, "pool": node, "device": d} for d in devices
    ]
    node_selector = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    body["status"] = {
        "allocation": {
            "devices": {"results": results},
            "nodeSelector": {"nodeSelectorTerms": [node_selector]},
        },
        "reservedFor": [{"resource": "pods", "name": pod, "uid": f"uid-{pod}"}],
    }
    return body


def _claim_pod(name: str, node: str | None, claim: str = "gc") -> Placed:
    pod = _ns(make_pod(name).resource_claim("gpu", template="t").obj_())
    pod["status"] = {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": claim}]}
    return Placed(pod, node)


def device_world() -> World:
    """Pod p on node a; its claim gc (from a template) has gpu-0 of a's 2 GPUs; b has 2."""
    claimed = Claimed(
        resource_claims=[_allocated("gc", "a", "gpu-0")],
        resource_slices=[fakedra.gpu_slice("a", count=2), fakedra.gpu_slice("b", count=2)],
    )
    return World([_claim_pod("p", "a")], claimed)


def _second_claim(admin: bool) -> Callable[[World], None]:
    """Pod q's claim gq also holds a's gpu-0 (with admin access, or not)."""

    def change(world: World) -> None:
        other = _allocated("gq", "a", "gpu-0", pod="q")
        other["status"]["allocation"]["devices"]["results"][0]["adminAccess"] = admin
        world.claimed.resource_claims.append(other)
        world.pods.append(_claim_pod("q", "a", "gq"))

    return change


def _shared_device(world: World) -> None:
    """gpu-0 allows multiple allocations (consumable capacity), and gq has it too."""
    world.claimed.resource_slices[0]["spec"]["devices"][0]["allowMultipleAllocations"] = True
    _second_claim(admin=False)(world)


def _mixed_models(world: World) -> None:
    """gc asks for 2 GPUs of one model and got an a100 and an h100."""
    pair = fakedra.claim("gc", count=2, match_attribute="gpu.example.com/model")
    world.claimed.resource_claims[0]["spec"] = pair["spec"]
    world.claimed.resource_claims[0]["status"]["allocation"]["devices"]["results"].append(
        {"request": "gpu", "driver": fakedra.DRIVER, "pool": "a", "device": "gpu-1"}
    )
    world.claimed.resource_slices[0]["spec"]["devices"][1]["attributes"]["model"] = {
        "string": "h100"
    }


def _results(world: World) -> list[JSON]:
    results: list[JSON] = world.claimed.resource_claims[0]["status"]["allocation"]["devices"][
        "results"
    ]
    return results


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        pytest.param(lambda w: None, None, id="allocated-ok"),
        pytest.param(_second_claim(admin=True), None, id="admin-access-shares-ok"),
        pytest.param(_shared_device, None, id="multiple-allocations-ok"),
        pytest.param(
            lambda w: w.claimed.resource_slices[0]["spec"].update(nodeName=None, allNodes=True),
            None,
            id="all-nodes-slice-ok",
        ),
        pytest.param(
            lambda w: w.pods[0].pod.pop("status"), "the claim of gpu was never made", id="no-status"
        ),
        pytest.param(
            lambda w: w.claimed.resource_claims.clear(), "claim gc does not exist", id="no-claim"
        ),
        pytest.param(
            lambda w: w.claimed.resource_claims[0]["status"].pop("allocation"),
            "claim gc is not allocated",
            id="not-allocated",
        ),
        pytest.param(
            lambda w: w.claimed.resource_claims[0]["status"]["reservedFor"][0].update(uid="x"),
            "claim gc is not reserved for it",
            id="reserved-for-another",
        ),
        pytest.param(
            lambda w: w.claimed.resource_claims[0]["status"]["allocation"].update(
                nodeSelector=_allocated("x", "b")["status"]["allocation"]["nodeSelector"]
            ),
            "allocation does not admit node a",
            id="node-selector",
        ),
        pytest.param(
            lambda w: _results(w)[0].update(pool="b"), "gpu-0, not on a", id="device-on-b"
        ),
        pytest.param(
            lambda w: _results(w)[0].update(device="gpu-7"), "gpu-7, in no slice", id="no-device"
        ),
        pytest.param(_second_claim(admin=False), "a/gpu-0 is allocated 2 times", id="device-twice"),
        pytest.param(
            lambda w: w.claimed.resource_claims[0]["spec"]["devices"]["requests"][0][
                "exactly"
            ].update(count=2),
            "request gpu got 1 devices, not 2",
            id="count",
        ),
        pytest.param(_mixed_models, "matchAttribute gpu.example.com/model", id="match-attribute"),
    ],
)
def test_device_violations(change: Callable[[World], None], expect: str | None) -> None:
    """Each broken DRA rule is reported, and legal states are not."""
    world = device_world()
    change(world)
    found = violations(NODES, world.pods, world.claimed)
    if expect is None:
        assert found == []
    else:
        assert any(expect in line for line in found), found


def test_claim_scenarios_are_fixed() -> None:
    """Claim scenarios are the same every time; names are unique within one, and every pod is
    a replica (compared by class)."""
    assert claim_cases() == claim_cases()
    for s in claim_cases():
        names = [p["metadata"]["name"] for p in s.pods]
        assert len(names) == len(set(names)), s.id
        assert all(GROUP in p["metadata"]["labels"] for p in s.pods), s.id
