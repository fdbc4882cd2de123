"""DynamicResources: pods with resourceClaims are rejected at PreFilter until berth allocates
devices, and so are the nodes that could give a pod an extended resource a DeviceClass backs
only through DRA; the other pods are skipped. Case names follow upstream's
dynamicresources_test.go."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import plugins
from plugins import dynamic_resources
from scheduler.decode import ConfigError
from scheduler.explain import render
from scheduler.framework import (
    SKIP,
    Code,
    CycleState,
    DeviceClassStore,
    Diagnosis,
    NodeCheck,
    QueueingHint,
    Status,
)
from scheduler.handle import in_memory
from scheduler.model import compile_node, compile_pod
from tests.builders import PodBuilder, make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, registered, run_hint, unresolvable

JSON = dict[str, Any]
PLUGIN = dynamic_resources.new({}, in_memory())
CYCLE = "berth"  # the schedulerName of tests.unit.test_cycle's profile
NOT_HELPFUL = "Preemption is not helpful for scheduling"


def rejected(*claims: str) -> Status:
    message = dynamic_resources.NOT_ALLOCATED.format(" ".join(claims))
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,))


def without_claims() -> JSON:
    raw = make_pod("foo").obj_()
    raw["spec"]["resourceClaims"] = []
    return raw


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        pytest.param(make_pod("foo").obj_(), SKIP, id="empty"),
        pytest.param(
            make_pod("foo").req(**{"example.com/gpu": "1"}).obj_(),
            SKIP,
            # no DeviceClass backs it: the request is NodeResourcesFit's alone.
            id="empty-with-extended-resources-enabled",
        ),
        pytest.param(
            make_pod("my-pod").resource_claim("my-resource", claim="my-pod-my-resource").obj_(),
            rejected("my-resource"),
            id="claim-reference",
        ),
        pytest.param(
            make_pod("my-pod").resource_claim("my-resource", template="my-template").obj_(),
            rejected("my-resource"),
            id="claim-template",
        ),
        pytest.param(
            make_pod("my-pod")
            .resource_claim("my-resource", claim="my-pod-my-resource")
            .resource_claim("my-resource-2", claim="my-pod-my-resource-2")
            .obj_(),
            rejected("my-resource", "my-resource-2"),
            id="podWithTwoClaimNames",
        ),
        pytest.param(without_claims(), SKIP, id="berth: an empty resourceClaims list"),
    ],
)
def test_pre_filter(incoming: JSON, expected: Status) -> None:
    """Skip without claims; UnschedulableAndUnresolvable, naming the claims, with them."""
    assert PLUGIN.pre_filter(CycleState(), compile_pod(incoming), build_table([])) == expected


# Upstream's test objects: the class backing extendedResourceName (deviceClassWithExtend-
# ResourceName), the same with "2" (deviceClassWithExtendResourceName2), and the class without
# one (deviceClass), which backs only its implicit name.
CLASS = "my-resource-class"
GPU, GPU2 = "example.com/gpu", "example.com/gpu2"
IMPLICIT = "deviceclass.resource.kubernetes.io/my-resource-class"


def device_class(name: str, extended_resource_name: str = "", created: str = "") -> JSON:
    spec = {"extendedResourceName": extended_resource_name} if extended_resource_name else {}
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": spec}


WITH_NAME = device_class(CLASS, GPU)
WITH_NAME_2 = device_class(CLASS + "2", GPU2)
WITHOUT_NAME = device_class(CLASS)


def with_classes(*classes: JSON) -> dynamic_resources.DynamicResources:
    """The plugin over an in-memory cluster whose DeviceClasses are `classes`."""
    store = DeviceClassStore()
    for obj in classes:
        store.apply(obj, deleted=False)
    return dynamic_resources.new({}, in_memory(device_classes=store))


def needs_dra(resource: str, device_class: str = CLASS) -> str:
    return dynamic_resources.EXTENDED_NOT_ALLOCATED.format(
        resource=resource, device_class=device_class
    )


@pytest.mark.parametrize(
    ("classes", "incoming", "expected"),
    [
        pytest.param(
            [WITHOUT_NAME],
            make_pod("my-pod").req(**{GPU: "1"}).obj_(),
            SKIP,
            id="non-DRA-extended-resource-name-with-zero-allocatable",
        ),
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").req(**{GPU: "1"}).obj_(),
            None,
            id="extended-resource-name-with-node-resource",
        ),
        pytest.param(
            [WITHOUT_NAME],
            make_pod("my-pod").req(**{IMPLICIT: "1"}).obj_(),
            None,
            id="berth: the implicit name of a class without extendedResourceName",
        ),
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").req(**{GPU: "0"}).obj_(),
            SKIP,
            id="berth: a zero request needs nothing",
        ),
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").req(**{GPU: "1"}).resource_claim("my-resource").obj_(),
            rejected("my-resource"),
            id="berth: claims are refused first",
        ),
    ],
)
def test_pre_filter_extended_resources(
    classes: list[JSON], incoming: JSON, expected: Status | None
) -> None:
    """A request a DeviceClass backs (by extendedResourceName or implicit name) keeps the pod
    off the fast path: Filter looks at each node."""
    plugin = with_classes(*classes)
    assert plugin.pre_filter(CycleState(), compile_pod(incoming), build_table([])) == expected


WORKER = "worker"


@pytest.mark.parametrize(
    ("classes", "pod", "allocatable", "expected"),
    [
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").req(**{GPU: "1"}),
            {GPU: "1"},
            [],
            id="extended-resource-name-with-node-resource",
        ),
        pytest.param(
            [WITH_NAME, WITH_NAME_2],
            make_pod("my-pod").req(**{GPU: "1", GPU2: "1"}),
            {GPU: "1"},
            [needs_dra(GPU2, CLASS + "2")],
            id="extended-resource-one-device-plugin-one-dra",
        ),
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").req(**{GPU: "1"}),
            {GPU: "0"},
            [needs_dra(GPU)],
            id="extended-resource-name-with-zero-allocatable",
        ),
        pytest.param(
            [WITHOUT_NAME],
            make_pod("my-pod").req(**{GPU: "1"}),
            {GPU: "0"},
            [],
            # Skipped at PreFilter: NodeResourcesFit says "Insufficient example.com/gpu".
            id="non-DRA-extended-resource-name-with-zero-allocatable",
        ),
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").req(**{GPU: "1"}),
            {},
            [needs_dra(GPU)],
            id="extended-resource-name-no-resource",
        ),
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").req(**{IMPLICIT: "1", GPU: "2"}),
            {},
            # One reason per node, the first resource by name.
            [needs_dra(IMPLICIT)],
            id="implicit-extended-resource-name-with-resources",
        ),
        pytest.param(
            [WITH_NAME],
            make_pod("my-pod").containers({IMPLICIT: "1"}, {IMPLICIT: "1"}),
            {IMPLICIT: "2"},
            [],
            # berth: a device plugin may serve an implicit name too.
            id="implicit-extended-resource-name-two-containers-with-resources",
        ),
    ],
)
def test_filter_extended_resources(
    classes: list[JSON], pod: Any, allocatable: dict[str, str], expected: list[str]
) -> None:
    """A node whose allocatable does not list a backed request (or has none of it) would have
    to allocate DRA devices: rejected, naming the resource and its class. A node that lists it
    serves it through its device plugin and passes (NodeResourcesFit checks the amount)."""
    table = build_table([make_node(WORKER).capacity(**allocatable).obj_()])
    assert filter_reasons(with_classes(*classes), pod.obj_(), table) == {WORKER: expected}


def test_filter_extended_resources_is_per_node_and_unresolvable() -> None:
    """Over several nodes at once: only the nodes without the resource are rejected, each as
    unresolvable (preemption frees no devices); Filter finds the backed requests itself when
    PreFilter did not run."""
    table = build_table(
        [
            make_node("plugin").capacity(**{GPU: "2"}).obj_(),
            make_node("none").obj_(),
            make_node("zero").capacity(**{GPU: "0"}).obj_(),
        ]
    )
    plugin = with_classes(WITH_NAME)
    pod = make_pod("my-pod").req(**{GPU: "1"}).obj_()
    assert filter_reasons(plugin, pod, table) == {
        "plugin": [],
        "none": [needs_dra(GPU)],
        "zero": [needs_dra(GPU)],
    }
    assert unresolvable(plugin, pod, table) == {"none": True, "zero": True}
    rows = np.arange(3, dtype=np.int64)
    result = plugin.filter(CycleState(), compile_pod(pod), table, rows)
    assert result.mask.tolist() == [True, False, False]


def test_pods_with_backed_requests_are_not_row_local() -> None:
    """A pod requesting a backed resource is never served a kept (batched) verdict, since the
    DeviceClasses can change between cycles without touching a row; other pods still are."""
    plugin = with_classes(WITH_NAME)
    assert not plugin.row_local_for(compile_pod(make_pod("p").req(**{GPU: "1"}).obj_()))
    assert plugin.row_local_for(compile_pod(make_pod("p").req(**{GPU2: "1"}).obj_()))
    assert plugin.row_local_for(compile_pod(make_pod("p").resource_claim("gpu").obj_()))


UNRESOLVABLE = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("pod affinity terms conflict",))


@pytest.mark.parametrize(
    ("pre_filter_ran", "rejected", "expected"),
    [
        pytest.param(True, None, Status(Code.UNSCHEDULABLE), id="empty"),
        pytest.param(
            True,
            rejected("gpu"),
            Status(Code.UNSCHEDULABLE),
            id="berth: rejected by its own PreFilter",
        ),
        pytest.param(
            False,
            UNRESOLVABLE,
            Status(Code.ERROR, ("not found",)),
            id="berth: an earlier PreFilter rejected the pod as unresolvable",
        ),
        pytest.param(
            False,
            Status(Code.UNSCHEDULABLE, ("resolvable",)),
            Status(Code.UNSCHEDULABLE),
            id="berth: an earlier resolvable rejection (upstream's PreFilter goes on)",
        ),
    ],
)
def test_post_filter(pre_filter_ran: bool, rejected: Status | None, expected: Status) -> None:
    """Nothing to deallocate: Unschedulable without a reason, and no preemption attempt;
    upstream's "not found" when its PreFilter state is missing."""
    pod = compile_pod(make_pod("foo").obj_())
    state = CycleState()
    table = build_table([make_node("n").obj_()])
    if pre_filter_ran:
        PLUGIN.pre_filter(state, pod, table)
    diagnosis = Diagnosis(total_nodes=1, pre_filter=rejected)
    result = PLUGIN.post_filter(state, pod, table, diagnosis, NodeCheck(lambda pod, row: None))
    assert (result.status, result.preemption, result.nominated_node) == (expected, False, "")


