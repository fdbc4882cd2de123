"""scheduler.controller: the PodGroup status computation (upstream's PodGroupReconciler cases),
the status patch, memberships, and the reconciler against a fake API."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler import cli
from scheduler.controller import (
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    SCHEDULING,
    Conflict,
    GroupKey,
    GroupStatus,
    Member,
    Memberships,
    Reconciler,
    member_of,
    min_member_of,
    occupied_by,
    settle,
    status_patch,
    step,
    wait_for_api,
)
from scheduler.kube.client import ApiError
from tests.builders import make_pod

JSON = dict[str, Any]
NOW = "2030-01-02T03:04:05Z"
EARLIER = "2029-12-31T23:00:00Z"
NS = "default"
param = pytest.param


def pods(
    n: int, phase: str = "Pending", node: str = "", owners: tuple[str, ...] = ()
) -> list[Member]:
    return [Member(f"pod{i + 1}", phase, node, owners) for i in range(n)]


def status(phase: str = "", **fields: Any) -> GroupStatus:
    return GroupStatus(phase=phase, **fields)


# --------------------------------------------------------------------------------------------
# settle: where upstream's chain of reconciles ends (pkg/controllers/podgroup_controller_test.go)
# --------------------------------------------------------------------------------------------

SETTLE = [
    # Upstream's Test_Run cases (upstream builds only the first two pods of each case).
    param(SCHEDULING, 2, pods(2, "Running"), RUNNING, id="Group running"),
    param(SCHEDULING, 2, pods(4, "Running"), RUNNING, id="Group running, more than min member"),
    param(SCHEDULING, 2, pods(2, "Failed"), FAILED, id="Group failed"),
    param(SCHEDULING, 2, pods(2, "Succeeded"), FINISHED, id="Group finished"),
    param(PENDING, 2, pods(2), SCHEDULING, id="Group status convert from pending to prescheduling"),
    param(
        SCHEDULING,
        2,
        pods(2, "Succeeded"),
        FINISHED,
        id="Group status convert from scheduling to finished",
    ),
    param(PENDING, 3, pods(2, "Running"), PENDING, id="Group status keeps pending"),
    param(
        PENDING,
        2,
        pods(2, "Succeeded"),
        FINISHED,
        id="Group status convert from pending to finished",
    ),
    param(PENDING, 3, pods(2), PENDING, id="Group min member more than Pod number"),
    param(RUNNING, 4, pods(2), PENDING, id="Group status convert from running to pending"),
    # berth's own cases.
    param("", 3, [], PENDING, id="new group without pods"),
    param("", 3, pods(3, "Running", "n1"), RUNNING, id="new group whose pods already run"),
    param(SCHEDULING, 3, pods(3, "Pending", "n1"), SCHEDULING, id="bound, not yet running"),
    param(
        RUNNING,
        3,
        [*pods(2, "Running"), Member("pod9", "Failed")],
        FAILED,
        id="one of the quorum failed",
    ),
    param(
        RUNNING,
        3,
        [*pods(3, "Running"), Member("pod9", "Failed")],
        FAILED,
        id="a failure beyond the quorum still fails the group (upstream)",
    ),
    param(
        RUNNING,
        2,
        [*pods(1, "Succeeded"), Member("pod9", "Running")],
        RUNNING,
        id="succeeded and running make the quorum together",
    ),
    param(FAILED, 2, pods(2, "Running"), FAILED, id="failed is final"),
    param(FINISHED, 2, [], FINISHED, id="finished is final"),
    param("Unknown", 2, pods(2, "Running"), RUNNING, id="Unknown takes the counting branch"),
    param("Scheduled", 2, pods(2, "Running"), RUNNING, id="pre-v0.26 phase Scheduled"),
    # Upstream stops reconciling a Pending/Scheduling group with no running pod whose
    # scheduleStartTime is more than 48 h after its creation ("Group should not enqueue,
    # created too long"); berth keeps counting (docs/podgroup-crd.md).
    param(PENDING, 2, pods(2, "Running"), RUNNING, id="created too long ago: berth counts on"),
]


@pytest.mark.parametrize(("before", "min_member", "members", "after"), SETTLE)
def test_settle_reaches_upstreams_phase(
    before: str, min_member: int, members: list[Member], after: str
) -> None:
    """The phase upstream's reconciles end in for these members."""
    assert settle(status(before), min_member, NS, members, NOW).phase == after


