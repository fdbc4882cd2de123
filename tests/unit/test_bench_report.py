"""Benchmark outputs (bench.json, report.md, bench.png) and the pure pieces of a run: the
watch tracker, client limits, scheduler names, the progress bar and argument checks."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from scheduler.bench import command, processes, report
from scheduler.bench.progress import Progress, render
from scheduler.bench.runner import Tracker
from scheduler.bench.stats import RESULT_FIELDS, RunData, summarize

JSON = dict[str, Any]


def _run(scheduler: str, rate: float, run: int = 1) -> RunData:
    """100 pods, created at once, bound at `rate` pods a second, latency = bind time."""
    names = [f"pod-{i:06d}" for i in range(1, 101)]
    return RunData(
        scheduler=scheduler,
        run=run,
        pods=100,
        created_at=dict.fromkeys(names, 0.0),
        bound_at={n: (i + 1) / rate for i, n in enumerate(names)},
        node_of=dict.fromkeys(names, "node-00001"),
        ended_s=100 / rate + 2.0,
        scheduler_cpu_s=100 / rate / 2,
        scheduler_max_rss_mb=80.0,
        apiserver_cpu_s=1.0,
        etcd_cpu_s=0.5,
        bench_cpu_s=0.25,
        machine_cpu_s=2.25 + 100 / rate / 2,
    )


META = report.Meta(workload="basic", nodes=20, pods=100, qps=5000.0, repeat=1)
ENV = {"cpus": 2, "python": "3.11.0", "platform": "linux", "date": "2025-01-01T00:00:00Z"}
RUNS = [_run("berth", 200.0), _run("kube-scheduler", 100.0), _run("null", 250.0)]


def test_bench_json_top_level_and_results() -> None:
    """workload, nodes, pods, qps, then one result per scheduler in run order."""
    doc = report.bench_json(META, RUNS, ENV)
    assert {k: doc[k] for k in ("workload", "nodes", "pods", "qps")} == {
        "workload": "basic",
        "nodes": 20,
        "pods": 100,
        "qps": 5000.0,
    }
    assert [r["scheduler"] for r in doc["results"]] == ["berth", "kube-scheduler", "null"]
    assert all(tuple(r) == RESULT_FIELDS for r in doc["results"])
    assert [r["run"] for r in doc["runs"]] == [1, 1, 1]
    json.dumps(doc)  # serialisable as it is


def test_bench_json_takes_medians_over_repeats() -> None:
    """Three runs of one scheduler give one result, the median one."""
    runs = [_run("berth", r, run=i) for i, r in enumerate((100.0, 300.0, 200.0), start=1)]
    doc = report.bench_json(META, runs, ENV)
    assert len(doc["results"]) == 1 and len(doc["runs"]) == 3
    assert doc["results"][0]["throughput_pods_per_s"] == summarize(runs[2])["throughput_pods_per_s"]


def _table_row(markdown: str, table: int, name: str) -> list[str]:
    tables: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    row = next(r for r in tables[table] if r.startswith(f"| {name} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_markdown_table_and_ratios() -> None:
    """Main table with every number; ratios against kube-scheduler and null."""
    md = report.render_markdown(META, report.results_by_scheduler(RUNS), ENV, RUNS)
    assert md.startswith("# berth bench: `basic`, 20 nodes, 100 pods")
    assert "qps 5000, burst 5000 for every scheduler" in md
    berth = _table_row(md, 0, "berth")
    assert berth[0] == "berth"
    assert berth[1] == "200.0"  # throughput
    assert berth[5:7] == ["100", "0"]  # bound, unschedulable
    assert berth[9] == "2.50"  # CPU ms per pod: 0.25 s / 100 pods
    ratios = _table_row(md, 1, "berth")
    assert ratios[1:] == ["2.00x", "0.80x", "0.50x", "0.50x"]
    assert _table_row(md, 1, "kube-scheduler")[1] == "1.00x"
    cpu = _table_row(md, 2, "null")
    # other: 2.45 - (0.2 + 1 + 0.5 + 0.25); machine busy: 2.45 s / (2.4 s * 2 CPUs)
    assert cpu[1:7] == ["0.20", "1.00", "0.50", "0.25", "0.50", "51%"]


def test_markdown_without_baselines_shows_dashes() -> None:
    """berth alone: ratios cannot be computed and say so."""
    runs = [_run("berth", 200.0)]
    md = report.render_markdown(META, report.results_by_scheduler(runs), ENV, runs)
    assert _table_row(md, 1, "berth")[1:] == ["—", "—", "—", "—"]


def test_markdown_upstream_default_limits() -> None:
    """--qps upstream-default is described as each scheduler's own limits."""
    meta = report.Meta(workload="basic", nodes=20, pods=100, qps="upstream-default", repeat=3)
    md = report.render_markdown(meta, report.results_by_scheduler(RUNS), ENV)
    assert "own default client limits" in md and "median of 3 runs" in md


