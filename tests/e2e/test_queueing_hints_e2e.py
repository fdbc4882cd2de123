"""Queueing hints end to end: a pod that a plugin rejected waits in the unschedulable pool until
a cluster event that plugin registered, with a hint that says Queue, moves it; berth counts the
move in scheduler_queue_incoming_pods_total under the event's label (upstream's
ClusterEvent.Label()).

Each case builds a situation in which the plugin under test rejects the pod on the nodes it
could use, waits until berth has reported FailedScheduling and parked the pod (its
/debug/pods view says "unschedulable" and names the plugin), reads the counter, causes the
event through the API, and waits for the pod to be bound. The 5-minute flush
(UnschedulableTimeout) is the only other way out of the pool, so a pod bound within 60 s was
moved by the event.

The cluster's shared nodes are kept out by a node selector, except where the event is a node
added: every plugin that rejects a node also registers NodeAdd and would queue the pod for a
node it accepts, so there the shared nodes are rejected by the plugin under test itself (a
request no shared node can hold, holders of a host port or disk on every node, a topology key
or feature they lack). Nodes added for a case carry a taint of their own where that keeps other
pods off them. Each case has its own namespace, nodes, labels and cluster-scoped objects.

A few events move the pod but cannot get it bound, because no driver publishes the DRA devices
a DeviceClass would allocate: those cases check that the pod was retried (its next failure
names the next obstacle) instead.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.kube.client import ApiError, Client
from scheduler.queue import ACTIVE, BACKOFF, GATED, UNSCHEDULABLE
from tests.builders import NodeBuilder, PodBuilder, make_node, make_pod
from tests.e2e.conftest import Running
from tests.e2e.provisioner import TestProvisioner
from tests.e2e.test_engine import (
    bound_to,
    create,
    events_for,
    extra_nodes,
    failed_message,
    get_pod,
    wait_for,
)
from tests.e2e.test_node_ports_e2e import base_port, port

JSON = dict[str, Any]
AddNode = Callable[[JSON], Awaitable[None]]
MakeObject = Callable[[str, JSON], Awaitable[JSON]]

__all__ = ["extra_nodes"]  # a fixture, imported for its side effect on pytest

WAITING = "waiting"  # the pod every case waits on
POOL = "pool"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
DEVICE_CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"
STORAGE_CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
CSI_NODES = "/apis/storage.k8s.io/v1/csinodes"
PERSISTENT_VOLUMES = "/api/v1/persistentvolumes"
CSI_DRIVER = "csi.qh.example.com"
RESTART_ALL = "RestartAllContainersOnContainerExits"
QH_PROVISIONER = "test.berth.io/qh"  # answered by tests/e2e/provisioner.py


# --- berth's view: metrics and the debug endpoint ----------------------------------------------


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


async def _sum(running: Running, sample: str, **labels: str | tuple[str, ...]) -> float:
    """The sum of the samples named `sample` whose labels match (a tuple: any of its values)."""
    body = await asyncio.to_thread(_get, f"http://127.0.0.1:{running.port}/metrics")
    wanted = {k: v if isinstance(v, tuple) else (v,) for k, v in labels.items()}
    return float(
        sum(
            s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
            if s.name == sample and all(s.labels.get(k) in v for k, v in wanted.items())
        )
    )


async def moved(running: Running, event: str) -> float:
    """Pods an event with this label moved out of the unschedulable pool so far."""
    return await _sum(
        running, "scheduler_queue_incoming_pods_total", queue=(ACTIVE, BACKOFF), event=event
    )


async def handled(running: Running, event: str) -> float:
    """Cluster events with this label berth's event handlers have handled so far."""
    return await _sum(running, "scheduler_event_handling_duration_seconds_count", event=event)


async def debug_pod(running: Running, namespace: str, name: str) -> JSON:
    url = f"http://127.0.0.1:{running.port}/debug/pods/{namespace}/{name}"
    view: JSON = json.loads(await asyncio.to_thread(_get, url))
    return view


def rejectors(view: JSON) -> set[str]:
    """The plugins that rejected the pod in its last attempt, as /debug/pods shows them."""
    found = set(view.get("by_plugin") or {})
    if pre_filter := view.get("pre_filter"):
        found.add(pre_filter["plugin"])
    return found


