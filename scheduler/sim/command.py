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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

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


# --- snapshot -------------------------------------------------------------------------------


def _snapshot(args: argparse.Namespace) -> int:
    from scheduler.sim import snapshot
    from scheduler.sim.common import fail, progress, take

    if args.out.is_dir() or not args.out.parent.is_dir():
        return fail("snapshot", f"--out: not a file in an existing directory: {args.out}")
    try:
        snap = asyncio.run(take(args.kubeconfig, progress()))
    except snapshot.SnapshotError as err:
        return fail("snapshot", str(err), 1)
    try:
        size = snapshot.save(snap, args.out)
    except OSError as err:
        return fail("snapshot", f"--out: {err.strerror or err}: {args.out}", 1)
    counts = ", ".join(f"{n:,} {k}" for k, n in snap.counts().items())
    print(f"wrote {args.out} ({size:,} bytes): {counts}")
    for key, why in snap.missing.items():
        print(f"  {key}: {why} (simulated as none)")
    return 0


def _place(args: argparse.Namespace) -> int:
    from scheduler.sim import place_command
    from scheduler.sim.common import guarded

    return guarded("place", place_command.place, args)


def _capacity(args: argparse.Namespace) -> int:
    from scheduler.sim import place_command
    from scheduler.sim.common import guarded

    return guarded("capacity", place_command.capacity, args)


def _shards(args: argparse.Namespace) -> int:
    from scheduler.sim import shards_command
    from scheduler.sim.common import fail, guarded
    from scheduler.sim.shards import ValuesError

    try:
        return guarded("shards", shards_command.shards, args)
    except ValuesError as err:
        return fail("shards", str(err))
