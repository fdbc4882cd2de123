"""`berth bench` end to end: three schedulers, each on a fresh control plane, all pods bound,
the three files written with sane numbers, and no node overcommitted. No timing thresholds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scheduler.bench import workloads
from scheduler.bench.stats import LATENCY_FIELDS, RESULT_FIELDS, RunData, overcommitted

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
