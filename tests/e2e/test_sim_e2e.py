"""`berth sim place` predicts what `berth run` then does, on the same cluster.

The prediction is made before anything is created, from the live cluster (read only) and
the manifests. Then the manifests are applied while no scheduler serves their
schedulerName, so their controllers create every pod first (a burst), and `berth run` starts
with the same configuration and `--tie-break-seed`. Every owner's pods must land on the
same nodes (as a multiset: the pods of one owner are alike), the same pods must stay pending
with the same message, and preemption must evict the same victims.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.harness.binaries import binary
from scheduler.kube.client import Client
from tests.e2e.conftest import Cluster, berth, start_berth, wait_ready
from tests.e2e.test_deploy import installed, relocate, token_kubeconfig

pytestmark = pytest.mark.e2e

SEED = "7"
READER = Path(__file__).resolve().parents[2] / "deploy" / "optional" / "sim-reader.yaml"


def _config(scheduler_name: str) -> str:
    return (
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "leaderElection:\n  leaderElect: false\n"
        f"profiles:\n- schedulerName: {scheduler_name}\n"
    )


def _container(cpu: str, memory: str = "1Gi") -> list[dict[str, Any]]:
    return [
        {
            "name": "c",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": cpu, "memory": memory}},
        }
    ]


def _template(
    name: str, scheduler: str, cpu: str, memory: str = "1Gi", **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name, "workload": name}},
        "spec": {
            "schedulerName": scheduler,
            "terminationGracePeriodSeconds": 0,
            "containers": _container(cpu, memory),
            **spec,
        },
    }


def _job(scheduler: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "crunch"},
        "spec": {
            "parallelism": 3,
            "completions": 3,
            "template": _template("crunch", scheduler, "2", restartPolicy="Never"),
        },
    }


def _mixed(scheduler: str) -> list[dict[str, Any]]:
    """Zone-spread web, hostname anti-affinity, a StatefulSet, one pod too big. No Job: KWOK
    completes a Job's pods the moment they run, which frees their nodes and sends the pending
    pods back to the queue mid-burst, a change no prediction made before can know (the extra
    attempts move the round-robin start of the node walk, and ties go elsewhere)."""
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
    ]
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app": "solo"}},
                }
            ]
        }
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 8,
                "selector": {"matchLabels": {"app": "web"}},
                "template": _template(
                    "web", scheduler, "1", "2Gi", topologySpreadConstraints=spread
                ),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "solo"},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "solo"}},
                "template": _template("solo", scheduler, "500m", affinity=anti),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "db"}},
                "template": _template("db", scheduler, "1", "4Gi"),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "huge", "labels": {"workload": "huge"}},
            "spec": {"schedulerName": scheduler, "containers": _container("64")},
        },
    ]


def _kubectl(kubeconfig: str, *args: str) -> None:
    result = subprocess.run(
        [str(binary("kubectl")), "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _sim(cluster: Cluster, manifests: Path, config: Path, namespace: str) -> dict[str, Any]:
    result = berth(
        "sim",
        "place",
        "-f",
        str(manifests),
        "--kubeconfig",
        cluster.kubeconfig,
        "--scheduler-config",
        str(config),
        "--seed",
        SEED,
        # berth starts after the burst was created: its first list gives the pods by name
        "--order",
        "name",
        "-n",
        namespace,
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc["scenarios"][0]


async def _settled(client: Client, namespace: str, expected: int) -> list[dict[str, Any]]:
    """The namespace's pods once all `expected` exist and each is bound or reported
    unschedulable (and not nominated), the same for two looks in a row."""
    last: Any = None
    for _ in range(240):
        pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        state = sorted(
            (
                p["metadata"]["name"],
                p["spec"].get("nodeName", ""),
                p.get("status", {}).get("nominatedNodeName", ""),
            )
            for p in live
        )
        done = len(live) >= expected and all(
            p["spec"].get("nodeName")
            or (
                not p.get("status", {}).get("nominatedNodeName")
                and any(
                    c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                    for c in p.get("status", {}).get("conditions") or []
                )
            )
            for p in live
        )
        if done and state == last:
            return live
        last = state if done else None
        await asyncio.sleep(1.0)
    pytest.fail(f"pods did not settle: {last}", pytrace=False)


async def _berth_run(
    cluster: Cluster, client: Client, namespace: str, config: Path, tmp_path: Path, pods: int
) -> list[dict[str, Any]]:
    """`berth run` with the configuration and the seed until the namespace's `pods` settle."""
    scheduler = yaml.safe_load(config.read_text())["profiles"][0]["schedulerName"]
    await _quiet(client)
    running = start_berth(
        config.read_text(),
        cluster.kubeconfig,
        tmp_path / "run",
        name=scheduler,
        args=["--tie-break-seed", SEED],
    )
    try:
        wait_ready(running)
        return await _settled(client, namespace, pods)
    finally:
        running.stop()