def test_message_says_why() -> None:
    """The reason names berth, DRA and the claims."""
    (message,) = rejected("gpu").reasons
    assert message == "berth does not allocate DRA devices yet: pod has resourceClaims [gpu]"


def test_claims_are_part_of_the_equivalence_class() -> None:
    """A pod with claims is never served the cached verdict of the same pod without them."""
    plain = compile_pod(make_pod("a").obj_())
    claiming = compile_pod(make_pod("b").resource_claim("gpu").obj_())
    assert plain.class_key != claiming.class_key


def test_enabled_by_default_before_default_preemption() -> None:
    """Registered, and in the default list where upstream puts it when DRA is on (GA and on
    by default since v1.34): just before DefaultPreemption, with weight 2."""
    names = [name for name, _ in plugins.DEFAULTS]
    assert "DynamicResources" in plugins.registry()
    assert names.index("DynamicResources") == names.index("DefaultPreemption") - 1
    assert names.index("DynamicResources") > names.index("InterPodAffinity")
    assert dict(plugins.DEFAULTS)["DynamicResources"] == 2


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_cycle_never_binds_a_pod_with_claims(batching: bool) -> None:
    """Through the default profile: the pod without claims is bound, the same pod with claims
    gets upstream's message with the PreFilter reason and is not bound; `explain` names
    DynamicResources for all nodes."""
    from tests.unit.test_cycle import World

    world = World([make_node(f"n{i}").obj_() for i in range(3)], batching=batching)
    for name in ("plain", "plain-2"):  # the second one takes the batched path, if enabled
        assert world.schedule(make_pod(name).scheduler(CYCLE).obj_()).node
    raw = make_pod("claims").scheduler(CYCLE).resource_claim("gpu", template="gpu-template")
    attempt = world.schedule(raw.obj_())
    (reason,) = rejected("gpu").reasons
    message = (
        f"0/3 nodes are available: {reason}. preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}."
    )
    assert attempt.node == ""
    assert attempt.status is not None and attempt.status.message == message
    assert ("failed", "default/claims", message, "Unschedulable") in world.reporter.events
    assert world.cache.node_of("uid-claims") is None
    await world.scheduler.drain()
    assert [pod for pod, _ in world.handle.calls] == ["default/plain", "default/plain-2"]

    diagnosis = attempt.diagnosis
    assert diagnosis is not None and diagnosis.pre_filter is not None
    view = {
        "pod": "default/claims",
        "queue": "unschedulable",
        "attempts": 1,
        "message": message,
        "total_nodes": diagnosis.total_nodes,
        "by_plugin": diagnosis.by_plugin,
        "pre_filter": {
            "plugin": diagnosis.pre_filter.plugin,
            "reason": diagnosis.pre_filter.message,
        },
    }
    assert render(view).splitlines()[-1].split() == ["DynamicResources", *reason.split(), "all"]


