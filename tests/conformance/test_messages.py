"""FailedScheduling messages: berth's must equal upstream kube-scheduler's, word for word.

Each case is a few nodes (and pods already bound to them) and one pod that cannot be placed.
The pod is created twice on the same API server, once for upstream kube-scheduler (the plane's
version, default feature gates) and once for berth, and the first FailedScheduling event of
each must carry the same message: the per-reason node counts, the order of the reasons, the
trailing period and the preemption part. Users grep for these strings and dashboards group by
them, so "the same meaning" is not enough. berth speaks v1.37: on an older plane the upstream
message is first put in v1.37's words (as_v1_37, one known difference).
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid

import pytest

from scheduler.kube.client import Client
from scheduler.kube.discovery import discover
from tests.builders import make_node, make_pod
from tests.conformance.checker import JSON
from tests.conformance.scenarios import Scenario
from tests.conformance.test_conformance import _delete_pods, _replace_nodes
from tests.e2e.conftest import Running
from tests.e2e.test_engine import as_v1_37

EVENT_TIMEOUT = 60.0


def _nodes(count: int, **labels: str) -> list[JSON]:
    return [
        make_node(f"msg-{i}").capacity(cpu="2", memory="4Gi", pods="10").labels(**labels).obj_()
        for i in range(1, count + 1)
    ]


def _bound(name: str, node: str, pod: JSON) -> JSON:
    pod["metadata"]["name"] = name
    pod["spec"]["nodeName"] = node
    return pod


def cases() -> list[tuple[Scenario, JSON]]:
    """(nodes and bound pods, the pod that must fail), each named after what it checks."""
    out: list[tuple[Scenario, JSON]] = []

    def case(name: str, nodes: list[JSON], pod: JSON, existing: list[JSON] | None = None) -> None:
        out.append((Scenario(id=f"msg-{name}", nodes=nodes, pods=[], existing=existing or []), pod))

    three = _nodes(3)
    case("insufficient-cpu", three, make_pod("p").req(cpu="3").for_api())
    case(
        "two-reasons",
        [
            *_nodes(2),
            make_node("msg-3").capacity(cpu="8", memory="4Gi").taint("dedicated", "x").obj_(),
        ],
        make_pod("p").req(cpu="3").for_api(),
    )
    case("node-selector", three, make_pod("p").node_selector(disk="ssd").for_api())
    case(
        "affinity-terms-conflict",
        three,
        make_pod("p")
        .node_affinity(
            {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["msg-1"]},
                                {"key": "metadata.name", "operator": "In", "values": ["msg-2"]},
                            ]
                        }
                    ]
                }
            }
        )
        .for_api(),
    )
    case(
        "affinity-missing-node",
        three,
        make_pod("p")
        .node_affinity(
            {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["nope"]}
                            ]
                        }
                    ]
                }
            }
        )
        .for_api(),
    )
    port = {"containerPort": 9000, "hostPort": 9000, "protocol": "TCP"}
    case(
        "sidecar-host-port",
        _nodes(1),
        make_pod("p").container_ports(port).for_api(),
        existing=[
            _bound(
                "holder",
                "msg-1",
                make_pod("holder").init_container_ports(port, sidecar=True).for_api(),
            )
        ],
    )
    case(
        "untolerated-taint-and-unschedulable",
        [
            make_node("msg-1").capacity(cpu="2", memory="4Gi").taint("gpu", "true").obj_(),
            make_node("msg-2").capacity(cpu="2", memory="4Gi").unschedulable().obj_(),
        ],
        make_pod("p").for_api(),
    )
    return out


CASES = cases()


@pytest.mark.parametrize(("case", "pod"), CASES, ids=[s.id for s, _ in CASES])
async def test_failed_scheduling_message(
    case: Scenario, pod: JSON, conformance_client: Client, berth_process: Running
) -> None:
    """berth's FailedScheduling message equals kube-scheduler's for the same pod and nodes."""
    client = conformance_client
    await _replace_nodes(client, case)
    messages = {}
    for scheduler in ("default-scheduler", "berth"):
        assert berth_process.process.poll() is None, f"berth exited; see {berth_process.log}"
        messages[scheduler] = await _first_failure(client, pod, scheduler)
    assert messages["berth"] == messages["default-scheduler"]


async def _first_failure(client: Client, pod: JSON, scheduler: str) -> str:
    ns = f"msg-{scheduler[:5]}-{uuid.uuid4().hex[:6]}"
    await client.post("/api/v1/namespaces", {"metadata": {"name": ns}})
    body = copy.deepcopy(pod)
    body["spec"]["schedulerName"] = scheduler
    body["spec"]["terminationGracePeriodSeconds"] = 0
    name = body["metadata"]["name"]
    try:
        await client.post(f"/api/v1/namespaces/{ns}/pods", body)
        deadline = time.monotonic() + EVENT_TIMEOUT
        while time.monotonic() < deadline:
            events = await client.get(
                f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                fieldSelector=f"reason=FailedScheduling,regarding.name={name}",
            )
            if events["items"]:
                note = str(events["items"][0]["note"])
                if scheduler == "default-scheduler":
                    note = as_v1_37(note, (await discover(client)).minor)
                return note
            live = await client.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            assert not live["spec"].get("nodeName"), f"{scheduler} bound {name}"
            await asyncio.sleep(0.25)
        pytest.fail(f"{scheduler}: no FailedScheduling event for {name} in {EVENT_TIMEOUT}s")
    finally:
        await _delete_pods(client, ns)
