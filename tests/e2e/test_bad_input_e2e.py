"""Odd objects the API server accepts (issue 12, part 6), then ordinary pods: all bound.

Nodes with no allocatable, zero, fractional or enormous allocatable (memory at the int64
maximum, filled 4Ei, then asked for 9Ei and 200Ei), or five thousand labels;
pods with 200 containers, enormous or tiny requests, Gt/Lt on labels that are not numbers, a spread
on a key no node has, a preset nodeName naming no node, a scheduling gate, odd names. Each case
expects upstream kube-scheduler v1.37's outcome: bound to one kind of node, or pending with a
FailedScheduling event naming upstream's reason. Then ordinary pods created afterwards must all
be bound, and berth's log must hold no traceback.

The odd nodes carry a NoSchedule taint and a label of this test's namespace, so only these pods
(which tolerate the taint and select the label) land there, and other tests' pods never do.

`BERTH_BAD_INPUT_SCHEDULER=default-scheduler` runs the same table against the plane's upstream
kube-scheduler instead, to check that the expectations are upstream's.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from scheduler.kube.client import ApiError, Client
from tests.builders import PodBuilder, make_node, make_pod
from tests.e2e.conftest import Running, assert_no_traceback
from tests.e2e.test_engine import bound_to, create, events_for, get_pod, wait_for

JSON = dict[str, Any]
SCHEDULER = os.environ.get("BERTH_BAD_INPUT_SCHEDULER", "berth")
TAINT = "berth.test/bad-input"
POOL = "berth.test/bad-input-pool"  # = the namespace, on every odd node
KIND = "berth.test/bad-input-kind"  # which odd node
MANY_LABELS = 5_000
# A DNS subdomain of the full 253 characters: four dot-separated labels.
LONG_NAME = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])

# Upstream's reasons (NodeResourcesFit, NodeAffinity, PodTopologySpread).
TOO_MANY_PODS = "Too many pods"
NO_CPU = "Insufficient cpu"
NO_MEMORY = "Insufficient memory"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


def odd_node(
    kind: str, namespace: str, *, allocatable: JSON | None = None, capacity: JSON | None = None
) -> JSON:
    """A Ready node of this test's pool; a None status field is left out (capacity defaults
    to allocatable)."""
    node = make_node(f"bi-{kind}-{namespace}").label(POOL, namespace).label(KIND, kind)
    obj = node.taint(TAINT).obj_()
    status = obj["status"]
    del status["capacity"], status["allocatable"]
    if allocatable is not None:
        status["allocatable"] = allocatable
    if (capacity := allocatable if capacity is None else capacity) is not None:
        status["capacity"] = capacity
    return obj


def nodes(namespace: str) -> list[JSON]:
    ordinary = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    plain = odd_node("plain", namespace, allocatable=ordinary)
    plain["metadata"]["labels"] |= {"cores": "many", "gen": "5"}
    many = odd_node("labels", namespace, allocatable=ordinary)
    many["metadata"]["labels"] |= {f"l{i}.bad-input.test/k": f"v{i}" for i in range(MANY_LABELS)}
    long = odd_node("long", namespace, allocatable={"cpu": "1", "memory": "1Gi", "pods": "110"})
    long["metadata"]["name"] = f"{namespace}.{LONG_NAME}"[:253].rstrip(".-")
    enormous = {"cpu": "1e15", "memory": "100Ei", "pods": "1e6", "ephemeral-storage": "1e18"}
    return [
        odd_node("none", namespace),
        odd_node("capacity-only", namespace, capacity=ordinary),
        odd_node("zero", namespace, allocatable={"cpu": "0", "memory": "0", "pods": "110"}),
        odd_node(
            "fractional", namespace, allocatable={"cpu": "1.5", "memory": "0.5Gi", "pods": "110"}
        ),
        odd_node("enormous", namespace, allocatable=enormous),
        odd_node("vast", namespace, allocatable=enormous),  # kept empty for one pod
        odd_node("int64", namespace, allocatable=enormous),  # 4Ei, then 9Ei and 200Ei
        plain,
        many,
        long,
    ]


@dataclass(frozen=True)
class Case:
    """One pod and what upstream does with it: `bound` names the kind of node it lands on;
    otherwise it stays pending and its FailedScheduling message holds `reason` ("{all}" in it
    stands for the number of nodes in the cluster)."""

    pod: JSON
    bound: str = ""
    reason: str = ""
    berth_only: bool = False  # a deliberate deviation: the upstream run skips it


def pod(name: str, namespace: str, kind: str | None = None) -> PodBuilder:
    """A pod of this test's pool (tolerating the odd nodes' taint), on one kind of odd node."""
    selector = {POOL: namespace} | ({KIND: kind} if kind else {})
    return (
        make_pod(name)
        .scheduler(SCHEDULER)
        .toleration(TAINT, operator="Exists")
        .node_selector(**selector)
    )


def cases(namespace: str) -> list[Case]:
    def containers(count: int, cpu: str) -> JSON:
        p = pod(f"containers-{count}-{cpu}", namespace, "plain").containers(
            *[{"cpu": cpu, "memory": "1Mi"}] * count
        )
        return p.for_api()

    gt_gen = pod("gt-numeric", namespace, "plain").required_affinity("gen", "Gt", "4")
    lt_text = pod("lt-not-a-number", namespace, "plain").required_affinity("cores", "Lt", "99")
    gt_text = pod("gt-not-a-number", namespace, "plain").required_affinity("cores", "Gt", "1")
    spread = {"matchLabels": {"app": "spread"}}
    odd_labels = (
        pod("0", namespace, "plain")
        .label("example.com/Odd_Key.x-9", "")
        .label("v", "A-._z" * 12 + "abc")
    )
    return [
        Case(pod("no-allocatable", namespace, "none").for_api(), reason=f"1 {TOO_MANY_PODS}"),
        Case(pod("capacity-only", namespace, "capacity-only").for_api(), bound="capacity-only"),
        Case(pod("best-effort-on-zero", namespace, "zero").for_api(), bound="zero"),
        Case(
            pod("millicore-on-zero", namespace, "zero").req(cpu="1m").for_api(),
            reason=f"1 {NO_CPU}",
        ),
        Case(
            pod("byte-on-zero", namespace, "zero").req(memory="1").for_api(),
            reason=f"1 {NO_MEMORY}",
        ),
        Case(
            pod("fits-fractional", namespace, "fractional").req(cpu="1", memory="0.25Gi").for_api(),
            bound="fractional",
        ),
        Case(
            pod("over-fractional", namespace, "fractional").req(cpu="1501m").for_api(),
            reason=f"1 {NO_CPU}",
        ),
        Case(
            pod("tiny-on-enormous", namespace, "enormous").req(cpu="1m", memory="1").for_api(),
            bound="enormous",
        ),
        Case(
            pod("gibibyte-on-enormous", namespace, "enormous")
            .req(memory="1Gi", ephemeral_storage="1e17")
            .for_api(),
            bound="enormous",
        ),
        # 200 containers: their requests are summed (200 x 50m = 10 CPUs > 8), not the largest.
        Case(containers(200, "10m"), bound="plain"),
        Case(containers(200, "50m"), reason=f"1 {NO_CPU}"),
        # Enormous requests: the API server caps 200Ei at the int64 maximum, as it does the
        # vast node's 100Ei, so it fits an empty vast node exactly. 1e18 CPUs is 1e21
        # millicores, past int64: upstream's MilliValue() overflows to 0 and binds the pod to an
        # 8-CPU node; berth caps it at the int64 maximum instead, so it fits nowhere.
        Case(pod("memory-200ei", namespace, "vast").req(memory="200Ei").for_api(), bound="vast"),
        Case(pod("cpu-1e18", namespace).req(cpu="1e18").for_api(), reason=NO_CPU, berth_only=True),
        # Gt/Lt compare integers; a label that is no integer matches neither.
        Case(gt_gen.for_api(), bound="plain"),
        Case(lt_text.for_api(), reason=f"{{all}} {AFFINITY}"),
        Case(gt_text.for_api(), reason=f"{{all}} {AFFINITY}"),
        Case(
            pod("spread-hard", namespace, "plain")
            .label("app", "spread")
            .spread(1, "berth.test/no-such-key", "DoNotSchedule", spread)
            .for_api(),
            reason=f"1 {MISSING_LABEL}",
        ),
        Case(
            pod("spread-soft", namespace, "plain")
            .label("app", "spread")
            .spread(1, "berth.test/no-such-key", "ScheduleAnyway", spread)
            .for_api(),
            bound="plain",
        ),
        Case(
            pod("last-of-5000-labels", namespace)
            .node_selector(
                **{POOL: namespace, f"l{MANY_LABELS - 1}.bad-input.test/k": f"v{MANY_LABELS - 1}"}
            )
            .for_api(),
            bound="labels",
        ),
        Case(pod(LONG_NAME, namespace, "long").for_api(), bound="long"),
        Case(odd_labels.for_api(), bound="plain"),
    ]


async def node_kind(client: Client, name: str) -> str:
    node = await client.get(f"/api/v1/nodes/{name}")
    return str(node["metadata"]["labels"].get(KIND, "<not an odd node>"))


async def node_of(client: Client, namespace: str, name: str) -> str | None:
    node: str | None = (await get_pod(client, namespace, name))["spec"].get("nodeName")
    return node


async def last_failure(client: Client, namespace: str, name: str) -> str | None:
    events = await events_for(client, namespace, name, "FailedScheduling")
    return str(events[-1]["note"]) if events else None


async def check(client: Client, namespace: str, case: Case, total: int) -> str:
    """An empty string when the pod's outcome is the case's, else what happened instead."""
    name = case.pod["metadata"]["name"]
    try:
        if case.bound:
            node = await wait_for(lambda: node_of(client, namespace, name), timeout=30)
            kind = await node_kind(client, node)
            return "" if kind == case.bound else f"{name}: bound to {kind}, not {case.bound}"
        message = await wait_for(lambda: last_failure(client, namespace, name), timeout=30)
    except AssertionError:
        events = await events_for(client, namespace, name, "FailedScheduling")
        notes = [event["note"] for event in events]
        where = await node_of(client, namespace, name)
        return f"{name}: on node {where!r}, no outcome within 30 s; FailedScheduling: {notes}"
    if (where := await node_of(client, namespace, name)) is not None:
        return f"{name}: bound to {where}, expected pending with {case.reason!r}"
    want = case.reason.replace("{all}", str(total))
    return "" if want in message else f"{name}: {want!r} not in {message!r}"


async def test_odd_objects_then_ordinary_pods_are_all_bound(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """Each odd node and pod gets upstream's outcome; ordinary pods created afterwards are
    all bound; berth's log has no traceback."""
    made: list[str] = []
    try:
        for node in nodes(namespace):
            await client.post("/api/v1/nodes", node)
            made.append(node["metadata"]["name"])
        # The premise: the API server (and KWOK) kept the odd values as sent.
        none = await client.get(f"/api/v1/nodes/bi-none-{namespace}")
        assert "allocatable" not in none["status"] and "capacity" not in none["status"]
        # The API server defaults allocatable to capacity (SetDefaults_NodeStatus).
        capacity_only = await client.get(f"/api/v1/nodes/bi-capacity-only-{namespace}")
        assert capacity_only["status"]["allocatable"] == capacity_only["status"]["capacity"]
        labels = (await client.get(f"/api/v1/nodes/bi-labels-{namespace}"))["metadata"]["labels"]
        assert len(labels) > MANY_LABELS

        table = [c for c in cases(namespace) if SCHEDULER == "berth" or not c.berth_only]
        missing = f"bi-missing-{namespace}"
        preset = make_pod("preset-missing-node").scheduler(SCHEDULER).node(missing).for_api()
        gated = pod("gated", namespace, "plain").gate("example.com/wait").for_api()
        for case in [*table, Case(preset), Case(gated)]:
            await create(client, namespace, case.pod)
        total = len((await client.get("/api/v1/nodes"))["items"])
        outcomes = await asyncio.gather(*(check(client, namespace, case, total) for case in table))
        assert not [wrong for wrong in outcomes if wrong], "\n".join(filter(None, outcomes))

        # On a node whose memory is the int64 maximum (100Ei, capped by the API server), 4Ei
        # fits; then 9Ei and 200Ei (also the int64 maximum) do not: a request is compared with
        # what is free, so no sum wraps round and overcommits the node.
        await create(
            client, namespace, pod("mem-4ei", namespace, "int64").req(memory="4Ei").for_api()
        )
        assert await node_kind(client, await bound_to(client, namespace, "mem-4ei")) == "int64"
        later = [
            Case(
                pod(f"mem-{size.lower()}", namespace, "int64").req(memory=size).for_api(),
                reason=f"1 {NO_MEMORY}",
            )
            for size in ("9Ei", "200Ei")
        ]
        for case in later:
            await create(client, namespace, case.pod)
        outcomes = await asyncio.gather(*(check(client, namespace, case, total) for case in later))
        assert not [wrong for wrong in outcomes if wrong], "\n".join(filter(None, outcomes))

        # A gated pod waits without a FailedScheduling event; ungated, it is bound.
        assert not (await get_pod(client, namespace, "gated"))["spec"].get("nodeName")
        assert not await events_for(client, namespace, "gated", "FailedScheduling")
        await client.patch(
            f"/api/v1/namespaces/{namespace}/pods/gated",
            {"spec": {"schedulingGates": None}},
            kind="merge",
        )
        assert await node_kind(client, await bound_to(client, namespace, "gated")) == "plain"

        # The key check: ordinary pods afterwards are all bound, to ordinary nodes.
        ordinary = [f"ordinary-{i}" for i in range(10)]
        for name in ordinary:
            await create(
                client, namespace, make_pod(name).scheduler(SCHEDULER).req(cpu="100m").for_api()
            )
        placed = await asyncio.gather(*(bound_to(client, namespace, name) for name in ordinary))
        assert not set(placed) & set(made)

        # A pod bound (by its author) to a node that does not exist is left as it is.
        assert (await get_pod(client, namespace, "preset-missing-node"))["spec"][
            "nodeName"
        ] == missing
        for reason in ("Scheduled", "FailedScheduling"):
            assert not await events_for(client, namespace, "preset-missing-node", reason)
    finally:
        await client.request(
            "DELETE", f"/api/v1/namespaces/{namespace}/pods", params={"gracePeriodSeconds": 0}
        )
        for name in made:
            try:
                await client.delete(f"/api/v1/nodes/{name}")
            except ApiError as err:
                if err.status != 404:
                    raise
    if SCHEDULER == "berth":
        assert_no_traceback(berth_scheduler)
