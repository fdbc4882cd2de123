"""`berth bench` end to end: three schedulers, each on a fresh control plane, all pods bound,
the three files written with sane numbers, and no node overcommitted; the `gang` workload
(Kubernetes v1.37's PodGroups), whole gangs or nothing; and the workloads with claims,
`statefulset` (static local PVs) and `devices` (DRA, fake GPUs), whose claims the checker finds
satisfied and never given twice. No timing thresholds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from scheduler.bench import workloads
from scheduler.bench.stats import (
    CLAIM_FIELDS,
    GANG_FIELDS,
    LATENCY_FIELDS,
    RESULT_FIELDS,
    RunData,
    overcommitted,
)
from scheduler.harness import binaries

NODES = 20
PODS = 100
SCHEDULERS = ("berth", "kube-scheduler", "null")


def test_bench_basic_writes_sane_results(tmp_path: Path) -> None:
    """basic, 20 nodes, 100 pods: every scheduler binds every pod without overcommitting."""
    out = tmp_path / "bench"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "bench",
            "--workload",
            "basic",
            "--nodes",
            str(NODES),
            "--pods",
            str(PODS),
            "--schedulers",
            ",".join(SCHEDULERS),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"berth bench failed:\n{result.stderr[-4000:]}"
    for name in ("bench.json", "report.md", "bench.png"):
        assert (out / name).stat().st_size > 0, name

    doc = json.loads((out / "bench.json").read_text())
    assert (doc["workload"], doc["nodes"], doc["pods"], doc["qps"]) == ("basic", NODES, PODS, 5000)
    assert [r["scheduler"] for r in doc["results"]] == list(SCHEDULERS)
    for r in doc["results"]:
        name = r["scheduler"]
        assert tuple(r) == RESULT_FIELDS, name
        assert tuple(r["latency_ms"]) == LATENCY_FIELDS, name
        assert r["bound"] == PODS, name
        assert r["unschedulable"] == 0, name
        assert r["throughput_pods_per_s"] > 0, name
        assert r["duration_s"] > 0, name
        lat = r["latency_ms"]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"], name
        assert r["scheduler_cpu_s"] > 0, name
        assert r["scheduler_max_rss_mb"] > 10, name
        assert r["apiserver_cpu_s"] > 0, name

    report = (out / "report.md").read_text()
    for name in SCHEDULERS:
        assert f"| {name} |" in report
    assert "throughput ÷ kube-scheduler" in report
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    workload = workloads.get("basic")
    nodes = workload.nodes(NODES)
    node_names = {n["metadata"]["name"] for n in nodes}
    for name in SCHEDULERS:
        run = RunData.from_json(json.loads((out / "runs" / f"{name}-1.json").read_text()))
        assert len(run.node_of) == PODS, name
        assert set(run.node_of.values()) <= node_names, name
        pods = workload.pods(PODS, "any")
        assert overcommitted(nodes, pods, run.node_of) == {}, name


GANG_NODES = 20
GANG_PODS = 104  # jobs of 8, 16, 32 and 48 (the last takes what is left); 4 pods of 1 CPU a node
GANG_SCHEDULERS = ("berth", "kube-scheduler")


def test_bench_gang_leaves_no_gang_partially_bound(tmp_path: Path) -> None:
    """gang, 20 nodes (room for 80 pods), 104 pods in 4 gangs: each scheduler places whole
    gangs only: every bound pod belongs to a group with all its minCount members bound, the
    API's final state has no partially bound group, nothing is overcommitted, and the gang
    figures are in bench.json and report.md. kube-scheduler runs with GenericWorkload on.

    berth's side needs its gang engine (issue 13); without it berth binds members one by one
    and this fails on berth alone (run `--schedulers kube-scheduler` to check the bench).
    On v1.35 and v1.36 (K8S_VERSION), which serve no v1beta1 PodGroup, the bench must refuse
    with exit code 1 and say why."""
    out = tmp_path / "bench"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "bench",
            "--workload",
            "gang",
            "--nodes",
            str(GANG_NODES),
            "--pods",
            str(GANG_PODS),
            "--schedulers",
            ",".join(GANG_SCHEDULERS),
            "--idle-timeout",
            "10",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if int(binaries.k8s_version().split(".")[1]) < 37:
        assert result.returncode == 1, result.stderr[-4000:]
        assert "needs scheduling.k8s.io/v1beta1, which this API server" in result.stderr
        assert not (out / "bench.json").exists()
        return
    assert result.returncode == 0, f"berth bench failed:\n{result.stderr[-4000:]}"
    doc = json.loads((out / "bench.json").read_text())
    assert [r["scheduler"] for r in doc["results"]] == list(GANG_SCHEDULERS)
    assert doc["schedulers"]["kube-scheduler"]["feature_gates"]["GenericWorkload"] is True

    workload = workloads.get("gang").for_size(GANG_NODES, GANG_PODS)
    nodes = workload.nodes(GANG_NODES)
    pods = workload.pods(GANG_PODS, "any")
    sizes = {job.name: job.size for job in workload.jobs(GANG_PODS)}
    capacity = GANG_NODES * workloads.gang_pods_per_node(GANG_NODES, GANG_PODS)
    for r in doc["results"]:
        name, gangs = r["scheduler"], r["gangs"]
        assert tuple(r) == (*RESULT_FIELDS, "gangs"), name
        assert tuple(gangs) == GANG_FIELDS, name
        assert gangs["partially_bound"] == 0, name
        assert gangs["groups"] == len(sizes), name
        assert 1 <= gangs["groups_placed"] < len(sizes), name  # 104 pods ask for more than 80
        lat = gangs["quorum_to_bound_ms"]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"], name

        run = RunData.from_json(json.loads((out / "runs" / f"{name}-1.json").read_text()))
        assert run.partially_bound == [], name
        placed = run.group_times()
        bound_in = Counter(run.group_of[pod] for pod in run.bound_at)
        assert set(bound_in) == set(placed), name  # no pod bound outside a placed group
        assert all(bound_in[g] == sizes[g] for g in placed), name
        assert r["bound"] == sum(sizes[g] for g in placed) <= capacity, name
        assert overcommitted(nodes, pods, run.node_of) == {}, name

    report = (out / "report.md").read_text()
    assert "| partially bound |" in report
    assert "GenericWorkload=true for this workload" in report


CLAIM_NODES = 20
CLAIM_PODS = 40
CLAIM_SCHEDULERS = ("berth", "kube-scheduler")


def _bench(workload: str, out: Path) -> dict[str, Any]:
    """Run `berth bench` on the claim workloads' size and return bench.json."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "bench",
            "--workload",
            workload,
            "--nodes",
            str(CLAIM_NODES),
            "--pods",
            str(CLAIM_PODS),
            "--schedulers",
            ",".join(CLAIM_SCHEDULERS),
            "--idle-timeout",
            "20",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"berth bench failed:\n{result.stderr[-4000:]}"
    doc: dict[str, Any] = json.loads((out / "bench.json").read_text())
    assert [r["scheduler"] for r in doc["results"]] == list(CLAIM_SCHEDULERS)
    return doc


