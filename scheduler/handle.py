"""The Handle plugins get (framework.Handle): one implementation for every caller.

    ClusterHandle ── reads: snapshot, volumes, DRA objects, namespaces, PDBs, workload
         │           selectors, waiting pods (all in-memory views fed by the event handlers)
         └── api: ClusterApi ── KubeApi (the API server: bindings, preemption)
                             └─ InMemoryApi (no server: tests, the in-memory bench, berth sim)

The stores are plain objects the event handlers (or a test, or a simulator) fill; nothing here
is module-global, so two schedulers in one process never share state.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scheduler.default_selector import SelectorSources
from scheduler.device_classes import DeviceClassStore
from scheduler.dra.claims import Claim as DraClaim
from scheduler.dra.claims import ClaimStore
from scheduler.dra.slices import SliceStore
from scheduler.framework import AlreadyBound, WaitingPod
from scheduler.kube import binder, preemption
from scheduler.kube import claims as claim_writes
from scheduler.kube.client import ApiError, Client
from scheduler.kube.events import Recorder
from scheduler.model import DisruptionBudget, LabelSelector, PodInfo
from scheduler.namespaces import NamespaceLabels
from scheduler.podgroups import PodGroupStore
from scheduler.runtime import PodsInPreBind, WaitingPods
from scheduler.snapshot import NodeTable
from scheduler.volumes import BOUND_BY_CONTROLLER, SELECTED_NODE, Claim, VolumeStore

log = logging.getLogger("berth.handle")

JSON = dict[str, Any]


class ClusterApi(Protocol):
    """The side effects a plugin may cause, behind the Handle."""

    async def bind(self, pod: PodInfo, node: str) -> None:
        """Bind `pod` to `node`; raises framework.AlreadyBound when someone else did."""

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        """Evict `victim` for `preemptor`; a victim already gone is not an error."""

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        """`victim` was waiting in Permit and was preempted there, without an API call:
        record the Preempted event (upstream's note ends "(in kube-scheduler memory).")."""

    async def bind_volume(self, pv: str, claim: Claim) -> None:
        """Set PV `pv`'s claimRef to `claim` (framework.Handle.bind_volume)."""

    async def select_node(self, claim: Claim, node: str) -> None:
        """Set `claim`'s selected-node annotation (framework.Handle.select_node)."""

    async def reserve_claim(self, claim: JSON, allocation: JSON | None, consumer: JSON) -> JSON:
        """Write a ResourceClaim's allocation and reservation; returns it as written."""

    async def unreserve_claim(self, claim: DraClaim, pod_uid: str) -> None:
        """Drop `pod_uid` from the claim's reservedFor."""

    async def deallocate_claim(self, claim: JSON) -> None:
        """Clear the claim's allocation and reservations."""

    async def create_claim(self, claim: JSON) -> JSON:
        """Create a ResourceClaim; returns it as created (name and uid set)."""

    async def delete_claim(self, claim: JSON) -> None:
        """Delete a ResourceClaim (its delete-protection finalizer dropped first)."""

    async def set_extended_claim_status(
        self, pod: PodInfo, claim_name: str, mappings: list[JSON]
    ) -> None:
        """Write the pod's status.extendedResourceClaimStatus."""


@dataclass
class ClusterHandle:
    """framework.Handle. `snapshot` is the cache's live NodeTable; `budgets` maps
    "namespace/name" to each PodDisruptionBudget."""

    api: ClusterApi
    snapshot: NodeTable = field(default_factory=NodeTable)
    volumes: VolumeStore = field(default_factory=VolumeStore)
    device_classes: DeviceClassStore = field(default_factory=DeviceClassStore)
    resource_claims: ClaimStore = field(default_factory=ClaimStore)
    resource_slices: SliceStore = field(default_factory=SliceStore)
    namespaces: NamespaceLabels = field(default_factory=NamespaceLabels)
    budgets: dict[str, DisruptionBudget] = field(default_factory=dict)
    selectors: SelectorSources = field(default_factory=SelectorSources)
    waiting_pods: WaitingPods = field(default_factory=WaitingPods)
    pods_in_pre_bind: PodsInPreBind = field(default_factory=PodsInPreBind)
    pod_groups: PodGroupStore = field(default_factory=PodGroupStore)
    # The queue's activate(uids), wired by whoever owns the queue (the app, the bench).
    activator: Callable[[Iterable[str]], None] = lambda uids: None
    # The queue's ungate(uids, plugin), wired likewise.
    ungater: Callable[[Iterable[str], str], None] = lambda uids, plugin: None
    # Seeds every plugin's random source (new_random); None: unseeded.
    seed: int | None = None

    def new_random(self) -> random.Random:
        return random.Random(self.seed)

    def disruption_budgets(self) -> Sequence[DisruptionBudget]:
        return list(self.budgets.values())

    def default_spread_selector(self, pod: PodInfo) -> LabelSelector | None:
        return self.selectors.default_selector(pod)

    def get_waiting_pod(self, uid: str) -> WaitingPod | None:
        return self.waiting_pods.get(uid)

    def iterate_waiting_pods(self) -> Iterator[WaitingPod]:
        return iter(list(self.waiting_pods))

    def activate(self, pods: Iterable[PodInfo]) -> None:
        self.activator([pod.uid for pod in pods])

    def ungate(self, pods: Iterable[PodInfo], plugin: str) -> None:
        self.ungater([pod.uid for pod in pods], plugin)

    async def bind(self, pod: PodInfo, node: str) -> None:
        await self.api.bind(pod, node)

    async def bind_volume(self, pv: str, claim: Claim) -> None:
        await self.api.bind_volume(pv, claim)

    async def select_node(self, claim: Claim, node: str) -> None:
        await self.api.select_node(claim, node)

    async def reserve_claim(self, claim: DraClaim, allocation: JSON | None, pod: PodInfo) -> None:
        consumer = {"resource": "pods", "name": pod.name, "uid": pod.uid}
        written = await self.api.reserve_claim(claim.raw, allocation, consumer)
        self.resource_claims.written(claim.uid, written)

    async def unreserve_claim(self, claim: DraClaim, pod: PodInfo) -> None:
        await self.api.unreserve_claim(claim, pod.uid)

    async def deallocate_claim(self, claim: DraClaim) -> None:
        await self.api.deallocate_claim(claim.raw)

    async def create_claim(self, claim: JSON) -> JSON:
        return await self.api.create_claim(claim)

    async def delete_claim(self, claim: DraClaim) -> None:
        await self.api.delete_claim(claim.raw)

    async def set_extended_claim_status(
        self, pod: PodInfo, claim_name: str, mappings: list[JSON]
    ) -> None:
        await self.api.set_extended_claim_status(pod, claim_name, mappings)

    async def preempt(
        self, preemptor: PodInfo, victim: PodInfo, node: str, plugin: str = "DefaultPreemption"
    ) -> None:
        """A victim waiting in Permit, or whose PreBind is running, is preempted in memory
        (it backs off, unreserved); any other is deleted through the API (upstream's
        Executor.PreemptPod)."""
        waiting = self.waiting_pods.get(victim.uid)
        if waiting is not None and waiting.preempt(plugin, "preempted"):
            self.api.preempted_in_memory(preemptor, victim, node)
            return
        if self.pods_in_pre_bind.cancel(victim.uid, f"preempted by {plugin}"):
            # Upstream's podInPreBind.CancelPod (v1.36): its binding cycle fails and it goes
            # back to backoff, never bound; nothing to delete.
            self.api.preempted_in_memory(preemptor, victim, node)
            return
        await self.api.preempt(preemptor, victim, node)


class KubeApi:
    """ClusterApi over the API server: a Binding per bind (409 -> AlreadyBound); preemption
    marks the victim DisruptionTarget, deletes it and records a Preempted event on it."""

    def __init__(self, client: Client, recorder: Recorder | None = None) -> None:
        self.client = client
        self.recorder = recorder

    async def bind(self, pod: PodInfo, node: str) -> None:
        """POST the Binding, after the pod's queued status writes are dropped or done (a
        failure status landing after the Binding would contradict it; upstream's binding call
        supersedes a status patch). A Binding answered with an error lets status writes
        through again; one with no answer (it may have landed) keeps them off until the
        pod's next Binding or the watch says."""
        status = self.recorder.status if self.recorder is not None else None
        if status is not None:
            await status.binding(pod.uid)
        try:
            await binder.bind(self.client, pod.namespace, pod.name, pod.uid, node)
        except ApiError as err:
            if err.status == 409:
                if status is not None:
                    status.bound(pod.uid)
                raise AlreadyBound(str(err)) from err
            if status is not None:
                status.binding_failed(pod.uid)
            raise
        if status is not None:
            status.bound(pod.uid)

    async def bind_volume(self, pv: str, claim: Claim) -> None:
        """A merge patch of the PV's claimRef (with the claim's uid) and upstream's
        bound-by-controller annotation, as volume.GetBindVolumeToClaim sets them."""
        await self.client.patch(
            f"/api/v1/persistentvolumes/{pv}",
            {
                "metadata": {"annotations": {BOUND_BY_CONTROLLER: "yes"}},
                "spec": {
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": claim.namespace,
                        "name": claim.name,
                        "uid": claim.uid,
                    }
                },
            },
            kind="merge",
        )

    async def select_node(self, claim: Claim, node: str) -> None:
        await self.client.patch(
            f"/api/v1/namespaces/{claim.namespace}/persistentvolumeclaims/{claim.name}",
            {"metadata": {"annotations": {SELECTED_NODE: node}}},
            kind="merge",
        )

    async def reserve_claim(self, claim: JSON, allocation: JSON | None, consumer: JSON) -> JSON:
        return await claim_writes.reserve(self.client, claim, allocation, consumer)

    async def unreserve_claim(self, claim: DraClaim, pod_uid: str) -> None:
        await claim_writes.unreserve(self.client, claim.namespace, claim.name, claim.uid, pod_uid)

    async def deallocate_claim(self, claim: JSON) -> None:
        await claim_writes.deallocate(self.client, claim)

    async def create_claim(self, claim: JSON) -> JSON:
        return await claim_writes.create(self.client, claim)

    async def delete_claim(self, claim: JSON) -> None:
        await claim_writes.delete(self.client, claim)

    async def set_extended_claim_status(
        self, pod: PodInfo, claim_name: str, mappings: list[JSON]
    ) -> None:
        await claim_writes.set_extended_status(
            self.client, pod.namespace, pod.name, claim_name, mappings
        )

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        log.info(
            "preempted a waiting pod",
            extra={"pod": victim.key, "preemptor": preemptor.key, "node": node},
        )
        if self.recorder is not None:
            self.recorder.preempted(
                victim.namespace,
                victim.name,
                victim.uid,
                reference(preemptor),
                node,
                controller=preemptor.scheduler_name,
                resource_version=victim.resource_version,
                in_memory=True,
            )

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        deleted = await preemption.preempt(
            self.client,
            victim.namespace,
            victim.name,
            victim.uid,
            preemptor.scheduler_name,
            generation(victim.raw),
        )
        log.info(
            "preempted" if deleted else "victim already gone",
            extra={"pod": victim.key, "preemptor": preemptor.key, "node": node},
        )
        if deleted and self.recorder is not None:
            self.recorder.preempted(
                victim.namespace,
                victim.name,
                victim.uid,
                reference(preemptor),
                node,
                controller=preemptor.scheduler_name,
                resource_version=victim.resource_version,
            )


