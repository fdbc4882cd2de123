"""`berth sim`: manifests expanded as controllers would, snapshots saved and read, what-if
changes, and the engine's answers on small in-memory clusters."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.cli import main
from scheduler.sim import capacity, manifests, snapshot, whatif
from scheduler.sim import shards as sim_shards
from scheduler.sim.common import load_config as _config
from scheduler.sim.engine import simulate
from tests.builders import make_node, make_pod

JSON = dict[str, Any]


def _deployment(name: str, replicas: int, cpu: str = "1", **spec: Any) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
                    **spec,
                },
            },
        },
    }


def _cluster(*nodes: JSON, pods: tuple[JSON, ...] = ()) -> snapshot.ClusterSnapshot:
    return snapshot.ClusterSnapshot(
        objects={
            "namespaces": [{"metadata": {"name": "default"}}],
            "nodes": list(nodes),
            "pods": list(pods),
        }
    )


def test_deployment_expands_to_replica_set_pods() -> None:
    """Names <deploy>-<hash>-<suffix>, pod-template-hash, the ReplicaSet for default spreading,
    and the defaults admission gives a pod."""
    out = manifests.expand([("f", _deployment("web", 3))])
    assert len(out.pods) == 3
    (rs,) = out.objects["replicasets"]
    pod_hash = rs["spec"]["selector"]["matchLabels"]["pod-template-hash"]
    for pod in out.pods:
        assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
        assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
        assert pod["spec"]["schedulerName"] == "default-scheduler"
        assert pod["spec"]["priority"] == 0
        keys = {t["key"] for t in pod["spec"]["tolerations"]}
        assert keys == {manifests.NOT_READY, manifests.UNREACHABLE}
    assert len({p["metadata"]["name"] for p in out.pods}) == 3
    assert set(out.owner_of.values()) == {"Deployment/default/web"}
    again = manifests.expand([("f", _deployment("web", 3))])
    assert [p["metadata"]["name"] for p in again.pods] == [p["metadata"]["name"] for p in out.pods]


def test_stateful_set_gets_ordinals_and_claims() -> None:
    """db-0, db-1 with hostname and pod-name label; one PVC per template and ordinal."""
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c"}]},
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"storageClassName": "fast"}}
            ],
        },
    }
    out = manifests.expand([("f", sts)], namespace="ns")
    assert [p["metadata"]["name"] for p in out.pods] == ["db-0", "db-1"]
    assert out.pods[1]["spec"]["hostname"] == "db-1"
    assert out.pods[1]["spec"]["subdomain"] == "db"
    assert out.pods[1]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert [c["metadata"]["name"] for c in out.objects["persistentvolumeclaims"]] == [
        "data-db-0",
        "data-db-1",
    ]
    assert out.pods[0]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}
    ]


@pytest.mark.parametrize(
    ("spec", "count"),
    [
        pytest.param({"parallelism": 4}, 4, id="parallelism"),
        pytest.param({"parallelism": 4, "completions": 2}, 2, id="fewer-completions"),
        pytest.param({}, 1, id="defaults"),
    ],
)
def test_job_runs_min_of_parallelism_and_completions(spec: JSON, count: int) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {**spec, "template": {"spec": {"containers": [{"name": "c"}]}}},
    }
    out = manifests.expand([("f", job)])
    assert len(out.pods) == count
    assert all(p["metadata"]["labels"]["job-name"] == "j" for p in out.pods)


def test_priority_class_is_resolved_and_an_unknown_one_refused() -> None:
    """Admission: the class's value and preemptionPolicy; a missing class is an error."""
    pc = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "high"},
        "value": 1000,
        "preemptionPolicy": "Never",
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"priorityClassName": "high", "containers": [{"name": "c"}]},
    }
    (out,) = manifests.expand([("f", pc), ("f", pod)]).pods
    assert (out["spec"]["priority"], out["spec"]["preemptionPolicy"]) == (1000, "Never")
    with pytest.raises(manifests.ManifestError, match="priorityClassName: no PriorityClass"):
        manifests.expand([("f", pod)])


