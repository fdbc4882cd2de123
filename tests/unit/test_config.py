"""KubeSchedulerConfiguration v1: decoding, upstream defaults, validation, multiPoint expansion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plugins as plugin_registry
from scheduler import cli
from scheduler.config import (
    API_VERSION,
    EXTENSION_POINTS,
    KIND,
    ClientConnection,
    ConfigError,
    LeaderElection,
    PluginRef,
    PluginSet,
    Profile,
    SchedulerConfig,
    expand_plugins,
    load,
    parse,
)
from scheduler.pluginargs import NodeAffinityArgs, NodeResourcesFitArgs, ScoringStrategy

F = frozenset
FILTERS = F({"preFilter", "filter"})
SCORERS = F({"preFilter", "filter", "preScore", "score"})

# Upstream's v1.37 default multiPoint list, in order, with default score weights: the base list
# (NodeName before NodeUnschedulable since v1.37), then NodeDeclaredFeatures, which
# applyFeatureGates appends (its gate is GA in v1.37). DynamicResources, which applyFeatureGates
# also inserts, is left out of this copy (test_berth_defaults_are_upstream_v1_37_defaults).
DEFAULT_PLUGINS = (
    PluginRef("SchedulingGates"),
    PluginRef("PrioritySort"),
    PluginRef("NodeName"),
    PluginRef("NodeUnschedulable"),
    PluginRef("TaintToleration", 3),
    PluginRef("NodeAffinity", 2),
    PluginRef("NodePorts"),
    PluginRef("NodeResourcesFit", 1),
    PluginRef("VolumeRestrictions"),
    PluginRef("NodeVolumeLimits"),
    PluginRef("VolumeBinding"),
    PluginRef("VolumeZone"),
    PluginRef("PodTopologySpread", 2),
    PluginRef("InterPodAffinity", 2),
    PluginRef("DefaultPreemption"),
    PluginRef("NodeResourcesBalancedAllocation", 1),
    PluginRef("ImageLocality", 1),
    PluginRef("DefaultBinder"),
    PluginRef("NodeDeclaredFeatures"),
)

IMPLEMENTS: dict[str, frozenset[str]] = {
    "PrioritySort": F({"queueSort"}),
    "SchedulingGates": F({"preEnqueue"}),
    "NodeName": FILTERS,  # PreFilter since v1.37
    "NodeUnschedulable": F({"filter"}),
    "TaintToleration": F({"filter", "preScore", "score"}),
    "NodeAffinity": SCORERS,
    "NodePorts": FILTERS,
    "NodeResourcesFit": SCORERS,
    "VolumeRestrictions": FILTERS,
    "NodeVolumeLimits": FILTERS,
    "VolumeBinding": FILTERS | {"reserve", "preBind", "preScore", "score"},
    "VolumeZone": FILTERS,
    "PodTopologySpread": SCORERS,
    "InterPodAffinity": SCORERS,
    "DefaultPreemption": F({"postFilter"}),
    "NodeResourcesBalancedAllocation": F({"preScore", "score"}),
    "ImageLocality": F({"score"}),
    "DefaultBinder": F({"bind"}),
    "NodeDeclaredFeatures": FILTERS,
    # Out-of-tree style plugins for the expansion cases.
    "CustomScore": F({"preScore", "score"}),
    "CustomFilter": F({"filter"}),
    "CustomSort": F({"queueSort"}),
    "CustomBinder": F({"bind"}),
}
KNOWN = tuple(IMPLEMENTS)

DEFAULT_FILTER = [
    "NodeName",
    "NodeUnschedulable",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
    "PodTopologySpread",
    "InterPodAffinity",
    "NodeDeclaredFeatures",
]
DEFAULT_SCORE = [
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodeResourcesFit", 1),
    ("VolumeBinding", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
]


# ------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------


def doc(**fields: Any) -> dict[str, Any]:
    """A minimal valid document plus `fields`."""
    return {"apiVersion": API_VERSION, "kind": KIND, **fields}


def one_profile(**fields: Any) -> dict[str, Any]:
    """A document with a single profile made of `fields`."""
    return doc(profiles=[fields])


def plugins(*entries: str | tuple[str, int]) -> list[dict[str, Any]]:
    """Plugin list entries from "Name" or ("Name", weight)."""
    return [{"name": e} if isinstance(e, str) else {"name": e[0], "weight": e[1]} for e in entries]


def plugin_set(
    enabled: tuple[str | tuple[str, int], ...] = (), disabled: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {"enabled": plugins(*enabled), "disabled": plugins(*disabled)}


def all_points(**sets: PluginSet) -> dict[str, PluginSet]:
    """Profile.plugins with every point present, `sets` overriding the empty ones."""
    return {point: sets.get(point, PluginSet()) for point in ("multiPoint", *EXTENSION_POINTS)}


def errors_of(document: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(document, KNOWN)
    return info.value.errors


def profile_with(plugin_sets: dict[str, Any]) -> Profile:
    return parse(one_profile(plugins=plugin_sets), KNOWN).profiles[0]


def expanded(
    plugin_sets: dict[str, Any], point: str, defaults: tuple[PluginRef, ...] = DEFAULT_PLUGINS
) -> list[Any]:
    """Names at `point` after expansion; (name, weight) pairs for score."""
    refs = expand_plugins(profile_with(plugin_sets), defaults, IMPLEMENTS)[point]
    if point == "score":
        return [(ref.name, ref.weight) for ref in refs]
    return [ref.name for ref in refs]


def expand_errors(profile: Profile, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        expand_plugins(profile, DEFAULT_PLUGINS, IMPLEMENTS, **kwargs)
    return info.value.errors


# ------------------------------------------------------------------------------------------------
# Defaults
# ------------------------------------------------------------------------------------------------


def test_minimal_document_gets_upstream_defaults() -> None:
    """apiVersion + kind alone give kube-scheduler's defaults and one default profile, except the
    client limits: berth's 1000/2000, not upstream's 50/100 (test_config_client_defaults.py)."""
    config = parse(doc(), KNOWN)

    assert config == SchedulerConfig(
        parallelism=16,
        percentage_of_nodes_to_score=None,
        pod_initial_backoff_seconds=1.0,
        pod_max_backoff_seconds=10.0,
        client_connection=ClientConnection(
            kubeconfig="", qps=1000.0, burst=2000, content_type="application/json"
        ),
        leader_election=LeaderElection(
            leader_elect=True,
            lease_duration_s=15.0,
            renew_deadline_s=10.0,
            retry_period_s=2.0,
            resource_lock="leases",
            resource_name="kube-scheduler",
            resource_namespace="kube-system",
        ),
        profiles=(
            Profile(
                scheduler_name="default-scheduler",
                percentage_of_nodes_to_score=None,
                plugins=all_points(),
                plugin_config={},
            ),
        ),
        node_selector={},
        enable_profiling=True,
        enable_contention_profiling=True,
        delay_cache_until_active=False,
    )


@pytest.mark.parametrize(
    ("document", "read", "expected"),
    [
        pytest.param(
            doc(clientConnection={"qps": 0, "burst": 0}),
            lambda c: (c.client_connection.qps, c.client_connection.burst),
            (1000.0, 2000),
            id="zero-qps-and-burst-mean-default",
        ),
        pytest.param(
            doc(clientConnection={"qps": -1}),
            lambda c: c.client_connection.qps,
            -1.0,
            id="negative-qps-kept-means-unlimited",
        ),
        pytest.param(
            doc(clientConnection={"qps": 12.5, "burst": 7}),
            lambda c: (c.client_connection.qps, c.client_connection.burst),
            (12.5, 7),
            id="explicit-qps-and-burst",
        ),
        pytest.param(
            doc(clientConnection={"contentType": "application/vnd.kubernetes.protobuf"}),
            lambda c: c.client_connection.content_type,
            "application/json",
            id="protobuf-content-type-accepted-json-kept",
        ),
        pytest.param(
            doc(leaderElection={"leaseDuration": "0s", "renewDeadline": "0", "retryPeriod": "0s"}),
            lambda c: (
                c.leader_election.lease_duration_s,
                c.leader_election.renew_deadline_s,
                c.leader_election.retry_period_s,
            ),
            (15.0, 10.0, 2.0),
            id="zero-durations-mean-default",
        ),
        pytest.param(
            doc(
                leaderElection={
                    "leaseDuration": "1m",
                    "renewDeadline": "30s",
                    "retryPeriod": "500ms",
                }
            ),
            lambda c: (
                c.leader_election.lease_duration_s,
                c.leader_election.renew_deadline_s,
                c.leader_election.retry_period_s,
            ),
            (60.0, 30.0, 0.5),
            id="go-duration-strings",
        ),
        pytest.param(
            doc(leaderElection={"leaseDuration": "1h0m1.5s"}),
            lambda c: c.leader_election.lease_duration_s,
            3601.5,
            id="compound-go-duration",
        ),
        pytest.param(
            doc(leaderElection={"retryPeriod": "5s", "renewDeadline": "6001ms"}),
            lambda c: c.leader_election.renew_deadline_s,
            6.001,
            id="renew-deadline-just-above-jitter-bound",
        ),
        pytest.param(
            doc(
                leaderElection={
                    "leaderElect": False,
                    "leaseDuration": "1s",
                    "renewDeadline": "5s",
                    "resourceLock": "endpoints",
                }
            ),
            lambda c: (c.leader_election.leader_elect, c.leader_election.resource_lock),
            (False, "endpoints"),
            id="leader-election-off-is-not-validated",
        ),
        pytest.param(
            doc(leaderElection=None, clientConnection=None, profiles=None, nodeSelector=None),
            lambda c: c == parse(doc(), KNOWN),
            True,
            id="null-sections-are-defaulted",
        ),
        pytest.param(
            doc(profiles=[]),
            lambda c: c.profiles,
            (Profile(),),
            id="empty-profiles-get-the-default-profile",
        ),
        pytest.param(
            one_profile(percentageOfNodesToScore=None),
            lambda c: c.profiles[0].scheduler_name,
            "default-scheduler",
            id="lone-profile-gets-default-name",
        ),
        pytest.param(
            doc(percentageOfNodesToScore=0),
            lambda c: c.percentage_of_nodes_to_score,
            0,
            id="explicit-zero-percentage-kept",
        ),
        pytest.param(
            one_profile(percentageOfNodesToScore=0),
            lambda c: c.profiles[0].percentage_of_nodes_to_score,
            0,
            id="profile-zero-percentage-kept",
        ),
        pytest.param(
            doc(enableProfiling=False),
            lambda c: (c.enable_profiling, c.enable_contention_profiling),
            (False, False),
            id="contention-profiling-follows-profiling",
        ),
        pytest.param(
            doc(enableProfiling=False, enableContentionProfiling=True, delayCacheUntilActive=True),
            lambda c: (
                c.enable_profiling,
                c.enable_contention_profiling,
                c.delay_cache_until_active,
            ),
            (False, True, True),
            id="profiling-flags-explicit",
        ),
        pytest.param(
            doc(
                nodeSelector={
                    "topology.kubernetes.io/zone": "eu-west-1a",
                    "berth.io/shard": "",
                    "tier": "batch_1.x",
                }
            ),
            lambda c: c.node_selector,
            {
                "topology.kubernetes.io/zone": "eu-west-1a",
                "berth.io/shard": "",
                "tier": "batch_1.x",
            },
            id="node-selector-label-syntax",
        ),
        pytest.param(
            one_profile(
                pluginConfig=[
                    {"name": "NodeAffinity", "args": None},
                    {
                        "name": "NodeResourcesFit",
                        "args": {
                            "apiVersion": API_VERSION,
                            "kind": "NodeResourcesFitArgs",
                            "ignoredResources": ["nvidia.com/gpu"],
                        },
                    },
                ]
            ),
            lambda c: c.profiles[0].plugin_config,
            {
                "NodeAffinity": NodeAffinityArgs(),
                "NodeResourcesFit": NodeResourcesFitArgs(ignored_resources=("nvidia.com/gpu",)),
            },
            id="plugin-args-type-meta-stripped-and-typed",
        ),
        pytest.param(
            doc(extenders=[]),
            lambda c: c.parallelism,
            16,
            id="empty-extenders-accepted",
        ),
        pytest.param(
            one_profile(plugins={"score": plugin_set(disabled=("*",)), "filter": None}),
            lambda c: c.profiles[0].plugins["score"],
            PluginSet(disabled=(PluginRef("*"),)),
            id="wildcard-in-disabled",
        ),
        pytest.param(
            doc(parallelism=8.0), lambda c: c.parallelism, 8, id="integral-float-is-an-int"
        ),
        pytest.param(
            one_profile(
                pluginConfig=[{"name": "InterPodAffinity", "args": {"hardPodAffinityWeight": 2.0}}]
            ),
            lambda c: c.profiles[0].plugin_config["InterPodAffinity"].hard_pod_affinity_weight,
            2,
            id="integral-float-is-an-int-in-plugin-args",
        ),
    ],
)
def test_defaults_and_accepted_values(
    document: dict[str, Any], read: Callable[[SchedulerConfig], Any], expected: Any
) -> None:
    """Valid documents parse, with upstream's defaulting rules applied."""
    assert read(parse(document, KNOWN)) == expected


