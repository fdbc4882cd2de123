"""DynamicResources: a pod's ResourceClaims are allocated on the node it gets (the allocator
itself is tested in tests/unit/dra), with upstream's messages where they cannot be; the nodes
that could give a pod an extended resource a DeviceClass backs only through DRA are rejected;
other pods are skipped. Case names follow upstream's dynamicresources_test.go."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import plugins
from plugins import dynamic_resources
from scheduler.decode import ConfigError
from scheduler.dra import extended
from scheduler.dra.claims import ClaimStore
from scheduler.dra.slices import SliceStore
from scheduler.framework import (
    RESOURCE_CLAIM,
    SKIP,
    ActionType,
    ClusterEvent,
    Code,
    CycleState,
    DeviceClassStore,
    Diagnosis,
    NodeCheck,
    PluginError,
    QueueingHint,
    Status,
)
from scheduler.handle import in_memory
from scheduler.harness import fakedra
from scheduler.model import compile_node, compile_pod
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, filter_reasons, registered, run_hint, unresolvable

JSON = dict[str, Any]
PLUGIN = dynamic_resources.new({}, in_memory())
CYCLE = "berth"  # the schedulerName of tests.unit.test_cycle's profile
NOT_HELPFUL = "Preemption is not helpful for scheduling"


def rejected(message: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), "DynamicResources")


def not_found(claim: str) -> Status:
    return rejected(f'resourceclaim.resource.k8s.io "{claim}" not found')


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
            not_found("my-pod-my-resource"),
            id="claim-reference",
        ),
        pytest.param(
            make_pod("my-pod").resource_claim("my-resource", template="my-template").obj_(),
            rejected('pod "default/my-pod": ResourceClaim not created yet'),
            id="claim-template",
        ),
        pytest.param(
            make_pod("my-pod")
            .resource_claim("my-resource", claim="my-pod-my-resource")
            .resource_claim("my-resource-2", claim="my-pod-my-resource-2")
            .obj_(),
            not_found("my-pod-my-resource"),
            id="podWithTwoClaimNames",
        ),
        pytest.param(without_claims(), SKIP, id="berth: an empty resourceClaims list"),
    ],
)
def test_pre_filter(incoming: JSON, expected: Status) -> None:
    """Skip without claims; UnschedulableAndUnresolvable with upstream's message while a
    claim does not exist (none do here)."""
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
    """A node without the resource must allocate DRA devices for it; no slice publishes any
    here, so the allocation fails there (`resource`, `device_class`: for the reader)."""
    return dynamic_resources.CANNOT_ALLOCATE


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
            not_found("my-resource"),
            id="berth: a missing claim is reported first",
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
            # One reason per node: one allocation for all of them.
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
    """A node whose allocatable does not list a backed request (or has none of it) must
    allocate DRA devices for it: with no devices published, "cannot allocate all claims". A node
    that lists it serves it through its device plugin and passes (NodeResourcesFit checks the
    amount)."""
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
    assert not plugin.row_local_for(compile_pod(make_pod("p").resource_claim("gpu").obj_()))


UNRESOLVABLE = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("pod affinity terms conflict",))


@pytest.mark.parametrize(
    ("pre_filter_ran", "rejected", "expected"),
    [
        pytest.param(True, None, Status(Code.UNSCHEDULABLE), id="empty"),
        pytest.param(
            True,
            not_found("gpu"),
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


def claim_obj(name: str, namespace: str = "default", owner: str = "", **spec: Any) -> JSON:
    """A ResourceClaim as the API server shows it (uid, resourceVersion; `owner`: the pod
    uid a template's claim belongs to)."""
    obj = fakedra.claim(name, **spec)
    obj["metadata"].update(namespace=namespace, uid=f"claim-{name}", resourceVersion="1")
    if owner:
        obj["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner, "controller": True}
        ]
    return obj


def gpu_world(nodes: int = 2, gpus: int = 8, **world: Any) -> Any:
    """A World whose nodes each publish `gpus` fake GPUs, with the fake driver's class."""
    from tests.unit.test_cycle import World

    w = World([make_node(f"n{i}").obj_() for i in range(nodes)], **world)
    for i in range(nodes):
        w.handle.resource_slices.apply(fakedra.gpu_slice(f"n{i}", count=gpus), deleted=False)
    w.handle.device_classes.apply(fakedra.device_class(), deleted=False)
    return w


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_cycle_allocates_claims_and_never_gives_a_device_twice(batching: bool) -> None:
    """2 nodes x 8 GPUs, pods claiming 3 each: 4 are placed (two per node), each claim
    allocated on the pod's node and written with the pod in reservedFor; no device twice;
    the 5th gets upstream's message and is not bound."""
    world = gpu_world(batching=batching)
    claims = world.handle.resource_claims
    for i in range(5):
        claims.apply(claim_obj(f"c{i}", count=3), deleted=False)
    placed = {}
    for i in range(4):
        raw = make_pod(f"p{i}").scheduler(CYCLE).resource_claim("gpu", claim=f"c{i}").obj_()
        attempt = world.schedule(raw)
        assert attempt.node, attempt.status
        placed[f"c{i}"] = attempt.node
    last = world.schedule(make_pod("p4").scheduler(CYCLE).resource_claim("gpu", claim="c4").obj_())
    assert last.node == ""
    assert last.status is not None and last.status.message == (
        "0/2 nodes are available: 2 cannot allocate all claims."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}."
    )
    await world.scheduler.drain()
    assert sorted(placed.values()) == ["n0", "n0", "n1", "n1"]
    writes = world.handle.claims.claim_writes
    assert sorted(w[1] for w in writes) == [f"default/c{i}" for i in range(4)]
    devices = [
        (claim, r["pool"], r["device"])
        for claim in placed
        for r in claims.pending[claims.get("default", claim).uid]["devices"]["results"]
    ]
    assert len({(pool, dev) for _, pool, dev in devices}) == 12  # no device twice
    assert all(pool == placed[claim] for claim, pool, _ in devices)  # on the pod's node


