"""NodeDeclaredFeatures: the cases of upstream's nodedeclaredfeatures_test.go (TestPreFilter,
TestFilter, TestEnqueueExtensionsNodeUpdate, TestIsSchedulableAfterTargetPodUpdate), and the
registry's inference and version gating from component-helpers' framework_test.go and the
features' own tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from plugins import node_declared_features
from scheduler.declared_features import REGISTRY, Feature, Registry, Version
from scheduler.framework import SKIP, CycleState, QueueingHint
from scheduler.handle import in_memory
from scheduler.model import compile_node, compile_pod
from scheduler.snapshot import NodeTable
from tests.builders import PodBuilder, make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, hint_for, registered, unresolvable

JSON = dict[str, Any]

PLUGIN = node_declared_features.new({}, in_memory())
UNSATISFIED = "node(s) didn't match Pod's required features"

# The three features a pod can need when it is scheduled, in the registry's (sorted) order.
RESTART_ALL = "RestartAllContainersOnContainerExits"
USERNS_HOST_NETWORK = "UserNamespacesHostNetworkSupport"
BIND_MOUNT_OPTIONS = "VolumeBindMountOptions"


def pod() -> PodBuilder:
    return make_pod("test-pod")


def needing(*features: str) -> JSON:
    """A pod that needs exactly `features` (of the three above)."""
    builder = pod()
    if RESTART_ALL in features:
        builder.restart_rule("RestartAllContainers")
    if USERNS_HOST_NETWORK in features:
        builder.host_network(host_users=False)
    if BIND_MOUNT_OPTIONS in features:
        builder.volume_mount("data", "rro")
    return builder.obj_()


def node(name: str, *declared: str) -> JSON:
    builder = make_node(name)
    if declared:
        builder.declared_features(*declared)
    return builder.obj_()


def required(raw: JSON) -> tuple[str, ...]:
    return REGISTRY.names_of(compile_pod(raw).required_features)


# --- PreFilter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "skip", "features"),
    [
        pytest.param(
            needing(RESTART_ALL), False, (RESTART_ALL,), id="pod-with-feature-requirements"
        ),
        pytest.param(
            needing(RESTART_ALL, USERNS_HOST_NETWORK, BIND_MOUNT_OPTIONS),
            False,
            (RESTART_ALL, USERNS_HOST_NETWORK, BIND_MOUNT_OPTIONS),
            id="pod-with-multiple-feature-requirements",
        ),
        pytest.param(pod().obj_(), True, (), id="pod-with-no-requirements"),
    ],
)
def test_pre_filter(incoming: JSON, skip: bool, features: tuple[str, ...]) -> None:
    """SKIP when the pod needs no feature; otherwise the pod's compiled requirements stand."""
    status = PLUGIN.pre_filter(CycleState(), compile_pod(incoming), NodeTable(4))
    assert status == (SKIP if skip else None)
    assert required(incoming) == features


# --- the registry: version gating (upstream's mock features) --------------------------------

FEATURE1, FEATURE2 = "TestFeature1", "TestFeature2"


def mock(name: str, infer: bool, max_version: Version | None = None) -> Feature:
    return Feature(name, lambda spec: infer, max_version)


@pytest.mark.parametrize(
    ("features", "target", "expected"),
    [
        pytest.param(
            [mock(FEATURE1, True), mock(FEATURE2, False)],
            (1, 35, 0),
            (FEATURE1,),
            id="Pod-with-feature-requirements",
        ),
        pytest.param(
            [mock(FEATURE1, True, (1, 38, 0)), mock(FEATURE2, True, (1, 38, 0))],
            (1, 35, 0),
            (FEATURE1, FEATURE2),
            id="Pod-with-multiple-feature-requirements",
        ),
        pytest.param(
            [mock(FEATURE1, False), mock(FEATURE2, False)],
            (1, 35, 0),
            (),
            id="Pod-with-no-requirements",
        ),
        pytest.param(
            [mock(FEATURE1, True, (1, 33, 0)), mock(FEATURE2, False)],
            (1, 34, 0),
            (),
            id="Feature-not-required-version-greater-than-MaxVersion",
        ),
        pytest.param(
            [mock(FEATURE1, True, (1, 30, 0))],
            (1, 30, 0),
            (FEATURE1,),
            id="max-version-is-inclusive",
        ),
        pytest.param(
            [mock(FEATURE1, True, (1, 30, 0))],
            (1, 40, 0),
            (),
            id="exceeds-max-version",
        ),
    ],
)
def test_required_features_are_gated_by_max_version(
    features: list[Feature], target: Version, expected: tuple[str, ...]
) -> None:
    """A feature past its max version is needed by no pod (InferForPodScheduling)."""
    registry = Registry(features)
    assert registry.names_of(registry.required({}, target)) == expected