def test_full_realistic_config(tmp_path: Path) -> None:
    """A production-like file with two profiles loads into exactly the expected config."""
    path = tmp_path / "scheduler.yaml"
    path.write_text(
        """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
parallelism: 32
percentageOfNodesToScore: 40
podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 30
enableProfiling: false
clientConnection:
  kubeconfig: /etc/kubernetes/scheduler.conf
  acceptContentTypes: application/json
  contentType: application/vnd.kubernetes.protobuf
  qps: 200
  burst: 400
leaderElection:
  leaderElect: true
  leaseDuration: 30s
  renewDeadline: 20s
  retryPeriod: 5s
  resourceLock: leases
  resourceName: berth
  resourceNamespace: berth-system
nodeSelector:
  berth.io/shard: "a"
profiles:
  - schedulerName: default-scheduler
    plugins:
      multiPoint:
        enabled:
          - name: CustomScore
            weight: 4
      score:
        disabled:
          - name: ImageLocality
        enabled:
          - name: NodeResourcesFit
            weight: 5
    pluginConfig:
      - name: NodeResourcesFit
        args:
          apiVersion: kubescheduler.config.k8s.io/v1
          kind: NodeResourcesFitArgs
          scoringStrategy:
            type: MostAllocated
            resources:
              - {name: cpu, weight: 1}
              - {name: memory, weight: 1}
  - schedulerName: bin-packing
    percentageOfNodesToScore: 100
    plugins:
      filter:
        disabled:
          - name: "*"
        enabled:
          - name: NodeUnschedulable
          - name: NodeResourcesFit
          - name: TaintToleration
""",
        encoding="utf-8",
    )

    config = load(path, KNOWN)

    fit_args = NodeResourcesFitArgs(scoring_strategy=ScoringStrategy(type="MostAllocated"))
    assert config == SchedulerConfig(
        parallelism=32,
        percentage_of_nodes_to_score=40,
        pod_initial_backoff_seconds=2.0,
        pod_max_backoff_seconds=30.0,
        client_connection=ClientConnection(
            kubeconfig="/etc/kubernetes/scheduler.conf", qps=200.0, burst=400
        ),
        leader_election=LeaderElection(
            lease_duration_s=30.0,
            renew_deadline_s=20.0,
            retry_period_s=5.0,
            resource_name="berth",
            resource_namespace="berth-system",
        ),
        profiles=(
            Profile(
                scheduler_name="default-scheduler",
                plugins=all_points(
                    multiPoint=PluginSet(enabled=(PluginRef("CustomScore", 4),)),
                    score=PluginSet(
                        enabled=(PluginRef("NodeResourcesFit", 5),),
                        disabled=(PluginRef("ImageLocality"),),
                    ),
                ),
                plugin_config={"NodeResourcesFit": fit_args},
            ),
            Profile(
                scheduler_name="bin-packing",
                percentage_of_nodes_to_score=100,
                plugins=all_points(
                    filter=PluginSet(
                        enabled=(
                            PluginRef("NodeUnschedulable"),
                            PluginRef("NodeResourcesFit"),
                            PluginRef("TaintToleration"),
                        ),
                        disabled=(PluginRef("*"),),
                    )
                ),
            ),
        ),
        node_selector={"berth.io/shard": "a"},
        enable_profiling=False,
        enable_contention_profiling=False,
    )
    first, second = (
        expand_plugins(profile, DEFAULT_PLUGINS, IMPLEMENTS) for profile in config.profiles
    )
    assert [(p.name, p.weight) for p in first["score"]] == [
        ("NodeResourcesFit", 5),
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("VolumeBinding", 1),
        ("PodTopologySpread", 2),
        ("InterPodAffinity", 2),
        ("NodeResourcesBalancedAllocation", 1),
        ("CustomScore", 4),
    ]
    assert [p.name for p in second["filter"]] == [
        "NodeUnschedulable",
        "NodeResourcesFit",
        "TaintToleration",
    ]


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "named"),
    [
        # TypeMeta
        pytest.param(
            doc(apiVersion="kubescheduler.config.k8s.io/v1beta3"),
            "apiVersion",
            '"kubescheduler.config.k8s.io/v1beta3"',
            id="old-api-version",
        ),
        pytest.param({"kind": KIND}, "apiVersion", "required", id="missing-api-version"),
        pytest.param(
            doc(kind="KubeProxyConfiguration"), "kind", '"KubeProxyConfiguration"', id="wrong-kind"
        ),
        # Strict decoding: unknown fields
        pytest.param(doc(parallelizm=4), "parallelizm", '"parallelizm"', id="unknown-top-field"),
        pytest.param(
            doc(clientConnection={"qpss": 5}),
            "clientConnection.qpss",
            '"qpss"',
            id="unknown-client-connection-field",
        ),
        pytest.param(
            doc(leaderElection={"leaseDurationSeconds": 15}),
            "leaderElection.leaseDurationSeconds",
            '"leaseDurationSeconds"',
            id="unknown-leader-election-field",
        ),
        pytest.param(
            one_profile(name="x"), "profiles[0].name", '"name"', id="unknown-profile-field"
        ),
        pytest.param(
            one_profile(plugins={"filters": {}}),
            "profiles[0].plugins.filters",
            '"filters"',
            id="unknown-extension-point",
        ),
        pytest.param(
            one_profile(plugins={"filter": {"enable": []}}),
            "profiles[0].plugins.filter.enable",
            '"enable"',
            id="unknown-plugin-set-field",
        ),
        pytest.param(
            one_profile(plugins={"score": {"enabled": [{"name": "ImageLocality", "wieght": 2}]}}),
            "profiles[0].plugins.score.enabled[0].wieght",
            '"wieght"',
            id="unknown-plugin-field",
        ),
        pytest.param(
            one_profile(pluginConfig=[{"name": "NodeAffinity", "arguments": {}}]),
            "profiles[0].pluginConfig[0].arguments",
            '"arguments"',
            id="unknown-plugin-config-field",
        ),
        # Types
        pytest.param(doc(parallelism=True), "parallelism", "(got true)", id="bool-is-not-int"),
        pytest.param(doc(parallelism=16.5), "parallelism", "(got 16.5)", id="float-is-not-int"),
        pytest.param(doc(parallelism="16"), "parallelism", '(got "16")', id="string-is-not-int"),
        pytest.param(
            doc(parallelism=2**31), "parallelism", "(got 2147483648)", id="int32-overflow"
        ),
        pytest.param(
            doc(podInitialBackoffSeconds=1.5),
            "podInitialBackoffSeconds",
            "(got 1.5)",
            id="backoff-is-whole-seconds",
        ),
        pytest.param(
            doc(clientConnection={"qps": "fast"}),
            "clientConnection.qps",
            '(got "fast")',
            id="qps-not-a-number",
        ),
        pytest.param(
            doc(leaderElection={"leaderElect": "yes"}),
            "leaderElection.leaderElect",
            '(got "yes")',
            id="leader-elect-not-bool",
        ),
        pytest.param(
            doc(enableProfiling=1), "enableProfiling", "(got 1)", id="enable-profiling-not-bool"
        ),
        pytest.param(
            doc(leaderElection={"leaseDuration": 15}),
            "leaderElection.leaseDuration",
            "(got 15)",
            id="duration-not-a-string",
        ),
        pytest.param(
            doc(leaderElection={"leaseDuration": "15"}),
            "leaderElection.leaseDuration",
            '(got "15")',
            id="duration-without-unit",
        ),
        pytest.param(
            doc(leaderElection={"retryPeriod": "2 s"}),
            "leaderElection.retryPeriod",
            '(got "2 s")',
            id="duration-malformed",
        ),
        pytest.param(doc(profiles={"a": 1}), "profiles", "a mapping", id="profiles-not-a-list"),
        pytest.param(
            doc(profiles=["default"]), "profiles[0]", '"default"', id="profile-not-a-mapping"
        ),
        pytest.param(
            one_profile(plugins=[]), "profiles[0].plugins", "a list", id="plugins-not-a-mapping"
        ),
        pytest.param(
            one_profile(plugins={"score": {"enabled": [{"name": "ImageLocality", "weight": "x"}]}}),
            "profiles[0].plugins.score.enabled[0].weight",
            '(got "x")',
            id="weight-not-int",
        ),
        # Ranges
        pytest.param(doc(parallelism=0), "parallelism", "(got 0)", id="parallelism-zero"),
        pytest.param(doc(parallelism=-4), "parallelism", "(got -4)", id="parallelism-negative"),
        pytest.param(
            doc(percentageOfNodesToScore=101),
            "percentageOfNodesToScore",
            "(got 101)",
            id="percentage-above-100",
        ),
        pytest.param(
            doc(percentageOfNodesToScore=-1),
            "percentageOfNodesToScore",
            "(got -1)",
            id="percentage-negative",
        ),
        pytest.param(
            one_profile(percentageOfNodesToScore=150),
            "profiles[0].percentageOfNodesToScore",
            "(got 150)",
            id="profile-percentage-above-100",
        ),
        pytest.param(
            doc(podInitialBackoffSeconds=0),
            "podInitialBackoffSeconds",
            "(got 0)",
            id="initial-backoff-zero",
        ),
        pytest.param(
            doc(podMaxBackoffSeconds=0),
            "podMaxBackoffSeconds",
            "must be >= podInitialBackoffSeconds (got 0)",
            id="max-backoff-below-initial",
        ),
        pytest.param(
            doc(podInitialBackoffSeconds=20),
            "podMaxBackoffSeconds",
            "(got 10)",
            id="initial-backoff-above-default-max",
        ),
        pytest.param(
            doc(clientConnection={"burst": -1}),
            "clientConnection.burst",
            "(got -1)",
            id="burst-negative",
        ),
        pytest.param(
            doc(clientConnection={"contentType": "application/yaml"}),
            "clientConnection.contentType",
            '(got "application/yaml")',
            id="content-type-unsupported",
        ),
        # Leader election (component-base validation + client-go's leader elector)
        pytest.param(
            doc(leaderElection={"retryPeriod": "-1s"}),
            "leaderElection.retryPeriod",
            "(got -1s)",
            id="retry-period-negative",
        ),
        pytest.param(
            doc(leaderElection={"leaseDuration": "10s"}),
            "leaderElection.leaseDuration",
            "(got 10s)",
            id="lease-not-above-renew",
        ),
        pytest.param(
            doc(leaderElection={"renewDeadline": "2s"}),
            "leaderElection.renewDeadline",
            "(got 2s)",
            id="renew-not-above-jittered-retry",
        ),
        pytest.param(
            doc(leaderElection={"retryPeriod": "5s", "renewDeadline": "6s"}),
            "leaderElection.renewDeadline",
            "(got 6s)",
            id="renew-equal-to-jittered-retry",
        ),
        pytest.param(
            doc(leaderElection={"resourceLock": "endpointsleases"}),
            "leaderElection.resourceLock",
            '(got "endpointsleases")',
            id="resource-lock-not-leases",
        ),
        # Profiles
        pytest.param(
            one_profile(schedulerName=""),
            "profiles[0].schedulerName",
            "required",
            id="empty-scheduler-name",
        ),
        pytest.param(
            doc(profiles=[{"schedulerName": "a"}, {}]),
            "profiles[1].schedulerName",
            "required",
            id="missing-name-with-several-profiles",
        ),
        pytest.param(
            doc(profiles=[{"schedulerName": "a"}, {"schedulerName": "a"}]),
            "profiles[1].schedulerName",
            '"a"',
            id="duplicate-scheduler-name",
        ),
        pytest.param(
            doc(
                profiles=[
                    {
                        "schedulerName": "a",
                        "plugins": {"queueSort": plugin_set(("CustomSort",), ("*",))},
                    },
                    {"schedulerName": "b"},
                ]
            ),
            "profiles[1].plugins.queueSort",
            "profiles[0] has enabled [CustomSort], disabled [*]",
            id="queue-sort-differs-between-profiles",
        ),
        pytest.param(
            one_profile(plugins={"queueSort": plugin_set(("PrioritySort", "CustomSort"), ("*",))}),
            "profiles[0].plugins.queueSort.enabled",
            "[PrioritySort, CustomSort]",
            id="two-queue-sort-plugins",
        ),
        pytest.param(
            doc(
                profiles=[
                    {
                        "schedulerName": name,
                        "plugins": {"queueSort": plugin_set(("CustomSort",), ("*",))},
                        "pluginConfig": [{"name": "CustomSort", "args": {"order": order}}],
                    }
                    for name, order in (("a", "fifo"), ("b", "lifo"))
                ]
            ),
            "profiles[1].pluginConfig[0].args",
            '"CustomSort"',
            id="queue-sort-args-differ",
        ),
        # Plugin names
        pytest.param(
            one_profile(plugins={"score": {"enabled": plugins("ImageLocality", "Foo")}}),
            "profiles[0].plugins.score.enabled[1].name",
            'unknown plugin "Foo"',
            id="unknown-enabled-plugin",
        ),
        pytest.param(
            one_profile(plugins={"filter": {"disabled": plugins("NodeNmae")}}),
            "profiles[0].plugins.filter.disabled[0].name",
            'unknown plugin "NodeNmae"',
            id="unknown-disabled-plugin",
        ),
        pytest.param(
            one_profile(plugins={"multiPoint": {"enabled": plugins("*")}}),
            "profiles[0].plugins.multiPoint.enabled[0].name",
            '"*"',
            id="wildcard-in-enabled",
        ),
        pytest.param(
            one_profile(plugins={"filter": {"enabled": plugins("EBSLimits")}}),
            "profiles[0].plugins.filter.enabled[0].name",
            '"EBSLimits" was removed',
            id="removed-plugin",
        ),
        pytest.param(
            one_profile(plugins={"score": {"enabled": [{"weight": 2}]}}),
            "profiles[0].plugins.score.enabled[0].name",
            "required",
            id="plugin-without-name",
        ),
        # Plugin config
        pytest.param(
            one_profile(pluginConfig=[{"name": "Foo", "args": {}}]),
            "profiles[0].pluginConfig[0].name",
            'unknown plugin "Foo"',
            id="config-for-unknown-plugin",
        ),
        pytest.param(
            one_profile(pluginConfig=[{"name": "NodeAffinity"}, {"name": "NodeAffinity"}]),
            "profiles[0].pluginConfig[1].name",
            '"NodeAffinity"',
            id="duplicate-plugin-config",
        ),
        pytest.param(
            one_profile(pluginConfig=[{"name": "NodeAffinity", "args": [1]}]),
            "profiles[0].pluginConfig[0].args",
            "(got a list)",
            id="args-not-a-mapping",
        ),
        pytest.param(
            one_profile(
                pluginConfig=[{"name": "NodeAffinity", "args": {"kind": "NodeResourcesFitArgs"}}]
            ),
            "profiles[0].pluginConfig[0].args.kind",
            '(got "NodeResourcesFitArgs")',
            id="args-kind-mismatch",
        ),
        pytest.param(
            one_profile(
                pluginConfig=[
                    {
                        "name": "NodeAffinity",
                        "args": {"apiVersion": "kubescheduler.config.k8s.io/v1beta3"},
                    }
                ]
            ),
            "profiles[0].pluginConfig[0].args.apiVersion",
            '(got "kubescheduler.config.k8s.io/v1beta3")',
            id="args-api-version-mismatch",
        ),
        # nodeSelector (berth extension)
        pytest.param(
            doc(nodeSelector=["a"]), "nodeSelector", "a list", id="selector-not-a-mapping"
        ),
        pytest.param(
            doc(nodeSelector={"-zone": "a"}),
            "nodeSelector[-zone]",
            '"-zone"',
            id="selector-key-dash",
        ),
        pytest.param(
            doc(nodeSelector={"Example.com/zone": "a"}),
            "nodeSelector[Example.com/zone]",
            "prefix part",
            id="selector-key-uppercase-prefix",
        ),
        pytest.param(
            doc(nodeSelector={"a/b/c": "x"}),
            "nodeSelector[a/b/c]",
            '"a/b/c"',
            id="selector-key-two-slashes",
        ),
        pytest.param(
            doc(nodeSelector={"k" * 64: "x"}),
            f"nodeSelector[{'k' * 64}]",
            "63 bytes",
            id="selector-key-too-long",
        ),
        pytest.param(
            doc(nodeSelector={"zone": "v" * 64}),
            "nodeSelector[zone]",
            "63 bytes",
            id="selector-value-too-long",
        ),
        pytest.param(
            doc(nodeSelector={"zone": "eu west"}),
            "nodeSelector[zone]",
            '"eu west"',
            id="selector-value-bad-characters",
        ),
        pytest.param(
            doc(nodeSelector={"zone": 1}),
            "nodeSelector[zone]",
            "(got 1)",
            id="selector-value-not-string",
        ),
        pytest.param(
            doc(nodeSelector={"enabled": True}),
            "nodeSelector[enabled]",
            "(got true)",
            id="selector-value-yaml-bool",
        ),
        pytest.param(
            doc(extenders=[{"urlPrefix": "http://x", "prioritizeVerb": "p"}]),
            "extenders[0].weight",
            "Invalid value: 0",
            id="extenders",
        ),
    ],
)
def test_each_rule_reports_its_field_and_value(document: Any, path: str, named: str) -> None:
    """Every invalid document fails with one error at the field's path naming the bad value."""
    errors = errors_of(document)

    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}: "), errors
    assert named in errors[0]


