"""The plugin API: Status, CycleState, one Protocol per extension point, the optional
capabilities a plugin may declare, cluster events and queueing hints, and the Handle.

One Protocol per extension point; its docstring is the contract (upstream's
staging/src/k8s.io/kube-scheduler/framework/interface.go). Filter and Score are vectorized:
they receive candidate rows of the NodeTable and return a mask or a score vector for all of
them at once. `None` as a Status means Success everywhere. The runner that calls these lives in
scheduler/runtime.py; plugins import this module, never the runtime.
"""

from __future__ import annotations

import enum
import functools
import random
from collections.abc import Callable, Coroutine, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from scheduler.device_classes import DeviceClass as DeviceClass
from scheduler.device_classes import DeviceClassStore as DeviceClassStore
from scheduler.dra.claims import Claim as DraClaim
from scheduler.dra.claims import ClaimStore as ClaimStore
from scheduler.dra.slices import SliceStore as SliceStore
from scheduler.model import DisruptionBudget, LabelSelector, PodInfo
from scheduler.namespaces import NamespaceLabels as NamespaceLabels
from scheduler.podgroups import PodGroup as PodGroup
from scheduler.podgroups import PodGroupStore as PodGroupStore
from scheduler.snapshot import Mask, NodeTable, Rows
from scheduler.volumes import Claim as Claim
from scheduler.volumes import StorageClass as StorageClass
from scheduler.volumes import Volume as Volume
from scheduler.volumes import VolumeStore as VolumeStore

Scores = npt.NDArray[np.int64]
MAX_NODE_SCORE = 100


class Code(enum.Enum):
    """What a Status does to the pod.

    SUCCESS: go on. ERROR: internal failure, the pod goes to backoff.
    UNSCHEDULABLE: this node (or the pod) fails now, but preemption or a cluster event may help;
    the pod waits in the unschedulable pool. UNSCHEDULABLE_AND_UNRESOLVABLE: preemption cannot
    help on that node. WAIT: Permit asks the binding cycle to wait. SKIP: PreFilter/PreScore
    say the plugin has nothing to do for this pod, so its Filter/Score are not run.
    PENDING: the pod waits for something outside the scheduler (no event will help by itself).
    """

    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5
    PENDING = 6


@dataclass(frozen=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @classmethod
    def error(cls, message: str, plugin: str = "") -> Status:
        return cls(Code.ERROR, (message,), plugin)

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "", resolvable: bool = True) -> Status:
        code = Code.UNSCHEDULABLE if resolvable else Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        return cls(code, reasons, plugin)


SKIP = Status(Code.SKIP)

# Upstream's reasons for nodes a PreFilter result leaves out (RunPreFilterPlugins and
# findNodesThatFitPod); the plugin names are sorted and printed as Go prints a []string.
NARROWED_TO_NONE = "node(s) didn't satisfy plugin {}"
NARROWED_TO_NONE_MANY = "node(s) didn't satisfy plugin(s) [{}] simultaneously"
NARROWED_OUT = "node(s) didn't satisfy plugin(s) [{}]"


@dataclass
class CycleState:
    """Per-pod scratch space shared by a profile's plugins during one scheduling attempt.

    `node_names` is upstream's merged PreFilterResult: the only nodes worth filtering (None:
    all of them), narrowed by the PreFilter plugins in `narrowed_by`."""

    data: dict[str, Any] = field(default_factory=dict)
    skip_filter: set[str] = field(default_factory=set)
    skip_score: set[str] = field(default_factory=set)
    skip_pre_bind: set[str] = field(default_factory=set)  # PreBindPreFlight said SKIP
    node_names: frozenset[str] | None = None
    narrowed_by: set[str] = field(default_factory=set)

    def read(self, key: str) -> Any:
        return self.data[key]

    def write(self, key: str, value: Any) -> None:
        self.data[key] = value

    def restrict_nodes(self, plugin: str, names: Iterable[str]) -> None:
        """PreFilter's PreFilterResult: only `names` can pass `plugin`'s Filter. Results of
        several plugins intersect; names of nodes that do not exist are allowed."""
        wanted = frozenset(names)
        self.node_names = wanted if self.node_names is None else self.node_names & wanted
        self.narrowed_by.add(plugin)

    def node_mask(self, table: NodeTable, rows: Rows) -> Mask | None:
        """Which of `rows` are left to filter after PreFilter (None: every row)."""
        if self.node_names is None:
            return None
        named = [table.row_of[n] for n in self.node_names if n in table.row_of]
        return np.isin(rows, np.asarray(named, dtype=np.int64))


