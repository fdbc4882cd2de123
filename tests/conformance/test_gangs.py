"""The gang checker itself: it must flag every partially bound group of either API, and nothing
else (pure, no API server)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.gangs import (
    COSCHEDULING,
    COSCHEDULING_LABEL,
    UPSTREAM,
    GroupKey,
    count,
    partially_bound,
    quorum_of,
)

JSON = dict[str, Any]


def gang(name: str, min_count: int, namespace: str = "ns", list_item: bool = False) -> JSON:
    """A scheduling.k8s.io/v1beta1 PodGroup with a gang policy (as a List item: no apiVersion)."""
    obj: JSON = {
        "apiVersion": "scheduling.k8s.io/v1beta1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedulingPolicy": {"gang": {"minCount": min_count}}},
    }
    if list_item:
        del obj["apiVersion"], obj["kind"]
    return obj


def basic(name: str) -> JSON:
    return {
        "apiVersion": "scheduling.k8s.io/v1beta1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"schedulingPolicy": {"basic": {}}},
    }


def crd(name: str, min_member: int | None, list_item: bool = False) -> JSON:
    """scheduler-plugins' scheduling.x-k8s.io/v1alpha1 PodGroup."""
    obj: JSON = {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {} if min_member is None else {"minMember": min_member},
    }
    if list_item:
        del obj["apiVersion"], obj["kind"]
    return obj


def pod(
    name: str,
    node: str | None = None,
    *,
    group: str | None = None,
    label: str | None = None,
    namespace: str = "ns",
    deleting: bool = False,
    phase: str = "",
) -> JSON:
    """A pod naming `group` (spec.schedulingGroup) and/or `label` (the CRD's label)."""
    meta: JSON = {"name": name, "namespace": namespace, "labels": {}}
    spec: JSON = {"containers": [{"name": "c", "image": "i"}]}
    if group:
        spec["schedulingGroup"] = {"podGroupName": group}
    if label:
        meta["labels"][COSCHEDULING_LABEL] = label
    if node:
        spec["nodeName"] = node
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": spec, "status": {"phase": phase} if phase else {}}


def members(n: int, bound: int, **kw: Any) -> list[JSON]:
    """`n` members of a group, the first `bound` of them on a node."""
    return [pod(f"p{i}", "node-1" if i < bound else None, **kw) for i in range(n)]


@pytest.mark.parametrize(
    ("podgroups", "pods", "expect"),
    [
        pytest.param([gang("g", 3)], members(3, 3, group="g"), [], id="all-bound"),
        pytest.param([gang("g", 3)], members(3, 0, group="g"), [], id="none-bound"),
        pytest.param(
            [gang("g", 3)],
            members(3, 2, group="g"),
            [
                "PodGroup ns/g (scheduling.k8s.io): 2 of its 3 members bound, "
                "fewer than its quorum of 3"
            ],
            id="upstream-partial",
        ),
        pytest.param([gang("g", 3)], members(5, 3, group="g"), [], id="quorum-of-more-members"),
        pytest.param(
            [gang("g", 3)],
            members(5, 1, group="g"),
            [
                "PodGroup ns/g (scheduling.k8s.io): 1 of its 5 members bound, "
                "fewer than its quorum of 3"
            ],
            id="one-of-five",
        ),
        pytest.param(
            [gang("g", 4)],
            members(2, 2, group="g"),
            [
                "PodGroup ns/g (scheduling.k8s.io): 2 of its 2 members bound, "
                "fewer than its quorum of 4"
            ],
            id="members-short-of-quorum-yet-bound",
        ),
        pytest.param([basic("g")], members(3, 1, group="g"), [], id="basic-policy-has-no-quorum"),
        pytest.param(
            [crd("g", 4)],
            members(4, 3, label="g"),
            [
                "PodGroup (scheduler-plugins) ns/g (scheduling.x-k8s.io): 3 of its 4 members "
                "bound, fewer than its quorum of 4"
            ],
            id="crd-partial",
        ),
        pytest.param([crd("g", 4)], members(4, 4, label="g"), [], id="crd-all-bound"),
        pytest.param([crd("g", None)], members(4, 1, label="g"), [], id="crd-without-minmember"),
        pytest.param([crd("g", 0)], members(4, 1, label="g"), [], id="crd-minmember-zero"),
        pytest.param([], members(4, 1, group="g"), [], id="missing-group-not-judged"),
    ],
)
def test_partially_bound(podgroups: list[JSON], pods: list[JSON], expect: list[str]) -> None:
    """0 < bound < quorum is reported, with the group and the counts; all or nothing is not."""
    assert partially_bound(podgroups, pods) == expect