async def test_post_filter_is_no_preemption_attempt() -> None:
    """Through the default profile, a pod that fits nowhere counts one preemption attempt
    (DefaultPreemption's), not one per PostFilter plugin."""
    from tests.unit.test_cycle import World

    world = World([make_node("n0").obj_()])
    attempts: list[int | None] = []
    world.scheduler._on_preemption = attempts.append
    attempt = world.schedule(make_pod("big").scheduler(CYCLE).req(cpu="100").obj_())
    assert attempt.node == ""
    assert attempts == [None]
    await world.scheduler.drain()


def test_args_are_decoded_and_validated() -> None:
    """DynamicResourcesArgs (v1.37, every gate on): filterTimeout defaults to 10 s and must be
    >= 0, bindingTimeout to 600 s and must be >= 1 s. They are kept, unused: berth allocates no
    devices."""
    defaults = dynamic_resources.new({}, in_memory()).args
    assert (defaults.filter_timeout_ns, defaults.binding_timeout_ns) == (10 * 10**9, 600 * 10**9)
    set_ = dynamic_resources.new({"filterTimeout": "0s", "bindingTimeout": "1m"}, in_memory())
    assert (set_.args.filter_timeout_ns, set_.args.binding_timeout_ns) == (0, 60 * 10**9)
    with pytest.raises(ConfigError) as caught:
        dynamic_resources.new({"filterTimeout": "-1s", "bindingTimeout": "0s"}, in_memory())
    assert caught.value.errors == [
        'args.filterTimeout: Invalid value: "-1s": must be zero or positive',
        'args.bindingTimeout: Invalid value: "0s": must be at least 1 second',
    ]


