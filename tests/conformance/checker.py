"""An independent checker of placements, written from the Kubernetes documentation's
definitions (Resource Management for Pods, Assigning Pods to Nodes, Taints and Tolerations, Pod
Topology Spread Constraints, Persistent Volumes, Dynamic Resource Allocation). It deliberately
imports nothing from berth, so that a bug shared by berth's plugins and this file would have to
be written twice.

`violations()` checks the hard rules of a final cluster state (with `Claimed`, also what the
pods' volume and device claims got: claim_checker.py); `soft_quality()` measures how well the
soft rules were met, for comparing two schedulers' results.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conformance.claim_checker import Claimed

JSON = dict[str, Any]

_SUFFIX: dict[str, int | Decimal] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip


def quantity(text: str | int) -> Decimal:
    """A resource.Quantity as an exact decimal ("100m" -> 0.1, "1Gi" -> 1073741824)."""
    m = re.fullmatch(r"([+-]?[0-9.]+)([eE][+-]?[0-9]+)?([A-Za-z]*)", str(text))
    if not m:
        raise ValueError(f"bad quantity {text!r}")
    number = Decimal(m.group(1) + (m.group(2) or ""))
    return number * Decimal(_SUFFIX[m.group(3)])


@dataclass(frozen=True)
class Placed:
    """A pod of the final state and the node it was bound to (None: pending)."""

    pod: JSON
    node: str | None

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.pod["metadata"].get("labels") or {})


def requests(pod: JSON) -> dict[str, Decimal]:
    """Effective requests: max(sum over containers, each init container) plus overhead."""
    spec = pod["spec"]
    total: dict[str, Decimal] = defaultdict(Decimal)
    for c in spec.get("containers", []):
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] += quantity(v)
    for c in spec.get("initContainers", []):
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] = max(total[k], quantity(v))
    for k, v in (spec.get("overhead") or {}).items():
        total[k] += quantity(v)
    total["pods"] = Decimal(1)
    return dict(total)


# --- label selectors and node selectors ---------------------------------------------------


def label_selector_matches(selector: JSON | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector: nil selects nothing; {} selects everything."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _node_expr(e: JSON, labels: dict[str, str]) -> bool:
    key, op, values = e["key"], e["operator"], e.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        try:
            have, want = int(labels[key]), int(values[0])
        except (KeyError, ValueError):
            return False
        return have > want if op == "Gt" else have < want
    raise ValueError(f"unknown operator {op}")


def node_selector_term_matches(term: JSON, node: JSON) -> bool:
    """A NodeSelectorTerm: its expressions (and fields) are ANDed; an empty term matches none."""
    labels = node["metadata"].get("labels") or {}
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    for f in fields:
        if not _node_expr(f, {"metadata.name": node["metadata"]["name"]}):
            return False
    return all(_node_expr(e, labels) for e in exprs)


def matches_node_affinity(pod: JSON, node: JSON) -> bool:
    """nodeSelector AND required node affinity (its terms ORed)."""
    labels = node["metadata"].get("labels") or {}
    for k, v in (pod["spec"].get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is None:
        return True
    return any(node_selector_term_matches(t, node) for t in required.get("nodeSelectorTerms", []))


# --- taints --------------------------------------------------------------------------------


def tolerates(toleration: JSON, taint: JSON) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    key = toleration.get("key", "")
    op = toleration.get("operator") or "Equal"
    if not key:
        return op == "Exists"
    if key != taint["key"]:
        return False
    if op == "Exists":
        return True
    return str(toleration.get("value", "")) == str(taint.get("value", ""))


def untolerated(pod: JSON, node: JSON, effects: tuple[str, ...]) -> list[JSON]:
    tolerations = pod["spec"].get("tolerations") or []
    return [
        t
        for t in (node["spec"].get("taints") or [])
        if t["effect"] in effects and not any(tolerates(tol, t) for tol in tolerations)
    ]


# --- host ports ----------------------------------------------------------------------------


def host_ports(pod: JSON) -> list[tuple[str, str, int]]:
    """Ports of the app containers and of the sidecars (restartable init containers), which
    run as long as the pod; an empty hostIP is every address, as upstream."""
    spec = pod["spec"]
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    out = []
    for c in (*sidecars, *spec.get("containers", [])):
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(
                    (p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", p["hostPort"])
                )
    return out


def _ports_conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    if a[1:] != b[1:]:
        return False
    return a[0] == b[0] or "0.0.0.0" in (a[0], b[0])


# --- inter-pod affinity --------------------------------------------------------------------


def _term_selects(term: JSON, owner: JSON, other: JSON) -> bool:
    """Does a PodAffinityTerm of `owner` select `other`? Namespaces default to the owner's; a
    namespaceSelector is taken as {} (all namespaces), the only one the scenarios use."""
    namespaces = term.get("namespaces") or []
    ns = other["metadata"].get("namespace")
    owner_ns = owner["metadata"].get("namespace")
    if term.get("namespaceSelector") is None and ns not in (namespaces or [owner_ns]):
        return False
    return label_selector_matches(term.get("labelSelector"), other["metadata"].get("labels") or {})


def _required_terms(pod: JSON, kind: str) -> list[JSON]:
    a = (pod["spec"].get("affinity") or {}).get(kind) or {}
    return list(a.get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def _preferred_terms(pod: JSON, kind: str) -> list[JSON]:
    a = (pod["spec"].get("affinity") or {}).get(kind) or {}
    return list(a.get("preferredDuringSchedulingIgnoredDuringExecution") or [])


def _same_domain(nodes: dict[str, JSON], a: str, b: str, key: str) -> bool:
    la = nodes[a]["metadata"].get("labels") or {}
    lb = nodes[b]["metadata"].get("labels") or {}
    return key in la and key in lb and la[key] == lb[key]


# --- topology spread -----------------------------------------------------------------------


def _spread_counts(
    constraint: JSON, pod: JSON, placed: list[Placed], nodes: dict[str, JSON]
) -> tuple[dict[str, int], int]:
    """Matching pods per domain over the eligible nodes (nodeAffinityPolicy Honor and
    nodeTaintsPolicy Ignore, the defaults), and the number of eligible domains."""
    key = constraint["topologyKey"]
    honor_affinity = constraint.get("nodeAffinityPolicy", "Honor") == "Honor"
    honor_taints = constraint.get("nodeTaintsPolicy", "Ignore") == "Honor"
    counts: dict[str, int] = {}
    for name, node in nodes.items():
        labels = node["metadata"].get("labels") or {}
        if key not in labels:
            continue
        if honor_affinity and not matches_node_affinity(pod, node):
            continue
        if honor_taints and untolerated(pod, node, ("NoSchedule", "NoExecute")):
            continue
        counts.setdefault(labels[key], 0)
        del name
    selector = constraint.get("labelSelector")
    own = pod["metadata"].get("labels") or {}
    if selector is not None and constraint.get("matchLabelKeys"):
        # matchLabelKeys: the pod's own values for those keys are ANDed into the selector.
        extra = [
            {"key": k, "operator": "In", "values": [own[k]]}
            for k in constraint["matchLabelKeys"]
            if k in own
        ]
        selector = {
            **selector,
            "matchExpressions": [*(selector.get("matchExpressions") or []), *extra],
        }
    ns = pod["metadata"].get("namespace")
    for p in placed:
        if p.node is None or p.pod["metadata"].get("namespace") != ns:
            continue
        value = (nodes[p.node]["metadata"].get("labels") or {}).get(key)
        if value in counts and label_selector_matches(selector, p.labels):
            counts[value] += 1
    return counts, len(counts)


def _spread_constraints(pod: JSON, when: str) -> list[JSON]:
    return [
        c
        for c in pod["spec"].get("topologySpreadConstraints") or []
        if c.get("whenUnsatisfiable", "DoNotSchedule") == when
    ]


# --- the checks ----------------------------------------------------------------------------


def violations(
    nodes_list: list[JSON], placed: list[Placed], claimed: Claimed | None = None
) -> list[str]:
    """Every hard rule that the final state breaks, as readable lines (empty: all good); with
    `claimed`, also the rules of the bound pods' volume and device claims.

    Spread and anti-affinity are checked on the final state, which is sound for the scenarios
    here: every pod a constraint's selector matches carries that same constraint (so each
    placement kept the domain it joined within min + maxSkew, and the minimum never drops)."""
    nodes = {n["metadata"]["name"]: n for n in nodes_list}
    out: list[str] = []
    by_node: dict[str, list[Placed]] = defaultdict(list)
    for p in placed:
        if p.node is None:
            continue
        if p.node not in nodes:
            out.append(f"{p.name}: bound to unknown node {p.node}")
            continue
        by_node[p.node].append(p)

    for name, pods in by_node.items():
        node = nodes[name]
        allocatable = {k: quantity(v) for k, v in node["status"]["allocatable"].items()}
        used: dict[str, Decimal] = defaultdict(Decimal)
        for p in pods:
            for k, v in requests(p.pod).items():
                used[k] += v
        for k, v in used.items():
            if v > allocatable.get(k, Decimal(0)) and v > 0:
                out.append(f"{name}: {k} requested {v} > allocatable {allocatable.get(k, 0)}")
        seen: list[tuple[str, tuple[str, str, int]]] = []
        for p in pods:
            for port in host_ports(p.pod):
                for other, other_port in seen:
                    if _ports_conflict(port, other_port):
                        out.append(f"{name}: host port {port} of {p.name} clashes with {other}")
                seen.append((p.name, port))

    for p in placed:
        if p.node is None or p.node not in nodes:
            continue
        node = nodes[p.node]
        if not matches_node_affinity(p.pod, node):
            out.append(f"{p.name}: node {p.node} fails nodeSelector / required node affinity")
        if bad := untolerated(p.pod, node, ("NoSchedule", "NoExecute")):
            out.append(f"{p.name}: node {p.node} has untolerated taints {bad}")
        if node["spec"].get("unschedulable"):
            out.append(f"{p.name}: node {p.node} is unschedulable")
        for c in _spread_constraints(p.pod, "DoNotSchedule"):
            key = c["topologyKey"]
            value = (node["metadata"].get("labels") or {}).get(key)
            if value is None:
                out.append(f"{p.name}: node {p.node} lacks spread key {key}")
                continue
            counts, domains = _spread_counts(c, p.pod, placed, nodes)
            floor = 0 if domains < (c.get("minDomains") or 1) else min(counts.values())
            if counts.get(value, 0) - floor > c["maxSkew"]:
                out.append(
                    f"{p.name}: spread on {key} has {counts.get(value)} in {value}, "
                    f"minimum {floor}, maxSkew {c['maxSkew']} ({counts})"
                )
        for term in _required_terms(p.pod, "podAffinity"):
            key = term["topologyKey"]
            if key not in (node["metadata"].get("labels") or {}):
                out.append(f"{p.name}: node {p.node} lacks affinity key {key}")
                continue
            partners = [
                q
                for q in placed
                if q is not p
                and q.node
                and _term_selects(term, p.pod, q.pod)
                and _same_domain(nodes, p.node, q.node, key)
            ]
            # The first pod of a group whose affinity selects itself may go anywhere.
            if not partners and not _term_selects(term, p.pod, p.pod):
                out.append(f"{p.name}: no pod for required affinity in its {key} domain")
        for term in _required_terms(p.pod, "podAntiAffinity"):
            key = term["topologyKey"]
            for q in placed:
                if q is p or not q.node or not _term_selects(term, p.pod, q.pod):
                    continue
                if _same_domain(nodes, p.node, q.node, key):
                    out.append(f"{p.name}: anti-affinity violated by {q.name} on {key}")
    if claimed is not None:
        # The claims' rules live beside (claim_checker.py), which builds on this module.
        from tests.conformance.claim_checker import claim_violations

        out += claim_violations(nodes, placed, claimed)
    return out


@dataclass(frozen=True)
class SoftQuality:
    """Higher `preferred` is better; lower `skew` and `prefer_no_schedule` are better."""

    preferred: int  # satisfied weights: preferred node affinity + preferred pod (anti-)affinity
    skew: int  # sum over ScheduleAnyway constraints of each group's final skew
    prefer_no_schedule: int  # pods on nodes with an untolerated PreferNoSchedule taint


def soft_quality(nodes_list: list[JSON], placed: list[Placed]) -> SoftQuality:
    nodes = {n["metadata"]["name"]: n for n in nodes_list}
    preferred = 0
    prefer_no_schedule = 0
    skews: dict[str, int] = {}
    for p in placed:
        if p.node is None:
            continue
        node = nodes[p.node]
        na = (p.pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}
        for pref in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
            if node_selector_term_matches(pref["preference"], node):
                preferred += int(pref["weight"])
        for kind in ("podAffinity", "podAntiAffinity"):
            for wt in _preferred_terms(p.pod, kind):
                term = wt["podAffinityTerm"]
                hit = any(
                    q is not p
                    and q.node
                    and _term_selects(term, p.pod, q.pod)
                    and _same_domain(nodes, p.node, q.node, term["topologyKey"])
                    for q in placed
                )
                if hit == (kind == "podAffinity"):
                    preferred += int(wt["weight"])
        if untolerated(p.pod, node, ("PreferNoSchedule",)):
            prefer_no_schedule += 1
        for c in _spread_constraints(p.pod, "ScheduleAnyway"):
            counts, _ = _spread_counts(c, p.pod, placed, nodes)
            if counts:
                ident = f"{c['topologyKey']}/{c.get('labelSelector')}"
                skews[ident] = max(counts.values()) - min(counts.values())
    return SoftQuality(preferred, sum(skews.values()), prefer_no_schedule)