def test_limits_default_requests() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2"}}}]},
    }
    (out,) = manifests.expand([("f", pod)]).pods
    assert out["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "2"}


def test_snapshot_round_trip_and_bad_files(tmp_path: Path) -> None:
    """gzip JSON, versioned; a newer format or a foreign file is refused by name."""
    snap = _cluster(make_node("n1").obj_())
    path = tmp_path / "s.gz"
    snapshot.save(snap, path)
    assert snapshot.load(path).of("nodes")[0]["metadata"]["name"] == "n1"
    doc = json.loads(gzip.decompress(path.read_bytes()))
    doc["formatVersion"] = 99
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(snapshot.SnapshotError, match="formatVersion: 99; this berth reads 1"):
        snapshot.load(path)
    path.write_text("hello")
    with pytest.raises(snapshot.SnapshotError, match="not a berth snapshot"):
        snapshot.load(path)


async def test_place_reports_nodes_pending_message_and_preemption() -> None:
    """Two 4-CPU nodes with 3 CPU used by low-priority pods: a high-priority 2-CPU pod
    preempts one of them and lands there; a 6-CPU pod and a 4-CPU one stay pending with
    upstream's messages."""
    lows = tuple(
        make_pod(f"low{i}").req(cpu="3").priority(0).node(f"n{i}").uid(f"u{i}").obj_()
        for i in (1, 2)
    )
    cluster = _cluster(make_node("n1").obj_(), make_node("n2").obj_(), pods=lows)
    docs = [
        (
            "f",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "big"},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "6"}}}]},
            },
        ),
        ("f", _deployment("fill", 1, "4")),
        (
            "f",
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": "high"},
                "value": 100,
            },
        ),
        (
            "f",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "vip"},
                "spec": {
                    "priorityClassName": "high",
                    "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}],
                },
            },
        ),
    ]
    out = manifests.expand(docs)
    full = whatif.with_objects(cluster, {**out.objects, "pods": out.pods})
    outcome = await simulate(full, _config(None), seed=1, timeout=60)
    (victim,) = outcome.preempted
    assert victim.victim in ("default/low1", "default/low2")
    assert outcome.placed == {"default/vip": victim.node}
    fill = next(k for k in out.owner_of if k.startswith("default/fill-"))
    assert outcome.pending == {
        "default/big": "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes "
        "are available: 2 Preemption is not helpful for scheduling.",
        fill: "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes "
        "are available: 2 No preemption victims found for incoming pod.",
    }
    assert outcome.nodes[victim.node].cpu_after == 2000
    again = await simulate(full, _config(None), seed=1, timeout=60)
    assert again.preempted == outcome.preempted  # the seed fixes the choice


def test_drain_recreates_controller_pods_and_loses_bare_ones() -> None:
    owned = make_pod("a").node("n1").uid("ua").obj_()
    owned["metadata"]["ownerReferences"] = [
        {"kind": "ReplicaSet", "name": "rs", "controller": True}
    ]
    bare = make_pod("b").node("n1").uid("ub").obj_()
    other = make_pod("c").node("n2").uid("uc").obj_()
    snap = _cluster(make_node("n1").obj_(), make_node("n2").obj_(), pods=(owned, bare, other))
    drained, lines = whatif.drain(snap, ["n1"])
    pods = {p["metadata"]["uid"]: p for p in drained.of("pods")}
    assert set(pods) == {"drained-ua", "uc"}
    assert "nodeName" not in pods["drained-ua"]["spec"]
    node = drained.of("nodes")[0]
    assert node["spec"]["unschedulable"] is True
    assert "1 pods recreated" in lines[0] and "1 deleted" in lines[0]
    assert snap.of("pods")[0]["spec"]["nodeName"] == "n1"  # the input is unchanged
    with pytest.raises(whatif.WhatIfError, match="--drain: no node named nx"):
        whatif.drain(snap, ["nx"])


def test_add_nodes_copies_a_node() -> None:
    snap = _cluster(make_node("n1").zone("z1").obj_())
    grown, _ = whatif.add_nodes(snap, 2, "n1")
    names = [n["metadata"]["name"] for n in grown.of("nodes")]
    assert names == ["n1", "n1-sim-1", "n1-sim-2"]
    assert grown.of("nodes")[2]["metadata"]["labels"]["kubernetes.io/hostname"] == "n1-sim-2"
    with pytest.raises(whatif.WhatIfError, match="--like: no node named zz"):
        whatif.add_nodes(snap, 1, "zz")


