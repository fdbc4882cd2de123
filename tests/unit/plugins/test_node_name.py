"""NodeName: a pod naming its node fits only that node (upstream's node_name_test.go)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from plugins import node_name
from scheduler.framework import Handle
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, unresolvable

PLUGIN = node_name.new({}, cast(Handle, None))
REASON = "node(s) didn't match the requested node name"


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        pytest.param(make_pod("p").obj_(), {"foo": [], "bar": []}, id="no-host-specified"),
        pytest.param(make_pod("p").node("foo").obj_(), {"foo": [], "bar": [REASON]}, id="match"),
        pytest.param(
            make_pod("p").node("baz").obj_(), {"foo": [REASON], "bar": [REASON]}, id="unknown-node"
        ),
    ],
)
def test_filter(incoming: dict[str, Any], expected: dict[str, list[str]]) -> None:
    """Only the named node passes; every other node gets upstream's reason."""
    table = build_table([make_node("foo").obj_(), make_node("bar").obj_()])
    assert filter_reasons(PLUGIN, incoming, table) == expected


def test_rejection_is_unresolvable() -> None:
    """Preemption cannot change a pod's nodeName."""
    table = build_table([make_node("foo").obj_(), make_node("bar").obj_()])
    assert unresolvable(PLUGIN, make_pod("p").node("foo").obj_(), table) == {"bar": True}
