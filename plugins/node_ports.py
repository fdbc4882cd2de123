"""NodePorts: Filter rejects nodes where a hostPort the pod asks for is already taken.

A port is (protocol, hostIP, hostPort); hostIP 0.0.0.0 (or empty) means every address, so it
conflicts with the same protocol and port on any IP, and any IP conflicts with a 0.0.0.0 entry
(upstream's HostPortInfo.CheckConflict). No other address is a wildcard, "::" included: upstream
compares it like any IP. Sidecar init containers' ports count (model.host_ports). Only pods
with host ports are checked: PreFilter skips the rest.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler.framework import (
    ASSIGNED_POD,
    NODE,
    SKIP,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    CycleState,
    FilterResult,
    Handle,
    QueueingHint,
    Status,
)
from scheduler.model import HostPort, PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(wanted: tuple[HostPort, ...], used: tuple[HostPort, ...]) -> bool:
    """Would any wanted port collide with a used one?"""
    for w in wanted:
        for u in used:
            if w.port != u.port or w.protocol != u.protocol:
                continue
            if w.ip == ANY_IP or u.ip == ANY_IP or w.ip == u.ip:
                return True
    return False


@dataclass
class _UsedPorts:
    """The host ports in use per row, as of `seen` (the row generations last read): a pod
    asking for a port then checks only the rows that use host ports at all, and only their
    ports, not every pod on every node."""

    seen: npt.NDArray[np.int64]
    used: list[tuple[HostPort, ...]] = field(default_factory=list)
    any_used: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))

    def refresh(self, table: NodeTable) -> None:
        generation = table.generation
        if self.seen.size != generation.size:  # new table, or the table grew
            old = self.seen.size
            self.seen = np.concatenate([self.seen, np.full(generation.size - old, -1)])
            self.used.extend(() for _ in range(generation.size - old))
            self.any_used = np.concatenate([self.any_used, np.zeros(generation.size - old, bool)])
        for row in np.flatnonzero(generation != self.seen).tolist():
            ports = tuple(p for pod in table.pods[row].values() for p in pod.host_ports)
            self.used[row] = ports
            self.any_used[row] = bool(ports)
        self.seen = generation.copy()


class NodePorts:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

    def __init__(self) -> None:
        self._indexes: weakref.WeakKeyDictionary[NodeTable, _UsedPorts] = (
            weakref.WeakKeyDictionary()
        )

    def events_to_register(self) -> list[ClusterEventWithHint]:
        """A bound pod deleted (containers' ports are immutable, so pod updates cannot help),
        or a node added (no hint, as upstream: every Node/Add is worth a retry)."""
        return [
            ClusterEventWithHint(
                ClusterEvent(ASSIGNED_POD, ActionType.DELETE),
                self.is_schedulable_after_assigned_pod_deleted,
            ),
            ClusterEventWithHint(ClusterEvent(NODE, ActionType.ADD)),
        ]

    @staticmethod
    def is_schedulable_after_assigned_pod_deleted(
        pod: PodInfo, old: PodInfo, new: None
    ) -> QueueingHint:
        """Upstream's isSchedulableAfterAssignedPodDeleted: the deleted pod held (or was
        nominated to) a node and used a host port that conflicts with one the pod wants."""
        if not old.node_name and not old.nominated_node_name:
            return QueueingHint.SKIP
        if not old.host_ports or not conflicts(pod.host_ports, old.host_ports):
            return QueueingHint.SKIP
        return QueueingHint.QUEUE

    def pre_filter(self, state: CycleState, pod: PodInfo, table: NodeTable) -> Status | None:
        return None if pod.host_ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> FilterResult:
        wanted = pod.host_ports
        if not wanted:
            return FilterResult.all_pass(rows.size)
        index = self._indexes.get(table)
        if index is None:
            index = self._indexes[table] = _UsedPorts(np.zeros(0, dtype=np.int64))
        index.refresh(table)
        mask = np.ones(rows.size, dtype=np.bool_)
        for i in np.flatnonzero(index.any_used[rows]).tolist():
            if conflicts(wanted, index.used[int(rows[i])]):
                mask[i] = False
        return FilterResult.reject(mask, ERR_REASON)


def new(args: Mapping[str, Any], handle: Handle) -> NodePorts:
    return NodePorts()