class InMemoryApi:
    """ClusterApi with no server: a bind succeeds at once and is recorded in `placement`
    (pod key -> node); a preemption calls `on_evict(victim)`, which should do what the watch
    of the deletion would (remove it from the cache, emit AssignedPod/Delete) and say whether
    the victim was still there (a victim two preemptors chose goes once)."""

    def __init__(
        self,
        on_bound: Callable[[PodInfo, str], None] = lambda pod, node: None,
        on_evict: Callable[[PodInfo], bool] = lambda victim: True,
    ) -> None:
        self.placement: dict[str, str] = {}
        self.preempted: list[str] = []  # keys of the victims actually evicted
        self.volume_writes: list[tuple[str, str, str]] = []  # what bind_volume/select_node did
        self.claim_writes: list[tuple[str, str, str]] = []  # (what, claim key, pod uid or "")
        self._created = 0
        self._on_bound = on_bound
        self._on_evict = on_evict

    async def bind(self, pod: PodInfo, node: str) -> None:
        if pod.key in self.placement:
            raise AlreadyBound(f"pod {pod.key} is already bound to {self.placement[pod.key]}")
        self.placement[pod.key] = node
        self._on_bound(pod, node)

    async def preempt(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        if self._on_evict(victim):
            self.preempted.append(victim.key)

    def preempted_in_memory(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        self.preempted.append(victim.key)

    async def bind_volume(self, pv: str, claim: Claim) -> None:
        self.volume_writes.append(("claimRef", pv, f"{claim.namespace}/{claim.name}"))

    async def select_node(self, claim: Claim, node: str) -> None:
        self.volume_writes.append(("selected-node", f"{claim.namespace}/{claim.name}", node))

    async def reserve_claim(self, claim: JSON, allocation: JSON | None, consumer: JSON) -> JSON:
        """The claim as the API server would answer: allocation, reservation, finalizer,
        and the next resourceVersion."""
        written = copy.deepcopy(claim)
        meta = written.setdefault("metadata", {})
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)
        if allocation is not None:
            finalizers = meta.setdefault("finalizers", [])
            if claim_writes.FINALIZER not in finalizers:
                finalizers.append(claim_writes.FINALIZER)
            written.setdefault("status", {})["allocation"] = allocation
        written.setdefault("status", {}).setdefault("reservedFor", []).append(consumer)
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        self.claim_writes.append(("reserve", key, str(consumer.get("uid"))))
        return written

    async def unreserve_claim(self, claim: DraClaim, pod_uid: str) -> None:
        self.claim_writes.append(("unreserve", claim.key, pod_uid))

    async def deallocate_claim(self, claim: JSON) -> None:
        meta = claim.get("metadata") or {}
        self.claim_writes.append(("deallocate", f"{meta.get('namespace')}/{meta.get('name')}", ""))

    async def create_claim(self, claim: JSON) -> JSON:
        """The claim as created: named after its generateName, with a uid."""
        created = copy.deepcopy(claim)
        meta = created.setdefault("metadata", {})
        self._created += 1
        meta["name"] = f"{meta.pop('generateName', 'claim-')}{self._created:05d}"
        meta["uid"] = f"created-{self._created}"
        meta["resourceVersion"] = "1"
        self.claim_writes.append(("create", f"{meta.get('namespace')}/{meta['name']}", ""))
        return created

    async def delete_claim(self, claim: JSON) -> None:
        meta = claim.get("metadata") or {}
        self.claim_writes.append(("delete", f"{meta.get('namespace')}/{meta.get('name')}", ""))

    async def set_extended_claim_status(
        self, pod: PodInfo, claim_name: str, mappings: list[JSON]
    ) -> None:
        self.claim_writes.append(("extended-status", claim_name, pod.uid))


def in_memory(**stores: object) -> ClusterHandle:
    """A ClusterHandle on an InMemoryApi, for tests: `in_memory(namespaces=...)`."""
    return ClusterHandle(InMemoryApi(), **stores)  # type: ignore[arg-type]


def generation(obj: Mapping[str, Any]) -> int:
    """An object's metadata.generation (0 when unset or not an integer)."""
    value = (obj.get("metadata") or {}).get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def reference(pod: PodInfo) -> dict[str, str]:
    """The pod as an event's `related` object reference (kind and apiVersion added by the
    recorder), with the resourceVersion the scheduler holds, as client-go's GetReference."""
    ref = {"namespace": pod.namespace, "name": pod.name, "uid": pod.uid}
    if pod.resource_version:
        ref["resourceVersion"] = pod.resource_version
    return ref
