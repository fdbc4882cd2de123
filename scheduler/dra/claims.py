"""ResourceClaims (resource.k8s.io/v1): what pods ask for, and which devices are taken.

`Claim` is what the allocator and DynamicResources read of one claim: its requests (each
`exactly` one alternative, or `firstAvailable` several), constraints, config, and status
(allocation, reservedFor). `ClaimStore` holds every claim the informer showed plus the
allocations Reserve made that the API does not show yet (upstream's in-flight allocations in
its assume cache): a device is in use while any claim's allocation, seen or pending, holds it
without admin access.

Pure: the app feeds it from its ResourceClaim informer (`apply`); DynamicResources assumes and
forgets pending allocations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

EXACT_COUNT = "ExactCount"
ALL = "All"
RESERVED_FOR_MAX = 256  # upstream's ResourceClaimReservedForMaxSize
# Marks the claim the scheduler created for a pod's DRA-backed extended resources.
EXTENDED_ANNOTATION = "resource.kubernetes.io/extended-resource-claim"
FINALIZER = "resource.kubernetes.io/delete-protection"


@dataclass(frozen=True, slots=True)
class DeviceAsk:
    """One way to satisfy a request: an `exactly` request or one `firstAvailable` entry.
    `name` is the request name, or "request/subrequest"."""

    name: str
    device_class: str
    selectors: tuple[str, ...] = ()  # CEL expressions ("" = a selector kind berth lacks)
    mode: str = EXACT_COUNT
    count: int = 1
    admin_access: bool = False
    tolerations: tuple[JSON, ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    name: str
    alternatives: tuple[DeviceAsk, ...]  # one for `exactly`, in order for `firstAvailable`
    subrequests: bool = False  # from firstAvailable
    problem: str = ""  # "unknown request type" when neither is set


@dataclass(frozen=True, slots=True)
class Constraint:
    requests: tuple[str, ...]  # () = all requests of the claim
    match_attribute: str  # "" = a constraint kind berth does not know


@dataclass(frozen=True, slots=True)
class Claim:
    namespace: str
    name: str
    uid: str
    resource_version: str
    requests: tuple[Request, ...]
    constraints: tuple[Constraint, ...]
    config: tuple[JSON, ...]
    allocation: JSON | None  # status.allocation
    reserved_for: tuple[JSON, ...]  # status.reservedFor
    deleting: bool
    owner_uid: str  # the controlling owner's uid ("" = none)
    finalizers: tuple[str, ...] = ()
    extended: bool = False  # made for its owner pod's extended resources (EXTENDED_ANNOTATION)
    raw: JSON = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def allocated_devices(self) -> set[str]:
        """The "driver/pool/device" ids its allocation holds exclusively (not admin access)."""
        return _held(self.allocation)

    def reserved_for_uid(self, uid: str) -> bool:
        return any(r.get("uid") == uid for r in self.reserved_for)

    @property
    def can_be_reserved(self) -> bool:
        """upstream's CanBeReserved: room left in reservedFor."""
        return len(self.reserved_for) < RESERVED_FOR_MAX

    @classmethod
    def compile(cls, obj: JSON) -> Claim:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        status = obj.get("status") or {}
        devices = spec.get("devices") or {}
        owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            requests=tuple(_request(r) for r in devices.get("requests") or []),
            constraints=tuple(
                Constraint(tuple(c.get("requests") or ()), str(c.get("matchAttribute") or ""))
                for c in devices.get("constraints") or []
            ),
            config=tuple(devices.get("config") or ()),
            allocation=status.get("allocation") or None,
            reserved_for=tuple(status.get("reservedFor") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
            owner_uid=str(owner.get("uid") or "") if owner else "",
            finalizers=tuple(meta.get("finalizers") or ()),
            extended=(meta.get("annotations") or {}).get(EXTENDED_ANNOTATION) == "true",
            raw=obj,
        )


