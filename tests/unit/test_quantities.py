"""Quantities at the edge of int64 (issue 12, part 3): parsing caps at int64 as the
scheduler's arithmetic does, a huge request gets "Insufficient <resource>" and never a
traceback, and no node is overcommitted by wrap-around."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.model import INT64_MAX, compile_pod, parse_quantity
from tests.builders import make_node, make_pod
from tests.unit.test_cycle import World


@pytest.mark.parametrize(
    ("text", "milli", "expected"),
    [
        pytest.param("1e18", True, INT64_MAX, id="1e18-cpu-in-millicores-capped"),
        pytest.param("1e18", False, 10**18, id="1e18-bytes-fits"),
        pytest.param("100Ei", False, INT64_MAX, id="100Ei-capped"),
        pytest.param("9223372036854775807", False, INT64_MAX, id="int64-max"),
        pytest.param("9223372036854775808", False, INT64_MAX, id="int64-max-plus-one"),
        pytest.param("1e30", False, INT64_MAX, id="1e30"),
        pytest.param("4Ei", False, 4 * 2**60, id="4Ei-exact"),
        pytest.param("8Ei", False, INT64_MAX, id="8Ei-is-int64-max-plus-one-capped"),
    ],
)
def test_quantities_are_capped_at_int64(text: str, milli: bool, expected: int) -> None:
    assert parse_quantity(text, milli=milli) == expected


def _pod(name: str, **requests: str) -> dict[str, Any]:
    return make_pod(name).scheduler("berth").req(**requests).obj_()


async def test_a_huge_request_is_insufficient_not_an_error() -> None:
    world = World([make_node("n1").capacity(cpu="4", memory="8Gi").obj_()])
    attempt = world.schedule(_pod("huge", cpu="1e18"))
    assert attempt.status is not None
    assert attempt.status.message.startswith("0/1 nodes are available: 1 Insufficient cpu.")


async def test_a_node_with_int64_max_memory_is_not_overcommitted_by_wrap_around() -> None:
    """100Ei of memory is int64 max: 4Ei fits, then 9Ei and 200Ei do not (their sums would
    wrap negative if added in int64)."""
    world = World([make_node("n1").capacity(cpu="4", memory="100Ei").obj_()])
    placed = {
        name: world.schedule(_pod(name, memory=amount)).node
        for name, amount in (("a", "4Ei"), ("b", "9Ei"), ("c", "200Ei"))
    }
    assert placed == {"a": "n1", "b": "", "c": ""}
    await world.scheduler.drain()


AMOUNTS = st.sampled_from(
    ["0", "1", "500m", "4", "1Ki", "8Ei", "9Ei", "100Ei", "1e18", "9223372036854775807", "1e30"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=st.lists(st.tuples(AMOUNTS, AMOUNTS), min_size=1, max_size=3),
    pods=st.lists(st.tuples(AMOUNTS, AMOUNTS), min_size=1, max_size=8),
)
def test_edge_quantities_never_raise_or_overcommit(
    nodes: list[tuple[str, str]], pods: list[tuple[str, str]]
) -> None:
    """Any mix of edge quantities: every attempt ends placed or with a reason, and the pods
    placed on a node request (as capped integers) no more than it has."""
    asyncio.run(_edge_case(nodes, pods))


async def _edge_case(nodes: list[tuple[str, str]], pods: list[tuple[str, str]]) -> None:
    world = World(
        [
            make_node(f"n{i}").capacity(cpu=cpu, memory=memory, pods="110").obj_()
            for i, (cpu, memory) in enumerate(nodes)
        ]
    )
    on: dict[str, list[dict[str, int]]] = {}
    for i, (cpu, memory) in enumerate(pods):
        raw = _pod(f"p{i}", cpu=cpu, memory=memory)
        attempt = world.schedule(raw)
        assert attempt.status is None or "nodes are available" in attempt.status.message
        if attempt.node:
            on.setdefault(attempt.node, []).append(compile_pod(raw).requests)
    for i, (cpu, memory) in enumerate(nodes):
        placed = on.get(f"n{i}", [])
        assert sum(r.get("cpu", 0) for r in placed) <= parse_quantity(cpu, milli=True)
        assert sum(r.get("memory", 0) for r in placed) <= parse_quantity(memory)
    await world.scheduler.drain()


def test_pods_bound_by_others_saturate_the_node_instead_of_wrapping() -> None:
    """Two pods some other scheduler bound, each asking for int64 max CPU: the node's
    requested column stays at int64 max (full), it does not wrap negative (free again)."""
    from scheduler.cache import Cache
    from scheduler.model import compile_node

    cache = Cache()
    cache.upsert_node(compile_node(make_node("n1").capacity(cpu="4").obj_()))
    for name in ("a", "b"):
        cache.add_pod(compile_pod(make_pod(name).node("n1").req(cpu="1e30").obj_()))
    column = cache.table.resource_index["cpu"]
    assert int(cache.table.requested[0, column]) == INT64_MAX