@dataclass(frozen=True)
class Reason:
    """One rejection reason, applied to the rows of `rejected`."""

    message: str
    rejected: Mask
    resolvable: bool = True  # False = UnschedulableAndUnresolvable (preemption cannot help)


@dataclass(frozen=True)
class FilterResult:
    """mask[i] True = rows[i] passes. Every False row is covered by at least one reason."""

    mask: Mask
    reasons: tuple[Reason, ...] = ()

    @classmethod
    def all_pass(cls, n: int) -> FilterResult:
        return cls(np.ones(n, dtype=np.bool_))

    @classmethod
    def reject(cls, mask: Mask, message: str, resolvable: bool = True) -> FilterResult:
        """Rows where mask is False fail with one reason."""
        return cls(mask, (Reason(message, ~mask, resolvable),))


@runtime_checkable
class WaitingPod(Protocol):
    """A pod that a Permit plugin asked to wait (upstream's fwk.WaitingPod). It holds its
    assumed resources, not a binding slot, until every plugin that said Wait allows it, one
    rejects it, or a plugin's timeout passes (a rejection by that plugin)."""

    @property
    def pod(self) -> PodInfo: ...

    @property
    def node(self) -> str: ...

    def pending_plugins(self) -> list[str]:
        """The plugins that said Wait and have not allowed the pod yet."""

    def allow(self, plugin: str) -> None:
        """`plugin` lets the pod go; once no plugin is pending, its binding cycle goes on."""

    def reject(self, plugin: str, message: str) -> None:
        """Fail the pod's Permit: it is unreserved and waits as unschedulable, rejected by
        `plugin`. A second decision after the first is ignored."""

    def preempt(self, plugin: str, message: str) -> bool:
        """Preemption chose this waiting pod as a victim: it is unreserved and backs off
        (not deleted). False when its wait had already ended."""


