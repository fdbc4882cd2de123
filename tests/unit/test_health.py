"""scheduler.health: apiserver's health layout (handleRootHealth) and client-go's leader
election watchdog (HealthzAdaptor), on virtual time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from scheduler.health import Check, HealthSLIs, LeaderWatchdog, evaluate, with_default

OK = Check("ok-check", lambda: None)
BAD = Check("bad-check", lambda: "broken")


@pytest.mark.parametrize(
    ("checks", "excluded", "verbose", "expected"),
    [
        pytest.param([OK], [], False, (200, "ok"), id="passing"),
        pytest.param([OK], [], True, (200, "[+]ok-check ok\nhealthz check passed\n"),
                     id="passing-verbose"),
        pytest.param([OK, BAD], [], False,
                     (500, "[+]ok-check ok\n[-]bad-check failed: reason withheld\n"
                           "healthz check failed\n"), id="failing-is-always-verbose"),
        pytest.param([OK, BAD], ["bad-check"], True,
                     (200, "[+]ok-check ok\n[+]bad-check excluded: ok\nhealthz check passed\n"),
                     id="excluded"),
        pytest.param([OK], ["nope", "also"], True,
                     (200, "[+]ok-check ok\nwarn: some health checks cannot be excluded: no"
                           ' matches for "also","nope"\nhealthz check passed\n'),
                     id="unknown-exclusions-warn"),
        pytest.param(with_default([]), [], True, (200, "[+]ping ok\nhealthz check passed\n"),
                     id="ping-by-default"),
    ],
)  # fmt: skip
def test_layout(
    checks: list[Check], excluded: list[str], verbose: bool, expected: tuple[int, str]
) -> None:
    """Bodies and codes byte for byte as apiserver's healthz handler writes them."""
    assert evaluate("healthz", checks, excluded, verbose=verbose) == expected


def test_a_raising_check_fails_instead_of_breaking_the_probe() -> None:
    """A check that raises counts as failed."""

    def boom() -> str | None:
        raise RuntimeError("bug")

    assert evaluate("readyz", [Check("boom", boom)])[0] == 500


def test_slis_record_results() -> None:
    """Each evaluation sets the gauge and counts by status."""
    slis = HealthSLIs()
    evaluate("readyz", [OK, BAD], slis=slis)
    evaluate("readyz", [OK], slis=slis)
    text = slis.render().decode()
    assert 'kubernetes_healthcheck{name="bad-check",type="readyz"} 0.0' in text
    assert 'kubernetes_healthchecks_total{name="ok-check",status="success",type="readyz"} 2.0' in (
        text
    )


@dataclass
class Elector:
    """What the watchdog reads of a LeaderElector."""

    identity: str = "me"
    leader: str = "me"
    observed_at: float | None = 0.0


@pytest.mark.parametrize(
    ("elector", "now", "healthy"),
    [
        pytest.param(None, 1000.0, True, id="no-elector-yet"),
        pytest.param(Elector(leader="other"), 1000.0, True, id="not-leading"),
        pytest.param(Elector(), 15.0 + 20.0, True, id="within-lease-plus-tolerance"),
        pytest.param(Elector(), 15.0 + 20.0 + 0.1, False, id="stale-leader"),
        pytest.param(Elector(observed_at=None), 1000.0, True, id="nothing-observed"),
    ],
)
def test_leader_watchdog(elector: Elector | None, now: float, healthy: bool) -> None:
    """Fails only for a leader that has not renewed for lease duration + 20 s."""
    watchdog = LeaderWatchdog(lambda: elector, lease_duration=15.0, clock=lambda: now)
    check = watchdog.check("kube-system/berth")
    assert check.name == "leaderElection"
    why = check.run()
    assert (why is None) == healthy
    if not healthy:
        assert why == "failed election to renew leadership on lease kube-system/berth"
