"""scheduler.nominator: pods nominated by preemption, per node (upstream's nominator)."""

from __future__ import annotations

from scheduler.model import PodInfo, compile_pod
from scheduler.nominator import Nominator
from tests.builders import make_pod


def pod(name: str, priority: int = 0, nominated: str = "") -> PodInfo:
    built = compile_pod(make_pod(name).priority(priority).obj_())
    built.nominated_node_name = nominated
    return built


def test_add_move_delete_and_pods_for_node() -> None:
    """A nomination replaces the pod's earlier one; "" or delete removes it."""
    nominator = Nominator()
    a, b = pod("a"), pod("b")
    nominator.add(a, "n1")
    nominator.add(b, "n1")
    nominator.add(a, "n2")
    assert ([p.name for p in nominator.pods_for_node("n1")], nominator.node_of("uid-a")) == (
        ["b"],
        "n2",
    )
    nominator.add(b, "")
    nominator.delete("uid-a")
    assert (len(nominator), nominator.pods_for_node("n1"), nominator.node_of("uid-a")) == (
        0,
        [],
        "",
    )


def test_update_keeps_the_nomination_with_the_new_version_or_takes_the_pods_own() -> None:
    nominator = Nominator()
    nominator.add(pod("a"), "n1")
    newer = pod("a", priority=5)
    nominator.update(newer)
    assert nominator.pods_for_node("n1") == [newer]
    nominator.update(pod("c", nominated="n3"))  # status.nominatedNodeName of a new pod
    assert nominator.node_of("uid-c") == "n3"


def test_counted_against_a_pod_by_row_and_lower_priority_on_a_node() -> None:
    """Pods of priority >= the incoming pod's count against it (never itself); nodes the
    table lacks are left out; lower-priority nominations on a node can be taken away."""
    nominator = Nominator()
    high, low, me, peer = pod("high", 10), pod("low", 0), pod("me", 5), pod("peer", 5)
    nominator.add(high, "n1")
    nominator.add(peer, "n1")
    nominator.add(low, "n1")
    nominator.add(me, "n1")
    nominator.add(pod("gone", 10), "missing")
    assert nominator.counted_against(me, {"n1": 3}) == {3: [high, peer]}
    assert [p.name for p in nominator.lower_priority_on("n1", 5)] == ["low"]