def test_every_error_is_reported_at_once() -> None:
    """Errors are collected across the whole document instead of stopping at the first."""
    document = doc(
        parallelism=0,
        podMaxBackoffSeconds=0,
        bogus=True,
        clientConnection={"burst": -5},
        profiles=[
            {
                "schedulerName": "a",
                "plugins": {"score": {"enabled": plugins("ImageLocality", "Foo")}},
            },
            {"schedulerName": "a", "percentageOfNodesToScore": 101},
        ],
        nodeSelector={"zone": 3},
    )

    with pytest.raises(ConfigError) as info:
        parse(document, KNOWN)

    assert [error.split(": ", 1)[0] for error in info.value.errors] == [
        "bogus",
        "parallelism",
        "podMaxBackoffSeconds",
        "clientConnection.burst",
        "profiles[0].plugins.score.enabled[1].name",
        "profiles[1].percentageOfNodesToScore",
        "profiles[1].schedulerName",
        "nodeSelector[zone]",
    ]
    assert str(info.value) == "\n".join(info.value.errors)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(None, id="null"),
        pytest.param([doc()], id="list"),
        pytest.param("apiVersion: v1", id="string"),
    ],
)
def test_parse_rejects_a_document_that_is_not_a_mapping(document: Any) -> None:
    """parse() raises ConfigError, not TypeError, for a non-mapping document."""
    assert "must be a mapping" in errors_of(document)[0]


