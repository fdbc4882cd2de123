"""PrioritySort: higher priority first, then earlier arrival."""

from __future__ import annotations

import pytest

from plugins import priority_sort
from scheduler.handle import in_memory
from scheduler.model import compile_pod
from tests.builders import make_pod

PLUGIN = priority_sort.new({}, in_memory())


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param([("a", 0, 1.0), ("b", 10, 2.0)], ["b", "a"], id="priority-wins"),
        pytest.param([("a", 5, 2.0), ("b", 5, 1.0)], ["b", "a"], id="then-arrival"),
        pytest.param([("a", -5, 0.0), ("b", 0, 9.0)], ["b", "a"], id="negative-priority"),
        pytest.param(
            [("a", 1, 3.0), ("b", 2, 5.0), ("c", 2, 4.0), ("d", 1, 1.0)],
            ["c", "b", "d", "a"],
            id="mixed",
        ),
    ],
)
def test_sort_key(pods: list[tuple[str, int, float]], expected: list[str]) -> None:
    """Sorting by sort_key orders pods as upstream's Less."""
    keyed = [
        (PLUGIN.sort_key(compile_pod(make_pod(n).priority(p).obj_()), arrival), n)
        for n, p, arrival in pods
    ]
    assert [n for _, n in sorted(keyed)] == expected
