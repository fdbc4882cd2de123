"""Benchmark numbers: percentiles, the per-scheduler summary, medians over repeats, the
overcommit check and the /proc parsers."""

from __future__ import annotations

import pytest

from scheduler.bench import procstat
from scheduler.bench.stats import (
    LATENCY_FIELDS,
    RESULT_FIELDS,
    Latency,
    Result,
    RunData,
    aggregate,
    overcommitted,
    percentile,
    summarize,
)
from scheduler.bench.workloads import basic, mixed


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        pytest.param([], 50, None, id="empty"),
        pytest.param([7.0], 50, 7.0, id="one-value"),
        pytest.param([7.0], 99, 7.0, id="one-value-p99"),
        pytest.param([1.0, 2.0, 3.0, 4.0], 50, 2.0, id="even-count-median-is-lower"),
        pytest.param([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0, id="odd-count-median"),
        pytest.param([float(i) for i in range(1, 101)], 90, 90.0, id="p90-of-1..100"),
        pytest.param([float(i) for i in range(1, 101)], 99, 99.0, id="p99-of-1..100"),
        pytest.param([float(i) for i in range(1, 11)], 99, 10.0, id="p99-of-ten-is-max"),
        pytest.param([1.0, 2.0], 100, 2.0, id="p100-is-max"),
    ],
)
def test_percentile_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    assert percentile(values, p) == expected


@pytest.mark.parametrize("p", [0, -1, 101])
def test_percentile_rejects_out_of_range(p: float) -> None:
    """p outside (0, 100] is a programming error."""
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], p)


def _run(**kwargs: object) -> RunData:
    base: dict[str, object] = {
        "scheduler": "berth",
        "run": 1,
        "pods": 4,
        "created_at": {"a": 0.0, "b": 0.5, "c": 1.0, "d": 1.0},
        "bound_at": {"a": 1.0, "b": 1.5, "c": 4.0},
        "node_of": {"a": "n1", "b": "n2", "c": "n1"},
        "unschedulable": {"d"},
        "ended_s": 9.0,
        "scheduler_cpu_s": 1.23456,
        "scheduler_max_rss_mb": 100.0,
        "apiserver_cpu_s": 2.0,
    }
    base.update(kwargs)
    return RunData(**base)  # type: ignore[arg-type]


def test_summarize_computes_every_field() -> None:
    """Throughput is bound / (last bind - first create); latency is bind - create per pod."""
    result = summarize(_run())
    assert result == Result(
        scheduler="berth",
        throughput_pods_per_s=0.75,  # 3 bound by t=4.0
        latency_ms=Latency(p50=1000.0, p90=3000.0, p99=3000.0),
        bound=3,
        unschedulable=1,
        duration_s=4.0,
        scheduler_cpu_s=1.235,
        scheduler_max_rss_mb=100.0,
        apiserver_cpu_s=2.0,
    )


def test_result_has_exactly_the_issue_fields() -> None:
    """bench.json's per-scheduler fields are the ones issue 4 names, in that order."""
    assert RESULT_FIELDS == (
        "scheduler",
        "throughput_pods_per_s",
        "latency_ms",
        "bound",
        "unschedulable",
        "duration_s",
        "scheduler_cpu_s",
        "scheduler_max_rss_mb",
        "apiserver_cpu_s",
    )
    assert LATENCY_FIELDS == ("p50", "p90", "p99")
    assert tuple(summarize(_run())) == RESULT_FIELDS


@pytest.mark.parametrize(
    ("kwargs", "field", "expected"),
    [
        pytest.param(
            {"bound_at": {}, "node_of": {}}, "throughput_pods_per_s", 0.0, id="nothing-bound"
        ),
        pytest.param({"bound_at": {}, "node_of": {}}, "duration_s", 9.0, id="duration-to-end"),
        pytest.param(
            {"unschedulable": {"a", "d"}}, "unschedulable", 1, id="bound-later-is-not-unsched"
        ),
        pytest.param({"scheduler_cpu_s": None}, "scheduler_cpu_s", None, id="cpu-unknown"),
    ],
)
def test_summarize_edges(kwargs: dict[str, object], field: str, expected: object) -> None:
    """No binds, pods reported unschedulable and bound afterwards, unknown CPU."""
    assert summarize(_run(**kwargs))[field] == expected  # type: ignore[literal-required]


def test_summarize_clamps_latency_when_the_bind_is_seen_first() -> None:
    """A bind seen before the create answer (observer lag) counts as 0 ms, never negative."""
    run = _run(created_at={"a": 2.0}, bound_at={"a": 1.0}, node_of={"a": "n"}, unschedulable=set())
    assert summarize(run)["latency_ms"]["p50"] == 0.0


