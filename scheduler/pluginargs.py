"""The in-tree plugins' args (`pluginConfig[].args`): types, decoding, defaults, validation.

Upstream keeps these next to the configuration, not in the plugins: the types in
`pkg/scheduler/apis/config/types_pluginargs.go` (v1: `k8s.io/kube-scheduler/config/v1`), the
defaults in `apis/config/v1/defaults.go`, the checks in
`apis/config/validation/validation_pluginargs.go`. The configuration decodes the args of every
plugin that has an args type when it reads the file, so a bad value is a configuration error
naming its full path (`profiles[0].pluginConfig[2].args.scoringStrategy.type: ...`) before
anything touches the cluster; each plugin's `new()` then receives the typed args.

Each args type is a frozen dataclass whose field defaults are upstream's v1 defaults, with a
`validate_*` function mirroring upstream's validator and its `field.Error` wording. Decoding is
strict (scheduler/decode.py): unknown fields and values of the wrong Go type are errors. As
upstream, where an args block does not decode, its validator does not run (upstream's strict
decoding fails before validation), so a wrong type is reported once, not again as a range error.

Plugins with no args type upstream (TaintToleration, ImageLocality, ...) and out-of-tree
plugins keep their args as the raw mapping the user wrote, as upstream passes them on
undecoded (`runtime.Unknown`); the in-tree ones ignore them, as upstream's do.

Feature gates are v1.37's defaults, which berth does not let one change:
`StorageCapacityScoring` (beta, on) defaults and validates `VolumeBindingArgs.shape`;
`DRASchedulerFilterTimeout` (beta, on), `DRADeviceBindingConditions` (beta, on) and
`DRAResourceClaimDeviceStatus` (GA) default and validate both DynamicResourcesArgs timeouts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from scheduler.decode import (
    INT64,
    NS_PER_S,
    ConfigError,
    Section,
    default,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    q,
    required,
    show,
)
from scheduler.labels import (
    is_qualified_name,
    is_valid_label_value,
)
from scheduler.model import (
    LabelSelector,
    PreferredTerm,
    Requirement,
    SelectorTerm,
    SpreadConstraint,
)

API_VERSION = "kubescheduler.config.k8s.io/v1"
_TYPE_META = ("apiVersion", "kind")

CPU = "cpu"
MEMORY = "memory"
# upstream's config.MaxCustomPriorityScore: the top of a utilization shape's score scale
MAX_CUSTOM_PRIORITY_SCORE = 10

LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
REQUESTED_TO_CAPACITY_RATIO = "RequestedToCapacityRatio"
SCORING_STRATEGY_TYPES = (LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO)

SYSTEM_DEFAULTING = "System"
LIST_DEFAULTING = "List"
DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"

_NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_FIELD_SELECTOR_OPERATORS = ("In", "NotIn")

_A = TypeVar("_A")


# --- shared pieces -------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceSpec:
    """A resource and its weight (upstream's ResourceSpec; weight 0 or unset means 1)."""

    name: str
    weight: int = 1


@dataclass(frozen=True)
class UtilizationShapePoint:
    """One point of a scoring function: utilization 0..100 maps to score 0..10."""

    utilization: int
    score: int


DEFAULT_RESOURCES = (ResourceSpec(CPU, 1), ResourceSpec(MEMORY, 1))
# Both RequestedToCapacityRatio's usual shape and VolumeBinding's default: emptier is better.
DEFAULT_SHAPE = (
    UtilizationShapePoint(0, MAX_CUSTOM_PRIORITY_SCORE),
    UtilizationShapePoint(100, 0),
)


# --- the args types ------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultPreemptionArgs:
    """Dry-run preemption on at least this share, and at least this many, of the nodes."""

    min_candidate_nodes_percentage: int = 10
    min_candidate_nodes_absolute: int = 100


@dataclass(frozen=True)
class InterPodAffinityArgs:
    # Score weight of an existing pod's required affinity term that the new pod matches.
    hard_pod_affinity_weight: int = 1
    # When the new pod has no preferred terms, skip scoring (existing pods' terms are ignored).
    ignore_preferred_terms_of_existing_pods: bool = False


@dataclass(frozen=True)
class NodeAffinityArgs:
    """`addedAffinity`, compiled: required terms (None = not set) and preferred terms."""

    added_required: tuple[SelectorTerm, ...] | None = None
    added_preferred: tuple[PreferredTerm, ...] = ()


@dataclass(frozen=True)
class NodeResourcesBalancedAllocationArgs:
    resources: tuple[ResourceSpec, ...] = DEFAULT_RESOURCES


@dataclass(frozen=True)
class ScoringStrategy:
    """NodeResourcesFit's Score. `requested_to_capacity_ratio` is the shape (None = not set),
    required with that type and forbidden with the others."""

    type: str = LEAST_ALLOCATED
    resources: tuple[ResourceSpec, ...] = DEFAULT_RESOURCES
    requested_to_capacity_ratio: tuple[UtilizationShapePoint, ...] | None = None


@dataclass(frozen=True)
class NodeResourcesFitArgs:
    ignored_resources: tuple[str, ...] = ()
    ignored_resource_groups: tuple[str, ...] = ()
    scoring_strategy: ScoringStrategy = ScoringStrategy()


@dataclass(frozen=True)
class PodTopologySpreadArgs:
    """`default_constraints` apply to pods without constraints when `defaulting_type` is
    List; System uses the built-in ones. Their selectors are set per pod (nothing here)."""

    default_constraints: tuple[SpreadConstraint, ...] = ()
    defaulting_type: str = SYSTEM_DEFAULTING


@dataclass(frozen=True)
class VolumeBindingArgs:
    """How long PreBind waits for the claims to be bound, and the StorageCapacityScoring
    shape (utilization of the capacity the claims would use -> score)."""

    bind_timeout_seconds: int = 600
    shape: tuple[UtilizationShapePoint, ...] = DEFAULT_SHAPE


@dataclass(frozen=True)
class DynamicResourcesArgs:
    """Timeouts in nanoseconds (metav1.Duration): Filter per node (0 = none), and PreBind's
    wait for device binding conditions."""

    filter_timeout_ns: int = 10 * NS_PER_S
    binding_timeout_ns: int = 600 * NS_PER_S


# --- decoding: one function per args type, reading a Section --------------------------------

_RESOURCE_SPEC_FIELDS = ("name", "weight")
_SHAPE_POINT_FIELDS = ("utilization", "score")


def _resources(section: Section, key: str) -> tuple[ResourceSpec, ...] | None:
    """A `[]ResourceSpec` with upstream's weight default (0 -> 1); None when empty or unset."""
    specs = tuple(
        ResourceSpec(
            default(item.get_str("name"), ""),
            default(item.get_int("weight", INT64), 0) or 1,
        )
        for item in section.sections(key, _RESOURCE_SPEC_FIELDS)
    )
    return specs or None


def _shape(section: Section, key: str) -> tuple[UtilizationShapePoint, ...]:
    return tuple(
        UtilizationShapePoint(
            default(item.get_int("utilization"), 0), default(item.get_int("score"), 0)
        )
        for item in section.sections(key, _SHAPE_POINT_FIELDS)
    )


def _decode_default_preemption(s: Section) -> DefaultPreemptionArgs:
    return DefaultPreemptionArgs(
        default(s.get_int("minCandidateNodesPercentage"), 10),
        default(s.get_int("minCandidateNodesAbsolute"), 100),
    )


def _decode_inter_pod_affinity(s: Section) -> InterPodAffinityArgs:
    return InterPodAffinityArgs(
        default(s.get_int("hardPodAffinityWeight"), 1),
        default(s.get_bool("ignorePreferredTermsOfExistingPods"), False),
    )


_NODE_AFFINITY_FIELDS = (
    "requiredDuringSchedulingIgnoredDuringExecution",
    "preferredDuringSchedulingIgnoredDuringExecution",
)
_TERM_FIELDS = ("matchExpressions", "matchFields")
_REQUIREMENT_FIELDS = ("key", "operator", "values")


def _decode_node_affinity(s: Section) -> NodeAffinityArgs:
    if s.get("addedAffinity") is None:
        return NodeAffinityArgs()
    affinity = s.section("addedAffinity", _NODE_AFFINITY_FIELDS)
    required_terms = None
    if affinity.get(_NODE_AFFINITY_FIELDS[0]) is not None:
        selector = affinity.section(_NODE_AFFINITY_FIELDS[0], ("nodeSelectorTerms",))
        required_terms = tuple(
            _term(term) for term in selector.sections("nodeSelectorTerms", _TERM_FIELDS)
        )
    preferred = []
    for item in affinity.sections(_NODE_AFFINITY_FIELDS[1], ("weight", "preference")):
        term = _term(item.section("preference", _TERM_FIELDS))
        preferred.append(PreferredTerm(default(item.get_int("weight"), 0), term))
    return NodeAffinityArgs(required_terms, tuple(preferred))


def _term(s: Section) -> SelectorTerm:
    def requirements(key: str) -> tuple[Requirement, ...]:
        return tuple(
            Requirement(
                default(r.get_str("key"), ""),
                default(r.get_str("operator"), ""),
                tuple(default(r.get_str_list("values"), [])),
            )
            for r in s.sections(key, _REQUIREMENT_FIELDS)
        )

    return SelectorTerm(requirements("matchExpressions"), requirements("matchFields"))


def _decode_balanced_allocation(s: Section) -> NodeResourcesBalancedAllocationArgs:
    return NodeResourcesBalancedAllocationArgs(_resources(s, "resources") or DEFAULT_RESOURCES)


_STRATEGY_FIELDS = ("type", "resources", "requestedToCapacityRatio")


def _decode_fit(s: Section) -> NodeResourcesFitArgs:
    strategy = ScoringStrategy()
    if s.get("scoringStrategy") is not None:
        raw = s.section("scoringStrategy", _STRATEGY_FIELDS)
        ratio = None
        if raw.get("requestedToCapacityRatio") is not None:
            ratio = _shape(raw.section("requestedToCapacityRatio", ("shape",)), "shape")
        # Upstream defaults the type only when the whole strategy is unset.
        strategy = ScoringStrategy(
            default(raw.get_str("type"), ""),
            _resources(raw, "resources") or DEFAULT_RESOURCES,
            ratio,
        )
    return NodeResourcesFitArgs(
        tuple(default(s.get_str_list("ignoredResources"), [])),
        tuple(default(s.get_str_list("ignoredResourceGroups"), [])),
        strategy,
    )


_CONSTRAINT_FIELDS = (
    "maxSkew",
    "topologyKey",
    "whenUnsatisfiable",
    "labelSelector",
    "minDomains",
    "nodeAffinityPolicy",
    "nodeTaintsPolicy",
    "matchLabelKeys",
)
# Default constraints take their selector from each pod; a written one is refused (validate).
_NO_SELECTOR = LabelSelector(nothing=True)
_WRITTEN_SELECTOR = LabelSelector()


def _decode_pod_topology_spread(s: Section) -> PodTopologySpreadArgs:
    constraints = []
    for c in s.sections("defaultConstraints", _CONSTRAINT_FIELDS):
        selector = _NO_SELECTOR
        raw_selector = c.get("labelSelector")
        if raw_selector is not None:
            # Only its shape is decoded: any selector here is Forbidden (validate says so, with
            # the constraint's other problems), so what is inside it does not matter.
            if not isinstance(raw_selector, Mapping):
                c.error(c.at("labelSelector"), f"must be a mapping (got {show(raw_selector)})")
            selector = _WRITTEN_SELECTOR
        constraints.append(
            SpreadConstraint(
                max_skew=default(c.get_int("maxSkew"), 0),
                topology_key=default(c.get_str("topologyKey"), ""),
                when_unsatisfiable=default(c.get_str("whenUnsatisfiable"), ""),
                selector=selector,
                min_domains=c.get_int("minDomains"),
                node_affinity_policy=default(c.get_str("nodeAffinityPolicy"), ""),
                node_taints_policy=default(c.get_str("nodeTaintsPolicy"), ""),
                match_label_keys=tuple(default(c.get_str_list("matchLabelKeys"), [])),
            )
        )
    return PodTopologySpreadArgs(
        tuple(constraints), s.get_str("defaultingType") or SYSTEM_DEFAULTING
    )


def _decode_volume_binding(s: Section) -> VolumeBindingArgs:
    return VolumeBindingArgs(
        default(s.get_int("bindTimeoutSeconds", INT64), 600),
        _shape(s, "shape") or DEFAULT_SHAPE,  # StorageCapacityScoring is on: default the shape
    )


def _decode_dynamic_resources(s: Section) -> DynamicResourcesArgs:
    return DynamicResourcesArgs(
        default(s.get_duration_ns("filterTimeout"), 10 * NS_PER_S),
        default(s.get_duration_ns("bindingTimeout"), 600 * NS_PER_S),
    )


# --- validation: upstream's validation_pluginargs.go ---------------------------------------


def validate_default_preemption_args(args: DefaultPreemptionArgs, path: str) -> list[str]:
    errs = []
    percentage, absolute = args.min_candidate_nodes_percentage, args.min_candidate_nodes_absolute
    percentage_path = f"{path}.minCandidateNodesPercentage"
    absolute_path = f"{path}.minCandidateNodesAbsolute"
    if not 0 <= percentage <= 100:
        errs.append(invalid(percentage_path, percentage, "not in valid range [0, 100]"))
    if absolute < 0:
        errs.append(invalid(absolute_path, absolute, "not in valid range [0, inf)"))
    if percentage == 0 and absolute == 0:
        errs += [
            invalid(
                percentage_path, 0, "cannot be zero at the same time as minCandidateNodesAbsolute"
            ),
            invalid(
                absolute_path, 0, "cannot be zero at the same time as minCandidateNodesPercentage"
            ),
        ]
    return errs


def validate_inter_pod_affinity_args(args: InterPodAffinityArgs, path: str) -> list[str]:
    weight = args.hard_pod_affinity_weight
    if not 0 <= weight <= 100:
        return [invalid(f"{path}.hardPodAffinityWeight", weight, "not in valid range [0, 100]")]
    return []


def validate_node_affinity_args(args: NodeAffinityArgs, path: str) -> list[str]:
    """nodeaffinity.NewNodeSelector and NewPreferredSchedulingTerms: empty terms, and
    preferred terms of weight 0, are skipped (they select nothing)."""
    errs: list[str] = []
    affinity = f"{path}.addedAffinity"
    for i, term in enumerate(args.added_required or ()):
        where = f"{affinity}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]"
        errs += _validate_term(term, where)
    for i, preferred in enumerate(args.added_preferred):
        if preferred.weight != 0:
            where = f"{affinity}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            errs += _validate_term(preferred.term, where)
    return errs


def _validate_term(term: SelectorTerm, path: str) -> list[str]:
    errs: list[str] = []
    for i, r in enumerate(term.expressions):
        where = f"{path}.matchExpressions[{i}]"
        if r.operator not in _NODE_SELECTOR_OPERATORS:
            errs.append(not_supported(f"{where}.operator", r.operator, _NODE_SELECTOR_OPERATORS))
        else:
            errs += _validate_requirement(r, where)
    for i, r in enumerate(term.fields):
        where = f"{path}.matchFields[{i}]"
        if r.operator not in _FIELD_SELECTOR_OPERATORS:
            errs.append(not_supported(f"{where}.operator", r.operator, _FIELD_SELECTOR_OPERATORS))
        elif len(r.values) != 1:
            errs.append(invalid(f"{where}.values", list(r.values), "must have one element"))
    return errs


def _validate_requirement(r: Requirement, path: str) -> list[str]:
    """labels.NewRequirement's checks, in its order and words."""
    errs: list[str] = []
    if problems := is_qualified_name(r.key):
        errs.append(invalid(f"{path}.key", r.key, "; ".join(problems)))
    values = f"{path}.values"
    if r.operator in ("In", "NotIn") and not r.values:
        errs.append(invalid(values, [], "for 'in', 'notin' operators, values set can't be empty"))
    elif r.operator in ("Exists", "DoesNotExist") and r.values:
        errs.append(
            invalid(
                values, list(r.values), "values set must be empty for exists and does not exist"
            )
        )
    elif r.operator in ("Gt", "Lt"):
        if len(r.values) != 1:
            errs.append(
                invalid(
                    values,
                    list(r.values),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                )
            )
        for i, value in enumerate(r.values):
            if not _is_go_int64(value):
                errs.append(
                    invalid(
                        f"{values}[{i}]",
                        value,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for i, value in enumerate(r.values):
        if problems := is_valid_label_value(value):
            errs.append(invalid(f"{values}[{i}][{r.key}]", value, "; ".join(problems)))
    return errs


def _is_go_int64(text: str) -> bool:
    """strconv.ParseInt(text, 10, 64) succeeds."""
    body = text[1:] if text[:1] in ("+", "-") else text
    return body.isascii() and body.isdigit() and INT64[0] <= int(text) <= INT64[1]


def validate_node_resources_balanced_allocation_args(
    args: NodeResourcesBalancedAllocationArgs, path: str
) -> list[str]:
    errs: list[str] = []
    seen: set[str] = set()
    for i, resource in enumerate(args.resources):
        where = f"{path}.resources[{i}]"
        if resource.name in seen:
            errs.append(duplicate(f"{where}.name", resource.name))
        seen.add(resource.name)
        if resource.weight != 1:
            errs.append(invalid(f"{where}.weight", resource.weight, "must be 1"))
    return errs


def validate_node_resources_fit_args(args: NodeResourcesFitArgs, path: str) -> list[str]:
    """Upstream's ValidateNodeResourcesFitArgs. (Upstream's configuration validation looks
    the validator up under the wrong name, "NodeResourcesFitArgs", so kube-scheduler only
    runs it in the plugin's constructor, with no path; berth runs it with the configuration
    and names the field.)"""
    errs: list[str] = []
    for i, name in enumerate(args.ignored_resources):
        errs += _validate_label_name(f"{path}.ignoredResources[{i}]", name)
    for i, group in enumerate(args.ignored_resource_groups):
        where = f"{path}.ignoredResourceGroups[{i}]"
        if "/" in group:
            errs.append(invalid(where, group, "resource group name can't contain '/'"))
        errs += _validate_label_name(where, group)
    strategy = args.scoring_strategy
    where = f"{path}.scoringStrategy"
    if strategy.type not in SCORING_STRATEGY_TYPES:
        errs.append(not_supported(f"{where}.type", strategy.type, SCORING_STRATEGY_TYPES))
    errs += _validate_resources(strategy.resources, f"{where}.resources")
    ratio = f"{where}.requestedToCapacityRatio"
    if strategy.type == REQUESTED_TO_CAPACITY_RATIO:
        if strategy.requested_to_capacity_ratio is None:
            errs.append(required(ratio, "must be specified when type is RequestedToCapacityRatio"))
        else:
            errs += validate_function_shape(strategy.requested_to_capacity_ratio, f"{ratio}.shape")
    elif strategy.requested_to_capacity_ratio is not None:
        errs.append(forbidden(ratio, "must be nil when type is not RequestedToCapacityRatio"))
    return errs


def _validate_label_name(path: str, name: str) -> list[str]:
    """metav1validation.ValidateLabelName: one error per problem."""
    return [invalid(path, name, problem) for problem in is_qualified_name(name)]


def _validate_resources(resources: Sequence[ResourceSpec], path: str) -> list[str]:
    return [
        invalid(
            f"{path}[{i}].weight",
            r.weight,
            f"resource weight of {r.name} not in valid range (0, 100]",
        )
        for i, r in enumerate(resources)
        if not 0 < r.weight <= 100
    ]


def validate_function_shape(shape: Sequence[UtilizationShapePoint], path: str) -> list[str]:
    """Upstream's validateFunctionShape: at least one point, utilization strictly increasing
    (the first offence only), utilization in [0, 100] and score in [0, 10]."""
    if not shape:
        return [required(path, "at least one point must be specified")]
    errs: list[str] = []
    for i in range(1, len(shape)):
        if shape[i - 1].utilization >= shape[i].utilization:
            errs.append(
                invalid(
                    f"{path}[{i}].utilization",
                    shape[i].utilization,
                    "values must be sorted in increasing order",
                )
            )
            break
    for i, point in enumerate(shape):
        if not 0 <= point.utilization <= 100:
            errs.append(
                invalid(
                    f"{path}[{i}].utilization", point.utilization, "not in valid range [0, 100]"
                )
            )
        if not 0 <= point.score <= MAX_CUSTOM_PRIORITY_SCORE:
            errs.append(
                invalid(
                    f"{path}[{i}].score",
                    point.score,
                    f"not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]",
                )
            )
    return errs


def validate_pod_topology_spread_args(args: PodTopologySpreadArgs, path: str) -> list[str]:
    errs: list[str] = []
    kind = args.defaulting_type
    if kind not in (SYSTEM_DEFAULTING, LIST_DEFAULTING):
        errs.append(
            not_supported(f"{path}.defaultingType", kind, (SYSTEM_DEFAULTING, LIST_DEFAULTING))
        )
    elif kind == SYSTEM_DEFAULTING and args.default_constraints:
        errs.append(
            invalid(f"{path}.defaultingType", kind, "when .defaultConstraints are not empty")
        )
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(args.default_constraints):
        where = f"{path}.defaultConstraints[{i}]"
        if c.max_skew <= 0:
            errs.append(invalid(f"{where}.maxSkew", c.max_skew, "not in valid range (0, inf)"))
        if not c.topology_key:
            errs.append(required(f"{where}.topologyKey", "can not be empty"))
        else:
            errs += _validate_label_name(f"{where}.topologyKey", c.topology_key)
        actions = (DO_NOT_SCHEDULE, SCHEDULE_ANYWAY)
        if not c.when_unsatisfiable:
            errs.append(required(f"{where}.whenUnsatisfiable", "can not be empty"))
        elif c.when_unsatisfiable not in actions:
            errs.append(not_supported(f"{where}.whenUnsatisfiable", c.when_unsatisfiable, actions))
        if c.selector is _WRITTEN_SELECTOR:
            errs.append(
                forbidden(
                    f"{where}.labelSelector",
                    "constraint must not define a selector, as they deduced for each pod",
                )
            )
        pair = (c.topology_key, c.when_unsatisfiable)
        if pair in seen:
            errs.append(duplicate(where, f"{{{pair[0]}, {pair[1]}}}"))
        seen.add(pair)
    return errs


def validate_volume_binding_args(args: VolumeBindingArgs, path: str) -> list[str]:
    errs: list[str] = []
    if args.bind_timeout_seconds < 0:
        errs.append(
            invalid(
                f"{path}.bindTimeoutSeconds",
                args.bind_timeout_seconds,
                "invalid BindTimeoutSeconds, should not be a negative value",
            )
        )
    # StorageCapacityScoring is on in v1.37, so the shape is validated rather than refused.
    return errs + validate_function_shape(args.shape, f"{path}.shape")


def validate_dynamic_resources_args(args: DynamicResourcesArgs, path: str) -> list[str]:
    """With v1.37's gates all on, both timeouts are allowed and range-checked."""
    errs: list[str] = []
    if args.filter_timeout_ns < 0:
        errs.append(
            invalid(
                f"{path}.filterTimeout",
                go_duration(args.filter_timeout_ns),
                "must be zero or positive",
            )
        )
    if args.binding_timeout_ns < NS_PER_S:
        errs.append(
            invalid(
                f"{path}.bindingTimeout",
                go_duration(args.binding_timeout_ns),
                "must be at least 1 second",
            )
        )
    return errs


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): "1m30s", "500ms", "-1s", "0s"."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < NS_PER_S:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{sign}{_decimal(ns, size)}{unit}"
    hours, rest = divmod(ns, 3600 * NS_PER_S)
    minutes, rest = divmod(rest, 60 * NS_PER_S)
    text = f"{_decimal(rest, NS_PER_S)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


# --- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArgsType:
    fields: tuple[str, ...]
    decode: Callable[[Section], Any]
    validate: Callable[[Any, str], list[str]]


# By plugin name, as upstream registers `<Name>Args` kinds in its scheme.
_TYPES: dict[str, _ArgsType] = {
    "DefaultPreemption": _ArgsType(
        ("minCandidateNodesPercentage", "minCandidateNodesAbsolute"),
        _decode_default_preemption,
        validate_default_preemption_args,
    ),
    "InterPodAffinity": _ArgsType(
        ("hardPodAffinityWeight", "ignorePreferredTermsOfExistingPods"),
        _decode_inter_pod_affinity,
        validate_inter_pod_affinity_args,
    ),
    "NodeAffinity": _ArgsType(
        ("addedAffinity",), _decode_node_affinity, validate_node_affinity_args
    ),
    "NodeResourcesBalancedAllocation": _ArgsType(
        ("resources",),
        _decode_balanced_allocation,
        validate_node_resources_balanced_allocation_args,
    ),
    "NodeResourcesFit": _ArgsType(
        ("ignoredResources", "ignoredResourceGroups", "scoringStrategy"),
        _decode_fit,
        validate_node_resources_fit_args,
    ),
    "PodTopologySpread": _ArgsType(
        ("defaultConstraints", "defaultingType"),
        _decode_pod_topology_spread,
        validate_pod_topology_spread_args,
    ),
    "VolumeBinding": _ArgsType(
        ("bindTimeoutSeconds", "shape"), _decode_volume_binding, validate_volume_binding_args
    ),
    "DynamicResources": _ArgsType(
        ("filterTimeout", "bindingTimeout"),
        _decode_dynamic_resources,
        validate_dynamic_resources_args,
    ),
}
TYPED_PLUGINS: Collection[str] = frozenset(_TYPES)


def decode(name: str, raw: Any, path: str, errs: list[str]) -> Any:
    """The args of plugin `name`, written at `path` (e.g. "profiles[0].pluginConfig[2].args").

    Null means `{}`. `apiVersion` and `kind`, when given, must name this plugin's args type.
    A plugin with an args type gets it decoded, defaulted and validated; any other keeps a
    plain dict (without `apiVersion`/`kind`). Problems go to `errs`, each with its full path;
    the result is then still usable (defaults stand in for the bad values).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        errs.append(f"{path}: must be a mapping (got {show(raw)})")
        raw = {}
    for key, want in (("apiVersion", API_VERSION), ("kind", f"{name}Args")):
        value = raw.get(key)
        if value is not None and value != want:
            errs.append(f"{path}.{key}: must be {q(want)} (got {show(value)})")
    rest = {k: v for k, v in raw.items() if k not in _TYPE_META}
    kind = _TYPES.get(name)
    if kind is None:
        return rest
    decoding: list[str] = []
    args = kind.decode(Section(rest, path, kind.fields, decoding))
    errs += decoding
    if not decoding:  # as upstream: args that do not decode are not validated
        errs += kind.validate(args, path)
    return args


def coerce(name: str, cls: type[_A], args: _A | Mapping[str, Any]) -> _A:
    """What a plugin's `new()` makes of its args: the typed args the configuration decoded,
    or a raw mapping (tests, embedders), decoded here. Raises ConfigError (a ValueError) with
    paths under "args"."""
    if isinstance(args, cls):
        return args
    errs: list[str] = []
    decoded = decode(name, args, "args", errs)
    if errs:
        raise ConfigError(errs)
    if not isinstance(decoded, cls):
        raise TypeError(f"{name} args: expected {cls.__name__}, got {type(args).__name__}")
    return decoded