async def test_capacity_counts_copies_and_what_runs_out() -> None:
    """3 nodes of 4 CPU, one with 1 CPU used: 1.5-CPU copies fit 2 + 2 + 2 = 6 (the used
    node has 3 CPU left: 2 fit); the seventh fails on cpu."""
    used = make_pod("u").req(cpu="1").node("n1").uid("uu").obj_()
    snap = _cluster(*(make_node(f"n{i}").zone(f"z{i}").obj_() for i in (1, 2, 3)), pods=(used,))
    pod = manifests.expand(
        [
            (
                "f",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p"},
                    "spec": {
                        "containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m"}}}]
                    },
                },
            )
        ]
    ).pods[0]
    bound = capacity.upper_bound(snap, pod)
    assert bound == 6
    full = whatif.with_objects(snap, {"pods": capacity.copies(pod, bound + 1)[0]})
    outcome = await simulate(full, _config(None), timeout=60)
    cap = capacity.summarise(outcome, pod, bound + 1, False, "topology.kubernetes.io/zone")
    assert cap.fits == 6
    assert "Insufficient cpu" in cap.stop_message
    assert {g: (v.fits, v.limits["cpu"]) for g, v in cap.groups.items()} == {
        "z1": (2, 1),
        "z2": (2, 1),
        "z3": (2, 1),
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--drain", "nope"], "--drain: no node named nope", id="unknown-drain"),
        pytest.param(["--add-nodes", "2"], "--add-nodes needs --like", id="add-without-like"),
        pytest.param(["--scheduler-config", "BAD"], "profiles[0].plugins", id="bad-config"),
    ],
)
def test_place_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Every bad flag or file: exit 2, the flag or field named, no traceback."""
    snap = tmp_path / "s.gz"
    snapshot.save(_cluster(make_node("n1").obj_()), snap)
    pods = tmp_path / "p.yaml"
    pods.write_text(yaml.safe_dump(_deployment("web", 1)))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles:\n- plugins: {score: {enabled: [{name: Nope}]}}\n"
    )
    argv = [str(bad) if a == "BAD" else a for a in argv]
    assert main(["sim", "place", "-f", str(pods), "--snapshot", str(snap), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_place_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-o json lists every pod; --config compares two configurations; --png writes a chart."""
    pytest.importorskip("matplotlib")
    snap = tmp_path / "s.gz"
    snapshot.save(_cluster(make_node("n1").obj_(), make_node("n2").obj_()), snap)
    pods = tmp_path / "p.yaml"
    pods.write_text(yaml.safe_dump(_deployment("web", 3)))
    other = tmp_path / "most.yaml"
    other.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "profiles": [
                    {
                        "schedulerName": "default-scheduler",
                        "pluginConfig": [
                            {
                                "name": "NodeResourcesFit",
                                "args": {
                                    "scoringStrategy": {
                                        "type": "MostAllocated",
                                        "resources": [{"name": "cpu", "weight": 1}],
                                    }
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    png = tmp_path / "u.png"
    code = main(
        [
            "sim",
            "place",
            "-f",
            str(pods),
            "--snapshot",
            str(snap),
            "--config",
            str(other),
            "-o",
            "json",
            "--png",
            str(png),
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["title"] for s in doc["scenarios"]] == ["base", "what-if"]
    assert all(len(s["pods"]) == 3 for s in doc["scenarios"])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_shards_read_values_route_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """shardDefaults merge under each shard; webhook rules route default-scheduler pods; each
    shard places its pods on its own pool only."""
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "shardDefaults": {"config": {"percentageOfNodesToScore": 50}},
                "shards": [
                    {"name": "a", "schedulerName": "berth-a", "nodeSelector": {"pool": "pool-0"}},
                    {
                        "name": "b",
                        "schedulerName": "berth-b",
                        "nodeSelector": {"pool": "pool-1"},
                        "config": {"percentageOfNodesToScore": 100},
                    },
                ],
                "webhook": {
                    "enabled": True,
                    "rules": [
                        {
                            "name": "web",
                            "schedulerName": "berth-b",
                            "match": {"podSelector": {"matchLabels": {"app": "web"}}},
                        },
                        {"name": "rest", "schedulerName": "berth-a"},
                    ],
                },
            }
        )
    )
    shards, rules = sim_shards.read_values(values)
    assert [s.config.get("percentageOfNodesToScore") for s in shards] == [50, 100]
    assert shards[1].config["nodeSelector"] == {"pool": "pool-1"}
    pods = manifests.expand([("f", _deployment("web", 2)), ("f", _deployment("db", 1))]).pods
    routed = sim_shards.route(pods, shards, rules, _cluster())
    assert {k: len(v) for k, v in routed.items()} == {"a": 1, "b": 2}
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(yaml.safe_dump_all([_deployment("web", 2), _deployment("db", 1)]))
    code = main(
        [
            "sim",
            "shards",
            "--values",
            str(values),
            "--synthetic-nodes",
            "10",
            "--pools",
            "2",
            "-f",
            str(manifest),
            "-o",
            "json",
            "--rate",
            "100",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["shard"]: (r["nodes"], r["placed"]) for r in doc["shards"]}
    assert rows == {"a": (5, 1), "b": (5, 2)}
    assert all(r["latencySeconds"]["max"] > 0 for r in doc["shards"])


def test_replica_names_never_clash_and_duplicates_are_refused() -> None:
    """20,000 replicas get 20,000 names (random 5-character suffixes would clash); two
    manifests making the same pod are an error naming both."""
    out = manifests.expand([("f", _deployment("web", 20000))])
    assert len({p["metadata"]["name"] for p in out.pods}) == 20000
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}]},
    }
    with pytest.raises(
        manifests.ManifestError, match="pod default/p is also made by Pod/default/p"
    ):
        manifests.expand([("a.yaml", pod), ("b.yaml", pod)])