def test_one_step_is_one_upstream_reconcile() -> None:
    """ "" → Pending → Scheduling (owners, start time) → counted: one transition per step."""
    members = pods(2, "Running", "n1", owners=("job-a",))
    first = step(status(), 2, NS, members, NOW)
    assert first == status(PENDING)
    second = step(first, 2, NS, members, NOW)
    assert second == status(SCHEDULING, occupied_by="default/job-a", schedule_start_time=NOW)
    third = step(second, 2, NS, members, NOW)
    assert third == replace(second, phase=RUNNING, scheduled=2, running=2)
    assert step(third, 2, NS, members, NOW) == third


def test_counts() -> None:
    """scheduled counts bound pods whatever their phase; the others count phases."""
    members = [
        Member("a", "Pending"),
        Member("b", "Pending", "n1"),
        Member("c", "Running", "n1"),
        Member("d", "Succeeded", "n2"),
        Member("e", "Failed", "n2"),
        Member("f", "Unknown", "n2"),
    ]
    after = settle(status(SCHEDULING), 10, NS, members, NOW)
    assert (after.scheduled, after.running, after.succeeded, after.failed) == (5, 1, 1, 1)
    assert after.phase == PENDING  # 6 pods < minMember 10


def test_counts_stay_while_pending() -> None:
    """Upstream refreshes counts only outside Pending: a Pending group keeps the last ones."""
    before = status(PENDING, running=2, scheduled=2)
    assert settle(before, 3, NS, pods(1, "Running", "n1"), NOW) == before


@pytest.mark.parametrize(
    ("owners", "previous", "expected"),
    [
        param(("new-occupied",), "test", "default/new-occupied", id="a single ownerReference"),
        param(
            ("new-occupied-2", "new-occupied-1"),
            "test",
            "default/new-occupied-1,default/new-occupied-2",
            id="multi ownerReferences",
        ),
        param((), "test", "test", id="no ownerReferences: the field keeps its value"),
    ],
)
def test_occupied_by_is_filled_leaving_pending(
    owners: tuple[str, ...], previous: str, expected: str
) -> None:
    """Upstream's TestFillGroupStatusOccupied."""
    before = status(PENDING, occupied_by=previous)
    assert settle(before, 2, NS, pods(2, owners=owners), NOW).occupied_by == expected


def test_occupied_by_takes_the_first_member_by_name() -> None:
    """Upstream's pods[0] comes from an unordered cache; berth's is the first name."""
    members = [Member("b", owners=("job-b",)), Member("a", owners=("job-a",))]
    assert settle(status(PENDING), 2, NS, members, NOW).occupied_by == "default/job-a"
    assert occupied_by("ns", Member("x", owners=("o2", "o1"))) == "ns/o1,ns/o2"


def test_schedule_start_time_is_set_once() -> None:
    """Set when the group first reaches Scheduling; never moved afterwards."""
    assert settle(status(PENDING), 1, NS, pods(1), NOW).schedule_start_time == NOW
    kept = status(PENDING, schedule_start_time=EARLIER)
    assert settle(kept, 1, NS, pods(1), NOW).schedule_start_time == EARLIER
    assert settle(status(PENDING), 2, NS, pods(1), NOW).schedule_start_time == ""


PHASES = st.sampled_from(["", PENDING, SCHEDULING, RUNNING, FINISHED, FAILED, "Unknown"])
MEMBERS = st.lists(
    st.builds(
        Member,
        name=st.text("abc", min_size=1, max_size=3),
        phase=st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
        node_name=st.sampled_from(["", "n1"]),
        owners=st.lists(st.sampled_from(["j1", "j2"]), max_size=2).map(tuple),
    ),
    max_size=6,
)


@given(phase=PHASES, min_member=st.integers(1, 5), members=MEMBERS)
def test_settle_is_a_fixed_point(phase: str, min_member: int, members: list[Member]) -> None:
    """Settling a settled status changes nothing (so a controller's own write, seen again,
    writes nothing), and a final phase is never left."""
    settled = settle(status(phase), min_member, NS, members, NOW)
    assert step(settled, min_member, NS, members, NOW) == settled
    assert settle(settled, min_member, NS, members, NOW) == settled
    if phase in (FINISHED, FAILED):
        assert settled.phase == phase


# --------------------------------------------------------------------------------------------
# reading the API's objects, and the patch
# --------------------------------------------------------------------------------------------