async def _quiet(client: Client) -> None:
    """Until no namespace or pod is being deleted anywhere (an earlier test's clean-up): a
    deletion during the run moves the pending pods back to the queue (see _mixed)."""
    for _ in range(240):
        namespaces = (await client.get("/api/v1/namespaces"))["items"]
        pods = (await client.get("/api/v1/pods"))["items"]
        if not any(ns.get("status", {}).get("phase") == "Terminating" for ns in namespaces) and (
            not any(p["metadata"].get("deletionTimestamp") for p in pods)
        ):
            return
        await asyncio.sleep(0.5)
    pytest.fail("the cluster did not settle: objects still being deleted", pytrace=False)


def _message(pod: dict[str, Any]) -> str:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "PodScheduled":
            return str(c.get("message", ""))
    return ""


async def test_place_predicts_berth_run(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    """A mixed burst: every owner's nodes, and every pending pod's message, as predicted."""
    scheduler = f"sim-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "config.yaml"
    config.write_text(_config(scheduler))
    manifests = tmp_path / "mixed.yaml"
    manifests.write_text(yaml.safe_dump_all(_mixed(scheduler)))

    predicted = _sim(cluster, manifests, config, namespace)
    want_nodes: dict[str, Counter[str]] = {}
    want_pending: dict[str, list[str]] = {}
    for pod in predicted["pods"]:
        workload = pod["owner"].split("/")[-1]
        if pod["node"]:
            want_nodes.setdefault(workload, Counter())[pod["node"]] += 1
        else:
            want_pending.setdefault(workload, []).append(pod["message"])
    assert sum(sum(c.values()) for c in want_nodes.values()) == 15, predicted
    assert want_pending == {"huge": [want_pending["huge"][0]]}, predicted

    _kubectl(cluster.kubeconfig, "apply", "-n", namespace, "-f", str(manifests))
    for _ in range(120):  # the controllers create every pod before berth looks
        pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
        if len(pods) == 16:
            break
        await asyncio.sleep(0.5)
    assert len(pods) == 16, [p["metadata"]["name"] for p in pods]

    pods = await _berth_run(cluster, client, namespace, config, tmp_path, 16)
    got_nodes: dict[str, Counter[str]] = {}
    got_pending: dict[str, list[str]] = {}
    for pod in pods:
        workload = pod["metadata"]["labels"]["workload"]
        if pod["spec"].get("nodeName"):
            got_nodes.setdefault(workload, Counter())[pod["spec"]["nodeName"]] += 1
        else:
            got_pending.setdefault(workload, []).append(_message(pod))
    assert got_nodes == want_nodes
    assert got_pending == want_pending


async def test_place_predicts_preemption(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    """A pod that needs room: the victims berth run evicts are the ones sim names."""
    scheduler = f"sim-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "config.yaml"
    config.write_text(_config(scheduler))
    high = f"sim-high-{namespace}"
    await client.post(
        "/apis/scheduling.k8s.io/v1/priorityclasses", {"metadata": {"name": high}, "value": 1000}
    )
    nodes = (await client.get("/api/v1/nodes"))["items"]
    for node in nodes:  # fill every node to within 1 CPU of its allocatable
        free = _millis(node["status"]["allocatable"]["cpu"]) - await _requested(
            client, node["metadata"]["name"]
        )
        await client.post(
            f"/api/v1/namespaces/{namespace}/pods",
            {
                "metadata": {
                    "name": f"filler-{node['metadata']['name']}",
                    "labels": {"workload": "filler"},
                },
                "spec": {
                    "schedulerName": scheduler,
                    "terminationGracePeriodSeconds": 0,
                    "nodeName": node["metadata"]["name"],
                    "containers": _container(f"{max(free - 1000, 0)}m", "1Mi"),
                },
            },
        )
    await _settled(client, namespace, len(nodes))
    try:
        vip = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "vip", "labels": {"workload": "vip"}},
            "spec": {
                "schedulerName": scheduler,
                "priorityClassName": high,
                "terminationGracePeriodSeconds": 0,
                "containers": _container("2"),
            },
        }
        manifests = tmp_path / "vip.yaml"
        manifests.write_text(yaml.safe_dump(vip))
        predicted = _sim(cluster, manifests, config, namespace)
        victims = {p["victim"] for p in predicted["preempted"]}
        assert len(victims) == 1, predicted
        (vip_pod,) = [p for p in predicted["pods"] if p["pod"].endswith("/vip")]

        _kubectl(cluster.kubeconfig, "apply", "-n", namespace, "-f", str(manifests))
        pods = await _berth_run(cluster, client, namespace, config, tmp_path, len(nodes))
        names = {f"{namespace}/{p['metadata']['name']}" for p in pods}
        assert victims.isdisjoint(names)
        assert len(names) == len(nodes)  # the victim only
        (vip_now,) = [p for p in pods if p["metadata"]["name"] == "vip"]
        assert vip_now["spec"].get("nodeName") == (vip_pod["node"] or vip_pod["nominatedNode"])
    finally:
        await client.delete(f"/apis/scheduling.k8s.io/v1/priorityclasses/{high}")


