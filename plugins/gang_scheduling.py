"""GangScheduling: the members of a gang PodGroup are placed all or nothing.

Upstream v1.37's pkg/scheduler/framework/plugins/gangscheduling (GenericWorkload):
- PreEnqueue keeps a member out of the active queue until its PodGroup exists and, for a
  gang, until at least minCount members exist (assumed and bound ones count).
- Permit makes a placed member wait (5 minutes, or the CRD's scheduleTimeoutSeconds) until
  minCount members are assumed or bound, then allows every waiting member of the group.
  berth's group cycle (scheduler/group_cycle.py) assumes all the members it placed before their
  Permit runs, so within one cycle the quorum is already there and Permit allows at once;
  the wait matters for members placed in a later cycle whose quorum broke meanwhile.
- The queueing hints move a waiting member when another member arrives (pending or bound),
  when its PodGroup appears, or when the group's minCount decreases.

The group cycle itself (one pass over every queued member, reverted unless the quorum is
met) is the engine's, not this plugin's: it runs for every pod whose group is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import (
    ASSIGNED_POD,
    POD_GROUP,
    UNSCHEDULED_POD,
    ActionType,
    ClusterEvent,
    ClusterEventWithHint,
    Code,
    CycleState,
    Handle,
    PodGroup,
    QueueingHint,
    Status,
)
from scheduler.model import PodInfo
from scheduler.podgroups import group_key

NAME = "GangScheduling"
WAITING_FOR_MEMBERS = "waiting for minCount pods from a gang to appear in scheduling queue"
WAITING_IN_PERMIT = "waiting for minCount pods from a gang to be scheduled"


class GangScheduling:
    name = NAME

    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    def row_local_for(self, pod: PodInfo) -> bool:
        """No Filter or Score: nothing to keep batching from."""
        return True

    # --- PreEnqueue ----------------------------------------------------------------------

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        key = group_key(pod)
        store = self.handle.pod_groups
        if key is None or key[0] not in store.served:
            return None
        group = store.groups.get(key)
        if group is None and key in store.invalid:
            message = f'pod group "{key[2]}" is invalid: {store.invalid[key]}'
            return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), NAME)
        if group is None:
            # Upstream quotes the name with Go's %q: double quotes.
            message = f'waiting for pods\'s pod group "{key[2]}" to appear in scheduling queue'
            return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (message,), NAME)
        if group.is_gang and store.all_count(key) < group.min_count:
            return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (WAITING_FOR_MEMBERS,), NAME)
        return None

    # --- Permit --------------------------------------------------------------------------

    def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status | None, float]:
        key = group_key(pod)
        store = self.handle.pod_groups
        group = store.groups.get(key) if key is not None else None
        if key is None or group is None or not group.is_gang:
            return None, 0.0
        if key not in store.quorum_met and store.scheduled_count(key) < group.min_count:
            self.handle.activate(store.unscheduled(key))
            return Status(Code.WAIT, (WAITING_IN_PERMIT,), NAME), group.permit_timeout
        for waiting in self.handle.iterate_waiting_pods():
            if group_key(waiting.pod) == key:
                waiting.allow(NAME)
        return None, 0.0

    # --- queueing hints ------------------------------------------------------------------

    def events_to_register(self) -> list[ClusterEventWithHint]:
        return [
            ClusterEventWithHint(ClusterEvent(UNSCHEDULED_POD, ActionType.ADD), self._same_group),
            ClusterEventWithHint(ClusterEvent(ASSIGNED_POD, ActionType.ADD), self._same_group),
            ClusterEventWithHint(ClusterEvent(POD_GROUP, ActionType.ADD), self._its_group),
            ClusterEventWithHint(ClusterEvent(POD_GROUP, ActionType.UPDATE), self._fewer_needed),
        ]

    @staticmethod
    def _same_group(pod: PodInfo, old: Any, new: Any) -> QueueingHint:
        """Upstream's isSchedulableAfterPodAdded: another member arrived."""
        if (
            isinstance(new, PodInfo)
            and pod.pod_group is not None
            and new.uid != pod.uid
            and new.pod_group == pod.pod_group
            and new.namespace == pod.namespace
        ):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def _its_group(pod: PodInfo, old: Any, new: Any) -> QueueingHint:
        """isSchedulableAfterPodGroupAdded: the pod's own group appeared."""
        if isinstance(new, PodGroup) and new.key == group_key(pod):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP

    @staticmethod
    def _fewer_needed(pod: PodInfo, old: Any, new: Any) -> QueueingHint:
        """isSchedulableAfterPodGroupUpdated: only a smaller minCount can help."""
        if (
            isinstance(old, PodGroup)
            and isinstance(new, PodGroup)
            and new.key == group_key(pod)
            and new.min_count < old.min_count
        ):
            return QueueingHint.QUEUE
        return QueueingHint.SKIP


def new(args: Mapping[str, Any], handle: Handle) -> GangScheduling:
    return GangScheduling(handle)
