"""DynamicResources: keeps pods that need DRA devices from being bound without an allocation.

Upstream's plugin allocates the devices of a pod's ResourceClaims (spec.resourceClaims) on the
node it picks, and writes the allocation before binding. berth does not allocate devices yet,
so a pod with claims could only be bound to a node where nothing was set aside for it. Until
berth allocates, PreFilter rejects such a pod as UnschedulableAndUnresolvable with a message
that says why; preemption cannot help and no cluster event changes it. A claim from a template
(which the ResourceClaim controller turns into a claim) counts like one named directly; pods
without spec.resourceClaims are skipped.

PostFilter mirrors upstream's only where it shows in messages: upstream reads the state its
PreFilter wrote, and when an earlier PreFilter plugin rejected the pod as unresolvable its
PreFilter never ran, so PostFilter fails with the lookup error, "not found"; that error stops
PostFilter before preemption and ends the FailedScheduling message ("0/3 nodes are available:
pod affinity terms conflict. not found"). Otherwise it has nothing to deallocate and lets
preemption run.

Not covered: extended resources that a DeviceClass maps to DRA (spec.extendedResourceName).
berth watches no DeviceClasses, so it cannot tell them from device-plugin resources; such a
request is judged by NodeResourcesFit against the node's allocatable, which lists no
DRA-backed resource, so those pods stay pending too (as "Insufficient ...").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import (
    SKIP,
    Code,
    CycleState,
    Diagnosis,
    Handle,
    NodeCheck,
    PostFilterResult,
    Status,
)
from scheduler.model import PodInfo
from scheduler.snapshot import NodeTable

NAME = "DynamicResources"
NOT_ALLOCATED = "berth does not allocate DRA devices yet: pod has resourceClaims [{}]"
NO_STATE = "not found"  # upstream's error reading a CycleState key that was never written
STATE_KEY = "PreFilter" + NAME


class DynamicResources:
    name = NAME
    row_local = True  # the verdict depends on the pod alone

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        state.write(STATE_KEY, pod.resource_claims)  # before anything else, as upstream
        if not pod.resource_claims:
            return SKIP
        claims = " ".join(pod.resource_claims)
        return Status.unschedulable(NOT_ALLOCATED.format(claims), resolvable=False)

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


def new(args: Mapping[str, Any], handle: Handle) -> DynamicResources:
    return DynamicResources()
