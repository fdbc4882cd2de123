"""NodeVolumeLimits: a node attaches at most as many volumes of a CSI driver as its CSINode
says (spec.drivers[].allocatable.count).

The pod's new volumes are its claims' PVs (driver and volumeHandle from spec.csi; an unbound
claim counts under its StorageClass's provisioner) and its inline CSI volumes. A volume the node
already has attached does not count twice. Nodes without a CSINode, or whose CSINode reports no
count for the driver, have no limit: on a control plane without CSI drivers (no kubelet
registers any) the plugin passes every node. In-tree volumes are not translated to their CSI
drivers (upstream's CSI migration), so they are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler.framework import (
    ASSIGNED_POD,
    CSI_NODE,
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
    Status,
    VolumeStore,
)
from scheduler.model import PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeVolumeLimits"
ERR_REASON = "node(s) exceed max volume count"


class NodeVolumeLimits:
    name = NAME

    def __init__(self, store: VolumeStore) -> None:
        self.store = store

    def row_local_for(self, pod: PodInfo) -> bool:
        return not any(v.kind in ("pvc", "csi") for v in pod.volumes)

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's: a CSINode added (no hint: any may carry the limits) or changed, a bound
        pod deleted, a claim the pod uses created."""
        return [
            ClusterEventWithHint(ClusterEvent(CSI_NODE, ActionType.ADD)),
            ClusterEventWithHint(
                ClusterEvent(CSI_NODE, ActionType.UPDATE),
                self.is_schedulable_after_csi_node_updated,
            ),
            ClusterEventWithHint(
                ClusterEvent(ASSIGNED_POD, ActionType.DELETE),
                self.is_schedulable_after_assigned_pod_deleted,
            ),
            ClusterEventWithHint(
                ClusterEvent(PERSISTENT_VOLUME_CLAIM, ActionType.ADD),
                self.is_schedulable_after_pvc_added,
            ),
            # Not registered: VolumeAttachment/Delete, which berth does not watch (it counts
            # the volumes of the pods on the node, not VolumeAttachments).
        ]

    @staticmethod
    def is_schedulable_after_assigned_pod_deleted(
        pod: PodInfo, old: PodInfo, new: None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterAssignedPodDeleted: a bound (or nominated) pod with
        a volume this plugin counts: a claim (ephemeral ones too) or, where upstream looks for
        in-tree volumes it would translate to CSI, an inline CSI volume (berth counts those
        and translates nothing)."""
        if not old.node_name and not old.nominated_node_name:
            return QueueingHint.SKIP
        if any(v.kind in ("pvc", "csi") for v in old.volumes):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_pvc_added(pod: PodInfo, old: None, new: Claim) -> QueueingHint:
        """Upstream's isSchedulableAfterPVCAdded: a claim of the pod's, by name or as its
        ephemeral volume's claim."""
        if new.namespace != pod.namespace:
            return QueueingHint.SKIP
        if any(v.kind == "pvc" and v.claim == new.name for v in pod.volumes):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_csi_node_updated(
        pod: PodInfo, old: Mapping[str, int | None], new: Mapping[str, int | None]
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterCSINodeUpdated: some driver's attach limit went up.
        Upstream reads a missing count as 0; berth (and both Filters) read it as no limit, so
        a limit that is removed, or a driver that disappears with its limit, also helps."""
        for driver, limit in new.items():
            before = old.get(driver)
            if limit is None:
                if before is not None:
                    return QueueingHint.QUEUE  # the limit is gone
            elif limit > (before or 0):
                return QueueingHint.QUEUE
        if any(limit is not None and driver not in new for driver, limit in old.items()):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        return None if any(v.kind in ("pvc", "csi") for v in pod.volumes) else SKIP

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        new = self._volumes(pod, strict=True)
        if isinstance(new, str):
            mask = np.zeros(rows.size, dtype=np.bool_)
            return FilterResult.reject(mask, new, resolvable=False)
        if not new:
            return FilterResult.all_pass(rows.size)
        drivers = set(new.values())
        mask = np.ones(rows.size, dtype=np.bool_)
        for i, row in enumerate(rows.tolist()):
            limits = self.store.csi_limits.get(table.node(row).name)
            if not limits or not any(limits.get(d) is not None for d in drivers):
                continue  # no limit for the pod's drivers on this node
            attached: dict[str, str] = {}
            for other in table.pods[row].values():
                found = self._volumes(other, strict=False)
                assert not isinstance(found, str)
                attached.update(found)
            adding = {k: d for k, d in new.items() if k not in attached}
            for driver in drivers:
                limit = limits.get(driver)
                if limit is None:
                    continue
                have = sum(1 for d in attached.values() if d == driver)
                want = sum(1 for d in adding.values() if d == driver)
                if have + want > limit:
                    mask[i] = False
                    break
        return FilterResult.reject(mask, ERR_REASON)

    def _volumes(self, pod: PodInfo, *, strict: bool) -> dict[str, str] | str:
        """The pod's CSI volumes, unique name -> driver. `strict` (the pod being scheduled):
        a missing claim is an error message; for pods already placed it is skipped, as
        upstream does."""
        out: dict[str, str] = {}
        for vol in pod.volumes:
            if vol.kind == "csi":
                out[f"{vol.disk[0]}/{pod.uid}-{vol.name}"] = vol.disk[0]
                continue
            if vol.kind != "pvc":
                continue
            claim = self.store.claim(pod.namespace, vol.claim)
            if claim is None:
                if strict:
                    return (
                        f"looking up PVC {pod.namespace}/{vol.claim}: "
                        f'persistentvolumeclaim "{vol.claim}" not found'
                    )
                continue
            pv = self.store.volume(claim.volume_name) if claim.volume_name else None
            if pv is not None and pv.csi_driver:
                out[f"{pv.csi_driver}/{pv.csi_handle}"] = pv.csi_driver
            elif pv is None:
                cls = self.store.class_of(claim)
                if cls is not None and cls.provisioner:
                    # Not provisioned yet: the provisioner names the driver it will use.
                    out[f"{cls.provisioner}/{claim.namespace}/{claim.name}"] = cls.provisioner
        return out


def new(args: Mapping[str, Any], handle: Handle) -> NodeVolumeLimits:
    return NodeVolumeLimits(handle.volumes)
