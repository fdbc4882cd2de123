"""VolumeBinding: PreFilter and Filter with the cases of upstream's volume_binding_test.go
(TestVolumeBinding) and binder_test.go's static matching, plus the volume store and PreBind."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from plugins import volume_binding
from plugins.volume_binding import (
    ERR_BIND_CONFLICT,
    ERR_NODE_CONFLICT,
    ERR_NOT_ENOUGH_SPACE,
    ERR_PV_NOT_EXIST,
    ERR_UNBOUND_IMMEDIATE,
)
from scheduler.decode import ConfigError
from scheduler.framework import SKIP, Code, CycleState, QueueingHint, Status, VolumeStore
from scheduler.handle import ClusterHandle, in_memory
from scheduler.model import InvalidObject, compile_node, compile_pod
from scheduler.pluginargs import DEFAULT_SHAPE, VolumeBindingArgs
from scheduler.volumes import CSI_DRIVER, CSI_NODE, CSI_STORAGE_CAPACITY, PV, PVC
from tests.builders import make_node
from tests.unit.plugins.volume_builders import (
    OTHER_VOLUMES,
    capacity,
    claim_volume,
    csi_driver,
    csi_node,
    csi_volume,
    ephemeral_volume,
    hostname_is,
    pv,
    pvc,
    record,
    storage_class,
    volume_handle,
    with_volumes,
)
from tests.unit.tables import build_table, filter_reasons, hint_for, registered, unresolvable

JSON = dict[str, Any]

WFFC = storage_class("wait")
IMMEDIATE = storage_class("immediate", mode="Immediate")
NODES = [
    make_node("node-a").label("foo", "bar").obj_(),
    make_node("node-b").label("foo", "barbar").obj_(),
]
FOO_BAR = [{"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}]}]


def plugin(*objects: JSON) -> volume_binding.VolumeBinding:
    return volume_binding.new({}, volume_handle(*objects))


def pre_filter(objects: list[JSON], pod: JSON) -> Status | None:
    return plugin(*objects).pre_filter(CycleState(), compile_pod(pod), build_table(NODES))


@pytest.mark.parametrize(
    ("objects", "incoming", "message"),
    [
        pytest.param(
            [],
            with_volumes("p", claim_volume("pvc-a")),
            'persistentvolumeclaim "pvc-a" not found',
            id="pvc-does-not-exist",
        ),
        pytest.param(
            [pvc("pvc-a", volume="pv-a", bound=True), pv("pv-a", claim="pvc-a")],
            with_volumes("p", claim_volume("pvc-a"), claim_volume("pvc-b")),
            'persistentvolumeclaim "pvc-b" not found',
            id="part-of-pvcs-do-not-exist",
        ),
        pytest.param(
            [IMMEDIATE, pvc("pvc-a", storage_class="immediate")],
            with_volumes("p", claim_volume("pvc-a")),
            ERR_UNBOUND_IMMEDIATE,
            id="immediate-claims-not-bound",
        ),
        pytest.param(
            [pvc("pvc-a")],
            with_volumes("p", claim_volume("pvc-a")),
            ERR_UNBOUND_IMMEDIATE,
            id="claim-without-class-is-immediate",
        ),
        pytest.param(
            [pvc("pvc-a", storage_class="gone")],
            with_volumes("p", claim_volume("pvc-a")),
            ERR_UNBOUND_IMMEDIATE,
            id="claim-with-missing-class-is-immediate",
        ),
        pytest.param(
            [WFFC, pvc("pvc-a", storage_class="wait", volume="pv-a")],
            with_volumes("p", claim_volume("pvc-a")),
            ERR_UNBOUND_IMMEDIATE,
            id="prebound-claim-waits-like-immediate",
        ),
        pytest.param(
            [IMMEDIATE, pvc("pvc-a", storage_class="immediate"), pvc("pvc-b")],
            with_volumes("p", claim_volume("pvc-a"), claim_volume("pvc-c")),
            'persistentvolumeclaim "pvc-c" not found',
            id="missing-claims-reported-before-unbound-ones",
        ),
        pytest.param(
            [pvc("pvc-a", volume="pv-a", phase="Lost")],
            with_volumes("p", claim_volume("pvc-a")),
            'persistentvolumeclaim "pvc-a" bound to non-existent persistentvolume "pv-a"',
            id="claim-lost",
        ),
        pytest.param(
            [pvc("pvc-a", volume="pv-a", bound=True, deleting=True), pv("pv-a", claim="pvc-a")],
            with_volumes("p", claim_volume("pvc-a")),
            'persistentvolumeclaim "pvc-a" is being deleted',
            id="claim-being-deleted",
        ),
        pytest.param(
            [],
            with_volumes("p", ephemeral_volume("data")),
            'waiting for ephemeral volume controller to create the persistentvolumeclaim "p-data"',
            id="ephemeral-claim-not-created-yet",
        ),
        pytest.param(
            [pvc("p-data", volume="pv-a", bound=True, owner="someone-else")],
            with_volumes("p", ephemeral_volume("data")),
            "PVC default/p-data was not created for pod default/p (pod is not owner)",
            id="ephemeral-claim-of-another-pod",
        ),
    ],
)
def test_pre_filter_rejects_pod(objects: list[JSON], incoming: JSON, message: str) -> None:
    """Claims that are missing, lost, deleted or unbound-immediate reject the pod everywhere;
    preemption cannot help (UnschedulableAndUnresolvable)."""
    status = pre_filter(objects, incoming)
    assert status == Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), "VolumeBinding")


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param(with_volumes("p"), id="no-volumes"),
        pytest.param(with_volumes("p", *OTHER_VOLUMES), id="only-non-claim-volumes"),
    ],
)
def test_pre_filter_skips_pods_without_claims(incoming: JSON) -> None:
    status = pre_filter([], incoming)
    assert status is not None and status.code is Code.SKIP


def test_class_without_binding_mode_is_an_error() -> None:
    objects = [storage_class("odd", mode=None), pvc("pvc-a", storage_class="odd")]
    status = pre_filter(objects, with_volumes("p", claim_volume("pvc-a")))
    assert status is not None and status.code is Code.ERROR
    assert status.message == 'VolumeBindingMode not set for StorageClass "odd"'


@pytest.mark.parametrize(
    ("objects", "incoming", "expected"),
    [
        pytest.param(
            [pvc("pvc-a", volume="pv-a", bound=True), pv("pv-a", claim="pvc-a", phase="Bound")],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": []},
            id="all-bound",
        ),
        pytest.param(
            [pvc("pvc-a", volume="pv-a", bound=True), pv("pv-a", node_affinity=FOO_BAR)],
            with_volumes("p", claim_volume("pvc-a"), *OTHER_VOLUMES),
            {"node-a": [], "node-b": [ERR_NODE_CONFLICT]},
            id="bound-local-volume-respects-node-affinity",
        ),
        pytest.param(
            [pvc("pvc-a", volume="pv-a", phase="Bound"), pv("pv-a", node_affinity=FOO_BAR)],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": [ERR_NODE_CONFLICT]},
            id="phase-bound-without-annotation-counts-as-bound",
        ),
        pytest.param(
            [pvc("pvc-a", volume="pv-a", bound=True), pv("pv-a", node_affinity=[])],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_NODE_CONFLICT], "node-b": [ERR_NODE_CONFLICT]},
            id="empty-required-terms-match-no-node",
        ),
        pytest.param(
            [WFFC, pvc("pvc-a", storage_class="wait")],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": [ERR_BIND_CONFLICT]},
            id="unbound-claims-no-matches",
        ),
        pytest.param(
            [
                WFFC,
                pvc("pvc-a", volume="pv-a", bound=True),
                pv("pv-a", node_affinity=FOO_BAR),
                pvc("pvc-b", storage_class="wait"),
            ],
            with_volumes("p", claim_volume("pvc-a"), claim_volume("pvc-b")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": [ERR_NODE_CONFLICT, ERR_BIND_CONFLICT]},
            id="bound-and-unbound-unsatisfied",
        ),
        pytest.param(
            [pvc("pvc-a", volume="pv-a", bound=True)],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_PV_NOT_EXIST], "node-b": [ERR_PV_NOT_EXIST]},
            id="pv-not-found",
        ),
        pytest.param(
            [
                pvc("pvc-a", volume="pv-a", bound=True),
                pv("pv-a", node_affinity=FOO_BAR),
                pvc("pvc-b", volume="pv-b", bound=True),
            ],
            with_volumes("p", claim_volume("pvc-a"), claim_volume("pvc-b")),
            # upstream's checkBoundClaims stops at pvc-a on node-b, before seeing pv-b missing
            {"node-a": [ERR_PV_NOT_EXIST], "node-b": [ERR_NODE_CONFLICT]},
            id="first-failing-bound-claim-decides-conflict-then-missing",
        ),
        pytest.param(
            [
                pvc("pvc-a", volume="pv-a", bound=True),
                pv("pv-a", node_affinity=FOO_BAR),
                pvc("pvc-b", volume="pv-b", bound=True),
            ],
            with_volumes("p", claim_volume("pvc-b"), claim_volume("pvc-a")),
            {"node-a": [ERR_PV_NOT_EXIST], "node-b": [ERR_PV_NOT_EXIST]},
            id="first-failing-bound-claim-decides-missing-then-conflict",
        ),
        pytest.param(
            [WFFC, pvc("pvc-a", storage_class="wait"), pv("pv-x", storage_class="wait")],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": []},
            id="unbound-claim-matches-available-pv",
        ),
        pytest.param(
            [
                WFFC,
                pvc("pvc-a", storage_class="wait"),
                pv("pv-x", storage_class="wait", node_affinity=hostname_is("node-b")),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": []},
            id="unbound-claim-matches-local-pv-on-its-node",
        ),
        pytest.param(
            [
                WFFC,
                pvc("pvc-a", storage_class="wait", request="5Gi"),
                pv("small", storage_class="wait", capacity="1Gi"),
                pv("other-class", storage_class="fast", capacity="10Gi"),
                pv("taken", storage_class="wait", capacity="10Gi", claim="someone"),
                pv("released", storage_class="wait", capacity="10Gi", phase="Released"),
                pv("rwx-only", storage_class="wait", capacity="10Gi", modes=("ReadWriteMany",)),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": [ERR_BIND_CONFLICT]},
            id="unbound-claim-finds-no-fitting-pv",
        ),
        pytest.param(
            [
                WFFC,
                pvc("pvc-a", storage_class="wait", selector={"matchLabels": {"tier": "gold"}}),
                pv("bronze", storage_class="wait", labels={"tier": "bronze"}),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": [ERR_BIND_CONFLICT]},
            id="claim-selector-must-match-pv-labels",
        ),
        pytest.param(
            [
                WFFC,
                pvc("pvc-a", storage_class="wait"),
                pvc("pvc-b", storage_class="wait"),
                pv("only-one", storage_class="wait", node_affinity=hostname_is("node-a")),
                pv("second", storage_class="wait", node_affinity=hostname_is("node-a", "node-b")),
            ],
            with_volumes("p", claim_volume("pvc-a"), claim_volume("pvc-b")),
            {"node-a": [], "node-b": [ERR_BIND_CONFLICT]},
            id="two-claims-need-two-pvs-on-the-node",
        ),
        pytest.param(
            [
                WFFC,
                pvc("pvc-a", storage_class="wait"),
                pv(
                    "mine",
                    storage_class="wait",
                    claim="pvc-a",
                    phase="Bound",
                    node_affinity=hostname_is("node-b"),
                ),
                pv("anyone", storage_class="wait"),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": []},
            id="pv-prebound-to-the-claim-is-the-only-candidate",
        ),
        pytest.param(
            [
                WFFC,
                pvc("pvc-a", storage_class="wait"),
                pv("other-class", storage_class="fast", claim="pvc-a"),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": [ERR_BIND_CONFLICT]},
            id="prebound-pv-of-another-class-ignored",
        ),
        pytest.param(
            [
                storage_class("dyn", provisioner="csi.example.com"),
                pvc("pvc-a", storage_class="dyn"),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": []},
            id="provisioner-can-create-the-volume",
        ),
        pytest.param(
            [
                storage_class(
                    "dyn",
                    provisioner="csi.example.com",
                    topologies=[{"matchLabelExpressions": [{"key": "foo", "values": ["barbar"]}]}],
                ),
                pvc("pvc-a", storage_class="dyn"),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": []},
            id="provisioning-limited-by-allowed-topologies",
        ),
    ],
)
def test_filter(objects: list[JSON], incoming: JSON, expected: dict[str, list[str]]) -> None:
    """Bound claims follow their PV's node affinity; unbound WaitForFirstConsumer claims need
    a fitting PV or a provisioner on the node. All reasons are unresolvable."""
    plugin_ = plugin(*objects)
    table = build_table(NODES)
    assert filter_reasons(plugin_, incoming, table) == expected
    assert all(unresolvable(plugin_, incoming, table).values())


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        pytest.param(
            ERR_NODE_CONFLICT,
            "node(s) didn't match PersistentVolume's node affinity",
            id="node-conflict",
        ),
        pytest.param(
            ERR_BIND_CONFLICT,
            "node(s) didn't find available persistent volumes to bind",
            id="bind-conflict",
        ),
        pytest.param(
            ERR_NOT_ENOUGH_SPACE,
            "node(s) did not have enough free storage",
            id="not-enough-space",
        ),
        pytest.param(
            ERR_PV_NOT_EXIST,
            "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)",
            id="pv-not-exist",
        ),
        pytest.param(
            ERR_UNBOUND_IMMEDIATE,
            "pod has unbound immediate PersistentVolumeClaims",
            id="unbound-immediate",
        ),
    ],
)
def test_reasons_are_upstreams_word_for_word(reason: str, text: str) -> None:
    """The reasons are v1.37's binder.go and volume_binding.go texts, so FailedScheduling
    messages read the same as kube-scheduler's."""
    assert reason == text


