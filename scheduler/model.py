"""Compiled, slotted views of Pods and Nodes, built once per object version from raw JSON.

The informer hands us orjson-parsed dicts. Everything the scheduler asks of an object on the hot
path (requests as integers, tolerations, affinity terms, labels) is computed here once, so the
scheduling cycle never walks raw JSON again.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from scheduler import features
from scheduler.declared_features import REGISTRY as DECLARED_FEATURES

# Selectors live in scheduler.labels; the model re-exports them, as plugins import them here.
from scheduler.labels import LabelSelector as LabelSelector
from scheduler.labels import Requirement as Requirement
from scheduler.labels import SelectorError, parse_label_selector
from scheduler.labels import requirement_matches as requirement_matches

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


INT64_MAX = 2**63 - 1


class InvalidObject(ValueError):
    """A Pod or Node whose spec cannot be understood (the message names the field)."""


def parse_quantity(value: str | int | float, *, milli: bool = False) -> int:
    """A Kubernetes resource quantity as an integer (rounded up, as the API server does).

    `milli=True` returns thousandths (CPU is kept in millicores).
    """
    number = parse_quantity_decimal(value)
    if milli:
        number *= 1000
    whole = int(number.to_integral_value(rounding="ROUND_CEILING"))
    # Capped at int64, as the scheduler's resource arithmetic is: a request of "1e18" CPU
    # (1e21 millicores) fits nowhere instead of overflowing the NodeTable's int64 columns.
    return max(-INT64_MAX, min(whole, INT64_MAX))


def parse_quantity_decimal(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity, exactly ("1.5Gi" -> Decimal('1610612736.0')).

    Raises InvalidObject naming the value when it is not a quantity."""
    if isinstance(value, bool):
        raise InvalidObject(f"quantity {value!r} is not a number")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.fullmatch(value.strip())
    if not match:
        raise InvalidObject(f"quantity {value!r} is not a valid Kubernetes quantity")
    mantissa, exponent, suffix = match.groups()
    try:
        if exponent is not None:
            return Decimal(mantissa).scaleb(int(exponent))
        return Decimal(mantissa) * Decimal(str(_SUFFIX[suffix]))
    except InvalidOperation as err:
        raise InvalidObject(f"quantity {value!r} is not a valid Kubernetes quantity") from err


def is_scalar_resource(name: str) -> bool:
    """Upstream's IsScalarResourceName: extended ("example.com/gpu"), kubernetes.io-prefixed,
    hugepages-* and attachable-volumes-* resources. Scoring skips those a pod does not request."""
    return "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))


def resource_amount(name: str, value: str | int | float) -> int:
    """CPU in millicores, everything else in whole units (bytes, pods, devices)."""
    if isinstance(value, str):
        return _text_amount(value, name == CPU)
    return parse_quantity(value, milli=(name == CPU))


