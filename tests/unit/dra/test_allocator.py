"""The structured allocator (scheduler.dra.allocator) against the cases of upstream's shared
allocator tests (structured/internal/allocatortesting, run for the stable allocator); case ids
are upstream's names. Each case allocates on node-1 (region-1) unless it says otherwise, over
slices gathered by a SliceStore, and compares the whole list of status.allocation objects.

Where berth deliberately differs from upstream the case says so: devices with taints,
binding conditions or shared counters are never allocated; an allocation from devices offered
through a node selector is pinned to the node (narrower than upstream's copy of the selector);
a pool whose newest generation does not reach the node is not allocated from at all."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from scheduler.dra.allocator import (
    RESULTS_MAX,
    AllocationError,
    AllocationTimeout,
    NodeFailure,
    _Search,
    allocate,
)
from tests.unit.dra.builders import (
    ALL_NODES,
    CLASS_A,
    CLASS_B,
    DRIVER_A,
    DRIVER_B,
    NODE1,
    NODE2,
    PER_DEVICE,
    POOL1,
    POOL2,
    POOL3,
    REGION1,
    REGION2,
    allocate_on,
    allocated,
    allocation,
    claim,
    device,
    device_class,
    devices,
    first_available,
    label_selector,
    local_selector,
    match_attribute,
    one_device_slice,
    opaque,
    request,
    result,
    slice_with_devices,
    store_of,
    sub_request,
)

JSON = dict[str, Any]

CLAIM0, CLAIM1 = "claim-0", "claim-1"
REQ0, REQ1, REQ2 = "req-0", "req-1", "req-2"
SUB0, SUB1 = "subReq-0", "subReq-1"
D0, D1, D2, D3 = "device-0", "device-1", "device-2", "device-3"

CLASSES = (device_class(CLASS_A, DRIVER_A), device_class(CLASS_B, DRIVER_B))
INT_ATTR = f"{DRIVER_A}/numa"
VERSION_ATTR = f"{DRIVER_A}/driverVersion"
STRING_ATTR = f"{DRIVER_A}/stringAttribute"
BOOL_ATTR = f"{DRIVER_A}/boolAttribute"
TAINT_NO_SCHEDULE = {"key": "taint-key", "value": "taint-value", "effect": "NoSchedule"}
TAINT_NO_EXECUTE = {"key": "taint-key", "value": "taint-value-2", "effect": "NoExecute"}
TAINT_NONE = {"key": "taint-key", "value": "taint-value", "effect": "None"}


def memory_at_least(size: str) -> str:
    return f'device.capacity["{DRIVER_A}"].memory.compareTo(quantity("{size}")) >= 0'


def typed(**values: Any) -> JSON:
    """Attributes from Python values: str -> string, bool -> bool, int -> int, and a tuple
    ("version", "1.0.0") -> version."""
    out: JSON = {}
    for name, value in values.items():
        if isinstance(value, tuple):
            out[name] = {value[0]: value[1]}
        elif isinstance(value, bool):
            out[name] = {"bool": value}
        elif isinstance(value, int):
            out[name] = {"int": value}
        else:
            out[name] = {"string": value}
    return out


def all_request(name: str, device_class_name: str = CLASS_A, *selectors: str, **kw: Any) -> JSON:
    return request(name, device_class_name, 1, *selectors, mode="All", **kw)


def two_devices(*, pool: str = POOL1, driver: str = DRIVER_A) -> JSON:
    return slice_with_devices("slice-1", NODE1, device(D1), device(D2), pool=pool, driver=driver)


def with_memory(name: str, size: str, **attributes: Any) -> JSON:
    return device(name, typed(**attributes), {"memory": size})


def numbered(request_name: str, count: int, start: int = 0) -> list[JSON]:
    return [result(request_name, f"device-{i}") for i in range(start, start + count)]


# One table row: (claims, slices, expected allocations or None); keyword extras in_use, node.
CASES = [
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(REQ0, D1))],
        {},
        id="simple",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            one_device_slice("slice-1", NODE1, driver=DRIVER_B),
            one_device_slice("slice-2", NODE2, pool=POOL2),
        ],
        [allocation(result(REQ0, D1, pool=POOL2), node=NODE2)],
        {"node": NODE2},
        id="other-node",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 1, memory_at_least("1Gi")),
                request(REQ1, CLASS_A, 1, memory_at_least("2Gi")),
            )
        ],
        [slice_with_devices("slice-1", NODE1, with_memory(D1, "1Gi"), with_memory(D2, "2Gi"))],
        [allocation(result(REQ0, D1), result(REQ1, D2))],
        {},
        id="small-and-large",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 1, memory_at_least("1Gi")),
                request(REQ1, CLASS_A, 1, memory_at_least("2Gi")),
            )
        ],
        # The large device comes first: the small request takes it, the large one then
        # fails, and the allocator must undo that choice.
        [slice_with_devices("slice-1", NODE1, with_memory(D2, "2Gi"), with_memory(D1, "1Gi"))],
        [allocation(result(REQ0, D1), result(REQ1, D2))],
        {},
        id="small-and-large-backtrack-requests",
    ),
    pytest.param(
        [
            claim(CLAIM0, request(REQ0, CLASS_A, 1, memory_at_least("1Gi"))),
            claim(CLAIM1, request(REQ1, CLASS_A, 1, memory_at_least("2Gi"))),
        ],
        [slice_with_devices("slice-1", NODE1, with_memory(D2, "2Gi"), with_memory(D1, "1Gi"))],
        [allocation(result(REQ0, D1)), allocation(result(REQ1, D2))],
        {},
        id="small-and-large-backtrack-claims",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2))],
        [
            one_device_slice("slice-1", NODE1),
            one_device_slice("slice-2", NODE1, pool=POOL2),
        ],
        [allocation(result(REQ0, D1), result(REQ0, D1, pool=POOL2))],
        {},
        id="devices-split-across-different-slices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1-old", NODE1, device(D1), count=2),
            # One slice of a newer generation makes the other obsolete, and the newer
            # generation is incomplete.
            slice_with_devices("slice-1-new", NODE1, device(D2), count=2, generation=2),
        ],
        None,
        {},
        id="obsolete-slice",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1-old", NODE1, device(D1), generation=1),
            slice_with_devices("slice-1-new", NODE1, device(D2), generation=2),
        ],
        [allocation(result(REQ0, D2))],
        {},
        id="obsolete-slice-newer-complete",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [],
        None,
        {},
        id="no-slices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A)), claim(CLAIM1, request(REQ1, CLASS_A))],
        [one_device_slice("slice-1", NODE1)],
        None,
        {},
        id="not-enough-suitable-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2))],
        [one_device_slice("slice-1", NODE1)],
        None,
        {},
        id="count-more-than-available",
    ),
    pytest.param(
        [],
        [one_device_slice("slice-1", NODE1)],
        [],
        {},
        id="no-claims-to-allocate",
    ),
    # --- allocationMode: All ---------------------------------------------------------------
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(REQ0, D1))],
        {},
        id="all-devices-single",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [
            one_device_slice("slice-1", NODE1),
            one_device_slice("slice-2", NODE1, pool=POOL2),
        ],
        [allocation(result(REQ0, D1), result(REQ0, D1, pool=POOL2))],
        {},
        id="all-devices-many",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [slice_with_devices("slice-1", NODE1, device(D1), device(D2), device("other"))],
        [allocation(result(REQ0, D1), result(REQ0, D2), result(REQ0, "other"))],
        {},
        id="all-devices-of-one-slice",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0), request(REQ1, CLASS_B))],
        [
            two_devices(),
            one_device_slice("slice-b", NODE1, driver=DRIVER_B),
        ],
        [allocation(result(REQ0, D1), result(REQ0, D2), result(REQ1, D1, driver=DRIVER_B))],
        {},
        id="all-devices-only-of-its-class",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0)), claim(CLAIM1, request(REQ0, CLASS_B))],
        [
            one_device_slice("slice-a", NODE1),
            one_device_slice("slice-b", NODE1, driver=DRIVER_B),
        ],
        [allocation(result(REQ0, D1)), allocation(result(REQ0, D1, driver=DRIVER_B))],
        {},
        id="all-devices-plus-another",
    ),
    pytest.param(
        [claim(CLAIM1, request(REQ0, CLASS_B)), claim(CLAIM0, all_request(REQ0))],
        [
            one_device_slice("slice-a", NODE1),
            one_device_slice("slice-b", NODE1, driver=DRIVER_B),
        ],
        [allocation(result(REQ0, D1, driver=DRIVER_B)), allocation(result(REQ0, D1))],
        {},
        id="all-devices-plus-another-reversed",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0)), claim(CLAIM1, request(REQ0, CLASS_B))],
        [two_devices(), one_device_slice("slice-b", NODE1, driver=DRIVER_B)],
        [
            allocation(result(REQ0, D1), result(REQ0, D2)),
            allocation(result(REQ0, D1, driver=DRIVER_B)),
        ],
        {},
        id="all-devices-many-plus-another",
    ),
    pytest.param(
        [claim(CLAIM1, request(REQ0, CLASS_B)), claim(CLAIM0, all_request(REQ0))],
        [two_devices(), one_device_slice("slice-b", NODE1, driver=DRIVER_B)],
        [
            allocation(result(REQ0, D1, driver=DRIVER_B)),
            allocation(result(REQ0, D1), result(REQ0, D2)),
        ],
        {},
        id="all-devices-many-plus-another-reversed",
    ),
    pytest.param(
        # One device, two claims both trying to allocate it.
        [claim(CLAIM1, request(REQ0, CLASS_A)), claim(CLAIM0, all_request(REQ0))],
        [one_device_slice("slice-1", NODE1)],
        None,
        {},
        id="all-devices-no-solution",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0)), claim(CLAIM1, request(REQ0, CLASS_A))],
        [one_device_slice("slice-1", NODE1)],
        None,
        {},
        id="all-devices-no-solution-reversed",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [slice_with_devices("slice-1", NODE1)],
        None,
        {},
        id="all-devices-slice-without-devices",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [],
        None,
        {},
        id="all-devices-no-slices",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0, CLASS_A, f'device.attributes["{DRIVER_A}"].x == 1'))],
        [slice_with_devices("slice-1", NODE1, device(D1, typed(x=2)))],
        None,
        {},
        id="all-devices-none-selected",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [two_devices()],
        None,
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}")},
        id="all-devices-some-allocated",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0, admin=True))],
        [two_devices()],
        [allocation(result(REQ0, D1, admin=True), result(REQ0, D2, admin=True))],
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}")},
        id="all-devices-some-allocated-admin-access",
    ),
    pytest.param(
        # The second request wants All, but the first already took one device for the claim.
        [claim(CLAIM0, request(REQ0, CLASS_A, admin=True), all_request(REQ1, admin=True))],
        [two_devices()],
        None,
        {},
        id="all-devices-some-allocating-admin-access",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2, admin=True))],
        [two_devices()],
        [allocation(result(REQ0, D1, admin=True), result(REQ0, D2, admin=True))],
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}")},
        id="count-devices-some-allocated-admin-access",
    ),
    pytest.param(
        [
            claim(CLAIM0, request(REQ0, CLASS_A, admin=True)),
            claim(CLAIM1, request(REQ0, CLASS_A, admin=True)),
        ],
        [two_devices()],
        [allocation(result(REQ0, D1, admin=True)), allocation(result(REQ0, D1, admin=True))],
        {},
        id="separate-claims-share-device-admin-access",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A)), claim(CLAIM1, request(REQ0, CLASS_A, admin=True))],
        [two_devices()],
        [allocation(result(REQ0, D1)), allocation(result(REQ0, D1, admin=True))],
        {},
        id="admin-access-claims-device-allocating-for-non-admin-access",
    ),
    pytest.param(
        # A device taken with admin access by one claim is still in use for the next one.
        [claim(CLAIM0, request(REQ0, CLASS_A, admin=True)), claim(CLAIM1, request(REQ0, CLASS_A))],
        [two_devices()],
        [allocation(result(REQ0, D1, admin=True)), allocation(result(REQ0, D2))],
        {},
        id="non-admin-access-after-admin-access",
    ),
    pytest.param(
        # Admin access may not take one device twice in one claim.
        [claim(CLAIM0, request(REQ0, CLASS_A, 2, admin=True))],
        [one_device_slice("slice-1", NODE1)],
        None,
        {},
        id="admin-access-not-twice-in-one-claim",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, admin=True), request(REQ1, CLASS_A, admin=True))],
        [two_devices()],
        [allocation(result(REQ0, D1, admin=True), result(REQ1, D2, admin=True))],
        {},
        id="admin-access-two-requests-two-devices",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0, sub_request(SUB0, CLASS_A, mode="All"), sub_request(SUB1, CLASS_B)
                ),
            )
        ],
        [
            slice_with_devices("slice-1", NODE1),
            one_device_slice("slice-2", NODE1, pool=POOL2, driver=DRIVER_B),
        ],
        [allocation(result(f"{REQ0}/{SUB1}", D1, pool=POOL2, driver=DRIVER_B))],
        {},
        id="all-devices-slice-without-devices-prioritized-list",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0, sub_request(SUB0, CLASS_A, mode="All"), sub_request(SUB1, CLASS_B)
                ),
            )
        ],
        [one_device_slice("slice-2", NODE1, pool=POOL2, driver=DRIVER_B)],
        [allocation(result(f"{REQ0}/{SUB1}", D1, pool=POOL2, driver=DRIVER_B))],
        {},
        id="all-devices-no-slices-prioritized-list",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0, sub_request(SUB0, CLASS_A, mode="All"), sub_request(SUB1, CLASS_B)
                ),
            )
        ],
        [two_devices(), one_device_slice("slice-2", NODE1, pool=POOL2, driver=DRIVER_B)],
        [allocation(result(f"{REQ0}/{SUB1}", D1, pool=POOL2, driver=DRIVER_B))],
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}")},
        id="all-devices-some-allocated-prioritized-list",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [
            slice_with_devices("slice-1", NODE1, device(D1), count=2),
            slice_with_devices("slice-2", NODE2, device(D2), count=2),
        ],
        [allocation(result(REQ0, D1))],
        {},
        id="allocation-mode-all-with-multi-host-resource-pool",
    ),
    # --- where devices are: node-local, network-attached, everywhere --------------------
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [one_device_slice("slice-1", label_selector("region", REGION1))],
        # berth: pinned to the node (upstream copies the slice's selector).
        [allocation(result(REQ0, D1))],
        {},
        id="network-attached-device",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [one_device_slice("slice-1", label_selector("region", REGION1))],
        None,
        {"node": NODE2},
        id="unsuccessful-allocation-network-attached-device",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 4))],
        [
            one_device_slice("slice-1", label_selector("region", REGION1), pool=POOL1),
            one_device_slice("slice-2", ALL_NODES, pool=POOL2),
            one_device_slice("slice-3", label_selector("planet", "earth"), pool=POOL3),
            one_device_slice("slice-4", local_selector(NODE1), pool="pool-4"),
        ],
        [
            allocation(
                result(REQ0, D1, pool=POOL1),
                result(REQ0, D1, pool=POOL2),
                result(REQ0, D1, pool=POOL3),
                result(REQ0, D1, pool="pool-4"),
            )
        ],
        {},
        id="many-network-attached-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2))],
        [
            one_device_slice("slice-1", label_selector("region", REGION1), pool=POOL1),
            one_device_slice("slice-2", NODE1, pool=POOL2),
        ],
        [allocation(result(REQ0, D1, pool=POOL1), result(REQ0, D1, pool=POOL2))],
        {},
        id="local-and-network-attached-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [one_device_slice("slice-1", ALL_NODES)],
        [allocation(result(REQ0, D1), node=None)],
        {},
        id="all-nodes-device-has-no-node-selector",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2))],
        [
            one_device_slice("slice-1", ALL_NODES, pool=POOL1),
            one_device_slice("slice-2", ALL_NODES, pool=POOL2),
        ],
        [allocation(result(REQ0, D1, pool=POOL1), result(REQ0, D1, pool=POOL2), node=None)],
        {"node": NODE2},
        id="all-nodes-devices-on-any-node",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2))],
        [
            one_device_slice("slice-1", ALL_NODES, pool=POOL1),
            one_device_slice("slice-2", NODE1, pool=POOL2),
        ],
        [allocation(result(REQ0, D1, pool=POOL1), result(REQ0, D1, pool=POOL2))],
        {},
        id="all-nodes-and-local-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2))],
        [
            slice_with_devices(
                "slice-1",
                PER_DEVICE,
                device(D0, nodeName=NODE2),
                device(D1, nodeName=NODE1),
                device(D2, allNodes=True),
                device(D3, nodeSelector=label_selector("region", REGION2)),
            )
        ],
        [allocation(result(REQ0, D1), result(REQ0, D2))],
        {},
        id="per-device-node-selection",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices(
                "slice-1", PER_DEVICE, device(D0, nodeName=NODE2), device(D2, allNodes=True)
            )
        ],
        [allocation(result(REQ0, D2), node=None)],
        {},
        id="per-device-node-selection-all-nodes",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        # No node selection at all: some future field berth does not know.
        [one_device_slice("slice-1", None)],
        None,
        {},
        id="slice-without-node-selection-ignored",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A)), claim(CLAIM0, request(REQ0, CLASS_B))],
        [two_devices(), one_device_slice("slice-b", NODE1, driver=DRIVER_B)],
        [allocation(result(REQ0, D1)), allocation(result(REQ0, D1, driver=DRIVER_B))],
        {},
        id="several-different-drivers",
    ),
    pytest.param(
        [
            claim(CLAIM0, request(REQ0, CLASS_A)),
            claim(CLAIM1, request(REQ0, CLASS_A), request(REQ1, CLASS_A)),
        ],
        [slice_with_devices("slice-1", NODE1, *devices(3))],
        [allocation(result(REQ0, D0)), allocation(result(REQ0, D1), result(REQ1, D2))],
        {},
        id="several-claims-one-node",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [one_device_slice("slice-1", NODE1)],
        None,
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}", f"{DRIVER_A}/{POOL1}/{D2}")},
        id="already-allocated-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [two_devices()],
        [allocation(result(REQ0, D2))],
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}")},
        id="in-use-device-skipped",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, admin=True))],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(REQ0, D1, admin=True))],
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}", f"{DRIVER_A}/{POOL1}/{D2}")},
        id="admin-access-enabled",
    ),
    # --- matchAttribute constraints ---------------------------------------------------------
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                request(REQ1, CLASS_A),
                constraints=[
                    match_attribute(INT_ATTR),
                    match_attribute(VERSION_ATTR),
                    match_attribute(STRING_ATTR),
                    match_attribute(BOOL_ATTR),
                ],
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                *(
                    device(
                        name,
                        typed(
                            driverVersion=("version", "1.0.0"),
                            numa=1,
                            stringAttribute="stringAttributeValue",
                            boolAttribute=True,
                        ),
                    )
                    for name in (D1, D2)
                ),
            )
        ],
        [allocation(result(REQ0, D1), result(REQ1, D2))],
        {},
        id="with-constraint",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 2),
                constraints=[match_attribute(f"{DRIVER_A}/model")],
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D0, typed(model="a100")),
                device(D1, typed(model="h100")),
                device(D2, typed(model="a100")),
            )
        ],
        [allocation(result(REQ0, D0), result(REQ0, D2))],
        {},
        id="with-constraint-same-model-skips-other",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 2),
                # The attribute named with its domain matches a fully qualified one too.
                constraints=[match_attribute("example.com/model")],
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D0, {"example.com/model": {"string": "a"}}),
                device(D1, {"example.com/model": {"string": "a"}}),
            )
        ],
        [allocation(result(REQ0, D0), result(REQ0, D1))],
        {},
        id="with-constraint-other-domain",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                constraints=[match_attribute(f"{DRIVER_A}/NonExistentAttribute")],
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        None,
        {},
        id="with-constraint-non-existent-attribute",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2), constraints=[match_attribute(INT_ATTR)])],
        [
            slice_with_devices(
                "slice-1", NODE1, device(D1, typed(numa=1)), device(D2, typed(numa=2))
            )
        ],
        None,
        {},
        id="with-constraint-not-matching-int-attribute",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2), constraints=[match_attribute(STRING_ATTR)])],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, typed(stringAttribute="stringAttributeValue")),
                device(D2, typed(stringAttribute="stringAttributeValue2")),
            )
        ],
        None,
        {},
        id="with-constraint-not-matching-string-attribute",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2), constraints=[match_attribute(BOOL_ATTR)])],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, typed(boolAttribute=True)),
                device(D2, typed(boolAttribute=False)),
            )
        ],
        None,
        {},
        id="with-constraint-not-matching-bool-attribute",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2), constraints=[match_attribute(VERSION_ATTR)])],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, typed(driverVersion=("version", "1.0.0"))),
                device(D2, typed(driverVersion=("version", "2.0.0"))),
            )
        ],
        None,
        {},
        id="with-constraint-not-matching-version-attribute",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 2), constraints=[match_attribute(INT_ATTR)])],
        # The same value, of different types, is not a match.
        [
            slice_with_devices(
                "slice-1", NODE1, device(D1, typed(numa=1)), device(D2, typed(numa="1"))
            )
        ],
        None,
        {},
        id="with-constraint-same-value-different-type",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                request(REQ1, CLASS_A),
                constraints=[match_attribute(VERSION_ATTR, REQ0)],
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, typed(driverVersion=("version", "1.0.0"))),
                device(D2, typed(driverVersion=("version", "2.0.0"))),
            )
        ],
        [allocation(result(REQ0, D1), result(REQ1, D2))],
        {},
        id="with-constraint-for-request",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                request(REQ1, CLASS_A),
                constraints=[match_attribute(VERSION_ATTR, REQ0, REQ1)],
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, typed(driverVersion=("version", "1.0.0"))),
                device(D2, typed(driverVersion=("version", "2.0.0"))),
            )
        ],
        None,
        {},
        id="with-constraint-for-both-requests-unsatisfiable",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                request(REQ1, CLASS_A),
                constraints=[
                    match_attribute(VERSION_ATTR, REQ0),
                    match_attribute(STRING_ATTR),
                ],
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                # Fails the second constraint: the allocator must backtrack.
                device(D1, typed(driverVersion=("version", "1.0.0"), stringAttribute="a")),
                device(D2, typed(driverVersion=("version", "2.0.0"), stringAttribute="b")),
                device(D3, typed(driverVersion=("version", "3.0.0"), stringAttribute="b")),
            )
        ],
        [allocation(result(REQ0, D2), result(REQ1, D3))],
        {},
        id="with-constraint-for-request-retry",
    ),
    pytest.param(
        [
            claim(CLAIM0, request(REQ0, CLASS_A), constraints=[match_attribute(INT_ATTR)]),
            claim(CLAIM1, request(REQ0, CLASS_A), constraints=[match_attribute(INT_ATTR)]),
        ],
        # Constraints are per claim: two claims may each get a different value.
        [
            slice_with_devices(
                "slice-1", NODE1, device(D1, typed(numa=1)), device(D2, typed(numa=2))
            )
        ],
        [allocation(result(REQ0, D1)), allocation(result(REQ0, D2))],
        {},
        id="with-constraint-per-claim",
    ),
    # --- device config --------------------------------------------------------------------
    pytest.param(
        [claim(CLAIM0, request(REQ0, "class-config-a"))],
        [one_device_slice("slice-1", NODE1)],
        [
            allocation(
                result(REQ0, D1),
                config=[{"source": "FromClass", **opaque(DRIVER_A, "classAttribute")}],
            )
        ],
        {},
        id="with-class-device-config",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, "class-config-a"),
                request(REQ1, "class-config-a"),
                request(REQ2, "class-config-b"),
            )
        ],
        [
            slice_with_devices("slice-1", NODE1, *devices(2)),
            one_device_slice("slice-2", NODE1, driver=DRIVER_B),
        ],
        [
            allocation(
                result(REQ0, D0),
                result(REQ1, D1),
                result(REQ2, D1, driver=DRIVER_B),
                config=[
                    {
                        "source": "FromClass",
                        "requests": [REQ0, REQ1],
                        **opaque(DRIVER_A, "classAttribute"),
                    },
                    {
                        "source": "FromClass",
                        "requests": [REQ2],
                        **opaque(DRIVER_B, "classAttribute-B"),
                    },
                ],
            )
        ],
        {},
        id="with-class-device-config-with-multiple-request-and-configs",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                request(REQ1, CLASS_A),
                request(REQ2, CLASS_A),
                config=[{"requests": [REQ0, REQ1], **opaque(DRIVER_A, "deviceAttribute")}],
            )
        ],
        [slice_with_devices("slice-1", NODE1, *devices(3))],
        [
            allocation(
                result(REQ0, D0),
                result(REQ1, D1),
                result(REQ2, D2),
                config=[
                    {
                        "source": "FromClaim",
                        "requests": [REQ0, REQ1],
                        **opaque(DRIVER_A, "deviceAttribute"),
                    }
                ],
            )
        ],
        {},
        id="with-claim-config-for-two-requests",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A), config=[opaque(DRIVER_A, "deviceAttribute")])],
        [one_device_slice("slice-1", NODE1)],
        [
            allocation(
                result(REQ0, D1),
                config=[{"source": "FromClaim", **opaque(DRIVER_A, "deviceAttribute")}],
            )
        ],
        {},
        id="claim-with-device-config",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, "class-config-a"),
                config=[opaque(DRIVER_A, "deviceAttribute")],
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        [
            allocation(
                result(REQ0, D1),
                config=[
                    {"source": "FromClass", **opaque(DRIVER_A, "classAttribute")},
                    {"source": "FromClaim", **opaque(DRIVER_A, "deviceAttribute")},
                ],
            )
        ],
        {},
        id="class-config-then-claim-config",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                config=[{"requests": ["other"], **opaque(DRIVER_A, "deviceAttribute")}],
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(REQ0, D1))],
        {},
        id="claim-config-for-another-request-dropped",
    ),
    # --- firstAvailable (prioritized list) -------------------------------------------------
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_B), sub_request(SUB1, CLASS_A)),
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(f"{REQ0}/{SUB1}", D1))],
        {},
        id="prioritized-list-first-unavailable",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_A), sub_request(SUB1, CLASS_A)),
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(f"{REQ0}/{SUB0}", D1))],
        {},
        id="prioritized-list-first-fitting-chosen",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_B, 2), sub_request(SUB1, CLASS_A, 2)),
            )
        ],
        [
            one_device_slice("slice-1", NODE1),
            one_device_slice("slice-2", NODE1, pool=POOL2, driver=DRIVER_B),
        ],
        None,
        {},
        id="prioritized-list-non-available",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_A), sub_request(SUB1, CLASS_B, 2)),
                config=[
                    {"requests": [f"{REQ0}/{SUB0}"], **opaque(DRIVER_A, "foo")},
                    {"requests": [f"{REQ0}/{SUB1}"], **opaque(DRIVER_B, "bar")},
                ],
            )
        ],
        [slice_with_devices("slice-1", NODE1, device(D1), device(D2), driver=DRIVER_B)],
        [
            allocation(
                result(f"{REQ0}/{SUB1}", D1, driver=DRIVER_B),
                result(f"{REQ0}/{SUB1}", D2, driver=DRIVER_B),
                config=[{"source": "FromClaim", **opaque(DRIVER_B, "bar")}],
            )
        ],
        {},
        id="prioritized-list-device-config",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0,
                    sub_request(SUB0, "class-config-a", 2),
                    sub_request(SUB1, "class-config-b", 2),
                ),
            )
        ],
        [
            slice_with_devices("slice-1", NODE1, device(D1), device(D2), driver=DRIVER_B),
            slice_with_devices("slice-2", NODE1, device(D3), pool=POOL2),
        ],
        [
            allocation(
                result(f"{REQ0}/{SUB1}", D1, driver=DRIVER_B),
                result(f"{REQ0}/{SUB1}", D2, driver=DRIVER_B),
                config=[{"source": "FromClass", **opaque(DRIVER_B, "classAttribute-B")}],
            )
        ],
        {},
        id="prioritized-list-class-config",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_A), sub_request(SUB1, CLASS_B)),
                request(REQ1, CLASS_A),
                config=[
                    {
                        "requests": [f"{REQ0}/{SUB0}", f"{REQ0}/{SUB1}"],
                        **opaque(DRIVER_A, "scoped"),
                    }
                ],
            )
        ],
        [slice_with_devices("slice-1", NODE1, *devices(2))],
        [
            allocation(
                result(f"{REQ0}/{SUB0}", D0),
                result(REQ1, D1),
                config=[
                    {
                        "source": "FromClaim",
                        "requests": [f"{REQ0}/{SUB0}", f"{REQ0}/{SUB1}"],
                        **opaque(DRIVER_A, "scoped"),
                    }
                ],
            )
        ],
        {},
        id="claim-config-scoped-to-subrequests-of-one-request",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_A), sub_request(SUB1, CLASS_B)),
                request(REQ1, CLASS_A),
                config=[{"requests": [f"{REQ0}/{SUB0}", REQ1], **opaque(DRIVER_A, "all")}],
            )
        ],
        [slice_with_devices("slice-1", NODE1, *devices(2))],
        [
            allocation(
                result(f"{REQ0}/{SUB0}", D0),
                result(REQ1, D1),
                config=[{"source": "FromClaim", **opaque(DRIVER_A, "all")}],
            )
        ],
        {},
        id="claim-config-covering-all-requests-is-cleared",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_A), sub_request(SUB1, CLASS_B)),
                request(REQ1, CLASS_A),
                # Names req-1 and a subrequest of req-0 that was not chosen: it applies to
                # req-1 only, so its list stays.
                config=[{"requests": [f"{REQ0}/{SUB1}", REQ1], **opaque(DRIVER_A, "partial")}],
            )
        ],
        [slice_with_devices("slice-1", NODE1, *devices(2))],
        [
            allocation(
                result(f"{REQ0}/{SUB0}", D0),
                result(REQ1, D1),
                config=[
                    {
                        "source": "FromClaim",
                        "requests": [f"{REQ0}/{SUB1}", REQ1],
                        **opaque(DRIVER_A, "partial"),
                    }
                ],
            )
        ],
        {},
        id="claim-config-naming-unchosen-subrequest-is-not-all",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 1, memory_at_least("1Gi")),
                first_available(
                    REQ1,
                    sub_request(SUB0, CLASS_A, 1, memory_at_least("4Gi")),
                    sub_request(SUB1, CLASS_A, 2, memory_at_least("2Gi")),
                ),
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                with_memory(D1, "2Gi"),
                with_memory(D2, "2Gi"),
                with_memory(D3, "1Gi"),
            )
        ],
        [allocation(result(REQ0, D3), result(f"{REQ1}/{SUB1}", D1), result(f"{REQ1}/{SUB1}", D2))],
        {},
        id="prioritized-list-subrequests-with-expressions",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 1, memory_at_least("8Gi")),
                first_available(
                    REQ1,
                    sub_request(SUB0, CLASS_A, 1, memory_at_least("2Gi")),
                    sub_request(SUB1, CLASS_A, 1, memory_at_least("1Gi")),
                ),
                constraints=[match_attribute(VERSION_ATTR, REQ0, REQ1)],
            )
        ],
        [
            slice_with_devices(
                "slice-1", NODE1, with_memory(D1, "8Gi", driverVersion=("version", "1.0.0"))
            ),
            slice_with_devices(
                "slice-2",
                NODE1,
                with_memory(D2, "2Gi", driverVersion=("version", "2.0.0")),
                with_memory(D3, "1Gi", driverVersion=("version", "1.0.0")),
                pool=POOL2,
            ),
        ],
        [allocation(result(REQ0, D1), result(f"{REQ1}/{SUB1}", D3, pool=POOL2))],
        {},
        id="prioritized-list-subrequests-with-constraints-ref-parent-request",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 1, memory_at_least("8Gi")),
                first_available(
                    REQ1,
                    sub_request(SUB0, CLASS_A, 1, memory_at_least("2Gi")),
                    sub_request(SUB1, CLASS_A, 1, memory_at_least("1Gi")),
                ),
                constraints=[match_attribute(VERSION_ATTR, REQ0, f"{REQ1}/{SUB0}")],
            )
        ],
        [
            slice_with_devices(
                "slice-1", NODE1, with_memory(D1, "8Gi", driverVersion=("version", "1.0.0"))
            ),
            slice_with_devices(
                "slice-2",
                NODE1,
                with_memory(D2, "2Gi", driverVersion=("version", "2.0.0")),
                pool=POOL2,
            ),
        ],
        [allocation(result(REQ0, D1), result(f"{REQ1}/{SUB1}", D2, pool=POOL2))],
        {},
        id="prioritized-list-subrequests-with-constraints-ref-sub-request",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0, sub_request(SUB0, CLASS_A, mode="All"), sub_request(SUB1, CLASS_A)
                ),
            )
        ],
        [two_devices()],
        [allocation(result(f"{REQ0}/{SUB1}", D2))],
        {"in_use": allocated(f"{DRIVER_A}/{POOL1}/{D1}")},
        id="prioritized-list-subrequests-with-allocation-mode-all",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                first_available(
                    REQ1, sub_request(SUB0, CLASS_A, mode="All"), sub_request(SUB1, CLASS_A)
                ),
            )
        ],
        [two_devices()],
        [allocation(result(REQ0, D1), result(f"{REQ1}/{SUB1}", D2))],
        {},
        id="prioritized-list-allocation-mode-all-multiple-requests",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ1, CLASS_A, 1, memory_at_least("8Gi")),
                first_available(
                    REQ0,
                    sub_request(SUB0, CLASS_A, 1, memory_at_least("8Gi")),
                    sub_request(SUB1, CLASS_A, 1, memory_at_least("4Gi")),
                ),
            )
        ],
        [
            slice_with_devices("slice-1", NODE1, with_memory(D1, "8Gi")),
            slice_with_devices("slice-2", NODE1, with_memory(D2, "4Gi"), pool=POOL2),
        ],
        [allocation(result(REQ1, D1), result(f"{REQ0}/{SUB1}", D2, pool=POOL2))],
        {},
        id="prioritized-list-multi-request",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0,
                    sub_request(SUB0, CLASS_A, 1, memory_at_least("8Gi")),
                    sub_request(SUB1, CLASS_A, 1, memory_at_least("4Gi")),
                ),
                request(REQ1, CLASS_A, 1, memory_at_least("8Gi")),
            )
        ],
        [
            slice_with_devices("slice-1", NODE1, with_memory(D1, "8Gi")),
            slice_with_devices("slice-2", NODE1, with_memory(D2, "4Gi"), pool=POOL2),
        ],
        [allocation(result(f"{REQ0}/{SUB1}", D2, pool=POOL2), result(REQ1, D1))],
        {},
        id="prioritized-list-with-backtracking",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_B, 500), sub_request(SUB1, CLASS_A)),
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(f"{REQ0}/{SUB1}", D1))],
        {},
        id="prioritized-list-too-many-in-first-subrequest",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A),
                first_available(
                    REQ1, sub_request(SUB0, CLASS_A, 2**63 - 1), sub_request(SUB1, CLASS_A)
                ),
            )
        ],
        [two_devices()],
        [allocation(result(REQ0, D1), result(f"{REQ1}/{SUB1}", D2))],
        {},
        id="prioritized-list-overflowing-first-subrequest-is-pruned",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    "req-1",
                    sub_request(SUB0, CLASS_A, 3, f'device.attributes["{DRIVER_A}"].type == "Y"'),
                    sub_request(SUB1, CLASS_A, 2),
                ),
                first_available(
                    "req-2",
                    sub_request(SUB0, CLASS_A, 2),
                    sub_request(SUB1, CLASS_A, 1, f'device.attributes["{DRIVER_A}"].type == "X"'),
                ),
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, typed(type="X")),
                device(D2, typed(type="Y")),
                device(D3, typed(type="Y")),
            )
        ],
        [
            allocation(
                result(f"req-1/{SUB1}", D2),
                result(f"req-1/{SUB1}", D3),
                result(f"req-2/{SUB1}", D1),
            )
        ],
        {},
        id="check-combinations-with-prioritized-list",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request("req-1", CLASS_A, 2),
                request("req-2", CLASS_A, 1, f'device.attributes["{DRIVER_A}"].type == "X"'),
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, typed(type="X")),
                device(D2, typed(type="Y")),
                device(D3, typed(type="Y")),
            )
        ],
        [allocation(result("req-1", D2), result("req-1", D3), result("req-2", D1))],
        {},
        id="check-combinations-with-backtracking",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 5))],
        [
            slice_with_devices("slice-1", NODE1, device(D1), device(D2), count=2),
            slice_with_devices("slice-2", NODE1, device(D3), device("device-4"), count=2),
        ],
        None,
        {},
        id="check-combinations-within-single-request-single-pool-multiple-slices",
    ),
    # --- class selectors and request selectors ----------------------------------------------
    pytest.param(
        [claim(CLAIM0, request(REQ0, "class-a100"))],
        [
            slice_with_devices(
                "slice-1", NODE1, device(D0, typed(model="h100")), device(D1, typed(model="a100"))
            )
        ],
        [allocation(result(REQ0, D1))],
        {},
        id="class-selectors-all-hold",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, "class-a100", 1, f'device.attributes["{DRIVER_A}"].index == 2'),
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D0, typed(model="a100", index=1)),
                device(D1, typed(model="h100", index=2)),
                device(D2, typed(model="a100", index=2)),
            )
        ],
        [allocation(result(REQ0, D2))],
        {},
        id="class-selectors-and-request-selectors",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(
                    REQ0,
                    CLASS_A,
                    1,
                    f'device.attributes["{DRIVER_A}"].model == "a100"',
                    f'device.attributes["{DRIVER_A}"].index > 0',
                ),
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D0, typed(model="a100", index=0)),
                device(D1, typed(model="a100", index=1)),
            )
        ],
        [allocation(result(REQ0, D1))],
        {},
        id="request-selectors-all-hold",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(
                    REQ0,
                    CLASS_A,
                    1,
                    f'device.capacity["{DRIVER_A}"].memory.isGreaterThan(quantity("40Gi"))',
                ),
            )
        ],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                with_memory(D0, "40Gi"),
                with_memory(D1, "80Gi"),
            )
        ],
        [allocation(result(REQ0, D1))],
        {},
        id="quantity-is-greater-than-on-capacity",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(
                    REQ0,
                    CLASS_A,
                    1,
                    f'device.capacity["{DRIVER_A}"].memory.isLessThan(quantity("0.05Ti"))',
                ),
            )
        ],
        # 0.05Ti is 51.2Gi: decimal and binary suffixes compare by value.
        [slice_with_devices("slice-1", NODE1, with_memory(D0, "80Gi"), with_memory(D1, "50Gi"))],
        [allocation(result(REQ0, D1))],
        {},
        id="quantity-is-less-than-on-capacity",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(
                    REQ0, CLASS_A, 1, f'device.capacity["{DRIVER_A}"].memory == quantity("1Gi")'
                ),
            )
        ],
        [slice_with_devices("slice-1", NODE1, with_memory(D0, "1024Mi"))],
        [allocation(result(REQ0, D0))],
        {},
        id="quantity-equal-spelled-differently",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 1, 'device.attributes["other.example.com"].size() == 0'),
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        [allocation(result(REQ0, D1))],
        {},
        id="unknown-domain-is-empty-map",
    ),
    # --- devices berth never allocates --------------------------------------------------
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, taints=[TAINT_NO_SCHEDULE]),
                device(D2, taints=[TAINT_NO_EXECUTE]),
            )
        ],
        None,
        {},
        id="tainted-two-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices(
                "slice-1", NODE1, device(D1, taints=[TAINT_NO_SCHEDULE, TAINT_NO_EXECUTE])
            )
        ],
        None,
        {},
        id="tainted-one-device-two-taints",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [slice_with_devices("slice-1", NODE1, device(D1, taints=[TAINT_NONE]))],
        [allocation(result(REQ0, D1))],
        {},
        id="tainted-no-effect",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [slice_with_devices("slice-1", NODE1, device(D1, taints=[TAINT_NO_SCHEDULE]), device(D2))],
        [allocation(result(REQ0, D2))],
        {},
        id="tainted-device-skipped",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(
                    REQ0,
                    CLASS_A,
                    tolerations=[
                        {"operator": "Exists", "key": "taint-key", "effect": "NoSchedule"}
                    ],
                ),
            )
        ],
        # berth: tolerations are not modelled, so a tainted device stays out even then
        # (upstream's tainted-two-devices-tolerated allocates it).
        [slice_with_devices("slice-1", NODE1, device(D1, taints=[TAINT_NO_SCHEDULE]))],
        None,
        {},
        id="tainted-tolerated-still-not-allocated",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [slice_with_devices("slice-1", NODE1, device(D1, taints=[TAINT_NO_SCHEDULE]))],
        None,
        {},
        id="tainted-all-devices-single",
    ),
    pytest.param(
        # All means all: one device that cannot be had fails the request (upstream: the
        # tainted device is selected and then refused).
        [claim(CLAIM0, all_request(REQ0))],
        [slice_with_devices("slice-1", NODE1, device(D1, taints=[TAINT_NO_SCHEDULE]), device(D2))],
        None,
        {},
        id="tainted-all-devices-one-of-two",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1, bindingConditions=["IsPrepare"], bindingFailureConditions=["Failed"]),
            )
        ],
        None,
        {},
        id="binding-conditions-without-feature-gate",
    ),
    pytest.param(
        # Devices with binding conditions are not selectable at all, so All does not
        # count them (as upstream with the feature off).
        [claim(CLAIM0, all_request(REQ0))],
        [
            slice_with_devices(
                "slice-1", NODE1, device(D1, bindingConditions=["IsPrepare"]), device(D2)
            )
        ],
        [allocation(result(REQ0, D2))],
        {},
        id="binding-conditions-all-devices-skips-them",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(
                    D1,
                    consumesCounters=[{"counterSet": "set-1", "counters": {"mem": {"value": "1"}}}],
                ),
                device(D2),
            )
        ],
        [allocation(result(REQ0, D2))],
        {},
        id="consumes-counters-device-skipped",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                device(D1),
                sharedCounters=[{"name": "set-1", "counters": {"mem": {"value": "8Gi"}}}],
            )
        ],
        None,
        {},
        id="shared-counters-slice-devices-skipped",
    ),
    # --- results limit ----------------------------------------------------------------------
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, RESULTS_MAX))],
        [slice_with_devices("slice-1", NODE1, *devices(RESULTS_MAX))],
        [allocation(*numbered(REQ0, RESULTS_MAX))],
        {},
        id="max-number-devices",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, RESULTS_MAX // 2),
                request(REQ1, CLASS_A, RESULTS_MAX // 2),
            )
        ],
        [slice_with_devices("slice-1", NODE1, *devices(RESULTS_MAX))],
        [
            allocation(
                *numbered(REQ0, RESULTS_MAX // 2),
                *numbered(REQ1, RESULTS_MAX // 2, RESULTS_MAX // 2),
            )
        ],
        {},
        id="exact-count-sum-exactly-fills-claim-limit",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, RESULTS_MAX))],
        [],
        None,
        {},
        id="many-devices-okay",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0,
                    sub_request(SUB0, CLASS_A, RESULTS_MAX),
                    sub_request(SUB1, CLASS_A, RESULTS_MAX // 2),
                ),
                first_available(
                    REQ1,
                    sub_request(SUB0, CLASS_A, RESULTS_MAX),
                    sub_request(SUB1, CLASS_A, RESULTS_MAX // 2),
                ),
            )
        ],
        [slice_with_devices("slice-1", NODE1, *devices(2 * RESULTS_MAX))],
        [
            allocation(
                *numbered(f"{REQ0}/{SUB1}", RESULTS_MAX // 2),
                *numbered(f"{REQ1}/{SUB1}", RESULTS_MAX // 2, RESULTS_MAX // 2),
            )
        ],
        {},
        id="prioritized-list-max-allocation-limit-request",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(
                    REQ0, sub_request(SUB0, CLASS_A, mode="All"), sub_request(SUB1, CLASS_A, 2)
                ),
                request(REQ1, CLASS_B, 2),
            )
        ],
        [
            slice_with_devices("slice-1", NODE1, *devices(RESULTS_MAX - 1)),
            slice_with_devices("slice-2", NODE1, *devices(2), pool=POOL2, driver=DRIVER_B),
        ],
        [
            allocation(
                result(f"{REQ0}/{SUB1}", D0),
                result(f"{REQ0}/{SUB1}", D1),
                result(REQ1, D0, pool=POOL2, driver=DRIVER_B),
                result(REQ1, D1, pool=POOL2, driver=DRIVER_B),
            )
        ],
        {},
        id="prioritized-list-max-allocation-allocation-mode-all",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                first_available(REQ0, sub_request(SUB0, CLASS_A, 2), sub_request(SUB1, CLASS_A)),
                first_available(REQ1, sub_request(SUB0, CLASS_A, RESULTS_MAX - 1)),
                constraints=[match_attribute(INT_ATTR)],
            )
        ],
        # req-0/subReq-0 takes two numa-2 devices, which leaves too little room for req-1:
        # the search unwinds to req-0/subReq-1 with the constraint released, and ends with
        # numa-1 devices only.
        [
            slice_with_devices(
                "slice-1",
                NODE1,
                *(device(f"device-{i}", typed(numa=2 if i < 2 else 1)) for i in range(34)),
            )
        ],
        [
            allocation(
                result(f"{REQ0}/{SUB1}", D2),
                *(result(f"{REQ1}/{SUB0}", f"device-{i}") for i in range(3, 34)),
            )
        ],
        {},
        id="claim-limit-unwinds-constraints",
    ),
    # --- pools --------------------------------------------------------------------------
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1", NODE2, device(D1), count=2),
            slice_with_devices("slice-2", NODE1, device(D2), count=2),
        ],
        [allocation(result(REQ0, D2))],
        {},
        id="different-resourceslices-in-pool-can-target-different-nodes",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1", NODE1, device(D1), count=2),
            slice_with_devices("slice-2", NODE1, device(D1), count=2),
            slice_with_devices("slice-3", NODE1, device(D2), pool=POOL2),
        ],
        [allocation(result(REQ0, D2, pool=POOL2))],
        {},
        id="invalid-pool-is-ok-if-devices-can-be-allocated-from-other",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [slice_with_devices("slice-1", NODE1, device(D1), count=2)],
        None,
        {},
        id="no-allocation-from-incomplete-pools",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1", NODE1, device(D1), count=2),
            slice_with_devices("slice-2", NODE1, device(D2), count=2),
            slice_with_devices("slice-3", NODE1, device(D1), pool=POOL2, count=2),
        ],
        [allocation(result(REQ0, D1))],
        {},
        id="incomplete-pool-does-not-block-others",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1", NODE1, device(D1), count=2, generation=1),
            slice_with_devices("slice-2", NODE2, device(D2), count=2, generation=2),
        ],
        None,
        {},
        id="multi-host-resource-pool-with-stale-slice-for-current-node",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1a", NODE2, device(D1), count=2, generation=1),
            slice_with_devices("slice-1b", NODE2, device(D2), count=2, generation=1),
            slice_with_devices("slice-2a", NODE1, device(D1), count=2, generation=2),
            slice_with_devices("slice-2b", NODE1, device(D2), count=2, generation=2),
        ],
        [allocation(result(REQ0, D1))],
        {},
        id="multi-host-resource-pool-complete-update-from-node-2-to-node-1",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1a", NODE1, device(D1), count=2, generation=1),
            slice_with_devices("slice-1b", NODE1, device(D2), count=2, generation=1),
            slice_with_devices("slice-2a", NODE2, device(D1), count=2, generation=2),
            slice_with_devices("slice-2b", NODE2, device(D2), count=2, generation=2),
        ],
        # berth: the pool moved on to node-2, so node-1 gets nothing from its stale
        # slices (upstream still allocates from them, and its test says it would rather not).
        None,
        {},
        id="multi-host-resource-pool-complete-update-from-node-1-to-node-2",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A))],
        [
            slice_with_devices("slice-1a", NODE2, device(D1), count=2, generation=1),
            slice_with_devices("slice-1b", NODE2, device(D2), count=2, generation=1),
            slice_with_devices("slice-2a", NODE1, device(D1), count=2, generation=2),
        ],
        None,
        {},
        id="multi-host-resource-pool-incomplete-update-from-node-2-to-node-1",
    ),
]

EXTRA_CLASSES = (
    device_class("class-config-a", DRIVER_A, config=[opaque(DRIVER_A, "classAttribute")]),
    device_class("class-config-b", DRIVER_B, config=[opaque(DRIVER_B, "classAttribute-B")]),
    device_class(
        "class-a100",
        selectors=[
            f'device.driver == "{DRIVER_A}"',
            f'device.attributes["{DRIVER_A}"].model == "a100"',
        ],
    ),
)


@pytest.mark.parametrize(("claims", "slices", "expected", "extra"), CASES)
def test_allocate(
    claims: list[Any], slices: list[JSON], expected: list[JSON] | None, extra: dict[str, Any]
) -> None:
    """The allocations for every claim on the node, in claim order, or None."""
    found = allocate_on(claims, slices, CLASSES + EXTRA_CLASSES, **extra)
    assert found == expected


ERROR_CASES = [
    pytest.param(
        [claim(CLAIM0, request(REQ0, "unknown-class"))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "claim default/claim-0, request req-0: could not retrieve device class unknown-class",
        id="unknown-class",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, ""))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "claim default/claim-0, request req-0: missing device class name"
        " (unsupported request type?)",
        id="empty-class",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [slice_with_devices("slice-1", NODE1, device(D1), count=2)],
        (),
        "claim default/claim-0, request req-0: asks for all devices, but resource pool"
        " driver-a/pool-1 is currently being updated",
        id="all-devices-of-the-incomplete-pool",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0))],
        [
            slice_with_devices("slice-1", NODE1, device(D1), count=2),
            slice_with_devices("slice-2", NODE1, device(D1), count=2),
        ],
        (),
        "claim default/claim-0, request req-0: asks for all devices, but resource pool"
        " driver-a/pool-1 is currently invalid",
        id="all-devices-of-an-invalid-pool",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                all_request(REQ0),
                constraints=[match_attribute(INT_ATTR)],
            )
        ],
        [
            slice_with_devices(
                "slice-1", NODE1, device(D1, typed(numa=1)), device(D2, typed(numa=2))
            )
        ],
        (),
        "claim default/claim-0, request req-0: cannot add device driver-a/pool-1/device-2"
        " because a claim constraint would not be satisfied",
        id="with-constraint-not-matching-int-attribute-all-devices",
    ),
    pytest.param(
        [claim(CLAIM0, {"name": REQ0, "exactly": {"deviceClassName": CLASS_A, "selectors": [{}]}})],
        [one_device_slice("slice-1", NODE1)],
        (),
        "CEL expression empty (unsupported selector type?)",
        id="unknown-selector",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, mode="future-mode"))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "unsupported count mode future-mode",
        id="unknown-allocation-mode",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A), constraints=[{}])],
        [one_device_slice("slice-1", NODE1)],
        (),
        "claim default/claim-0, constraint #0: empty constraint (unsupported constraint type?)",
        id="unknown-constraint",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 1, "noSuchVar"))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "claim default/claim-0: selector #0: CEL compile error: compilation failed:",
        id="invalid-CEL-one-device",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, "class-bad-cel"))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "class class-bad-cel: selector #0: CEL compile error: compilation failed:",
        id="invalid-CEL-one-device-class",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0, CLASS_A, "noSuchVar"))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "undeclared reference to 'noSuchVar'",
        id="invalid-CEL-all-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 1, "1 + 1"))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "claim default/claim-0: selector #0: CEL compile error: must evaluate to bool",
        id="CEL-not-bool",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 1, f'device.attributes["{DRIVER_A}"].nokey == 1'))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "claim default/claim-0: selector #0 on device driver-a/pool-1/device-1:"
        " CEL runtime error: no such key: nokey",
        id="CEL-runtime-error-missing-attribute",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(
                    REQ0,
                    CLASS_A,
                    1,
                    "true",
                    'device.attributes["no-such-domain"].noSuchAttr.isGreaterThan(quantity("0"))',
                ),
            )
        ],
        [one_device_slice("slice-1", NODE1)],
        (),
        "claim default/claim-0: selector #1 on device driver-a/pool-1/device-1:"
        " CEL runtime error: no such key: noSuchAttr",
        id="CEL-runtime-error-unknown-domain-second-selector",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, "class-runtime-error"))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "class class-runtime-error: selector #1 on device driver-a/pool-1/device-1:"
        " CEL runtime error: no such key: model",
        id="CEL-runtime-error-in-class",
    ),
    pytest.param(
        [claim(CLAIM0, all_request(REQ0, CLASS_A, f'device.attributes["{DRIVER_A}"].nokey'))],
        [one_device_slice("slice-1", NODE1)],
        (),
        "CEL runtime error: no such key: nokey",
        id="CEL-runtime-error-all-devices",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 1, f'device.attributes["{DRIVER_A}"].model'))],
        [slice_with_devices("slice-1", NODE1, device(D1, typed(model="a100")))],
        (),
        "CEL runtime error: CEL result of type string could not be converted to bool:",
        id="CEL-runtime-result-not-bool",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 500))],
        [],
        (),
        "claim default/claim-0, request req-0: adding 500 devices exceeds the claim limit of 32,"
        " with 0 already accounted for",
        id="too-many-devices-single-request",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, RESULTS_MAX), request(REQ1, CLASS_A, 1))],
        [slice_with_devices("slice-1", NODE1, *devices(RESULTS_MAX + 1))],
        (),
        "exceeds the claim limit",
        id="too-many-devices-total",
    ),
    pytest.param(
        [claim(CLAIM0, request(REQ0, CLASS_A, 20), request(REQ1, CLASS_A, 20))],
        [],
        (),
        "claim default/claim-0, request req-1: adding 20 devices exceeds the claim limit of 32,"
        " with 20 already accounted for",
        id="exact-count-sum-exceeds-claim-limit",
    ),
    pytest.param(
        [
            claim(
                CLAIM0,
                request(REQ0, CLASS_A, 20),
                first_available(
                    REQ1, sub_request(SUB0, CLASS_A, 20), sub_request(SUB1, CLASS_A, 24)
                ),
            )
        ],
        [],
        (),
        "claim default/claim-0, request req-1: adding 20 devices exceeds the claim limit",
        id="prioritized-list-minimum-sum-exceeds-claim-limit",
    ),
]

ERROR_CLASSES = (
    device_class("class-bad-cel", selectors=["noSuchVar"]),
    device_class(
        "class-runtime-error",
        selectors=["true", f'device.attributes["{DRIVER_A}"].model == "x"'],
    ),
)


@pytest.mark.parametrize(("claims", "slices", "in_use", "message"), ERROR_CASES)
def test_allocate_error(
    claims: list[Any], slices: list[JSON], in_use: set[str], message: str
) -> None:
    """A problem with a claim, a class or the pools is an AllocationError, not a misfit."""
    with pytest.raises(AllocationError, match=re.escape(message)):
        allocate_on(claims, slices, CLASSES + ERROR_CLASSES, in_use=set(in_use))


def test_in_use_set_not_changed() -> None:
    """The caller's in-use set is read, never written."""
    in_use = allocated(f"{DRIVER_A}/{POOL1}/{D1}")
    pools = store_of(two_devices()).pools_for(NODE1, {})
    found = allocate(
        [claim(CLAIM0, request(REQ0, CLASS_A))], NODE1, {}, pools, {CLASS_A: CLASSES[0]}, in_use
    )
    assert found is not None
    assert in_use == {f"{DRIVER_A}/{POOL1}/{D1}"}


