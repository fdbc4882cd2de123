"""NodePorts: the cases of upstream's node_ports_test.go (TestNodePorts, TestFits) and of
HostPortInfo's CheckConflict (kube-scheduler framework/types_test.go), with its reason."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import node_ports
from scheduler.framework import SKIP, CycleState, QueueingHint
from scheduler.handle import in_memory
from scheduler.model import compile_pod
from tests.builders import PodBuilder, make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, registered, run_hint, unresolvable

JSON = dict[str, Any]
Port = str  # "PROTOCOL/hostIP/hostPort", as upstream's newPod helper writes them

PLUGIN = node_ports.new({}, in_memory())
CONFLICT = [node_ports.ERR_REASON]


def ports(*specs: Port) -> list[JSON]:
    """Container ports from "PROTOCOL/hostIP/hostPort" (an empty field is left unset)."""
    out = []
    for spec in specs:
        protocol, ip, port = spec.split("/")
        entry: JSON = {"containerPort": int(port), "hostPort": int(port)}
        if protocol:
            entry["protocol"] = protocol
        if ip:
            entry["hostIP"] = ip
        out.append(entry)
    return out


def pod(name: str, *specs: Port, node: str = "") -> JSON:
    builder = make_pod(name).container_ports(*ports(*specs))
    if node:
        builder.node(node)
    return builder.obj_()


def init_pod(name: str, *specs: Port, sidecar: bool, node: str = "") -> JSON:
    """Upstream's `MakePod().InitContainerPort(sidecar, ...)`: the ports on an init container."""
    builder = make_pod(name).init_container_ports(*ports(*specs), sidecar=sidecar)
    if node:
        builder.node(node)
    return builder.obj_()


def on_node(*pods: JSON) -> JSON:
    return {"node1": [p | {"spec": p["spec"] | {"nodeName": "node1"}} for p in pods]}