def test_bench_statefulset_binds_every_claim_to_a_volume_of_its_node(tmp_path: Path) -> None:
    """statefulset, 20 nodes, 40 pods with a WaitForFirstConsumer claim each and 60 static
    local PVs: both schedulers bind every pod, every claim to a PV of the pod's node, and no
    PV twice."""
    out = tmp_path / "bench"
    doc = _bench("statefulset", out)
    for r in doc["results"]:
        name, claims = r["scheduler"], r["claims"]
        assert tuple(r) == (*RESULT_FIELDS, "claims"), name
        assert tuple(claims) == CLAIM_FIELDS, name
        assert (r["bound"], r["unschedulable"]) == (CLAIM_PODS, 0), name
        assert claims == {
            "kind": "volumes",
            "claims": CLAIM_PODS,
            "satisfied": CLAIM_PODS,
            "violations": 0,
        }, name
    assert (
        "| scheduler | pods bound | claims | bound to a volume | violations |"
        in (out / "report.md").read_text()
    )


def test_bench_devices_allocates_no_gpu_twice(tmp_path: Path) -> None:
    """devices, 20 nodes of 8 fake GPUs, 40 pods claiming 1 to 8 (112 GPUs of 160): every
    pod a scheduler binds has its claim allocated on its node and reserved for it, no GPU is
    allocated twice, and kube-scheduler binds at least half of them (the 8-GPU pods need an
    empty node, so how many fit depends on the packing).

    berth's side needs its DRA allocator (scheduler/dra/); a berth without one binds none of
    these pods, and the run must still report (0 bound, every pod unschedulable, no
    violation)."""
    out = tmp_path / "bench"
    doc = _bench("devices", out)
    by = {r["scheduler"]: r for r in doc["results"]}
    for name, r in by.items():
        claims = r["claims"]
        assert tuple(r) == (*RESULT_FIELDS, "claims"), name
        assert claims["kind"] == "devices", name
        assert claims["violations"] == 0, name
        assert claims["claims"] == CLAIM_PODS, name  # one per pod, from the templates
        assert claims["satisfied"] == r["bound"], name
        assert r["bound"] + r["unschedulable"] == CLAIM_PODS, name
    # Fragmentation decides how many of the big claims fit, not the GPUs there are.
    assert by["kube-scheduler"]["bound"] >= CLAIM_PODS // 2
    assert (
        "| scheduler | pods bound | claims | allocated | violations |"
        in (out / "report.md").read_text()
    )
