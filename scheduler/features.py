"""Feature gates: `--feature-gates` as kube-scheduler v1.37 reads it; the values berth runs with.

berth knows every gate kube-scheduler v1.37.2 knows (scheduler/feature_table.py), so a
`--feature-gates` value that kube-scheduler accepts, berth accepts, and one it refuses, berth
refuses with the same message (component-base featuregate `Set`, compatibility registry):

- `unrecognized feature gate: X` for a name neither knows;
- `cannot set feature gate X to false, feature is locked to true` for a GA or deprecated gate
  locked to its default;
- `missing bool value for X`, `invalid value of X=maybe, err: ...` for a malformed pair;
- `X is enabled, but depends on features that are disabled: [Y]` after the values are set.

The flag may repeat; each value is a comma-separated list of `Name=bool`, optionally prefixed
by the component (`kube:Name=true`; "kube" is the only component berth has, as
kube-scheduler). `AllAlpha` / `AllBeta` set every alpha / beta gate not named explicitly.

The values are process-wide, set once by `berth run` before anything is built, as upstream's
`utilfeature.DefaultFeatureGate` is: `enabled(name)` is how plugins and the engine read them
(`SCHEDULER_GATES` are those upstream's scheduler reads; `WIRED` those that change what berth
does). Tests swap the values with `overridden()`.

One deliberate difference: GenericWorkload defaults to **true** in berth (beta, false
upstream). berth ships gang scheduling on (the GangScheduling plugin does nothing for pods
that name no PodGroup); `GenericWorkload=false` turns it off. docs/compat.md lists it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from scheduler.feature_table import ALPHA, BETA, DEPENDENCIES, GATES

__all__ = [
    "SCHEDULER_GATES",
    "WIRED",
    "FeatureGateError",
    "FeatureGates",
    "current",
    "enabled",
    "overridden",
    "parse",
    "set_current",
    "unhonoured",
]

_COMPONENT = "kube"
_ALL_ALPHA = "AllAlpha"
_ALL_BETA = "AllBeta"

# berth's defaults where they differ from upstream's (see the module docstring).
_BERTH_DEFAULTS: Mapping[str, bool] = MappingProxyType({"GenericWorkload": True})

# The gates upstream's scheduler reads (pkg/scheduler, v1.37.2).
SCHEDULER_GATES: frozenset[str] = frozenset(
    {
        "CompositePodGroup",
        "DRAAdminAccess",
        "DRAConsumableCapacity",
        "DRADerivedAttributes",
        "DRADeviceBindingConditions",
        "DRADeviceCompatibilityGroups",
        "DRADeviceTaintRules",
        "DRADeviceTaints",
        "DRAExtendedResource",
        "DRAFractionalCapacityRange",
        "DRAListTypeAttributes",
        "DRANodeAllocatableResources",
        "DRAOptionalNodeOperations",
        "DRAPartitionableDevices",
        "DRAPrioritizedList",
        "DRAResourceClaimDeviceStatus",
        "DRASchedulerFilterTimeout",
        "DRAWorkloadResourceClaims",
        "DynamicResourceAllocation",
        "GenericWorkload",
        "InPlacePodLevelResourcesVerticalScaling",
        "InPlacePodVerticalScaling",
        "InPlacePodVerticalScalingSchedulerPreemption",
        "InterPodAffinityHostnameFastPath",
        "MatchLabelKeysInPodTopologySpread",
        "NodeDeclaredFeatures",
        "NodeInclusionPolicyInPodTopologySpread",
        "NominatedNodeNameForExpectation",
        "OpportunisticBatching",
        "PodGroupPreemptionPolicy",
        "PodLevelResources",
        "SchedulerAsyncAPICalls",
        "SchedulerAsyncPreemption",
        "SchedulerPopFromBackoffQ",
        "SchedulerPreQueueingHints",
        "StorageCapacityScoring",
        "TaintTolerationComparisonOperators",
        "TopologyAwareWorkloadScheduling",
        "VolumeAttributesClass",
        "VolumeLimitScaling",
    }
)

# The gates whose value changes what berth does, and how. docs/compat.md says what berth does
# about the other scheduler gates (most run at their v1.37 default whatever is set).
WIRED: Mapping[str, str] = MappingProxyType(
    {
        "GenericWorkload": "GangScheduling is a default plugin (berth: on by default)",
        "OpportunisticBatching": "equivalence batching of identical pods' Filter/Score",
        "TaintTolerationComparisonOperators": "tolerations with Lt/Gt compare integers",
        "DynamicResourceAllocation": "DynamicResources is a default plugin (locked on)",
        "NodeDeclaredFeatures": "NodeDeclaredFeatures is a default plugin (locked on)",
        "SchedulerPopFromBackoffQ": "an empty active queue pops from the backoff queue",
    }
)


def unhonoured(gates: FeatureGates) -> list[str]:
    """Scheduler gates set on the command line to a value other than berth's default that berth
    does not act on (it keeps its documented behaviour: docs/flags.md), for one warning."""
    return sorted(
        name
        for name, value in gates.explicit.items()
        if name in SCHEDULER_GATES and name not in WIRED and value != FeatureGates().enabled(name)
    )


class FeatureGateError(ValueError):
    """A `--feature-gates` value kube-scheduler refuses; str() is upstream's message(s)."""