class Handle(Protocol):
    """What plugins read of the cluster and what they may do to it (upstream's fwk.Handle).

    Reads are plain in-memory views the app keeps current from its informers; a cluster that
    nobody watches (unit tests, the in-memory bench, `berth sim`) has empty stores, which is
    the truth for it. Actions go to the API (scheduler/kube) or, in memory, to the cache.
    One implementation, scheduler/handle.py's ClusterHandle, serves every caller."""

    @property
    def snapshot(self) -> NodeTable:
        """The live NodeTable: the snapshot of the scheduling cycle that is running."""

    @property
    def volumes(self) -> VolumeStore:
        """PVCs, PVs, StorageClasses and CSINodes (the app's volume informers)."""

    @property
    def device_classes(self) -> DeviceClassStore:
        """DeviceClasses, for DRA-backed extended resources (empty when not served)."""

    @property
    def resource_claims(self) -> ClaimStore:
        """ResourceClaims, and the devices they (or allocations in flight) hold."""

    @property
    def resource_slices(self) -> SliceStore:
        """ResourceSlices: the devices drivers publish (empty when DRA is not served)."""

    @property
    def namespaces(self) -> NamespaceLabels:
        """Namespace labels, for namespaceSelector terms."""

    @property
    def pod_groups(self) -> PodGroupStore:
        """PodGroups (both APIs) and the pods of each the scheduler knows."""

    def disruption_budgets(self) -> Sequence[DisruptionBudget]:
        """The PodDisruptionBudgets (policy/v1), as last seen."""

    def new_random(self) -> random.Random:
        """A random source for a plugin's random choices (upstream's rand calls, e.g.
        DefaultPreemption's dry-run offset): unseeded, unless the scheduler was given
        `--tie-break-seed`, so that `berth sim --seed` can predict the run."""

    def default_spread_selector(self, pod: PodInfo) -> LabelSelector | None:
        """The selector PodTopologySpread's default constraints use for `pod`: built from
        the Services, ReplicationControllers, ReplicaSets and StatefulSets selecting it
        (upstream's helper.DefaultSelector); None when nothing selects it."""

    def get_waiting_pod(self, uid: str) -> WaitingPod | None:
        """The pod waiting in Permit with this uid, if any."""

    def iterate_waiting_pods(self) -> Iterator[WaitingPod]:
        """Every pod waiting in Permit, of every profile."""

    def activate(self, pods: Iterable[PodInfo]) -> None:
        """Move these pods to the active queue now, wherever they wait (upstream's
        PodActivator.Activate; counted as ForceActivate)."""

    def ungate(self, pods: Iterable[PodInfo], plugin: str) -> None:
        """Those of these pods that `plugin`'s PreEnqueue keeps gated go through PreEnqueue
        again now: the condition it gated them on has cleared, and the event that would
        have told the queue may have come while they were gated. A berth addition (upstream
        waits for a later event or the 5-minute flush); counted as ForceActivate."""

    async def bind(self, pod: PodInfo, node: str) -> None:
        """Bind `pod` to `node` (a Binding subresource). Raises AlreadyBound on a 409."""

    async def bind_volume(self, pv: str, claim: Claim) -> None:
        """Point PersistentVolume `pv`'s claimRef at `claim` (upstream's bindAPIUpdate for a
        static binding); the PV controller then binds the two. Raises on an API error."""

    async def select_node(self, claim: Claim, node: str) -> None:
        """Annotate `claim` with volume.kubernetes.io/selected-node = `node`, for its
        provisioner (upstream's bindAPIUpdate for a claim to provision)."""

    async def reserve_claim(
        self, claim: DraClaim, allocation: dict[str, Any] | None, pod: PodInfo
    ) -> None:
        """Write `allocation` (None: the claim is allocated already) and add `pod` to the
        claim's status.reservedFor, with upstream's delete-protection finalizer (its
        bindClaim); the store then holds the claim as written. Raises on an API error or when
        the claim was deleted or allocated elsewhere meanwhile."""

    async def unreserve_claim(self, claim: DraClaim, pod: PodInfo) -> None:
        """Take `pod` out of the claim's status.reservedFor (upstream's Unreserve patch)."""

    async def deallocate_claim(self, claim: DraClaim) -> None:
        """Clear the claim's allocation and reservations (upstream's PostFilter, for a claim
        nobody uses whose allocation keeps the pod off every node)."""

    async def create_claim(self, claim: dict[str, Any]) -> dict[str, Any]:
        """Create a ResourceClaim (the one for a pod's DRA-backed extended resources);
        returns it as the API server created it. Raises on an API error."""

    async def delete_claim(self, claim: DraClaim) -> None:
        """Delete a ResourceClaim, dropping its delete-protection finalizer first."""

    async def set_extended_claim_status(
        self, pod: PodInfo, claim_name: str, mappings: list[dict[str, Any]]
    ) -> None:
        """Write the pod's status.extendedResourceClaimStatus (the claim holding its
        DRA-backed extended resources, and the request serving each container's resource)."""

    async def preempt(
        self, preemptor: PodInfo, victim: PodInfo, node: str, plugin: str = "DefaultPreemption"
    ) -> None:
        """Evict `victim` for `preemptor` on behalf of `plugin`: a victim waiting in Permit is
        preempted there (it backs off); any other is marked DisruptionTarget
        (PreemptionByScheduler) and deleted. Either way a Preempted event is recorded on it.
        A victim that is already gone is not an error."""


class PluginError(Exception):
    """Raised by a Filter plugin that cannot decide for reasons not of one node (upstream's
    Filter returning an error Status, e.g. DynamicResources on a selector that does not
    compile): the scheduling cycle ends with `status` (Code.ERROR) and the pod backs off."""

    def __init__(self, message: str, plugin: str = "") -> None:
        super().__init__(message)
        if plugin:  # upstream's RunFilterPlugins wraps a plugin's error so
            message = f'running "{plugin}" filter plugin: {message}'
        self.status = Status.error(message, plugin)


class AlreadyBound(Exception):
    """The API server says the pod is bound already (409 on the binding): drop it."""


class Plugin(Protocol):
    name: str


@runtime_checkable
class PreEnqueuePlugin(Plugin, Protocol):
    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        """Gate a pod before it enters the active queue; non-None keeps it gated."""


@runtime_checkable
class QueueSortPlugin(Plugin, Protocol):
    def sort_key(self, pod: PodInfo, arrival: float) -> tuple[Any, ...]:
        """Smaller keys pop first."""


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        """Compute per-pod state. SKIP disables this plugin's Filter for the pod; an
        UNSCHEDULABLE status rejects the pod on every node. A plugin that knows the only
        nodes that can pass its Filter says so with `state.restrict_nodes` (upstream's
        PreFilterResult): the others are not filtered, and fail as unresolvable."""


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        """Return which of `rows` can host the pod, with a reason for each rejected row.
        Must not change the table."""