def test_write_all_writes_the_three_files(tmp_path: Path) -> None:
    """bench.json, report.md and a PNG; raw runs read back from DIR/runs."""
    for run in RUNS:
        report.write_run(tmp_path, run)
    assert report.load_runs(tmp_path) == sorted(RUNS, key=lambda r: r.scheduler)
    results = report.write_all(tmp_path, META, RUNS)
    assert [r["scheduler"] for r in results] == ["berth", "kube-scheduler", "null"]
    assert json.loads((tmp_path / "bench.json").read_text())["results"] == results
    assert "| berth |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_without_matplotlib_the_table_and_json_are_written_and_the_png_asked_for_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """matplotlib is the `bench` extra: without it bench.json and report.md are written, no
    PNG (nor a stale one from an earlier run), and stderr says once what to install."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    monkeypatch.setattr(report, "_png_notice_given", False)
    (tmp_path / "bench.png").write_bytes(b"an earlier run's chart")
    for _ in range(2):
        results = report.write_all(tmp_path, META, RUNS)
    assert json.loads((tmp_path / "bench.json").read_text())["results"] == results
    assert "| berth |" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "bench.png").exists()
    err = capsys.readouterr().err
    assert err.count("pip install 'berth-scheduler[bench]'") == 1, err


def test_png_copes_with_a_run_that_bound_nothing(tmp_path: Path) -> None:
    """No binds: empty curves, no log axis, still a picture."""
    run = RunData(scheduler="berth", run=1, pods=10, ended_s=3.0)
    report.render_png(tmp_path / "x.png", META, [run])
    assert (tmp_path / "x.png").stat().st_size > 0


# --- the watch tracker --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _pod(name: str, node: str = "", scheduled: str | None = None) -> JSON:
    status: JSON = {}
    if scheduled is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": scheduled}]
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": node} if node else {},
        "status": status,
    }


def test_tracker_times_creation_and_binding() -> None:
    """Times are seconds since start(); the earlier of create answer and watch wins."""
    clock = FakeClock()
    tracker = Tracker(clock)
    tracker.start()
    clock.now += 0.5
    tracker.on_pod("ADDED", _pod("a"), None)
    clock.now += 0.25
    tracker.created("a")  # the create answer arrived after the watch event
    tracker.created("b")
    clock.now += 1.0
    tracker.on_pod("ADDED", _pod("b"), None)
    tracker.on_pod("MODIFIED", _pod("a", node="n1"), None)
    tracker.on_pod("MODIFIED", _pod("a", node="n2"), None)  # the first bind counts
    assert tracker.created_at == {"a": 0.5, "b": 0.75}
    assert tracker.bound_at == {"a": 1.75}
    assert tracker.node_of == {"a": "n1"}
    assert not tracker.settled(2)


def test_tracker_counts_unschedulable_from_conditions_and_events() -> None:
    """PodScheduled=False or a FailedScheduling event marks a pod; a later bind unmarks it."""
    tracker = Tracker(FakeClock())
    tracker.start()
    tracker.on_pod("MODIFIED", _pod("a", scheduled="False"), None)
    tracker.on_event("ADDED", {"reason": "FailedScheduling", "regarding": {"name": "b"}}, None)
    tracker.on_event("ADDED", {"reason": "Scheduled", "regarding": {"name": "c"}}, None)
    assert tracker.unschedulable == {"a", "b"}
    assert tracker.settled(2)
    tracker.on_pod("MODIFIED", _pod("a", node="n1"), None)
    assert tracker.pending_unschedulable == 1
    assert tracker.settled(2)
    assert not tracker.settled(3)


