"""scheduler.explain: `--node X`'s report (each Filter plugin's verdict, then the score or why
none), and which replica answered."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.explain import render, render_node

JSON = dict[str, Any]


def verdict(plugin: str, outcome: str, *reasons: str, **flags: bool) -> JSON:
    return {
        "plugin": plugin,
        "verdict": outcome,
        "reasons": list(reasons),
        "unresolvable": flags.get("unresolvable", False),
        "with_nominated": flags.get("with_nominated", False),
    }


def test_rejected_node_lists_every_plugins_verdict() -> None:
    """Passes, skips and failures in profile order; unresolvable and nominated-only failures
    are marked; the nominated pods are named; then how many plugins reject the node."""
    out = render_node(
        {
            "node": "n1",
            "pre_filter": None,
            "nominated": ["ns/big"],
            "feasible": False,
            "score": None,
            "filters": [
                verdict("NodeName", "pass"),
                verdict(
                    "TaintToleration", "fail", "node(s) had untolerated taint(s)", unresolvable=True
                ),
                verdict("NodeAffinity", "skip"),
                verdict("NodeResourcesFit", "fail", "Insufficient cpu", with_nominated=True),
            ],
        }
    )
    assert out.splitlines() == [
        "Node n1, each Filter plugin's verdict for this pod now:",
        "PLUGIN            VERDICT  REASON",
        "NodeName          pass",
        "TaintToleration   fail     node(s) had untolerated taint(s) (unresolvable: preemption"
        " cannot help)",
        "NodeAffinity      skip     nothing to check for this pod (PreFilter: Skip)",
        "NodeResourcesFit  fail     Insufficient cpu (only with the pods nominated to this node"
        " counted)",
        "Pods nominated to n1 and counted against this pod: ns/big",
        "Not feasible: 2 plugin(s) reject n1.",
    ]


def test_feasible_node_shows_its_score_rank_and_the_best() -> None:
    out = render_node(
        {
            "node": "n2",
            "pre_filter": None,
            "nominated": [],
            "feasible": True,
            "filters": [verdict("NodeName", "pass")],
            "score": {
                "total": 187,
                "plugins": {"NodeResourcesFit": 87, "TaintToleration": 100},
                "weights": {"NodeResourcesFit": 1, "TaintToleration": 1},
                "rank": 2,
                "feasible_nodes": 6,
                "best": {"node": "n5", "total": 200},
            },
        }
    )
    assert out.splitlines()[-5:] == [
        "",
        "Feasible; it would score 187 (rank 2 of 6 feasible nodes; the best, n5, scores 200):",
        "PLUGIN            SCORE (0-100)  WEIGHT",
        "NodeResourcesFit  87             1",
        "TaintToleration   100            1",
    ]


@pytest.mark.parametrize(
    ("check", "line"),
    [
        pytest.param(
            {"node": "gone", "error": "node 'gone' is not in the scheduler's cache"},
            "Node gone: cannot be checked: node 'gone' is not in the scheduler's cache",
            id="error",
        ),
        pytest.param(
            {
                "node": "n",
                "pre_filter": {
                    "plugin": "VolumeRestrictions",
                    "reason": 'persistentvolumeclaim "x" not found',
                },
            },
            "Node n: no Filter ran: PreFilter plugin VolumeRestrictions rejects every node for"
            ' this pod: persistentvolumeclaim "x" not found',
            id="pre-filter",
        ),
    ],
)
def test_node_that_cannot_be_checked(check: JSON, line: str) -> None:
    assert render_node(check) == line + "\n"


def test_pod_report_then_node_report_and_the_replica_that_answered() -> None:
    """The pod's report first (with the answering replica under its first line), then a blank
    line and the node's."""
    out = render(
        {
            "pod": "ns/p",
            "queue": "unschedulable",
            "attempts": 1,
            "message": "0/2 nodes are available: 2 Insufficient cpu.",
            "scheduler": {"identity": "berth-0_ab", "leading": True},
            "node_check": {"node": "n", "error": "x"},
        }
    )
    assert out.splitlines() == [
        "Pod ns/p: pending (queue: unschedulable, attempts: 1)",
        "Answered by berth-0_ab (the leader)",
        "0/2 nodes are available: 2 Insufficient cpu.",
        "",
        "Node n: cannot be checked: x",
    ]


def test_a_standby_says_it_is_one() -> None:
    out = render(
        {"pod": "ns/p", "queue": None, "scheduler": {"identity": "berth-1_cd", "leading": False}}
    )
    assert out.splitlines()[1] == (
        "Answered by berth-1_cd (a standby: it schedules nothing while another replica leads)"
    )