def test_aggregate_takes_medians() -> None:
    """Over three runs: the median of each number; None anywhere gives None."""
    results = [
        summarize(_run(scheduler_cpu_s=c, bound_at={"a": t}, node_of={"a": "n"}))
        for c, t in ((1.0, 1.0), (3.0, 2.0), (2.0, 4.0))
    ]
    merged = aggregate(results)
    assert merged["scheduler_cpu_s"] == 2.0
    assert merged["duration_s"] == 2.0
    assert merged["latency_ms"]["p50"] == 2000.0
    assert merged["bound"] == 1
    results[0]["apiserver_cpu_s"] = None
    assert aggregate(results)["apiserver_cpu_s"] is None


def test_aggregate_refuses_mixed_schedulers() -> None:
    """Medians across different schedulers would mean nothing."""
    with pytest.raises(ValueError, match="different schedulers"):
        aggregate([summarize(_run()), summarize(_run(scheduler="null"))])


def test_run_data_round_trips_through_json() -> None:
    """The raw record written to DIR/runs/ reads back equal."""
    run = _run(etcd_cpu_s=0.5, bench_cpu_s=1.5)
    assert RunData.from_json(run.to_json()) == run


def test_bound_curve_counts_binds_in_time_order() -> None:
    """The plot's x are bind times, sorted; y counts up to the bound pods."""
    assert _run().bound_curve() == ([1.0, 1.5, 4.0], [1, 2, 3])


def test_overcommitted_finds_the_resource_over() -> None:
    """41 pods of 100m on a 4-CPU node exceed its CPU; 40 do not."""
    w = basic()
    nodes = w.nodes(2)
    pods = w.pods(41, "berth")
    assert (
        overcommitted(nodes, pods[:40], {p["metadata"]["name"]: "node-00001" for p in pods[:40]})
        == {}
    )
    over = overcommitted(nodes, pods, {p["metadata"]["name"]: "node-00001" for p in pods})
    assert over == {"node-00001": ["cpu"]}


def test_overcommitted_counts_unknown_nodes_and_pod_slots() -> None:
    """A pod on a node that is not in the list is over on everything it asks for."""
    w = mixed()
    pods = w.pods(1, "berth")
    over = overcommitted(w.nodes(1), pods, {"pod-000001": "elsewhere"})
    assert over == {"elsewhere": ["cpu", "memory", "pods"]}


STAT = (
    "12345 (kube apiserver) S 1 12345 12345 0 -1 4194560 1000 0 0 0 "
    "250 150 0 0 20 0 12 0 100 1000000 5000 18446744073709551615"
)
STATUS = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t  123904 kB\nVmRSS:\t  100000 kB\n"


def test_parse_stat_reads_utime_and_stime_after_the_name() -> None:
    """Fields 14 and 15, counted after the parenthesised name (which may hold spaces)."""
    times = procstat.parse_stat(STAT, ticks=100)
    assert (times.user_s, times.system_s, times.total_s) == (2.5, 1.5, 4.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(STATUS, 121.0, id="vmhwm-in-mib"),
        pytest.param("Name:\tzombie\nState:\tZ (zombie)\n", None, id="zombie-has-none"),
    ],
)
def test_parse_vm_hwm(text: str, expected: float | None) -> None:
    """VmHWM is the peak RSS in kB; a zombie has no memory lines."""
    assert procstat.parse_vm_hwm_mb(text) == expected


def test_parse_machine_busy_sums_the_busy_columns() -> None:
    """user + nice + system + irq + softirq + steal; idle and iowait are not busy."""
    text = "cpu  100 10 50 9000 300 5 5 30 0 0\ncpu0 50 5 25 4500 150 2 3 15 0 0\n"
    assert procstat.parse_machine_busy(text, ticks=100) == 2.0
    with pytest.raises(ValueError, match="cpu line"):
        procstat.parse_machine_busy("intr 1 2 3\n")


def test_proc_readers_on_this_process_and_a_missing_one() -> None:
    """Our own process has CPU time and a peak RSS; a pid that does not exist has neither."""
    import os

    assert (procstat.cpu_seconds(os.getpid()) or 0) > 0
    assert (procstat.max_rss_mb(os.getpid()) or 0) > 1
    assert procstat.cpu_seconds(2**22 + 7) is None
    assert procstat.max_rss_mb(2**22 + 7) is None
    assert (procstat.machine_busy_seconds() or 0) > 0