def test_tracker_idle_time_moves_only_without_progress() -> None:
    """Progress resets the idle clock; repeated events for a known state do not."""
    clock = FakeClock()
    tracker = Tracker(clock)
    tracker.start()
    clock.now += 5
    tracker.on_pod("ADDED", _pod("a"), None)
    clock.now += 3
    tracker.on_pod("MODIFIED", _pod("a"), None)
    assert tracker.idle_for() == 3


# --- limits, names, progress, arguments ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "qps", "burst", "label"),
    [
        pytest.param("5000", 5000.0, 5000, 5000.0, id="default"),
        pytest.param("50.5", 50.5, 50, 50.5, id="fraction"),
        pytest.param("upstream-default", None, None, "upstream-default", id="upstream"),
    ],
)
def test_limits_parse(text: str, qps: float | None, burst: int | None, label: object) -> None:
    """A number gives qps with burst equal; upstream-default leaves each its own."""
    limits = processes.Limits.parse(text)
    assert (limits.qps, limits.burst, limits.label) == (qps, burst, label)


@pytest.mark.parametrize("text", ["fast", "0", "-5"])
def test_limits_parse_rejects(text: str) -> None:
    """Anything else is a usage error that names --qps."""
    with pytest.raises(ValueError, match="--qps"):
        processes.Limits.parse(text)


@pytest.mark.parametrize(
    ("kind", "shared", "expected"),
    [
        pytest.param("berth", False, "berth", id="berth"),
        pytest.param("kube-scheduler", False, "default-scheduler", id="kube-fresh"),
        pytest.param("kube-scheduler", True, "bench-kube-scheduler", id="kube-shared"),
        pytest.param("null", False, "bench-null", id="null"),
    ],
)
def test_scheduler_names(kind: str, shared: bool, expected: str) -> None:
    """On a shared cluster the upstream scheduler under test must not be default-scheduler."""
    assert processes.scheduler_name(kind, shared) == expected


def test_scheduler_configs_carry_the_limits() -> None:
    """Both real schedulers read their limits from clientConnection; none with upstream-default."""
    config = processes._config("/k", processes.Limits.parse("300"), "berth", [])
    assert config["clientConnection"] == {"kubeconfig": "/k", "qps": 300.0, "burst": 300}
    assert config["leaderElection"] == {"leaderElect": False}
    assert config["profiles"] == [{"schedulerName": "berth"}]
    own = processes._config("/k", processes.Limits.parse("upstream-default"), "x", [])
    assert own["clientConnection"] == {"kubeconfig": "/k"}


SPREAD_LIST = [{"name": "PodTopologySpread", "args": {"defaultingType": "List"}}]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- name: PodTopologySpread\n  args: {defaultingType: List}\n", id="a list"),
        pytest.param(
            "pluginConfig:\n- name: PodTopologySpread\n  args: {defaultingType: List}\n",
            id="a profile",
        ),
    ],
)
def test_plugin_config_reaches_every_scheduler_profile(tmp_path: Path, text: str) -> None:
    """--plugin-config: the same pluginConfig in berth's and kube-scheduler's profile."""
    path = tmp_path / "pc.yaml"
    path.write_text(text)
    entries = command._plugin_config(path)
    assert entries == SPREAD_LIST
    config = processes._config("/k", processes.Limits.parse("300"), "s", entries)
    assert config["profiles"] == [{"schedulerName": "s", "pluginConfig": SPREAD_LIST}]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("name: PodTopologySpread\n", id="a mapping without pluginConfig"),
        pytest.param("- args: {}\n", id="an entry without a name"),
        pytest.param("[unclosed\n", id="not YAML"),
    ],
)
def test_plugin_config_refuses_what_is_not_a_plugin_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pc.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="--plugin-config"):
        command._plugin_config(path)