async def test_claim_written_back_by_the_watch_keeps_its_devices() -> None:
    """After PreBind the claim's devices stay taken until the informer shows the write,
    and then because the claim is allocated; a claim deleted frees them."""
    world = gpu_world(nodes=1)
    claims = world.handle.resource_claims
    claims.apply(claim_obj("big", count=8), deleted=False)
    claims.apply(claim_obj("one", count=1), deleted=False)
    first = world.schedule(make_pod("a").scheduler(CYCLE).resource_claim("g", claim="big").obj_())
    assert first.node == "n0"
    await world.scheduler.drain()
    written = world.handle.claims.claim_writes
    assert written == [("reserve", "default/big", "uid-a")]
    second = world.schedule(make_pod("b").scheduler(CYCLE).resource_claim("g", claim="one").obj_())
    assert second.node == ""
    # The watch shows the claim as PreBind wrote it: allocated, so still taken.
    obj = claim_obj("big", count=8)
    obj["metadata"]["resourceVersion"] = "2"
    obj["status"] = {"allocation": claims.pending["claim-big"], "reservedFor": [{"uid": "uid-a"}]}
    claims.apply(obj, deleted=False)
    assert not claims.pending and len(claims.in_use()) == 8
    claims.apply(obj, deleted=True)
    assert claims.in_use() == set()


async def test_shared_claim_joins_the_allocation_on_its_node() -> None:
    """A claim already allocated (on n1) is used where its allocation says, and the second
    pod is only added to reservedFor (no new allocation)."""
    world = gpu_world()
    claims = world.handle.resource_claims
    obj = claim_obj("shared", count=1)
    obj["status"] = {
        "allocation": {
            "devices": {
                "results": [
                    {"request": "gpu", "driver": fakedra.DRIVER, "pool": "n1", "device": "gpu-0"}
                ]
            },
            "nodeSelector": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
                ]
            },
        },
        "reservedFor": [{"resource": "pods", "name": "other", "uid": "uid-other"}],
    }
    claims.apply(obj, deleted=False)
    raw = make_pod("b").scheduler(CYCLE).resource_claim("g", claim="shared").obj_()
    attempt = world.schedule(raw)
    assert attempt.node == "n1"
    await world.scheduler.drain()
    assert world.handle.claims.claim_writes == [("reserve", "default/shared", "uid-b")]
    assert "claim-shared" not in claims.pending


