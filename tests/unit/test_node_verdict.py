"""scheduler.node_verdict: each Filter plugin's verdict on one node for one pod, the score the
node would get among the feasible ones, and that nothing changes while it is worked out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import plugins
from scheduler.app import build_profiles
from scheduler.cache import Cache
from scheduler.config import parse
from scheduler.handle import in_memory
from scheduler.model import PodInfo, compile_node, compile_pod
from scheduler.node_verdict import node_verdict
from scheduler.nominator import Nominator
from scheduler.runtime import Framework
from tests.builders import make_node, make_pod

JSON = dict[str, Any]
NAME = "berth"


def profile() -> Framework:
    doc = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": NAME}],
    }
    return build_profiles(parse(doc, plugins.registry().keys()), in_memory())[NAME]


def cache(*nodes: JSON) -> Cache:
    made = Cache()
    for node in nodes:
        made.upsert_node(compile_node(node))
    return made


def pod(name: str = "p", **requests: str) -> PodInfo:
    return compile_pod(make_pod(name).scheduler(NAME).req(**(requests or {"cpu": "1"})).obj_())


def verdicts(result: JSON) -> dict[str, tuple[str, list[str]]]:
    return {f["plugin"]: (f["verdict"], f["reasons"]) for f in result["filters"]}


def test_every_filter_plugin_is_asked_not_only_up_to_the_first_rejection() -> None:
    """A tainted, cordoned, too small node: three plugins fail it, each with upstream's
    reason (a request larger than the whole node is unresolvable, as upstream marks it); the
    others pass, or were skipped by their PreFilter; not feasible, so no score."""
    bad = make_node("bad").capacity(cpu="1").taint("dedicated", "gpu").unschedulable().obj_()
    made = cache(bad, make_node("good").capacity(cpu="8").obj_())
    result = node_verdict(profile(), pod(cpu="2"), made.table, "bad", Nominator())
    failed = {f["plugin"]: (f["reasons"], f["unresolvable"]) for f in result["filters"]}
    failed = {p: why for p, why in failed.items() if verdicts(result)[p][0] == "fail"}
    assert failed == {
        "NodeUnschedulable": (["node(s) were unschedulable"], True),
        "TaintToleration": (["node(s) had untolerated taint(s)"], True),
        "NodeResourcesFit": (["Insufficient cpu"], True),
    }
    assert verdicts(result)["NodeName"] == ("pass", [])
    assert verdicts(result)["NodeAffinity"] == ("skip", [])  # no affinity: PreFilter says Skip
    assert result["feasible"] is False
    assert result["score"] is None


def test_a_feasible_node_gets_its_score_rank_and_the_best() -> None:
    """Among three feasible nodes, the emptiest scores best with LeastAllocated: a fuller
    node is told its rank and the best node's total."""
    made = cache(
        make_node("big").capacity(cpu="32", memory="64Gi").obj_(),
        make_node("mid").capacity(cpu="16", memory="32Gi").obj_(),
        make_node("small").capacity(cpu="4", memory="8Gi").obj_(),
    )
    scheduling = profile()
    result = node_verdict(scheduling, pod(cpu="2"), made.table, "small", Nominator())
    assert scheduling.evaluations == {}  # the plugin metrics count scheduling only
    assert result["feasible"] is True
    assert {v for v, _ in verdicts(result).values()} == {"pass", "skip"}
    score = result["score"]
    assert score["feasible_nodes"] == 3
    assert score["best"]["node"] == "big"
    assert score["rank"] == 3
    assert score["total"] < score["best"]["total"]
    assert score["weights"]["NodeResourcesFit"] == 1
    assert score["total"] == sum(v * score["weights"][p] for p, v in score["plugins"].items())


def test_nominated_pods_count_and_are_taken_off_again() -> None:
    """A node that fits the pod alone but not with a higher-priority pod nominated to it:
    NodeResourcesFit fails only with the nominated pods counted; afterwards the table (its
    pods and row generations) is as before."""
    made = cache(make_node("n").capacity(cpu="4").obj_())
    nominator = Nominator()
    other = compile_pod(make_pod("other").scheduler(NAME).req(cpu="3").priority(100).obj_())
    nominator.add(other, "n")
    table = made.table
    generations, pods = table.generation.copy(), [dict(p) for p in table.pods]
    result = node_verdict(profile(), pod(cpu="2"), table, "n", nominator)
    entry = next(f for f in result["filters"] if f["plugin"] == "NodeResourcesFit")
    assert (entry["verdict"], entry["reasons"], entry["with_nominated"]) == (
        "fail",
        ["Insufficient cpu"],
        True,
    )
    assert result["nominated"] == [other.key]
    assert result["feasible"] is False
    assert np.array_equal(table.generation, generations)
    assert [dict(p) for p in table.pods] == pods


def test_pre_filter_result_that_leaves_the_node_out() -> None:
    """NodeAffinity's PreFilter narrows to another node by name (upstream's PreFilterResult):
    the node fails NodeAffinity with upstream's absent-node message, unresolvable."""
    made = cache(make_node("n").obj_(), make_node("elsewhere").obj_())
    raw = make_pod("p").scheduler(NAME).obj_()
    raw["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": ["elsewhere"]}
                        ]
                    }
                ]
            }
        }
    }
    result = node_verdict(profile(), compile_pod(raw), made.table, "n", Nominator())
    entry = next(f for f in result["filters"] if f["plugin"] == "NodeAffinity")
    assert (entry["verdict"], entry["reasons"], entry["unresolvable"]) == (
        "fail",
        ["node(s) didn't satisfy plugin(s) [NodeAffinity]"],
        True,
    )
    assert result["feasible"] is False
    other = node_verdict(profile(), compile_pod(raw), made.table, "elsewhere", Nominator())
    assert other["feasible"] is True


def test_pre_filter_rejection_stops_before_any_filter() -> None:
    """A PreFilter that rejects every node (a claim that does not exist) is the answer; no
    Filter verdicts are made up."""
    raw = make_pod("p").scheduler(NAME).obj_()
    raw["spec"]["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": "missing"}}]
    made = cache(make_node("n").obj_())
    result = node_verdict(profile(), compile_pod(raw), made.table, "n", Nominator())
    assert result["pre_filter"] == {
        "plugin": "VolumeRestrictions",
        "reason": 'persistentvolumeclaim "missing" not found',
    }
    assert result["filters"] == []
    assert result["feasible"] is False


def test_unknown_node_raises_key_error() -> None:
    """The caller (App._node_check) says "not in the scheduler's cache" instead."""
    with pytest.raises(KeyError):
        node_verdict(profile(), pod(), cache(make_node("n").obj_()).table, "gone", Nominator())
