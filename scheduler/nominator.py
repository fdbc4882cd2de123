"""Pods nominated to a node by preemption, per node (upstream's nominator in
pkg/scheduler/backend/queue/nominator.go).

A pod that preempted victims on a node is nominated there until it is scheduled, deleted or
nominated elsewhere. The cycle tries a nominated pod on its node first, and counts the pods
nominated to a node (those of priority >= the incoming pod's) against that node in Filter, so
the room preemption made is not given away. The scheduling queue owns the nominator and keeps
it current (adds, updates, deletes, assumed pods); the cycle and preemption read and write it
through these methods only.
"""

from __future__ import annotations

from collections.abc import Mapping

from scheduler.model import PodInfo


class Nominator:
    def __init__(self) -> None:
        self._node_of: dict[str, str] = {}  # uid -> node
        self._pods: dict[str, dict[str, PodInfo]] = {}  # node -> uid -> pod
        self.version = 0  # moves on every change, so callers can keep derived views

    def __len__(self) -> int:
        return len(self._node_of)

    def add(self, pod: PodInfo, node: str) -> None:
        """Nominate `pod` to `node` (replacing an earlier nomination); "" deletes it."""
        self.delete(pod.uid)
        if not node:
            return
        self._node_of[pod.uid] = node
        self._pods.setdefault(node, {})[pod.uid] = pod
        self.version += 1

    def update(self, pod: PodInfo) -> None:
        """A new version of a pod: keep its nomination, with the new object (its priority
        or requests may have changed). A pod not nominated here but carrying
        status.nominatedNodeName is nominated there (upstream's addNominatedPod on Add)."""
        node = self._node_of.get(pod.uid) or pod.nominated_node_name
        if node:
            self.add(pod, node)

    def delete(self, uid: str) -> None:
        node = self._node_of.pop(uid, None)
        if node is None:
            return
        on_node = self._pods.get(node)
        if on_node is not None:
            on_node.pop(uid, None)
            if not on_node:
                del self._pods[node]
        self.version += 1

    def node_of(self, uid: str) -> str:
        """The node `uid` is nominated to, or ""."""
        return self._node_of.get(uid, "")

    def pods_for_node(self, node: str) -> list[PodInfo]:
        """Upstream's NominatedPodsForNode."""
        return list(self._pods.get(node, {}).values())

    def counted_against(self, pod: PodInfo, row_of: Mapping[str, int]) -> dict[int, list[PodInfo]]:
        """The nominated pods that count against `pod`, by row: those of priority >= its
        own, other than itself, on nodes the table has (upstream's addNominatedPods)."""
        out: dict[int, list[PodInfo]] = {}
        priority, uid = pod.priority, pod.uid
        for node, pods in self._pods.items():
            row = row_of.get(node)
            if row is None:
                continue
            counted = [p for p in pods.values() if p.priority >= priority and p.uid != uid]
            if counted:
                out[row] = counted
        return out

    def lower_priority_on(self, node: str, priority: int) -> list[PodInfo]:
        """Pods nominated to `node` with priority below `priority`: a higher-priority pod
        nominated there takes their nomination away (upstream's getLowerPriorityNominatedPods)."""
        return [p for p in self._pods.get(node, {}).values() if p.priority < priority]
