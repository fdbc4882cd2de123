"""ResourceClaims (scheduler.dra.claims): a claim as berth reads it, and ClaimStore's devices
in use through the informer's events and Reserve's pending allocations (assume, written,
forget), as upstream's in-flight allocations in its assume cache."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.dra.claims import (
    ALL,
    EXACT_COUNT,
    RESERVED_FOR_MAX,
    Claim,
    ClaimStore,
    Constraint,
    DeviceAsk,
    Request,
)
from tests.unit.dra.builders import (
    CLASS_A,
    CLASS_B,
    DRIVER_A,
    POOL1,
    claim_json,
    first_available,
    match_attribute,
    opaque,
    request,
    result,
    sub_request,
)

JSON = dict[str, Any]
D = f"{DRIVER_A}/{POOL1}"


def alloc(*devices: str, admin: bool = False) -> JSON:
    """status.allocation holding `devices` of driver-a/pool-1."""
    return {"devices": {"results": [result("req", d, admin=admin) for d in devices]}}


def obj(name: str = "c", *, version: str = "1", uid: str | None = None, **kw: Any) -> JSON:
    return claim_json(
        name, request("req", CLASS_A), resource_version=version, uid=uid or f"uid-{name}", **kw
    )


def store_with(*objs: JSON) -> ClaimStore:
    store = ClaimStore()
    for o in objs:
        store.apply(o, deleted=False)
    return store


# --- one claim ---------------------------------------------------------------------------


def test_compile_requests() -> None:
    """`exactly` is one alternative; `firstAvailable` several, named "request/subrequest";
    neither is a problem berth reports."""
    compiled = Claim.compile(
        claim_json(
            "c",
            request("gpu", CLASS_A, 2, "true", admin=True, tolerations=[{"operator": "Exists"}]),
            request("all", CLASS_B, mode=ALL),
            first_available("alt", sub_request("big", CLASS_A, 4), sub_request("small", CLASS_B)),
            {"name": "future"},
        )
    )
    assert compiled.requests == (
        Request(
            "gpu",
            (
                DeviceAsk(
                    "gpu",
                    CLASS_A,
                    ("true",),
                    EXACT_COUNT,
                    2,
                    admin_access=True,
                    tolerations=({"operator": "Exists"},),
                ),
            ),
        ),
        Request("all", (DeviceAsk("all", CLASS_B, (), ALL, 1),)),
        Request(
            "alt",
            (DeviceAsk("alt/big", CLASS_A, count=4), DeviceAsk("alt/small", CLASS_B)),
            subrequests=True,
        ),
        Request("future", (), problem="unknown request type"),
    )


def test_compile_defaults() -> None:
    """Count 1 and mode ExactCount unless set; a selector of another kind is ""."""
    compiled = Claim.compile(
        claim_json("c", {"name": "r", "exactly": {"deviceClassName": CLASS_A, "selectors": [{}]}})
    )
    assert compiled.requests[0].alternatives == (DeviceAsk("r", CLASS_A, ("",), EXACT_COUNT, 1),)


def test_compile_metadata_and_status() -> None:
    """Identity, constraints, config, status and what the lifecycle needs."""
    raw = claim_json(
        "c",
        request("r", CLASS_A),
        constraints=[match_attribute(f"{DRIVER_A}/numa", "r"), {}],
        config=[opaque(DRIVER_A, "x")],
        uid="u1",
        namespace="ns",
        resource_version="42",
        allocation=alloc("d0"),
        deleting=True,
    )
    raw["metadata"]["ownerReferences"] = [
        {"uid": "not-controller"},
        {"uid": "pod-uid", "controller": True},
    ]
    raw["metadata"]["finalizers"] = ["resource.kubernetes.io/delete-protection"]
    raw["status"]["reservedFor"] = [{"resource": "pods", "name": "p", "uid": "pod-uid"}]
    compiled = Claim.compile(raw)
    assert (compiled.key, compiled.uid, compiled.resource_version) == ("ns/c", "u1", "42")
    assert compiled.constraints == (Constraint(("r",), f"{DRIVER_A}/numa"), Constraint((), ""))
    assert compiled.config == (opaque(DRIVER_A, "x"),)
    assert compiled.allocation == alloc("d0")
    assert compiled.deleting and compiled.owner_uid == "pod-uid"
    assert compiled.finalizers == ("resource.kubernetes.io/delete-protection",)
    assert compiled.reserved_for_uid("pod-uid") and not compiled.reserved_for_uid("other")
    assert compiled.raw is raw


def test_compile_empty() -> None:
    """A claim with nothing set: no requests, not allocated, no owner."""
    compiled = Claim.compile({"metadata": {"name": "c", "namespace": "ns"}})
    assert (compiled.requests, compiled.allocation, compiled.owner_uid) == ((), None, "")
    assert not compiled.deleting and compiled.can_be_reserved


def test_allocated_devices_exclude_admin_access() -> None:
    """Devices held with admin access are not taken from others."""
    allocation = {
        "devices": {
            "results": [result("r", "d0"), result("r", "d1", admin=True), result("q", "d2")]
        }
    }
    compiled = Claim.compile(obj(allocation=allocation))
    assert compiled.allocated_devices() == {f"{D}/d0", f"{D}/d2"}


def test_can_be_reserved() -> None:
    """upstream's CanBeReserved: reservedFor has room below its maximum."""
    raw = obj()
    raw["status"] = {"reservedFor": [{"uid": str(i)} for i in range(RESERVED_FOR_MAX - 1)]}
    assert Claim.compile(raw).can_be_reserved
    raw["status"]["reservedFor"].append({"uid": "last"})
    assert not Claim.compile(raw).can_be_reserved