GPU_CLASS = device_class("gpu.example.com", GPU)


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_cycle_never_binds_a_pod_needing_dra_devices(batching: bool) -> None:
    """Through the default profile, with a DeviceClass backing example.com/gpu: on nodes that
    do not list it the pod gets upstream's message shape with the reason counted per node,
    and `explain` names DynamicResources; once the class is gone the same pod gets
    NodeResourcesFit's reason (no verdict kept from before); a node whose device plugin lists
    the resource takes such a pod."""
    from tests.unit.test_cycle import World

    world = World([make_node(f"n{i}").obj_() for i in range(3)], batching=batching)
    world.handle.device_classes.apply(GPU_CLASS, deleted=False)
    for name in ("plain", "plain-2"):  # the second one takes the batched path, if enabled
        assert world.schedule(make_pod(name).scheduler(CYCLE).obj_()).node
    attempt = world.schedule(make_pod("gpu").scheduler(CYCLE).req(**{GPU: "1"}).obj_())
    reason = needs_dra(GPU, "gpu.example.com")
    message = (
        f"0/3 nodes are available: 3 {reason}."
        f" preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}."
    )
    assert message == (
        "0/3 nodes are available: 3 node(s) would need DRA devices for example.com/gpu"
        " (DeviceClass gpu.example.com), which berth does not allocate yet."
        " preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    assert attempt.node == ""
    assert attempt.status is not None and attempt.status.message == message
    assert ("failed", "default/gpu", message, "Unschedulable") in world.reporter.events
    diagnosis = attempt.diagnosis
    assert diagnosis is not None and diagnosis.by_plugin == {"DynamicResources": {reason: 3}}
    view: JSON = {"pod": "default/gpu", "message": message, "total_nodes": 3}
    view["by_plugin"] = diagnosis.by_plugin
    assert render(view).splitlines()[-1].split() == ["DynamicResources", *reason.split(), "3"]

    world.handle.device_classes.apply(GPU_CLASS, deleted=True)
    again = world.schedule(make_pod("gpu-2").scheduler(CYCLE).req(**{GPU: "1"}).obj_())
    assert again.status is not None
    assert again.status.message.startswith(f"0/3 nodes are available: 3 Insufficient {GPU}.")

    world.handle.device_classes.apply(GPU_CLASS, deleted=False)
    world.cache.upsert_node(compile_node(make_node("dp").capacity(**{GPU: "1"}).obj_()))
    assert world.schedule(make_pod("gpu-3").scheduler(CYCLE).req(**{GPU: "1"}).obj_()).node == "dp"
    await world.scheduler.drain()
    assert world.cache.node_of("uid-gpu") is None


def test_message_with_other_reasons() -> None:
    """Next to other reasons the count reads as upstream's do: sorted, comma-separated."""
    from tests.unit.test_cycle import World

    world = World(
        [
            make_node("n0").obj_(),
            make_node("n1").obj_(),
            make_node("dp").capacity(**{GPU: "1"}).obj_(),
        ]
    )
    world.handle.device_classes.apply(GPU_CLASS, deleted=False)
    world.bound(make_pod("user").req(**{GPU: "1"}).node("dp").obj_())
    attempt = world.schedule(make_pod("gpu").scheduler(CYCLE).req(**{GPU: "1"}).obj_())
    assert attempt.status is not None
    first = attempt.status.message.split(" preemption: ")[0]
    assert first == (
        "0/3 nodes are available: 1 Insufficient example.com/gpu, 2 node(s) would need DRA"
        " devices for example.com/gpu (DeviceClass gpu.example.com), which berth does not"
        " allocate yet."
    )


async def test_app_feeds_device_classes_to_the_plugins() -> None:
    """The app's DeviceClass informer fills the store the plugins read; a class added or
    renamed moves the pods NodeResourcesFit rejected whose request it now backs, and only
    those (its queueing hint)."""
    from scheduler.app import App
    from scheduler.config import API_VERSION, KIND, parse
    from scheduler.kube.client import Client, Credentials
    from scheduler.queue import UNSCHEDULABLE

    config = parse({"apiVersion": API_VERSION, "kind": KIND}, plugins.registry().keys())
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    app = App(config, client, port=0, host="127.0.0.1")
    try:
        (profile,) = app.profiles.values()
        stores = {
            p.name: getattr(p, "device_classes", None)
            for p in profile.filter
            if p.name in ("NodeResourcesFit", "DynamicResources")
        }
        assert stores == {name: app.handle.device_classes for name in stores}
        assert len(stores) == 2

        waiting = {}
        for name, resource in (("gpu", GPU), ("other", "example.com/other")):
            pod = compile_pod(make_pod(name).req(**{resource: "1"}).obj_())
            app.queue.add(pod)
            entry = app.queue.pop_nowait()
            assert entry is not None
            app.queue.requeue(entry, frozenset({"NodeResourcesFit"}))
            waiting[name] = entry
        assert {e.where for e in waiting.values()} == {UNSCHEDULABLE}

        app.handlers.on_device_class("ADDED", GPU_CLASS, None)
        assert app.handle.device_classes.device_class(GPU) == "gpu.example.com"
        assert waiting["gpu"].where != UNSCHEDULABLE
        assert waiting["other"].where == UNSCHEDULABLE

        app.handlers.on_device_class("DELETED", GPU_CLASS, None)
        assert app.handle.device_classes.device_class(GPU) is None
    finally:
        await app.event_client.close()
        await app.lease_client.close()
        await client.close()


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister less ResourceClaim and ResourceSlice events (berth does not
    watch them): Node/Add|UpdateNodeLabel|UpdateNodeAllocatable and DeviceClass/Add|Update
    without hints, TargetPod/UpdatePodGeneratedResourceClaim with one."""
    assert registered(PLUGIN) == [
        ("NodeAdd", False),
        ("NodeUpdateNodeAllocatable", False),
        ("NodeUpdateNodeLabel", False),
        ("TargetPodUpdatePodGeneratedResourceClaim", True),
        ("resource.k8s.io/DeviceClassAdd", False),
        ("resource.k8s.io/DeviceClassUpdate", False),
    ]


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        # Upstream's TestIsSchedulableAfterTargetPodUpdate: "complete" queues there once the
        # claim exists; berth allocates no devices, so a pod with resourceClaims stays where
        # it is (its other cases, missing or incomplete claims, skip in both).
        pytest.param(
            make_pod("my-pod").resource_claim("my-resource", template="my-template"),
            QueueingHint.SKIP,
            id="complete",
        ),
        # berth: a pod without claims (rejected for a DRA-backed extended resource) may now
        # pass, as upstream's hint says for a pod whose claims all exist.
        pytest.param(
            make_pod("my-pod").req(**{GPU: "1"}), QueueingHint.QUEUE, id="no-resource-claims"
        ),
    ],
)
def test_is_schedulable_after_target_pod_update(
    incoming: PodBuilder, expected: QueueingHint
) -> None:
    """The pod's generated claims showing up in its status help only a pod berth could
    place: one without resourceClaims."""
    label = "TargetPodUpdatePodGeneratedResourceClaim"
    assert run_hint(PLUGIN, label, incoming, incoming, incoming) is expected
