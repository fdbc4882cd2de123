"""Credentials that rotate under a running berth, against the real API server.

berth runs as deploy/'s ServiceAccount with a token bound to a Secret (TokenRequest
boundObjectRef), read from a kubeconfig `tokenFile` or handed out by an exec plugin. It binds a
pod; then the file gets a second token and the Secret is deleted, which invalidates the first
token at once. Every client berth has (informers, bindings, events, status, the lease) must move
to the new token: the next pods are bound, their events written, and the Lease still renewed.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.kube.client import ApiError, Client, Credentials
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, Running, assert_no_traceback, start_berth
from tests.e2e.test_deploy import DEPLOY, documents, http_ok, installed, relocate, wait_for

pytestmark = pytest.mark.e2e

JSON = dict[str, Any]

# An exec credential plugin, as a user would write one: the token is whatever the file next to
# it holds, good for a few seconds, so berth runs it again and again. Each run is noted.
PLUGIN = """\
import datetime, json, os
here = os.path.dirname(os.path.abspath(__file__))
token = open(os.path.join(here, "token")).read().strip()
with open(os.path.join(here, "runs"), "a") as f:
    f.write(token[-8:] + "\\n")
expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
}))
"""


async def bound_token(client: Client, namespace: str, secret: str) -> str:
    """A TokenRequest token of the `berth` ServiceAccount, valid while `secret` exists."""
    made = await client.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret}},
    )
    answer = await client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/berth/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 3600,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "name": secret,
                    "uid": made["metadata"]["uid"],
                },
            },
        },
    )
    token: str = answer["status"]["token"]
    return token


def write_kubeconfig(cluster: Cluster, directory: Path, user: JSON) -> str:
    """The admin kubeconfig's cluster (CA path made absolute) with `user`."""
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context_name = admin.get("current-context") or admin["contexts"][0]["name"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == context_name)
    server = dict(next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"])
    if "certificate-authority" in server:
        ca = Path(server["certificate-authority"])
        server["certificate-authority"] = str(Path(cluster.kubeconfig).parent / ca)
    path = directory / "berth.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": "berth", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "berth"}}],
                "current-context": "c",
            }
        )
    )
    return str(path)


async def refused(token: str, server: Credentials) -> bool:
    """Whether the API server now answers 401 to `token`."""
    creds = Credentials(
        server.server, ca_file=server.ca_file, insecure=server.insecure, token=token
    )
    async with Client(creds, qps=0, retries=0) as probe:
        try:
            await probe.get("/api/v1/namespaces/default")
        except ApiError as err:
            return err.status == 401
    return False


@pytest.mark.parametrize("kind", ["tokenFile", "exec"])
async def test_berth_keeps_scheduling_when_its_token_is_rotated_and_revoked(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path, kind: str
) -> None:
    """Token A (bound to a Secret) in the file; a pod binds. Token B in the file, the Secret
    deleted (A refused from then on); three more pods bind, with their Scheduled events, and
    the Lease is renewed with B."""
    objects = documents((DEPLOY / "serviceaccount.yaml").read_text())
    objects += documents((DEPLOY / "rbac.yaml").read_text())
    suffix = uuid.uuid4().hex[:8]
    async with installed(client, relocate(objects, namespace, suffix), namespace):
        token_a = await bound_token(client, namespace, "token-a")
        token_b = await bound_token(client, namespace, "token-b")
        token = tmp_path / "token"
        token.write_text(token_a)
        if kind == "tokenFile":
            user: JSON = {"tokenFile": "token"}  # relative: next to the kubeconfig
        else:
            (tmp_path / "plugin.py").write_text(PLUGIN)
            user = {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": sys.executable,
                    "args": [str(tmp_path / "plugin.py")],
                    "interactiveMode": "Never",
                }
            }
        kubeconfig = write_kubeconfig(cluster, tmp_path, user)
        admin = Credentials.load(cluster.kubeconfig)
        scheduler = f"berth-cred-{suffix}"
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
        # RBAC objects reach the authorizer's cache a moment after they are created.
        await wait_for(lambda: allowed(token_a, admin, namespace), timeout=30)
        running = start_berth(config, kubeconfig, tmp_path, "cred")
        try:
            assert await wait_for(lambda: http_ok(f"http://127.0.0.1:{running.port}/readyz"))
            await create_pod(client, namespace, scheduler, "before")
            await wait_for(lambda: bound(client, namespace, ["before"]))

            token.write_text(token_b)
            await client.delete(f"/api/v1/namespaces/{namespace}/secrets/token-a")
            await wait_for(lambda: refused(token_a, admin))
            renewed = await lease_renew_time(client, namespace)

            after = [f"after-{i}" for i in range(3)]
            for name in after:
                await create_pod(client, namespace, scheduler, name)
            await wait_for(lambda: bound(client, namespace, ["before", *after]))
            await wait_for(lambda: scheduled_events(client, namespace, scheduler, after))
            await wait_for(lambda: lease_moved(client, namespace, renewed, running), timeout=30)
        finally:
            running.stop()
        assert_no_traceback(running)
        if kind == "exec":
            runs = (tmp_path / "runs").read_text().split()
            assert token_a[-8:] in runs and token_b[-8:] in runs, runs


async def allowed(token: str, admin: Credentials, namespace: str) -> bool:
    creds = Credentials(admin.server, ca_file=admin.ca_file, insecure=admin.insecure, token=token)
    async with Client(creds, qps=0, retries=0) as probe:
        try:
            await probe.get("/api/v1/nodes")
            await probe.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/berth")
        except ApiError as err:
            return err.status == 404  # allowed, and not there yet
    return True


async def create_pod(client: Client, namespace: str, scheduler: str, name: str) -> None:
    pod = make_pod(name).scheduler(scheduler).req(cpu="100m", memory="64Mi")
    await client.post(f"/api/v1/namespaces/{namespace}/pods", pod.for_api())


async def bound(client: Client, namespace: str, names: list[str]) -> bool:
    pods = (await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
    nodes = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
    return all(nodes.get(name) for name in names)


async def scheduled_events(
    client: Client, namespace: str, scheduler: str, names: list[str]
) -> bool:
    items = (await client.get(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"))["items"]
    seen = {
        e["regarding"]["name"]
        for e in items
        if e.get("reportingController") == scheduler and e["reason"] == "Scheduled"
    }
    return set(names) <= seen


async def lease_renew_time(client: Client, namespace: str) -> str:
    lease = await client.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/berth")
    renew: str = lease["spec"]["renewTime"]
    return renew


async def lease_moved(client: Client, namespace: str, before: str, running: Running) -> bool:
    """The Lease was renewed after token A was refused (by B, then), and berth still runs."""
    assert running.process.poll() is None, running.log.read_text()[-3000:]
    return await lease_renew_time(client, namespace) != before
