"""The `devices` and `statefulset` benchmark workloads and their figures: the objects they
claim from, the claim checker (no device given twice, no volume on another node), the claim
numbers in bench.json and report.md, and a run that bound nothing (pure, no API server)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scheduler.bench import claimcheck, command, report, runner, workloads
from scheduler.bench.stats import CLAIM_FIELDS, RESULT_FIELDS, RunData, aggregate, summarize
from scheduler.harness import fakedra, storage
from scheduler.harness.nodes import HOSTNAME
from scheduler.kube.discovery import ServerInfo
from scheduler.model import compile_pod

JSON = dict[str, Any]


# --- devices: the workload ------------------------------------------------------------------


def test_devices_mix_claims_one_to_eight_gpus_through_one_template_per_count() -> None:
    """Every count 1..8 appears, 2.8 GPUs a pod on average over the 20 slots, each pod naming
    the template of its count, and there is one template per count asking for that many."""
    w = workloads.get("devices")
    pods = w.pods(20, "berth")
    counts = [w.group_of(i).gpus for i in range(1, 21)]
    assert Counter(counts) == {1: 8, 2: 4, 3: 2, 4: 2, 5: 1, 6: 1, 7: 1, 8: 1}
    assert sum(counts) == 56
    for pod, count in zip(pods, counts, strict=True):
        assert pod["spec"]["resourceClaims"] == [
            {"name": "gpu", "resourceClaimTemplateName": f"gpus-{count}"}
        ]
        assert pod["spec"]["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
    templates = w.claim_templates()
    assert [t["metadata"]["name"] for t in templates] == [f"gpus-{n}" for n in range(1, 9)]
    for n, template in enumerate(templates, start=1):
        assert template == fakedra.claim_template(f"gpus-{n}", count=n)


def test_devices_needs_dra_a_device_class_and_a_control_plane() -> None:
    """resource.k8s.io/v1 is required, fakedra's class is created, eight GPUs a node, and the
    workload has no in-memory form (the claims come from kube-controller-manager)."""
    w = workloads.get("devices")
    assert w.apis == ("resource.k8s.io/v1",)
    assert w.device_classes() == [fakedra.device_class()]
    assert w.gpus_per_node == 8
    assert (w.claims, w.needs_control_plane) == ("devices", True)
    assert w.storage_classes() == [] and w.volume_claims(10) == []
    assert (workloads.get("basic").claims, workloads.get("basic").needs_control_plane) == (
        "",
        False,
    )


@pytest.mark.parametrize(
    ("nodes", "pods", "text"),
    [
        pytest.param(20, 60, "168 GPUs asked for, 160 on the nodes (1.05x)", id="20-nodes-60-pods"),
        pytest.param(100, 200, "560 GPUs asked for, 800 on the nodes (0.70x)", id="room-to-spare"),
    ],
)
def test_sized_devices_says_the_demand(nodes: int, pods: int, text: str) -> None:
    """Sized, the description compares the GPUs asked for with the GPUs on the nodes."""
    w = workloads.get("devices").for_size(nodes, pods)
    assert text in w.description
    assert w.for_size(nodes, pods).description == w.description


def test_device_pods_compile() -> None:
    """berth's model compiles the pods with their claims."""
    for pod in workloads.get("devices").pods(20, "berth"):
        info = compile_pod({**pod, "metadata": {**pod["metadata"], "uid": "u"}})
        assert info.scheduler_name == "berth"


# --- statefulset: the workload --------------------------------------------------------------