async def test_template_claim_gates_the_pod_until_it_exists() -> None:
    """A claim from a template resolves through the pod's status: PreEnqueue keeps the pod
    out of the active queue, saying why, until the claim is recorded and exists; the claim's
    Add then lets it in and it is placed."""
    world = gpu_world(nodes=1)
    raw = make_pod("p").scheduler(CYCLE).resource_claim("gpu", template="t").obj_()
    world.queue.add(compile_pod(raw))
    entry = world.queue.pods["uid-p"]
    assert entry.gate_message == 'pod "default/p": ResourceClaim not created yet'
    generated = [{"name": "gpu", "resourceClaimName": "gen-1"}]
    world.queue.update(compile_pod({**raw, "status": {"resourceClaimStatuses": generated}}))
    assert entry.gate_message == 'resourceclaim.resource.k8s.io "gen-1" not found'
    before, after = world.handle.resource_claims.apply(
        claim_obj("gen-1", owner="uid-p"), deleted=False
    )
    world.queue.on_event(ClusterEvent(RESOURCE_CLAIM, ActionType.ADD), before, after)
    popped = world.queue.pop_nowait()
    assert popped is not None and popped.pod.name == "p"
    assert world.scheduler.schedule_one(popped).node == "n0"
    await world.scheduler.drain()


def test_template_claim_must_belong_to_the_pod() -> None:
    """A generated claim owned by another pod: upstream's IsForPod message."""
    store = ClaimStore()
    store.apply(claim_obj("gen-1", owner="someone-else"), deleted=False)
    plugin = dynamic_resources.new({}, in_memory(resource_claims=store))
    raw = make_pod("p").resource_claim("gpu", template="t").obj_()
    raw["status"] = {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "gen-1"}]}
    assert plugin.pre_enqueue(compile_pod(raw)) == rejected(
        "ResourceClaim default/gen-1 was not created for Pod default/p (Pod is not owner)"
    )


async def test_a_selector_error_is_an_error_for_the_cycle() -> None:
    """A CEL runtime error is no misfit: the cycle ends with an error (the pod backs off)."""
    world = gpu_world(nodes=1)
    bad = 'device.attributes["gpu.example.com"].nosuch == 1'
    world.handle.resource_claims.apply(claim_obj("c", selectors=[bad]), deleted=False)
    attempt = world.schedule(make_pod("p").scheduler(CYCLE).resource_claim("g", claim="c").obj_())
    assert attempt.status is not None and attempt.status.code is Code.ERROR
    assert attempt.status.message == (
        'running "DynamicResources" filter plugin: claim default/c: selector #0 on device'
        " gpu.example.com/n0/gpu-0: CEL runtime error: no such key: nosuch. consider using CEL"
        " optional chaining (.? followed by orValue()) or guarding the check with has() for"
        " optional fields"
    )


async def test_missing_class_and_allocation_in_flight() -> None:
    """PreFilter: a request naming no existing class, and a claim whose allocation another
    pod's binding is still writing, reject the pod everywhere with upstream's messages."""
    world = gpu_world(nodes=1)
    claims = world.handle.resource_claims
    claims.apply(claim_obj("nocls", device_class="missing"), deleted=False)
    attempt = world.schedule(
        make_pod("p").scheduler(CYCLE).resource_claim("g", claim="nocls").obj_()
    )
    assert attempt.status is not None
    assert "request gpu: device class missing does not exist" in attempt.status.message
    claims.apply(claim_obj("busy"), deleted=False)
    claims.assume(claims.get("default", "busy"), {"devices": {"results": []}})  # type: ignore[arg-type]
    attempt = world.schedule(
        make_pod("q").scheduler(CYCLE).resource_claim("g", claim="busy").obj_()
    )
    assert attempt.status is not None
    assert "resource claim default/busy is in the process of being allocated" in (
        attempt.status.message
    )


