"""Cluster state for scheduling: nodes, and the pods that use their capacity.

A pod's life in the cache:

    Initial ──assume──▶ Assumed ──add (bind seen in watch)──▶ Added ──remove──▶ Deleted
                           │   └─finish_binding─▶ Assumed, bound ──add──▶ Added
                           │                            └──remove (deleted)──▶ Deleted
                           └──forget (bind failed)──▶ Initial

    Initial ──add (a pod bound by anyone, seen in the watch)──▶ Added

Assumed pods count against their node at once, so the next cycle already sees the capacity
taken while the bind is still in flight. They never expire, as upstream's (its cache runs with
a zero TTL): only the watch confirming the bind, or deleting the pod, takes them out, so a
lagging watch cannot hand the same capacity out twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.model import NodeInfo, PodInfo
from scheduler.snapshot import NodeTable


class CacheError(RuntimeError):
    """An impossible transition, named with the pod."""


@dataclass
class _Placed:
    pod: PodInfo
    node: str
    assumed: bool
    bound: bool = False  # finish_binding: the bind request succeeded, the watch lags


class Cache:
    def __init__(self) -> None:
        self.table = NodeTable()
        self._placed: dict[str, _Placed] = {}
        # Pods seen on nodes the cache does not know yet (watch order is not guaranteed).
        self._orphans: dict[str, dict[str, PodInfo]] = {}

    # --- nodes ---------------------------------------------------------------------------

    def upsert_node(self, node: NodeInfo) -> None:
        row = self.table.upsert_node(node)
        if self._orphans:
            for pod in self._orphans.pop(node.name, {}).values():
                self.table.add_pod(row, pod)

    def remove_node(self, name: str) -> None:
        pods = self.table.remove_node(name)
        if pods:
            self._orphans[name] = pods

    # --- pods ----------------------------------------------------------------------------

    def assume(self, pod: PodInfo, node: str) -> None:
        """Count the pod against `node` before its bind is confirmed."""
        if pod.uid in self._placed:
            raise CacheError(
                f"pod {pod.key} is already in the cache on {self._placed[pod.uid].node}"
            )
        self._placed[pod.uid] = _Placed(pod, node, assumed=True)
        self._attach(pod, node)

    def finish_binding(self, pod: PodInfo) -> None:
        """The bind request succeeded; the pod stays assumed until the watch shows it."""
        placed = self._placed.get(pod.uid)
        if placed is not None and placed.assumed:
            placed.bound = True

    def forget(self, pod: PodInfo) -> None:
        """Undo assume (the bind failed): the capacity returns."""
        placed = self._placed.get(pod.uid)
        if placed is None:
            return
        if not placed.assumed:
            raise CacheError(f"pod {pod.key} was bound, not assumed; cannot forget it")
        del self._placed[pod.uid]
        self._detach(placed.pod, placed.node)

    def add_pod(self, pod: PodInfo) -> None:
        """A pod with spec.nodeName from the watch (bound by us or anyone else)."""
        placed = self._placed.get(pod.uid)
        if placed is not None:
            if placed.node != pod.node_name or not placed.assumed:
                self._detach(placed.pod, placed.node)
                self._attach(pod, pod.node_name)
            else:
                self._replace(placed.pod, pod, placed.node)
            placed.pod, placed.node, placed.assumed, placed.bound = (
                pod,
                pod.node_name,
                False,
                True,
            )
            return
        self._placed[pod.uid] = _Placed(pod, pod.node_name, assumed=False)
        self._attach(pod, pod.node_name)

    def remove_pod(self, uid: str) -> PodInfo | None:
        placed = self._placed.pop(uid, None)
        if placed is None:
            return None
        self._detach(placed.pod, placed.node)
        return placed.pod

    def is_assumed(self, uid: str) -> bool:
        placed = self._placed.get(uid)
        return placed is not None and placed.assumed

    def node_of(self, uid: str) -> str | None:
        placed = self._placed.get(uid)
        return placed.node if placed else None

    def bound_pod(self, uid: str) -> PodInfo | None:
        """The version of a bound (not assumed) pod that counts against its node."""
        placed = self._placed.get(uid)
        return placed.pod if placed is not None and not placed.assumed else None

    def sizes(self) -> dict[str, int]:
        assumed = sum(1 for p in self._placed.values() if p.assumed)
        return {"nodes": len(self.table), "pods": len(self._placed), "assumed_pods": assumed}

    # --- internals -----------------------------------------------------------------------

    def _attach(self, pod: PodInfo, node: str) -> None:
        row = self.table.row_of.get(node)
        if row is None:
            self._orphans.setdefault(node, {})[pod.uid] = pod
        else:
            self.table.add_pod(row, pod)

    def _detach(self, pod: PodInfo, node: str) -> None:
        row = self.table.row_of.get(node)
        if row is None:
            self._orphans.get(node, {}).pop(pod.uid, None)
        else:
            self.table.remove_pod(row, pod)

    def _replace(self, old: PodInfo, new: PodInfo, node: str) -> None:
        if old.requests != new.requests:
            self._detach(old, node)
            self._attach(new, node)
        else:
            row = self.table.row_of.get(node)
            if row is not None and old.uid in self.table.pods[row]:
                self.table.pods[row][old.uid] = new
                if old.labels != new.labels:  # spread and affinity plugins count by labels
                    self.table.touch(row)