@dataclass(frozen=True)
class FeatureGates:
    """Gate values: berth's defaults plus `explicit`, the values set on the command line."""

    explicit: Mapping[str, bool] = field(default_factory=dict)

    def enabled(self, name: str) -> bool:
        """Raises KeyError for a name no gate has: a typo in berth's code, not user input."""
        if name in self.explicit:
            return self.explicit[name]
        if name in _BERTH_DEFAULTS:
            return _BERTH_DEFAULTS[name]
        return GATES[name][0]

    def explicitly_set(self, name: str) -> bool:
        return name in self.explicit

    def values(self) -> dict[str, bool]:
        """Every gate (AllAlpha/AllBeta excepted) with its value, by name."""
        return {n: self.enabled(n) for n in sorted(GATES) if n not in (_ALL_ALPHA, _ALL_BETA)}


def parse(flags: Sequence[str]) -> FeatureGates:
    """The gates set by each `--feature-gates` value, in order (a later value for a gate wins).

    Raises FeatureGateError with upstream's message(s), several joined by ", " as upstream's
    aggregate prints them."""
    pairs: list[str] = []
    prefixes: set[str] = set()
    for flag in flags:
        for item in flag.split(","):
            if not item:
                continue
            component, sep, rest = item.partition(":")
            if not sep:
                prefixes.add("")
                pairs.append(item.strip())
                continue
            component = component.strip()
            if component != _COMPONENT:
                raise FeatureGateError(f"component not registered: {component}")
            prefixes.add(component)
            pairs.append(rest.strip())
    if len(prefixes) > 1:
        raise FeatureGateError(
            "set kube feature gates with default empty prefix or kube: prefix consistently, "
            "do not mix use"
        )
    return _set(_pairs(pairs))


def _pairs(items: Sequence[str]) -> dict[str, bool]:
    """component-base's featureGate.Set: `k=v` pairs, v as Go's strconv.ParseBool."""
    values: dict[str, bool] = {}
    for item in items:
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise FeatureGateError(f"missing bool value for {key}")
        value = raw.strip()
        parsed = _GO_BOOLS.get(value)
        if parsed is None:
            raise FeatureGateError(
                f"invalid value of {key}={value}, err: strconv.ParseBool: parsing "
                f'"{value}": invalid syntax'
            )
        values[key] = parsed
    return values


_GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


def _set(values: Mapping[str, bool]) -> FeatureGates:
    """featureGate.unsafeSetFromMap: every unknown name stops at once, locked ones collect."""
    errors: list[str] = []
    explicit: dict[str, bool] = {}
    for name, value in values.items():
        spec = GATES.get(name)
        if spec is None:
            raise FeatureGateError(f"unrecognized feature gate: {name}")
        default, _, locked = spec
        if locked and value != default:
            errors.append(
                f"cannot set feature gate {name} to {_go(value)}, "
                f"feature is locked to {_go(default)}"
            )
            continue
        explicit[name] = value
    if errors:
        raise FeatureGateError(", ".join(errors))
    for special, stage in ((_ALL_ALPHA, ALPHA), (_ALL_BETA, BETA)):
        if special in explicit:
            for name, (_, gate_stage, _) in GATES.items():
                if (
                    gate_stage == stage
                    and name not in values
                    and name
                    not in (
                        _ALL_ALPHA,
                        _ALL_BETA,
                    )
                ):
                    explicit[name] = explicit[special]
    gates = FeatureGates(MappingProxyType(explicit))
    _check_dependencies(gates)
    return gates


def _check_dependencies(gates: FeatureGates) -> None:
    errors = []
    for name in sorted(DEPENDENCIES):
        if name not in GATES or not gates.enabled(name):
            continue
        off = [dep for dep in DEPENDENCIES[name] if dep in GATES and not gates.enabled(dep)]
        if off:
            errors.append(
                f"{name} is enabled, but depends on features that are disabled: [{' '.join(off)}]"
            )
    if errors:
        raise FeatureGateError(", ".join(errors))


def _go(value: bool) -> str:
    return "true" if value else "false"


# --- the process's values --------------------------------------------------------------------

_current = FeatureGates()


def current() -> FeatureGates:
    return _current


def set_current(gates: FeatureGates) -> None:
    """Called once by `berth run`, before any plugin or engine part is built."""
    global _current
    _current = gates


def enabled(name: str) -> bool:
    """Whether gate `name` is on in this process (KeyError for an unknown name)."""
    return _current.enabled(name)


@contextlib.contextmanager
def overridden(values: Mapping[str, bool]) -> Iterator[FeatureGates]:
    """Run with these gates set (tests); the previous values come back afterwards."""
    before = _current
    gates = FeatureGates(MappingProxyType({**before.explicit, **values}))
    set_current(gates)
    try:
        yield gates
    finally:
        set_current(before)
