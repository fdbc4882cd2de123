"""The binding cycle: what follows a successful scheduling cycle, as a task per pod.

Upstream's bindingCycle and handleBindingCycleError. `start_binding` runs after Reserve
and Permit, with the pod assumed in the cache: the task waits in WaitOnPermit without a
binding slot, then takes one of the Scheduler's bounded slots (`bind_concurrency`) for
PreBind (a task preemption may cancel, upstream's podsInPreBind), Bind (an interested
binder extender first, else the Bind plugins) and PostBind. The scheduling loop goes on
meanwhile. A Permit rejection waits as unschedulable with the rejecting plugin recorded; a
PreBind or Bind failure is past the last point that can reject, so it backs off as an error.
Either way the reservation is undone and the pod forgotten.

Module functions taking the Scheduler, whose state they share (scheduler/cycle.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

from scheduler import group_cycle, nomination
from scheduler.attempt import Attempt, one_node_diagnosis
from scheduler.extender_cycle import extenders_binding
from scheduler.framework import AlreadyBound, Code, CycleState, Status
from scheduler.model import PodInfo
from scheduler.queue import QueuedPod
from scheduler.runtime import Framework

if TYPE_CHECKING:
    from scheduler.cycle import Scheduler

log = logging.getLogger("berth.cycle")

__all__ = ["binding_cycle", "start_binding"]


def start_binding(
    sched: Scheduler,
    entry: QueuedPod,
    profile: Framework,
    state: CycleState,
    node: str,
    start: float,
) -> None:
    pod = entry.pod
    sched.queue.assumed(pod.uid)
    task = asyncio.get_running_loop().create_task(
        binding_cycle(sched, entry, profile, state, node, start)
    )
    sched._binding.add(task)
    task.add_done_callback(functools.partial(_binding_ended, sched))
    if sched._on_binding is not None:
        sched._on_binding(len(sched._binding))


def _binding_ended(sched: Scheduler, task: asyncio.Task[None]) -> None:
    sched._binding.discard(task)
    if sched._on_binding is not None:
        sched._on_binding(len(sched._binding))


async def binding_cycle(
    sched: Scheduler,
    entry: QueuedPod,
    profile: Framework,
    state: CycleState,
    node: str,
    start: float,
) -> None:
    """WaitOnPermit (no binding slot held), then PreBind, Bind, PostBind in a slot.
    Upstream's bindingCycle and handleBindingCycleError."""
    pod = entry.pod
    waiting = profile.waiting_pods.get(pod.uid)
    if sched._nominate is not None:
        flight = profile.run_pre_bind_pre_flight(state, pod, node)
        if flight is not None and flight.code is Code.ERROR:
            if waiting is not None:
                waiting.reject("", flight.message)
                await profile.wait_on_permit(pod)  # ends at once: the wait is over
            sched.queue.done(pod.uid)
            _binding_failed(sched, entry, profile, state, node, flight, start)
            return
        if flight is None or waiting is not None:
            # NominatedNodeNameForExpectation (beta, on since v1.35): a pod about to wait
            # in Permit, or whose PreBind has work, tells autoscalers where it is going
            # before it is bound.
            pod.nominated_node_name = node
            sched._nominate(pod, node)
    if waiting is not None:
        status = await profile.wait_on_permit(pod)
        if status is not None:
            _permit_failed(sched, entry, profile, state, node, status, start)
            return
    sched.queue.done(pod.uid)
    async with sched._bind_gate:
        sched._holding += 1
        try:
            status = await _pre_bind(sched, profile, state, pod, node)
            if status is None:
                status = await _bind(sched, profile, state, pod, node)
        except AlreadyBound:
            # Someone bound it first; the watch will show where. Never bind twice.
            sched._forget(pod)
            sched.queue.delete(pod.uid)
            return
        except Exception as err:
            # A timeout's message is empty: name the exception instead.
            status = Status.error(str(err) or type(err).__name__)
        finally:
            sched._holding -= 1
    if status is not None:
        _binding_failed(sched, entry, profile, state, node, status, start)
        return
    sched.cache.finish_binding(pod)
    profile.run_post_bind(state, pod, node)
    if pod.pod_group is not None and sched._group_binds:
        group_cycle.group_member_bound(sched, pod, profile)
    # The watch may already have taken the pod out of the queue: the SLI uses what the
    # queue knew when the pod was assumed.
    sched.queue.pods.pop(pod.uid, None)
    # Upstream's attempt duration runs from the start of the scheduling cycle to the end
    # of the binding cycle.
    sched.observer.attempt("scheduled", profile.scheduler_name, time.perf_counter() - start)
    sched.observer.scheduled(entry.attempts, sched._clock() - entry.arrival, entry.flushed)
    sched.reporter.scheduled(pod, node)


