"""The DeviceClass store: which class backs which extended resource name (upstream's
extendedresourcecache, as DeviceClassSpec.extendedResourceName documents it)."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.device_classes import DeviceClassStore

JSON = dict[str, Any]
GPU = "example.com/gpu"
EARLY, LATE = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def device_class(name: str, extended_resource_name: str = "", created: str = EARLY) -> JSON:
    spec = {"extendedResourceName": extended_resource_name} if extended_resource_name else {}
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": spec}


def store_of(*events: tuple[JSON, bool]) -> DeviceClassStore:
    store = DeviceClassStore()
    for obj, deleted in events:
        store.apply(obj, deleted=deleted)
    return store


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [(device_class("gpu", GPU), False)],
            {GPU: "gpu", "deviceclass.resource.kubernetes.io/gpu": "gpu"},
            id="explicit and implicit name",
        ),
        pytest.param(
            [(device_class("gpu"), False)],
            {GPU: None, "deviceclass.resource.kubernetes.io/gpu": "gpu"},
            id="implicit name only",
        ),
        pytest.param(
            [
                (device_class("gpu-v1", GPU, EARLY), False),
                (device_class("gpu-v2", GPU, LATE), False),
            ],
            {GPU: "gpu-v2", "deviceclass.resource.kubernetes.io/gpu-v1": "gpu-v1"},
            id="the newer class wins a shared name",
        ),
        pytest.param(
            [
                (device_class("gpu-v2", GPU, LATE), False),
                (device_class("gpu-v1", GPU, EARLY), False),
            ],
            {GPU: "gpu-v2"},
            id="whatever the order the classes arrive in",
        ),
        pytest.param(
            [(device_class("b", GPU), False), (device_class("a", GPU), False)],
            {GPU: "a"},
            id="same creation time: the lower name wins",
        ),
        pytest.param(
            [
                (device_class("gpu-v1", GPU, EARLY), False),
                (device_class("gpu-v2", GPU, LATE), False),
                (device_class("gpu-v2", GPU, LATE), True),
            ],
            # berth: upstream's cache forgets the name with the deleted class until the other
            # one changes; the API says the remaining class is picked.
            {GPU: "gpu-v1", "deviceclass.resource.kubernetes.io/gpu-v2": None},
            id="deleting the winner hands the name to the other class",
        ),
        pytest.param(
            [(device_class("gpu", GPU), False), (device_class("gpu", "example.com/gpu2"), False)],
            {GPU: None, "example.com/gpu2": "gpu"},
            id="a renamed extendedResourceName no longer backs the old name",
        ),
        pytest.param(
            [(device_class("gpu", GPU), False), (device_class("gpu", GPU), True)],
            {GPU: None, "deviceclass.resource.kubernetes.io/gpu": None},
            id="deleted",
        ),
    ],
)
def test_device_class(events: list[tuple[JSON, bool]], expected: dict[str, str | None]) -> None:
    """Resource name -> the class that backs it, after the informer's events."""
    store = store_of(*events)
    assert {name: store.device_class(name) for name in expected} == expected


def test_backed() -> None:
    """The pod's non-zero requests that a class backs, sorted by name; nothing at all (and
    false) while no class exists."""
    requests = {"cpu": 100, GPU: 1, "deviceclass.resource.kubernetes.io/nic": 2, "x.io/y": 0}
    assert DeviceClassStore().backed(requests) == {}
    assert not DeviceClassStore()
    store = store_of((device_class("gpu", GPU), False), (device_class("nic", "x.io/y"), False))
    assert list(store.backed(requests).items()) == [
        ("deviceclass.resource.kubernetes.io/nic", "nic"),
        (GPU, "gpu"),
    ]
