"""The `gang` benchmark workload and its figures: jobs and their PodGroups, pod sizes that ask
for more than the nodes hold, what the run needs of the cluster, when a run of gangs is over,
and the gang numbers in bench.json, report.md and bench.png (pure, no API server)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scheduler.bench import processes, report, runner, workloads
from scheduler.bench.runner import Tracker
from scheduler.bench.stats import (
    GANG_FIELDS,
    RESULT_FIELDS,
    RunData,
    aggregate,
    overcommitted,
    summarize,
)
from scheduler.kube.discovery import ServerInfo
from scheduler.model import compile_node, compile_pod
from tests.conformance.gangs import partially_bound

JSON = dict[str, Any]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _sized(nodes: int, pods: int) -> workloads.Workload:
    return workloads.get("gang").for_size(nodes, pods)


# --- the workload ---------------------------------------------------------------------------


def test_jobs_cycle_through_the_sizes_and_the_last_takes_what_is_left() -> None:
    """Jobs of 8, 16, 32, 64 in turn, consecutive pods each; 130 pods: 8+16+32+64, then 8, 2."""
    jobs = workloads.get("gang").jobs(130)
    assert [(j.name, j.first, j.size) for j in jobs] == [
        ("gang-00001", 1, 8),
        ("gang-00002", 9, 16),
        ("gang-00003", 25, 32),
        ("gang-00004", 57, 64),
        ("gang-00005", 121, 8),
        ("gang-00006", 129, 2),
    ]
    assert sum(j.size for j in jobs) == 130
    assert workloads.get("gang").jobs(0) == []
    assert workloads.get("basic").jobs(130) == []


def test_pods_name_their_job_and_podgroups_ask_for_the_whole_job() -> None:
    """Each pod's spec.schedulingGroup names its job's PodGroup, a v1beta1 gang with minCount =
    the job's size; the other workloads' pods name none."""
    w = _sized(20, 104)
    pods = w.pods(104, "default-scheduler")
    per_group = Counter(p["spec"]["schedulingGroup"]["podGroupName"] for p in pods)
    groups = w.pod_groups(104)
    assert [g["metadata"]["name"] for g in groups] == list(per_group)
    for group in groups:
        assert group["apiVersion"] == "scheduling.k8s.io/v1beta1"
        assert group["kind"] == "PodGroup"
        assert "namespace" not in group["metadata"]
        min_count = group["spec"]["schedulingPolicy"]["gang"]["minCount"]
        assert min_count == per_group[group["metadata"]["name"]]
    assert [g["spec"]["schedulingPolicy"]["gang"]["minCount"] for g in groups] == [8, 16, 32, 48]
    assert pods[0]["spec"]["schedulingGroup"] == {"podGroupName": "gang-00001"}
    assert pods[8]["spec"]["schedulingGroup"] == {"podGroupName": "gang-00002"}
    for pod in pods:
        info = compile_pod({**pod, "metadata": {**pod["metadata"], "uid": "u", "namespace": "b"}})
        assert info.scheduler_name == "default-scheduler"
    assert "schedulingGroup" not in workloads.get("basic").pods(1, "x")[0]["spec"]


@pytest.mark.parametrize(
    ("nodes", "pods", "per_node"),
    [
        pytest.param(500, 2000, 3, id="500-nodes-2000-pods"),
        pytest.param(5000, 13000, 2, id="5000-nodes-13000-pods"),
        pytest.param(5000, 26000, 4, id="5000-nodes-26000-pods"),
        pytest.param(5000, 10000, 1, id="5000-nodes-10000-pods"),
        pytest.param(20, 104, 4, id="e2e-size"),
        pytest.param(100, 10, 1, id="few-pods-one-per-node"),
        pytest.param(10, 100000, 40, id="many-pods-upstream-default-size"),
    ],
)
def test_pods_per_node_gives_about_1_3x_demand(nodes: int, pods: int, per_node: int) -> None:
    """k = floor(pods / (1.3 x nodes)) pods a node, 1 to 40: the demand is at least 1.3x when
    there are pods enough (1.3 a node, and 100m pods do not fill the nodes' CPU)."""
    assert workloads.gang_pods_per_node(nodes, pods) == per_node
    if workloads.GANG_DEMAND * nodes <= pods and per_node < workloads.MAX_PER_NODE:
        assert pods / (per_node * nodes) >= workloads.GANG_DEMAND


@pytest.mark.parametrize(
    ("nodes", "pods", "cpu", "demand"),
    [
        pytest.param(500, 2000, 1333, "1.33x", id="500-nodes-2000-pods"),
        pytest.param(5000, 13000, 2000, "1.30x", id="5000-nodes-13000-pods"),
        pytest.param(20, 104, 1000, "1.30x", id="e2e-size"),
    ],
)
def test_sized_pods_fill_k_per_node_and_ask_for_more_than_the_nodes_hold(
    nodes: int, pods: int, cpu: int, demand: str
) -> None:
    """Exactly k pods fit a node (k + 1 do not), so the nodes hold k x nodes pods, fewer than
    the pods; the description says the size and the demand; pods are never smaller than
    upstream's default (100m, 500Mi)."""
    w = _sized(nodes, pods)
    per_node = workloads.gang_pods_per_node(nodes, pods)
    node = compile_node(w.nodes(1)[0])
    pod = compile_pod({**w.pods(1, "x")[0], "metadata": {"name": "p", "uid": "u"}})
    assert pod.requests["cpu"] == cpu >= 100
    assert pod.requests["memory"] == 500 * 2**20
    assert per_node * cpu <= node.allocatable["cpu"] < (per_node + 1) * cpu
    assert per_node * pod.requests["memory"] <= node.allocatable["memory"]
    assert per_node * nodes < pods
    assert f"{cpu}m CPU" in w.description and f"demand {demand}" in w.description
    node_objs = w.nodes(3)
    placement = {
        f"pod-{i:06d}": f"node-0000{1 + (i - 1) // per_node}" for i in range(1, 3 * per_node + 1)
    }
    assert overcommitted(node_objs, w.pods(3 * per_node, "x"), placement) == {}


def test_unsized_gang_uses_upstream_default_pods_and_others_ignore_the_size() -> None:
    """Before for_size the gang pods are upstream's default pod; for_size is the identity for
    the other workloads."""
    pod = workloads.get("gang").pods(1, "x")[0]
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "100m",
        "memory": "500Mi",
    }
    basic = workloads.get("basic")
    assert basic.for_size(500, 2000) is basic


