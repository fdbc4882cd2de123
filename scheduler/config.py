"""KubeSchedulerConfiguration `kubescheduler.config.k8s.io/v1`: parse, default and validate.

berth reads the same configuration file as kube-scheduler v1.37 and gives it the same meaning.
A document goes through three steps, each mirroring an upstream stage:

1. **Decode** (upstream: the strict codec). Every mapping is checked against its known field
   names, so a misspelt or unknown field is an error, and every value against its Go type: an
   `int32` must be a YAML integer in range (not a bool, not `1.0`), a duration must be a Go
   duration string such as `"15s"`, and so on.
2. **Default** (upstream: `pkg/scheduler/apis/config/v1/defaults.go` and component-base's
   recommended leader-election defaults). A missing or null field takes the upstream default;
   like upstream, `qps: 0`, `burst: 0` and zero leader-election durations also mean "default"
   (for the client limits, berth's default: see below).
   `percentageOfNodesToScore` stays `None` when unset, which means adaptive, like 0.
3. **Validate** (upstream: `pkg/scheduler/apis/config/validation` and component-base's
   leader-election validation, plus client-go's leader-elector checks, which kube-scheduler would
   otherwise hit at start-up).

Every problem found is collected and raised together as one `ConfigError` whose entries read
`field.path: message (got <bad value>)`.

Plugins are kept as the user wrote them (`Profile.plugins`, un-merged). `expand_plugins()` then
does what upstream splits between `mergePlugins` (defaulting) and the framework's multiPoint
expansion: it needs the default plugin list and which extension points each plugin implements,
which belong to the plugin registry rather than to this module, so the engine calls it once per
profile when it builds the framework. Plugin-set errors that need that knowledge (a plugin
enabled twice at one point, a plugin enabled at a point it does not implement, no bind plugin)
are raised from there, also as `ConfigError`.

Plugin args (`pluginConfig[].args`) go through the same three steps, with the same decoding
layer (scheduler/decode.py): a plugin with an upstream args type (DefaultPreemption,
InterPodAffinity, NodeAffinity, NodeResourcesBalancedAllocation, NodeResourcesFit,
PodTopologySpread, VolumeBinding, DynamicResources) has its args decoded strictly, defaulted and
validated as upstream's (scheduler/pluginargs.py), every error carrying its full path, e.g.
`profiles[0].pluginConfig[2].args.scoringStrategy.type`; `Profile.plugin_config` then holds the
typed args, which the engine hands to the plugin's `new()`. Args of other plugins (out-of-tree
ones included) stay the mapping the user wrote, as upstream leaves them undecoded. Either way
`apiVersion`/`kind`, if given, must match the plugin.

Where berth differs from upstream, on purpose:

- `nodeSelector` (top level) is a **berth extension** for sharding: a map of node label key to
  value, in Kubernetes label syntax. A berth instance only sees nodes carrying all of these
  labels, so several schedulers can split one cluster. The default `{}` selects every node.
- `extenders` (scheduler/extenders.py) are upstream's, but `urlPrefix` must be an http(s) URL.
- `clientConnection.contentType` may be JSON or protobuf, but berth always speaks JSON; any other
  value is an error.
- `clientConnection.qps`/`burst` default to 1000/2000 (`DEFAULT_CLIENT_QPS`/`_BURST`), not
  kube-scheduler's 50/100, which would cap a burst at about 50 bindings a second; the API
  server's Priority and Fairness protects it, not the client (docs/compat.md, measured in
  docs/performance.md). An explicit value wins; 0 or a missing field means this default.
- A plugin name that berth does not know is an error everywhere, `disabled` lists included
  (upstream silently ignores unknown names in `disabled`).
- `enableProfiling`, `enableContentionProfiling`, `delayCacheUntilActive` and
  `clientConnection.acceptContentTypes` are accepted and type-checked; berth may ignore them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from scheduler import pluginargs
from scheduler.decode import (
    INT64,
    NS_PER_S,
    ConfigError,
    Section,
    default,
    fmt_ns,
    q,
    show,
)
from scheduler.extenders import ExtenderConfig, ignored_resources, parse_extenders
from scheduler.labels import is_qualified_name, is_valid_label_value

__all__ = [
    "API_VERSION",
    "DEFAULT_CLIENT_BURST",
    "DEFAULT_CLIENT_QPS",
    "DEFAULT_SCHEDULER_NAME",
    "EXTENSION_POINTS",
    "KIND",
    "MULTI_POINT",
    "ClientConnection",
    "ConfigError",
    "LeaderElection",
    "PluginRef",
    "PluginSet",
    "Profile",
    "SchedulerConfig",
    "expand_plugins",
    "load",
    "parse",
    "read_document",
]

API_VERSION = pluginargs.API_VERSION
KIND = "KubeSchedulerConfiguration"
DEFAULT_SCHEDULER_NAME = "default-scheduler"

MULTI_POINT = "multiPoint"
EXTENSION_POINTS = (
    "preEnqueue",
    "queueSort",
    "preFilter",
    "filter",
    "postFilter",
    "preScore",
    "score",
    "reserve",
    "permit",
    "preBind",
    "bind",
    "postBind",
)
_ALL_POINTS = (MULTI_POINT, *EXTENSION_POINTS)
# v1.36/v1.37's workload-aware points (TopologyAwareWorkloadScheduling, alpha, off). Upstream's
# own --write-config-to writes them empty, so berth reads them; it runs no plugin there, so an
# `enabled` entry is refused, and `disabled` ones change nothing.
GROUP_POINTS = ("placementGenerate", "placementScore", "podGroupPostFilter")
_WILDCARD = "*"

# berth's client limits when clientConnection leaves them unset or 0 (kube-scheduler: 50/100).
# Chosen by `berth bench --qps upstream-default` at 5,000 nodes (docs/performance.md): the
# limiter must not be what caps a burst; batch schedulers go as high (YuniKorn 1000, Volcano
# 2000), and an API server with Priority and Fairness queues or rejects what it cannot take.
# The burst is two seconds' worth, as kube-scheduler's 100 is of its 50.
DEFAULT_CLIENT_QPS = 1000.0
DEFAULT_CLIENT_BURST = 2000

CONTENT_TYPE_JSON = "application/json"
_CONTENT_TYPE_PROTOBUF = "application/vnd.kubernetes.protobuf"

# client-go's leaderelection.JitterFactor: renewDeadline must exceed retryPeriod times this.
_JITTER_FACTOR = 1.2
# Plugins that upstream's validation rejects by name in v1 (removed in-tree volume limits).
_REMOVED_PLUGINS = frozenset({"AzureDiskLimits", "CinderLimits", "EBSLimits", "GCEPDLimits"})


_TOP_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "parallelism",
        "leaderElection",
        "clientConnection",
        "enableProfiling",
        "enableContentionProfiling",
        "percentageOfNodesToScore",
        "podInitialBackoffSeconds",
        "podMaxBackoffSeconds",
        "profiles",
        "extenders",
        "delayCacheUntilActive",
        "nodeSelector",
    }
)
_CLIENT_FIELDS = frozenset({"kubeconfig", "acceptContentTypes", "contentType", "qps", "burst"})
_LEADER_FIELDS = frozenset(
    {
        "leaderElect",
        "leaseDuration",
        "renewDeadline",
        "retryPeriod",
        "resourceLock",
        "resourceName",
        "resourceNamespace",
    }
)
_PROFILE_FIELDS = frozenset(
    {"schedulerName", "percentageOfNodesToScore", "plugins", "pluginConfig"}
)
_PLUGIN_SET_FIELDS = frozenset({"enabled", "disabled"})
_PLUGIN_FIELDS = frozenset({"name", "weight"})
_PLUGIN_CONFIG_FIELDS = frozenset({"name", "args"})


@dataclass(frozen=True)
class PluginRef:
    """One entry of an `enabled`/`disabled` list; `weight` only matters for score (0 = unset)."""

    name: str
    weight: int = 0


@dataclass(frozen=True)
class PluginSet:
    enabled: tuple[PluginRef, ...] = ()
    disabled: tuple[PluginRef, ...] = ()


def _empty_plugins() -> dict[str, PluginSet]:
    return {point: PluginSet() for point in _ALL_POINTS}


@dataclass(frozen=True)
class Profile:
    """One scheduling profile, its plugins as written (see `expand_plugins` for the merged view).

    `plugins` always has a key for "multiPoint" and for each of EXTENSION_POINTS; a point the user
    did not mention holds an empty PluginSet. `plugin_config` maps plugin name to its args:
    the typed, defaulted and validated args (scheduler/pluginargs.py) for a plugin with an
    args type, else the raw mapping with `apiVersion`/`kind` stripped. A plugin without an
    entry gets its defaults from its own `new()`. `percentage_of_nodes_to_score` None means
    "use the global value"; 0 means adaptive.
    """

    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    percentage_of_nodes_to_score: int | None = None
    plugins: dict[str, PluginSet] = field(default_factory=_empty_plugins)
    plugin_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientConnection:
    """API client settings: `qps` requests a second with `burst` saved up, per client (berth's
    bindings and its events each have one). A negative `qps` disables client-side rate
    limiting (client-go semantics). Defaults: DEFAULT_CLIENT_QPS/BURST, not upstream's 50/100.

    Upstream defaults `content_type` to protobuf; berth only speaks JSON, so it is always JSON.
    """

    kubeconfig: str = ""
    qps: float = DEFAULT_CLIENT_QPS
    burst: int = DEFAULT_CLIENT_BURST
    content_type: str = CONTENT_TYPE_JSON


@dataclass(frozen=True)
class LeaderElection:
    """component-base's recommended defaults, durations in seconds, a Lease lock."""

    leader_elect: bool = True
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    resource_lock: str = "leases"
    resource_name: str = "kube-scheduler"
    resource_namespace: str = "kube-system"