@pytest.mark.parametrize(
    ("incoming", "existing", "expected"),
    [
        # Upstream's TestNodePorts (Filter) cases.
        pytest.param(
            pod("m1", "UDP/127.0.0.1/8080"), [pod("e", "UDP/127.0.0.1/9090")], [], id="other port"
        ),
        pytest.param(
            pod("m1", "UDP/127.0.0.1/8080"),
            [pod("e", "UDP/127.0.0.1/8080")],
            CONFLICT,
            id="same udp port",
        ),
        pytest.param(
            pod("m1", "TCP/127.0.0.1/8080"),
            [pod("e", "TCP/127.0.0.1/8080")],
            CONFLICT,
            id="same tcp port",
        ),
        pytest.param(
            pod("m1", "TCP/127.0.0.1/8080"),
            [pod("e", "TCP/127.0.0.2/8080")],
            [],
            id="different host ip",
        ),
        pytest.param(
            pod("m1", "UDP/127.0.0.1/8080"),
            [pod("e", "TCP/127.0.0.1/8080")],
            [],
            id="different protocol",
        ),
        pytest.param(
            pod("m1", "UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"),
            [pod("e", "UDP/127.0.0.1/8080")],
            CONFLICT,
            id="second udp port conflict",
        ),
        pytest.param(
            pod("m1", "TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"),
            [pod("e", "TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081")],
            CONFLICT,
            id="first tcp port conflict",
        ),
        pytest.param(
            pod("m1", "TCP/0.0.0.0/8001"),
            [pod("e", "TCP/127.0.0.1/8001")],
            CONFLICT,
            id="first tcp port conflict due to 0.0.0.0 hostIP",
        ),
        pytest.param(
            pod("m1", "TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"),
            [pod("e", "TCP/127.0.0.1/8001")],
            CONFLICT,
            id="TCP hostPort conflict due to 0.0.0.0 hostIP",
        ),
        pytest.param(
            pod("m1", "TCP/127.0.0.1/8001"),
            [pod("e", "TCP/0.0.0.0/8001")],
            CONFLICT,
            id="second tcp port conflict to 0.0.0.0 hostIP",
        ),
        pytest.param(
            pod("m1", "UDP/127.0.0.1/8001"),
            [pod("e", "TCP/0.0.0.0/8001")],
            [],
            id="second different protocol",
        ),
        pytest.param(
            pod("m1", "UDP/127.0.0.1/8001"),
            [pod("e", "TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001")],
            CONFLICT,
            id="UDP hostPort conflict due to 0.0.0.0 hostIP",
        ),
        pytest.param(
            init_pod("m1", "TCP//8001", sidecar=True),
            [pod("e", "TCP/0.0.0.0/8001")],
            CONFLICT,
            id="TCP hostPort conflict from sidecar initContainer",
        ),
        # Upstream's TestFits cases.
        pytest.param(
            pod("p", "TCP/127.0.0.1/80"),
            [pod("e", "TCP/127.0.0.1/9090")],
            [],
            id="non-conflicting ports",
        ),
        pytest.param(
            pod(
                "p", "TCP/127.0.0.1/80", "TCP/127.0.1.1/80", "TCP/127.0.1.1/90", "TCP/127.0.1.1/100"
            ),
            [pod("e", "TCP/127.0.0.1/9090", "TCP/127.0.0.1/9191", "TCP/127.0.1.1/8080")],
            [],
            id="multiple non-conflicting ports",
        ),
        pytest.param(
            pod("m1", "TCP/127.0.0.1/80"),
            [pod("e", "UDP/127.0.0.1/80")],
            [],
            id="same ports on different protocols",
        ),
        pytest.param(
            pod("m1", "TCP/127.0.0.1/80"),
            [pod("e", "TCP/127.0.0.1/80")],
            CONFLICT,
            id="conflicting ports",
        ),
        pytest.param(
            pod(
                "p", "TCP/127.0.0.1/80", "TCP/127.0.1.1/80", "TCP/127.0.1.1/90", "TCP/127.0.1.1/100"
            ),
            [pod("e", "TCP/127.0.0.1/9090", "TCP/127.0.1.1/90", "TCP/127.0.1.1/8080")],
            CONFLICT,
            id="multiple ports, some conflicting",
        ),
        # HostPortInfo's CheckConflict cases (TestHostPortInfo_Check): an empty hostIP is
        # 0.0.0.0 and an empty protocol TCP.
        pytest.param(
            pod("p", "//81"),
            [pod("e", "TCP/127.0.0.1/80")],
            [],
            id="empty check should check 0.0.0.0 and TCP",
        ),
        pytest.param(
            pod("p", "//80"),
            [pod("e", "TCP/127.0.0.1/80")],
            CONFLICT,
            id="empty check should check 0.0.0.0 and TCP (conflicted)",
        ),
        pytest.param(
            pod("p", "TCP/0.0.0.0/80"),
            [pod("e", "TCP/127.0.0.1/80")],
            CONFLICT,
            id="0.0.0.0 should check all registered IPs",
        ),
        pytest.param(
            pod("p", "TCP/0.0.0.0/80"),
            [pod("e", "UDP/127.0.0.1/80")],
            [],
            id="0.0.0.0 with different protocol should be allowed",
        ),
        pytest.param(
            pod("p", "TCP/0.0.0.0/80"),
            [pod("e", "TCP/127.0.0.1/79", "TCP/127.0.0.1/81", "TCP/127.0.0.1/82")],
            [],
            id="0.0.0.0 with different port should be allowed",
        ),
        pytest.param(
            pod("p", "TCP/127.0.0.1/80"),
            [pod("e", "TCP/0.0.0.0/80")],
            CONFLICT,
            id="normal ip should check all registered 0.0.0.0",
        ),
        pytest.param(
            pod("p", "TCP/127.0.0.1/80"),
            [pod("e", "TCP/0.0.0.0/79", "UDP/0.0.0.0/80", "TCP/0.0.0.0/81", "TCP/0.0.0.0/82")],
            [],
            id="normal ip with different port/protocol should be allowed (0.0.0.0)",
        ),
        pytest.param(
            pod("p", "TCP/127.0.0.1/80"),
            [pod("e", "TCP/127.0.0.1/79", "UDP/127.0.0.1/80", "TCP/127.0.0.1/81")],
            [],
            id="normal ip with different port/protocol should be allowed",
        ),
        # berth: what follows from those rules for IPv6 and for the pods already on the node.
        pytest.param(
            pod("p", "TCP/::/8080"),
            [pod("e", "TCP/10.0.0.1/8080", "TCP/::/8081")],
            [],
            id="berth: :: is not a wildcard for the incoming pod",
        ),
        pytest.param(
            pod("p", "TCP/10.0.0.2/8081"),
            [pod("e", "TCP/10.0.0.1/8080", "TCP/::/8081")],
            [],
            id="berth: :: is not a wildcard for a pod on the node",
        ),
        pytest.param(
            pod("p", "TCP/::/8080"),
            [pod("e", "TCP/::/8080")],
            CONFLICT,
            id="berth: :: conflicts with itself",
        ),
        pytest.param(
            pod("p", "TCP/0.0.0.0/8080"),
            [pod("e", "TCP/::/8080")],
            CONFLICT,
            id="berth: 0.0.0.0 conflicts with ::",
        ),
        pytest.param(
            pod("p", "TCP/::/8080"),
            [pod("e", "TCP//8080")],
            CONFLICT,
            id="berth: :: conflicts with an empty hostIP",
        ),
        pytest.param(
            pod("p", "TCP//9000"),
            [init_pod("e", "TCP//9000", sidecar=True)],
            CONFLICT,
            id="berth: a sidecar's port on the node is taken",
        ),
        pytest.param(
            pod("p", "TCP//9000"),
            [init_pod("e", "TCP//9000", sidecar=False)],
            [],
            id="berth: an init container's port on the node is free again",
        ),
        pytest.param(
            pod("p", "/10.0.0.1/80"),
            [pod("e", "UDP/10.0.0.1/80")],
            [],
            id="berth: an empty protocol is TCP, not UDP",
        ),
    ],
)
def test_filter(incoming: JSON, existing: list[JSON], expected: list[str]) -> None:
    """A wanted (protocol, IP, port) collides with a used one, 0.0.0.0 matching any IP."""
    table = build_table([make_node("node1").obj_()], on_node(*existing)["node1"])
    assert filter_reasons(PLUGIN, incoming, table) == {"node1": expected}


