"""The group cycle: the queued members of a PodGroup placed together, or none of them.

Upstream's scheduleOnePodGroup (KEP-4671 gang scheduling, v1.37's workload-aware
scheduling). `schedule_group` takes the popped member's queued group mates along and tries
them in queue order: each is placed by the one-pod algorithm (Scheduler._algorithm),
assumed and reserved; `try_group` stops as soon as minCount can no longer be reached. A
group that reaches its quorum goes on to Permit (GangScheduling allows it whole) and a
binding cycle per member; otherwise every reservation of the cycle is undone (`revert`)
and every member waits, requeued with the plugins that rejected any of them. With a
topology key each domain (node-label value) is tried and the best one wins (`group_domains`).

The starvation guard (`_held_behind`, `_note_starving`) is berth's: a gang that has failed
for STARVATION_SECONDS and would fit without the other gangs of no higher priority becomes
the head, and younger gangs of no higher priority wait until it is placed. A failed group
cycle may preempt for the whole group (scheduler/group_preemption.py).

Module functions taking the Scheduler, whose state they share (scheduler/cycle.py); the
gang bookkeeping (`_group_binds`, `_starving`, `_head`, `_held`) lives on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scheduler import binding_cycle, group_preemption, nomination
from scheduler.attempt import Attempt, one_node_diagnosis, rejecting_plugins
from scheduler.framework import Code, CycleState, PluginError, Status
from scheduler.model import UPSTREAM_POD_GROUPS, PodInfo
from scheduler.podgroups import PodGroup, placement_message, quorum_message
from scheduler.queue import QueuedPod
from scheduler.runtime import Framework

if TYPE_CHECKING:
    from scheduler.cycle import Scheduler

log = logging.getLogger("berth.cycle")

GANG_SCHEDULING = "GangScheduling"  # the plugin whose Permit and PreEnqueue go with the cycle
# A gang failing its group cycle for this long may hold younger gangs back (_note_starving).
STARVATION_SECONDS = 60.0

__all__ = [
    "GANG_SCHEDULING",
    "STARVATION_SECONDS",
    "GroupTry",
    "group_domains",
    "group_member_bound",
    "group_of",
    "group_priority",
    "revert",
    "schedule_group",
    "try_group",
    "validate_group",
]


def group_of(sched: Scheduler, pod: PodInfo, profile: Framework) -> PodGroup | None:
    """The group a popped pod is scheduled with: a gang, or any group with a topology
    constraint, when the profile runs GangScheduling. A basic group without one is
    scheduled pod by pod: one cycle per member places each where upstream's group
    cycle would."""
    if pod.pod_group is None or sched.pod_groups is None:
        return None
    if not any(p.name == GANG_SCHEDULING for p in profile.permit):
        return None
    group = sched.pod_groups.group_of(pod)
    if group is None or not (group.is_gang or group.topology_key):
        return None
    return group


def schedule_group(
    sched: Scheduler, entry: QueuedPod, profile: Framework, group: PodGroup
) -> Attempt:
    """One group cycle (upstream's scheduleOnePodGroup): every queued member of the group
    is placed in turn (assumed and reserved), in queue order. If the members already
    placed and those placed now reach minCount, each goes on to Permit and its binding
    cycle; otherwise every reservation of this cycle is undone, in reverse order, and
    every member waits as unschedulable. Nothing is held between cycles, so two gangs
    that do not fit together never deadlock: one is placed whole, the other waits whole.

    With a topology key the members go to one domain of that node label: each domain is
    tried, the one that places the most members (then the highest total score) wins, and
    the group never straddles domains (members placed earlier fix the domain)."""
    assert sched.pod_groups is not None
    store = sched.pod_groups
    start = time.perf_counter()
    sched._cycles += 1
    profile.sample_plugins = False
    others = [p.uid for p in store.unscheduled(group.key) if p.uid != entry.pod.uid]
    members = [entry, *sched.queue.take(others)]
    members.sort(key=lambda e: profile.sort_key(e.pod, e.arrival))
    invalid = validate_group(group, [m.pod for m in members])
    if invalid is not None:
        return _group_failed(sched, members, profile, group, Status.error(invalid), {}, start)
    behind = _held_behind(sched, group, [m.pod for m in members])
    if behind is not None:
        status = Status.unschedulable(
            f'waiting for the older gang "{behind[1]}/{behind[2]}" to be placed first',
            plugin=GANG_SCHEDULING,
        )
        sched._held.update(m.pod.uid for m in members)
        return _group_failed(sched, members, profile, group, status, {}, start)
    scheduled = store.scheduled_count(group.key)
    domains = group_domains(sched, group, scheduled)
    if not domains:
        status = Status.unschedulable(
            placement_message(0, f"no node has the label {group.topology_key!r}")
        )
        return _group_failed(sched, members, profile, group, status, {}, start)
    best: GroupTry | None = None
    first_status: Status | None = None
    for domain in domains:
        tried = try_group(sched, members, profile, group, scheduled, domain)
        if len(domains) > 1:
            revert(sched, profile, tried)
            if first_status is None and tried.status is not None:
                first_status = tried.status
        if best is None or tried.rank() > best.rank():
            best = tried
        if tried.status is not None and tried.status.code is Code.ERROR:
            break
    assert best is not None
    if len(domains) > 1 and best.status is None:
        # Placed again for real in the domain that won (each try was undone).
        best = try_group(sched, members, profile, group, scheduled, best.domain)
    if best.status is None:
        return _group_placed(sched, members, profile, group, best, start)
    if len(domains) == 1:
        revert(sched, profile, best)
    status = best.status
    if len(domains) > 1 and status.code is not Code.ERROR:
        first = first_status.message if first_status is not None else status.message
        status = Status.unschedulable(placement_message(len(domains), first))
    nominations: dict[str, str] = {}
    if status.code is not Code.ERROR and profile.post_filter:
        message, nominations = group_preemption.group_post_filter(
            sched, members, profile, group, scheduled
        )
        if message:
            status = Status(status.code, (*status.reasons, message), status.plugin)
    return _group_failed(
        sched, members, profile, group, status, best.failures, start, best, nominations
    )


def group_domains(sched: Scheduler, group: PodGroup, scheduled: int) -> list[frozenset[str] | None]:
    """The node sets the group may use: every node (no topology key), or one set per
    value of the key; only the domain of members already placed once any are."""
    key = group.topology_key
    if not key:
        return [None]
    table = sched.cache.table
    by_value: dict[str, set[str]] = {}
    for node in table.nodes:
        if node is not None and key in node.labels:
            by_value.setdefault(node.labels[key], set()).add(node.name)
    if scheduled and sched.pod_groups is not None:
        used = set()
        for pod in sched.pod_groups.pods(group.key):
            node_name = pod.node_name or sched.cache.node_of(pod.uid) or ""
            row = table.row_of.get(node_name)
            info = table.nodes[row] if row is not None else None
            if info is not None:
                used.add(info.labels.get(key, ""))
        by_value = {v: names for v, names in by_value.items() if v in used}
    return [frozenset(names) for _, names in sorted(by_value.items())]


def try_group(
    sched: Scheduler,
    members: list[QueuedPod],
    profile: Framework,
    group: PodGroup,
    scheduled: int,
    domain: frozenset[str] | None,
) -> GroupTry:
    """Place the members in turn (assume + Reserve each), stopping as soon as minCount
    cannot be reached (upstream's PlacementFeasible after each pod)."""
    tried = GroupTry(domain, scheduled)
    remaining = len(members)
    message = quorum_message(group.min_count, scheduled, remaining)
    if message is not None and remaining + scheduled < group.min_count:
        tried.status = Status.unschedulable(message, plugin=GANG_SCHEDULING)
        return tried
    table = sched.cache.table
    for member in members:
        pod = member.pod
        state = CycleState()
        if domain is not None:
            state.restrict_nodes(GANG_SCHEDULING, domain)
        attempt = Attempt(pod)
        try:
            placed = sched._algorithm(pod, profile, state, attempt)
            if placed is not None:
                row, state = placed
                node = table.node(row).name
                sched.cache.assume(pod, node)
                status = profile.run_reserve(state, pod, node)
                if status is not None:
                    profile.run_unreserve(state, pod, node)
                    sched._forget(pod)
                    attempt.status = sched._rejected_at(status, node)
                    attempt.diagnosis = one_node_diagnosis(status)
                    placed = None
                else:
                    tried.placed.append((member, node, state, attempt))
                    if attempt.scoring is not None:
                        tried.score += int(attempt.scoring.totals[attempt.scoring.chosen])
        except PluginError as err:
            tried.status = Status.error(
                f"failed to schedule other pod from a pod group: {err.status.message}"
            )
            return tried
        except Exception as err:  # a plugin bug must not stop the scheduler
            log.exception("group cycle failed", extra={"pod": pod.key})
            sched.classes.clear()
            tried.status = Status.error(
                f"failed to schedule other pod from a pod group: scheduling cycle failed: {err}"
            )
            return tried
        remaining -= 1
        if placed is None:
            tried.failures[pod.uid] = attempt
            if attempt.status is not None and attempt.status.code is Code.ERROR:
                tried.status = Status.error(
                    f"failed to schedule other pod from a pod group: {attempt.status.message}"
                )
                return tried
        done = scheduled + len(tried.placed)
        if remaining + done < group.min_count:
            message = quorum_message(group.min_count, done, remaining)
            tried.status = Status.unschedulable(message or "", plugin=GANG_SCHEDULING)
            return tried
    done = scheduled + len(tried.placed)
    message = quorum_message(group.min_count, done, 0)
    if message is not None:
        tried.status = Status.unschedulable(message, plugin=GANG_SCHEDULING)
    elif not tried.placed:
        # Upstream turns a "success" that placed nothing into a rejection.
        tried.status = Status.unschedulable(
            next(iter(tried.failures.values())).status.message  # type: ignore[union-attr]
            if tried.failures
            else "no pod of the group could be placed",
            plugin=GANG_SCHEDULING,
        )
    return tried


def revert(sched: Scheduler, profile: Framework, tried: GroupTry) -> None:
    """Undo a try's reservations in reverse order (upstream's revert functions)."""
    tried.best_placed = max(tried.best_placed, len(tried.placed))
    for member, node, state, _ in reversed(tried.placed):
        profile.run_unreserve(state, member.pod, node)
        sched._forget(member.pod)
    tried.placed = []


def _group_placed(
    sched: Scheduler,
    members: list[QueuedPod],
    profile: Framework,
    group: PodGroup,
    tried: GroupTry,
    start: float,
) -> Attempt:
    """The quorum is met: Permit (GangScheduling allows the whole group at once) and a
    binding cycle for each placed member; members that did not fit wait on their own
    FitError, as upstream's submitPodGroupAlgorithmResult does."""
    summary = _group_summary(sched, group, tried, len(members))
    if sched.pod_groups is not None:
        sched.pod_groups.quorum_met.add(group.key)
    try:
        for member, node, state, attempt in tried.placed:
            _permit_and_bind(sched, member, profile, node, state, attempt, summary, tried, start)
    finally:
        if sched.pod_groups is not None:
            sched.pod_groups.quorum_met.discard(group.key)
    placed = {m.pod.uid for m, _, _, a in tried.placed if a.node}
    for member in members:
        if member.pod.uid in placed:
            continue
        failed = tried.failures.get(member.pod.uid)
        attempt = failed or Attempt(member.pod, status=Status.unschedulable("not tried"))
        attempt.group = summary
        _member_failed(sched, member, profile, attempt, attempt.status, start)
    _group_result(sched, group, "scheduled", start, "", profile)
    sched._starving.pop(group.key, None)
    if sched._head is not None and sched._head[0] == group.key:
        _release_head(
            sched,
        )
    if group.is_gang and tried.scheduled < group.min_count and placed:
        sched._group_binds[group.key] = len(placed)
    first = next((a for _, _, _, a in tried.placed if a.node), None)
    return first or Attempt(members[0].pod, status=Status.unschedulable("not placed"))


def _permit_and_bind(
    sched: Scheduler,
    member: QueuedPod,
    profile: Framework,
    node: str,
    state: CycleState,
    attempt: Attempt,
    summary: dict[str, Any],
    tried: GroupTry,
    start: float,
) -> None:
    """One placed member: Permit, then its binding cycle; a Permit rejection undoes it."""
    pod = member.pod
    attempt.group = summary
    status = profile.run_permit(state, pod, node)
    if status is not None and status.code is not Code.WAIT:
        profile.run_unreserve(state, pod, node)
        sched._forget(pod)
        attempt.status = sched._rejected_at(status, node)
        attempt.diagnosis = one_node_diagnosis(status)
        tried.failures[pod.uid] = attempt
        return
    attempt.node = node
    sched._remember(attempt)
    binding_cycle.start_binding(sched, member, profile, state, node, start)


def _group_failed(
    sched: Scheduler,
    members: list[QueuedPod],
    profile: Framework,
    group: PodGroup,
    status: Status,
    failures: Mapping[str, Attempt],
    start: float,
    tried: GroupTry | None = None,
    nominations: Mapping[str, str] | None = None,
) -> Attempt:
    """Nothing of the group is placed: every member waits. Members that fitted carry the
    group's message; the others their own FitError. All are requeued with every plugin
    that rejected any of them, so an event that may let the missing ones fit moves them,
    and the first to be popped takes the rest along."""
    error = status.code is Code.ERROR
    rejectors: set[str] = {GANG_SCHEDULING}
    for attempt in failures.values():
        rejectors |= rejecting_plugins(attempt)
    summary = _group_summary(sched, group, tried, len(members))
    summary["message"] = status.message
    # Why the missing members did not fit, merged over them (explain's table).
    summary["unplaced"] = sorted(a.pod.name for a in failures.values())
    merged: dict[str, dict[str, int]] = {}
    for attempt in failures.values():
        if attempt.diagnosis is not None:
            for plugin, reasons in attempt.diagnosis.by_plugin.items():
                into = merged.setdefault(plugin, {})
                for reason, count in reasons.items():
                    into[reason] = into.get(reason, 0) + count
    summary["by_plugin"] = merged
    first: Attempt | None = None
    for member in members:
        own = failures.get(member.pod.uid)
        attempt = (
            own
            if own is not None and not error
            else Attempt(member.pod, status=Status(status.code, status.reasons))
        )
        attempt.group = summary
        nominated = (nominations or {}).get(member.pod.uid, "")
        attempt.nominated = nominated
        _member_failed(sched, member, profile, attempt, attempt.status, start, rejectors, nominated)
        first = first or attempt
    result = "error" if error else "unschedulable"
    if nominations:
        result = "waiting_on_preemption"
    elif not error and group.is_gang and not sched._held.issuperset(m.pod.uid for m in members):
        _note_starving(sched, members, profile, group)
    _group_result(sched, group, result, start, status.message, profile)
    assert first is not None
    return first


def _member_failed(
    sched: Scheduler,
    member: QueuedPod,
    profile: Framework,
    attempt: Attempt,
    status: Status | None,
    start: float,
    rejectors: set[str] | None = None,
    nominated: str = "",
) -> None:
    pod = member.pod
    error = status is not None and status.code is Code.ERROR
    sched._remember(attempt)
    sched.observer.attempt(
        "error" if error else "unschedulable",
        profile.scheduler_name,
        time.perf_counter() - start,
    )
    nomination.set_nominated(sched, pod, nominated)
    plugins = frozenset(rejectors) if rejectors else rejecting_plugins(attempt)
    sched.queue.requeue(member, frozenset() if error else plugins, error=error)
    message = status.message if status is not None else "unknown"
    sched.reporter.failed(pod, message, "SchedulerError" if error else "Unschedulable")


def _held_behind(
    sched: Scheduler, group: PodGroup, pods: Sequence[PodInfo]
) -> tuple[str, ...] | None:
    """The key of the gang this gang must wait behind, if any: a younger gang (its quorum
    came later) of no higher priority waits while an older one starves (berth's rule,
    see _note_starving). A head that is gone or placed lets everyone go."""
    if sched._head is None or sched.pod_groups is None or not group.is_gang:
        return None
    store = sched.pod_groups
    head, head_priority = sched._head
    if head == group.key:
        return None
    if head not in store.groups or not store.unscheduled(head):
        _release_head(
            sched,
        )
        return None
    mine, theirs = store.quorum_at.get(group.key), store.quorum_at.get(head)
    if mine is None or theirs is None or mine <= theirs:
        return None
    if group_priority(group, pods) > head_priority:
        return None
    return head


def _note_starving(
    sched: Scheduler, members: list[QueuedPod], profile: Framework, group: PodGroup
) -> None:
    """A gang failed its group cycle. One that has failed for STARVATION_SECONDS, and
    would fit were the other gangs of no higher priority gone (so it can be placed once
    they finish), becomes the head: younger gangs of no higher priority are held until
    it is placed. Without this a large gang could wait for ever while small gangs take
    each bit of room as it frees. Only the oldest starving gang is the head."""
    store = sched.pod_groups
    if store is None:
        return
    now = sched._clock()
    since = sched._starving.setdefault(group.key, now)
    if now - since < STARVATION_SECONDS:
        return
    mine = store.quorum_at.get(group.key)
    if sched._head is not None:
        theirs = store.quorum_at.get(sched._head[0])
        if mine is None or theirs is None or mine >= theirs:
            return
    priority = group_priority(group, [m.pod for m in members])
    if _fits_without_other_gangs(sched, members, profile, group, priority):
        if sched._head is not None:
            _release_head(
                sched,
            )
        sched._head = (group.key, priority)
        log.info(
            "starving gang: younger gangs wait behind it",
            extra={"podgroup": f"{group.namespace}/{group.name}"},
        )


def _fits_without_other_gangs(
    sched: Scheduler, members: list[QueuedPod], profile: Framework, group: PodGroup, priority: int
) -> bool:
    """Would the group be placed if the pods of every other gang of no higher priority
    were gone? (Tried on the table, then undone.)"""
    store = sched.pod_groups
    assert store is not None
    table = sched.cache.table
    gone: list[tuple[int, PodInfo]] = []
    for key, other in store.groups.items():
        if key == group.key or not other.is_gang:
            continue
        pods = list(store.pods(key))
        if group_priority(other, pods) > priority:
            continue
        for pod in pods:
            row = table.row_of.get(pod.node_name or sched.cache.node_of(pod.uid) or "")
            if row is not None and pod.uid in table.pods[row]:
                gone.append((row, table.pods[row][pod.uid]))
    if not gone:
        return False
    scheduled = store.scheduled_count(group.key)
    with table.trial():
        table.remove_pods(gone)
        try:
            for domain in group_domains(sched, group, scheduled):
                tried = try_group(sched, members, profile, group, scheduled, domain)
                revert(sched, profile, tried)
                if tried.status is None:
                    return True
            return False
        finally:
            table.add_pods(gone)


def _release_head(sched: Scheduler) -> None:
    """The head gang is placed or gone: the gangs held behind it go back to the queue."""
    sched._head = None
    held, sched._held = sched._held, set()
    sched.queue.activate(held)


def _group_summary(
    sched: Scheduler, group: PodGroup, tried: GroupTry | None, queued: int
) -> dict[str, Any]:
    """What explain shows of the group attempt."""
    out: dict[str, Any] = {
        "name": f"{group.namespace}/{group.name}",
        "api": group.api,
        "policy": group.policy,
        "min_count": group.min_count,
        "queued": queued,
    }
    if tried is not None:
        out["scheduled_before"] = tried.scheduled
        out["placed"] = len(tried.placed) if tried.status is None else tried.best_placed
        out["failed"] = len(tried.failures)
    if group.topology_key:
        out["topology_key"] = group.topology_key
    return out


def group_member_bound(sched: Scheduler, pod: PodInfo, profile: Framework) -> None:
    """A member of a gang placed by the cycle that met its quorum is bound; after the
    last one, report the time since the quorum (result "bound")."""
    key = (pod.pod_group[0], pod.namespace, pod.pod_group[1]) if pod.pod_group else None
    if key is None or key not in sched._group_binds:
        return
    sched._group_binds[key] -= 1
    if sched._group_binds[key] > 0:
        return
    del sched._group_binds[key]
    store = sched.pod_groups
    group = store.groups.get(key) if store is not None else None
    quorum = store.quorum_at.get(key) if store is not None else None
    if group is not None and quorum is not None and sched._on_group is not None:
        seconds = store.clock() - quorum  # type: ignore[union-attr]
        sched._on_group(group, "bound", seconds, "", profile.scheduler_name)


def _group_result(
    sched: Scheduler, group: PodGroup, result: str, start: float, message: str, profile: Framework
) -> None:
    if sched._on_group is not None:
        seconds = time.perf_counter() - start
        sched._on_group(group, result, seconds, message, profile.scheduler_name)


def group_priority(group: PodGroup, pods: Sequence[PodInfo]) -> int:
    """The priority a group preempts with: upstream's PodGroupPriority (spec.priority, nil
    meaning 0); a CRD group has none of its own, so its members' highest."""
    if group.api == UPSTREAM_POD_GROUPS or group.priority is not None:
        return group.priority or 0
    return max((p.priority for p in pods), default=0)


def validate_group(group: PodGroup, pods: Sequence[PodInfo]) -> str | None:
    """Upstream's validatePodGroup: one schedulerName, the group's priority (upstream API),
    one preemption policy. The error text, or None."""
    first = pods[0].scheduler_name if pods else ""
    policy = ""
    for pod in pods:
        if pod.scheduler_name != first:
            return (
                "all pods in a single pod group should have the same .spec.schedulerName set, "
                f'got: "{pod.scheduler_name}" and "{first}"'
            )
        if group.api == UPSTREAM_POD_GROUPS and pod.priority != (group.priority or 0):
            return (
                "all pods in a single pod group should have the same priority as the pod "
                f"group's priority, got {pod.priority} and {group.priority or 0}"
            )
        own = (pod.raw.get("spec") or {}).get("preemptionPolicy") or "PreemptLowerPriority"
        if not policy:
            policy = own
        elif own != policy:
            return (
                "all pods in a single pod group should have the same preemption policy, "
                f"got {own} and {policy}"
            )
    return None


@dataclass
class GroupTry:
    """One pass of a group cycle over its members, in one domain (None: every node)."""

    domain: frozenset[str] | None
    scheduled: int  # members assumed or bound before the cycle
    placed: list[tuple[QueuedPod, str, CycleState, Attempt]] = field(default_factory=list)
    failures: dict[str, Attempt] = field(default_factory=dict)
    status: Status | None = None  # None: the quorum is met
    score: int = 0  # the placed members' total scores (a tie-break between domains)
    best_placed: int = 0  # how many it placed before it was undone

    def rank(self) -> tuple[int, int, int]:
        placed = max(len(self.placed), self.best_placed)
        return (int(self.status is None), placed, self.score)