def test_allocation_to_json_omits_what_is_empty() -> None:
    """No config and no node selector: status.allocation has the results only."""
    found = allocate_on(
        [claim(CLAIM0, request(REQ0, CLASS_A))], [one_device_slice("s", ALL_NODES)], CLASSES
    )
    assert found == [{"devices": {"results": [result(REQ0, D1)]}}]


def test_tolerations_copied_into_results() -> None:
    """A request's tolerations are copied into its results, as upstream."""
    toleration = {"operator": "Exists", "key": "k", "effect": "NoSchedule"}
    found = allocate_on(
        [claim(CLAIM0, request(REQ0, CLASS_A, tolerations=[toleration]))],
        [one_device_slice("slice-1", NODE1)],
        CLASSES,
    )
    assert found == [allocation({**result(REQ0, D1), "tolerations": [toleration]})]


def test_first_solution_wins_in_device_order() -> None:
    """Devices are tried pool by pool (sorted by driver and name), slice by slice (by name),
    device by device as listed."""
    slices = [
        slice_with_devices("slice-b", NODE1, device("z"), pool=POOL2, count=2),
        slice_with_devices("slice-a", NODE1, device("y"), device("x"), pool=POOL2, count=2),
        slice_with_devices("slice-c", NODE1, device("w"), pool=POOL1),
    ]
    found = allocate_on([claim(CLAIM0, request(REQ0, CLASS_A, 4))], slices, CLASSES)
    assert found == [
        allocation(
            result(REQ0, "w", pool=POOL1),
            result(REQ0, "y", pool=POOL2),
            result(REQ0, "x", pool=POOL2),
            result(REQ0, "z", pool=POOL2),
        )
    ]