def test_gang_declares_its_api_and_gate() -> None:
    """gang needs scheduling.k8s.io/v1beta1 and runs kube-scheduler with GenericWorkload on;
    the other workloads need nothing."""
    w = workloads.get("gang")
    assert w.apis == ("scheduling.k8s.io/v1beta1",)
    assert dict(w.feature_gates) == {"GenericWorkload": True}
    assert processes.gate_args(dict(w.feature_gates)) == ["--feature-gates=GenericWorkload=true"]
    assert processes.gate_args({}) == []
    assert not workloads.get("mixed").apis and not workloads.get("mixed").feature_gates


def _server(*group_versions: str) -> ServerInfo:
    return ServerInfo("v1.36.3", 1, 36, frozenset({"v1", "apps/v1", *group_versions}))


@pytest.mark.parametrize(
    ("server", "missing"),
    [
        pytest.param(_server(), ["scheduling.k8s.io/v1beta1"], id="v1.36-no-podgroups"),
        pytest.param(_server("scheduling.k8s.io/v1"), ["scheduling.k8s.io/v1beta1"], id="v1-only"),
        pytest.param(_server("scheduling.k8s.io/v1beta1"), [], id="v1.37-generic-workload"),
    ],
)
def test_missing_apis(server: ServerInfo, missing: list[str]) -> None:
    """The run refuses a server that does not serve the PodGroup API (v1.35, v1.36, or v1.37
    without GenericWorkload); the other workloads run anywhere."""
    assert runner.missing_apis(workloads.get("gang"), server) == missing
    assert runner.missing_apis(workloads.get("basic"), server) == []


async def test_in_memory_gang_places_whole_gangs_only() -> None:
    """The in-memory engine gets the PodGroups the informer would feed it: with more demand
    than room some gangs are placed whole, the rest not at all, none in part."""
    from scheduler.bench import inmemory

    result = await inmemory.run_once(workloads.get("gang"), 20, 260, timeout=120)
    assert result.groups == len(workloads.get("gang").jobs(260))
    assert 0 < result.groups_placed < result.groups
    assert result.partially_bound == 0
    assert result.bound + result.unschedulable == 260


# --- when a run of gangs is over ----------------------------------------------------------


