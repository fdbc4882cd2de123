"""Benchmark workloads: which nodes a cluster has and which pods arrive, modelled on upstream
scheduler_perf (kubernetes/kubernetes, test/integration/scheduler_perf/config).

Upstream's fake node (`node-default.yaml`) has 4 CPU, 32Gi and 110 pods; its default pod
(`pod-default.yaml`) requests 100m CPU and 500Mi with equal limits; its `Unschedulable`
workload uses a pod asking for 9 CPU (`pod-large-cpu.yaml`), which no node can hold.

- `basic` is upstream's SchedulingBasic: identical nodes, identical pods.
- `mixed` has several node pools and pod groups: plain pods, bigger pods, pods with a
  nodeSelector, pods with required and preferred node affinity, pods that tolerate a tainted
  pool and select it, and 10% that ask for more CPU than any node has.
- `spread` is upstream's TopologySpreading: nodes already holding plain pods, then pods with a
  zone spread constraint (maxSkew 5, DoNotSchedule) over their own label.
- `affinity` is upstream's SchedulingPreferredPodAntiAffinity with a quarter of
  SchedulingPodAntiAffinity mixed in: every node already holds one pod of the two kinds, then
  pods with preferred (weight 1) or required anti-affinity to their kind per hostname, across
  the init namespace and their own (upstream's `namespaces: [sched-test, sched-setup]`).
- `preemption` is upstream's PreemptionBasic: nodes filled to 90% of their CPU with
  low-priority pods, then high-priority pods that fit only by preempting several of them.
- `gang` is upstream's GangScheduling (podgroup/gangscheduling) with jobs of 8, 16, 32 and 64
  workers and more demand than capacity: one scheduling.k8s.io/v1beta1 PodGroup per job
  (gang minCount = the job's size), needing the GenericWorkload gate (Kubernetes v1.37).
- `devices` is upstream's SchedulingWithResourceClaimTemplate (dra/) with GPUs of a fake DRA
  driver (scheduler.harness.fakedra), 8 a node, and pods claiming 1 to 8 of them each through
  one ResourceClaimTemplate per count.
- `statefulset` is a StatefulSet's pods, each with its own claim (`data-<pod>`) of a
  WaitForFirstConsumer class, bound at scheduling time to static local PVs made per node
  (upstream's SchedulingInTreePVs/SchedulingCSIPVs, with the binding left to the scheduler).

A workload may also need objects besides nodes and pods, created before the scheduler starts
like the init pods: a DeviceClass, ResourceSlices and ResourceClaimTemplates (`devices`), or a
StorageClass, PVs and the pods' claims (`statefulset`); and kube-controller-manager, whose
resource-claim controller makes each pod's ResourceClaim from its template and whose PV
controller completes the binding of claim and volume that the scheduler starts.

A workload may start from pods already on the nodes ("init" pods, upstream's first
`createPods`): the benchmark creates them bound (spec.nodeName set), in a namespace of their own,
before the scheduler under test starts, so every scheduler starts from the same cluster and none
of them spends measured time on them.

Everything here is pure and deterministic: the same (workload, nodes, pods) always yields the
same objects, so a run can be checked afterwards from its placements alone.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.harness import fakedra, storage
from scheduler.harness.nodes import HOSTNAME, ZONE, NodeShape, make_node, zone_name

JSON = dict[str, Any]

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"

# upstream scheduler_perf node-default.yaml
NODE_CPU = "4"
NODE_MEMORY = "32Gi"
NODE_PODS = 110

PREFIX = "bench.berth.io"
POOL = f"{PREFIX}/pool"
DISK = f"{PREFIX}/disk"
SIZE = f"{PREFIX}/size"
DEDICATED = f"{PREFIX}/dedicated"
GROUP = f"{PREFIX}/group"

# PriorityClasses a workload may use: name -> value. The pods name their class and also carry
# the value in spec.priority (the Priority admission plugin accepts a value equal to the
# class's), so the in-memory benchmark, which has no admission, sees the same priority.
PRIORITY_CLASSES: dict[str, int] = {"bench-low": 0, "bench-high": 10}


def pod_name(index: int) -> str:
    """pod-000001, pod-000002, ... (1-based, zero padded so names sort as numbers)."""
    return f"pod-{index:06d}"


def init_pod_name(index: int) -> str:
    """init-000001, ...: the pods a workload starts from, bound before the measured ones."""
    return f"init-{index:06d}"


def init_namespace(namespace: str) -> str:
    """The namespace of the init pods of a run whose measured pods live in `namespace`."""
    return f"{namespace}-init"


def priority_class(name: str) -> JSON:
    """The PriorityClass object `name` of PRIORITY_CLASSES."""
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": PRIORITY_CLASSES[name],
        "description": "berth bench",
    }


def gpu_template_name(gpus: int) -> str:
    """gpus-1, gpus-2, ...: the ResourceClaimTemplate of the pods that claim `gpus` GPUs."""
    return f"gpus-{gpus}"


def claim_name(pod: str) -> str:
    """data-pod-000001, ...: the claim of a pod with a volume, named as a StatefulSet names
    the claim of its volumeClaimTemplate `data` for that pod."""
    return f"data-{pod}"


def pod_term(labels: Mapping[str, str], topology_key: str) -> JSON:
    """A pod (anti-)affinity term over pods with `labels`; its namespaces are filled in when
    the pods are generated (the measured pods' namespace and the init namespace)."""
    return {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": topology_key}


@dataclass(frozen=True)
class PodGroup:
    """Pods that share one template. `weight` is the group's share, in slots of `SLOTS`."""

    name: str
    weight: int
    cpu: str
    memory: str
    node_selector: tuple[tuple[str, str], ...] = ()
    required_zones: tuple[str, ...] = ()  # required node affinity: zone In (...)
    preferred_zone: str = ""  # preferred node affinity (weight 10): zone In (zone,)
    tolerations: tuple[JSON, ...] = ()
    schedulable: bool = True  # False: no node of the workload can ever hold it
    labels: tuple[tuple[str, str], ...] = ()  # besides app=bench and the group label
    priority_class: str = ""  # a name in PRIORITY_CLASSES
    spread: tuple[JSON, ...] = ()  # topologySpreadConstraints
    anti_affinity: tuple[JSON, ...] = ()  # required podAntiAffinity terms (pod_term)
    preferred_anti_affinity: tuple[tuple[int, JSON], ...] = ()  # (weight, pod_term)
    # Fake GPUs (fakedra's driver) the pod claims, through the ResourceClaimTemplate
    # gpu_template_name(gpus) under the claim name "gpu"; 0: none.
    gpus: int = 0
    # A volume "data" from a claim of this size of its own, claim_name(pod); "": none.
    volume: str = ""

    def template(self, namespaces: Sequence[str] = ()) -> JSON:
        """The pod without name or schedulerName. `namespaces`: what pod (anti-)affinity terms
        select (empty: the pod's own namespace)."""
        resources = {"cpu": self.cpu, "memory": self.memory}
        container: JSON = {
            "name": "pause",
            "image": PAUSE_IMAGE,
            "resources": {"requests": dict(resources), "limits": dict(resources)},
        }
        spec: JSON = {"containers": [container], "terminationGracePeriodSeconds": 0}
        if self.gpus:
            spec["resourceClaims"] = [
                {"name": "gpu", "resourceClaimTemplateName": gpu_template_name(self.gpus)}
            ]
            container["resources"]["claims"] = [{"name": "gpu"}]
        if self.volume:
            # The claim's name is the pod's: Workload.pods() fills it in.
            spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": ""}}]
            container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        if self.node_selector:
            spec["nodeSelector"] = dict(self.node_selector)
        affinity: JSON = {}
        if self.required_zones:
            affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": ZONE, "operator": "In", "values": list(self.required_zones)}
                        ]
                    }
                ]
            }
        if self.preferred_zone:
            affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
                {
                    "weight": 10,
                    "preference": {
                        "matchExpressions": [
                            {"key": ZONE, "operator": "In", "values": [self.preferred_zone]}
                        ]
                    },
                }
            ]
        if affinity:
            spec["affinity"] = {"nodeAffinity": affinity}
        anti = self._pod_anti_affinity(namespaces)
        if anti:
            spec.setdefault("affinity", {})["podAntiAffinity"] = anti
        if self.spread:
            spec["topologySpreadConstraints"] = copy.deepcopy(list(self.spread))
        if self.tolerations:
            spec["tolerations"] = [dict(t) for t in self.tolerations]
        if self.priority_class:
            spec["priorityClassName"] = self.priority_class
            spec["priority"] = PRIORITY_CLASSES[self.priority_class]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"labels": {"app": "bench", GROUP: self.name, **dict(self.labels)}},
            "spec": spec,
        }

    def _pod_anti_affinity(self, namespaces: Sequence[str]) -> JSON:
        def term(t: JSON) -> JSON:
            out = copy.deepcopy(t)
            if namespaces:
                out["namespaces"] = list(namespaces)
            return out

        anti: JSON = {}
        if self.anti_affinity:
            anti["requiredDuringSchedulingIgnoredDuringExecution"] = [
                term(t) for t in self.anti_affinity
            ]
        if self.preferred_anti_affinity:
            anti["preferredDuringSchedulingIgnoredDuringExecution"] = [
                {"weight": w, "podAffinityTerm": term(t)} for w, t in self.preferred_anti_affinity
            ]
        return anti