def test_registry_mirrors_upstream_all_features() -> None:
    """Upstream's features.AllFeatures, bits in name order; unknown node features dropped."""
    assert REGISTRY.names == (
        "DRANodeAllocatableResources",
        "DRAOptionalNodeOperations",
        "ExtendWebSocketsToKubelet",
        "InPlacePodLevelResourcesVerticalScaling",
        "InPlacePodVerticalScalingInitContainers",
        "InPlacePodVerticalScalingMemoryBackedVolumes",
        RESTART_ALL,
        USERNS_HOST_NETWORK,
        BIND_MOUNT_OPTIONS,
    )
    assert REGISTRY.names_of(REGISTRY.declared(["Bogus", USERNS_HOST_NETWORK])) == (
        USERNS_HOST_NETWORK,
    )


# --- the registry: which pod fields need which feature --------------------------------------


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        # restartallcontainers: TestInferForScheduling
        pytest.param(
            pod().restart_rule("RestartAllContainers", init=True).obj_(),
            (RESTART_ALL,),
            id="init-container-with-rules",
        ),
        pytest.param(
            pod().restart_rule("RestartAllContainers").obj_(),
            (RESTART_ALL,),
            id="regular-container-with-rules",
        ),
        pytest.param(pod().init_container({}).obj_(), (), id="no-rules"),
        pytest.param(pod().restart_rule("Restart").obj_(), (), id="restart-action-only"),
        # usernamespaceshostnetwork: TestInferForScheduling
        pytest.param(
            pod().host_network(host_users=False).obj_(),
            (USERNS_HOST_NETWORK,),
            id="HostNetwork-true-HostUsers-false",
        ),
        pytest.param(pod().host_network().obj_(), (), id="HostNetwork-true-HostUsers-nil"),
        pytest.param(
            pod().host_network(host_users=True).obj_(), (), id="HostNetwork-true-HostUsers-true"
        ),
        pytest.param(
            pod().host_network(False, host_users=False).obj_(),
            (),
            id="HostNetwork-false-HostUsers-false",
        ),
        # volumebindmountoptions: every kind of container counts
        pytest.param(
            pod().volume_mount("data", "rro").obj_(), (BIND_MOUNT_OPTIONS,), id="container-mount"
        ),
        pytest.param(
            pod().volume_mount("data", "rro", field="initContainers").obj_(),
            (BIND_MOUNT_OPTIONS,),
            id="init-container-mount",
        ),
        pytest.param(
            pod().volume_mount("data", "rro", field="ephemeralContainers").obj_(),
            (BIND_MOUNT_OPTIONS,),
            id="ephemeral-container-mount",
        ),
        pytest.param(pod().volume_mount("data").obj_(), (), id="mount-without-options"),
    ],
)
def test_required_features_inferred_from_the_spec(
    incoming: JSON, expected: tuple[str, ...]
) -> None:
    """Each scheduling-relevant feature is needed exactly when its pod fields are used."""
    assert required(incoming) == expected


