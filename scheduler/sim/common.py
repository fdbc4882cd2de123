"""What every `berth sim` command shares: loading configurations, the cluster (live or a
snapshot file), the manifests and the what-if changes; running one simulation with progress;
turning errors into exit codes (1: the cluster could not be read; 2: bad input, named)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.bench.progress import Progress
    from scheduler.config import SchedulerConfig
    from scheduler.sim.snapshot import ClusterSnapshot

JSON = dict[str, Any]


class UsageError(Exception):
    """Bad flags or input: exit 2 with this message."""


def fail(command: str, message: str, code: int = 2) -> int:
    print(f"berth sim {command}: {message}", file=sys.stderr)
    return code


def progress() -> Progress:
    from scheduler.bench.progress import Progress

    return Progress()


async def take(kubeconfig: str | None, progress: Progress) -> ClusterSnapshot:
    from scheduler.kube.client import ApiError, Client, Credentials
    from scheduler.sim import snapshot

    try:
        creds = Credentials.load(kubeconfig)
    except Exception as err:  # kubernetes' ConfigException, a missing or unreadable file
        where = kubeconfig or "$KUBECONFIG / in-cluster service account"
        raise snapshot.SnapshotError(f"cannot load cluster credentials ({where}): {err}") from None
    async with Client(creds, qps=50, burst=100) as client:
        try:
            version = (await client.get("/version")).get("gitVersion", "")
        except ApiError:
            version = ""
        except OSError as err:
            raise snapshot.SnapshotError(f"cannot reach {creds.server}: {err}") from None

        def shown(key: str, n: int) -> None:
            progress.update(f"listing {key}: {n:,}")

        snap = await snapshot.take(
            lambda path, params: client.get(path, **params),
            server=str(version),
            source=creds.server,
            on_progress=shown,
        )
        progress.done(f"listed {sum(snap.counts().values()):,} objects")
        return snap


def load_config(path: str | None) -> SchedulerConfig:
    import plugins
    from scheduler.app import build_profiles
    from scheduler.config import parse, read_document
    from scheduler.handle import in_memory

    doc = (
        read_document(path)
        if path
        else {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
        }
    )
    config = parse(doc, plugins.registry().keys())
    build_profiles(config, in_memory())  # plugin args are checked here
    return config


def load_cluster(args: argparse.Namespace, command: str) -> tuple[ClusterSnapshot, str]:
    from scheduler.sim import snapshot

    if args.snapshot is not None:
        return snapshot.load(args.snapshot), str(args.snapshot)
    snap = asyncio.run(take(args.kubeconfig, progress()))
    return snap, snap.source


def prepare(args: argparse.Namespace, command: str) -> tuple[Any, ...]:
    """Configs, the cluster, the what-if cluster. Raises UsageError / errors of each part."""
    from scheduler.config import ConfigError
    from scheduler.sim import whatif

    if args.add_nodes < 0 or (args.like and args.add_nodes == 0):
        raise UsageError("--add-nodes: must be at least 1")
    if args.add_nodes and not args.like:
        raise UsageError("--add-nodes needs --like NODE")
    if args.png is not None and (args.png.is_dir() or not args.png.parent.is_dir()):
        raise UsageError(f"--png: not a file in an existing directory: {args.png}")
    configs = []
    for flag, path in (("--scheduler-config", args.scheduler_config), ("--config", args.config)):
        try:
            configs.append(load_config(path) if path or flag == "--scheduler-config" else None)
        except ConfigError as err:
            raise UsageError(f"{flag}: invalid configuration {path}:\n{err}") from None
    if args.scheduler_name:
        for flag, config in (("--scheduler-config", configs[0]), ("--config", configs[1])):
            names = [p.scheduler_name for p in config.profiles] if config else []
            if config and args.scheduler_name not in names:
                raise UsageError(
                    f"--scheduler-name: {flag} has no profile named {args.scheduler_name}"
                    f" (profiles: {', '.join(names)})"
                )
    snap, source = load_cluster(args, command)
    for key, why in snap.missing.items():
        print(f"berth sim: {key}: {why}, simulated as none", file=sys.stderr)
    other = snap
    notes: list[str] = []
    if args.drain:
        other, lines = whatif.drain(other, args.drain)
        notes += lines
    if args.add_nodes:
        other, lines = whatif.add_nodes(other, args.add_nodes, args.like)
        notes += lines
    if args.config:
        notes.append(f"configuration {args.config}")
    what_if = bool(args.drain or args.add_nodes or args.config)
    return configs[0], configs[1] or configs[0], snap, other if what_if else None, notes, source


def run_sim(
    snap: ClusterSnapshot,
    config: SchedulerConfig,
    seed: int,
    label: str,
    rate: float | None = None,
    order: str = "given",
) -> Any:
    from scheduler.bench.progress import render
    from scheduler.sim.engine import simulate

    bar = progress()

    def shown(done: int, total: int) -> None:
        bar.update(render(f"simulating {label}", done, total))

    outcome = asyncio.run(
        simulate(snap, config, seed=seed, on_progress=shown, arrival_rate=rate, order=order)
    )
    total = len(outcome.placed) + len(outcome.pending)
    bar.done(render(f"simulated {label}", total, total, f"{outcome.seconds:.2f} s"))
    return outcome


def guarded(command: str, body: Any, args: argparse.Namespace) -> int:
    from scheduler.sim.manifests import ManifestError
    from scheduler.sim.snapshot import SnapshotError
    from scheduler.sim.whatif import WhatIfError

    try:
        code: int = body(args)
        return code
    except (UsageError, ManifestError, WhatIfError) as err:
        return fail(command, str(err))
    except SnapshotError as err:
        return fail(command, str(err), 2 if args.snapshot is not None else 1)


def expand_manifests(args: argparse.Namespace, snap: ClusterSnapshot, docs: list[Any]) -> Any:
    """The documents (manifests.read's), expanded; ManifestError names a pod the API server
    would refuse (its spec does not compile, its namespace does not exist)."""
    from scheduler.model import InvalidObject, compile_pod
    from scheduler.sim import manifests

    expanded = manifests.expand(
        docs,
        namespace=args.namespace,
        priority_classes=snap.of("priorityclasses"),
    )
    if getattr(args, "scheduler_name", None):
        for pod in expanded.pods:
            pod["spec"]["schedulerName"] = args.scheduler_name
    namespaces = {
        str((ns.get("metadata") or {}).get("name"))
        for ns in [*snap.of("namespaces"), *expanded.objects.get("namespaces", [])]
    }
    checked: set[str] = set()
    for pod in expanded.pods:
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        if expanded.owner_of[key] in checked:
            continue  # the replicas of one template differ only in name and labels
        checked.add(expanded.owner_of[key])
        if meta["namespace"] not in namespaces:
            raise manifests.ManifestError(
                f"pod {key} ({expanded.owner_of[key]}): namespace {meta['namespace']} not found"
            )
        try:
            negative = sorted(r for r, v in compile_pod(pod).requests.items() if v < 0)
            if negative:
                raise InvalidObject(f"requests of {', '.join(negative)}: must be non-negative")
        except (InvalidObject, AttributeError, TypeError, ValueError) as err:
            raise manifests.ManifestError(f"pod {key} ({expanded.owner_of[key]}): {err}") from None
    for line in expanded.warnings:
        print(f"berth sim: {line}", file=sys.stderr)
    return expanded


def emit(args: argparse.Namespace, scenarios: list[Any], source: str) -> None:
    import orjson

    from scheduler.sim import report

    if args.output == "json":
        doc = report.to_json(scenarios)
        doc["cluster"] = source
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.output == "table":
        print(f"# berth sim: {source}\n")
        for s in scenarios:
            print(report.placement_markdown(s))
        if len(scenarios) == 2:
            print(report.comparison_markdown(scenarios[0], scenarios[1]))
    if args.group_by and not any(
        args.group_by in use.labels for s in scenarios for use in s.outcome.nodes.values()
    ):
        print(f"berth sim: --group-by: no node has label {args.group_by}", file=sys.stderr)
    if args.png is not None:
        try:
            report.chart(scenarios, args.png, args.group_by)
        except OSError as err:
            raise UsageError(f"--png: {err.strerror or err}: {args.png}") from None
        except ImportError:
            print(
                "berth sim: --png needs matplotlib: pip install 'berth-scheduler[bench]'",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        print(f"wrote {args.png}", file=sys.stderr)
