"""kube-scheduler's command line for `berth run` (cmd/kube-scheduler/app/options, v1.37.2).

`add_run_flags(parser)` adds every kube-scheduler flag except the serving ones (--secure-port,
--bind-address, TLS, authn/authz: scheduler/serving.py), with upstream's names, value syntax
and defaults; `config_document(args, file_doc)` applies them to the configuration the way
upstream's `Options.ApplyTo` does:

- **No --config**: the defaulted configuration, then the deprecated flags (`--kubeconfig`,
  `--kube-api-qps`, `--kube-api-burst`, `--kube-api-content-type`, `--profiling`,
  `--contention-profiling`: `ApplyDeprecated`) and the leader-election flags.
- **--config FILE**: the file; only the leader-election flags (`--leader-elect*`) override it
  (`ApplyLeaderElectionTo`). The deprecated flags are ignored, as upstream ignores them (berth
  also says so in one warning), with one berth exception kept from before these flags:
  `--kubeconfig` is used when the file's `clientConnection.kubeconfig` is empty.
- `--pod-max-in-unschedulable-pods-duration` applies either way (it has no config field).

A flag only counts when it is on the command line (pflag's `Changed`): argparse defaults
here are None and upstream's defaults come from the configuration's own defaulting.

Values are checked as pflag parses them (a Go bool, a Go duration, an int32, ...); a bad one is
argparse's usage error naming the flag, exit 2. The resulting document goes through
`config.parse`, so a flag value the configuration refuses (a zero lease duration) is reported
with the field path, as upstream's validation reports it.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.decode import NS_PER_S, parse_go_duration
from scheduler.logs import LogOptions

__all__ = [
    "DEPRECATED_FLAGS",
    "LEADER_ELECTION_FLAGS",
    "MetricsOptions",
    "add_run_flags",
    "config_document",
    "go_bool",
    "go_duration",
    "ignored_flags",
    "log_options",
    "metrics_options",
    "unschedulable_flush_seconds",
]

# Flag (argparse dest) -> (config section, field) for the flags ApplyDeprecated copies.
DEPRECATED_FLAGS: Mapping[str, tuple[str | None, str]] = {
    "kubeconfig": ("clientConnection", "kubeconfig"),
    "kube_api_content_type": ("clientConnection", "contentType"),
    "kube_api_qps": ("clientConnection", "qps"),
    "kube_api_burst": ("clientConnection", "burst"),
    "profiling": (None, "enableProfiling"),
    "contention_profiling": (None, "enableContentionProfiling"),
}
# Flag (argparse dest) -> leaderElection field, for ApplyLeaderElectionTo.
LEADER_ELECTION_FLAGS: Mapping[str, str] = {
    "leader_elect": "leaderElect",
    "leader_elect_lease_duration": "leaseDuration",
    "leader_elect_renew_deadline": "renewDeadline",
    "leader_elect_retry_period": "retryPeriod",
    "leader_elect_resource_lock": "resourceLock",
    "leader_elect_resource_name": "resourceName",
    "leader_elect_resource_namespace": "resourceNamespace",
}
_UNSCHEDULABLE_FLUSH_DEFAULT = 300.0  # upstream's DefaultPodMaxInUnschedulablePodsDuration
_INT32 = 2**31 - 1
_KUBE_VERSION = "1.37"


# --- value types: pflag's parsing, argparse's errors ------------------------------------------


def go_bool(text: str) -> bool:
    """strconv.ParseBool, as a pflag bool flag's `--flag=value`."""
    value = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}.get(text)
    if value is None:
        value = {"0": False, "f": False, "F": False, "FALSE": False, "false": False}.get(text)
    if value is None and text == "False":
        value = False
    if value is None:
        raise argparse.ArgumentTypeError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    return value


def go_duration(text: str) -> str:
    """A Go duration ("15s", "1m30s"); kept as written, for the configuration to decode."""
    if parse_go_duration(text) is None:
        raise argparse.ArgumentTypeError(f'time: invalid duration "{text}"')
    return text


def _float32(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'strconv.ParseFloat: parsing "{text}": invalid syntax'
        ) from None
    if math.isnan(value) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return value


def _int32(text: str) -> int:
    try:
        value = int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'strconv.ParseInt: parsing "{text}": invalid syntax'
        ) from None
    if not -_INT32 - 1 <= value <= _INT32:
        raise argparse.ArgumentTypeError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def _verbosity(text: str) -> int:
    """klog's -v: an unsigned 32-bit level."""
    if not text.isdigit() or int(text) > _INT32:
        raise argparse.ArgumentTypeError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    return int(text)


_VMODULE_ITEM = re.compile(r"^([^=,]+)=(\d+)$")


def _vmodule(text: str) -> str:
    """klog's -vmodule: comma-separated pattern=N."""
    for item in filter(None, text.split(",")):
        if not _VMODULE_ITEM.match(item):
            raise argparse.ArgumentTypeError(f"expect comma-separated list of pattern=N: {item}")
    return text


_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[kmun]|e[0-9]+)?$")