# --- Filter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "declared", "expected"),
    [
        pytest.param(
            needing(RESTART_ALL),
            (RESTART_ALL, USERNS_HOST_NETWORK),
            [],
            id="Node-matches-requirements",
        ),
        pytest.param(
            needing(RESTART_ALL),
            (USERNS_HOST_NETWORK,),
            [UNSATISFIED],
            id="Node-does-not-match-requirements",
        ),
        pytest.param(
            needing(RESTART_ALL, BIND_MOUNT_OPTIONS),
            (RESTART_ALL, USERNS_HOST_NETWORK, BIND_MOUNT_OPTIONS),
            [],
            id="Node-with-multiple-features-pod-requires-subset",
        ),
        pytest.param(needing(RESTART_ALL), (), [UNSATISFIED], id="Node-has-no-declared-features"),
        pytest.param(
            needing(RESTART_ALL, USERNS_HOST_NETWORK),
            (RESTART_ALL,),
            [UNSATISFIED],
            id="Node-with-some-but-not-all-required-features",
        ),
        pytest.param(
            needing(BIND_MOUNT_OPTIONS),
            ("Bogus", BIND_MOUNT_OPTIONS, "Zzz/sub"),
            [],
            id="unknown-declared-features-are-ignored",
        ),
        pytest.param(pod().obj_(), (), [], id="pod-without-requirements-fits-anywhere"),
    ],
)
def test_filter(incoming: JSON, declared: tuple[str, ...], expected: list[str]) -> None:
    """A node must declare every feature the pod needs; preemption cannot fix a miss."""
    table = build_table([node("node-1", *declared)])
    assert filter_reasons(PLUGIN, incoming, table) == {"node-1": expected}
    assert unresolvable(PLUGIN, incoming, table) == ({"node-1": True} if expected else {})


def test_filter_without_pre_filter() -> None:
    """Upstream's "Error getting pre-filter state" case: upstream's Filter fails without its
    PreFilter state; berth's reads the compiled pod, so it judges the same either way."""
    table = build_table([node("a", RESTART_ALL), node("b")])
    result = PLUGIN.filter(CycleState(), compile_pod(needing(RESTART_ALL)), table, np.arange(2))
    assert result.mask.tolist() == [True, False]


def test_filter_over_many_rows_after_growth_and_removal() -> None:
    """The column follows the table: it widens with it, and a reused row takes the features of
    the node that reuses it."""
    table = build_table(
        [node(f"n{i}", *((RESTART_ALL,) if i % 2 else ())) for i in range(5)], capacity=2
    )
    table.remove_node("n1")
    table.upsert_node(compile_node(node("n5")))  # takes n1's row
    incoming = needing(RESTART_ALL)
    passing = [name for name, why in filter_reasons(PLUGIN, incoming, table).items() if not why]
    assert passing == ["n3"]


# --- events: what requeues a pod this plugin rejected ---------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "requeue"),
    [
        pytest.param((), (RESTART_ALL,), True, id="Node-Update-Features-Added"),
        pytest.param((RESTART_ALL,), (RESTART_ALL,), False, id="Node-Update-Features-Unchanged"),
        pytest.param((RESTART_ALL,), (), True, id="node-update-features-removed"),
    ],
)
def test_node_update(old: tuple[str, ...], new: tuple[str, ...], requeue: bool) -> None:
    """A node update that changes declaredFeatures is a scheduling change (the queue moves
    pods on it); one that keeps them is not."""
    before, after = compile_node(node("node-1", *old)), compile_node(node("node-1", *new))
    assert before.same_for_scheduling(after) is not requeue


@pytest.mark.parametrize(
    ("old", "new", "requeue"),
    [
        pytest.param(
            pod().obj_(),
            make_pod("test-pod").label("foo", "bar").restart_rule("RestartAllContainers").obj_(),
            True,
            id="Pod-Update-adds-requirement",
        ),
        pytest.param(
            make_pod("test-pod").label("foo", "bar").restart_rule("RestartAllContainers").obj_(),
            pod().obj_(),
            True,
            id="Pod-Update-removes-requirement",
        ),
        pytest.param(
            pod().obj_(),
            make_pod("test-pod").label("foo", "bar").obj_(),
            False,
            id="Pod-Update-with-no-change-in-requirements",
        ),
    ],
)
def test_pod_update(old: JSON, new: JSON, requeue: bool) -> None:
    """The required features are part of the pod's class key, which the queue compares to
    give an updated unschedulable pod another chance."""
    assert (compile_pod(old).class_key != compile_pod(new).class_key) is requeue


