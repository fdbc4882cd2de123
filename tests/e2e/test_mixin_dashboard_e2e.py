"""kubernetes-mixin's "Kubernetes / Scheduler" dashboard, as kube-prometheus-stack ships it,
finds data on berth unchanged.

The panels' queries are vendored in tests/data/ (source, commit and license named there). Each
query is parsed with a PromQL parser and each of its vector selectors is matched against the
series one scrape of a running berth's /metrics stores, with the labels the chart's
ServiceMonitor gives the target (job from `serviceMonitor.jobName`, instance, namespace, the
shard). Grafana's variables take the values of a single-cluster install: `$cluster` is empty
(no cluster label, so `cluster=""` matches), `$instance` is the variable's "All".

Where berth finds nothing, upstream kube-scheduler on the same control plane must find nothing
either: a target that finds data on kube-scheduler finds data on berth.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scheduler.harness.plane import ClusterState, http_get
from scheduler.kube.client import Client
from tests import promql
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, Running, assert_no_traceback, start_berth, wait_ready
from tests.e2e.test_deploy import documents, render_chart, wait_for

JSON = dict[str, Any]
DASHBOARD = (
    Path(__file__).resolve().parents[1] / "data" / "kubernetes_mixin_scheduler_dashboard.json"
)

# Grafana's values for the dashboard's variables in a single-cluster install (the cluster
# variable is hidden and has no values, so it is empty), and a rate window.
VARIABLES = {"$__rate_interval": "1m", "$cluster": "", "$instance": ".+"}

# Targets that find nothing on a healthy scheduler, berth or kube-scheduler, and why.
# The code classes fill when the API server answers so; the family is checked instead.
CODE_CLASSES = {"3xx", "4xx", "5xx"}
# kube-scheduler v1.37 registers no scheduler_volume_scheduling_duration_seconds (the volume
# binder's own latency families are gone upstream); the upstream comparison below checks it.
VOLUME = "{{cluster}} {{instance}} volume"


@pytest.fixture(scope="module")
def berth(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A `berth run` of this module's own: on a shared plane, another test session's berth
    would race the session one for pods of schedulerName berth, and bind some of them."""
    name = f"berth-mixin-{uuid.uuid4().hex[:6]}"
    config = (
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "leaderElection: {leaderElect: false}\n"
        f"profiles:\n- schedulerName: {name}\n"
    )
    running = start_berth(config, cluster.kubeconfig, tmp_path_factory.mktemp("mixin"), name)
    try:
        wait_ready(running)
        yield running
    finally:
        running.stop()
    assert_no_traceback(running)


def scheduler_name(running: Running) -> str:
    """The fixture's schedulerName (start_berth names the log after it)."""
    return running.log.stem


def dashboard() -> JSON:
    data: JSON = json.loads(DASHBOARD.read_text())
    return data


def targets() -> list[tuple[str, str, str]]:
    """(panel title, legend, expression with the variables substituted) of every target."""
    out = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], target["legend"], expr))
    return out


def target_labels(namespace: str, address: str) -> dict[str, str]:
    """The labels the Prometheus Operator gives one pod of the default shard, scraped through
    the chart's ServiceMonitor: its generated relabeling (job from jobLabel, else the Service's
    name; namespace, service, pod, container, endpoint; the targetLabels, sanitized), then the
    endpoint's own relabelings."""
    rendered = documents(render_chart(namespace, sets=("serviceMonitor.enabled=true",)))
    (monitor,) = [d for d in rendered if d["kind"] == "ServiceMonitor"]
    (service,) = [d for d in rendered if d["kind"] == "Service"]
    service_labels = service["metadata"]["labels"]
    endpoint = monitor["spec"]["endpoints"][0]
    job_label = monitor["spec"].get("jobLabel")
    labels = {
        "job": service_labels[job_label] if job_label else service["metadata"]["name"],
        "instance": address,
        "namespace": namespace,
        "service": service["metadata"]["name"],
        "pod": "berth-default-0",
        "container": "berth",
        "endpoint": endpoint["port"],
    }
    for name in monitor["spec"].get("targetLabels", []):
        labels[name.replace(".", "_").replace("/", "_").replace("-", "_")] = service_labels[name]
    for rule in endpoint.get("relabelings", []):
        # Only constant replacements are applied here; extend this for other shapes.
        assert rule.get("action", "replace") == "replace" and not rule.get("sourceLabels"), rule
        labels[rule["targetLabel"]] = rule["replacement"]
    return labels


def with_data(series: list[promql.Series]) -> dict[tuple[str, str], list[str]]:
    """(panel, legend) -> the target's selectors that find nothing in `series`."""
    return {
        (title, legend): [str(s) for s in promql.selectors(expr) if not promql.found(s, series)]
        for title, legend, expr in targets()
    }