def test_member_of_a_pod() -> None:
    pod = make_pod("p").node("n1").owner("Job", "train").obj_()
    pod["status"] = {"phase": "Running"}
    assert member_of(pod) == Member("p", "Running", "n1", ("train",))
    assert member_of({"metadata": {"name": "q"}}) == Member("q", "Pending", "", ())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        param({"minMember": 3}, 3, id="set"),
        param({}, 1, id="absent: 1, as berth's scheduler reads it"),
        param({"minMember": 0}, 1, id="zero"),
        param({"minMember": "3"}, 1, id="not an integer"),
        param({"minMember": True}, 1, id="a boolean"),
    ],
)
def test_min_member(spec: JSON, expected: int) -> None:
    assert min_member_of({"spec": spec}) == expected


def test_status_from_the_api_reads_absent_and_malformed_fields_as_zero() -> None:
    raw = {"phase": "Running", "running": 2, "failed": "x", "scheduleStartTime": None}
    assert GroupStatus.from_api(raw) == status(RUNNING, running=2)
    assert GroupStatus.from_api(None) == status()


def test_status_patch() -> None:
    """Only what differs; a field that becomes zero is removed, as upstream's omitempty does."""
    before = status(RUNNING, occupied_by="ns/a", running=3, scheduled=3)
    assert status_patch(before, before) == {}
    after = replace(before, phase=PENDING, occupied_by="", running=2, scheduled=0)
    assert status_patch(before, after) == {
        "phase": PENDING,
        "occupiedBy": None,
        "running": 2,
        "scheduled": None,
    }


def test_memberships() -> None:
    """A pod's events name its group, and the group it left."""
    m = Memberships()
    a: GroupKey = (NS, "a")
    b: GroupKey = (NS, "b")
    assert m.update("u1", a, deleted=False) == {a}
    assert m.knows("u1")
    assert m.update("u1", b, deleted=False) == {a, b}  # relabelled
    assert m.update("u1", None, deleted=False) == {b}  # label removed
    assert not m.knows("u1")
    m.update("u2", a, deleted=False)
    assert m.update("u2", a, deleted=True) == {a}
    assert not m.knows("u2")
    assert m.update("u3", None, deleted=True) == set()


# --------------------------------------------------------------------------------------------
# the reconciler against a fake API
# --------------------------------------------------------------------------------------------