GANG_API = "scheduling.k8s.io/v1beta1"
GANG_GATES = (("GenericWorkload", True),)


def gang_name(index: int) -> str:
    """gang-00001, ...: the PodGroup of job `index` (1-based)."""
    return f"gang-{index:05d}"


@dataclass(frozen=True)
class Job:
    """A gang: the pods first .. first + size - 1 (1-based), with one PodGroup `name` whose
    gang policy asks for all of them (minCount = size)."""

    name: str
    first: int
    size: int

    @property
    def pod_names(self) -> list[str]:
        return [pod_name(i) for i in range(self.first, self.first + self.size)]

    def pod_group(self) -> JSON:
        return {
            "apiVersion": GANG_API,
            "kind": "PodGroup",
            "metadata": {"name": self.name},
            "spec": {"schedulingPolicy": {"gang": {"minCount": self.size}}},
        }


@dataclass(frozen=True)
class Workload:
    """A named node set and pod set. Groups are dealt in a fixed, interleaved order: pod i
    (1-based) belongs to the group that owns slot (i - 1) % SLOTS, so any prefix of the pods
    has (nearly) the workload's mix and the order of arrival mixes the groups."""

    name: str
    description: str
    node_shape: Callable[[int], NodeShape]  # 1-based node index -> its shape
    groups: tuple[PodGroup, ...]
    zones: int = 3
    # The pods already on node i (1-based) before the measured pods arrive.
    init_groups: Callable[[int], tuple[PodGroup, ...]] = lambda index: ()
    # How many pods of a group can be scheduled at most on so many nodes, for groups that
    # are bounded by more than the `schedulable` flag (group name -> count).
    group_limits: Callable[[int], Mapping[str, int]] = lambda nodes: {}
    # Services (name, selector) in the measured namespace, created before the scheduler
    # starts: a pod they select gets PodTopologySpread's default constraints.
    services: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # Gangs: the pods are jobs of these sizes in turn (see jobs()), each with a PodGroup of
    # its own that the pods name in spec.schedulingGroup. Empty: no gangs.
    gang_sizes: tuple[int, ...] = ()
    # What the run needs of the cluster: API group-versions the server must serve, and
    # feature gates the scheduler under test must run with (kube-scheduler: --feature-gates).
    apis: tuple[str, ...] = ()
    feature_gates: tuple[tuple[str, bool], ...] = ()
    # The workload as run on so many nodes with so many pods (for_size); None: the same at
    # every size.
    sized: Callable[[int, int], Workload] | None = None
    # Fake GPUs on every node: one fakedra ResourceSlice per node, published before the
    # scheduler starts, with the DeviceClass the claim templates name. 0: none.
    gpus_per_node: int = 0
    # Static local PVs for the groups with a volume: this many per measured pod (rounded up
    # to a whole number per node), dealt evenly over the nodes.
    volumes_per_pod: float = 0.0

    @property
    def claims(self) -> str:
        """What the pods claim: "devices" (DRA), "volumes" (PVCs) or "" (nothing)."""
        if any(g.gpus for g in self.groups):
            return "devices"
        if any(g.volume for g in self.groups):
            return "volumes"
        return ""

    @property
    def needs_control_plane(self) -> bool:
        """The pods' claims need kube-controller-manager (the resource-claim controller makes
        ResourceClaims from templates; the PV controller binds claims to the PVs a scheduler
        chose), so the workload runs against an API server only, not `--in-memory`."""
        return bool(self.claims)

    @property
    def slots(self) -> tuple[PodGroup, ...]:
        """The group of each slot, interleaved (round-robin over groups by remaining weight)."""
        remaining = {g.name: g.weight for g in self.groups}
        out: list[PodGroup] = []
        while any(remaining.values()):
            for group in self.groups:
                if remaining[group.name]:
                    out.append(group)
                    remaining[group.name] -= 1
        return tuple(out)

    def for_size(self, nodes: int, pods: int) -> Workload:
        """The workload as run with `nodes` nodes and `pods` measured pods: `gang` sizes its
        pods so that their demand exceeds the nodes' capacity by a set factor; the others
        are the same at every size."""
        return self.sized(nodes, pods) if self.sized is not None else self

    def nodes(self, count: int, first: int = 1) -> list[JSON]:
        """Node objects node-<first> ... node-<first + count - 1> (node-00001 ... node-<count>
        by default): a caller loading a million nodes takes them a page at a time, as an
        informer lists them, instead of holding every object at once."""
        return [make_node(i, self.node_shape(i)) for i in range(first, first + count)]

    def group_of(self, index: int) -> PodGroup:
        """The group of pod `index` (1-based)."""
        slots = self.slots
        return slots[(index - 1) % len(slots)]

    def pods(self, count: int, scheduler_name: str, namespace: str = "bench") -> list[JSON]:
        """Pod objects pod-000001 ... for `scheduler_name`, without namespace or uid; they will
        live in `namespace`, which their pod (anti-)affinity terms name."""
        slots = self.slots
        namespaces = (namespace, init_namespace(namespace))
        templates = {g.name: g.template(namespaces) for g in self.groups}
        gang_of = self.gang_of(count)
        out = []
        for i in range(1, count + 1):
            pod = copy.deepcopy(templates[slots[(i - 1) % len(slots)].name])
            name = pod_name(i)
            pod["metadata"]["name"] = name
            pod["spec"]["schedulerName"] = scheduler_name
            for volume in pod["spec"].get("volumes") or ():
                volume["persistentVolumeClaim"]["claimName"] = claim_name(name)
            if name in gang_of:
                pod["spec"]["schedulingGroup"] = {"podGroupName": gang_of[name]}
            out.append(pod)
        return out

    def jobs(self, count: int) -> list[Job]:
        """The gangs of the first `count` pods, in pod order: job j (1-based) takes the next
        gang_sizes[(j - 1) % len(gang_sizes)] pods, and the last job takes what is left (its
        minCount is then the pods it has, so every job can be placed whole). Empty for a
        workload without gangs."""
        out: list[Job] = []
        first = 1
        while self.gang_sizes and first <= count:
            size = min(self.gang_sizes[len(out) % len(self.gang_sizes)], count - first + 1)
            out.append(Job(gang_name(len(out) + 1), first, size))
            first += size
        return out

    def gang_of(self, count: int) -> dict[str, str]:
        """Pod name -> the name of its job's PodGroup, for the first `count` pods."""
        return {pod: job.name for job in self.jobs(count) for pod in job.pod_names}

    def pod_groups(self, count: int) -> list[JSON]:
        """The PodGroup objects (scheduling.k8s.io/v1beta1, gang policy with minCount = the
        job's size) of the first `count` pods' jobs, without namespace; created before the
        pods."""
        return [job.pod_group() for job in self.jobs(count)]

    def init_pods(self, node_names: Sequence[str], namespace: str = "bench") -> list[JSON]:
        """The pods the nodes start with (node_names[i] is node i + 1 of nodes()), bound
        (spec.nodeName set), named init-000001 ..., without namespace or uid; they will live in
        init_namespace(namespace)."""
        namespaces = (namespace, init_namespace(namespace))
        templates: dict[str, JSON] = {}
        out: list[JSON] = []
        for index, node in enumerate(node_names, start=1):
            for group in self.init_groups(index):
                if group.name not in templates:
                    templates[group.name] = group.template(namespaces)
                pod = copy.deepcopy(templates[group.name])
                pod["metadata"]["name"] = init_pod_name(len(out) + 1)
                pod["spec"]["nodeName"] = node
                out.append(pod)
        return out

    def service_objects(self) -> list[JSON]:
        """The Service objects of `services`, without namespace."""
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name},
                "spec": {"selector": dict(selector), "ports": [{"port": 80}]},
            }
            for name, selector in self.services
        ]

    def device_classes(self) -> list[JSON]:
        """The DeviceClass of fakedra's GPUs, for a workload whose pods claim some."""
        return [fakedra.device_class()] if self.gpus_per_node else []

    def claim_templates(self) -> list[JSON]:
        """One ResourceClaimTemplate per GPU count a group claims, without namespace."""
        counts = sorted({g.gpus for g in self.groups} - {0})
        return [fakedra.claim_template(gpu_template_name(n), count=n) for n in counts]

    def storage_classes(self) -> list[JSON]:
        """The WaitForFirstConsumer class without a provisioner that the claims name."""
        if not any(g.volume for g in self.groups):
            return []
        return [storage.storage_class(STORAGE_CLASS, storage.NO_PROVISIONER)]

    def volumes_per_node(self, nodes: int, count: int) -> int:
        """Static PVs on each of `nodes` nodes for `count` measured pods:
        ceil(count x volumes_per_pod / nodes), 0 without volumes."""
        wanted = sum(1 for i in range(1, count + 1) if self.group_of(i).volume)
        if not wanted or nodes < 1:
            return 0
        return math.ceil(wanted * self.volumes_per_pod / nodes - 1e-9)

    def local_volumes(self, node_names: Sequence[str], count: int, prefix: str) -> list[JSON]:
        """Static local PVs for the first `count` pods' claims: volumes_per_node() on each
        node (node_names[i] is node i + 1, its hostname label its name), named
        <prefix>-<node>-<k>, of the claims' size, in the workload's class."""
        sizes = sorted({g.volume for g in self.groups} - {""})
        if not sizes:
            return []
        per_node = self.volumes_per_node(len(node_names), count)
        return [
            storage.local_volume(f"{prefix}-{node}-{k}", node, STORAGE_CLASS, size=sizes[-1])
            for node in node_names
            for k in range(1, per_node + 1)
        ]

    def volume_claims(self, count: int) -> list[JSON]:
        """The claims of the first `count` pods that have a volume, claim_name(pod), without
        namespace: created before the pods, as a StatefulSet creates each pod's claim first."""
        return [
            storage.claim(claim_name(pod_name(i)), STORAGE_CLASS, self.group_of(i).volume)
            for i in range(1, count + 1)
            if self.group_of(i).volume
        ]

    def priority_classes(self) -> list[JSON]:
        """The PriorityClass objects the workload's pods (init ones included) name."""
        groups = (*self.groups, *self.init_groups(1))
        return [priority_class(n) for n in sorted({g.priority_class for g in groups} - {""})]

    def expected_unschedulable(self, count: int, nodes: int | None = None) -> int:
        """How many of the first `count` pods no node can hold (given `nodes`, also those
        beyond what group_limits allows)."""
        per_group: dict[str, int] = {}
        for i in range(1, count + 1):
            group = self.group_of(i)
            if group.schedulable:
                per_group[group.name] = per_group.get(group.name, 0) + 1
        limits = self.group_limits(nodes) if nodes is not None else {}
        fit = sum(min(n, limits.get(name, n)) for name, n in per_group.items())
        return count - fit


