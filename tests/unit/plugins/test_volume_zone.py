"""VolumeZone: the cases of upstream's volume_zone_test.go (TestSingleZone, TestMultiZone,
TestWithBinding): PV zone/region labels against the node's."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import volume_zone
from plugins.volume_zone import BETA_REGION, BETA_ZONE, ERR_REASON, REGION, ZONE
from scheduler.framework import Code, CycleState, QueueingHint, Status
from scheduler.model import compile_pod
from tests.builders import make_node
from tests.unit.plugins.volume_builders import (
    OTHER_VOLUMES,
    claim_volume,
    ephemeral_volume,
    pv,
    pvc,
    record,
    storage_class,
    volume_handle,
    with_volumes,
)
from tests.unit.tables import build_table, filter_reasons, hint_for, registered, unresolvable

JSON = dict[str, Any]

OBJECTS = [
    pv("vol-1", labels={BETA_ZONE: "us-west1-a"}),
    pv("vol-2", labels={BETA_REGION: "us-west1", "uselessLabel": "none"}),
    pv("vol-3", labels={BETA_REGION: "us-west1"}),
    pv("vol-4", labels={BETA_ZONE: "us-west1-a__us-west1-b"}),
    pv("vol-ga", labels={ZONE: "us-west1-a", REGION: "us-west1"}),
    pv("vol-bad", labels={ZONE: "us-west1-a__"}),
    pvc("pvc-1", volume="vol-1", bound=True),
    pvc("pvc-2", volume="vol-2", bound=True),
    pvc("pvc-3", volume="vol-3", bound=True),
    pvc("pvc-4", volume="vol-4", bound=True),
    pvc("pvc-ga", volume="vol-ga", bound=True),
    pvc("pvc-bad", volume="vol-bad", bound=True),
    pvc("pvc-wait", storage_class="wait"),
    storage_class("wait"),
]


def plugin(*objects: JSON) -> volume_zone.VolumeZone:
    return volume_zone.new({}, volume_handle(*objects))


def node_with(labels: dict[str, str]) -> JSON:
    builder = make_node("host1")
    for key, value in labels.items():
        builder.label(key, value)
    return builder.obj_()


@pytest.mark.parametrize(
    ("incoming", "labels", "expected"),
    [
        pytest.param(with_volumes("p"), {BETA_ZONE: "us-west1-a"}, [], id="pod-without-volume"),
        pytest.param(
            with_volumes("p", claim_volume("pvc-1")), {}, [], id="node-without-zone-labels"
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-1")),
            {"uselessLabel": "none"},
            [],
            id="node-without-topology-labels",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-1")),
            {BETA_ZONE: "us-west1-a", "uselessLabel": "none"},
            [],
            id="beta-zone-label-matched",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-2")),
            {BETA_REGION: "us-west1", "uselessLabel": "none"},
            [],
            id="beta-region-label-matched",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-2")),
            {BETA_REGION: "no_us-west1", "uselessLabel": "none"},
            [ERR_REASON],
            id="beta-region-label-not-matched",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-1")),
            {BETA_ZONE: "no_us-west1-a", "uselessLabel": "none"},
            [ERR_REASON],
            id="beta-zone-label-not-matched",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-1")),
            {ZONE: "us-west1-a"},
            [],
            id="pv-beta-label-matches-node-ga-label",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-1")),
            {ZONE: "us-west1-b"},
            [ERR_REASON],
            id="pv-beta-label-against-other-ga-zone",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-ga")),
            {ZONE: "us-west1-a", REGION: "us-west1"},
            [],
            id="ga-labels-matched",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-ga")),
            {BETA_ZONE: "us-west1-a", BETA_REGION: "us-west1"},
            [ERR_REASON],
            id="pv-ga-label-does-not-fall-back-to-node-beta-label",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-4")),
            {BETA_ZONE: "us-west1-b"},
            [],
            id="multi-zone-pv-label-matched",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-4")),
            {BETA_ZONE: "us-west1-c"},
            [ERR_REASON],
            id="multi-zone-pv-label-not-matched",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-bad")),
            {ZONE: "elsewhere"},
            [],
            id="malformed-zone-label-ignored",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-1"), claim_volume("pvc-3")),
            {BETA_ZONE: "us-west1-a", BETA_REGION: "us-east1"},
            [ERR_REASON],
            id="every-volume-must-match",
        ),
        pytest.param(
            with_volumes("p", claim_volume("pvc-wait"), *OTHER_VOLUMES),
            {BETA_ZONE: "us-west1-a"},
            [],
            id="unbound-wait-for-first-consumer-claim-skipped",
        ),
        pytest.param(
            with_volumes("p", ephemeral_volume("scratch")),
            {BETA_ZONE: "us-west1-a"},
            [],
            id="ephemeral-volumes-not-checked",
        ),
    ],
)
def test_filter(incoming: JSON, labels: dict[str, str], expected: list[str]) -> None:
    """Each PV topology label must be on the node with one of its values."""
    plugin_ = plugin(*OBJECTS)
    table = build_table([node_with(labels)])
    assert filter_reasons(plugin_, incoming, table) == {"host1": expected}
    if expected:
        assert unresolvable(plugin_, incoming, table) == {"host1": True}


@pytest.mark.parametrize(
    ("objects", "claim", "message"),
    [
        pytest.param([], "missing", 'persistentvolumeclaim "missing" not found', id="no-pvc"),
        pytest.param(
            [pvc("c", volume="gone", bound=True)],
            "c",
            'persistentvolume "gone" not found',
            id="no-pv",
        ),
        pytest.param(
            [pvc("c")],
            "c",
            "PersistentVolumeClaim had no pv name and storageClass name",
            id="unbound-without-class",
        ),
        pytest.param(
            [pvc("c", storage_class="nope")],
            "c",
            'storageclass.storage.k8s.io "nope" not found',
            id="class-not-found",
        ),
        pytest.param(
            [pvc("c", storage_class="now"), storage_class("now", mode="Immediate")],
            "c",
            "PersistentVolume had no name",
            id="unbound-immediate",
        ),
        pytest.param(
            [pvc("c", storage_class="odd"), storage_class("odd", mode=None)],
            "c",
            'VolumeBindingMode not set for StorageClass "odd"',
            id="class-without-binding-mode",
        ),
    ],
)
def test_pre_filter_rejects(objects: list[JSON], claim: str, message: str) -> None:
    status = plugin(*objects).pre_filter(
        CycleState(), compile_pod(with_volumes("p", claim_volume(claim))), build_table([])
    )
    assert status == Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), "VolumeZone")


def test_pre_filter_skips_without_topology() -> None:
    """A PV without zone or region labels leaves nothing to check."""
    objects = [pv("plain"), pvc("c", volume="plain", bound=True)]
    status = plugin(*objects).pre_filter(
        CycleState(), compile_pod(with_volumes("p", claim_volume("c"))), build_table([])
    )
    assert status is not None and status.code is Code.SKIP


def test_filter_without_pre_filter() -> None:
    plugin_ = plugin(*OBJECTS)
    table = build_table([node_with({BETA_ZONE: "us-west1-b"})])
    pod = compile_pod(with_volumes("p", claim_volume("pvc-1")))
    assert plugin_.filter(CycleState(), pod, table, table.live_rows()).mask.tolist() == [False]


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: StorageClass/Add, PersistentVolumeClaim/Add|Update and
    PersistentVolume/Add|Update with hints, Node/Add|UpdateNodeLabel without."""
    assert registered(plugin()) == [
        ("storage.k8s.io/StorageClassAdd", True),
        ("NodeAdd", False),
        ("NodeUpdateNodeLabel", False),
        ("PersistentVolumeClaimAdd", True),
        ("PersistentVolumeClaimUpdate", True),
        ("PersistentVolumeAdd", True),
        ("PersistentVolumeUpdate", True),
    ]