def test_filter_without_pre_filter_recomputes() -> None:
    """Filter called without PreFilter state computes the claims itself."""
    objects = [pvc("pvc-a", volume="pv-a", bound=True), pv("pv-a", node_affinity=FOO_BAR)]
    table = build_table(NODES)
    result = plugin(*objects).filter(
        CycleState(),
        compile_pod(with_volumes("p", claim_volume("pvc-a"))),
        table,
        table.live_rows(),
    )
    assert result.mask.tolist() == [True, False]
    missing = plugin().filter(
        CycleState(), compile_pod(with_volumes("p", claim_volume("x"))), table, table.live_rows()
    )
    assert missing.mask.tolist() == [False, False]
    assert [r.message for r in missing.reasons] == ['persistentvolumeclaim "x" not found']


def test_pv_node_affinity_follows_relabelled_and_new_nodes() -> None:
    """Which nodes a PV's node affinity admits is kept between pods (one lookup per PV, not
    one mask per PV per pod) and recomputed when a node is relabelled, added or removed: the
    same plugin, asked again, sees the change."""
    objects = [WFFC, pvc("pvc-a", storage_class="wait")]
    objects.append(pv("pv-a", storage_class="wait", node_affinity=FOO_BAR))
    the_plugin = plugin(*objects)
    table = build_table(NODES)
    pod = compile_pod(with_volumes("p", claim_volume("pvc-a")))

    def fits() -> list[str]:
        state = CycleState()
        assert the_plugin.pre_filter(state, pod, table) is None
        result = the_plugin.filter(state, pod, table, table.live_rows())
        return [table.node(int(r)).name for r in table.live_rows()[result.mask]]

    assert fits() == ["node-a"]
    table.upsert_node(compile_node(make_node("node-b").label("foo", "bar").obj_()))
    assert fits() == ["node-a", "node-b"]
    table.upsert_node(compile_node(make_node("node-c").label("foo", "bar").obj_()))
    assert fits() == ["node-a", "node-b", "node-c"]
    table.remove_node("node-a")
    assert fits() == ["node-b", "node-c"]


