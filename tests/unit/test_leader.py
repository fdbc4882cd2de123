"""Leader election: the pure decision, then the elector over an in-memory Lease API.

Time is virtual throughout: `VirtualClock` is both the elector's clock and its sleep, so a
15-second lease expires in microseconds and nothing depends on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from scheduler.kube.client import ApiError
from scheduler.kube.leader import (
    RELEASED_LEASE_SECONDS,
    Action,
    LeaderElector,
    LeaseConfig,
    LeaseRecord,
    Observation,
    decide,
    expired,
    micro_time,
    observe,
    released,
)

CONFIG = LeaseConfig(
    namespace="ns", name="lock", lease_duration=15, renew_deadline=10, retry_period=2
)
STAMP = "2030-01-01T00:00:00.000000Z"
OLD = "2020-01-01T00:00:00.000000Z"


def lease(
    holder: str = "other",
    *,
    duration: int = 15,
    renewed: str = OLD,
    acquired: str = OLD,
    transitions: int = 3,
) -> LeaseRecord:
    return LeaseRecord(
        holder=holder,
        lease_duration_seconds=duration,
        acquire_time=acquired,
        renew_time=renewed,
        transitions=transitions,
    )


# --- the pure decision ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "observed_at", "now", "action", "written"),
    [
        pytest.param(
            None,
            0.0,
            100.0,
            Action.CREATE,
            LeaseRecord("me", 15, STAMP, STAMP, 0),
            id="no lease: create it naming us, transitions 0",
        ),
        pytest.param(
            lease(""),
            100.0,
            100.0,
            Action.ACQUIRE,
            LeaseRecord("me", 15, STAMP, STAMP, 4),
            id="released lease (empty holder): take it at once, transitions + 1",
        ),
        pytest.param(
            lease("me", duration=7),
            90.0,
            100.0,
            Action.RENEW,
            LeaseRecord("me", 15, OLD, STAMP, 3),
            id="own lease: renew, keep acquireTime and transitions, rewrite our duration",
        ),
        pytest.param(
            lease("other"),
            90.0,
            100.0,
            Action.WAIT,
            None,
            id="other holder seen changing 10s ago: wait",
        ),
        pytest.param(
            lease("other"),
            80.0,
            100.0,
            Action.ACQUIRE,
            LeaseRecord("me", 15, STAMP, STAMP, 4),
            id="other holder unchanged for 20s > 15s: take it, transitions + 1",
        ),
        pytest.param(
            lease("other"),
            85.0,
            100.0,
            Action.ACQUIRE,
            LeaseRecord("me", 15, STAMP, STAMP, 4),
            id="other holder unchanged for exactly its duration: expired",
        ),
        pytest.param(
            lease("other", duration=60),
            80.0,
            100.0,
            Action.WAIT,
            None,
            id="expiry uses the record's leaseDurationSeconds, not our config",
        ),
        pytest.param(
            lease("other", renewed="2001-01-01T00:00:00.000000Z"),
            99.0,
            100.0,
            Action.WAIT,
            None,
            id="clock skew: server renewTime decades old but just seen to change: wait",
        ),
        pytest.param(
            lease("other", renewed="2099-01-01T00:00:00.000000Z"),
            50.0,
            100.0,
            Action.ACQUIRE,
            LeaseRecord("me", 15, STAMP, STAMP, 4),
            id="clock skew: server renewTime in the future but unchanged for 50s: take it",
        ),
    ],
)
def test_decide(
    current: LeaseRecord | None,
    observed_at: float,
    now: float,
    action: Action,
    written: LeaseRecord | None,
) -> None:
    """decide() acts on the locally observed time and the record's holder, never on renewTime."""
    decision = decide(current, observed_at, now, "me", CONFIG, stamp=STAMP)
    assert decision.action is action
    assert decision.record == written


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        pytest.param(None, lease(), Observation(lease(), 50.0), id="first sight"),
        pytest.param(
            Observation(lease(), 10.0),
            lease(),
            Observation(lease(), 10.0),
            id="unchanged record keeps the time it was first seen",
        ),
        pytest.param(
            Observation(lease(), 10.0),
            lease(renewed=STAMP),
            Observation(lease(renewed=STAMP), 50.0),
            id="a renew (new renewTime) restarts the clock",
        ),
        pytest.param(
            Observation(lease(), 10.0),
            lease("third"),
            Observation(lease("third"), 50.0),
            id="a new holder restarts the clock",
        ),
    ],
)
def test_observe(previous: Observation | None, current: LeaseRecord, expected: Observation) -> None:
    """The observed time moves only when the record changes."""
    assert observe(previous, current, 50.0) == expected