# ------------------------------------------------------------------------------------------------
# load()
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read", id="missing-file"),
        pytest.param("apiVersion: [unclosed\n", "invalid YAML", id="syntax-error"),
        pytest.param("- a\n- b\n", "must be a YAML mapping (got a list)", id="list-document"),
        pytest.param("", "must be a YAML mapping (got null)", id="empty-file"),
        pytest.param(
            f"apiVersion: {API_VERSION}\nkind: {KIND}\nparallelism: 4\nparallelism: 8\n",
            "duplicate key 'parallelism'",
            id="duplicate-key",
        ),
        pytest.param(
            f"apiVersion: {API_VERSION}\nkind: {KIND}\nparallelism: 0\n",
            "parallelism: must be greater than 0 (got 0)",
            id="validation-error-passes-through",
        ),
    ],
)
def test_load_errors(tmp_path: Path, content: str | None, message: str) -> None:
    """Unreadable files, bad YAML and invalid configs all surface as ConfigError."""
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load(path, KNOWN)

    assert len(info.value.errors) == 1
    assert message in info.value.errors[0]


def test_load_accepts_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    """Merge keys are not mistaken for duplicate keys."""
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
apiVersion: {API_VERSION}
kind: {KIND}
profiles:
  - &base
    schedulerName: a
    percentageOfNodesToScore: 30
  - <<: *base
    schedulerName: b