# --- the stage a case is built on -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """What a scenario built: `act` causes the event; the pod must end up on `node` ("" for
    any node)."""

    act: Callable[[], Awaitable[object]]
    node: str = ""


@dataclass
class Ctx:
    """One test's namespace, its nodes and objects, and the berth that schedules its pods."""

    client: Client
    namespace: str
    berth: Running
    add_node: AddNode
    make_object: MakeObject

    def name(self, role: str) -> str:
        """A cluster-wide name for one of this case's nodes or objects."""
        return f"{role}-{self.namespace}"

    @property
    def key(self) -> str:
        """A label key of this case's own (topology keys, taints, namespace labels)."""
        return f"qh.example/{self.namespace}"

    def pool(self, role: str) -> NodeBuilder:
        """A node in this case's pool (what `pinned()` pods select)."""
        return make_node(self.name(role)).label(POOL, self.namespace)

    def waiting(self) -> PodBuilder:
        return make_pod(WAITING).scheduler("berth").req(cpu="10m")

    def pinned(self) -> PodBuilder:
        """The waiting pod, kept to this case's pool."""
        return self.waiting().node_selector(**{POOL: self.namespace})

    async def node(self, node: NodeBuilder) -> str:
        """Add a node (removed after the test) once berth has seen it."""
        obj = node.obj_()
        before = await handled(self.berth, "NodeAdd")
        await self.add_node(obj)
        await self.seen("NodeAdd", before)
        name: str = obj["metadata"]["name"]
        return name

    async def seen(self, event: str, before: float) -> None:
        """Wait until berth has handled another event with this label."""

        async def probe() -> bool:
            return await handled(self.berth, event) > before

        await wait_for(probe)

    async def pending(self, pod: JSON, volumes: Sequence[JSON] = ()) -> None:
        if volumes:
            pod["spec"]["volumes"] = list(volumes)
        await create(self.client, self.namespace, pod)

    async def bound(self, pod: PodBuilder, node: str, volumes: Sequence[JSON] = ()) -> None:
        """Create a pod already bound to `node` (no scheduler), once berth has it cached."""
        raw = pod.node(node).for_api()
        if volumes:
            raw["spec"]["volumes"] = list(volumes)
        before = await handled(self.berth, "AssignedPodAdd")
        await create(self.client, self.namespace, raw)
        await self.seen("AssignedPodAdd", before)

    async def on_every_node(
        self, holder: Callable[[str], PodBuilder], volumes: Sequence[JSON] = ()
    ) -> None:
        """Bind `holder(i)` to each node of the cluster as it is now."""
        nodes = (await self.client.get("/api/v1/nodes"))["items"]
        for i, node in enumerate(nodes):
            await self.bound(holder(str(i)), node["metadata"]["name"], volumes)

    async def delete_pod(self, name: str) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{name}"
        await self.client.delete(path, {"gracePeriodSeconds": 0})

    async def patch_pod(self, name: str, body: JSON) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{name}"
        await self.client.patch(path, body, kind="merge")

    async def tolerate(self, name: str, toleration: JSON) -> None:
        """Add a toleration to a pod (tolerations may only be added, so keep the others)."""
        pod = await get_pod(self.client, self.namespace, name)
        tolerations = [*(pod["spec"].get("tolerations") or []), toleration]
        await self.patch_pod(name, {"spec": {"tolerations": tolerations}})

    async def patch_node(self, name: str, body: JSON, *, status: bool = False) -> None:
        path = f"/api/v1/nodes/{name}" + ("/status" if status else "")
        await self.client.patch(path, body, kind="merge")

    async def parked(self, plugin: str) -> JSON:
        """Wait until the waiting pod sits in the unschedulable pool rejected by `plugin`
        (gated by it, for a PreEnqueue plugin), with FailedScheduling reported; return its
        /debug/pods view."""
        view: JSON = {}
        for _ in range(300):
            view = await debug_pod(self.berth, self.namespace, WAITING)
            if view.get("queue") == GATED and plugin == "SchedulingGates":
                return view
            if view.get("queue") == UNSCHEDULABLE and plugin in rejectors(view):
                await failed_message(self.client, self.namespace, WAITING)
                return view
            await asyncio.sleep(0.2)
        raise AssertionError(f"the pod was not parked, rejected by {plugin}: {view}")

    async def claim(self, name: str, volume: JSON) -> None:
        """A PVC pre-bound to `volume` (created here, its claimRef naming the PVC), once the
        cluster's PV controller has completed the binding."""
        volume["spec"]["claimRef"] = {"namespace": self.namespace, "name": name}
        await self.make_object(PERSISTENT_VOLUMES, volume)
        await self.create_claim(
            claim_body(name, volume["spec"]["storageClassName"], volume["metadata"]["name"])
        )

        async def complete() -> bool:
            path = f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims/{name}"
            claim: JSON = await self.client.get(path)
            return bool((claim.get("status") or {}).get("phase") == "Bound")

        await wait_for(complete)

    async def create_claim(self, body: JSON) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims"
        await self.client.post(path, body)

    async def device_class(self, resource: str) -> str:
        """A DeviceClass backing the extended resource `resource`; skips on a server that drops
        spec.extendedResourceName (DRAExtendedResource off, as in v1.35)."""
        name = f"{self.name('qh')}.example.com"
        body = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": name},
            "spec": {"extendedResourceName": resource},
        }
        made = await self.make_object(DEVICE_CLASSES, body)
        if not (made.get("spec") or {}).get("extendedResourceName"):
            pytest.skip("the server drops spec.extendedResourceName (DRAExtendedResource off)")
        return name

    async def csi_node(self, node: str, count: int) -> None:
        """The CSINode of `node`, attaching at most `count` volumes of CSI_DRIVER."""
        await self.make_object(CSI_NODES, csi_node_body(node, count))


Scenario = Callable[[Ctx], Awaitable[Case]]


@pytest.fixture
async def cluster_objects(client: Client) -> AsyncIterator[MakeObject]:
    """Create cluster-scoped objects (PVs, classes, CSINodes) and delete them afterwards; a
    PV loses its protection finalizer first, which nothing clears for a PV still bound."""
    made: list[str] = []

    async def make(collection: str, body: JSON) -> JSON:
        obj: JSON = await client.post(collection, body)
        path = f"{collection}/{body['metadata']['name']}"
        if path not in made:
            made.append(path)
        return obj

    yield make
    for path in reversed(made):
        try:
            if path.startswith(PERSISTENT_VOLUMES):
                await client.patch(path, {"metadata": {"finalizers": None}}, kind="merge")
            await client.delete(path)
        except ApiError as err:
            if err.status != 404:
                raise


@pytest.fixture
def ctx(
    berth_scheduler: Running,
    client: Client,
    namespace: str,
    extra_nodes: AddNode,
    cluster_objects: MakeObject,
) -> Ctx:
    return Ctx(client, namespace, berth_scheduler, extra_nodes, cluster_objects)


# --- object bodies ----------------------------------------------------------------------------


def toleration(key: str, effect: str = "NoSchedule") -> JSON:
    """Tolerate every value of the taint `key` with this effect."""
    return {"key": key, "operator": "Exists", "effect": effect}


def tainted(node: NodeBuilder, ctx: Ctx) -> NodeBuilder:
    """`node` with this case's own taint: pods of other cases stay off it."""
    return node.taint(ctx.key, "x")


def tolerant(pod: PodBuilder, ctx: Ctx) -> PodBuilder:
    return pod.toleration(ctx.key, operator="Exists")


def host_path_volume(
    name: str, storage_class: str, *, node_term: JSON | None = None, zone: str = ""
) -> JSON:
    """A hostPath PV, with required node affinity `node_term` and a zone label if given."""
    spec: JSON = {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "persistentVolumeReclaimPolicy": "Retain",
        "hostPath": {"path": f"/tmp/{name}"},
    }
    if node_term is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [node_term]}}
    metadata: JSON = {"name": name}
    if zone:
        metadata["labels"] = {ZONE: zone}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": metadata, "spec": spec}


def label_term(key: str, value: str) -> JSON:
    return {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}


def claim_body(name: str, storage_class: str, volume: str = "", *, completed: bool = False) -> JSON:
    """A PVC; with `volume`, pre-bound to it (volumeName), and with `completed` also marked
    bound as the PV controller leaves a claim (the bind-completed annotation), which is what
    the scheduler reads as bound. The PV controller takes a completed claim whose PV's
    claimRef names it without its uid for misbound (Lost): give such a PV no claimRef."""
    body: JSON = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    if volume:
        body["spec"]["volumeName"] = volume
    if completed:
        body["metadata"]["annotations"] = {BIND_COMPLETED: "yes"}
    return body


