"""ResourceSlices (resource.k8s.io/v1): the devices drivers publish, grouped into pools.

A pool (driver, pool name) is published as `resourceSliceCount` slices of one `generation`;
slices of an older generation are obsolete. For one node the allocator sees, as upstream's
GatherPools: the slices that target it (spec.nodeName, spec.allNodes, spec.nodeSelector, or per
device with spec.perDeviceNodeSelection), pool by pool, each pool marked incomplete (not all of
its slices of the newest generation are here yet: nothing is allocated from it, and a request
for All devices fails) or invalid (a device name twice: likewise).

Not modelled yet (devices using them are never allocated, so nothing is overcommitted):
shared counters (spec.sharedCounters / device consumesCounters, partitionable devices),
devices with binding conditions, and device taints with effect NoSchedule or NoExecute.

SliceStore is pure: the app feeds it from its ResourceSlice informer (`apply`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.dra.cel import Selector, device_data
from scheduler.model import InvalidObject, SelectorTerm, node_selector_terms, term_matches

JSON = dict[str, Any]

# Device.unsupported for a device with binding conditions: unlike the other reasons, such a
# device is not even selectable (it does not count for allocationMode All).
BINDING_CONDITIONS = "has binding conditions"


@dataclass(slots=True)
class Device:
    """One device of a slice. `id` is upstream's DeviceID "driver/pool/device"."""

    driver: str
    pool: str
    name: str
    attributes: Mapping[str, Any]  # name -> typed value as the API has it ({"int": 3}, ...)
    capacity: Mapping[str, str]  # name -> quantity text
    allow_multiple: bool = False
    # Per-device node selection (slice spec.perDeviceNodeSelection).
    node_name: str = ""
    all_nodes: bool = False
    node_terms: tuple[SelectorTerm, ...] | None = None
    unsupported: str = ""  # why berth never allocates it ("" = it may)
    everywhere: bool = False  # offered to every node (allNodes, of the slice or the device)
    # Selector results for this device version, by expression (a device object is replaced,
    # never changed, when its slice changes, so the cache cannot go stale).
    matches: dict[str, bool] = field(default_factory=dict, repr=False)
    _data: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"{self.driver}/{self.pool}/{self.name}"

    def selected_by(self, selector: Selector) -> bool:
        """Evaluate (once) a compiled selector on this device; raises CelRuntimeError, or
        InvalidObject for a capacity that is not a quantity."""
        known = self.matches.get(selector.expression)
        if known is None:
            if self._data is None:
                self._data = device_data(
                    self.driver, self.attributes, self.capacity, self.allow_multiple
                )
            known = self.matches[selector.expression] = selector.matches(self._data)
        return known

    def attribute(self, qualified: str) -> Any:
        """The value of a fully qualified attribute ("domain/name"), as upstream's
        lookupAttribute: in the driver's own domain the bare name counts too. None if absent."""
        if qualified in self.attributes:
            return _plain(self.attributes[qualified])
        domain, _, name = qualified.partition("/")
        if domain == self.driver and name in self.attributes:
            return _plain(self.attributes[name])
        return None


@dataclass(frozen=True, slots=True)
class Slice:
    name: str
    driver: str
    pool: str
    generation: int
    slice_count: int
    node_name: str
    all_nodes: bool
    node_terms: tuple[SelectorTerm, ...] | None
    per_device: bool
    devices: tuple[Device, ...]

    def targets(self, node: str, labels: Mapping[str, str]) -> bool:
        """Does this slice offer devices to `node` (upstream's NodeMatches, per slice)?"""
        if self.per_device:
            return any(
                _node_matches(d.node_name, d.all_nodes, d.node_terms, node, labels)
                for d in self.devices
            )
        return _node_matches(self.node_name, self.all_nodes, self.node_terms, node, labels)

    @classmethod
    def compile(cls, obj: JSON) -> Slice:
        """Raises InvalidObject (a node selector berth cannot read)."""
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        driver = str(spec.get("driver") or "")
        pool = spec.get("pool") or {}
        pool_name = str(pool.get("name") or "")
        shared = bool(spec.get("sharedCounters"))
        per_device = bool(spec.get("perDeviceNodeSelection"))
        slice_all = bool(spec.get("allNodes"))
        devices = tuple(
            _device(driver, pool_name, raw, shared, slice_all and not per_device)
            for raw in spec.get("devices") or []
        )
        try:
            terms = node_selector_terms(spec.get("nodeSelector"))
        except ValueError as err:
            raise InvalidObject(f"spec.nodeSelector: {err}") from err
        return cls(
            name=str(meta.get("name") or ""),
            driver=driver,
            pool=pool_name,
            generation=int(pool.get("generation") or 0),
            slice_count=int(pool.get("resourceSliceCount") or 1),
            node_name=str(spec.get("nodeName") or ""),
            all_nodes=bool(spec.get("allNodes")),
            node_terms=terms,
            per_device=per_device,
            devices=devices,
        )


