"""NodeResourcesFit: Filter rejects nodes whose free allocatable cannot hold the pod's requests;
Score ranks the rest by the configured strategy (LeastAllocated by default, MostAllocated,
RequestedToCapacityRatio), as upstream's noderesources plugin does.

Filter and Score are single numpy expressions over the allocatable/requested columns.

DRA extended resources (DRAExtendedResource, GA in v1.37): a request that a DeviceClass backs
(its extendedResourceName, or the implicit deviceclass.resource.kubernetes.io/<class>) is
checked here only on nodes whose allocatable lists it, which serve it through a device plugin as
before. On the others upstream leaves it to DynamicResources, which would allocate devices; so
does berth, whose DynamicResources rejects those nodes since it allocates none yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler import pluginargs
from scheduler.framework import (
    ASSIGNED_POD,
    DEVICE_CLASS,
    NODE,
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    DeviceClass,
    DeviceClassStore,
    FilterResult,
    Handle,
    QueueingHint,
    Reason,
    Scores,
    Status,
)
from scheduler.model import CPU, EPHEMERAL, MEMORY, PODS, NodeInfo, PodInfo, is_scalar_resource
from scheduler.pluginargs import (
    DEFAULT_SHAPE,
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    REQUESTED_TO_CAPACITY_RATIO,
    NodeResourcesFitArgs,
)
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeResourcesFit"
TOO_MANY_PODS = "Too many pods"
_STATE = NAME + "/request"
_DELEGATED = NAME + "/dra"  # columns of the requests a DeviceClass backs


# The args (upstream's NodeResourcesFitArgs), decoded and validated by the configuration.
FitArgs = NodeResourcesFitArgs


def insufficient(resource: str) -> str:
    """The reason for a node short of `resource` (upstream's InsufficientResource.Reason)."""
    return TOO_MANY_PODS if resource == PODS else f"Insufficient {resource}"


def fits(request: Any, free: Any) -> Any:
    """Does `request` fit in `free`, what a node has left of a resource (allocatable minus
    what its pods request)? Ints, or numpy rows elementwise. Compared with free capacity, not
    by adding the request to the requested sum, which could overflow. Exported with
    `insufficient` so that preemption predicts this plugin's verdict by its own rules."""
    return request <= free


class NodeResourcesFit:
    name = NAME

    def __init__(self, args: FitArgs, device_classes: DeviceClassStore | None = None) -> None:
        self.args = args
        self._ignored_resources = frozenset(args.ignored_resources)
        self._ignored_groups = frozenset(args.ignored_resource_groups)
        strategy = args.scoring_strategy
        self._resources = tuple((r.name, r.weight) for r in strategy.resources)
        # The default strategy's resources, cpu then memory: weights for the fast path.
        names = tuple(name for name, _ in self._resources)
        self._cpu_memory = (
            np.asarray([w for _, w in self._resources], dtype=np.int64)
            if names == (CPU, MEMORY)
            else None
        )
        # (utilization, score 0..10) points; only read for RequestedToCapacityRatio
        self._shape = tuple(
            (p.utilization, p.score) for p in strategy.requested_to_capacity_ratio or DEFAULT_SHAPE
        )
        self.device_classes = device_classes if device_classes is not None else DeviceClassStore()

    def row_local_for(self, pod: PodInfo) -> bool:
        """Filter/Score of a node depend on the pod and that node only, unless the pod requests
        a resource a DeviceClass backs: then they also depend on the DeviceClasses, which can
        change between cycles without touching a row, so no verdict may be kept for it."""
        return not self.device_classes.backed(pod.requests)

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's, with v1.37's default gates (DRAExtendedResource and
        InPlacePodVerticalScaling on, InPlacePodVerticalScalingSchedulerPreemption off): a
        bound pod deleted or scaled down in place, a node added or given more allocatable, a
        DeviceClass added or changed (it may take a request off this plugin's hands), and the
        pod itself scaled down."""
        return [
            ClusterEventWithHint(
                ClusterEvent(ASSIGNED_POD, ActionType.DELETE),
                self.is_schedulable_after_assigned_pod_delete,
            ),
            ClusterEventWithHint(
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_ALLOCATABLE),
                self.is_schedulable_after_node_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(DEVICE_CLASS, ActionType.ADD | ActionType.UPDATE),
                self.is_schedulable_after_device_class_event,
            ),
            ClusterEventWithHint(
                ClusterEvent(ASSIGNED_POD, ActionType.UPDATE_POD_SCALE_DOWN),
                self.is_schedulable_after_assigned_pod_scale_down,
            ),
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_SCALE_DOWN),
                self.is_schedulable_after_target_pod_scale_down,
            ),
        ]

    @staticmethod
    def is_schedulable_after_assigned_pod_delete(
        pod: PodInfo, old: PodInfo, new: None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterAssignedPodDelete: any bound (or nominated) pod
        deleted may leave room."""
        if not old.node_name and not old.nominated_node_name:
            return QueueingHint.SKIP
        return QueueingHint.QUEUE

    @staticmethod
    def is_schedulable_after_target_pod_scale_down(
        pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterTargetPodScaleDown: the pod asks for less now."""
        return QueueingHint.QUEUE

    @staticmethod
    def is_schedulable_after_assigned_pod_scale_down(
        pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterAssignedPodScaleDown: worth another try only if the
        bound pod gave back some cpu, memory, ephemeral storage or scalar resource that the
        waiting pod requests."""
        if not new.node_name:
            return QueueingHint.SKIP
        if any(
            old.requests.get(name, 0) > new.requests.get(name, 0)
            for name, amount in pod.requests.items()
            if amount and (name in (CPU, MEMORY, EPHEMERAL) or is_scalar_resource(name))
        ):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def is_schedulable_after_node_change(
        self, pod: PodInfo, old: NodeInfo | None, new: NodeInfo
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterNodeChange: the pod fits the node when it is empty
        (isFit), and the node is new or offers more of something the pod requests
        (haveAnyRequestedResourcesIncreased)."""
        if not self._fits_empty(pod, new):
            return QueueingHint.SKIP
        if old is None or self._requested_increased(pod, old, new):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_device_class_event(
        pod: PodInfo, old: DeviceClass | None, new: DeviceClass
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterDeviceClassEvent: worth another try when the class now
        backs a resource the pod requests: by its implicit name when it is added (an update
        cannot rename it), or by an extendedResourceName it was added with or changed to."""
        if old is not None:
            if old.extended_resource_name == new.extended_resource_name:
                return QueueingHint.SKIP
        elif new.implicit_name in pod.requests:
            return QueueingHint.QUEUE
        if new.extended_resource_name and new.extended_resource_name in pod.requests:
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def _fits_empty(self, pod: PodInfo, node: NodeInfo) -> bool:
        """Upstream's isFit: the pod's requests against the node's allocatable alone (no pods,
        no ignored resources); a request a DeviceClass backs and the node does not list is
        DynamicResources' to judge."""
        if node.allocatable.get(PODS, 0) < 1:
            return False
        for name, amount in pod.requests.items():
            if amount <= 0 or not _fit_checks(name):
                continue
            if self._delegated_to_dra(name, node):
                continue
            if amount > node.allocatable.get(name, 0):
                return False
        return True

    def _requested_increased(self, pod: PodInfo, old: NodeInfo, new: NodeInfo) -> bool:
        """Upstream's haveAnyRequestedResourcesIncreased: more pods allowed, more of a
        resource the pod requests, or a requested scalar resource now delegated to DRA."""
        if new.allocatable.get(PODS, 0) > old.allocatable.get(PODS, 0):
            return True
        for name, amount in pod.requests.items():
            if amount <= 0 or not _fit_checks(name):
                continue
            if new.allocatable.get(name, 0) > old.allocatable.get(name, 0):
                return True
            if is_scalar_resource(name) and self._delegated_to_dra(name, new):
                return True
        return False

    def _delegated_to_dra(self, resource: str, node: NodeInfo) -> bool:
        """Upstream's shouldDelegateResourceToDRA for one node."""
        if node.allocatable.get(resource, 0) > 0:
            return False
        return self.device_classes.device_class(resource) is not None

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        state.write(_STATE, table.request_vector(pod))
        state.write(_DELEGATED, self._delegated(table, pod))
        return None

    def _delegated(self, table: NodeTable, pod: PodInfo) -> frozenset[int]:
        """Columns of the pod's requests that a DeviceClass backs (after request_vector, which
        gives every request a column)."""
        return frozenset(table.resource_index[r] for r in self.device_classes.backed(pod.requests))

    def _checked(self, table: NodeTable, request: npt.NDArray[np.int64]) -> list[int]:
        """Columns to check: requested (non-zero) and not ignored; pods always."""
        out = []
        for i, resource in enumerate(table.resources):
            if resource == PODS:
                out.append(i)
                continue
            if request[i] <= 0 or self._ignored(resource):
                continue
            out.append(i)
        return out

    def _ignored(self, resource: str) -> bool:
        """Only extended resources can be ignored (by name, or by the prefix before '/'); a name
        without '/' or under kubernetes.io/ is native, as upstream's IsExtendedResourceName."""
        if "/" not in resource or resource.startswith("kubernetes.io/"):
            return False
        group = resource.split("/", 1)[0]
        return resource in self._ignored_resources or group in self._ignored_groups

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        request = state.data.get(_STATE)
        delegated = state.data.get(_DELEGATED)
        if request is None or len(request) != len(table.resources) or delegated is None:
            request = table.request_vector(pod)
            delegated = self._delegated(table, pod)
        checked = self._checked(table, request)
        if not delegated and rows.size:
            # Every row fits every checked request (the usual case): one comparison over the
            # checked columns instead of the per-resource walk that names the shortages.
            free = table.allocatable[rows][:, checked] - table.requested[rows][:, checked]
            if fits(request[checked], free).all():
                return FilterResult.all_pass(rows.size)
        mask = np.ones(rows.size, dtype=np.bool_)
        reasons = []
        for i in checked:
            allocatable = table.allocatable[rows, i]
            short = ~fits(request[i], allocatable - table.requested[rows, i])
            if i in delegated:
                # Upstream's shouldDelegateResourceToDRA: a node without this resource in its
                # allocatable (or with none of it) is DynamicResources' to judge.
                short &= allocatable > 0
            if short.any():
                mask &= ~short
                # Upstream marks a request larger than the whole node as unresolvable (preemption
                # cannot help); "Too many pods" never is.
                never = short & ~fits(request[i], allocatable)
                if table.resources[i] == PODS:
                    never = np.zeros_like(short)
                if never.any():
                    reasons.append(Reason(insufficient(table.resources[i]), never, False))
                if (short & ~never).any():
                    reasons.append(Reason(insufficient(table.resources[i]), short & ~never))
        return FilterResult(mask, tuple(reasons))

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        kind = self.args.scoring_strategy.type
        if kind == LEAST_ALLOCATED and self._cpu_memory is not None:
            fast = _least_cpu_memory(table, pod, rows, self._cpu_memory)
            if fast is not None:
                return fast
        ratio = kind == REQUESTED_TO_CAPACITY_RATIO
        total = np.zeros(rows.size, dtype=np.int64)
        weights = np.zeros(rows.size, dtype=np.int64)
        for resource, weight in self._resources:
            capacity, requested = _allocatable_and_requested(table, pod, resource, rows)
            if capacity is None:
                continue
            counted = capacity > 0
            if kind == LEAST_ALLOCATED:
                score = _least(requested, capacity)
            elif kind == MOST_ALLOCATED:
                score = _most(requested, capacity)
            else:
                score = _ratio(requested, capacity, self._shape)
                # Upstream's requestedToCapacityRatio scorer leaves resources scoring 0 out of
                # the weighted mean altogether.
                counted &= score > 0
            total += np.where(counted, score * weight, 0)
            weights += np.where(counted, weight, 0)
        safe = np.maximum(weights, 1)
        if ratio:
            # math.Round(float64(total) / float64(weights)): halves round away from zero.
            return np.where(weights > 0, (2 * total + safe) // (2 * safe), 0)
        return np.where(weights > 0, total // safe, 0)

    def normalize(self, scores: Scores) -> Scores:
        return scores


def _least_cpu_memory(
    table: NodeTable, pod: PodInfo, rows: Rows, weights: npt.NDArray[np.int64]
) -> Scores | None:
    """LeastAllocated over cpu and memory (the default) in one pass over both columns, when
    every row has both and no capacity is near the int64 cap; None otherwise (the general path
    then runs). The same integer arithmetic as the general path: per resource
    (capacity - requested) * 100 // capacity, 0 when over capacity; weighted mean truncated."""
    capacity = table.allocatable[rows][:, :2]  # the table's first columns are cpu, memory
    if rows.size == 0 or not (capacity > 0).all() or int(capacity.max()) > _EXACT_LIMIT:
        return None
    requested = table.nonzero_requested[rows] + np.asarray(pod.scoring_requests, dtype=np.int64)
    per = np.where(requested > capacity, 0, (capacity - requested) * 100 // capacity)
    out: Scores = (per * weights).sum(axis=1) // int(weights.sum())
    return out


def _fit_checks(resource: str) -> bool:
    """Does Fits compare this request (cpu, memory, ephemeral storage, scalar resources;
    the pod count is checked apart)? Other names are not resources upstream counts."""
    return resource in (CPU, MEMORY, EPHEMERAL) or is_scalar_resource(resource)


def _allocatable_and_requested(
    table: NodeTable, pod: PodInfo, resource: str, rows: Rows
) -> tuple[Any, Any]:
    """Columns for scoring: cpu and memory count containers without requests at upstream's
    non-zero defaults (the pod's own as upstream's scorer asks for them, the node's as its pods
    were counted); a scalar resource the pod does not request is skipped, and so is any other
    name upstream does not score (e.g. pods)."""
    if resource == CPU:
        want = pod.scoring_requests[0]
        return table.allocatable[rows, 0], table.nonzero_requested[rows, 0] + want
    if resource == MEMORY:
        want = pod.scoring_requests[1]
        return table.allocatable[rows, 1], table.nonzero_requested[rows, 1] + want
    want = pod.requests.get(resource, 0)
    column = table.resource_index.get(resource)
    scalar = is_scalar_resource(resource)
    if column is None or (resource != EPHEMERAL and not scalar) or (scalar and want == 0):
        return None, None
    return table.allocatable[rows, column], table.requested[rows, column] + want


def _percent(part: Any, capacity: Any) -> Any:
    """part * 100 // capacity, exact in int64 where that cannot overflow; where a capacity
    is beyond int64 max / 100 (quantities are capped at int64), computed in float64
    instead, since the product would wrap."""
    safe = np.maximum(capacity, 1)
    if int(np.max(safe, initial=0)) <= _EXACT_LIMIT:
        return part * 100 // safe
    return np.floor(np.asarray(part, dtype=np.float64) * 100.0 / safe).astype(np.int64)


_EXACT_LIMIT = (2**63 - 1) // 100


def _least(requested: Any, capacity: Any) -> Any:
    return np.where(
        (capacity == 0) | (requested > capacity), 0, _percent(capacity - requested, capacity)
    )


def _most(requested: Any, capacity: Any) -> Any:
    return np.where(capacity == 0, 0, _percent(np.minimum(requested, capacity), capacity))


def _ratio(requested: Any, capacity: Any, shape: Sequence[tuple[int, int]]) -> Any:
    """Piecewise-linear function of utilization (percent) given by `shape`, scaled to 0..100."""
    utilization = np.where(
        (capacity == 0) | (requested > capacity),
        100,
        _percent(np.minimum(requested, capacity), capacity),
    ).astype(np.int64)
    # Shape scores are 0..10, node scores 0..100.
    return _broken_linear(utilization, [(u, s * 10) for u, s in shape])


def _broken_linear(p: Any, shape: Sequence[tuple[int, int]]) -> Any:
    """Upstream's helper.BuildBrokenLinearFunction in int64 arithmetic: the first point with
    p <= utilization decides; between points, interpolate with Go's integer division, which
    truncates toward zero (so a falling segment rounds up, unlike a float floor)."""
    out = np.full(p.shape, shape[-1][1], dtype=np.int64)
    done = np.zeros(p.shape, dtype=np.bool_)
    for i, (u, s) in enumerate(shape):
        hit = ~done & (p <= u)
        if i == 0:
            value = np.full(p.shape, s, dtype=np.int64)
        else:
            (u0, s0) = shape[i - 1]
            num = (s - s0) * (p - u0)
            den = u - u0
            value = s0 + np.where(num >= 0, num // den, -((-num) // den))
        out = np.where(hit, value, out)
        done |= hit
    return out


def new(args: FitArgs | Mapping[str, Any], handle: Handle) -> NodeResourcesFit:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return NodeResourcesFit(pluginargs.coerce(NAME, FitArgs, args), handle.device_classes)