def pod_1(*claims: str) -> JSON:
    """Upstream's createPodWithVolume("pod_1", claim) (no claim: a pod without volumes)."""
    return with_volumes("pod_1", *map(claim_volume, claims))


@pytest.mark.parametrize(
    ("pod", "old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterPersistentVolumeClaimAdded (the wrong-type case: no
        # counterpart).
        pytest.param(
            pod_1(),
            None,
            pvc("PVC_1", volume="Vol_1"),
            QueueingHint.SKIP,
            id="pvc-was-added-but-pod-refers-no-pvc",
        ),
        pytest.param(
            pod_1("PVC_2"),
            None,
            pvc("PVC_1", volume="Vol_1"),
            QueueingHint.SKIP,
            id="pvc-was-added-and-pod-was-bound-to-different-pvc",
        ),
        pytest.param(
            pod_1("PVC_1"),
            None,
            pvc("PVC_1", volume="Vol_1", namespace="ns1"),
            QueueingHint.SKIP,
            id="pvc-was-added-and-pod-was-bound-to-pvc-but-different-ns",
        ),
        pytest.param(
            pod_1("PVC_1"),
            None,
            pvc("PVC_1", volume="Vol_1"),
            QueueingHint.QUEUE,
            id="pvc-was-added-and-pod-was-bound-to-the-pvc",
        ),
        pytest.param(
            pod_1("PVC_1"),
            pvc("PVC_1"),
            pvc("PVC_1", volume="Vol_1"),
            QueueingHint.QUEUE,
            id="pvc-was-updated-and-pod-was-bound-to-the-pvc",
        ),
        pytest.param(
            pod_1(),
            pvc("PVC_1"),
            pvc("PVC_1", volume="Vol_1"),
            QueueingHint.SKIP,
            id="pvc-was-updated-but-pod-refers-no-pvc",
        ),
    ],
)
def test_is_schedulable_after_persistent_volume_claim_change(
    pod: JSON, old: JSON | None, new: JSON, expected: QueueingHint
) -> None:
    """A claim the pod names, in its namespace, added or changed moves it."""
    hint = hint_for(plugin(), "PersistentVolumeClaimUpdate")
    assert hint(record(pod), record(old), record(new)) is expected


