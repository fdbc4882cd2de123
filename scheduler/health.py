"""Health checks as kube-scheduler serves them: /healthz, /livez, /readyz, their per-check
subpaths, and the SLI metrics the checks feed (/metrics/slis).

Mirrors k8s.io/apiserver pkg/server/healthz (handleRootHealth, adaptCheckToHandler),
component-base metrics/prometheus/slis, and client-go's leaderelection.HealthzAdaptor:

- `evaluate(kind, checks, query)` answers `/<kind>`: every check not named by an `exclude`
  query parameter runs; on any failure 500 and `[+]name ok` / `[-]name failed: reason withheld`
  lines then `<kind> check failed` (the reasons are withheld because the path is public; they
  are logged); on success "ok", or with `?verbose` the lines and `<kind> check passed`. Excluded
  checks print `[+]name excluded: ok`; excluding an unknown name adds a `warn:` line.
- `evaluate_one(check)` answers `/<kind>/<name>`: "ok", or 500 `internal server error: <why>`.
- `HealthSLIs` records each root-path evaluation as `kubernetes_healthcheck{name,type}` (1 ok,
  0 failed) and `kubernetes_healthchecks_total{name,type,status}` (status success|error).
- `LeaderWatchdog` is the `leaderElection` check: it fails while this process believes it
  holds the Lease but has not renewed it for lease duration + 20 s (upstream's
  NewLeaderHealthzAdaptor(20 * time.Second) in kube-scheduler's options).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger("berth.health")

WATCHDOG_TOLERANCE = 20.0
"""Seconds past the lease duration a leader may go without renewing before `leaderElection`
fails (kube-scheduler's NewLeaderHealthzAdaptor(20s))."""


@dataclass(frozen=True)
class Check:
    """One named health check: `run()` returns None when healthy, else why not. It must be
    cheap and must not block (it runs on the event loop for every probe)."""

    name: str
    run: Callable[[], str | None]


PING = Check("ping", lambda: None)


def with_default(checks: Sequence[Check]) -> tuple[Check, ...]:
    """A path's checks as apiserver installs them: `ping` alone when it is given none."""
    return tuple(checks) or (PING,)


def evaluate(
    kind: str,
    checks: Sequence[Check],
    excluded: Iterable[str] = (),
    *,
    verbose: bool = False,
    slis: HealthSLIs | None = None,
) -> tuple[int, str]:
    """(HTTP status, body) of `/<kind>` (healthz, livez or readyz); see the module docstring."""
    unknown = set(excluded)
    skip = frozenset(unknown)
    lines: list[str] = []
    failed: list[str] = []
    for check in checks:
        if check.name in skip:
            unknown.discard(check.name)
            lines.append(f"[+]{check.name} excluded: ok\n")
            continue
        try:
            why = check.run()
        except Exception as exc:  # a broken check fails, it does not break the probe
            why = f"{type(exc).__name__}: {exc}"
        if slis is not None:
            slis.observe(check.name, kind, why is None)
        if why is None:
            lines.append(f"[+]{check.name} ok\n")
        else:
            lines.append(f"[-]{check.name} failed: reason withheld\n")
            failed.append(f"[-]{check.name} failed: {why}")
    if unknown:
        names = ",".join(f'"{n}"' for n in sorted(unknown))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {names}\n")
    if failed:
        log.warning(f"{kind} check failed", extra={"checks": "; ".join(failed)})
        # Go's http.Error ends the body with a newline.
        return 500, "".join(lines) + f"{kind} check failed\n"
    if not verbose:
        return 200, "ok"
    return 200, "".join(lines) + f"{kind} check passed\n"


def evaluate_one(check: Check) -> tuple[int, str]:
    """(HTTP status, body) of `/<kind>/<check name>`: the reason is shown here, as upstream
    shows it (the subpaths are not in the always-allowed paths, so callers are authorized)."""
    try:
        why = check.run()
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
    if why is None:
        return 200, "ok"
    return 500, f"internal server error: {why}\n"


class HealthSLIs:
    """component-base's health check SLIs, with their own registry (/metrics/slis)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}
        self._totals: dict[tuple[str, str, str], int] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)
        # component-base's slis.Register adds the process start time to this registry too.
        self._process = ProcessCollector(registry=None)

    def observe(self, name: str, kind: str, ok: bool) -> None:
        """One evaluation of check `name` on `/<kind>`."""
        self._last[(name, kind)] = 1.0 if ok else 0.0
        key = (name, kind, "success" if ok else "error")
        self._totals[key] = self._totals.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "kubernetes_healthcheck",
            "[STABLE] This metric records the result of a single healthcheck.",
            labels=["name", "type"],
        )
        for (name, kind), value in sorted(self._last.items()):
            gauge.add_metric([name, kind], value)
        yield gauge
        total = CounterMetricFamily(
            "kubernetes_healthchecks_total",
            "[STABLE] This metric records the results of all healthcheck.",
            labels=["name", "type", "status"],
        )
        for key, count in sorted(self._totals.items()):
            total.add_metric(list(key), count)
        yield total
        for family in self._process.collect():
            if family.name == "process_start_time_seconds":
                start = GaugeMetricFamily(
                    family.name, "[ALPHA] Start time of the process since unix epoch in seconds."
                )
                start.add_metric([], family.samples[0].value)
                yield start

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LeaseObservation(Protocol):
    """What the watchdog reads of a LeaderElector (scheduler.kube.leader)."""

    @property
    def identity(self) -> str: ...

    @property
    def leader(self) -> str: ...

    @property
    def observed_at(self) -> float | None: ...


@dataclass
class LeaderWatchdog:
    """client-go's HealthzAdaptor as a Check named `leaderElection`.

    `elector()` returns the elector once there is one (None before: healthy, as upstream's
    adaptor is before SetLeaderElection). `lease_duration` is seconds; `clock` is the elector's
    monotonic clock. Healthy unless the Lease last seen names us and it was last seen renewed
    more than lease_duration + tolerance ago: a leader that stopped renewing but has not
    noticed it lost the Lease (its loop is stuck) should be restarted."""

    elector: Callable[[], LeaseObservation | None]
    lease_duration: float
    tolerance: float = WATCHDOG_TOLERANCE
    clock: Callable[[], float] = time.monotonic

    def run(self) -> str | None:
        elector = self.elector()
        if elector is None or elector.leader != elector.identity:
            return None
        seen = elector.observed_at
        if seen is None or self.clock() - seen <= self.lease_duration + self.tolerance:
            return None
        return "failed election to renew leadership on lease"

    def check(self, lease: str) -> Check:
        def run() -> str | None:
            why = self.run()
            return None if why is None else f"{why} {lease}"

        return Check("leaderElection", run)
