"""Informer events → cache and store updates, and the ClusterEvents the queue moves pods on.

Upstream's pkg/scheduler/eventhandlers.go, on raw watch JSON. Each handler updates what
plugins read (the cache's NodeTable, the Handle's stores), then hands the queue the events
upstream would raise, with the compiled objects before and after for the queueing hints:

    nodes      NodeAdd, NodeDelete, and per update one event per changed property
               (NodeSchedulingPropertiesChange: taints/unschedulable, allocatable, labels,
               conditions, annotations, declared features)
    pods       unscheduled: add / update / delete in the queue; assigned: AssignedPodAdd,
               AssignedPod update events (labels, scale down/up, tolerations), AssignedPodDelete
               (also when a bound pod turns Succeeded/Failed)
    volumes    PersistentVolume, PersistentVolumeClaim, StorageClass, CSINode, CSIDriver,
               CSIStorageCapacity: Add/Update/Delete
    others     DeviceClass Add/Update, Namespace label updates (berth's own event), PDBs and
               PriorityClasses (kept for preemption and explain; events for completeness)

Every handler is timed into scheduler_event_handling_duration_seconds under its event label.
A malformed object is logged (or, for a pending pod, reported on the pod) and skipped; a
handler never raises into the informer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from scheduler import default_selector, volumes
from scheduler import framework as fw
from scheduler.cache import Cache
from scheduler.device_classes import DeviceClass
from scheduler.framework import ActionType, ClusterEvent
from scheduler.handle import ClusterHandle
from scheduler.kube.informer import DELETED
from scheduler.model import (
    InvalidObject,
    NodeInfo,
    PodInfo,
    claim_statuses,
    compile_node,
    compile_pdb,
    compile_pod,
    resize_state,
)
from scheduler.podgroups import compile_pod_group, group_key
from scheduler.queue import SchedulingQueue, pod_update_events

log = logging.getLogger("berth.events")

JSON = dict[str, Any]
Handler = Callable[[str, JSON, JSON | None], None]

_VOLUME_RESOURCES = {
    volumes.PVC: fw.PERSISTENT_VOLUME_CLAIM,
    volumes.PV: fw.PERSISTENT_VOLUME,
    volumes.STORAGE_CLASS: fw.STORAGE_CLASS,
    volumes.CSI_NODE: fw.CSI_NODE,
    volumes.CSI_DRIVER: fw.CSI_DRIVER,
    volumes.CSI_STORAGE_CAPACITY: fw.CSI_STORAGE_CAPACITY,
}


FailureReporter = Callable[[JSON, str], None]
"""(a pending pod's JSON, message): report a pod berth cannot schedule as given."""


def node_update_events(old: JSON, new: JSON) -> list[ClusterEvent]:
    """Upstream's NodeSchedulingPropertiesChange on raw Node JSON: one Node event per
    changed property, in upstream's order; none for a heartbeat."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    old_status, new_status = old.get("status") or {}, new.get("status") or {}
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    actions: list[ActionType] = []
    if bool(old_spec.get("unschedulable")) and not new_spec.get("unschedulable"):
        actions.append(ActionType.UPDATE_NODE_TAINT)
    if (old_status.get("allocatable") or {}) != (new_status.get("allocatable") or {}):
        actions.append(ActionType.UPDATE_NODE_ALLOCATABLE)
    if (old_meta.get("labels") or {}) != (new_meta.get("labels") or {}):
        actions.append(ActionType.UPDATE_NODE_LABEL)
    taints_changed = (old_spec.get("taints") or []) != (new_spec.get("taints") or [])
    if taints_changed and ActionType.UPDATE_NODE_TAINT not in actions:
        actions.append(ActionType.UPDATE_NODE_TAINT)
    if _conditions(old_status) != _conditions(new_status):
        actions.append(ActionType.UPDATE_NODE_CONDITION)
    if (old_meta.get("annotations") or {}) != (new_meta.get("annotations") or {}):
        actions.append(ActionType.UPDATE_NODE_ANNOTATION)
    if old_spec.get("podPreemptionPolicy") != new_spec.get("podPreemptionPolicy"):
        actions.append(ActionType.UPDATE_NODE_PREEMPTION_POLICY)
    if (old_status.get("declaredFeatures") or []) != (new_status.get("declaredFeatures") or []):
        actions.append(ActionType.UPDATE_NODE_DECLARED_FEATURE)
    return [ClusterEvent(fw.NODE, action) for action in actions]


def _conditions(status: JSON) -> dict[str, str]:
    return {c.get("type", ""): c.get("status", "") for c in status.get("conditions") or []}


class EventHandlers:
    """The informers' handlers (kind is ADDED, MODIFIED or DELETED; old is the previous
    version of the object, None on ADDED). `profiles` are the scheduler names berth serves;
    `node_selector` restricts the nodes of a shard; `report_failure(pod JSON, message)`
    reports a pending pod that cannot be compiled; `observe(event label, seconds)` feeds
    scheduler_event_handling_duration_seconds."""

    def __init__(
        self,
        cache: Cache,
        queue: SchedulingQueue,
        handle: ClusterHandle,
        *,
        profiles: Iterable[str],
        node_selector: Mapping[str, str] | None = None,
        report_failure: FailureReporter | None = None,
        forget: Callable[[str], None] = lambda uid: None,
        bound: Callable[[str], None] = lambda uid: None,
        observe: Callable[[str, float], None] = lambda label, seconds: None,
    ) -> None:
        """`forget(uid)`: a pod is gone; `bound(uid)`: a pod is seen bound (by anyone), so a
        status write still queued for it is stale."""
        self.cache = cache
        self.queue = queue
        self.handle = handle
        self.profiles = frozenset(profiles)
        self.node_selector = dict(node_selector or {})
        self._report_failure = report_failure
        self._forget = forget
        self._bound = bound
        self._observe = observe
        self.priority_classes: dict[str, int] = {}

    def _emit(self, event: ClusterEvent, old: Any, new: Any, start: float) -> None:
        self.queue.on_event(event, old, new)
        self._observe(event.label, time.perf_counter() - start)

    # --- nodes ---------------------------------------------------------------------------

    def _in_shard(self, obj: JSON) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.node_selector.items())

    def on_node(self, kind: str, obj: JSON, old: JSON | None) -> None:
        start = time.perf_counter()
        name = (obj.get("metadata") or {}).get("name", "")
        known = self._known_node(name)
        if kind == DELETED or not self._in_shard(obj):
            if known is not None:
                self.cache.remove_node(name)
                self._emit(fw.NODE_DELETE, known, None, start)
            return
        try:
            node = compile_node(obj)
        except InvalidObject as err:
            log.warning("ignoring malformed node", extra={"node": name, "error": str(err)})
            return
        if known is None:
            self.cache.upsert_node(node)
            self._emit(fw.NODE_ADD, None, node, start)
            return
        if not known.same_for_scheduling(node):
            self.cache.upsert_node(node)
        if old is None:
            return  # a relist's ADDED for a node already known, unchanged or just updated
        # Kubelets report status every few minutes per node: a heartbeat changes none of the
        # properties below and raises no event, so no waiting pod is retried for nothing.
        for event in node_update_events(old, obj):
            self._emit(event, known, node, start)

    def _known_node(self, name: str) -> NodeInfo | None:
        table = self.cache.table
        row = table.row_of.get(name)
        return table.nodes[row] if row is not None else None

    # --- pods ----------------------------------------------------------------------------

    def on_pod(self, kind: str, obj: JSON, old: JSON | None) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        uid = meta.get("uid", "")
        phase = (obj.get("status") or {}).get("phase")
        start = time.perf_counter()
        if kind == DELETED or phase in ("Succeeded", "Failed"):
            queued = self.queue.pods.get(uid)
            self.queue.delete(uid)
            self.handle.pod_groups.untrack(uid)
            self._forget(uid)
            waiting = self.handle.waiting_pods.get(uid)
            if waiting is not None:
                # Upstream's handleAssumedPodDeletion: a pod deleted while it waits in Permit
                # is rejected, so its binding cycle unreserves it at once.
                waiting.reject("", "removed")
            removed = self.cache.remove_pod(uid)
            if removed is not None:
                self._emit(fw.ASSIGNED_POD_DELETE, removed, None, start)
            elif queued is not None:
                self._emit(fw.UNSCHEDULED_POD_DELETE, queued.pod, None, start)
            return
        old_meta = (old or {}).get("metadata") or {}
        unchanged = (
            old is not None
            and old.get("spec") == spec
            and old_meta.get("labels") == meta.get("labels")
            # A deletion starting matters to preemption (victims terminating on a node).
            and old_meta.get("deletionTimestamp") == meta.get("deletionTimestamp")
            # The ResourceClaims generated for it (DynamicResources waits for them).
            and claim_statuses(old) == claim_statuses(obj)
        )
        if spec.get("nodeName"):
            if not (old or {}).get("spec", {}).get("nodeName"):
                self._bound(uid)
            self._on_assigned_pod(uid, obj, old, unchanged, start)
            return
        if (spec.get("schedulerName") or "default-scheduler") not in self.profiles:
            return
        if meta.get("deletionTimestamp"):
            self.queue.delete(uid)
            return
        try:
            pod = compile_pod(obj)
        except InvalidObject as err:
            if self._report_failure is not None:
                self._report_failure(obj, f"invalid pod: {err}")
            return
        if self.cache.is_assumed(uid):
            return  # binding in flight: the watch will show nodeName soon
        if unchanged and uid in self.queue.pods:
            return  # only status changed (e.g. our own PodScheduled condition)
        if pod.pod_group is not None:
            self._track_member(pod)
        self.queue.add(pod)

    def _track_member(self, pod: PodInfo) -> None:
        """A member of a PodGroup (pending or bound) is counted in its group. The member that
        completes a gang's quorum lets the others out of PreEnqueue at once: upstream's
        GangScheduling hint on the pod's Add, without scanning every gated pod."""
        store = self.handle.pod_groups
        known = store.all_count(group_key(pod) or ("", "", ""))
        store.track(pod)
        key = group_key(pod)
        group = store.groups.get(key) if key is not None else None
        if (
            key is not None
            and group is not None
            and known < group.min_count <= store.all_count(key)
        ):
            self.queue.ungate([p.uid for p in store.pods(key)], GANG_SCHEDULING)

    def _on_assigned_pod(
        self, uid: str, obj: JSON, old: JSON | None, unchanged: bool, start: float
    ) -> None:
        self.queue.delete(uid)
        node = (obj.get("spec") or {}).get("nodeName")
        if (
            unchanged
            and self.cache.node_of(uid) == node
            and resize_state((old or {}).get("status")) == resize_state(obj.get("status"))
        ):
            return  # a status change of a bound pod (kubelet, KWOK) that moves no request
        try:
            pod = compile_pod(obj)
        except InvalidObject as err:
            log.warning("malformed bound pod", extra={"pod": _key(obj), "error": str(err)})
            return
        before = self.cache.bound_pod(uid)
        self.cache.add_pod(pod)
        if pod.pod_group is not None:
            self._track_member(pod)
        if before is None:
            # Also our own binds, confirmed by the watch: upstream raises AssignedPodAdd for
            # every pod that enters the cache as bound.
            self._emit(fw.ASSIGNED_POD_ADD, None, pod, start)
            return
        for event in pod_update_events(before, pod, fw.ASSIGNED_POD):
            self._emit(event, before, pod, start)

    # --- the other objects ---------------------------------------------------------------

    def on_namespace(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """Namespace labels for namespaceSelector terms; a label change is an event."""
        start = time.perf_counter()
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        if kind == DELETED:
            self.handle.namespaces.delete(name)
            return
        before = dict(self.handle.namespaces.get(name))
        labels = meta.get("labels") or {}
        if self.handle.namespaces.set(name, labels) and old is not None:
            self._emit(fw.NAMESPACE_UPDATE_LABEL, (name, before), (name, dict(labels)), start)

    def on_priority_class(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """Kept for explain and preemption; pods carry their resolved spec.priority already.
        An event for a plugin that registers PriorityClass changes (none in-tree)."""
        start = time.perf_counter()
        name = (obj.get("metadata") or {}).get("name", "")
        before = self.priority_classes.get(name)
        if kind == DELETED:
            self.priority_classes.pop(name, None)
            after = None
        else:
            after = self.priority_classes[name] = int(obj.get("value") or 0)
        self._emit(ClusterEvent(fw.PRIORITY_CLASS, _action(kind, old)), before, after, start)

    def on_pdb(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """PodDisruptionBudgets, for preemption's choice of victims. An event for a plugin
        that registers PDB changes (none in-tree)."""
        start = time.perf_counter()
        key = _key(obj)
        before = self.handle.budgets.pop(key, None)
        if kind != DELETED:
            try:
                self.handle.budgets[key] = compile_pdb(obj)
            except InvalidObject as err:
                log.warning("ignoring malformed PDB", extra={"object": key, "error": str(err)})
                return
        after = self.handle.budgets.get(key)
        self._emit(ClusterEvent(fw.POD_DISRUPTION_BUDGET, _action(kind, old)), before, after, start)

    def on_device_class(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """DeviceClasses, for the extended resources they back (DRAExtendedResource). Upstream
        registers no deletion, which cannot make a pod fit, so none is raised."""
        start = time.perf_counter()
        try:
            device_class = self.handle.device_classes.apply(obj, deleted=kind == DELETED)
            before = DeviceClass.compile(old) if old is not None else None
        except (InvalidObject, ValueError, TypeError, KeyError) as err:
            log.warning("ignoring malformed DeviceClass", extra={"error": str(err)})
            return
        if kind == DELETED:
            return
        event = fw.DEVICE_CLASS_ADD if old is None else fw.DEVICE_CLASS_UPDATE
        self._emit(event, before, device_class, start)

    def on_resource_claim(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """ResourceClaims: the devices taken, and the claims pods wait for (DynamicResources'
        hint looks at each change)."""
        start = time.perf_counter()
        try:
            before, after = self.handle.resource_claims.apply(obj, deleted=kind == DELETED)
        except (InvalidObject, ValueError, TypeError, AttributeError) as err:
            log.warning(
                "ignoring malformed ResourceClaim", extra={"object": _key(obj), "error": str(err)}
            )
            return
        action = _action(kind, old)
        self._emit(
            ClusterEvent(fw.RESOURCE_CLAIM, action),
            before,
            None if kind == DELETED else after,
            start,
        )

    def on_resource_slice(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """ResourceSlices: the devices drivers publish. Upstream registers no deletion (it
        cannot make a pod fit), so none is raised."""
        start = time.perf_counter()
        try:
            after = self.handle.resource_slices.apply(obj, deleted=kind == DELETED)
        except (InvalidObject, ValueError, TypeError, AttributeError) as err:
            log.warning(
                "ignoring malformed ResourceSlice", extra={"object": _key(obj), "error": str(err)}
            )
            if kind != DELETED:  # its old version is forgotten; the pool may be incomplete now
                self.handle.resource_slices.apply(obj, deleted=True)
            return
        if kind != DELETED:
            self._emit(ClusterEvent(fw.RESOURCE_SLICE, _action(kind, old)), None, after, start)

    def pod_group_handler(self, api: str) -> Handler:
        """The handler for one PodGroup API (model.UPSTREAM_POD_GROUPS or
        COSCHEDULING_POD_GROUPS). A group that appears, or whose minCount drops, lets its
        members out of PreEnqueue (upstream's PodGroup Add/Update hints), directly rather
        than by an event every gated pod would be checked against."""

        def on_event(kind: str, obj: JSON, old: JSON | None) -> None:
            meta = obj.get("metadata") or {}
            key = (api, meta.get("namespace") or "default", meta.get("name") or "")
            store = self.handle.pod_groups
            if kind == DELETED:
                store.apply(None, key)
                return
            try:
                group = compile_pod_group(api, obj)
            except InvalidObject as err:
                log.warning(
                    "ignoring malformed PodGroup",
                    extra={"object": _key(obj), "api": api, "error": str(err)},
                )
                store.apply(None, key)
                store.invalid[key] = str(err)
                # Its gated members say why at once instead of waiting for it "to appear".
                self.queue.ungate([p.uid for p in store.pods(key)], GANG_SCHEDULING)
                return
            before = store.apply(group, key)
            if before is None or group.min_count < before.min_count:
                self.queue.ungate([p.uid for p in store.pods(key)], GANG_SCHEDULING)

        return on_event

    def volume_handler(self, store_kind: str) -> Handler:
        """The handler for one volume object kind (volumes.PVC, PV, STORAGE_CLASS, CSI_NODE,
        CSI_DRIVER, CSI_STORAGE_CAPACITY)."""
        resource = _VOLUME_RESOURCES[store_kind]

        def on_event(kind: str, obj: JSON, old: JSON | None) -> None:
            start = time.perf_counter()
            try:
                before, after = self.handle.volumes.apply(store_kind, obj, deleted=kind == DELETED)
            except InvalidObject as err:
                log.warning(
                    "ignoring malformed object",
                    extra={"kind": store_kind, "object": _key(obj), "error": str(err)},
                )
                return
            if kind == DELETED:
                action = ActionType.DELETE
            elif old is None and before is None:
                action = ActionType.ADD
            else:
                action = ActionType.UPDATE
            self._emit(ClusterEvent(resource, action), before, after, start)

        return on_event

    def selector_handler(self, store_kind: str) -> Handler:
        """The handler for one workload kind feeding the default spread selector."""

        def on_event(kind: str, obj: JSON, old: JSON | None) -> None:
            try:
                self.handle.selectors.apply(store_kind, obj, deleted=kind == DELETED)
            except InvalidObject as err:
                log.warning(
                    "ignoring malformed selector",
                    extra={"kind": store_kind, "object": _key(obj), "error": str(err)},
                )

        return on_event


GANG_SCHEDULING = "GangScheduling"  # the PreEnqueue plugin that gates pods on their group

SELECTOR_SOURCES = (
    ("/api/v1/services", default_selector.SERVICE),
    ("/api/v1/replicationcontrollers", default_selector.REPLICATION_CONTROLLER),
    ("/apis/apps/v1/replicasets", default_selector.REPLICA_SET),
    ("/apis/apps/v1/statefulsets", default_selector.STATEFUL_SET),
)
VOLUME_SOURCES = (
    ("/api/v1/persistentvolumeclaims", volumes.PVC),
    ("/api/v1/persistentvolumes", volumes.PV),
    ("/apis/storage.k8s.io/v1/storageclasses", volumes.STORAGE_CLASS),
    ("/apis/storage.k8s.io/v1/csinodes", volumes.CSI_NODE),
    # VolumeBinding's storage capacity check (CSIStorageCapacity, GA since v1.24)
    ("/apis/storage.k8s.io/v1/csidrivers", volumes.CSI_DRIVER),
    ("/apis/storage.k8s.io/v1/csistoragecapacities", volumes.CSI_STORAGE_CAPACITY),
)


def _action(kind: str, old: JSON | None) -> ActionType:
    if kind == DELETED:
        return ActionType.DELETE
    return ActionType.ADD if old is None else ActionType.UPDATE


def _key(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