class FakeTime:
    """A clock that moves only when PreBind sleeps; `on_sleep(n)` runs at the n-th sleep (the
    PV controller acting meanwhile)."""

    def __init__(self, on_sleep: Any = None) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def waiting_plugin(timeout: int, fake: FakeTime, *objects: JSON) -> volume_binding.VolumeBinding:
    handle = volume_handle(*objects)
    args = VolumeBindingArgs(bind_timeout_seconds=timeout)
    return volume_binding.VolumeBinding(handle.volumes, args, clock=fake.clock, sleep=fake.sleep)


# A claim a PV is pre-bound to: the PV controller binds it without berth's writes.
UNBOUND = (
    WFFC,
    pvc("pvc-a", storage_class="wait"),
    pv("pv-x", storage_class="wait", claim="pvc-a"),
)


def pre_bound(plugin_: volume_binding.VolumeBinding, claim: str) -> tuple[CycleState, Any]:
    pod = compile_pod(with_volumes("p", claim_volume(claim)))
    state = CycleState()
    assert plugin_.pre_filter(state, pod, build_table(NODES)) is None
    return state, pod


def test_pre_bind_waits_bind_timeout_seconds_then_fails() -> None:
    """berth makes no binding write (#14); PreBind waits, looking every second, at most
    bindTimeoutSeconds for the claims to be bound, then fails with upstream's error (the pod
    goes to backoff instead of being bound)."""
    fake = FakeTime()
    plugin_ = waiting_plugin(3, fake, *UNBOUND)
    state, pod = pre_bound(plugin_, "pvc-a")
    status = asyncio.run(plugin_.pre_bind(state, pod, "node-a"))
    assert status is not None and status.code is Code.ERROR
    assert status.message.startswith(volume_binding.ERR_BIND_TIMEOUT)
    assert '"pvc-a"' in status.message
    assert fake.sleeps == [1.0, 1.0, 1.0]


def writing_plugin(
    fake: FakeTime, *objects: JSON
) -> tuple[volume_binding.VolumeBinding, ClusterHandle]:
    """A plugin with a handle whose API records the volume writes, on NODES."""
    handle = volume_handle(*objects)
    handle.snapshot = build_table(NODES)
    args = VolumeBindingArgs(bind_timeout_seconds=5)
    made = volume_binding.VolumeBinding(
        handle.volumes, args, handle=handle, clock=fake.clock, sleep=fake.sleep
    )
    return made, handle


def test_reserve_assumes_the_chosen_pv_and_pre_bind_writes_its_claim_ref() -> None:
    """Upstream's AssumePodVolumes and bindAPIUpdate: Reserve takes the smallest fitting PV on
    the node (the next pod's Filter no longer sees it), PreBind points its claimRef at the
    claim and waits until the PV controller has bound the claim."""
    objects = (
        WFFC,
        pvc("pvc-a", storage_class="wait"),
        pvc("pvc-b", storage_class="wait"),
        pv("pv-x", storage_class="wait"),
    )
    fake = FakeTime()
    plugin_, handle = writing_plugin(fake, *objects)
    state, pod = pre_bound(plugin_, "pvc-a")
    assert plugin_.reserve(state, pod, "node-a") is None
    assert handle.volumes.assumed == {"pv-x": ("default", "pvc-a")}
    other_state, other = pre_bound(plugin_, "pvc-b")
    table = build_table(NODES)
    rows = np.arange(len(NODES))
    assert not plugin_.filter(other_state, other, table, rows).mask.any()

    def bound_by_controller(sleeps: int) -> None:
        if sleeps == 2:
            handle.volumes.apply(
                "PersistentVolumeClaim",
                pvc("pvc-a", storage_class="wait", volume="pv-x", bound=True),
            )

    fake.on_sleep = bound_by_controller
    assert asyncio.run(plugin_.pre_bind(state, pod, "node-a")) is None
    assert handle.api.volume_writes == [("claimRef", "pv-x", "default/pvc-a")]  # type: ignore[attr-defined]
    assert fake.sleeps == [1.0, 1.0]


def test_unreserve_gives_the_pv_back() -> None:
    fake = FakeTime()
    plugin_, handle = writing_plugin(
        fake, WFFC, pvc("pvc-a", storage_class="wait"), pv("pv-x", storage_class="wait")
    )
    state, pod = pre_bound(plugin_, "pvc-a")
    assert plugin_.reserve(state, pod, "node-a") is None
    plugin_.unreserve(state, pod, "node-a")
    assert handle.volumes.assumed == {}


def test_pre_bind_selects_the_node_for_a_claim_to_provision() -> None:
    """No PV fits: the class's provisioner makes one, on the node PreBind names in the
    claim's selected-node annotation; until it is bound PreBind waits, then times out."""
    provisioned = storage_class("fast", provisioner="csi.example.com")
    fake = FakeTime()
    plugin_, handle = writing_plugin(fake, provisioned, pvc("pvc-a", storage_class="fast"))
    state, pod = pre_bound(plugin_, "pvc-a")
    assert plugin_.reserve(state, pod, "node-b") is None
    status = asyncio.run(plugin_.pre_bind(state, pod, "node-b"))
    assert handle.api.volume_writes == [("selected-node", "default/pvc-a", "node-b")]  # type: ignore[attr-defined]
    assert status is not None and status.message.startswith(volume_binding.ERR_BIND_TIMEOUT)


