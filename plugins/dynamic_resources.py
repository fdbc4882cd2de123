"""DynamicResources: keeps pods that need DRA devices from being bound without an allocation.

Upstream's plugin allocates the devices of a pod's ResourceClaims (spec.resourceClaims) on the
node it picks, and writes the allocation before binding. berth does not allocate devices yet,
so a pod with claims could only be bound to a node where nothing was set aside for it. Until
berth allocates, PreFilter rejects such a pod as UnschedulableAndUnresolvable with a message
that says why; preemption cannot help and no cluster event changes it. A claim from a template
(which the ResourceClaim controller turns into a claim) counts like one named directly; pods
without spec.resourceClaims are skipped (unless they request a DRA extended resource, below).

PostFilter mirrors upstream's only where it shows in messages: upstream reads the state its
PreFilter wrote, and when an earlier PreFilter plugin rejected the pod as unresolvable its
PreFilter never ran, so PostFilter fails with the lookup error, "not found"; that error stops
PostFilter before preemption and ends the FailedScheduling message ("0/3 nodes are available:
pod affinity terms conflict. not found"). Otherwise it has nothing to deallocate and lets
preemption run.

Extended resources backed by DRA (DRAExtendedResource, GA in v1.37): a DeviceClass with
spec.extendedResourceName, or any class by its implicit name
deviceclass.resource.kubernetes.io/<class>, lets a pod ask for its devices with an ordinary
request such as `example.com/gpu: 1`. A node whose allocatable lists the resource serves it
through its device plugin, and NodeResourcesFit checks it there as always; on the other nodes
NodeResourcesFit leaves it to this plugin, whose Filter upstream allocates the devices in a
ResourceClaim it writes before binding. berth cannot, so its Filter rejects those nodes as
unresolvable, naming the resource and the class: the pod is bound only to a node with a device
plugin for it. The DeviceClasses come from the app's optional informer through the handle
(without resource.k8s.io/v1 no class backs anything). A pod requesting no backed resource is
skipped at PreFilter, as before; one that does is never served a cached (batched) verdict,
since a DeviceClass can change between cycles without touching a row.

Events are upstream's, less the DRA objects berth does not watch (ResourceClaims,
ResourceSlices): a node added, relabelled or given allocatable (a device plugin may start
serving a backed resource), a DeviceClass added or changed (it may stop backing a request), and
the pod's own generated claims showing up in its status, whose hint says what berth can do
about them: nothing while the pod has resourceClaims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler import pluginargs
from scheduler.framework import (
    DEVICE_CLASS,
    NODE,
    SKIP,
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    Code,
    CycleState,
    DeviceClassStore,
    Diagnosis,
    FilterResult,
    Handle,
    NodeCheck,
    PostFilterResult,
    QueueingHint,
    Reason,
    Status,
)
from scheduler.model import PodInfo
from scheduler.pluginargs import DynamicResourcesArgs
from scheduler.snapshot import NodeTable, Rows

NAME = "DynamicResources"
NOT_ALLOCATED = "berth does not allocate DRA devices yet: pod has resourceClaims [{}]"
# Counted per node in "0/N nodes are available: 3 node(s) would need ...".
EXTENDED_NOT_ALLOCATED = (
    "node(s) would need DRA devices for {resource} (DeviceClass {device_class}),"
    " which berth does not allocate yet"
)
NO_STATE = "not found"  # upstream's error reading a CycleState key that was never written
STATE_KEY = "PreFilter" + NAME


class DynamicResources:
    name = NAME

    def __init__(
        self, device_classes: DeviceClassStore, args: DynamicResourcesArgs | None = None
    ) -> None:
        self.device_classes = device_classes
        # Decoded and validated, but unused: berth neither filters devices (filterTimeout) nor
        # waits for device binding conditions (bindingTimeout), as it allocates none.
        self.args = args or DynamicResourcesArgs()

    def row_local_for(self, pod: PodInfo) -> bool:
        """Row-local unless the pod requests a resource a DeviceClass backs: then the verdict
        also depends on the DeviceClasses, which change without touching a row."""
        return not self.device_classes.backed(pod.requests)

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's, without hints where upstream has none."""
        return [
            ClusterEventWithHint(
                ClusterEvent(
                    NODE,
                    ActionType.ADD
                    | ActionType.UPDATE_NODE_LABEL
                    | ActionType.UPDATE_NODE_ALLOCATABLE,
                )
            ),
            # Not registered: ResourceClaim/Add|Update|Delete, which berth does not watch.
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_GENERATED_RESOURCE_CLAIM),
                self.is_schedulable_after_target_pod_update,
            ),
            ClusterEventWithHint(ClusterEvent(DEVICE_CLASS, ActionType.ADD | ActionType.UPDATE)),
            # Not registered: ResourceSlice/Add|Update, which berth does not watch.
        ]

    @staticmethod
    def is_schedulable_after_target_pod_update(
        pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterTargetPodUpdate queues once every claim of the pod
        exists. berth allocates none, so a pod with resourceClaims stays unschedulable
        whatever its status says; only one without them (a backed extended resource) may
        pass now."""
        return QueueingHint.SKIP if new.resource_claims else QueueingHint.QUEUE

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        backed = self.device_classes.backed(pod.requests)
        state.write(STATE_KEY, backed)  # before anything else, as upstream
        if pod.resource_claims:
            claims = " ".join(pod.resource_claims)
            return Status.unschedulable(NOT_ALLOCATED.format(claims), resolvable=False)
        return None if backed else SKIP

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        """Reject the rows whose allocatable lacks a backed request (upstream's
        filterExtendedResources finds there what DRA must allocate); each row counts once,
        under the first such resource by name."""
        backed: dict[str, str] | None = state.data.get(STATE_KEY)
        if backed is None:
            backed = self.device_classes.backed(pod.requests)
        mask = np.ones(rows.size, dtype=np.bool_)
        reasons = []
        for resource, device_class in backed.items():
            column = table.resource_index.get(resource)
            if column is None:  # no node lists it
                lacking = mask.copy()
            else:
                lacking = mask & (table.allocatable[rows, column] <= 0)
            if lacking.any():
                message = EXTENDED_NOT_ALLOCATED.format(
                    resource=resource, device_class=device_class
                )
                reasons.append(Reason(message, lacking, resolvable=False))
                mask &= ~lacking
        return FilterResult(mask, tuple(reasons))

    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        diagnosis: Diagnosis,
        check: NodeCheck,
    ) -> PostFilterResult:
        rejected = diagnosis.pre_filter
        # berth's PreFilter loop also stops at a resolvable rejection, where upstream's goes
        # on (and so runs this plugin's PreFilter): only an unresolvable one is upstream's case.
        if (
            STATE_KEY not in state.data
            and rejected is not None
            and rejected.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        ):
            return PostFilterResult(Status.error(NO_STATE), preemption=False)
        return PostFilterResult(Status(Code.UNSCHEDULABLE), preemption=False)


def new(args: DynamicResourcesArgs | Mapping[str, Any], handle: Handle) -> DynamicResources:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return DynamicResources(
        handle.device_classes, pluginargs.coerce(NAME, DynamicResourcesArgs, args)
    )
