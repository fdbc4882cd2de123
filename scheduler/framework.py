"""Extension points, Status, CycleState and the per-profile plugin runner.

One Protocol per extension point; its docstring is the contract. Filter and Score are
vectorized: they receive candidate rows of the NodeTable and return a mask or a score vector
for all of them at once. `None` as a Status means Success everywhere.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from scheduler.device_classes import DeviceClass as DeviceClass
from scheduler.device_classes import DeviceClassStore as DeviceClassStore
from scheduler.model import DisruptionBudget, PodInfo
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


class Handle(Protocol):
    """What the framework offers plugins beyond the snapshot: the API side effects."""

    async def bind(self, pod: PodInfo, node: str) -> None: ...


@runtime_checkable
class PreemptionHandle(Handle, Protocol):
    """A Handle that can also preempt, and knows the cluster's disruption budgets (the
    app's; without one, DefaultPreemption simulates but deletes nothing)."""

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        """Mark `victim` DisruptionTarget (PreemptionByScheduler), delete it, and record a
        Preempted event on it. A victim that is already gone is not an error."""

    def disruption_budgets(self) -> Sequence[DisruptionBudget]:
        """The PodDisruptionBudgets the app watches (policy/v1), as last seen."""


class VolumeHandle(Handle, Protocol):
    """A Handle that also offers the volume objects the app watches (PVCs, PVs, StorageClasses,
    CSINodes). Kept apart from Handle so handles without volumes (unit tests, the in-memory
    bench) stay valid Handles; volume plugins reach the store through volume_store()."""

    @property
    def volumes(self) -> VolumeStore: ...


def volume_store(handle: Handle | None) -> VolumeStore:
    """The handle's volume store, or an empty one when the handle keeps none (then every claim
    is missing, which is the truth for a cluster whose volumes nobody watches)."""
    store = getattr(handle, "volumes", None)
    return store if isinstance(store, VolumeStore) else VolumeStore()


class DeviceClassHandle(Handle, Protocol):
    """A Handle that also offers the DeviceClasses the app watches, for DRA extended resources.
    Apart from Handle for the same reason as VolumeHandle; plugins reach the store through
    device_class_store()."""

    @property
    def device_classes(self) -> DeviceClassStore: ...


def device_class_store(handle: Handle | None) -> DeviceClassStore:
    """The handle's DeviceClass store, or an empty one when the handle keeps none (then no
    extended resource is backed by DRA, which is the truth for a server without
    resource.k8s.io/v1)."""
    store = getattr(handle, "device_classes", None)
    return store if isinstance(store, DeviceClassStore) else DeviceClassStore()


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


class NodeCheck(Protocol):
    """Does `pod` pass the profile's PreFilter and Filter plugins on one row of the table as
    it is now (pods nominated there with priority >= the pod's counted)? None = it fits.

    The scheduler's check may also carry `many(pod, rows) -> set of passing rows`, one
    vectorized pass over many rows, offered only when every plugin's answer for a row depends
    on that row alone (so changing several rows at once is the same as checking each alone);
    it is None otherwise. With it comes `stamp(row) -> Hashable`: the row's generation and the
    nominated pods counted on it. While a row's stamp is unchanged, so is the verdict for pods
    of one equivalence class (PodInfo.class_key), which lets results be kept between cycles.
    It also carries `nominated(row)`: the pods nominated to that row that it counts there.
    Callers look these up with getattr, so a plain function is a check too."""

    def __call__(self, pod: PodInfo, row: int) -> Status | None: ...


@dataclass(frozen=True)
class PostFilterResult:
    """What a PostFilter plugin decided. `status` None = success: the pod is nominated to
    `nominated_node`, and `execute` (when set) carries out the API side effects (preemption
    deletes victims) asynchronously, after the scheduling cycle. Otherwise `status` says why
    not, and `clear_nomination` asks to drop the pod's nominated node. `preemption` False:
    the plugin does not preempt, so its run is no preemption attempt (for the metric).
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
class BindPlugin(Plugin, Protocol):
    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """SKIP passes the pod to the next bind plugin."""


@runtime_checkable
class PostBindPlugin(Plugin, Protocol):
    def post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None: ...


# --- cluster events and queueing hints (upstream's EnqueueExtensions) ---------------------


@dataclass(frozen=True)
class ClusterEvent:
    """A change in the cluster that may make waiting pods schedulable, as upstream's
    framework.ClusterEvent: what changed (AssignedPod, Node, ...) and how."""

    resource: str
    action: str

    @property
    def label(self) -> str:
        """Upstream's ClusterEvent.Label(), as metrics name the event."""
        return self.resource + self.action