@functools.lru_cache(maxsize=8192)
def _text_amount(value: str, milli: bool) -> int:
    """parse_quantity for the few distinct texts a cluster's pods and nodes repeat ("100m",
    "64Mi"): every pod version is compiled, and Decimal arithmetic is most of its cost."""
    return parse_quantity(value, milli=milli)


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # Equal (also for an absent operator) | Exists | Lt | Gt
    value: str
    effect: str  # "" = all effects

    def tolerates(self, taint: Taint) -> bool:
        """Upstream's Toleration.ToleratesTaint with the default gates (k8s.io/api v0.37)."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        if self.operator == "Equal":
            return self.value == taint.value
        # Lt and Gt compare numbers only with TaintTolerationComparisonOperators (alpha, off in
        # v1.37); with the gate off they tolerate nothing, as does any unknown operator.
        if self.operator in ("Lt", "Gt") and features.enabled("TaintTolerationComparisonOperators"):
            return _compare_numbers(self.value, taint.value, self.operator)
        return False


_DECIMAL_INTEGER = re.compile(r"(0|-?[1-9][0-9]*)")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _compare_numbers(toleration: str, taint: str, operator: str) -> bool:
    """k8s.io/api's compareNumericValues: both must be decimal int64s (no sign on 0, no
    leading zeros); Lt tolerates a taint below the toleration's value, Gt one above it."""
    values = []
    for text in (toleration, taint):
        if not _DECIMAL_INTEGER.fullmatch(text) or not _INT64_MIN <= int(text) <= _INT64_MAX:
            return False
        values.append(int(text))
    want, have = values
    return have < want if operator == "Lt" else have > want


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


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
    """Compile a metav1.LabelSelector (scheduler.labels); raises InvalidObject naming every
    malformed field."""
    try:
        return parse_label_selector(raw, path)
    except SelectorError as err:
        raise InvalidObject(str(err)) from err


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
    """A container port with a hostPort, sanitized as upstream's HostPortInfo: an empty
    hostIP is 0.0.0.0 (every address) and an empty protocol TCP. "::" stays "::": upstream
    compares it as one more address, not as a wildcard."""

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
    """Upstream's GetHostPorts: the ports with hostPort > 0 of the restartable (sidecar) init
    containers, which run as long as the pod, then of the app containers. Other init
    containers have exited before the app starts, so their ports are not held."""
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    out = []
    for c in (*sidecars, *(spec.get("containers") or [])):
        for p in c.get("ports") or []:
            port = int(p.get("hostPort") or 0)
            if port > 0:
                ip = p.get("hostIP") or "0.0.0.0"
                out.append(HostPort(p.get("protocol") or "TCP", ip, port))
    return tuple(out)


def pod_images(spec: JSON) -> tuple[str, ...]:
    """The pod's image sources as ImageLocality counts them (v1.37): init and app container
    images, then image volumes (spec.volumes[].image.reference), one entry per source, so
    len() is upstream's image count. Normalized as ImageLocality compares them: a name
    without a tag gets ":latest"."""
    names = [c.get("image") or "" for c in spec.get("initContainers") or []]
    names += [c.get("image") or "" for c in spec.get("containers") or []]
    for volume in spec.get("volumes") or []:
        if (source := volume.get("image")) is not None:
            names.append(source.get("reference") or "")
    out = []
    for image in names:
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
    # Effective requests, as upstream's PodInfo.CalculateResource: containers, init containers
    # and sidecars, pod-level requests (spec.resources), in-place resize state, overhead.
    requests: dict[str, int]
    node_selector: dict[str, str]
    required_terms: tuple[SelectorTerm, ...] | None  # None = no required node affinity
    preferred_terms: tuple[PreferredTerm, ...]
    tolerations: tuple[Toleration, ...]
    gates: tuple[str, ...]
    labels: dict[str, str]
    raw: JSON = field(repr=False)
    class_key: tuple[Any, ...] = ()
    # (milli-CPU, memory) with upstream's defaults for requests not set (Non0CPU / Non0Mem):
    # what the pod adds to its node's non-zero requested, which scoring reads.
    nonzero_requests: tuple[int, int] = (0, 0)
    # (milli-CPU, memory) NodeResourcesFit scores the pod itself with: the per-container
    # defaults even where pod-level requests are set (upstream's scorer asks PodRequests with
    # NonMissingContainerRequests, not CalculateResource). Equals nonzero_requests otherwise.
    scoring_requests: tuple[int, int] = (0, 0)
    spread_constraints: tuple[SpreadConstraint, ...] = ()  # spec.topologySpreadConstraints
    controller: OwnerRef | None = None  # for PodTopologySpread's default selector
    pod_affinity: PodAffinity | None = None  # spec.affinity.podAffinity/podAntiAffinity
    host_ports: tuple[HostPort, ...] = ()  # NodePorts
    images: tuple[str, ...] = ()  # ImageLocality: normalized, one per container/image volume
    volumes: tuple[PodVolume, ...] = ()  # the volume plugins
    resource_claims: tuple[str, ...] = ()  # DynamicResources: spec.resourceClaims[].name
    claim_refs: tuple[PodClaimRef, ...] = ()  # the same, resolved to ResourceClaim names
    # NodeDeclaredFeatures: the features the pod needs its node to declare, as a feature set
    # (bits over DECLARED_FEATURES.names); 0 for nearly every pod.
    required_features: int = 0
    # The PodGroup it belongs to, as (API group, name) in its namespace: upstream's
    # spec.schedulingGroup.podGroupName (scheduling.k8s.io), or scheduler-plugins' label
    # (scheduling.x-k8s.io). None for most pods.
    pod_group: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(slots=True)
