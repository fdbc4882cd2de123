"""VolumeRestrictions: the cases of upstream's volume_restrictions_test.go (GCE PD, AWS EBS,
RBD and ISCSI disk conflicts, ReadWriteOncePod access-mode conflicts)."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import volume_restrictions
from plugins.volume_restrictions import ERR_DISK_CONFLICT, ERR_RWOP_CONFLICT
from scheduler.framework import Code, CycleState, QueueingHint, Status
from scheduler.model import compile_pod
from tests.builders import make_node
from tests.unit.plugins.volume_builders import (
    OTHER_VOLUMES,
    claim_volume,
    pvc,
    record,
    volume_handle,
    with_volumes,
)
from tests.unit.tables import build_table, filter_reasons, hint_for, registered, unresolvable

JSON = dict[str, Any]


def plugin(*objects: JSON) -> volume_restrictions.VolumeRestrictions:
    return volume_restrictions.new({}, volume_handle(*objects))


def gce(pd: str, read_only: bool = False) -> JSON:
    return {"name": f"gce-{pd}", "gcePersistentDisk": {"pdName": pd, "readOnly": read_only}}


def aws(volume_id: str) -> JSON:
    return {"name": f"aws-{volume_id}", "awsElasticBlockStore": {"volumeID": volume_id}}


def rbd(monitors: list[str], pool: str, image: str, read_only: bool = False) -> JSON:
    spec = {"monitors": monitors, "pool": pool, "image": image, "readOnly": read_only}
    return {"name": f"rbd-{image}", "rbd": spec}


def iscsi(iqn: str, read_only: bool = False) -> JSON:
    spec = {"targetPortal": "127.0.0.1:3260", "iqn": iqn, "lun": 0, "readOnly": read_only}
    return {"name": "iscsi", "iscsi": spec}


CONFLICT = [ERR_DISK_CONFLICT]


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        pytest.param([], [], [], id="nothing"),
        pytest.param([], [gce("foo")], [], id="empty-pod"),
        pytest.param([gce("foo")], [gce("foo")], CONFLICT, id="gce-same-disk"),
        pytest.param([gce("bar")], [gce("foo")], [], id="gce-other-disk"),
        pytest.param([gce("foo", True)], [gce("foo", True)], [], id="gce-both-read-only"),
        pytest.param([gce("foo", True)], [gce("foo")], CONFLICT, id="gce-one-read-write"),
        pytest.param([aws("foo")], [aws("foo")], CONFLICT, id="aws-same-volume"),
        pytest.param([aws("bar")], [aws("foo")], [], id="aws-other-volume"),
        pytest.param(
            [rbd(["a", "b"], "foo", "bar")],
            [rbd(["a", "b"], "foo", "bar")],
            CONFLICT,
            id="rbd-same-image",
        ),
        pytest.param(
            [rbd(["c", "d"], "foo", "bar")],
            [rbd(["a", "b"], "foo", "bar")],
            [],
            id="rbd-no-common-monitor",
        ),
        pytest.param(
            [rbd(["b", "c"], "foo", "bar")],
            [rbd(["a", "b"], "foo", "bar")],
            CONFLICT,
            id="rbd-one-common-monitor",
        ),
        pytest.param(
            [rbd(["a"], "foo", "bar", True)],
            [rbd(["a"], "foo", "bar", True)],
            [],
            id="rbd-both-read-only",
        ),
        pytest.param(
            [rbd(["a"], "other", "bar")], [rbd(["a"], "foo", "bar")], [], id="rbd-other-pool"
        ),
        pytest.param([iscsi("iqn.a")], [iscsi("iqn.a")], CONFLICT, id="iscsi-same-iqn"),
        pytest.param([iscsi("iqn.b")], [iscsi("iqn.a")], [], id="iscsi-other-iqn"),
        pytest.param([iscsi("iqn.a", True)], [iscsi("iqn.a", True)], [], id="iscsi-read-only"),
        pytest.param([gce("foo")], [aws("foo")], [], id="different-kinds-never-conflict"),
        pytest.param([*OTHER_VOLUMES, gce("x")], OTHER_VOLUMES, [], id="other-volume-types"),
    ],
)
def test_disk_conflicts(mine: list[JSON], theirs: list[JSON], expected: list[str]) -> None:
    """The same in-tree disk on the node conflicts unless every mount is read-only."""
    table = build_table(
        [make_node("node1").obj_(), make_node("node2").obj_()],
        [with_volumes("existing", *theirs, node="node1")],
    )
    plugin_ = plugin()
    incoming = with_volumes("p", *mine)
    assert filter_reasons(plugin_, incoming, table) == {"node1": expected, "node2": []}
    if expected:
        assert unresolvable(plugin_, incoming, table) == {"node1": False}


def test_pre_filter_skips_pods_without_disks_or_rwop_conflicts() -> None:
    objects = [pvc("shared", modes=("ReadWriteMany",))]
    for raw in (with_volumes("p", *OTHER_VOLUMES), with_volumes("p", claim_volume("shared"))):
        status = plugin(*objects).pre_filter(CycleState(), compile_pod(raw), build_table([]))
        assert status is not None and status.code is Code.SKIP


def test_missing_claim_is_unresolvable() -> None:
    raw = with_volumes("p", claim_volume("gone"))
    status = plugin().pre_filter(CycleState(), compile_pod(raw), build_table([]))
    message = 'persistentvolumeclaim "gone" not found'
    assert status == Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), NAME)


NAME = "VolumeRestrictions"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        pytest.param([], {"node1": [], "node2": []}, id="claim-unused"),
        pytest.param(
            [with_volumes("other", claim_volume("rwop"), node="node2")],
            {"node1": [ERR_RWOP_CONFLICT], "node2": [ERR_RWOP_CONFLICT]},
            id="claim-in-use-on-another-node",
        ),
        pytest.param(
            [with_volumes("other", claim_volume("rwx"), node="node2")],
            {"node1": [], "node2": []},
            id="other-claim-in-use",
        ),
    ],
)
def test_read_write_once_pod(existing: list[JSON], expected: dict[str, list[str]]) -> None:
    """A ReadWriteOncePod claim that any assigned pod uses makes the pod fit nowhere; the
    reason is resolvable (preempting that pod helps)."""
    objects = [pvc("rwop", modes=("ReadWriteOncePod",)), pvc("rwx", modes=("ReadWriteMany",))]
    table = build_table([make_node("node1").obj_(), make_node("node2").obj_()], existing)
    plugin_ = plugin(*objects)
    incoming = with_volumes("p", claim_volume("rwop"), claim_volume("rwx"))
    assert filter_reasons(plugin_, incoming, table) == expected
    assert not any(unresolvable(plugin_, incoming, table).values())


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        pytest.param(ERR_DISK_CONFLICT, "node(s) had no available disk", id="disk-conflict"),
        pytest.param(
            ERR_RWOP_CONFLICT,
            "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode "
            "already in-use by another pod",
            id="read-write-once-pod-conflict-v1.34",
        ),
    ],
)
def test_reasons_are_upstreams_word_for_word(reason: str, text: str) -> None:
    """The Filter reasons are v1.37's volume_restrictions.go texts, so FailedScheduling
    messages read the same as kube-scheduler's."""
    assert reason == text