@pytest.mark.parametrize(
    ("added", "expected"),
    [
        # Upstream's TestIsSchedulableAfterStorageClassAdded (the wrong-type case: no
        # counterpart).
        pytest.param(
            storage_class("SC_1", mode=None),
            QueueingHint.SKIP,
            id="sc-doesn't-have-volume-binding-mode",
        ),
        pytest.param(
            storage_class("SC_1"), QueueingHint.QUEUE, id="new-sc-is-wait-for-first-consumer-mode"
        ),
        # berth: an Immediate class cannot make an unbound claim pass either.
        pytest.param(
            storage_class("SC_1", mode="Immediate"), QueueingHint.SKIP, id="new-sc-is-immediate"
        ),
    ],
)
def test_is_schedulable_after_storage_class_added(added: JSON, expected: QueueingHint) -> None:
    """Only a WaitForFirstConsumer class created moves the pod."""
    hint = hint_for(plugin(), "storage.k8s.io/StorageClassAdd")
    assert hint(record(pod_1("PVC_1")), None, record(added)) is expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterPersistentVolumeChange (the wrong-type cases: no
        # counterpart).
        pytest.param(
            None,
            pv("Vol_1", labels={BETA_ZONE: "us-west1-b"}),
            QueueingHint.QUEUE,
            id="new-pv-was-added",
        ),
        pytest.param(
            pv("Vol_1", labels={BETA_ZONE: "us-west1-a"}),
            pv("Vol_1", labels={BETA_ZONE: "us-west1-b"}),
            QueueingHint.QUEUE,
            id="pv-was-updated-and-changed-topology",
        ),
        pytest.param(
            pv("Vol_1", labels={BETA_ZONE: "us-west1-a"}),
            pv("Vol_1", labels={BETA_ZONE: "us-west1-a", ZONE: "zone"}),
            QueueingHint.QUEUE,
            id="pv-was-updated-and-added-topology-label",
        ),
        pytest.param(
            pv("Vol_1", labels={BETA_ZONE: "us-west1-a", ZONE: "zone"}),
            pv("Vol_1", labels={BETA_ZONE: "us-west1-a", ZONE: "zone", "other": "x"}),
            QueueingHint.SKIP,
            id="pv-was-updated-but-no-topology-is-changed",
        ),
    ],
)
def test_is_schedulable_after_persistent_volume_change(
    old: JSON | None, new: JSON, expected: QueueingHint
) -> None:
    """A PV added, or one whose zone or region labels changed, moves the pod."""
    hint = hint_for(plugin(), "PersistentVolumeUpdate")
    assert hint(record(pod_1("PVC_1")), record(old), record(new)) is expected