async def test_first_available_scores_the_earlier_alternative() -> None:
    """firstAvailable: a node that can give the first alternative scores higher."""
    world = gpu_world()
    world.handle.resource_slices.apply(
        fakedra.gpu_slice("n1", count=8, model="h100"), deleted=False
    )
    obj = claim_obj("alt")
    obj["spec"]["devices"]["requests"] = [
        {
            "name": "gpu",
            "firstAvailable": [
                {
                    "name": "h100",
                    "deviceClassName": fakedra.DRIVER,
                    "selectors": [
                        {
                            "cel": {
                                "expression": 'device.attributes["gpu.example.com"].model == "h100"'
                            }
                        }
                    ],
                },
                {"name": "any", "deviceClassName": fakedra.DRIVER},
            ],
        }
    ]
    world.handle.resource_claims.apply(obj, deleted=False)
    attempt = world.schedule(make_pod("p").scheduler(CYCLE).resource_claim("g", claim="alt").obj_())
    assert attempt.node == "n1"


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
    >= 0, bindingTimeout to 600 s and must be >= 1 s. filterTimeout bounds the allocation
    search; bindingTimeout has nothing to wait for (no device with binding conditions is
    allocated)."""
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
async def test_cycle_allocates_dra_backed_extended_resources(batching: bool) -> None:
    """A class with extendedResourceName example.com/gpu over the fake GPUs: a pod asking for
    `example.com/gpu: 3` gets its devices through a claim PreBind creates (owned by the pod),
    allocates and records in the pod's status; when no node has 3 free, "cannot allocate all
    claims"; a node whose device plugin lists the resource takes such a pod without DRA."""
    world = gpu_world(nodes=2, gpus=4, batching=batching)
    world.handle.device_classes.apply(
        fakedra.device_class(extended_resource_name=GPU), deleted=False
    )
    for name in ("plain", "plain-2"):  # the second one takes the batched path, if enabled
        assert world.schedule(make_pod(name).scheduler(CYCLE).obj_()).node
    first = world.schedule(make_pod("gpu").scheduler(CYCLE).req(**{GPU: "3"}).obj_())
    assert first.node in ("n0", "n1")
    await world.scheduler.drain()
    writes = world.handle.claims.claim_writes
    created = "default/gpu-extended-resources-00001"
    assert writes == [
        ("create", created, ""),
        ("reserve", created, "uid-gpu"),
        ("extended-status", "gpu-extended-resources-00001", "uid-gpu"),
    ]
    claims = world.handle.resource_claims
    assert len(claims.in_use()) == 3  # held while the informer has not shown the write
    other = "n1" if first.node == "n0" else "n0"
    second = world.schedule(make_pod("gpu-2").scheduler(CYCLE).req(**{GPU: "3"}).obj_())
    assert second.node == other
    third = world.schedule(make_pod("gpu-3").scheduler(CYCLE).req(**{GPU: "3"}).obj_())
    assert third.status is not None
    assert third.status.message == (
        "0/2 nodes are available: 2 cannot allocate all claims."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}."
    )
    world.cache.upsert_node(compile_node(make_node("dp").capacity(**{GPU: "4"}).obj_()))
    assert world.schedule(make_pod("gpu-4").scheduler(CYCLE).req(**{GPU: "3"}).obj_()).node == "dp"
    await world.scheduler.drain()


def test_extended_requests_per_container() -> None:
    """upstream's createRequestsAndMappings: one request per container and resource, named
    container-<i>-request-<j>; a non-sidecar init container reuses the later containers'
    devices when they are enough."""
    spec = {
        "initContainers": [{"name": "init", "resources": {"requests": {GPU: "1"}}}],
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1", GPU: "2"}}},
            {"name": "b", "resources": {"requests": {GPU: "1"}}},
        ],
    }
    requests, mappings = extended.requests_and_mappings(spec, {GPU: "gpu.example.com"})
    assert [(r["name"], r["exactly"]["count"]) for r in requests] == [
        ("container-1-request-1", 2),
        ("container-2-request-0", 1),
    ]
    assert mappings == [
        {"containerName": "a", "resourceName": GPU, "requestName": "container-1-request-1"},
        {"containerName": "b", "resourceName": GPU, "requestName": "container-2-request-0"},
        {"containerName": "init", "resourceName": GPU, "requestName": "container-1-request-1"},
    ]


