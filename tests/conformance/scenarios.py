"""Conformance scenarios: nodes and pods, generated from fixed seeds or written by hand.

A scenario is pure data (Node and Pod JSON as the API takes them, without namespace or
schedulerName); the test posts the nodes once and the pods twice, once per scheduler.

Outcomes must not depend on the order in which a scheduler happens to see the pods, or the two
schedulers could disagree for reasons that are nobody's bug. The generator keeps them
order-independent by construction:

- resources: all generated pods together fit on the smallest node, so no pod ever competes for
  capacity; the only resource failures are pods larger than every node ("too big");
- host ports: at most two pods share a port, they carry no node constraint, and there are at
  least two untainted nodes;
- pod (anti-)affinity and spread: a selector only ever selects pods of its own replica group
  (plus, for required affinity, an earlier group), and every pod of a group carries the same
  constraints, so only *how many* replicas of a group fit is decided, never *which*. Replicas are
  interchangeable, and the comparison is therefore per replica class (see `pod_class`);
- priorities come from PriorityClasses with `preemptionPolicy: Never`: they order the queue but
  never evict, so no run depends on how fast a victim goes away.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from tests.builders import make_node, make_pod

JSON = dict[str, Any]

ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
EXISTING = "conformance-existing"  # namespace of a scenario's pre-bound pods
GROUP = "conformance/group"  # pod label: the replica group (selectors of spread and affinity)

# name -> (value, preemptionPolicy). Only the preemption edge case uses the one that preempts.
PRIORITY_CLASSES: dict[str, tuple[int, str]] = {
    "conformance-high": (1000, "Never"),
    "conformance-low": (-100, "Never"),
    "conformance-preemptor": (2000, "PreemptLowerPriority"),
}

# Seeds: the default (small) set runs in `make test`, the full set in `make conformance`.
SMALL_SEEDS = (1, 2)
FULL_SEEDS = tuple(range(1, 21))


@dataclass(frozen=True)
class Scenario:
    id: str
    nodes: list[JSON]
    pods: list[JSON]  # in creation order
    doc: str = ""
    # Indices of pods before which the run waits for the scheduler to settle, for cases where
    # what is already bound is the point (symmetric anti-affinity, preemption).
    settle_before: tuple[int, ...] = field(default=())
    # Pods already bound (spec.nodeName set) in the namespace EXISTING, created with the nodes
    # and seen by both runs: they hold resources and their (anti-)affinity terms apply.
    existing: list[JSON] = field(default_factory=list)
    # Cluster-scoped objects made with the nodes and deleted with them: StorageClasses,
    # CSIDrivers, DeviceClasses, ResourceSlices. Named after the scenario, so that no other
    # scenario sees them (claim_scenarios.py).
    objects: list[JSON] = field(default_factory=list)
    # Objects made afresh before each run's pods and deleted (and gone) after its pods, so that
    # both runs start from the same free volumes and devices: the claims and templates, made in
    # the run's namespace, and the static PersistentVolumes, which the first run's claims would
    # otherwise keep (a PV's claimRef without a namespace gets the run's).
    run_objects: list[JSON] = field(default_factory=list)
    # The name of the external provisioner a TestProvisioner plays during each run, if any.
    provisioner: str = ""
    # Labels of each run's namespace (DRA admin access is allowed only in a labelled one).
    namespace_labels: dict[str, str] = field(default_factory=dict)


def pod_class(pod: JSON) -> str:
    """Replica class of a pod: its group label, or its own name when it has none. Pods of one
    class are identical but for their name, so which of them get the last slots is queue
    order, not scheduling semantics."""
    labels: dict[str, str] = pod["metadata"].get("labels") or {}
    return labels.get(GROUP) or str(pod["metadata"]["name"])


# --- hand-written edge cases -------------------------------------------------------------


def _node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110") -> Any:
    return make_node(name).capacity(cpu=cpu, memory=memory, pods=pods)


def _pod(name: str, cpu: str = "100m", memory: str = "64Mi") -> Any:
    return make_pod(name).req(cpu=cpu, memory=memory)


def _group(pod: Any, group: str) -> Any:
    return pod.label(GROUP, group)


def _sel(group: str) -> JSON:
    return {"matchLabels": {GROUP: group}}


def _host_port(pod: JSON, port: int, protocol: str = "TCP") -> JSON:
    pod["spec"]["containers"][0]["ports"] = [
        {"containerPort": port, "hostPort": port, "protocol": protocol}
    ]
    return pod


def _replicas(builder: Any, group: str, count: int) -> list[JSON]:
    out = []
    for i in range(count):
        pod = copy.deepcopy(builder.for_api())
        pod["metadata"]["name"] = f"{group}-{i}"
        pod["metadata"].setdefault("labels", {})[GROUP] = group
        out.append(pod)
    return out


def edge_cases() -> list[Scenario]:
    cases: list[Scenario] = []

    cases.append(
        Scenario(
            "exact-fit",
            [
                _node("ef-a", cpu="2", memory="4Gi").obj_(),
                _node("ef-b", cpu="1", memory="2Gi").obj_(),
            ],
            [
                _pod("fits-exactly", cpu="2", memory="4Gi").for_api(),
                _pod("one-milli-too-many", cpu="2001m", memory="1Gi").for_api(),
                _pod("one-byte-too-many", cpu="1", memory="4294967297").for_api(),
                _pod("fits-small-node", cpu="1", memory="2Gi").for_api(),
            ],
            "requests equal to allocatable fit; one unit more does not",
        )
    )

    cases.append(
        Scenario(
            "zero-capacity",
            [
                make_node("zc-nopods").capacity(cpu="4", memory="8Gi", pods="0").obj_(),
                make_node("zc-nocpu").capacity(cpu="0", memory="8Gi", pods="110").obj_(),
            ],
            [
                make_pod("besteffort").for_api(),
                _pod("needs-cpu").for_api(),
                make_pod("needs-memory-only").req(memory="1Gi").for_api(),
            ],
            "pods=0 admits nothing; cpu=0 admits pods that request no cpu",
        )
    )

    cases.append(
        Scenario(
            "pods-capacity",
            [_node("pc-a", pods="2").obj_()],
            _replicas(_pod("x"), "pc", 3),
            "the pods resource counts like any other",
        )
    )

    cases.append(
        Scenario(
            "taints-noexecute",
            [
                _node("te-noexec").taint("maint", "true", "NoExecute").obj_(),
                _node("te-nosched").taint("dedicated", "gpu", "NoSchedule").obj_(),
                _node("te-prefer").taint("spot", "", "PreferNoSchedule").obj_(),
            ],
            [
                _pod("tolerates-noexecute")
                .toleration("maint", "true", "NoExecute")
                .node_selector(**{HOSTNAME: "te-noexec"})
                .for_api(),
                _pod("tolerates-noschedule-only")
                .toleration("maint", "true", "NoSchedule")
                .node_selector(**{HOSTNAME: "te-noexec"})
                .for_api(),
                _pod("tolerates-any-effect")
                .toleration("maint", "true", "")
                .node_selector(**{HOSTNAME: "te-noexec"})
                .for_api(),
                _pod("wrong-value")
                .toleration("dedicated", "cpu")
                .node_selector(**{HOSTNAME: "te-nosched"})
                .for_api(),
                _pod("exists-all").toleration("", operator="Exists", effect="").for_api(),
                _pod("prefer-only-1").for_api(),
                _pod("prefer-only-2").for_api(),
            ],
            "NoExecute must be tolerated to schedule; PreferNoSchedule only scores",
        )
    )
    # tolerationSeconds on a NoExecute toleration is legal and does not matter to scheduling.
    # Long enough that kube-controller-manager's taint eviction never evicts the pod mid-run.
    cases[-1].pods[0]["spec"]["tolerations"][0]["tolerationSeconds"] = 3600

    cases.append(
        Scenario(
            "gt-lt",
            [_node(f"gl-{g}").label("gen", str(g)).obj_() for g in (1, 2, 3, 4)]
            + [_node("gl-none").obj_()],
            [
                _pod("gen-gt-2").required_affinity("gen", "Gt", "2").for_api(),
                _pod("gen-lt-2").required_affinity("gen", "Lt", "2").for_api(),
                _pod("gen-gt-4").required_affinity("gen", "Gt", "4").for_api(),
                _pod("gen-lt-1").required_affinity("gen", "Lt", "1").for_api(),
                _pod("gen-doesnotexist").required_affinity("gen", "DoesNotExist").for_api(),
                _pod("gen-notin").required_affinity("gen", "NotIn", "1", "2", "3", "4").for_api(),
            ],
            "Gt/Lt compare integers; a node without the label never satisfies them",
        )
    )

    anti = _pod("x").pod_affinity(GROUP, "In", HOSTNAME, "anti", anti=True)
    self_affine = _pod("x").pod_affinity(GROUP, "In", ZONE, "affine")
    cases.append(
        Scenario(
            "anti-affinity-self-match",
            [_node(f"as-{i}").zone(f"zone-{i % 2}").obj_() for i in range(2)],
            _replicas(anti, "anti", 3) + _replicas(self_affine, "affine", 2),
            "self anti-affinity: one replica per node; self affinity: the first replica may "
            "schedule although no pod matches yet",
        )
    )

    cases.append(
        Scenario(
            "min-domains",
            [_node(f"md-{i}").zone(f"zone-{i % 2}").obj_() for i in range(4)],
            _replicas(_pod("x").spread(1, ZONE, selector=_sel("md"), min_domains=3), "md", 4)
            + _replicas(_pod("x").spread(1, ZONE, selector=_sel("md2"), min_domains=2), "md2", 4),
            "fewer domains than minDomains: the global minimum counts as 0",
        )
    )

    cases.append(
        Scenario(
            "spread-missing-key",
            [
                _node("mk-a").zone("zone-a").obj_(),
                _node("mk-b").zone("zone-b").obj_(),
                _node("mk-nozone").obj_(),
            ],
            _replicas(_pod("x").spread(1, ZONE, selector=_sel("mk")), "mk", 4)
            + _replicas(
                _pod("x").spread(1, ZONE, "ScheduleAnyway", selector=_sel("mka")), "mka", 3
            ),
            "DoNotSchedule never places on a node without the key; ScheduleAnyway may",
        )
    )

    cases.append(
        Scenario(
            "host-ports",
            [_node("hp-a").obj_(), _node("hp-b").obj_()],
            [_host_port(p, 8080) for p in _replicas(_pod("x"), "hp", 3)]
            + [_host_port(p, 8080, "UDP") for p in _replicas(_pod("x"), "hpu", 2)],
            "one TCP 8080 per node; UDP 8080 does not conflict with TCP",
        )
    )

    zones2 = [_node(f"sp-{i}").zone(f"zone-{i % 2}").obj_() for i in range(4)]
    cases.append(
        Scenario(
            "spread-policies",
            [
                *zones2[:2],
                _node("sp-t0").zone("zone-t").taint("dedicated", "gpu").obj_(),
                _node("sp-t1").zone("zone-t").taint("dedicated", "gpu").obj_(),
            ],
            _replicas(
                _pod("x")
                .node_selector(**{ZONE: "zone-0"})
                .spread(1, ZONE, selector=_sel("aff-honor")),
                "aff-honor",
                3,
            )
            + _replicas(
                _pod("x")
                .node_selector(**{ZONE: "zone-0"})
                .spread(1, ZONE, selector=_sel("aff-ignore"), node_affinity_policy="Ignore"),
                "aff-ignore",
                3,
            )
            + _replicas(_pod("x").spread(1, ZONE, selector=_sel("taint-ignore")), "taint-ignore", 4)
            + _replicas(
                _pod("x").spread(1, ZONE, selector=_sel("taint-honor"), node_taints_policy="Honor"),
                "taint-honor",
                4,
            ),
            "nodeAffinityPolicy Ignore and nodeTaintsPolicy Ignore count domains the pod "
            "cannot use, so their minimum stays 0",
        )
    )

    shared = {"matchLabels": {"app": "web"}}
    cases.append(
        Scenario(
            "match-label-keys",
            zones2,
            [
                p
                for g in ("mlk-a", "mlk-b")
                for p in _replicas(
                    _pod("x")
                    .label("app", "web")
                    .spread(1, ZONE, selector=shared, min_domains=3, match_label_keys=[GROUP]),
                    g,
                    3,
                )
            ],
            "matchLabelKeys splits one selector per group: two per group, not two in all",
        )
    )

    guard = (
        _pod("guard")
        .node_selector(**{HOSTNAME: "sp-0"})
        .pod_affinity("role", "In", ZONE, "intruder", anti=True)
        .for_api()
    )
    intruder = _pod("x").label("role", "intruder")
    cases.append(
        Scenario(
            "symmetric-anti-affinity",
            zones2,
            [
                guard,
                *_replicas(intruder, "intruder", 3),
                *_replicas(intruder.node_selector(**{ZONE: "zone-0"}), "intruder-zone0", 2),
            ],
            "an existing pod's required anti-affinity keeps matching pods out of its zone",
            settle_before=(1,),
        )
    )

    gpu = {"example.com/gpu": "1"}
    gpu_pod = _pod("x")
    gpu_pod.obj["spec"]["containers"][0]["resources"]["requests"].update(gpu)
    gpu_pod.obj["spec"]["containers"][0]["resources"]["limits"] = dict(gpu)
    cases.append(
        Scenario(
            "extended-and-init-resources",
            [
                make_node("er-gpu")
                .resources({"cpu": "4", "memory": "8Gi", "pods": "110", "example.com/gpu": "2"})
                .obj_(),
                _node("er-init", cpu="2").obj_(),
                _node("er-side", cpu="2").obj_(),
            ],
            _replicas(gpu_pod, "gpu", 3)
            + _replicas(
                make_pod("x")
                .containers({"cpu": "500m"})
                .init_container({"cpu": "2"})
                .node_selector(**{HOSTNAME: "er-init"}),
                "init",
                2,
            )
            + _replicas(
                make_pod("x")
                .containers({"cpu": "500m"})
                .init_container({"cpu": "1"}, sidecar=True)
                .node_selector(**{HOSTNAME: "er-side"}),
                "sidecar",
                2,
            ),
            "extended resources count; an init container's request is a maximum, a "
            "sidecar's adds to the containers'",
        )
    )

    low = _pod("x", cpu="500m")
    low.obj["spec"]["priorityClassName"] = "conformance-low"
    high = _pod("preemptor", cpu="1")
    high.obj["spec"]["priorityClassName"] = "conformance-preemptor"
    cases.append(
        Scenario(
            "preemption",
            [_node("pe-a", cpu="2").obj_()],
            [*_replicas(low, "low", 4), high.for_api()],
            "a higher-priority pod evicts just enough lower-priority pods",
            settle_before=(4,),
        )
    )

    everywhere: JSON = {"namespaceSelector": {}}
    sentinel = (
        _pod("sentinel")
        .label("role", "sentinel")
        .node("ex-1")
        .pod_affinity_term(
            {
                "labelSelector": {"matchLabels": {"role": "newcomer"}},
                "topologyKey": HOSTNAME,
                **everywhere,
            },
            anti=True,
        )
    )
    near = {"labelSelector": {"matchLabels": {"role": "sentinel"}}, "topologyKey": HOSTNAME}
    cases.append(
        Scenario(
            "existing-pods",
            [_node("ex-0", cpu="2").zone("zone-0").obj_(), _node("ex-1", cpu="2").obj_()],
            [
                *_replicas(_pod("x", cpu="1").label("role", "newcomer"), "newcomer", 2),
                *_replicas(_pod("x", cpu="200m"), "small", 2),
                _pod("near-any-namespace").pod_affinity_term(near | everywhere).for_api(),
                _pod("near-own-namespace").pod_affinity_term(near).for_api(),
            ],
            "pods bound before the scheduler saw them hold resources, and their "
            "anti-affinity (namespaceSelector {}) repels pods of other namespaces",
            existing=[
                _pod("hog", cpu="1500m").node("ex-0").for_api(),
                sentinel.for_api(),
            ],
        )
    )
    return cases


# --- generated scenarios -------------------------------------------------------------------

TAINTS: list[JSON] = [
    {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
    {"key": "maint", "value": "true", "effect": "NoExecute"},
    {"key": "spot", "value": "true", "effect": "PreferNoSchedule"},
]


def generated(seed: int) -> Scenario:
    rng = random.Random(seed)
    prefix = f"g{seed}"
    zones = [f"zone-{z}" for z in "abc"[: rng.randint(2, 3)]]
    nodes: list[JSON] = []
    node_count = rng.randint(4, 7)
    untainted = 0
    for i in range(node_count):
        nb = make_node(f"{prefix}-n{i}").capacity(
            cpu=rng.choice(["2", "4", "8"]),
            memory=rng.choice(["4Gi", "8Gi", "16Gi"]),
        )
        if rng.random() < 0.9:
            nb.zone(zones[i % len(zones)])
        nb.label("disk", rng.choice(["ssd", "hdd"]))
        nb.label("gen", str(rng.randint(1, 5)))
        if rng.random() < 0.2:
            nb.label("gpu", "true")
        if i >= 2 and rng.random() < 0.35:
            t = rng.choice(TAINTS)
            nb.taint(t["key"], t["value"], t["effect"])
        else:
            untainted += 1
        nodes.append(nb.obj_())
    assert untainted >= 2
    min_cpu_m = min(int(n["status"]["allocatable"]["cpu"]) * 1000 for n in nodes)
    min_memory_mi = min(int(n["status"]["allocatable"]["memory"][:-2]) * 1024 for n in nodes)

    pods: list[JSON] = []
    groups: list[str] = []
    ports_used: dict[int, int] = {}
    # Mostly small groups, some bursts of identical replicas (berth batches those).
    replica_counts = [rng.choice([1, 1, 2, 2, 3, 3, 8, 12]) for _ in range(rng.randint(5, 8))]
    budget_m = min_cpu_m * 9 // 10
    per_pod_m = max(10, budget_m // sum(replica_counts))
    per_pod_mi = max(16, min_memory_mi * 9 // 10 // sum(replica_counts))
    for g, replicas in enumerate(replica_counts):
        group = f"{prefix}-p{g}"
        b = make_pod("x").req(
            cpu=f"{rng.randint(10, per_pod_m)}m", memory=f"{rng.randint(16, per_pod_mi)}Mi"
        )
        port: int | None = None
        kind = rng.random()
        affine_to = bool(groups) and 0.5 <= kind < 0.6
        if rng.random() < 0.1:
            b.req(cpu="64", memory="1Gi")  # larger than every node: always pending
        elif not affine_to and rng.random() < 0.15:
            port = rng.choice([8080, 9090])
            if ports_used.get(port, 0) + replicas > 2:
                port = None
        if affine_to:
            # Co-located with an earlier group on its node: tolerating everything and with no
            # node constraint of its own, it fits iff some target pod is placed.
            b.pod_affinity(GROUP, "In", HOSTNAME, rng.choice(groups))
            b.toleration("", operator="Exists", effect="")
        elif port is None:
            _random_node_constraints(rng, b, zones)
        if rng.random() < 0.3:
            b.obj["spec"]["priorityClassName"] = rng.choice(["conformance-high", "conformance-low"])
        if kind < 0.2:
            b.spread(rng.randint(1, 2), rng.choice([ZONE, HOSTNAME]), selector=_sel(group))
        elif kind < 0.35:
            b.spread(1, rng.choice([ZONE, HOSTNAME]), "ScheduleAnyway", selector=_sel(group))
        elif kind < 0.5:
            b.pod_affinity(GROUP, "In", rng.choice([HOSTNAME, ZONE]), group, anti=True)
        elif 0.6 <= kind < 0.75:
            target = rng.choice([*groups, group])
            b.pod_affinity(
                GROUP,
                "In",
                rng.choice([HOSTNAME, ZONE]),
                target,
                anti=rng.random() < 0.5,
                weight=rng.randint(1, 100),
            )
        for pod in _replicas(b, group, replicas):
            if port is not None:
                _host_port(pod, port)
            pods.append(pod)
        if port is not None:
            ports_used[port] = ports_used.get(port, 0) + replicas
        groups.append(group)
    return Scenario(f"seed-{seed}", nodes, pods, f"generated from seed {seed}")


def _random_node_constraints(rng: random.Random, b: Any, zones: list[str]) -> None:
    if rng.random() < 0.2:
        b.node_selector(disk=rng.choice(["ssd", "hdd", "nvme"]))
    if rng.random() < 0.25:
        key, op, values = rng.choice(
            [
                (ZONE, "In", [rng.choice(zones)]),
                (ZONE, "NotIn", [rng.choice(zones)]),
                ("gen", "Gt", [str(rng.randint(1, 4))]),
                ("gen", "Lt", [str(rng.randint(2, 5))]),
                ("gpu", "DoesNotExist", []),
                ("gpu", "Exists", []),
            ]
        )
        b.required_affinity(key, op, *values)
    for _ in range(rng.choice([0, 0, 1, 2])):
        key, value = rng.choice([("disk", "ssd"), ("disk", "hdd"), (ZONE, rng.choice(zones))])
        b.preferred_affinity(rng.randint(1, 100), key, "In", value)
    if rng.random() < 0.3:
        t = rng.choice(TAINTS)
        b.toleration(t["key"], t["value"], t["effect"])
    elif rng.random() < 0.05:
        b.toleration("", operator="Exists", effect="")


def select(seeds: tuple[int, ...]) -> list[Scenario]:
    return edge_cases() + [generated(s) for s in seeds]
