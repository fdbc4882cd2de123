"""Workload-aware preemption: a PodGroup preempts as a whole, or nobody is evicted.

Upstream v1.37's PodGroupPostFilter, run by the group cycle (scheduler/group_cycle.py) when
a group fails its cycle and the profile has a PostFilter plugin with a preemption
evaluator. Every lower-priority pod outside the group is taken off the nodes (on the table,
inside a trial) and the group cycle runs again; if the group then fits, the candidates are
given back unit by unit (`_victim_units`: a PodGroup with disruptionMode `all` is one unit),
those whose eviction would break a PodDisruptionBudget first, then the more important ones,
and each unit stays only if every member placed on its nodes still passes the filters there
(`_assignments_fit`). What is left are the victims, chosen for the group together; their
deletion runs as a task, and each member is nominated to the node it was placed on.

Module functions taking the Scheduler, whose state they share (scheduler/cycle.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from scheduler import group_cycle, nomination
from scheduler.framework import CycleState, Status
from scheduler.model import PodInfo
from scheduler.podgroups import PodGroup, group_key
from scheduler.preemption import filter_pods_with_pdb_violation, more_important_pod
from scheduler.queue import QueuedPod
from scheduler.runtime import Framework

if TYPE_CHECKING:
    from scheduler.cycle import Scheduler

log = logging.getLogger("berth.cycle")

__all__ = ["group_post_filter"]


def group_post_filter(
    sched: Scheduler, members: list[QueuedPod], profile: Framework, group: PodGroup, scheduled: int
) -> tuple[str, dict[str, str]]:
    """Workload-aware preemption (upstream v1.37's PodGroupPostFilter): the whole group
    preempts, or nobody is evicted. Every lower-priority pod (not of the group) is taken
    off the nodes and the group cycle runs again; if the group then fits, the candidates
    are given back one by one, those whose eviction would break a PodDisruptionBudget
    first, then the more important ones first, and each stays only if every member placed
    on its node still passes the filters there. What is left are the victims, chosen for
    the group together. Returns the message part ("pod group preemption: ...") and the
    node each member is nominated to (empty when nothing is preempted)."""
    plugin = next((p for p in profile.post_filter if hasattr(p, "evaluator")), None)
    if plugin is None:
        return "", {}
    evaluator = plugin.evaluator
    prefix = "pod group preemption: "
    priority = group_cycle.group_priority(group, [m.pod for m in members])
    if any((m.pod.raw.get("spec") or {}).get("preemptionPolicy") == "Never" for m in members):
        return prefix + "not eligible due to preemptionPolicy=Never.", {}
    table = sched.cache.table
    for m in members:
        node = sched.queue.nominator.node_of(m.pod.uid) or m.pod.nominated_node_name
        row = table.row_of.get(node) if node else None
        if row is not None and any(
            other.priority < priority and evaluator.terminating_by_preemption(other)
            for other in table.pods[row].values()
        ):
            keep = {
                m.pod.uid: sched.queue.nominator.node_of(m.pod.uid) or m.pod.nominated_node_name
                for m in members
            }
            return prefix + "ongoing preemption on nominated nodes", keep
    candidates = [
        (int(row), pod)
        for row in table.live_rows()
        for pod in table.pods[int(row)].values()
        if pod.priority < priority
        and not pod.deleting
        and group_key(pod) != group.key
        and not evaluator.terminating_by_preemption(pod)
    ]
    if not candidates:
        return prefix + "No preemption victims found for incoming preemptor", {}
    victims: list[tuple[int, PodInfo]] = []
    violations = 0
    nominations: dict[str, str] = {}
    with table.trial():
        table.remove_pods(candidates)
        tried: group_cycle.GroupTry | None = None
        status: Status | None = None
        for domain in group_cycle.group_domains(sched, group, scheduled):
            attempt = group_cycle.try_group(sched, members, profile, group, scheduled, domain)
            if attempt.status is None:
                tried = attempt
                break
            status = status or attempt.status
            group_cycle.revert(sched, profile, attempt)
        if tried is None:
            table.add_pods(candidates)
            return prefix + (status.message if status else "no placement"), {}
        units = _victim_units(sched, candidates)
        budgets = list(evaluator.handle.disruption_budgets())
        flat = [pod for unit in units for _, pod in unit]
        violating, _ = filter_pods_with_pdb_violation(flat, budgets)
        breaking = {pod.uid for pod in violating}
        # Units that would break a budget are given back first (upstream's reprieve order).
        units.sort(key=lambda unit: not any(pod.uid in breaking for _, pod in unit))
        for unit in units:
            table.add_pods(unit)
            if not all(_assignments_fit(sched, profile, tried, r) for r in {r for r, _ in unit}):
                table.remove_pods(unit)
                victims.extend(unit)
                violations += sum(pod.uid in breaking for _, pod in unit)
        nominations = {m.pod.uid: node for m, node, _, _ in tried.placed}
        group_cycle.revert(sched, profile, tried)
        table.add_pods(victims)
    if not victims:
        return "", {}
    evaluator.mark_preempting([pod for _, pod in victims])
    if sched._on_preemption is not None:
        sched._on_preemption(len(victims))
    preemptor = members[0].pod
    names = {row: table.node(row).name for row, _ in victims}

    async def execute() -> None:
        await asyncio.gather(
            *(
                evaluator.handle.preempt(preemptor, pod, names[row], evaluator.plugin_name)
                for row, pod in victims
            )
        )

    task = asyncio.get_running_loop().create_task(nomination.preempting(sched, execute))
    sched._side.add(task)
    task.add_done_callback(sched._side.discard)
    log.info(
        "pod group preemption",
        extra={
            "podgroup": f"{group.namespace}/{group.name}",
            "victims": len(victims),
            "pdb_violations": violations,
        },
    )
    return prefix + f"found a placement for podgroup, preempting {len(victims)} victims", (
        nominations
    )


def _victim_units(
    sched: Scheduler, candidates: list[tuple[int, PodInfo]]
) -> list[list[tuple[int, PodInfo]]]:
    """The candidates as preemption units, most important first (upstream's
    getCrossNodesVictims and MoreImportantVictim): the pods of a PodGroup whose
    disruptionMode is `all` go together, every other pod alone. Higher priority first,
    then a group before a pod, then the larger group, then the earlier start."""
    store = sched.pod_groups
    singles: list[list[tuple[int, PodInfo]]] = []
    together: dict[tuple[str, str, str], list[tuple[int, PodInfo]]] = {}
    for row, pod in candidates:
        group = store.group_of(pod) if store is not None else None
        if group is not None and group.disruption_mode == "all":
            together.setdefault(group.key, []).append((row, pod))
        else:
            singles.append([(row, pod)])

    def importance(grouped: bool, unit: list[tuple[int, PodInfo]]) -> tuple[int, int, int, str]:
        pods = [pod for _, pod in unit]
        earliest = min(more_important_pod(p)[1] for p in pods)
        return (-max(p.priority for p in pods), -int(grouped), -len(pods), earliest)

    ranked = [(importance(False, u), u) for u in singles]
    ranked += [(importance(True, u), u) for u in together.values()]
    ranked.sort(key=lambda pair: pair[0])
    return [unit for _, unit in ranked]


def _assignments_fit(
    sched: Scheduler, profile: Framework, tried: group_cycle.GroupTry, row: int
) -> bool:
    """Does every member the try placed on `row` still pass the filters there (each one
    checked with the others, and whatever was given back, in place)?"""
    table = sched.cache.table
    for member, node, _, _ in tried.placed:
        if table.row_of.get(node) != row:
            continue
        table.remove_pods([(row, member.pod)])
        try:
            check = nomination.node_check(sched, profile, CycleState(), member.pod, finished=False)
            fits = check(member.pod, row) is None
        finally:
            table.add_pods([(row, member.pod)])
        if not fits:
            return False
    return True