# Some effective request of a bound pod went down or away (upstream's extractPodScaleDown).
ASSIGNED_POD_SCALE_DOWN = ClusterEvent("AssignedPod", "UpdatePodScaleDown")
# A DeviceClass appeared or changed; hints get the framework.DeviceClass before (None for an
# add) and after.
DEVICE_CLASS_ADD = ClusterEvent("DeviceClass", "Add")
DEVICE_CLASS_UPDATE = ClusterEvent("DeviceClass", "Update")

QueueingHintFn = Callable[[PodInfo, Any, Any], bool]
"""(a pod the plugin rejected, the object before the event, after it) -> True when the event
may make the pod schedulable (upstream's Queue), False when it cannot (QueueSkip)."""


@dataclass(frozen=True)
class ClusterEventWithHint:
    event: ClusterEvent
    hint: QueueingHintFn | None = None  # None: every such event may help


@runtime_checkable
class EnqueueExtensions(Protocol):
    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        """The events that may make a pod this plugin rejected schedulable, each with a hint
        that looks closer. The app filters the events it passes through hints (so far a bound
        pod scaled down) by them; other events still move every waiting pod."""


def pod_scaled_down(old: PodInfo, new: PodInfo) -> bool:
    """Upstream's extractPodScaleDown: a request of `old` that `new` lacks or lowers."""
    return any(new.requests.get(name, -1) < amount for name, amount in old.requests.items())


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


Timer = Callable[[], float]