def test_a_claim_with_a_selected_node_fits_that_node_only() -> None:
    """Provisioning under way on node-b (the annotation): Filter keeps node-b only."""
    provisioned = storage_class("fast", provisioner="csi.example.com")
    claim = pvc("pvc-a", storage_class="fast")
    claim["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = "node-b"
    plugin_ = plugin(provisioned, claim)
    state = CycleState()
    pod = compile_pod(with_volumes("p", claim_volume("pvc-a")))
    table = build_table(NODES)
    assert plugin_.pre_filter(state, pod, table) is None
    result = plugin_.filter(state, pod, table, np.arange(len(NODES)))
    assert result.mask.tolist() == [False, True]


def test_pre_bind_zero_timeout_fails_at_once() -> None:
    """bindTimeoutSeconds: 0 gives up without waiting (upstream's context is already done)."""
    fake = FakeTime()
    plugin_ = waiting_plugin(0, fake, *UNBOUND)
    state, pod = pre_bound(plugin_, "pvc-a")
    status = asyncio.run(plugin_.pre_bind(state, pod, "node-a"))
    assert status is not None and status.message.startswith(volume_binding.ERR_BIND_TIMEOUT)
    assert fake.sleeps == []


def test_pre_bind_succeeds_once_the_claims_are_bound() -> None:
    """A claim the PV controller binds while PreBind waits ends the wait with success."""
    fake = FakeTime()
    plugin_ = waiting_plugin(600, fake, *UNBOUND)

    def bind(n: int) -> None:
        if n == 2:
            plugin_.store.apply(PVC, pvc("pvc-a", storage_class="wait", volume="pv-x", bound=True))

    fake.on_sleep = bind
    state, pod = pre_bound(plugin_, "pvc-a")
    assert asyncio.run(plugin_.pre_bind(state, pod, "node-a")) is None
    assert fake.sleeps == [1.0, 1.0]


def test_pre_bind_without_unbound_claims_does_not_wait() -> None:
    """Bound claims only: nothing to wait for."""
    fake = FakeTime()
    plugin_ = waiting_plugin(600, fake, pvc("pvc-b", volume="pv-b", bound=True), pv("pv-b"))
    state, pod = pre_bound(plugin_, "pvc-b")
    assert asyncio.run(plugin_.pre_bind(state, pod, "node-a")) is None
    assert fake.sleeps == []


def test_row_local_only_without_claims() -> None:
    """The store changes without touching rows: pods with claims are not batched."""
    plugin_ = plugin()
    assert plugin_.row_local_for(compile_pod(with_volumes("p", *OTHER_VOLUMES)))
    assert not plugin_.row_local_for(compile_pod(with_volumes("p", claim_volume("c"))))
    assert not plugin_.row_local_for(compile_pod(with_volumes("p", ephemeral_volume("e"))))


def test_store_follows_updates_and_deletes() -> None:
    """The store keeps the latest version of each object and forgets deleted ones."""
    volumes = VolumeStore()
    volumes.apply(PVC, pvc("c"))
    first = volumes.version
    assert volumes.claim("default", "c") is not None
    assert not volumes.claim("default", "c").bound  # type: ignore[union-attr]
    volumes.apply(PVC, pvc("c", volume="v", bound=True))
    assert volumes.claim("default", "c").bound  # type: ignore[union-attr]
    volumes.apply(PVC, pvc("c"), deleted=True)
    assert volumes.claim("default", "c") is None
    assert volumes.version > first
    assert volume_binding.new({}, in_memory()).store.claims == {}


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
async def test_default_profile_through_the_cycle(batching: bool) -> None:
    """With every default plugin: pods with any non-claim volume type schedule, a pod with a
    claim nobody knows gets upstream's message (a handle without a volume store has none)."""
    from tests.unit.test_cycle import NAME, World

    world = World([make_node(f"n{i}").obj_() for i in range(3)], batching=batching)
    for i in range(3):
        raw = with_volumes(f"ok{i}", *OTHER_VOLUMES)
        raw["spec"]["schedulerName"] = NAME
        assert world.schedule(raw).node
    raw = with_volumes("claims", claim_volume("data"), *OTHER_VOLUMES)
    raw["spec"]["schedulerName"] = NAME
    attempt = world.schedule(raw)
    assert attempt.node == ""
    assert attempt.status is not None
    assert attempt.status.message.startswith(
        '0/3 nodes are available: persistentvolumeclaim "data" not found.'
    )
    await world.scheduler.drain()


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        pytest.param(PV, pv("bad", capacity="lots"), id="pv-capacity"),
        pytest.param(PVC, pvc("bad", request="1Zi"), id="pvc-request"),
        pytest.param(
            PVC,
            pvc("bad", selector={"matchExpressions": [{"key": "k", "operator": "Near"}]}),
            id="pvc-selector",
        ),
        pytest.param(
            CSI_NODE,
            csi_node("n", x_y=None)
            | {"spec": {"drivers": [{"name": "x.y", "allocatable": {"count": "many"}}]}},
            id="csinode-count",
        ),
    ],
)
def test_store_rejects_malformed_objects(kind: str, obj: JSON) -> None:
    """A malformed object raises InvalidObject (the app logs and skips it) and does not stay."""
    volumes = VolumeStore()
    with pytest.raises(InvalidObject):
        volumes.apply(kind, obj)
    assert not (volumes.claims or volumes.volumes or volumes.csi_limits)


# --- VolumeAttributesClass (v1.34+) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("claim_class", "volume_class", "fits"),
    [
        pytest.param("gold", "silver", False, id="different"),
        pytest.param("gold", "gold", True, id="same"),
        pytest.param("", "gold", False, id="only-the-volume-has-one"),
        pytest.param("", "", True, id="neither"),
    ],
)
def test_volume_attributes_class_must_match(
    claim_class: str, volume_class: str, fits: bool
) -> None:
    """v1.34+ (VolumeAttributesClass GA): FindMatchingVolume skips a PV whose
    volumeAttributesClassName differs from the claim's, "didn't find available persistent
    volumes to bind"."""
    claim = pvc("pvc-a", storage_class="wait")
    volume = pv("pv-a", storage_class="wait")
    if claim_class:
        claim["spec"]["volumeAttributesClassName"] = claim_class
    if volume_class:
        volume["spec"]["volumeAttributesClassName"] = volume_class
    incoming = with_volumes("p", claim_volume("pvc-a"))
    reasons = [] if fits else [volume_binding.ERR_BIND_CONFLICT]
    assert filter_reasons(plugin(WFFC, claim, volume), incoming, build_table(NODES)) == {
        "node-a": reasons,
        "node-b": reasons,
    }


def test_scores_in_the_default_profile() -> None:
    """v1.37 scores with VolumeBinding (StorageCapacityScoring, beta, on), default weight 1."""
    from tests.unit.test_cycle import NAME, World

    profile = World([]).scheduler.profiles[NAME]
    assert volume_binding.NAME in [p.name for p in profile.filter]
    assert (volume_binding.NAME, 1) in [(p.name, w) for p, w in profile.score]


SMALL_ON_A = pv("pv-small", capacity="2Gi", storage_class="wait", node_affinity=FOO_BAR)
BIG = pv("pv-big", capacity="10Gi", storage_class="wait")


