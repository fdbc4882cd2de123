"""NodePorts: the cases of upstream's node_ports_test.go (TestNodePorts), with its reason."""

from __future__ import annotations

from typing import Any, cast

import pytest

from plugins import node_ports
from scheduler.framework import Code, CycleState, Handle
from scheduler.model import compile_pod
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, unresolvable

JSON = dict[str, Any]
Port = str  # "PROTOCOL/hostIP/hostPort", as upstream's newPod helper writes them

PLUGIN = node_ports.new({}, cast(Handle, None))
CONFLICT = [node_ports.ERR_REASON]


def pod(name: str, *ports: Port, node: str = "") -> JSON:
    builder = make_pod(name)
    if node:
        builder.node(node)
    raw = builder.obj_()
    container_ports = []
    for spec in ports:
        protocol, ip, port = spec.split("/")
        entry: JSON = {"containerPort": int(port), "hostPort": int(port), "protocol": protocol}
        if ip:
            entry["hostIP"] = ip
        container_ports.append(entry)
    raw["spec"]["containers"][0]["ports"] = container_ports
    return raw


@pytest.mark.parametrize(
    ("wanted", "used", "expected"),
    [
        pytest.param([], [], [], id="nothing-running"),
        pytest.param(["UDP/127.0.0.1/8080"], ["UDP/127.0.0.1/9090"], [], id="other-port"),
        pytest.param(["UDP/127.0.0.1/8080"], ["UDP/127.0.0.1/8080"], CONFLICT, id="same-udp-port"),
        pytest.param(["TCP/127.0.0.1/8080"], ["TCP/127.0.0.1/8080"], CONFLICT, id="same-tcp-port"),
        pytest.param(["TCP/127.0.0.1/8080"], ["TCP/127.0.0.2/8080"], [], id="different-host-ip"),
        pytest.param(["UDP/127.0.0.1/8080"], ["TCP/127.0.0.1/8080"], [], id="different-protocol"),
        pytest.param(
            ["UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"],
            ["UDP/127.0.0.1/8080"],
            CONFLICT,
            id="second-udp-port-conflict",
        ),
        pytest.param(
            ["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"],
            ["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081"],
            CONFLICT,
            id="first-tcp-port-conflict",
        ),
        pytest.param(
            ["TCP/0.0.0.0/8001"], ["TCP/127.0.0.1/8001"], CONFLICT, id="wildcard-wanted-conflicts"
        ),
        pytest.param(
            ["TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"],
            ["TCP/127.0.0.1/8001"],
            CONFLICT,
            id="tcp-conflict-due-to-wildcard-host-ip",
        ),
        pytest.param(
            ["TCP/127.0.0.1/8001"], ["TCP/0.0.0.0/8001"], CONFLICT, id="wildcard-used-conflicts"
        ),
        pytest.param(
            ["UDP/0.0.0.0/8001"], ["TCP/0.0.0.0/8001"], [], id="wildcard-different-protocol"
        ),
        pytest.param(
            ["UDP/0.0.0.0/8001"],
            ["TCP/0.0.0.0/8001", "UDP/127.0.0.1/8001"],
            CONFLICT,
            id="udp-conflict-due-to-wildcard-host-ip",
        ),
        pytest.param(["TCP//8080"], ["TCP/10.1.1.1/8080"], CONFLICT, id="empty-host-ip-is-any"),
        pytest.param(["TCP/::/8080"], ["TCP/10.1.1.1/8080"], CONFLICT, id="ipv6-any-is-any"),
    ],
)
def test_filter(wanted: list[Port], used: list[Port], expected: list[str]) -> None:
    """A wanted (protocol, IP, port) collides with a used one, 0.0.0.0 matching any IP."""
    table = build_table([make_node("node1").obj_()], [pod("existing", *used, node="node1")])
    assert filter_reasons(PLUGIN, pod("incoming", *wanted), table) == {"node1": expected}


def test_pre_filter_skips_pods_without_host_ports() -> None:
    """Container ports without hostPort are not host ports; PreFilter returns Skip."""
    raw = make_pod("p").obj_()
    raw["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    status = PLUGIN.pre_filter(CycleState(), compile_pod(raw), build_table([]))
    assert status is not None and status.code is Code.SKIP


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