async def test_a_stale_extended_claim_is_deleted_first() -> None:
    """A claim for the pod's extended resources left by an earlier attempt: the nodes that
    would need DRA fail ("cannot schedule extended resource claim") and PostFilter deletes it
    ("deletion of ResourceClaim completed")."""
    world = gpu_world(nodes=1)
    world.handle.device_classes.apply(
        fakedra.device_class(extended_resource_name=GPU), deleted=False
    )
    stale = claim_obj("gpu-extended-resources-x", owner="uid-gpu", count=1)
    stale["metadata"]["annotations"] = {"resource.kubernetes.io/extended-resource-claim": "true"}
    world.handle.resource_claims.apply(stale, deleted=False)
    attempt = world.schedule(make_pod("gpu").scheduler(CYCLE).req(**{GPU: "1"}).obj_())
    assert attempt.status is not None
    assert attempt.status.message == (
        "0/1 nodes are available: 1 cannot schedule extended resource claim."
        " deletion of ResourceClaim completed,"
        f" preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}."
    )
    await world.scheduler.drain()
    assert world.handle.claims.claim_writes == [("delete", "default/gpu-extended-resources-x", "")]


async def test_app_feeds_device_classes_to_the_plugins() -> None:
    """The app's DeviceClass informer fills the store the plugins read; a class added or
    renamed moves the pods NodeResourcesFit rejected whose request it now backs, and only
    those (its queueing hint)."""
    from scheduler.app import App
    from scheduler.config import API_VERSION, KIND, parse
    from scheduler.kube.client import Client, Credentials
    from scheduler.queue import UNSCHEDULABLE
    from scheduler.serving import ServingOptions

    config = parse({"apiVersion": API_VERSION, "kind": KIND}, plugins.registry().keys())
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    app = App(config, client, serving=ServingOptions.local())
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
    """Upstream's EventsToRegister: Node/Add|UpdateNodeLabel|UpdateNodeAllocatable, DeviceClass
    and ResourceSlice Add|Update without hints; ResourceClaim Add|Update|Delete and
    TargetPod/UpdatePodGeneratedResourceClaim with one."""
    assert sorted(registered(PLUGIN)) == [
        ("NodeAdd", False),
        ("NodeUpdateNodeAllocatable", False),
        ("NodeUpdateNodeLabel", False),
        ("TargetPodUpdatePodGeneratedResourceClaim", True),
        ("resource.k8s.io/DeviceClassAdd", False),
        ("resource.k8s.io/DeviceClassUpdate", False),
        ("resource.k8s.io/ResourceClaimAdd", True),
        ("resource.k8s.io/ResourceClaimDelete", True),
        ("resource.k8s.io/ResourceClaimUpdate", True),
        ("resource.k8s.io/ResourceSliceAdd", False),
        ("resource.k8s.io/ResourceSliceUpdate", False),
    ]


def test_is_schedulable_after_target_pod_update() -> None:
    """Upstream's TestIsSchedulableAfterTargetPodUpdate: queue once every claim of the pod
    exists, skip while one is missing."""
    label = "TargetPodUpdatePodGeneratedResourceClaim"
    store = ClaimStore()
    plugin = dynamic_resources.new({}, in_memory(resource_claims=store))
    incomplete = make_pod("my-pod").resource_claim("my-resource", template="my-template")
    assert run_hint(plugin, label, incomplete, incomplete, incomplete) is QueueingHint.SKIP
    complete = make_pod("my-pod").resource_claim("my-resource", template="my-template")
    complete.obj["status"] = {
        "resourceClaimStatuses": [{"name": "my-resource", "resourceClaimName": "gen"}]
    }
    assert run_hint(plugin, label, complete, incomplete, complete) is QueueingHint.SKIP
    store.apply(claim_obj("gen", owner="uid-my-pod"), deleted=False)
    assert run_hint(plugin, label, complete, incomplete, complete) is QueueingHint.QUEUE
    plain = make_pod("my-pod").req(**{GPU: "1"})
    assert run_hint(plugin, label, plain, plain, plain) is QueueingHint.QUEUE