def scheduled(body: str) -> float:
    """scheduler_schedule_attempts_total{result="scheduled"}, summed over profiles."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "scheduler_schedule_attempts_total"
        and sample.labels.get("result") == "scheduled"
    )


async def scrape_once_scheduled(get: Callable[[], str | None]) -> str:
    """A scrape that counts a scheduled attempt: a pod shows its node a moment before the
    scheduler, back from the bind call, records the attempt (and the SLI with it)."""

    async def probe() -> str | None:
        body = await asyncio.to_thread(get)
        return body if body and scheduled(body) else None

    return await wait_for(probe)


def berth_metrics(running: Running) -> Callable[[], str | None]:
    url = f"http://127.0.0.1:{running.port}/metrics"
    return lambda: urllib.request.urlopen(url, timeout=5).read().decode()


async def schedule(client: Client, namespace: str, scheduler: str, count: int) -> None:
    """Create `count` small pods for `scheduler` and wait until each is bound."""
    names = [f"{scheduler}-{i}" for i in range(count)]
    for name in names:
        pod = make_pod(name).scheduler(scheduler).for_api()
        await client.post(f"/api/v1/namespaces/{namespace}/pods", pod)

    async def bound() -> bool:
        pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
        nodes = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
        return all(nodes.get(name) for name in names)

    await wait_for(bound)


async def test_every_panel_of_the_scheduler_dashboard_finds_data_on_berth(
    berth: Running, client: Client, namespace: str
) -> None:
    """After berth bound pods, every target of every panel finds at least one series, but for
    the API answer classes a healthy cluster does not produce (their family is there) and the
    volume series kube-scheduler does not expose either."""
    await schedule(client, namespace, scheduler_name(berth), 3)
    body = await scrape_once_scheduled(berth_metrics(berth))
    labels = target_labels(namespace, f"10.0.0.1:{berth.port}")
    assert labels["job"] == "kube-scheduler", "the dashboard selects job=kube-scheduler"
    series = promql.scrape(body, labels)

    missing = with_data(series)
    panels = {title for title, _, _ in targets()}
    for title in sorted(panels):
        legends = [legend for (t, legend) in missing if t == title]
        assert any(not missing[title, legend] for legend in legends), f"{title}: no data at all"
    unexpected = {
        key: selectors
        for key, selectors in missing.items()
        if selectors and key[1] not in CODE_CLASSES and key[1] != VOLUME
    }
    assert not unexpected, unexpected

    # The code classes' family is there: only the code matcher keeps them empty.
    for title, legend, expr in targets():
        if legend in CODE_CLASSES:
            for selector in promql.selectors(expr):
                assert promql.found(selector, series, frozenset({"code"})), (title, legend)


def upstream_metrics(cluster: Cluster) -> Callable[[], str | None] | None:
    """A scraper of kube-scheduler's /metrics on the test plane (berth's harness runs it), or
    None when the cluster is not one of the harness's (kind, a real cluster)."""
    directory = cluster.directory or Path(cluster.kubeconfig).parent
    state = ClusterState.load(directory)
    if state is None or "kube-scheduler" not in state.ports:
        return None
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    token = (config["users"][0].get("user") or {}).get("token")
    url = f"https://127.0.0.1:{state.ports['kube-scheduler']}/metrics"
    # Its serving certificate is self-signed; the token is authorized by the API server.
    return lambda: http_get(url, token=token, insecure=True)


async def test_berth_finds_data_wherever_kube_scheduler_does(
    cluster: Cluster, berth: Running, client: Client, namespace: str
) -> None:
    """With both schedulers having bound pods, the dashboard's targets that find data on
    upstream kube-scheduler are exactly those that find data on berth (the API answer classes
    aside: they follow each process's history)."""
    upstream_scraper = upstream_metrics(cluster)
    if upstream_scraper is None:
        pytest.skip("no harness kube-scheduler to compare with on this cluster")
    await schedule(client, namespace, "default-scheduler", 1)
    await schedule(client, namespace, scheduler_name(berth), 1)
    upstream = await scrape_once_scheduled(upstream_scraper)
    ours = await scrape_once_scheduled(berth_metrics(berth))
    labels = target_labels(namespace, "10.0.0.1:10259")

    def filled(body: str) -> set[tuple[str, str]]:
        missing = with_data(promql.scrape(body, labels))
        return {key for key, selectors in missing.items() if not selectors}

    berth_targets, upstream_targets = filled(ours), filled(upstream)
    ignore = {key for key in berth_targets | upstream_targets if key[1] in CODE_CLASSES}
    assert berth_targets - ignore == upstream_targets - ignore, (
        f"only berth: {sorted(berth_targets - upstream_targets - ignore)}; "
        f"only kube-scheduler: {sorted(upstream_targets - berth_targets - ignore)}"
    )
    assert not any(legend == VOLUME for _, legend in upstream_targets)
