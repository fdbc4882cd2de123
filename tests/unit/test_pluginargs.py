"""Plugin args through the configuration: the failures reported in issue 12, each args type's
upstream defaults, and its validator with the cases of upstream's
validation_pluginargs_test.go (case names kept)."""

from __future__ import annotations

from typing import Any

import pytest

import plugins
from scheduler import pluginargs as pa
from scheduler.config import API_VERSION, KIND, ConfigError, parse
from scheduler.model import PreferredTerm, Requirement, SelectorTerm, SpreadConstraint

JSON = dict[str, Any]
KNOWN = frozenset(plugins.registry())
AT = "profiles[0].pluginConfig[1].args"  # every case below sits at index 1


def config(name: str, args: Any) -> JSON:
    """One profile whose pluginConfig[1] is `name` with `args` (index 0 is another plugin)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "profiles": [
            {
                "pluginConfig": [
                    {"name": "ImageLocality", "args": {}},
                    {"name": name, "args": args},
                ]
            }
        ],
    }


def errors_of(name: str, args: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(config(name, args), KNOWN)
    return caught.value.errors


def decoded(name: str, args: Any) -> Any:
    return parse(config(name, args), KNOWN).profiles[0].plugin_config[name]


# --- the reported failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        pytest.param(
            "NodeResourcesFit",
            {"scoringStrategy": "abc"},
            [f'{AT}.scoringStrategy: must be a mapping (got "abc")'],
            id="fit-scoring-strategy-scalar",
        ),
        pytest.param(
            "NodeResourcesFit",
            {"scoringStrategy": {"type": "abc"}},
            [
                f'{AT}.scoringStrategy.type: Unsupported value: "abc": supported values: '
                '"LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"'
            ],
            id="fit-scoring-strategy-type-unsupported",
        ),
        pytest.param(
            "NodeResourcesFit",
            {"scoringStrategy": {"type": "MostAllocated", "resources": ["cpu"]}},
            [f'{AT}.scoringStrategy.resources[0]: must be a mapping (got "cpu")'],
            id="fit-resources-of-strings",
        ),
        pytest.param(
            "NodeResourcesFit",
            {"ignoredResources": "cpu"},
            [f'{AT}.ignoredResources: must be a list (got "cpu")'],
            id="fit-ignored-resources-string-is-not-a-set-of-letters",
        ),
        pytest.param(
            "NodeResourcesFit",
            {"x": 1},
            [f'{AT}.x: unknown field "x"'],
            id="fit-unknown-field",
        ),
        pytest.param(
            "PodTopologySpread",
            {
                "defaultingType": "List",
                "defaultConstraints": [
                    {"maxSkew": 1, "topologyKey": True, "whenUnsatisfiable": "DoNotSchedule"}
                ],
            },
            [f"{AT}.defaultConstraints[0].topologyKey: must be a string (got true)"],
            id="spread-topology-key-bool",
        ),
        pytest.param(
            "PodTopologySpread",
            {"x": 1},
            [f'{AT}.x: unknown field "x"'],
            id="spread-unknown-field",
        ),
        pytest.param(
            "PodTopologySpread",
            {
                "defaultingType": "List",
                "defaultConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "zone",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "x": 1,
                    }
                ],
            },
            [f'{AT}.defaultConstraints[0].x: unknown field "x"'],
            id="spread-constraint-unknown-field",
        ),
        pytest.param(
            "InterPodAffinity",
            {"x": 1},
            [f'{AT}.x: unknown field "x"'],
            id="inter-pod-affinity-unknown-field",
        ),
        pytest.param(
            "DefaultPreemption",
            {"minCandidateNodesPercentage": 10.5},
            [f"{AT}.minCandidateNodesPercentage: must be an integer (got 10.5)"],
            id="preemption-percentage-float",
        ),
        pytest.param(
            "DefaultPreemption",
            {"minCandidateNodesPercentage": True},
            [f"{AT}.minCandidateNodesPercentage: must be an integer (got true)"],
            id="preemption-percentage-bool",
        ),
        pytest.param(
            "DefaultPreemption",
            {"minCandidateNodesPercentage": "abc"},
            [f'{AT}.minCandidateNodesPercentage: must be an integer (got "abc")'],
            id="preemption-percentage-string-names-its-field",
        ),
        pytest.param(
            "DefaultPreemption",
            {"minCandidateNodesAbsolute": 2**31},
            [
                f"{AT}.minCandidateNodesAbsolute: must be in [-2147483648, 2147483647] (got "
                "2147483648)"
            ],
            id="preemption-absolute-int32-overflow",
        ),
        pytest.param(
            "VolumeBinding",
            {"bindTimeoutSeconds": 2**63},
            [
                f"{AT}.bindTimeoutSeconds: must be in [-9223372036854775808, "
                "9223372036854775807] (got 9223372036854775808)"
            ],
            id="volume-binding-timeout-int64-overflow",
        ),
        pytest.param(
            "DynamicResources",
            {"filterTimeout": 10},
            [f"{AT}.filterTimeout: must be a string (got 10)"],
            id="dra-filter-timeout-not-a-duration-string",
        ),
        pytest.param(
            "NodeAffinity",
            {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}},
            [
                f"{AT}.addedAffinity.requiredDuringSchedulingIgnoredDuringExecution: must be a "
                "mapping (got a list)"
            ],
            id="affinity-node-selector-list",
        ),
    ],
)
def test_reported_failures_name_their_field(name: str, args: JSON, expected: list[str]) -> None:
    """Each mutation from the issue's sweep is a ConfigError naming the full path (the
    pluginConfig index, as upstream), never a traceback nor a silent acceptance."""
    assert errors_of(name, args) == expected


def test_errors_of_several_args_are_collected() -> None:
    """Every problem of every args block is reported at once."""
    doc = config("DefaultPreemption", {"minCandidateNodesPercentage": 101})
    doc["profiles"][0]["pluginConfig"].append({"name": "InterPodAffinity", "args": {"y": 1}})
    with pytest.raises(ConfigError) as caught:
        parse(doc, KNOWN)
    assert caught.value.errors == [
        f"{AT}.minCandidateNodesPercentage: Invalid value: 101: not in valid range [0, 100]",
        'profiles[0].pluginConfig[2].args.y: unknown field "y"',
    ]


def test_duplicate_entry_args_are_checked_too() -> None:
    """A second entry for one plugin is refused, and its args are still checked."""
    doc = config("DefaultPreemption", {})
    doc["profiles"][0]["pluginConfig"].append(
        {"name": "DefaultPreemption", "args": {"minCandidateNodesAbsolute": -1}}
    )
    with pytest.raises(ConfigError) as caught:
        parse(doc, KNOWN)
    assert caught.value.errors == [
        "profiles[0].pluginConfig[2].args.minCandidateNodesAbsolute: Invalid value: -1: not in "
        "valid range [0, inf)",
        'profiles[0].pluginConfig[2].name: duplicate config for plugin "DefaultPreemption" '
        "(first at pluginConfig[1])",
    ]


def test_plugins_without_an_args_type_keep_their_args_raw() -> None:
    """As upstream (runtime.Unknown): args of a plugin with no args type are not decoded."""
    assert decoded("TaintToleration", {"anything": [1]}) == {"anything": [1]}


# --- defaults: upstream's v1 defaults.go -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        pytest.param("DefaultPreemption", {}, pa.DefaultPreemptionArgs(10, 100), id="preemption"),
        pytest.param(
            "DefaultPreemption",
            {"minCandidateNodesPercentage": 0},
            pa.DefaultPreemptionArgs(0, 100),
            id="preemption-explicit-zero-kept",
        ),
        pytest.param("InterPodAffinity", None, pa.InterPodAffinityArgs(1, False), id="affinity"),
        pytest.param("NodeAffinity", {}, pa.NodeAffinityArgs(None, ()), id="node-affinity"),
        pytest.param(
            "NodeResourcesBalancedAllocation",
            {"resources": [{"name": "cpu"}, {"name": "gpu", "weight": 0}]},
            pa.NodeResourcesBalancedAllocationArgs(
                (pa.ResourceSpec("cpu", 1), pa.ResourceSpec("gpu", 1))
            ),
            id="balanced-weight-zero-is-one",
        ),
        pytest.param(
            "NodeResourcesBalancedAllocation",
            {"resources": []},
            pa.NodeResourcesBalancedAllocationArgs(pa.DEFAULT_RESOURCES),
            id="balanced-empty-is-cpu-memory",
        ),
        pytest.param(
            "NodeResourcesFit",
            {},
            pa.NodeResourcesFitArgs(
                (), (), pa.ScoringStrategy("LeastAllocated", pa.DEFAULT_RESOURCES)
            ),
            id="fit",
        ),
        pytest.param("PodTopologySpread", {}, pa.PodTopologySpreadArgs((), "System"), id="spread"),
        pytest.param(
            "VolumeBinding",
            {"shape": []},
            pa.VolumeBindingArgs(600, pa.DEFAULT_SHAPE),
            id="volume-binding-empty-shape-defaulted",
        ),
        pytest.param(
            "DynamicResources",
            {},
            pa.DynamicResourcesArgs(10 * 10**9, 600 * 10**9),
            id="dynamic-resources",
        ),
    ],
)
def test_defaults(name: str, args: JSON | None, expected: Any) -> None:
    """Upstream's SetDefaults_*Args: unset (nil) fields take the default, set ones stay."""
    assert decoded(name, args) == expected


