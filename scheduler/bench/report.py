"""The benchmark's outputs: DIR/bench.json, DIR/report.md, DIR/bench.png (and DIR/runs/*.json,
the raw record of every run, which the other three are made from).

bench.json:

    {"workload": "basic", "nodes": 500, "pods": 2000, "qps": 5000.0 | "upstream-default",
     "repeat": 1,
     "results": [{"scheduler", "throughput_pods_per_s", "latency_ms": {"p50", "p90", "p99"},
                  "bound", "unschedulable", "duration_s", "scheduler_cpu_s",
                  "scheduler_max_rss_mb", "apiserver_cpu_s",
                  "gangs": {"groups", "groups_placed", "groups_per_s",           # gang
                            "quorum_to_bound_ms": {"p50", "p90", "p99"},         # workloads
                            "partially_bound"},                                  # only
                  "claims": {"kind", "claims", "satisfied", "violations"}}, ...],  # devices,
                                                                   # statefulset only
                                                                   # median over repeats
     "runs": [{"run": 1, <the same fields>}, ...],                     # every single run
     "environment": {...}}
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.bench.stats import Result, RunData, aggregate, summarize

JSON = dict[str, Any]

KUBE_SCHEDULER = "kube-scheduler"
NULL = "null"
COLORS = {"berth": "tab:blue", KUBE_SCHEDULER: "tab:orange", NULL: "tab:gray"}


@dataclass(frozen=True)
class Meta:
    workload: str
    nodes: int
    pods: int
    qps: float | str  # a number, or "upstream-default"
    repeat: int
    command: str = ""
    description: str = ""
    cluster: str = "a fresh control plane per run"
    # Gates the workload turned on in kube-scheduler beyond its defaults (gang: GenericWorkload)
    feature_gates: tuple[tuple[str, bool], ...] = ()


def results_by_scheduler(runs: Sequence[RunData]) -> list[Result]:
    """One Result per scheduler (median over its runs), in the order they first ran."""
    order: list[str] = []
    by: dict[str, list[Result]] = {}
    for run in runs:
        if run.scheduler not in by:
            order.append(run.scheduler)
        by.setdefault(run.scheduler, []).append(summarize(run))
    return [aggregate(by[name]) for name in order]


def environment() -> JSON:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def scheduler_builds(runs: Sequence[RunData]) -> dict[str, JSON]:
    """{scheduler: {"version", "feature_gates"}} for the schedulers that reported them (the
    first run of each; every run of one scheduler uses the same binary and flags)."""
    out: dict[str, JSON] = {}
    for run in runs:
        if run.scheduler not in out and (run.scheduler_version or run.feature_gates):
            out[run.scheduler] = {
                "version": run.scheduler_version,
                "feature_gates": dict(run.feature_gates),
            }
    return out


def bench_json(meta: Meta, runs: Sequence[RunData], env: JSON | None = None) -> JSON:
    return {
        "workload": meta.workload,
        "nodes": meta.nodes,
        "pods": meta.pods,
        "qps": meta.qps,
        "repeat": meta.repeat,
        "results": results_by_scheduler(runs),
        "runs": [{"run": run.run, **summarize(run)} for run in runs],
        "schedulers": scheduler_builds(runs),
        "environment": env if env is not None else environment(),
    }


# --- report.md ----------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}x"


def cpu_ms_per_pod(result: Result) -> float | None:
    cpu = result["scheduler_cpu_s"]
    if cpu is None or result["bound"] == 0:
        return None
    return cpu * 1000.0 / result["bound"]


def render_markdown(
    meta: Meta,
    results: Sequence[Result],
    env: JSON | None = None,
    runs: Sequence[RunData] = (),
) -> str:
    env = env if env is not None else environment()
    limits = (
        "each scheduler's own default client limits (`--qps upstream-default`)"
        if meta.qps == "upstream-default"
        else f"client limits qps {meta.qps:g}, burst {int(float(meta.qps))} for every scheduler"
    )
    repeats = (
        f"median of {meta.repeat} runs per scheduler"
        if meta.repeat > 1
        else "one run per scheduler"
    )
    lines = [
        f"# berth bench: `{meta.workload}`, {meta.nodes:,} nodes, {meta.pods:,} pods",
        "",
        f"{limits}; {repeats}; {meta.cluster}; "
        f"{env.get('cpus')} CPUs, Python {env.get('python')}, {env.get('date')}.",
    ]
    if meta.description:
        lines += ["", f"Workload: {meta.description}."]
    set_by_workload = ", ".join(f"{g}={str(on).lower()}" for g, on in meta.feature_gates)
    for name, build in scheduler_builds(runs).items():
        gates = ", ".join(
            f"{gate} {'on' if on else 'off'}" for gate, on in build["feature_gates"].items()
        )
        which = (
            f"feature gates (the defaults, with {set_by_workload} for this workload)"
            if set_by_workload and name == KUBE_SCHEDULER
            else "default feature gates"
        )
        lines += [
            "",
            f"{name} {build['version'] or '(version unknown)'}, {which}: "
            f"{gates or '(not reported)'}.",
        ]
    if meta.command:
        lines += ["", "```", meta.command, "```"]
    lines += [
        "",
        "| scheduler | throughput (pods/s) | p50 ms | p90 ms | p99 ms | bound | unschedulable "
        "| duration s | scheduler CPU s | CPU ms/pod | max RSS MB | apiserver CPU s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['scheduler']} | {_num(r['throughput_pods_per_s'])} | {_num(lat['p50'])} "
            f"| {_num(lat['p90'])} | {_num(lat['p99'])} | {r['bound']:,} | {r['unschedulable']:,} "
            f"| {_num(r['duration_s'], 2)} | {_num(r['scheduler_cpu_s'], 2)} "
            f"| {_num(cpu_ms_per_pod(r), 2)} | {_num(r['scheduler_max_rss_mb'], 0)} "
            f"| {_num(r['apiserver_cpu_s'], 2)} |"
        )
    by = {r["scheduler"]: r for r in results}
    kube, null = by.get(KUBE_SCHEDULER), by.get(NULL)
    lines += [
        "",
        "Ratios (throughput: higher is better; p99 latency and CPU per pod: lower is better):",
        "",
        "| scheduler | throughput ÷ kube-scheduler | throughput ÷ null "
        "| p99 ÷ kube-scheduler | CPU per pod ÷ kube-scheduler |",
        "|---|--:|--:|--:|--:|",
    ]
    for r in results:
        tp = r["throughput_pods_per_s"]
        lines.append(
            f"| {r['scheduler']} "
            f"| {_ratio(tp, kube['throughput_pods_per_s'] if kube else None)} "
            f"| {_ratio(tp, null['throughput_pods_per_s'] if null else None)} "
            f"| {_ratio(r['latency_ms']['p99'], kube['latency_ms']['p99'] if kube else None)} "
            f"| {_ratio(cpu_ms_per_pod(r), cpu_ms_per_pod(kube) if kube else None)} |"
        )
    lines += _gang_table(results, runs)
    lines += _claim_table(results, runs)
    lines += _cpu_table(runs, env.get("cpus"))
    lines += [
        "",
        "- throughput: bound pods ÷ seconds from the first create request to the last bind;",
        "- latency: per bound pod, from its creation (the create request's answer or the watch",
        "  event showing it, whichever came first) to the watch event showing it bound",
        "  (nearest-rank percentiles);",
        "- unschedulable: pods left unbound that the scheduler reported (PodScheduled=False or a",
        "  FailedScheduling event);",
        "- CPU: user + system seconds from /proc while the pods were created and scheduled",
        "  (startup excluded); max RSS: VmHWM of the scheduler process over its whole life;",
        "- null: binds round-robin on berth's client stack with no scheduling at all, the",
        "  ceiling this API server allows; it ignores capacity and constraints.",
    ]
    if any("gangs" in r for r in results):
        lines += [
            "- groups placed: PodGroups with at least minCount members bound; groups/s: groups",
            "  placed ÷ seconds from the first create to the last group's minCount-th bind;",
            "- quorum → bound: per placed group, from the creation of its minCount-th member",
            "  to the bind of its minCount-th member (both as this process saw them first);",
            "- partially bound: groups with 0 < bound members < minCount in the API's final",
            "  state (the conformance suite's checker); a gang scheduler must leave none;",
            "- the run ends when every pod is bound, or when no pod was bound for",
            "  --idle-timeout seconds after every pod was created (how many pods fit is not",
            "  known in advance: it depends on which gangs are placed).",
        ]
    if any("claims" in r for r in results):
        lines += [
            "- claims: the ResourceClaims (made from the templates by kube-controller-manager)",
            "  or PersistentVolumeClaims of the namespace after the run; satisfied: allocated",
            "  (devices) or bound to a volume (volumes); violations: a device allocated twice, a",
            "  device or volume of another node than its pod's, a pod bound without its claims",
            "  satisfied (scheduler.bench.claimcheck); a scheduler must leave none, the null",
            "  binder, which ignores claims, leaves one per pod it binds.",
        ]
    lines.append("")
    return "\n".join(lines)


def _gang_table(results: Sequence[Result], runs: Sequence[RunData]) -> list[str]:
    """Per scheduler: groups placed, groups/s, pods/s, quorum-to-bound latency, and the groups
    left partially bound (with the checker's messages for the first few of them)."""
    gangs = [(r, r["gangs"]) for r in results if "gangs" in r]
    if not gangs:
        return []
    lines = [
        "",
        "Gangs (a PodGroup per job; all or nothing):",
        "",
        "| scheduler | groups placed | of groups | groups/s | pods/s | quorum → bound p50 ms "
        "| p90 ms | p99 ms | partially bound |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r, g in gangs:
        lat = g["quorum_to_bound_ms"]
        partial = f"**{g['partially_bound']:,}**" if g["partially_bound"] else "0"
        lines.append(
            f"| {r['scheduler']} | {g['groups_placed']:,} | {g['groups']:,} "
            f"| {_num(g['groups_per_s'], 2)} | {_num(r['throughput_pods_per_s'])} "
            f"| {_num(lat['p50'])} | {_num(lat['p90'])} | {_num(lat['p99'])} | {partial} |"
        )
    shown = [(run, m) for run in runs for m in run.partially_bound[:5]]
    if shown:
        lines += ["", "Partially bound groups (the first five of each run):", ""]
        lines += [f"- {run.scheduler} run {run.run}: {message}" for run, message in shown]
    return lines


def _claim_table(results: Sequence[Result], runs: Sequence[RunData]) -> list[str]:
    """Per scheduler: the pods' claims, how many were satisfied, and the broken rules (with
    the checker's messages for the first few of them)."""
    claims = [(r, r["claims"]) for r in results if "claims" in r]
    if not claims:
        return []
    satisfied = "allocated" if claims[0][1]["kind"] == "devices" else "bound to a volume"
    lines = [
        "",
        f"Claims ({claims[0][1]['kind']}), as the API holds them after the run:",
        "",
        f"| scheduler | pods bound | claims | {satisfied} | violations |",
        "|---|--:|--:|--:|--:|",
    ]
    for r, c in claims:
        violations = f"**{c['violations']:,}**" if c["violations"] else "0"
        lines.append(
            f"| {r['scheduler']} | {r['bound']:,} | {c['claims']:,} | {c['satisfied']:,} "
            f"| {violations} |"
        )
    shown = [(run, m) for run in runs for m in run.claim_violations[:5]]
    if shown:
        lines += ["", "Violations (the first five of each run):", ""]
        lines += [f"- {run.scheduler} run {run.run}: {message}" for run, message in shown]
    return lines


def _cpu_table(runs: Sequence[RunData], cpus: int | None) -> list[str]:
    """Where the machine's CPU went during each scheduler's runs (median over its runs). On a
    small machine the API server, etcd and the benchmark itself share the cores with the
    scheduler, and so does kube-controller-manager when the workload runs it (a column of its
    own then); "other" is everything else on the machine (another workload slows a run down
    and shows up there); "machine busy" is all of it over duration * CPUs."""
    if not runs:
        return []
    by: dict[str, list[RunData]] = {}
    for run in runs:
        by.setdefault(run.scheduler, []).append(run)
    kcm = any(r.controller_manager_cpu_s is not None for r in runs)
    lines = [
        "",
        "CPU seconds by process while the pods were created and scheduled:",
        "",
        "| scheduler | scheduler | kube-apiserver | etcd | "
        + ("kube-controller-manager | " if kcm else "")
        + "bench (create + watch) | other | machine busy |",
        "|---|--:|--:|--:|--:|--:|--:|" + ("--:|" if kcm else ""),
    ]
    for name, group in by.items():
        parts = [
            _median([r.scheduler_cpu_s for r in group]),
            _median([r.apiserver_cpu_s for r in group]),
            _median([r.etcd_cpu_s for r in group]),
            *([_median([r.controller_manager_cpu_s for r in group])] if kcm else []),
            _median([r.bench_cpu_s for r in group]),
        ]
        machine = _median([r.machine_cpu_s for r in group])
        other = (
            None
            if machine is None or None in parts
            else max(0.0, machine - sum(p or 0.0 for p in parts))
        )
        ended = _median([r.ended_s for r in group])
        busy = None if machine is None or not cpus or not ended else machine / (ended * cpus) * 100
        cells = " | ".join(_num(p, 2) for p in [*parts, other])
        lines.append(f"| {name} | {cells} | {_num(busy, 0)}{'%' if busy is not None else ''} |")
    return lines


def _median(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    ordered = sorted(v for v in values if v is not None)
    return ordered[(len(ordered) - 1) // 2]


# --- bench.png ----------------------------------------------------------------------------


# matplotlib is the optional `bench` extra (the image leaves it out): without it the PNG is
# skipped, and the notice below is printed once per process however many reports are written.
PNG_NEEDS = "pip install 'berth-scheduler[bench]'"
_png_notice_given = False


def render_png(path: Path, meta: Meta, runs: Sequence[RunData]) -> bool:
    """Bound pods over time per scheduler (left) and latency CDFs (right); for gangs also
    groups placed over time and quorum-to-bound CDFs (second row).

    Returns False, writing nothing, when matplotlib is not installed; the first such call
    says on stderr what to install.
    """
    global _png_notice_given
    try:
        import matplotlib
    except ImportError:
        if not _png_notice_given:
            _png_notice_given = True
            print(
                f"berth bench: {path.name} not written: the chart needs matplotlib ({PNG_NEEDS})",
                file=sys.stderr,
            )
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gangs = any(run.min_count for run in runs)
    if gangs:
        fig, axes = plt.subplots(2, 2, figsize=(13, 10))
        (left, right), (groups, quorum) = axes
        _render_gangs(groups, quorum, runs)
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    labelled: set[str] = set()
    for run in runs:
        color = COLORS.get(run.scheduler)
        label = None if run.scheduler in labelled else run.scheduler
        labelled.add(run.scheduler)
        times, counts = run.bound_curve()
        left.step([0.0, *times], [0, *counts], where="post", color=color, label=label, alpha=0.9)
        latencies = run.latencies_ms()
        if latencies:
            n = len(latencies)
            right.step(
                latencies,
                [(i + 1) / n for i in range(n)],
                where="post",
                color=color,
                label=label,
                alpha=0.9,
            )
    left.set_xlabel("seconds since the first create")
    left.set_ylabel("pods bound")
    left.set_title("bound pods over time")
    left.axhline(meta.pods, color="black", linewidth=0.5, linestyle=":")
    left.grid(alpha=0.3)
    left.legend(loc="lower right")
    right.set_xlabel("create → bind latency (ms)")
    right.set_ylabel("fraction of bound pods")
    right.set_title("latency CDF")
    if any(run.bound_at for run in runs):
        right.set_xscale("log")
        right.set_xlim(left=1.0)  # below 1 ms is the observer's own resolution
    right.grid(alpha=0.3, which="both")
    if right.get_legend_handles_labels()[0]:
        right.legend(loc="upper left")
    fig.suptitle(f"berth bench: {meta.workload}, {meta.nodes:,} nodes, {meta.pods:,} pods")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _render_gangs(groups: Any, quorum: Any, runs: Sequence[RunData]) -> None:
    """Groups placed over time (left) and quorum-to-bound latency CDFs (right)."""
    labelled: set[str] = set()
    for run in runs:
        color = COLORS.get(run.scheduler)
        label = None if run.scheduler in labelled else run.scheduler
        labelled.add(run.scheduler)
        times, counts = run.group_curve()
        groups.step([0.0, *times], [0, *counts], where="post", color=color, label=label)
        latencies = run.quorum_to_bound_ms()
        if latencies:
            n = len(latencies)
            quorum.step(
                latencies, [(i + 1) / n for i in range(n)], where="post", color=color, label=label
            )
    groups.set_xlabel("seconds since the first create")
    groups.set_ylabel("groups placed (minCount members bound)")
    groups.set_title("gangs placed over time")
    if runs:
        groups.axhline(len(runs[0].min_count), color="black", linewidth=0.5, linestyle=":")
    groups.grid(alpha=0.3)
    if groups.get_legend_handles_labels()[0]:
        groups.legend(loc="lower right")
    quorum.set_xlabel("quorum → bound latency (ms)")
    quorum.set_ylabel("fraction of placed groups")
    quorum.set_title("quorum-to-bound latency CDF")
    if any(run.quorum_to_bound_ms() for run in runs):
        quorum.set_xscale("log")
        quorum.set_xlim(left=1.0)
        quorum.legend(loc="upper left")
    quorum.grid(alpha=0.3, which="both")


# --- files --------------------------------------------------------------------------------


def write_run(out: Path, run: RunData) -> Path:
    path = out / "runs" / f"{run.scheduler}-{run.run}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_json()) + "\n")
    return path


def load_runs(out: Path) -> list[RunData]:
    return [
        RunData.from_json(json.loads(p.read_text())) for p in sorted((out / "runs").glob("*.json"))
    ]


def write_all(out: Path, meta: Meta, runs: Sequence[RunData]) -> list[Result]:
    """bench.json, report.md and bench.png (when matplotlib is installed) in `out`; returns
    the per-scheduler results."""
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    doc = bench_json(meta, runs, env)
    (out / "bench.json").write_text(json.dumps(doc, indent=2) + "\n")
    results: list[Result] = doc["results"]
    (out / "report.md").write_text(render_markdown(meta, results, env, runs))
    if not render_png(out / "bench.png", meta, runs):
        # A chart left by an earlier run would sit beside figures it does not show.
        (out / "bench.png").unlink(missing_ok=True)
    return results


def main_table(markdown: str) -> str:
    """The report's tables, for printing to the terminal."""
    return "\n".join(line for line in markdown.splitlines() if line.startswith("|"))