def _pod(name: str, cpu: str = "100m", **spec: Any) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}], **spec},
    }


def test_capacity_bound_counts_each_pod_once() -> None:
    """A pod takes one of its node's 110 slots: two nodes with one pod each hold 218 more
    pods that ask for nothing much (the bound counted each pod twice: 216)."""
    used = [make_pod(f"u{i}").req(cpu="10m").node(f"n{i}").uid(f"u{i}").obj_() for i in (1, 2)]
    snap = _cluster(make_node("n1").obj_(), make_node("n2").obj_(), pods=tuple(used))
    (tiny,) = manifests.expand([("f", _pod("tiny", "1m"))]).pods
    assert capacity.upper_bound(snap, tiny) == 218


async def test_before_is_what_the_nodes_held() -> None:
    """Utilisation before the simulation counts the pods already bound."""
    used = make_pod("u").req(cpu="1").node("n1").uid("u").obj_()
    snap = _cluster(make_node("n1").obj_(), pods=(used,))
    out = manifests.expand([("f", _pod("p", "1"))])
    outcome = await simulate(whatif.with_objects(snap, {"pods": out.pods}), _config(None))
    assert (outcome.nodes["n1"].cpu_before, outcome.nodes["n1"].cpu_after) == (1000, 2000)


def test_drain_keeps_what_a_budget_protects_and_copies_daemons() -> None:
    """A PDB with no disruptions left holds its pod on the drained node (kubectl drain
    retries); a node added like another gets its DaemonSet pods."""
    guarded = make_pod("g").label("app", "db").node("n1").uid("ug").obj_()
    guarded["metadata"]["ownerReferences"] = [
        {"kind": "ReplicaSet", "name": "rs", "controller": True}
    ]
    daemon = make_pod("d").node("n1").uid("ud").obj_()
    daemon["metadata"]["ownerReferences"] = [
        {"kind": "DaemonSet", "name": "ds", "controller": True}
    ]
    pdb = {
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 0},
    }
    snap = _cluster(make_node("n1").obj_(), pods=(guarded, daemon))
    snap.objects["poddisruptionbudgets"] = [pdb]
    drained, lines = whatif.drain(snap, ["n1"])
    assert {p["metadata"]["uid"] for p in drained.of("pods")} == {"ug", "ud"}
    assert "held by PodDisruptionBudgets" in lines[0]
    assert any("PodDisruptionBudget default/db allows no more" in line for line in lines)
    grown, _ = whatif.add_nodes(snap, 1, "n1")
    copies = [p for p in grown.of("pods") if p["spec"]["nodeName"] == "n1-sim-1"]
    assert [p["metadata"]["uid"] for p in copies] == ["sim-ds-n1-sim-1-ud"]


