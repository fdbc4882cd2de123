"""The Binding POST that assigns a pod to a node, retried as upstream's util.BindPod."""

from __future__ import annotations

import asyncio
import random

from scheduler.kube.client import ApiError, Client

RETRY_STEPS = 4
"""client-go's retry.DefaultBackoff, which upstream's BindPod uses: 4 tries, 10 ms apart, the
wait multiplied by 5 each time, with 10% jitter."""


def retriable(err: BaseException) -> bool:
    """Upstream's util.Retriable: an internal error (500), service unavailable (503), or a
    refused connection (the request never reached the server, so it cannot have landed)."""
    if isinstance(err, ApiError):
        return err.status in (500, 503)
    return isinstance(err, ConnectionRefusedError)


async def bind(client: Client, namespace: str, name: str, uid: str, node: str) -> None:
    """POST pods/NAME/binding. The uid precondition makes sure a pod deleted and recreated
    under the same name is never bound by a decision made for its predecessor.
    Raises ApiError (409 when the pod is bound already). A 500, a 503 or a refused connection
    is tried again up to RETRY_STEPS times in all; a 500 whose Binding had landed comes back
    as that 409. (429 is retried by the client itself, with Retry-After.)"""
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    path = f"/api/v1/namespaces/{namespace}/pods/{name}/binding"
    wait = 0.01
    for step in range(RETRY_STEPS):
        try:
            await client.post(path, body)
            return
        except (ApiError, ConnectionRefusedError) as err:
            if not retriable(err) or step + 1 == RETRY_STEPS:
                raise
        await asyncio.sleep(wait * (1 + 0.1 * random.random()))
        wait *= 5