def test_node_affinity_args_compile() -> None:
    """addedAffinity compiles into the terms the plugin matches."""
    args = decoded(
        "NodeAffinity",
        {
            "addedAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 3,
                        "preference": {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["n"]}
                            ]
                        },
                    }
                ],
            }
        },
    )
    assert args == pa.NodeAffinityArgs(
        (SelectorTerm((Requirement("a", "In", ("b",)),)),),
        (PreferredTerm(3, SelectorTerm((), (Requirement("metadata.name", "In", ("n",)),))),),
    )


# --- validators: upstream's validation_pluginargs_test.go ------------------------------------


def shape(*points: tuple[int, int]) -> tuple[pa.UtilizationShapePoint, ...]:
    return tuple(pa.UtilizationShapePoint(u, s) for u, s in points)


def spread(key: str, action: str = "DoNotSchedule", skew: int = 1) -> SpreadConstraint:
    return SpreadConstraint(skew, key, action, pa._NO_SELECTOR)


@pytest.mark.parametrize(
    ("validate", "args", "expected"),
    [
        # TestValidateDefaultPreemptionArgs
        pytest.param(
            pa.validate_default_preemption_args,
            pa.DefaultPreemptionArgs(),
            [],
            id="valid args (default)",
        ),
        pytest.param(
            pa.validate_default_preemption_args,
            pa.DefaultPreemptionArgs(-1, 100),
            ["a.minCandidateNodesPercentage: Invalid value: -1: not in valid range [0, 100]"],
            id="negative minCandidateNodesPercentage",
        ),
        pytest.param(
            pa.validate_default_preemption_args,
            pa.DefaultPreemptionArgs(900, 100),
            ["a.minCandidateNodesPercentage: Invalid value: 900: not in valid range [0, 100]"],
            id="minCandidateNodesPercentage over 100",
        ),
        pytest.param(
            pa.validate_default_preemption_args,
            pa.DefaultPreemptionArgs(20, -1),
            ["a.minCandidateNodesAbsolute: Invalid value: -1: not in valid range [0, inf)"],
            id="negative minCandidateNodesAbsolute",
        ),
        pytest.param(
            pa.validate_default_preemption_args,
            pa.DefaultPreemptionArgs(0, 0),
            [
                "a.minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same "
                "time as minCandidateNodesAbsolute",
                "a.minCandidateNodesAbsolute: Invalid value: 0: cannot be zero at the same time "
                "as minCandidateNodesPercentage",
            ],
            id="all zero",
        ),
        pytest.param(
            pa.validate_default_preemption_args,
            pa.DefaultPreemptionArgs(-1, -1),
            [
                "a.minCandidateNodesPercentage: Invalid value: -1: not in valid range [0, 100]",
                "a.minCandidateNodesAbsolute: Invalid value: -1: not in valid range [0, inf)",
            ],
            id="both negative",
        ),
        # TestValidateInterPodAffinityArgs
        pytest.param(
            pa.validate_inter_pod_affinity_args, pa.InterPodAffinityArgs(10), [], id="valid args"
        ),
        pytest.param(
            pa.validate_inter_pod_affinity_args,
            pa.InterPodAffinityArgs(-1),
            ["a.hardPodAffinityWeight: Invalid value: -1: not in valid range [0, 100]"],
            id="hardPodAffinityWeight less than min",
        ),
        pytest.param(
            pa.validate_inter_pod_affinity_args,
            pa.InterPodAffinityArgs(101),
            ["a.hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]"],
            id="hardPodAffinityWeight more than max",
        ),
        # TestValidatePodTopologySpreadArgs
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((spread("node"), spread("zone", "ScheduleAnyway", 2)), "List"),
            [],
            id="valid config",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((spread("node", skew=-1),), "List"),
            ["a.defaultConstraints[0].maxSkew: Invalid value: -1: not in valid range (0, inf)"],
            id="maxSkew less than zero",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((spread(""),), "List"),
            ["a.defaultConstraints[0].topologyKey: Required value: can not be empty"],
            id="empty topology key",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((spread("node", ""),), "List"),
            ["a.defaultConstraints[0].whenUnsatisfiable: Required value: can not be empty"],
            id="whenUnsatisfiable is empty",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((spread("node", "unknown action"),), "List"),
            [
                'a.defaultConstraints[0].whenUnsatisfiable: Unsupported value: "unknown action": '
                'supported values: "DoNotSchedule", "ScheduleAnyway"'
            ],
            id="whenUnsatisfiable contains unsupported action",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((spread("node"), spread("node", skew=2)), "List"),
            ['a.defaultConstraints[1]: Duplicate value: "{node, DoNotSchedule}"'],
            id="duplicated constraints",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs(
                (SpreadConstraint(1, "key", "DoNotSchedule", pa._WRITTEN_SELECTOR),), "List"
            ),
            [
                "a.defaultConstraints[0].labelSelector: Forbidden: constraint must not define a "
                "selector, as they deduced for each pod"
            ],
            id="label selector present",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((), "List"),
            [],
            id="list default constraints, no constraints",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((), "System"),
            [],
            id="system default constraints",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((), "Invalid"),
            ['a.defaultingType: Unsupported value: "Invalid": supported values: "System", "List"'],
            id="wrong constraints",
        ),
        pytest.param(
            pa.validate_pod_topology_spread_args,
            pa.PodTopologySpreadArgs((spread("node"),), "System"),
            ['a.defaultingType: Invalid value: "System": when .defaultConstraints are not empty'],
            id="system default constraints, but has constraints",
        ),
        # TestValidateNodeResourcesBalancedAllocationArgs
        pytest.param(
            pa.validate_node_resources_balanced_allocation_args,
            pa.NodeResourcesBalancedAllocationArgs(),
            [],
            id="valid config",
        ),
        pytest.param(
            pa.validate_node_resources_balanced_allocation_args,
            pa.NodeResourcesBalancedAllocationArgs(
                (pa.ResourceSpec("cpu", 2), pa.ResourceSpec("memory", 1))
            ),
            ["a.resources[0].weight: Invalid value: 2: must be 1"],
            id="invalid config",
        ),
        pytest.param(
            pa.validate_node_resources_balanced_allocation_args,
            pa.NodeResourcesBalancedAllocationArgs(
                (pa.ResourceSpec("cpu", 1), pa.ResourceSpec("cpu", 1))
            ),
            ['a.resources[1].name: Duplicate value: "cpu"'],
            id="repeated resources",
        ),
        # TestValidateNodeAffinityArgs
        pytest.param(pa.validate_node_affinity_args, pa.NodeAffinityArgs(), [], id="empty"),
        pytest.param(
            pa.validate_node_affinity_args,
            pa.NodeAffinityArgs(
                (SelectorTerm((Requirement("label-1", "In", ("label-1-val",)),)),),
                (
                    PreferredTerm(
                        1, SelectorTerm((), (Requirement("metadata.name", "In", ("node-1",)),))
                    ),
                ),
            ),
            [],
            id="valid added affinity",
        ),
        pytest.param(
            pa.validate_node_affinity_args,
            pa.NodeAffinityArgs(
                (SelectorTerm((Requirement("invalid /label/-1", "In", ("label-1-val",)),)),),
                (
                    PreferredTerm(
                        1,
                        SelectorTerm(
                            (), (Requirement("metadata.name", "In", ("node-1", "node-2")),)
                        ),
                    ),
                ),
            ),
            [
                "a.addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms["
                '0].matchExpressions[0].key: Invalid value: "invalid /label/-1": ',
                "a.addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].matchFields[0]"
                '.values: Invalid value: ["node-1","node-2"]: must have one element',
            ],
            id="invalid added affinity",
        ),
        # TestValidateVolumeBindingArgs (StorageCapacityScoring is on in v1.37)
        pytest.param(
            pa.validate_volume_binding_args,
            pa.VolumeBindingArgs(0),
            [],
            id="[StorageCapacityScoring=on] zero is a valid config",
        ),
        pytest.param(
            pa.validate_volume_binding_args,
            pa.VolumeBindingArgs(10),
            [],
            id="[StorageCapacityScoring=on] positive value is valid config",
        ),
        pytest.param(
            pa.validate_volume_binding_args,
            pa.VolumeBindingArgs(-10),
            [
                "a.bindTimeoutSeconds: Invalid value: -10: invalid BindTimeoutSeconds, should "
                "not be a negative value"
            ],
            id="[StorageCapacityScoring=on] negative value is invalid config",
        ),
        pytest.param(
            pa.validate_volume_binding_args,
            pa.VolumeBindingArgs(10, ()),
            ["a.shape: Required value: at least one point must be specified"],
            id="[StorageCapacityScoring=on] shape should not be empty",
        ),
        pytest.param(
            pa.validate_volume_binding_args,
            pa.VolumeBindingArgs(10, shape((0, 10), (1, 3), (1, 7))),
            ["a.shape[2].utilization: Invalid value: 1: values must be sorted in increasing order"],
            id="[StorageCapacityScoring=on] shape points must be sorted in increasing order",
        ),
        pytest.param(
            pa.validate_volume_binding_args,
            pa.VolumeBindingArgs(10, shape((-1, 10), (10, -10), (20, 11), (101, 0))),
            [
                "a.shape[0].utilization: Invalid value: -1: not in valid range [0, 100]",
                "a.shape[1].score: Invalid value: -10: not in valid range [0, 10]",
                "a.shape[2].score: Invalid value: 11: not in valid range [0, 10]",
                "a.shape[3].utilization: Invalid value: 101: not in valid range [0, 100]",
            ],
            id="[StorageCapacityScoring=on] shape point: invalid utilization and score",
        ),
        # TestValidateFitArgs
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(("a" * 64,)),
            ['a.ignoredResources[0]: Invalid value: "' + "a" * 64 + '": '],
            id="IgnoredResources: too long value",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(("example.com/",)),
            [
                'a.ignoredResources[0]: Invalid value: "example.com/": ',
                'a.ignoredResources[0]: Invalid value: "example.com/": ',
            ],
            id="IgnoredResources: name is empty",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(("example.com/aaa/bbb",)),
            ['a.ignoredResources[0]: Invalid value: "example.com/aaa/bbb": '],
            id="IgnoredResources: name has too many slash",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(("example.com",), ("example.com",)),
            [],
            id="IgnoredResources: valid args",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs((), ("example.com/aa",)),
            [
                'a.ignoredResourceGroups[0]: Invalid value: "example.com/aa": resource group '
                "name can't contain '/'"
            ],
            id="IgnoredResourceGroups: name cannot be contain slash",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(scoring_strategy=pa.ScoringStrategy("Invalid")),
            [
                'a.scoringStrategy.type: Unsupported value: "Invalid": supported values: '
                '"LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"'
            ],
            id="ScoringStrategy: type is unsupported",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(
                scoring_strategy=pa.ScoringStrategy("RequestedToCapacityRatio")
            ),
            [
                "a.scoringStrategy.requestedToCapacityRatio: Required value: must be specified "
                "when type is RequestedToCapacityRatio"
            ],
            id="ScoringStrategy: requestedToCapacityRatio field is missing",
        ),
        # TestValidateLeastAllocatedScoringStrategy / MostAllocated
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(
                scoring_strategy=pa.ScoringStrategy("MostAllocated", (pa.ResourceSpec("cpu", 101),))
            ),
            [
                "a.scoringStrategy.resources[0].weight: Invalid value: 101: resource weight of "
                "cpu not in valid range (0, 100]"
            ],
            id="weight greater than max",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(
                scoring_strategy=pa.ScoringStrategy("LeastAllocated", (pa.ResourceSpec("cpu", -1),))
            ),
            [
                "a.scoringStrategy.resources[0].weight: Invalid value: -1: resource weight of "
                "cpu not in valid range (0, 100]"
            ],
            id="weight less than min",
        ),
        # TestValidateRequestedToCapacityRatioScoringStrategy
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(
                scoring_strategy=pa.ScoringStrategy(
                    "RequestedToCapacityRatio", pa.DEFAULT_RESOURCES, shape((10, 11), (5, 2))
                )
            ),
            [
                "a.scoringStrategy.requestedToCapacityRatio.shape[1].utilization: Invalid value: "
                "5: values must be sorted in increasing order",
                "a.scoringStrategy.requestedToCapacityRatio.shape[0].score: Invalid value: 11: "
                "not in valid range [0, 10]",
            ],
            id="utilization is not sorted and score too large",
        ),
        pytest.param(
            pa.validate_node_resources_fit_args,
            pa.NodeResourcesFitArgs(
                scoring_strategy=pa.ScoringStrategy(
                    "RequestedToCapacityRatio", pa.DEFAULT_RESOURCES, ()
                )
            ),
            [
                "a.scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one "
                "point must be specified"
            ],
            id="empty shape",
        ),
        # TestValidateDynamicResourcesArgs (every gate on in v1.37)
        pytest.param(
            pa.validate_dynamic_resources_args,
            pa.DynamicResourcesArgs(),
            [],
            id="valid args (default)",
        ),
        pytest.param(
            pa.validate_dynamic_resources_args,
            pa.DynamicResourcesArgs(-(10**9)),
            ['a.filterTimeout: Invalid value: "-1s": must be zero or positive'],
            id="negative FilterTimeout",
        ),
        pytest.param(
            pa.validate_dynamic_resources_args,
            pa.DynamicResourcesArgs(binding_timeout_ns=5 * 10**9),
            [],
            id="valid BindingTimeout",
        ),
        pytest.param(
            pa.validate_dynamic_resources_args,
            pa.DynamicResourcesArgs(binding_timeout_ns=0),
            ['a.bindingTimeout: Invalid value: "0s": must be at least 1 second'],
            id="BindingTimeout < 1s (0s)",
        ),
        pytest.param(
            pa.validate_dynamic_resources_args,
            pa.DynamicResourcesArgs(binding_timeout_ns=-(10**9)),
            ['a.bindingTimeout: Invalid value: "-1s": must be at least 1 second'],
            id="BindingTimeout < 1s (negative)",
        ),
    ],
)
def test_validate(validate: Any, args: Any, expected: list[str]) -> None:
    """Upstream's validators, case for case (an expected error ending in ": " is compared up to
    there: the detail is labels' own wording, tested in test_labels)."""
    got = validate(args, "a")
    assert len(got) == len(expected), got
    for line, want in zip(got, expected, strict=True):
        assert line.startswith(want) if want.endswith(": ") else line == want


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(-(10**9), "-1s", id="negative"),
        pytest.param(500 * 10**6, "500ms", id="millis"),
        pytest.param(90 * 10**9, "1m30s", id="minutes"),
        pytest.param(3600 * 10**9 + 5 * 10**8, "1h0m0.5s", id="hours-fraction"),
        pytest.param(1500, "1.5µs", id="micros"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    """Go's Duration.String(), as field.Invalid prints a metav1.Duration."""
    assert pa.go_duration(ns) == text


def test_a_default_constraints_selector_is_forbidden_whatever_it_holds() -> None:
    """A labelSelector in a default constraint is Forbidden however it is written; a broken
    one inside does not hide the constraint's other problems (upstream's validation reports
    both)."""
    args = {
        "defaultingType": "List",
        "defaultConstraints": [
            {
                "maxSkew": 0,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Bad"}]},
            }
        ],
    }
    errors = errors_of("PodTopologySpread", args)
    assert any("defaultConstraints[0].maxSkew: Invalid value: 0" in e for e in errors), errors
    assert any("defaultConstraints[0].labelSelector: Forbidden" in e for e in errors), errors