@dataclass(frozen=True, slots=True)
class Pool:
    """The slices of one pool, of its newest generation, that target one node."""

    driver: str
    name: str
    slices: tuple[Slice, ...]
    incomplete: bool = False
    invalid: bool = False

    @property
    def id(self) -> str:
        return f"{self.driver}/{self.name}"

    def devices(self, node: str, labels: Mapping[str, str]) -> Iterator[Device]:
        """Its devices usable on `node`, in slice and device order."""
        for s in self.slices:
            for d in s.devices:
                if not s.per_device or _node_matches(
                    d.node_name, d.all_nodes, d.node_terms, node, labels
                ):
                    yield d


class SliceStore:
    """All ResourceSlices, indexed by the node they name and by pool."""

    def __init__(self) -> None:
        self.slices: dict[str, Slice] = {}
        self._by_node: dict[str, set[str]] = {}  # spec.nodeName -> slice names
        self._elsewhere: set[str] = set()  # slices choosing nodes otherwise
        self._by_pool: dict[tuple[str, str], set[str]] = {}
        self.generation = 0  # bumps on every change

    def __bool__(self) -> bool:
        return bool(self.slices)

    def apply(self, obj: JSON, *, deleted: bool) -> Slice:
        """Record (or forget) one ResourceSlice; raises InvalidObject for one berth cannot
        read (the old version is forgotten then, so its devices are not offered)."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        self._forget(name)
        self.generation += 1
        compiled = Slice.compile(obj)
        if deleted:
            return compiled
        self.slices[name] = compiled
        if compiled.node_name:
            self._by_node.setdefault(compiled.node_name, set()).add(name)
        else:
            self._elsewhere.add(name)
        self._by_pool.setdefault((compiled.driver, compiled.pool), set()).add(name)
        return compiled

    def pools_for(self, node: str, labels: Mapping[str, str]) -> list[Pool]:
        """Upstream's GatherPools for one node, pools sorted by driver and name."""
        targeting: dict[tuple[str, str], list[Slice]] = {}
        names = self._by_node.get(node, set()) | self._elsewhere
        for name in names:
            s = self.slices[name]
            if s.targets(node, labels):
                targeting.setdefault((s.driver, s.pool), []).append(s)
        pools = []
        for key in sorted(targeting):
            everywhere = [self.slices[n] for n in self._by_pool.get(key, ())]
            newest = max(s.generation for s in everywhere)
            mine = sorted(
                (s for s in targeting[key] if s.generation == newest), key=lambda s: s.name
            )
            if not mine:
                continue  # only obsolete slices target the node
            current = [s for s in everywhere if s.generation == newest]
            incomplete = len(current) != current[0].slice_count
            # Device names are checked in the slices that reach the node only, as upstream
            # (which does not validate the slices it does not allocate from).
            names_seen: set[str] = set()
            invalid = False
            for s in mine:
                for d in s.devices:
                    invalid = invalid or d.name in names_seen
                    names_seen.add(d.name)
            pools.append(Pool(key[0], key[1], tuple(mine), incomplete, invalid))
        return pools

    def _forget(self, name: str) -> None:
        old = self.slices.pop(name, None)
        if old is None:
            return
        self._by_node.get(old.node_name, set()).discard(name)
        self._elsewhere.discard(name)
        members = self._by_pool.get((old.driver, old.pool))
        if members is not None:
            members.discard(name)
            if not members:
                del self._by_pool[(old.driver, old.pool)]


def _device(
    driver: str, pool: str, raw: JSON, shared_counters: bool, slice_all_nodes: bool
) -> Device:
    try:
        terms = node_selector_terms(raw.get("nodeSelector"))
    except ValueError as err:
        raise InvalidObject(f"device {raw.get('name')!r}: nodeSelector: {err}") from err
    unsupported = ""
    if raw.get("bindingConditions"):
        unsupported = BINDING_CONDITIONS
    elif raw.get("consumesCounters") or shared_counters:
        unsupported = "consumes shared counters (partitionable devices)"
    elif any(
        (t or {}).get("effect") in ("NoSchedule", "NoExecute") for t in raw.get("taints") or []
    ):
        unsupported = "is tainted"
    return Device(
        driver=driver,
        pool=pool,
        name=str(raw.get("name") or ""),
        attributes=dict(raw.get("attributes") or {}),
        capacity={
            k: str((v or {}).get("value", "0")) for k, v in (raw.get("capacity") or {}).items()
        },
        allow_multiple=bool(raw.get("allowMultipleAllocations")),
        node_name=str(raw.get("nodeName") or ""),
        all_nodes=bool(raw.get("allNodes")),
        node_terms=terms,
        unsupported=unsupported,
        everywhere=slice_all_nodes or bool(raw.get("allNodes")),
    )


def _node_matches(
    name: str,
    all_nodes: bool,
    terms: tuple[SelectorTerm, ...] | None,
    node: str,
    labels: Mapping[str, str],
) -> bool:
    if name:
        return name == node
    if all_nodes:
        return True
    if terms is not None:
        return any(term_matches(t, node, labels) for t in terms)
    return False


def _plain(value: Any) -> Any:
    """A typed attribute value ({"int": 3}) as a comparable plain value."""
    if isinstance(value, Mapping):
        for kind in ("string", "int", "bool", "version"):
            if kind in value:
                return (kind, value[kind])
    return value
