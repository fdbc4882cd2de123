"""DynamicResources: pods with resourceClaims are rejected at PreFilter until berth allocates
devices; the others are skipped. Case names follow upstream's dynamicresources_test.go."""

from __future__ import annotations

from typing import Any, cast

import pytest

import plugins
from plugins import dynamic_resources
from scheduler.explain import render
from scheduler.framework import SKIP, Code, CycleState, Diagnosis, Handle, Status
from scheduler.model import compile_pod
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table

JSON = dict[str, Any]
PLUGIN = dynamic_resources.new({}, cast(Handle, None))
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
            # berth watches no DeviceClasses: an extended resource is NodeResourcesFit's.
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
    result = PLUGIN.post_filter(state, pod, table, diagnosis, lambda pod, row: None)
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


def test_args_are_not_read() -> None:
    """DynamicResourcesArgs are accepted unread: v1.37 defaults filterTimeout (10 s) and
    bindingTimeout (600 s) and refuses a negative filterTimeout or a bindingTimeout under 1 s.
    Pins today's behaviour; changes with #12."""
    args = {"filterTimeout": "-1s", "bindingTimeout": "0s"}
    plugin = dynamic_resources.new(args, cast(Handle, None))
    assert isinstance(plugin, dynamic_resources.DynamicResources)
