"""Test hardware for e2e tests: a real control plane.

The cluster is the one named by $KUBECONFIG when it is set (a kind cluster works), else one this
session starts with `berth cluster up` (etcd + kube-apiserver + kube-controller-manager + upstream
kube-scheduler + KWOK on loopback, of the version $K8S_VERSION selects) and stops at the end.
Each test gets a namespace of its own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from scheduler.kube.client import ApiError, Client

LOCAL_NODES = 6
LOCAL_ZONES = 3
LOCAL_NODE_CPU = "8"
LOCAL_NODE_MEMORY = "32Gi"


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    local: bool  # started by this session, so its nodes are the ones asked for above
    directory: Path | None = None


def berth(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the berth CLI of this checkout in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if kubeconfig := os.environ.get("KUBECONFIG"):
        yield Cluster(kubeconfig=kubeconfig, local=False)
        return
    directory = tmp_path_factory.mktemp("cluster")
    result = berth(
        "cluster",
        "up",
        "--dir",
        str(directory),
        "--nodes",
        str(LOCAL_NODES),
        "--zones",
        str(LOCAL_ZONES),
        "--node-cpu",
        LOCAL_NODE_CPU,
        "--node-memory",
        LOCAL_NODE_MEMORY,
        "--kube-scheduler",
        "--kwok",
        "--controller-manager",
    )
    if result.returncode != 0:
        pytest.fail(f"berth cluster up failed:\n{result.stderr}", pytrace=False)
    try:
        yield Cluster(kubeconfig=str(directory / "kubeconfig"), local=True, directory=directory)
    finally:
        berth("cluster", "down", "--dir", str(directory))


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, qps=0) as c:
        yield c


@contextlib.asynccontextmanager
async def fresh_namespace(client: Client, prefix: str = "t") -> AsyncIterator[str]:
    """A namespace named `<prefix>-<random>`, deleted on exit with its pods."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    await client.post("/api/v1/namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        # Pods go first, without a grace period: a cluster without a namespace controller
        # (or kubelets to confirm deletion) would otherwise keep them and their node capacity.
        await client.request(
            "DELETE", f"/api/v1/namespaces/{name}/pods", params={"gracePeriodSeconds": 0}
        )
        try:
            await client.delete(f"/api/v1/namespaces/{name}")
        except ApiError as err:
            if err.status != 404:
                raise


@pytest.fixture
async def namespace(client: Client) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    async with fresh_namespace(client) as name:
        yield name


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Running:
    """A `berth run` process started by a test."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_berth(
    config: str,
    kubeconfig: str,
    directory: Path,
    name: str = "berth",
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> Running:
    """Start `berth run` with the given KubeSchedulerConfiguration text (and extra
    environment variables, e.g. a PYTHONPATH with out-of-tree plugins; extra flags)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(config)
    port = free_port()
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scheduler.cli",
                "run",
                "--config",
                str(path),
                "--kubeconfig",
                kubeconfig,
                # Local use: plain HTTP on a free port, no HTTPS.
                "--secure-port",
                "0",
                "--port",
                str(port),
                "--bind-address",
                "127.0.0.1",
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env} if env else None,
        )
    return Running(process, port, log)


def wait_ready(running: Running, timeout: float = 60.0) -> None:
    """Until /readyz answers 200 (caches synced); fail with the log if berth exited."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(running.log.read_text(errors="replace")[-4000:], pytrace=False)
        try:
            url = f"http://127.0.0.1:{running.port}/readyz"
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("berth did not become ready", pytrace=False)


def assert_no_traceback(running: Running) -> None:
    """No handler or task of this berth raised: its log has no traceback."""
    log = running.log.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


BERTH_CONFIG = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: berth
"""


@pytest.fixture(scope="session")
def berth_scheduler(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """One `berth run` (schedulerName berth, no leader election) for the whole session."""
    running = start_berth(BERTH_CONFIG, cluster.kubeconfig, tmp_path_factory.mktemp("berth"))
    try:
        wait_ready(running)
        yield running
    finally:
        running.stop()
    # Every event the e2e suite caused went through berth's handlers: none may have raised.
    assert_no_traceback(running)
