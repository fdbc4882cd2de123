"""`berth explain` with no --server, against two berth replicas electing a leader on a real
API server: it reads the Lease, asks the leader over HTTPS (the certificate pinned by the Lease,
the kubeconfig's credentials, berth's delegated authn/authz), and `--node X` gives each Filter
plugin's verdict on X. A user without RBAC for /debug/* is told what to grant; a leader whose
address does not answer sends the client to the API server's pod proxy, and the reason both
failed is given. `kubectl berth explain` runs the same command.

No test asserts how long anything took: waits are generous bounds for a state to be reached.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.harness.binaries import binary
from scheduler.kube.client import ApiError, Client, Credentials
from scheduler.kube.debug_endpoint import of_lease
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, Running, assert_no_traceback, free_port, wait_ready
from tests.e2e.test_engine import create, failed_message

pytestmark = pytest.mark.asyncio(loop_scope="session")

JSON = dict[str, Any]
LEASE = "berth"
PATIENCE = 90.0  # seconds: an upper bound for a wait on a busy machine, never an expectation

CONFIG = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
  resourceNamespace: {namespace}
  resourceName: {lease}
profiles:
- schedulerName: {scheduler}
"""


@dataclass
class Replica:
    running: Running
    secure_port: int


def start_replica(
    cluster: Cluster, namespace: str, directory: Path, name: str, pod_ip: str
) -> Replica:
    """`berth run` with HTTPS on a free port (delegated authn/authz with the plane's
    credentials), plain HTTP on another for the readiness wait, and POD_IP as the downward API
    would set it."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"{name}.yaml"
    config.write_text(CONFIG.format(namespace=namespace, lease=LEASE, scheduler=namespace))
    secure, plain = free_port(), free_port()
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scheduler.cli",
                "run",
                "--config",
                str(config),
                "--kubeconfig",
                cluster.kubeconfig,
                "--secure-port",
                str(secure),
                "--port",
                str(plain),
                "--bind-address",
                "127.0.0.1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "POD_IP": pod_ip},
        )
    return Replica(Running(process, plain, log), secure)


def explain(*args: str, kubeconfig: str, lease_namespace: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "explain",
            *args,
            "--kubeconfig",
            kubeconfig,
            "--lease-namespace",
            lease_namespace,
            "--lease-name",
            LEASE,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def leader_of(client: Client, namespace: str) -> tuple[str, str]:
    """Wait until the Lease names a holder with its endpoint; (identity, url)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            lease = await client.get(
                f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE}"
            )
        except ApiError as err:
            if err.status != 404:
                raise
        else:
            holder, endpoint = of_lease(lease)
            if endpoint is not None:
                return holder, endpoint.url
        await asyncio.sleep(0.2)
    pytest.fail("no berth replica took the Lease with its debug endpoint", pytrace=False)


async def untainted_node(client: Client) -> str:
    nodes = (await client.get("/api/v1/nodes"))["items"]
    return str(next(n for n in nodes if not n["spec"].get("taints"))["metadata"]["name"])


