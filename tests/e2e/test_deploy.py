"""Installing berth: the image recipe, deploy/ (kustomize), the Helm chart, and the RBAC.

The manifests and the chart are checked by the API server itself (`kubectl apply
--dry-run=server`: schemas, defaulting, admission, PodSecurity), and the RBAC is checked the only
way that counts: berth runs with a TokenRequest token of the ServiceAccount it ships with, and
schedules pods, while a request outside the rules is refused.

The helpers at the top are shared with test_webhook.py and test_shards.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

import plugins
from scheduler.cli import _parser as cli_parser
from scheduler.config import SchedulerConfig
from scheduler.config import load as _load
from scheduler.harness.binaries import binary
from scheduler.kube.client import ApiError, Client
from scheduler.metrics import Metrics
from scheduler.webhook import parse_rules
from tests import promql
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, start_berth

T = TypeVar("T")
JSON = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = REPO / "helm" / "berth"
CI_VALUES = CHART / "ci" / "shards-values.yaml"


# --- shared helpers ----------------------------------------------------------------------


def run(
    args: list[str | Path], *, stdin: str | None = None, kubeconfig: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    return subprocess.run(
        [str(a) for a in args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def kubectl(cluster: Cluster, *args: str | Path, stdin: str | None = None) -> str:
    result = run([binary("kubectl"), *args], stdin=stdin, kubeconfig=cluster.kubeconfig)
    assert result.returncode == 0, f"kubectl {' '.join(map(str, args))}:\n{result.stderr}"
    return result.stdout


def helm(*args: str | Path) -> str:
    result = run([binary("helm"), *args])
    assert result.returncode == 0, f"helm {' '.join(map(str, args))}:\n{result.stderr}"
    return result.stdout


def render_chart(namespace: str, *values: Path, sets: tuple[str, ...] = ()) -> str:
    args: list[str | Path] = ["template", "berth", CHART, "--namespace", namespace]
    for path in values:
        args += ["--values", path]
    for item in sets:
        args += ["--set", item]
    return helm(*args)


def load_config(path: Path) -> SchedulerConfig:
    """Parse a KubeSchedulerConfiguration exactly as `berth run` does."""
    return _load(path, plugins.registry().keys())


def documents(text: str) -> list[JSON]:
    return [d for d in yaml.safe_load_all(text) if d]


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float = 60.0) -> T:
    """Poll until `probe` returns something truthy (bounded, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if result := await probe():
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.2)


async def http_ok(url: str) -> bool:
    def get() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return await asyncio.to_thread(get)


_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
}


def relocate(objects: list[JSON], namespace: str, suffix: str) -> list[JSON]:
    """Move RBAC objects into `namespace` and give cluster-scoped ones a unique name, so a test
    never touches a real installation on a shared cluster."""
    out = []
    # Only the ClusterRoles shipped alongside are renamed; built-in ones (system:auth-delegator)
    # keep their names.
    shipped = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"}
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        meta = obj["metadata"]
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            meta["name"] = f"{meta['name']}-{suffix}"
        else:
            meta["namespace"] = namespace
        if obj["kind"] == "ClusterRoleBinding" and obj["roleRef"]["name"] in shipped:
            obj["roleRef"]["name"] = f"{obj['roleRef']['name']}-{suffix}"
        for subject in obj.get("subjects", []):
            subject["namespace"] = namespace
        out.append(obj)
    return out


@asynccontextmanager
async def installed(client: Client, objects: list[JSON], namespace: str) -> AsyncIterator[None]:
    """Create the objects; delete the cluster-scoped ones afterwards (the namespaced ones go
    with the test's namespace)."""
    made: list[str] = []
    try:
        for obj in objects:
            path = _PATHS[obj["kind"]].format(ns=namespace)
            await client.post(path, obj)
            made.append(f"{path}/{obj['metadata']['name']}")
        yield
    finally:
        for path in made:
            if "/namespaces/" not in path:
                try:
                    await client.delete(path)
                except ApiError as err:
                    if err.status != 404:
                        raise