def _default_shape(zones: int) -> Callable[[int], NodeShape]:
    shape = NodeShape(cpu=NODE_CPU, memory=NODE_MEMORY, pods=NODE_PODS, zones=zones)
    return lambda index: shape


def basic(zones: int = 3) -> Workload:
    """Upstream SchedulingBasic: identical 4-CPU nodes, identical 100m/500Mi pods."""
    return Workload(
        name="basic",
        description="identical pods (100m CPU, 500Mi) on identical nodes (4 CPU, 32Gi, 110 pods)",
        node_shape=_default_shape(zones),
        groups=(PodGroup("default", 1, "100m", "500Mi"),),
        zones=zones,
    )


def service(zones: int = 3) -> Workload:
    """`basic` with the pods selected by a Service, as a Deployment's pods usually are: the
    system default constraints (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) then
    spread them, in berth and in kube-scheduler alike."""
    return Workload(
        name="service",
        description=(
            "identical pods (100m CPU, 500Mi) selected by a Service, so the system default "
            "topology spreading applies, on identical nodes (4 CPU, 32Gi, 110 pods)"
        ),
        node_shape=_default_shape(zones),
        groups=(PodGroup("default", 1, "100m", "500Mi"),),
        zones=zones,
        services=(("bench", (("app", "bench"),)),),
    )