class NodeInfo:
    """The scheduling-relevant parts of one Node version. Read-only: compile_node shares the
    allocatable and images dicts between nodes (never mutate them; compile a new version)."""

    name: str
    resource_version: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    allocatable: dict[str, int]
    images: dict[str, int] = field(default_factory=dict)  # image name -> size in bytes
    declared_features: tuple[str, ...] = ()  # status.declaredFeatures, as listed
    # The declared features the registry knows, as a feature set (bits over
    # DECLARED_FEATURES.names): what NodeDeclaredFeatures matches against.
    feature_set: int = 0

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
            and self.declared_features == other.declared_features
        )


# --- compilation -------------------------------------------------------------------------


def compile_node(obj: JSON) -> NodeInfo:
    """Compile a Node. Nodes of one shape share their allocatable dict, and nodes without
    images one empty images dict: a NodeInfo is read-only, and a million nodes' copies of
    the same few dicts would cost hundreds of megabytes (docs/performance.md)."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec") or {}, obj.get("status") or {}
    name = meta["name"]
    raw_labels = meta.get("labels") or {}
    # Label values repeat across nodes (zone, os, instance type) but arrive as separate
    # strings from the JSON decoder: interned, the nodes share one of each. The hostname
    # label, unique per node, usually equals the name and shares that string instead.
    intern = sys.intern
    labels = {
        k: name if v == name else intern(v) if type(v) is str else v for k, v in raw_labels.items()
    }
    taints = spec.get("taints")
    images_raw = status.get("images")
    if images_raw:
        images: dict[str, int] = {}
        for image in images_raw:
            for image_name in image.get("names") or []:
                images[image_name] = int(image.get("sizeBytes") or 0)
    else:
        images = _NO_IMAGES
    declared = tuple(status.get("declaredFeatures") or ())
    return NodeInfo(
        name=name,
        resource_version=meta.get("resourceVersion", ""),
        labels=labels,
        taints=tuple(
            Taint(t.get("key", ""), t.get("value", ""), t.get("effect", "")) for t in taints
        )
        if taints
        else (),
        unschedulable=bool(spec.get("unschedulable")),
        allocatable=_allocatable(status.get("allocatable") or status.get("capacity") or {}),
        images=images,
        declared_features=declared,
        feature_set=DECLARED_FEATURES.declared(declared) if declared else 0,
    )


# Shared by every NodeInfo without images; never mutated (NodeInfo is read-only).
_NO_IMAGES: dict[str, int] = {}
# Raw allocatable (as items) -> the parsed dict, shared by the nodes of that shape.
_ALLOCATABLE: dict[tuple[tuple[str, Any], ...], dict[str, int]] = {}
_ALLOCATABLE_MAX = 4096  # distinct node shapes kept; a cluster has a few dozen


def _allocatable(raw: JSON) -> dict[str, int]:
    """status.allocatable parsed (resource_amount per entry), one shared dict per distinct
    raw value. Raises InvalidObject naming the quantity."""
    try:
        key = tuple(raw.items())
        known = _ALLOCATABLE.get(key)
    except TypeError:  # an unhashable value (a list where a quantity belongs): parse to fail
        key, known = (), None
    if known is not None:
        return known
    parsed = {k: resource_amount(k, v) for k, v in raw.items()}
    # Only the API's form, all strings, is kept: a kept key then never equals a raw value with
    # numbers in it (True == 1 would hand a boolean quantity the parse of 1).
    if key and all(type(v) is str for v in raw.values()):
        if len(_ALLOCATABLE) >= _ALLOCATABLE_MAX:
            _ALLOCATABLE.clear()
        _ALLOCATABLE[key] = parsed
    return parsed


def compile_pod(obj: JSON) -> PodInfo:
    """Compile a Pod; raises InvalidObject naming the field when the spec is malformed."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec") or {}, obj.get("status") or {}
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required_terms, preferred_terms = node_affinity_terms(affinity, "spec.affinity.nodeAffinity")
    # The status counts once the pod is on a node (in-place resize); for a pod being
    # scheduled upstream's PreFilter reads the spec alone, and only a kubelet writes it.
    effective = effective_requests(spec, status if spec.get("nodeName") else None)
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
        requests=effective.requests,
        nonzero_requests=effective.nonzero,
        scoring_requests=effective.scoring,
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
    pod.images = pod_images(spec)
    pod.volumes = pod_volumes(pod.name, spec)
    pod.resource_claims = tuple(c.get("name", "") for c in spec.get("resourceClaims") or [])
    if pod.resource_claims:
        pod.claim_refs = claim_refs(pod.namespace, pod.name, spec, obj.get("status") or {})
    pod.required_features = DECLARED_FEATURES.required(spec)
    pod.pod_group = pod_group_of(spec, pod.labels)
    pod.class_key = _class_key(pod, spec)
    return pod


