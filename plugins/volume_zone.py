"""VolumeZone: a bound PersistentVolume's zone and region labels must match the node's.

PreFilter collects the topology labels (GA and beta zone/region; a value may list several
zones joined by "__") of the PVs bound to the pod's claims; unbound WaitForFirstConsumer claims
are skipped, other unbound claims and missing objects reject the pod as upstream does. Filter
passes nodes without any topology label (single-zone clusters) and otherwise needs each PV
label's value on the node, under the same key or its GA equivalent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scheduler.framework import (
    NODE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    SKIP,
    STORAGE_CLASS,
    ActionType,
    Claim,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
    Status,
    StorageClass,
    Volume,
    VolumeStore,
)
from scheduler.model import PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "VolumeZone"
STATE = "PreFilter" + NAME
ERR_REASON = "node(s) had no available volume zone"

BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
TOPOLOGY_LABELS = (BETA_ZONE, BETA_REGION, ZONE, REGION)
_GA = {BETA_ZONE: ZONE, BETA_REGION: REGION}


@dataclass(frozen=True)
class PVTopology:
    pv: str
    key: str
    values: frozenset[str]


class VolumeZone:
    name = NAME

    def __init__(self, store: VolumeStore) -> None:
        self.store = store

    def row_local_for(self, pod: PodInfo) -> bool:
        return not any(v.kind == "pvc" and not v.ephemeral for v in pod.volumes)

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's: a WaitForFirstConsumer StorageClass added (bindingMode is immutable, so
        updates cannot help); a node added or relabelled (no hint, as upstream); a claim of
        the pod's added or changed (volumeName filled in); a PV added or its zone labels
        changed."""
        add_or_update = ActionType.ADD | ActionType.UPDATE
        return [
            ClusterEventWithHint(
                ClusterEvent(STORAGE_CLASS, ActionType.ADD),
                self.is_schedulable_after_storage_class_added,
            ),
            ClusterEventWithHint(ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL)),
            ClusterEventWithHint(
                ClusterEvent(PERSISTENT_VOLUME_CLAIM, add_or_update),
                self.is_schedulable_after_persistent_volume_claim_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(PERSISTENT_VOLUME, add_or_update),
                self.is_schedulable_after_persistent_volume_change,
            ),
        ]

    @staticmethod
    def is_schedulable_after_persistent_volume_claim_change(
        pod: PodInfo, old: Claim | None, new: Claim
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterPersistentVolumeClaimChange: a claim the pod names
        (spec.volumes[].persistentVolumeClaim) in its namespace."""
        if new.namespace != pod.namespace:
            return QueueingHint.SKIP
        if any(v.kind == "pvc" and not v.ephemeral and v.claim == new.name for v in pod.volumes):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_storage_class_added(
        pod: PodInfo, old: None, new: StorageClass
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterStorageClassAdded: only a WaitForFirstConsumer class
        lets an unbound claim pass."""
        if new.binding_mode == "WaitForFirstConsumer":
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_persistent_volume_change(
        pod: PodInfo, old: Volume | None, new: Volume
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterPersistentVolumeChange: a PV added, or its topology
        labels changed."""
        if old is None or _pv_topologies(old) != _pv_topologies(new):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        topologies = self._topologies(pod)
        if isinstance(topologies, Status):
            return topologies
        if not topologies:
            return SKIP
        state.write(STATE, topologies)
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        topologies = state.data.get(STATE)
        if topologies is None:
            found = self._topologies(pod)
            if isinstance(found, Status):
                mask = np.zeros(rows.size, dtype=np.bool_)
                return FilterResult.reject(mask, found.message, resolvable=False)
            topologies = found
        if not topologies:
            return FilterResult.all_pass(rows.size)
        constrained = np.zeros(rows.size, dtype=np.bool_)
        for key in TOPOLOGY_LABELS:
            constrained |= table.label_column(key)[rows] >= 0
        ok = np.ones(rows.size, dtype=np.bool_)
        for topo in topologies:
            ids = np.asarray(table.value_ids(topo.key, topo.values), dtype=np.int32)
            column = table.label_column(topo.key)[rows]
            matched = np.isin(column, ids)
            if topo.key in _GA:
                # The node lacks the beta key: compare with its GA label instead.
                ga = _GA[topo.key]
                ga_ids = np.asarray(table.value_ids(ga, topo.values), dtype=np.int32)
                matched = np.where(
                    column >= 0, matched, np.isin(table.label_column(ga)[rows], ga_ids)
                )
            ok &= matched
        return FilterResult.reject(ok | ~constrained, ERR_REASON, resolvable=False)

    def _topologies(self, pod: PodInfo) -> list[PVTopology] | Status:
        out: list[PVTopology] = []
        for vol in pod.volumes:
            if vol.kind != "pvc" or vol.ephemeral:
                continue
            if not vol.claim:
                return _unresolvable("PersistentVolumeClaim had no name")
            claim = self.store.claim(pod.namespace, vol.claim)
            if claim is None:
                return _unresolvable(f'persistentvolumeclaim "{vol.claim}" not found')
            if not claim.volume_name:
                if not claim.storage_class:
                    return _unresolvable(
                        "PersistentVolumeClaim had no pv name and storageClass name"
                    )
                cls = self.store.storage_class(claim.storage_class)
                if cls is None:
                    return _unresolvable(
                        f'storageclass.storage.k8s.io "{claim.storage_class}" not found'
                    )
                if cls.binding_mode is None:
                    return _unresolvable(f'VolumeBindingMode not set for StorageClass "{cls.name}"')
                if cls.binding_mode == "WaitForFirstConsumer":
                    continue  # unbound: the volume's zone is not decided yet
                return _unresolvable("PersistentVolume had no name")
            pv = self.store.volume(claim.volume_name)
            if pv is None:
                return _unresolvable(f'persistentvolume "{claim.volume_name}" not found')
            out.extend(_pv_topologies(pv))
        return out


def _pv_topologies(pv: Volume) -> list[PVTopology]:
    """Upstream's getPVTopologies: the PV's well-formed zone and region labels."""
    return [
        PVTopology(pv.name, key, zones)
        for key in TOPOLOGY_LABELS
        if (value := pv.labels.get(key)) is not None and (zones := label_zones(value))
    ]


def label_zones(value: str) -> frozenset[str]:
    """Upstream's LabelZonesToSet: zones joined by "__" (or ","); a value with an empty zone
    is malformed and ignored (empty set)."""
    zones = [z.strip() for z in value.replace("__", ",").split(",")]
    return frozenset() if any(not z for z in zones) else frozenset(zones)


def _unresolvable(message: str) -> Status:
    return Status.unschedulable(message, plugin=NAME, resolvable=False)


def new(args: Mapping[str, Any], handle: Handle) -> VolumeZone:
    return VolumeZone(handle.volumes)
