"""NodeResourcesBalancedAllocation: prefer nodes whose resource fractions (requested /
allocatable, after placing the pod) are close to each other: score = (1 - std) * 100."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler.framework import SKIP, CycleState, Handle, Scores, Status
from scheduler.model import CPU, MEMORY, PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeResourcesBalancedAllocation"


class BalancedAllocation:
    name = NAME

    def __init__(self, resources: tuple[str, ...]) -> None:
        self.resources = resources

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        # Best-effort pods change no fraction; upstream skips them.
        if not any(pod.requests.get(r, 0) for r in self.resources):
            return SKIP
        return None

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        fractions = []
        present = []
        for resource in self.resources:
            column = table.resource_index.get(resource)
            if column is None:
                continue
            capacity = table.allocatable[rows, column]
            requested = table.requested[rows, column] + pod.requests.get(resource, 0)
            fraction = np.minimum(requested / np.maximum(capacity, 1), 1.0)
            fractions.append(np.where(capacity > 0, fraction, 0.0))
            present.append(capacity > 0)
        if not fractions:
            return np.zeros(rows.size, dtype=np.int64)
        f = np.vstack(fractions)
        have = np.vstack(present)
        count = have.sum(axis=0)
        mean = f.sum(axis=0) / np.maximum(count, 1)
        std = np.sqrt((((f - mean) ** 2) * have).sum(axis=0) / np.maximum(count, 1))
        # With two resources this equals |a - b| / 2, upstream's special case.
        scores: Scores = ((1.0 - std) * 100).astype(np.int64)
        return scores

    def normalize(self, scores: Scores) -> Scores:
        return scores


def new(args: Mapping[str, Any], handle: Handle) -> BalancedAllocation:
    raw = args.get("resources") or [{"name": CPU, "weight": 1}, {"name": MEMORY, "weight": 1}]
    return BalancedAllocation(tuple(str(r.get("name", "")) for r in raw))