@dataclass(frozen=True, slots=True)
class PodClaimRef:
    """One spec.resourceClaims entry, resolved as upstream's resourceclaim.Name: the claim it
    names directly, or the one the ResourceClaim controller generated from its template (from
    status.resourceClaimStatuses; `from_template`: the claim must be owned by the pod).
    `claim` "" with no `problem`: the controller decided no claim is needed. `problem`: why
    the claim cannot be known yet (upstream's error text)."""

    name: str
    claim: str = ""
    from_template: bool = False
    problem: str = ""


def claim_refs(namespace: str, name: str, spec: JSON, status: JSON) -> tuple[PodClaimRef, ...]:
    """The pod's claims by ResourceClaim name (PodInfo.claim_refs)."""
    generated = {
        s.get("name"): s.get("resourceClaimName") for s in status.get("resourceClaimStatuses") or []
    }
    refs = []
    for entry in spec.get("resourceClaims") or []:
        ref = str(entry.get("name") or "")
        if entry.get("resourceClaimName"):
            refs.append(PodClaimRef(ref, str(entry["resourceClaimName"])))
        elif entry.get("resourceClaimTemplateName"):
            if ref not in generated:
                problem = f'pod "{namespace}/{name}": ResourceClaim not created yet'
                refs.append(PodClaimRef(ref, from_template=True, problem=problem))
            else:
                refs.append(PodClaimRef(ref, str(generated[ref] or ""), from_template=True))
        else:
            problem = (
                f'pod "{namespace}/{name}", spec.resourceClaim "{ref}":'
                " none of the supported fields are set"
            )
            refs.append(PodClaimRef(ref, problem=problem))
    return tuple(refs)


def claim_statuses(obj: JSON) -> Any:
    """status.resourceClaimStatuses as the API has it (compared to spot the generated
    claims changing: upstream's UpdatePodGeneratedResourceClaim)."""
    return (obj.get("status") or {}).get("resourceClaimStatuses")


UPSTREAM_POD_GROUPS = "scheduling.k8s.io"
COSCHEDULING_POD_GROUPS = "scheduling.x-k8s.io"
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"


