"""Each scenario scheduled by upstream kube-scheduler and by berth on the same API server.

The scenario's nodes are created once; its pods are created in the same order twice, in two
namespaces: first with schedulerName default-scheduler, then (after the first namespace's pods
are gone, since both share the nodes) with schedulerName berth. Each run waits until the
scheduler has settled: every pod bound or marked PodScheduled=False, and nothing changed for
QUIET seconds. A scenario's volume and device objects are made with its nodes (classes,
slices) or before each run's pods (claims, templates, static PVs) and are gone before the next
run, so that both runs start from the same free volumes and devices (claim_scenarios.py).
Then:

- hard rules: the multiset of scheduled replica classes (and of pending ones) must agree; for
  pods that are not replicas that is the set of pod names (scenarios.py explains why replicas
  are compared by class), and checker.violations() must find nothing in either placement,
  nor in what the pods' volume and device claims got;
- soft rules: berth's satisfied preferred weight, ScheduleAnyway skew and PreferNoSchedule
  count must be no worse than upstream's, within SOFT_TOLERANCE, in one of SOFT_RUNS berth
  runs (README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from scheduler.harness.storage import VOLUMES, delete_volume
from scheduler.kube.client import ApiError, Client
from tests.conformance.checker import JSON, Placed, soft_quality, violations
from tests.conformance.claim_checker import Claimed
from tests.conformance.scenarios import EXISTING, Scenario, pod_class
from tests.e2e.conftest import Running
from tests.e2e.provisioner import TestProvisioner

SCENARIO_LABEL = "conformance/scenario"
QUIET = 1.5  # seconds without any change before a run counts as settled
SETTLE_TIMEOUT = 90.0
GONE_TIMEOUT = 60.0  # for a run's claims and volumes to be deleted (a controller's work)
# Soft comparison: both schedulers break score ties at random and weigh preferences against
# resource scores, so a single pod may land on an equally good (for the scheduler) node that
# satisfies fewer preferred weights. Allow berth to trail by this fraction of the total
# preferred weight in the scenario, and by one unit of skew / PreferNoSchedule placement.
SOFT_TOLERANCE = 0.15
SKEW_TOLERANCE = 1
# A tie can cascade: when the pod that others prefer to join is placed by a coin flip (all
# scores equal), the whole group's preferred weight follows that flip. So a soft shortfall
# gets berth up to SOFT_RUNS runs in all (fresh namespace each), and the best one counts;
# every run must still meet every hard rule and the same outcome as upstream.
SOFT_RUNS = 3

# kind -> (resource, namespaced) of the objects scenarios make besides nodes and pods
KINDS: dict[str, tuple[str, bool]] = {
    "PersistentVolume": ("persistentvolumes", False),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True),
    "StorageClass": ("storageclasses", False),
    "CSIDriver": ("csidrivers", False),
    "CSIStorageCapacity": ("csistoragecapacities", True),
    "DeviceClass": ("deviceclasses", False),
    "ResourceSlice": ("resourceslices", False),
    "ResourceClaim": ("resourceclaims", True),
    "ResourceClaimTemplate": ("resourceclaimtemplates", True),
}
# The cluster-scoped kinds of Scenario.objects, labelled SCENARIO_LABEL, in deletion order.
SCENARIO_KINDS = (
    ("resource.k8s.io/v1", "ResourceSlice"),
    ("resource.k8s.io/v1", "DeviceClass"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
)

T = TypeVar("T")


async def test_conformance(
    scenario: Scenario, conformance_client: Client, berth_process: Running
) -> None:
    """Upstream and berth agree on hard constraints and berth is no worse on soft ones."""
    client = conformance_client
    await _replace_nodes(client, scenario)
    try:
        await _compare(client, scenario, berth_process)
    finally:
        await _delete_scenario_objects(client)


async def _compare(client: Client, scenario: Scenario, berth_process: Running) -> None:
    existing = [Placed(_in(EXISTING, p), p["spec"]["nodeName"]) for p in scenario.existing]
    upstream, claimed = await _run(client, scenario, "default-scheduler")
    _check_hard(scenario, "upstream", upstream, existing, claimed)
    berth_runs: list[list[Placed]] = []
    for _ in range(SOFT_RUNS):
        assert berth_process.process.poll() is None, f"berth exited; see {berth_process.log}"
        berth, claimed = await _run(client, scenario, "berth")
        berth_runs.append(berth)
        report = _report(scenario, upstream, berth)
        print(report)  # shown by `pytest -rP`
        _check_hard(scenario, "berth", berth, existing, claimed, report)
        _check_same_outcome(scenario, upstream, berth, report)
        failures = _soft_failures(scenario, upstream + existing, berth + existing)
        if not failures:
            return
    pytest.fail(f"berth worse on soft rules in {SOFT_RUNS} runs: {failures}{report}")


def _check_hard(
    scenario: Scenario,
    name: str,
    placed: list[Placed],
    existing: list[Placed],
    claimed: Claimed,
    report: str = "",
) -> None:
    bad = violations(scenario.nodes, placed + existing, claimed)
    assert not bad, f"{name} broke hard rules:\n" + "\n".join(bad) + report


def _check_same_outcome(
    scenario: Scenario, upstream: list[Placed], berth: list[Placed], report: str
) -> None:
    def classes(placed: list[Placed], scheduled: bool) -> Counter[str]:
        return Counter(pod_class(p.pod) for p in placed if (p.node is not None) == scheduled)

    def evicted(placed: list[Placed]) -> Counter[str]:
        return Counter(pod_class(p) for p in scenario.pods) - Counter(
            pod_class(p.pod) for p in placed
        )

    assert classes(berth, True) == classes(upstream, True), "scheduled pods differ" + report
    assert classes(berth, False) == classes(upstream, False), "pending pods differ" + report
    assert evicted(berth) == evicted(upstream), "preempted pods differ" + report


def _soft_failures(scenario: Scenario, upstream: list[Placed], berth: list[Placed]) -> list[str]:
    up = soft_quality(scenario.nodes, upstream)
    us = soft_quality(scenario.nodes, berth)
    out = []
    if us.preferred < up.preferred - SOFT_TOLERANCE * _total_preferred_weight(scenario):
        out.append(f"preferred weight {us.preferred} < upstream {up.preferred}")
    if us.skew > up.skew + SKEW_TOLERANCE:
        out.append(f"skew {us.skew} > upstream {up.skew}")
    if us.prefer_no_schedule > up.prefer_no_schedule + SKEW_TOLERANCE:
        out.append(f"PreferNoSchedule {us.prefer_no_schedule} > {up.prefer_no_schedule}")
    return out


def _report(scenario: Scenario, upstream: list[Placed], berth: list[Placed]) -> str:
    lines = [f"\n\nscenario {scenario.id}: {scenario.doc}", f"{'pod':28} {'upstream':16} berth"]
    by_name = {p.name: p.node for p in berth}
    up_name = {p.name: p.node for p in upstream}
    for pod in scenario.pods:
        name = pod["metadata"]["name"]
        cells = [(m[name] or "-") if name in m else "(preempted)" for m in (up_name, by_name)]
        lines.append(f"{name:28} {cells[0]:16} {cells[1]}")
    lines.append(f"soft upstream {soft_quality(scenario.nodes, upstream)}")
    lines.append(f"soft berth    {soft_quality(scenario.nodes, berth)}")
    return "\n".join(lines)


def _total_preferred_weight(scenario: Scenario) -> int:
    total = 0
    for pod in scenario.pods:
        affinity = pod["spec"].get("affinity") or {}
        for kind in ("nodeAffinity", "podAffinity", "podAntiAffinity"):
            for term in (affinity.get(kind) or {}).get(
                "preferredDuringSchedulingIgnoredDuringExecution"
            ) or []:
                total += int(term["weight"])
    return total


def _in(ns: str, pod: JSON) -> JSON:
    out = copy.deepcopy(pod)
    out["metadata"]["namespace"] = ns
    return out


def _collection(api_version: str, kind: str, ns: str = "") -> str:
    """The path of the kind's collection (in `ns`, for a namespaced kind)."""
    resource, namespaced = KINDS[kind]
    group = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{group}/namespaces/{ns}/{resource}" if namespaced else f"{group}/{resource}"