def test_expired_is_measured_from_observation() -> None:
    """A record expires leaseDurationSeconds after it was observed, not before."""
    assert not expired(lease(duration=15), 100.0, 114.999)
    assert expired(lease(duration=15), 100.0, 115.0)


def test_released_clears_holder_and_keeps_transitions() -> None:
    """release writes no holder, a 1s duration and the same transition count (client-go)."""
    assert released(lease("me", transitions=7), STAMP) == LeaseRecord(
        "", RELEASED_LEASE_SECONDS, STAMP, STAMP, 7
    )


def test_record_round_trips_through_spec() -> None:
    """LeaseRecord maps to the Lease spec's field names and back."""
    record = lease("me", duration=15, transitions=2)
    assert record.to_spec() == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": OLD,
        "renewTime": OLD,
        "leaseTransitions": 2,
    }
    assert LeaseRecord.from_spec(record.to_spec()) == record
    assert LeaseRecord.from_spec({}) == LeaseRecord()
    assert LeaseRecord.from_spec({"holderIdentity": None}) == LeaseRecord()


def test_micro_time_is_utc_rfc3339_with_microseconds() -> None:
    """MicroTime strings are what the API server expects, whatever the input zone."""
    moment = datetime(2024, 5, 6, 9, 8, 7, 654321, tzinfo=timezone(timedelta(hours=2)))
    assert micro_time(moment) == "2024-05-06T07:08:07.654321Z"
    assert micro_time(moment.astimezone(UTC)) == "2024-05-06T07:08:07.654321Z"


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        pytest.param(LeaseConfig(), [], id="kube-scheduler defaults are valid"),
        pytest.param(
            LeaseConfig(lease_duration=2, renew_deadline=1.5, retry_period=0.25),
            [],
            id="short test timings are valid",
        ),
        pytest.param(
            LeaseConfig(lease_duration=10, renew_deadline=10),
            ["lease_duration: must be greater than renew_deadline (10 <= 10)"],
            id="renew deadline must end before the lease",
        ),
        pytest.param(
            LeaseConfig(renew_deadline=2.4),
            ["renew_deadline: must be greater than retry_period * 1.2 (2.4 <= 2.4)"],
            id="renew deadline must leave room for a jittered retry",
        ),
        pytest.param(
            LeaseConfig(namespace="", name="", retry_period=0),
            [
                "namespace: must not be empty",
                "name: must not be empty",
                "retry_period: must be greater than zero",
            ],
            id="every error is reported with its field",
        ),
    ],
)
def test_config_validate(config: LeaseConfig, errors: list[str]) -> None:
    """validate() returns every problem, each prefixed by its field."""
    assert config.validate() == errors


def test_lease_seconds_round_up() -> None:
    """A fractional lease duration is written rounded up, so standbys never wait less."""
    assert LeaseConfig(lease_duration=2.2, renew_deadline=1.5, retry_period=0.25).lease_seconds == 3
    assert LeaseConfig().lease_seconds == 15


def test_elector_rejects_invalid_config() -> None:
    """An invalid config fails at construction, naming the field."""
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElector(FakeLeases(), LeaseConfig(renew_deadline=20))


def test_default_identity_is_unique_per_elector() -> None:
    """With no identity configured, each elector gets hostname_uuid like kube-scheduler."""
    a, b = LeaderElector(FakeLeases(), CONFIG), LeaderElector(FakeLeases(), CONFIG)
    assert a.identity != b.identity
    assert a.identity.count("_") >= 1 and len(a.identity.rsplit("_", 1)[1]) == 36


# --- the elector over an in-memory API ---------------------------------------------------------


class VirtualClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class FakeLeases:
    """One Lease behind get/post/put, with resourceVersion conflicts like the API server."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.version = 0
        self.calls: list[str] = []
        self.failing = False  # every request answers 500
        self.before_write: Callable[[], Awaitable[None]] | None = None  # a rival's move

    def _check(self, verb: str) -> None:
        self.calls.append(verb)
        if self.failing:
            raise ApiError(500, "InternalError", "etcd is sad", verb, "/lease")

    def store(self, spec: dict[str, Any], name: str = "lock") -> dict[str, Any]:
        self.version += 1
        self.obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(self.version)},
            "spec": copy.deepcopy(spec),
        }
        return copy.deepcopy(self.obj)

    @property
    def record(self) -> LeaseRecord:
        assert self.obj is not None
        return LeaseRecord.from_spec(self.obj["spec"])

    async def get(self, path: str) -> Any:
        self._check("GET")
        if self.obj is None:
            raise ApiError(404, "NotFound", "not found", "GET", path)
        return copy.deepcopy(self.obj)

    async def post(self, path: str, body: Any) -> Any:
        self._check("POST")
        if self.before_write is not None:
            await self.before_write()
        if self.obj is not None:
            raise ApiError(409, "AlreadyExists", "already exists", "POST", path)
        return self.store(body["spec"], body["metadata"]["name"])

    async def put(self, path: str, body: Any) -> Any:
        self._check("PUT")
        if self.before_write is not None:
            await self.before_write()
        assert self.obj is not None
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified", "PUT", path)
        return self.store(body["spec"])


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def api() -> FakeLeases:
    return FakeLeases()


def elector(api: FakeLeases, clock: VirtualClock, identity: str, **callbacks: Any) -> LeaderElector:
    config = LeaseConfig(
        namespace="ns",
        name="lock",
        identity=identity,
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
    )
    return LeaderElector(api, config, clock=clock, sleep=clock.sleep, **callbacks)


async def test_first_candidate_creates_second_waits(api: FakeLeases, clock: VirtualClock) -> None:
    """The first candidate creates the Lease and leads; the second sees it held and waits."""
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert (a.is_leader, b.is_leader, b.leader) == (True, False, "a")
    assert api.record.holder == "a" and api.record.transitions == 0
    assert api.record.acquire_time == api.record.renew_time is not None


async def test_renew_takes_the_fast_path(api: FakeLeases, clock: VirtualClock) -> None:
    """A leader renews with one PUT of its cached object, no GET, keeping acquireTime."""
    a = elector(api, clock, "a")
    await a.try_acquire_or_renew()
    acquired = api.record.acquire_time
    api.calls.clear()
    await clock.sleep(2)
    assert await a.try_acquire_or_renew()
    assert api.calls == ["PUT"]
    assert api.record.acquire_time == acquired and api.record.transitions == 0


async def test_fast_path_conflict_falls_back_to_read(api: FakeLeases, clock: VirtualClock) -> None:
    """If the cached object is stale (409), the leader re-reads and renews what it finds."""
    a = elector(api, clock, "a")
    await a.try_acquire_or_renew()
    api.store(api.obj["spec"] if api.obj else {})  # same record, newer resourceVersion
    api.calls.clear()
    assert await a.try_acquire_or_renew()
    assert api.calls == ["PUT", "GET", "PUT"]
    assert a.is_leader


async def test_standby_takes_over_only_after_observed_expiry(
    api: FakeLeases, clock: VirtualClock
) -> None:
    """A silent holder is replaced once its record went unchanged for 15s by the standby's clock."""
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    await clock.sleep(100)  # a has stopped renewing; b has not looked yet
    assert not await b.try_acquire_or_renew()  # first sight starts b's clock: not expired
    await clock.sleep(14.9)
    assert not await b.try_acquire_or_renew()
    await clock.sleep(0.1)
    assert await b.try_acquire_or_renew()
    assert (api.record.holder, api.record.transitions) == ("b", 1)
    assert api.record.acquire_time == api.record.renew_time
    assert not a.is_leader  # by a's own clock, long past its renew deadline


async def test_a_renewing_holder_is_never_taken_over(api: FakeLeases, clock: VirtualClock) -> None:
    """Each renew changes the record, which restarts the standby's wait."""
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    for _ in range(20):
        await clock.sleep(2)
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    assert api.record.holder == "a"


