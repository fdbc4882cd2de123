"""The volume objects the scheduler reads: PersistentVolumeClaims, PersistentVolumes,
StorageClasses, CSINodes, CSIDrivers and CSIStorageCapacities, compiled once per object version
and kept by name.

A pure store: the app feeds it from its informers (`apply(kind, event, obj)`), the volume
plugins read it through the framework handle. Nothing here talks to the API. VolumeBinding's
Reserve records here the PVs it chose and has not yet seen bound (`assume`), as upstream's
assume cache, so that two pods are never given the same PV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scheduler.model import (
    InvalidObject,
    LabelSelector,
    Requirement,
    SelectorTerm,
    label_selector,
    node_affinity_terms,
    parse_quantity,
)

JSON = dict[str, Any]

PVC = "PersistentVolumeClaim"
PV = "PersistentVolume"
STORAGE_CLASS = "StorageClass"
CSI_NODE = "CSINode"
CSI_DRIVER = "CSIDriver"
CSI_STORAGE_CAPACITY = "CSIStorageCapacity"

# Set by the PV controller once it has bound a claim (upstream's volume.AnnBindCompleted).
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
# Set by the scheduler on a claim to provision, naming the node (upstream's AnnSelectedNode).
SELECTED_NODE = "volume.kubernetes.io/selected-node"
# Set with a claimRef the scheduler (or the PV controller) wrote (AnnBoundByController).
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
# The class of a claim or volume before spec.storageClassName existed.
BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
IMMEDIATE = "Immediate"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


@dataclass(frozen=True, slots=True)
class Claim:
    """A PersistentVolumeClaim."""

    namespace: str
    name: str
    volume_name: str  # spec.volumeName: the PV it is (or is to be) bound to
    storage_class: str
    access_modes: frozenset[str]
    volume_mode: str  # Filesystem (default) | Block
    request: int  # spec.resources.requests.storage, bytes
    phase: str  # Pending | Bound | Lost
    deleting: bool
    bind_completed: bool
    selector: LabelSelector | None  # None = no spec.selector
    owners: frozenset[str] = frozenset()  # uids of controller ownerReferences
    uid: str = ""
    selected_node: str = ""  # the selected-node annotation: provisioning there is under way
    attributes_class: str = ""  # spec.volumeAttributesClassName

    @property
    def bound(self) -> bool:
        """Upstream counts a claim as bound when the PV controller marked the binding complete.
        berth also accepts status.phase Bound, which is what a control plane without a PV
        controller can set (and what `kubectl get pvc` shows)."""
        return bool(self.volume_name) and (self.bind_completed or self.phase == "Bound")


@dataclass(frozen=True, slots=True)
class Volume:
    """A PersistentVolume."""

    name: str
    storage_class: str
    capacity: int  # bytes
    access_modes: frozenset[str]
    volume_mode: str
    phase: str  # Available | Bound | Released | Failed | Pending
    deleting: bool
    claim_ref: tuple[str, str, str] | None  # (namespace, name, uid)
    labels: dict[str, str] = field(default_factory=dict)
    node_terms: tuple[SelectorTerm, ...] | None = None  # spec.nodeAffinity.required; None = any
    csi_driver: str = ""
    csi_handle: str = ""
    attributes_class: str = ""  # spec.volumeAttributesClassName

    def bound_to(self, claim: Claim) -> bool:
        """Upstream's IsVolumeBoundToClaim (uids are not compared: claims here carry none)."""
        ref = self.claim_ref
        return ref is not None and ref[0] == claim.namespace and ref[1] == claim.name


@dataclass(frozen=True, slots=True)
class StorageClass:
    name: str
    provisioner: str
    binding_mode: str | None  # None = not set (invalid since 1.x, upstream reports it)
    allowed_topologies: tuple[SelectorTerm, ...] = ()  # empty = everywhere


@dataclass(frozen=True, slots=True)
class CSIDriver:
    """A CSIDriver (its name is the driver's, which a StorageClass names as provisioner)."""

    name: str
    storage_capacity: bool  # spec.storageCapacity: the scheduler checks CSIStorageCapacity


@dataclass(frozen=True, slots=True)
class StorageCapacity:
    """A CSIStorageCapacity: what a CSI driver can still provision for one StorageClass on the
    nodes its nodeTopology selects (a missing selector selects none, as upstream's
    nodeHasAccess)."""

    namespace: str
    name: str
    storage_class: str
    node_topology: LabelSelector
    capacity: int | None  # bytes; None = not reported
    maximum_volume_size: int | None  # bytes; None = not reported

    @property
    def limit(self) -> int | None:
        """Upstream's volumeLimit: the largest volume that fits, maximumVolumeSize when the
        driver reports it (it is the more precise), else capacity."""
        if self.maximum_volume_size is not None:
            return self.maximum_volume_size
        return self.capacity