@pytest.mark.parametrize(
    ("member", "bound"),
    [
        pytest.param(pod("p", "node-1", group="g"), 1, id="on-a-node"),
        pytest.param(pod("p", None, group="g"), 0, id="pending"),
        pytest.param(pod("p", "node-1", group="g", deleting=True), 0, id="terminating"),
        pytest.param(pod("p", "node-1", group="g", phase="Succeeded"), 0, id="succeeded"),
        pytest.param(pod("p", "node-1", group="g", phase="Failed"), 0, id="failed"),
        pytest.param(pod("p", "node-1", group="g", phase="Running"), 1, id="running"),
    ],
)
def test_what_counts_as_bound(member: JSON, bound: int) -> None:
    """Bound: spec.nodeName set, not being deleted, not finished."""
    (found,) = count([gang("g", 2)], [member])
    assert (found.members, found.bound) == (1, bound)


def test_terminating_member_leaves_its_gang_partial() -> None:
    """A gang of two with one member being deleted has one member bound: partially bound."""
    pods = [pod("a", "n1", group="g"), pod("b", "n2", group="g", deleting=True)]
    assert len(partially_bound([gang("g", 2)], pods)) == 1


def test_groups_are_per_namespace() -> None:
    """Pods of another namespace do not join a group of the same name."""
    pods = [pod("a", "n1", group="g"), pod("b", "n1", group="g", namespace="other")]
    (found,) = count([gang("g", 2)], pods)
    assert (found.key, found.members, found.bound) == (GroupKey("ns", UPSTREAM, "g"), 1, 1)


def test_field_and_label_name_groups_of_different_apis() -> None:
    """spec.schedulingGroup joins the v1beta1 group, the label the CRD's; a same-named group
    of each API is two groups, and a pod carrying both joins both."""
    pods = [
        pod("field", "n1", group="g"),
        pod("label", None, label="g"),
        pod("both", "n1", group="g", label="g"),
    ]
    found = {c.key.api: (c.members, c.bound) for c in count([gang("g", 2), crd("g", 2)], pods)}
    assert found == {UPSTREAM: (2, 2), COSCHEDULING: (2, 1)}
    assert partially_bound([gang("g", 2), crd("g", 2)], pods) == [
        "PodGroup (scheduler-plugins) ns/g (scheduling.x-k8s.io): 1 of its 2 members bound, "
        "fewer than its quorum of 2"
    ]


@pytest.mark.parametrize(
    ("obj", "expect"),
    [
        pytest.param(
            gang("g", 3, list_item=True), (GroupKey("ns", UPSTREAM, "g"), 3), id="v1beta1"
        ),
        pytest.param(crd("g", 2, list_item=True), (GroupKey("ns", COSCHEDULING, "g"), 2), id="crd"),
        pytest.param({"metadata": {"name": "g"}, "spec": {}}, None, id="neither"),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "g"}}, None, id="other"
        ),
    ],
)
def test_list_items_without_api_version_are_told_apart_by_spec(
    obj: JSON, expect: tuple[GroupKey, int] | None
) -> None:
    """Items of a List response have no apiVersion: the spec says which API they are."""
    assert quorum_of(obj) == expect


def test_reports_every_partial_group_sorted() -> None:
    """Several groups: only the partial ones, in namespace/API/name order."""
    groups = [gang("b", 2), gang("a", 2), gang("c", 2)]
    pods = [pod("a1", "n", group="a"), pod("b1", "n", group="b"), pod("b2", "n", group="b")]
    pods += [pod("c1", "n", group="c"), pod("c2", None, group="c")]
    assert [m.split(":")[0] for m in partially_bound(groups, pods)] == [
        "PodGroup ns/a (scheduling.k8s.io)",
        "PodGroup ns/c (scheduling.k8s.io)",
    ]