async def test_claims_of_immediate_classes_are_provisioned() -> None:
    """A StatefulSet whose claims' class binds Immediately has its volumes made at once;
    one whose class waits for the first consumer gets them once placed."""
    classes = [
        {"metadata": {"name": "now"}, "provisioner": "csi.example.com"},
        {
            "metadata": {"name": "later"},
            "provisioner": "csi.example.com",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    ]
    docs = []
    for cls in ("now", "later"):
        docs.append(
            (
                "f",
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": {"name": f"db-{cls}"},
                    "spec": {
                        "replicas": 2,
                        "template": {
                            "metadata": {"labels": {"app": cls}},
                            "spec": {"containers": [{"name": "c"}]},
                        },
                        "volumeClaimTemplates": [
                            {
                                "metadata": {"name": "data"},
                                "spec": {
                                    "storageClassName": cls,
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "1Gi"}},
                                },
                            }
                        ],
                    },
                },
            )
        )
    out = manifests.expand(docs)
    snap = _cluster(make_node("n1").obj_(), make_node("n2").obj_())
    snap.objects["storageclasses"] = classes
    full = whatif.with_objects(snap, {**out.objects, "pods": out.pods})
    outcome = await simulate(full, _config(None), timeout=60)
    assert outcome.pending == {}
    assert len(outcome.placed) == 4