""",
        encoding="utf-8",
    )

    config = load(str(path), KNOWN)

    assert [(p.scheduler_name, p.percentage_of_nodes_to_score) for p in config.profiles] == [
        ("a", 30),
        ("b", 30),
    ]


# ------------------------------------------------------------------------------------------------
# expand_plugins: upstream's mergePlugins + multiPoint expansion
# ------------------------------------------------------------------------------------------------


def test_default_profile_expands_like_upstream() -> None:
    """With no plugin config, every point gets upstream's default plugins, in upstream order."""
    result = expand_plugins(Profile(), DEFAULT_PLUGINS, IMPLEMENTS)

    assert {point: [p.name for p in refs] for point, refs in result.items()} == {
        "preEnqueue": ["SchedulingGates"],
        "queueSort": ["PrioritySort"],
        "preFilter": [
            "NodeName",
            "NodeAffinity",
            "NodePorts",
            "NodeResourcesFit",
            "VolumeRestrictions",
            "NodeVolumeLimits",
            "VolumeBinding",
            "VolumeZone",
            "PodTopologySpread",
            "InterPodAffinity",
            "NodeDeclaredFeatures",
        ],
        "filter": DEFAULT_FILTER,
        "postFilter": ["DefaultPreemption"],
        "preScore": [
            "TaintToleration",
            "NodeAffinity",
            "NodeResourcesFit",
            "VolumeBinding",
            "PodTopologySpread",
            "InterPodAffinity",
            "NodeResourcesBalancedAllocation",
        ],
        "score": [name for name, _ in DEFAULT_SCORE],
        "reserve": ["VolumeBinding"],
        "permit": [],
        "preBind": ["VolumeBinding"],
        "bind": ["DefaultBinder"],
        "postBind": [],
    }
    assert [(p.name, p.weight) for p in result["score"]] == DEFAULT_SCORE
    assert all(p.weight == 0 for p in result["filter"])