def test_is_schedulable_after_claim_change() -> None:
    """Upstream's isSchedulableAfterClaimChange: the pod's own claim created or its status
    changed queues it; a deallocation anywhere queues everyone; the rest skips."""
    store = ClaimStore()
    plugin = dynamic_resources.new({}, in_memory(resource_claims=store))
    pod = compile_pod(make_pod("p").resource_claim("g", claim="mine").obj_())
    _, mine = store.apply(claim_obj("mine"), deleted=False)
    _, other = store.apply(claim_obj("other"), deleted=False)
    hint = plugin.is_schedulable_after_claim_change
    assert hint(pod, None, mine) is QueueingHint.QUEUE
    assert hint(pod, None, other) is QueueingHint.SKIP
    assert hint(pod, mine, mine) is QueueingHint.SKIP
    allocated_obj = claim_obj("other")
    allocated_obj["status"] = {"allocation": {"devices": {"results": []}}}
    _, allocated = store.apply(allocated_obj, deleted=False)
    assert hint(pod, other, allocated) is QueueingHint.SKIP
    assert hint(pod, allocated, other) is QueueingHint.QUEUE  # deallocated
    assert hint(pod, allocated, None) is QueueingHint.QUEUE  # deleted while allocated
    assert hint(pod, other, None) is QueueingHint.SKIP


def broken_pool_on_n0(world: Any) -> None:
    """n0's only pool names gpu-0 in two slices (invalid); the claim `c` wants 1 GPU."""
    for part in ("a", "b"):
        body = fakedra.gpu_slice("n0", count=1, pool="broken", name=f"broken-{part}")
        body["spec"]["pool"]["resourceSliceCount"] = 2
        world.handle.resource_slices.apply(body, deleted=False)
    world.handle.resource_slices.apply(fakedra.gpu_slice("n0", count=0), deleted=False)
    world.handle.resource_claims.apply(claim_obj("c", count=1), deleted=False)


async def test_an_invalid_pool_fails_only_its_node() -> None:
    """A pool with a device name twice (two slices) on n0: n0 fails with upstream's
    "invalid resource pools were encountered", the pod goes to n1."""
    world = gpu_world(nodes=2)
    broken_pool_on_n0(world)
    attempt = world.schedule(make_pod("p").scheduler(CYCLE).resource_claim("g", claim="c").obj_())
    assert attempt.node == "n1"
    await world.scheduler.drain()
    alone = gpu_world(nodes=1)
    broken_pool_on_n0(alone)
    failed = alone.schedule(make_pod("p").scheduler(CYCLE).resource_claim("g", claim="c").obj_())
    assert failed.status is not None and failed.status.message.startswith(
        "0/1 nodes are available: 1 invalid resource pools were encountered."
    )


def test_a_search_past_filter_timeout_is_an_error() -> None:
    """filterTimeout bounds the allocation search: past it, upstream's error for the node
    (the pod backs off) instead of blocking the scheduler."""
    store = ClaimStore()
    slices = SliceStore()
    slices.apply(fakedra.gpu_slice("n0", count=64), deleted=False)
    classes = DeviceClassStore()
    classes.apply(fakedra.device_class(), deleted=False)
    for i in range(2):
        store.apply(claim_obj(f"c{i}", count=32), deleted=False)
    handle = in_memory(resource_claims=store, resource_slices=slices, device_classes=classes)
    plugin = dynamic_resources.new({"filterTimeout": "1ns"}, handle)
    raw = make_pod("p").resource_claim("a", claim="c0").resource_claim("b", claim="c1").obj_()
    pod = compile_pod(raw)
    table = build_table([make_node("n0").obj_()])
    state = CycleState()
    assert plugin.pre_filter(state, pod, table) is None
    with pytest.raises(PluginError) as caught:
        plugin.filter(state, pod, table, np.arange(1, dtype=np.int64))
    assert caught.value.status.message == (
        'running "DynamicResources" filter plugin: node n0: timed out trying to allocate devices'
    )