def pod_group_of(spec: JSON, labels: Mapping[str, str]) -> tuple[str, str] | None:
    """The pod's group: spec.schedulingGroup.podGroupName (v1.37's GenericWorkload) wins over
    scheduler-plugins' `scheduling.x-k8s.io/pod-group` label; raises InvalidObject when the
    field is not a non-empty string."""
    group = spec.get("schedulingGroup")
    if group is not None:
        name = group.get("podGroupName") if isinstance(group, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidObject("spec.schedulingGroup.podGroupName: must be a non-empty string")
        return (UPSTREAM_POD_GROUPS, name)
    label = labels.get(POD_GROUP_LABEL)
    return (COSCHEDULING_POD_GROUPS, label) if label else None


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


# --- effective requests (upstream's component-helpers resource.PodRequests) ----------------

# Upstream's schedutil.DefaultMilliCPURequest / DefaultMemoryRequest, by resource name.
_NON_MISSING = {CPU: DEFAULT_MILLI_CPU, MEMORY: DEFAULT_MEMORY}
_RESIZE_PENDING = "PodResizePending"
_INFEASIBLE = "Infeasible"


def is_pod_level_resource(name: str) -> bool:
    """Upstream's IsSupportedPodLevelResource: spec.resources (PodLevelResources) may set cpu,
    memory and hugepages of any page size; other names there are ignored."""
    return name in (CPU, MEMORY) or name.startswith("hugepages-")


@dataclass(frozen=True, slots=True)
class EffectiveRequests:
    """A pod's requests the three ways the scheduler reads them (see PodInfo's fields)."""

    requests: dict[str, int]  # with pods: 1
    nonzero: tuple[int, int]
    scoring: tuple[int, int]


@dataclass(slots=True)
class _Container:
    """One container's requests, parsed once: the spec's, and from its status (None where the
    status does not say) what the node allocated and what is actuated."""

    kind: int  # _APP, _INIT or _SIDECAR (a restartable init container)
    spec: dict[str, int]
    allocated: dict[str, int] | None
    actuated: dict[str, int] | None


_APP, _INIT, _SIDECAR = 0, 1, 2


@dataclass(slots=True)
class _Layout:
    """What PodRequests reads of one pod version, parsed once for all its variants.

    `status` is False when the status must not count (upstream's UseStatusResources off);
    then the status fields below are empty."""

    containers: tuple[_Container, ...]
    pod_level: dict[str, int]  # spec.resources.requests
    overhead: dict[str, int]
    pod_level_set: bool  # upstream's IsPodLevelRequestsSet
    status: bool = False
    infeasible: bool = False  # a PodResizePending condition with reason Infeasible
    from_containers: bool = False  # some container status has allocated or actuated requests
    pod_allocated: dict[str, int] | None = None  # status.allocatedResources
    pod_actuated: dict[str, int] | None = None  # status.resources.requests
    pod_status_resources: bool = False  # status.resources is set


def effective_requests(spec: JSON, status: JSON | None = None) -> EffectiveRequests:
    """The pod's requests as upstream's PodInfo.CalculateResource computes them with v1.37's
    default feature gates (PodLevelResources, InPlacePodVerticalScaling and
    InPlacePodLevelResourcesVerticalScaling on): `status` None leaves the status out.

    Per resource: max(sum of app containers and sidecars, each init container plus the sidecars
    started before it); with the status, the larger of what the spec asks, what the node has
    allocated and what is actuated (only the last two while a resize is infeasible); then the
    pod-level requests replace cpu, memory and hugepages where set; then the overhead."""
    layout = _layout(spec, status)
    requests = _pod_requests(layout, {})
    # Upstream's getNonMissingContainerRequests: without pod-level requests every container
    # missing cpu (memory) counts 100m (200Mi); with them, only a resource no level requests.
    if layout.pod_level_set:
        missing = {k: v for k, v in _NON_MISSING.items() if k not in requests}
    else:
        missing = _NON_MISSING
    non0 = _pod_requests(layout, missing) if missing else requests
    nonzero = (non0.get(CPU, 0), non0.get(MEMORY, 0))
    scoring = nonzero
    if layout.pod_level_set and missing != _NON_MISSING:
        scored = _pod_requests(layout, _NON_MISSING)
        scoring = (scored.get(CPU, 0), scored.get(MEMORY, 0))
    requests[PODS] = 1
    return EffectiveRequests(requests, nonzero, scoring)


def pod_requests(spec: JSON, status: JSON | None = None) -> dict[str, int]:
    """Effective pod requests (effective_requests().requests)."""
    return effective_requests(spec, status).requests


def pod_nonzero_requests(spec: JSON, status: JSON | None = None) -> tuple[int, int]:
    """(milli-CPU, memory bytes) for scoring: like pod_requests, but a container that does not
    request cpu (memory) counts as 100m (200Mi), as upstream's NonMissingContainerRequests does
    per container (a pod without containers adds nothing but its overhead)."""
    return effective_requests(spec, status).nonzero


def resize_state(status: JSON | None) -> tuple[Any, ...]:
    """The parts of a pod's status that its effective requests read (in-place resize): a
    status update that leaves them as they were changes no request."""
    status = status or {}

    def containers(field_name: str) -> list[tuple[Any, ...]]:
        return [
            (c.get("name"), c.get("allocatedResources"), (c.get("resources") or {}).get("requests"))
            for c in status.get(field_name) or []
        ]

    resize = [c for c in status.get("conditions") or [] if c.get("type") == _RESIZE_PENDING]
    return (
        status.get("allocatedResources"),
        status.get("resources"),
        containers("containerStatuses"),
        containers("initContainerStatuses"),
        resize[0].get("reason") if resize else None,
    )


def _amounts(raw: JSON | None, path: str) -> dict[str, int]:
    if not raw:
        return {}
    try:
        return {k: resource_amount(k, v) for k, v in raw.items()}
    except InvalidObject as err:
        raise InvalidObject(f"{path}: {err}") from err


def _maybe(raw: JSON | None, path: str) -> dict[str, int] | None:
    """Go's nil map: None for a field that is absent, as opposed to present and empty."""
    return None if raw is None else _amounts(raw, path)


def _layout(spec: JSON, status: JSON | None) -> _Layout:
    statuses: dict[str, tuple[str, JSON]] = {}  # container name -> (field path, status)
    if status is not None:
        # Upstream's findContainerStatus: app container statuses first, then init ones.
        for field_name in ("containerStatuses", "initContainerStatuses"):
            for i, cs in enumerate(status.get(field_name) or []):
                statuses.setdefault(cs.get("name", ""), (f"status.{field_name}[{i}]", cs))
    containers = []
    for field_name in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(field_name) or []):
            if field_name == "containers":
                kind = _APP
            else:
                kind = _SIDECAR if c.get("restartPolicy") == "Always" else _INIT
            requests = _amounts(
                (c.get("resources") or {}).get("requests"),
                f"spec.{field_name}[{i}].resources.requests",
            )
            allocated = actuated = None
            if (found := statuses.get(c.get("name", ""))) is not None:
                where, cs = found
                allocated = _maybe(cs.get("allocatedResources"), f"{where}.allocatedResources")
                actuated = _maybe(
                    (cs.get("resources") or {}).get("requests"), f"{where}.resources.requests"
                )
            containers.append(_Container(kind, requests, allocated, actuated))
    pod_level = _amounts((spec.get("resources") or {}).get("requests"), "spec.resources.requests")
    overhead = _amounts(spec.get("overhead"), "spec.overhead")
    level_set = any(is_pod_level_resource(name) for name in pod_level)
    if status is None:
        return _Layout(tuple(containers), pod_level, overhead, level_set)
    resize = next(
        (c for c in status.get("conditions") or [] if c.get("type") == _RESIZE_PENDING), None
    )
    resources = status.get("resources")
    return _Layout(
        tuple(containers),
        pod_level,
        overhead,
        level_set,
        status=True,
        infeasible=resize is not None and resize.get("reason") == _INFEASIBLE,
        from_containers=any(c.allocated is not None or c.actuated is not None for c in containers),
        pod_allocated=_maybe(status.get("allocatedResources"), "status.allocatedResources"),
        pod_actuated=_maybe((resources or {}).get("requests"), "status.resources.requests"),
        pod_status_resources=resources is not None,
    )