@pytest.mark.parametrize(
    ("shape", "objects", "expected"),
    [
        pytest.param(
            None, [SMALL_ON_A, BIG], [50, 90], id="default-shape-prefers-the-emptier-node"
        ),
        pytest.param(
            [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}],
            [SMALL_ON_A, BIG],
            [50, 10],
            id="custom-shape-prefers-the-fuller-node",
        ),
        pytest.param(
            [{"utilization": 0, "score": 0}, {"utilization": 40, "score": 10}],
            [SMALL_ON_A, BIG],
            [100, 25],
            id="broken-linear-truncates",
        ),
        pytest.param(None, [BIG], [90, 90], id="same-pv-everywhere"),
        pytest.param(
            None,
            [pv("pv-full", capacity="512Mi", storage_class="wait")],
            [0, 0],
            id="no-fitting-pv-scores-zero",
        ),
    ],
)
def test_score(shape: list[JSON] | None, objects: list[JSON], expected: list[int]) -> None:
    """Upstream's scorer: the claim's request over the capacity of the PV it would get on
    each node, through the args' shape (scores 0..10 scaled to 0..100)."""
    args: JSON = {} if shape is None else {"shape": shape}
    plugin_ = volume_binding.new(
        args, volume_handle(WFFC, pvc("pvc-a", storage_class="wait"), *objects)
    )
    table = build_table(NODES)
    pod = compile_pod(with_volumes("p", claim_volume("pvc-a")))
    state = CycleState()
    assert plugin_.pre_filter(state, pod, table) is None
    rows = table.live_rows()
    assert plugin_.pre_score(state, pod, table, rows) is None
    assert plugin_.score(state, pod, table, rows).tolist() == expected


def test_score_averages_storage_classes() -> None:
    """Requests and capacities add up per class; the classes' scores are averaged, rounded."""
    fast = storage_class("fast")
    objects = [
        WFFC,
        fast,
        pvc("pvc-a", storage_class="wait"),
        pvc("pvc-b", storage_class="fast", request="3Gi"),
        pv("pv-a", capacity="4Gi", storage_class="wait"),  # 25% used: 75
        pv("pv-b", capacity="4Gi", storage_class="fast"),  # 75% used: 25
    ]
    plugin_ = volume_binding.new({}, volume_handle(*objects))
    table = build_table(NODES)
    pod = compile_pod(with_volumes("p", claim_volume("pvc-a"), claim_volume("pvc-b")))
    state = CycleState()
    assert plugin_.pre_filter(state, pod, table) is None
    assert plugin_.score(state, pod, table, table.live_rows()).tolist() == [50, 50]


def test_pre_score_skips_pods_without_claims() -> None:
    """A pod without claims was skipped at PreFilter, and is at PreScore."""
    plugin_ = plugin()
    table = build_table(NODES)
    pod = compile_pod(with_volumes("p", *OTHER_VOLUMES))
    state = CycleState()
    assert plugin_.pre_filter(state, pod, table) is not None
    assert plugin_.pre_score(state, pod, table, table.live_rows()) is SKIP


def test_args_are_decoded() -> None:
    """VolumeBindingArgs: bindTimeoutSeconds defaults to 600 and shape to [{0,10},{100,0}];
    a raw mapping given to new() is checked as the configuration does."""
    assert volume_binding.new({}, volume_handle()).args == VolumeBindingArgs(600, DEFAULT_SHAPE)
    args = {
        "bindTimeoutSeconds": -1,
        "shape": [{"utilization": 100, "score": 0}, {"utilization": 0, "score": 10}],
    }
    with pytest.raises(ConfigError) as caught:
        volume_binding.new(args, volume_handle())
    assert caught.value.errors == [
        "args.bindTimeoutSeconds: Invalid value: -1: invalid BindTimeoutSeconds, should not be "
        "a negative value",
        "args.shape[1].utilization: Invalid value: 0: values must be sorted in increasing order",
    ]


# --- storage capacity (CSIStorageCapacity) ---------------------------------------------------

DRIVER = "driver-with-storage-capacity"
CAPACITY_CLASS = storage_class("wait-sc-with-storage-capacity", provisioner=DRIVER)
CLS = "wait-sc-with-storage-capacity"
NES = ERR_NOT_ENOUGH_SPACE


def provisioned(*objects: JSON, opt_in: bool | None = True, claim: str = "1Gi") -> list[JSON]:
    """Upstream's TestCapacity set-up: a class provisioned by a CSI driver (whose CSIDriver
    asks for capacity checks when `opt_in`), one unbound claim of it, and `objects`."""
    claim_ = pvc("pvc-a", storage_class=CLS, request=claim)
    return [CAPACITY_CLASS, csi_driver(DRIVER, opt_in), claim_, *objects]


# Upstream's TestCapacity scenarios, node1 being node-a and node2 node-b. "multiple" gives
# three objects one name, so the last one is what the store keeps, as upstream's informer.
CAPACITY_SCENARIOS = [
    pytest.param([capacity("net", CLS, None, "1Gi")], [], [], id="network-attached"),
    pytest.param([capacity("net", CLS, "node-a", "1Gi")], [], [NES], id="local-storage"),
    pytest.param(
        [
            capacity("net", CLS, None, "1Gi"),
            capacity("net", CLS, "node-b", "1Gi"),
            capacity("net", CLS, "node-a", "1Gi"),
        ],
        [],
        [NES],
        id="multiple",
    ),
    pytest.param([], [NES], [NES], id="no-storage"),
    pytest.param([capacity("net", CLS, "node-b", "1Gi")], [NES], [], id="wrong-node"),
    pytest.param(
        [capacity("net", "wait", "node-a", "1Gi")], [NES], [NES], id="wrong-storage-class"
    ),
    pytest.param([capacity("net", CLS, "node-a", "1Mi")], [NES], [NES], id="insufficient-storage"),
    pytest.param(
        [capacity("net", CLS, "node-a", "1Gi", "1Mi")], [NES], [NES], id="insufficient-volume-size"
    ),
    pytest.param([capacity("net", CLS, "node-a", "0Mi")], [NES], [NES], id="zero-storage"),
    pytest.param([capacity("net", CLS, "node-a", "", "0Mi")], [NES], [NES], id="zero-volume-size"),
    pytest.param([capacity("net", CLS, "node-a")], [NES], [NES], id="nil-storage"),
]


@pytest.mark.parametrize("opt_in", [True, False], ids=["StorageCapacity=true", "=false"])
@pytest.mark.parametrize(("capacities", "node_a", "node_b"), CAPACITY_SCENARIOS)
def test_capacity(
    opt_in: bool, capacities: list[JSON], node_a: list[str], node_b: list[str]
) -> None:
    """Upstream's TestCapacity: a claim to provision needs a CSIStorageCapacity of its class
    that reaches the node and holds it (maximumVolumeSize, else capacity); without one the
    node "did not have enough free storage", unresolvably. Only checked when the driver's
    CSIDriver opts in."""
    plugin_ = plugin(*provisioned(*capacities, opt_in=opt_in))
    table = build_table(NODES)
    incoming = with_volumes("p", claim_volume("pvc-a"))
    expected = {"node-a": node_a, "node-b": node_b} if opt_in else {"node-a": [], "node-b": []}
    assert filter_reasons(plugin_, incoming, table) == expected
    assert all(unresolvable(plugin_, incoming, table).values())


