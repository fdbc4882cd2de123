"""A pod that keeps failing the same way gets an event series, not an event per try (issue 15):
its FailedScheduling Event is PATCHed with `series: {count, lastObservedTime}`, as client-go's
events broadcaster does for kube-scheduler (`tools/events`, event_broadcaster.go).

The same case runs for the plane's upstream kube-scheduler (`default-scheduler`) and for berth,
so the expectation is upstream's. The retries come from this test's own node: it carries a
taint the pod does not tolerate, and each time it gains the label the pod selects, NodeAffinity's
queueing hint requeues the pod, which then fails again on the taint with the same message.

Upstream's key for a series includes the pod's resourceVersion (`regarding` is a full object
reference); the first failure's PodScheduled=False write changes it, so the first event stays a
singleton and the series grows on the next one: at least three tries make a series."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from scheduler.kube.client import Client
from tests.builders import make_node, make_pod
from tests.e2e.test_engine import create, events_for, extra_nodes, wait_for

__all__ = ["extra_nodes"]  # a fixture, imported for pytest

JSON = dict[str, Any]
TIMEOUT = 180.0  # generous: backoff grows to 10 s a try, and the machine is shared
KEY = "berth.test/series"


@pytest.fixture(params=["default-scheduler", "berth"])
def scheduler(request: pytest.FixtureRequest) -> str:
    """The schedulerName of the case's pod (berth's session process is started for berth)."""
    name: str = request.param
    if name == "berth":
        request.getfixturevalue("berth_scheduler")
    return name


async def until_series(client: Client, namespace: str, node: str) -> JSON:
    """Requeue the pod every other second until one of its FailedScheduling events has
    series.count >= 2: label the node the pod selects (NodeAffinity's hint says Queue), then
    take the label off again (no requeue), so that the next label is a change again."""
    for round_ in range(int(TIMEOUT)):
        for event in await events_for(client, namespace, "p", "FailedScheduling"):
            if (event.get("series") or {}).get("count", 0) >= 2:
                return event
        label = namespace if round_ % 2 == 0 else None
        await client.patch(f"/api/v1/nodes/{node}", {"metadata": {"labels": {KEY: label}}})
        await asyncio.sleep(1.0)
    raise AssertionError(f"no event series within {TIMEOUT}s")


def micro(stamp: str) -> dt.datetime:
    """A MicroTime ("2026-01-02T03:04:05.123456Z") as an aware datetime."""
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_repeated_failure_becomes_an_event_series(
    scheduler: str, client: Client, namespace: str, extra_nodes: Any
) -> None:
    """Retries that fail alike end in a FailedScheduling Event with series.count >= 2 whose
    series.lastObservedTime is later than its eventTime."""
    node = f"series-{namespace}"
    await extra_nodes(make_node(node).taint(KEY, namespace).obj_())
    pod = make_pod("p").scheduler(scheduler).node_selector(**{KEY: namespace}).for_api()
    await create(client, namespace, pod)

    async def failed() -> list[JSON] | None:
        return await events_for(client, namespace, "p", "FailedScheduling") or None

    await wait_for(failed, TIMEOUT)
    event = await until_series(client, namespace, node)
    assert event["reportingController"] == scheduler
    assert micro(event["series"]["lastObservedTime"]) > micro(event["eventTime"])
    assert event["regarding"]["kind"] == "Pod" and event["regarding"]["name"] == "p"
    assert event["type"] == "Warning" and event["action"] == "Scheduling"