def _nothing_nominated(row: int) -> Sequence[PodInfo]:
    return ()


@dataclass(frozen=True)
class NodeCheck:
    """Does a pod pass the profile's PreFilter and Filter plugins on one row of the table as
    it is now (pods nominated there with priority >= the pod's counted)? Calling the check
    answers None when it fits, else the rejecting Status. The runtime builds it for
    PostFilter (preemption's dry run, upstream's SelectVictimsOnNode filter calls).

    `many(pod, rows) -> set of passing rows`: one vectorized pass over many rows, offered
    only when every plugin's answer for a row depends on that row alone (so changing several
    rows at once is the same as checking each alone); None otherwise. With it comes
    `stamp(row) -> Hashable`: the row's generation and the nominated pods counted on it.
    While a row's stamp is unchanged, so is the verdict for pods of one equivalence class
    (PodInfo.class_key), which lets results be kept between cycles. `nominated(row)`: the
    pods nominated to that row that the check counts there."""

    one: Callable[[PodInfo, int], Status | None]
    nominated: Callable[[int], Sequence[PodInfo]] = _nothing_nominated
    many: Callable[[PodInfo, Sequence[int]], set[int]] | None = None
    stamp: Callable[[int], Hashable] | None = None

    def __call__(self, pod: PodInfo, row: int) -> Status | None:
        return self.one(pod, row)


@dataclass(frozen=True)
class PostFilterResult:
    """What a PostFilter plugin decided. `status` None = success: the pod is nominated to
    `nominated_node`, and `execute` (when set) carries out the API side effects (preemption
    deletes victims) asynchronously, after the scheduling cycle. Otherwise `status` says why
    not, `clear_nomination` asks to drop the pod's nominated node, and `execute` (when set)
    is the plugin's own API work, run after the cycle (DynamicResources freeing a claim).
    `preemption` False: the plugin does not preempt, so its run is no preemption attempt (for
    the metric).
    `message`: on success, what ends the pod's failure message (upstream's message on a
    Success status)."""

    status: Status | None
    nominated_node: str = ""
    victims: tuple[PodInfo, ...] = ()
    execute: Callable[[], Coroutine[Any, Any, None]] | None = None
    clear_nomination: bool = False
    preemption: bool = True
    message: str = ""


@runtime_checkable
class PostFilterPlugin(Plugin, Protocol):
    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        diagnosis: Diagnosis,
        check: NodeCheck,
    ) -> PostFilterResult:
        """Run after no node fits (preemption). The scheduling cycle is still running: the
        plugin may change the table to simulate (it must restore it exactly) but must not
        await; API calls go into the result's `execute`. An UNSCHEDULABLE status adds its
        message to the pod's failure message; the next plugin runs. SUCCESS stops the loop;
        so do ERROR and UNSCHEDULABLE_AND_UNRESOLVABLE, whose message then replaces those of
        the plugins before (upstream's RunPostFilterPlugins)."""


@runtime_checkable
class PreScorePlugin(Plugin, Protocol):
    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        """Prepare scoring over the feasible rows; SKIP disables this plugin's Score."""


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        """Scores for the feasible rows; within [0, 100] after normalize()."""

    def normalize(self, scores: Scores) -> Scores:
        """Rescale raw scores into [0, 100]; return them unchanged if already there."""


@runtime_checkable
class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        """Must be idempotent; may run without a prior reserve()."""


@runtime_checkable
class PermitPlugin(Plugin, Protocol):
    def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status | None, float]:
        """None = allow; WAIT with a timeout in seconds; anything else rejects."""


@runtime_checkable
class PreBindPlugin(Plugin, Protocol):
    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None: ...


