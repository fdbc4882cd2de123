"""VolumeRestrictions: volumes that only one pod (or one node) may use at a time.

- ReadWriteOncePod claims: if any pod already assigned to a node uses one of the pod's RWOP
  claims, the pod fits nowhere ("node(s) unavailable due to PersistentVolumeClaim with
  ReadWriteOncePod access mode already in-use by another pod"; Unschedulable, since preempting
  that pod would help).
- The legacy in-tree disks, compared with the pods already on the node: the same GCE PD unless
  every mount is read-only, the same AWS EBS volume ID, the same ISCSI IQN unless both are
  read-only, the same Ceph RBD image (overlapping monitors, same pool and image) unless both are
  read-only: "node(s) had no available disk".

PreFilter skips pods with neither; a missing claim rejects the pod as upstream does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scheduler.framework import (
    ASSIGNED_POD,
    NODE,
    PERSISTENT_VOLUME_CLAIM,
    SKIP,
    ActionType,
    Claim,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
    Reason,
    Status,
    VolumeStore,
)
from scheduler.model import PodInfo, PodVolume
from scheduler.snapshot import NodeTable, Rows

NAME = "VolumeRestrictions"
STATE = "PreFilter" + NAME
ERR_DISK_CONFLICT = "node(s) had no available disk"
# v1.34's wording (v1.33: "node has pod using PersistentVolumeClaim with the same name ...").
ERR_RWOP_CONFLICT = (
    "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode already "
    "in-use by another pod"
)
_DISKS = ("gce", "aws", "iscsi", "rbd")


@dataclass(frozen=True)
class _State:
    disks: tuple[PodVolume, ...]
    rwop_in_use: int  # how many of the pod's ReadWriteOncePod claims assigned pods use


def volume_conflict(volume: PodVolume, existing: PodVolume) -> bool:
    """Upstream's isVolumeConflict for one pair of volumes."""
    if volume.kind != existing.kind or volume.kind not in _DISKS:
        return False
    both_read_only = volume.read_only and existing.read_only
    if volume.kind == "aws":
        return volume.disk == existing.disk
    if volume.kind in ("gce", "iscsi"):
        return volume.disk == existing.disk and not both_read_only
    # rbd: same pool and image, a monitor in common
    return (
        volume.disk == existing.disk
        and bool(set(volume.monitors) & set(existing.monitors))
        and not both_read_only
    )


class VolumeRestrictions:
    name = NAME

    def __init__(self, store: VolumeStore) -> None:
        self.store = store

    def row_local_for(self, pod: PodInfo) -> bool:
        # Disk conflicts read only the node's pods; claims read the store and every node.
        return not any(v.kind == "pvc" for v in pod.volumes)

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's: a bound pod deleted (spec.volumes is immutable, so pod updates cannot
        help), a node added (no hint, as upstream), a claim the pod uses created."""
        return [
            ClusterEventWithHint(
                ClusterEvent(ASSIGNED_POD, ActionType.DELETE),
                self.is_schedulable_after_assigned_pod_deleted,
            ),
            ClusterEventWithHint(ClusterEvent(NODE, ActionType.ADD)),
            ClusterEventWithHint(
                ClusterEvent(PERSISTENT_VOLUME_CLAIM, ActionType.ADD),
                self.is_schedulable_after_persistent_volume_claim_added,
            ),
        ]

    @staticmethod
    def is_schedulable_after_assigned_pod_deleted(
        pod: PodInfo, old: PodInfo, new: None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterAssignedPodDeleted: a pod of the same namespace whose
        disk conflicted with one of the pod's, or that used one of the pod's claims (it may
        have held a ReadWriteOncePod claim; upstream does not look the claim up either)."""
        if old.namespace != pod.namespace:
            return QueueingHint.SKIP
        if any(volume_conflict(mine, theirs) for mine in pod.volumes for theirs in old.volumes):
            return QueueingHint.QUEUE
        claims = {v.claim for v in pod.volumes if v.kind == "pvc" and not v.ephemeral}
        if any(v.kind == "pvc" and not v.ephemeral and v.claim in claims for v in old.volumes):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_persistent_volume_claim_added(
        pod: PodInfo, old: None, new: Claim
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterPersistentVolumeClaimAdded: a claim the pod names
        (spec.volumes[].persistentVolumeClaim) was created."""
        if new.namespace != pod.namespace:
            return QueueingHint.SKIP
        if any(v.kind == "pvc" and not v.ephemeral and v.claim == new.name for v in pod.volumes):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        computed = self._state(pod, table)
        if isinstance(computed, Status):
            return computed
        if not computed.disks and not computed.rwop_in_use:
            return SKIP
        state.write(STATE, computed)
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        computed = state.data.get(STATE)
        if computed is None:
            found = self._state(pod, table)
            if isinstance(found, Status):
                mask = np.zeros(rows.size, dtype=np.bool_)
                return FilterResult.reject(mask, found.message, resolvable=False)
            computed = found
        disk_ok = np.ones(rows.size, dtype=np.bool_)
        if computed.disks:
            for i, row in enumerate(rows.tolist()):
                disk_ok[i] = not any(
                    volume_conflict(mine, theirs)
                    for other in table.pods[row].values()
                    for theirs in other.volumes
                    for mine in computed.disks
                )
        rwop_ok = np.full(rows.size, computed.rwop_in_use == 0, dtype=np.bool_)
        # Upstream checks disks first: a node failing both reports the disk conflict.
        reasons = (
            Reason(ERR_DISK_CONFLICT, ~disk_ok),
            Reason(ERR_RWOP_CONFLICT, disk_ok & ~rwop_ok),
        )
        return FilterResult(disk_ok & rwop_ok, tuple(r for r in reasons if r.rejected.any()))

    def _state(self, pod: PodInfo, table: NodeTable) -> _State | Status:
        disks = tuple(v for v in pod.volumes if v.kind in _DISKS)
        rwop: set[str] = set()
        for vol in pod.volumes:
            if vol.kind != "pvc" or vol.ephemeral:
                continue
            claim = self.store.claim(pod.namespace, vol.claim)
            if claim is None:
                message = f'persistentvolumeclaim "{vol.claim}" not found'
                return Status.unschedulable(message, plugin=NAME, resolvable=False)
            if "ReadWriteOncePod" in claim.access_modes:
                rwop.add(claim.name)
        in_use = len(rwop & _claims_in_use(table, pod.namespace, rwop)) if rwop else 0
        return _State(disks, in_use)


def _claims_in_use(table: NodeTable, namespace: str, names: set[str]) -> set[str]:
    """Which of `names` pods assigned to nodes use (upstream's IsPVCUsedByPods). A scan of
    every assigned pod, paid only by pods with ReadWriteOncePod claims."""
    used: set[str] = set()
    for row in table.live_rows().tolist():
        for other in table.pods[row].values():
            if other.namespace != namespace:
                continue
            for vol in other.volumes:
                if vol.kind == "pvc" and vol.claim in names:
                    used.add(vol.claim)
    return used


def new(args: Mapping[str, Any], handle: Handle) -> VolumeRestrictions:
    return VolumeRestrictions(handle.volumes)