@pytest.mark.parametrize(
    ("docs", "argv", "message"),
    [
        pytest.param(
            [_pod("p")],
            ["--scheduler-name", "nosuch"],
            "--scheduler-name: --scheduler-config has no profile named nosuch",
            id="unknown-profile",
        ),
        pytest.param([_pod("p", "abc")], [], "pod default/p (Pod/default/p):", id="bad-quantity"),
        pytest.param(
            [{**_pod("p"), "metadata": {"name": "p", "namespace": "nope"}}],
            [],
            "namespace nope not found",
            id="no-namespace",
        ),
        pytest.param(
            [{**_pod("p"), "spec": "hello"}],
            [],
            "spec: expected a mapping",
            id="spec-not-a-mapping",
        ),
        pytest.param([_pod("p")], ["--png", "."], "--png: not a file", id="png-directory"),
        pytest.param(
            [_pod("p")],
            ["--add-nodes", "0", "--like", "n1"],
            "--add-nodes: must be at least 1",
            id="add-zero",
        ),
    ],
)
def test_place_refuses_what_the_api_server_would(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    docs: list[JSON],
    argv: list[str],
    message: str,
) -> None:
    snap = tmp_path / "s.gz"
    snapshot.save(_cluster(make_node("n1").obj_()), snap)
    pods = tmp_path / "p.yaml"
    pods.write_text(yaml.safe_dump_all(docs))
    assert main(["sim", "place", "-f", str(pods), "--snapshot", str(snap), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_place_reports_given_nodes_order_and_malformed_snapshot_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pod with spec.nodeName is reported where it was put (or invalid); pods reach the
    queue in the order written unless --order name."""
    cluster = _cluster(make_node("n1").capacity(cpu="7").obj_())
    snap = tmp_path / "s.gz"
    snapshot.save(cluster, snap)
    pods = tmp_path / "p.yaml"
    pods.write_text(
        yaml.safe_dump_all(
            [
                _deployment("zeta", 1, "6"),
                _deployment("alpha", 1, "6"),
                _pod("pinned", nodeName="n1"),
                _pod("lost", nodeName="n9"),
            ]
        )
    )
    for order, winner in (("given", "zeta"), ("name", "alpha")):
        code = main(
            [
                "sim",
                "place",
                "-f",
                str(pods),
                "--snapshot",
                str(snap),
                "-o",
                "json",
                "--order",
                order,
            ]
        )
        assert code == 0
        (scenario,) = json.loads(capsys.readouterr().out)["scenarios"]
        placed = {p["owner"].split("/")[-1]: p["node"] for p in scenario["pods"] if p["node"]}
        assert placed == {winner: "n1", "pinned": "n1"}
        assert scenario["invalid"]["default/lost"] == "spec.nodeName: no node named n9"


def test_capacity_of_a_stateful_template_and_a_pinned_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each copy of a StatefulSet's pod gets its own claim (2 CPU pods on two 4-CPU nodes:
    4 fit, not 1); a template's nodeName and foreign schedulerName are set aside."""
    snap = tmp_path / "s.gz"
    cluster = _cluster(make_node("n1").zone("a").obj_(), make_node("n2").zone("b").obj_())
    cluster.objects["storageclasses"] = [
        {
            "metadata": {"name": "fast"},
            "provisioner": "csi.example.com",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    ]
    snapshot.save(cluster, snap)
    sts = tmp_path / "sts.yaml"
    sts.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "replicas": 1,
                    "template": {
                        "metadata": {"labels": {"app": "db"}},
                        "spec": {
                            "schedulerName": "elsewhere",
                            "nodeName": "n1",
                            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}],
                        },
                    },
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {
                                "storageClassName": "fast",
                                "accessModes": ["ReadWriteOncePod"],
                                "resources": {"requests": {"storage": "1Gi"}},
                            },
                        }
                    ],
                },
            }
        )
    )
    assert main(["sim", "capacity", "-f", str(sts), "--snapshot", str(snap), "-o", "json"]) == 0
    out = capsys.readouterr()
    (scenario,) = json.loads(out.out)["scenarios"]
    assert scenario["fits"] == 4
    assert {g: v["fits"] for g, v in scenario["groups"].items()} == {"a": 2, "b": 2}
    assert "ignores the template's spec.nodeName" in out.err
    assert "its copies go to profile default-scheduler" in out.err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(lambda d: d.update(missing="x"), "missing: expected a mapping", id="missing"),
        pytest.param(
            lambda d: d["objects"]["nodes"].append({"kind": "Node"}),
            "objects.nodes[1].metadata.name: required",
            id="node-without-metadata",
        ),
        pytest.param(
            lambda d: d["objects"].update(pods=[{"metadata": {"name": "p"}, "spec": None}]),
            "objects.pods[0].spec: expected a mapping",
            id="pod-spec-null",
        ),
    ],
)
def test_a_malformed_snapshot_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, message: str
) -> None:
    """A hand-edited snapshot is refused with the path of what is wrong, no traceback."""
    doc = _cluster(make_node("n1").obj_()).to_document()
    edit(doc)
    snap = tmp_path / "s.gz"
    snap.write_bytes(gzip.compress(json.dumps(doc).encode()))
    pods = tmp_path / "p.yaml"
    pods.write_text(yaml.safe_dump(_pod("p")))
    assert main(["sim", "place", "-f", str(pods), "--snapshot", str(snap)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("pod", "message"),
    [
        pytest.param(_pod("p", "-1"), "requests of cpu: must be non-negative", id="negative"),
        pytest.param(
            {**_pod("p"), "spec": {"containers": {"name": "c"}}},
            "spec.containers: expected a list of containers",
            id="containers-mapping",
        ),
    ],
)
def test_pods_the_api_server_refuses_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pod: JSON, message: str
) -> None:
    snap = tmp_path / "s.gz"
    snapshot.save(_cluster(make_node("n1").obj_()), snap)
    pods = tmp_path / "p.yaml"
    pods.write_text(yaml.safe_dump(pod))
    for command in ("place", "capacity"):
        assert main(["sim", command, "-f", str(pods), "--snapshot", str(snap)]) == 2
        assert message in capsys.readouterr().err


def test_shards_refuse_twins_skip_foreign_pods_and_warn_of_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two shards of one name are refused; a pod of a scheduler no shard serves stays out;
    two shards over the same nodes are reported."""
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "shards": [
                    {"name": "a", "schedulerName": "berth-a"},
                    {"name": "a", "schedulerName": "berth-b"},
                ]
            }
        )
    )
    with pytest.raises(sim_shards.ValuesError, match=r"shards\[1\].name: a is used twice"):
        sim_shards.read_values(values)
    values.write_text(
        yaml.safe_dump(
            {
                "shards": [
                    {"name": "a", "schedulerName": "berth-a"},
                    {"name": "b", "schedulerName": "berth-b"},
                ]
            }
        )
    )
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(yaml.safe_dump_all([_pod("mine"), _pod("theirs", schedulerName="x")]))
    code = main(
        [
            "sim",
            "shards",
            "--values",
            str(values),
            "--synthetic-nodes",
            "4",
            "-f",
            str(manifest),
            "-o",
            "json",
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    assert sum(r["pods"] for r in json.loads(out.out)["shards"]) == 1
    assert "node pools overlap: 4 nodes are in more than one shard" in out.err
