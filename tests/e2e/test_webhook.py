"""`berth webhook` against the real API server: TLS, routing by rules, and failing open.

The webhook runs locally as a subprocess (self-signed CA, as `berth webhook` makes it without
--tls-cert), authenticated with a TokenRequest token of the chart's webhook ServiceAccount and
ClusterRole, and is registered by URL in a MutatingWebhookConfiguration that only selects this
test's namespaces, so no other test's pods ever reach it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from scheduler.kube.client import ApiError, Client, Credentials
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, free_port
from tests.e2e.test_deploy import (
    CHART,
    documents,
    helm,
    http_ok,
    installed,
    relocate,
    token_kubeconfig,
    wait_for,
)

JSON = dict[str, Any]
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
TIMEOUT_SECONDS = 2  # the registration's timeoutSeconds: how long a hung webhook can delay a pod


@dataclass
class Webhook:
    process: subprocess.Popen[bytes]
    port: int
    health_port: int
    cert_dir: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case a test paused it
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def decisions(self) -> list[JSON]:
        lines = self.log.read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if r.get("msg") == "admission"]


def start_webhook(rules: JSON, kubeconfig: str, directory: Path) -> Webhook:
    """`berth webhook` on free loopback ports with a self-signed certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.yaml").write_text(yaml.safe_dump(rules))
    port, health = free_port(), free_port()
    log = directory / "webhook.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "scheduler.cli", "webhook",
                "--rules", str(directory / "rules.yaml"),
                "--port", str(port),
                "--bind-address", "127.0.0.1",
                "--cert-dir", str(directory / "tls"),
                "--health-port", str(health),
                "--kubeconfig", kubeconfig,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return Webhook(process, port, health, directory / "tls", log)


def skip_unless_loopback(cluster: Cluster) -> None:
    """The webhook listens on this machine's loopback; an API server elsewhere (a kind
    cluster runs it in a container) cannot call it there."""
    host = urlsplit(Credentials.load(cluster.kubeconfig).server).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip(f"the API server ({host}) cannot reach a webhook on this machine's loopback")


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


@asynccontextmanager
async def registered(
    client: Client, webhook: Webhook, selector: dict[str, str], **overrides: Any
) -> AsyncIterator[str]:
    """A MutatingWebhookConfiguration pointing at the local webhook by URL."""
    name = f"berth-test-{uuid.uuid4().hex[:8]}"
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "shard.berth.dev",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{webhook.port}/shard",
                    "caBundle": base64.b64encode(
                        (webhook.cert_dir / "ca.crt").read_bytes()
                    ).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": selector},
                "failurePolicy": "Ignore",
                "timeoutSeconds": TIMEOUT_SECONDS,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                **overrides,
            }
        ],
    }
    await client.post(MWC, body)
    try:
        yield name
    finally:
        await client.delete(f"{MWC}/{name}")


async def create_pod(client: Client, namespace: str, pod: JSON, dry_run: bool = False) -> JSON:
    params = {"dryRun": "All"} if dry_run else None
    created: JSON = await client.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods", body=pod, params=params
    )
    return created


def gpu_pod(name: str) -> JSON:
    pod = make_pod(name).for_api()
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    return pod


@pytest.fixture
async def webhook_account(
    client: Client, cluster: Cluster, namespace: str, tmp_path: Path
) -> AsyncIterator[str]:
    """The chart's webhook ServiceAccount and RBAC in the test namespace; yields a kubeconfig
    with its TokenRequest token."""
    rendered = helm(
        "template", "berth", CHART, "--namespace", namespace,
        "--show-only", "templates/webhook.yaml",
        "--set", "webhook.enabled=true",
        "--set", "webhook.rules[0].name=all",
        "--set", "webhook.rules[0].schedulerName=berth",
    )  # fmt: skip
    wanted = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    objects = [d for d in documents(rendered) if d["kind"] in wanted]
    assert sorted(d["kind"] for d in objects) == sorted(wanted)
    suffix = uuid.uuid4().hex[:8]
    async with installed(client, relocate(objects, namespace, suffix), namespace):
        yield await token_kubeconfig(
            client, cluster, namespace, "berth-webhook", tmp_path / "webhook.kubeconfig"
        )


