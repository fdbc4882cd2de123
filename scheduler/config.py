"""KubeSchedulerConfiguration `kubescheduler.config.k8s.io/v1`: parse, default and validate.

berth reads the same configuration file as kube-scheduler v1.37 and gives it the same meaning.
A document goes through three steps, each mirroring an upstream stage:

1. **Decode** (upstream: the strict codec). Every mapping is checked against its known field
   names, so a misspelt or unknown field is an error, and every value against its Go type: an
   `int32` must be a YAML integer in range (not a bool, not `1.0`), a duration must be a Go
   duration string such as `"15s"`, and so on.
2. **Default** (upstream: `pkg/scheduler/apis/config/v1/defaults.go` and component-base's
   recommended leader-election defaults). A missing or null field takes the upstream default;
   like upstream, `qps: 0`, `burst: 0` and zero leader-election durations also mean "default".
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
are raised from there, also as `ConfigError`. Plugin args are only checked to be a mapping (with
`apiVersion`/`kind`, if given, matching the plugin); each plugin validates its own args.

Where berth differs from upstream, on purpose:

- `nodeSelector` (top level) is a **berth extension** for sharding: a map of node label key to
  value, in Kubernetes label syntax. A berth instance only sees nodes carrying all of these
  labels, so several schedulers can split one cluster. The default `{}` selects every node.
- `extenders` are not supported: a non-empty list is an error rather than being ignored.
- `clientConnection.contentType` may be JSON or protobuf, but berth always speaks JSON; any other
  value is an error.
- A plugin name that berth does not know is an error everywhere, `disabled` lists included
  (upstream silently ignores unknown names in `disabled`).
- `enableProfiling`, `enableContentionProfiling`, `delayCacheUntilActive` and
  `clientConnection.acceptContentTypes` are accepted and type-checked; berth may ignore them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import yaml

from scheduler.labels import is_qualified_name, is_valid_label_value

_T = TypeVar("_T")

API_VERSION = "kubescheduler.config.k8s.io/v1"
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
_WILDCARD = "*"

CONTENT_TYPE_JSON = "application/json"
_CONTENT_TYPE_PROTOBUF = "application/vnd.kubernetes.protobuf"

# client-go's leaderelection.JitterFactor: renewDeadline must exceed retryPeriod times this.
_JITTER_FACTOR = 1.2
# Plugins that upstream's validation rejects by name in v1 (removed in-tree volume limits).
_REMOVED_PLUGINS = frozenset({"AzureDiskLimits", "CinderLimits", "EBSLimits", "GCEPDLimits"})

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_NS_PER_S = 1_000_000_000

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


class ConfigError(Exception):
    """An invalid scheduler configuration.

    `errors` holds every problem found, each `field.path: message` naming the bad value, e.g.
    `profiles[0].plugins.score.enabled[1].name: unknown plugin "Foo"`. str() joins them with
    newlines.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


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
    did not mention holds an empty PluginSet. `plugin_config` maps plugin name to its raw args
    with `apiVersion`/`kind` stripped. `percentage_of_nodes_to_score` None means "use the global
    value"; 0 means adaptive.
    """

    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    percentage_of_nodes_to_score: int | None = None
    plugins: dict[str, PluginSet] = field(default_factory=_empty_plugins)
    plugin_config: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientConnection:
    """API client settings. `qps` <= 0 disables client-side rate limiting (client-go semantics).

    Upstream defaults `content_type` to protobuf; berth only speaks JSON, so it is always JSON.
    """

    kubeconfig: str = ""
    qps: float = 50.0
    burst: int = 100
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


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def load(path: str | Path, known_plugins: Collection[str]) -> SchedulerConfig:
    """Read a YAML file and parse() it. Unreadable files and bad YAML raise ConfigError too."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{source}: cannot read the scheduler configuration: {exc}"]) from exc
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML: {' '.join(str(exc).split())}"]) from exc
    if not isinstance(doc, Mapping):
        raise ConfigError([f"{source}: must be a YAML mapping (got {_show(doc)})"])
    return parse(doc, known_plugins)