async def token_kubeconfig(
    client: Client, cluster: Cluster, namespace: str, account: str, path: Path
) -> str:
    """A kubeconfig that authenticates as the ServiceAccount, with a TokenRequest token."""
    answer = await client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context_name = admin.get("current-context") or admin["contexts"][0]["name"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == context_name)
    entry = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    base = Path(cluster.kubeconfig).parent
    server = dict(entry["cluster"])
    if "certificate-authority" in server:  # relative paths are relative to the kubeconfig
        server["certificate-authority"] = str(base / server["certificate-authority"])
    user = f"{namespace}-{account}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": user, "user": {"token": answer["status"]["token"]}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": user}}],
                "current-context": "c",
            }
        )
    )
    return str(path)


async def status_of(client: Client, method: str, path: str, body: Any = None) -> int:
    try:
        await client.request(method, path, body=body)
    except ApiError as err:
        return err.status
    return 200


# --- the image ---------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_installs_berth_as_a_non_root_user() -> None:
    """Static checks of what cannot be built here (no Docker engine): base, install, user."""
    steps = dockerfile()
    args = dict(a.split("=", 1) for i, a in steps if i == "ARG" and "=" in a)
    bases = [
        a.split()[0].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", ""))
        for i, a in steps
        if i == "FROM"
    ]
    assert bases and all(b == "python:3.11-slim" for b in bases), bases
    runs = " ".join(a for i, a in steps if i == "RUN")
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", runs), "the package is pip-installed"
    # Without extras: matplotlib (`bench`) stays out of the image.
    assert not re.search(r"pip install [^&]*\.\[", runs), "no extras in the image"
    final = steps[max(n for n, (i, _) in enumerate(steps) if i == "FROM") :]
    users = [a for i, a in final if i == "USER"]
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid, so runAsNonRoot can check it"
    assert ("EXPOSE", "10259") in final
    entry = json.loads(next(a for i, a in final if i == "ENTRYPOINT"))
    cmd = json.loads(next(a for i, a in final if i == "CMD"))
    assert entry == ["berth"] and cmd[0] == "run", (entry, cmd)
    # Every COPY source exists in the build context.
    for i, a in steps:
        if i == "COPY" and not a.startswith("--from"):
            for source in a.split()[:-1]:
                assert (REPO / source).exists(), source


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            verdict = not negate
    return verdict


