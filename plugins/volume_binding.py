"""VolumeBinding: pods with PersistentVolumeClaims go where their volumes can be used.

PreFilter (upstream's podHasPVCs and GetPodVolumeClaims) rejects the pod everywhere, as
UnschedulableAndUnresolvable, when a claim is missing ("persistentvolumeclaim "x" not found"; an
ephemeral volume's claim: "waiting for ephemeral volume controller to create ..."), lost, being
deleted, or not bound although its binding mode is Immediate ("pod has unbound immediate
PersistentVolumeClaims"). Pods without claims skip the plugin.

Filter (FindPodVolumes): a bound claim's PV must exist and its nodeAffinity must match the node;
an unbound WaitForFirstConsumer claim needs an available PV that fits it on the node (the
smallest one, claims taken smallest first, as upstream), or a class whose provisioner could
create one there (checkVolumeProvisions): a real provisioner, allowedTopologies admitting the
node, and, when the provisioner's CSIDriver sets `storageCapacity: true`, a CSIStorageCapacity
of the class whose nodeTopology selects the node and whose maximumVolumeSize (else capacity) is
at least the claim's request ("node(s) did not have enough free storage"). A claim that already
names a node (provisioning under way) fits that node only. Reasons and codes are upstream's.

Score (StorageCapacityScoring, beta and on in v1.37; upstream's scorer.go): for a pod with
unbound WaitForFirstConsumer claims, each node scores by how much of the capacity the claims
would use, per storage class, through the args' `shape` (utilization 0..100 -> score 0..10,
scaled to 0..100; default: emptier is better), averaged over the classes and rounded. Where any
claim gets a static PV, the chosen PVs' capacities count; elsewhere the claims to provision
count against the capacity of the CSIStorageCapacity found for each on the node (claims whose
driver reports none are left out). A node with nothing to score gets 0.

Reserve (upstream's AssumePodVolumes) chooses, on the pod's node, the PV each unbound
WaitForFirstConsumer claim gets (Filter's greedy choice) or provisioning there, and assumes the
PVs in the volume store so the next pod's Filter does not offer them; Unreserve gives them
back. Like upstream, nothing is taken off a CSIStorageCapacity for a volume being provisioned:
the driver publishes what is left. PreBind (BindPodVolumes) writes the choice through the
Handle: the PV's claimRef (with upstream's bound-by-controller annotation), or the claim's
`volume.kubernetes.io/selected-node` annotation for its provisioner; then it waits, polling the
store every second for at most the args' `bindTimeoutSeconds`, until the PV controller has
bound every claim, and fails as upstream does when the time is up ("binding volumes: context
deadline exceeded").
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler import pluginargs
from scheduler.framework import (
    CSI_DRIVER,
    CSI_NODE,
    CSI_STORAGE_CAPACITY,
    NODE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    SKIP,
    STORAGE_CLASS,
    ActionType,
    Claim,
    ClusterEvent,
    ClusterEventWithHint,
    Code,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
    Reason,
    Scores,
    Status,
    StorageClass,
    Volume,
    VolumeStore,
)
from scheduler.model import LabelSelector, PodInfo, SelectorTerm
from scheduler.pluginargs import VolumeBindingArgs
from scheduler.snapshot import Mask, NodeTable, Rows, requirement_mask, term_mask
from scheduler.volumes import CSIDriver, StorageCapacity

NAME = "VolumeBinding"
STATE = "PreFilter" + NAME
DECISIONS = "Reserve" + NAME  # ((claim, PV name or "" to provision), ...) on the chosen node

ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
# upstream's ConflictReasons, in the order Filter reports them (a node can fail several)
ERR_NODE_CONFLICT = "node(s) didn't match PersistentVolume's node affinity"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_NOT_ENOUGH_SPACE = "node(s) did not have enough free storage"
ERR_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT = "WaitForFirstConsumer"
# PreBind's wait for the PV controller: upstream's error when bindTimeoutSeconds runs out, and
# how often it looks (wait.PollUntilContextTimeout's interval).
ERR_BIND_TIMEOUT = "binding volumes: context deadline exceeded"
POLL_INTERVAL_S = 1.0
_MAX_UTILIZATION = 100
# upstream's framework.MaxNodeScore / config.MaxCustomPriorityScore
_SHAPE_SCALE = 100 // pluginargs.MAX_CUSTOM_PRIORITY_SCORE


@dataclass(frozen=True)
class _Claims:
    """The pod's claims, split as upstream's PodVolumeClaims."""

    bound: tuple[Claim, ...]
    delayed: tuple[Claim, ...]  # unbound, WaitForFirstConsumer


@dataclass(frozen=True)
class _Plan:
    """Upstream's FindPodVolumes for the unbound WaitForFirstConsumer claims, over rows.

    `elsewhere`: rows other than the node a claim's selected-node annotation names (upstream's
    fast path: those fail at once). `ordered` are the other claims, smallest request first,
    each with its fitting PVs (`candidates`, smallest first) and every PV's node-affinity mask.
    `to_provision` is upstream's claimsToProvision in its order (the claims with a selected
    node, then those left without a PV), each with the rows where it is to be provisioned."""

    elsewhere: Mask
    ordered: list[Claim]
    candidates: list[list[Volume]]
    places: list[_Places]  # per ordered claim: where its candidates can be used
    to_provision: list[tuple[Claim, Mask]]


@dataclass
class _Places:
    """A claim's candidate PVs by the position (in the `rows` of one call) of the nodes their
    node affinity admits, each list in candidate order (smallest first); PVs without node
    affinity go anywhere. Built from cached row sets, so a pod's Filter costs one pass over
    the candidates instead of one node-affinity mask per PV."""

    anywhere: list[tuple[int, Volume]] = field(default_factory=list)
    by_position: dict[int, list[tuple[int, Volume]]] = field(default_factory=dict)

    def at(self, position: int) -> Iterator[Volume]:
        """The candidates usable at `position`, smallest first."""
        here = self.by_position.get(position, [])
        if not self.anywhere:
            return (pv for _, pv in here)
        return (pv for _, pv in heapq.merge(here, self.anywhere, key=lambda item: item[0]))

    def mask(self, size: int) -> Mask:
        """Positions where some candidate can be used."""
        if self.anywhere:
            return np.ones(size, dtype=np.bool_)
        found = np.zeros(size, dtype=np.bool_)
        found[list(self.by_position)] = True
        return found


class VolumeBinding:
    name = NAME

    def __init__(
        self,
        store: VolumeStore,
        args: VolumeBindingArgs | None = None,
        *,
        handle: Handle | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.handle = handle
        self.args = args or VolumeBindingArgs()
        self._clock = clock
        self._sleep = sleep
        self._shape = tuple((p.utilization, p.score * _SHAPE_SCALE) for p in self.args.shape)
        # _rows_for's cache: node affinity terms -> the table rows they admit
        self._rows_cache: dict[int, tuple[tuple[SelectorTerm, ...], tuple[int, ...]]] = {}
        self._rows_key: tuple[int, int] = (0, -1)
        self._candidates_key: tuple[str, str, int, int] = ("", "", 0, -1)
        self._candidates_found: list[Volume] = []

    def row_local_for(self, pod: PodInfo) -> bool:
        # The verdict reads the volume store, which changes without touching any row.
        return not any(v.kind == "pvc" for v in pod.volumes)

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """Upstream's: a StorageClass added or changed (binding mode, allowedTopologies); a
        claim added or changed; a PV added or changed; a node added or relabelled (PV node
        affinity, allowedTopologies); a CSINode added or changed (in-tree PV translation); a
        CSIDriver changed and a CSIStorageCapacity added or changed (storage capacity)."""
        add_or_update = ActionType.ADD | ActionType.UPDATE
        return [
            ClusterEventWithHint(
                ClusterEvent(STORAGE_CLASS, add_or_update),
                self.is_schedulable_after_storage_class_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(PERSISTENT_VOLUME_CLAIM, add_or_update),
                self.is_schedulable_after_persistent_volume_claim_change,
            ),
            ClusterEventWithHint(ClusterEvent(PERSISTENT_VOLUME, add_or_update)),
            ClusterEventWithHint(ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL)),
            ClusterEventWithHint(
                ClusterEvent(CSI_NODE, add_or_update), self.is_schedulable_after_csi_node_change
            ),
            ClusterEventWithHint(
                ClusterEvent(CSI_DRIVER, ActionType.UPDATE),
                self.is_schedulable_after_csi_driver_change,
            ),
            ClusterEventWithHint(
                ClusterEvent(CSI_STORAGE_CAPACITY, add_or_update),
                self.is_schedulable_after_csi_storage_capacity_change,
            ),
        ]

    @staticmethod
    def is_schedulable_after_storage_class_change(
        pod: PodInfo, old: StorageClass | None, new: StorageClass
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterStorageClassChange: any class added, or one whose
        allowedTopologies changed."""
        if old is None or old.allowed_topologies != new.allowed_topologies:
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_persistent_volume_claim_change(
        pod: PodInfo, old: Claim | None, new: Claim
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterPersistentVolumeClaimChange: a claim of the pod's,
        by name or as its ephemeral volume's claim, added or changed."""
        if new.namespace != pod.namespace:
            return QueueingHint.SKIP
        if any(v.kind == "pvc" and v.claim == new.name for v in pod.volumes):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_csi_node_change(
        pod: PodInfo, old: Mapping[str, int | None] | None, new: Mapping[str, int | None]
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterCSINodeChange: a CSINode added; on an update, only its
        migrated-plugins annotation matters upstream (in-tree PV translation), which berth
        neither reads nor does, so an update never helps here."""
        return QueueingHint.QUEUE if old is None else QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_csi_storage_capacity_change(
        pod: PodInfo, old: StorageCapacity | None, new: StorageCapacity
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterCSIStorageCapacityChange: any CSIStorageCapacity
        added, or one whose limit (maximumVolumeSize, else capacity) appeared or grew. Its
        class and nodeTopology cannot change (the API server refuses it)."""
        if old is None:
            return QueueingHint.QUEUE
        new_limit, old_limit = new.limit, old.limit
        if new_limit is not None and (old_limit is None or new_limit > old_limit):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def is_schedulable_after_csi_driver_change(
        pod: PodInfo, old: CSIDriver | None, new: CSIDriver
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterCSIDriverChange: the driver stopped asking for
        capacity checks (storageCapacity true, now not) and the pod has an inline CSI volume
        of that driver. Upstream looks at the pod's inline CSI volumes only, not at the
        provisioners of its claims' classes, so the capacity events (or the periodic flush)
        are what move a pod rejected for storage; berth's hint says the same."""
        if old is None or not old.storage_capacity or new.storage_capacity:
            return QueueingHint.SKIP
        if any(v.kind == "csi" and v.disk[:1] == (new.name,) for v in pod.volumes):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        claims = _pod_claims(self.store, pod)
        if isinstance(claims, Status):
            return claims
        if claims is None:
            return SKIP
        state.write(STATE, claims)
        return None

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        claims = state.data.get(STATE)
        if claims is None:  # PreFilter did not run: recompute, as upstream's Filter does
            claims = _pod_claims(self.store, pod)
            if not isinstance(claims, _Claims):
                return _reject_all(rows, claims)
        node_conflict = np.zeros(rows.size, dtype=np.bool_)
        pv_missing = np.zeros(rows.size, dtype=np.bool_)
        # Upstream's checkBoundClaims stops at the first bound claim that fails on the node, so
        # a missing PV only counts where no earlier claim's PV already conflicted.
        for claim in claims.bound:
            pv = self.store.volume(claim.volume_name)
            if pv is None:
                pv_missing = ~node_conflict
                break
            node_conflict |= ~self._affinity(table, pv.node_terms, rows)
        plan = self._plan(table, claims.delayed, rows)
        bind_conflict, no_space = self._conflicts(table, plan, rows)
        reasons = tuple(
            Reason(message, rejected, resolvable=False)
            for message, rejected in (
                (ERR_NODE_CONFLICT, node_conflict),
                (ERR_BIND_CONFLICT, bind_conflict),
                (ERR_NOT_ENOUGH_SPACE, no_space),
                (ERR_PV_NOT_EXIST, pv_missing),
            )
            if rejected.any()
        )
        return FilterResult(~(node_conflict | bind_conflict | no_space | pv_missing), reasons)

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        """Upstream's PreScore with StorageCapacityScoring on: score every pod PreFilter kept
        (one with no claims was skipped there, and is here)."""
        return None if isinstance(state.data.get(STATE), _Claims) else SKIP

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        """Upstream's Score: per node, where any claim gets a static PV, those PVs' requests
        and capacities summed per storage class; else the claims to provision, their requests
        summed per class against the capacity of the CSIStorageCapacity found for them on the
        node (one per class: claims of a class share it). Each class through the shape, the
        mean rounded; 0 where there is nothing to score."""
        claims = state.data.get(STATE)
        scores = np.zeros(rows.size, dtype=np.int64)
        if not isinstance(claims, _Claims) or not claims.delayed:
            return scores
        plan = self._plan(table, claims.delayed, rows)
        provisions = [
            (claim, needs, self._provision_check(table, claim, rows)[1])
            for claim, needs in plan.to_provision
        ]
        for i in range(rows.size):
            per_class: dict[str, list[int]] = {}
            picks = _greedy_pick(plan.places, i)
            if any(pv is not None for pv in picks):
                for claim, pv in zip(plan.ordered, picks, strict=True):
                    if pv is not None:
                        used = per_class.setdefault(claim.storage_class, [0, 0])
                        used[0] += claim.request
                        used[1] += pv.capacity
            else:
                for claim, needs, found in provisions:
                    if found is None or not needs[i] or found[i] < 0:
                        continue  # no capacity reported for it: left out, as upstream
                    used = per_class.setdefault(claim.storage_class, [0, 0])
                    used[0] += claim.request
                    used[1] = int(found[i])
            if per_class:
                total = sum(self._class_score(r, c) for r, c in per_class.values())
                scores[i] = _round_half_away(total, len(per_class))
        return scores

    def normalize(self, scores: Scores) -> Scores:
        return scores  # already 0..100 (upstream has no ScoreExtensions)

    def _class_score(self, requested: int, capacity: int) -> int:
        """Upstream's buildScorerFunction for one class: a full (or unknown) capacity counts
        as 100% used."""
        if capacity == 0 or requested > capacity:
            return _broken_linear(_MAX_UTILIZATION, self._shape)
        return _broken_linear(requested * _MAX_UTILIZATION // capacity, self._shape)

    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Upstream's AssumePodVolumes: choose, for each unbound WaitForFirstConsumer claim,
        the PV it gets on `node` (the same greedy choice as Filter) or provisioning there,
        and assume the PVs taken, so the next pod's Filter does not offer them again."""
        claims = state.data.get(STATE)
        if not isinstance(claims, _Claims) or not claims.delayed:
            return None
        unbound = tuple(c for c in claims.delayed if not self._bound_now(c))
        if not unbound:
            return None
        table = self.handle.snapshot if self.handle is not None else None
        row = table.row_of.get(node) if table is not None else None
        if table is None or row is None:
            return Status.error(f"node {node!r} not in the snapshot", NAME)
        rows = np.asarray([row], dtype=np.int64)
        plan = self._plan(table, unbound, rows)
        bind_conflict, no_space = self._conflicts(table, plan, rows)
        if bind_conflict[0]:
            return Status.unschedulable(ERR_BIND_CONFLICT, plugin=NAME)
        if no_space[0]:
            return Status.unschedulable(ERR_NOT_ENOUGH_SPACE, plugin=NAME)
        decisions: list[tuple[Claim, str]] = [(c, "") for c in unbound if c.selected_node]
        for claim, pv in zip(plan.ordered, _greedy_pick(plan.places, 0), strict=True):
            decisions.append((claim, pv.name if pv is not None else ""))
            if pv is not None:
                self.store.assume(pv.name, claim)
        state.write(DECISIONS, tuple(decisions))
        return None

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        """Upstream's RevertAssumedPodVolumes: give the PVs back."""
        for claim, pv in state.data.pop(DECISIONS, ()):
            if pv:
                self.store.forget(pv, claim)

    def pre_bind_pre_flight(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Upstream's: PreBind has work unless every claim of the pod is bound already."""
        claims = state.data.get(STATE)
        if not isinstance(claims, _Claims) or not claims.delayed:
            return SKIP
        return None if any(not self._bound_now(c) for c in claims.delayed) else SKIP

    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Upstream's BindPodVolumes: write what Reserve chose (a chosen PV's claimRef, or
        the selected-node annotation on a claim to provision), then wait for the PV controller
        and the provisioner to bind every claim, polling every POLL_INTERVAL_S for at most
        bindTimeoutSeconds."""
        claims = state.data.get(STATE)
        if not isinstance(claims, _Claims) or not claims.delayed:
            return None
        decisions: tuple[tuple[Claim, str], ...] = state.data.get(DECISIONS, ())
        if self.handle is not None:
            try:
                for claim, pv in decisions:
                    if pv:
                        await self.handle.bind_volume(pv, claim)
                    else:
                        await self.handle.select_node(claim, node)
            except Exception as err:
                return Status.error(f"binding volumes: {err}", NAME)
        unbound = [c for c in claims.delayed if not self._bound_now(c)]
        if not unbound:
            return None
        if self.handle is None:
            needs_writes = [c for c in unbound if not self._prebound(c)]
            if needs_writes:  # nothing would bind them (a handle-less plugin, in tests)
                names = ", ".join(f'"{c.name}"' for c in needs_writes)
                return Status.error(f"binding volumes: no API to bind {names}", NAME)
        deadline = self._clock() + self.args.bind_timeout_seconds
        while (remaining := deadline - self._clock()) > 0:
            await self._sleep(min(POLL_INTERVAL_S, remaining))
            if all(self._bound_now(c) for c in claims.delayed):
                return None
        names = ", ".join(f'"{c.name}"' for c in claims.delayed if not self._bound_now(c))
        return Status.error(
            f"{ERR_BIND_TIMEOUT} (persistentvolumeclaim(s) {names} not bound after "
            f"{self.args.bind_timeout_seconds}s)",
            NAME,
        )

    def _prebound(self, claim: Claim) -> bool:
        """A PV names this claim in its claimRef: the PV controller binds the two on its own,
        WaitForFirstConsumer or not."""
        return any(pv.bound_to(claim) for pv in self.store.volumes.values())

    def _bound_now(self, claim: Claim) -> bool:
        current = self.store.claim(claim.namespace, claim.name)
        return current is not None and current.bound

    def _candidates_on(
        self, table: NodeTable, claims: tuple[Claim, ...], rows: Rows
    ) -> tuple[list[Claim], list[list[Volume]], list[_Places]]:
        """The claims smallest request first (they pick first, as upstream), each one's
        fitting PVs smallest first, and where over `rows` each of those can be used."""
        ordered = sorted(claims, key=lambda c: c.request)
        candidates = [self._candidates(c) for c in ordered]
        position = {row: i for i, row in enumerate(rows.tolist())}
        places = []
        for pvs in candidates:
            found = _Places()
            for index, pv in enumerate(pvs):
                if pv.node_terms is None:
                    found.anywhere.append((index, pv))
                    continue
                for row in self._rows_for(table, pv.node_terms):
                    at = position.get(row)
                    if at is not None:
                        found.by_position.setdefault(at, []).append((index, pv))
            places.append(found)
        return ordered, candidates, places

    def _candidates(self, claim: Claim) -> list[Volume]:
        """_candidates, kept while the store is unchanged (Filter, Score and Reserve of one
        pod ask the same)."""
        key = (claim.namespace, claim.name, id(claim), self.store.version)
        if self._candidates_key != key:
            self._candidates_key = key
            self._candidates_found = _candidates(self.store, claim)
        return self._candidates_found

    def _rows_for(self, table: NodeTable, terms: tuple[SelectorTerm, ...]) -> tuple[int, ...]:
        """The table rows a node affinity admits, kept until a node appears, goes or is
        relabelled (local PVs pin one node each: thousands of PVs, a few hundred terms)."""
        if self._rows_key != (id(table), table.labels_version):
            self._rows_key = (id(table), table.labels_version)
            self._rows_cache.clear()
        # Keyed by the terms object, compiled once per PV version (hashing the terms
        # themselves costs more than the lookup saves); the value keeps it alive.
        cached = self._rows_cache.get(id(terms))
        if cached is None or cached[0] is not terms:
            alive = np.flatnonzero(table.alive).astype(np.int64)
            cached = (terms, tuple(alive[affinity_mask(table, terms, alive)].tolist()))
            self._rows_cache[id(terms)] = cached
        return cached[1]

    def _affinity(
        self, table: NodeTable, terms: tuple[SelectorTerm, ...] | None, rows: Rows
    ) -> Mask:
        """affinity_mask through the row cache."""
        if terms is None:
            return np.ones(rows.size, dtype=np.bool_)
        return np.isin(rows, np.asarray(self._rows_for(table, terms), dtype=np.int64))

    def _plan(self, table: NodeTable, claims: tuple[Claim, ...], rows: Rows) -> _Plan:
        """The unbound WaitForFirstConsumer claims over `rows`: which node each claim already
        given one may use, which PVs the others take (upstream's greedy choice, node by node,
        when several compete), and which claims are left to provision where (see _Plan)."""
        elsewhere = np.zeros(rows.size, dtype=np.bool_)
        selected = [c for c in claims if c.selected_node]
        for claim in selected:
            row = table.row_of.get(claim.selected_node)
            elsewhere |= rows != (row if row is not None else -1)
        everywhere = np.ones(rows.size, dtype=np.bool_)
        to_provision = [(c, everywhere) for c in selected]
        matching = tuple(c for c in claims if not c.selected_node)
        ordered, candidates, places = self._candidates_on(table, matching, rows)
        if len(ordered) == 1:
            # One claim: any fitting PV on the node, else provisioning there.
            to_provision.append((ordered[0], ~places[0].mask(rows.size)))
        elif ordered:
            # Several claims compete for the same PVs: upstream's greedy choice, node by node.
            unpicked = np.zeros((len(ordered), rows.size), dtype=np.bool_)
            for i in range(rows.size):
                for k, pick in enumerate(_greedy_pick(places, i)):
                    unpicked[k, i] = pick is None
            to_provision += [(c, unpicked[k]) for k, c in enumerate(ordered)]
        return _Plan(elsewhere, ordered, candidates, places, to_provision)

    def _conflicts(self, table: NodeTable, plan: _Plan, rows: Rows) -> tuple[Mask, Mask]:
        """Per row, upstream's verdict on the claims of `plan`: (didn't find available
        persistent volumes to bind, did not have enough free storage). Rows a claim's
        selected node excludes fail at once; elsewhere the claims to provision are checked in
        upstream's order and the first that cannot be provisioned decides the reason."""
        bind_conflict = plan.elsewhere.copy()
        no_space = np.zeros(rows.size, dtype=np.bool_)
        decided = plan.elsewhere.copy()
        for claim, needs in plan.to_provision:
            pending = needs & ~decided
            if not pending.any():
                continue
            can, found = self._provision_check(table, claim, rows)
            enough = np.ones(rows.size, dtype=np.bool_) if found is None else found >= 0
            bind_conflict |= pending & ~can
            no_space |= pending & can & ~enough
            decided |= pending & ~(can & enough)
        return bind_conflict, no_space

    def _provision_check(
        self, table: NodeTable, claim: Claim, rows: Rows
    ) -> tuple[Mask, npt.NDArray[np.int64] | None]:
        """Upstream's checkVolumeProvisions for one claim: the rows where its class's
        provisioner may create the volume (a real provisioner, allowedTopologies admitting the
        node), and what hasEnoughCapacity finds on each row (see _node_capacity)."""
        cls = self.store.class_of(claim)
        if cls is None or not cls.provisioner or cls.provisioner == NO_PROVISIONER:
            return np.zeros(rows.size, dtype=np.bool_), None
        if cls.allowed_topologies:
            can = affinity_mask(table, cls.allowed_topologies, rows)
        else:
            can = np.ones(rows.size, dtype=np.bool_)
        return can, self._node_capacity(table, claim, cls, rows)

    def _node_capacity(
        self, table: NodeTable, claim: Claim, cls: StorageClass, rows: Rows
    ) -> npt.NDArray[np.int64] | None:
        """Upstream's hasEnoughCapacity, per row: the reported capacity of the first
        CSIStorageCapacity of the class whose limit holds the claim and whose nodeTopology
        selects the node (0 when it reports only maximumVolumeSize), -1 where none does.
        None when capacity is not checked: the provisioner has no CSIDriver, or one without
        `storageCapacity: true`, or the claim requests no size (the API server requires one,
        so only a hand-made claim)."""
        driver = self.store.csi_driver(cls.provisioner)
        if driver is None or not driver.storage_capacity or claim.request == 0:
            return None
        found = np.full(rows.size, -1, dtype=np.int64)
        for capacity in self.store.capacities_for(cls.name):
            limit = capacity.limit
            if limit is None or limit < claim.request:
                continue
            first = (found < 0) & label_selector_mask(table, capacity.node_topology, rows)
            found[first] = capacity.capacity or 0
        return found


def affinity_mask(table: NodeTable, terms: tuple[SelectorTerm, ...] | None, rows: Rows) -> Mask:
    """Rows matching any of `terms` (None = no constraint; an empty tuple matches nothing)."""
    if terms is None:
        return np.ones(rows.size, dtype=np.bool_)
    mask = np.zeros(rows.size, dtype=np.bool_)
    for term in terms:
        mask |= term_mask(table, term, rows)
    return mask


def label_selector_mask(table: NodeTable, selector: LabelSelector, rows: Rows) -> Mask:
    """Rows whose labels a metav1.LabelSelector selects (a nil selector selects none, an
    empty one every node)."""
    if selector.nothing:
        return np.zeros(rows.size, dtype=np.bool_)
    mask = np.ones(rows.size, dtype=np.bool_)
    for requirement in selector.requirements:
        mask &= requirement_mask(table, requirement, rows)
    return mask


def _greedy_pick(places: list[_Places], position: int) -> list[Volume | None]:
    """Upstream's FindMatchingVolume, claim after claim on one node: each takes the smallest
    fitting PV there that an earlier claim did not take (None: no PV, provisioning only)."""
    taken: set[str] = set()
    picks: list[Volume | None] = []
    for claim_places in places:
        pick = next((pv for pv in claim_places.at(position) if pv.name not in taken), None)
        if pick is not None:
            taken.add(pick.name)
        picks.append(pick)
    return picks


def _broken_linear(p: int, shape: tuple[tuple[int, int], ...]) -> int:
    """Upstream's helper.BuildBrokenLinearFunction (Go integer division truncates toward 0)."""
    for i, (u, s) in enumerate(shape):
        if p <= u:
            if i == 0:
                return s
            u0, s0 = shape[i - 1]
            return s0 + int((s - s0) * (p - u0) / (u - u0))
    return shape[-1][1]


def _round_half_away(total: int, count: int) -> int:
    """math.Round(float64(total) / float64(count)) for total >= 0 (class scores are)."""
    return (2 * total + count) // (2 * count)


def _fits(pv: Volume, claim: Claim) -> bool:
    """Upstream's FindMatchingVolume over the claim's class, without the node (node affinity
    is a mask): could `pv` be bound to `claim`?"""
    if pv.storage_class != claim.storage_class:
        return False  # upstream lists only the PVs of the claim's class
    if pv.claim_ref is not None and not pv.bound_to(claim):
        return False
    if pv.capacity < claim.request or pv.volume_mode != claim.volume_mode or pv.deleting:
        return False
    if pv.attributes_class != claim.attributes_class:
        return False  # VolumeAttributesClass (GA, on since v1.34) must match, pre-bound or not
    if pv.bound_to(claim):
        return True  # pre-bound to this claim: phase, selector and modes are not checked
    if pv.phase != "Available":
        return False
    if claim.selector is not None and not claim.selector.matches(pv.labels):
        return False
    return claim.access_modes <= pv.access_modes


def _candidates(store: VolumeStore, claim: Claim) -> list[Volume]:
    """The PVs the claim could bind, smallest first; a PV pre-bound to the claim (its claimRef
    names it) is the only candidate, as upstream returns it before looking further."""
    fitting = [
        pv
        for pv in store.volumes_of_class(claim.storage_class)
        if _fits(pv, claim) and not store.taken(pv, claim)
    ]
    prebound = [pv for pv in fitting if pv.bound_to(claim)]
    return prebound[:1] if prebound else sorted(fitting, key=lambda pv: (pv.capacity, pv.name))


def _pod_claims(store: VolumeStore, pod: PodInfo) -> _Claims | Status | None:
    """The pod's claims (None = it has none), or the status that rejects the pod. As upstream,
    every claim is first checked to exist and be usable, then claims are classified."""
    claims: list[Claim] = []
    for vol in pod.volumes:
        if vol.kind != "pvc":
            continue
        claim = store.claim(pod.namespace, vol.claim)
        if claim is None:
            if vol.ephemeral:
                return _unresolvable(
                    "waiting for ephemeral volume controller to create the "
                    f'persistentvolumeclaim "{vol.claim}"'
                )
            return _unresolvable(f'persistentvolumeclaim "{vol.claim}" not found')
        if claim.phase == "Lost":
            return _unresolvable(
                f'persistentvolumeclaim "{claim.name}" bound to non-existent persistentvolume '
                f'"{claim.volume_name}"'
            )
        if claim.deleting:
            return _unresolvable(f'persistentvolumeclaim "{claim.name}" is being deleted')
        if vol.ephemeral and pod.uid not in claim.owners:
            return _unresolvable(
                f"PVC {claim.namespace}/{claim.name} was not created for pod "
                f"{pod.namespace}/{pod.name} (pod is not owner)"
            )
        claims.append(claim)
    if not claims:
        return None
    bound: list[Claim] = []
    delayed: list[Claim] = []
    immediate = False
    for claim in claims:
        if claim.bound:
            bound.append(claim)
            continue
        cls = store.class_of(claim)
        if cls is not None and cls.binding_mode is None:
            return Status.error(f'VolumeBindingMode not set for StorageClass "{cls.name}"', NAME)
        # A missing class counts as Immediate; a pre-bound claim (volumeName set, binding not
        # complete) waits for the PV controller like an Immediate one.
        if cls is not None and cls.binding_mode == WAIT and not claim.volume_name:
            delayed.append(claim)
        else:
            immediate = True
    if immediate:
        return _unresolvable(ERR_UNBOUND_IMMEDIATE)
    return _Claims(tuple(bound), tuple(delayed))


def _unresolvable(message: str) -> Status:
    return Status.unschedulable(message, plugin=NAME, resolvable=False)


def _reject_all(rows: Rows, status: Status | None) -> FilterResult:
    """Filter without PreFilter: what PreFilter would have said, on every row."""
    if status is None or status.code is Code.SKIP:
        return FilterResult.all_pass(rows.size)
    resolvable = status.code is Code.UNSCHEDULABLE
    return FilterResult.reject(np.zeros(rows.size, dtype=np.bool_), status.message, resolvable)


def new(args: VolumeBindingArgs | Mapping[str, Any], handle: Handle) -> VolumeBinding:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError)."""
    return VolumeBinding(
        handle.volumes, pluginargs.coerce(NAME, VolumeBindingArgs, args), handle=handle
    )