def test_oversized_alternative_pruned_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An alternative that would pass the claim limit is dropped at once rather than searched
    device by device (upstream's errAllocationResultMaxSizeExceeded): a handful of search
    steps, as upstream's expectNumAllocateOneInvocations counts them."""
    steps = 0
    search_device = _Search.device

    def counted(self: _Search, *args: Any) -> bool:
        nonlocal steps
        steps += 1
        assert steps < 1000, "the search did not prune"
        return search_device(self, *args)

    monkeypatch.setattr(_Search, "device", counted)
    claims = [
        claim(
            CLAIM0,
            request(REQ0, CLASS_A, 2),
            first_available(
                REQ1, sub_request(SUB0, CLASS_A, RESULTS_MAX), sub_request(SUB1, CLASS_A)
            ),
        )
    ]
    slices = [slice_with_devices("slice-1", NODE1, *devices(3 * RESULTS_MAX))]
    found = allocate_on(claims, slices, CLASSES)
    assert found == [allocation(result(REQ0, D0), result(REQ0, D1), result(f"{REQ1}/{SUB1}", D2))]
    assert steps <= 10


def test_selector_results_kept_per_device() -> None:
    """Selector results are kept per device: evaluating the same expression for two
    requests does not evaluate it again."""
    slices = [slice_with_devices("slice-1", NODE1, *devices(2))]
    pools = store_of(*slices).pools_for(NODE1, {})
    allocate(
        [claim(CLAIM0, request(REQ0, CLASS_A), request(REQ1, CLASS_A))],
        NODE1,
        {},
        pools,
        {CLASS_A: CLASSES[0]},
        set(),
    )
    first = next(iter(pools[0].devices(NODE1, {})))
    assert first.matches == {f'device.driver == "{DRIVER_A}"': True}


@pytest.mark.parametrize(
    ("claims", "slices", "in_use", "message"),
    [
        pytest.param(
            [
                claim(CLAIM0, request(REQ0, CLASS_A, 1)),
            ],
            [
                slice_with_devices("slice-1", NODE1, device(D1), count=2),
                slice_with_devices("slice-2", NODE1, device(D1), count=2),
            ],
            (),
            "invalid resource pools were encountered",
            id="duplicate-slice",
        ),
        pytest.param(
            [claim(CLAIM0, request(REQ0, CLASS_A))],
            [
                slice_with_devices("slice-1", NODE1, device(D1), count=2),
                slice_with_devices("slice-2", NODE1, device(D1), count=2),
                slice_with_devices("slice-3", NODE1, device(D2), pool=POOL2),
            ],
            allocated(f"{DRIVER_A}/{POOL2}/{D2}"),
            "invalid resource pools were encountered",
            id="invalid-pool-is-error-if-no-other-device-can-be-allocated",
        ),
    ],
)
def test_invalid_pool_fails_only_this_node(
    claims: list[Any], slices: list[JSON], in_use: set[str], message: str
) -> None:
    """upstream's ErrFailedAllocationOnNode: an invalid pool that left the claims without a
    solution fails this node (NodeFailure), not the pod's whole scheduling attempt."""
    with pytest.raises(NodeFailure, match=re.escape(message)):
        allocate_on(claims, slices, CLASSES + ERROR_CLASSES, in_use=set(in_use))


def test_a_constraint_no_group_meets_is_refused_without_trying_every_subset() -> None:
    """21 devices of one `grp` value, from 40 in two groups of 20: no solution. The search
    gives up at once (fewer devices of the fixed value are left than still needed) instead of
    trying every subset of a group (2^20, seconds to minutes). The deadline has already
    passed: a search that took 64 steps would raise AllocationTimeout."""
    devices = [device(f"d{i}", {"grp": {"int": i % 2}}) for i in range(40)]
    claims = [
        claim(
            CLAIM0,
            request(REQ0, CLASS_A, 21),
            constraints=[{"requests": [REQ0], "matchAttribute": f"{DRIVER_A}/grp"}],
        )
    ]
    pools = store_of(slice_with_devices("slice-1", NODE1, *devices)).pools_for(NODE1, {})
    classes = {c.name: c for c in CLASSES}
    assert allocate(claims, NODE1, {}, pools, classes, set(), deadline=time.monotonic()) is None


def test_a_long_search_stops_at_its_deadline() -> None:
    """Two claims of 32 devices each take more than 64 steps: past the deadline that is an
    AllocationTimeout (upstream's filterTimeout), not an answer."""
    devices = [device(f"d{i}") for i in range(64)]
    claims = [claim(f"c{i}", request(REQ0, CLASS_A, 32)) for i in range(2)]
    pools = store_of(slice_with_devices("slice-1", NODE1, *devices)).pools_for(NODE1, {})
    classes = {c.name: c for c in CLASSES}
    with pytest.raises(AllocationTimeout):
        allocate(claims, NODE1, {}, pools, classes, set(), deadline=time.monotonic() - 1)
    found = allocate(claims, NODE1, {}, pools, classes, set())
    assert found is not None and [len(a.results) for a in found] == [32, 32]