def test_statefulset_pods_mount_a_claim_of_their_own() -> None:
    """Each pod mounts data-<pod>; the claims are 1Gi ReadWriteOnce of the bench class, which
    waits for the first consumer and has no provisioner."""
    w = workloads.get("statefulset")
    pods = w.pods(3, "berth")
    assert [p["spec"]["volumes"] for p in pods] == [
        [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-pod-00000{i}"}}]
        for i in (1, 2, 3)
    ]
    claims = w.volume_claims(3)
    assert claims == [
        storage.claim(f"data-pod-00000{i}", workloads.STORAGE_CLASS, "1Gi") for i in (1, 2, 3)
    ]
    (klass,) = w.storage_classes()
    assert klass["provisioner"] == storage.NO_PROVISIONER
    assert klass["volumeBindingMode"] == storage.WAIT_FOR_FIRST_CONSUMER
    assert (w.claims, w.needs_control_plane, w.apis) == ("volumes", True, ())


@pytest.mark.parametrize(
    ("nodes", "pods", "per_node"),
    [
        pytest.param(20, 60, 4, id="3.75-rounded-up"),
        pytest.param(10, 40, 5, id="exactly-5"),
        pytest.param(500, 100, 1, id="fewer-pods-than-nodes"),
        pytest.param(20, 0, 0, id="no-pods"),
    ],
)
def test_static_volumes_cover_every_claim_with_a_quarter_spare(
    nodes: int, pods: int, per_node: int
) -> None:
    """ceil(1.25 x pods / nodes) PVs a node, each pinned to its node by hostname, of the
    claims' size, named after the run's namespace and unique."""
    w = workloads.get("statefulset")
    names = [f"node-{i:05d}" for i in range(1, nodes + 1)]
    volumes = w.local_volumes(names, pods, "bench")
    assert w.volumes_per_node(nodes, pods) == per_node
    assert len(volumes) == per_node * nodes >= pods
    assert len({v["metadata"]["name"] for v in volumes}) == len(volumes)
    assert Counter(storage.volume_hostnames(v)[0] for v in volumes) == dict.fromkeys(
        names if per_node else [], per_node
    )
    if volumes:
        assert volumes[0]["metadata"]["name"] == "bench-node-00001-1"
        assert volumes[0]["spec"]["capacity"] == {"storage": "1Gi"}
        assert volumes[0]["spec"]["storageClassName"] == workloads.STORAGE_CLASS


def test_in_memory_refuses_workloads_with_claims(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--in-memory has no controllers to make claims or bind volumes: exit 2, saying so."""
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    for name in ("devices", "statefulset"):
        args = parser.parse_args(["--in-memory", "--workload", name, "--out", str(tmp_path)])
        assert command.main(args) == 2
        assert "no --in-memory form" in capsys.readouterr().err


def test_missing_dra_is_named_with_what_to_do() -> None:
    """A server without resource.k8s.io/v1 cannot run `devices`."""
    server = ServerInfo("v1.37.2", 1, 37, frozenset({"v1", "apps/v1"}))
    assert runner.missing_apis(workloads.get("devices"), server) == ["resource.k8s.io/v1"]
    assert "GA" in runner.API_HINTS["resource.k8s.io/v1"]


# --- the claim checker: devices -------------------------------------------------------------


def _slice(node: str, count: int = 2) -> JSON:
    return fakedra.gpu_slice(node, count=count)


def _claim(name: str, *devices: tuple[str, str], reserved: tuple[str, ...] = ()) -> JSON:
    """A ResourceClaim in ns allocated (pool, device) of fakedra's driver, reserved for the
    pods with the given uids."""
    status: JSON = {}
    if devices:
        status["allocation"] = {
            "devices": {
                "results": [
                    {"request": "gpu", "driver": fakedra.DRIVER, "pool": p, "device": d}
                    for p, d in devices
                ]
            }
        }
    if reserved:
        status["reservedFor"] = [{"resource": "pods", "name": u, "uid": u} for u in reserved]
    return {"metadata": {"namespace": "ns", "name": name}, "status": status}


def _dra_pod(name: str, node: str, claim: str | None) -> JSON:
    """A pod of ns with a claim from a template, made as `claim` (None: not made yet)."""
    pod: JSON = {
        "metadata": {"namespace": "ns", "name": name, "uid": name},
        "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "gpus-1"}]},
        "status": {},
    }
    if node:
        pod["spec"]["nodeName"] = node
    if claim:
        pod["status"]["resourceClaimStatuses"] = [{"name": "gpu", "resourceClaimName": claim}]
    return pod


@pytest.mark.parametrize(
    ("claims", "pods", "satisfied", "violations"),
    [
        pytest.param(
            [_claim("a", ("n1", "gpu-0"), reserved=("p1",)), _claim("b", ("n2", "gpu-1"))],
            [_dra_pod("p1", "n1", "a"), _dra_pod("p2", "", "b")],
            2,
            [],
            id="all well; an unbound pod is not judged",
        ),
        pytest.param(
            [
                _claim("a", ("n1", "gpu-0"), reserved=("p1",)),
                _claim("b", ("n1", "gpu-0"), reserved=("p2",)),
            ],
            [_dra_pod("p1", "n1", "a"), _dra_pod("p2", "n1", "b")],
            2,
            ["device gpu.example.com/n1/gpu-0 allocated 2 times: ns/a, ns/b"],
            id="one device to two claims",
        ),
        pytest.param(
            [_claim("a", ("n2", "gpu-0"), reserved=("p1",))],
            [_dra_pod("p1", "n1", "a")],
            1,
            [
                "pod ns/p1 bound to n1; its claim ns/a holds devices of another node: "
                "gpu.example.com/n2/gpu-0"
            ],
            id="device of another node",
        ),
        pytest.param(
            [_claim("a"), _claim("b", ("n1", "gpu-1"))],
            [_dra_pod("p1", "n1", "a"), _dra_pod("p2", "n1", None), _dra_pod("p3", "n1", "b")],
            1,
            [
                "pod ns/p1 bound to n1; its claim ns/a is not allocated",
                "pod ns/p2 bound to n1 without its claim 'gpu'",
                "pod ns/p3 bound; its claim ns/b is not reserved for it",
            ],
            id="bound without allocation, claim or reservation (the null binder)",
        ),
        pytest.param(
            [_claim("a", ("n1", "gpu-7"), reserved=("p1",))],
            [_dra_pod("p1", "n1", "a")],
            1,
            ["claim ns/a: gpu.example.com/n1/gpu-7 is published by no slice"],
            id="invented device",
        ),
    ],
)
def test_device_check(
    claims: list[JSON], pods: list[JSON], satisfied: int, violations: list[str]
) -> None:
    """claimcheck.devices over slices of two GPUs on n1 and n2."""
    got = claimcheck.devices([_slice("n1"), _slice("n2")], claims, pods)
    assert (got.claims, got.satisfied, got.violations) == (len(claims), satisfied, violations)


def test_admin_access_may_share_a_device() -> None:
    """A result with adminAccess does not count as the device given twice."""
    admin = _claim("b", ("n1", "gpu-0"))
    admin["status"]["allocation"]["devices"]["results"][0]["adminAccess"] = True
    got = claimcheck.devices([_slice("n1")], [_claim("a", ("n1", "gpu-0")), admin], [])
    assert got.violations == []


# --- the claim checker: volumes -------------------------------------------------------------


def _pvc(name: str, volume: str = "", uid: str = "") -> JSON:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": uid or f"uid-{name}"},
        "spec": {"volumeName": volume} if volume else {},
    }


def _pv(name: str, node: str, claim: str = "") -> JSON:
    pv = storage.local_volume(name, node, "bench-local")
    if claim:
        pv["spec"]["claimRef"] = {"namespace": "ns", "name": claim, "uid": f"uid-{claim}"}
    return pv


def _volume_pod(name: str, node: str, claim: str) -> JSON:
    return {
        "metadata": {"namespace": "ns", "name": name},
        "spec": {
            "nodeName": node,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


NODES = [{"metadata": {"name": n, "labels": {HOSTNAME: n}}} for n in ("n1", "n2")]


@pytest.mark.parametrize(
    ("pvs", "claims", "pods", "satisfied", "violations"),
    [
        pytest.param(
            [_pv("v1", "n1", "c1"), _pv("v2", "n2")],
            [_pvc("c1", "v1"), _pvc("c2")],
            [_volume_pod("p1", "n1", "c1"), _volume_pod("p2", "", "c2")],
            1,
            [],
            id="all well; an unbound pod is not judged",
        ),
        pytest.param(
            [_pv("v1", "n2", "c1")],
            [_pvc("c1", "v1")],
            [_volume_pod("p1", "n1", "c1")],
            1,
            ["pod ns/p1 bound to n1; its volume v1 is on n2"],
            id="volume on another node",
        ),
        pytest.param(
            [_pv("v1", "n1", "c1")],
            [_pvc("c1", "v1"), _pvc("c2", "v1")],
            [],
            2,
            [
                "claim ns/c2 names volume v1, whose claimRef is ns/c1",
                "volume v1 bound to 2 claims: ns/c1, ns/c2",
            ],
            id="one volume to two claims",
        ),
        pytest.param(
            [],
            [_pvc("c1")],
            [_volume_pod("p1", "n1", "c1"), _volume_pod("p2", "n1", "c2")],
            0,
            [
                "pod ns/p1 bound to n1; its claim ns/c1 is not bound",
                "pod ns/p2 bound to n1; its claim ns/c2 does not exist",
            ],
            id="bound without a volume (the null binder)",
        ),
    ],
)
def test_volume_check(
    pvs: list[JSON], claims: list[JSON], pods: list[JSON], satisfied: int, violations: list[str]
) -> None:
    """claimcheck.volumes over nodes n1 and n2 (hostname = name)."""
    got = claimcheck.volumes(pvs, claims, pods, NODES)
    assert (got.claims, got.satisfied, got.violations) == (len(claims), satisfied, violations)


# --- figures and report ---------------------------------------------------------------------


def _run(scheduler: str, bound: int, violations: list[str], kind: str = "devices") -> RunData:
    names = [f"pod-{i:06d}" for i in range(1, 11)]
    return RunData(
        scheduler=scheduler,
        run=1,
        pods=10,
        created_at=dict.fromkeys(names, 0.0),
        bound_at={n: 1.0 + i for i, n in enumerate(names[:bound])},
        node_of=dict.fromkeys(names[:bound], "node-00001"),
        unschedulable=set(names[bound:]),
        ended_s=12.0,
        claim_kind=kind,
        claims=10,
        claims_satisfied=bound,
        claim_violations=violations,
    )


def test_claim_figures_round_trip_and_aggregate() -> None:
    """summarize adds `claims`; RunData keeps them through JSON; the worst run's violations
    count over repeats."""
    run = _run("kube-scheduler", 6, [])
    result = summarize(run)
    assert tuple(result) == (*RESULT_FIELDS, "claims")
    assert tuple(result["claims"]) == CLAIM_FIELDS
    assert result["claims"] == {"kind": "devices", "claims": 10, "satisfied": 6, "violations": 0}
    assert RunData.from_json(run.to_json()) == run
    worse = summarize(_run("kube-scheduler", 6, ["x", "y"]))
    assert aggregate([result, worse, result])["claims"]["violations"] == 2
    assert "claims" not in summarize(RunData(scheduler="null", run=1, pods=1))


def test_report_of_a_scheduler_that_bound_nothing(tmp_path: Path) -> None:
    """berth before its DRA allocator: nothing bound, every pod reported unschedulable; the
    report still has every table, with dashes for the figures that need a bind, and a PNG."""
    meta = report.Meta(workload="devices", nodes=20, pods=10, qps=5000.0, repeat=1)
    runs = [_run("berth", 0, []), _run("kube-scheduler", 6, [])]
    results = report.write_all(tmp_path, meta, runs)
    berth = results[0]
    assert (berth["bound"], berth["throughput_pods_per_s"], berth["unschedulable"]) == (0, 0.0, 10)
    assert berth["latency_ms"] == {"p50": None, "p90": None, "p99": None}
    text = (tmp_path / "report.md").read_text()
    assert "| berth | 0.0 | — | — | — | 0 | 10 |" in text
    assert "| scheduler | pods bound | claims | allocated | violations |" in text
    assert "| berth | 0 | 10 | 0 | 0 |" in text
    assert "| kube-scheduler | 6 | 10 | 6 | 0 |" in text
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_report_lists_the_violations() -> None:
    """Violations are bold in the table and listed, five a run at most."""
    runs = [_run("null", 10, [f"pod {i} bound" for i in range(7)], kind="volumes")]
    meta = report.Meta(workload="statefulset", nodes=2, pods=10, qps=5000.0, repeat=1)
    text = report.render_markdown(meta, report.results_by_scheduler(runs), {}, runs)
    assert "| scheduler | pods bound | claims | bound to a volume | violations |" in text
    assert "| null | 10 | 10 | 10 | **7** |" in text
    assert "- null run 1: pod 4 bound" in text and "pod 5 bound" not in text


def test_cpu_table_gives_kube_controller_manager_a_column_when_it_ran() -> None:
    """A run with kube-controller-manager (the claim workloads) shows its CPU apart from
    "other"; a run without keeps the usual columns."""
    meta = report.Meta(workload="statefulset", nodes=2, pods=10, qps=5000.0, repeat=1)
    run = _run("berth", 10, [], kind="volumes")
    for field in ("scheduler", "apiserver", "etcd", "controller_manager", "bench"):
        setattr(run, f"{field}_cpu_s", 1.0)
    run.machine_cpu_s = 6.5
    text = report.render_markdown(meta, report.results_by_scheduler([run]), {"cpus": 2}, [run])
    assert "| etcd | kube-controller-manager | bench (create + watch) | other |" in text
    assert "| berth | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.50 | 27% |" in text
    run.controller_manager_cpu_s = None
    text = report.render_markdown(meta, report.results_by_scheduler([run]), {"cpus": 2}, [run])
    assert "| etcd | bench (create + watch) | other |" in text