def _pod(name: str, node: str = "", scheduled: str | None = None) -> JSON:
    status: JSON = {}
    if scheduled is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": scheduled}]
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": node} if node else {},
        "status": status,
    }


def _gang_tracker(clock: FakeClock) -> Tracker:
    """Two gangs: g1 = a, b (minCount 2); g2 = c, d, e (minCount 3)."""
    tracker = Tracker(
        clock,
        group_of={"a": "g1", "b": "g1", "c": "g2", "d": "g2", "e": "g2"},
        min_count={"g1": 2, "g2": 3},
    )
    tracker.start()
    return tracker


def test_tracker_counts_groups_placed() -> None:
    """A group is placed at its minCount-th bind; more binds of it count nothing."""
    tracker = _gang_tracker(FakeClock())
    tracker.on_pod("MODIFIED", _pod("a", "n1"), None)
    assert tracker.groups_placed == 0
    tracker.on_pod("MODIFIED", _pod("b", "n1"), None)
    tracker.on_pod("MODIFIED", _pod("b", "n2"), None)  # the first bind counts
    assert tracker.groups_placed == 1


def test_gang_run_is_not_over_when_every_pod_was_reported() -> None:
    """Every pod bound or reported unschedulable ends a run without gangs, not one with gangs:
    a gang member reported unschedulable may yet be placed with its group. It ends when no pod
    was bound for the quiet time after every pod was created, or when every pod is bound."""
    clock = FakeClock()
    tracker = _gang_tracker(clock)
    for name in "ab":
        tracker.on_pod("MODIFIED", _pod(name, "n1"), None)
    for name in "cde":
        tracker.on_pod("MODIFIED", _pod(name, scheduled="False"), None)
    created_all = clock.now
    assert tracker.settled(5)
    assert tracker.done(5, created_all, quiet=10) is None
    clock.now += 9
    assert tracker.done(5, created_all, quiet=10) is None
    tracker.on_pod("MODIFIED", _pod("c", "n2"), None)  # a bind restarts the quiet time
    clock.now += 9
    assert tracker.done(5, created_all, quiet=10) is None
    clock.now += 2
    assert tracker.done(5, created_all, quiet=10) == "no bind for 10s after every pod was created"
    for name in "de":
        tracker.on_pod("MODIFIED", _pod(name, "n2"), None)
    assert tracker.done(5, created_all, quiet=10) == "all pods bound"


def test_quiet_time_counts_from_the_last_create() -> None:
    """Binds before the last pod was created do not shorten the quiet time."""
    clock = FakeClock()
    tracker = _gang_tracker(clock)
    tracker.on_pod("MODIFIED", _pod("a", "n1"), None)
    clock.now += 20
    created_all = clock.now
    clock.now += 5
    assert tracker.done(5, created_all, quiet=10) is None


def test_run_without_gangs_ends_when_settled() -> None:
    """Without gangs the rule is unchanged: every pod bound or reported unschedulable."""
    tracker = Tracker(FakeClock())
    tracker.start()
    tracker.on_pod("MODIFIED", _pod("a", "n1"), None)
    assert tracker.done(2, 0.0, quiet=10) is None
    tracker.on_pod("MODIFIED", _pod("b", scheduled="False"), None)
    assert tracker.done(2, 0.0, quiet=10) == "all pods bound or unschedulable"


# --- the figures ----------------------------------------------------------------------------


def _gang_run(scheduler: str = "kube-scheduler", partial: list[str] | None = None) -> RunData:
    """g1 (a, b; minCount 2) complete at 3.0, quorum at 1.0; g2 (c, d, e; minCount 3) complete
    at 4.0, quorum at 2.0; g3 (f, g; minCount 2) has one member bound; g4 (h) none."""
    created = {"a": 0.5, "b": 1.0, "c": 0.5, "d": 1.0, "e": 2.0, "f": 2.0, "g": 2.0, "h": 2.0}
    bound = {"a": 3.0, "b": 2.5, "c": 3.5, "d": 4.0, "e": 3.0, "f": 5.0}
    return RunData(
        scheduler=scheduler,
        run=1,
        pods=8,
        created_at=created,
        bound_at=bound,
        node_of=dict.fromkeys(bound, "node-00001"),
        unschedulable={"g", "h"},
        ended_s=20.0,
        min_count={"g1": 2, "g2": 3, "g3": 2, "g4": 1},
        group_of={
            "a": "g1",
            "b": "g1",
            "c": "g2",
            "d": "g2",
            "e": "g2",
            "f": "g3",
            "g": "g3",
            "h": "g4",
        },
        partially_bound=partial if partial is not None else ["PodGroup bench/g3: 1 of 2"],
    )


