"""PodGroup status writes: the PodGroupInitiallyScheduled condition, as upstream v1.37's
scheduler writes it (schedule_one_podgroup.go, updatePodGroupCondition): a strategic merge
patch of status.conditions (keyed by type) on the podgroups/status subresource of
scheduling.k8s.io/v1beta1, with observedGeneration. scheduler-plugins' CRD groups get no
condition from the scheduler: their status belongs to `berth controller`."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.kube.client import Client
from scheduler.podgroups import INITIALLY_SCHEDULED

PATH = "/apis/scheduling.k8s.io/v1beta1/namespaces/{namespace}/podgroups/{name}/status"


def condition(
    current: Sequence[Mapping[str, Any]],
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime.datetime | None = None,
) -> dict[str, Any] | None:
    """The condition to write, or None when nothing would change: the same status, reason
    and message are there already, or the condition is True (terminal: upstream never
    turns it back). lastTransitionTime moves only when the status changes."""
    old = next((c for c in current if c.get("type") == INITIALLY_SCHEDULED), None)
    if old is not None:
        if old.get("status") == "True":
            return None
        same = (old.get("status"), old.get("reason"), old.get("message")) == (
            status,
            reason,
            message,
        )
        if same and old.get("observedGeneration") == generation:
            return None
    moment = now or datetime.datetime.now(datetime.UTC)
    transition = (
        old.get("lastTransitionTime")
        if old is not None and old.get("status") == status and old.get("lastTransitionTime")
        else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return {
        "type": INITIALLY_SCHEDULED,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    }


async def write_condition(
    client: Client, namespace: str, name: str, cond: Mapping[str, Any]
) -> None:
    """PATCH the condition onto the group's status (raises kube.client.ApiError)."""
    path = PATH.format(namespace=namespace, name=name)
    await client.patch(path, {"status": {"conditions": [dict(cond)]}})