def _millis(cpu: str) -> int:
    return int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)


async def _requested(client: Client, node: str) -> int:
    pods = (await client.get("/api/v1/pods", fieldSelector=f"spec.nodeName={node}"))["items"]
    total = 0
    for pod in pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for c in pod["spec"].get("containers") or []:
            cpu = (c.get("resources") or {}).get("requests", {}).get("cpu")
            total += _millis(cpu) if cpu else 0
    return total


async def test_sim_needs_only_get_and_list(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    """As deploy/optional/sim-reader.yaml's ServiceAccount (get and list, nothing else),
    `berth sim place` reads every kind it needs and answers what an admin gets."""
    objects = list(yaml.safe_load_all(READER.read_text()))
    suffix = uuid.uuid4().hex[:8]
    scheduler = f"sim-{suffix}"
    config = tmp_path / "config.yaml"
    config.write_text(_config(scheduler))
    manifests = tmp_path / "mixed.yaml"
    manifests.write_text(yaml.safe_dump_all(_mixed(scheduler)))
    async with installed(client, relocate(objects, namespace, suffix), namespace):
        reader = await token_kubeconfig(
            client, cluster, namespace, "berth-sim", tmp_path / "reader.kubeconfig"
        )
        as_reader = _sim(Cluster(kubeconfig=reader, local=False), manifests, config, namespace)
    as_admin = _sim(cluster, manifests, config, namespace)
    assert as_reader["pods"] == as_admin["pods"]
    assert len(as_reader["pods"]) == 16


def _workload(owner: str) -> str:
    """ "Deployment/ns/web" and "ReplicaSet/ns/web-<hash>" both name workload web."""
    kind, _, name = owner.split("/")
    return name.rsplit("-", 1)[0] if kind == "ReplicaSet" else name


async def test_manifests_expand_as_the_controllers_do(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    """The prediction from manifests (pods named and labelled as the controllers would, a
    Job included) equals the prediction from the pods the controllers then create."""
    scheduler = f"sim-{uuid.uuid4().hex[:8]}"  # nobody serves it: the pods stay pending
    config = tmp_path / "config.yaml"
    config.write_text(_config(scheduler))
    manifests = tmp_path / "mixed.yaml"
    manifests.write_text(yaml.safe_dump_all([*_mixed(scheduler), _job(scheduler)]))
    before = _sim(cluster, manifests, config, namespace)
    _kubectl(cluster.kubeconfig, "apply", "-n", namespace, "-f", str(manifests))
    for _ in range(120):
        pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
        if len(pods) == 19:
            break
        await asyncio.sleep(0.5)
    empty = tmp_path / "none.yaml"
    empty.write_text("")
    after = _sim(cluster, empty, config, namespace)

    def placed(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
        return sorted(
            (_workload(p["owner"]), p["node"] or "", p.get("message") or "") for p in doc["pods"]
        )

    assert len(after["pods"]) == 19
    assert placed(after) == placed(before)
