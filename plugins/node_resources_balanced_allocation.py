"""NodeResourcesBalancedAllocation: prefer nodes where placing the pod improves the balance of
the resource fractions (requested / allocatable).

As upstream since v1.36, each node gets the balance without the pod and with it, each
``(1 - std of the fractions) * 100`` truncated, so each in [50, 100], and scores
``50 + (50 + with_pod - without_pod) / 2`` in integers: 75 when the pod leaves the balance as it
was, towards 100 when it evens the node out, towards 50 when it skews it
(noderesources/balanced_allocation.go, balancedResourceScorer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler import pluginargs
from scheduler.framework import MAX_NODE_SCORE, SKIP, CycleState, Handle, Scores, Status
from scheduler.model import CPU, EPHEMERAL, MEMORY, PODS, PodInfo, is_scalar_resource
from scheduler.pluginargs import NodeResourcesBalancedAllocationArgs
from scheduler.snapshot import NodeTable, Rows

NAME = "NodeResourcesBalancedAllocation"


class BalancedAllocation:
    name = NAME

    def row_local_for(self, pod: PodInfo) -> bool:
        """Batchable: a node's verdict depends on the pod and that node's row only."""
        return True

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
        if self.resources == (CPU, MEMORY):
            fast = _cpu_memory_score(table, pod, rows)
            if fast is not None:
                return fast
        with_pod = []
        without_pod = []
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
            allocated = table.requested[rows, column]
            have = capacity > 0
            with_pod.append(_fraction(allocated + want, capacity, have))
            without_pod.append(_fraction(allocated, capacity, have))
            present.append(have)
        # With no fraction at all both balances are 100 and the gain is 0.
        gain = np.zeros(rows.size, dtype=np.int64)
        if with_pod:
            gain = _balance(with_pod, present) - _balance(without_pod, present)
        # Both balances lie in [50, 100], so the dividend is never negative and floor division
        # is Go's truncating division.
        half = MAX_NODE_SCORE // 2
        scores: Scores = half + (half + gain) // 2
        return scores

    def normalize(self, scores: Scores) -> Scores:
        return scores


def _cpu_memory_score(table: NodeTable, pod: PodInfo, rows: Rows) -> Scores | None:
    """score() for the default resources, cpu and memory, when every row has both: both
    columns in one pass, with the operations of the general path (fractions capped at 1, the
    two-resource std |a - b| / 2, balances truncated); None otherwise."""
    capacity = table.allocatable[rows][:, :2]  # the table's first columns are cpu, memory
    if rows.size == 0 or not (capacity > 0).all():
        return None
    allocated = table.requested[rows][:, :2]
    want = np.asarray([pod.requests.get(CPU, 0), pod.requests.get(MEMORY, 0)], dtype=np.int64)
    with_pod = np.minimum((allocated + want) / capacity, 1.0)
    without_pod = np.minimum(allocated / capacity, 1.0)
    balances = []
    for fractions in (with_pod, without_pod):
        std = np.abs((fractions.max(axis=1) - fractions.min(axis=1)) / 2)
        balances.append(((1.0 - std) * MAX_NODE_SCORE).astype(np.int64))
    half = MAX_NODE_SCORE // 2
    out: Scores = half + (half + balances[0] - balances[1]) // 2
    return out


def _fraction(amount: Any, capacity: Any, have: Any) -> Any:
    """amount / capacity capped at 1, and 0 where the node lacks the resource (left out)."""
    fraction = np.minimum(amount / np.maximum(capacity, 1), 1.0)
    return np.where(have, fraction, 0.0)


def _balance(fractions: list[Any], present: list[Any]) -> Any:
    """Per row, int64((1 - std) * 100) of the fractions of the resources the node has."""
    # int64(...) truncates, as Go's conversion does; the value is never negative.
    return ((1.0 - _std(fractions, present)) * MAX_NODE_SCORE).astype(np.int64)


def _std(fractions: list[Any], present: list[Any]) -> Any:
    """Per row, the standard deviation of the fractions of the resources the node has, computed
    in upstream's order of operations: |a - b| / 2 for two, the textbook formula for more, 0
    for fewer (so scores match kube-scheduler to the last truncated digit)."""
    if len(fractions) == 2 and present[0].all() and present[1].all():
        # The usual case (cpu and memory on every row): the two-resource formula alone, with
        # the same operations as below, in a few numpy calls instead of thirty.
        first, second = fractions
        return np.abs((np.maximum(first, second) - np.minimum(first, second)) / 2)
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


def new(
    args: NodeResourcesBalancedAllocationArgs | Mapping[str, Any], handle: Handle
) -> BalancedAllocation:
    """`args` as the configuration decoded them, or a raw mapping (decoded here; ConfigError).
    Weights are all 1 (validated), so only the names matter."""
    typed = pluginargs.coerce(NAME, NodeResourcesBalancedAllocationArgs, args)
    return BalancedAllocation(tuple(r.name for r in typed.resources))
