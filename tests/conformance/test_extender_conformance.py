"""Extenders against upstream: kube-scheduler v1.37 and berth, each given the same `extenders`
configuration (one real extender, tests/extender.py, served by this test process) and a
schedulerName of its own, schedule the same pods on the same API server.

The extender keeps two zones (filter), ranks their nodes (prioritize, weight 10 so its 100 and
50 points outweigh any difference the plugins see between lightly used nodes) and binds (bind
verb, through this test's client). Both schedulers must put each pod on the same node, bind
through the extender, and, where the extender rejects every node, fail with the same
FailedScheduling message.

The cluster is $KUBECONFIG's (the shared plane) or one this session starts (tests/e2e).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.harness import binaries
from scheduler.kube.client import Client
from tests.builders import make_pod
from tests.e2e import conftest as e2e
from tests.e2e.conftest import (
    Cluster,
    Running,
    assert_no_traceback,
    free_port,
    start_berth,
    wait_ready,
)
from tests.e2e.test_engine import bound_to, create, failed_message
from tests.extender import ALLOWED, MESSAGE, TestExtender, extender_config

JSON = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
KUBE = "kube-ext"  # the schedulerName each scheduler serves here
BERTH = "berth-ext"
WEIGHT = 10

# The e2e suite's cluster (the shared plane under $KUBECONFIG), client and namespace fixtures.
cluster, client, namespace = e2e.cluster, e2e.client, e2e.namespace


@pytest.fixture(scope="module")
async def zones(cluster: Cluster) -> tuple[list[str], list[str]]:
    """(the two zones the extender keeps, sorted; their schedulable nodes, sorted)."""
    async with Client.from_kubeconfig(cluster.kubeconfig, qps=0) as api:
        items = (await api.get("/api/v1/nodes"))["items"]
    nodes = [n for n in items if not n["spec"].get("unschedulable") and not n["spec"].get("taints")]
    all_zones = sorted({n["metadata"]["labels"].get(ZONE, "") for n in nodes})
    kept = set(all_zones[-2:])
    names = sorted(
        n["metadata"]["name"] for n in nodes if n["metadata"]["labels"].get(ZONE) in kept
    )
    return sorted(kept), names


@pytest.fixture(scope="module")
async def extender(
    cluster: Cluster, zones: tuple[list[str], list[str]]
) -> AsyncIterator[TestExtender]:
    kept, names = zones
    async with Client.from_kubeconfig(cluster.kubeconfig, qps=0) as binder:
        ext = TestExtender(
            label=ZONE,
            allowed=frozenset(kept),
            score_label=HOSTNAME,
            scores={names[0]: 10, names[1]: 5},
            bind_client=binder,
        )
        await ext.start()
        try:
            yield ext
        finally:
            await ext.stop()


def config(extender: TestExtender, scheduler: str, kubeconfig: str) -> str:
    entry = extender_config(
        extender.url, verbs=("filter", "prioritize", "bind"), weight=WEIGHT, httpTimeout="10s"
    )
    return yaml.safe_dump(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": kubeconfig, "qps": 50, "burst": 100},
            "leaderElection": {"leaderElect": False},
            "profiles": [{"schedulerName": scheduler}],
            "extenders": [entry],
        }
    )


@pytest.fixture(scope="module")
def kube_scheduler(
    cluster: Cluster, extender: TestExtender, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """Upstream kube-scheduler with the extender, as the plane starts its own
    (scheduler/harness/plane.py), serving schedulerName kube-ext."""
    directory = tmp_path_factory.mktemp("kube-scheduler-ext")
    path = directory / "config.yaml"
    path.write_text(config(extender, KUBE, cluster.kubeconfig))
    port = free_port()
    log = (directory / "kube-scheduler.log").open("wb")
    process = subprocess.Popen(
        [
            str(binaries.binary("kube-scheduler")),
            f"--config={path}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={directory / 'pki'}",
            f"--authentication-kubeconfig={cluster.kubeconfig}",
            f"--authorization-kubeconfig={cluster.kubeconfig}",
            "--v=1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(process, port, directory / "kube-scheduler.log")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(directory / "pki", ignore_errors=True)


@pytest.fixture(scope="module")
def berth_ext(
    cluster: Cluster, extender: TestExtender, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_berth(
        config(extender, BERTH, cluster.kubeconfig),
        cluster.kubeconfig,
        tmp_path_factory.mktemp("berth-ext"),
        name="berth-ext",
    )
    try:
        wait_ready(running)
        yield running
    finally:
        running.stop()
    assert_no_traceback(running)


def _wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(log.read_text(errors="replace")[-4000:], pytrace=False)
        try:
            url = f"https://127.0.0.1:{port}/healthz"
            if urllib.request.urlopen(url, timeout=2, context=insecure).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("kube-scheduler did not become healthy", pytrace=False)


def pod(name: str, scheduler: str, namespace: str, **annotations: str) -> JSON:
    builder = make_pod(name).namespace(namespace).scheduler(scheduler)
    raw = builder.req(cpu="50m", memory="32Mi").obj_()
    if annotations:
        raw["metadata"]["annotations"] = annotations
    return raw


async def test_filter_and_prioritize_place_pods_alike(
    kube_scheduler: subprocess.Popen[bytes],
    berth_ext: Running,
    extender: TestExtender,
    zones: tuple[list[str], list[str]],
    client: Client,
    namespace: str,
) -> None:
    """Three pods each: both schedulers put every pod on the extender's best node, and the
    extender bound them all (neither scheduler's own binder did)."""
    _, names = zones
    placed: dict[str, list[str]] = {}
    for scheduler in (KUBE, BERTH):
        placed[scheduler] = []
        for i in range(3):
            name = f"{scheduler}-{i}"
            await create(client, namespace, pod(name, scheduler, namespace))
            placed[scheduler].append(await bound_to(client, namespace, name))
            assert "bind" in extender.verbs(name), extender.verbs(name)
            assert extender.verbs(name)[:2] == ["filter", "prioritize"]
    assert placed[BERTH] == placed[KUBE] == [names[0]] * 3, placed


async def test_rejected_everywhere_fails_with_the_same_message(
    kube_scheduler: subprocess.Popen[bytes],
    berth_ext: Running,
    extender: TestExtender,
    client: Client,
    namespace: str,
) -> None:
    """The extender fails every node for the pod: both write the same FailedScheduling
    message, counting the extender's failed nodes with its own words."""
    messages = {}
    for scheduler in (KUBE, BERTH):
        name = f"{scheduler}-nowhere"
        await create(client, namespace, pod(name, scheduler, namespace, **{ALLOWED: "none"}))
        messages[scheduler] = await failed_message(client, namespace, name)
    assert MESSAGE in messages[KUBE], messages
    assert messages[BERTH] == messages[KUBE], messages


async def test_kept_zone_only(
    kube_scheduler: subprocess.Popen[bytes],
    berth_ext: Running,
    extender: TestExtender,
    zones: tuple[list[str], list[str]],
    client: Client,
    namespace: str,
) -> None:
    """A pod that allows one zone only (the extender's annotation) and the unranked nodes:
    both place it in that zone; nodes tie on the extender's score there, so any of them is
    equally allowed."""
    kept, names = zones
    zone = kept[0]
    in_zone = {n for n in names if n != names[0] and n != names[1]}
    placed = {}
    for scheduler in (KUBE, BERTH):
        name = f"{scheduler}-zone"
        await create(client, namespace, pod(name, scheduler, namespace, **{ALLOWED: zone}))
        placed[scheduler] = await bound_to(client, namespace, name)
    nodes = (await client.get("/api/v1/nodes"))["items"]
    zone_of = {n["metadata"]["name"]: n["metadata"]["labels"].get(ZONE) for n in nodes}
    assert zone_of[placed[KUBE]] == zone_of[placed[BERTH]] == zone, (placed, in_zone)
    # Both pick the extender's best node in that zone when it has one.
    ranked = [n for n in names[:2] if zone_of[n] == zone]
    if ranked:
        assert placed[KUBE] == placed[BERTH] == ranked[0], placed