def claim_volume(claim: str) -> JSON:
    return {"name": claim, "persistentVolumeClaim": {"claimName": claim}}


def csi_inline_volume() -> JSON:
    return {"name": "scratch", "csi": {"driver": CSI_DRIVER}}


def csi_node_body(node: str, count: int) -> JSON:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {"name": node},
        "spec": {
            "drivers": [{"name": CSI_DRIVER, "nodeID": node, "allocatable": {"count": count}}]
        },
    }


def extended_request(pod: PodBuilder, resource: str) -> JSON:
    """The pod asking for one `resource` (an extended resource's limit equals its request)."""
    raw = pod.req(cpu="10m", **{resource: "1"}).for_api()
    raw["spec"]["containers"][0]["resources"]["limits"] = {resource: "1"}
    return raw


def restarts_all(pod: PodBuilder) -> JSON:
    """The pod with a restart rule that restarts every container: it needs nodes declaring
    RestartAllContainersOnContainerExits."""
    raw = pod.restart_rule("RestartAllContainers").for_api()
    raw["spec"]["containers"][0]["restartPolicy"] = "Never"
    return raw


def spread(pod: PodBuilder, ctx: Ctx, **options: Any) -> PodBuilder:
    """A DoNotSchedule constraint, maxSkew 1 over this case's topology key, counting the pods
    labelled app=spread (the waiting pod is one of them)."""
    return pod.label("app", "spread").spread(
        1, ctx.key, selector={"matchLabels": {"app": "spread"}}, **options
    )


def spread_node(ctx: Ctx, domain: str) -> NodeBuilder:
    return make_node(ctx.name(domain)).label(ctx.key, domain)


def member(name: str) -> PodBuilder:
    """A pod that counts for `spread()`'s constraint."""
    return make_pod(name).label("app", "spread")


# --- the cases: each builds the situation and returns the event to cause ----------------------


async def node_affinity_node_add(ctx: Ctx) -> Case:
    """No node is in the pool the pod selects; one joining it is added."""
    await ctx.pending(ctx.pinned().for_api())
    node = ctx.pool("new")
    return Case(lambda: ctx.node(node), ctx.name("new"))


async def node_affinity_node_label(ctx: Ctx) -> Case:
    """The pool is empty; a node is relabelled into it."""
    node = await ctx.node(make_node(ctx.name("outside")))
    await ctx.pending(ctx.pinned().for_api())
    return Case(lambda: ctx.patch_node(node, {"metadata": {"labels": {POOL: ctx.namespace}}}), node)


async def taint_removed(ctx: Ctx) -> Case:
    """The pool's node has a taint the pod does not tolerate; the taint is removed."""
    node = await ctx.node(ctx.pool("tainted").taint("dedicated", "qh"))
    await ctx.pending(ctx.pinned().for_api())
    return Case(lambda: ctx.patch_node(node, {"spec": {"taints": None}}), node)


async def toleration_added_for_taint(ctx: Ctx) -> Case:
    """The pool's node has a taint the pod does not tolerate; the pod gains the toleration."""
    node = await ctx.node(ctx.pool("tainted").taint("dedicated", "qh"))
    await ctx.pending(ctx.pinned().for_api())
    return Case(lambda: ctx.tolerate(WAITING, toleration("dedicated")), node)


async def uncordoned(ctx: Ctx) -> Case:
    """The pool's node is cordoned; it is uncordoned."""
    node = await ctx.node(ctx.pool("cordoned").unschedulable())
    await ctx.pending(ctx.pinned().for_api())
    return Case(lambda: ctx.patch_node(node, {"spec": {"unschedulable": None}}), node)


async def toleration_added_for_cordon(ctx: Ctx) -> Case:
    """The pool's node is cordoned; the pod gains a toleration of the unschedulable taint."""
    node = await ctx.node(ctx.pool("cordoned").unschedulable())
    await ctx.pending(ctx.pinned().for_api())
    return Case(lambda: ctx.tolerate(WAITING, toleration(UNSCHEDULABLE_TAINT)), node)


async def fit_pod_deleted(ctx: Ctx) -> Case:
    """A pod of equal priority (no preemption) takes the room the pod needs; it is deleted."""
    node = await ctx.node(ctx.pool("full").capacity(cpu="2"))
    await ctx.bound(make_pod("occupier").req(cpu="1500m"), node)
    await ctx.pending(ctx.pinned().req(cpu="1").for_api())
    return Case(lambda: ctx.delete_pod("occupier"), node)