FOO_IN_BAR = {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}]}


@pytest.mark.parametrize(
    ("objects", "incoming", "expected"),
    [
        pytest.param(
            [CAPACITY_CLASS, pvc("pvc-a", storage_class=CLS)],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": []},
            id="provisioner-without-csidriver-is-not-checked",
        ),
        pytest.param(
            provisioned(opt_in=None),
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": []},
            id="csidriver-storage-capacity-unset-is-not-checked",
        ),
        pytest.param(
            provisioned(capacity("net", CLS, size="10Gi", no_topology=True)),
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [NES], "node-b": [NES]},
            id="capacity-without-node-topology-reaches-no-node",
        ),
        pytest.param(
            provisioned(capacity("net", CLS, size="10Gi", topology=FOO_IN_BAR)),
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": [NES]},
            id="node-topology-match-expressions",
        ),
        pytest.param(
            provisioned(capacity("net", CLS, "node-a", "1Mi", "1Gi")),
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": [NES]},
            id="maximum-volume-size-wins-over-capacity",
        ),
        pytest.param(
            provisioned(capacity("net", CLS, "node-a", "1Gi", namespace="kube-system")),
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": [NES]},
            id="capacity-of-any-namespace-counts",
        ),
        pytest.param(
            provisioned(capacity("net", CLS, "node-a", "5Gi"), claim="5Gi"),
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": [NES]},
            id="exactly-the-request-is-enough",
        ),
        pytest.param(
            [
                storage_class(
                    CLS,
                    provisioner=DRIVER,
                    topologies=[{"matchLabelExpressions": [{"key": "foo", "values": ["barbar"]}]}],
                ),
                csi_driver(DRIVER),
                pvc("pvc-a", storage_class=CLS),
            ],
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": [NES]},
            id="allowed-topologies-are-checked-before-capacity",
        ),
        pytest.param(
            provisioned(
                WFFC,
                pvc("pvc-b", storage_class="wait", request="5Gi"),
            ),
            with_volumes("p", claim_volume("pvc-b"), claim_volume("pvc-a")),
            {"node-a": [NES], "node-b": [NES]},
            id="smallest-claim-to-provision-decides-no-space",
        ),
        pytest.param(
            provisioned(
                WFFC,
                pvc("pvc-b", storage_class="wait", request="1Mi"),
            ),
            with_volumes("p", claim_volume("pvc-a"), claim_volume("pvc-b")),
            {"node-a": [ERR_BIND_CONFLICT], "node-b": [ERR_BIND_CONFLICT]},
            id="smallest-claim-to-provision-decides-bind-conflict",
        ),
        pytest.param(
            provisioned(
                pv("local", storage_class=CLS, node_affinity=hostname_is("node-a")),
            ),
            with_volumes("p", claim_volume("pvc-a")),
            {"node-a": [], "node-b": [NES]},
            id="a-static-pv-needs-no-capacity",
        ),
        pytest.param(
            provisioned(
                pvc("pvc-b", volume="pv-b", bound=True),
                pv("pv-b", node_affinity=FOO_BAR),
            ),
            with_volumes("p", claim_volume("pvc-b"), claim_volume("pvc-a")),
            {"node-a": [NES], "node-b": [ERR_NODE_CONFLICT, NES]},
            id="reasons-in-upstreams-order",
        ),
    ],
)
def test_filter_storage_capacity(
    objects: list[JSON], incoming: JSON, expected: dict[str, list[str]]
) -> None:
    """berth's own cases around upstream's checkVolumeProvisions and hasEnoughCapacity."""
    assert filter_reasons(plugin(*objects), incoming, build_table(NODES)) == expected