def _default_profiles() -> tuple[Profile, ...]:
    return (Profile(),)


@dataclass(frozen=True)
class SchedulerConfig:
    """A parsed, defaulted and validated KubeSchedulerConfiguration.

    `percentage_of_nodes_to_score` None or 0 means adaptive (50% minus nodes/125, at least 5%).
    `node_selector` is the berth shard selector (see the module docstring); {} = every node.
    """

    parallelism: int = 16
    percentage_of_nodes_to_score: int | None = None
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0
    client_connection: ClientConnection = field(default_factory=ClientConnection)
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    profiles: tuple[Profile, ...] = field(default_factory=_default_profiles)
    node_selector: dict[str, str] = field(default_factory=dict)
    enable_profiling: bool = True
    enable_contention_profiling: bool = True
    delay_cache_until_active: bool = False
    extenders: tuple[ExtenderConfig, ...] = ()  # in order; see scheduler/extenders.py


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def load(path: str | Path, known_plugins: Collection[str]) -> SchedulerConfig:
    """Read a YAML file and parse() it. Unreadable files and bad YAML raise ConfigError too."""
    return parse(read_document(path), known_plugins)


def read_document(path: str | Path) -> Mapping[str, Any]:
    """The YAML mapping in a file, undecoded (berth run lays command-line flags over it
    before parse(), as kube-scheduler's options do). Raises ConfigError as load() does."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{source}: cannot read the scheduler configuration: {exc}"]) from exc
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML: {' '.join(str(exc).split())}"]) from exc
    except RecursionError as exc:  # PyYAML composes recursively; upstream caps depth too
        raise ConfigError([f"{source}: invalid YAML: nested too deeply"]) from exc
    if not isinstance(doc, Mapping):
        raise ConfigError([f"{source}: must be a YAML mapping (got {show(doc)})"])
    return doc


def parse(doc: Any, known_plugins: Collection[str]) -> SchedulerConfig:
    """Decode, default and validate one KubeSchedulerConfiguration document (a mapping).

    `known_plugins` are the plugin names berth can instantiate. Raises ConfigError listing every
    problem found.
    """
    if not isinstance(doc, Mapping):
        raise ConfigError([f"{KIND}: must be a mapping (got {show(doc)})"])
    errs: list[str] = []
    top = Section(doc, "", _TOP_FIELDS, errs, root=KIND)
    _check_type_meta(top)
    parallelism = _parallelism(top)
    percentage = _percentage(top, "percentageOfNodesToScore")
    initial_backoff, max_backoff = _backoff(top)
    enable_profiling = default(top.get_bool("enableProfiling"), True)
    extenders = parse_extenders(top)
    config = SchedulerConfig(
        parallelism=parallelism,
        percentage_of_nodes_to_score=percentage,
        pod_initial_backoff_seconds=float(initial_backoff),
        pod_max_backoff_seconds=float(max_backoff),
        client_connection=_client_connection(top.section("clientConnection", _CLIENT_FIELDS)),
        leader_election=_leader_election(top.section("leaderElection", _LEADER_FIELDS)),
        profiles=_with_ignored_resources(_profiles(top, frozenset(known_plugins)), extenders),
        node_selector=_node_selector(top),
        enable_profiling=enable_profiling,
        enable_contention_profiling=default(
            top.get_bool("enableContentionProfiling"), enable_profiling
        ),
        delay_cache_until_active=default(top.get_bool("delayCacheUntilActive"), False),
        extenders=extenders,
    )
    if errs:
        raise ConfigError(errs)
    return config


def expand_plugins(
    profile: Profile,
    defaults: Sequence[PluginRef],
    implements: Mapping[str, frozenset[str]],
    *,
    path: str = "plugins",
) -> dict[str, list[PluginRef]]:
    """The plugins that run at each extension point of `profile`, in order, as upstream builds them.

    `defaults` is the default multiPoint list (name + default score weight); `implements` maps
    each registered plugin to the extension points it implements. Steps, as upstream:

    1. multiPoint: the user's `enabled`/`disabled` merge into `defaults` (`mergePluginSet`): a
       disabled name (or "*" for all) drops defaults, an enabled default is replaced in place
       (weight included), other enabled plugins are appended.
    2. Each point gets its explicit `enabled` list plus every multiPoint plugin implementing it
       (the framework's `expandMultiPointPlugins`), unless disabled there by name or by "*".
       A plugin both in multiPoint and enabled explicitly keeps the explicit entry; the order is
       such overrides (in their explicit order), then multiPoint plugins, then the other
       explicit ones. `disabled` never removes an explicitly enabled plugin.
    3. Score weights: 0 (unset) becomes 1; other points carry no weight.

    Errors use `path` as the prefix of the profile's plugins, e.g. "profiles[0].plugins".
    Returns a dict with a list for every name in EXTENSION_POINTS.
    """
    errs: list[str] = []
    multi = _merge_multi_point(defaults, profile.plugins.get(MULTI_POINT, PluginSet()))
    _check_registered(multi, implements, path, errs)
    duplicates: dict[str, int | None] = {}
    expanded: dict[str, list[PluginRef]] = {}
    for point in EXTENSION_POINTS:
        plugin_set = profile.plugins.get(point, PluginSet())
        explicit = _explicit_plugins(plugin_set, point, implements, f"{path}.{point}", errs)
        expanded[point] = _expand_point(point, explicit, plugin_set, multi, implements, duplicates)
    for name, origin in duplicates.items():
        errs.append(
            f"{_multi_point_path(path, origin)}: plugin {q(name)} is enabled more than once"
        )
    _check_required_points(expanded, path, errs)
    if errs:
        raise ConfigError(errs)
    return {point: [_final_weight(point, ref) for ref in refs] for point, refs in expanded.items()}


# --------------------------------------------------------------------------------------------
# Top-level fields
# --------------------------------------------------------------------------------------------


def _check_type_meta(top: Section) -> None:
    for key, want in (("apiVersion", API_VERSION), ("kind", KIND)):
        value = top.get(key)
        if value is None:
            top.error(key, f"required, must be {q(want)}")
        elif value != want:
            top.error(key, f"must be {q(want)} (got {show(value)})")


def _parallelism(top: Section) -> int:
    value = default(top.get_int("parallelism"), 16)
    if value <= 0:
        top.error("parallelism", f"must be greater than 0 (got {value})")
    return value


def _percentage(section: Section, key: str) -> int | None:
    value = section.get_int(key)
    if value is not None and not 0 <= value <= 100:
        section.error(section.at(key), f"must be in the range [0, 100] (got {value})")
    return value


def _backoff(top: Section) -> tuple[int, int]:
    initial_raw = top.get_int("podInitialBackoffSeconds", INT64)
    max_raw = top.get_int("podMaxBackoffSeconds", INT64)
    initial, maximum = default(initial_raw, 1), default(max_raw, 10)
    if initial <= 0:
        top.error("podInitialBackoffSeconds", f"must be greater than 0 (got {initial})")
    # Like upstream, compared even when the initial backoff is itself invalid.
    if maximum < initial:
        top.error("podMaxBackoffSeconds", f"must be >= podInitialBackoffSeconds (got {maximum})")
    return initial, maximum


def _client_connection(section: Section) -> ClientConnection:
    section.get_str("acceptContentTypes")  # type-checked only: berth always accepts JSON
    content_type = section.get_str("contentType") or ""
    if content_type not in ("", CONTENT_TYPE_JSON, _CONTENT_TYPE_PROTOBUF):
        section.error(
            section.at("contentType"),
            f"must be {q(CONTENT_TYPE_JSON)} or {q(_CONTENT_TYPE_PROTOBUF)} "
            f"(got {q(content_type)})",
        )
    # Like upstream, 0 means unset for both; unset takes berth's defaults, not upstream's 50/100.
    qps = section.get_number("qps") or DEFAULT_CLIENT_QPS
    burst = section.get_int("burst") or DEFAULT_CLIENT_BURST
    if burst < 0:
        section.error(section.at("burst"), f"must be non-negative (got {burst})")
    return ClientConnection(
        kubeconfig=section.get_str("kubeconfig") or "",
        qps=qps,
        burst=burst,
        content_type=CONTENT_TYPE_JSON,
    )


def _leader_election(section: Section) -> LeaderElection:
    # Zero means "unset" to component-base's RecommendedDefaultLeaderElectionConfiguration.
    lease = section.get_duration_ns("leaseDuration") or 15 * NS_PER_S
    renew = section.get_duration_ns("renewDeadline") or 10 * NS_PER_S
    retry = section.get_duration_ns("retryPeriod") or 2 * NS_PER_S
    elect = default(section.get_bool("leaderElect"), True)
    lock = section.get_str("resourceLock") or "leases"
    if elect:  # upstream validates leader election only when it is enabled
        _check_leader_durations(section, lease, renew, retry)
        if lock != "leases":
            section.error(section.at("resourceLock"), f'must be "leases" (got {q(lock)})')
    return LeaderElection(
        leader_elect=elect,
        lease_duration_s=lease / NS_PER_S,
        renew_deadline_s=renew / NS_PER_S,
        retry_period_s=retry / NS_PER_S,
        resource_lock=lock,
        resource_name=section.get_str("resourceName") or "kube-scheduler",
        resource_namespace=section.get_str("resourceNamespace") or "kube-system",
    )


def _check_leader_durations(section: Section, lease: int, renew: int, retry: int) -> None:
    for key, ns in (("leaseDuration", lease), ("renewDeadline", renew), ("retryPeriod", retry)):
        if ns <= 0:
            section.error(section.at(key), f"must be greater than zero (got {fmt_ns(ns)})")
    if lease <= renew:
        section.error(
            section.at("leaseDuration"),
            f"must be greater than renewDeadline {fmt_ns(renew)} (got {fmt_ns(lease)})",
        )
    # client-go's NewLeaderElector: renewDeadline > JitterFactor * retryPeriod, in whole ns.
    floor = int(_JITTER_FACTOR * retry)
    if renew <= floor:
        section.error(
            section.at("renewDeadline"),
            f"must be greater than {_JITTER_FACTOR} * retryPeriod = {fmt_ns(floor)} "
            f"(got {fmt_ns(renew)})",
        )


def _with_ignored_resources(
    profiles: tuple[Profile, ...], extenders: Sequence[ExtenderConfig]
) -> tuple[Profile, ...]:
    """Upstream's buildExtenders: resources an extender manages with ignoredByScheduler become
    every profile's NodeResourcesFit `ignoredResources` (replacing what the args said)."""
    ignored = ignored_resources(extenders)
    if not ignored:
        return profiles
    fit = "NodeResourcesFit"
    out = []
    for profile in profiles:
        args = profile.plugin_config.get(fit)
        if not isinstance(args, pluginargs.NodeResourcesFitArgs):
            args = pluginargs.NodeResourcesFitArgs()
        args = replace(args, ignored_resources=ignored)
        out.append(replace(profile, plugin_config={**profile.plugin_config, fit: args}))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# berth extension: nodeSelector
# --------------------------------------------------------------------------------------------


def _node_selector(top: Section) -> dict[str, str]:
    raw = top.get("nodeSelector")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        top.error("nodeSelector", f"must be a mapping of label key to value (got {show(raw)})")
        return {}
    selector: dict[str, str] = {}
    for key, value in raw.items():
        path = f"nodeSelector[{key}]"
        if not isinstance(key, str):
            top.error(path, f"label key must be a string (got {show(key)})")
            continue
        for problem in is_qualified_name(key):
            top.error(path, f"invalid label key {q(key)}: {problem}")
        if not isinstance(value, str):
            top.error(path, f"label value must be a string, quote it (got {show(value)})")
            continue
        for problem in is_valid_label_value(value):
            top.error(path, f"invalid label value {q(value)}: {problem}")
        selector[key] = value
    return selector


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


def _profiles(top: Section, known: frozenset[str]) -> tuple[Profile, ...]:
    raw = top.get_list("profiles")
    if not raw:
        return _default_profiles()  # upstream appends one empty profile when there are none
    decoded = [
        _profile(top.section_at(item, f"profiles[{i}]", _PROFILE_FIELDS), len(raw) == 1, known)
        for i, item in enumerate(raw)
    ]
    profiles = tuple(profile for profile, _ in decoded)
    _check_unique_names(top, profiles)
    _check_common_queue_sort(top, profiles, [positions for _, positions in decoded])
    return profiles


def _profile(
    section: Section, only_one: bool, known: frozenset[str]
) -> tuple[Profile, dict[str, int]]:
    """One profile, plus the index of each pluginConfig entry by plugin name (for error paths)."""
    name = section.get_str("schedulerName")
    if section.get("schedulerName") is None and only_one:
        name = DEFAULT_SCHEDULER_NAME  # upstream defaults the name only for a lone profile
    elif section.get("schedulerName") in (None, ""):
        section.error(section.at("schedulerName"), "required, every profile needs a unique name")
    plugin_config, positions = _plugin_configs(section, known)
    profile = Profile(
        scheduler_name=name or "",
        percentage_of_nodes_to_score=_percentage(section, "percentageOfNodesToScore"),
        plugins=_plugins(section.section("plugins", (*_ALL_POINTS, *GROUP_POINTS)), known),
        plugin_config=plugin_config,
    )
    return profile, positions


def _plugins(section: Section, known: frozenset[str]) -> dict[str, PluginSet]:
    for point in GROUP_POINTS:
        group_set = section.section(point, _PLUGIN_SET_FIELDS)
        for j, _ in enumerate(_plugin_set(group_set, known).enabled):
            section.error(
                f"{group_set.at('enabled')}[{j}].name",
                "berth runs no plugins at this extension point (upstream's "
                "TopologyAwareWorkloadScheduling, alpha, off in v1.37)",
            )
    return {
        point: _plugin_set(section.section(point, _PLUGIN_SET_FIELDS), known)
        for point in _ALL_POINTS
    }


def _plugin_set(section: Section, known: frozenset[str]) -> PluginSet:
    return PluginSet(
        enabled=_plugin_refs(section, "enabled", known),
        disabled=_plugin_refs(section, "disabled", known),
    )


def _plugin_refs(section: Section, key: str, known: frozenset[str]) -> tuple[PluginRef, ...]:
    refs = []
    for j, item in enumerate(section.get_list(key)):
        entry = section.section_at(item, f"{section.at(key)}[{j}]", _PLUGIN_FIELDS)
        name = entry.get_str("name")
        if name is None:
            if entry.get("name") is None:
                entry.error(entry.at("name"), "required")
            continue
        _check_plugin_name(entry, name, known, wildcard_ok=key == "disabled")
        refs.append(PluginRef(name=name, weight=default(entry.get_int("weight"), 0)))
    return tuple(refs)


def _check_plugin_name(entry: Section, name: str, known: frozenset[str], wildcard_ok: bool) -> None:
    if name == _WILDCARD:
        if not wildcard_ok:
            entry.error(entry.at("name"), '"*" is only allowed in disabled lists')
    elif name not in known:
        entry.error(entry.at("name"), _unknown_plugin(name))


def _unknown_plugin(name: str) -> str:
    if name in _REMOVED_PLUGINS:
        return f"plugin {q(name)} was removed in {API_VERSION}"
    return f"unknown plugin {q(name)}"


def _plugin_configs(
    section: Section, known: frozenset[str]
) -> tuple[dict[str, Any], dict[str, int]]:
    configs: dict[str, Any] = {}
    positions: dict[str, int] = {}
    for j, item in enumerate(section.get_list("pluginConfig")):
        entry = section.section_at(
            item, f"{section.at('pluginConfig')}[{j}]", _PLUGIN_CONFIG_FIELDS
        )
        name = entry.get_str("name")
        if name is None:
            if entry.get("name") is None:
                entry.error(entry.at("name"), "required")
            continue
        if name not in known:
            entry.error(entry.at("name"), _unknown_plugin(name))
        # Decoded even when the entry is a duplicate: its args are checked all the same.
        args = pluginargs.decode(name, entry.get("args"), entry.at("args"), entry.errs)
        if name in positions:
            entry.error(
                entry.at("name"),
                f"duplicate config for plugin {q(name)} (first at pluginConfig[{positions[name]}])",
            )
            continue
        configs[name] = args
        positions[name] = j
    return configs, positions


def _check_unique_names(top: Section, profiles: Sequence[Profile]) -> None:
    first_use: dict[str, int] = {}
    for i, profile in enumerate(profiles):
        name = profile.scheduler_name
        if name and name in first_use:
            top.error(
                f"profiles[{i}].schedulerName",
                f"duplicate scheduler name {q(name)} (already used by profiles[{first_use[name]}])",
            )
        first_use.setdefault(name, i)


def _check_common_queue_sort(
    top: Section, profiles: Sequence[Profile], positions: Sequence[Mapping[str, int]]
) -> None:
    """Upstream's validateCommonQueueSort: the queue is shared, so its sort must be too.

    Compares the queueSort sets as written (not the multiPoint expansion), and the args of the
    queue sort plugin when the first profile names one explicitly.
    """
    canon = profiles[0].plugins["queueSort"]
    if len(canon.enabled) > 1:
        top.error(
            "profiles[0].plugins.queueSort.enabled",
            f"only one queue sort plugin can be enabled (got {_names(canon.enabled)})",
        )
    sort_name = canon.enabled[0].name if canon.enabled else None
    canon_args = profiles[0].plugin_config.get(sort_name) if sort_name else None
    for i, profile in enumerate(profiles[1:], start=1):
        current = profile.plugins["queueSort"]
        if current != canon:
            top.error(
                f"profiles[{i}].plugins.queueSort",
                f"must be the same for all profiles (got {_describe(current)}, "
                f"profiles[0] has {_describe(canon)})",
            )
        args = profile.plugin_config.get(sort_name) if sort_name else None
        if sort_name and sort_name in profile.plugin_config and args != canon_args:
            top.error(
                f"profiles[{i}].pluginConfig[{positions[i][sort_name]}].args",
                f"args of queue sort plugin {q(sort_name)} must be the same for all profiles",
            )


def _names(refs: Sequence[PluginRef]) -> str:
    return "[" + ", ".join(ref.name for ref in refs) + "]"


def _describe(plugin_set: PluginSet) -> str:
    return f"enabled {_names(plugin_set.enabled)}, disabled {_names(plugin_set.disabled)}"


# --------------------------------------------------------------------------------------------
# Plugin expansion
# --------------------------------------------------------------------------------------------

# A multiPoint plugin after merging, with its index in the user's multiPoint.enabled list
# (None when it came from the defaults), so errors can point at what the user wrote.
_MultiEntry = tuple[PluginRef, int | None]


def _merge_multi_point(defaults: Sequence[PluginRef], custom: PluginSet) -> list[_MultiEntry]:
    """Upstream's mergePluginSet for multiPoint (the only point with defaults in v1)."""
    disabled = {ref.name for ref in custom.disabled}
    last_index = {ref.name: i for i, ref in enumerate(custom.enabled)}
    replaced: set[int] = set()
    merged: list[_MultiEntry] = []
    if _WILDCARD not in disabled:
        for ref in defaults:
            if ref.name in disabled:
                continue
            index = last_index.get(ref.name)
            if index is None:
                merged.append((ref, None))
            else:  # re-configured default: the user's entry takes its place, weight and all
                merged.append((custom.enabled[index], index))
                replaced.add(index)
    # The rest are appended in order; a name enabled twice stays twice and is reported later.
    merged.extend((ref, i) for i, ref in enumerate(custom.enabled) if i not in replaced)
    return merged


def _multi_point_path(path: str, origin: int | None) -> str:
    if origin is None:
        return f"{path}.multiPoint (default plugins)"
    return f"{path}.multiPoint.enabled[{origin}].name"


def _check_registered(
    multi: Sequence[_MultiEntry],
    implements: Mapping[str, frozenset[str]],
    path: str,
    errs: list[str],
) -> None:
    for ref, origin in multi:
        if ref.name not in implements:
            errs.append(f"{_multi_point_path(path, origin)}: {_unknown_plugin(ref.name)}")


def _explicit_plugins(
    plugin_set: PluginSet,
    point: str,
    implements: Mapping[str, frozenset[str]],
    path: str,
    errs: list[str],
) -> list[PluginRef]:
    """A point's own `enabled` list, checked as upstream's updatePluginList does."""
    seen: set[str] = set()
    plugins = []
    for j, ref in enumerate(plugin_set.enabled):
        at = f"{path}.enabled[{j}].name"
        if ref.name not in implements:
            errs.append(f"{at}: {_unknown_plugin(ref.name)}")
        elif point not in implements[ref.name]:
            errs.append(
                f"{at}: plugin {q(ref.name)} does not implement the {point} extension point"
            )
        elif ref.name in seen:
            errs.append(f"{at}: plugin {q(ref.name)} is enabled more than once at {point}")
        else:
            seen.add(ref.name)
            plugins.append(ref)
    return plugins


def _expand_point(
    point: str,
    explicit: list[PluginRef],
    plugin_set: PluginSet,
    multi: Sequence[_MultiEntry],
    implements: Mapping[str, frozenset[str]],
    duplicates: dict[str, int | None],
) -> list[PluginRef]:
    """Upstream's expandMultiPointPlugins for one extension point."""
    disabled = {ref.name for ref in plugin_set.disabled}
    if _WILDCARD in disabled:
        return explicit
    explicit_names = {ref.name for ref in explicit}
    overridden: set[str] = set()
    from_multi: dict[str, PluginRef] = {}
    for ref, origin in multi:
        if point not in implements.get(ref.name, ()) or ref.name in disabled:
            continue
        if ref.name in explicit_names:
            overridden.add(ref.name)
        elif ref.name in from_multi:
            duplicates.setdefault(ref.name, origin)
        else:
            from_multi[ref.name] = ref
    return (
        [ref for ref in explicit if ref.name in overridden]
        + list(from_multi.values())
        + [ref for ref in explicit if ref.name not in overridden]
    )


def _check_required_points(
    expanded: Mapping[str, list[PluginRef]], path: str, errs: list[str]
) -> None:
    """The framework's last checks: exactly one queue sort plugin and at least one binder."""
    queue_sort = expanded["queueSort"]
    if len(queue_sort) != 1:
        errs.append(
            f"{path}.queueSort: exactly one queue sort plugin must be enabled "
            f"(got {_names(queue_sort)})"
        )
    if not expanded["bind"]:
        errs.append(f"{path}.bind: at least one bind plugin must be enabled (got [])")


def _final_weight(point: str, ref: PluginRef) -> PluginRef:
    if point != "score":
        return PluginRef(ref.name)
    # Upstream's getScoreWeights: a weight of 0 (unset) means 1.
    return PluginRef(ref.name, ref.weight or 1)


# --------------------------------------------------------------------------------------------
# YAML loading
# --------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate mapping keys, as upstream's strict decoding does,
    and documents whose aliases expand past a million nodes (goyaml: excessive aliasing)."""

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > _MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None, None, "document contains excessive aliasing", node.start_mark
            )
        return node


_MAX_EXPANDED_NODES = 1_000_000


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes in the document once every alias is expanded; linear in the composed graph."""
    if id(node) not in memo:
        memo[id(node)] = 0  # a recursive alias counts once
        children = node.value if isinstance(node.value, list) else []
        size = 1
        for child in children:
            for sub in child if isinstance(child, tuple) else (child,):
                size += _expanded_size(sub, memo)
        memo[id(node)] = size
    return memo[id(node)]


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | float:
    """An integer past Python's 4300-digit str->int limit is out of every range: infinity,
    so the field's own check names it (upstream: cannot unmarshal number into int32)."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    except ValueError:
        return float("-inf") if str(node.value).startswith("-") else float("inf")


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