async def _replace_nodes(client: Client, scenario: Scenario) -> None:
    """Delete the previous scenario's nodes, objects and pre-bound pods and create this
    one's."""
    try:
        await client.post("/api/v1/namespaces", {"metadata": {"name": EXISTING}})
    except ApiError as err:
        if err.status != 409:
            raise
    await _delete_pods(client, EXISTING, delete_namespace=False)
    await _delete_scenario_objects(client)
    old = await client.get("/api/v1/nodes", labelSelector=SCENARIO_LABEL)
    for node in old["items"]:
        await client.delete(f"/api/v1/nodes/{node['metadata']['name']}")
    for node in scenario.nodes:
        body = copy.deepcopy(node)
        body["metadata"]["labels"][SCENARIO_LABEL] = scenario.id
        try:
            await client.post("/api/v1/nodes", body)
        except ApiError as err:
            if err.status != 409:
                raise
            await client.put(f"/api/v1/nodes/{node['metadata']['name']}", body)
    for obj in scenario.objects:
        body = copy.deepcopy(obj)
        body["metadata"].setdefault("labels", {})[SCENARIO_LABEL] = scenario.id
        await client.post(_collection(body["apiVersion"], body["kind"]), body)
    for pod in scenario.existing:
        body = copy.deepcopy(pod)
        body["spec"]["terminationGracePeriodSeconds"] = 0
        await client.post(f"/api/v1/namespaces/{EXISTING}/pods", body)
    # Both schedulers learn of the nodes through their watches; give them a moment.
    await asyncio.sleep(0.5)