def _mixed_shape(zones: int) -> Callable[[int], NodeShape]:
    """Node pools by index: 10% tainted batch pool, 20% large (8 CPU, 64Gi), 30% ssd, the rest
    default. The pools repeat every ten nodes, so every zone has some of each."""
    default = NodeShape(cpu=NODE_CPU, memory=NODE_MEMORY, pods=NODE_PODS, zones=zones)
    batch = NodeShape(
        cpu=NODE_CPU,
        memory=NODE_MEMORY,
        pods=NODE_PODS,
        zones=zones,
        labels={POOL: "batch"},
        taints=({"key": DEDICATED, "value": "batch", "effect": "NoSchedule"},),
    )
    large = NodeShape(cpu="8", memory="64Gi", pods=NODE_PODS, zones=zones, labels={SIZE: "large"})
    ssd = NodeShape(
        cpu=NODE_CPU, memory=NODE_MEMORY, pods=NODE_PODS, zones=zones, labels={DISK: "ssd"}
    )

    def shape(index: int) -> NodeShape:
        slot = index % 10
        if slot == 0:
            return batch
        if slot in (4, 9):
            return large
        if slot in (1, 2, 3):
            return ssd
        return default

    return shape


def mixed(zones: int = 3) -> Workload:
    """Several pod groups with different requests, selectors, affinity and tolerations; 10% of
    the pods ask for 9 CPU, more than any node has (upstream's pod-large-cpu)."""
    spread = tuple(zone_name(z) for z in range(max(1, zones - 1)))
    return Workload(
        name="mixed",
        description=(
            "pod groups with different requests, node selectors, node affinity and "
            "tolerations over default, ssd, large and tainted batch node pools; "
            "10% of the pods fit no node"
        ),
        node_shape=_mixed_shape(zones),
        groups=(
            PodGroup("default", 8, "100m", "500Mi"),
            PodGroup("ssd", 3, "250m", "1Gi", node_selector=((DISK, "ssd"),)),
            PodGroup(
                "zonal",
                3,
                "200m",
                "1Gi",
                required_zones=spread,
                preferred_zone=zone_name(0),
            ),
            PodGroup(
                "batch",
                2,
                "500m",
                "2Gi",
                node_selector=((POOL, "batch"),),
                tolerations=(
                    {
                        "key": DEDICATED,
                        "operator": "Equal",
                        "value": "batch",
                        "effect": "NoSchedule",
                    },
                ),
            ),
            PodGroup("large", 2, "1", "4Gi"),
            PodGroup("too-big", 2, "9", "500Mi", schedulable=False),
        ),
        zones=zones,
    )