@pytest.fixture
def replicas(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas of one berth (schedulerName = the namespace), the first one started first
    and so, normally, the leader; the test finds out which from the Lease."""
    first = start_replica(cluster, namespace, tmp_path, "first", "127.0.0.1")
    second = start_replica(cluster, namespace, tmp_path, "second", "127.0.0.1")
    try:
        wait_ready(first.running)
        wait_ready(second.running)
        yield first, second
    finally:
        for replica in (first, second):
            replica.running.stop()
        for replica in (first, second):
            assert_no_traceback(replica.running)


async def test_explain_asks_the_leader_and_checks_one_node(
    replicas: tuple[Replica, Replica], cluster: Cluster, client: Client, namespace: str
) -> None:
    """No --server: the answer comes from the Lease's holder, says so, and carries the
    scheduling attempt; `--node X` gives every Filter plugin's verdict on X, NodeAffinity's
    the only failure; the standby, asked directly, says it is one."""
    holder, url = await leader_of(client, namespace)
    leader, standby = replicas
    if url.endswith(f":{standby.secure_port}"):
        leader, standby = standby, leader
    assert url == f"https://127.0.0.1:{leader.secure_port}"
    await create(
        client,
        namespace,
        make_pod("stuck").scheduler(namespace).node_selector(pool=f"none-{namespace}").for_api(),
    )
    message = await failed_message(client, namespace, "stuck")
    node = await untainted_node(client)

    result = await asyncio.to_thread(
        explain,
        f"{namespace}/stuck",
        "--node",
        node,
        kubeconfig=cluster.kubeconfig,
        lease_namespace=namespace,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Pod {namespace}/stuck: pending (queue: ")
    assert lines[1] == f"Answered by {holder} (the leader)"
    assert message in lines
    assert f"answered by {url} (leader {holder})" in result.stderr
    start = lines.index(f"Node {node}, each Filter plugin's verdict for this pod now:")
    assert lines[-1] == f"Not feasible: 1 plugin(s) reject {node}."
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[start + 2 : -1]}
    assert rows.pop("NodeAffinity") == [
        "fail",
        "node(s) didn't match Pod's node affinity/selector (unresolvable: preemption cannot help)",
    ]
    assert rows["NodeResourcesFit"] == ["pass"]
    assert {verdict[0] for verdict in rows.values()} == {"pass", "skip"}

    asked = await asyncio.to_thread(
        explain,
        f"{namespace}/stuck",
        "--server",
        f"https://127.0.0.1:{standby.secure_port}",
        "--insecure-skip-tls-verify",
        kubeconfig=cluster.kubeconfig,
        lease_namespace=namespace,
    )
    assert asked.returncode == 0, asked.stderr
    assert "(a standby: it schedules nothing while another replica leads)" in asked.stdout
    assert message not in asked.stdout  # it never tried the pod


async def test_a_gated_pod_is_told_the_score_a_node_would_give_it(
    replicas: tuple[Replica, Replica], cluster: Cluster, client: Client, namespace: str
) -> None:
    """A pod held by a scheduling gate waits in the queue, untried: `--node X` says every
    plugin lets it onto X and what X would score, ranked among the feasible nodes."""
    await leader_of(client, namespace)
    pod = make_pod("held").scheduler(namespace).req(cpu="100m").for_api()
    pod["spec"]["schedulingGates"] = [{"name": "example.com/hold"}]
    await create(client, namespace, pod)
    node = await untainted_node(client)
    deadline = time.monotonic() + PATIENCE
    while True:  # until the leader's informer has the pod in its queue
        result = await asyncio.to_thread(
            explain,
            f"{namespace}/held",
            "--node",
            node,
            kubeconfig=cluster.kubeconfig,
            lease_namespace=namespace,
        )
        assert result.returncode == 0, result.stderr
        if "cannot be checked" not in result.stdout or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    lines = result.stdout.splitlines()
    verdict = next(line for line in lines if line.startswith("Feasible; it would score "))
    assert " feasible nodes; the best, " in verdict
    header = lines.index(verdict) + 1
    assert lines[header].split() == ["PLUGIN", "SCORE", "(0-100)", "WEIGHT"]
    assert any(line.startswith("NodeResourcesFit ") for line in lines[header + 1 :])


@pytest.fixture
async def viewer(
    client: Client, cluster: Cluster, namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """A service account that may read the Lease and nothing of berth's: its kubeconfig
    (a TokenRequest token) and its user name. Cluster-wide RBAC made for it is removed after."""
    sa = "viewer"
    await client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}},
    )
    await client.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "lease-reader"},
            "rules": [
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "resourceNames": [LEASE],
                    "verbs": ["get"],
                }
            ],
        },
    )
    user = f"system:serviceaccount:{namespace}:{sa}"
    await client.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        binding("RoleBinding", "lease-reader", "Role", "lease-reader", namespace, sa),
    )
    answer = await client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    creds = Credentials.load(cluster.kubeconfig)
    kubeconfig = tmp_path / "viewer.kubeconfig"
    cluster_entry: JSON = {"server": creds.server}
    if creds.ca_file:
        cluster_entry["certificate-authority"] = creds.ca_file
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "plane", "cluster": cluster_entry}],
                "users": [{"name": sa, "user": {"token": answer["status"]["token"]}}],
                "contexts": [{"name": sa, "context": {"cluster": "plane", "user": sa}}],
                "current-context": sa,
            }
        )
    )
    try:
        yield str(kubeconfig), user
    finally:
        for kind in ("clusterrolebindings", "clusterroles"):
            try:
                await client.delete(f"/apis/rbac.authorization.k8s.io/v1/{kind}/{namespace}-debug")
            except ApiError as err:
                if err.status != 404:
                    raise


def binding(kind: str, name: str, role_kind: str, role: str, namespace: str, sa: str) -> JSON:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
    }


async def test_a_user_without_debug_rbac_is_told_what_to_grant(
    replicas: tuple[Replica, Replica],
    client: Client,
    namespace: str,
    viewer: tuple[str, str],
) -> None:
    """berth authenticates the user's token (TokenReview) and asks a SubjectAccessReview:
    without `get` on /debug/* the answer is 403 and explain names that RBAC; once it is
    granted (and berth's cached denial has expired) the same command answers."""
    await leader_of(client, namespace)
    kubeconfig, user = viewer
    refused = await asyncio.to_thread(
        explain, f"{namespace}/any", kubeconfig=kubeconfig, lease_namespace=namespace
    )
    assert refused.returncode == 1
    assert "403 Forbidden" in refused.stderr
    assert 'nonResourceURLs: ["/debug/*"]' in refused.stderr
    assert f'User "{user}" cannot get path "/debug/pods/{namespace}/any"' in refused.stderr

    await client.post(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{namespace}-debug"},
            "rules": [{"nonResourceURLs": ["/debug/*"], "verbs": ["get"]}],
        },
    )
    await client.post(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        binding(
            "ClusterRoleBinding",
            f"{namespace}-debug",
            "ClusterRole",
            f"{namespace}-debug",
            namespace,
            "viewer",
        ),
    )
    deadline = time.monotonic() + PATIENCE
    while True:  # berth caches a denial for --authorization-webhook-cache-unauthorized-ttl
        allowed = await asyncio.to_thread(
            explain, f"{namespace}/any", kubeconfig=kubeconfig, lease_namespace=namespace
        )
        if allowed.returncode == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.startswith(f"Pod {namespace}/any: this scheduler has not tried")


async def test_unreachable_leader_falls_back_to_the_pod_proxy_and_says_why_both_failed(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    """A leader advertising an address where nothing listens: explain tries the API server's
    pod proxy to the pod its identity names, and reports both failures (no such pod here)."""
    replica = start_replica(cluster, namespace, tmp_path, "away", "127.0.0.2")
    try:
        wait_ready(replica.running)
        holder, url = await leader_of(client, namespace)
        assert url == f"https://127.0.0.2:{replica.secure_port}"
        result = await asyncio.to_thread(
            explain, f"{namespace}/any", kubeconfig=cluster.kubeconfig, lease_namespace=namespace
        )
    finally:
        replica.running.stop()
    assert result.returncode == 1
    assert f"cannot reach the leader {holder} at {url}" in result.stderr
    assert "through the API server's pod proxy" in result.stderr
    pod = holder.rpartition("_")[0]
    assert f'pods "{pod}" not found' in result.stderr
    assert_no_traceback(replica.running)


async def test_kubectl_berth_explain_is_the_same_command(
    replicas: tuple[Replica, Replica], cluster: Cluster, client: Client, namespace: str
) -> None:
    """The `kubectl-berth` console script the package installs makes `kubectl berth explain`
    work (kubectl finds plugins on PATH)."""
    holder, _ = await leader_of(client, namespace)
    scripts = Path(sys.executable).parent
    assert (scripts / "kubectl-berth").exists(), "reinstall the package: pip install -e ."
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(binary("kubectl")),
            "berth",
            "explain",
            f"{namespace}/nothing",
            "--kubeconfig",
            cluster.kubeconfig,
            "--lease-namespace",
            namespace,
            "--lease-name",
            LEASE,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert result.returncode == 0, result.stderr
    assert f"Answered by {holder} (the leader)" in result.stdout