def test_docker_build_context_builds_the_package(tmp_path: Path) -> None:
    """The files .dockerignore lets through are enough to build berth's wheel, with the
    `berth` console script and every package (what `pip install .` in the image does)."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = tmp_path / "context"
    reincluded = [p.lstrip("!").strip("/") for p in patterns if p.startswith("!")]
    for root, dirs, files in os.walk(REPO):
        base = Path(root).relative_to(REPO).as_posix().removeprefix(".")
        # Skip whole ignored trees (.venv, .git) unless a `!` pattern reaches inside them.
        dirs[:] = [
            d
            for d in dirs
            if not _ignored(f"{base}/{d}".lstrip("/"), patterns)
            or any(r.startswith(f"{base}/{d}/".lstrip("/")) for r in reincluded)
        ]
        for name in files:
            rel = f"{base}/{name}".lstrip("/")
            if not _ignored(rel, patterns):
                (context / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, context / rel)
    shipped = {p.relative_to(context).parts[0] for p in context.rglob("*")}
    assert shipped == {"pyproject.toml", "README.md", "scheduler", "plugins"}, shipped
    result = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            tmp_path / "wheels",
            context,
        ]
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("berth_scheduler-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "berth = scheduler.cli:main" in archive.read(entry_points).decode()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    # What `pip install .` pulls in: matplotlib only with the `bench` extra.
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    plain = [r for r in requires if "extra ==" not in r]
    assert plain and not any(r.startswith("matplotlib") for r in plain), plain
    assert any(r.startswith("matplotlib") and 'extra == "bench"' in r for r in requires), requires
    for module in REPO.glob("scheduler/**/*.py"):
        assert module.relative_to(REPO).as_posix() in names
    for module in REPO.glob("plugins/**/*.py"):
        assert module.relative_to(REPO).as_posix() in names


# --- deploy/ -----------------------------------------------------------------------------


def overlay(tmp_path: Path, namespace: str) -> Path:
    """A kustomization that moves deploy/ into the test's namespace (the real berth-system
    cannot be used: a dry-run Namespace is not created, so its objects would be refused)."""
    directory = tmp_path / "overlay"
    directory.mkdir()
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "resources": [os.path.relpath(DEPLOY, directory)],
            }
        )
    )
    return directory


def test_deploy_manifests_pass_server_dry_run(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """`kubectl apply -k deploy/` is accepted by the API server, object by object."""
    rendered = documents(kubectl(cluster, "kustomize", DEPLOY))
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",  # berth
            "ClusterRole",  # berth-metrics-reader
            "ClusterRoleBinding",  # berth
            "ClusterRoleBinding",  # berth-auth-delegator
            "ClusterRoleBinding",  # berth-metrics-reader
            "Role",
            "RoleBinding",  # leader election
            "RoleBinding",  # kube-system: extension-apiserver-authentication-reader
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Service",
            "FlowSchema",
            "FlowSchema",
        ]
    )
    assert {
        d["metadata"].get("namespace")
        for d in rendered
        if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "FlowSchema")
        and d["metadata"]["name"] != "berth-extension-apiserver-authentication-reader"
    } == {"berth-system"}
    (reader,) = [d for d in rendered if d["kind"] == "RoleBinding" and "authentication" in str(d)]
    assert reader["metadata"]["namespace"] == "kube-system"  # not moved by kustomize
    out = kubectl(cluster, "apply", "-k", overlay(tmp_path, namespace), "--dry-run=server")
    assert out.count("(server dry run)") == len(rendered), out

    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # HTTPS on 10259 as kube-scheduler; no plain port.
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert "--secure-port=10259" in container["args"]
    assert not any(a.startswith("--port") for a in container["args"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    config_map = next(d for d in rendered if d["metadata"]["name"] == "berth-config")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_map["data"]["config.yaml"])
    config = load_config(config_file)
    assert [p.scheduler_name for p in config.profiles] == ["berth"]
    assert config.leader_election.leader_elect
    assert config.leader_election.resource_name == "berth"
    assert config.leader_election.resource_namespace == "berth-system"


def test_grafana_dashboard_uses_kube_scheduler_metric_names() -> None:
    """The dashboard (deploy/ and the chart's copy are the same file) queries the upstream names."""
    text = (DEPLOY / "grafana" / "berth.json").read_text()
    assert text == (CHART / "dashboards" / "berth.json").read_text()
    exprs = " ".join(t["expr"] for p in json.loads(text)["panels"] for t in p.get("targets", []))
    for metric in (
        "scheduler_schedule_attempts_total",
        "scheduler_scheduling_attempt_duration_seconds",
        "scheduler_pod_scheduling_sli_duration_seconds",
        "scheduler_pending_pods",
        "scheduler_plugin_execution_duration_seconds",
        "scheduler_framework_extension_point_duration_seconds",
    ):
        assert metric in exprs, metric


SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"


@pytest.fixture
async def service_monitor_crd(client: Client) -> AsyncIterator[None]:
    """The ServiceMonitor CRD: the cluster's own if it has one, else a permissive stand-in for
    the duration of the test (the Prometheus Operator is not part of the test plane)."""
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    try:
        await client.get(f"{path}/{SERVICE_MONITOR_CRD}")
        yield
        return
    except ApiError as err:
        if err.status != 404:
            raise
    await client.post(
        path,
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": SERVICE_MONITOR_CRD},
            "spec": {
                "group": "monitoring.coreos.com",
                "scope": "Namespaced",
                "names": {
                    "plural": "servicemonitors",
                    "singular": "servicemonitor",
                    "kind": "ServiceMonitor",
                    "listKind": "ServiceMonitorList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        },
    )

    async def established() -> bool:
        crd = await client.get(f"{path}/{SERVICE_MONITOR_CRD}")
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    try:
        await wait_for(established, timeout=30)
        yield
    finally:
        await client.delete(f"{path}/{SERVICE_MONITOR_CRD}")


async def test_service_monitors_pass_server_dry_run(
    cluster: Cluster, namespace: str, service_monitor_crd: None
) -> None:
    """deploy/optional/servicemonitor.yaml and the chart's (serviceMonitor.enabled) apply."""

    async def dry_run(text: str) -> str:
        result = await asyncio.to_thread(
            run,
            [binary("kubectl"), "apply", "--dry-run=server", "-f", "-"],
            stdin=text,
            kubeconfig=cluster.kubeconfig,
        )
        return result.stdout if result.returncode == 0 else ""

    (monitor,) = documents((DEPLOY / "optional" / "servicemonitor.yaml").read_text())
    monitor["metadata"]["namespace"] = namespace
    monitor["spec"]["namespaceSelector"]["matchNames"] = [namespace]
    # A new CRD takes a moment to be served for writes, even after Established.
    assert "(server dry run)" in await wait_for(lambda: dry_run(yaml.safe_dump(monitor)), 30)
    chart = [
        d
        for d in documents(render_chart(namespace, sets=("serviceMonitor.enabled=true",)))
        if d["kind"] == "ServiceMonitor"
    ]
    assert len(chart) == 1
    assert "(server dry run)" in await dry_run(yaml.safe_dump(chart[0]))


# --- the Helm chart ----------------------------------------------------------------------


MONITORING = ("serviceMonitor.enabled=true", "prometheusRule.enabled=true")


@pytest.mark.parametrize(
    ("values", "sets"),
    [
        pytest.param((), (), id="defaults"),
        pytest.param((CI_VALUES,), (), id="two-shards"),
        pytest.param((CI_VALUES,), MONITORING, id="two-shards-monitored"),
    ],
)
def test_helm_lint(values: tuple[Path, ...], sets: tuple[str, ...]) -> None:
    """`helm lint --strict` passes with the default values, with two shards + webhook, and
    with the ServiceMonitor and the PrometheusRule on."""
    args: list[str | Path] = ["lint", "--strict", CHART]
    for path in values:
        args += ["--values", path]
    for item in sets:
        args += ["--set", item]
    assert "0 chart(s) failed" in helm(*args)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(
            (
                "shards[0].name=a",
                "shards[0].schedulerName=berth",
                "shards[1].name=b",
                "shards[1].schedulerName=berth",
            ),
            'schedulerName "berth" is already served by shard "a"',
            id="two-shards-one-scheduler-name",
        ),
        pytest.param(
            ("webhook.enabled=true", "webhook.rules[0].name=r", "webhook.rules[0].schedulerName=x"),
            'webhook.rules[0].schedulerName: "x" is not served by any shard',
            id="rule-for-an-unknown-scheduler",
        ),
        pytest.param(
            ("shards[0].name=a", "shards[0].schedulerName=s", "shards[0].nodeselector.x=y"),
            "additional properties 'nodeselector' not allowed",
            id="misspelt-shard-field",
        ),
        pytest.param(
            ("prometheusRule.enabled=true",),
            "prometheusRule.enabled: needs serviceMonitor.enabled",
            id="alerts-without-a-scrape",
        ),
        pytest.param(
            ("featureGates.SchedulerAsyncPreemption=yes",),
            "at '/featureGates/SchedulerAsyncPreemption': got string, want boolean",
            id="feature-gate-not-a-bool",
        ),
        pytest.param(("logLevel=-1",), "at '/logLevel': minimum", id="negative-log-level"),
    ],
)
def test_chart_refuses_broken_values(sets: tuple[str, ...], message: str) -> None:
    """Values that would install shards fighting over pods, or routes to nowhere, fail."""
    args: list[str | Path] = ["template", "berth", CHART]
    for item in sets:
        args += ["--set", item]
    result = run([binary("helm"), *args])
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "values", [pytest.param((), id="defaults"), pytest.param((CI_VALUES,), id="two-shards")]
)
def test_rendered_chart_passes_server_dry_run(
    cluster: Cluster, namespace: str, tmp_path: Path, values: tuple[Path, ...]
) -> None:
    """Everything the chart renders is accepted by the API server; each shard's ConfigMap is a
    configuration berth accepts, with its own Lease and node pool, and the Role names them."""
    text = render_chart(namespace, *values)
    rendered = documents(text)
    out = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=text)
    assert out.count("(server dry run)") == len(rendered), out

    shard_values = (yaml.safe_load(values[0].read_text()) if values else {}).get("shards") or [
        {"name": "default", "schedulerName": "berth", "nodeSelector": {}}
    ]
    # The chart grants exactly what deploy/ grants.
    (cluster_role,) = [
        d for d in rendered if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "berth"
    ]
    deployed_roles = {
        d["metadata"]["name"]: d
        for d in documents((DEPLOY / "rbac.yaml").read_text())
        if d["kind"] == "ClusterRole"
    }
    assert cluster_role["rules"] == deployed_roles["berth"]["rules"]
    (reader,) = [
        d
        for d in rendered
        if d["metadata"]["name"] == "berth-metrics-reader" and d["kind"] == "ClusterRole"
    ]
    assert reader["rules"] == deployed_roles["berth-metrics-reader"]["rules"]
    bindings = {
        (d["kind"], d["roleRef"]["name"], d["metadata"].get("namespace"))
        for d in rendered
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding")
    }
    assert ("ClusterRoleBinding", "system:auth-delegator", None) in bindings
    assert ("RoleBinding", "extension-apiserver-authentication-reader", "kube-system") in bindings
    role = next(d for d in rendered if d["kind"] == "Role")
    leases = set(role["rules"][1]["resourceNames"])
    for shard in shard_values:
        config_map = next(
            d
            for d in rendered
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"berth-{shard['name']}-config"
        )
        path = tmp_path / f"{shard['name']}.yaml"
        path.write_text(config_map["data"]["config.yaml"])
        config = load_config(path)
        assert [p.scheduler_name for p in config.profiles] == [shard["schedulerName"]]
        assert config.node_selector == shard.get("nodeSelector", {})
        assert config.leader_election.resource_namespace == namespace
        assert config.leader_election.resource_name == f"berth-{shard['name']}"
        assert config.leader_election.resource_name in leases
    rules = [d for d in rendered if d["metadata"]["name"] == "berth-webhook-rules"]
    if values:
        (rules_map,) = rules
        assert [r.name for r in parse_rules(yaml.safe_load(rules_map["data"]["rules.yaml"]))] == [
            "gpu",
            "ml-namespaces",
            "web",
        ]
        (hook,) = [d for d in rendered if d["kind"] == "MutatingWebhookConfiguration"]
        assert hook["webhooks"][0]["failurePolicy"] == "Ignore"
        assert hook["webhooks"][0]["timeoutSeconds"] <= 5
    else:
        assert not rules


