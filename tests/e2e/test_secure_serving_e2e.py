"""Secure serving against a real API server, as kube-scheduler serves: `berth run` on HTTPS with
deploy/'s ServiceAccount and RBAC, callers authenticated by TokenReview or client certificate and
authorized by SubjectAccessReview.

kube-scheduler's answers, which these tests hold berth to (checked by hand against v1.37 on the
same control plane): no credentials is `system:anonymous`, so /metrics is 403 and /healthz 200;
a token the API server rejects is 401; an authenticated user without a grant is 403
`forbidden: User "<name>" cannot get path "/metrics"`.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scheduler import tls
from scheduler.kube.client import ApiError, Client
from scheduler.kube.delegation import client_ca_from_cluster
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, free_port
from tests.e2e.test_deploy import DEPLOY, documents, token_kubeconfig, wait_for

JSON = dict[str, Any]

RBAC = "/apis/rbac.authorization.k8s.io/v1"
PROMETHEUS = "prometheus-k8s"  # the scraper deploy/rbac.yaml's berth-metrics-reader binds


def deploy_rbac(namespace: str, suffix: str) -> list[tuple[str, JSON]]:
    """deploy/'s ServiceAccounts' RBAC with its ServiceAccounts in `namespace`: cluster-scoped
    objects and the kube-system RoleBinding get unique names (the kube-system one stays in
    kube-system, where the Role it names lives); (collection path, object) each."""
    shipped = documents((DEPLOY / "rbac.yaml").read_text())
    own_roles = {d["metadata"]["name"] for d in shipped if d["kind"] == "ClusterRole"}
    out = []
    for obj in shipped:
        meta = obj["metadata"]
        kind = obj["kind"]
        if kind in ("ClusterRole", "ClusterRoleBinding"):
            meta["name"] = f"{meta['name']}-{suffix}"
            path = f"{RBAC}/{kind.lower()}s"
        elif meta["namespace"] == "kube-system":
            meta["name"] = f"{meta['name']}-{suffix}"
            path = f"{RBAC}/namespaces/kube-system/{kind.lower()}s"
        else:
            meta["namespace"] = namespace
            path = f"{RBAC}/namespaces/{namespace}/{kind.lower()}s"
        if kind == "ClusterRoleBinding" and obj["roleRef"]["name"] in own_roles:
            obj["roleRef"]["name"] = f"{obj['roleRef']['name']}-{suffix}"
        for subject in obj.get("subjects", []):
            subject["namespace"] = namespace
        out.append((path, obj))
    return out


@dataclass
class Secure:
    """A `berth run` serving HTTPS, and what the tests call it with."""

    url: str
    namespace: str
    scheduler: str
    tokens: dict[str, str]  # ServiceAccount name → TokenRequest token
    ca: tls.Issued  # the --client-ca-file CA
    log: Path
    process: subprocess.Popen[bytes]


async def sa_token(client: Client, namespace: str, account: str) -> str:
    answer = await client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    return str(answer["status"]["token"])


@asynccontextmanager
async def installed(client: Client, objects: list[tuple[str, JSON]]) -> AsyncIterator[None]:
    """Create the objects; delete those outside the test namespace afterwards."""
    made: list[str] = []
    try:
        for path, obj in objects:
            await client.post(path, obj)
            made.append(f"{path}/{obj['metadata']['name']}")
        yield
    finally:
        for path in made:
            if "/namespaces/kube-system/" in path or "/namespaces/" not in path:
                try:
                    await client.delete(path)
                except ApiError as err:
                    if err.status != 404:
                        raise


@pytest.fixture
async def secure(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> AsyncIterator[Secure]:
    """deploy/'s ServiceAccount and RBAC in the test namespace, Prometheus's ServiceAccount and
    one without any grant; `berth run` with the berth account's token on HTTPS only, a
    self-signed certificate in --cert-dir, and --client-ca-file naming a CA of the test's."""
    for account in ("berth", PROMETHEUS, "nobody"):
        await client.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": account}}
        )
    suffix = uuid.uuid4().hex[:8]
    async with installed(client, deploy_rbac(namespace, suffix)):
        kubeconfig = await token_kubeconfig(
            client, cluster, namespace, "berth", tmp_path / "sa.kubeconfig"
        )
        async with Client.from_kubeconfig(kubeconfig, qps=0) as berth_client:
            # RBAC reaches the authorizer's cache a moment after it is created.
            async def reviews() -> bool:
                try:
                    await berth_client.post(
                        "/apis/authentication.k8s.io/v1/tokenreviews",
                        {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                         "spec": {"token": "x"}},
                    )  # fmt: skip
                    return True
                except ApiError:
                    return False

            await wait_for(reviews, timeout=30)
        ca = tls.certificate_authority("berth-test-client-ca")
        (tmp_path / "client-ca.crt").write_bytes(ca.cert_pem())
        scheduler = f"berth-secure-{uuid.uuid4().hex[:6]}"
        config = tmp_path / "config.yaml"
        config.write_text(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
            f"leaderElection:\n  leaderElect: true\n  resourceName: berth\n"
            f"  resourceNamespace: {namespace}\nprofiles:\n- schedulerName: {scheduler}\n"
        )
        port = free_port()
        log = tmp_path / "berth.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "scheduler.cli", "run", "--config", str(config),
                 "--kubeconfig", kubeconfig, "--bind-address", "127.0.0.1",
                 "--secure-port", str(port), "--cert-dir", str(tmp_path / "certs"),
                 "--client-ca-file", str(tmp_path / "client-ca.crt")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        tokens = {a: await sa_token(client, namespace, a) for a in (PROMETHEUS, "nobody")}
        running = Secure(
            f"https://127.0.0.1:{port}", namespace, scheduler, tokens, ca, log, process
        )
        try:
            await wait_for(lambda: get(running, "/readyz"), timeout=90)
            yield running
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            text = log.read_text()
            assert "Traceback" not in text, text[-3000:]


