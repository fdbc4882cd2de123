"""`berth run` as a kubeadm control plane runs kube-scheduler: the static pod's command line of
kubeadm v1.37 (cmd/kubeadm/app/phases/controlplane/manifests.go, getSchedulerCommand: its
default arguments, sorted as ArgumentsToCommand sorts them), with the paths of this cluster,
plus `--config` for a profile of berth's own and `--secure-port` on a free port (the machine is
shared; 10259 may be taken). berth must start, serve /readyz over HTTPS, take the Lease
(`--leader-elect=true` overrides the file's `leaderElect: false`, as upstream's
ApplyLeaderElectionTo does) and bind pods."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from scheduler.kube.client import ApiError, Client, Credentials
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, free_port
from tests.e2e.test_engine import bound_to, create, wait_for

SCHEDULER = "berth-kubeadm"


def kubeadm_command(kubeconfig: str) -> list[str]:
    """kubeadm's getSchedulerCommand arguments with `kubeconfig` for
    /etc/kubernetes/scheduler.conf."""
    return [
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=true",
    ]


def config(kubeconfig: str, namespace: str) -> str:
    """A profile of its own; the Lease in the test's namespace (the cluster's kube-scheduler
    holds kube-system/kube-scheduler). leaderElect false: the flag must win. The kubeconfig is
    in clientConnection, as upstream needs it with --config (it ignores --kubeconfig then)."""
    return f"""\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
leaderElection:
  leaderElect: false
  resourceName: {SCHEDULER}
  resourceNamespace: {namespace}
profiles:
- schedulerName: {SCHEDULER}
"""


def ready(port: int) -> bool:
    """/readyz over HTTPS (self-signed; an always-allowed path, no credentials needed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/readyz", timeout=2, context=context
        ) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


async def scrape(port: int, kubeconfig: str) -> str:
    """/metrics over HTTPS as the kubeconfig's user (a token or a client certificate)."""
    creds = Credentials.load(kubeconfig)
    auth = await creds.credential_source().get()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if creds.cert_file and creds.key_file:
        context.load_cert_chain(creds.cert_file, creds.key_file)
    request = urllib.request.Request(f"https://127.0.0.1:{port}/metrics")
    if auth.token:
        request.add_header("Authorization", f"Bearer {auth.token}")

    def get() -> str:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return str(answer.read().decode())

    return await asyncio.to_thread(get)


async def test_kubeadm_command_line_binds_pods(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "berth.yaml"
    path.write_text(config(cluster.kubeconfig, namespace))
    port = free_port()
    log = tmp_path / "berth.log"
    argv = [sys.executable, "-m", "scheduler.cli", "run", *kubeadm_command(cluster.kubeconfig)]
    argv += [f"--config={path}", f"--secure-port={port}", "-v=2"]
    # A kube-scheduler Deployment's metric flag, applied as upstream applies it.
    argv += ["--disabled-metrics=scheduler_schedule_attempts_total"]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:

        async def serving() -> bool:
            assert process.poll() is None, log.read_text(errors="replace")[-4000:]
            return await asyncio.to_thread(ready, port)

        await wait_for(serving, timeout=90)

        async def lease_holder() -> str | None:
            try:
                lease = await client.get(
                    f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{SCHEDULER}"
                )
            except ApiError as err:
                if err.status == 404:
                    return None
                raise
            holder: str | None = lease["spec"].get("holderIdentity")
            return holder

        assert await wait_for(lease_holder, timeout=90)
        names = [f"p{i}" for i in range(3)]
        for name in names:
            await create(client, namespace, make_pod(name).scheduler(SCHEDULER).for_api())
        nodes = [await bound_to(client, namespace, name) for name in names]
        assert all(nodes)
        exposed = await scrape(port, cluster.kubeconfig)
        assert "scheduler_pending_pods" in exposed
        assert "scheduler_schedule_attempts_total" not in exposed  # --disabled-metrics
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]
    assert process.returncode == 0, text[-4000:]
