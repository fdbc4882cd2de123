"""scheduler.cache: the pod state machine of cache.py's docstring, in virtual time.

Initial --assume--> Assumed --add--> Added --remove--> Deleted
                       |  `--finish_binding--> Assumed, bound --add--> Added
                       `--forget--> Initial

Assumed pods never expire (upstream's cache runs with a zero TTL).
"""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.cache import Cache, CacheError
from scheduler.model import PodInfo, compile_node, compile_pod
from tests.builders import make_node, make_pod

TTL = 30.0


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_cache(*nodes: str, clock: FakeClock | None = None) -> Cache:
    cache = Cache()
    for name in nodes:
        cache.upsert_node(compile_node(make_node(name).capacity(cpu="4").obj_()))
    return cache


def pod(name: str, cpu: str = "1", node: str = "") -> PodInfo:
    builder = make_pod(name).req(cpu=cpu)
    if node:
        builder.node(node)
    return compile_pod(builder.obj_())


def cpu_used(cache: Cache) -> dict[str, int]:
    """Milli-CPU requested per known node."""
    column = cache.table.resource_index["cpu"]
    return {
        name: int(cache.table.requested[row, column]) for name, row in cache.table.row_of.items()
    }


def state(cache: Cache, uid: str) -> tuple[Any, ...]:
    return (cache.node_of(uid), cache.is_assumed(uid))


# --- assume, add, forget ---------------------------------------------------------------------


def test_assume_counts_at_once() -> None:
    """An assumed pod takes capacity on its node before any bind is confirmed."""
    cache = new_cache("n1", "n2")
    cache.assume(pod("a"), "n1")
    assert cpu_used(cache) == {"n1": 1000, "n2": 0}
    assert state(cache, "uid-a") == ("n1", True)
    assert cache.sizes() == {"nodes": 2, "pods": 1, "assumed_pods": 1}


def test_assume_then_add_confirms() -> None:
    """The bind seen in the watch turns Assumed into Added, counted once and never expiring."""
    clock = FakeClock()
    cache = new_cache("n1", clock=clock)
    cache.assume(pod("a"), "n1")
    cache.finish_binding(pod("a"))
    cache.add_pod(pod("a", node="n1"))
    assert (cpu_used(cache), state(cache, "uid-a")) == ({"n1": 1000}, ("n1", False))
    assert cache.sizes() == {"nodes": 1, "pods": 1, "assumed_pods": 0}


def test_assume_then_add_on_another_node_moves_the_capacity() -> None:
    """If the watch shows the pod bound elsewhere, the capacity follows it."""
    cache = new_cache("n1", "n2")
    cache.assume(pod("a"), "n1")
    cache.add_pod(pod("a", node="n2"))
    assert (cpu_used(cache), state(cache, "uid-a")) == ({"n1": 0, "n2": 1000}, ("n2", False))


def test_assume_then_forget_returns_the_capacity() -> None:
    """A failed bind forgets the assumption: the pod is back in Initial."""
    cache = new_cache("n1")
    cache.assume(pod("a"), "n1")
    cache.forget(pod("a"))
    assert (cpu_used(cache), state(cache, "uid-a")) == ({"n1": 0}, (None, False))
    assert cache.sizes() == {"nodes": 1, "pods": 0, "assumed_pods": 0}
    cache.assume(pod("a"), "n1")  # and it may be assumed again
    assert cpu_used(cache) == {"n1": 1000}


def test_forget_unknown_pod_is_a_no_op() -> None:
    """Forgetting a pod the cache never had changes nothing (idempotent unreserve path)."""
    cache = new_cache("n1")
    cache.forget(pod("ghost"))
    assert cache.sizes() == {"nodes": 1, "pods": 0, "assumed_pods": 0}


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        pytest.param(
            lambda c: c.assume(pod("a"), "n1"),
            lambda c: c.assume(pod("a"), "n2"),
            "pod default/a is already in the cache on n1",
            id="assume-twice",
        ),
        pytest.param(
            lambda c: c.add_pod(pod("a", node="n1")),
            lambda c: c.assume(pod("a"), "n1"),
            "pod default/a is already in the cache on n1",
            id="assume-a-bound-pod",
        ),
        pytest.param(
            lambda c: c.add_pod(pod("a", node="n1")),
            lambda c: c.forget(pod("a")),
            "pod default/a was bound, not assumed; cannot forget it",
            id="forget-a-bound-pod",
        ),
    ],
)
def test_impossible_transitions_name_the_pod(setup: Any, action: Any, message: str) -> None:
    """Errors are CacheError with the pod's namespace/name (and node where it helps)."""
    cache = new_cache("n1", "n2")
    setup(cache)
    with pytest.raises(CacheError) as err:
        action(cache)
    assert str(err.value) == message