def test_berth_defaults_are_upstream_v1_37_defaults() -> None:
    """plugins.DEFAULTS is v1.37's default multiPoint list with the default gates, in order:
    the list above with DynamicResources (weight 2) inserted before DefaultPreemption, as
    applyDynamicResources does, and GangScheduling appended as applyGangScheduling does
    (GenericWorkload: off by default upstream, on in berth, where it does nothing to pods
    that name no PodGroup; docs/compat.md)."""
    expected = [(p.name, p.weight) for p in DEFAULT_PLUGINS]
    expected.insert(expected.index(("DefaultPreemption", 0)), ("DynamicResources", 2))
    expected.append(("GangScheduling", 0))
    assert list(plugin_registry.DEFAULTS) == expected


def _without(names: list[Any], *drop: str) -> list[Any]:
    return [n for n in names if (n[0] if isinstance(n, tuple) else n) not in drop]


def _reweighted(name: str, weight: int) -> list[tuple[str, int]]:
    return [(n, weight if n == name else w) for n, w in DEFAULT_SCORE]


@pytest.mark.parametrize(
    ("plugin_sets", "point", "expected"),
    [
        pytest.param(
            {"score": plugin_set(disabled=("NodeResourcesBalancedAllocation",))},
            "score",
            _without(DEFAULT_SCORE, "NodeResourcesBalancedAllocation"),
            id="disable-one-default-at-score",
        ),
        pytest.param(
            {"score": plugin_set(disabled=("NodeResourcesBalancedAllocation",))},
            "preScore",
            [
                "TaintToleration",
                "NodeAffinity",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity",
                "NodeResourcesBalancedAllocation",
            ],
            id="disabling-at-score-keeps-it-at-prescore",
        ),
        pytest.param(
            {"filter": plugin_set(("NodeName", "CustomFilter", "NodeUnschedulable"), ("*",))},
            "filter",
            ["NodeName", "CustomFilter", "NodeUnschedulable"],
            id="disable-all-at-filter-and-enable-custom-order",
        ),
        pytest.param(
            {"filter": plugin_set(("NodeName",), ("*",))},
            "preFilter",
            [
                "NodeName",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeRestrictions",
                "NodeVolumeLimits",
                "VolumeBinding",
                "VolumeZone",
                "PodTopologySpread",
                "InterPodAffinity",
                "NodeDeclaredFeatures",
            ],
            id="disable-all-at-filter-leaves-prefilter",
        ),
        pytest.param(
            {"multiPoint": plugin_set((("ImageLocality", 5),))},
            "score",
            _reweighted("ImageLocality", 5),
            id="score-weight-via-multipoint-keeps-order",
        ),
        pytest.param(
            {"multiPoint": plugin_set(("TaintToleration",))},
            "score",
            _reweighted("TaintToleration", 1),
            id="multipoint-reenable-without-weight-resets-to-1",
        ),
        pytest.param(
            {"score": plugin_set((("NodeAffinity", 7),))},
            "score",
            [("NodeAffinity", 7), *_without(DEFAULT_SCORE, "NodeAffinity")],
            id="score-weight-via-score-moves-it-first",
        ),
        pytest.param(
            {"score": plugin_set((("NodeAffinity", 0),))},
            "score",
            [("NodeAffinity", 1), *_without(DEFAULT_SCORE, "NodeAffinity")],
            id="explicit-zero-weight-becomes-1",
        ),
        pytest.param(
            {"score": plugin_set((("CustomScore", 4),))},
            "score",
            [*DEFAULT_SCORE, ("CustomScore", 4)],
            id="enabled-at-score-only-appended",
        ),
        pytest.param(
            {"score": plugin_set((("CustomScore", 4),))},
            "preScore",
            [
                "TaintToleration",
                "NodeAffinity",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity",
                "NodeResourcesBalancedAllocation",
            ],
            id="enabled-at-score-only-not-at-prescore",
        ),
        pytest.param(
            {"multiPoint": plugin_set((("CustomScore", 4),))},
            "preScore",
            [
                "TaintToleration",
                "NodeAffinity",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity",
                "NodeResourcesBalancedAllocation",
                "CustomScore",
            ],
            id="multipoint-custom-plugin-expands-to-prescore",
        ),
        pytest.param(
            {"multiPoint": plugin_set((("CustomScore", 4),))},
            "score",
            [*DEFAULT_SCORE, ("CustomScore", 4)],
            id="multipoint-custom-plugin-expands-to-score",
        ),
        pytest.param(
            {"multiPoint": plugin_set(disabled=("NodeAffinity",))},
            "filter",
            _without(DEFAULT_FILTER, "NodeAffinity"),
            id="multipoint-disable-removes-everywhere",
        ),
        pytest.param(
            {"multiPoint": plugin_set(("PrioritySort", "NodeName", "DefaultBinder"), ("*",))},
            "filter",
            ["NodeName"],
            id="multipoint-disable-all-then-enable-minimal-set",
        ),
        pytest.param(
            {"multiPoint": plugin_set(("PrioritySort", "NodeName", "DefaultBinder"), ("*",))},
            "score",
            [],
            id="multipoint-disable-all-leaves-no-scorers",
        ),
        pytest.param(
            {"multiPoint": plugin_set((("NodeAffinity", 9), "CustomFilter"))},
            "filter",
            [*DEFAULT_FILTER, "CustomFilter"],
            id="multipoint-override-in-place-custom-appended",
        ),
        pytest.param(
            {"multiPoint": plugin_set(("NodeName",), ("NodeName",))},
            "filter",
            [*_without(DEFAULT_FILTER, "NodeName"), "NodeName"],
            id="multipoint-disabled-and-enabled-moves-to-end",
        ),
        pytest.param(
            {"score": plugin_set((("ImageLocality", 3),), ("ImageLocality",))},
            "score",
            [*_without(DEFAULT_SCORE, "ImageLocality"), ("ImageLocality", 3)],
            id="point-disabled-never-removes-explicit-enabled",
        ),
        pytest.param(
            {"queueSort": plugin_set(("CustomSort",), ("*",))},
            "queueSort",
            ["CustomSort"],
            id="replace-queue-sort",
        ),
        pytest.param(
            {"multiPoint": plugin_set(("CustomBinder",), ("DefaultBinder",))},
            "bind",
            ["CustomBinder"],
            id="replace-binder-via-multipoint",
        ),
        pytest.param(
            {"filter": plugin_set(("NodeName",), ("TaintToleration",))},
            "filter",
            ["NodeName", *_without(DEFAULT_FILTER, "NodeName", "TaintToleration")],
            id="explicit-default-at-point-moves-first",
        ),
    ],
)
def test_expand_plugins(plugin_sets: dict[str, Any], point: str, expected: list[Any]) -> None:
    """User plugin sets merge with the defaults exactly as upstream's framework builds them."""
    assert expanded(plugin_sets, point) == expected


