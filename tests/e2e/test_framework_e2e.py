"""The framework runtime end to end on a real API server: a Permit plugin that waits for its
group (WaitingPod allow / reject / timeout), PreEnqueue per profile, two profiles in one
process reporting under their own names, a gated pod through the real queue and metrics, and
no handler raising on the way. The sample plugins are out-of-tree: they are installed through
the `berth.plugins` entry-point group, as a user's would be."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.kube.client import Client
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, Running, assert_no_traceback, start_berth, wait_ready
from tests.e2e.sample_plugins import group_permit, label_gate
from tests.e2e.test_engine import bound_to, create, events_for, get_pod, wait_for

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: berth-permit
  plugins:
    permit:
      enabled:
      - name: GroupPermit
  pluginConfig:
  - name: GroupPermit
    args:
      timeoutSeconds: 3
- schedulerName: berth-gate
  plugins:
    preEnqueue:
      enabled:
      - name: LabelGate
"""


def install_sample_plugins(directory: Path) -> dict[str, str]:
    """A dist-info whose entry points name the sample plugins; its directory goes on
    PYTHONPATH, so `berth run` finds them through importlib.metadata like installed ones."""
    dist = directory / "berth_sample_plugins-0.1.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: berth-sample-plugins\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[berth.plugins]\n"
        f"group-permit = {group_permit.__name__}\n"
        f"label-gate = {label_gate.__name__}\n"
    )
    return {"PYTHONPATH": f"{directory}:{REPO}"}


@pytest.fixture(scope="module")
def sample_berth(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory = tmp_path_factory.mktemp("samples")
    env = install_sample_plugins(directory / "site")
    running = start_berth(CONFIG, cluster.kubeconfig, directory, name="samples", env=env)
    try:
        wait_ready(running)
        yield running
    finally:
        running.stop()
    assert_no_traceback(running)


def metrics(running: Running) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of berth's /metrics: (name, sorted labels) -> value."""
    url = f"http://127.0.0.1:{running.port}/metrics"
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


async def sample(running: Running, name: str, **labels: str) -> float:
    found = await asyncio.to_thread(metrics, running)
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def member(name: str, group: str, size: int) -> dict[str, object]:
    return (
        make_pod(name)
        .scheduler("berth-permit")
        .label(group_permit.GROUP, group)
        .label(group_permit.SIZE, str(size))
        .req(cpu="10m")
        .for_api()
    )


async def test_permit_waits_for_the_whole_group_then_binds_every_member(
    sample_berth: Running, client: Client, namespace: str
) -> None:
    """Two of three members wait in Permit (holding their node, nominated to it, not bound);
    the third allows them all and all three bind. The waits are observed as Success."""
    before = await sample(
        sample_berth, "scheduler_permit_wait_duration_seconds_count", result="Success"
    )
    for name in ("a", "b"):
        await create(client, namespace, member(name, "g1", 3))

    async def nominated() -> bool:
        pods = [await get_pod(client, namespace, n) for n in ("a", "b")]
        return all(p.get("status", {}).get("nominatedNodeName") for p in pods)

    await wait_for(nominated)
    for name in ("a", "b"):
        assert not (await get_pod(client, namespace, name))["spec"].get("nodeName")
    url = f"http://127.0.0.1:{sample_berth.port}/debug/pods/{namespace}/a"
    view = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(url).read()))
    assert view["waiting"]["pending_plugins"] == ["GroupPermit"]
    await create(client, namespace, member("c", "g1", 3))
    nodes = [await bound_to(client, namespace, n) for n in ("a", "b", "c")]
    assert all(nodes)
    after = await sample(
        sample_berth, "scheduler_permit_wait_duration_seconds_count", result="Success"
    )
    assert after - before == 2


async def test_permit_timeout_rejects_and_the_pod_waits_as_unschedulable(
    sample_berth: Running, client: Client, namespace: str
) -> None:
    """A member whose group never fills is rejected when GroupPermit's 3 s run out, with
    upstream's message, and is not bound."""
    await create(client, namespace, member("lonely", "g2", 2))

    async def rejected() -> str | None:
        items = await events_for(client, namespace, "lonely", "FailedScheduling")
        return str(items[-1]["note"]) if items else None

    message = await wait_for(rejected)
    assert message == (
        "0/1 nodes are available: 1 rejected due to timeout after waiting 3s at plugin GroupPermit."
    )
    assert not (await get_pod(client, namespace, "lonely"))["spec"].get("nodeName")
    assert await sample(
        sample_berth, "scheduler_permit_wait_duration_seconds_count", result="Unschedulable"
    )