async def fit_allocatable_grown(ctx: Ctx) -> Case:
    """The pool's node is too small; its allocatable grows."""
    node = await ctx.node(ctx.pool("small").capacity(cpu="1"))
    await ctx.pending(ctx.pinned().req(cpu="2").for_api())
    bigger = {"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "4"}}}
    return Case(lambda: ctx.patch_node(node, bigger, status=True), node)


async def fit_node_add(ctx: Ctx) -> Case:
    """No node can hold the pod's request; a node that can is added."""
    await ctx.pending(tolerant(ctx.waiting().req(cpu="1000"), ctx).for_api())
    node = tainted(make_node(ctx.name("huge")).capacity(cpu="2000"), ctx)
    return Case(lambda: ctx.node(node), ctx.name("huge"))


async def _report_cpu(ctx: Ctx, name: str, cpu: str) -> None:
    """Write the container status a kubelet reports once it has allocated and actuated `cpu`
    (KWOK never acts on a resize)."""

    async def running() -> JSON | None:
        pod = await get_pod(ctx.client, ctx.namespace, name)
        return pod if pod["status"].get("containerStatuses") else None

    statuses = (await wait_for(running))["status"]["containerStatuses"]
    for status in statuses:
        status["allocatedResources"] = {"cpu": cpu}
        status["resources"] = {"requests": {"cpu": cpu}}
    path = f"/api/v1/namespaces/{ctx.namespace}/pods/{name}/status"
    await ctx.client.patch(path, {"status": {"containerStatuses": statuses}}, kind="merge")


async def _resize(ctx: Ctx, name: str, cpu: str) -> None:
    path = f"/api/v1/namespaces/{ctx.namespace}/pods/{name}/resize"
    body = {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}
    await ctx.client.patch(path, body)


async def fit_bound_pod_scaled_down(ctx: Ctx) -> Case:
    """A bound pod fills the node; it is resized down in place (pods/resize, then the status
    its kubelet would report: the node holds the old allocation until then)."""
    node = await ctx.node(ctx.pool("resized").capacity(cpu="2"))
    await ctx.bound(make_pod("big").req(cpu="1500m"), node)
    await _report_cpu(ctx, "big", "1500m")
    await ctx.pending(ctx.pinned().req(cpu="1").for_api())

    async def act() -> None:
        await _resize(ctx, "big", "500m")
        await _report_cpu(ctx, "big", "500m")

    return Case(act, node)


async def fit_pending_pod_scaled_down(ctx: Ctx) -> Case:
    """The pod asks for more than the pool's node has; the pending pod is resized down."""
    node = await ctx.node(ctx.pool("small").capacity(cpu="1"))
    await ctx.pending(ctx.pinned().req(cpu="2").for_api())
    return Case(lambda: _resize(ctx, WAITING, "500m"), node)


async def port_holder_deleted(ctx: Ctx) -> Case:
    """A pod on the pool's node holds the host port the pod asks for; it is deleted."""
    node = await ctx.node(ctx.pool("ports"))
    number = base_port(ctx.namespace)
    await ctx.bound(make_pod("holder").container_ports(port(number)), node)
    await ctx.pending(ctx.pinned().container_ports(port(number)).for_api())
    return Case(lambda: ctx.delete_pod("holder"), node)


async def port_node_add(ctx: Ctx) -> Case:
    """The host port the pod asks for is taken on every node; a node is added."""
    number = base_port(ctx.namespace)
    await ctx.on_every_node(lambda i: make_pod(f"holder{i}").container_ports(port(number)))
    await ctx.pending(tolerant(ctx.waiting().container_ports(port(number)), ctx).for_api())
    node = tainted(make_node(ctx.name("free")), ctx)
    return Case(lambda: ctx.node(node), ctx.name("free"))


async def _spread_over_two(ctx: Ctx, **options: Any) -> tuple[str, str]:
    """Domain a holds one counted pod, domain b none but its only node repels the pod (a
    taint): the global minimum is 0, so a second pod in a would skew by 2 and b is closed.
    The shared nodes lack the topology key."""
    a = await ctx.node(spread_node(ctx, "a"))
    b = await ctx.node(spread_node(ctx, "b").taint("dedicated", "qh"))
    await ctx.bound(member("first"), a)
    await ctx.pending(spread(ctx.waiting(), ctx, **options).for_api())
    return a, b


async def _spread_over_one(ctx: Ctx) -> str:
    """Domain a holds one counted pod and minDomains is 2, so the global minimum is 0 and a
    second pod in a would skew by 2. The shared nodes lack the topology key."""
    a = await ctx.node(spread_node(ctx, "a"))
    await ctx.bound(member("first"), a)
    await ctx.pending(spread(ctx.waiting(), ctx, min_domains=2).for_api())
    return a


async def spread_pod_added(ctx: Ctx) -> Case:
    """A counted pod lands in domain b, which raises the minimum."""
    a, b = await _spread_over_two(ctx)
    return Case(lambda: ctx.bound(member("second").toleration("dedicated", "qh"), b), a)


async def spread_pod_relabelled(ctx: Ctx) -> Case:
    """The counted pod in domain a is relabelled out of the selector."""
    a = await _spread_over_one(ctx)
    return Case(lambda: ctx.patch_pod("first", {"metadata": {"labels": {"app": "other"}}}), a)


async def spread_pod_deleted(ctx: Ctx) -> Case:
    """The counted pod in domain a is deleted."""
    a = await _spread_over_one(ctx)
    return Case(lambda: ctx.delete_pod("first"), a)


async def spread_target_relabelled(ctx: Ctx) -> Case:
    """The pod itself is relabelled out of its own selector: it no longer counts itself."""
    a = await _spread_over_one(ctx)
    return Case(lambda: ctx.patch_pod(WAITING, {"metadata": {"labels": {"app": "other"}}}), a)


async def spread_node_add(ctx: Ctx) -> Case:
    """A node of a second domain is added."""
    await _spread_over_one(ctx)
    node = spread_node(ctx, "b")
    return Case(lambda: ctx.node(node), ctx.name("b"))


async def spread_node_deleted(ctx: Ctx) -> Case:
    """Domain b's only node is deleted: the minimum is domain a's count."""
    a, b = await _spread_over_two(ctx)
    return Case(lambda: ctx.client.delete(f"/api/v1/nodes/{b}"), a)


async def spread_node_relabelled(ctx: Ctx) -> Case:
    """Domain b's only node loses the topology key."""
    a, b = await _spread_over_two(ctx)
    return Case(lambda: ctx.patch_node(b, {"metadata": {"labels": {ctx.key: None}}}), a)


async def spread_node_tainted(ctx: Ctx) -> Case:
    """nodeTaintsPolicy Honor: domain c's node (full: it takes no pods) counts while it has
    no taint; a taint the pod does not tolerate takes domain c out of the count."""
    a = await ctx.node(spread_node(ctx, "a"))
    c = await ctx.node(spread_node(ctx, "c").capacity(pods="0"))
    await ctx.bound(member("first"), a)
    await ctx.pending(spread(ctx.waiting(), ctx, node_taints_policy="Honor").for_api())
    repel = {"spec": {"taints": [{"key": "dedicated", "value": "qh", "effect": "NoSchedule"}]}}
    return Case(lambda: ctx.patch_node(c, repel), a)


def _affinity_to_partner(pod: PodBuilder, topology_key: str = HOSTNAME) -> PodBuilder:
    return pod.pod_affinity("app", "In", topology_key, "partner")


async def affinity_partner_added(ctx: Ctx) -> Case:
    """The pod needs a partner on its node (required affinity) and none exists; one is bound
    there."""
    node = await ctx.node(ctx.pool("affine"))
    await ctx.pending(_affinity_to_partner(ctx.pinned()).for_api())
    return Case(lambda: ctx.bound(make_pod("partner").label("app", "partner"), node), node)


async def affinity_partner_relabelled(ctx: Ctx) -> Case:
    """A pod on the node is relabelled into the pod's affinity term."""
    node = await ctx.node(ctx.pool("affine"))
    await ctx.bound(make_pod("partner").label("app", "stranger"), node)
    await ctx.pending(_affinity_to_partner(ctx.pinned()).for_api())
    return Case(
        lambda: ctx.patch_pod("partner", {"metadata": {"labels": {"app": "partner"}}}), node
    )


async def anti_affinity_pod_deleted(ctx: Ctx) -> Case:
    """The pod repels a pod on the node (required anti-affinity); that pod is deleted."""
    node = await ctx.node(ctx.pool("shunned"))
    await ctx.bound(make_pod("rival").label("app", "rival"), node)
    await ctx.pending(
        ctx.pinned().pod_affinity("app", "In", HOSTNAME, "rival", anti=True).for_api()
    )
    return Case(lambda: ctx.delete_pod("rival"), node)


async def anti_affinity_target_relabelled(ctx: Ctx) -> Case:
    """A pod on the node repels pods labelled like this one; the pod is relabelled."""
    node = await ctx.node(ctx.pool("guarded"))
    guard = make_pod("guard").pod_affinity("role", "In", HOSTNAME, "intruder", anti=True)
    await ctx.bound(guard, node)
    await ctx.pending(ctx.pinned().label("role", "intruder").for_api())
    return Case(lambda: ctx.patch_pod(WAITING, {"metadata": {"labels": {"role": "guest"}}}), node)


async def anti_affinity_node_add(ctx: Ctx) -> Case:
    """Every node holds a pod the pod repels; a node is added."""
    await ctx.on_every_node(lambda i: make_pod(f"rival{i}").label("app", "rival"))
    pod = ctx.waiting().pod_affinity("app", "In", HOSTNAME, "rival", anti=True)
    await ctx.pending(tolerant(pod, ctx).for_api())
    node = tainted(make_node(ctx.name("empty")), ctx)
    return Case(lambda: ctx.node(node), ctx.name("empty"))


async def affinity_node_relabelled(ctx: Ctx) -> Case:
    """The partner's node lacks the affinity term's topology key; the node gains it."""
    node = await ctx.node(ctx.pool("keyless"))
    await ctx.bound(make_pod("partner").label("app", "partner"), node)
    await ctx.pending(_affinity_to_partner(ctx.pinned(), ctx.key).for_api())
    return Case(lambda: ctx.patch_node(node, {"metadata": {"labels": {ctx.key: "x"}}}), node)


async def affinity_namespace_relabelled(ctx: Ctx) -> Case:
    """The affinity term selects namespaces by label and the partner's namespace has none yet;
    the namespace is relabelled."""
    node = await ctx.node(ctx.pool("affine"))
    await ctx.bound(make_pod("partner").label("app", "partner"), node)
    term = {
        "labelSelector": {"matchLabels": {"app": "partner"}},
        "namespaceSelector": {"matchLabels": {ctx.key: "team"}},
        "topologyKey": HOSTNAME,
    }
    await ctx.pending(ctx.pinned().pod_affinity_term(term).for_api())
    path = f"/api/v1/namespaces/{ctx.namespace}"
    relabel = {"metadata": {"labels": {ctx.key: "team"}}}
    return Case(lambda: ctx.client.patch(path, relabel, kind="merge"), node)


async def restrictions_claim_added(ctx: Ctx) -> Case:
    """The pod's claim does not exist; it is created, bound to a volume on the pool's node."""
    node = await ctx.node(ctx.pool("disk"))
    volume = host_path_volume(
        ctx.name("pv"), ctx.name("class"), node_term=label_term(HOSTNAME, node)
    )
    await ctx.make_object(PERSISTENT_VOLUMES, volume)
    await ctx.pending(ctx.pinned().for_api(), [claim_volume("data")])
    claim = claim_body("data", ctx.name("class"), ctx.name("pv"), completed=True)
    return Case(lambda: ctx.create_claim(claim), node)


async def restrictions_rwop_user_deleted(ctx: Ctx) -> Case:
    """The pod's ReadWriteOncePod claim is in use by a pod on the node; that pod is deleted."""
    node = await ctx.node(ctx.pool("disk"))
    volume = host_path_volume(
        ctx.name("pv"), ctx.name("class"), node_term=label_term(HOSTNAME, node)
    )
    volume["spec"]["accessModes"] = ["ReadWriteOncePod"]
    await ctx.make_object(PERSISTENT_VOLUMES, volume)
    claim = claim_body("data", ctx.name("class"), ctx.name("pv"), completed=True)
    claim["spec"]["accessModes"] = ["ReadWriteOncePod"]
    await ctx.create_claim(claim)
    await ctx.bound(make_pod("user"), node, [claim_volume("data")])
    await ctx.pending(ctx.pinned().for_api(), [claim_volume("data")])
    return Case(lambda: ctx.delete_pod("user"), node)


async def restrictions_node_add(ctx: Ctx) -> Case:
    """Every node holds a pod using the GCE disk the pod writes to; a node is added."""
    disk = {"name": "disk", "gcePersistentDisk": {"pdName": ctx.name("pd")}}
    await ctx.on_every_node(lambda i: make_pod(f"writer{i}"), [disk])
    await ctx.pending(tolerant(ctx.waiting(), ctx).for_api(), [disk])
    node = tainted(make_node(ctx.name("fresh")), ctx)
    return Case(lambda: ctx.node(node), ctx.name("fresh"))


async def limits_raised(ctx: Ctx) -> Case:
    """The pool's node attaches no volume of the pod's CSI driver; its CSINode raises the
    limit."""
    node = await ctx.node(ctx.pool("attach"))
    await ctx.csi_node(node, 0)
    await ctx.pending(ctx.pinned().for_api(), [csi_inline_volume()])
    raised = csi_node_body(node, 1)
    return Case(lambda: ctx.client.patch(f"{CSI_NODES}/{node}", raised, kind="merge"), node)


async def limits_csi_node_added(ctx: Ctx) -> Case:
    """The pool's node attaches no volume of the pod's CSI driver; its CSINode is deleted
    (an event nobody registered: the pod stays) and added again with a limit of 1."""
    node = await ctx.node(ctx.pool("attach"))
    await ctx.csi_node(node, 0)
    await ctx.pending(ctx.pinned().for_api(), [csi_inline_volume()])

    async def act() -> None:
        before = await handled(ctx.berth, "storage.k8s.io/CSINodeDelete")
        await ctx.client.delete(f"{CSI_NODES}/{node}")
        await ctx.seen("storage.k8s.io/CSINodeDelete", before)
        await ctx.csi_node(node, 1)

    return Case(act, node)


async def limits_user_deleted(ctx: Ctx) -> Case:
    """The pool's node attaches one volume of the driver and a pod uses it; it is deleted."""
    node = await ctx.node(ctx.pool("attach"))
    await ctx.csi_node(node, 1)
    await ctx.bound(make_pod("user"), node, [csi_inline_volume()])
    await ctx.pending(ctx.pinned().for_api(), [csi_inline_volume()])
    return Case(lambda: ctx.delete_pod("user"), node)


async def binding_claim_bound(ctx: Ctx) -> Case:
    """The pod's claim is unbound (its class does not exist: Immediate, and no volume of the
    class for the PV controller to bind); an administrator binds it to a volume on the pool's
    node (volumeName, which may be set once, and the bind-completed annotation)."""
    node = await ctx.node(ctx.pool("disk"))
    term = label_term(HOSTNAME, node)
    await ctx.make_object(
        PERSISTENT_VOLUMES, host_path_volume(ctx.name("pv"), ctx.name("pv"), node_term=term)
    )
    await ctx.create_claim(claim_body("data", ctx.name("claim")))
    await ctx.pending(ctx.pinned().for_api(), [claim_volume("data")])
    bind = {
        "metadata": {"annotations": {BIND_COMPLETED: "yes"}},
        "spec": {"volumeName": ctx.name("pv")},
    }
    path = f"/api/v1/namespaces/{ctx.namespace}/persistentvolumeclaims/data"
    return Case(lambda: ctx.client.patch(path, bind, kind="merge"), node)


async def _claim_on_labelled_nodes(ctx: Ctx) -> None:
    """The pod's claim is bound to a volume that only nodes labelled with this case's key
    can use (none is yet)."""
    term = label_term(ctx.key, "disk")
    await ctx.claim("data", host_path_volume(ctx.name("pv"), ctx.name("class"), node_term=term))
    await ctx.pending(tolerant(ctx.waiting(), ctx).for_api(), [claim_volume("data")])


async def binding_node_add(ctx: Ctx) -> Case:
    """A node the pod's volume can be used on is added."""
    await _claim_on_labelled_nodes(ctx)
    node = tainted(make_node(ctx.name("disk")).label(ctx.key, "disk"), ctx)
    return Case(lambda: ctx.node(node), ctx.name("disk"))


async def binding_node_relabelled(ctx: Ctx) -> Case:
    """A node is relabelled into the pod's volume's node affinity."""
    node = await ctx.node(tainted(make_node(ctx.name("plain")), ctx))
    await _claim_on_labelled_nodes(ctx)
    return Case(lambda: ctx.patch_node(node, {"metadata": {"labels": {ctx.key: "disk"}}}), node)


async def _claim_in_zone(ctx: Ctx, zone: str) -> None:
    """The pod's claim is bound to a volume labelled with `zone`; every shared node is in
    another zone."""
    await ctx.claim("data", host_path_volume(ctx.name("pv"), ctx.name("class"), zone=zone))
    await ctx.pending(tolerant(ctx.waiting(), ctx).for_api(), [claim_volume("data")])


async def zone_volume_relabelled(ctx: Ctx) -> Case:
    """The pod's volume is in a zone no node is in; the volume is relabelled into the zone of
    a node."""
    node = await ctx.node(tainted(make_node(ctx.name("zoned")).label(ZONE, ctx.name("z")), ctx))
    await _claim_in_zone(ctx, ctx.name("nowhere"))
    path = f"{PERSISTENT_VOLUMES}/{ctx.name('pv')}"
    relabel = {"metadata": {"labels": {ZONE: ctx.name("z")}}}
    return Case(lambda: ctx.client.patch(path, relabel, kind="merge"), node)


async def zone_node_add(ctx: Ctx) -> Case:
    """A node in the pod's volume's zone is added."""
    await _claim_in_zone(ctx, ctx.name("z"))
    node = tainted(make_node(ctx.name("zoned")).label(ZONE, ctx.name("z")), ctx)
    return Case(lambda: ctx.node(node), ctx.name("zoned"))


async def zone_node_relabelled(ctx: Ctx) -> Case:
    """A node is relabelled into the pod's volume's zone."""
    node = await ctx.node(tainted(make_node(ctx.name("zoned")).label(ZONE, ctx.name("other")), ctx))
    await _claim_in_zone(ctx, ctx.name("z"))
    return Case(lambda: ctx.patch_node(node, {"metadata": {"labels": {ZONE: ctx.name("z")}}}), node)


async def dra_node_add(ctx: Ctx) -> Case:
    """The pod asks for an extended resource a DeviceClass backs, which berth cannot allocate
    and no node's device plugin lists; a node listing it is added."""
    resource = f"example.com/{ctx.name('gpu')}"
    await ctx.device_class(resource)
    await ctx.pending(extended_request(tolerant(ctx.waiting(), ctx), resource))
    node = tainted(make_node(ctx.name("gpu")).capacity(**{resource: "1"}), ctx)
    return Case(lambda: ctx.node(node), ctx.name("gpu"))


async def dra_allocatable_grown(ctx: Ctx) -> Case:
    """The same resource; the pool's node starts listing it (a device plugin registered)."""
    resource = f"example.com/{ctx.name('gpu')}"
    await ctx.device_class(resource)
    node = await ctx.node(ctx.pool("gpu"))
    await ctx.pending(extended_request(ctx.pinned(), resource))
    listed = {"status": {"capacity": {resource: "1"}, "allocatable": {resource: "1"}}}
    return Case(lambda: ctx.patch_node(node, listed, status=True), node)


async def features_node_add(ctx: Ctx) -> Case:
    """The pod needs a node feature no node declares; a node declaring it is added."""
    await ctx.pending(restarts_all(tolerant(ctx.waiting(), ctx)))
    node = tainted(make_node(ctx.name("modern")).declared_features(RESTART_ALL), ctx)
    return Case(lambda: ctx.node(node), ctx.name("modern"))


async def features_declared(ctx: Ctx) -> Case:
    """The pool's node does not declare the feature the pod needs; its kubelet declares it."""
    node = await ctx.node(ctx.pool("old"))
    await ctx.pending(restarts_all(ctx.pinned()))
    declared = {"status": {"declaredFeatures": [RESTART_ALL]}}
    return Case(lambda: ctx.patch_node(node, declared, status=True), node)


async def gates_lifted(ctx: Ctx) -> Case:
    """The pod has a scheduling gate; it is removed."""
    node = await ctx.node(ctx.pool("gate"))
    await ctx.pending(ctx.pinned().gate("qh.example/hold").for_api())
    return Case(lambda: ctx.patch_pod(WAITING, {"spec": {"schedulingGates": None}}), node)


def param(plugin: str, event: str, scenario: Scenario) -> Any:
    return pytest.param(plugin, event, scenario, id=f"{plugin}-{event}")


async def binding_volume_added(ctx: Ctx) -> Case:
    """The pod's claim waits for its first consumer and no volume of its class exists (the
    class has no provisioner); a volume of the class is created on a node."""
    storage_class = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": ctx.name("class")},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    await ctx.make_object(STORAGE_CLASSES, storage_class)
    node = await ctx.node(ctx.pool("disk"))
    await ctx.create_claim(claim_body("data", ctx.name("class")))
    await ctx.pending(ctx.waiting().for_api(), [claim_volume("data")])
    term = label_term(HOSTNAME, node)
    volume = host_path_volume(ctx.name("pv"), ctx.name("class"), node_term=term)
    return Case(lambda: ctx.make_object(PERSISTENT_VOLUMES, volume))


BOUND = [
    param("VolumeBinding", "PersistentVolumeAdd", binding_volume_added),
    param("NodeAffinity", "NodeAdd", node_affinity_node_add),
    param("NodeAffinity", "NodeUpdateNodeLabel", node_affinity_node_label),
    param("TaintToleration", "NodeUpdateNodeTaint", taint_removed),
    param("TaintToleration", "TargetPodUpdatePodToleration", toleration_added_for_taint),
    param("NodeUnschedulable", "NodeUpdateNodeTaint", uncordoned),
    param("NodeUnschedulable", "TargetPodUpdatePodToleration", toleration_added_for_cordon),
    param("NodeResourcesFit", "AssignedPodDelete", fit_pod_deleted),
    param("NodeResourcesFit", "NodeUpdateNodeAllocatable", fit_allocatable_grown),
    param("NodeResourcesFit", "NodeAdd", fit_node_add),
    param("NodeResourcesFit", "AssignedPodUpdatePodScaleDown", fit_bound_pod_scaled_down),
    param("NodeResourcesFit", "TargetPodUpdatePodScaleDown", fit_pending_pod_scaled_down),
    param("NodePorts", "AssignedPodDelete", port_holder_deleted),
    param("NodePorts", "NodeAdd", port_node_add),
    param("PodTopologySpread", "AssignedPodAdd", spread_pod_added),
    param("PodTopologySpread", "AssignedPodUpdatePodLabel", spread_pod_relabelled),
    param("PodTopologySpread", "AssignedPodDelete", spread_pod_deleted),
    param("PodTopologySpread", "TargetPodUpdatePodLabel", spread_target_relabelled),
    param("PodTopologySpread", "NodeAdd", spread_node_add),
    param("PodTopologySpread", "NodeDelete", spread_node_deleted),
    param("PodTopologySpread", "NodeUpdateNodeLabel", spread_node_relabelled),
    param("PodTopologySpread", "NodeUpdateNodeTaint", spread_node_tainted),
    param("InterPodAffinity", "AssignedPodAdd", affinity_partner_added),
    param("InterPodAffinity", "AssignedPodUpdatePodLabel", affinity_partner_relabelled),
    param("InterPodAffinity", "AssignedPodDelete", anti_affinity_pod_deleted),
    param("InterPodAffinity", "TargetPodUpdatePodLabel", anti_affinity_target_relabelled),
    param("InterPodAffinity", "NodeAdd", anti_affinity_node_add),
    param("InterPodAffinity", "NodeUpdateNodeLabel", affinity_node_relabelled),
    param("InterPodAffinity", "NamespaceUpdate", affinity_namespace_relabelled),
    param("VolumeRestrictions", "PersistentVolumeClaimAdd", restrictions_claim_added),
    param("VolumeRestrictions", "AssignedPodDelete", restrictions_rwop_user_deleted),
    param("VolumeRestrictions", "NodeAdd", restrictions_node_add),
    param("NodeVolumeLimits", "storage.k8s.io/CSINodeUpdate", limits_raised),
    param("NodeVolumeLimits", "storage.k8s.io/CSINodeAdd", limits_csi_node_added),
    param("NodeVolumeLimits", "AssignedPodDelete", limits_user_deleted),
    param("VolumeBinding", "PersistentVolumeClaimUpdate", binding_claim_bound),
    param("VolumeBinding", "NodeAdd", binding_node_add),
    param("VolumeBinding", "NodeUpdateNodeLabel", binding_node_relabelled),
    param("VolumeZone", "PersistentVolumeUpdate", zone_volume_relabelled),
    param("VolumeZone", "NodeAdd", zone_node_add),
    param("VolumeZone", "NodeUpdateNodeLabel", zone_node_relabelled),
    param("DynamicResources", "NodeAdd", dra_node_add),
    param("DynamicResources", "NodeUpdateNodeAllocatable", dra_allocatable_grown),
    param("NodeDeclaredFeatures", "NodeAdd", features_node_add),
    param("NodeDeclaredFeatures", "NodeUpdateNodeDeclaredFeature", features_declared),
    param("SchedulingGates", "TargetPodUpdatePodSchedulingGatesEliminated", gates_lifted),
]


@pytest.mark.parametrize(("plugin", "event", "scenario"), BOUND)
async def test_event_moves_the_rejected_pod_and_it_is_bound(
    ctx: Ctx, plugin: str, event: str, scenario: Scenario
) -> None:
    """The pod waits, rejected by `plugin`, until `event` moves it: it is bound, and the move
    is counted under the event's label in the active or backoff queue."""
    case = await scenario(ctx)
    await ctx.parked(plugin)
    before = await moved(ctx.berth, event)
    await case.act()
    node = await bound_to(ctx.client, ctx.namespace, WAITING)
    if case.node:
        assert node == case.node
    assert await moved(ctx.berth, event) > before


# --- events that move a pod berth still cannot bind -------------------------------------------


async def fit_device_class_added(ctx: Ctx) -> Case:
    """No node lists the extended resource the pod asks for; a DeviceClass starts backing it,
    which hands it to DynamicResources (no slice publishes a device: nothing to allocate)."""
    resource = f"example.com/{ctx.name('gpu')}"
    await ctx.pending(extended_request(ctx.waiting(), resource))
    return Case(lambda: ctx.device_class(resource))


async def fit_device_class_changed(ctx: Ctx) -> Case:
    """No node lists the extended resource the pod asks for, and a DeviceClass backs another
    one; the class is changed to back the pod's, which hands it to DynamicResources."""
    resource = f"example.com/{ctx.name('gpu')}"
    name = await ctx.device_class(f"example.com/{ctx.name('other')}")
    await ctx.pending(extended_request(ctx.waiting(), resource))
    backing = {"spec": {"extendedResourceName": resource}}
    return Case(lambda: ctx.client.patch(f"{DEVICE_CLASSES}/{name}", backing, kind="merge"))


async def dra_device_class_changed(ctx: Ctx) -> Case:
    """A DeviceClass backs the extended resource the pod asks for; it is changed to back
    another one, which hands the request back to NodeResourcesFit (no node lists it)."""
    resource = f"example.com/{ctx.name('gpu')}"
    name = await ctx.device_class(resource)
    await ctx.pending(extended_request(ctx.waiting(), resource))
    other = {"spec": {"extendedResourceName": f"example.com/{ctx.name('other')}"}}
    return Case(lambda: ctx.client.patch(f"{DEVICE_CLASSES}/{name}", other, kind="merge"))


async def binding_storage_class_added(ctx: Ctx) -> Case:
    """The pod's unbound claim names a class that does not exist (Immediate: it must be bound
    first); the class is created, WaitForFirstConsumer with a provisioner, so the claim could
    be provisioned for the chosen node."""
    await ctx.create_claim(claim_body("data", ctx.name("class")))
    await ctx.pending(ctx.waiting().for_api(), [claim_volume("data")])
    storage_class = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": ctx.name("class")},
        "provisioner": QH_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    return Case(lambda: ctx.make_object(STORAGE_CLASSES, storage_class))


def moved_param(plugin: str, event: str, scenario: Scenario, next_reason: str) -> Any:
    return pytest.param(plugin, event, scenario, next_reason, id=f"{plugin}-{event}")


MOVED = [
    moved_param(
        "NodeResourcesFit",
        "resource.k8s.io/DeviceClassAdd",
        fit_device_class_added,
        "cannot allocate all claims",
    ),
    moved_param(
        "NodeResourcesFit",
        "resource.k8s.io/DeviceClassUpdate",
        fit_device_class_changed,
        "cannot allocate all claims",
    ),
    moved_param(
        "DynamicResources",
        "resource.k8s.io/DeviceClassUpdate",
        dra_device_class_changed,
        "Insufficient example.com/",
    ),
]


async def test_storage_class_added_moves_the_pod_and_its_claim_is_provisioned(ctx: Ctx) -> None:
    """VolumeBinding rejected the pod (its claim's class is missing); the class appears,
    WaitForFirstConsumer with a provisioner: the pod is moved, berth selects a node for the
    claim, the test provisioner makes a PV there and the pod is bound (issue 14)."""
    event = "storage.k8s.io/StorageClassAdd"
    case = await binding_storage_class_added(ctx)
    await ctx.parked("VolumeBinding")
    before = await moved(ctx.berth, event)
    async with TestProvisioner(ctx.client, provisioner=QH_PROVISIONER, namespace=ctx.namespace):
        await case.act()
        await bound_to(ctx.client, ctx.namespace, WAITING)
    assert await moved(ctx.berth, event) > before


@pytest.mark.parametrize(("plugin", "event", "scenario", "next_reason"), MOVED)
async def test_event_moves_the_rejected_pod_berth_cannot_bind(
    ctx: Ctx, plugin: str, event: str, scenario: Scenario, next_reason: str
) -> None:
    """The pod waits, rejected by `plugin`, until `event` moves it; the move is counted and
    the pod tried again, which fails on the next obstacle (`next_reason`), one that berth
    cannot remove (no driver publishes the devices the class would allocate)."""
    case = await scenario(ctx)
    await ctx.parked(plugin)

    async def failures() -> list[JSON]:
        return await events_for(ctx.client, ctx.namespace, WAITING, "FailedScheduling")

    # An attempt made before berth saw every object of the case may have failed on the next
    # obstacle already: only failures reported after the event count.
    earlier = {e["metadata"]["name"] for e in await failures()}
    before = await moved(ctx.berth, event)
    await case.act()

    async def retried() -> bool:
        later = [e for e in await failures() if e["metadata"]["name"] not in earlier]
        return any(next_reason in str(e["note"]) for e in later)

    await wait_for(retried)
    assert await moved(ctx.berth, event) > before


# --- an event no rejecting plugin registered ------------------------------------------------


async def test_event_no_rejecting_plugin_registered_leaves_the_pod(ctx: Ctx) -> None:
    """NodeResourcesFit registers no annotation change: annotating the node that is too small
    for the pod neither moves it nor counts a move."""
    event = "NodeUpdateNodeAnnotation"
    node = await ctx.node(ctx.pool("small").capacity(cpu="1"))
    await ctx.pending(ctx.pinned().req(cpu="2").for_api())
    view = await ctx.parked("NodeResourcesFit")
    moved_before = await moved(ctx.berth, event)
    handled_before = await handled(ctx.berth, event)
    await ctx.patch_node(node, {"metadata": {"annotations": {ctx.key: "noted"}}})
    await ctx.seen(event, handled_before)  # berth has judged the event
    await asyncio.sleep(3.0)  # give a wrong move every chance to show
    after = await debug_pod(ctx.berth, ctx.namespace, WAITING)
    assert (after["queue"], after["attempts"]) == (UNSCHEDULABLE, view["attempts"])
    assert not (await get_pod(ctx.client, ctx.namespace, WAITING))["spec"].get("nodeName")
    assert await moved(ctx.berth, event) == moved_before


def test_berth_logged_no_traceback(berth_scheduler: Running) -> None:
    """Nothing raised in berth while the cases above ran: a hint that raises counts as Queue
    (and is logged), so a case above could pass for the wrong reason."""
    assert "Traceback" not in berth_scheduler.log.read_text(errors="replace")
