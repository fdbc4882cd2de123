"""The defaulted KubeSchedulerConfiguration v1 document of a parsed configuration.

What kube-scheduler writes for `--write-config-to` and serves at `/configz`
(cmd/kube-scheduler/app/options/configfile.go `LogOrWriteConfig`, fed by the framework's
captured profiles in pkg/scheduler/framework/runtime/framework.go): the versioned document,
every top-level field with its default filled in, and each profile as the framework built it:

- `plugins` is the profile's plugins after upstream's defaulting (`mergePlugins` in
  pkg/scheduler/apis/config/v1/default_plugins.go): multiPoint holds the default plugin list
  merged with what the profile wrote (`disabled` kept, so the document reads back the same),
  every other extension point what the profile wrote there; every `enabled` entry carries its
  weight (0 = unset), as upstream's internal-to-v1 conversion writes it.
- `pluginConfig` holds, sorted by plugin name, the args of each plugin the profile enables:
  the written args with their defaults filled in, or the default args of a plugin that has an
  args type; plugins with neither are left out, as the framework leaves them out.

Differences from upstream's document, each because berth's meaning differs:

- `clientConnection.contentType` is `application/json`, the only one berth speaks.
- `nodeSelector` (berth's shard selector) is written when it is not empty.
- The v1.37 extension points berth has no plugins for (`placementGenerate`,
  `placementScore`, `podGroupPostFilter`) are not written: berth reads them only empty or
  disabling (config.GROUP_POINTS), so they would say nothing.
- A multiPoint plugin disabled at every extension point it implements still has its args
  written (berth does not load the plugin registry here to tell).

Reading the document back (`config.parse`) gives a configuration that schedules the same: the
same fields, the same plugins at every extension point, the same args.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler import pluginargs
from scheduler.config import (
    API_VERSION,
    EXTENSION_POINTS,
    KIND,
    MULTI_POINT,
    PluginRef,
    PluginSet,
    Profile,
    SchedulerConfig,
)
from scheduler.extenders import ExtenderConfig
from scheduler.labels import Requirement
from scheduler.model import PreferredTerm, SelectorTerm, SpreadConstraint
from scheduler.pluginargs import (
    DefaultPreemptionArgs,
    DynamicResourcesArgs,
    InterPodAffinityArgs,
    NodeAffinityArgs,
    NodeResourcesBalancedAllocationArgs,
    NodeResourcesFitArgs,
    PodTopologySpreadArgs,
    ResourceSpec,
    UtilizationShapePoint,
    VolumeBindingArgs,
    go_duration,
)

__all__ = ["to_v1"]

JSON = dict[str, Any]
_NS_PER_S = 1_000_000_000
_WILDCARD = "*"


def to_v1(config: SchedulerConfig, defaults: Sequence[PluginRef] | None = None) -> JSON:
    """The KubeSchedulerConfiguration v1 document (a JSON-able dict, keys as upstream's).

    `defaults` is the default multiPoint plugin list (name + default Score weight); None means
    the built-in registry's with the feature gates applied (`plugins.defaults()`). Durations
    are Go duration strings ("15s"), backoffs whole seconds, as the v1 types hold them.
    """
    if defaults is None:
        import plugins  # the registry's default list; imported late, config stays a leaf

        defaults = [PluginRef(name, weight) for name, weight in plugins.defaults()]
    conn, elect = config.client_connection, config.leader_election
    doc: JSON = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "clientConnection": {
            "acceptContentTypes": "",
            "burst": conn.burst,
            "contentType": conn.content_type,
            "kubeconfig": conn.kubeconfig,
            "qps": _number(conn.qps),
        },
        "enableContentionProfiling": config.enable_contention_profiling,
        "enableProfiling": config.enable_profiling,
        "leaderElection": {
            "leaderElect": elect.leader_elect,
            "leaseDuration": _duration(elect.lease_duration_s),
            "renewDeadline": _duration(elect.renew_deadline_s),
            "resourceLock": elect.resource_lock,
            "resourceName": elect.resource_name,
            "resourceNamespace": elect.resource_namespace,
            "retryPeriod": _duration(elect.retry_period_s),
        },
        "parallelism": config.parallelism,
        # Upstream defaults the unset value to 0, which means adaptive, as berth's None does.
        "percentageOfNodesToScore": config.percentage_of_nodes_to_score or 0,
        "podInitialBackoffSeconds": int(config.pod_initial_backoff_seconds),
        "podMaxBackoffSeconds": int(config.pod_max_backoff_seconds),
        "profiles": [_profile(profile, defaults) for profile in config.profiles],
    }
    if config.delay_cache_until_active:  # omitempty upstream
        doc["delayCacheUntilActive"] = True
    if config.extenders:  # omitempty upstream
        doc["extenders"] = [_extender(e) for e in config.extenders]
    if config.node_selector:
        doc["nodeSelector"] = dict(config.node_selector)
    return doc


def _extender(e: ExtenderConfig) -> JSON:
    out: JSON = {
        "urlPrefix": e.url_prefix,
        "filterVerb": e.filter_verb,
        "preemptVerb": e.preempt_verb,
        "prioritizeVerb": e.prioritize_verb,
        "weight": e.weight,
        "bindVerb": e.bind_verb,
        "enableHTTPS": e.enable_https,
        # None is "no timeout", which a negative duration says (see scheduler/extenders.py).
        "httpTimeout": "-1s" if e.timeout_s is None else _duration(e.timeout_s),
        "nodeCacheCapable": e.node_cache_capable,
        "ignorable": e.ignorable,
    }
    if e.managed_resources:
        out["managedResources"] = [
            {"name": r.name, "ignoredByScheduler": r.ignored_by_scheduler}
            for r in e.managed_resources
        ]
    if e.tls is not None:
        t = e.tls
        out["tlsConfig"] = {
            "insecure": t.insecure,
            "serverName": t.server_name,
            "certFile": t.cert_file,
            "keyFile": t.key_file,
            "caFile": t.ca_file,
            "certData": base64.b64encode(t.cert_data).decode(),
            "keyData": base64.b64encode(t.key_data).decode(),
            "caData": base64.b64encode(t.ca_data).decode(),
        }
    return out


# --- profiles --------------------------------------------------------------------------------


def _profile(profile: Profile, defaults: Sequence[PluginRef]) -> JSON:
    plugins: JSON = {}
    for point in (MULTI_POINT, *EXTENSION_POINTS):
        written = profile.plugins.get(point, PluginSet())
        merged = _merge(defaults, written) if point == MULTI_POINT else written
        plugins[point] = _plugin_set(merged)
    out: JSON = {
        "schedulerName": profile.scheduler_name,
        "plugins": plugins,
    }
    config = _plugin_config(profile, _enabled_names(plugins))
    if config:
        out["pluginConfig"] = config
    if profile.percentage_of_nodes_to_score is not None:
        out["percentageOfNodesToScore"] = profile.percentage_of_nodes_to_score
    return out


def _merge(defaults: Sequence[PluginRef], custom: PluginSet) -> PluginSet:
    """Upstream's mergePluginSet: defaults minus the disabled ones (all of them for "*"), a
    re-configured default replaced in place by the user's entry, then the user's other
    plugins in order; `disabled` kept as written."""
    disabled = {ref.name for ref in custom.disabled}
    index = {ref.name: i for i, ref in enumerate(custom.enabled)}
    replaced: set[int] = set()
    enabled: list[PluginRef] = []
    if _WILDCARD not in disabled:
        for ref in defaults:
            if ref.name in disabled:
                continue
            if ref.name in index:
                replaced.add(index[ref.name])
                ref = custom.enabled[index[ref.name]]
            enabled.append(ref)
    enabled += [ref for i, ref in enumerate(custom.enabled) if i not in replaced]
    return PluginSet(tuple(enabled), tuple(PluginRef(ref.name) for ref in custom.disabled))


def _plugin_set(plugin_set: PluginSet) -> JSON:
    out: JSON = {}  # an empty set is `{}`: upstream's fields are omitempty
    if plugin_set.enabled:
        out["enabled"] = [{"name": r.name, "weight": r.weight} for r in plugin_set.enabled]
    if plugin_set.disabled:
        out["disabled"] = [{"name": r.name} for r in plugin_set.disabled]
    return out


def _enabled_names(plugins: Mapping[str, JSON]) -> set[str]:
    return {ref["name"] for points in plugins.values() for ref in points.get("enabled", ())}


def _plugin_config(profile: Profile, enabled: set[str]) -> list[JSON]:
    """The args of every enabled plugin that has some, sorted by name (the framework's
    captured profile)."""
    out = []
    for name in sorted(enabled):
        args = profile.plugin_config.get(name)
        if args is None and name in pluginargs.TYPED_PLUGINS:
            args = pluginargs.decode(name, {}, "args", [])  # its defaults
        if args is None:
            continue
        out.append({"name": name, "args": _args(name, args)})
    return out


# --- plugin args -----------------------------------------------------------------------------


def _args(name: str, args: Any) -> JSON:
    if isinstance(args, Mapping):  # no args type: as written, like upstream's runtime.Unknown
        return dict(args)
    body = _typed_args(args)
    return {"apiVersion": API_VERSION, "kind": f"{name}Args", **body}


def _typed_args(args: Any) -> JSON:
    """The v1 fields of one typed args value (pluginargs' dataclasses)."""
    if isinstance(args, DefaultPreemptionArgs):
        return {
            "minCandidateNodesAbsolute": args.min_candidate_nodes_absolute,
            "minCandidateNodesPercentage": args.min_candidate_nodes_percentage,
        }
    if isinstance(args, InterPodAffinityArgs):
        return {
            "hardPodAffinityWeight": args.hard_pod_affinity_weight,
            "ignorePreferredTermsOfExistingPods": args.ignore_preferred_terms_of_existing_pods,
        }
    if isinstance(args, NodeAffinityArgs):
        return _node_affinity(args)
    if isinstance(args, NodeResourcesBalancedAllocationArgs):
        return {"resources": _resources(args.resources)}
    if isinstance(args, NodeResourcesFitArgs):
        return _fit(args)
    if isinstance(args, PodTopologySpreadArgs):
        out: JSON = {"defaultingType": args.defaulting_type}
        if args.default_constraints:
            out["defaultConstraints"] = [_constraint(c) for c in args.default_constraints]
        return out
    if isinstance(args, VolumeBindingArgs):
        return {"bindTimeoutSeconds": args.bind_timeout_seconds, "shape": _shape(args.shape)}
    if isinstance(args, DynamicResourcesArgs):
        return {
            "bindingTimeout": go_duration(args.binding_timeout_ns),
            "filterTimeout": go_duration(args.filter_timeout_ns),
        }
    raise TypeError(f"no v1 encoding for {type(args).__name__}")


def _node_affinity(args: NodeAffinityArgs) -> JSON:
    affinity: JSON = {}
    if args.added_required is not None:
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [_term(term) for term in args.added_required]
        }
    if args.added_preferred:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            _preferred(term) for term in args.added_preferred
        ]
    return {"addedAffinity": affinity} if affinity else {}