# --- registration and the whole cycle -------------------------------------------------------


def test_registered_last_in_the_defaults_without_weight() -> None:
    """v1.37 appends NodeDeclaredFeatures to the default multiPoint list, with no weight
    (only GangScheduling, appended by the GenericWorkload gate, comes after it)."""
    import plugins

    assert "NodeDeclaredFeatures" in plugins.registry()
    assert plugins.DEFAULTS[-2:] == (("NodeDeclaredFeatures", 0), ("GangScheduling", 0))


async def test_cycle_places_pod_on_a_node_declaring_its_features() -> None:
    """Through the default profile, batched: the pod lands on the one node that declares
    what it needs; with no such node it fails with upstream's message, unresolvable."""
    from tests.unit.test_cycle import NAME, World

    world = World([node("plain"), node("capable", RESTART_ALL)], batching=True)
    raw = make_pod("p").scheduler(NAME).restart_rule("RestartAllContainers").obj_()
    assert world.schedule(raw).node == "capable"
    await world.scheduler.drain()

    world = World([node("a"), node("b", USERNS_HOST_NETWORK)], batching=True)
    attempt = world.schedule(raw)
    assert attempt.status is not None
    assert attempt.status.message == (
        f"0/2 nodes are available: 2 {UNSATISFIED}. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    await world.scheduler.drain()


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's TestEventsToRegister, plugin enabled (the gate is locked on in v1.37): two
    events, Node/Add|UpdateNodeDeclaredFeature and TargetPod/Update, both with hints."""
    assert registered(PLUGIN) == [
        ("NodeAdd", True),
        ("NodeUpdateNodeDeclaredFeature", True),
        ("TargetPodUpdate", True),
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestEnqueueExtensionsNodeUpdate.
        pytest.param(
            None, node("node-1", "FeatureA"), QueueingHint.QUEUE, id="Node Add with feature"
        ),
        pytest.param(
            node("node-1"),
            node("node-1", "FeatureA"),
            QueueingHint.QUEUE,
            id="Node Update (Features Added)",
        ),
        pytest.param(
            node("node-1", "FeatureA"),
            node("node-1", "FeatureA"),
            QueueingHint.SKIP,
            id="Node Update (Features Unchanged)",
        ),
    ],
)
def test_is_schedulable_after_node_change(
    old: JSON | None, new: JSON, expected: QueueingHint
) -> None:
    """A node added, or one whose declared features changed, moves the pod."""
    hint = hint_for(PLUGIN, "NodeUpdateNodeDeclaredFeature")
    before = compile_node(old) if old is not None else None
    assert hint(compile_pod(pod().obj_()), before, compile_node(new)) is expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterTargetPodUpdate, with a real feature where it mocks
        # one (its "Infer returns error" case has no counterpart: berth's registry has no
        # failing version).
        pytest.param(
            needing(), needing(RESTART_ALL), QueueingHint.QUEUE, id="Pod Update adds requirement"
        ),
        pytest.param(
            needing(RESTART_ALL),
            needing(),
            QueueingHint.QUEUE,
            id="Pod Update removes requirement",
        ),
        pytest.param(
            needing(),
            pod().label("foo", "bar").obj_(),
            QueueingHint.SKIP,
            id="Pod Update with no change in requirements",
        ),
    ],
)
def test_is_schedulable_after_target_pod_update(
    old: JSON, new: JSON, expected: QueueingHint
) -> None:
    """The pod's own update moves it when the features it needs changed."""
    hint = hint_for(PLUGIN, "TargetPodUpdate")
    assert hint(compile_pod(old), compile_pod(old), compile_pod(new)) is expected