async def _delete_scenario_objects(client: Client) -> None:
    """Delete the cluster-scoped objects (Scenario.objects) a scenario made."""
    for api_version, kind in SCENARIO_KINDS:
        await client.request(
            "DELETE",
            _collection(api_version, kind),
            params={"labelSelector": SCENARIO_LABEL},
        )


async def _run(client: Client, scenario: Scenario, scheduler: str) -> tuple[list[Placed], Claimed]:
    ns = f"conf-{scheduler[:5]}-{uuid.uuid4().hex[:6]}"
    meta: JSON = {"name": ns, "labels": dict(scenario.namespace_labels)}
    await client.post("/api/v1/namespaces", {"metadata": meta})
    try:
        async with _provisioner(client, scenario, ns):
            try:
                await _make_run_objects(client, scenario, ns)
                for i, pod in enumerate(scenario.pods):
                    if i in scenario.settle_before:
                        await _settle(client, ns, scheduler)
                    body = copy.deepcopy(pod)
                    body["spec"]["schedulerName"] = scheduler
                    # No kubelet runs to confirm a graceful deletion: with a zero grace period
                    # the cleanup below (and a preemption's victims) go at once.
                    body["spec"]["terminationGracePeriodSeconds"] = 0
                    await client.post(f"/api/v1/namespaces/{ns}/pods", body)
                items = await _settle(client, ns, scheduler)
                claimed = await _claimed(client, ns)
            finally:
                await _delete_pods(client, ns, delete_namespace=False)
                await _free_run_objects(client, scenario, ns)
    finally:
        await client.delete(f"/api/v1/namespaces/{ns}")
    # A pod that is gone was preempted (nothing else deletes pods here); it is left out.
    by_name = {p["metadata"]["name"]: p for p in items}
    placed = [
        Placed(live, live["spec"].get("nodeName") or None)
        for pod in scenario.pods
        if (live := by_name.get(pod["metadata"]["name"])) is not None
    ]
    return placed, claimed


def _provisioner(
    client: Client, scenario: Scenario, ns: str
) -> contextlib.AbstractAsyncContextManager[object]:
    """The scenario's external provisioner for the run's claims (none: a no-op). On exit it
    deletes the volumes it made."""
    if not scenario.provisioner:
        return contextlib.nullcontext()
    return TestProvisioner(client, scenario.provisioner, namespace=ns)


async def _make_run_objects(client: Client, scenario: Scenario, ns: str) -> None:
    """Scenario.run_objects, then wait until the PV controller has made each static PV
    Available (a scheduler binds only those) and both schedulers had a moment to see them."""
    volumes = []
    for obj in scenario.run_objects:
        body = copy.deepcopy(obj)
        if body["kind"] == "PersistentVolume":
            ref = body["spec"].get("claimRef")
            if ref is not None:
                ref.setdefault("namespace", ns)
            volumes.append(body["metadata"]["name"])
        await client.post(_collection(body["apiVersion"], body["kind"], ns), body)

    async def phases() -> set[str]:
        return {
            ((await client.get(f"{VOLUMES}/{name}")).get("status") or {}).get("phase", "")
            for name in volumes
        }

    await _until(phases, lambda seen: seen <= {"Available", "Bound"}, "static PVs available")
    if scenario.run_objects:
        await asyncio.sleep(0.5)


