"""Why a pod's claims get no devices, node by node: what `berth explain` prints under
"Devices". Pure: the caller passes the claims, nodes, each node's pools, the classes and the
devices in use (the same inputs the allocator had).

For every node and every request of every unallocated claim it counts the node's devices and
sorts out those the request cannot have: held by another claim, not offered by berth
(`Device.unsupported`), or rejected by a selector (the first that fails, named "class X
selector #i" or "claim ns/c selector #i" with its expression). What is left are the devices
that match; fewer than the request wants is why that node failed. A matchAttribute constraint
that fewer matching devices meet than its requests want is named too (with 0 devices: it is
about the group, not one device).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.device_classes import DeviceClass
from scheduler.dra.cel import CelRuntimeError, compile_selector
from scheduler.dra.claims import ALL, Claim, DeviceAsk
from scheduler.dra.slices import Device, Pool
from scheduler.model import InvalidObject


@dataclass
class RequestView:
    """One request (or firstAvailable alternative) on one node."""

    node: str
    request: str  # "ns/claim/request"
    wanted: str  # a count, or "all"
    devices: int = 0
    matching: int = 0
    in_use: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> devices
    # The matching devices themselves, for the claim's constraints (not serialized).
    matched: list[Device] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "request": self.request,
            "wanted": self.wanted,
            "devices": self.devices,
            "matching": self.matching,
            "in_use": self.in_use,
            "rejected": dict(self.rejected),
        }


def diagnose(
    claims: Sequence[Claim],
    nodes: Sequence[tuple[str, Mapping[str, str]]],
    pools_for: Callable[[str, Mapping[str, str]], list[Pool]],
    classes: Mapping[str, DeviceClass],
    in_use: set[str],
    limit: int = 20,
) -> tuple[list[RequestView], int]:
    """The views of up to `limit` nodes that offer devices, the nodes with the most
    matching devices first (then the most devices, then by name); and how many nodes offer
    none."""
    per_node: list[tuple[int, int, str, list[RequestView]]] = []
    bare = 0
    for name, labels in nodes:
        pools = pools_for(name, labels)
        views = []
        for claim in claims:
            if claim.allocation is not None:
                continue
            mine = [
                (ask, _view(claim, ask, name, labels, pools, classes, in_use))
                for request in claim.requests
                for ask in request.alternatives
            ]
            _constraints(claim, mine)
            views += [view for _, view in mine]
        if not any(v.devices for v in views):
            bare += 1
            continue
        matching = sum(v.matching for v in views)
        per_node.append((-matching, -sum(v.devices for v in views), name, views))
    per_node.sort(key=lambda item: item[:3])
    return [v for *_, views in per_node[:limit] for v in views], bare


def _constraints(claim: Claim, views: list[tuple[DeviceAsk, RequestView]]) -> None:
    """A matchAttribute the matching devices cannot meet (fewer of them share a value than
    the requests it covers want) is named under the first request it covers."""
    for constraint in claim.constraints:
        if not constraint.match_attribute:
            continue
        covered = [
            (ask, view)
            for ask, view in views
            if not constraint.requests
            or ask.name in constraint.requests
            or ask.name.partition("/")[0] in constraint.requests
        ]
        if not covered or any(ask.mode == ALL for ask, _ in covered):
            continue
        wanted = sum(ask.count for ask, _ in covered)
        groups: dict[Any, set[str]] = {}
        for _, view in covered:
            for device in view.matched:
                value = device.attribute(constraint.match_attribute)
                if value is not None:
                    groups.setdefault(value, set()).add(device.id)
        best = max((len(ids) for ids in groups.values()), default=0)
        if best < wanted:
            reason = (
                f"matchAttribute {constraint.match_attribute}: at most {best} matching"
                f" device(s) share a value, {wanted} wanted"
            )
            covered[0][1].rejected[reason] = 0


def _view(
    claim: Claim,
    ask: DeviceAsk,
    node: str,
    labels: Mapping[str, str],
    pools: Sequence[Pool],
    classes: Mapping[str, DeviceClass],
    in_use: set[str],
) -> RequestView:
    view = RequestView(
        node, f"{claim.key}/{ask.name}", "all" if ask.mode == ALL else str(ask.count)
    )
    cls = classes.get(ask.device_class)
    for pool in pools:
        for device in pool.devices(node, labels):
            view.devices += 1
            reason = _rejection(claim, ask, cls, device, pool, in_use)
            if reason == "in use":
                view.in_use += 1
            elif reason:
                view.rejected[reason] = view.rejected.get(reason, 0) + 1
            else:
                view.matching += 1
                view.matched.append(device)
    return view


def _rejection(
    claim: Claim,
    ask: DeviceAsk,
    cls: DeviceClass | None,
    device: Device,
    pool: Pool,
    in_use: set[str],
) -> str:
    if cls is None:
        return f"device class {ask.device_class} does not exist"
    if pool.incomplete:
        return f"pool {pool.id} is being updated"
    if pool.invalid:
        return f"pool {pool.id} is invalid"
    if device.unsupported:
        return f"berth does not allocate a device that {device.unsupported}"
    if device.id in in_use and not ask.admin_access:
        return "in use"
    for owner, expressions in (
        (f"class {cls.name}", cls.selectors),
        (f"claim {claim.key}", ask.selectors),
    ):
        for i, expression in enumerate(expressions):
            selector = compile_selector(expression)
            label = f"{owner} selector #{i} ({expression})"
            if selector.error:
                return f"{label}: {selector.error}"
            try:
                if not device.selected_by(selector):
                    return label
            except (CelRuntimeError, InvalidObject) as err:
                return f"{label}: CEL runtime error: {err}"
    return ""