@runtime_checkable
class PreBindPreFlightPlugin(Plugin, Protocol):
    def pre_bind_pre_flight(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Will PreBind have work for this pod on `node` (upstream's PreBindPreFlight, v1.34)?
        None (success): yes; SKIP: no, and PreBind is not called; ERROR ends the binding
        cycle. A PreBind plugin without this method is taken to have work."""


@runtime_checkable
class BindPlugin(Plugin, Protocol):
    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """SKIP passes the pod to the next bind plugin."""


@runtime_checkable
class PostBindPlugin(Plugin, Protocol):
    def post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None: ...


# --- optional capabilities a plugin declares -------------------------------------------------


@runtime_checkable
class BatchablePlugin(Plugin, Protocol):
    """Equivalence batching opt-in (the role of upstream's SignPlugin)."""

    def row_local_for(self, pod: PodInfo) -> bool:
        """True when this plugin's PreFilter/Filter/PreScore/Score answer for a node depends
        only on the pod and that node's row of the table, so results for an equivalence class
        of pods can be kept and only changed rows redone. A plugin that does not implement
        this turns batching off for every pod; one that answers False, for that pod."""


@runtime_checkable
class WindowScoredPlugin(Plugin, Protocol):
    """Equivalence batching for a plugin that is not row-local only in PreScore/Score."""

    def window_scored_for(self, pod: PodInfo) -> bool:
        """True when, for this pod, the plugin's PreFilter and Filter answer per row (as
        row_local_for) but its PreScore/Score read more than the node's row: counts over other
        nodes, or the set of nodes being scored. The batched path then keeps no per-row scores
        for it and runs its PreScore and Score over each pod's sampled window, as the one-pod
        path does; PreScore must be cheap when few rows changed since the last pod. Asked only
        when row_local_for(pod) is False."""


# --- cluster events and queueing hints (upstream's EnqueueExtensions) ---------------------


class ActionType(enum.IntFlag):
    """How an object changed (upstream's fwk.ActionType). The UPDATE_NODE_* and UPDATE_POD_*
    kinds are the specific updates the event handlers recognise; a plugin registering one of
    them is asked only about that kind. UPDATE covers every specific update."""

    ADD = enum.auto()
    DELETE = enum.auto()
    UPDATE_NODE_ALLOCATABLE = enum.auto()
    UPDATE_NODE_LABEL = enum.auto()
    UPDATE_NODE_TAINT = enum.auto()  # taints, or spec.unschedulable turned off
    UPDATE_NODE_CONDITION = enum.auto()
    UPDATE_NODE_ANNOTATION = enum.auto()
    UPDATE_NODE_DECLARED_FEATURE = enum.auto()
    UPDATE_NODE_PREEMPTION_POLICY = enum.auto()
    UPDATE_POD_LABEL = enum.auto()
    UPDATE_POD_SCALE_DOWN = enum.auto()
    UPDATE_POD_SCALE_UP = enum.auto()
    UPDATE_POD_TOLERATION = enum.auto()
    UPDATE_POD_SCHEDULING_GATES_ELIMINATED = enum.auto()
    UPDATE_POD_GENERATED_RESOURCE_CLAIM = enum.auto()
    UPDATE = (
        UPDATE_NODE_ALLOCATABLE
        | UPDATE_NODE_LABEL
        | UPDATE_NODE_TAINT
        | UPDATE_NODE_CONDITION
        | UPDATE_NODE_ANNOTATION
        | UPDATE_NODE_DECLARED_FEATURE
        | UPDATE_NODE_PREEMPTION_POLICY
        | UPDATE_POD_LABEL
        | UPDATE_POD_SCALE_DOWN
        | UPDATE_POD_SCALE_UP
        | UPDATE_POD_TOLERATION
        | UPDATE_POD_SCHEDULING_GATES_ELIMINATED
        | UPDATE_POD_GENERATED_RESOURCE_CLAIM
    )
    ALL = ADD | DELETE | UPDATE

    @property
    def upstream(self) -> str:
        """Upstream's ActionType.String(): "Add", "UpdateNodeLabel", "Update", ..."""
        if self in _ACTION_NAMES:
            return _ACTION_NAMES[self]
        if self.value.bit_count() != 1:
            return ""  # a combination has no name upstream either
        return "".join(word.capitalize() for word in (self.name or "").split("_"))


_ACTION_NAMES = {ActionType.UPDATE: "Update", ActionType.ALL: "All"}

# Upstream's fwk.EventResource values.
POD = "Pod"  # registered, it matches AssignedPod, UnscheduledPod and TargetPod events
ASSIGNED_POD = "AssignedPod"
UNSCHEDULED_POD = "UnscheduledPod"
TARGET_POD = "TargetPod"  # the waiting pod itself was updated
NODE = "Node"
PERSISTENT_VOLUME = "PersistentVolume"
PERSISTENT_VOLUME_CLAIM = "PersistentVolumeClaim"
CSI_NODE = "storage.k8s.io/CSINode"
CSI_DRIVER = "storage.k8s.io/CSIDriver"
CSI_STORAGE_CAPACITY = "storage.k8s.io/CSIStorageCapacity"
STORAGE_CLASS = "storage.k8s.io/StorageClass"
DEVICE_CLASS = "resource.k8s.io/DeviceClass"
RESOURCE_CLAIM = "resource.k8s.io/ResourceClaim"
RESOURCE_SLICE = "resource.k8s.io/ResourceSlice"
WILDCARD = "*"
# berth's own: upstream has no Namespace resource, so its InterPodAffinity waits for the flush
# after a namespace is relabelled; berth's registers this (docs/compat.md).
NAMESPACE = "Namespace"
POD_DISRUPTION_BUDGET = "policy/PodDisruptionBudget"
PRIORITY_CLASS = "scheduling.k8s.io/PriorityClass"
POD_GROUP = "scheduling.k8s.io/PodGroup"  # upstream's EventResource; berth's CRD groups too


@dataclass(frozen=True)
class ClusterEvent:
    """A change in the cluster that may make waiting pods schedulable (upstream's
    fwk.ClusterEvent): what changed and how. `custom_label` names the special wildcard
    events (UnschedulableTimeout, ForceActivate) in metrics."""

    resource: str
    action: ActionType
    custom_label: str = ""

    @functools.cached_property
    def label(self) -> str:
        """Upstream's ClusterEvent.Label(): the event's name in metrics and logs (computed
        once per event object: the queue reads it for every pod it moves)."""
        return self.custom_label or self.resource + self.action.upstream

    @property
    def wildcard(self) -> bool:
        return self.resource == WILDCARD and self.action == ActionType.ALL

    def matches(self, incoming: ClusterEvent) -> bool:
        """Upstream's MatchClusterEvents(self, incoming): does a plugin that registered this
        event care about `incoming`? The incoming event must be the same as or more specific
        than the registered one; a registered Pod matches assigned, unscheduled and target pods."""
        if self.wildcard:
            return True
        same = self.resource in (WILDCARD, incoming.resource) or (
            self.resource == POD
            and incoming.resource in (ASSIGNED_POD, UNSCHEDULED_POD, TARGET_POD)
        )
        return (
            same
            and bool(self.action & incoming.action)
            and int(incoming.action) <= int(self.action)
        )


A = ActionType
ASSIGNED_POD_ADD = ClusterEvent(ASSIGNED_POD, A.ADD)
ASSIGNED_POD_DELETE = ClusterEvent(ASSIGNED_POD, A.DELETE)
ASSIGNED_POD_SCALE_DOWN = ClusterEvent(ASSIGNED_POD, A.UPDATE_POD_SCALE_DOWN)
UNSCHEDULED_POD_ADD = ClusterEvent(UNSCHEDULED_POD, A.ADD)
UNSCHEDULED_POD_UPDATE = ClusterEvent(UNSCHEDULED_POD, A.UPDATE)
UNSCHEDULED_POD_DELETE = ClusterEvent(UNSCHEDULED_POD, A.DELETE)
NODE_ADD = ClusterEvent(NODE, A.ADD)
NODE_DELETE = ClusterEvent(NODE, A.DELETE)
DEVICE_CLASS_ADD = ClusterEvent(DEVICE_CLASS, A.ADD)
DEVICE_CLASS_UPDATE = ClusterEvent(DEVICE_CLASS, A.UPDATE)
NAMESPACE_UPDATE_LABEL = ClusterEvent(NAMESPACE, A.UPDATE)
UNSCHEDULABLE_TIMEOUT = ClusterEvent(WILDCARD, A.ALL, "UnschedulableTimeout")
FORCE_ACTIVATE = ClusterEvent(WILDCARD, A.ALL, "ForceActivate")
del A


class QueueingHint(enum.Enum):
    """What a hint says about one pod and one event (upstream's fwk.QueueingHint)."""

    QUEUE = "Queue"  # the event may make the pod schedulable: retry it
    SKIP = "QueueSkip"  # it cannot: leave the pod where it is


QueueingHintFn = Callable[[PodInfo, Any, Any], QueueingHint]
"""(a pod the plugin rejected, the object before the event, after it) -> QueueingHint.

The objects by resource: pods are PodInfo, nodes NodeInfo (scheduler.model), volume objects
the scheduler.volumes records, DeviceClasses DeviceClass, namespaces (name, labels) tuples;
`old` is None for an Add, `new` None for a Delete. A hint that raises counts as QUEUE, as
upstream treats an error, so a buggy hint cannot strand a pod."""


@dataclass(frozen=True)
class ClusterEventWithHint:
    event: ClusterEvent
    hint: QueueingHintFn | None = None  # None: every such event may help


@runtime_checkable
class EnqueueExtensions(Protocol):
    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        """The events that may make a pod this plugin rejected schedulable, each with a hint
        that looks closer (upstream's EventsToRegister). The queue moves a pod only on an
        event that a plugin which rejected it registered, and whose hint says QUEUE; a pod no
        plugin rejected (an error) moves on any event. A plugin that rejects pods but does
        not implement this leaves them to the 5-minute flush."""


def pod_scaled_down(old: PodInfo, new: PodInfo) -> bool:
    """Upstream's extractPodScaleDown: a request of `old` that `new` lacks or lowers."""
    return any(new.requests.get(name, -1) < amount for name, amount in old.requests.items())


def pod_scaled_up(old: PodInfo, new: PodInfo) -> bool:
    """Upstream's extractPodScaleUp: a request of `new` that `old` lacks or is lower in."""
    return any(old.requests.get(name, -1) < amount for name, amount in new.requests.items())


POINTS: dict[str, type] = {
    "preEnqueue": PreEnqueuePlugin,
    "queueSort": QueueSortPlugin,
    "preFilter": PreFilterPlugin,
    "filter": FilterPlugin,
    "postFilter": PostFilterPlugin,
    "preScore": PreScorePlugin,
    "score": ScorePlugin,
    "reserve": ReservePlugin,
    "permit": PermitPlugin,
    "preBind": PreBindPlugin,
    "bind": BindPlugin,
    "postBind": PostBindPlugin,
}


def implements(plugin_type: type) -> frozenset[str]:
    """The extension points a plugin class implements (by the methods it defines)."""
    methods = {
        "preEnqueue": "pre_enqueue",
        "queueSort": "sort_key",
        "preFilter": "pre_filter",
        "filter": "filter",
        "postFilter": "post_filter",
        "preScore": "pre_score",
        "score": "score",
        "reserve": "reserve",
        "permit": "permit",
        "preBind": "pre_bind",
        "bind": "bind",
        "postBind": "post_bind",
    }
    return frozenset(p for p, m in methods.items() if callable(getattr(plugin_type, m, None)))


Factory = Callable[[Mapping[str, Any], Handle], Any]


@dataclass
class Diagnosis:
    """Why the pod fits nowhere: reason -> number of nodes, and which plugin said it."""

    total_nodes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    by_plugin: dict[str, dict[str, int]] = field(default_factory=dict)
    unresolvable_rows: set[int] = field(default_factory=set)
    pre_filter: Status | None = None
    post_filter: str = ""  # what PostFilter (preemption) said, appended to the message

    def narrowed_out(self, plugins: Iterable[str], rows: Rows) -> None:
        """`rows` were left out by the PreFilter results of `plugins`: each counts once as
        UnschedulableAndUnresolvable (upstream's absent-nodes status), under every plugin."""
        if rows.size == 0:
            return
        names = sorted(plugins)
        message = NARROWED_OUT.format(" ".join(names))
        self.counts[message] = self.counts.get(message, 0) + int(rows.size)
        for plugin in names:
            per_plugin = self.by_plugin.setdefault(plugin, {})
            per_plugin[message] = per_plugin.get(message, 0) + int(rows.size)
        self.unresolvable_rows.update(int(r) for r in rows)

    def message(self) -> str:
        """Upstream's "0/N nodes are available: ..." text (reasons sorted, counts first),
        then PostFilter's message ("preemption: ...") when it has one."""
        if self.pre_filter is not None:
            detail = self.pre_filter.message
        else:
            parts = sorted(f"{n} {reason}" for reason, n in self.counts.items())
            detail = ", ".join(parts) if parts else "no nodes available to schedule pods"
        text = f"0/{self.total_nodes} nodes are available: {detail}."
        return f"{text} {self.post_filter}" if self.post_filter else text