def _context(cert: tls.Issued | None, directory: Path | None) -> ssl.SSLContext:
    # berth's certificate is self-signed (as kube-scheduler's): not verified here, as
    # Prometheus is told not to (insecureSkipVerify).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None and directory is not None:
        crt, key = directory / f"{uuid.uuid4().hex}.crt", directory / f"{uuid.uuid4().hex}.key"
        crt.write_bytes(cert.cert_pem())
        tls.write_private(key, cert.key_pem())
        context.load_cert_chain(crt, key)
    return context


async def request(
    secure: Secure,
    path: str,
    *,
    token: str | None = None,
    cert: tls.Issued | None = None,
) -> tuple[int, str]:
    """(status, body) of GET `path` over HTTPS."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = _context(cert, secure.log.parent)
    async with (
        aiohttp.ClientSession() as session,
        session.get(secure.url + path, headers=headers, ssl=context) as resp,
    ):
        return resp.status, await resp.text()


async def get(secure: Secure, path: str) -> bool:
    try:
        return (await request(secure, path))[0] == 200
    except aiohttp.ClientError:
        return False


async def test_open_and_guarded_paths_answer_as_kube_scheduler(secure: Secure) -> None:
    """Without credentials the health paths are open and everything else is forbidden to
    system:anonymous; a rejected token is 401; a ServiceAccount without a grant is 403 with
    upstream's message; Prometheus's account, bound by deploy/'s RBAC, reads the metrics."""
    for path in ("/healthz", "/livez", "/readyz"):
        assert await request(secure, path) == (200, "ok"), path
    # kube-scheduler's checks (and berth's apiserver-reachable), in apiserver's layout.
    assert await request(secure, "/healthz?verbose") == (
        200,
        "[+]leaderElection ok\n[+]apiserver-reachable ok\nhealthz check passed\n",
    )
    assert await request(secure, "/readyz?verbose&exclude=shutdown") == (
        200,
        "[+]leaderElection ok\n[+]shutdown excluded: ok\n[+]sched-handler-sync ok\n"
        "readyz check passed\n",
    )
    status, body = await request(secure, "/metrics")
    assert status == 403
    assert json.loads(body)["message"] == (
        'forbidden: User "system:anonymous" cannot get path "/metrics"'
    )
    # Exact paths only: a check's subpath is not always allowed (as upstream's note says).
    assert (await request(secure, "/healthz/apiserver-reachable"))[0] == 403

    status, body = await request(secure, "/metrics", token="not-a-token")
    assert status == 401
    assert json.loads(body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }

    nobody = f"system:serviceaccount:{secure.namespace}:nobody"
    for path in ("/metrics", "/configz", "/debug/queue"):
        status, body = await request(secure, path, token=secure.tokens["nobody"])
        assert status == 403, (path, body)
        assert json.loads(body)["message"] == f'forbidden: User "{nobody}" cannot get path "{path}"'

    token = secure.tokens[PROMETHEUS]
    status, body = await request(secure, "/metrics", token=token)
    assert status == 200 and "scheduler_schedule_attempts_total" in body
    status, body = await request(secure, "/metrics/slis", token=token)
    assert status == 200 and 'kubernetes_healthcheck{name="ping",type="livez"} 1' in body
    # The reader's grant is the metrics paths only.
    assert (await request(secure, "/configz", token=token))[0] == 403


