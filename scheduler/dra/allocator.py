"""Structured allocation for one node (upstream's stable allocator, structured/internal/stable):
choose devices for every request of every claim, or say none can be had.

`allocate(claims, node, labels, pools, classes, in_use)` returns one `Allocation` per claim (in
order), None when the claims cannot all be satisfied on the node, and raises AllocationError
for what upstream reports as an error rather than a misfit (a selector that does not compile or
fails at run time, a class that is gone, `All` devices from a pool being updated).

The search is upstream's: claim after claim, request after request, device after device, with
backtracking; the first complete solution wins. A request's alternatives (firstAvailable) are
tried in order. A device is a candidate when no other claim holds it (admin access excepted,
which only may not take a device twice in one claim), its class's and the request's selectors
all hold, and every matchAttribute constraint stays satisfied. Two devices for one request
are tried in pool and device order only (a combination, not every permutation, as the order
inside one request changes nothing).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.device_classes import DeviceClass
from scheduler.dra.cel import CelRuntimeError, Selector, compile_selector
from scheduler.dra.claims import ALL, Claim, DeviceAsk
from scheduler.dra.slices import BINDING_CONDITIONS, Device, Pool
from scheduler.model import InvalidObject

JSON = dict[str, Any]

RESULTS_MAX = 32  # upstream's AllocationResultsMaxSize: devices per claim


class AllocationError(Exception):
    """Not a misfit on this node but a problem with a claim or class (upstream returns an
    error status: the pod backs off and is retried)."""


class NodeFailure(Exception):
    """This node cannot be used, for a reason of its own (upstream's
    ErrFailedAllocationOnNode: an invalid pool there); other nodes may still do."""


class AllocationTimeout(Exception):
    """The search ran past its deadline (upstream's filterTimeout)."""


class _TooMany(Exception):
    """The claim's results would pass RESULTS_MAX whichever devices are picked (upstream's
    errAllocationResultMaxSizeExceeded): the choices that led here are dropped up to the
    nearest request with another alternative, instead of trying other devices for the same
    count, which cannot help."""


@dataclass(frozen=True, slots=True)
class Allocation:
    """One claim's status.allocation, and the device ids it takes exclusively."""

    results: tuple[JSON, ...]
    config: tuple[JSON, ...]
    node_selector: JSON | None

    def to_json(self) -> JSON:
        out: JSON = {"devices": {"results": list(self.results)}}
        if self.config:
            out["devices"]["config"] = list(self.config)
        if self.node_selector is not None:
            out["nodeSelector"] = self.node_selector
        return out


@dataclass(slots=True)
class _Ask:
    """A DeviceAsk made ready: its class and compiled selectors; `all_devices` for All."""

    ask: DeviceAsk
    cls: DeviceClass
    selectors: tuple[tuple[Selector, str], ...]  # (compiled, "class X" or "claim ns/x")
    all_devices: list[Device] | None = None

    @property
    def count(self) -> int:
        return len(self.all_devices) if self.all_devices is not None else self.ask.count


@dataclass(slots=True)
class _MatchAttribute:
    requests: tuple[str, ...]
    attribute: str
    value: Any = None
    devices: int = 0

    def applies(self, ask: DeviceAsk) -> bool:
        base = ask.name.partition("/")[0]
        return not self.requests or base in self.requests or ask.name in self.requests


@dataclass(slots=True)
class _Search:
    claims: Sequence[Claim]
    asks: list[list[list[_Ask]]]  # claim -> request -> alternatives
    constraints: list[list[_MatchAttribute]]
    candidates: list[Device]
    in_use: set[str]
    deadline: float | None = None  # time.monotonic() past which the search gives up
    steps: int = 0
    taking: dict[str, set[int]] = field(default_factory=dict)  # device id -> claim indexes
    results: list[list[tuple[_Ask, Device]]] = field(default_factory=list)
    chosen: dict[tuple[int, int], int] = field(default_factory=dict)  # (claim, request) -> alt

    def claim(self, ci: int) -> bool:
        if ci == len(self.claims):
            return True
        try:
            return self.request(ci, 0)
        except _TooMany:
            return False  # as upstream: a later claim's overflow is a plain misfit

    def request(self, ci: int, ri: int) -> bool:
        if ri == len(self.asks[ci]):
            return self.claim(ci + 1)
        too_many = bool(self.asks[ci][ri])
        for ai, ask in enumerate(self.asks[ci][ri]):
            try:
                found = self.device(ci, ri, ask, 0, 0)
            except _TooMany:
                continue  # a later alternative may want fewer devices
            too_many = False
            if found:
                self.chosen[(ci, ri)] = ai
                return True
        if too_many:
            raise _TooMany
        return False

    def device(self, ci: int, ri: int, ask: _Ask, di: int, start: int) -> bool:
        if ask.all_devices is not None and not ask.all_devices:
            return False  # All needs at least one device
        if di >= ask.count:
            return self.request(ci, ri + 1)
        if ask.count - di > RESULTS_MAX - len(self.results[ci]):
            raise _TooMany
        if ask.all_devices is not None:
            # Every one of them, in order: one that is held or cannot be had fails the
            # request; one that breaks a constraint makes the claim unsatisfiable (upstream).
            device = ask.all_devices[di]
            if not self.available(ci, ask, device):
                return False
            if not self.take(ci, ask, device):
                raise AllocationError(
                    f"claim {self.claims[ci].key}, request {ask.ask.name}: cannot add device"
                    f" {device.id} because a claim constraint would not be satisfied"
                )
            return self.extend(ci, ri, ask, device, di, 0)
        self.steps += 1
        if self.deadline is not None and self.steps % 64 == 0 and time.monotonic() > self.deadline:
            raise AllocationTimeout
        if not self.enough_left(ci, ask, ask.count - di, start):
            return False
        for index in range(start, len(self.candidates)):
            device = self.candidates[index]
            if not self.available(ci, ask, device) or not selectable(ask, device, self.claims[ci]):
                continue
            if not self.take(ci, ask, device):
                continue
            if self.extend(ci, ri, ask, device, di, index + 1):
                return True
        return False

    def extend(self, ci: int, ri: int, ask: _Ask, device: Device, di: int, start: int) -> bool:
        """With `device` taken as the request's device #di, go on; give it back unless that
        leads to a solution (also when _TooMany unwinds the search)."""
        done = False
        try:
            done = self.device(ci, ri, ask, di + 1, start)
        finally:
            if not done:
                self.give_back(ci, ask, device)
        return done

    def enough_left(self, ci: int, ask: _Ask, needed: int, start: int) -> bool:
        """Are there still `needed` devices from `start` on that this request could take, as
        things stand (free, selected, and agreeing with every matchAttribute value already
        fixed)? Without this check a constraint no group of devices can meet makes the
        search try every subset of a group (2^20 for 21 of 40 devices in two groups)."""
        fixed = [c for c in self.constraints[ci] if c.devices and c.applies(ask.ask)]
        found = 0
        for device in itertools.islice(self.candidates, start, None):
            if not self.available(ci, ask, device) or not selectable(ask, device, self.claims[ci]):
                continue
            if any(device.attribute(c.attribute) != c.value for c in fixed):
                continue
            found += 1
            if found >= needed:
                return True
        return False

    def available(self, ci: int, ask: _Ask, device: Device) -> bool:
        if device.unsupported:
            return False
        if ask.ask.admin_access:
            return ci not in self.taking.get(device.id, ())
        return device.id not in self.in_use and device.id not in self.taking

    def take(self, ci: int, ask: _Ask, device: Device) -> bool:
        """Add the device if every constraint of the claim still holds."""
        touched: list[_MatchAttribute] = []
        for constraint in self.constraints[ci]:
            if not constraint.applies(ask.ask):
                continue
            value = device.attribute(constraint.attribute)
            if value is None or (constraint.devices and value != constraint.value):
                for c in touched:
                    _release(c)
                return False
            constraint.value = value
            constraint.devices += 1
            touched.append(constraint)
        self.taking.setdefault(device.id, set()).add(ci)
        self.results[ci].append((ask, device))
        return True

    def give_back(self, ci: int, ask: _Ask, device: Device) -> None:
        self.results[ci].pop()
        holders = self.taking[device.id]
        holders.discard(ci)
        if not holders:
            del self.taking[device.id]
        for constraint in self.constraints[ci]:
            if constraint.applies(ask.ask):
                _release(constraint)


def _release(constraint: _MatchAttribute) -> None:
    constraint.devices -= 1
    if not constraint.devices:
        constraint.value = None


def selectable(ask: _Ask, device: Device, claim: Claim) -> bool:
    """The class's and then the request's selectors all hold (each evaluated once per device)."""
    for selector, owner in ask.selectors:
        try:
            if not device.selected_by(selector):
                return False
        except (CelRuntimeError, InvalidObject) as err:
            index = _selector_index(ask, selector, owner)
            raise AllocationError(
                f"{owner}: selector #{index} on device {device.id}: CEL runtime error: {err}"
            ) from err
    return True


def _selector_index(ask: _Ask, selector: Selector, owner: str) -> int:
    same = [s for s, o in ask.selectors if o == owner]
    return same.index(selector) if selector in same else 0


def allocate(
    claims: Sequence[Claim],
    node: str,
    labels: Mapping[str, str],
    pools: Sequence[Pool],
    classes: Mapping[str, DeviceClass],
    in_use: set[str],
    deadline: float | None = None,
) -> list[Allocation] | None:
    """Allocate every claim on `node`, or None. Raises AllocationError (see module doc),
    NodeFailure (only this node is unusable) or, past `deadline` (time.monotonic()),
    AllocationTimeout."""
    candidates = [
        d for p in pools if not p.incomplete and not p.invalid for d in p.devices(node, labels)
    ]
    asks = [
        [
            [_prepare(claim, ask, classes, pools, node, labels) for ask in r.alternatives]
            for r in claim.requests
        ]
        for claim in claims
    ]
    constraints = []
    for claim in claims:
        mine = []
        for i, c in enumerate(claim.constraints):
            if not c.match_attribute:
                raise AllocationError(
                    f"claim {claim.key}, constraint #{i}: empty constraint"
                    " (unsupported constraint type?)"
                )
            mine.append(_MatchAttribute(c.requests, c.match_attribute))
        constraints.append(mine)
    _check_results_max(claims, asks)
    search = _Search(claims, asks, constraints, candidates, in_use, deadline)
    search.results = [[] for _ in claims]
    if not search.claim(0):
        if any(p.invalid for p in pools):
            raise NodeFailure("invalid resource pools were encountered")
        return None
    return [
        _allocation(claim, search.results[ci], asks[ci], search.chosen, ci, classes, node)
        for ci, claim in enumerate(claims)
    ]


def _check_results_max(claims: Sequence[Claim], asks: list[list[list[_Ask]]]) -> None:
    """upstream's check before searching: a claim whose requests need more than RESULTS_MAX
    devices, counting each firstAvailable request at its smallest alternative, is an error."""
    for claim, requests in zip(claims, asks, strict=True):
        total = 0
        for request, alternatives in zip(claim.requests, requests, strict=True):
            if not alternatives:
                continue
            least = min(a.count for a in alternatives)
            if least > RESULTS_MAX - total:
                raise AllocationError(
                    f"claim {claim.key}, request {request.name}: adding {least} devices exceeds"
                    f" the claim limit of {RESULTS_MAX}, with {total} already accounted for"
                )
            total += least


def _prepare(
    claim: Claim,
    ask: DeviceAsk,
    classes: Mapping[str, DeviceClass],
    pools: Sequence[Pool],
    node: str,
    labels: Mapping[str, str],
) -> _Ask:
    where = f"claim {claim.key}, request {ask.name}"
    if not ask.device_class:
        raise AllocationError(f"{where}: missing device class name (unsupported request type?)")
    cls = classes.get(ask.device_class)
    if cls is None:
        raise AllocationError(
            f"{where}: could not retrieve device class {ask.device_class}:"
            f' deviceclass.resource.k8s.io "{ask.device_class}" not found'
        )
    selectors = []
    for owner, expressions in (
        (f"class {cls.name}", cls.selectors),
        (f"claim {claim.key}", ask.selectors),
    ):
        for i, expression in enumerate(expressions):
            if not expression:
                raise AllocationError(
                    f"{where}, selector #{i}: CEL expression empty (unsupported selector type?)"
                )
            compiled = compile_selector(expression)
            if compiled.error:
                raise AllocationError(
                    f"{owner}: selector #{i}: CEL compile error: {compiled.error}"
                )
            selectors.append((compiled, owner))
    prepared = _Ask(ask, cls, tuple(selectors))
    if ask.mode == ALL:
        devices = []
        for pool in pools:
            if pool.incomplete:
                raise AllocationError(
                    f"{where}: asks for all devices, but resource pool {pool.id}"
                    " is currently being updated"
                )
            if pool.invalid:
                raise AllocationError(
                    f"{where}: asks for all devices, but resource pool {pool.id}"
                    " is currently invalid"
                )
            # A device with binding conditions is not selectable (as upstream with that
            # feature off); any other device berth cannot allocate still counts, so that All
            # fails rather than get fewer than all (upstream refuses a tainted one the same way).
            devices += [
                d
                for d in pool.devices(node, labels)
                if d.unsupported != BINDING_CONDITIONS and selectable(prepared, d, claim)
            ]
        prepared.all_devices = devices
    elif ask.mode != "ExactCount":
        raise AllocationError(f"{where}: unsupported count mode {ask.mode}")
    return prepared


def _allocation(
    claim: Claim,
    taken: list[tuple[_Ask, Device]],
    asks: list[list[_Ask]],
    chosen: Mapping[tuple[int, int], int],
    ci: int,
    classes: Mapping[str, DeviceClass],
    node: str,
) -> Allocation:
    results = []
    for ask, device in taken:
        result: JSON = {
            "request": ask.ask.name,
            "driver": device.driver,
            "pool": device.pool,
            "device": device.name,
        }
        if ask.ask.admin_access:
            result["adminAccess"] = True
        if ask.ask.tolerations:
            result["tolerations"] = list(ask.ask.tolerations)
        results.append(result)
    used = [asks_[chosen.get((ci, ri), 0)] for ri, asks_ in enumerate(asks) if asks_]
    return Allocation(tuple(results), _config(claim, used), _node_selector(taken, node))


def _config(claim: Claim, used: list[_Ask]) -> tuple[JSON, ...]:
    """The classes' config (FromClass, once per class, naming its requests), then the claim's
    own that applies to a chosen request (FromClaim); a list naming every request is dropped,
    as "all" (upstream's allocation result)."""
    config: list[JSON] = []
    by_class: dict[str, list[JSON]] = {}
    for ask in used:
        if ask.cls.name in by_class:
            for shared in by_class[ask.cls.name]:
                shared["requests"].append(ask.ask.name)
            continue
        entries = [
            {"source": "FromClass", "requests": [ask.ask.name], **_device_config(c)}
            for c in ask.cls.config
        ]
        by_class[ask.cls.name] = entries
        config += entries
    names = {a.ask.name for a in used} | {a.ask.name.partition("/")[0] for a in used}
    for c in claim.config:
        requests = list(c.get("requests") or [])
        if not requests or names & set(requests):
            own: JSON = {"source": "FromClaim", **_device_config(c)}
            if requests:
                own["requests"] = requests
            config.append(own)
    for entry in config:
        # A request counts as named by its own name or by its chosen alternative's.
        named = set(entry.get("requests") or ())
        if named and all(
            a.ask.name in named or a.ask.name.partition("/")[0] in named for a in used
        ):
            del entry["requests"]
    return tuple(config)


def _device_config(raw: JSON) -> JSON:
    return {k: v for k, v in raw.items() if k not in ("requests", "source")}


def _node_selector(taken: list[tuple[_Ask, Device]], node: str) -> JSON | None:
    """Where the allocation can be used (upstream's createNodeSelector): nowhere in
    particular when every device reaches all nodes, else this node. Devices offered through a
    node selector count as this node's (berth's simplification: narrower, never wider)."""
    if all(d.everywhere for _, d in taken):
        return None
    return {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        ]
    }
