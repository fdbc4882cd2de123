"""The `berth` command line: run | webhook | controller | explain | demo | bench | cluster.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler import __version__, flags, serving

if TYPE_CHECKING:
    from scheduler.config import SchedulerConfig


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

    run = sub.add_parser(
        "run",
        help="run the scheduler against a cluster (kube-scheduler's flags: docs/flags.md)",
        usage="berth run [flags]  (berth run -h lists them)",  # a bad flag: two lines, not 50
    )
    run.add_argument("--version", action="version", version=f"berth {__version__}")
    flags.add_run_flags(run)  # --config, deprecated, leader election, gates, metrics, logs
    serving.add_serving_flags(run)  # --secure-port, --port, --bind-address, authn/authz, TLS
    run.add_argument(
        "--api-unreachable-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="/healthz fails once the API server has not answered for this long while pods"
        " wait (0: never)",
    )
    run.add_argument(
        "--tie-break-seed",
        type=int,
        default=None,
        metavar="N",
        help="seed the random choice among equally scored nodes (berth sim --seed N"
        " predicts this run); default: unseeded, as kube-scheduler",
    )
    run.set_defaults(func=_run)

    webhook = sub.add_parser("webhook", help="mutating admission webhook: route pods to shards")
    webhook.add_argument("--rules", required=True, type=Path, help="shard rules YAML file")
    webhook.add_argument("--port", type=int, default=9443, help="HTTPS port for admission")
    webhook.add_argument("--bind-address", default="0.0.0.0")
    webhook.add_argument("--tls-cert", type=Path, default=None, help="serving certificate (PEM)")
    webhook.add_argument("--tls-key", type=Path, default=None, help="its private key (PEM)")
    webhook.add_argument(
        "--tls-ca", type=Path, default=None, help="CA bundle the API server trusts (optional)"
    )
    webhook.add_argument(
        "--cert-dir",
        type=Path,
        default=None,
        help="without --tls-cert/--tls-key: write a self-signed CA + cert here (ca.crt)",
    )
    webhook.add_argument(
        "--tls-san",
        action="append",
        default=None,
        help="host name or IP for the self-signed cert (repeatable; default localhost, 127.0.0.1)",
    )
    webhook.add_argument("--health-port", type=int, default=8080, help="/healthz; 0 = off")
    webhook.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, in-cluster")
    webhook.add_argument("--log-level", default="info")
    webhook.set_defaults(func=_webhook)

    controller = sub.add_parser(
        "controller", help="keep scheduler-plugins PodGroups' status (scheduling.x-k8s.io)"
    )
    controller.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, in-cluster")
    controller.add_argument(
        "--namespace", default=None, help="watch PodGroups and pods in this namespace only"
    )
    controller.add_argument("--health-port", type=int, default=8080, help="/healthz; 0 = off")
    controller.add_argument("--bind-address", default="0.0.0.0", help="for /healthz")
    controller.add_argument("--log-level", default="info")
    controller.set_defaults(func=_controller)

    from scheduler.sim.command import add_parser as add_sim

    add_sim(sub)

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
    cup.add_argument(
        "--controller-manager",
        action="store_true",
        help="run kube-controller-manager (every controller but node lifecycle)",
    )
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

    from scheduler import explain as explain_command  # argparse only; cheap to import

    explain = sub.add_parser(
        "explain",
        help="ask the leading berth why a pod is pending, why it went where it went, or why"
        " not to a given node",
    )
    explain_command.add_arguments(explain)
    explain.set_defaults(func=explain_command.main)

    from scheduler.bench import command as bench_command  # argparse only; cheap to import

    bench = sub.add_parser(
        "bench", help="berth vs upstream kube-scheduler vs a null binder, side by side"
    )
    bench_command.add_arguments(bench)
    bench.set_defaults(func=bench_command.main)
    return parser


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses
    import logging
    import signal

    import plugins
    from scheduler import features, logs
    from scheduler.app import App, ServeError, build_profiles
    from scheduler.config import ConfigError, parse, read_document
    from scheduler.handle import in_memory
    from scheduler.kube.client import Client, Credentials

    try:
        serving_options = serving.serving_options(args)
    except serving.ServingError as err:
        print(f"berth run: {err}", file=sys.stderr)
        return 2
    if not args.api_unreachable_timeout >= 0:  # NaN fails every comparison
        print(
            "berth run: --api-unreachable-timeout: must be a number >= 0 (0: never)",
            file=sys.stderr,
        )
        return 2
    # As kube-scheduler: feature gates first (PersistentPreRunE), then logging, then config.
    try:
        features.set_current(features.parse(args.feature_gates))
    except features.FeatureGateError as err:
        print(f"berth run: --feature-gates: {err}", file=sys.stderr)
        return 2
    log_options, alpha = flags.log_options(args)
    problems = logs.validate(log_options, alpha, features.enabled("LoggingAlphaOptions"))
    if problems:
        print(f"berth run: invalid logging flags: {'; '.join(problems)}", file=sys.stderr)
        return 2
    logs.setup(log_options)
    log = logging.getLogger("berth")
    try:
        registered = plugins.registry().keys()
    except plugins.PluginLoadError as err:
        print(f"berth run: cannot load the installed plugins: {err}", file=sys.stderr)
        return 2
    source = args.config or "(defaults and flags)"
    try:
        file_doc = read_document(args.config) if args.config else None
        config = parse(flags.config_document(args, file_doc), registered)
        # Plugin args are checked before anything touches the cluster: a bad config exits 2
        # naming its fields whether or not credentials are at hand.
        build_profiles(config, in_memory())
    except ConfigError as err:
        print(f"berth run: invalid configuration {source}:\n{err}", file=sys.stderr)
        return 2
    if unhonoured := features.unhonoured(features.current()):
        log.warning(
            "feature gates berth does not act on: it keeps its behaviour (docs/flags.md)",
            extra={"gates": unhonoured},
        )
    if ignored := flags.ignored_flags(args):
        log.warning("deprecated flags ignored: --config is given", extra={"flags": ignored})
    if args.write_config_to:
        return _write_config(config, args.write_config_to)
    conn = config.client_connection
    kubeconfig = conn.kubeconfig or None
    try:
        creds = Credentials.load(kubeconfig)
    except Exception as err:  # kubernetes' ConfigException, a missing or unreadable file
        if not args.master:
            where = kubeconfig or "$KUBECONFIG / in-cluster service account"
            print(f"berth run: cannot load cluster credentials ({where}): {err}", file=sys.stderr)
            return 1
        creds = Credentials(server=args.master)  # client-go: --master alone, no credentials
    if args.master:  # overrides the kubeconfig's server, as upstream's BuildConfigFromFlags
        creds = dataclasses.replace(creds, server=args.master.rstrip("/"))

    async def main() -> int:
        # SIGTERM (a pod being deleted) and SIGINT stop berth the way kube-scheduler stops:
        # the run is cancelled, so a leader releases its Lease for a standby to take at once,
        # and queued events and status writes get a moment to go out. Exit code 0.
        loop = asyncio.get_running_loop()
        running = asyncio.current_task()
        assert running is not None
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, running.cancel)
        client = Client(creds, qps=conn.qps, burst=conn.burst)
        async with client:
            app = App(
                config,
                client,
                serving=serving_options,
                api_unreachable_timeout=args.api_unreachable_timeout,
                tie_break_seed=args.tie_break_seed,
            )
            # Not a configuration field upstream either: a flag for the queue alone.
            app.queue.unschedulable_flush = flags.unschedulable_flush_seconds(args)
            app.metrics.disable(flags.metrics_options(args).disabled)
            try:
                return await app.run()
            except asyncio.CancelledError:
                logging.getLogger("berth").info("terminating on a signal")
                return 0

    try:
        import uvloop

        uvloop.install()  # a faster event loop where it is available
    except ImportError:
        pass
    try:
        code: int = asyncio.run(main())
    except ConfigError as err:
        print(f"berth run: invalid configuration {source}:\n{err}", file=sys.stderr)
        return 2
    except ServeError as err:
        print(f"berth run: {err}", file=sys.stderr)
        return 1
    logging.getLogger("berth").info("stopped", extra={"code": code})
    return code


def _write_config(config: SchedulerConfig, path: str) -> int:
    """--write-config-to: the defaulted configuration (v1 YAML), then exit 0, as
    kube-scheduler's LogOrWriteConfig; a file that cannot be written is exit 1."""
    import logging

    import yaml

    from scheduler.configdump import to_v1

    try:
        Path(path).write_text(yaml.safe_dump(to_v1(config), sort_keys=True), encoding="utf-8")
    except OSError as err:
        print(f"berth run: --write-config-to: {err.strerror or err}: {path}", file=sys.stderr)
        return 1
    logging.getLogger("berth").info("Wrote configuration", extra={"file": path})
    return 0


