"""Compiled, slotted views of Pods and Nodes, built once per object version from raw JSON.

The informer hands us orjson-parsed dicts. Everything the scheduler asks of an object on the hot
path (requests as integers, tolerations, affinity terms, labels) is computed here once, so the
scheduling cycle never walks raw JSON again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

JSON = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"

# Upstream scores a container without a cpu (memory) request as if it asked for 100m (200Mi),
# so that spreading still works for best-effort pods. Scoring only; Filter uses real requests.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

_SUFFIX: dict[str, int | Decimal] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
# A number, then either a decimal exponent ("1e3") or an SI suffix, never both ("1e3Ki" is
# invalid upstream); "1E" alone is the exa suffix.
_QUANTITY = re.compile(
    r"([+-]?[0-9.]+)(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|))"
)


class InvalidObject(ValueError):
    """A Pod or Node whose spec cannot be understood (the message names the field)."""


def parse_quantity(value: str | int | float, *, milli: bool = False) -> int:
    """A Kubernetes resource quantity as an integer (rounded up, as the API server does).

    `milli=True` returns thousandths (CPU is kept in millicores).
    """
    if isinstance(value, bool):
        raise InvalidObject(f"quantity {value!r} is not a number")
    if isinstance(value, int | float):
        number = Decimal(str(value))
    else:
        match = _QUANTITY.fullmatch(value.strip())
        if not match:
            raise InvalidObject(f"quantity {value!r} is not a valid Kubernetes quantity")
        mantissa, exponent, suffix = match.groups()
        try:
            if exponent is not None:
                number = Decimal(mantissa).scaleb(int(exponent))
            else:
                number = Decimal(mantissa) * Decimal(str(_SUFFIX[suffix]))
        except InvalidOperation as err:
            raise InvalidObject(f"quantity {value!r} is not a valid Kubernetes quantity") from err
    if milli:
        number *= 1000
    whole = int(number.to_integral_value(rounding="ROUND_CEILING"))
    return whole


def is_scalar_resource(name: str) -> bool:
    """Upstream's IsScalarResourceName: extended ("example.com/gpu"), kubernetes.io-prefixed,
    hugepages-* and attachable-volumes-* resources. Scoring skips those a pod does not request."""
    return "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))


def resource_amount(name: str, value: str | int | float) -> int:
    """CPU in millicores, everything else in whole units (bytes, pods, devices)."""
    return parse_quantity(value, milli=(name == CPU))


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # Equal | Exists
    value: str
    effect: str  # "" = all effects

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class Requirement:
    """One matchExpressions / matchFields entry of a node selector term."""

    key: str
    operator: str  # In NotIn Exists DoesNotExist Gt Lt
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SelectorTerm:
    """A NodeSelectorTerm: all requirements must hold. An empty term matches nothing."""

    expressions: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()


@dataclass(frozen=True, slots=True)
class PreferredTerm:
    weight: int
    term: SelectorTerm


# --- pod topology spread (PodTopologySpread) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A compiled metav1.LabelSelector over pod labels: every requirement holds (an empty
    selector matches every pod). `nothing` is a missing (nil) selector, which matches no pod,
    as upstream's LabelSelectorAsSelector(nil) = labels.Nothing()."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: dict[str, str]) -> bool:
        if self.nothing:
            return False
        return all(requirement_matches(r, labels.get(r.key)) for r in self.requirements)


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """One spec.topologySpreadConstraints entry, as written ("" / None = field not set)."""

    max_skew: int
    topology_key: str
    when_unsatisfiable: str  # DoNotSchedule | ScheduleAnyway
    selector: LabelSelector
    min_domains: int | None = None
    node_affinity_policy: str = ""  # Honor | Ignore
    node_taints_policy: str = ""  # Honor | Ignore
    match_label_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """The pod's controller (the ownerReference with controller: true)."""

    api_version: str
    kind: str
    name: str
    uid: str


