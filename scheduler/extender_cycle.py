"""What the scheduling cycle asks its extenders, and how the answers enter the cycle.

Mirrors upstream's pkg/scheduler/schedule_one.go: `find_nodes_that_pass_extenders` (after the
Filter plugins, on the feasible nodes, each interested extender in order on what the previous
one left) and the extender half of `prioritizeNodes` (the interested prioritizers concurrently,
each node's score * weight * MaxNodeScore / MaxExtenderPriority added to the plugins' total),
`extenders_binding` (the first interested binder binds instead of the Bind plugins), and
`call_extenders_preemption` (the preempt verbs on preemption's candidates, upstream's
framework/preemption callExtenders).

Nodes an extender reports in `FailedNodes` / `FailedAndUnresolvableNodes` enter the diagnosis
with the extender's message under the pseudo-plugin "Extender <urlPrefix>" (upstream's
ExtenderName and the extender's Name()), so `berth explain` names the extender and the
FailedScheduling message counts them as upstream's FitError does; nodes it drops without a
reason are not counted, as upstream. Errors of an ignorable extender skip it; others fail the
attempt (raised as ExtenderError).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from scheduler.extender_client import ExtenderError, HTTPExtender, extender_scores
from scheduler.framework import Diagnosis
from scheduler.model import PodInfo

log = logging.getLogger("berth.extenders")

EXTENDER = "Extender"  # upstream's framework.ExtenderName, the rejector the queue remembers

__all__ = [
    "EXTENDER",
    "call_extenders_preemption",
    "extenders_binding",
    "find_nodes_that_pass_extenders",
    "interested",
    "prioritize_with_extenders",
]


def interested(extenders: Sequence[HTTPExtender], pod: PodInfo) -> list[HTTPExtender]:
    return [e for e in extenders if e.is_interested(pod)]


async def find_nodes_that_pass_extenders(
    extenders: Sequence[HTTPExtender],
    pod: PodInfo,
    nodes: Sequence[str],
    diagnosis: Diagnosis,
    row_of: Mapping[str, int],
) -> list[str]:
    """The names of `nodes` every interested filter extender passes, in the order of the
    last answer. Failed nodes are recorded in `diagnosis` (a later extender's verdict on a
    node replaces an earlier one, as upstream's NodeToStatus map)."""
    feasible = list(nodes)
    verdicts: dict[str, tuple[str, bool, str]] = {}  # node -> (message, unresolvable, by)
    for extender in extenders:
        if not feasible:
            break
        if not extender.is_filter or not extender.is_interested(pod):
            continue
        try:
            result = await extender.filter(pod, feasible)
        except ExtenderError as err:
            if extender.ignorable:
                log.info(
                    "skipping extender as it returned error and has ignorable flag set",
                    extra={"extender": extender.name, "error": str(err)},
                )
                continue
            raise
        by = f"{EXTENDER} {extender.name}"
        for node, message in result.unresolvable.items():
            verdicts[node] = (message, True, by)
        for node, message in result.failed.items():
            if node not in result.unresolvable:  # the unresolvable verdict takes precedence
                verdicts[node] = (message, False, by)
        feasible = list(result.nodes)
    for node, (message, unresolvable, by) in verdicts.items():
        diagnosis.counts[message] = diagnosis.counts.get(message, 0) + 1
        per_plugin = diagnosis.by_plugin.setdefault(by, {})
        per_plugin[message] = per_plugin.get(message, 0) + 1
        if unresolvable and node in row_of:
            diagnosis.unresolvable_rows.add(row_of[node])
    return feasible


async def prioritize_with_extenders(
    extenders: Sequence[HTTPExtender],
    pod: PodInfo,
    nodes: Sequence[str],
    running: Callable[[int], None] = lambda delta: None,
) -> dict[str, npt.NDArray[np.int64]]:
    """Each interested prioritizer's weighted scores over `nodes` (same order), by extender
    name; an extender whose call fails gives no scores (upstream ignores prioritize errors).
    `running(+1/-1)` counts the calls in flight (scheduler_goroutines, operation
    "prioritizing_extender")."""
    chosen = [e for e in extenders if e.is_prioritizer and e.is_interested(pod)]

    async def one(extender: HTTPExtender) -> list[tuple[str, int]] | None:
        running(1)
        try:
            return await extender.prioritize(pod, nodes)
        except ExtenderError as err:
            log.debug(
                "extender's prioritize failed, no score from it",
                extra={"extender": extender.name, "pod": pod.key, "error": str(err)},
            )
            return None
        finally:
            running(-1)

    answers = await asyncio.gather(*(one(e) for e in chosen))
    index = {name: i for i, name in enumerate(nodes)}
    out: dict[str, npt.NDArray[np.int64]] = {}
    for extender, answer in zip(chosen, answers, strict=True):
        if answer is None:
            continue
        scores = np.zeros(len(nodes), dtype=np.int64)
        for node, total in extender_scores([(extender.config.weight, answer)]).items():
            if node in index:  # scores for nodes not asked about are dropped, as upstream
                scores[index[node]] += total
        out[extender.name] = scores
    return out


async def extenders_binding(
    extenders: Sequence[HTTPExtender], pod: PodInfo, node: str
) -> tuple[bool, str]:
    """Upstream's extendersBinding: (bound by an extender?, its error or ""). An ignorable
    binder's error lets the next binder (or the Bind plugins) try."""
    for extender in extenders:
        if not extender.is_binder or not extender.is_interested(pod):
            continue
        try:
            await extender.bind(pod, node)
        except ExtenderError as err:
            if extender.ignorable:
                log.info(
                    "skipping extender in bind as it returned error and has ignorable flag set",
                    extra={"extender": extender.name, "error": str(err)},
                )
                continue
            return True, str(err)
        return True, ""
    return False, ""


async def call_extenders_preemption(
    extenders: Sequence[HTTPExtender],
    pod: PodInfo,
    victims: Mapping[str, tuple[Sequence[PodInfo], int]],
    pods_on: Callable[[str], Mapping[str, PodInfo]],
) -> dict[str, tuple[Sequence[PodInfo], int]]:
    """Upstream's callExtenders: each interested extender with a preempt verb, in order, on
    what the previous one kept (node -> (victims, PDB violations)). Answers name victims by
    UID; `pods_on(node)` (uid -> pod) turns them back into pods. A node answered without
    victims is an error (an ignorable extender's such node is dropped instead); any other
    error of an ignorable extender skips it, of another one is raised."""
    current: dict[str, tuple[Sequence[PodInfo], int]] = dict(victims)
    for extender in extenders:
        if not extender.supports_preemption or not extender.is_interested(pod):
            continue
        try:
            answer = await extender.process_preemption(pod, current)
            kept: dict[str, tuple[Sequence[PodInfo], int]] = {}
            for node, (uids, pdb) in answer.items():
                if not uids:
                    if extender.ignorable:
                        continue
                    raise ExtenderError(f'expected at least one victim pod on node "{node}"')
                on_node = pods_on(node)
                missing = [uid for uid in uids if uid not in on_node]
                if missing:
                    raise ExtenderError(
                        f"extender: {extender.name} claims to preempt pod (UID: {missing[0]}) "
                        f"on node: {node}, but the pod is not found on that node"
                    )
                kept[node] = ([on_node[uid] for uid in uids], pdb)
        except ExtenderError as err:
            if extender.ignorable:
                log.info(
                    "skipped extender as it returned error and has ignorable flag set",
                    extra={"extender": extender.name, "error": str(err)},
                )
                continue
            raise
        current = kept
        if not current:  # no preemption can happen, whatever the others say
            break
    return current