def parse(doc: Any, known_plugins: Collection[str]) -> SchedulerConfig:
    """Decode, default and validate one KubeSchedulerConfiguration document (a mapping).

    `known_plugins` are the plugin names berth can instantiate. Raises ConfigError listing every
    problem found.
    """
    if not isinstance(doc, Mapping):
        raise ConfigError([f"{KIND}: must be a mapping (got {_show(doc)})"])
    errs: list[str] = []
    top = _Section(doc, "", _TOP_FIELDS, errs)
    _check_type_meta(top)
    parallelism = _parallelism(top)
    percentage = _percentage(top, "percentageOfNodesToScore")
    initial_backoff, max_backoff = _backoff(top)
    enable_profiling = _default(top.get_bool("enableProfiling"), True)
    config = SchedulerConfig(
        parallelism=parallelism,
        percentage_of_nodes_to_score=percentage,
        pod_initial_backoff_seconds=float(initial_backoff),
        pod_max_backoff_seconds=float(max_backoff),
        client_connection=_client_connection(top.section("clientConnection", _CLIENT_FIELDS)),
        leader_election=_leader_election(top.section("leaderElection", _LEADER_FIELDS)),
        profiles=_profiles(top, frozenset(known_plugins)),
        node_selector=_node_selector(top),
        enable_profiling=enable_profiling,
        enable_contention_profiling=_default(
            top.get_bool("enableContentionProfiling"), enable_profiling
        ),
        delay_cache_until_active=_default(top.get_bool("delayCacheUntilActive"), False),
    )
    _check_extenders(top)
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
            f"{_multi_point_path(path, origin)}: plugin {_q(name)} is enabled more than once"
        )
    _check_required_points(expanded, path, errs)
    if errs:
        raise ConfigError(errs)
    return {point: [_final_weight(point, ref) for ref in refs] for point, refs in expanded.items()}


# --------------------------------------------------------------------------------------------
# Decoding helpers
# --------------------------------------------------------------------------------------------


