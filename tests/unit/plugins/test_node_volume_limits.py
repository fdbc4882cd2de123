"""NodeVolumeLimits: CSI attach limits from CSINode, as upstream's csi_test.go
(TestCSILimits) for the cases a control plane without CSI migration has."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import node_volume_limits
from plugins.node_volume_limits import ERR_REASON
from scheduler.framework import Code, CycleState, QueueingHint
from scheduler.model import compile_pod
from tests.builders import make_node
from tests.unit.plugins.volume_builders import (
    OTHER_VOLUMES,
    claim_volume,
    csi_node,
    ephemeral_volume,
    pv,
    pvc,
    record,
    storage_class,
    volume_handle,
    with_volumes,
)
from tests.unit.tables import build_table, filter_reasons, hint_for, registered

JSON = dict[str, Any]
EBS = "ebs.csi.aws.com"
GCE = "pd.csi.storage.gke.io"

OBJECTS = [
    *(pv(f"pv-{i}", csi=(EBS, f"vol-{i}"), claim=f"c{i}") for i in range(4)),
    *(pvc(f"c{i}", volume=f"pv-{i}", bound=True) for i in range(4)),
    pv("pv-gce", csi=(GCE, "disk-1"), claim="c-gce"),
    pvc("c-gce", volume="pv-gce", bound=True),
    storage_class("ebs-dyn", provisioner=EBS),
    pvc("dyn-1", storage_class="ebs-dyn"),
    pvc("dyn-2", storage_class="ebs-dyn"),
]


def plugin(*extra: JSON) -> node_volume_limits.NodeVolumeLimits:
    return node_volume_limits.new({}, volume_handle(*OBJECTS, *extra))


def pods_on(node: str, *claims: str) -> JSON:
    return with_volumes(f"on-{node}-{'-'.join(claims)}", *map(claim_volume, claims), node=node)


@pytest.mark.parametrize(
    ("limits", "existing", "claims", "expected"),
    [
        pytest.param({"ebs_csi_aws_com": 2}, [("c0",)], ("c1",), [], id="fits-under-the-limit"),
        pytest.param(
            {"ebs_csi_aws_com": 2}, [("c0", "c1")], ("c2",), [ERR_REASON], id="exceeds-limit"
        ),
        pytest.param(
            {"ebs_csi_aws_com": 2},
            [("c0", "c1")],
            ("c1",),
            [],
            id="volume-already-attached-counts-once",
        ),
        pytest.param(
            {"ebs_csi_aws_com": 2}, [("c0", "c1")], ("c-gce",), [], id="other-driver-not-limited"
        ),
        pytest.param(
            {"ebs_csi_aws_com": 2},
            [("c0",)],
            ("dyn-1", "dyn-2"),
            [ERR_REASON],
            id="unbound-claims-count-under-their-provisioner",
        ),
        pytest.param(
            {"ebs_csi_aws_com": None}, [("c0", "c1")], ("c2",), [], id="driver-without-count"
        ),
        pytest.param(None, [("c0", "c1", "c2")], ("c3",), [], id="node-without-csinode"),
    ],
)
def test_filter(
    limits: dict[str, int | None] | None,
    existing: list[tuple[str, ...]],
    claims: tuple[str, ...],
    expected: list[str],
) -> None:
    """Attached plus new unique volumes of a driver must not exceed the CSINode count."""
    extra = [csi_node("node1", **limits)] if limits is not None else []
    table = build_table([make_node("node1").obj_()], [pods_on("node1", *c) for c in existing])
    incoming = with_volumes("p", *map(claim_volume, claims))
    assert filter_reasons(plugin(*extra), incoming, table) == {"node1": expected}


def test_pre_filter_skips_pods_without_claims() -> None:
    raw = with_volumes("p", *OTHER_VOLUMES)
    status = plugin().pre_filter(CycleState(), compile_pod(raw), build_table([]))
    assert status is not None and status.code is Code.SKIP


def test_inline_csi_volumes_count() -> None:
    inline = {"name": "inline", "csi": {"driver": EBS}}
    table = build_table([make_node("node1").obj_()], [pods_on("node1", "c0")])
    incoming = with_volumes("p", inline)
    limited = plugin(csi_node("node1", ebs_csi_aws_com=1))
    assert filter_reasons(limited, incoming, table) == {"node1": [ERR_REASON]}


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister less VolumeAttachment/Delete (berth does not watch it):
    CSINode/Add without a hint; CSINode/Update, AssignedPod/Delete and
    PersistentVolumeClaim/Add with hints."""
    assert registered(plugin()) == [
        ("storage.k8s.io/CSINodeAdd", False),
        ("storage.k8s.io/CSINodeUpdate", True),
        ("AssignedPodDelete", True),
        ("PersistentVolumeClaimAdd", True),
    ]


