"""scheduler.webhook: rule parsing and validation, the routing decision, the namespace cache."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from scheduler import webhook
from scheduler.labels import LabelSelector, Requirement
from scheduler.webhook import (
    Decision,
    NamespaceLabels,
    Rule,
    RulesError,
    admit,
    decide,
    parse_rules,
    requested_resources,
)
from tests.builders import make_pod

REPO = Path(__file__).resolve().parents[2]

RULES = parse_rules(
    yaml.safe_load(
        """
rules:
- name: gpu
  schedulerName: berth-train
  match:
    resources: [nvidia.com/gpu, amd.com/gpu]
- name: ml-namespaces
  schedulerName: berth-train
  match:
    namespaceSelector: {matchLabels: {team: ml}}
- name: web
  schedulerName: berth-web
  match:
    namespaces: [shop, checkout]
    podSelector:
      matchExpressions:
      - {key: tier, operator: In, values: [web, api]}
- name: batch
  schedulerName: berth-batch
  match:
    podSelector:
      matchLabels: {kind: batch}
      matchExpressions:
      - {key: urgent, operator: DoesNotExist}
"""
    )
)


def pod(
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    scheduler: str | None = None,
    node: str | None = None,
    **resources: str,
) -> dict[str, Any]:
    builder = make_pod("p").namespace(namespace)
    if scheduler is not None:
        builder.scheduler(scheduler)
    if node is not None:
        builder.node(node)
    obj = builder.obj_()
    if labels:
        obj["metadata"]["labels"] = dict(labels)
    if resources:
        limits = {k.replace("__", "/").replace("_", "."): v for k, v in resources.items()}
        obj["spec"]["containers"][0]["resources"] = {"limits": limits}
    return obj


GPU = {"nvidia_com__gpu": "1"}


@pytest.mark.parametrize(
    ("the_pod", "ns_labels", "expected"),
    [
        pytest.param(pod(**GPU), {}, Decision("berth-train", "matched", "gpu"), id="gpu-limit"),
        pytest.param(
            pod(namespace="shop", labels={"tier": "web"}, **GPU),
            {},
            Decision("berth-train", "matched", "gpu"),
            id="first-matching-rule-wins",
        ),
        pytest.param(
            pod(nvidia_com__gpu="0"),
            {},
            Decision(None, "no rule matched"),
            id="zero-gpus-is-no-gpu",
        ),
        pytest.param(
            pod(namespace="ml"),
            {"team": "ml"},
            Decision("berth-train", "matched", "ml-namespaces"),
            id="namespace-labels",
        ),
        pytest.param(
            pod(namespace="shop", labels={"tier": "api"}),
            {},
            Decision("berth-web", "matched", "web"),
            id="namespace-and-pod-labels",
        ),
        pytest.param(
            pod(namespace="shop", labels={"tier": "db"}),
            {},
            Decision(None, "no rule matched"),
            id="pod-labels-do-not-match",
        ),
        pytest.param(
            pod(namespace="blog", labels={"tier": "web"}),
            {},
            Decision(None, "no rule matched"),
            id="namespace-not-listed",
        ),
        pytest.param(
            pod(labels={"kind": "batch"}),
            {},
            Decision("berth-batch", "matched", "batch"),
            id="match-labels-and-does-not-exist",
        ),
        pytest.param(
            pod(labels={"kind": "batch", "urgent": "yes"}),
            {},
            Decision(None, "no rule matched"),
            id="does-not-exist-fails",
        ),
        pytest.param(
            pod(scheduler="my-scheduler", **GPU),
            {},
            Decision(None, "names scheduler my-scheduler"),
            id="named-scheduler-is-left-alone",
        ),
        pytest.param(
            pod(scheduler="default-scheduler", **GPU),
            {},
            Decision("berth-train", "matched", "gpu"),
            id="explicit-default-scheduler-is-routed",
        ),
        pytest.param(
            pod(node="node-1", **GPU),
            {},
            Decision(None, "already bound to a node"),
            id="bound-pod-is-left-alone",
        ),
        pytest.param(
            pod(namespace="ml"),
            None,
            Decision(None, "namespace labels unavailable", "ml-namespaces"),
            id="unknown-namespace-labels-stop-the-search",
        ),
        pytest.param(
            pod(namespace="shop", labels={"tier": "web"}, **GPU),
            None,
            Decision("berth-train", "matched", "gpu"),
            id="unknown-namespace-labels-do-not-matter-before-that-rule",
        ),
    ],
)
def test_decide(
    the_pod: dict[str, Any], ns_labels: dict[str, str] | None, expected: Decision
) -> None:
    """The first rule whose every criterion holds names the scheduler."""
    assert decide(RULES, the_pod, ns_labels) == expected


def test_no_rules_leave_every_pod_alone() -> None:
    """An empty rule list is valid and changes nothing."""
    assert parse_rules({"rules": []}) == []
    assert decide([], pod(**GPU), {}) == Decision(None, "no rule matched")


def test_a_rule_without_match_takes_every_pod() -> None:
    """A rule with no `match` is a catch-all (useful last)."""
    (rule,) = parse_rules({"rules": [{"name": "all", "schedulerName": "berth"}]})
    assert decide([rule], pod(), {}) == Decision("berth", "matched", "all")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"containers": [{"name": "c"}]}, set(), id="nothing"),
        pytest.param(
            {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "0"}}}]},
            {"cpu"},
            id="zero-is-not-requested",
        ),
        pytest.param(
            {
                "containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}],
                "initContainers": [{"resources": {"requests": {"example.com/fpga": "1"}}}],
            },
            {"nvidia.com/gpu", "example.com/fpga"},
            id="limits-and-init-containers",
        ),
        pytest.param(
            {"containers": [], "resources": {"requests": {"cpu": "500m"}}},
            {"cpu"},
            id="pod-level-resources",
        ),
        pytest.param(
            {"containers": [{"resources": {"requests": {"cpu": "0m", "memory": "0.0Gi"}}}]},
            set(),
            id="zero-with-units",
        ),
    ],
)
def test_requested_resources(spec: dict[str, Any], expected: set[str]) -> None:
    """Names with a non-zero quantity in any container's requests or limits."""
    assert requested_resources({"spec": spec}) == expected