def test_disk_conflict_reported_before_rwop_conflict() -> None:
    objects = [pvc("rwop", modes=("ReadWriteOncePod",))]
    existing = [with_volumes("other", claim_volume("rwop"), gce("pd"), node="node1")]
    table = build_table([make_node("node1").obj_(), make_node("node2").obj_()], existing)
    incoming = with_volumes("p", claim_volume("rwop"), gce("pd"))
    assert filter_reasons(plugin(*objects), incoming, table) == {
        "node1": [ERR_DISK_CONFLICT],
        "node2": [ERR_RWOP_CONFLICT],
    }


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: AssignedPod/Delete and PersistentVolumeClaim/Add with
    hints, Node/Add without."""
    assert registered(plugin()) == [
        ("AssignedPodDelete", True),
        ("NodeAdd", False),
        ("PersistentVolumeClaimAdd", True),
    ]


@pytest.mark.parametrize(
    ("mine", "deleted", "expected"),
    [
        # Upstream's Test_isSchedulableAfterAssignedPodDeleted.
        pytest.param(
            [gce("foo")], [gce("foo")], QueueingHint.QUEUE, id="queue-new-object-gcedisk-conflict"
        ),
        pytest.param(
            [gce("foo")],
            [gce("bar")],
            QueueingHint.SKIP,
            id="skip-new-object-gcedisk-no-conflict",
        ),
        pytest.param(
            [aws("foo")], [aws("foo")], QueueingHint.QUEUE, id="queue-new-object-awsdisk-conflict"
        ),
        pytest.param(
            [aws("foo")],
            [aws("bar")],
            QueueingHint.SKIP,
            id="skip-new-object-awsdisk-no-conflict",
        ),
        pytest.param(
            [rbd(["a", "b"], "foo", "bar")],
            [rbd(["a", "b"], "foo", "bar")],
            QueueingHint.QUEUE,
            id="queue-new-object-rbddisk-conflict",
        ),
        pytest.param(
            [rbd(["a", "b"], "foo", "bar")],
            [rbd(["c", "d"], "foo", "bar")],
            QueueingHint.SKIP,
            id="skip-new-object-rbddisk-no-conflict",
        ),
        pytest.param(
            [iscsi("iqn.2016-12.server:storage.target01")],
            [iscsi("iqn.2016-12.server:storage.target01")],
            QueueingHint.QUEUE,
            id="queue-new-object-iscsidisk-conflict",
        ),
        pytest.param(
            [iscsi("iqn.2016-12.server:storage.target01")],
            [iscsi("iqn.2017-12.server:storage.target01")],
            QueueingHint.SKIP,
            id="skip-new-object-iscsidisk-no-conflict",
        ),
        pytest.param(
            [claim_volume("claim-rwop")],
            [claim_volume("claim-rwop")],
            QueueingHint.QUEUE,
            id="queue-has-same-claim",
        ),
        pytest.param(
            [claim_volume("claim-1-rwop")],
            [claim_volume("claim-2-rwop")],
            QueueingHint.SKIP,
            id="skip-no-same-claim",
        ),
    ],
)
def test_is_schedulable_after_assigned_pod_deleted(
    mine: list[JSON], deleted: list[JSON], expected: QueueingHint
) -> None:
    """A deleted pod of the namespace helps when its disk conflicted with the pod's, or it
    used one of the pod's claims."""
    hint = hint_for(plugin(), "AssignedPodDelete")
    pod, gone = with_volumes("pod1", *mine), with_volumes("pod2", *deleted)
    assert hint(record(pod), record(gone), None) is expected


