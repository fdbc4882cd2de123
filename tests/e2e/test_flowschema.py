"""API Priority and Fairness for berth: deploy/flowschema.yaml and the chart's FlowSchemas.

A FlowSchema only helps if the API server matches berth's requests with it before the bootstrap
`service-accounts` schema (precedence 9000, level workload-low) does: its subject must be the
ServiceAccount that berth runs as (deploy/'s, or the chart's in the release namespace), its
precedence lower, and its priority level one the server has. The server checks the objects
(server dry run) and holds the bootstrap priority levels. Which schema a request really lands
in is measured by the bench under APF (docs/performance.md); the shared plane runs with APF
off.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster
from tests.e2e.test_deploy import DEPLOY, documents, kubectl, render_chart

JSON = dict[str, Any]

# The bootstrap FlowSchema every ServiceAccount outside kube-system falls to
# (k8s.io/apiserver pkg/apis/flowcontrol/bootstrap: SuggestedFlowSchemaServiceAccounts).
SERVICE_ACCOUNTS_PRECEDENCE = 9000


def flow_schemas(objects: list[JSON]) -> dict[str, JSON]:
    return {d["metadata"]["name"]: d for d in objects if d["kind"] == "FlowSchema"}


def split(schemas: dict[str, JSON]) -> tuple[JSON, JSON]:
    """(the schema for all of berth's requests, the one for its Lease)."""
    (leases,) = [s for name, s in schemas.items() if name.endswith("-leader-election")]
    (general,) = [s for s in schemas.values() if s is not leases]
    return general, leases


def subjects(schema: JSON) -> list[JSON]:
    return [s for rule in schema["spec"]["rules"] for s in rule["subjects"]]


def assert_matches_first(cluster: Cluster, schemas: dict[str, JSON], account: JSON) -> None:
    """Every schema names `account` ({name, namespace}), precedes `service-accounts`, and points
    at a priority level the server has; the Lease schema precedes the general one."""
    general, leases = split(schemas)
    for schema in (general, leases):
        assert subjects(schema) == [{"kind": "ServiceAccount", "serviceAccount": account}]
        assert schema["spec"]["matchingPrecedence"] < SERVICE_ACCOUNTS_PRECEDENCE
        level = schema["spec"]["priorityLevelConfiguration"]["name"]
        kubectl(cluster, "get", "prioritylevelconfiguration", level)
    assert general["spec"]["priorityLevelConfiguration"]["name"] == "workload-high"
    assert leases["spec"]["priorityLevelConfiguration"]["name"] == "leader-election"
    assert leases["spec"]["matchingPrecedence"] < general["spec"]["matchingPrecedence"]
    (rule,) = leases["spec"]["rules"]
    assert rule["resourceRules"] == [
        {
            "verbs": ["get", "create", "update"],
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "namespaces": ["*"],
        }
    ]


def test_deploy_flowschemas_match_the_deployed_service_account(cluster: Cluster) -> None:
    rendered = documents(kubectl(cluster, "kustomize", DEPLOY))
    (account,) = [d for d in rendered if d["kind"] == "ServiceAccount"]
    schemas = flow_schemas(rendered)
    assert_matches_first(
        cluster,
        schemas,
        {"name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]},
    )
    assert_accepted(cluster, schemas)


@pytest.mark.parametrize(
    ("sets", "level"),
    [
        pytest.param((), "workload-high", id="defaults"),
        pytest.param(("flowSchema.priorityLevel=workload-low",), "workload-low", id="level-set"),
    ],
)
def test_chart_flowschemas_match_the_release_service_account(
    cluster: Cluster, namespace: str, sets: tuple[str, ...], level: str
) -> None:
    rendered = documents(render_chart(namespace, sets=sets))
    (account,) = [d for d in rendered if d["kind"] == "ServiceAccount"]
    schemas = flow_schemas(rendered)
    if level == "workload-high":
        assert_matches_first(
            cluster, schemas, {"name": account["metadata"]["name"], "namespace": namespace}
        )
    general, _ = split(schemas)
    assert general["spec"]["priorityLevelConfiguration"]["name"] == level
    assert_accepted(cluster, schemas)


def test_chart_flowschemas_can_be_turned_off(namespace: str) -> None:
    rendered = documents(render_chart(namespace, sets=("flowSchema.enabled=false",)))
    assert flow_schemas(rendered) == {}


def assert_accepted(cluster: Cluster, schemas: dict[str, JSON]) -> None:
    text = yaml.safe_dump_all(list(schemas.values()))
    out = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=text)
    assert out.count("(server dry run)") == len(schemas), out