def _preferred(term: PreferredTerm) -> JSON:
    return {"weight": term.weight, "preference": _term(term.term)}


def _term(term: SelectorTerm) -> JSON:
    out: JSON = {}
    if term.expressions:
        out["matchExpressions"] = [_requirement(r) for r in term.expressions]
    if term.fields:
        out["matchFields"] = [_requirement(r) for r in term.fields]
    return out


def _requirement(r: Requirement) -> JSON:
    out: JSON = {"key": r.key, "operator": r.operator}
    if r.values:
        out["values"] = list(r.values)
    return out


def _fit(args: NodeResourcesFitArgs) -> JSON:
    strategy = args.scoring_strategy
    scoring: JSON = {"type": strategy.type, "resources": _resources(strategy.resources)}
    if strategy.requested_to_capacity_ratio is not None:
        scoring["requestedToCapacityRatio"] = {
            "shape": _shape(strategy.requested_to_capacity_ratio)
        }
    out: JSON = {"scoringStrategy": scoring}
    if args.ignored_resources:
        out["ignoredResources"] = list(args.ignored_resources)
    if args.ignored_resource_groups:
        out["ignoredResourceGroups"] = list(args.ignored_resource_groups)
    return out


def _constraint(c: SpreadConstraint) -> JSON:
    # A default constraint never has a labelSelector (validation forbids one).
    out: JSON = {
        "maxSkew": c.max_skew,
        "topologyKey": c.topology_key,
        "whenUnsatisfiable": c.when_unsatisfiable,
    }
    if c.min_domains is not None:
        out["minDomains"] = c.min_domains
    if c.node_affinity_policy:
        out["nodeAffinityPolicy"] = c.node_affinity_policy
    if c.node_taints_policy:
        out["nodeTaintsPolicy"] = c.node_taints_policy
    if c.match_label_keys:
        out["matchLabelKeys"] = list(c.match_label_keys)
    return out


def _resources(resources: Sequence[ResourceSpec]) -> list[JSON]:
    return [{"name": r.name, "weight": r.weight} for r in resources]


def _shape(shape: Sequence[UtilizationShapePoint]) -> list[JSON]:
    return [{"score": p.score, "utilization": p.utilization} for p in shape]


# --- scalars ---------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    return go_duration(round(seconds * _NS_PER_S))


def _number(value: float) -> int | float:
    """qps is a float32 upstream; whole values print as integers ("50"), as Go's JSON does."""
    return int(value) if float(value).is_integer() else value