def berth_series_names() -> set[str]:
    """Every sample name berth's /metrics can carry (each family with its type's suffixes),
    and Prometheus's own `up`."""
    metrics = Metrics()
    metrics.set_leader("berth", True)  # leader_election_* registers with the first elector
    names = {"up"}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    for family in metrics.registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def test_prometheus_rule_alerts_on_berth_series() -> None:
    """The PrometheusRule renders; every alert has a `for`, a severity, a summary, a
    description and a runbook that docs/deploy.md has; every expression is PromQL whose
    selectors name a series berth exposes, scraped by the chart's ServiceMonitor (its job and
    shard label) in the release namespace."""
    rendered = documents(render_chart("berth-system", CI_VALUES, sets=MONITORING))
    (rule,) = [d for d in rendered if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (monitor,) = [d for d in rendered if d["kind"] == "ServiceMonitor"]
    (relabel,) = monitor["spec"]["endpoints"][0]["relabelings"]
    assert relabel["targetLabel"] == "job" and relabel["replacement"] == "kube-scheduler"
    values = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]
    docs = (REPO / "docs" / "deploy.md").read_text()
    names = berth_series_names()
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(alerts) >= 8
    for alert in alerts:
        name = alert["alert"]
        assert re.fullmatch(r"Berth[A-Za-z]+", name) and alert["for"], name
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], name
        assert notes["runbook_url"] == f"{values['runbookURL']}#{name.lower()}"
        assert re.search(rf"^#+ {name}$", docs, re.MULTILINE), f"docs/deploy.md: no {name}"
        for selector in promql.selectors(alert["expr"]):
            assert selector.name in names, (name, selector.name)
            matchers = {(m.name, str(m.op), m.value) for m in selector.matchers.matchers}
            assert ("job", "MatchOp.Equal", "kube-scheduler") in matchers, (name, str(selector))
            assert ("namespace", "MatchOp.Equal", "berth-system") in matchers, name
            assert ("berth_dev_shard", "MatchOp.NotEqual", "") in matchers, name