@dataclass
class VolumeStore:
    """Claims by (namespace, name), volumes and classes by name, CSI attach limits by node,
    CSIDrivers by name, CSIStorageCapacities by (namespace, name).
    `version` moves on every change (for caches that depend on the store)."""

    claims: dict[tuple[str, str], Claim] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    classes: dict[str, StorageClass] = field(default_factory=dict)
    # node name -> CSI driver -> spec.drivers[].allocatable.count (None = no limit reported)
    csi_limits: dict[str, dict[str, int | None]] = field(default_factory=dict)
    csi_drivers: dict[str, CSIDriver] = field(default_factory=dict)
    capacities: dict[tuple[str, str], StorageCapacity] = field(default_factory=dict)
    version: int = 0
    # Reserve's choices not yet seen in the watch: PV name -> the claim (namespace, name) it
    # is being bound to (upstream's assume cache), so the next pod does not take that PV.
    assumed: dict[str, tuple[str, str]] = field(default_factory=dict)
    # capacities by storage class, in (namespace, name) order; rebuilt after a change to them
    _capacities_by_class: dict[str, tuple[StorageCapacity, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # PV names by storage class (upstream lists only the claim's class's PVs)
    _volumes_by_class: dict[str, set[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def assume(self, pv: str, claim: Claim) -> None:
        self.assumed[pv] = (claim.namespace, claim.name)
        self.version += 1

    def forget(self, pv: str, claim: Claim) -> None:
        if self.assumed.get(pv) == (claim.namespace, claim.name):
            del self.assumed[pv]
            self.version += 1

    def taken(self, pv: Volume, claim: Claim) -> bool:
        """Is `pv` assumed for another claim than `claim`?"""
        holder = self.assumed.get(pv.name)
        return holder is not None and holder != (claim.namespace, claim.name)

    def claim(self, namespace: str, name: str) -> Claim | None:
        return self.claims.get((namespace, name))

    def volume(self, name: str) -> Volume | None:
        return self.volumes.get(name)

    def volumes_of_class(self, storage_class: str) -> list[Volume]:
        """The PVs of one storage class ("" = those without a class)."""
        names = self._volumes_by_class.get(storage_class, ())
        return [self.volumes[n] for n in names]

    def storage_class(self, name: str) -> StorageClass | None:
        return self.classes.get(name)

    def csi_driver(self, name: str) -> CSIDriver | None:
        return self.csi_drivers.get(name)

    def capacities_for(self, storage_class: str) -> tuple[StorageCapacity, ...]:
        """The CSIStorageCapacities of a class, by namespace and name. Upstream walks its
        lister in no set order and takes the first that fits; a fixed order makes the
        capacity berth scores with (when several fit one node) the same every time."""
        index = self._capacities_by_class
        if index is None:
            grouped: dict[str, list[StorageCapacity]] = {}
            for key in sorted(self.capacities):
                found = self.capacities[key]
                grouped.setdefault(found.storage_class, []).append(found)
            index = self._capacities_by_class = {k: tuple(v) for k, v in grouped.items()}
        return index.get(storage_class, ())

    def apply(self, kind: str, obj: JSON, deleted: bool = False) -> tuple[Any, Any]:
        """Add, replace or (deleted=True) forget one object of `kind`; returns its compiled
        (old, new) versions (None where there is none), for queueing hints. A malformed
        object raises InvalidObject and its previous version is dropped: better unknown
        than stale."""
        compilers = {
            PVC: compile_claim,
            PV: compile_volume,
            STORAGE_CLASS: compile_storage_class,
            CSI_NODE: compile_csi_limits,
            CSI_DRIVER: compile_csi_driver,
            CSI_STORAGE_CAPACITY: compile_storage_capacity,
        }
        if kind not in compilers:
            raise ValueError(f"unknown volume object kind {kind!r}")
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name", ""), meta.get("namespace", "")
        tables: dict[str, dict[Any, Any]] = {
            PVC: self.claims,
            PV: self.volumes,
            STORAGE_CLASS: self.classes,
            CSI_NODE: self.csi_limits,
            CSI_DRIVER: self.csi_drivers,
            CSI_STORAGE_CAPACITY: self.capacities,
        }
        table = tables[kind]
        key: Any = (namespace, name) if kind in (PVC, CSI_STORAGE_CAPACITY) else name
        self.version += 1
        if kind == CSI_STORAGE_CAPACITY:
            self._capacities_by_class = None
        old = table.pop(key, None)
        if isinstance(old, Volume):
            self._volumes_by_class.get(old.storage_class, set()).discard(name)
        if deleted:
            return old, None
        try:
            new = table[key] = compilers[kind](obj)
        except (ValueError, TypeError, AttributeError) as err:
            raise InvalidObject(f"{kind} {namespace}/{name}: {err}") from err
        if isinstance(new, Volume):
            self._volumes_by_class.setdefault(new.storage_class, set()).add(name)
        if isinstance(new, Volume) and new.claim_ref is not None:
            self.assumed.pop(name, None)  # the watch shows the binding: nothing to assume
        return old, new

    def class_of(self, claim: Claim) -> StorageClass | None:
        return self.classes.get(claim.storage_class) if claim.storage_class else None


# --- compilation -------------------------------------------------------------------------


def compile_claim(obj: JSON) -> Claim:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    selector = spec.get("selector")
    return Claim(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        volume_name=spec.get("volumeName") or "",
        # Upstream's GetPersistentVolumeClaimClass: the beta annotation wins over the field.
        storage_class=annotations.get(BETA_CLASS, spec.get("storageClassName") or ""),
        access_modes=frozenset(spec.get("accessModes") or ()),
        volume_mode=spec.get("volumeMode") or "Filesystem",
        request=_quantity(requests.get("storage"), "spec.resources.requests.storage"),
        phase=status.get("phase") or "Pending",
        deleting=bool(meta.get("deletionTimestamp")),
        bind_completed=BIND_COMPLETED in annotations,
        selector=None if selector is None else label_selector(selector, "spec.selector"),
        owners=frozenset(
            r.get("uid", "") for r in meta.get("ownerReferences") or () if r.get("controller")
        ),
        uid=meta.get("uid") or "",
        selected_node=annotations.get(SELECTED_NODE) or "",
        attributes_class=spec.get("volumeAttributesClassName") or "",
    )


def compile_volume(obj: JSON) -> Volume:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    ref = spec.get("claimRef")
    affinity = (spec.get("nodeAffinity") or {}).get("required")
    terms = None
    if affinity is not None:
        wrapped = {"requiredDuringSchedulingIgnoredDuringExecution": affinity}
        terms, _ = node_affinity_terms(wrapped, "spec.nodeAffinity")
    csi = spec.get("csi") or {}
    return Volume(
        name=meta.get("name", ""),
        storage_class=annotations.get(BETA_CLASS, spec.get("storageClassName") or ""),
        capacity=_quantity((spec.get("capacity") or {}).get("storage"), "spec.capacity.storage"),
        access_modes=frozenset(spec.get("accessModes") or ()),
        volume_mode=spec.get("volumeMode") or "Filesystem",
        phase=status.get("phase") or "Pending",
        deleting=bool(meta.get("deletionTimestamp")),
        claim_ref=(
            None
            if not ref
            else (ref.get("namespace") or "", ref.get("name") or "", ref.get("uid") or "")
        ),
        labels=dict(meta.get("labels") or {}),
        node_terms=terms,
        csi_driver=csi.get("driver") or "",
        csi_handle=csi.get("volumeHandle") or "",
        attributes_class=spec.get("volumeAttributesClassName") or "",
    )


def compile_storage_class(obj: JSON) -> StorageClass:
    terms = []
    for term in obj.get("allowedTopologies") or ():
        exprs = tuple(
            Requirement(e.get("key", ""), "In", tuple(e.get("values") or ()))
            for e in term.get("matchLabelExpressions") or ()
        )
        # Upstream's MatchTopologySelectorTerms skips a term without expressions.
        if exprs:
            terms.append(SelectorTerm(exprs))
    return StorageClass(
        name=(obj.get("metadata") or {}).get("name", ""),
        provisioner=obj.get("provisioner") or "",
        binding_mode=obj.get("volumeBindingMode"),
        allowed_topologies=tuple(terms),
    )


def compile_csi_limits(obj: JSON) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for driver in (obj.get("spec") or {}).get("drivers") or ():
        count = (driver.get("allocatable") or {}).get("count")
        out[driver.get("name") or ""] = None if count is None else int(count)
    return out


def compile_csi_driver(obj: JSON) -> CSIDriver:
    spec = obj.get("spec") or {}
    return CSIDriver(
        name=(obj.get("metadata") or {}).get("name", ""),
        storage_capacity=spec.get("storageCapacity") is True,  # unset: false (upstream's default)
    )


def compile_storage_capacity(obj: JSON) -> StorageCapacity:
    """A CSIStorageCapacity (its fields are top-level: it has no spec)."""
    meta = obj.get("metadata") or {}
    capacity, maximum = obj.get("capacity"), obj.get("maximumVolumeSize")
    return StorageCapacity(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        storage_class=obj.get("storageClassName") or "",
        node_topology=label_selector(obj.get("nodeTopology"), "nodeTopology"),
        capacity=None if capacity is None else _quantity(capacity, "capacity"),
        maximum_volume_size=None if maximum is None else _quantity(maximum, "maximumVolumeSize"),
    )


def _quantity(value: Any, path: str) -> int:
    if value is None:
        return 0
    try:
        return parse_quantity(value)
    except InvalidObject as err:
        raise InvalidObject(f"{path}: {err}") from err