@dataclass
class Profile:
    """The plugins of one schedulerName, instantiated and ordered per extension point."""

    scheduler_name: str
    percentage_of_nodes_to_score: int | None
    pre_enqueue: Sequence[PreEnqueuePlugin] = ()
    queue_sort: QueueSortPlugin | None = None
    pre_filter: Sequence[PreFilterPlugin] = ()
    filter: Sequence[FilterPlugin] = ()
    post_filter: Sequence[PostFilterPlugin] = ()
    pre_score: Sequence[PreScorePlugin] = ()
    score: Sequence[tuple[ScorePlugin, int]] = ()
    reserve: Sequence[ReservePlugin] = ()
    permit: Sequence[PermitPlugin] = ()
    pre_bind: Sequence[PreBindPlugin] = ()
    bind: Sequence[BindPlugin] = ()
    post_bind: Sequence[PostBindPlugin] = ()
    # Set by the scheduler on the cycles it samples for per-plugin timings (upstream samples
    # 10% of cycles, since timing every plugin on every pod costs more than the plugins).
    observe: Callable[[str, str, float], None] | None = None

    def run_pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        for plugin in self.pre_filter:
            status = plugin.pre_filter(state, pod, table)
            if status is None:
                if state.node_names is not None and not state.node_names:
                    return _narrowed_to_none(state.narrowed_by, plugin.name)
                continue
            if status.code is Code.SKIP:
                state.skip_filter.add(plugin.name)
                continue
            return Status(status.code, status.reasons, plugin.name)
        return None

    @functools.cached_property
    def _row_local_checks(self) -> list[Callable[[PodInfo], bool]] | None:
        """The per-pod row-locality checks of the cycle plugins; None if one plugin is
        never row-local (then nothing is batched)."""
        unique: dict[str, Any] = {}
        for p in (*self.pre_filter, *self.filter, *self.pre_score, *(p for p, _ in self.score)):
            unique.setdefault(p.name, p)
        checks = []
        for plugin in unique.values():
            if getattr(plugin, "row_local", False):
                continue
            check = getattr(plugin, "row_local_for", None)
            if check is None:
                return None
            checks.append(check)
        return checks

    @functools.cached_property
    def _hints(self) -> dict[ClusterEvent, list[tuple[str, QueueingHintFn | None]]]:
        """Upstream's queueingHintMap for this profile: event -> (plugin, hint) registered."""
        plugins: dict[str, Any] = {}
        for group in (
            self.pre_enqueue,
            self.pre_filter,
            self.filter,
            self.post_filter,
            self.pre_score,
            [p for p, _ in self.score],
            self.reserve,
            self.permit,
            self.pre_bind,
            self.bind,
            self.post_bind,
        ):
            for plugin in group:
                plugins.setdefault(plugin.name, plugin)
        out: dict[ClusterEvent, list[tuple[str, QueueingHintFn | None]]] = {}
        for name, plugin in plugins.items():
            if isinstance(plugin, EnqueueExtensions):
                for registered in plugin.events_to_register():
                    out.setdefault(registered.event, []).append((name, registered.hint))
        return out

    def worth_requeuing(
        self, pod: PodInfo, rejected_by: frozenset[str], event: ClusterEvent, old: Any, new: Any
    ) -> bool:
        """Upstream's isPodWorthRequeuing: a pod no plugin rejected moves on any event; else
        a plugin that rejected it must have registered the event, with a hint that says so."""
        if not rejected_by:
            return True
        return any(
            name in rejected_by and (hint is None or hint(pod, old, new))
            for name, hint in self._hints.get(event, ())
        )

    def batchable(self, pod: PodInfo) -> bool:
        """True when every PreFilter, Filter, PreScore and Score plugin is row-local for this
        pod: its answer for a node depends only on the pod and that node's row, so results
        for one equivalence class can be kept and only changed rows redone.

        A plugin says so with `row_local = True`, or, when it depends on the pod (a spread
        or affinity plugin is row-local for pods it has nothing to do with), with a method
        `row_local_for(pod) -> bool`."""
        checks = self._row_local_checks
        return checks is not None and all(check(pod) for check in checks)

    def filter_mask(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Mask:
        """Which of `rows` pass every filter (no diagnosis kept)."""
        mask = np.ones(rows.size, dtype=np.bool_)
        alive = np.arange(rows.size)
        for plugin in self.filter:
            if alive.size == 0:
                break
            if plugin.name in state.skip_filter:
                continue
            result = plugin.filter(state, pod, table, rows[alive])
            mask[alive[~result.mask]] = False
            alive = alive[result.mask]
        return mask

    def run_filters(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        rows: Rows,
        diagnosis: Diagnosis | None,
    ) -> Rows:
        """The rows that pass every filter; rejections are counted into `diagnosis`."""
        for plugin in self.filter:
            if rows.size == 0:
                break
            if plugin.name in state.skip_filter:
                continue
            start = time.perf_counter()
            result = plugin.filter(state, pod, table, rows)
            if self.observe is not None:
                self.observe(plugin.name, "Filter", time.perf_counter() - start)
            if diagnosis is not None and not result.mask.all():
                _count(diagnosis, plugin.name, rows, result)
            rows = rows[result.mask]
        return rows

    def run_scores(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> tuple[Scores, dict[str, Scores]]:
        """Weighted total per row, and each plugin's normalized scores (for explain)."""
        for pre in self.pre_score:
            status = pre.pre_score(state, pod, table, rows)
            if status is not None and status.code is Code.SKIP:
                state.skip_score.add(pre.name)
        total = np.zeros(rows.size, dtype=np.int64)
        parts: dict[str, Scores] = {}
        for plugin, weight in self.score:
            if plugin.name in state.skip_score:
                continue
            start = time.perf_counter()
            scores = plugin.normalize(plugin.score(state, pod, table, rows))
            if self.observe is not None:
                self.observe(plugin.name, "Score", time.perf_counter() - start)
            parts[plugin.name] = scores
            total += scores * weight
        return total, parts


def _narrowed_to_none(plugins: Iterable[str], last: str) -> Status:
    """The PreFilter results leave no node at all: unresolvable, as upstream (which names no
    plugin on the status; berth names the one whose result emptied the set, for explain and
    the pod's rejecting plugins)."""
    names = sorted(plugins)
    if len(names) == 1:
        message = NARROWED_TO_NONE.format(names[0])
    else:
        message = NARROWED_TO_NONE_MANY.format(" ".join(names))
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), last)


def _count(diagnosis: Diagnosis, plugin: str, rows: Rows, result: FilterResult) -> None:
    rejected = ~result.mask
    per_plugin = diagnosis.by_plugin.setdefault(plugin, {})
    covered = np.zeros(rows.size, dtype=np.bool_)
    for reason in result.reasons:
        hit = reason.rejected & rejected
        n = int(hit.sum())
        if n == 0:
            continue
        covered |= hit
        diagnosis.counts[reason.message] = diagnosis.counts.get(reason.message, 0) + n
        per_plugin[reason.message] = per_plugin.get(reason.message, 0) + n
        if not reason.resolvable:
            diagnosis.unresolvable_rows.update(int(r) for r in rows[hit])
    missing = int((rejected & ~covered).sum())
    if missing:
        message = f"node(s) were rejected by {plugin}"
        diagnosis.counts[message] = diagnosis.counts.get(message, 0) + missing
        per_plugin[message] = per_plugin.get(message, 0) + missing