@pytest.mark.parametrize(
    ("sets", "extra"),
    [
        pytest.param((), [], id="defaults"),
        pytest.param(
            (
                "logLevel=4",
                "featureGates.SchedulerAsyncPreemption=true",
                "featureGates.SchedulerQueueingHints=false",
                "extraArgs[0]=--api-unreachable-timeout=120",
            ),
            [
                "--v=4",
                "--feature-gates=SchedulerAsyncPreemption=true,SchedulerQueueingHints=false",
                "--api-unreachable-timeout=120",
            ],
            id="log-level-gates-extra-args",
        ),
        pytest.param(("logLevel=0",), ["--v=0"], id="log-level-zero"),
    ],
)
def test_chart_values_become_berth_run_flags(sets: tuple[str, ...], extra: list[str]) -> None:
    """logLevel, featureGates and extraArgs follow the chart's own flags of every shard's
    `berth run`, in a form `berth run` parses."""
    rendered = documents(render_chart("berth-system", CI_VALUES, sets=sets))
    deployments = [
        d
        for d in rendered
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "scheduler"
    ]
    assert len(deployments) == 2  # the CI values' shards
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        chart_own = args[: len(args) - len(extra)]
        assert args[len(chart_own) :] == extra, args
        assert not any(a.startswith(("--v=", "--feature-gates")) for a in chart_own), args
        assert cli_parser().parse_args(args).func is not None