def _quantity(text: str) -> str:
    if not _QUANTITY.match(text):
        raise argparse.ArgumentTypeError(f"quantities must match the regular expression: {text}")
    return text


def _version(text: str) -> str:
    """--emulated-version / --min-compatibility-version: `[kube=]1.37`; berth is v1.37 only."""
    for item in filter(None, text.split(",")):
        component, _, version = item.rpartition("=")
        if component not in ("", "kube"):
            raise argparse.ArgumentTypeError(f"component not registered: {component}")
        if version.strip().lstrip("v") != _KUBE_VERSION:
            raise argparse.ArgumentTypeError(
                f"berth implements kube-scheduler {_KUBE_VERSION} only (got {version})"
            )
    return text


def _metric_labels(text: str) -> dict[str, str]:
    """pflag StringToString: `metric,label=v1,v2` pairs; a key holds a comma itself, so pairs
    are split where a new `name,label=` starts."""
    out: dict[str, str] = {}
    for pair in re.split(r",(?=[^,=]+,[^,=]+=)", text):
        key, sep, value = pair.partition("=")
        if not sep or key.count(",") != 1:
            raise argparse.ArgumentTypeError(f"{pair} must be formatted as key=value")
        out[key] = value
    return out


_HIDDEN_VERSION = re.compile(r"^\d+\.\d+$")


def _hidden_metrics_version(text: str) -> str:
    """component-base's validation: only the previous minor may be shown."""
    if not _HIDDEN_VERSION.match(text):
        raise argparse.ArgumentTypeError(
            f"illegal version specified: {text} (the format is <major>.<minor>)"
        )
    if text != "1.36":
        raise argparse.ArgumentTypeError(
            f"--show-hidden-metrics-for-version: {text} is not allowed; the only allowed "
            "version is the previous minor version (1.36)"
        )
    return text


# --- the flags --------------------------------------------------------------------------------


def add_run_flags(run: argparse.ArgumentParser) -> None:
    """kube-scheduler's misc, deprecated, leader-election, feature-gate, metrics and logs flag
    sets. Bool flags take `--flag`, `--flag=true|false` (pflag's NoOptDefVal "true")."""
    misc = run.add_argument_group("misc")
    misc.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) file; without it, "
        "upstream's defaulted configuration and the deprecated flags",
    )
    misc.add_argument(
        "--write-config-to",
        default=None,
        metavar="FILE",
        help="write the defaulted configuration (v1) to this file and exit",
    )
    misc.add_argument(
        "--master",
        default=None,
        help="the API server's address (overrides any value in kubeconfig)",
    )

    dep = run.add_argument_group("deprecated (ignored when --config is given)")
    dep.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file; with --config, used only when clientConnection.kubeconfig is "
        "empty (default: $KUBECONFIG, then in-cluster)",
    )
    dep.add_argument("--kube-api-content-type", default=None, metavar="TYPE")
    dep.add_argument("--kube-api-qps", type=_float32, default=None, metavar="QPS")
    dep.add_argument("--kube-api-burst", type=_int32, default=None, metavar="N")
    _bool(dep, "--profiling", "enable /debug/pprof (berth: accepted)")
    _bool(dep, "--contention-profiling", "enable block profiling (berth: accepted)")
    dep.add_argument(
        "--pod-max-in-unschedulable-pods-duration",
        type=go_duration,
        default=None,
        metavar="DURATION",
        help="longest a pod stays unschedulable before it is retried (default 5m0s)",
    )

    le = run.add_argument_group("leader election")
    _bool(le, "--leader-elect", "take part in leader election before scheduling")
    for name in ("lease-duration", "renew-deadline", "retry-period"):
        le.add_argument(
            f"--leader-elect-{name}", type=go_duration, default=None, metavar="DURATION"
        )
    for name in ("resource-lock", "resource-name", "resource-namespace"):
        le.add_argument(f"--leader-elect-{name}", default=None)

    fg = run.add_argument_group("feature gate")
    fg.add_argument(
        "--feature-gates",
        action="append",
        default=[],
        metavar="[kube:]NAME=BOOL,...",
        help="kube-scheduler's feature gates (repeatable); see docs/flags.md",
    )
    fg.add_argument("--emulated-version", type=_version, default=None, help="1.37 only")
    fg.add_argument("--min-compatibility-version", type=_version, default=None, help="1.37 only")

    metrics = run.add_argument_group("metrics")
    metrics.add_argument(
        "--show-hidden-metrics-for-version", type=_hidden_metrics_version, default=None
    )
    metrics.add_argument(
        "--disabled-metrics",
        action="append",
        default=[],
        metavar="NAME,...",
        help="fully qualified metric names not to export",
    )
    metrics.add_argument(
        "--allow-metric-labels",
        action="append",
        type=_metric_labels,
        default=[],
        metavar="METRIC,LABEL=V1,V2",
    )
    metrics.add_argument("--allow-metric-labels-manifest", default=None, metavar="FILE")

    logs = run.add_argument_group("logs")
    logs.add_argument(
        "-v",
        "--v",
        dest="verbosity",
        type=_verbosity,
        default=None,
        metavar="N",
        help="log verbosity: 0-1 info, 2-3 info (default), 4+ debug",
    )
    logs.add_argument("--vmodule", type=_vmodule, default=None, metavar="PATTERN=N,...")
    logs.add_argument(
        "--logging-format",
        choices=("text", "json"),
        default="json",
        help="log format (berth's default: json)",
    )
    logs.add_argument("--log-flush-frequency", type=go_duration, default="5s", metavar="DURATION")
    for fmt in ("text", "json"):
        _bool(logs, f"--log-{fmt}-split-stream", "[Alpha] info to stdout, errors to stderr")
        logs.add_argument(
            f"--log-{fmt}-info-buffer-size", type=_quantity, default=None, metavar="QUANTITY"
        )
    logs.add_argument(
        "--log-level",
        default=None,
        choices=("debug", "info", "warning", "error", "DEBUG", "INFO", "WARNING", "ERROR"),
        help="berth's own: the Python log level (wins over -v)",
    )


