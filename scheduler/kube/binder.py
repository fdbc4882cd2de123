"""The Binding POST that assigns a pod to a node."""

from __future__ import annotations

from scheduler.kube.client import Client


async def bind(client: Client, namespace: str, name: str, uid: str, node: str) -> None:
    """POST pods/NAME/binding. The uid precondition makes sure a pod deleted and recreated
    under the same name is never bound by a decision made for its predecessor.
    Raises ApiError (409 when the pod is bound already)."""
    await client.post(
        f"/api/v1/namespaces/{namespace}/pods/{name}/binding",
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        },
    )
