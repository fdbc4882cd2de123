"""The process-level families a Go component exposes, as berth fills them: `process_*` from
prometheus_client's collector and `go_goroutines` from the event loop's tasks
(docs/compat.md, "Deliberate differences")."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from scheduler.metrics import Metrics


def samples(metrics: Metrics) -> dict[str, float]:
    body = metrics.render()[0].decode()
    return {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples}


async def test_go_goroutines_counts_the_event_loop_tasks() -> None:
    """Each task started on the loop adds one; a finished one is no longer counted."""
    metrics = Metrics()
    before = samples(metrics)["go_goroutines"]
    assert before == len(asyncio.all_tasks()) >= 1  # this test's own task at least
    release = asyncio.Event()
    waiting = [asyncio.create_task(release.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert samples(metrics)["go_goroutines"] == before + 3
    release.set()
    await asyncio.gather(*waiting)
    assert samples(metrics)["go_goroutines"] == before


def test_process_families_are_exposed_and_go_goroutines_is_zero_off_the_loop() -> None:
    """The dashboard's Memory and CPU panels read process_*; rendered outside an event loop
    (no task can run), go_goroutines is 0."""
    found = samples(Metrics())
    assert found["process_resident_memory_bytes"] > 0
    assert "process_cpu_seconds_total" in found
    assert found["go_goroutines"] == 0


def test_without_process_metrics_neither_family_is_registered() -> None:
    """The in-memory bench turns both off."""
    found = samples(Metrics(process_metrics=False))
    assert not any(n.startswith(("process_", "go_")) for n in found)