async def test_lost_update_race_rereads(api: FakeLeases, clock: VirtualClock) -> None:
    """When a rival writes between our read and our PUT (409), we re-read and see the winner."""
    b, c = elector(api, clock, "b"), elector(api, clock, "c")
    api.store(lease("").to_spec())  # released: free for all

    async def rival() -> None:
        api.before_write = None
        assert await c.try_acquire_or_renew()

    api.before_write = rival
    assert not await b.try_acquire_or_renew()
    assert (api.record.holder, api.record.transitions) == ("c", 4)
    assert b.leader == "c" and not b.is_leader


async def test_lost_create_race_rereads(api: FakeLeases, clock: VirtualClock) -> None:
    """When a rival creates the Lease first (409 AlreadyExists), we re-read and wait."""
    b, c = elector(api, clock, "b"), elector(api, clock, "c")

    async def rival() -> None:
        api.before_write = None
        assert await c.try_acquire_or_renew()

    api.before_write = rival
    assert not await b.try_acquire_or_renew()
    assert api.calls == ["GET", "POST", "GET", "POST", "GET"]
    assert b.leader == "c" and api.record.holder == "c"


async def test_is_leader_follows_the_clock(api: FakeLeases, clock: VirtualClock) -> None:
    """is_leader turns False once renew_deadline passes, with no call to the elector."""
    a = elector(api, clock, "a")
    await a.try_acquire_or_renew()
    clock.now += 9.99
    assert a.is_leader
    clock.now += 0.01
    assert not a.is_leader


async def test_run_gives_up_after_renew_deadline(api: FakeLeases, clock: VirtualClock) -> None:
    """API errors are retried until renew_deadline; then on_stopped_leading and run() returns."""
    events: list[str] = []
    a = elector(
        api,
        clock,
        "a",
        on_started_leading=lambda: events.append("started"),
        on_stopped_leading=lambda: events.append(f"stopped at {clock.now - 1000:g}"),
    )

    async def break_api_after_start() -> None:
        while "started" not in events:
            await asyncio.sleep(0)
        api.failing = True

    breaker = asyncio.create_task(break_api_after_start())
    await asyncio.wait_for(a.run(), timeout=5)
    await breaker
    assert events == ["started", "stopped at 10"]
    assert not a.is_leader
    assert api.record.holder == "a"  # never released: the standby waits for expiry
    renews = api.calls.count("PUT") + api.calls.count("GET") - 1  # minus the acquiring GET
    assert renews >= 5  # retried every retry_period until the deadline


async def test_run_returns_when_another_holder_is_seen(
    api: FakeLeases, clock: VirtualClock
) -> None:
    """A leader that finds the Lease taken stops at once instead of waiting for its deadline."""
    events: list[str] = []
    a = elector(api, clock, "a", on_stopped_leading=lambda: events.append("stopped"))
    run = asyncio.create_task(a.run())
    while not a.is_leader:
        await asyncio.sleep(0)
    api.store(lease("thief").to_spec())  # e.g. a was paused and its lease expired elsewhere
    await asyncio.wait_for(run, timeout=5)
    assert events == ["stopped"]
    assert a.leader == "thief" and not a.is_leader


async def test_release_hands_over_at_once(api: FakeLeases, clock: VirtualClock) -> None:
    """release() clears the holder; a standby takes the Lease without waiting for expiry."""
    events: list[str] = []
    a = elector(api, clock, "a", on_stopped_leading=lambda: events.append("stopped"))
    b = elector(api, clock, "b")
    run = asyncio.create_task(a.run())
    while not a.is_leader:
        await asyncio.sleep(0)
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert not a.is_leader and api.record.holder == ""
    assert api.record.lease_duration_seconds == RELEASED_LEASE_SECONDS
    assert await b.try_acquire_or_renew()
    assert (api.record.holder, api.record.transitions) == ("b", 1)
    await asyncio.wait_for(run, timeout=5)  # run() ends after release
    assert events == ["stopped"]
    assert not await a.try_acquire_or_renew()  # a released elector never comes back