class FakeApi:
    """PodGroups in memory, with resourceVersions, the status subresource's merge patch and a
    CRD that may lack status.scheduled (scheduler-plugins' own)."""

    def __init__(self, *, has_scheduled: bool = True) -> None:
        self.groups: dict[GroupKey, JSON] = {}
        self.has_scheduled = has_scheduled
        self.gets = 0
        self.patches: list[JSON] = []
        self.events: list[tuple[str, str]] = []
        self.fail_next = 0  # that many requests raise
        self.before_patch: list[Any] = []  # callables run just before a patch lands

    def add(self, name: str, min_member: int, status: JSON | None = None) -> None:
        self.groups[(NS, name)] = {
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": f"uid-{name}",
                "resourceVersion": "1",
            },
            "spec": {"minMember": min_member},
            "status": status or {},
        }

    def bump(self, name: str, **status: Any) -> None:
        group = self.groups[(NS, name)]
        group["status"].update(status)
        group["metadata"]["resourceVersion"] = str(int(group["metadata"]["resourceVersion"]) + 1)

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("connection refused")

    async def get(self, namespace: str, name: str) -> JSON | None:
        self.gets += 1
        self._maybe_fail()
        group = self.groups.get((namespace, name))
        return None if group is None else {**group, "status": dict(group["status"])}

    async def patch_status(
        self, namespace: str, name: str, resource_version: str, status: JSON
    ) -> JSON | None:
        self._maybe_fail()
        while self.before_patch:
            self.before_patch.pop(0)()
        group = self.groups.get((namespace, name))
        if group is None:
            return None
        if group["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("the object has been modified")
        self.patches.append(status)
        for field, value in status.items():
            if field == "scheduled" and not self.has_scheduled:
                continue  # pruned by the structural schema
            if value is None:
                group["status"].pop(field, None)
            else:
                group["status"][field] = value
        self.bump(name)
        return group

    async def event(self, group: Any, reason: str, note: str) -> None:
        self.events.append((group["metadata"]["name"], reason))


def clock() -> dt.datetime:
    return dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def reconciler(api: FakeApi, members: dict[GroupKey, list[Member]], **kw: Any) -> Reconciler:
    def lookup(key: GroupKey) -> Iterable[Member]:
        return members.get(key, [])

    return Reconciler(api, lookup, clock=clock, **kw)


async def test_reconcile_writes_the_settled_status_once() -> None:
    """One patch carries the whole chain; the event reports the new phase; a second pass,
    as the controller's own write comes back as an event, writes nothing."""
    api = FakeApi()
    api.add("g", 3)
    r = reconciler(api, {(NS, "g"): pods(3, "Running", "n1", owners=("job",))})
    assert (await r.reconcile((NS, "g"))) is not None
    assert api.patches == [
        {
            "phase": RUNNING,
            "occupiedBy": "default/job",
            "scheduled": 3,
            "running": 3,
            "scheduleStartTime": NOW,
        }
    ]
    assert api.events == [("g", RUNNING)]
    await r.reconcile((NS, "g"))
    assert len(api.patches) == 1


async def test_reconcile_rereads_after_a_conflict() -> None:
    """A write based on a stale read is refused and redone from a fresh read: a Finished
    written in between is not overwritten."""
    api = FakeApi()
    api.add("g", 2, {"phase": RUNNING, "running": 2})
    api.before_patch.append(lambda: api.bump("g", phase=FINISHED))
    r = reconciler(api, {(NS, "g"): pods(1, "Running")})  # would go back to Pending
    result = await r.reconcile((NS, "g"))
    assert result is not None and result.phase == FINISHED
    assert api.patches == []
    assert api.groups[(NS, "g")]["status"]["phase"] == FINISHED


async def test_reconcile_of_a_missing_group() -> None:
    api = FakeApi()
    assert await reconciler(api, {(NS, "g"): pods(2)}).reconcile((NS, "g")) is None
    assert api.patches == []


async def test_a_crd_without_status_scheduled_is_not_written_to_in_vain() -> None:
    """scheduler-plugins' CRD prunes status.scheduled; the reconciler notices once and stops
    comparing it, so an unchanged group is not patched again and again."""
    api = FakeApi(has_scheduled=False)
    api.add("g", 2)
    r = reconciler(api, {(NS, "g"): pods(2, "Running", "n1")})
    await r.reconcile((NS, "g"))
    assert r.scheduled_pruned
    await r.reconcile((NS, "g"))
    assert len(api.patches) == 1
    assert "scheduled" not in api.groups[(NS, "g")]["status"]


async def test_requests_for_a_busy_group_are_coalesced() -> None:
    """A burst of requests while a pass runs costs one more pass, not one each."""
    api = FakeApi()
    api.add("g", 2)
    r = reconciler(api, {(NS, "g"): pods(2, "Running")})
    for _ in range(50):
        r.request((NS, "g"))
    await r.idle()
    assert api.gets <= 3
    assert api.groups[(NS, "g")]["status"]["phase"] == RUNNING


async def test_a_failed_pass_is_tried_again() -> None:
    """The API down for a moment: the pass is repeated after the retry delay."""
    api = FakeApi()
    api.add("g", 1)
    api.fail_next = 2
    r = reconciler(api, {(NS, "g"): pods(1, "Running")}, retry_delays=(0.0,))
    r.request((NS, "g"))
    await asyncio.wait_for(r.idle(), 5)
    assert api.groups[(NS, "g")]["status"]["phase"] == RUNNING


async def test_wait_for_api_until_podgroups_are_served(caplog: pytest.LogCaptureFixture) -> None:
    """Not served yet (404, or the group without podgroups), a passing error: keep polling,
    saying so once; served: return."""
    answers: list[Any] = [
        ApiError(404, "NotFound", "", "GET", "/apis/scheduling.x-k8s.io/v1alpha1"),
        {"resources": [{"name": "elasticquotas"}]},
        OSError("connection refused"),
        {"resources": [{"name": "podgroups"}, {"name": "podgroups/status"}]},
    ]

    class Discovery:
        async def get(self, path: str) -> Any:
            assert path == "/apis/scheduling.x-k8s.io/v1alpha1"
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    with caplog.at_level(logging.INFO, logger="berth.controller"):
        await asyncio.wait_for(wait_for_api(Discovery(), poll=0), 5)
    assert answers == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("waiting for the PodGroup CRD") for m in messages) == 1
    assert "the PodGroup CRD is served" in messages


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------


def test_a_bad_namespace_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["controller", "--namespace", "Team_A", "--kubeconfig", "/nonexistent"]) == 2
    assert "--namespace" in capsys.readouterr().err


def test_missing_credentials_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["controller", "--kubeconfig", "/nonexistent/kubeconfig"]) == 1
    assert "cannot load cluster credentials" in capsys.readouterr().err