def _pod_requests(layout: _Layout, missing: dict[str, int]) -> dict[str, int]:
    """Upstream's PodRequests over a parsed pod; `missing` fills in, per container, resources
    it does not request at all (an explicit 0 stays 0)."""
    spec = _aggregate(layout.containers, lambda c: c.spec, missing)
    if not layout.status:
        total = spec
    else:
        infeasible = layout.infeasible
        if layout.pod_allocated is not None and layout.pod_actuated is not None:
            # The kubelet reports pod-level aggregates (InPlacePodLevelResourcesVerticalScaling).
            allocated, actuated = layout.pod_allocated, layout.pod_actuated
        elif not layout.from_containers and not infeasible:
            allocated = actuated = spec  # every fallback below is the spec
        else:

            def allocated_of(c: _Container) -> dict[str, int] | None:
                if c.allocated is not None:
                    return c.allocated
                return None if infeasible else c.spec

            def actuated_of(c: _Container) -> dict[str, int] | None:
                if c.actuated is not None:
                    return c.actuated
                return allocated_of(c)

            allocated = _aggregate(layout.containers, allocated_of, missing)
            actuated = _aggregate(layout.containers, actuated_of, missing)
        # A resize the node cannot make never happens: only what it has counts then.
        total = _max(actuated, allocated) if infeasible else _max(spec, actuated, allocated)
    if layout.pod_level_set:
        wanted: dict[str, int] | None = layout.pod_level
        if layout.status and layout.pod_status_resources:
            wanted = _max(
                None if layout.infeasible else layout.pod_level,
                layout.pod_actuated,
                layout.pod_allocated,
            )
        for name, amount in (wanted or {}).items():
            if is_pod_level_resource(name):
                total[name] = amount
    _add(total, layout.overhead)
    return total