def test_is_schedulable_after_assigned_pod_deleted_other_namespace() -> None:
    """Upstream's hint skips a deleted pod of another namespace first."""
    hint = hint_for(plugin(), "AssignedPodDelete")
    gone = with_volumes("pod2", gce("foo"))
    gone["metadata"]["namespace"] = "other"
    assert hint(record(with_volumes("pod1", gce("foo"))), record(gone), None) is QueueingHint.SKIP


def claims_pod(*claims: str, namespace: str = "default") -> JSON:
    """Upstream's MakePod().Namespace(ns).PVC(claim)...Node("node-1")."""
    raw = with_volumes("pod", *map(claim_volume, claims), node="node-1")
    raw["metadata"]["namespace"] = namespace
    return raw


@pytest.mark.parametrize(
    ("pod", "added", "expected"),
    [
        # Upstream's Test_isSchedulableAfterPersistentVolumeClaimChange.
        pytest.param(
            claims_pod("claim-with-rwx-1", "claim-with-rwx-2"),
            pvc("claim-with-rwx-1", modes=("ReadWriteMany",)),
            QueueingHint.QUEUE,
            id="queue-new-object-pvc-belong-pod",
        ),
        pytest.param(
            claims_pod("claim-with-rwx-1"),
            pvc("claim-with-rwx-2", modes=("ReadWriteMany",)),
            QueueingHint.SKIP,
            id="skip-new-object-unused",
        ),
        pytest.param(
            claims_pod("claim-with-rwx-1"),
            pvc("claim-with-rwx-2", modes=("ReadWriteMany",)),
            QueueingHint.SKIP,
            id="skip-nil-old-object",
        ),
        pytest.param(
            claims_pod("claim-with-rwx-1"),
            pvc("claim-with-rwx-2", modes=("ReadWriteMany",)),
            QueueingHint.SKIP,
            id="skip-new-object-not-belong-pod",
        ),
        pytest.param(
            claims_pod("claim-with-rwx-1", namespace="kube-system"),
            pvc("claim-with-rwx-1", modes=("ReadWriteMany",)),
            QueueingHint.SKIP,
            id="skip-new-object-namespace-not-equal-pod",
        ),
    ],
)
def test_is_schedulable_after_persistent_volume_claim_added(
    pod: JSON, added: JSON, expected: QueueingHint
) -> None:
    """A claim the pod names, created in its namespace, moves it."""
    hint = hint_for(plugin(), "PersistentVolumeClaimAdd")
    assert hint(record(pod), None, record(added)) is expected