async def _free_run_objects(client: Client, scenario: Scenario, ns: str) -> None:
    """After the run's pods are gone: delete its claims, templates and static PVs, and wait
    until every ResourceClaim of the run is gone (the ResourceClaim controller deallocates
    them once their pods are gone, and deletes the generated ones) and the PVs are."""
    for obj in reversed(scenario.run_objects):
        if obj["kind"] == "PersistentVolume":
            continue
        path = _collection(obj["apiVersion"], obj["kind"], ns)
        with contextlib.suppress(ApiError):
            await client.delete(f"{path}/{obj['metadata']['name']}")
    if any(o["kind"].startswith("ResourceClaim") for o in scenario.run_objects):
        claims = _collection("resource.k8s.io/v1", "ResourceClaim", ns)

        async def left() -> list[str]:
            return [c["metadata"]["name"] for c in (await client.get(claims))["items"]]

        await _until(left, lambda names: not names, f"the ResourceClaims of {ns} deleted")
    volumes = [
        o["metadata"]["name"] for o in scenario.run_objects if o["kind"] == "PersistentVolume"
    ]

    async def remaining() -> list[str]:
        out = []
        for name in volumes:
            await delete_volume(client, name)  # again, if the protection came back
            with contextlib.suppress(ApiError):
                await client.get(f"{VOLUMES}/{name}")
                out.append(name)
        return out

    await _until(remaining, lambda names: not names, "the static PVs deleted")


async def _until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """Poll `probe` until `done` says so; fail after GONE_TIMEOUT."""
    deadline = time.monotonic() + GONE_TIMEOUT
    while not done(seen := await probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} in {GONE_TIMEOUT}s: {seen}")
        await asyncio.sleep(0.2)
    return seen


async def _claimed(client: Client, ns: str) -> Claimed:
    """The run's volume and device claims, all PVs and all ResourceSlices."""

    async def items(path: str) -> list[JSON]:
        return list((await client.get(path))["items"])

    return Claimed(
        volume_claims=await items(_collection("v1", "PersistentVolumeClaim", ns)),
        volumes=await items(VOLUMES),
        resource_claims=await items(_collection("resource.k8s.io/v1", "ResourceClaim", ns)),
        resource_slices=await items(_collection("resource.k8s.io/v1", "ResourceSlice")),
    )


async def _settle(client: Client, ns: str, scheduler: str) -> list[JSON]:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last: dict[str, str] | None = None
    since = time.monotonic()
    while True:
        items = (await client.get(f"/api/v1/namespaces/{ns}/pods"))["items"]
        state = {p["metadata"]["name"]: _state(p) for p in items}
        now = time.monotonic()
        if state != last:
            last, since = state, now
        elif "undecided" not in state.values() and now - since >= QUIET:
            return list(items)
        if now > deadline:
            pytest.fail(f"{scheduler} did not settle in {SETTLE_TIMEOUT}s: {state}")
        await asyncio.sleep(0.25)


def _state(pod: JSON) -> str:
    spec = pod["spec"]
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    status = pod.get("status") or {}
    if status.get("nominatedNodeName"):
        return "undecided"  # preempting: victims are going, the pod will be retried
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return "pending"
    return "undecided"


async def _delete_pods(client: Client, ns: str, *, delete_namespace: bool = True) -> None:
    await client.request(
        "DELETE", f"/api/v1/namespaces/{ns}/pods", params={"gracePeriodSeconds": 0}
    )
    deadline = time.monotonic() + 30
    while (await client.get(f"/api/v1/namespaces/{ns}/pods"))["items"]:
        if time.monotonic() > deadline:
            pytest.fail(f"pods of {ns} were not deleted in 30s")
        await asyncio.sleep(0.2)
    if delete_namespace:
        await client.delete(f"/api/v1/namespaces/{ns}")