async def test_each_profile_runs_its_own_pre_enqueue_and_reports_under_its_name(
    sample_berth: Running, client: Client, namespace: str
) -> None:
    """LabelGate is enabled in berth-gate only: a held pod of berth-permit binds at once, the
    held pod of berth-gate waits gated until the label goes (its hint on the pod's own label
    update lets it in). Each Scheduled event names its profile as reporting controller."""
    held = {label_gate.HOLD: "yes"}
    free = make_pod("free").scheduler("berth-permit").req(cpu="10m")
    gated = make_pod("gated").scheduler("berth-gate").req(cpu="10m")
    for key, value in held.items():
        free.label(key, value)
        gated.label(key, value)
    await create(client, namespace, free.for_api())
    await create(client, namespace, gated.for_api())
    await bound_to(client, namespace, "free")

    async def counted_gated() -> bool:
        value = await sample(
            sample_berth, "scheduler_unschedulable_pods", plugin="LabelGate", profile="berth-gate"
        )
        return value >= 1

    await wait_for(counted_gated)
    assert not (await get_pod(client, namespace, "gated"))["spec"].get("nodeName")
    moved = "TargetPodUpdatePodLabel"
    before = await sample(
        sample_berth, "scheduler_queue_incoming_pods_total", queue="active", event=moved
    )
    await client.patch(
        f"/api/v1/namespaces/{namespace}/pods/gated",
        {"metadata": {"labels": {label_gate.HOLD: None}}},
    )
    await bound_to(client, namespace, "gated")
    after = await sample(
        sample_berth, "scheduler_queue_incoming_pods_total", queue="active", event=moved
    )
    assert after - before >= 1
    for name, profile in (("free", "berth-permit"), ("gated", "berth-gate")):
        events = await events_for(client, namespace, name, "Scheduled")
        assert {e["reportingController"] for e in events} == {profile}


async def test_a_gated_pod_through_the_real_queue_and_metrics(
    berth_scheduler: Running, client: Client, namespace: str
) -> None:
    """A pod with schedulingGates is counted incoming to the unschedulable pool as
    UnscheduledPodAdd and under SchedulingGates in scheduler_unschedulable_pods; removing its
    gates moves it (TargetPodUpdatePodSchedulingGatesEliminated) and it binds."""
    add = ("unschedulable", "UnscheduledPodAdd")
    lifted = ("active", "TargetPodUpdatePodSchedulingGatesEliminated")

    async def incoming(queue: str, event: str) -> float:
        return await sample(
            berth_scheduler, "scheduler_queue_incoming_pods_total", queue=queue, event=event
        )

    added_before, lifted_before = await incoming(*add), await incoming(*lifted)
    pod = make_pod("gated").scheduler("berth").gate("example.com/wait").for_api()
    await create(client, namespace, pod)

    async def counted() -> bool:
        return await incoming(*add) > added_before and (
            await sample(
                berth_scheduler,
                "scheduler_unschedulable_pods",
                plugin="SchedulingGates",
                profile="berth",
            )
            >= 1
        )

    await wait_for(counted)
    await client.patch(
        f"/api/v1/namespaces/{namespace}/pods/gated", {"spec": {"schedulingGates": None}}
    )
    await bound_to(client, namespace, "gated")
    assert await incoming(*lifted) > lifted_before
    assert_no_traceback(berth_scheduler)


def test_an_invalid_sample_plugin_arg_exits_2_naming_the_field(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Out-of-tree plugin args are validated like built-in ones: exit 2, field path named."""
    env = install_sample_plugins(tmp_path / "site")
    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.replace("timeoutSeconds: 3", "timeoutSeconds: 3\n      bogus: 1"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "run",
            "--config",
            str(config),
            "--secure-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "profiles[0].pluginConfig[GroupPermit].args" in result.stderr
    assert "Traceback" not in result.stderr
