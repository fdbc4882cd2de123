"""The default spread selector from Services and controllers, as upstream helper.DefaultSelector
(its table in pkg/scheduler/framework/plugins/helper/spread_test.go, rewritten)."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.default_selector import (
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    SERVICE,
    STATEFUL_SET,
    SelectorSources,
)
from scheduler.model import InvalidObject, LabelSelector, PodInfo, compile_pod
from tests.builders import make_pod

JSON = dict[str, Any]
POD_LABELS = {"app": "web", "tier": "front", "track": "stable"}


def obj(name: str, selector: Any, namespace: str = "ns") -> JSON:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"selector": selector}}


def pod(owner: tuple[str, str, str] | None = None, namespace: str = "ns") -> PodInfo:
    builder = make_pod("p").namespace(namespace)
    for key, value in POD_LABELS.items():
        builder = builder.label(key, value)
    if owner is not None:
        builder = builder.owner(owner[0], owner[1], api_version=owner[2])
    return compile_pod(builder.obj_())


def matches(selector: LabelSelector | None, labels: dict[str, str]) -> bool:
    assert selector is not None
    return selector.matches(labels)


def test_nothing_selects_the_pod() -> None:
    """No Service, no controller: no selector, so no default constraints."""
    sources = SelectorSources()
    sources.apply(SERVICE, obj("other", {"app": "db"}), deleted=False)
    sources.apply(SERVICE, obj("elsewhere", {"app": "web"}, namespace="other"), deleted=False)
    assert sources.default_selector(pod()) is None


def test_services_selectors_merge() -> None:
    sources = SelectorSources()
    sources.apply(SERVICE, obj("a", {"app": "web"}), deleted=False)
    sources.apply(SERVICE, obj("b", {"tier": "front"}), deleted=False)
    selector = sources.default_selector(pod())
    assert matches(selector, {"app": "web", "tier": "front"})
    assert not matches(selector, {"app": "web"})


def test_nil_service_selector_matches_nothing_and_empty_adds_nothing() -> None:
    sources = SelectorSources()
    sources.apply(SERVICE, obj("nil", None), deleted=False)
    sources.apply(SERVICE, obj("empty", {}), deleted=False)
    assert sources.default_selector(pod()) is None


def test_deleted_service_no_longer_counts() -> None:
    sources = SelectorSources()
    sources.apply(SERVICE, obj("a", {"app": "web"}), deleted=False)
    sources.apply(SERVICE, obj("a", {"app": "web"}), deleted=True)
    assert sources.default_selector(pod()) is None


def test_replication_controller_selector_merges_with_services() -> None:
    sources = SelectorSources()
    sources.apply(SERVICE, obj("a", {"app": "web"}), deleted=False)
    sources.apply(REPLICATION_CONTROLLER, obj("rc", {"track": "stable"}), deleted=False)
    selector = sources.default_selector(pod(("ReplicationController", "rc", "v1")))
    assert matches(selector, {"app": "web", "track": "stable"})
    assert not matches(selector, {"track": "stable"})


@pytest.mark.parametrize("kind", [REPLICA_SET, STATEFUL_SET])
def test_apps_controller_requirements_are_added(kind: str) -> None:
    sources = SelectorSources()
    sources.apply(SERVICE, obj("a", {"app": "web"}), deleted=False)
    raw = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}
    sources.apply(kind, obj("owner", raw), deleted=False)
    selector = sources.default_selector(pod((kind, "owner", "apps/v1")))
    assert matches(selector, {"app": "web", "tier": "x"})
    assert not matches(selector, {"app": "web", "tier": "back"})
    assert not matches(selector, {"tier": "x"})


def test_controller_alone_is_enough() -> None:
    sources = SelectorSources()
    sources.apply(REPLICA_SET, obj("rs", {"matchLabels": {"app": "web"}}), deleted=False)
    selector = sources.default_selector(pod((REPLICA_SET, "rs", "apps/v1")))
    assert matches(selector, {"app": "web"})
    assert not matches(selector, {"app": "db"})


def test_controller_of_another_group_version_or_kind_is_ignored() -> None:
    """Upstream switches on the exact group/version/kind: extensions/v1beta1 ReplicaSets and
    Deployments (pods are never owned by those) do not count."""
    sources = SelectorSources()
    sources.apply(REPLICA_SET, obj("rs", {"matchLabels": {"app": "web"}}), deleted=False)
    assert sources.default_selector(pod((REPLICA_SET, "rs", "extensions/v1beta1"))) is None
    assert sources.default_selector(pod(("Deployment", "rs", "apps/v1"))) is None


def test_missing_controller_object_adds_nothing() -> None:
    sources = SelectorSources()
    assert sources.default_selector(pod((REPLICA_SET, "gone", "apps/v1"))) is None


def test_nil_replica_set_selector_adds_nothing() -> None:
    """LabelSelectorAsSelector(nil) is Nothing, whose Requirements() is not selectable."""
    sources = SelectorSources()
    sources.apply(SERVICE, obj("a", {"app": "web"}), deleted=False)
    sources.apply(REPLICA_SET, obj("rs", None), deleted=False)
    selector = sources.default_selector(pod((REPLICA_SET, "rs", "apps/v1")))
    assert matches(selector, {"app": "web"})


def test_conflicting_requirements_are_kept_both() -> None:
    """A Service's app=web and a ReplicaSet's app=other are both required (upstream Add)."""
    sources = SelectorSources()
    sources.apply(SERVICE, obj("a", {"app": "web"}), deleted=False)
    sources.apply(REPLICA_SET, obj("rs", {"matchLabels": {"app": "other"}}), deleted=False)
    selector = sources.default_selector(pod((REPLICA_SET, "rs", "apps/v1")))
    assert not matches(selector, {"app": "web"})
    assert not matches(selector, {"app": "other"})


def test_malformed_selector_is_refused_and_forgotten() -> None:
    sources = SelectorSources()
    sources.apply(REPLICA_SET, obj("rs", {"matchLabels": {"app": "web"}}), deleted=False)
    bad = {"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}
    with pytest.raises(InvalidObject, match="values"):
        sources.apply(REPLICA_SET, obj("rs", bad), deleted=False)
    assert sources.default_selector(pod((REPLICA_SET, "rs", "apps/v1"))) is None
