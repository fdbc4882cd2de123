"""What one run measured, and the numbers made of it (pure).

A run's raw record is `RunData`: for every pod, when the watch first saw it (created) and when
the watch first saw it with spec.nodeName (bound), all in seconds since the first create
request was sent. `summarize` turns it into the per-scheduler `Result` that bench.json carries,
`aggregate` takes the median of repeated runs, and `overcommitted` checks the placements
against the nodes' allocatable afterwards.

Definitions (the report repeats them):
- throughput: bound pods / seconds from the first create to the last bind;
- latency: per bound pod, from when it was created (the create request's answer, or the
  watch event that showed the pod, whichever came first) to the watch event that showed it
  bound;
- percentiles: nearest rank (the smallest value with at least p% of the values at or below it).

A run of gangs (the `gang` workload) also has `gangs` in its Result (GangFigures):
- groups placed: PodGroups with at least minCount members bound (the watch);
- groups per second: groups placed / seconds from the first create to the moment the last of
  them became placed (its minCount-th bind);
- quorum-to-bound latency, per placed group: from its quorum (when the watch or the create
  answer first showed its minCount-th member, i.e. when the scheduler could first place it
  whole) to its minCount-th member's bind as the watch showed it. The PodScheduled
  condition's lastTransitionTime would be the scheduler's own word, but it has one-second
  resolution and neither berth nor the null binder is bound to write it;
- partially bound: groups with 0 < bound members < minCount in the API's final state (read
  after the run, judged by scheduler.bench.gangcheck, the conformance suite's checker). A gang
  scheduler must leave none.

A run whose pods claim devices or volumes (`devices`, `statefulset`) also has `claims` in its
Result (ClaimFigures), from the API's final state read after the run and judged by
scheduler.bench.claimcheck:
- claims: ResourceClaims (made by kube-controller-manager from the templates) or
  PersistentVolumeClaims in the namespace;
- satisfied: of which allocated (devices) or bound to a volume (volumes);
- violations: broken rules (a device allocated twice, a volume on another node than its pod,
  a pod bound without its claim satisfied, ...); a scheduler must leave none. The null binder
  ignores claims, so it leaves one per pod it binds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from scheduler.model import InvalidObject, compile_node, pod_requests

JSON = dict[str, Any]


class Latency(TypedDict):
    p50: float | None
    p90: float | None
    p99: float | None


class GangFigures(TypedDict):
    """A run of gangs: see the module docstring."""

    groups: int  # PodGroups created
    groups_placed: int
    groups_per_s: float
    quorum_to_bound_ms: Latency
    partially_bound: int


class ClaimFigures(TypedDict):
    """A run whose pods claim devices or volumes: see the module docstring."""

    kind: str  # "devices" or "volumes"
    claims: int
    satisfied: int
    violations: int


class _IssueFields(TypedDict):
    """One scheduler's numbers in bench.json; the field names are the issue's, exactly."""

    scheduler: str
    throughput_pods_per_s: float
    latency_ms: Latency
    bound: int
    unschedulable: int
    duration_s: float
    scheduler_cpu_s: float | None
    scheduler_max_rss_mb: float | None
    apiserver_cpu_s: float | None


class Result(_IssueFields, total=False):
    """The issue's fields, then `gangs` for a workload of gangs only and `claims` for a
    workload whose pods claim devices or volumes only."""

    gangs: GangFigures
    claims: ClaimFigures


RESULT_FIELDS: tuple[str, ...] = tuple(_IssueFields.__annotations__)
GANG_FIELDS: tuple[str, ...] = tuple(GangFigures.__annotations__)
CLAIM_FIELDS: tuple[str, ...] = tuple(ClaimFigures.__annotations__)
LATENCY_FIELDS: tuple[str, ...] = tuple(Latency.__annotations__)


@dataclass
class RunData:
    """The raw record of one scheduler run."""

    scheduler: str
    run: int
    pods: int  # how many pods the workload asked for
    created_at: dict[str, float] = field(default_factory=dict)  # see the module docstring
    bound_at: dict[str, float] = field(default_factory=dict)
    node_of: dict[str, str] = field(default_factory=dict)
    unschedulable: set[str] = field(default_factory=set)
    ended_s: float = 0.0  # when the run stopped watching
    create_errors: int = 0
    scheduler_cpu_s: float | None = None
    scheduler_max_rss_mb: float | None = None
    apiserver_cpu_s: float | None = None
    # Not in bench.json's results: where the rest of the machine's CPU went during the run.
    etcd_cpu_s: float | None = None
    controller_manager_cpu_s: float | None = None  # when it runs (workloads with claims)
    bench_cpu_s: float | None = None  # this process: creating the pods and watching them
    machine_cpu_s: float | None = None  # every process on the machine (/proc/stat)
    # What the scheduler reported about itself (kube-scheduler: version and scheduling gates).
    scheduler_version: str = ""
    feature_gates: dict[str, bool] = field(default_factory=dict)
    # Gangs (empty without): PodGroup name -> minCount, pod name -> its PodGroup, and the
    # checker's message for every group left partially bound in the API's final state.
    min_count: dict[str, int] = field(default_factory=dict)
    group_of: dict[str, str] = field(default_factory=dict)
    partially_bound: list[str] = field(default_factory=list)
    # Claims ("" without): what the pods claim ("devices" or "volumes"), the claims in the
    # namespace, how many were satisfied, and the checker's message for every broken rule.
    claim_kind: str = ""
    claims: int = 0
    claims_satisfied: int = 0
    claim_violations: list[str] = field(default_factory=list)

    def latencies_ms(self) -> list[float]:
        """Create-to-bind latency of every bound pod, sorted."""
        return sorted(
            max(0.0, (t - self.created_at.get(name, 0.0)) * 1000.0)
            for name, t in self.bound_at.items()
        )

    def group_times(self) -> dict[str, tuple[float, float]]:
        """Placed group -> (quorum, placed): when its minCount-th member was created and when
        its minCount-th member was bound (seconds since the first create)."""
        created: dict[str, list[float]] = {}
        bound: dict[str, list[float]] = {}
        for pod, group in self.group_of.items():
            if pod in self.created_at:
                created.setdefault(group, []).append(self.created_at[pod])
            if pod in self.bound_at:
                bound.setdefault(group, []).append(self.bound_at[pod])
        out = {}
        for group, need in self.min_count.items():
            binds = sorted(bound.get(group, ()))
            if len(binds) < need:
                continue
            creates = sorted(created.get(group, ()))
            quorum = creates[need - 1] if len(creates) >= need else 0.0
            out[group] = (quorum, binds[need - 1])
        return out

    def quorum_to_bound_ms(self) -> list[float]:
        """Quorum-to-bound latency of every placed group, sorted."""
        return sorted(
            max(0.0, (placed - quorum) * 1000.0) for quorum, placed in self.group_times().values()
        )

    def group_curve(self) -> tuple[list[float], list[int]]:
        """(seconds since the first create, groups placed by then), for plotting."""
        times = sorted(placed for _, placed in self.group_times().values())
        return times, list(range(1, len(times) + 1))

    def bound_curve(self) -> tuple[list[float], list[int]]:
        """(seconds since the first create, pods bound by then) at every bind, for plotting."""
        times = sorted(self.bound_at.values())
        return times, list(range(1, len(times) + 1))

    def to_json(self) -> JSON:
        return {
            "scheduler": self.scheduler,
            "run": self.run,
            "pods": self.pods,
            "ended_s": round(self.ended_s, 6),
            "create_errors": self.create_errors,
            "scheduler_cpu_s": self.scheduler_cpu_s,
            "scheduler_max_rss_mb": self.scheduler_max_rss_mb,
            "apiserver_cpu_s": self.apiserver_cpu_s,
            "etcd_cpu_s": self.etcd_cpu_s,
            "controller_manager_cpu_s": self.controller_manager_cpu_s,
            "bench_cpu_s": self.bench_cpu_s,
            "machine_cpu_s": self.machine_cpu_s,
            "created_at": {k: round(v, 6) for k, v in sorted(self.created_at.items())},
            "bound_at": {k: round(v, 6) for k, v in sorted(self.bound_at.items())},
            "node_of": dict(sorted(self.node_of.items())),
            "unschedulable": sorted(self.unschedulable),
            **(
                {
                    "min_count": dict(sorted(self.min_count.items())),
                    "group_of": dict(sorted(self.group_of.items())),
                    "partially_bound": list(self.partially_bound),
                }
                if self.min_count
                else {}
            ),
            **(
                {
                    "claim_kind": self.claim_kind,
                    "claims": self.claims,
                    "claims_satisfied": self.claims_satisfied,
                    "claim_violations": list(self.claim_violations),
                }
                if self.claim_kind
                else {}
            ),
        }

    @classmethod
    def from_json(cls, doc: JSON) -> RunData:
        return cls(
            scheduler=doc["scheduler"],
            run=doc["run"],
            pods=doc["pods"],
            created_at=dict(doc["created_at"]),
            bound_at=dict(doc["bound_at"]),
            node_of=dict(doc["node_of"]),
            unschedulable=set(doc["unschedulable"]),
            ended_s=doc["ended_s"],
            create_errors=doc.get("create_errors", 0),
            scheduler_cpu_s=doc.get("scheduler_cpu_s"),
            scheduler_max_rss_mb=doc.get("scheduler_max_rss_mb"),
            apiserver_cpu_s=doc.get("apiserver_cpu_s"),
            etcd_cpu_s=doc.get("etcd_cpu_s"),
            controller_manager_cpu_s=doc.get("controller_manager_cpu_s"),
            bench_cpu_s=doc.get("bench_cpu_s"),
            machine_cpu_s=doc.get("machine_cpu_s"),
            min_count=dict(doc.get("min_count") or {}),
            group_of=dict(doc.get("group_of") or {}),
            partially_bound=list(doc.get("partially_bound") or []),
            claim_kind=doc.get("claim_kind", ""),
            claims=doc.get("claims", 0),
            claims_satisfied=doc.get("claims_satisfied", 0),
            claim_violations=list(doc.get("claim_violations") or []),
        )


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None for no values."""
    if not sorted_values:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = math.ceil(p / 100.0 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def summarize(run: RunData) -> Result:
    bound = len(run.bound_at)
    duration = max(run.bound_at.values()) if bound else run.ended_s
    latencies = run.latencies_ms()
    result = Result(
        scheduler=run.scheduler,
        throughput_pods_per_s=_round(bound / duration if duration > 0 else 0.0),
        latency_ms=_latency(latencies),
        bound=bound,
        unschedulable=len(run.unschedulable - run.bound_at.keys()),
        duration_s=_round(duration),
        scheduler_cpu_s=_round_opt(run.scheduler_cpu_s),
        scheduler_max_rss_mb=_round_opt(run.scheduler_max_rss_mb),
        apiserver_cpu_s=_round_opt(run.apiserver_cpu_s),
    )
    if run.min_count:
        result["gangs"] = gang_figures(run)
    if run.claim_kind:
        result["claims"] = ClaimFigures(
            kind=run.claim_kind,
            claims=run.claims,
            satisfied=run.claims_satisfied,
            violations=len(run.claim_violations),
        )
    return result


def gang_figures(run: RunData) -> GangFigures:
    """The gang numbers of a run of gangs (see the module docstring)."""
    times = run.group_times()
    last = max((placed for _, placed in times.values()), default=0.0)
    latencies = run.quorum_to_bound_ms()
    return GangFigures(
        groups=len(run.min_count),
        groups_placed=len(times),
        groups_per_s=_round(len(times) / last if last > 0 else 0.0),
        quorum_to_bound_ms=_latency(latencies),
        partially_bound=len(run.partially_bound),
    )


def _latency(sorted_ms: Sequence[float]) -> Latency:
    return Latency(
        p50=_round_opt(percentile(sorted_ms, 50)),
        p90=_round_opt(percentile(sorted_ms, 90)),
        p99=_round_opt(percentile(sorted_ms, 99)),
    )


def aggregate(results: Sequence[Result]) -> Result:
    """The median of each number over repeated runs of one scheduler."""
    if not results:
        raise ValueError("no results to aggregate")
    if len(results) == 1:
        return results[0]
    names = {r["scheduler"] for r in results}
    if len(names) != 1:
        raise ValueError(f"cannot aggregate results of different schedulers: {sorted(names)}")

    def med(values: Iterable[float | None]) -> float | None:
        got = list(values)
        if any(v is None for v in got):
            return None
        return _round(statistics.median(v for v in got if v is not None))

    def med_int(values: Iterable[int]) -> int:
        return int(statistics.median_low(list(values)))

    out = Result(
        scheduler=results[0]["scheduler"],
        throughput_pods_per_s=med(r["throughput_pods_per_s"] for r in results) or 0.0,
        latency_ms=Latency(
            p50=med(r["latency_ms"]["p50"] for r in results),
            p90=med(r["latency_ms"]["p90"] for r in results),
            p99=med(r["latency_ms"]["p99"] for r in results),
        ),
        bound=med_int(r["bound"] for r in results),
        unschedulable=med_int(r["unschedulable"] for r in results),
        duration_s=med(r["duration_s"] for r in results) or 0.0,
        scheduler_cpu_s=med(r["scheduler_cpu_s"] for r in results),
        scheduler_max_rss_mb=med(r["scheduler_max_rss_mb"] for r in results),
        apiserver_cpu_s=med(r["apiserver_cpu_s"] for r in results),
    )
    gangs = [r["gangs"] for r in results if "gangs" in r]
    if gangs:
        out["gangs"] = GangFigures(
            groups=med_int(g["groups"] for g in gangs),
            groups_placed=med_int(g["groups_placed"] for g in gangs),
            groups_per_s=med(g["groups_per_s"] for g in gangs) or 0.0,
            quorum_to_bound_ms=Latency(
                p50=med(g["quorum_to_bound_ms"]["p50"] for g in gangs),
                p90=med(g["quorum_to_bound_ms"]["p90"] for g in gangs),
                p99=med(g["quorum_to_bound_ms"]["p99"] for g in gangs),
            ),
            # The worst run, not the median: one partial group in any run is a failure.
            partially_bound=max(g["partially_bound"] for g in gangs),
        )
    claims = [r["claims"] for r in results if "claims" in r]
    if claims:
        out["claims"] = ClaimFigures(
            kind=claims[0]["kind"],
            claims=med_int(c["claims"] for c in claims),
            satisfied=med_int(c["satisfied"] for c in claims),
            # The worst run, as for gangs: one broken rule in any run is a failure.
            violations=max(c["violations"] for c in claims),
        )
    return out


def overcommitted(
    nodes: Iterable[JSON], pods: Iterable[JSON], placement: dict[str, str]
) -> dict[str, list[str]]:
    """Nodes whose placed pods request more than the node's allocatable of some resource:
    node name -> the resources over. `placement` maps pod name -> node name; a pod placed on
    a node that is not in `nodes` counts against a node with nothing allocatable."""
    allocatable = {}
    for node in nodes:
        info = compile_node(node)
        allocatable[info.name] = info.allocatable
    used: dict[str, dict[str, int]] = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        node_name = placement.get(name)
        if node_name is None:
            continue
        try:
            requests = pod_requests(pod.get("spec") or {})
        except InvalidObject:
            continue
        into = used.setdefault(node_name, {})
        for resource, amount in requests.items():
            into[resource] = into.get(resource, 0) + amount
    out: dict[str, list[str]] = {}
    for node_name, requested in sorted(used.items()):
        have = allocatable.get(node_name, {})
        over = sorted(r for r, amount in requested.items() if amount > have.get(r, 0))
        if over:
            out[node_name] = over
    return out


def _round(value: float) -> float:
    return round(value, 3)


def _round_opt(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