# --- the store: informer events ---------------------------------------------------------


def test_apply_returns_old_and_new() -> None:
    store = ClaimStore()
    old, new = store.apply(obj(version="1"), deleted=False)
    assert old is None and new.resource_version == "1"
    old, new = store.apply(obj(version="2"), deleted=False)
    assert old is not None and (old.resource_version, new.resource_version) == ("1", "2")
    assert store.get("default", "c") is new
    assert store.get("default", "other") is None


def test_in_use_from_allocations() -> None:
    """Devices allocated to claims the informer shows are in use, admin access aside."""
    store = store_with(
        obj("a", allocation=alloc("d0")),
        obj("b", allocation=alloc("d1", admin=True)),
        obj("c"),
    )
    assert store.in_use() == {f"{D}/d0"}
    assert store.holders(f"{D}/d0") == {"uid-a"}
    assert store.holders(f"{D}/d1") == set()


def test_two_claims_hold_one_device() -> None:
    """Until one lets go, a device two claims show stays in use."""
    store = store_with(obj("a", allocation=alloc("d0")), obj("b", allocation=alloc("d0")))
    assert store.holders(f"{D}/d0") == {"uid-a", "uid-b"}
    store.apply(obj("a", version="2"), deleted=False)  # deallocated
    assert store.in_use() == {f"{D}/d0"}
    store.apply(obj("b"), deleted=True)
    assert store.in_use() == set()


def test_deallocated_claim_releases() -> None:
    store = store_with(obj(allocation=alloc("d0", "d1")))
    store.apply(obj(version="2", allocation=alloc("d1")), deleted=False)
    assert store.in_use() == {f"{D}/d1"}
    store.apply(obj(version="3"), deleted=False)
    assert store.in_use() == set()


def test_deleted_claim_releases() -> None:
    """A claim deleted releases its devices, allocated or pending."""
    store = store_with(obj("a", allocation=alloc("d0")), obj("b"))
    b = store.get("default", "b")
    assert b is not None
    store.assume(b, alloc("d1"))
    store.apply(obj("a"), deleted=True)
    store.apply(obj("b"), deleted=True)
    assert store.in_use() == set()
    assert store.pending_allocation("uid-b") is None
    assert store.get("default", "a") is None and store.claims == {}


def test_recreated_claim_with_new_uid() -> None:
    """A claim replaced under the same name by one with another uid: the old one's devices
    are released."""
    store = store_with(obj(uid="old", allocation=alloc("d0")))
    store.apply(obj(uid="new", allocation=alloc("d1")), deleted=False)
    assert store.in_use() == {f"{D}/d1"}
    assert store.holders(f"{D}/d1") == {"new"}


# --- the store: pending allocations ------------------------------------------------------


def assumed(allocation: JSON | None = None, **kw: Any) -> tuple[ClaimStore, Claim]:
    store = store_with(obj(**kw))
    claim = store.get("default", "c")
    assert claim is not None
    store.assume(claim, allocation or alloc("d0"))
    return store, claim


def test_assume_holds_devices() -> None:
    """Reserve's allocation holds its devices before the API shows it."""
    store, claim = assumed(alloc("d0", "d1"))
    assert store.in_use() == {f"{D}/d0", f"{D}/d1"}
    assert store.pending_allocation(claim.uid) == alloc("d0", "d1")


def test_assume_admin_access_holds_nothing() -> None:
    store, _ = assumed(alloc("d0", admin=True))
    assert store.in_use() == set()


