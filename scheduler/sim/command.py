"""The `berth sim` commands: what-if scheduling with berth's own engine, read only.

    berth sim snapshot --out FILE                 save the cluster (gzip JSON, versioned)
    berth sim place -f MANIFESTS [options]        where would these pods go?
    berth sim capacity -f POD [options]           how many more of this pod fit?

    the cluster      --kubeconfig FILE (default $KUBECONFIG / in-cluster: get and list only)
                     or --snapshot FILE
    the scheduler    --scheduler-config FILE (default: the defaults), --seed N (ties)
    what-if          --drain NODE..., --add-nodes N --like NODE, --config OTHER.yaml: the run
                     with these is compared side by side with the run without
    output           -o table|json, --png FILE (utilisation before/after), --group-by LABEL

Exit codes: 0 done, 1 the cluster could not be read, 2 bad usage, config, manifest or
snapshot (the message names the flag, field or file).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.bench.progress import Progress
    from scheduler.config import SchedulerConfig
    from scheduler.sim.snapshot import ClusterSnapshot

JSON = dict[str, Any]


def add_parser(sub: Any) -> None:
    sim = sub.add_parser(
        "sim", help="what-if scheduling on a cluster or a snapshot (read only): place, capacity"
    )
    ssub = sim.add_subparsers(title="sim commands")
    snap = ssub.add_parser("snapshot", help="save the cluster's scheduling state to a file")
    snap.add_argument("--out", required=True, type=Path, help="file to write (gzip JSON)")
    snap.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, in-cluster")
    snap.set_defaults(func=_snapshot)

    place = ssub.add_parser("place", help="where would these pods go, and what stays pending?")
    place.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="MANIFESTS",
        help="YAML file or directory (repeatable; - reads stdin): Pods, Deployments, "
        "ReplicaSets, StatefulSets, Jobs, PodGroups and the objects they need",
    )
    _common(place)
    place.set_defaults(func=_place)

    cap = ssub.add_parser("capacity", help="how many more of this pod fit, and what runs out?")
    cap.add_argument(
        "-f",
        "--filename",
        required=True,
        metavar="POD_OR_TEMPLATE",
        help="a Pod, or a workload whose pod template is used",
    )
    cap.add_argument(
        "--max",
        type=int,
        default=None,
        metavar="N",
        help="offer at most N copies (default: the free-resource bound + 1, at most 100,000)",
    )
    _common(cap)
    cap.set_defaults(func=_capacity)
    shards = ssub.add_parser(
        "shards", help="simulate the shards of a Helm values file: pods/s and latency per shard"
    )
    shards.add_argument("--values", required=True, type=Path, help="the chart's values file")
    where = shards.add_mutually_exclusive_group()
    where.add_argument("--kubeconfig", default=None, help="read the live cluster (default)")
    where.add_argument("--snapshot", type=Path, default=None, help="a `berth sim snapshot` file")
    where.add_argument(
        "--synthetic-nodes",
        type=int,
        default=0,
        metavar="N",
        help="instead of a cluster: N bench nodes (4 CPU, 16Gi), labelled "
        "pool=pool-<i mod --pools> and spread over --zones zones",
    )
    shards.add_argument("--pools", type=int, default=1, help="with --synthetic-nodes")
    shards.add_argument("--zones", type=int, default=3, help="with --synthetic-nodes")
    what = shards.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="MANIFESTS",
        help="the pods to place (as for place)",
    )
    what.add_argument(
        "--synthetic-pods",
        type=int,
        default=0,
        metavar="M",
        help="M bench pods (100m CPU, 500Mi) left at default-scheduler",
    )
    shards.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="PODS_PER_S",
        help="pods arrive at this rate per shard (default: all at once)",
    )
    shards.add_argument("--seed", type=int, default=0)
    shards.add_argument("-n", "--namespace", default="default")
    shards.add_argument("-o", "--output", choices=("table", "json"), default="table")
    shards.set_defaults(func=_shards)
    sim.set_defaults(func=lambda args: (sim.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--kubeconfig", default=None, help="read the live cluster (default)")
    where.add_argument("--snapshot", type=Path, default=None, help="a `berth sim snapshot` file")
    p.add_argument(
        "--scheduler-config",
        default=None,
        metavar="FILE",
        help="the KubeSchedulerConfiguration to simulate (default: the defaults)",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="OTHER.yaml",
        help="what-if: another configuration, compared side by side",
    )
    p.add_argument(
        "--drain",
        nargs="+",
        action="extend",
        default=[],
        metavar="NODE",
        help="what-if: cordon and drain these nodes first",
    )
    p.add_argument(
        "--add-nodes",
        type=int,
        default=0,
        metavar="N",
        help="what-if: add N nodes like --like NODE",
    )
    p.add_argument("--like", default=None, metavar="NODE", help="the node --add-nodes copies")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for ties between equally scored nodes (berth run --tie-break-seed)",
    )
    p.add_argument(
        "-n", "--namespace", default="default", help="namespace for manifests that name none"
    )
    p.add_argument(
        "--scheduler-name",
        default=None,
        help="set every manifest pod's schedulerName to this profile's name",
    )
    p.add_argument(
        "--order",
        choices=("given", "name"),
        default="given",
        help="the order pending pods reach the queue: given (the cluster's pending pods, then "
        "the manifests' as written: as they reach a running berth) or name (namespace/name: "
        "berth starting on pods created before it looked)",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--png", type=Path, default=None, help="write a utilisation chart here")
    p.add_argument(
        "--group-by",
        default="",
        metavar="LABEL",
        help="node label to group utilisation (and capacity) by; default: per "
        "node, or per zone for large clusters (capacity: the zone)",
    )


class UsageError(Exception):
    """Bad flags or input: exit 2 with this message."""


def _fail(command: str, message: str, code: int = 2) -> int:
    print(f"berth sim {command}: {message}", file=sys.stderr)
    return code


# --- snapshot -------------------------------------------------------------------------------


def _snapshot(args: argparse.Namespace) -> int:
    from scheduler.sim import snapshot

    if args.out.is_dir() or not args.out.parent.is_dir():
        return _fail("snapshot", f"--out: not a file in an existing directory: {args.out}")
    try:
        snap = asyncio.run(_take(args.kubeconfig, _progress()))
    except snapshot.SnapshotError as err:
        return _fail("snapshot", str(err), 1)
    try:
        size = snapshot.save(snap, args.out)
    except OSError as err:
        return _fail("snapshot", f"--out: {err.strerror or err}: {args.out}", 1)
    counts = ", ".join(f"{n:,} {k}" for k, n in snap.counts().items())
    print(f"wrote {args.out} ({size:,} bytes): {counts}")
    for key, why in snap.missing.items():
        print(f"  {key}: {why} (simulated as none)")
    return 0


def _progress() -> Progress:
    from scheduler.bench.progress import Progress

    return Progress()


async def _take(kubeconfig: str | None, progress: Progress) -> ClusterSnapshot:
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


# --- place and capacity ---------------------------------------------------------------------


def _config(path: str | None) -> SchedulerConfig:
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


def _load(args: argparse.Namespace, command: str) -> tuple[ClusterSnapshot, str]:
    from scheduler.sim import snapshot

    if args.snapshot is not None:
        return snapshot.load(args.snapshot), str(args.snapshot)
    snap = asyncio.run(_take(args.kubeconfig, _progress()))
    return snap, snap.source


def _prepare(args: argparse.Namespace, command: str) -> tuple[Any, ...]:
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
            configs.append(_config(path) if path or flag == "--scheduler-config" else None)
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
    snap, source = _load(args, command)
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


def _run_sim(
    snap: ClusterSnapshot,
    config: SchedulerConfig,
    seed: int,
    label: str,
    rate: float | None = None,
    order: str = "given",
) -> Any:
    from scheduler.bench.progress import render
    from scheduler.sim.engine import simulate

    progress = _progress()

    def shown(done: int, total: int) -> None:
        progress.update(render(f"simulating {label}", done, total))

    outcome = asyncio.run(
        simulate(snap, config, seed=seed, on_progress=shown, arrival_rate=rate, order=order)
    )
    total = len(outcome.placed) + len(outcome.pending)
    progress.done(render(f"simulated {label}", total, total, f"{outcome.seconds:.2f} s"))
    return outcome


def _guarded(command: str, body: Any, args: argparse.Namespace) -> int:
    from scheduler.sim.manifests import ManifestError
    from scheduler.sim.snapshot import SnapshotError
    from scheduler.sim.whatif import WhatIfError

    try:
        code: int = body(args)
        return code
    except (UsageError, ManifestError, WhatIfError) as err:
        return _fail(command, str(err))
    except SnapshotError as err:
        return _fail(command, str(err), 2 if args.snapshot is not None else 1)


def _place(args: argparse.Namespace) -> int:
    return _guarded("place", _place_body, args)


def _manifests(args: argparse.Namespace, snap: ClusterSnapshot, docs: list[Any]) -> Any:
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
    for pod in expanded.pods:
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        if meta["namespace"] not in namespaces:
            raise manifests.ManifestError(
                f"pod {key} ({expanded.owner_of[key]}): namespace {meta['namespace']} not found"
            )
        try:
            compile_pod(pod)
        except (InvalidObject, AttributeError, TypeError, ValueError) as err:
            raise manifests.ManifestError(f"pod {key} ({expanded.owner_of[key]}): {err}") from None
    for line in expanded.warnings:
        print(f"berth sim: {line}", file=sys.stderr)
    return expanded


def _place_body(args: argparse.Namespace) -> int:
    from scheduler.sim import manifests, report, whatif
    from scheduler.sim.engine import owners

    docs = manifests.read(args.filename)  # a bad file fails before the cluster is listed
    base_config, other_config, snap, other, notes, source = _prepare(args, "place")
    expanded = _manifests(args, snap, docs)
    if not expanded.pods:
        print("berth sim: the manifests make no pods", file=sys.stderr)
    added = {**expanded.objects, "pods": expanded.pods}
    scenarios = []
    runs: list[tuple[str, ClusterSnapshot, SchedulerConfig, list[str]]] = [
        ("base", snap, base_config, [])
    ]
    if other is not None:
        runs.append(("what-if", other, other_config, notes))
    for title, cluster, config, lines in runs:
        full = whatif.with_objects(cluster, added)
        outcome = _run_sim(full, config, args.seed, title, order=args.order)
        _given_nodes(outcome, expanded.pods, full)
        owner_of = {**owners(full.of("pods")), **expanded.owner_of}
        scenarios.append(report.Scenario(title, outcome, owner_of, lines))
    _emit(args, scenarios, source)
    return 0


def _given_nodes(outcome: Any, pods: list[JSON], cluster: ClusterSnapshot) -> None:
    """Manifest pods that name their node (spec.nodeName) skip the scheduler: they are
    reported where they were put, or as invalid when the node does not exist (the kubelet
    would never run them)."""
    nodes = {str((n.get("metadata") or {}).get("name")) for n in cluster.of("nodes")}
    for pod in pods:
        node = pod["spec"].get("nodeName")
        if node:
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if node in nodes:
                outcome.placed[key] = node
            else:
                outcome.invalid[key] = f"spec.nodeName: no node named {node}"


def _emit(args: argparse.Namespace, scenarios: list[Any], source: str) -> None:
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


def _capacity(args: argparse.Namespace) -> int:
    return _guarded("capacity", _capacity_body, args)


def _capacity_body(args: argparse.Namespace) -> int:
    import orjson

    from scheduler.sim import capacity, manifests, report, whatif

    if args.max is not None and args.max < 1:
        raise UsageError("--max: must be at least 1")
    docs = manifests.read([args.filename])  # a bad file fails before the cluster is listed
    base_config, other_config, snap, other, notes, source = _prepare(args, "capacity")
    expanded = _manifests(args, snap, docs)
    if not expanded.pods:
        raise UsageError(f"-f {args.filename}: no pod or pod template in it")
    template = expanded.pods[0]
    name = expanded.owner_of[f"{template['metadata']['namespace']}/{template['metadata']['name']}"]
    if template["spec"].pop("nodeName", None):
        print("berth sim: capacity ignores the template's spec.nodeName", file=sys.stderr)
    served = [p.scheduler_name for p in base_config.profiles]
    if template["spec"]["schedulerName"] not in served:
        print(
            f"berth sim: the template names scheduler {template['spec']['schedulerName']};"
            f" its copies go to profile {served[0]}",
            file=sys.stderr,
        )
        template["spec"]["schedulerName"] = served[0]
    claims = {c["metadata"]["name"]: c for c in expanded.objects.pop("persistentvolumeclaims", [])}
    group_by = args.group_by or report.ZONE
    runs: list[tuple[str, ClusterSnapshot, SchedulerConfig, list[str]]] = [
        ("base", snap, base_config, [])
    ]
    if other is not None:
        runs.append(("what-if", other, other_config, notes))
    results: list[tuple[str, Any, Any]] = []
    for title, cluster, config, lines in runs:
        bound = capacity.upper_bound(cluster, template)
        limit = args.max if args.max is not None else capacity.DEFAULT_MAX
        offered = min(bound + 1, limit)
        pods, pvcs = capacity.copies(template, offered, claims)
        added = {**expanded.objects, "pods": pods, "persistentvolumeclaims": pvcs}
        full = whatif.with_objects(cluster, added)
        outcome = _run_sim(full, config, args.seed, f"{title}: {offered:,} copies")
        cap = capacity.summarise(outcome, template, offered, bound + 1 > limit, group_by)
        results.append((title, cap, report.Scenario(title, outcome, {}, lines)))
    if args.output == "json":
        doc = {
            "cluster": source,
            "pod": name,
            "groupBy": group_by,
            "scenarios": [
                {
                    "title": t,
                    "notes": list(s.notes),
                    "fits": c.fits,
                    "atLeast": c.capped,
                    "stopMessage": c.stop_message,
                    "groups": {
                        g: {"nodes": v.nodes, "fits": v.fits, "nodesFull": dict(v.limits)}
                        for g, v in sorted(c.groups.items())
                    },
                }
                for t, c, s in results
            ],
        }
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(f"# berth sim capacity: {source}\n")
        for title, cap, s in results:
            print(f"### {title}" + "".join(f"\n- {n}" for n in s.notes) + "\n")
            print(capacity.markdown(cap, name, group_by))
    if args.png is not None:
        out = argparse.Namespace(**{**vars(args), "output": "none"})
        _emit(out, [s for _, _, s in results], source)
    return 0


# --- shards ---------------------------------------------------------------------------------


def _shards(args: argparse.Namespace) -> int:
    from scheduler.sim.shards import ValuesError

    try:
        return _guarded("shards", _shards_body, args)
    except ValuesError as err:
        return _fail("shards", str(err))


def _synthetic(args: argparse.Namespace) -> ClusterSnapshot:
    from scheduler.bench import workloads
    from scheduler.sim.snapshot import ClusterSnapshot

    if args.synthetic_nodes < 1 or args.pools < 1 or args.zones < 1:
        raise UsageError("--synthetic-nodes, --pools and --zones: must be at least 1")
    nodes = workloads.get("basic", args.zones).nodes(args.synthetic_nodes)
    for i, node in enumerate(nodes):
        node["metadata"]["labels"]["pool"] = f"pool-{i % args.pools}"
    return ClusterSnapshot(
        objects={"namespaces": [{"metadata": {"name": args.namespace}}], "nodes": nodes},
        source=f"{args.synthetic_nodes:,} synthetic nodes in {args.pools} pools",
    )


def _shards_body(args: argparse.Namespace) -> int:
    import time

    import orjson

    from scheduler.bench import workloads
    from scheduler.config import ConfigError, parse
    from scheduler.sim import shards, whatif

    if args.rate is not None and not args.rate > 0:
        raise UsageError("--rate: must be a number > 0")
    values, rules = shards.read_values(args.values)
    configs = {}
    for shard in values:
        try:
            import plugins

            configs[shard.name] = parse(shard.config, plugins.registry().keys())
        except ConfigError as err:
            raise UsageError(
                f"--values: shard {shard.name}: invalid configuration:\n{err}"
            ) from None
    if args.synthetic_nodes:
        start = time.perf_counter()
        snap, source = _synthetic(args), ""
        source = f"{snap.source} (made in {time.perf_counter() - start:.1f} s)"
    else:
        snap, source = _load(args, "shards")
    if args.filename:
        from scheduler.sim import manifests

        pods = _manifests(args, snap, manifests.read(args.filename)).pods
    else:
        if args.synthetic_pods < 1:
            raise UsageError("--synthetic-pods: must be at least 1")
        pods = workloads.get("basic").pods(args.synthetic_pods, "default-scheduler")
        for i, pod in enumerate(pods):
            pod["metadata"].update(namespace=args.namespace, uid=f"synthetic-{i}")
    routed = shards.route(pods, values, rules, snap)
    rows = []
    for shard in values:
        full = whatif.with_objects(snap, {"pods": routed[shard.name]})
        outcome = _run_sim(full, configs[shard.name], args.seed, f"shard {shard.name}", args.rate)
        lat = outcome.latencies
        rows.append(
            {
                "shard": shard.name,
                "schedulerName": shard.scheduler_name,
                "nodes": len(outcome.nodes),
                "pods": len(routed[shard.name]),
                "placed": len(outcome.placed),
                "pending": len(outcome.pending),
                "seconds": round(outcome.seconds, 3),
                "podsPerSecond": round(len(outcome.placed) / outcome.seconds, 1)
                if outcome.seconds > 0
                else 0.0,
                "latencySeconds": {
                    "p50": round(shards.percentile(lat, 50), 4),
                    "p99": round(shards.percentile(lat, 99), 4),
                    "max": round(max(lat, default=0.0), 4),
                },
            }
        )
    if args.output == "json":
        doc = {"cluster": source, "rate": args.rate, "shards": rows}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    rate = f"{args.rate:,.0f} pods/s per shard" if args.rate else "all pods at once"
    print(f"# berth sim shards: {source}, {rate}\n")
    print(
        "| shard | nodes | pods | placed | pending | seconds | pods/s | latency p50 | p99 | max |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        lat = r["latencySeconds"]
        print(
            f"| {r['shard']} | {r['nodes']:,} | {r['pods']:,} | {r['placed']:,} "
            f"| {r['pending']:,} | {r['seconds']:.2f} | {r['podsPerSecond']:,.0f} "
            f"| {lat['p50']:.3f} s | {lat['p99']:.3f} s | {lat['max']:.3f} s |"
        )
    return 0