SPREAD_LABELS = (("color", "blue"),)


def spread(zones: int = 3) -> Workload:
    """Upstream TopologySpreading: every node already holds two plain pods (upstream: 1,000
    init pods on 500 nodes), then pods spread over zones by their own label, maxSkew 5,
    DoNotSchedule (`pod-with-topology-spreading.yaml`)."""
    constraint = {
        "maxSkew": 5,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": dict(SPREAD_LABELS)},
    }
    plain = PodGroup("init", 1, "100m", "500Mi")
    return Workload(
        name="spread",
        description=(
            "pods with a zone topology spread constraint (maxSkew 5, DoNotSchedule) on nodes "
            "that already hold two plain pods each (upstream TopologySpreading)"
        ),
        node_shape=_default_shape(zones),
        groups=(
            PodGroup("spread", 1, "100m", "500Mi", labels=SPREAD_LABELS, spread=(constraint,)),
        ),
        zones=zones,
        init_groups=lambda index: (plain, plain),
    )


PREFERRED_LABELS = (("color", "yellow"),)
REQUIRED_LABELS = (("color", "green"),)
REQUIRED_EVERY = 5  # one node in five starts with a pod of the required kind


def affinity(zones: int = 3) -> Workload:
    """Pod anti-affinity per hostname: three in four pods prefer (weight 1) nodes without a
    pod of their kind (upstream SchedulingPreferredPodAntiAffinity,
    `pod-with-preferred-pod-anti-affinity.yaml`), one in four requires it (upstream
    SchedulingPodAntiAffinity, `pod-with-pod-anti-affinity.yaml`). Every node starts with one
    pod: of the required kind on one node in five, of the preferred kind on the others. The
    required kind fits at most once per node, so at most `nodes` x 4/5 of them are
    schedulable: 3.2 measured pods per node at most before some of them are left pending."""
    preferred = PodGroup(
        "preferred",
        3,
        "100m",
        "500Mi",
        labels=PREFERRED_LABELS,
        preferred_anti_affinity=((1, pod_term(dict(PREFERRED_LABELS), HOSTNAME)),),
    )
    required = PodGroup(
        "required",
        1,
        "100m",
        "500Mi",
        labels=REQUIRED_LABELS,
        anti_affinity=(pod_term(dict(REQUIRED_LABELS), HOSTNAME),),
    )
    return Workload(
        name="affinity",
        description=(
            "pods with preferred (3 in 4) or required (1 in 4) pod anti-affinity per hostname "
            "to their own kind, on nodes that already hold one such pod each (upstream "
            "SchedulingPreferredPodAntiAffinity and SchedulingPodAntiAffinity)"
        ),
        node_shape=_default_shape(zones),
        groups=(preferred, required),
        zones=zones,
        init_groups=lambda index: (required,) if index % REQUIRED_EVERY == 0 else (preferred,),
        group_limits=lambda nodes: {"required": nodes - nodes // REQUIRED_EVERY},
    )


# Upstream PreemptionBasic fills 4-CPU nodes with four 900m low-priority pods and sends one
# 3-CPU high-priority pod per node, each preempting three. Here the pods are halved (eight
# 450m pods, 1800m preemptors) so that two preemptors fit per node, each preempting four: the
# benchmark's usual two pods per node are then all schedulable, by preemption only.
LOW_PER_NODE = 8


def preemption(zones: int = 3) -> Workload:
    """Upstream PreemptionBasic: nodes filled to 90% of their CPU with low-priority pods, then
    high-priority pods that fit only once lower-priority ones are preempted."""
    low = PodGroup("low", 1, "450m", "500Mi", priority_class="bench-low")
    return Workload(
        name="preemption",
        description=(
            "high-priority pods (1800m) on nodes filled to 90% of their CPU with low-priority "
            "pods (eight of 450m each): every pod preempts four (upstream PreemptionBasic, "
            "pods halved so that two fit per node)"
        ),
        node_shape=_default_shape(zones),
        groups=(PodGroup("high", 1, "1800m", "500Mi", priority_class="bench-high"),),
        zones=zones,
        init_groups=lambda index: (low,) * LOW_PER_NODE,
        group_limits=lambda nodes: {"high": 2 * nodes},
    )


# gang: jobs of these sizes in turn (upstream's GangScheduling uses one size per case: 3 or
# 1,000), and pods whose demand is this many times what the nodes can hold.
GANG_SIZES = (8, 16, 32, 64)
GANG_DEMAND = 1.3
GANG_MEMORY = "500Mi"
MAX_PER_NODE = 40  # 100m pods: upstream's pod-default is the smallest gang pod


def gang_pods_per_node(nodes: int, pods: int) -> int:
    """How many gang pods one 4-CPU node holds, so that `pods` pods ask for about GANG_DEMAND
    times what `nodes` nodes hold: floor(pods / (GANG_DEMAND x nodes)), between 1 and 40
    (100m pods, upstream's default). The demand is then at least GANG_DEMAND, and exactly that
    when pods = GANG_DEMAND x nodes x the number; with fewer than GANG_DEMAND pods a node
    there are not pods enough to exceed the capacity even at one pod a node."""
    # + 1e-9: 26,000 / (1.3 x 5,000) is 4, not 3.999... in floating point
    per_node = int(pods / (GANG_DEMAND * nodes) + 1e-9) if nodes > 0 else 1
    return max(1, min(MAX_PER_NODE, per_node))


def gang(zones: int = 3, nodes: int = 0, pods: int = 0) -> Workload:
    """Upstream GangScheduling (podgroup/gangscheduling/performance-config.yaml) with jobs of
    mixed sizes and more demand than capacity: jobs of 8, 16, 32 and 64 identical workers in
    turn (the last job takes the pods left), one scheduling.k8s.io/v1beta1 PodGroup each with
    a gang policy of minCount = the job's size, on upstream's default nodes (4 CPU, 32Gi,
    110 pods).

    The pods are upstream's default pod (100m CPU, 500Mi) or bigger: given the run's node and
    pod counts, each asks for 4000m / k CPU (and 500Mi), with k = gang_pods_per_node(nodes,
    pods) pods per node, so that the pods ask for about 1.3x what the nodes hold (500 nodes
    and 2,000 pods: 1333m, 3 a node, 1.33x; 5,000 nodes and 13,000 pods: 2 CPU, 2 a node,
    1.3x) and some gangs can never be placed. Unsized (nodes or pods 0): 100m pods.

    Needs a server that serves scheduling.k8s.io/v1beta1 and a kube-scheduler with the
    GenericWorkload gate (v1.37: beta, off by default); the benchmark passes the gate."""
    per_node = gang_pods_per_node(nodes, pods) if nodes and pods else MAX_PER_NODE
    cpu = f"{4000 // per_node}m"
    demand = pods / (per_node * nodes) if nodes and pods else 0.0
    sizes = ", ".join(str(s) for s in GANG_SIZES)
    return Workload(
        name="gang",
        description=(
            f"jobs of {sizes} identical workers in turn, one gang PodGroup each "
            f"(scheduling.k8s.io/v1beta1, minCount = the job's size); pods of {cpu} CPU and "
            f"{GANG_MEMORY}, {per_node} a node (4 CPU, 32Gi, 110 pods)"
            + (f": demand {demand:.2f}x the capacity" if demand else "")
        ),
        node_shape=_default_shape(zones),
        groups=(PodGroup("worker", 1, cpu, GANG_MEMORY),),
        zones=zones,
        gang_sizes=GANG_SIZES,
        apis=(GANG_API,),
        feature_gates=GANG_GATES,
        sized=lambda n, p: gang(zones, n, p),
    )


DRA_API = "resource.k8s.io/v1"
GPUS_PER_NODE = 8
# devices: (GPUs claimed, weight in slots): small claims are the common case, as upstream's
# one-GPU pods; every count up to a whole node appears. 20 slots, 2.8 GPUs a pod on average.
GPU_MIX = ((1, 8), (2, 4), (3, 2), (4, 2), (5, 1), (6, 1), (7, 1), (8, 1))


def devices(zones: int = 3, nodes: int = 0, pods: int = 0) -> Workload:
    """Upstream SchedulingWithResourceClaimTemplate (dra/performance-config.yaml) with a mix of
    claim sizes: every node has 8 GPUs of fakedra's driver (one ResourceSlice each, a pool per
    node), and each pod claims 1 to 8 of them (GPU_MIX, interleaved) through the
    ResourceClaimTemplate gpus-<n>; kube-controller-manager makes a ResourceClaim per pod.
    Pods are upstream's default pod (100m CPU, 500Mi) on upstream's default nodes, so only the
    GPUs limit how many fit; how many do depends on how the scheduler packs them (an 8-GPU pod
    needs an empty node).

    Needs resource.k8s.io/v1 (GA from v1.34, on by default). Sized, the description gives the
    GPUs asked for against the GPUs there are."""
    base = Workload(
        name="devices",
        description="",
        node_shape=_default_shape(zones),
        groups=tuple(
            PodGroup(gpu_template_name(n), weight, "100m", "500Mi", gpus=n) for n, weight in GPU_MIX
        ),
        zones=zones,
        apis=(DRA_API,),
        gpus_per_node=GPUS_PER_NODE,
    )
    asked = sum(base.group_of(i).gpus for i in range(1, pods + 1))
    demand = (
        f": {asked:,} GPUs asked for, {nodes * GPUS_PER_NODE:,} on the nodes "
        f"({asked / (nodes * GPUS_PER_NODE):.2f}x)"
        if nodes and pods
        else ""
    )
    return dataclasses.replace(
        base,
        description=(
            f"pods claiming 1 to 8 GPUs each ({_mix_text()}, through one "
            f"ResourceClaimTemplate per count) on nodes with {GPUS_PER_NODE} GPUs of a fake "
            f"DRA driver each (4 CPU, 32Gi, 110 pods){demand}"
        ),
        sized=lambda n, p: devices(zones, n, p),
    )


def _mix_text() -> str:
    total = sum(w for _, w in GPU_MIX)
    return ", ".join(f"{w * 100 // total}% {n}" for n, w in GPU_MIX)


STORAGE_CLASS = "bench-local"
VOLUMES_PER_POD = 1.25  # a quarter spare, so the last pods are not left one PV on one node


def statefulset(zones: int = 3) -> Workload:
    """A StatefulSet's pods with a volume each: every pod (upstream's default, 100m CPU, 500Mi)
    mounts its own claim data-<pod> (1Gi, ReadWriteOnce) of a WaitForFirstConsumer class
    without a provisioner, which the scheduler binds to one of the static local PVs made on
    every node beforehand (1.25 per pod, rounded up per node). The claims are created with the
    PVs, before the scheduler starts, as the StatefulSet controller creates each pod's claim
    before the pod; the pods are then created by the benchmark at the API server's pace, so
    what is timed is scheduling (VolumeBinding's Filter, Reserve and PreBind, which waits
    for the PV controller to bind the claim), not the StatefulSet controller."""
    return Workload(
        name="statefulset",
        description=(
            "pods (100m CPU, 500Mi) with a claim each of a WaitForFirstConsumer class, bound "
            "at scheduling time to static local PVs (1.25 per pod, dealt over the nodes); "
            "upstream's default nodes (4 CPU, 32Gi, 110 pods)"
        ),
        node_shape=_default_shape(zones),
        groups=(PodGroup("replica", 1, "100m", "500Mi", volume="1Gi"),),
        zones=zones,
        volumes_per_pod=VOLUMES_PER_POD,
    )


WORKLOADS: dict[str, Callable[[int], Workload]] = {
    "basic": basic,
    "service": service,
    "mixed": mixed,
    "spread": spread,
    "affinity": affinity,
    "preemption": preemption,
    "gang": gang,
    "devices": devices,
    "statefulset": statefulset,
}


def get(name: str, zones: int = 3) -> Workload:
    """The workload called `name`; KeyError lists the known ones."""
    try:
        factory = WORKLOADS[name]
    except KeyError:
        raise KeyError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})") from None
    return factory(zones)