def _bool(group: Any, flag: str, help_text: str) -> None:
    group.add_argument(
        flag, type=go_bool, nargs="?", const=True, default=None, metavar="BOOL", help=help_text
    )


# --- applying them ----------------------------------------------------------------------------


def config_document(args: argparse.Namespace, file_doc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The KubeSchedulerConfiguration document to parse: `file_doc` (the --config file's
    mapping) or, without one, an empty v1 document, with the flags applied by upstream's rules
    (module docstring). The input is not changed."""
    from scheduler.config import API_VERSION, KIND

    if file_doc is None:
        doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
        for dest, (section, key) in DEPRECATED_FLAGS.items():
            value = getattr(args, dest, None)
            if value is not None:
                _put(doc, section, key, value)
    else:
        doc = dict(file_doc)
        conn = doc.get("clientConnection")
        written = conn.get("kubeconfig") if isinstance(conn, Mapping) else None
        if args.kubeconfig and not written:
            _put(doc, "clientConnection", "kubeconfig", args.kubeconfig)
    for dest, key in LEADER_ELECTION_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            _put(doc, "leaderElection", key, value)
    return doc


def ignored_flags(args: argparse.Namespace) -> list[str]:
    """The deprecated flags given alongside --config, which upstream (and berth) ignore;
    --kubeconfig counts only when the file names a kubeconfig of its own."""
    if args.config is None:
        return []
    return [
        "--" + dest.replace("_", "-")
        for dest in DEPRECATED_FLAGS
        if dest != "kubeconfig" and getattr(args, dest, None) is not None
    ]


def unschedulable_flush_seconds(args: argparse.Namespace) -> float:
    """--pod-max-in-unschedulable-pods-duration in seconds (default 300)."""
    text = args.pod_max_in_unschedulable_pods_duration
    if text is None:
        return _UNSCHEDULABLE_FLUSH_DEFAULT
    ns = parse_go_duration(text)
    assert ns is not None  # checked when parsed
    return ns / NS_PER_S


def log_options(args: argparse.Namespace) -> tuple[LogOptions, list[str]]:
    """The logging flags as logs.LogOptions (the chosen format's split-stream and buffer
    flags), and the alpha options set, as the field paths logs.validate names."""
    fmt = args.logging_format
    alpha = [
        f"options.{name}.{field_name}"
        for name in ("text", "json")
        for field_name, dest in (
            ("splitStream", f"log_{name}_split_stream"),
            ("infoBufferSize", f"log_{name}_info_buffer_size"),
        )
        if getattr(args, dest) is not None
    ]
    options = LogOptions(
        format=fmt,
        verbosity=args.verbosity,
        vmodule=args.vmodule or "",
        level=args.log_level,
        split_stream=bool(getattr(args, f"log_{fmt}_split_stream")),
        info_buffer_size=getattr(args, f"log_{fmt}_info_buffer_size"),
    )
    return options, alpha


def _put(doc: dict[str, Any], section: str | None, key: str, value: Any) -> None:
    if section is None:
        doc[key] = value
        return
    current = doc.get(section)
    if current is not None and not isinstance(current, Mapping):
        return  # the file's section is of the wrong type: left for parse() to name
    merged = dict(current) if current is not None else {}
    merged[key] = value
    doc[section] = merged


@dataclass(frozen=True)
class MetricsOptions:
    """component-base metrics.Options: names not to export, label value allow-lists
    ("metric,label" -> allowed values), the hidden-metrics version asked for."""

    disabled: frozenset[str] = frozenset()
    allow_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    show_hidden_for: str | None = None


def metrics_options(args: argparse.Namespace) -> MetricsOptions:
    """The metric flags (the manifest file is not read: docs/flags.md)."""
    allow: dict[str, tuple[str, ...]] = {}
    for mapping in args.allow_metric_labels:
        for key, value in mapping.items():
            allow[key] = tuple(v.strip() for v in value.split(",") if v.strip())
    disabled = {
        name.strip() for item in args.disabled_metrics for name in item.split(",") if name.strip()
    }
    return MetricsOptions(frozenset(disabled), allow, args.show_hidden_metrics_for_version)