async def _bind(
    sched: Scheduler, profile: Framework, state: CycleState, pod: PodInfo, node: str
) -> Status | None:
    """Upstream's bind: an interested binder extender first, else the Bind plugins."""
    if sched.extenders:
        bound, error = await extenders_binding(sched.extenders, pod, node)
        if bound:
            return Status.error(error) if error else None
    return await profile.run_bind(state, pod, node)


async def _pre_bind(
    sched: Scheduler, profile: Framework, state: CycleState, pod: PodInfo, node: str
) -> Status | None:
    """PreBind as a task preemption may cancel (upstream's podsInPreBind): a cancelled
    one fails the binding cycle with the preemption's reason."""
    if not profile.pre_bind:
        return await profile.run_pre_bind(state, pod, node)
    running = profile.pods_in_pre_bind
    task = asyncio.get_running_loop().create_task(profile.run_pre_bind(state, pod, node))
    running.add(pod.uid, task)
    try:
        return await task
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if (me is not None and me.cancelling()) or pod.uid not in running.reasons:
            raise  # this binding cycle itself was cancelled (shutdown)
        return Status.error(running.reasons.pop(pod.uid))
    finally:
        running.remove(pod.uid)


def _permit_failed(
    sched: Scheduler,
    entry: QueuedPod,
    profile: Framework,
    state: CycleState,
    node: str,
    status: Status,
    start: float,
) -> None:
    """A waiting pod was rejected (or timed out): unreserve, forget, and wait as
    unschedulable with the rejecting plugin recorded (an error goes to backoff)."""
    pod = entry.pod
    profile.run_unreserve(state, pod, node)
    sched._forget(pod)
    nomination.set_nominated(sched, pod, "")  # upstream's failure handler clears the nomination
    error = status.code is Code.ERROR
    failure = sched._rejected_at(status, node)
    sched.observer.attempt(
        "error" if error else "unschedulable",
        profile.scheduler_name,
        time.perf_counter() - start,
    )
    sched.last[pod.key] = Attempt(pod, status=failure, diagnosis=one_node_diagnosis(status))
    plugins = frozenset((status.plugin,)) if status.plugin and not error else frozenset()
    if sched.queue.pods.get(pod.uid) is entry:
        sched.queue.requeue(entry, plugins, error=error)
    sched.reporter.failed(pod, failure.message, "SchedulerError" if error else "Unschedulable")


def _binding_failed(
    sched: Scheduler,
    entry: QueuedPod,
    profile: Framework,
    state: CycleState,
    node: str,
    status: Status,
    start: float,
) -> None:
    """PreBind or Bind failed: unreserve, forget, back off (never unschedulable: the
    failure is past the last point that can reject, as upstream)."""
    pod = entry.pod
    log.warning("binding failed", extra={"pod": pod.key, "node": node, "error": status.message})
    profile.run_unreserve(state, pod, node)
    sched._forget(pod)
    nomination.set_nominated(
        sched, pod, ""
    )  # upstream's handleBindingCycleError: clearNominatedNode
    sched.observer.attempt("error", profile.scheduler_name, time.perf_counter() - start)
    if sched.queue.pods.get(pod.uid) is entry:
        sched.queue.requeue(entry, error=True)
    sched.reporter.failed(pod, f"Binding rejected: {status.message}", "SchedulerError")