# --- no expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize("finished", [False, True], ids=["bind-in-flight", "bind-finished"])
def test_assumed_pods_never_expire(finished: bool) -> None:
    """An assumed pod keeps its capacity until the watch confirms or deletes it, however long
    the watch lags (upstream dropped the 30 s expiry: a lagging watch must not let the same
    capacity be handed out twice)."""
    cache = new_cache("n1")
    cache.assume(pod("a"), "n1")
    if finished:
        cache.finish_binding(pod("a"))
    assert not hasattr(cache, "cleanup_expired")
    assert (cpu_used(cache), state(cache, "uid-a")) == ({"n1": 1000}, ("n1", True))
    cache.remove_pod("uid-a")  # the watch shows it deleted
    assert (cpu_used(cache), state(cache, "uid-a")) == ({"n1": 0}, (None, False))


def test_finish_binding_ignores_bound_and_unknown_pods() -> None:
    """finish_binding only marks an assumed pod."""
    cache = new_cache("n1")
    cache.add_pod(pod("bound", node="n1"))
    cache.finish_binding(pod("bound"))
    cache.finish_binding(pod("ghost"))
    assert cpu_used(cache) == {"n1": 1000}
    assert state(cache, "uid-bound") == ("n1", False)


# --- nodes and removal -----------------------------------------------------------------------


def test_pods_on_unknown_nodes_wait_for_the_node() -> None:
    """A pod seen on a node the cache does not know yet counts once the node appears."""
    cache = new_cache("n1")
    cache.add_pod(pod("early", node="later"))
    assert (cpu_used(cache), cache.node_of("uid-early")) == ({"n1": 0}, "later")
    cache.upsert_node(compile_node(make_node("later").capacity(cpu="4").obj_()))
    assert cpu_used(cache) == {"n1": 0, "later": 1000}


def test_assume_on_unknown_node_waits_too() -> None:
    """The same holds for an assumption (the node may be deleted and re-added)."""
    cache = new_cache()
    cache.assume(pod("a"), "later")
    cache.upsert_node(compile_node(make_node("later").obj_()))
    assert cpu_used(cache) == {"later": 1000}
    cache.forget(pod("a"))
    assert cpu_used(cache) == {"later": 0}


def test_removed_node_keeps_its_pods_until_it_returns() -> None:
    """Deleting a node keeps its pods; they count again if the node comes back."""
    cache = new_cache("n1", "n2")
    cache.add_pod(pod("a", node="n1"))
    cache.remove_node("n1")
    assert (cpu_used(cache), cache.node_of("uid-a")) == ({"n2": 0}, "n1")
    cache.upsert_node(compile_node(make_node("n1").capacity(cpu="4").obj_()))
    assert cpu_used(cache) == {"n2": 0, "n1": 1000}


def test_remove_pod_returns_capacity() -> None:
    """Removal (Added -> Deleted) frees the capacity and returns the pod; unknown -> None."""
    cache = new_cache("n1")
    cache.add_pod(pod("a", node="n1"))
    cache.assume(pod("b"), "n1")
    removed = cache.remove_pod("uid-a")
    assert removed is not None and removed.key == "default/a"
    assert cpu_used(cache) == {"n1": 1000}
    assert cache.remove_pod("uid-b") is not None  # an assumed pod deleted before its bind
    assert (cpu_used(cache), cache.remove_pod("uid-a")) == ({"n1": 0}, None)


def test_remove_pod_on_a_removed_node() -> None:
    """A pod whose node is gone can still be removed, and does not come back with the node."""
    cache = new_cache("n1")
    cache.add_pod(pod("a", node="n1"))
    cache.remove_node("n1")
    assert cache.remove_pod("uid-a") is not None
    cache.upsert_node(compile_node(make_node("n1").obj_()))
    assert cpu_used(cache) == {"n1": 0}


@pytest.mark.parametrize(
    ("new_cpu", "expected"),
    [
        pytest.param("1", 1000, id="same-requests"),
        pytest.param("3", 3000, id="requests-changed"),
    ],
)
def test_update_of_a_bound_pod(new_cpu: str, expected: int) -> None:
    """A new version of an Added pod replaces the old one in the node's accounting."""
    cache = new_cache("n1")
    cache.add_pod(pod("a", node="n1"))
    newer = pod("a", cpu=new_cpu, node="n1")
    cache.add_pod(newer)
    row = cache.table.row_of["n1"]
    assert (cpu_used(cache), cache.table.pods[row]["uid-a"]) == ({"n1": expected}, newer)


def test_bound_pod_is_the_counted_version_of_a_bound_pod_only() -> None:
    """bound_pod: the Added version a later update is compared with (a scale-down); nothing
    for an assumed pod (its bind seen in the watch is an add, not an update) or an unknown."""
    cache = new_cache("n1")
    cache.assume(pod("a"), "n1")
    assert cache.bound_pod("uid-a") is None
    confirmed = pod("a", node="n1")
    cache.add_pod(confirmed)
    assert cache.bound_pod("uid-a") is confirmed
    assert cache.bound_pod("uid-unknown") is None
