"""What one scheduling cycle decided: the Attempt (kept for `berth explain`) and its Scoring.

Every part of the cycle writes one (scheduler/cycle.py's one-pod path, the extended cycle,
the group cycle, the binding cycle when Permit rejects), so it sits below them all, with the
two readings of a failed attempt they share: the FitError over the one node a Reserve or
Permit plugin rejected the pod on, and the plugins the queue remembers as its rejectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler.framework import CycleState, Diagnosis, Status
from scheduler.model import PodInfo
from scheduler.snapshot import NodeTable

__all__ = ["Attempt", "Scoring", "one_node_diagnosis", "rejecting_plugins"]


@dataclass(frozen=True)
class Scoring:
    """An attempt's candidate nodes and scores, kept as the arrays the cycle computed (no
    work on the hot path); `top()` renders the best few for explain. Names are looked up when
    rendered: only recent attempts keep scores, so rows are very unlikely to have been reused."""

    table: NodeTable
    rows: npt.NDArray[np.int64]
    totals: npt.NDArray[np.int64]
    parts: dict[str, npt.NDArray[np.int64]]
    chosen: int = 0  # index into rows of the node that won (ties are broken at random)

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The chosen node first, then the next best (so a random tie-break is visible)."""
        order = [int(i) for i in np.argsort(-self.totals, kind="stable") if i != self.chosen]
        best = [self.chosen, *order[: n - 1]]
        return [
            {
                "node": self.table.names([self.rows[i]])[0],
                "total": int(self.totals[i]),
                "plugins": {p: int(s[i]) for p, s in self.parts.items()},
            }
            for i in best
        ]


@dataclass
class Attempt:
    """What one scheduling cycle decided, for callers and `explain`."""

    pod: PodInfo
    node: str = ""
    status: Status | None = None
    diagnosis: Diagnosis | None = None
    scoring: Scoring | None = None
    nominated: str = ""  # the node preemption nominated in this attempt
    victims: tuple[str, ...] = ()  # the pods it preempts there (namespace/name)
    bind_state: CycleState | None = None  # the cycle state the binding cycle goes on with
    group: dict[str, Any] | None = None  # a PodGroup member's group attempt, for explain


def one_node_diagnosis(status: Status) -> Diagnosis:
    """Upstream's FitError over the one node a Reserve or Permit plugin rejected the pod on."""
    diagnosis = Diagnosis(total_nodes=1)
    for reason in status.reasons or (f"rejected by {status.plugin}",):
        diagnosis.counts[reason] = diagnosis.counts.get(reason, 0) + 1
    if status.plugin:
        diagnosis.by_plugin[status.plugin] = dict(diagnosis.counts)
    return diagnosis


def rejecting_plugins(attempt: Attempt) -> frozenset[str]:
    """The plugins that rejected the pod in this attempt (upstream's UnschedulablePlugins):
    its Filter plugins, or the PreFilter plugin that rejected it for every node."""
    diagnosis = attempt.diagnosis
    if diagnosis is None:
        return frozenset()
    plugins = set(diagnosis.by_plugin)
    if diagnosis.pre_filter is not None and diagnosis.pre_filter.plugin:
        plugins.add(diagnosis.pre_filter.plugin)
    return frozenset(plugins)