class ClaimStore:
    """Every ResourceClaim by "namespace/name", and the devices taken."""

    def __init__(self) -> None:
        self.claims: dict[str, Claim] = {}
        self.pending: dict[str, JSON] = {}  # claim uid -> allocation made in Reserve
        # claim uid -> the resourceVersion PreBind's write got: the pending allocation is
        # dropped once the informer shows that version (or a later one).
        self._written: dict[str, int] = {}
        self._held: dict[str, set[str]] = {}  # claim uid -> device ids it holds
        self._holders: dict[str, set[str]] = {}  # device id -> claim uids holding it
        self._uid_key: dict[str, str] = {}
        self._extended: dict[str, str] = {}  # owner pod uid -> its extended-resource claim key

    def get(self, namespace: str, name: str) -> Claim | None:
        return self.claims.get(f"{namespace}/{name}")

    def extended_claim_of(self, pod_uid: str) -> Claim | None:
        """The claim created for this pod's DRA-backed extended resources (upstream's
        findExtendedResourceClaim), if one exists."""
        key = self._extended.get(pod_uid)
        return self.claims.get(key) if key is not None else None

    def apply(self, obj: JSON, *, deleted: bool) -> tuple[Claim | None, Claim]:
        """Record (or forget) one claim; returns (the version before, this one). An
        allocation the API now shows replaces the pending one Reserve made."""
        claim = Claim.compile(obj)
        old = self.claims.get(claim.key)
        if old is not None and old.extended:
            self._extended.pop(old.owner_uid, None)
        if claim.extended and claim.owner_uid and not deleted:
            self._extended[claim.owner_uid] = claim.key
        if deleted:
            self.claims.pop(claim.key, None)
            self.pending.pop(claim.uid, None)
            self._written.pop(claim.uid, None)
            self._uid_key.pop(claim.uid, None)
        else:
            self.claims[claim.key] = claim
            self._uid_key[claim.uid] = claim.key
            written = self._written.get(claim.uid)
            caught_up = written is not None and _version(claim.resource_version) >= written
            if claim.allocation is not None or caught_up:
                self.pending.pop(claim.uid, None)
                self._written.pop(claim.uid, None)
        if old is not None and old.uid != claim.uid:
            self._refresh(old.uid)
        self._refresh(claim.uid)
        return old, claim

    def in_use(self) -> set[str]:
        """Device ids held by some claim (allocated or pending), admin access aside."""
        return set(self._holders)

    def holders(self, device: str) -> set[str]:
        return self._holders.get(device, set())

    def pending_allocation(self, uid: str) -> JSON | None:
        return self.pending.get(uid)

    def assume(self, claim: Claim, allocation: JSON) -> None:
        """Reserve's allocation for `claim`, held until the API shows one (or `forget`)."""
        self.pending[claim.uid] = allocation
        self._uid_key.setdefault(claim.uid, claim.key)
        self._refresh(claim.uid)

    def written(self, uid: str, obj: JSON) -> None:
        """PreBind wrote the claim (`obj`, as the API answered): its pending allocation now
        lasts until the informer shows that version."""
        if uid in self.pending:
            version = (obj.get("metadata") or {}).get("resourceVersion")
            self._written[uid] = _version(str(version or ""))

    def forget(self, uid: str) -> None:
        """Unreserve: drop a pending allocation that was never written (a written one stays
        until the informer shows it, so its devices are not offered twice meanwhile)."""
        if uid in self._written:
            return
        if self.pending.pop(uid, None) is not None:
            self._refresh(uid)

    def _refresh(self, uid: str) -> None:
        for device in self._held.pop(uid, set()):
            holders = self._holders.get(device)
            if holders is not None:
                holders.discard(uid)
                if not holders:
                    del self._holders[device]
        key = self._uid_key.get(uid)
        claim = self.claims.get(key) if key else None
        held = _held(self.pending.get(uid))
        if claim is not None and claim.uid == uid:
            held |= claim.allocated_devices()
        if held:
            self._held[uid] = held
            for device in held:
                self._holders.setdefault(device, set()).add(uid)


def _version(text: str) -> int:
    """A resourceVersion as a number (etcd revisions; 0 when not numeric)."""
    return int(text) if text.isdigit() else 0


def _held(allocation: JSON | None) -> set[str]:
    if not allocation:
        return set()
    results: Iterable[JSON] = (allocation.get("devices") or {}).get("results") or ()
    return {
        f"{r.get('driver')}/{r.get('pool')}/{r.get('device')}"
        for r in results
        if not r.get("adminAccess")
    }


def _ask(name: str, raw: JSON) -> DeviceAsk:
    return DeviceAsk(
        name=name,
        device_class=str(raw.get("deviceClassName") or ""),
        selectors=tuple(
            str(((s or {}).get("cel") or {}).get("expression") or "")
            for s in raw.get("selectors") or []
        ),
        mode=str(raw.get("allocationMode") or EXACT_COUNT),
        count=int(raw.get("count") or 1),
        admin_access=bool(raw.get("adminAccess")),
        tolerations=tuple(raw.get("tolerations") or ()),
    )


def _request(raw: JSON) -> Request:
    name = str(raw.get("name") or "")
    if raw.get("exactly"):
        return Request(name, (_ask(name, raw["exactly"]),))
    if raw.get("firstAvailable"):
        subs = tuple(_ask(f"{name}/{s.get('name') or ''}", s) for s in raw["firstAvailable"])
        return Request(name, subs, subrequests=True)
    return Request(name, (), problem="unknown request type")