def with_selected_node(claim: JSON, node: str) -> JSON:
    claim["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = node
    return claim


def test_a_claim_given_a_node_fails_elsewhere_before_capacity() -> None:
    """Upstream's fast path: a claim whose selected node is node-b fails node-a as a bind
    conflict whatever the capacity; on node-b the capacity is checked."""
    objects = [
        CAPACITY_CLASS,
        csi_driver(DRIVER),
        with_selected_node(pvc("pvc-a", storage_class=CLS), "node-b"),
        capacity("net", CLS, "node-a", "10Gi"),
    ]
    incoming = with_volumes("p", claim_volume("pvc-a"))
    assert filter_reasons(plugin(*objects), incoming, build_table(NODES)) == {
        "node-a": [ERR_BIND_CONFLICT],
        "node-b": [NES],
    }


NODES_ABC = [make_node(n).obj_() for n in ("node-a", "node-b", "node-c")]
PER_NODE = [
    capacity("node-a", CLS, "node-a", "100Gi"),
    capacity("node-b", CLS, "node-b", "50Gi"),
    capacity("node-c", CLS, "node-c", "10Gi"),
]
PER_NODE_20 = [PER_NODE[0], capacity("node-b", CLS, "node-b", "20Gi"), PER_NODE[2]]
LEAST_ALLOCATABLE = [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]


@pytest.mark.parametrize(
    ("shape", "objects", "claims", "expected"),
    [
        # Upstream's TestVolumeBinding scoring cases with CSIStorageCapacity.
        pytest.param(
            None,
            provisioned(*PER_NODE, claim="10Gi"),
            ["pvc-a"],
            [90, 80, 0],
            id="storage capacity score",
        ),
        pytest.param(
            None,
            [
                *provisioned(*PER_NODE, claim="10Gi"),
                WFFC,
                pvc("pvc-static", storage_class="wait", request="50Gi"),
                *(
                    pv(
                        f"pv-static-{n}",
                        storage_class="wait",
                        capacity="100Gi",
                        node_affinity=hostname_is(f"node-{n}"),
                    )
                    for n in "abc"
                ),
            ],
            ["pvc-a", "pvc-static"],
            [50, 50, 50],
            id="storage capacity score with static binds",
        ),
        pytest.param(
            None,
            [
                *provisioned(capacity("all", CLS, None, "100Gi"), claim="50Gi"),
                pvc("pvc-b", storage_class=CLS, request="50Gi"),
            ],
            ["pvc-a", "pvc-b"],
            [0, 0, 0],
            id="dynamic provisioning with multiple PVCs of the same StorageClass",
        ),
        pytest.param(
            LEAST_ALLOCATABLE,
            provisioned(*PER_NODE_20, claim="10Gi"),
            ["pvc-a"],
            [10, 50, 100],
            id="prefer node with least allocatable",
        ),
        pytest.param(
            None,
            provisioned(*PER_NODE_20, claim="10Gi"),
            ["pvc-a"],
            [90, 50, 0],
            id="prefer node with maximum allocatable",
        ),
        # berth's own.
        pytest.param(
            None,
            provisioned(capacity("all", CLS, None, "100Gi", "20Gi"), claim="10Gi"),
            ["pvc-a"],
            [90, 90, 90],
            id="scored-by-capacity-not-maximum-volume-size",
        ),
        pytest.param(
            None,
            provisioned(*PER_NODE, claim="10Gi", opt_in=False),
            ["pvc-a"],
            [0, 0, 0],
            id="driver-not-reporting-capacity-scores-zero",
        ),
    ],
)
def test_score_storage_capacity(
    shape: list[JSON] | None, objects: list[JSON], claims: list[str], expected: list[int]
) -> None:
    """Upstream's Score for claims to provision: the request over the capacity of the
    CSIStorageCapacity found on the node, per class (claims of a class share it); static
    bindings, where there are any, are scored instead."""
    args: JSON = {} if shape is None else {"shape": shape}
    plugin_ = volume_binding.new(args, volume_handle(*objects))
    table = build_table(NODES_ABC)
    pod = compile_pod(with_volumes("p", *(claim_volume(c) for c in claims)))
    state = CycleState()
    assert plugin_.pre_filter(state, pod, table) is None
    rows = table.live_rows()
    assert plugin_.filter(state, pod, table, rows).mask.all()
    assert plugin_.pre_score(state, pod, table, rows) is None
    assert plugin_.score(state, pod, table, rows).tolist() == expected


def test_reserve_checks_capacity_and_pre_bind_selects_the_node() -> None:
    """Reserve keeps a node whose capacity holds the claim (PreBind then writes the selected
    node), and refuses one without, with upstream's reason; nothing is assumed either way."""
    objects = provisioned(capacity("net", CLS, "node-a", "10Gi"))
    fake = FakeTime()
    plugin_, handle = writing_plugin(fake, *objects)
    state, pod = pre_bound(plugin_, "pvc-a")
    assert plugin_.reserve(state, pod, "node-b") == Status.unschedulable(
        ERR_NOT_ENOUGH_SPACE, plugin="VolumeBinding"
    )
    assert plugin_.reserve(state, pod, "node-a") is None
    assert handle.volumes.assumed == {}
    asyncio.run(plugin_.pre_bind(state, pod, "node-a"))
    assert handle.api.volume_writes == [("selected-node", "default/pvc-a", "node-a")]  # type: ignore[attr-defined]


async def test_app_feeds_storage_capacity_to_volume_binding() -> None:
    """The app watches CSIDrivers and CSIStorageCapacities into the volume store; a capacity
    added moves a pod VolumeBinding rejected, one whose limit shrinks does not."""
    from plugins import registry
    from scheduler.app import App
    from scheduler.config import API_VERSION, KIND, parse
    from scheduler.kube.client import Client, Credentials
    from scheduler.queue import UNSCHEDULABLE
    from scheduler.serving import ServingOptions

    config = parse({"apiVersion": API_VERSION, "kind": KIND}, registry().keys())
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    app = App(config, client, serving=ServingOptions.local())
    try:
        paths = {i.path for i in app.informers}
        assert "/apis/storage.k8s.io/v1/csidrivers" in paths
        assert "/apis/storage.k8s.io/v1/csistoragecapacities" in paths
        app.handlers.volume_handler(CSI_DRIVER)("ADDED", csi_driver(DRIVER), None)
        assert app.handle.volumes.csi_driver(DRIVER) is not None

        def rejected(name: str) -> Any:
            app.queue.add(compile_pod(with_volumes(name, claim_volume("pvc-a"))))
            entry = app.queue.pop_nowait()
            assert entry is not None
            app.queue.requeue(entry, frozenset({volume_binding.NAME}))
            assert entry.where == UNSCHEDULABLE
            return entry

        on_capacity = app.handlers.volume_handler(CSI_STORAGE_CAPACITY)
        first = rejected("first")
        big = capacity("net", CLS, "node-a", "10Gi")
        on_capacity("ADDED", big, None)
        assert app.handle.volumes.capacities_for(CLS)[0].limit == 10 * 2**30
        assert first.where != UNSCHEDULABLE
        second = rejected("second")
        on_capacity("MODIFIED", capacity("net", CLS, "node-a", "1Gi"), big)
        assert second.where == UNSCHEDULABLE
        on_capacity("MODIFIED", capacity("net", CLS, "node-a", "20Gi"), None)
        assert second.where != UNSCHEDULABLE
    finally:
        await app.event_client.close()
        await app.lease_client.close()
        await client.close()


# --- events ----------------------------------------------------------------------------------


def test_events_to_register() -> None:
    """Upstream's EventsToRegister: StorageClass, PVC and CSINode Add|Update with hints, PV
    Add|Update and Node/Add|UpdateNodeLabel without, CSIDriver/Update and
    CSIStorageCapacity/Add|Update with hints."""
    assert registered(plugin()) == [
        ("storage.k8s.io/StorageClassAdd", True),
        ("storage.k8s.io/StorageClassUpdate", True),
        ("PersistentVolumeClaimAdd", True),
        ("PersistentVolumeClaimUpdate", True),
        ("PersistentVolumeAdd", False),
        ("PersistentVolumeUpdate", False),
        ("NodeAdd", False),
        ("NodeUpdateNodeLabel", False),
        ("storage.k8s.io/CSINodeAdd", True),
        ("storage.k8s.io/CSINodeUpdate", True),
        ("storage.k8s.io/CSIDriverUpdate", True),
        ("storage.k8s.io/CSIStorageCapacityAdd", True),
        ("storage.k8s.io/CSIStorageCapacityUpdate", True),
    ]


def hint(label: str, pod: JSON, old: JSON | None, new: JSON) -> QueueingHint:
    return hint_for(plugin(), label)(record(pod), record(old), record(new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterCSINodeChange. Its migrated-plugins annotation
        # cases have no counterpart: berth translates no in-tree volume, so it keeps no
        # annotation and an update never helps.
        pytest.param(
            None, csi_node("csinode-a"), QueueingHint.QUEUE, id="CSINode is newly created"
        ),
        pytest.param(
            csi_node("csinode-a", ebs_csi_aws_com=1),
            csi_node("csinode-a", ebs_csi_aws_com=2),
            QueueingHint.SKIP,
            id="CSINode is updated but migrated-plugins annotation gets unchanged",
        ),
    ],
)
def test_is_schedulable_after_csi_node_change(
    old: JSON | None, new: JSON, expected: QueueingHint
) -> None:
    """A CSINode created moves the pod; an update does not (berth reads no annotation)."""
    pod = with_volumes("pod-a")
    assert hint("storage.k8s.io/CSINodeUpdate", pod, old, new) is expected


def pod_a(*volumes: JSON, namespace: str = "") -> JSON:
    """Upstream's makePod("pod-a") with these volumes."""
    raw = with_volumes("pod-a", *volumes)
    if namespace:
        raw["metadata"]["namespace"] = namespace
    return raw


@pytest.mark.parametrize(
    ("pod", "old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterPersistentVolumeClaimChange (its type conversion
        # case: no counterpart).
        pytest.param(
            pod_a({"name": "scratch", "emptyDir": {}}),
            pvc("pvc-b", storage_class="sc-a"),
            pvc("pvc-b", storage_class="sc-a"),
            QueueingHint.SKIP,
            id="pod has no pvc or ephemeral volumes",
        ),
        pytest.param(
            pod_a(claim_volume("pvc-a"), claim_volume("pvc-b"), namespace="ns-a"),
            None,
            pvc("pvc-b"),
            QueueingHint.SKIP,
            id="pvc with the same name as the one used by the pod in a different namespace is "
            "modified",
        ),
        pytest.param(
            pod_a(claim_volume("pvc-a"), claim_volume("pvc-c")),
            pvc("pvc-b"),
            pvc("pvc-b"),
            QueueingHint.SKIP,
            id="pod has no pvc that is being modified",
        ),
        pytest.param(
            pod_a(ephemeral_volume("ephemeral-a"), ephemeral_volume("ephemeral-c")),
            pvc("pod-a-ephemeral-b"),
            pvc("pod-a-ephemeral-b"),
            QueueingHint.SKIP,
            id="pod has no generic ephemeral volume that is being modified",
        ),
        pytest.param(
            pod_a(claim_volume("pvc-a"), claim_volume("pvc-b")),
            pvc("pvc-b"),
            pvc("pvc-b"),
            QueueingHint.QUEUE,
            id="pod has the pvc that is being modified",
        ),
        pytest.param(
            pod_a(ephemeral_volume("ephemeral-a"), ephemeral_volume("ephemeral-b")),
            pvc("pod-a-ephemeral-b"),
            pvc("pod-a-ephemeral-b"),
            QueueingHint.QUEUE,
            id="pod has the generic ephemeral volume that is being modified",
        ),
    ],
)
def test_is_schedulable_after_persistent_volume_claim_change(
    pod: JSON, old: JSON | None, new: JSON, expected: QueueingHint
) -> None:
    """A claim of the pod's (by name, or its ephemeral volume's) added or changed moves it."""
    assert hint("PersistentVolumeClaimUpdate", pod, old, new) is expected


HOSTNAME_A = [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["node-a"]}]}]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterStorageClassChange (its type conversion case: no
        # counterpart).
        pytest.param(
            None,
            storage_class("sc-a"),
            QueueingHint.QUEUE,
            id="When a new StorageClass is created, it returns Queue",
        ),
        pytest.param(
            storage_class("sc-a"),
            storage_class("sc-a", topologies=HOSTNAME_A),
            QueueingHint.QUEUE,
            id="When the AllowedTopologies are changed, it returns Queue",
        ),
        pytest.param(
            storage_class("sc-a"),
            storage_class("sc-a"),
            QueueingHint.SKIP,
            id="When there are no changes to the StorageClass, it returns QueueSkip",
        ),
    ],
)
def test_is_schedulable_after_storage_class_change(
    old: JSON | None, new: JSON, expected: QueueingHint
) -> None:
    """A StorageClass added, or one whose allowedTopologies changed, moves the pod."""
    assert hint("storage.k8s.io/StorageClassUpdate", pod_a(), old, new) is expected