async def test_resource_metrics_from_the_leader(secure: Secure, client: Client) -> None:
    """/metrics/resources reports a pod's requests with upstream's labels once berth leads."""
    pod = make_pod("sized").scheduler(secure.scheduler).req(cpu="250m", memory="64Mi")
    await client.post(f"/api/v1/namespaces/{secure.namespace}/pods", pod.for_api())

    async def reported() -> str | None:
        status, body = await request(secure, "/metrics/resources", token=secure.tokens[PROMETHEUS])
        return body if status == 200 and 'pod="sized"' in body else None

    body = await wait_for(reported, timeout=60)
    line = next(
        ln for ln in body.splitlines()
        if ln.startswith("kube_pod_resource_request{") and 'resource="cpu"' in ln
    )  # fmt: skip
    for label in (f'namespace="{secure.namespace}"', 'pod="sized"', 'unit="cores"',
                  f'scheduler="{secure.scheduler}"', 'priority="0"'):  # fmt: skip
        assert label in line, line
    assert line.endswith(" 0.25"), line


async def test_client_certificates_are_users(secure: Secure) -> None:
    """A certificate signed by the client CA authenticates as its CN with its O as groups:
    system:masters is always allowed (/configz shows the configuration), a plain user is not;
    a certificate from another CA is refused."""
    masters = tls.client_certificate(secure.ca, "ada", ["system:masters"])
    status, body = await request(secure, "/configz", cert=masters)
    assert status == 200, body
    assert json.loads(body)["componentconfig"]["kind"] == "KubeSchedulerConfiguration"
    bob = tls.client_certificate(secure.ca, "bob")
    status, body = await request(secure, "/metrics", cert=bob)
    assert status == 403
    assert json.loads(body)["message"] == 'forbidden: User "bob" cannot get path "/metrics"'
    stranger = tls.client_certificate(tls.certificate_authority("other"), "eve", ["system:masters"])
    with pytest.raises(aiohttp.ClientError):
        await request(secure, "/configz", cert=stranger)


async def test_plain_http_is_not_served_without_port(secure: Secure) -> None:
    """Without --port nothing answers plain HTTP: the secure port speaks TLS only."""
    plain = secure.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(plain + "/healthz") as resp:
                await resp.read()


async def test_the_berth_account_reads_the_cluster_client_ca(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    """With deploy/'s RBAC the berth account reads the client CA berth verifies certificates
    against when --client-ca-file is not given (kube-system/extension-apiserver-authentication);
    without the kube-system RoleBinding it may not."""
    await client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "berth"}}
    )
    suffix = uuid.uuid4().hex[:8]
    objects = deploy_rbac(namespace, suffix)
    kubeconfig = await token_kubeconfig(client, cluster, namespace, "berth", tmp_path / "k")
    async with Client.from_kubeconfig(kubeconfig, qps=0) as berth_client:
        with pytest.raises(ApiError) as refused:
            await client_ca_from_cluster(berth_client)
        assert refused.value.status == 403
        async with installed(client, objects):

            async def read() -> bytes | None:
                try:
                    return await client_ca_from_cluster(berth_client)
                except ApiError:
                    return None

            bundle = await wait_for(read, timeout=30)
            assert b"BEGIN CERTIFICATE" in bundle
