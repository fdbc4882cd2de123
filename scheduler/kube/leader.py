"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Several berth replicas may run; one leads (schedules) and the others stand by, exactly as
kube-scheduler does with client-go's `tools/leaderelection` and its `LeaseLock`. This module
mirrors that behaviour; the decision logic is pure (`observe`, `decide`, `released`) and takes
time as arguments, and `LeaderElector` wraps it with the API calls and the loops.

How a candidate decides, on every attempt:

- It reads the Lease. A Lease held by someone else is taken only once its record has not
  *changed* for the record's `leaseDurationSeconds`, measured on the candidate's own monotonic
  clock from the moment it first saw that version of the record (the "observed time"). The
  server's `renewTime` is never compared with a local clock, so clock skew between machines does
  not matter; only a difference in clock *rate* does (see client-go's package doc).
- A Lease with an empty `holderIdentity` (released) is free: anyone may take it at once.
- Writes are optimistic: PUT with `metadata.resourceVersion`. 409 Conflict means another
  candidate wrote first: re-read and decide again. A missing Lease is created; 409 AlreadyExists
  on create means another candidate created it first: re-read.
- Taking the Lease from someone else (or from nobody) sets `acquireTime` and adds one to
  `leaseTransitions`; renewing keeps both and sets `renewTime`.
- berth's one addition: every write naming us holder also sets the berth.dev/debug-endpoint
  annotation (`LeaseConfig.debug_url`; kube.debug_endpoint), and a release removes it, so that
  `berth explain` can find the leader. The spec is client-go's.

The holder's loop, on a timeline (defaults 15 s / 10 s / 2 s):

```
  acquire ──▶ renew ─2s─▶ renew ─2s─▶ fail ─2s─▶ fail ... ─▶ 10 s after the last good renew:
                                                             lost → on_stopped_leading, return
  standby:  read ─2..4.4s─▶ read ... record unchanged for 15 s by its own clock ─▶ take it
```

The renew fast path (client-go >= 1.25) PUTs the cached object without a GET; if that fails the
attempt falls back to GET + decide. A standby retries every `retry_period` stretched by up to
`JITTER_FACTOR`, so that candidates do not hit the API server in lockstep.

Where berth deliberately differs from client-go:

- The renew deadline runs from the start of the last successful renew, not from the start of a
  renew window one `retry_period` later. Since `renew_deadline < lease_duration`, and a standby
  cannot have seen our last renew before we sent it, `is_leader` is False before any standby can
  take over, for every valid configuration (client-go's window can overrun the lease when
  `retry_period + renew_deadline > lease_duration`).
- Seeing another holder while renewing ends leadership at once instead of polling on until the
  deadline.
- `leaseDurationSeconds` is the configured duration rounded *up* to whole seconds (client-go
  truncates), so standbys never wait less than the leader assumes.

This implementation does not fence: like client-go, it cannot guarantee that a paused leader
does not act after losing the Lease. `is_leader` is checked against the clock on every read to
keep that window as small as the clock allows.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from scheduler.kube.client import JSON, ApiError
from scheduler.kube.debug_endpoint import DebugEndpoint, annotate

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""A standby waits retry_period * (1 + random() * JITTER_FACTOR) between attempts (client-go)."""

RELEASED_LEASE_SECONDS = 1
"""leaseDurationSeconds written on release, as client-go does, for candidates that ignore an
empty holder."""


class LeaseClient(Protocol):
    """The part of `scheduler.kube.client.Client` the elector uses (tests pass a fake)."""

    async def get(self, path: str) -> Any: ...
    async def post(self, path: str, body: Any) -> Any: ...
    async def put(self, path: str, body: Any) -> Any: ...


class LeaderMetrics(Protocol):
    """Where the elector reports whether it leads (client-go's leaderelection `LeaderMetric`,
    behind kube-scheduler's `leader_election_master_status`); `scheduler.metrics.Metrics` is one.
    """

    def set_leader(self, name: str, leading: bool) -> None:
        """This process now leads (True) or stands by (False) for the Lease called `name`."""


@dataclass(frozen=True)
class LeaseConfig:
    """Which Lease to hold, as whom, and the timing (kube-scheduler's defaults)."""

    namespace: str = "kube-system"
    name: str = "kube-scheduler"
    identity: str = ""
    """Empty means `default_identity()`: "<hostname>_<uuid4>", as kube-scheduler does."""
    lease_duration: float = 15.0
    """How long a standby waits, from when it last saw the record change, before taking over."""
    renew_deadline: float = 10.0
    """How long the leader keeps retrying a renew, from its last good one, before giving up."""
    retry_period: float = 2.0
    """The time between attempts: the leader's renews, and a standby's reads (with jitter)."""
    debug_url: str = ""
    """Where this candidate serves its /debug views (`https://10.0.0.7:10259`), written into
    the Lease's berth.dev/debug-endpoint annotation while it holds the Lease (kube.debug_endpoint);
    empty: no annotation (one left by an earlier holder is removed)."""
    debug_cert_sha256: str = ""
    """Hex SHA-256 of the serving certificate behind `debug_url`, for clients to pin ("")."""

    def validate(self) -> list[str]:
        """Every problem with this config, each prefixed by its field; empty when valid.

        The timing rules are client-go's: leadership must be given up before it can be taken,
        and a renew must have a chance to be retried before the deadline.
        """
        errors = []
        if not self.namespace:
            errors.append("namespace: must not be empty")
        if not self.name:
            errors.append("name: must not be empty")
        for field in ("lease_duration", "renew_deadline", "retry_period"):
            if getattr(self, field) <= 0:
                errors.append(f"{field}: must be greater than zero")
        if self.lease_duration <= self.renew_deadline:
            errors.append(
                f"lease_duration: must be greater than renew_deadline "
                f"({self.lease_duration} <= {self.renew_deadline})"
            )
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            errors.append(
                f"renew_deadline: must be greater than retry_period * {JITTER_FACTOR} "
                f"({self.renew_deadline} <= {JITTER_FACTOR * self.retry_period})"
            )
        return errors

    @property
    def lease_seconds(self) -> int:
        """The duration written into the Lease: whole seconds, rounded up (never shorter)."""
        return max(1, math.ceil(self.lease_duration))

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    @property
    def collection_path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"


def default_identity() -> str:
    """kube-scheduler's identity: hostname, underscore, a fresh UUID (unique per process)."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True)
class LeaseRecord:
    """The election-relevant part of a Lease's spec (client-go's LeaderElectionRecord).

    Times are the API's MicroTime strings, kept opaque: they are written for humans and other
    tools, and compared only for change, never against a clock.
    """

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> LeaseRecord:
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> JSON:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class Observation:
    """The last record seen, and when (local monotonic clock) it was first seen in that form."""

    record: LeaseRecord
    at: float


class Action(enum.Enum):
    """What one attempt does with the Lease."""

    CREATE = "create"
    """No Lease exists: POST one naming us (leaseTransitions 0)."""
    ACQUIRE = "acquire"
    """Free, released or expired: PUT us as holder, new acquireTime, leaseTransitions + 1."""
    RENEW = "renew"
    """Ours already: PUT a new renewTime, keeping acquireTime and leaseTransitions."""
    WAIT = "wait"
    """Someone else holds it and it has not expired by our clock: write nothing."""


@dataclass(frozen=True)
class Decision:
    action: Action
    record: LeaseRecord | None
    """What to write; None for WAIT."""


def observe(previous: Observation | None, current: LeaseRecord, now: float) -> Observation:
    """The observation after reading `current` at `now`.

    The observed time moves only when the record changed; an unchanged record keeps the time it
    was first seen, which is what lets a silent holder expire (client-go compares the record,
    not the resourceVersion).
    """
    if previous is not None and previous.record == current:
        return previous
    return Observation(current, now)


def expired(record: LeaseRecord, observed_at: float, now: float) -> bool:
    """True when `record` has gone unchanged for its own leaseDurationSeconds by our clock."""
    return observed_at + record.lease_duration_seconds <= now


def decide(
    current: LeaseRecord | None,
    observed_at: float,
    now: float,
    identity: str,
    config: LeaseConfig,
    *,
    stamp: str,
) -> Decision:
    """The next step for `identity`, given the Lease as just read (None: it does not exist).

    `observed_at` is when this record was first seen (see `observe`), `now` the same clock now;
    `stamp` is the wall-clock MicroTime to write into acquireTime / renewTime.
    """
    mine = LeaseRecord(
        holder=identity,
        lease_duration_seconds=config.lease_seconds,
        acquire_time=stamp,
        renew_time=stamp,
    )
    if current is None:
        return Decision(Action.CREATE, mine)
    if current.holder == identity:
        return Decision(
            Action.RENEW,
            replace(mine, acquire_time=current.acquire_time, transitions=current.transitions),
        )
    if current.holder and not expired(current, observed_at, now):
        return Decision(Action.WAIT, None)
    return Decision(Action.ACQUIRE, replace(mine, transitions=current.transitions + 1))


def released(current: LeaseRecord, stamp: str) -> LeaseRecord:
    """The record that gives the Lease up: no holder, transitions kept (client-go release)."""
    return LeaseRecord(
        holder="",
        lease_duration_seconds=RELEASED_LEASE_SECONDS,
        acquire_time=stamp,
        renew_time=stamp,
        transitions=current.transitions,
    )


def micro_time(moment: datetime) -> str:
    """A metav1.MicroTime string: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jittered(period: float, factor: float = JITTER_FACTOR) -> float:
    """client-go's wait.Jitter: period stretched by a random fraction of up to `factor`."""
    return period * (1.0 + random.random() * factor)


# Failures of one attempt that are retried on the next one: the API said no, or did not answer.
_TRANSIENT = (ApiError, aiohttp.ClientError, OSError, TimeoutError)


class LeaderElector:
    """Acquires, renews and releases one Lease for one identity.

    `run()` holds the loop; `is_leader` may be read at any time from the same event loop.
    Callbacks are plain functions, called from `run()`; start a task from them for async work.
    `clock` (monotonic seconds) and `sleep` are injectable so that tests run on virtual time;
    `client` is normally a `scheduler.kube.client.Client`. `metrics`, if given, hears False at
    construction (client-go's NewLeaderElector reports a standby), True once leading, and False
    again when leading ends, for whatever reason.
    """

    def __init__(
        self,
        client: LeaseClient,
        config: LeaseConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: LeaderMetrics | None = None,
    ) -> None:
        errors = config.validate()
        if errors:
            raise ValueError("invalid lease config: " + "; ".join(errors))
        self._client = client
        self.config = config
        self.identity = config.identity or default_identity()
        self._clock = clock
        self._sleep = sleep
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._metrics = metrics
        self._lease: JSON | None = None  # the last object read or written: its resourceVersion
        self._seen: Observation | None = None
        self._renewed_at: float | None = None  # clock() when the last good write of ours began
        self._closed = False  # set by release(): never write ourselves in again
        self._lock = asyncio.Lock()  # one request sequence at a time (run vs release)
        self._extra = {"lease": f"{config.namespace}/{config.name}", "identity": self.identity}
        self._report(leading=False)

    @property
    def is_leader(self) -> bool:
        """True while the Lease names us and our last good renew began under renew_deadline ago.

        Read against the clock, so it turns False the moment the deadline passes, even while
        the loop is asleep or stuck in a request.
        """
        return (
            self._seen is not None
            and self._seen.record.holder == self.identity
            and self._renewed_at is not None
            and self._clock() - self._renewed_at < self.config.renew_deadline
        )

    @property
    def observed_at(self) -> float | None:
        """When the Lease record last seen was first seen in that form (a renew changes it),
        by `clock`; None before the first read. The healthz watchdog (client-go's
        HealthzAdaptor) reads it."""
        return self._seen.at if self._seen is not None else None

    @property
    def leader(self) -> str:
        """The holder in the Lease as last seen ("" when free or not read yet)."""
        return self._seen.record.holder if self._seen is not None else ""

    async def run(self) -> None:
        """Acquire the Lease, then renew it every retry_period until that fails.

        Acquiring retries every retry_period (jittered) for as long as it takes. Once leading,
        `on_started_leading` is called; `on_stopped_leading` is called once when leading ends
        for any reason: renewing failed for renew_deadline, another holder was seen,
        `release()` was called, or this task was cancelled. The method then returns (or
        re-raises the cancellation); like kube-scheduler, the caller should exit or start over
        with a new elector rather than keep working.
        """
        log.info("attempting to acquire leader lease", extra=self._extra)
        if not await self._acquire():
            return
        log.info("became leader", extra=self._extra)
        try:
            self._report(leading=True)
            if self._on_started is not None:
                self._on_started()
            await self._keep_renewing()
        finally:
            self._report(leading=False)
            if self._on_stopped is not None:
                self._on_stopped()

    async def release(self) -> None:
        """Give the Lease up if we hold it, so that a standby takes over at once.

        client-go's ReleaseOnCancel: call it on clean shutdown, once the work the Lease guards
        has stopped, since a standby may start leading as soon as this returns. It clears
        holderIdentity (keeping leaseTransitions), makes a running `run()` end, and keeps this
        elector from taking the Lease again. Errors are logged, not raised: the Lease then just
        expires.
        """
        async with self._lock:
            self._closed = True
            for _ in range(2):
                seen = self._seen
                if self._lease is None or seen is None or seen.record.holder != self.identity:
                    return
                record = released(seen.record, micro_time(datetime.now(UTC)))
                try:
                    async with asyncio.timeout(self.config.renew_deadline):
                        try:
                            await self._write(record, create=False)
                        except ApiError as err:
                            if err.status != 409:
                                raise
                            # Our resourceVersion is stale: release only if it is still ours.
                            await self._read()
                            continue
                except _TRANSIENT as err:
                    log.warning(
                        "failed to release leader lease", extra={**self._extra, "error": str(err)}
                    )
                    return
                log.info("released leader lease", extra=self._extra)
                return

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: renew the Lease if ours, else take it if free or expired.

        Returns whether we hold the Lease afterwards. API and network errors are logged and
        count as a failed attempt. `run()` calls this on its schedule.
        """
        async with self._lock:
            if self._closed:
                return False
            # A leader's attempt must end by its deadline; a candidate's gets as long. Either
            # is cut at a third of the deadline (at least one retry period), so that a request
            # stuck on a dead connection is abandoned (which drops the connection) in time for
            # another attempt on a fresh one before the deadline.
            budget = min(
                self._remaining() if self.is_leader else self.config.renew_deadline,
                max(self.config.retry_period, self.config.renew_deadline / 3),
            )
            try:
                async with asyncio.timeout(budget):
                    return await self._attempt()
            except _TRANSIENT as err:
                log.warning("leader lease request failed", extra={**self._extra, "error": str(err)})
                return False

    async def _acquire(self) -> bool:
        while not self._closed:
            if await self.try_acquire_or_renew():
                return True
            await self._sleep(jittered(self.config.retry_period))
        return False

    async def _keep_renewing(self) -> None:
        # One loop serves both of client-go's: after a good renew the next comes retry_period
        # later; after a failed one, likewise, but never later than the deadline, so that a
        # loss is noticed (and on_stopped_leading called) when it happens.
        delay = self.config.retry_period
        while True:
            await self._sleep(delay)
            if self._closed:
                log.info("stopped leading: lease released", extra=self._extra)
                return
            if not self.is_leader:
                reason = (
                    f"lease taken by {self.leader!r}"
                    if self.leader != self.identity
                    else f"no renew for {self.config.renew_deadline}s"
                )
                log.warning("leader lease lost", extra={**self._extra, "reason": reason})
                return
            await self.try_acquire_or_renew()
            still = self.is_leader and not self._closed
            delay = min(self.config.retry_period, max(0.0, self._remaining())) if still else 0.0

    def _report(self, *, leading: bool) -> None:
        if self._metrics is not None:
            self._metrics.set_leader(self.config.name, leading)

    def _remaining(self) -> float:
        """Time left before the renew deadline (negative once passed, 0 before any renew)."""
        if self._renewed_at is None:
            return 0.0
        return self._renewed_at + self.config.renew_deadline - self._clock()

    async def _attempt(self) -> bool:
        stamp = micro_time(datetime.now(UTC))
        seen = self._seen
        if (
            self._lease is not None
            and seen is not None
            and seen.record.holder == self.identity
            and not expired(seen.record, seen.at, self._clock())
        ):
            # client-go's fast path: the leader assumes its cached object is current and PUTs
            # it without a GET; any failure (409 included) falls back to the full read.
            decision = decide(
                seen.record, seen.at, self._clock(), self.identity, self.config, stamp=stamp
            )
            try:
                await self._write(decision.record, create=False)
                return True
            except ApiError as err:
                log.info(
                    "optimistic lease renew failed, re-reading",
                    extra={**self._extra, "error": str(err)},
                )
        # A race lost to another candidate (409) is re-read and decided once more at once;
        # that read sees the winner's record, so a second loss waits for the next attempt.
        for _ in range(2):
            current = await self._read()
            now = self._clock()
            observed_at = self._seen.at if self._seen is not None else now
            decision = decide(current, observed_at, now, self.identity, self.config, stamp=stamp)
            if decision.action is Action.WAIT:
                log.debug("lease held by another", extra={**self._extra, "holder": self.leader})
                return False
            try:
                await self._write(decision.record, create=decision.action is Action.CREATE)
            except ApiError as err:
                if err.status != 409:
                    raise
                log.debug("lost a lease race, re-reading", extra=self._extra)
                continue
            if decision.action is not Action.RENEW:
                log.info(
                    "acquired leader lease",
                    extra={**self._extra, "transitions": self._seen_transitions()},
                )
            return True
        return False

    async def _read(self) -> LeaseRecord | None:
        """GET the Lease and note what we saw; None when it does not exist."""
        try:
            obj = await self._client.get(self.config.path)
        except ApiError as err:
            if err.status == 404:
                self._lease = None
                return None
            raise
        self._lease = obj
        current = LeaseRecord.from_spec(obj.get("spec") or {})
        self._seen = observe(self._seen, current, self._clock())
        return current

    async def _write(self, record: LeaseRecord | None, *, create: bool) -> None:
        """POST or PUT (with the cached resourceVersion) `record`; note it as seen on success."""
        assert record is not None, "only WAIT decisions carry no record"
        started = self._clock()  # before sending: no standby can have seen the write earlier
        # The debug endpoint goes in with the holder, in the same write, so the two never
        # disagree for a holder that is berth; writing anyone else (a release) removes it.
        url = self.config.debug_url if record.holder == self.identity else ""
        endpoint = DebugEndpoint(self.identity, url, self.config.debug_cert_sha256) if url else None
        if create:
            body: JSON = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": annotate(
                    {"name": self.config.name, "namespace": self.config.namespace}, endpoint
                ),
                "spec": record.to_spec(),
            }
            obj = await self._client.post(self.config.collection_path, body)
        else:
            assert self._lease is not None, "PUT needs a Lease read or written before"
            spec = {**(self._lease.get("spec") or {}), **record.to_spec()}
            metadata = annotate(self._lease.get("metadata") or {}, endpoint)
            obj = await self._client.put(
                self.config.path, {**self._lease, "metadata": metadata, "spec": spec}
            )
        self._lease = obj
        # What the server stored, so that our next read of it compares equal.
        self._seen = Observation(LeaseRecord.from_spec(obj.get("spec") or {}), started)
        self._renewed_at = started if record.holder == self.identity else None

    def _seen_transitions(self) -> int:
        return self._seen.record.transitions if self._seen is not None else 0
