"""`berth controller`: keeps the status of scheduler-plugins' PodGroups, as their controller does.

A PodGroup (`scheduling.x-k8s.io/v1alpha1`, deploy/optional/podgroup-crd.yaml) names a gang:
pods join it with the label `scheduling.x-k8s.io/pod-group: <name>`, and `spec.minMember` of
them must be placed together. berth's scheduler reads the spec; this controller writes the
status, with the phases and counts of scheduler-plugins' PodGroupReconciler
(pkg/controllers/podgroup_controller.go), so `kubectl get pg` reads the same under either:

```
  ""  ──▶ Pending ──(≥ minMember pods exist)──▶ Scheduling ──(running + succeeded ≥ min)──▶ Running
             ▲                                       │  ▲                                     │
             └──────────(fewer than minMember pods)──┘  └────────(fewer running)──────────────┘
  from Scheduling or Running:  failed > 0 and failed + running + succeeded ≥ min ──▶ Failed
                               succeeded ≥ min ──▶ Finished       (both final: never left)
```

Upstream takes one step of that diagram per reconcile and lets its own status write trigger
the next; `settle()` takes the steps until nothing changes, so one write lands where upstream's
chain of writes would. Counts (`running`, `succeeded`, `failed`, and berth's `scheduled`: pods
bound to a node) are refreshed on the steps out of Scheduling/Running, as upstream refreshes
them; `occupiedBy` (the first member's owners, `namespace/name`, sorted and comma-joined) is
filled on the step from Pending to Scheduling, and so is `scheduleStartTime` when unset (upstream
no longer sets it anywhere). docs/podgroup-crd.md lists every difference from upstream.

The module has two halves:

- **Pure** (no I/O, unit-tested): `member_of()` reduces a pod to what the status needs,
  `step()` and `settle()` compute a status from the current one, `spec.minMember` and the
  members, and `status_patch()` says what to write.
- **Serving**: a kopf operator. An index keeps every labelled pod under (namespace, group);
  PodGroup events and pod events (including a pod leaving a group: deleted, or relabelled)
  ask the `Reconciler` for their group. It coalesces a burst of requests for one group into
  one pass, reads the group fresh, and writes the status subresource with a merge patch that
  carries the read resourceVersion, so a write based on a stale read is refused (409) and
  redone instead of overwriting a newer status. kopf waits for the pod index to be filled
  before any handler runs, so no group is judged on a partial list at start-up.

Requests go through berth's own `Client` (scheduler.kube.client); kopf only watches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from scheduler.kube.client import Client

log = logging.getLogger("berth.controller")

JSON = dict[str, Any]

GROUP = "scheduling.x-k8s.io"
VERSION = "v1alpha1"
PLURAL = "podgroups"
KIND = "PodGroup"
LABEL = "scheduling.x-k8s.io/pod-group"
CONTROLLER_NAME = "berth-podgroup-controller"  # reportingController of its Events

DEFAULT_HEALTH_PORT = 8080
CRD_POLL_SECONDS = 5.0  # while the API does not serve podgroups yet
CONFLICT_ATTEMPTS = 5  # reads and writes of one pass before it counts as a failure
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # after failed passes, the last one repeating
WORKERS = 16  # groups reconciled at once

# Phases (upstream's PodGroupPhase constants). Unknown is declared upstream but set by no one.
PENDING = "Pending"
SCHEDULING = "Scheduling"
RUNNING = "Running"
UNKNOWN = "Unknown"
FINISHED = "Finished"
FAILED = "Failed"
FINAL = frozenset({FINISHED, FAILED})

GroupKey = tuple[str, str]
"""(namespace, PodGroup name)."""


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """What the status needs of one member pod."""

    name: str
    phase: str = "Pending"
    node_name: str = ""
    owners: tuple[str, ...] = ()  # the names in its ownerReferences

    @property
    def scheduled(self) -> bool:
        return bool(self.node_name)


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """A PodGroup's `.status`. An absent field reads as its zero value, as upstream's Go types
    (every field `omitempty`) read it."""

    phase: str = ""
    occupied_by: str = ""
    scheduled: int = 0  # berth's: upstream dropped `scheduled` in scheduler-plugins#574
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    schedule_start_time: str = ""  # RFC 3339, seconds

    @classmethod
    def from_api(cls, raw: Any) -> GroupStatus:
        raw = raw if isinstance(raw, Mapping) else {}
        return cls(
            phase=_str(raw.get("phase")),
            occupied_by=_str(raw.get("occupiedBy")),
            scheduled=_int(raw.get("scheduled")),
            running=_int(raw.get("running")),
            succeeded=_int(raw.get("succeeded")),
            failed=_int(raw.get("failed")),
            schedule_start_time=_str(raw.get("scheduleStartTime")),
        )


# attribute → field name in the API
_FIELDS = (
    ("phase", "phase"),
    ("occupied_by", "occupiedBy"),
    ("scheduled", "scheduled"),
    ("running", "running"),
    ("succeeded", "succeeded"),
    ("failed", "failed"),
    ("schedule_start_time", "scheduleStartTime"),
)


# --------------------------------------------------------------------------------------------
# the pure status computation
# --------------------------------------------------------------------------------------------


def member_of(pod: Mapping[str, Any]) -> Member:
    meta = pod.get("metadata") or {}
    owners = tuple(
        str(ref.get("name") or "")
        for ref in meta.get("ownerReferences") or ()
        if isinstance(ref, Mapping)
    )
    return Member(
        name=str(meta.get("name") or ""),
        phase=str((pod.get("status") or {}).get("phase") or "Pending"),
        node_name=str((pod.get("spec") or {}).get("nodeName") or ""),
        owners=owners,
    )


def min_member_of(group: Mapping[str, Any]) -> int:
    """`spec.minMember`, read as berth's scheduler reads it: an absent or invalid value is 1.
    (Upstream's controller reads an absent one as 0, which sends the group to Finished at once.)
    """
    value = (group.get("spec") or {}).get("minMember")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1
    return value


def occupied_by(namespace: str, member: Member) -> str:
    """Upstream's fillOccupiedObj: the member's owners as `namespace/name`, sorted, joined by
    commas; "" when it has none (the field then keeps its value)."""
    return ",".join(sorted(f"{namespace}/{owner}" for owner in member.owners))


def step(
    status: GroupStatus, min_member: int, namespace: str, members: Iterable[Member], now: str
) -> GroupStatus:
    """One reconcile of upstream's PodGroupReconciler: the status after one transition."""
    pods = sorted(members, key=lambda m: m.name)
    if status.phase in FINAL:
        return status
    if status.phase == "":
        return replace(status, phase=PENDING)
    if status.phase == PENDING:
        if len(pods) < min_member:
            return status
        # Upstream takes the first pod of an unordered cache list; berth the first by name.
        owners = occupied_by(namespace, pods[0]) if pods else ""
        return replace(
            status,
            phase=SCHEDULING,
            occupied_by=owners or status.occupied_by,
            schedule_start_time=status.schedule_start_time or now,
        )
    # Scheduling, Running, and any other value (Unknown; PreScheduling and Scheduled of
    # scheduler-plugins before v0.26) take the counting branch, as upstream's `default:` does.
    counted = replace(
        status,
        scheduled=sum(m.scheduled for m in pods),
        running=sum(m.phase == "Running" for m in pods),
        succeeded=sum(m.phase == "Succeeded" for m in pods),
        failed=sum(m.phase == "Failed" for m in pods),
    )
    if len(pods) < min_member:
        return replace(counted, phase=PENDING)
    active = counted.running + counted.succeeded
    phase = RUNNING if active >= min_member else SCHEDULING
    if counted.failed and counted.failed + active >= min_member:
        phase = FAILED
    if counted.succeeded >= min_member:
        phase = FINISHED
    return replace(counted, phase=phase)


def settle(
    status: GroupStatus, min_member: int, namespace: str, members: Iterable[Member], now: str
) -> GroupStatus:
    """`step()` until the status stops changing: where upstream's chain of reconciles (each
    triggered by the previous one's write) ends for these members. At most three steps
    change anything ("" → Pending → Scheduling → counted), so four always settle it."""
    pods = list(members)
    for _ in range(4):
        after = step(status, min_member, namespace, pods, now)
        if after == status:
            return status
        status = after
    return status


def status_patch(current: GroupStatus, desired: GroupStatus) -> JSON:
    """The merge patch for `.status` that turns `current` into `desired` ({} when equal).
    A field that becomes zero ("" or 0) is removed (null): upstream's fields are all
    `omitempty`, so its merge patches remove them too, and readers see the same object."""
    patch: JSON = {}
    for attr, field in _FIELDS:
        value = getattr(desired, attr)
        if value != getattr(current, attr):
            patch[field] = None if value in ("", 0) else value
    return patch


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(status: GroupStatus, min_member: int, members: int) -> str:
    """The note of a phase-change Event."""
    return (
        f"{members} pods (minMember {min_member}): {status.scheduled} scheduled, "
        f"{status.running} running, {status.succeeded} succeeded, {status.failed} failed"
    )


class Memberships:
    """Which group each labelled pod was last seen in, so that a pod leaving a group (deleted,
    relabelled, or its label removed) also updates the group it left."""

    def __init__(self) -> None:
        self._groups: dict[str, GroupKey] = {}

    def knows(self, uid: str) -> bool:
        return uid in self._groups

    def update(self, uid: str, group: GroupKey | None, deleted: bool) -> set[GroupKey]:
        """Record a pod event; returns the groups whose status it may change."""
        previous = self._groups.pop(uid, None)
        if group is not None and not deleted:
            self._groups[uid] = group
        return {g for g in (previous, group) if g is not None}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --------------------------------------------------------------------------------------------
# serving: the API edge, the reconciler, the kopf operator
# --------------------------------------------------------------------------------------------


class Conflict(Exception):
    """The status write was refused: the group changed since it was read."""


class GroupApi(Protocol):
    """The reconciler's requests (ClientGroupApi against a cluster, a fake in tests)."""

    async def get(self, namespace: str, name: str) -> JSON | None:
        """The PodGroup, or None when it does not exist."""

    async def patch_status(
        self, namespace: str, name: str, resource_version: str, status: JSON
    ) -> JSON | None:
        """Merge `status` into the group's status if it is still at `resource_version`; the
        updated group, or None when it is gone; raises Conflict when it moved on."""

    async def event(self, group: Mapping[str, Any], reason: str, note: str) -> None:
        """Report a Normal event about the group (best effort)."""


Members = Callable[[GroupKey], Iterable[Member]]


class Reconciler:
    """Brings groups' status up to date, one pass per group at a time.

    `request(key)` never blocks: it starts a pass for the group, or, when one is running,
    marks the group to be passed over once more when it ends, so a burst of pod events costs
    a few passes rather than one each. A pass that fails (the API unreachable, a 5xx, a 403,
    `CONFLICT_ATTEMPTS` conflicts in a row) is tried again after `RETRY_DELAYS`.
    """

    def __init__(
        self,
        api: GroupApi,
        members: Members,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        workers: int = WORKERS,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self._api = api
        self._members = members
        self._clock = clock
        self._slots = asyncio.Semaphore(workers)
        self._retry_delays = retry_delays
        self._tasks: dict[GroupKey, asyncio.Task[None]] = {}
        self._again: set[GroupKey] = set()
        self.scheduled_pruned = False
        """The served CRD has no `status.scheduled` (scheduler-plugins' own CRD): the API
        server drops it, so it is no longer compared or written."""

    def request(self, key: GroupKey) -> None:
        if key in self._tasks:
            self._again.add(key)
            return
        self._tasks[key] = asyncio.get_running_loop().create_task(self._run(key))

    async def idle(self) -> None:
        """Until no pass is running or due (tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await self.idle()

    async def _run(self, key: GroupKey) -> None:
        failures = 0
        try:
            while True:
                self._again.discard(key)
                try:
                    async with self._slots:
                        await self.reconcile(key)
                    failures = 0
                except Exception as err:  # tried again later; the log says why
                    delay = self._retry_delays[min(failures, len(self._retry_delays) - 1)]
                    failures += 1
                    log.warning(
                        "status update failed, trying again",
                        extra={"podgroup": "/".join(key), "error": str(err), "in": delay},
                    )
                    self._again.add(key)
                    await asyncio.sleep(delay)
                if key not in self._again:
                    return
        finally:
            self._tasks.pop(key, None)

    async def reconcile(self, key: GroupKey) -> GroupStatus | None:
        """One pass: read the group, compute its status from the members now known, write what
        differs. Returns the status it leaves, None when the group does not exist."""
        namespace, name = key
        for _ in range(CONFLICT_ATTEMPTS):
            group = await self._api.get(namespace, name)
            if group is None:
                return None
            current = GroupStatus.from_api(group.get("status"))
            members = list(self._members(key))
            min_member = min_member_of(group)
            desired = settle(current, min_member, namespace, members, rfc3339(self._clock()))
            if self.scheduled_pruned:
                desired = replace(desired, scheduled=current.scheduled)
            patch = status_patch(current, desired)
            if not patch:
                return current
            version = str((group.get("metadata") or {}).get("resourceVersion") or "")
            try:
                updated = await self._api.patch_status(namespace, name, version, patch)
            except Conflict:
                continue
            if updated is None:
                return None
            if desired.scheduled and "scheduled" not in (updated.get("status") or {}):
                self.scheduled_pruned = True
                log.info("the PodGroup CRD has no status.scheduled; not writing it")
            log.info(
                "status",
                extra={"podgroup": f"{namespace}/{name}", "from": current.phase, "status": patch},
            )
            if desired.phase != current.phase:
                note = describe(desired, min_member, len(members))
                await self._api.event(updated, desired.phase, note)
            return desired
        raise RuntimeError(f"{CONFLICT_ATTEMPTS} status writes in a row met a newer version")


class ClientGroupApi:
    """GroupApi over berth's API client."""

    def __init__(self, client: Client, instance: str) -> None:
        self._client = client
        self._instance = instance

    @staticmethod
    def _path(namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"

    async def get(self, namespace: str, name: str) -> JSON | None:
        from scheduler.kube.client import ApiError

        try:
            group: JSON = await self._client.get(self._path(namespace, name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return group

    async def patch_status(
        self, namespace: str, name: str, resource_version: str, status: JSON
    ) -> JSON | None:
        from scheduler.kube.client import ApiError

        # A resourceVersion in a patch is a precondition: 409 if the object has moved on.
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            updated: JSON = await self._client.patch(
                self._path(namespace, name) + "/status", body, kind="merge"
            )
        except ApiError as err:
            if err.status == 409:
                raise Conflict(str(err)) from err
            if err.status == 404:
                return None
            raise
        return updated

    async def event(self, group: Mapping[str, Any], reason: str, note: str) -> None:
        from scheduler.kube.client import ApiError
        from scheduler.kube.events import event_body

        meta = group.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        body = event_body(
            namespace=namespace,
            name=name,
            uid=meta.get("uid") or "",
            reason=reason,
            note=note,
            action="UpdateStatus",
            type_="Normal",
            controller=CONTROLLER_NAME,
            instance=self._instance,
        )
        body["regarding"].update(apiVersion=f"{GROUP}/{VERSION}", kind=KIND)
        try:
            await self._client.post(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)
        except (ApiError, OSError, TimeoutError) as err:  # an event is not worth a retry
            log.warning(
                "event not written", extra={"podgroup": f"{namespace}/{name}", "error": str(err)}
            )


class _IndexView:
    """The members of a group, from kopf's pod index (handed to handlers, kept here)."""

    def __init__(self) -> None:
        self.index: Mapping[GroupKey, Iterable[Member]] = {}

    def members(self, key: GroupKey) -> Iterable[Member]:
        return self.index.get(key, ())


def make_registry(reconciler_for: Callable[[Members], Reconciler], kubeconfig: str | None) -> Any:
    """A kopf registry: the pod index, the PodGroup and pod event handlers, and the login."""
    import kopf

    from scheduler.kube.kopfbase import register_login

    registry = kopf.OperatorRegistry()
    register_login(registry, kubeconfig)
    view = _IndexView()
    reconciler = reconciler_for(view.members)
    memberships = Memberships()

    # Handlers are coroutines (kopf runs plain functions in a thread pool). The index reaches
    # every handler as the keyword argument named by its id.
    @kopf.index("v1", "pods", id="pod_members", labels={LABEL: kopf.PRESENT}, registry=registry)
    async def pod_members(
        *, namespace: str | None, labels: Mapping[str, str], body: Any, **_: Any
    ) -> dict[GroupKey, Member]:
        return {(namespace or "", labels[LABEL]): member_of(body)}

    def concerns(*, labels: Mapping[str, str], uid: str, **_: Any) -> bool:
        return LABEL in labels or memberships.knows(uid)

    @kopf.on.event("v1", "pods", id="pod", when=concerns, registry=registry)
    async def pod_event(
        *, type: str | None, namespace: str | None, uid: str, labels: Mapping[str, str], **kw: Any
    ) -> None:
        view.index = kw["pod_members"]
        group = (namespace or "", labels[LABEL]) if labels.get(LABEL) else None
        for key in memberships.update(uid, group, deleted=type == "DELETED"):
            reconciler.request(key)

    @kopf.on.event(GROUP, VERSION, PLURAL, id="podgroup", registry=registry)
    async def group_event(*, type: str | None, namespace: str | None, name: str, **kw: Any) -> None:
        view.index = kw["pod_members"]
        if type != "DELETED":
            reconciler.request((namespace or "", name))

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await reconciler.close()

    return registry


@dataclass(frozen=True)
class ControllerOptions:
    """`berth controller`'s flags, after parsing."""

    kubeconfig: str | None = None
    namespace: str | None = None  # None: every namespace
    health_port: int | None = DEFAULT_HEALTH_PORT  # kopf's liveness endpoint (/healthz)
    bind_address: str = "0.0.0.0"


class Discovery(Protocol):
    async def get(self, path: str) -> Any: ...


async def wait_for_api(client: Discovery, poll: float = CRD_POLL_SECONDS) -> None:
    """Until the API server serves podgroups: kopf resolves its resources once, at start
    (scanning is off, so no CRD watch and no RBAC for it), and would otherwise never see them."""
    from scheduler.kube.client import ApiError

    waiting = False
    while True:
        try:
            found = await client.get(f"/apis/{GROUP}/{VERSION}")
            if any(r.get("name") == PLURAL for r in found.get("resources") or ()):
                if waiting:
                    log.info("the PodGroup CRD is served")
                return
        except ApiError as err:
            if err.status != 404:
                log.warning("discovery failed", extra={"error": str(err)})
        except (OSError, TimeoutError) as err:
            log.warning("discovery failed", extra={"error": str(err)})
        if not waiting:
            log.info(
                "waiting for the PodGroup CRD (deploy/optional/podgroup-crd.yaml)",
                extra={"api": f"{GROUP}/{VERSION}", "resource": PLURAL},
            )
            waiting = True
        await asyncio.sleep(poll)


async def serve(options: ControllerOptions) -> None:
    """Run the controller until cancelled (SIGINT/SIGTERM are handled by kopf)."""
    import kopf

    from scheduler.kube.client import Client
    from scheduler.kube.kopfbase import base_settings, liveness_endpoint

    async with Client.from_kubeconfig(options.kubeconfig) as client:
        await wait_for_api(client)
        api = ClientGroupApi(client, instance=socket.gethostname())
        registry = make_registry(lambda members: Reconciler(api, members), options.kubeconfig)
        # Standalone (status writes are conditional, a second replica only duplicates work),
        # no scanning (see wait_for_api); berth writes its own Events (events.k8s.io/v1).
        settings = base_settings(log)
        # Every API path has a deadline: kopf restarts a watch silent for 70 s (its default
        # inactivity_timeout, with bookmarks) and ends each after 10 minutes.
        settings.watching.connect_timeout = 10
        settings.watching.server_timeout = 600
        settings.watching.client_timeout = 660
        log.info(
            "serving",
            extra={"namespace": options.namespace or "*", "resource": f"{PLURAL}.{GROUP}"},
        )
        await kopf.operator(
            registry=registry,
            settings=settings,
            clusterwide=options.namespace is None,
            namespaces=[options.namespace] if options.namespace else (),
            standalone=True,
            liveness_endpoint=liveness_endpoint(options.bind_address, options.health_port),
        )