def test_forget_unwritten() -> None:
    """Unreserve drops a pending allocation that was never written."""
    store, claim = assumed()
    store.forget(claim.uid)
    assert store.in_use() == set() and store.pending_allocation(claim.uid) is None
    store.forget(claim.uid)  # idempotent
    store.forget("never-assumed")
    assert store.in_use() == set()


def test_forget_written_keeps_until_informer_shows_it() -> None:
    """Once PreBind wrote the claim, Unreserve does not free its devices: they stay in use
    until the informer shows that version."""
    store, claim = assumed(version="5")
    store.written(claim.uid, {"metadata": {"resourceVersion": "7"}})
    store.forget(claim.uid)
    assert store.in_use() == {f"{D}/d0"}
    store.apply(obj(version="6"), deleted=False)  # an older version: still pending
    assert store.in_use() == {f"{D}/d0"}
    store.apply(obj(version="7"), deleted=False)  # the written version, not allocated
    assert store.in_use() == set() and store.pending_allocation(claim.uid) is None


def test_written_then_informer_shows_allocation() -> None:
    """The allocation the API shows replaces the pending one."""
    store, claim = assumed(version="5")
    store.written(claim.uid, {"metadata": {"resourceVersion": "7"}})
    store.apply(obj(version="7", allocation=alloc("d0")), deleted=False)
    assert store.pending_allocation(claim.uid) is None
    assert store.in_use() == {f"{D}/d0"}
    store.apply(obj(version="8"), deleted=False)  # later deallocated
    assert store.in_use() == set()


def test_allocation_shown_before_write_confirmed() -> None:
    """Any version with an allocation ends the pending one, written or not."""
    store, claim = assumed(alloc("d0"))
    store.apply(obj(version="2", allocation=alloc("d1")), deleted=False)
    assert store.pending_allocation(claim.uid) is None
    assert store.in_use() == {f"{D}/d1"}


def test_update_without_allocation_keeps_pending() -> None:
    """An unrelated update (not the written version) leaves Reserve's allocation in place."""
    store, claim = assumed(alloc("d0"))
    store.apply(obj(version="2"), deleted=False)
    assert store.pending_allocation(claim.uid) == alloc("d0")
    assert store.in_use() == {f"{D}/d0"}


def test_written_without_pending_is_ignored() -> None:
    """A write for a claim with nothing pending changes nothing (and a later forget is not
    held back by it)."""
    store = store_with(obj())
    store.written("uid-c", {"metadata": {"resourceVersion": "9"}})
    claim = store.get("default", "c")
    assert claim is not None
    store.assume(claim, alloc("d0"))
    store.forget(claim.uid)
    assert store.in_use() == set()


def test_non_numeric_resource_version() -> None:
    """A resourceVersion that is not a number counts as 0: the pending allocation lasts
    until the informer shows the allocation."""
    store, claim = assumed(version="5")
    store.written(claim.uid, {"metadata": {"resourceVersion": "abc"}})
    store.apply(obj(version="xyz"), deleted=False)
    assert store.pending_allocation(claim.uid) is None


def test_deleted_while_written() -> None:
    """A claim deleted after PreBind wrote it releases its pending devices."""
    store, claim = assumed(version="5")
    store.written(claim.uid, {"metadata": {"resourceVersion": "7"}})
    store.apply(obj(version="8"), deleted=True)
    assert store.in_use() == set()
    store.forget(claim.uid)
    assert store.in_use() == set()


def test_assume_claim_not_yet_seen() -> None:
    """An allocation assumed for a claim the informer has not shown yet holds its devices,
    and the claim's arrival keeps them held."""
    store = ClaimStore()
    claim = Claim.compile(obj())
    store.assume(claim, alloc("d0"))
    assert store.in_use() == {f"{D}/d0"}
    store.apply(obj(), deleted=False)
    assert store.in_use() == {f"{D}/d0"}


@pytest.mark.parametrize(
    ("shown", "pending", "expected"),
    [
        pytest.param(alloc("d0"), alloc("d0"), {"d0"}, id="same-device"),
        pytest.param(alloc("d0"), alloc("d1"), {"d0", "d1"}, id="both-held"),
    ],
)
def test_pending_and_shown_together(shown: JSON, pending: JSON, expected: set[str]) -> None:
    """A claim's devices are those of its shown allocation and of any pending one."""
    store = store_with(obj(allocation=shown))
    claim = store.get("default", "c")
    assert claim is not None
    store.assume(claim, pending)
    assert store.in_use() == {f"{D}/{d}" for d in expected}
