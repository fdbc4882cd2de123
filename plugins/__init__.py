"""The plugin registry: name -> factory. One module per plugin, named after what it checks.

Out-of-tree plugins register through the `berth.plugins` entry-point group; each entry point
names a module with NAME and new(args, handle). Registering a name twice is an error.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from types import ModuleType

from plugins import (
    default_binder,
    default_preemption,
    dynamic_resources,
    gang_scheduling,
    image_locality,
    inter_pod_affinity,
    node_affinity,
    node_declared_features,
    node_name,
    node_ports,
    node_resources_balanced_allocation,
    node_resources_fit,
    node_unschedulable,
    node_volume_limits,
    pod_topology_spread,
    priority_sort,
    scheduling_gates,
    taint_toleration,
    volume_binding,
    volume_restrictions,
    volume_zone,
)
from scheduler import features
from scheduler.framework import Factory

_BUILTIN: tuple[ModuleType, ...] = (
    priority_sort,
    scheduling_gates,
    node_unschedulable,
    node_name,
    taint_toleration,
    node_affinity,
    node_ports,
    node_resources_fit,
    volume_restrictions,
    node_volume_limits,
    volume_binding,
    volume_zone,
    pod_topology_spread,
    inter_pod_affinity,
    dynamic_resources,
    default_preemption,
    node_resources_balanced_allocation,
    image_locality,
    default_binder,
    node_declared_features,
    gang_scheduling,
)

# Upstream's default multiPoint list (the plugins berth has so far), in upstream order, with
# the default Score weights. DynamicResources is there because its feature gate
# (DynamicResourceAllocation) is GA and on by default since v1.34: upstream then inserts it
# just before DefaultPreemption, with weight 2. NodeDeclaredFeatures is there because its gate
# is GA and locked on in v1.37: upstream appends it at the end, with no Score weight.
DEFAULTS: tuple[tuple[str, int], ...] = (
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    # v1.37 moved NodeName before NodeUnschedulable: its PreFilter runs first and, at Filter,
    # a node that fails both reports NodeName's reason.
    ("NodeName", 0),
    ("NodeUnschedulable", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DynamicResources", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
    ("NodeDeclaredFeatures", 0),
    # Upstream appends GangScheduling when GenericWorkload is on (beta, off by default in
    # v1.37). berth has it on: it does nothing for pods that name no PodGroup.
    ("GangScheduling", 0),
)


# Default plugins that upstream's applyFeatureGates adds only with their gate on.
_GATED_DEFAULTS = {
    "DynamicResources": "DynamicResourceAllocation",
    "NodeDeclaredFeatures": "NodeDeclaredFeatures",
    "GangScheduling": "GenericWorkload",
}


def defaults() -> tuple[tuple[str, int], ...]:
    """DEFAULTS with the process's feature gates applied (scheduler/features.py), as upstream's
    getDefaultPlugins applies them: a gated plugin is left out while its gate is off."""
    return tuple(
        (name, weight)
        for name, weight in DEFAULTS
        if name not in _GATED_DEFAULTS or features.enabled(_GATED_DEFAULTS[name])
    )


class PluginLoadError(ValueError):
    """An installed plugin cannot be loaded; the message names its entry point."""


def registry() -> dict[str, Factory]:
    """Built-in plugins plus those installed under the `berth.plugins` entry-point group.
    Raises PluginLoadError naming the entry point (and its distribution) when one cannot be
    imported, lacks NAME or new(), or takes a name that is already registered."""
    out: dict[str, Factory] = {}
    sources: dict[str, str] = {}
    loaded: list[tuple[ModuleType, str]] = [(m, "built-in") for m in _BUILTIN]
    for ep in entry_points(group="berth.plugins"):
        where = f"entry point {ep.name!r} ({ep.value}"
        where += f", from {ep.dist.name})" if ep.dist is not None else ")"
        try:
            loaded.append((ep.load(), where))
        except Exception as err:
            raise PluginLoadError(f"{where}: cannot import: {type(err).__name__}: {err}") from err
    for module, where in loaded:
        name = getattr(module, "NAME", None)
        factory = getattr(module, "new", None)
        if not isinstance(name, str) or not callable(factory):
            raise PluginLoadError(f"{where}: a plugin module needs NAME and new(args, handle)")
        if name in out:
            raise PluginLoadError(
                f"{where}: plugin {name!r} is registered twice (also {sources[name]})"
            )
        out[name] = factory
        sources[name] = where
    return out