def test_parsed_rule_values() -> None:
    """Parsing keeps order and turns YAML into frozen values."""
    assert [r.name for r in RULES] == ["gpu", "ml-namespaces", "web", "batch"]
    assert RULES[2] == Rule(
        name="web",
        scheduler_name="berth-web",
        namespaces=frozenset({"shop", "checkout"}),
        pod_selector=LabelSelector((Requirement("tier", "In", ("web", "api")),)),
    )
    assert RULES[1].needs_namespace_labels and not RULES[0].needs_namespace_labels


@pytest.mark.parametrize(
    ("doc", "errors"),
    [
        pytest.param([], ["<root>: must be a mapping"], id="not-a-mapping"),
        pytest.param({"rule": []}, ["rule: unknown field", "rules: must be a list"], id="typo"),
        pytest.param(
            {"rules": [{"schedulerName": "Bad_Name"}]},
            ["rules[0].name: required", "rules[0].schedulerName: required, a lowercase RFC 1123"],
            id="name-and-scheduler",
        ),
        pytest.param(
            {"rules": [{"name": "a", "schedulerName": "s"}, {"name": "a", "schedulerName": "s"}]},
            ["rules[1].name: duplicate rule name 'a'"],
            id="duplicate-names",
        ),
        pytest.param(
            {"rules": [{"name": "a", "schedulerName": "s", "match": {"labels": {}}}]},
            ["rules[0].match.labels: unknown field"],
            id="unknown-match-field",
        ),
        pytest.param(
            {"rules": [{"name": "a", "schedulerName": "s", "match": {"resources": []}}]},
            ["rules[0].match.resources: must be a non-empty list of strings"],
            id="empty-resource-list",
        ),
        pytest.param(
            {"rules": [{"name": "a", "schedulerName": "s", "match": {"namespaces": "ml"}}]},
            ["rules[0].match.namespaces: must be a non-empty list of strings"],
            id="namespaces-not-a-list",
        ),
        pytest.param(
            {
                "rules": [
                    {
                        "name": "a",
                        "schedulerName": "s",
                        "match": {
                            "podSelector": {
                                "matchLabels": {"gpu": True},
                                "matchExpressions": [
                                    {"key": "k", "operator": "Equals", "values": ["v"]},
                                    {"key": "k", "operator": "In"},
                                    {"key": "k", "operator": "Exists", "values": ["v"]},
                                    {"operator": "Exists"},
                                ],
                            }
                        },
                    }
                ]
            },
            [
                "rules[0].match.podSelector.matchLabels: must map label keys to string values",
                "rules[0].match.podSelector.matchExpressions[0].operator: must be one of",
                "rules[0].match.podSelector.matchExpressions[1].values: must be non-empty",
                "rules[0].match.podSelector.matchExpressions[2].values: must be empty",
                "rules[0].match.podSelector.matchExpressions[3].key: required",
            ],
            id="selector-errors-all-reported",
        ),
        pytest.param(
            {
                "rules": [
                    {
                        "name": "a",
                        "schedulerName": "s",
                        "match": {
                            "namespaceSelector": {
                                "matchLabel": {"team": "ml"},
                                "matchLabels": {"-team": "ml"},
                                "matchExpressions": [
                                    {"key": "tier", "operator": "In", "values": ["web api"]},
                                    {"key": "tier", "operator": "Exists", "value": "x"},
                                ],
                            }
                        },
                    }
                ]
            },
            [
                "rules[0].match.namespaceSelector.matchLabel: unknown field",
                'rules[0].match.namespaceSelector.matchLabels[-team]: invalid label key "-team"',
                "rules[0].match.namespaceSelector.matchExpressions[0].values[0]: invalid label",
                "rules[0].match.namespaceSelector.matchExpressions[1].value: unknown field",
            ],
            id="selector-keys-values-and-fields-checked",
        ),
    ],
)
def test_parse_rules_reports_every_error_with_its_path(doc: Any, errors: list[str]) -> None:
    """Each problem is one entry, prefixed by its field path."""
    with pytest.raises(RulesError) as caught:
        parse_rules(doc)
    assert len(caught.value.errors) == len(errors), caught.value.errors
    for got, want in zip(caught.value.errors, errors, strict=True):
        assert got.startswith(want), (got, want)


