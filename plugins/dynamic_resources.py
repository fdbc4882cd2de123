"""DynamicResources: allocates the DRA devices of a pod's ResourceClaims, as upstream v1.37's
plugin (pkg/scheduler/framework/plugins/dynamicresources) with its stable allocator.

PreEnqueue keeps a pod out of the active queue until each of its claims exists (a claim from a
template: until the ResourceClaim controller created it and recorded it in the pod's status),
with upstream's messages (`pod "ns/p": ResourceClaim not created yet`,
`resourceclaim.resource.k8s.io "x" not found`, `resourceclaim "x" is being deleted`).

PreFilter reads the claims (scheduler.dra.claims through the handle). An allocated claim the pod
cannot join ("resourceclaim in use"), one whose allocation is still being written for another
pod ("resource claim ns/x is in the process of being allocated"), a request naming a class
that does not exist ("request r: device class c does not exist") or of an unknown kind reject
the pod everywhere, as UnschedulableAndUnresolvable.

Filter, node by node: an allocated claim's node selector must match ("resourceclaim not
available on the node"); the unallocated claims go through the allocator (scheduler.dra.
allocator) over the node's ResourceSlices, the devices no claim holds, and the classes; a node
where they do not all fit gets "cannot allocate all claims". A claim or class the allocator
cannot use (a selector that does not compile or fails at run time) is an error for the whole
cycle (framework.PluginError), as upstream's error status: the pod backs off.

Score (for claims with firstAvailable, upstream's DRAPrioritizedList): the earlier the chosen
alternatives, the higher; normalized so the best node gets 100.

Reserve holds the chosen allocation in the claim store (so the next pod's Filter does not
offer those devices); Unreserve gives them back and takes the pod out of reservedFor where
PreBind had put it. PreBind writes each claim: finalizer, status.allocation and the pod in
status.reservedFor (scheduler.kube.claims). PostFilter deallocates an allocated claim nobody
uses that kept the pod off every node ("deallocation of ResourceClaim completed").

Extended resources backed by DRA (DRAExtendedResource, GA in v1.37; a DeviceClass's
spec.extendedResourceName or its implicit deviceclass.resource.kubernetes.io/<class>): a node
whose allocatable lists the resource serves it through its device plugin, and NodeResourcesFit
checks it there; on the other nodes Filter allocates its devices as one more claim, built in
memory per container (scheduler.dra.extended), which PreBind creates (owned by the pod,
annotated as upstream's), allocates and records in the pod's status.extendedResourceClaimStatus.
A claim of that kind left by an earlier attempt makes those nodes fail ("cannot schedule
extended resource claim") and PostFilter deletes it ("deletion of ResourceClaim completed");
Unreserve deletes one PreBind created.

Not done (such devices are never allocated, so nothing is given twice): partitionable
devices (shared counters), devices with binding conditions, tainted devices, claims reserved
for a PodGroup, and the DRA scheduler filter timeout (filterTimeout is decoded, unused).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scheduler import pluginargs
from scheduler.dra import extended
from scheduler.dra.allocator import (
    Allocation,
    AllocationError,
    AllocationTimeout,
    NodeFailure,
    allocate,
)
from scheduler.dra.claims import Claim as DraClaim
from scheduler.framework import (
    DEVICE_CLASS,
    NODE,
    RESOURCE_CLAIM,
    RESOURCE_SLICE,
    SKIP,
    TARGET_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    Code,
    CycleState,
    Diagnosis,
    FilterResult,
    Handle,
    NodeCheck,
    PluginError,
    PostFilterResult,
    QueueingHint,
    Reason,
    Scores,
    Status,
)
from scheduler.model import PodInfo, SelectorTerm, node_selector_terms, term_matches
from scheduler.pluginargs import DynamicResourcesArgs
from scheduler.snapshot import Mask, NodeTable, Rows

log = logging.getLogger("berth.plugins.dynamic_resources")

JSON = dict[str, Any]

NAME = "DynamicResources"
CANNOT_ALLOCATE = "cannot allocate all claims"
NOT_AVAILABLE = "resourceclaim not available on the node"
IN_USE = "resourceclaim in use"
DEALLOCATED = "deallocation of ResourceClaim completed"
DELETED = "deletion of ResourceClaim completed"
STALE_EXTENDED = "cannot schedule extended resource claim"
NO_STATE = "not found"  # upstream's error reading a CycleState key that was never written
STATE_KEY = "PreFilter" + NAME
FIRST_AVAILABLE_MAX = 8  # upstream's FirstAvailableDeviceRequestMaxSize
SEARCH_BUDGET_S = 2.0  # the most one Filter call's allocation search may block the loop


@dataclass
class _State:
    """What PreFilter found, and what Filter, Reserve and PreBind add."""

    backed: dict[str, str]  # requested extended resource -> the DeviceClass backing it
    claims: list[DraClaim] = field(default_factory=list)
    node_terms: dict[int, tuple[SelectorTerm, ...] | None] = field(default_factory=dict)
    to_allocate: list[int] = field(default_factory=list)  # indexes into claims
    allocations: dict[str, list[Allocation]] = field(default_factory=dict)  # node -> results
    unavailable: set[int] = field(default_factory=set)
    reserved: list[tuple[int, Allocation]] = field(default_factory=list)
    written: list[DraClaim] = field(default_factory=list)  # reservedFor holds the pod
    # DRA-backed extended resources: a claim left by an earlier attempt (deleted in
    # PostFilter), the in-memory claim and request mappings per node, what Reserve chose
    # and the claim PreBind created.
    extended_stale: DraClaim | None = None
    extended: dict[str, tuple[DraClaim, list[JSON]]] = field(default_factory=dict)
    reserved_extended: tuple[DraClaim, Allocation, list[JSON]] | None = None
    created: DraClaim | None = None


class DynamicResources:
    name = NAME

    def __init__(self, handle: Handle, args: DynamicResourcesArgs | None = None) -> None:
        self.handle = handle
        self.device_classes = handle.device_classes
        self.args = args or DynamicResourcesArgs()
        self._tasks: set[asyncio.Task[None]] = set()

    def row_local_for(self, pod: PodInfo) -> bool:
        """Row-local only for pods asking nothing of DRA: claims and backed resources depend
        on objects that change without touching a row."""
        return not pod.claim_refs and not self.device_classes.backed(pod.requests)

    def events_to_register(self) -> list[ClusterEventWithHint]:
        return [
            ClusterEventWithHint(
                ClusterEvent(
                    NODE,
                    ActionType.ADD
                    | ActionType.UPDATE_NODE_LABEL
                    | ActionType.UPDATE_NODE_ALLOCATABLE,
                )
            ),
            ClusterEventWithHint(
                ClusterEvent(
                    RESOURCE_CLAIM, ActionType.ADD | ActionType.UPDATE | ActionType.DELETE
                ),
                self.is_schedulable_after_claim_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(TARGET_POD, ActionType.UPDATE_POD_GENERATED_RESOURCE_CLAIM),
                self.is_schedulable_after_target_pod_update,
            ),
            ClusterEventWithHint(ClusterEvent(DEVICE_CLASS, ActionType.ADD | ActionType.UPDATE)),
            ClusterEventWithHint(ClusterEvent(RESOURCE_SLICE, ActionType.ADD | ActionType.UPDATE)),
        ]

    # --- queueing ----------------------------------------------------------------------

    def is_schedulable_after_claim_change(
        self, pod: PodInfo, old: DraClaim | None, new: DraClaim | None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterClaimChange: a deallocation (or an allocated claim
        deleted) frees devices for anyone; otherwise only the pod's own claims matter, when
        created or when their status changed."""
        if new is None:
            return QueueingHint.QUEUE if old is not None and old.allocation else QueueingHint.SKIP
        if old is not None and old.allocation and not new.allocation:
            return QueueingHint.QUEUE
        claims = self._claims(pod)
        if isinstance(claims, str) or not any(c.uid == new.uid for c in claims):
            return QueueingHint.SKIP
        if old is None:
            return QueueingHint.QUEUE
        same = (old.allocation, old.reserved_for) == (new.allocation, new.reserved_for)
        return QueueingHint.SKIP if same else QueueingHint.QUEUE

    def is_schedulable_after_target_pod_update(
        self, pod: PodInfo, old: PodInfo, new: PodInfo
    ) -> QueueingHint:
        """Upstream's: queue once every claim of the updated pod exists."""
        return QueueingHint.SKIP if isinstance(self._claims(new), str) else QueueingHint.QUEUE

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        if not pod.claim_refs:
            return None
        claims = self._claims(pod)
        return _unresolvable(claims) if isinstance(claims, str) else None

    # --- scheduling cycle ---------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        s = _State(self.device_classes.backed(pod.requests))
        state.write(STATE_KEY, s)  # before anything else, as upstream
        if s.backed:
            s.extended_stale = self.handle.resource_claims.extended_claim_of(pod.uid)
        if not pod.claim_refs:
            return None if s.backed else SKIP
        claims = self._claims(pod)
        if isinstance(claims, str):
            return _unresolvable(claims)
        s.claims = claims
        store = self.handle.resource_claims
        for index, claim in enumerate(claims):
            if claim.allocation is not None:
                if not claim.can_be_reserved and not claim.reserved_for_uid(pod.uid):
                    return _unresolvable(IN_USE)
                try:
                    s.node_terms[index] = node_selector_terms(claim.allocation.get("nodeSelector"))
                except ValueError as err:
                    return Status.error(f"claim {claim.key}: allocation: {err}", NAME)
                continue
            if store.pending_allocation(claim.uid) is not None:
                return _unresolvable(
                    f"resource claim {claim.key} is in the process of being allocated"
                )
            for request in claim.requests:
                if request.problem:
                    return _unresolvable(
                        f"resource claim {claim.key}, request {request.name}: {request.problem}"
                    )
                for ask in request.alternatives:
                    if ask.device_class not in self.device_classes.classes:
                        return _unresolvable(
                            f"request {ask.name}: device class {ask.device_class} does not exist"
                        )
            s.to_allocate.append(index)
        return None if s.claims or s.backed else SKIP

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        """Node by node: the allocated claims' node selectors, then one allocation of the
        unallocated claims plus, where the node's allocatable lacks a backed extended
        resource, the claim for those (scheduler.dra.extended)."""
        s: _State | None = state.data.get(STATE_KEY)
        if s is None:
            s = _State(self.device_classes.backed(pod.requests))
        stale = np.zeros(rows.size, dtype=np.bool_)
        unavailable = np.zeros(rows.size, dtype=np.bool_)
        misfit = np.zeros(rows.size, dtype=np.bool_)
        in_use = self.handle.resource_claims.in_use()
        classes = self.device_classes.classes
        to_allocate = [s.claims[i] for i in s.to_allocate]
        specials: dict[frozenset[str], tuple[DraClaim, list[JSON]]] = {}
        broken: dict[str, Mask] = {}  # a node's own failure (an invalid pool) -> its rows
        deadline = self._deadline()
        for i, row in enumerate(rows.tolist()):
            node = table.node(row)
            needs = _lacking(s.backed, table, row)
            if needs and s.extended_stale is not None:
                stale[i] = True
                continue
            missing = [
                index
                for index, terms in s.node_terms.items()
                if terms is not None
                and not any(term_matches(t, node.name, node.labels) for t in terms)
            ]
            if missing:
                s.unavailable.update(missing)
                unavailable[i] = True
                continue
            claims = to_allocate
            special = None
            if needs:
                key = frozenset(needs)
                if key not in specials:
                    requests, mappings = extended.requests_and_mappings(
                        pod.raw.get("spec") or {}, needs
                    )
                    claim = DraClaim.compile(extended.claim_for(pod.raw, requests))
                    specials[key] = (claim, mappings)
                special = specials[key]
                claims = [*to_allocate, special[0]]
            if not claims:
                continue
            pools = self.handle.resource_slices.pools_for(node.name, node.labels)
            try:
                found = allocate(claims, node.name, node.labels, pools, classes, in_use, deadline)
            except AllocationError as err:
                raise PluginError(str(err), NAME) from err
            except NodeFailure as err:
                broken.setdefault(str(err), np.zeros(rows.size, dtype=np.bool_))[i] = True
                continue
            except AllocationTimeout as err:
                raise PluginError(
                    f"node {node.name}: timed out trying to allocate devices", NAME
                ) from err
            if found is None:
                misfit[i] = True
                continue
            s.allocations[node.name] = found
            if special is not None:
                s.extended[node.name] = special
        rejected_rows = stale | unavailable | misfit
        for mask in broken.values():
            rejected_rows |= mask
        reasons = [
            Reason(message, rejected, resolvable=False)
            for message, rejected in (
                (STALE_EXTENDED, stale),
                (NOT_AVAILABLE, unavailable),
                (CANNOT_ALLOCATE, misfit),
                *broken.items(),
            )
            if rejected.any()
        ]
        return FilterResult(~rejected_rows, tuple(reasons))

    def _deadline(self) -> float | None:
        """When one Filter call's allocation search gives up: upstream's filterTimeout (0 =
        never), capped at SEARCH_BUDGET_S because berth's scheduling cycle runs on the event
        loop and would starve everything else (leader lease renewal included) meanwhile."""
        timeout = self.args.filter_timeout_ns / 1e9
        if timeout <= 0:
            return None
        return time.monotonic() + min(timeout, SEARCH_BUDGET_S)

    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        table: NodeTable,
        diagnosis: Diagnosis,
        check: NodeCheck,
    ) -> PostFilterResult:
        """Upstream's: deallocate one allocated claim that kept the pod off the nodes and
        that no other pod uses. Its lookup error when PreFilter never ran (an earlier
        PreFilter plugin rejected the pod as unresolvable) ends the message as "not found"."""
        s: _State | None = state.data.get(STATE_KEY)
        rejected = diagnosis.pre_filter
        if (
            s is None
            and rejected is not None
            and rejected.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        ):
            return PostFilterResult(Status.error(NO_STATE), preemption=False)
        if s is not None and s.extended_stale is not None:
            return PostFilterResult(
                Status(Code.UNSCHEDULABLE, (DELETED,)),
                execute=functools.partial(self.handle.delete_claim, s.extended_stale),
                preemption=False,
            )
        for index in sorted(s.unavailable if s is not None else ()):
            claim = s.claims[index] if s is not None else None
            if claim is None:
                continue
            others = [r for r in claim.reserved_for if r.get("uid") != pod.uid]
            if not others:
                return PostFilterResult(
                    Status(Code.UNSCHEDULABLE, (DEALLOCATED,)),
                    execute=functools.partial(self.handle.deallocate_claim, claim),
                    preemption=False,
                )
        return PostFilterResult(Status(Code.UNSCHEDULABLE), preemption=False)

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        s: _State | None = state.data.get(STATE_KEY)
        if s is None or not any(r.subrequests for c in s.claims for r in c.requests):
            return SKIP
        return None

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        """Upstream's computeScore: per chosen firstAvailable alternative i, 8 - i."""
        s: _State = state.read(STATE_KEY)
        scores = np.zeros(rows.size, dtype=np.int64)
        for i, row in enumerate(rows.tolist()):
            found = s.allocations.get(table.node(row).name, [])
            chosen: set[str] = set()
            for index, claim in enumerate(s.claims):
                allocation = claim.allocation
                if allocation is None and index in s.to_allocate:
                    position = s.to_allocate.index(index)
                    allocation = found[position].to_json() if position < len(found) else None
                for result in ((allocation or {}).get("devices") or {}).get("results") or []:
                    chosen.add(str(result.get("request")))
                for request in claim.requests:
                    if request.subrequests:
                        for rank, ask in enumerate(request.alternatives):
                            if ask.name in chosen:
                                scores[i] += FIRST_AVAILABLE_MAX - rank
        return scores

    def normalize(self, scores: Scores) -> Scores:
        """upstream's DefaultNormalizeScore: the highest becomes 100 (all 0 stay 0)."""
        top = int(scores.max(initial=0))
        return scores if top == 0 else scores * 100 // top

    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        s: _State | None = state.data.get(STATE_KEY)
        special = s.extended.get(node) if s is not None else None
        if s is None or (not s.to_allocate and special is None):
            return None
        found = s.allocations.get(node)
        if found is None or len(found) != len(s.to_allocate) + (special is not None):
            return Status.error("claim allocation not found for node", NAME)
        store = self.handle.resource_claims
        for index, allocation in zip(s.to_allocate, found, strict=False):
            store.assume(s.claims[index], allocation.to_json())
            s.reserved.append((index, allocation))
        if special is not None:
            store.assume(special[0], found[-1].to_json())
            s.reserved_extended = (special[0], found[-1], special[1])
        return None

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        s: _State | None = state.data.get(STATE_KEY)
        if s is None:
            return
        store = self.handle.resource_claims
        for index, _ in s.reserved:
            store.forget(s.claims[index].uid)
        s.reserved.clear()
        if s.reserved_extended is not None:
            store.forget(s.reserved_extended[0].uid)
            s.reserved_extended = None
        for claim in s.written:
            if claim is not s.created:
                self._spawn(self.handle.unreserve_claim(claim, pod))
        s.written.clear()
        if s.created is not None:  # written to the API: delete it, as upstream
            self._spawn(self.handle.delete_claim(s.created))
            s.created = None

    def pre_bind_pre_flight(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Upstream's: PreBind has work when the pod has claims."""
        s: _State | None = state.data.get(STATE_KEY)
        return None if s is not None and (s.claims or node in s.extended) else SKIP

    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        s: _State | None = state.data.get(STATE_KEY)
        if s is None:
            return None
        allocations = {index: a.to_json() for index, a in s.reserved}
        try:
            for index, claim in enumerate(s.claims):
                allocation = allocations.get(index)
                if allocation is None and claim.reserved_for_uid(pod.uid):
                    continue
                await self.handle.reserve_claim(claim, allocation, pod)
                s.written.append(claim)
            if s.reserved_extended is not None:
                await self._bind_extended(s, pod)
        except Exception as err:
            return Status.error(str(err), NAME)
        return None

    async def _bind_extended(self, s: _State, pod: PodInfo) -> None:
        """Create the claim for the pod's extended resources, write its allocation and
        reservation, and record it in the pod's status (upstream's bindClaim for it)."""
        assert s.reserved_extended is not None
        special, allocation, mappings = s.reserved_extended
        store = self.handle.resource_claims
        created = DraClaim.compile(
            await self.handle.create_claim(extended.for_creation(special.raw))
        )
        s.created = created
        store.assume(created, allocation.to_json())
        store.forget(special.uid)
        await self.handle.reserve_claim(created, allocation.to_json(), pod)
        s.written.append(created)
        await self.handle.set_extended_claim_status(pod, created.name, mappings)

    # --- helpers ------------------------------------------------------------------------

    def _claims(self, pod: PodInfo) -> list[DraClaim] | str:
        """The pod's claims (upstream's foreachPodResourceClaim), or why one is missing."""
        store = self.handle.resource_claims
        claims = []
        for ref in pod.claim_refs:
            if ref.problem:
                return ref.problem
            if not ref.claim:
                continue  # the controller decided no claim is needed
            claim = store.get(pod.namespace, ref.claim)
            if claim is None:
                return f'resourceclaim.resource.k8s.io "{ref.claim}" not found'
            if claim.deleting:
                return f'resourceclaim "{claim.name}" is being deleted'
            if ref.from_template and claim.owner_uid != pod.uid:
                return (
                    f"ResourceClaim {claim.key} was not created for Pod {pod.key}"
                    " (Pod is not owner)"
                )
            claims.append(claim)
        return claims

    def _spawn(self, call: Coroutine[Any, Any, None]) -> None:
        """Fire-and-forget an API call from a synchronous extension point (Unreserve); a
        failure is logged (the claim controller drops a deleted pod's reservation anyway)."""

        async def run() -> None:
            try:
                await call
            except Exception as err:
                log.warning("unreserve of a ResourceClaim failed", extra={"error": str(err)})

        try:
            task = asyncio.get_running_loop().create_task(run())
        except RuntimeError:  # no loop (a unit test calling unreserve directly)
            call.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _lacking(backed: Mapping[str, str], table: NodeTable, row: int) -> dict[str, str]:
    """The backed extended resources this node's allocatable does not list (or lists as 0):
    DRA must allocate them there (upstream's filterExtendedResources)."""
    lacking = {}
    for resource, device_class in backed.items():
        column = table.resource_index.get(resource)
        if column is None or table.allocatable[row, column] <= 0:
            lacking[resource] = device_class
    return lacking


def _unresolvable(message: str) -> Status:
    return Status.unschedulable(message, plugin=NAME, resolvable=False)


def new(args: DynamicResourcesArgs | Mapping[str, Any], handle: Handle) -> DynamicResources:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return DynamicResources(handle, pluginargs.coerce(NAME, DynamicResourcesArgs, args))
