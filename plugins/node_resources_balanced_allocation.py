"""NodeResourcesBalancedAllocation: prefer nodes whose resource fractions (requested /
allocatable, after placing the pod) are close to each other: score = (1 - std) * 100."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler.framework import SKIP, CycleState, Handle, Scores, Status
from scheduler.model import CPU, EPHEMERAL, MEMORY, PODS, PodInfo, is_scalar_resource
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeResourcesBalancedAllocation"


class BalancedAllocation:
    name = NAME
    row_local = True  # Filter/Score of a node depend on the pod and that node only

    def __init__(self, resources: tuple[str, ...]) -> None:
        self.resources = resources

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        # Best-effort pods change no fraction; upstream skips them.
        if not any(pod.requests.get(r, 0) for r in self.resources if r != PODS):
            return SKIP
        return None

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        fractions = []
        present = []
        for resource in self.resources:
            want = pod.requests.get(resource, 0)
            column = table.resource_index.get(resource)
            scalar = is_scalar_resource(resource)
            # As upstream: a scalar resource the pod does not request is left out, and only
            # cpu, memory, ephemeral-storage and scalar resources are scored at all.
            if column is None or (scalar and want == 0):
                continue
            if not scalar and resource not in (CPU, MEMORY, EPHEMERAL):
                continue
            capacity = table.allocatable[rows, column]
            requested = table.requested[rows, column] + want
            fraction = np.minimum(requested / np.maximum(capacity, 1), 1.0)
            fractions.append(np.where(capacity > 0, fraction, 0.0))
            present.append(capacity > 0)
        std = np.zeros(rows.size, dtype=np.float64)
        if fractions:
            std = _std(fractions, present)
        # int64((1 - std) * MaxNodeScore) truncates, as Go's conversion does.
        scores: Scores = ((1.0 - std) * 100).astype(np.int64)
        return scores

    def normalize(self, scores: Scores) -> Scores:
        return scores


def _std(fractions: list[Any], present: list[Any]) -> Any:
    """Per row, the standard deviation of the fractions of the resources the node has, computed
    in upstream's order of operations: |a - b| / 2 for two, the textbook formula for more, 0
    for fewer (so scores match kube-scheduler to the last truncated digit)."""
    count = np.zeros(fractions[0].shape, dtype=np.int64)
    total = np.zeros(fractions[0].shape, dtype=np.float64)
    for f, have in zip(fractions, present, strict=True):
        count += have
        total += np.where(have, f, 0.0)
    mean = total / np.maximum(count, 1)
    squares = np.zeros(fractions[0].shape, dtype=np.float64)
    largest = np.full(fractions[0].shape, -np.inf)
    smallest = np.full(fractions[0].shape, np.inf)
    for f, have in zip(fractions, present, strict=True):
        squares += np.where(have, (f - mean) * (f - mean), 0.0)
        largest = np.where(have, np.maximum(largest, f), largest)
        smallest = np.where(have, np.minimum(smallest, f), smallest)
    two = np.abs((largest - smallest) / 2)
    many = np.sqrt(squares / np.maximum(count, 1))
    return np.where(count == 2, two, np.where(count > 2, many, 0.0))


def new(args: Mapping[str, Any], handle: Handle) -> BalancedAllocation:
    raw = args.get("resources") or [{"name": CPU, "weight": 1}, {"name": MEMORY, "weight": 1}]
    return BalancedAllocation(tuple(str(r.get("name", "")) for r in raw))
