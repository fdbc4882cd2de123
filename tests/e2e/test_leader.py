"""Leader election against a real API server: two electors contend for one Lease.

Timings are short (lease 2 s, renew deadline 1.5 s, retry 0.25 s) so hand-overs happen within
seconds, but no test asserts how long anything took: each waits, with a generous bound, for a
state (who holds the Lease, how many transitions) and asserts on that state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from scheduler.kube.client import ApiError, Client
from scheduler.kube.leader import LeaderElector, LeaseConfig, LeaseRecord

# The client and namespace fixtures live on the session's event loop (pyproject's
# asyncio_default_fixture_loop_scope); the tests must run on that loop too.
pytestmark = pytest.mark.asyncio(loop_scope="session")

LEASE = "berth-leader"
PATIENCE = 60.0  # seconds: an upper bound for a wait on a busy machine, never an expectation
POLL = 0.05


@dataclass
class Candidate:
    """One elector, its run() task and what its callbacks reported."""

    elector: LeaderElector
    events: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    @property
    def identity(self) -> str:
        return self.elector.identity

    async def stop(self) -> None:
        """Cancel run() without releasing, as a crash or a kill would leave things."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def read_lease(client: Client, namespace: str) -> LeaseRecord | None:
    try:
        obj = await client.get(LeaseConfig(namespace=namespace, name=LEASE).path)
    except ApiError as err:
        if err.status == 404:
            return None
        raise
    return LeaseRecord.from_spec(obj.get("spec") or {})


async def eventually(
    what: str, check: Callable[[], Awaitable[bool]], every: Callable[[], None] | None = None
) -> None:
    """Poll `check` until it holds; fail after PATIENCE. `every` runs on each poll (invariants)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while True:
        if every is not None:
            every()
        if await check():
            return
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(POLL)


@pytest.fixture
async def candidates(client: Client, namespace: str) -> AsyncIterator[Callable[..., Candidate]]:
    """Make candidates for the test's Lease; every run() still going is cancelled afterwards."""
    made: list[Candidate] = []

    def make(identity: str, lease_duration: float = 2.0) -> Candidate:
        config = LeaseConfig(
            namespace=namespace,
            name=LEASE,
            identity=identity,
            lease_duration=lease_duration,
            renew_deadline=1.5,
            retry_period=0.25,
        )
        events: list[str] = []
        elector = LeaderElector(
            client,
            config,
            on_started_leading=lambda: events.append("started"),
            on_stopped_leading=lambda: events.append("stopped"),
        )
        candidate = Candidate(elector, events)
        candidate.task = asyncio.create_task(candidate.elector.run(), name=f"elect-{identity}")
        made.append(candidate)
        return candidate

    yield make
    for candidate in made:
        await candidate.stop()


async def holds(client: Client, namespace: str, candidate: Candidate) -> bool:
    """The Lease names the candidate, and the candidate believes it leads."""
    record = await read_lease(client, namespace)
    return (
        record is not None and record.holder == candidate.identity and (candidate.elector.is_leader)
    )


def no_two_leaders(*cs: Candidate) -> Callable[[], None]:
    def check() -> None:
        leaders = [c.identity for c in cs if c.elector.is_leader]
        assert len(leaders) <= 1, f"two leaders at once: {leaders}"

    return check


async def settle(client: Client, namespace: str, *cs: Candidate) -> tuple[Candidate, Candidate]:
    """Wait until one candidate leads and holds the Lease; return (leader, standby)."""
    by_id = {c.identity: c for c in cs}

    async def one_leads() -> bool:
        record = await read_lease(client, namespace)
        return (
            record is not None
            and record.holder in by_id
            and await holds(client, namespace, by_id[record.holder])
        )

    await eventually("one candidate to lead", one_leads, no_two_leaders(*cs))
    record = await read_lease(client, namespace)
    assert record is not None
    leader = by_id[record.holder]
    (standby,) = (c for c in cs if c is not leader)
    return leader, standby


async def test_two_electors_exactly_one_leader(
    client: Client, namespace: str, candidates: Callable[..., Candidate]
) -> None:
    """Of two candidates one leads and keeps renewing; the other stands by; never both lead."""
    a, b = candidates("a"), candidates("b")
    leader, standby = await settle(client, namespace, a, b)
    start = await read_lease(client, namespace)
    assert start is not None
    assert start.acquire_time and start.renew_time and start.lease_duration_seconds == 2
    assert leader.events == ["started"] and standby.events == []
    assert standby.elector.leader in (leader.identity, "")

    renews: set[str | None] = {start.renew_time}

    async def renewed_thrice() -> bool:
        record = await read_lease(client, namespace)
        if record is not None:
            renews.add(record.renew_time)
        return len(renews) > 3

    await eventually("three renews", renewed_thrice, no_two_leaders(a, b))
    now = await read_lease(client, namespace)
    assert now is not None
    if now.holder == leader.identity:  # unless a machine slow enough to miss renews handed over
        assert (now.acquire_time, now.transitions) == (start.acquire_time, start.transitions)
    else:
        assert now.transitions > start.transitions


async def test_standby_takes_over_when_leader_stops(
    client: Client, namespace: str, candidates: Callable[..., Candidate]
) -> None:
    """When the leader dies without releasing, the standby takes the Lease after it expires."""
    a, b = candidates("a"), candidates("b")
    leader, standby = await settle(client, namespace, a, b)
    before = await read_lease(client, namespace)
    assert before is not None and before.holder == leader.identity

    await leader.stop()
    assert leader.events == ["started", "stopped"]

    await eventually(
        "the standby to take over", lambda: holds(client, namespace, standby), no_two_leaders(a, b)
    )
    after = await read_lease(client, namespace)
    assert after is not None
    assert after.transitions == before.transitions + 1
    assert after.acquire_time != before.acquire_time
    assert standby.events == ["started"]
    # The standby waited out the lease (2 s) from the old leader's last renew, which is longer
    # than the old leader's renew deadline (1.5 s): by its own clock it has stopped leading.
    assert not leader.elector.is_leader


async def test_release_hands_over_before_expiry(
    client: Client, namespace: str, candidates: Callable[..., Candidate]
) -> None:
    """release() clears the holder, so the standby takes over without waiting out the lease.

    The lease here is long (10 minutes, beyond PATIENCE), so a take-over within the wait can
    only come from the release, not from expiry.
    """
    a = candidates("a", lease_duration=600.0)
    b = candidates("b", lease_duration=600.0)
    leader, standby = await settle(client, namespace, a, b)
    before = await read_lease(client, namespace)
    assert before is not None

    await leader.stop()  # clean shutdown: stop the work, then give the Lease up
    await leader.elector.release()
    assert not leader.elector.is_leader
    released = await read_lease(client, namespace)
    assert released is not None and released.holder in ("", standby.identity)

    await eventually(
        "the standby to take over", lambda: holds(client, namespace, standby), no_two_leaders(a, b)
    )
    after = await read_lease(client, namespace)
    assert after is not None
    assert (after.transitions, after.lease_duration_seconds) == (before.transitions + 1, 600)
    assert leader.events == ["started", "stopped"] and standby.events == ["started"]