def label_selector(raw: JSON | None, path: str) -> LabelSelector:
    """Compile a metav1.LabelSelector; raises InvalidObject naming the field when malformed."""
    if raw is None:
        return LabelSelector(nothing=True)
    match_labels = sorted((raw.get("matchLabels") or {}).items())
    out = [Requirement(k, "In", (str(v),)) for k, v in match_labels]
    for i, expr in enumerate(raw.get("matchExpressions") or []):
        op, values = expr.get("operator", ""), tuple(expr.get("values") or ())
        where = f"{path}.matchExpressions[{i}]"
        if op in ("In", "NotIn") and not values:
            raise InvalidObject(f"{where}.values: must be specified for operator {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise InvalidObject(f"{where}.values: must be empty for operator {op}")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise InvalidObject(f"{where}.operator: unknown operator {op!r}")
        out.append(Requirement(expr.get("key", ""), op, values))
    return LabelSelector(tuple(out))


def spread_constraints(spec: JSON) -> tuple[SpreadConstraint, ...]:
    out = []
    for i, c in enumerate(spec.get("topologySpreadConstraints") or []):
        path = f"spec.topologySpreadConstraints[{i}]"
        min_domains = c.get("minDomains")
        out.append(
            SpreadConstraint(
                max_skew=int(c.get("maxSkew") or 0),
                topology_key=c.get("topologyKey") or "",
                when_unsatisfiable=c.get("whenUnsatisfiable") or "",
                selector=label_selector(c.get("labelSelector"), f"{path}.labelSelector"),
                min_domains=None if min_domains is None else int(min_domains),
                node_affinity_policy=c.get("nodeAffinityPolicy") or "",
                node_taints_policy=c.get("nodeTaintsPolicy") or "",
                match_label_keys=tuple(c.get("matchLabelKeys") or ()),
            )
        )
    return tuple(out)


def controller_ref(meta: JSON) -> OwnerRef | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return OwnerRef(
                ref.get("apiVersion", ""),
                ref.get("kind", ""),
                ref.get("name", ""),
                ref.get("uid", ""),
            )
    return None


# --- host ports, images and volumes (NodePorts, ImageLocality, volume plugins) ------------


@dataclass(frozen=True, slots=True)
class HostPort:
    """A container port with a hostPort; "" and "::" host IPs are kept as 0.0.0.0 (any)."""

    protocol: str  # TCP (default) | UDP | SCTP
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class PodVolume:
    """One spec.volumes entry that can constrain scheduling; the others (emptyDir, configMap,
    secret, projected, hostPath, downwardAPI, ...) are not kept.

    kind "pvc" names a claim (`ephemeral`: the claim the ephemeral volume controller creates,
    "<pod>-<volume>"); "gce" / "aws" / "iscsi" / "rbd" carry the disk identity that
    VolumeRestrictions compares; "csi" is an inline CSI volume (`disk` = (driver,))."""

    name: str
    kind: str
    claim: str = ""
    ephemeral: bool = False
    disk: tuple[str, ...] = ()
    monitors: tuple[str, ...] = ()
    read_only: bool = False


def host_ports(spec: JSON) -> tuple[HostPort, ...]:
    """Upstream's getContainerPorts: app containers' ports with hostPort > 0."""
    out = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            port = int(p.get("hostPort") or 0)
            if port > 0:
                ip = p.get("hostIP") or "0.0.0.0"
                ip = "0.0.0.0" if ip in ("::", "0:0:0:0:0:0:0:0") else ip
                out.append(HostPort(p.get("protocol") or "TCP", ip, port))
    return tuple(out)


def container_images(spec: JSON) -> tuple[str, ...]:
    """Init and app container images, normalized as ImageLocality compares them: a name
    without a tag gets ":latest" (one entry per container, so len() counts containers)."""
    out = []
    for c in (*(spec.get("initContainers") or []), *(spec.get("containers") or [])):
        image = c.get("image") or ""
        if image.rfind(":") <= image.rfind("/"):
            image += ":latest"
        out.append(image)
    return tuple(out)


def pod_volumes(name: str, spec: JSON) -> tuple[PodVolume, ...]:
    out = []
    for v in spec.get("volumes") or []:
        vol = v.get("name") or ""
        if (pvc := v.get("persistentVolumeClaim")) is not None:
            out.append(PodVolume(vol, "pvc", claim=pvc.get("claimName") or ""))
        elif v.get("ephemeral") is not None:
            out.append(PodVolume(vol, "pvc", claim=f"{name}-{vol}", ephemeral=True))
        elif (gce := v.get("gcePersistentDisk")) is not None:
            ro = bool(gce.get("readOnly"))
            out.append(PodVolume(vol, "gce", disk=(gce.get("pdName") or "",), read_only=ro))
        elif (aws := v.get("awsElasticBlockStore")) is not None:
            out.append(PodVolume(vol, "aws", disk=(aws.get("volumeID") or "",)))
        elif (iscsi := v.get("iscsi")) is not None:
            ro = bool(iscsi.get("readOnly"))
            out.append(PodVolume(vol, "iscsi", disk=(iscsi.get("iqn") or "",), read_only=ro))
        elif (rbd := v.get("rbd")) is not None:
            out.append(
                PodVolume(
                    vol,
                    "rbd",
                    disk=(rbd.get("pool") or "rbd", rbd.get("image") or ""),
                    monitors=tuple(rbd.get("monitors") or ()),
                    read_only=bool(rbd.get("readOnly")),
                )
            )
        elif (csi := v.get("csi")) is not None:
            out.append(PodVolume(vol, "csi", disk=(csi.get("driver") or "",)))
    return tuple(out)


# --- inter-pod affinity (InterPodAffinity) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    """One PodAffinityTerm, compiled as upstream's framework.AffinityTerm.

    `namespaces` is the pod's own namespace when neither namespaces nor namespaceSelector is
    set; a missing namespaceSelector matches no namespace and an empty one matches all.
    matchLabelKeys / mismatchLabelKeys are already merged into `selector` (the API server does
    the same on create, so merging again only repeats a requirement)."""

    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector
    topology_key: str

    def matches(self, namespace: str, labels: dict[str, str], ns_labels: dict[str, str]) -> bool:
        """Upstream's AffinityTerm.Matches: namespace listed or selected, then the labels."""
        if namespace in self.namespaces or self.namespace_selector.matches(ns_labels):
            return self.selector.matches(labels)
        return False


@dataclass(frozen=True, slots=True)
class WeightedPodAffinityTerm:
    weight: int
    term: PodAffinityTerm


@dataclass(frozen=True, slots=True)
class PodAffinity:
    """spec.affinity.podAffinity and podAntiAffinity; PodInfo holds None when both are empty."""

    required: tuple[PodAffinityTerm, ...] = ()
    required_anti: tuple[PodAffinityTerm, ...] = ()
    preferred: tuple[WeightedPodAffinityTerm, ...] = ()
    preferred_anti: tuple[WeightedPodAffinityTerm, ...] = ()


def pod_affinity(spec: JSON, namespace: str, labels: dict[str, str]) -> PodAffinity | None:
    """Compile the pod's inter-pod affinity; raises InvalidObject naming the field."""
    affinity = spec.get("affinity") or {}

    def term(raw: JSON, path: str) -> PodAffinityTerm:
        selector = label_selector(raw.get("labelSelector"), f"{path}.labelSelector")
        if not selector.nothing:
            extra = [
                Requirement(k, op, (labels[k],))
                for field_name, op in (("matchLabelKeys", "In"), ("mismatchLabelKeys", "NotIn"))
                for k in raw.get(field_name) or ()
                if k in labels
            ]
            selector = LabelSelector(selector.requirements + tuple(extra))
        raw_ns = raw.get("namespaceSelector")
        names = raw.get("namespaces") or []
        return PodAffinityTerm(
            selector=selector,
            namespaces=frozenset(names or ([] if raw_ns is not None else [namespace])),
            namespace_selector=label_selector(raw_ns, f"{path}.namespaceSelector"),
            topology_key=raw.get("topologyKey") or "",
        )

    def terms(kind: str) -> tuple[tuple[PodAffinityTerm, ...], tuple[WeightedPodAffinityTerm, ...]]:
        raw = affinity.get(kind) or {}
        path = f"spec.affinity.{kind}"
        required = raw.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        preferred = raw.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        try:
            return (
                tuple(
                    term(t, f"{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
                    for i, t in enumerate(required)
                ),
                tuple(
                    WeightedPodAffinityTerm(
                        int(w.get("weight") or 0),
                        term(
                            w.get("podAffinityTerm") or {},
                            f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]",
                        ),
                    )
                    for i, w in enumerate(preferred)
                ),
            )
        except (TypeError, ValueError, AttributeError) as err:
            if isinstance(err, InvalidObject):
                raise
            raise InvalidObject(f"{path}: {err}") from err

    required, preferred = terms("podAffinity")
    required_anti, preferred_anti = terms("podAntiAffinity")
    if not (required or preferred or required_anti or preferred_anti):
        return None
    return PodAffinity(required, required_anti, preferred, preferred_anti)


@dataclass(slots=True)
class PodInfo:
    """The scheduling-relevant parts of one Pod version."""

    uid: str
    namespace: str
    name: str
    resource_version: str
    scheduler_name: str
    node_name: str
    nominated_node_name: str
    priority: int
    created: str
    phase: str
    deleting: bool
    requests: dict[str, int]  # effective requests (init containers, sidecars, overhead)
    node_selector: dict[str, str]
    required_terms: tuple[SelectorTerm, ...] | None  # None = no required node affinity
    preferred_terms: tuple[PreferredTerm, ...]
    tolerations: tuple[Toleration, ...]
    gates: tuple[str, ...]
    labels: dict[str, str]
    raw: JSON = field(repr=False)
    class_key: tuple[Any, ...] = ()
    # (milli-CPU, memory) with upstream's per-container defaults, for scoring only.
    nonzero_requests: tuple[int, int] = (0, 0)
    spread_constraints: tuple[SpreadConstraint, ...] = ()  # spec.topologySpreadConstraints
    controller: OwnerRef | None = None  # for PodTopologySpread's default selector
    pod_affinity: PodAffinity | None = None  # spec.affinity.podAffinity/podAntiAffinity
    host_ports: tuple[HostPort, ...] = ()  # NodePorts
    images: tuple[str, ...] = ()  # ImageLocality: normalized, one per container
    volumes: tuple[PodVolume, ...] = ()  # the volume plugins

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(slots=True)
class NodeInfo:
    """The scheduling-relevant parts of one Node version."""

    name: str
    resource_version: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    allocatable: dict[str, int]
    images: dict[str, int] = field(default_factory=dict)  # image name -> size in bytes

    def same_for_scheduling(self, other: NodeInfo) -> bool:
        """Does `other` (a later version) change nothing a plugin reads? Then it is a
        heartbeat or a status change like it, which moves no pod (upstream's
        nodeSchedulingPropertiesChange finds no change either)."""
        return (
            self.labels == other.labels
            and self.taints == other.taints
            and self.unschedulable == other.unschedulable
            and self.allocatable == other.allocatable
            and self.images == other.images
        )


# --- compilation -------------------------------------------------------------------------


def compile_node(obj: JSON) -> NodeInfo:
    meta, spec, status = obj.get("metadata", {}), obj.get("spec") or {}, obj.get("status") or {}
    allocatable = status.get("allocatable") or status.get("capacity") or {}
    images: dict[str, int] = {}
    for image in status.get("images") or []:
        for name in image.get("names") or []:
            images[name] = int(image.get("sizeBytes") or 0)
    return NodeInfo(
        name=meta["name"],
        resource_version=meta.get("resourceVersion", ""),
        labels=dict(meta.get("labels") or {}),
        taints=tuple(
            Taint(t.get("key", ""), t.get("value", ""), t.get("effect", ""))
            for t in spec.get("taints") or []
        ),
        unschedulable=bool(spec.get("unschedulable")),
        allocatable={k: resource_amount(k, v) for k, v in allocatable.items()},
        images=images,
    )


def compile_pod(obj: JSON) -> PodInfo:
    """Compile a Pod; raises InvalidObject naming the field when the spec is malformed."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec") or {}, obj.get("status") or {}
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required_terms, preferred_terms = node_affinity_terms(affinity, "spec.affinity.nodeAffinity")
    pod = PodInfo(
        uid=meta.get("uid", ""),
        namespace=meta.get("namespace", "default"),
        name=meta.get("name", ""),
        resource_version=meta.get("resourceVersion", ""),
        scheduler_name=spec.get("schedulerName") or "default-scheduler",
        node_name=spec.get("nodeName") or "",
        nominated_node_name=status.get("nominatedNodeName") or "",
        priority=int(spec.get("priority") or 0),
        created=meta.get("creationTimestamp") or "",
        phase=status.get("phase") or "",
        deleting=bool(meta.get("deletionTimestamp")),
        requests=pod_requests(spec),
        nonzero_requests=pod_nonzero_requests(spec),
        node_selector=dict(spec.get("nodeSelector") or {}),
        required_terms=required_terms,
        preferred_terms=preferred_terms,
        tolerations=tuple(
            Toleration(
                t.get("key", ""),
                t.get("operator") or "Equal",
                t.get("value", ""),
                t.get("effect", ""),
            )
            for t in spec.get("tolerations") or []
        ),
        gates=tuple(g.get("name", "") for g in spec.get("schedulingGates") or []),
        labels=dict(meta.get("labels") or {}),
        raw=obj,
    )
    pod.spread_constraints = spread_constraints(spec)
    pod.controller = controller_ref(meta)
    pod.pod_affinity = pod_affinity(spec, pod.namespace, pod.labels)
    pod.host_ports = host_ports(spec)
    pod.images = container_images(spec)
    pod.volumes = pod_volumes(pod.name, spec)
    pod.class_key = _class_key(pod, spec)
    return pod


def node_affinity_terms(
    affinity: JSON, path: str
) -> tuple[tuple[SelectorTerm, ...] | None, tuple[PreferredTerm, ...]]:
    """Compile a NodeAffinity object: (required terms or None, preferred terms)."""
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    preferred = affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    try:
        required_terms = (
            None
            if required is None
            else tuple(_term(t) for t in required.get("nodeSelectorTerms") or [])
        )
        preferred_terms = tuple(
            PreferredTerm(int(p.get("weight", 0)), _term(p.get("preference") or {}))
            for p in preferred
        )
    except (TypeError, ValueError, AttributeError) as err:
        raise InvalidObject(f"{path}: {err}") from err
    return required_terms, preferred_terms


def pod_requests(spec: JSON) -> dict[str, int]:
    """Effective pod requests, as upstream's resource helpers compute them.

    max(sum of app containers + restartable (sidecar) init containers,
        each regular init container + the sidecars started before it), plus pod overhead.
    """
    total = _aggregate(spec, {})
    total[PODS] = 1
    return total


def pod_nonzero_requests(spec: JSON) -> tuple[int, int]:
    """(milli-CPU, memory bytes) for scoring: like pod_requests, but every container that does
    not request cpu (memory) counts as 100m (200Mi), as upstream's NonMissingContainerRequests
    does per container (a pod without containers adds nothing but its overhead)."""
    total = _aggregate(spec, {CPU: DEFAULT_MILLI_CPU, MEMORY: DEFAULT_MEMORY})
    return total.get(CPU, 0), total.get(MEMORY, 0)


def _aggregate(spec: JSON, missing: dict[str, int]) -> dict[str, int]:
    """Containers, sidecars, init containers and overhead, combined the upstream way;
    `missing` fills in resources a container does not request at all (explicit 0 stays 0)."""

    def requests(container: JSON, path: str) -> dict[str, int]:
        raw = (container.get("resources") or {}).get("requests") or {}
        try:
            out = {k: resource_amount(k, v) for k, v in raw.items()}
        except InvalidObject as err:
            raise InvalidObject(f"{path}.resources.requests: {err}") from err
        for name, amount in missing.items():
            out.setdefault(name, amount)
        return out

    total: dict[str, int] = {}
    for i, c in enumerate(spec.get("containers") or []):
        _add(total, requests(c, f"spec.containers[{i}]"))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for i, c in enumerate(spec.get("initContainers") or []):
        req = requests(c, f"spec.initContainers[{i}]")
        if c.get("restartPolicy") == "Always":
            _add(sidecars, req)
            _add(total, req)
        else:
            during = dict(sidecars)
            _add(during, req)
            for k, v in during.items():
                init_peak[k] = max(init_peak.get(k, 0), v)
    for k, v in init_peak.items():
        total[k] = max(total.get(k, 0), v)
    overhead = spec.get("overhead") or {}
    _add(total, {k: resource_amount(k, v) for k, v in overhead.items()})
    return total


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _term(raw: JSON) -> SelectorTerm:
    def reqs(items: list[JSON] | None) -> tuple[Requirement, ...]:
        out = []
        for r in items or []:
            op = r.get("operator", "")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"):
                raise ValueError(f"unknown operator {op!r}")
            out.append(Requirement(r.get("key", ""), op, tuple(r.get("values") or ())))
        return tuple(out)

    return SelectorTerm(reqs(raw.get("matchExpressions")), reqs(raw.get("matchFields")))


def _class_key(pod: PodInfo, spec: JSON) -> tuple[Any, ...]:
    """Pods with equal keys are interchangeable for Filter and Score (equivalence class)."""
    return (
        pod.scheduler_name,
        pod.priority,
        tuple(sorted(pod.requests.items())),
        pod.nonzero_requests,
        tuple(sorted(pod.node_selector.items())),
        pod.required_terms,
        pod.preferred_terms,
        pod.tolerations,
        pod.nominated_node_name,
        # Spread counts pods of the namespace by label, and the pod's own labels self-match.
        pod.spread_constraints
        and (pod.spread_constraints, pod.namespace, tuple(sorted(pod.labels.items()))),
        # Inter-pod affinity terms (their namespaces default to the pod's own).
        pod.pod_affinity,
        pod.host_ports,
        pod.images,
        # Claims are namespaced: the same claim name elsewhere is another volume.
        pod.volumes and (pod.volumes, pod.namespace),
    )


def requirement_matches(req: Requirement, value: str | None) -> bool:
    """Does a label (or field) value satisfy one requirement? None = label absent."""
    op = req.operator
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if value is None or len(req.values) != 1:
        return False
    have, want = _go_int64(value), _go_int64(req.values[0])
    if have is None or want is None:
        return False
    return have > want if op == "Gt" else have < want


_INT64 = re.compile(r"[+-]?[0-9]+")


def _go_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), which labels.Requirement uses for Gt/Lt: no spaces,
    no underscores, within int64 (Python's int() accepts all three)."""
    if not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


# --- pod disruption budgets (DefaultPreemption) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class DisruptionBudget:
    """The parts of a policy/v1 PodDisruptionBudget preemption reads: whom it covers, and how
    many more disruptions its status allows (pods in `disrupted` are already counted)."""

    namespace: str
    name: str
    selector: LabelSelector
    disruptions_allowed: int
    disrupted: frozenset[str] = frozenset()

    def covers(self, pod: PodInfo) -> bool:
        """Upstream: a nil or empty selector matches nothing; a pod without labels matches none."""
        if pod.namespace != self.namespace or not pod.labels:
            return False
        if self.selector.nothing or not self.selector.requirements:
            return False
        return self.selector.matches(pod.labels)


def compile_pdb(obj: JSON) -> DisruptionBudget:
    """Compile a PodDisruptionBudget; an invalid selector matches nothing, as upstream."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec") or {}, obj.get("status") or {}
    try:
        selector = label_selector(spec.get("selector"), "spec.selector")
    except InvalidObject:
        selector = LabelSelector(nothing=True)
    return DisruptionBudget(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        selector=selector,
        disruptions_allowed=int(status.get("disruptionsAllowed") or 0),
        disrupted=frozenset(status.get("disruptedPods") or {}),
    )