@pytest.mark.parametrize(
    ("done", "total", "bar"),
    [
        pytest.param(0, 10, "[..........]", id="empty"),
        pytest.param(5, 10, "[#####.....]", id="half"),
        pytest.param(10, 10, "[##########]", id="full"),
        pytest.param(12, 10, "[##########]", id="over-is-full"),
        pytest.param(0, 0, "[..........]", id="nothing-to-do"),
    ],
)
def test_render_bar(done: int, total: int, bar: str) -> None:
    """The bar fills with done/total and never overflows."""
    assert render("x", done, total, width=10).startswith(f"x {bar}")


def test_progress_on_a_pipe_writes_whole_lines_at_intervals() -> None:
    """Not a terminal: one plain line per interval, and the final state always."""
    clock = FakeClock()
    stream = io.StringIO()
    progress = Progress(stream, plain_interval=5.0, clock=clock)
    progress.update("a")
    progress.update("b")  # too soon
    clock.now += 6
    progress.update("c")
    progress.done("d")
    assert stream.getvalue() == "a\nc\nd\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--pods", "10"], "--nodes and --pods are required", id="no-nodes"),
        pytest.param(["--nodes", "5"], "--nodes and --pods are required", id="no-pods"),
        pytest.param(["--nodes", "5,6", "--pods", "1"], "one number", id="list-without-in-memory"),
        pytest.param(["--nodes", "x", "--pods", "1"], "whole numbers", id="not-a-number"),
        pytest.param(["--nodes", "0", "--pods", "1"], "at least one node", id="zero-nodes"),
        pytest.param(
            ["--nodes", "5", "--pods", "1", "--schedulers", "berth,foo"], "--schedulers", id="bad"
        ),
        pytest.param(
            ["--nodes", "5", "--pods", "1", "--schedulers", "null,null"], "distinct", id="twice"
        ),
        pytest.param(["--nodes", "5", "--pods", "1", "--qps", "fast"], "--qps", id="bad-qps"),
        pytest.param(["--nodes", "5", "--pods", "1", "--repeat", "0"], ">= 1", id="no-repeats"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Usage errors are refused before anything starts, naming the argument."""
    import argparse

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([*argv, "--out", str(tmp_path)])
    assert command.main(args) == 2
    assert message in capsys.readouterr().err


METRICS = """\
# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value ...
kubernetes_build_info{build_date="",compiler="gc",git_version="v1.37.2",major="1",minor="37"} 1
kubernetes_feature_enabled{name="OpportunisticBatching",stage="BETA"} 1
kubernetes_feature_enabled{name="SchedulerAsyncPreemption",stage=""} 1
kubernetes_feature_enabled{name="GenericWorkload",stage="BETA"} 0
kubernetes_feature_enabled{name="KubeletInUserNamespace",stage="ALPHA"} 0
"""


def test_scheduling_gates_from_metrics() -> None:
    """kube-scheduler's version and scheduling gates come from its own /metrics."""
    version, gates = processes.scheduling_gates(METRICS)
    assert version == "v1.37.2"
    assert gates == {
        "GenericWorkload": False,
        "OpportunisticBatching": True,
        "SchedulerAsyncPreemption": True,
    }
    assert processes.scheduling_gates("") == ("", {})


def test_report_names_kube_scheduler_gates() -> None:
    """bench.json and report.md say which kube-scheduler (and which gates) a ratio is against."""
    kube = _run("kube-scheduler", 100.0)
    kube.scheduler_version, kube.feature_gates = processes.scheduling_gates(METRICS)
    runs = [_run("berth", 200.0), kube]
    doc = report.bench_json(META, runs, ENV)
    assert doc["schedulers"] == {
        "kube-scheduler": {"version": "v1.37.2", "feature_gates": kube.feature_gates}
    }
    markdown = report.render_markdown(META, report.results_by_scheduler(runs), ENV, runs)
    assert (
        "kube-scheduler v1.37.2, default feature gates: GenericWorkload off, "
        "OpportunisticBatching on, SchedulerAsyncPreemption on." in markdown
    )