@pytest.mark.parametrize(
    ("deleted", "expected"),
    [
        # Upstream's TestCSILimitsQHint.
        pytest.param(
            with_volumes("gone", claim_volume("placeholder"), node="csiNode"),
            QueueingHint.QUEUE,
            id="return a Queue when a deleted pod has a PVC",
        ),
        pytest.param(
            with_volumes("gone", {"name": "inline", "csi": {"driver": EBS}}, node="csiNode"),
            QueueingHint.QUEUE,
            id="return a Queue when a deleted pod has a inline migratable volume",
        ),
        pytest.param(
            with_volumes("gone", node="csiNode"),
            QueueingHint.SKIP,
            id="return a QueueSkip when a deleted pod doesn't have any volume",
        ),
        pytest.param(
            with_volumes("gone", claim_volume("c0")),
            QueueingHint.SKIP,
            id="return a QueueSkip when a deleted pod is not scheduled.",
        ),
        # berth: an in-tree volume is not translated to its CSI driver, so not counted.
        pytest.param(
            with_volumes("gone", {"name": "ebs", "awsElasticBlockStore": {}}, node="csiNode"),
            QueueingHint.SKIP,
            id="skip a deleted pod with an in-tree volume berth does not count",
        ),
    ],
)
def test_is_schedulable_after_assigned_pod_deleted(deleted: JSON, expected: QueueingHint) -> None:
    """A deleted bound pod helps when it had a volume this plugin counts. Where upstream
    looks for in-tree volumes it would translate to CSI, berth looks for inline CSI volumes,
    which it counts (and translates nothing)."""
    hint = hint_for(plugin(), "AssignedPodDelete")
    pod = with_volumes("p", claim_volume("c2"))
    assert hint(record(pod), record(deleted), None) is expected


def in_ns1(name: str, *volumes: JSON) -> JSON:
    raw = with_volumes(name, *volumes)
    raw["metadata"]["namespace"] = "ns1"
    return raw


@pytest.mark.parametrize(
    ("pod", "added", "expected"),
    [
        # Upstream's TestCSILimitsAddedPVCQHint.
        pytest.param(
            in_ns1("p"),
            pvc("pvc1", namespace="ns2"),
            QueueingHint.SKIP,
            id="a pod isn't in the same namespace as an added PVC",
        ),
        pytest.param(
            in_ns1("p", claim_volume("pvc1")),
            pvc("pvc1", namespace="ns1"),
            QueueingHint.QUEUE,
            id="a pod is in the same namespace as an added PVC",
        ),
        pytest.param(
            in_ns1("pod1", ephemeral_volume("ephemeral")),
            pvc("pod1-ephemeral", namespace="ns1"),
            QueueingHint.QUEUE,
            id="a pod has an ephemeral volume related to an added PVC",
        ),
        pytest.param(
            in_ns1("p", claim_volume("pvc1")),
            pvc("pvc2", namespace="ns1"),
            QueueingHint.SKIP,
            id="a pod doesn't have the same PVC as an added PVC",
        ),
        pytest.param(
            in_ns1("p"),
            pvc("pvc2", namespace="ns1"),
            QueueingHint.SKIP,
            id="a pod doesn't have any PVC attached",
        ),
    ],
)
def test_is_schedulable_after_pvc_added(pod: JSON, added: JSON, expected: QueueingHint) -> None:
    """A claim of the pod's (by name or its ephemeral volume's) created moves it."""
    hint = hint_for(plugin(), "PersistentVolumeClaimAdd")
    assert hint(record(pod), None, record(added)) is expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestCSILimitsAfterCSINodeUpdatedQHint.
        pytest.param(
            csi_node("test-node", ebs_csi_aws_com=1),
            csi_node("test-node", ebs_csi_aws_com=2),
            QueueingHint.QUEUE,
            id="limit raised, queue",
        ),
        pytest.param(
            csi_node("test-node", ebs_csi_aws_com=2),
            csi_node("test-node", ebs_csi_aws_com=1),
            QueueingHint.SKIP,
            id="limit decreased, skip queueing",
        ),
        pytest.param(
            csi_node("test-node", ebs_csi_aws_com=1),
            csi_node("test-node", ebs_csi_aws_com=1),
            QueueingHint.SKIP,
            id="limit unchanged, skip queueing",
        ),
        # berth: a driver without a count has no limit (in both Filters), so losing the
        # count, or the driver, lifts the limit; upstream's hint reads a missing count as 0.
        pytest.param(
            csi_node("test-node", ebs_csi_aws_com=1),
            csi_node("test-node", ebs_csi_aws_com=None),
            QueueingHint.QUEUE,
            id="limit removed, queue",
        ),
        pytest.param(
            csi_node("test-node", ebs_csi_aws_com=1),
            csi_node("test-node"),
            QueueingHint.QUEUE,
            id="driver with a limit removed, queue",
        ),
        pytest.param(
            csi_node("test-node", ebs_csi_aws_com=None),
            csi_node("test-node", ebs_csi_aws_com=5),
            QueueingHint.QUEUE,
            id="limit set where there was none, queue as upstream",
        ),
    ],
)
def test_is_schedulable_after_csi_node_updated(
    old: JSON, new: JSON, expected: QueueingHint
) -> None:
    """A CSINode update moves the pod when some driver's attach limit went up (or away)."""
    hint = hint_for(plugin(), "storage.k8s.io/CSINodeUpdate")
    pod = in_ns1("test-pod", claim_volume("c0"))
    assert hint(record(pod), record(old), record(new)) is expected