# --- RBAC: berth with the deployed ServiceAccount's token ---------------------------------


@pytest.fixture
async def berth_account(
    client: Client, cluster: Cluster, namespace: str, tmp_path: Path
) -> AsyncIterator[str]:
    """deploy/'s ServiceAccount and RBAC, moved into the test namespace; yields a kubeconfig
    with a TokenRequest token for that account."""
    objects = documents((DEPLOY / "serviceaccount.yaml").read_text())
    objects += documents((DEPLOY / "rbac.yaml").read_text())
    suffix = uuid.uuid4().hex[:8]
    async with installed(client, relocate(objects, namespace, suffix), namespace):
        yield await token_kubeconfig(
            client, cluster, namespace, "berth", tmp_path / "sa.kubeconfig"
        )


async def test_berth_schedules_with_the_service_account_token_and_nothing_more(
    cluster: Cluster, client: Client, namespace: str, berth_account: str, tmp_path: Path
) -> None:
    """With only deploy/'s RBAC, berth elects itself, binds pods with events and reports an
    unschedulable pod on its status; a request outside the rules is refused with 403."""
    scheduler = f"berth-rbac-{uuid.uuid4().hex[:6]}"
    config = f"""\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
  resourceName: berth
  resourceNamespace: {namespace}
profiles:
- schedulerName: {scheduler}
"""
    async with Client.from_kubeconfig(berth_account, qps=0) as restricted:
        # RBAC objects reach the authorizer's cache a moment after they are created.
        await wait_for(lambda: _allowed(restricted, "/api/v1/nodes"), timeout=30)
        running = start_berth(config, berth_account, tmp_path, "rbac")
        try:
            assert await wait_for(lambda: http_ok(f"http://127.0.0.1:{running.port}/readyz"))
            for i in range(5):
                pod = make_pod(f"fits-{i}").scheduler(scheduler).req(cpu="100m", memory="64Mi")
                await client.post(f"/api/v1/namespaces/{namespace}/pods", pod.for_api())
            huge = make_pod("too-big").scheduler(scheduler).req(cpu="100000")
            await client.post(f"/api/v1/namespaces/{namespace}/pods", huge.for_api())

            async def bound() -> list[str] | None:
                pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
                nodes = [
                    p["spec"].get("nodeName") for p in pods if p["metadata"]["name"] != "too-big"
                ]
                return nodes if len(nodes) == 5 and all(nodes) else None

            await wait_for(bound)

            async def reported() -> bool:
                pod = await client.get(f"/api/v1/namespaces/{namespace}/pods/too-big")
                conditions = pod.get("status", {}).get("conditions", [])
                return any(
                    c["type"] == "PodScheduled" and c["status"] == "False" for c in conditions
                )

            await wait_for(reported)

            async def events() -> set[str] | None:
                items = (await client.get(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"))[
                    "items"
                ]
                reasons = {e["reason"] for e in items if e.get("reportingController") == scheduler}
                return reasons if {"Scheduled", "FailedScheduling"} <= reasons else None

            await wait_for(events)
            # A repeated failure PATCHes the event's series (client-go's events broadcaster):
            # the ServiceAccount may patch the events berth wrote.
            items = (await client.get(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"))[
                "items"
            ]
            failed = next(e for e in items if e["reason"] == "FailedScheduling")
            event_path = (
                f"/apis/events.k8s.io/v1/namespaces/{namespace}/events/{failed['metadata']['name']}"
            )
            series = {"series": {"count": 2, "lastObservedTime": failed["eventTime"]}}
            await restricted.patch(event_path, series, kind="merge")
            lease = await client.get(
                f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/berth"
            )
            assert lease["spec"]["holderIdentity"]
        finally:
            running.stop()
        log = running.log.read_text()
        assert "Forbidden" not in log and " 403" not in log, log[-3000:]

        # Outside the rules: refused.
        probe = f"berth-rbac-probe-{uuid.uuid4().hex[:6]}"  # 404, not a deleted node, if allowed
        assert await status_of(restricted, "DELETE", f"/api/v1/nodes/{probe}") == 403
        assert (
            await status_of(
                restricted,
                "POST",
                f"/api/v1/namespaces/{namespace}/pods",
                make_pod("not-mine").for_api(),
            )
            == 403
        )
        assert await status_of(restricted, "GET", f"/api/v1/namespaces/{namespace}/secrets") == 403
        other_lease = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/other"
        assert await status_of(restricted, "GET", other_lease) == 403
        kube_system_lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/berth"
        assert await status_of(restricted, "GET", kube_system_lease) == 403


async def _allowed(client: Client, path: str) -> bool:
    return await status_of(client, "GET", path) == 200