async def test_cancelled_run_then_release(api: FakeLeases, clock: VirtualClock) -> None:
    """Cancelling run() calls on_stopped_leading and keeps the Lease; release() then frees it."""
    events: list[str] = []
    a = elector(api, clock, "a", on_stopped_leading=lambda: events.append("stopped"))
    run = asyncio.create_task(a.run())
    while not a.is_leader:
        await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert events == ["stopped"]
    assert api.record.holder == "a"
    await a.release()
    assert api.record.holder == ""


async def test_release_with_stale_version_rereads(api: FakeLeases, clock: VirtualClock) -> None:
    """release() after a 409 re-reads, and clears the Lease only if it is still ours."""
    a = elector(api, clock, "a")
    await a.try_acquire_or_renew()
    api.store(api.obj["spec"] if api.obj else {})  # still ours, newer resourceVersion
    await a.release()
    assert api.record.holder == ""

    b = elector(api, clock, "b")
    assert await b.try_acquire_or_renew()
    api.store(lease("c").to_spec())  # c took it meanwhile
    await b.release()
    assert api.record.holder == "c"


async def test_release_when_not_leader_writes_nothing(api: FakeLeases, clock: VirtualClock) -> None:
    """A standby's release() makes no request at all."""
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    await b.try_acquire_or_renew()
    api.calls.clear()
    await b.release()
    assert api.calls == [] and api.record.holder == "a"


class Status:
    """A LeaderMetrics that keeps every report: (lease name, leading)."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, bool]] = []

    def set_leader(self, name: str, leading: bool) -> None:
        self.reports.append((name, leading))


@pytest.mark.parametrize(
    "end",
    [
        pytest.param("taken", id="lease-taken"),
        pytest.param("released", id="released"),
        pytest.param("cancelled", id="cancelled"),
    ],
)
async def test_metrics_hear_standby_leading_and_lost(
    api: FakeLeases, clock: VirtualClock, end: str
) -> None:
    """leader_election_master_status's feed: False from construction (client-go's
    NewLeaderElector), True once leading, False again however leading ends."""
    status = Status()
    a = elector(api, clock, "a", metrics=status)
    assert status.reports == [("lock", False)]
    run = asyncio.create_task(a.run())
    while not a.is_leader:
        await asyncio.sleep(0)
    assert status.reports == [("lock", False), ("lock", True)]

    if end == "taken":
        api.store(lease("thief").to_spec())
        await asyncio.wait_for(run, timeout=5)
    elif end == "released":
        await a.release()
        await asyncio.wait_for(run, timeout=5)
    else:
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    assert status.reports == [("lock", False), ("lock", True), ("lock", False)]


async def test_standby_metrics_stay_false(api: FakeLeases, clock: VirtualClock) -> None:
    """A candidate that never acquires reports only the standby False."""
    status = Status()
    b = elector(api, clock, "b", metrics=status)
    run = asyncio.create_task(b.run())
    for second in range(30):  # "other" renews between any two of b's reads: never expires
        api.store(lease("other", renewed=f"2030-01-01T00:00:{second:02d}.000000Z").to_spec())
        await asyncio.sleep(0)
    assert api.record.holder == "other"
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    assert status.reports == [("lock", False)]


async def test_a_renew_stuck_on_a_dead_connection_is_abandoned_in_time(api: FakeLeases) -> None:
    """A renew whose request never returns (a connection black-holed without a reset) is cut
    at a third of the renew deadline, and the next attempt keeps the lease: the leader does
    not lose it to one dead connection. Real time; durations long enough for a busy machine."""
    events: list[str] = []
    config = LeaseConfig(
        namespace="ns",
        name="lock",
        identity="a",
        lease_duration=6,
        renew_deadline=3,
        retry_period=0.5,
    )
    a = LeaderElector(
        api,
        config,
        on_started_leading=lambda: events.append("started"),
        on_stopped_leading=lambda: events.append("stopped"),
    )
    hung = asyncio.Event()

    async def hang_once() -> None:
        if not hung.is_set():
            hung.set()
            await asyncio.sleep(3600)

    run = asyncio.create_task(a.run())
    while "started" not in events:
        await asyncio.sleep(0.01)
    api.before_write = hang_once
    await asyncio.sleep(4.5)  # well past the renew deadline (a stuck attempt is cut at 1 s)
    assert hung.is_set() and events == ["started"] and a.is_leader
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