@pytest.mark.parametrize(
    ("incoming", "skipped"),
    [
        pytest.param(make_pod("p").containers().obj_(), True, id="skip filter"),
        pytest.param(
            init_pod("m1", "TCP//8001", sidecar=False),
            True,
            id="non-sidecar initContainer using hostPort",
        ),
        pytest.param(
            make_pod("p").container_ports({"containerPort": 80}).obj_(),
            True,
            id="berth: a container port without hostPort",
        ),
        pytest.param(init_pod("m1", "TCP//8001", sidecar=True), False, id="berth: sidecar"),
    ],
)
def test_pre_filter(incoming: JSON, skipped: bool) -> None:
    """PreFilter returns Skip for pods that hold no host port while they run."""
    status = PLUGIN.pre_filter(CycleState(), compile_pod(incoming), build_table([]))
    assert (status == SKIP) is skipped
    if not skipped:
        assert status is None


def test_conflicts_only_on_the_nodes_that_use_the_port() -> None:
    """Each node is judged by its own pods, and the reason is resolvable (preemption helps)."""
    nodes = [make_node(n).obj_() for n in ("a", "b", "c")]
    existing = [pod("web-a", "TCP//80", node="a"), pod("dns-b", "UDP//53", node="b")]
    table = build_table(nodes, existing)
    incoming = pod("web", "TCP//80")
    assert filter_reasons(PLUGIN, incoming, table) == {"a": CONFLICT, "b": [], "c": []}
    assert unresolvable(PLUGIN, incoming, table) == {"a": False}