@pytest.fixture
async def second_namespace(client: Client) -> AsyncIterator[str]:
    """Another namespace for one test (created with labels later), its pods deleted after."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        await client.request(
            "DELETE", f"/api/v1/namespaces/{name}/pods", params={"gracePeriodSeconds": 0}
        )
        await client.delete(f"/api/v1/namespaces/{name}")
    except ApiError as err:
        if err.status != 404:
            raise


@pytest.fixture
def webhook_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "webhook"


async def test_webhook_routes_pods_by_rule_and_fails_open(
    cluster: Cluster,
    client: Client,
    namespace: str,
    second_namespace: str,
    webhook_account: str,
    webhook_dir: Path,
) -> None:
    """Pods created while the webhook runs get their rule's schedulerName (pods naming a
    scheduler keep it); when the webhook hangs or is gone, pods are still created unchanged."""
    skip_unless_loopback(cluster)
    run_id = uuid.uuid4().hex[:8]
    selector = {"berth-test/webhook": run_id}
    ml = f"ml-{run_id}"
    rules = {
        "rules": [
            {
                "name": "gpu",
                "schedulerName": "berth-gpu",
                "match": {"resources": ["nvidia.com/gpu"]},
            },
            {
                "name": "web",
                "schedulerName": "berth-web",
                "match": {
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "tier", "operator": "In", "values": ["web", "api"]}
                        ]
                    }
                },
            },
            {
                "name": "ml",
                "schedulerName": "berth-ml",
                "match": {"namespaceSelector": {"matchLabels": {"team": ml}}},
            },
        ]
    }
    plain = namespace  # matched by no rule
    await client.patch(f"/api/v1/namespaces/{plain}", {"metadata": {"labels": selector}})
    await client.post(
        "/api/v1/namespaces",
        {"metadata": {"name": second_namespace, "labels": {**selector, "team": ml}}},
    )
    webhook = start_webhook(rules, webhook_account, webhook_dir)
    try:
        assert await wait_for(lambda: http_ok(f"http://127.0.0.1:{webhook.health_port}/healthz"))
        assert await wait_for(lambda: listening(webhook.port))
        async with registered(client, webhook, selector):
            # The API server picks a new configuration up a moment after it is created.
            async def active() -> bool:
                probe = await create_pod(client, plain, gpu_pod("probe"), dry_run=True)
                return bool(probe["spec"]["schedulerName"] == "berth-gpu")

            await wait_for(active, timeout=30)

            def labelled(name: str, **labels: str) -> JSON:
                pod = make_pod(name).for_api()
                pod["metadata"]["labels"] = labels
                return pod

            named_spec = {**gpu_pod("named")["spec"], "schedulerName": "mine"}
            cases = [
                (plain, gpu_pod("gpu"), "berth-gpu"),
                (plain, labelled("web", tier="web"), "berth-web"),
                (second_namespace, make_pod("ml").for_api(), "berth-ml"),
                (second_namespace, labelled("ml-api", tier="api"), "berth-web"),  # order
                (plain, make_pod("other").for_api(), "default-scheduler"),
                (plain, gpu_pod("named") | {"spec": named_spec}, "mine"),
                (second_namespace, gpu_pod("ml-gpu"), "berth-gpu"),
            ]
            for ns, pod, _ in cases:
                await create_pod(client, ns, pod)
            for ns, pod, expected in cases:
                name = pod["metadata"]["name"]
                stored = await client.get(f"/api/v1/namespaces/{ns}/pods/{name}")
                assert stored["spec"]["schedulerName"] == expected, name

            logged = {d["pod"]: d for d in webhook.decisions() if not d.get("dryRun")}
            assert logged[f"{plain}/gpu"]["rule"] == "gpu"
            assert logged[f"{second_namespace}/ml"]["schedulerName"] == "berth-ml"
            assert logged[f"{plain}/other"]["reason"] == "no rule matched"
            assert logged[f"{plain}/named"]["reason"] == "names scheduler mine"
            assert "Forbidden" not in webhook.log.read_text()

            # Hung: the API server waits timeoutSeconds, then creates the pod unchanged.
            webhook.process.send_signal(signal.SIGSTOP)
            start = time.monotonic()
            hung = await create_pod(client, plain, gpu_pod("while-hung"))
            waited = time.monotonic() - start
            assert hung["spec"]["schedulerName"] == "default-scheduler"
            assert waited < TIMEOUT_SECONDS + 5, waited

            # Gone: refused connections are ignored at once.
            webhook.stop()
            gone = await create_pod(client, plain, gpu_pod("while-gone"))
            assert gone["spec"]["schedulerName"] == "default-scheduler"
    finally:
        webhook.stop()


def test_webhook_refuses_bad_rules(tmp_path: Path) -> None:
    """A malformed rules file stops `berth webhook` with exit code 2 and each field path."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {"rules": [{"name": "a", "match": {"resources": "nvidia.com/gpu", "pods": {}}}]}
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "webhook", "--rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    for path in ("rules[0].schedulerName", "rules[0].match.pods", "rules[0].match.resources"):
        assert path in result.stderr, result.stderr