class _Section:
    """One mapping of the document with typed getters that record errors instead of raising.

    A getter returns None when the field is absent, null or of the wrong type (the last also
    records an error), so callers apply the default with `_default()`.
    """

    def __init__(self, raw: Any, path: str, fields: Collection[str], errs: list[str]) -> None:
        self.path = path
        self.errs = errs
        self.raw: Mapping[Any, Any] = {}
        if isinstance(raw, Mapping):
            self.raw = raw
        elif raw is not None:
            self.error(path, f"must be a mapping (got {_show(raw)})")
        for key in self.raw:
            if key not in fields:
                self.error(self.at(key), f"unknown field {_q(key)}")

    def at(self, key: Any) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def error(self, path: str, message: str) -> None:
        self.errs.append(f"{path}: {message}")

    def get(self, key: str) -> Any:
        return self.raw.get(key)

    def section(self, key: str, fields: Collection[str]) -> _Section:
        return _Section(self.get(key), self.at(key), fields, self.errs)

    def section_at(self, raw: Any, path: str, fields: Collection[str]) -> _Section:
        """A nested mapping that is not under a plain key, e.g. a list item."""
        return _Section(raw, path, fields, self.errs)

    def get_int(self, key: str, bounds: tuple[int, int] = _INT32) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(self.at(key), f"must be an integer (got {_show(value)})")
            return None
        if not bounds[0] <= value <= bounds[1]:
            self.error(self.at(key), f"must be in [{bounds[0]}, {bounds[1]}] (got {value})")
            return None
        return value

    def get_number(self, key: str) -> float | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(self.at(key), f"must be a number (got {_show(value)})")
            return None
        return float(value)

    def get_bool(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.error(self.at(key), f"must be true or false (got {_show(value)})")
        return None

    def get_str(self, key: str) -> str | None:
        value = self.get(key)
        if value is None or isinstance(value, str):
            return value
        self.error(self.at(key), f"must be a string (got {_show(value)})")
        return None

    def get_list(self, key: str) -> list[Any]:
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(self.at(key), f"must be a list (got {_show(value)})")
            return []
        return value

    def get_duration_ns(self, key: str) -> int | None:
        """A metav1.Duration: a Go duration string ("15s", "1m30s", "500ms"), in nanoseconds."""
        text = self.get_str(key)
        if text is None:
            return None
        ns = _parse_go_duration(text)
        if ns is None:
            self.error(self.at(key), f'must be a duration such as "15s" (got {_q(text)})')
        return ns


def _default(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _show(value: Any) -> str:
    """A bad value as it would appear in YAML/JSON, for error messages."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _q(text: Any) -> str:
    return json.dumps(str(text), ensure_ascii=False)


_DURATION_TERM = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": _NS_PER_S,
    "m": 60 * _NS_PER_S,
    "h": 3600 * _NS_PER_S,
}


def _parse_go_duration(text: str) -> int | None:
    """Go's time.ParseDuration, to integer nanoseconds; None if malformed or out of range."""
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text.startswith(("-", "+")) else text
    if body == "0":
        return 0
    if not body:
        return None
    total, pos = 0, 0
    while pos < len(body):
        match = _DURATION_TERM.match(body, pos)
        if match is None:
            return None
        try:
            total += int(Decimal(match[1]) * _UNIT_NS[match[2]])
        except InvalidOperation:
            return None
        pos = match.end()
    ns = sign * total
    return ns if _INT64[0] <= ns <= _INT64[1] else None


def _fmt_ns(ns: int) -> str:
    return f"{ns / _NS_PER_S:g}s"


# --------------------------------------------------------------------------------------------
# Top-level fields
# --------------------------------------------------------------------------------------------


def _check_type_meta(top: _Section) -> None:
    for key, want in (("apiVersion", API_VERSION), ("kind", KIND)):
        value = top.get(key)
        if value is None:
            top.error(key, f"required, must be {_q(want)}")
        elif value != want:
            top.error(key, f"must be {_q(want)} (got {_show(value)})")


def _parallelism(top: _Section) -> int:
    value = _default(top.get_int("parallelism"), 16)
    if value <= 0:
        top.error("parallelism", f"must be greater than 0 (got {value})")
    return value


def _percentage(section: _Section, key: str) -> int | None:
    value = section.get_int(key)
    if value is not None and not 0 <= value <= 100:
        section.error(section.at(key), f"must be in the range [0, 100] (got {value})")
    return value


def _backoff(top: _Section) -> tuple[int, int]:
    initial_raw = top.get_int("podInitialBackoffSeconds", _INT64)
    max_raw = top.get_int("podMaxBackoffSeconds", _INT64)
    initial, maximum = _default(initial_raw, 1), _default(max_raw, 10)
    if initial <= 0:
        top.error("podInitialBackoffSeconds", f"must be greater than 0 (got {initial})")
    # Like upstream, compared even when the initial backoff is itself invalid.
    if maximum < initial:
        top.error("podMaxBackoffSeconds", f"must be >= podInitialBackoffSeconds (got {maximum})")
    return initial, maximum


def _client_connection(section: _Section) -> ClientConnection:
    section.get_str("acceptContentTypes")  # type-checked only: berth always accepts JSON
    content_type = section.get_str("contentType") or ""
    if content_type not in ("", CONTENT_TYPE_JSON, _CONTENT_TYPE_PROTOBUF):
        section.error(
            section.at("contentType"),
            f"must be {_q(CONTENT_TYPE_JSON)} or {_q(_CONTENT_TYPE_PROTOBUF)} "
            f"(got {_q(content_type)})",
        )
    # Upstream treats 0 as unset for both (kube-scheduler's own defaults, not client-go's).
    qps = section.get_number("qps") or 50.0
    burst = section.get_int("burst") or 100
    if burst < 0:
        section.error(section.at("burst"), f"must be non-negative (got {burst})")
    return ClientConnection(
        kubeconfig=section.get_str("kubeconfig") or "",
        qps=qps,
        burst=burst,
        content_type=CONTENT_TYPE_JSON,
    )


def _leader_election(section: _Section) -> LeaderElection:
    # Zero means "unset" to component-base's RecommendedDefaultLeaderElectionConfiguration.
    lease = section.get_duration_ns("leaseDuration") or 15 * _NS_PER_S
    renew = section.get_duration_ns("renewDeadline") or 10 * _NS_PER_S
    retry = section.get_duration_ns("retryPeriod") or 2 * _NS_PER_S
    elect = _default(section.get_bool("leaderElect"), True)
    lock = section.get_str("resourceLock") or "leases"
    if elect:  # upstream validates leader election only when it is enabled
        _check_leader_durations(section, lease, renew, retry)
        if lock != "leases":
            section.error(section.at("resourceLock"), f'must be "leases" (got {_q(lock)})')
    return LeaderElection(
        leader_elect=elect,
        lease_duration_s=lease / _NS_PER_S,
        renew_deadline_s=renew / _NS_PER_S,
        retry_period_s=retry / _NS_PER_S,
        resource_lock=lock,
        resource_name=section.get_str("resourceName") or "kube-scheduler",
        resource_namespace=section.get_str("resourceNamespace") or "kube-system",
    )


def _check_leader_durations(section: _Section, lease: int, renew: int, retry: int) -> None:
    for key, ns in (("leaseDuration", lease), ("renewDeadline", renew), ("retryPeriod", retry)):
        if ns <= 0:
            section.error(section.at(key), f"must be greater than zero (got {_fmt_ns(ns)})")
    if lease <= renew:
        section.error(
            section.at("leaseDuration"),
            f"must be greater than renewDeadline {_fmt_ns(renew)} (got {_fmt_ns(lease)})",
        )
    # client-go's NewLeaderElector: renewDeadline > JitterFactor * retryPeriod, in whole ns.
    floor = int(_JITTER_FACTOR * retry)
    if renew <= floor:
        section.error(
            section.at("renewDeadline"),
            f"must be greater than {_JITTER_FACTOR} * retryPeriod = {_fmt_ns(floor)} "
            f"(got {_fmt_ns(renew)})",
        )


def _check_extenders(top: _Section) -> None:
    extenders = top.get_list("extenders")
    if extenders:
        top.error("extenders", f"not supported by berth (got {len(extenders)} extender(s))")


# --------------------------------------------------------------------------------------------
# berth extension: nodeSelector
# --------------------------------------------------------------------------------------------


def _node_selector(top: _Section) -> dict[str, str]:
    raw = top.get("nodeSelector")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        top.error("nodeSelector", f"must be a mapping of label key to value (got {_show(raw)})")
        return {}
    selector: dict[str, str] = {}
    for key, value in raw.items():
        path = f"nodeSelector[{key}]"
        if not isinstance(key, str):
            top.error(path, f"label key must be a string (got {_show(key)})")
            continue
        for problem in is_qualified_name(key):
            top.error(path, f"invalid label key {_q(key)}: {problem}")
        if not isinstance(value, str):
            top.error(path, f"label value must be a string, quote it (got {_show(value)})")
            continue
        for problem in is_valid_label_value(value):
            top.error(path, f"invalid label value {_q(value)}: {problem}")
        selector[key] = value
    return selector


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


def _profiles(top: _Section, known: frozenset[str]) -> tuple[Profile, ...]:
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
    section: _Section, only_one: bool, known: frozenset[str]
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
        plugins=_plugins(section.section("plugins", _ALL_POINTS), known),
        plugin_config=plugin_config,
    )
    return profile, positions


def _plugins(section: _Section, known: frozenset[str]) -> dict[str, PluginSet]:
    return {
        point: _plugin_set(section.section(point, _PLUGIN_SET_FIELDS), known)
        for point in _ALL_POINTS
    }


def _plugin_set(section: _Section, known: frozenset[str]) -> PluginSet:
    return PluginSet(
        enabled=_plugin_refs(section, "enabled", known),
        disabled=_plugin_refs(section, "disabled", known),
    )


def _plugin_refs(section: _Section, key: str, known: frozenset[str]) -> tuple[PluginRef, ...]:
    refs = []
    for j, item in enumerate(section.get_list(key)):
        entry = section.section_at(item, f"{section.at(key)}[{j}]", _PLUGIN_FIELDS)
        name = entry.get_str("name")
        if name is None:
            if entry.get("name") is None:
                entry.error(entry.at("name"), "required")
            continue
        _check_plugin_name(entry, name, known, wildcard_ok=key == "disabled")
        refs.append(PluginRef(name=name, weight=_default(entry.get_int("weight"), 0)))
    return tuple(refs)


def _check_plugin_name(
    entry: _Section, name: str, known: frozenset[str], wildcard_ok: bool
) -> None:
    if name == _WILDCARD:
        if not wildcard_ok:
            entry.error(entry.at("name"), '"*" is only allowed in disabled lists')
    elif name not in known:
        entry.error(entry.at("name"), _unknown_plugin(name))


def _unknown_plugin(name: str) -> str:
    if name in _REMOVED_PLUGINS:
        return f"plugin {_q(name)} was removed in {API_VERSION}"
    return f"unknown plugin {_q(name)}"


def _plugin_configs(
    section: _Section, known: frozenset[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    configs: dict[str, dict[str, Any]] = {}
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
        if name in positions:
            entry.error(
                entry.at("name"),
                f"duplicate config for plugin {_q(name)} "
                f"(first at pluginConfig[{positions[name]}])",
            )
            continue
        configs[name] = _plugin_args(entry, name)
        positions[name] = j
    return configs, positions


def _plugin_args(entry: _Section, name: str) -> dict[str, Any]:
    """The raw args mapping; `apiVersion`/`kind`, when given, must name this plugin's args type."""
    raw = entry.get("args")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        entry.error(entry.at("args"), f"must be a mapping (got {_show(raw)})")
        return {}
    args = dict(raw)
    for key, want in (("apiVersion", API_VERSION), ("kind", f"{name}Args")):
        value = args.pop(key, None)
        if value is not None and value != want:
            entry.error(f"{entry.at('args')}.{key}", f"must be {_q(want)} (got {_show(value)})")
    return args


def _check_unique_names(top: _Section, profiles: Sequence[Profile]) -> None:
    first_use: dict[str, int] = {}
    for i, profile in enumerate(profiles):
        name = profile.scheduler_name
        if name and name in first_use:
            top.error(
                f"profiles[{i}].schedulerName",
                f"duplicate scheduler name {_q(name)} "
                f"(already used by profiles[{first_use[name]}])",
            )
        first_use.setdefault(name, i)


def _check_common_queue_sort(
    top: _Section, profiles: Sequence[Profile], positions: Sequence[Mapping[str, int]]
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
                f"args of queue sort plugin {_q(sort_name)} must be the same for all profiles",
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
                f"{at}: plugin {_q(ref.name)} does not implement the {point} extension point"
            )
        elif ref.name in seen:
            errs.append(f"{at}: plugin {_q(ref.name)} is enabled more than once at {point}")
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
    """A SafeLoader that rejects duplicate mapping keys, as upstream's strict decoding does."""


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