def _webhook(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler.logs import setup
    from scheduler.webhook import RulesError, TlsFiles, WebhookOptions, load_rules, serve

    setup(args.log_level)
    try:
        rules = load_rules(args.rules)
    except RulesError as err:
        print(f"berth webhook: invalid rules {args.rules}:\n{err}", file=sys.stderr)
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("berth webhook: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    tls = None
    if args.tls_cert is not None:
        tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_ca or args.tls_cert)
    options = WebhookOptions(
        rules=rules,
        port=args.port,
        bind_address=args.bind_address,
        tls=tls,
        hosts=tuple(args.tls_san or ("localhost", "127.0.0.1")),
        cert_dir=args.cert_dir,
        kubeconfig=args.kubeconfig,
        health_port=args.health_port or None,
    )
    asyncio.run(serve(options))
    return 0


def _controller(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler.controller import ControllerOptions, serve
    from scheduler.kube.client import Credentials
    from scheduler.labels import is_dns1123_label
    from scheduler.logs import setup

    problems = is_dns1123_label(args.namespace) if args.namespace is not None else []
    if problems:
        print(f"berth controller: --namespace: {'; '.join(problems)}", file=sys.stderr)
        return 2
    if not 0 <= args.health_port <= 65535:
        print("berth controller: --health-port: must be a port number (0: off)", file=sys.stderr)
        return 2
    setup(args.log_level)
    try:
        Credentials.load(args.kubeconfig)
    except Exception as err:  # kubernetes' ConfigException, a missing or unreadable file
        where = args.kubeconfig or "$KUBECONFIG / in-cluster service account"
        print(
            f"berth controller: cannot load cluster credentials ({where}): {err}", file=sys.stderr
        )
        return 1
    options = ControllerOptions(
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        health_port=args.health_port or None,
        bind_address=args.bind_address,
    )
    try:
        asyncio.run(serve(options))
    except OSError as err:  # the health port is taken, or the address is not ours
        print(
            f"berth controller: cannot serve on {args.bind_address}:{args.health_port}: "
            f"{err.strerror or err}",
            file=sys.stderr,
        )
        return 1
    return 0


def _cluster_up(args: argparse.Namespace) -> int:
    from scheduler.harness import plane
    from scheduler.harness.binaries import MissingBinary, UnsupportedVersion
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
        controller_manager=args.controller_manager,
        scheduler_qps=args.scheduler_qps,
        scheduler_burst=args.scheduler_burst,
    )
    try:
        state = plane.up(args.dir, spec, log=_say)
    except UnsupportedVersion as err:  # a usage error, as hack/build.sh says it
        print(f"berth cluster up: {err}", file=sys.stderr)
        return 2
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
        print(f"{name:24} pid {pid:<8} {'running' if name in alive else 'stopped'}")
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