def test_load_rules_reports_unreadable_files(tmp_path: Path) -> None:
    """A missing file or broken YAML is a RulesError, not a traceback."""
    with pytest.raises(RulesError, match="No such file"):
        webhook.load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(RulesError):
        webhook.load_rules(bad)


def test_documented_rules_parse() -> None:
    """The module docstring's example and the chart's example values are valid rules."""
    doc = webhook.__doc__ or ""
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert [r.name for r in parse_rules(yaml.safe_load(example))] == [
        "gpu",
        "ml-namespaces",
        "web",
    ]
    values = yaml.safe_load((REPO / "helm/berth/ci/shards-values.yaml").read_text())
    assert len(parse_rules({"rules": values["webhook"]["rules"]})) == 3


# --- the namespace label cache -----------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeNamespaces:
    """An API stand-in: counts fetches, can fail, can hold answers until released."""

    def __init__(self, labels: dict[str, dict[str, str]]) -> None:
        self.labels = labels
        self.calls: list[str] = []
        self.fail = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, name: str) -> Mapping[str, str]:
        self.calls.append(name)
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("API server unreachable")
        return self.labels.get(name, {})


async def test_namespace_labels_are_fetched_once_per_burst() -> None:
    """Concurrent admissions in one namespace share one in-flight fetch."""
    api = FakeNamespaces({"ml": {"team": "ml"}})
    api.gate.clear()
    cache = NamespaceLabels(api, clock=FakeClock())
    waiting = [asyncio.ensure_future(cache.get("ml")) for _ in range(50)]
    await asyncio.sleep(0)
    api.gate.set()
    assert await asyncio.gather(*waiting) == [{"team": "ml"}] * 50
    assert api.calls == ["ml"]


async def test_namespace_labels_expire_after_the_ttl() -> None:
    """A cached answer is reused within the TTL and fetched again after it."""
    api, clock = FakeNamespaces({"ml": {"team": "ml"}}), FakeClock()
    cache = NamespaceLabels(api, ttl=30, clock=clock)
    await cache.get("ml")
    clock.now = 29.9
    await cache.get("ml")
    assert api.calls == ["ml"]
    api.labels["ml"] = {"team": "web"}
    clock.now = 30.1
    assert await cache.get("ml") == {"team": "web"}
    assert api.calls == ["ml", "ml"]


async def test_namespace_labels_unavailable_is_none_and_not_cached() -> None:
    """A failed fetch yields None (the caller leaves the pod alone); the next call retries."""
    api = FakeNamespaces({"ml": {"team": "ml"}})
    api.fail = True
    cache = NamespaceLabels(api, clock=FakeClock())
    assert await cache.get("ml") is None
    api.fail = False
    assert await cache.get("ml") == {"team": "ml"}


async def test_admit_reads_namespace_labels_only_when_a_rule_needs_them() -> None:
    """Rules without namespaceSelector never cost an API request."""
    api = FakeNamespaces({"ml": {"team": "ml"}})
    cache = NamespaceLabels(api, clock=FakeClock())
    without = [r for r in RULES if not r.needs_namespace_labels]
    assert await admit(without, pod(namespace="ml"), cache) == Decision(None, "no rule matched")
    assert api.calls == []
    assert await admit(RULES, pod(namespace="ml"), cache) == Decision(
        "berth-train", "matched", "ml-namespaces"
    )
    assert api.calls == ["ml"]


def test_self_signed_certificate_is_issued_by_its_ca_for_the_hosts(tmp_path: Path) -> None:
    """The generated serving cert names every host (DNS or IP) and chains to ca.crt."""
    files = webhook.self_signed(tmp_path, ["localhost", "127.0.0.1", "berth-webhook.ns.svc"])
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "berth-webhook.ns.svc"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert files.key.stat().st_mode & 0o077 == 0