@pytest.mark.parametrize(
    ("plugin_sets", "point", "expected"),
    [
        pytest.param(
            {"multiPoint": plugin_set((("CustomScore", 5), "PrioritySort", "DefaultBinder"))},
            "score",
            [("CustomScore", 5)],
            id="plugin-expansion",
        ),
        pytest.param(
            {
                "multiPoint": plugin_set(
                    ("CustomScore", "ImageLocality", "PrioritySort", "DefaultBinder")
                ),
                "score": plugin_set((("ImageLocality", 5), ("CustomScore", 3))),
            },
            "score",
            [("ImageLocality", 5), ("CustomScore", 3)],
            id="override-multipoint-weights",
        ),
        pytest.param(
            {
                "multiPoint": plugin_set(
                    ("CustomScore", "ImageLocality", "PrioritySort", "DefaultBinder")
                ),
                "score": plugin_set(
                    (
                        ("ImageLocality", 5),
                        ("NodeResourcesBalancedAllocation", 5),
                        ("CustomScore", 3),
                    )
                ),
            },
            "score",
            [("ImageLocality", 5), ("CustomScore", 3), ("NodeResourcesBalancedAllocation", 5)],
            id="overrides-first-then-multipoint-then-other-explicit",
        ),
        pytest.param(
            {
                "multiPoint": plugin_set(
                    ("CustomScore", "ImageLocality", "PrioritySort", "DefaultBinder")
                ),
                "preScore": plugin_set(disabled=("*",)),
            },
            "preScore",
            [],
            id="disable-multipoint-extension-with-wildcard",
        ),
    ],
)
def test_expand_plugins_without_defaults(
    plugin_sets: dict[str, Any], point: str, expected: list[Any]
) -> None:
    """Upstream's framework multiPoint cases, where the profile alone lists the plugins."""
    assert expanded(plugin_sets, point, defaults=()) == expected


