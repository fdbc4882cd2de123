"""The API calls of a preemption: mark the victim with DisruptionTarget, then delete it."""

from __future__ import annotations

from scheduler.kube.client import ApiError, Client
from scheduler.kube.events import now_seconds


async def preempt(
    client: Client, namespace: str, name: str, uid: str, scheduler: str, generation: int = 0
) -> bool:
    """Add the DisruptionTarget condition (reason PreemptionByScheduler, observedGeneration
    the victim's `generation` when it has one, PodObservedGenerationTracking GA in v1.35) with
    a status patch, then delete the pod, as upstream's Evaluator.PreemptPod does. The uid
    precondition keeps a pod recreated under the same name safe. Returns False when the victim
    was gone already; other API errors raise."""
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    condition: dict[str, str | int] = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": f"{scheduler}: preempting to accommodate a higher priority pod",
        "lastTransitionTime": now_seconds(),
    }
    if generation > 0:
        condition["observedGeneration"] = generation
    try:
        await client.patch(f"{path}/status", {"status": {"conditions": [condition]}})
        await client.delete(
            path,
            {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}},
        )
    except ApiError as err:
        if err.status in (404, 409):  # gone, or replaced by a pod of the same name
            return False
        raise
    return True
