"""The `berth` command line: run | demo | cluster up/down/status.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scheduler import __version__


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description="A Kubernetes scheduler.")
    parser.add_argument("--version", action="version", version=f"berth {__version__}")
    sub = parser.add_subparsers(title="commands")

    run = sub.add_parser("run", help="run the scheduler against a cluster")
    run.add_argument(
        "--config",
        required=True,
        type=Path,
        help="KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) file",
    )
    run.add_argument(
        "--kubeconfig",
        default=None,
        help="default: clientConnection.kubeconfig, $KUBECONFIG, then in-cluster",
    )
    run.add_argument("--port", type=int, default=10259, help="metrics and health port")
    run.add_argument("--bind-address", default="0.0.0.0")
    run.add_argument("--log-level", default="info")
    run.set_defaults(func=_run)

    cluster = sub.add_parser("cluster", help="a local control plane on loopback (tests, demos)")
    csub = cluster.add_subparsers(title="cluster commands")
    cup = csub.add_parser("up", help="start etcd + kube-apiserver and create fake nodes")
    cup.add_argument("--dir", required=True, type=Path, help="state directory (kubeconfig, logs)")
    cup.add_argument("--nodes", type=int, default=3)
    cup.add_argument("--zones", type=int, default=1)
    cup.add_argument("--node-cpu", default="32")
    cup.add_argument("--node-memory", default="256Gi")
    cup.add_argument("--node-pods", type=int, default=110)
    cup.add_argument(
        "--kube-scheduler",
        action="store_true",
        help="also run upstream kube-scheduler (schedulerName default-scheduler)",
    )
    cup.add_argument(
        "--scheduler-qps",
        type=float,
        default=50.0,
        help="kube-scheduler clientConnection.qps (upstream default 50)",
    )
    cup.add_argument(
        "--scheduler-burst",
        type=int,
        default=100,
        help="kube-scheduler clientConnection.burst (upstream default 100)",
    )
    cup.add_argument("--kwok", action="store_true", help="run KWOK so bound pods turn Running")
    cup.set_defaults(func=_cluster_up)
    cdown = csub.add_parser("down", help="stop everything `up` started and remove its data")
    cdown.add_argument("--dir", required=True, type=Path)
    cdown.set_defaults(func=_cluster_down)
    cstatus = csub.add_parser("status", help="show what is running")
    cstatus.add_argument("--dir", required=True, type=Path)
    cstatus.set_defaults(func=_cluster_status)

    demo = sub.add_parser(
        "demo", help="schedule a mixed workload with berth on a local cluster (or KUBECONFIG's)"
    )
    demo.add_argument("--dir", type=Path, default=Path("out/demo"))
    demo.add_argument("--nodes", type=int, default=100)
    demo.add_argument("--zones", type=int, default=3)
    demo.set_defaults(func=_demo)
    return parser


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    import plugins
    from scheduler.app import App
    from scheduler.config import ConfigError, load
    from scheduler.kube.client import Client
    from scheduler.logs import setup

    setup(args.log_level)
    try:
        config = load(args.config, plugins.registry().keys())
    except ConfigError as err:
        print(f"berth run: invalid configuration {args.config}:\n{err}", file=sys.stderr)
        return 2
    conn = config.client_connection
    kubeconfig = args.kubeconfig or conn.kubeconfig or None

    async def main() -> int:
        client = Client.from_kubeconfig(kubeconfig, qps=conn.qps, burst=conn.burst)
        async with client:
            app = App(config, client, port=args.port, host=args.bind_address)
            return await app.run()

    try:
        import uvloop

        uvloop.install()  # a faster event loop where it is available
    except ImportError:
        pass
    try:
        code: int = asyncio.run(main())
    except ConfigError as err:
        print(f"berth run: invalid configuration {args.config}:\n{err}", file=sys.stderr)
        return 2
    logging.getLogger("berth").info("stopped", extra={"code": code})
    return code


def _cluster_up(args: argparse.Namespace) -> int:
    from scheduler.harness import plane
    from scheduler.harness.binaries import MissingBinary
    from scheduler.harness.nodes import NodeShape

    if args.nodes < 0 or args.zones < 1:
        print("berth cluster up: --nodes must be >= 0 and --zones >= 1", file=sys.stderr)
        return 2
    spec = plane.ClusterSpec(
        nodes=args.nodes,
        shape=NodeShape(
            cpu=args.node_cpu, memory=args.node_memory, pods=args.node_pods, zones=args.zones
        ),
        kube_scheduler=args.kube_scheduler,
        kwok=args.kwok,
        scheduler_qps=args.scheduler_qps,
        scheduler_burst=args.scheduler_burst,
    )
    try:
        state = plane.up(args.dir, spec, log=_say)
    except (plane.ClusterError, MissingBinary) as err:
        print(f"berth cluster up: {err}", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={state.kubeconfig}")
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    from scheduler.harness import plane

    plane.down(args.dir, log=_say)
    return 0


def _cluster_status(args: argparse.Namespace) -> int:
    from scheduler.harness import plane

    state = plane.ClusterState.load(args.dir.resolve())
    if state is None:
        print(f"no cluster in {args.dir}")
        return 1
    alive = state.running()
    for name, pid in state.pids.items():
        print(f"{name:16} pid {pid:<8} {'running' if name in alive else 'stopped'}")
    print(f"server {state.server}\nkubeconfig {state.kubeconfig}")
    return 0 if alive else 1


def _demo(args: argparse.Namespace) -> int:
    import os

    from scheduler import demo
    from scheduler.harness.binaries import MissingBinary
    from scheduler.harness.plane import ClusterError

    try:
        return demo.main(args.dir.resolve(), args.nodes, args.zones, os.environ.get("KUBECONFIG"))
    except (ClusterError, MissingBinary) as err:
        print(f"berth demo: {err}", file=sys.stderr)
        return 1


def _say(message: str) -> None:
    print(f"berth: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