@pytest.mark.parametrize(
    ("profile", "path", "named"),
    [
        pytest.param(
            profile_with({"multiPoint": plugin_set(("CustomFilter", "CustomFilter"))}),
            "plugins.multiPoint.enabled[1].name",
            '"CustomFilter" is enabled more than once',
            id="multipoint-duplicate",
        ),
        pytest.param(
            profile_with({"filter": plugin_set(("CustomFilter", "CustomFilter"))}),
            "plugins.filter.enabled[1].name",
            '"CustomFilter" is enabled more than once at filter',
            id="duplicate-at-one-point",
        ),
        pytest.param(
            profile_with({"score": plugin_set(("NodeName",))}),
            "plugins.score.enabled[0].name",
            '"NodeName" does not implement the score extension point',
            id="plugin-lacks-extension-point",
        ),
        pytest.param(
            Profile(plugins={"filter": PluginSet(enabled=(PluginRef("Ghost"),))}),
            "plugins.filter.enabled[0].name",
            'unknown plugin "Ghost"',
            id="unregistered-plugin",
        ),
        pytest.param(
            Profile(plugins={"multiPoint": PluginSet(enabled=(PluginRef("Ghost"),))}),
            "plugins.multiPoint.enabled[0].name",
            'unknown plugin "Ghost"',
            id="unregistered-multipoint-plugin",
        ),
        pytest.param(
            profile_with({"multiPoint": plugin_set(disabled=("DefaultBinder",))}),
            "plugins.bind",
            "at least one bind plugin",
            id="no-bind-plugin",
        ),
        pytest.param(
            profile_with({"queueSort": plugin_set(("CustomSort",))}),
            "plugins.queueSort",
            "(got [PrioritySort, CustomSort])",
            id="two-queue-sort-plugins",
        ),
    ],
)
def test_expand_plugins_errors(profile: Profile, path: str, named: str) -> None:
    """Plugin sets the framework would refuse raise ConfigError with the field path."""
    errors = expand_errors(profile)

    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}: "), errors
    assert named in errors[0]


def test_expand_plugins_collects_errors_under_the_given_path() -> None:
    """All expansion errors come together, prefixed with the caller's path for the profile."""
    profile = profile_with(
        {
            "multiPoint": plugin_set(("CustomFilter", "CustomFilter"), ("DefaultBinder",)),
            "score": plugin_set(("NodeName",)),
        }
    )

    errors = expand_errors(profile, path="profiles[2].plugins")

    assert [error.split(": ", 1)[0] for error in errors] == [
        "profiles[2].plugins.score.enabled[0].name",
        "profiles[2].plugins.multiPoint.enabled[1].name",
        "profiles[2].plugins.bind",
    ]


# ------------------------------------------------------------------------------------------------
# What v1.37 adds behind gates that are off
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("DeferredPodScheduling", id="deferred-pod-scheduling"),
        pytest.param("TopologyPlacementGenerator", id="topology-placement-generator"),
        pytest.param("PodGroupPodsCount", id="pod-group-pods-count"),
    ],
)
def test_run_refuses_plugins_berth_does_not_have(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1.37 registers these four whatever its gates say, so a file naming them loads there;
    berth does not know them, so `berth run` exits 2 naming the field. Pins today's behaviour;
    changes with #11 (DeferredPodScheduling) and #13 (the gang plugins)."""
    monkeypatch.setattr("scheduler.logs.setup", lambda level: None)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"apiVersion: {API_VERSION}\nkind: {KIND}\nprofiles:\n"
        f"- plugins:\n    multiPoint:\n      enabled:\n      - name: {name}\n",
        encoding="utf-8",
    )

    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f'profiles[0].plugins.multiPoint.enabled[0].name: unknown plugin "{name}"' in err


@pytest.mark.parametrize(
    "point",
    [
        pytest.param("placementGenerate", id="placement-generate"),
        pytest.param("placementScore", id="placement-score"),
        pytest.param("podGroupPostFilter", id="pod-group-post-filter"),
    ],
)
def test_v1_37_plugin_sets_load_empty_and_refuse_plugins(point: str) -> None:
    """The plugin sets v1.36/v1.37 added for workload-aware scheduling load when empty or only
    disabling (kube-scheduler's own --write-config-to writes them as `{}`); a plugin enabled
    there is refused by path, since berth runs none at these points."""
    parse(one_profile(plugins={point: {}}), KNOWN)
    parse(one_profile(plugins={point: {"disabled": [{"name": "*"}]}}), KNOWN)
    errors = errors_of(one_profile(plugins={point: plugin_set(("ImageLocality",))}))
    assert errors == [
        f"profiles[0].plugins.{point}.enabled[0].name: berth runs no plugins at this extension"
        " point (upstream's TopologyAwareWorkloadScheduling, alpha, off in v1.37)"
    ]