def test_gang_figures() -> None:
    """Groups placed, groups/s up to the last group's minCount-th bind, quorum-to-bound per
    placed group (minCount-th create to minCount-th bind), and the checker's partial groups."""
    result = summarize(_gang_run())
    assert tuple(result) == (*RESULT_FIELDS, "gangs")
    gangs = result["gangs"]
    assert tuple(gangs) == GANG_FIELDS
    assert gangs == {
        "groups": 4,
        "groups_placed": 2,
        "groups_per_s": 0.5,  # 2 groups by t=4.0
        "quorum_to_bound_ms": {"p50": 2000.0, "p90": 2000.0, "p99": 2000.0},
        "partially_bound": 1,
    }
    assert result["throughput_pods_per_s"] == 1.2  # 6 pods by t=5.0
    assert _gang_run().group_curve() == ([3.0, 4.0], [1, 2])
    assert "gangs" not in summarize(RunData("berth", 1, 0))


def test_gang_run_round_trips_and_aggregates() -> None:
    """The raw record keeps the groups; medians over repeats, but the worst partial count."""
    run = _gang_run()
    assert RunData.from_json(run.to_json()) == run
    assert "min_count" not in RunData("berth", 1, 0).to_json()
    merged = aggregate([summarize(_gang_run(partial=[])), summarize(run), summarize(run)])
    assert merged["gangs"]["partially_bound"] == 1
    assert merged["gangs"]["groups_placed"] == 2


def test_bench_figure_is_the_checkers() -> None:
    """The bench's partial count comes from the conformance checker over the API's objects:
    the workload's PodGroups and pods with g3's first member bound are one partial group."""
    w = _sized(20, 104)
    groups = w.pod_groups(104)
    pods = w.pods(104, "x")
    for obj in (*groups, *pods):
        obj["metadata"]["namespace"] = "bench"
    pods[0]["spec"]["nodeName"] = "node-00001"
    (message,) = partially_bound(groups, pods)
    assert message.startswith("PodGroup bench/gang-00001 (scheduling.k8s.io): 1 of its 8")
    for pod in pods[1:8]:
        pod["spec"]["nodeName"] = "node-00002"
    assert partially_bound(groups, pods) == []


META = report.Meta(
    workload="gang",
    nodes=20,
    pods=8,
    qps=5000.0,
    repeat=1,
    feature_gates=(("GenericWorkload", True),),
)
ENV = {"cpus": 2, "python": "3.11.0", "platform": "linux", "date": "2025-01-01T00:00:00Z"}


def test_report_has_the_gang_table_and_the_partial_groups(tmp_path: Path) -> None:
    """report.md: a row per scheduler with the gang figures, the partial groups named, the
    definitions, and the gate the workload set; bench.json carries `gangs`; the PNG renders."""
    kube = _gang_run("kube-scheduler", partial=[])
    kube.scheduler_version = "v1.37.2"
    kube.feature_gates = {"GenericWorkload": True}
    runs = [_gang_run("berth"), kube]
    markdown = report.render_markdown(META, report.results_by_scheduler(runs), ENV, runs)
    assert "| berth | 2 | 4 | 0.50 | 1.2 | 2,000.0 | 2,000.0 | 2,000.0 | **1** |" in markdown
    assert "| kube-scheduler | 2 | 4 | 0.50 | 1.2 | 2,000.0 | 2,000.0 | 2,000.0 | 0 |" in markdown
    assert "- berth run 1: PodGroup bench/g3: 1 of 2" in markdown
    assert "partially bound: groups with 0 < bound members < minCount" in markdown
    assert (
        "kube-scheduler v1.37.2, feature gates (the defaults, with GenericWorkload=true for "
        "this workload): GenericWorkload on." in markdown
    )
    results = report.write_all(tmp_path, META, runs)
    assert results[1]["gangs"]["partially_bound"] == 0
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "Gangs" not in report.render_markdown(
        report.Meta("basic", 1, 1, 5000.0, 1), report.results_by_scheduler([RunData("x", 1, 1)])
    )