def capacity_limits(size: str = "", maximum: str = "") -> JSON:
    return capacity("cap", "sc-a", "node-a", size, maximum)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterCSIStorageCapacityChange (its type conversion
        # case: no counterpart).
        pytest.param(
            None,
            capacity_limits(),
            QueueingHint.QUEUE,
            id="When a new CSIStorageCapacity is created, it returns Queue",
        ),
        pytest.param(
            capacity_limits(),
            capacity_limits("100"),
            QueueingHint.QUEUE,
            id="When the volume limit is increase(Capacity set), it returns Queue",
        ),
        pytest.param(
            capacity_limits(),
            capacity_limits(maximum="100"),
            QueueingHint.QUEUE,
            id="When the volume limit is increase(MaximumVolumeSize set), it returns Queue",
        ),
        pytest.param(
            capacity_limits("50"),
            capacity_limits("100"),
            QueueingHint.QUEUE,
            id="When the volume limit is increase(Capacity increase), it returns Queue",
        ),
        pytest.param(
            capacity_limits("100", "50"),
            capacity_limits("100"),
            QueueingHint.QUEUE,
            id="When the volume limit is increase(MaximumVolumeSize unset), it returns Queue",
        ),
        pytest.param(
            capacity_limits("100", "50"),
            capacity_limits("100", "60"),
            QueueingHint.QUEUE,
            id="When the volume limit is increase(MaximumVolumeSize increase), it returns Queue",
        ),
        pytest.param(
            capacity_limits("100", "50"),
            capacity_limits("100", "50"),
            QueueingHint.SKIP,
            id="When there are no changes to the CSIStorageCapacity, it returns QueueSkip",
        ),
        pytest.param(
            capacity_limits("100"),
            capacity_limits("100", "50"),
            QueueingHint.SKIP,
            id="When the volume limit is decreased, it returns QueueSkip",
        ),
        pytest.param(
            capacity_limits("100"),
            capacity_limits(),
            QueueingHint.SKIP,
            id="When the volume limit is unset, it returns QueueSkip",
        ),
    ],
)
def test_is_schedulable_after_csi_storage_capacity_change(
    old: JSON | None, new: JSON, expected: QueueingHint
) -> None:
    """A CSIStorageCapacity added, or one whose limit appeared or grew, moves the pod."""
    label = "storage.k8s.io/CSIStorageCapacityUpdate"
    assert hint(label, pod_a(claim_volume("pvc-a")), old, new) is expected


def csi_pod(driver: str) -> JSON:
    """Upstream's makePod("pod-a").withCSI(driver)."""
    return pod_a(csi_volume(driver))


@pytest.mark.parametrize(
    ("pod", "old", "new", "expected"),
    [
        # Upstream's TestIsSchedulableAfterCSIDriverChange (its type conversion case: no
        # counterpart).
        pytest.param(
            pod_a(),
            csi_driver("test1", False),
            csi_driver("test1", True),
            QueueingHint.SKIP,
            id="pod has no CSIDriver",
        ),
        pytest.param(
            csi_pod("test1"),
            csi_driver("test2", False),
            csi_driver("test2", True),
            QueueingHint.SKIP,
            id="driver name in pod and csidriver name are different",
        ),
        pytest.param(
            csi_pod("test1"),
            csi_driver("test1", None),
            csi_driver("test1", None),
            QueueingHint.SKIP,
            id="original StorageCapacity is nil",
        ),
        pytest.param(
            csi_pod("test1"),
            csi_driver("test1", False),
            csi_driver("test1", False),
            QueueingHint.SKIP,
            id="original StorageCapacity is false",
        ),
        pytest.param(
            csi_pod("test1"),
            csi_driver("test1", True),
            csi_driver("test1", None),
            QueueingHint.QUEUE,
            id="modified StorageCapacity is nil",
        ),
        pytest.param(
            csi_pod("test1"),
            csi_driver("test1", True),
            csi_driver("test1", True),
            QueueingHint.SKIP,
            id="modified StorageCapacity is true",
        ),
        pytest.param(
            csi_pod("test1"),
            csi_driver("test1", True),
            csi_driver("test1", False),
            QueueingHint.QUEUE,
            id="modified StorageCapacity is false",
        ),
    ],
)
def test_is_schedulable_after_csi_driver_change(
    pod: JSON, old: JSON, new: JSON, expected: QueueingHint
) -> None:
    """A driver that stops asking for capacity checks moves a pod with an inline CSI volume
    of it (upstream looks at inline volumes only)."""
    assert hint("storage.k8s.io/CSIDriverUpdate", pod, old, new) is expected