def test_host_ports_are_part_of_the_equivalence_class() -> None:
    """Pods that differ only in host ports are not interchangeable."""
    assert compile_pod(pod("x", "TCP//80")).class_key != compile_pod(pod("y", "TCP//81")).class_key


def test_ports_follow_pods_added_and_removed() -> None:
    """The per-row port index follows the table: an assumed pod takes its port at once, and
    a removed pod frees it."""
    table = build_table([make_node("a").obj_(), make_node("b").obj_()])
    incoming = pod("web", "TCP//80")
    assert filter_reasons(PLUGIN, incoming, table) == {"a": [], "b": []}
    placed = compile_pod(pod("placed", "TCP//80", node="a"))
    table.add_pod(table.row_of["a"], placed)
    assert filter_reasons(PLUGIN, incoming, table) == {"a": CONFLICT, "b": []}
    table.remove_pod(table.row_of["a"], placed)
    assert filter_reasons(PLUGIN, incoming, table) == {"a": [], "b": []}


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_scheduled_pods_spread_over_nodes_by_port(batching: bool) -> None:
    """Pods of one class asking for the same host port land on distinct nodes, batched or
    not (the port is row-local state), and the rest fail with NodePorts' reason."""
    from tests.unit.test_cycle import NAME, World

    world = World([make_node(f"n{i}").obj_() for i in range(4)], batching=batching)
    attempts = []
    for i in range(6):
        raw = pod(f"p{i}", "TCP//8080")
        raw["spec"]["schedulerName"] = NAME
        attempts.append(world.schedule(raw))
    placed = [a.node for a in attempts if a.node]
    assert sorted(placed) == ["n0", "n1", "n2", "n3"]
    failed = [a for a in attempts if not a.node]
    assert len(failed) == 2
    for attempt in failed:
        assert attempt.status is not None
        assert attempt.status.message.startswith(f"0/4 nodes are available: 4 {ERR}.")
    await world.scheduler.drain()


ERR = node_ports.ERR_REASON


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: AssignedPod/Delete with a hint (ports are immutable, so
    pod updates cannot help), Node/Add without one."""
    assert registered(PLUGIN) == [("AssignedPodDelete", True), ("NodeAdd", False)]


def host_port(builder: PodBuilder, port: int) -> PodBuilder:
    """Upstream's `HostPort(port)`: a container with that hostPort."""
    return builder.container_ports({"containerPort": port, "hostPort": port})


@pytest.mark.parametrize(
    ("deleted", "expected"),
    [
        # Upstream's Test_isSchedulableAfterAssignedPodDeleted (its case with an object of the
        # wrong type has no counterpart: berth's hints get compiled PodInfos).
        pytest.param(make_pod("other"), QueueingHint.SKIP, id="skip-queue-on-unscheduled"),
        pytest.param(
            make_pod("other").node("fake-node"), QueueingHint.SKIP, id="skip-queue-on-non-hostport"
        ),
        pytest.param(
            host_port(make_pod("other").node("fake-node"), 8081),
            QueueingHint.SKIP,
            id="skip-queue-on-unrelated-hostport",
        ),
        pytest.param(
            host_port(make_pod("other").node("fake-node"), 8080),
            QueueingHint.QUEUE,
            id="queue-on-released-hostport",
        ),
    ],
)
def test_is_schedulable_after_assigned_pod_deleted(
    deleted: PodBuilder, expected: QueueingHint
) -> None:
    """A deleted bound pod helps only if it held a host port the pod wants."""
    pod = host_port(make_pod("p"), 8080)
    assert run_hint(PLUGIN, "AssignedPodDelete", pod, deleted, None) is expected