def _aggregate(
    containers: Sequence[_Container],
    pick: Callable[[_Container], dict[str, int] | None],
    missing: dict[str, int],
) -> dict[str, int]:
    """Containers, sidecars and init containers combined the upstream way, each container's
    requests being pick(container) with `missing` filled in."""
    total: dict[str, int] = {}
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in containers:
        req = pick(c) or {}
        if missing:
            req = missing | req
        if c.kind == _APP:
            _add(total, req)
        elif c.kind == _SIDECAR:
            _add(sidecars, req)
            _add(total, req)
            _peak(init_peak, sidecars)
        else:
            during = dict(sidecars)
            _add(during, req)
            _peak(init_peak, during)
    _peak(total, init_peak)
    return total


def _max(*lists: dict[str, int] | None) -> dict[str, int]:
    """Per resource, the largest amount any of the lists has (None = an empty list)."""
    out: dict[str, int] = {}
    for amounts in lists:
        _peak(out, amounts or {})
    return out


def _peak(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        if k not in into or v > into[k]:
            into[k] = v


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def node_selector_terms(raw: JSON | None) -> tuple[SelectorTerm, ...] | None:
    """A v1.NodeSelector's terms (None when `raw` is None). Raises ValueError for an unknown
    operator."""
    if raw is None:
        return None
    return tuple(_term(t) for t in raw.get("nodeSelectorTerms") or [])


def term_matches(term: SelectorTerm, name: str, labels: Mapping[str, str]) -> bool:
    """One NodeSelectorTerm on one node (the field it may match is metadata.name); a term
    with no requirements matches nothing, as upstream's nodeaffinity."""
    if not term.expressions and not term.fields:
        return False
    return all(r.matches(labels) for r in term.expressions) and all(
        r.matches({"metadata.name": name}) for r in term.fields
    )


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
        pod.scoring_requests,
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
        pod.resource_claims,
        pod.required_features,
    )


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
