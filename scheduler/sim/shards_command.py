"""`berth sim shards` (docs/sim.md): the command's body."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from scheduler.sim.common import UsageError, expand_manifests, load_cluster, run_sim

if TYPE_CHECKING:
    from scheduler.sim.snapshot import ClusterSnapshot


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


def shards(args: argparse.Namespace) -> int:
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
        snap, source = load_cluster(args, "shards")
    if args.filename:
        from scheduler.sim import manifests

        pods = expand_manifests(args, snap, manifests.read(args.filename)).pods
    else:
        if args.synthetic_pods < 1:
            raise UsageError("--synthetic-pods: must be at least 1")
        pods = workloads.get("basic").pods(args.synthetic_pods, "default-scheduler")
        for i, pod in enumerate(pods):
            pod["metadata"].update(namespace=args.namespace, uid=f"synthetic-{i}")
    routed = shards.route(pods, values, rules, snap)
    rows = []
    seen: set[str] = set()
    shared = 0
    for shard in values:
        full = whatif.with_objects(snap, {"pods": routed[shard.name]})
        outcome = run_sim(full, configs[shard.name], args.seed, f"shard {shard.name}", args.rate)
        shared += len(seen & outcome.nodes.keys())
        seen |= outcome.nodes.keys()
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
    if shared:
        print(
            f"berth sim: node pools overlap: {shared:,} nodes are in more than one shard (the"
            " chart asks for disjoint nodeSelectors; each shard counted them as its own)",
            file=sys.stderr,
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
