"""`berth bench`: its arguments and what it does with them (light to import: scheduler.cli
builds its parser from here; the heavy modules load when the command runs).

    berth bench --workload NAME --nodes N --pods M [--schedulers berth,kube-scheduler,null]
                [--qps Q|upstream-default] [--repeat R] [--out DIR] [--kubeconfig K]
    berth bench --in-memory [--workload NAME] [--nodes N[,N...]] [--pods M] [--out DIR]

`--workload gang` needs a server that serves scheduling.k8s.io/v1beta1 (Kubernetes v1.37 with
GenericWorkload, as the local control plane runs it) and refuses otherwise (exit 1); with
--in-memory its PodGroups are given to the engine directly. `--workload devices` (DRA: fake
GPUs published as ResourceSlices, claims from templates) and `--workload statefulset`
(WaitForFirstConsumer claims bound to static local PVs) run kube-controller-manager in the
fresh control plane and have no --in-memory form (exit 2).

Exit codes: 0 done (the files are written), 1 a run failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

# scheduler.bench.workloads.WORKLOADS, kept light here
WORKLOAD_NAMES = (
    "basic",
    "service",
    "mixed",
    "spread",
    "affinity",
    "preemption",
    "gang",
    "devices",
    "statefulset",
)
SCHEDULER_NAMES = ("berth", "kube-scheduler", "null")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", default="basic", choices=WORKLOAD_NAMES)
    parser.add_argument(
        "--nodes",
        default=None,
        help="node count (--in-memory: a comma-separated list, default 5000,50000)",
    )
    parser.add_argument("--pods", type=int, default=None, help="pod count (--in-memory: 10000)")
    parser.add_argument(
        "--schedulers",
        default=",".join(SCHEDULER_NAMES),
        help="comma-separated, run in this order: berth, kube-scheduler, null",
    )
    parser.add_argument(
        "--qps",
        default="5000",
        help="client qps (burst equal) for every scheduler, or `upstream-default` to give each "
        "its own defaults (default 5000)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per scheduler (median shown)")
    parser.add_argument("--out", type=Path, default=Path("out/bench"), help="output directory")
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="reuse this cluster instead of starting a fresh one per run",
    )
    parser.add_argument("--zones", type=int, default=3, help="zones the nodes are spread over")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        help="end a run when nothing was bound or reported for this many seconds",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run at most")
    parser.add_argument(
        "--plugin-config",
        type=Path,
        default=None,
        help="a YAML pluginConfig list (or a profile holding one) given to every scheduler's "
        "profile, e.g. PodTopologySpread args that turn the system default constraints off",
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="the engine and plugins alone, no API server: pods/s and µs per pod",
    )


def main(args: argparse.Namespace) -> int:
    try:
        nodes = _node_counts(args.nodes)
    except ValueError as err:
        return _usage(str(err))
    if args.zones < 1 or args.repeat < 1:
        return _usage("--zones and --repeat must be >= 1")
    if args.in_memory:
        return _in_memory(args, nodes)
    if nodes is None or args.pods is None:
        return _usage("--nodes and --pods are required (except with --in-memory)")
    if len(nodes) != 1:
        return _usage("--nodes takes one number (a list only with --in-memory)")
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so each run's cluster is torn down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.pods < 0:
        return _usage("--pods must be >= 0")
    schedulers = tuple(s.strip() for s in args.schedulers.split(",") if s.strip())
    unknown = [s for s in schedulers if s not in SCHEDULER_NAMES]
    if not schedulers or unknown or len(set(schedulers)) != len(schedulers):
        return _usage(
            f"--schedulers: a comma-separated list of distinct names from "
            f"{', '.join(SCHEDULER_NAMES)} (got {args.schedulers!r})"
        )
    return _api(args, nodes[0], schedulers)


def _plugin_config(path: Path | None) -> list[dict[str, Any]]:
    """The pluginConfig entries of --plugin-config: a list, or a mapping with a pluginConfig
    list (a profile). Raises ValueError naming the file; the schedulers validate the args."""
    import yaml

    if path is None:
        return []
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"--plugin-config {path}: {err}") from err
    entries = doc.get("pluginConfig") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
    ):
        raise ValueError(
            f"--plugin-config {path}: expected a list of {{name, args}} entries "
            "(or a profile with pluginConfig)"
        )
    return entries


def _api(args: argparse.Namespace, nodes: int, schedulers: tuple[str, ...]) -> int:
    from scheduler.bench import processes, report, runner, workloads
    from scheduler.bench.progress import Progress
    from scheduler.harness.binaries import MissingBinary
    from scheduler.harness.plane import ClusterError
    from scheduler.kube.client import ApiError

    try:
        limits = processes.Limits.parse(args.qps)
    except ValueError as err:
        return _usage(str(err))
    try:
        plugin_config = _plugin_config(args.plugin_config)
    except ValueError as err:
        return _usage(str(err))
    workload = workloads.get(args.workload, args.zones).for_size(nodes, args.pods)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / "runs").glob("*.json"):
        stale.unlink()
    opts = runner.Options(
        workload=workload,
        nodes=nodes,
        pods=args.pods,
        schedulers=schedulers,
        limits=limits,
        repeat=args.repeat,
        out=out,
        kubeconfig=args.kubeconfig,
        idle_timeout=args.idle_timeout,
        timeout=args.timeout,
        plugin_config=plugin_config,
    )
    meta = report.Meta(
        workload=workload.name,
        nodes=nodes,
        pods=args.pods,
        qps=limits.label,
        repeat=args.repeat,
        command="berth bench " + shlex.join(sys.argv[2:] if _from_cli() else []),
        description=workload.description,
        cluster=(
            f"the cluster of {args.kubeconfig}, a namespace per run"
            if args.kubeconfig
            else "a fresh control plane per run"
        ),
        feature_gates=workload.feature_gates,
    )
    progress = Progress()
    began = time.monotonic()
    try:
        runs = runner.run_all(opts, progress, on_run=lambda run: report.write_run(out, run))
    except (
        ClusterError,
        MissingBinary,
        processes.StartError,
        ApiError,
        TimeoutError,
        runner.Unsupported,
    ) as err:
        print(f"berth bench: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    report.write_all(out, meta, runs)
    markdown = (out / "report.md").read_text()
    print(report.main_table(markdown))
    png = out / "bench.png"  # absent without matplotlib (the `bench` extra)
    wrote = [out / "bench.json", out / "report.md", *([png] if png.exists() else [])]
    print(
        f"\nberth bench: {time.monotonic() - began:.0f}s; wrote {', '.join(map(str, wrote))}",
        file=sys.stderr,
    )
    return 0


def _in_memory(args: argparse.Namespace, nodes: list[int] | None) -> int:
    import asyncio
    import json

    from scheduler.bench import inmemory, workloads
    from scheduler.bench.progress import Progress

    workload = workloads.get(args.workload, args.zones)
    if workload.needs_control_plane:
        return _usage(
            f"--workload {workload.name} claims {workload.claims}, which needs "
            "kube-controller-manager: it has no --in-memory form"
        )
    counts = nodes or list(inmemory.DEFAULT_NODES)
    pods = inmemory.DEFAULT_PODS if args.pods is None else args.pods
    if pods < 0:
        return _usage("--pods must be >= 0")
    progress = Progress()
    results = [asyncio.run(inmemory.run_once(workload, n, pods, progress)) for n in counts]
    table = inmemory.render_markdown(results)
    print(table, end="")
    if args.out is not None:
        out: Path = args.out
        out.mkdir(parents=True, exist_ok=True)
        (out / "in-memory.json").write_text(
            json.dumps([r.to_json() for r in results], indent=2) + "\n"
        )
        (out / "in-memory.md").write_text(
            f"# berth bench --in-memory: `{workload.name}`\n\n{workload.description}.\n\n{table}"
        )
    return 0


def _node_counts(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--nodes: whole numbers, comma-separated (got {text!r})") from None
    if not counts or any(c < 1 for c in counts):
        raise ValueError(f"--nodes: at least one node (got {text!r})")
    return counts


def _from_cli() -> bool:
    return len(sys.argv) > 1 and sys.argv[1] == "bench"


def _usage(message: str) -> int:
    print(f"berth bench: {message}", file=sys.stderr)
    return 2
