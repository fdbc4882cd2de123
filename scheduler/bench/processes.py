"""Start and stop the scheduler under test as a process of its own.

Each scheduler is started after the cluster is up and its nodes exist, and the benchmark only
starts creating pods once it says it is ready (berth and kube-scheduler: /readyz; the null
binder: its ready file), so startup work is not part of the measurement and /proc shows the
scheduler's CPU alone. All three get the same client limits (`Limits`), written where each
reads them: kube-scheduler ignores its --kube-api-qps flags once --config is given, so both
real schedulers get them in `clientConnection` of their KubeSchedulerConfiguration.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scheduler.harness import binaries, plane

BERTH = "berth"
KUBE_SCHEDULER = "kube-scheduler"
NULL = "null"
SCHEDULERS = (BERTH, KUBE_SCHEDULER, NULL)

UPSTREAM_DEFAULT = "upstream-default"
DEFAULT_QPS = 5000.0


class StartError(RuntimeError):
    """The scheduler process exited or never became ready (the message has its log's tail)."""


@dataclass(frozen=True)
class Limits:
    """Client-side rate limits given to every scheduler. None (`upstream-default`): each keeps
    its own default, which is what a user trying it out gets: kube-scheduler qps 50, burst 100;
    berth qps 1000, burst 2000 (scheduler/config.py DEFAULT_CLIENT_QPS/BURST); the null
    binder its client's 50/100."""

    qps: float | None = DEFAULT_QPS
    burst: int | None = int(DEFAULT_QPS)

    @classmethod
    def parse(cls, text: str) -> Limits:
        """`upstream-default`, or a positive number of queries a second (burst equal)."""
        if text.strip() == UPSTREAM_DEFAULT:
            return cls(None, None)
        try:
            qps = float(text)
        except ValueError:
            raise ValueError(
                f"--qps must be a number or {UPSTREAM_DEFAULT!r}, got {text!r}"
            ) from None
        if not qps > 0:
            raise ValueError(f"--qps must be > 0, got {text!r}")
        return cls(qps, max(1, int(qps)))

    @property
    def label(self) -> float | str:
        """How bench.json records it: the number, or "upstream-default"."""
        return UPSTREAM_DEFAULT if self.qps is None else self.qps


def scheduler_name(kind: str, shared_cluster: bool = False) -> str:
    """The schedulerName the workload's pods carry for `kind`. On a cluster the benchmark did
    not start, upstream kube-scheduler already serves default-scheduler, so the one under
    test gets a name of its own there."""
    if kind == BERTH:
        return "berth"
    if kind == KUBE_SCHEDULER:
        return "bench-kube-scheduler" if shared_cluster else "default-scheduler"
    if kind == NULL:
        return "bench-null"
    raise ValueError(f"unknown scheduler {kind!r} (known: {', '.join(SCHEDULERS)})")


@dataclass
class SchedulerProcess:
    kind: str
    scheduler_name: str
    process: subprocess.Popen[bytes]
    log: Path
    # kube-scheduler only: its version and the scheduling feature gates it runs with, read from
    # its own /metrics (kubernetes_build_info, kubernetes_feature_enabled) once it is ready.
    version: str = ""
    feature_gates: dict[str, bool] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    kind: str,
    *,
    kubeconfig: str,
    directory: Path,
    limits: Limits,
    name: str,
    timeout: float = 120.0,
    plugin_config: list[dict[str, Any]] | None = None,
    feature_gates: Mapping[str, bool] | None = None,
) -> SchedulerProcess:
    """Start scheduler `kind` serving pods with schedulerName `name`; return once it is ready.

    Its config and log go to `directory` (logs/<kind>.log), which is also its working
    directory, so `berth cluster down --dir DIRECTORY` recognises it as part of the plane.
    `feature_gates` are the gates the workload needs beyond the defaults (`gang`:
    GenericWorkload): kube-scheduler gets them as --feature-gates (a flag it reads even with
    --config). `berth run` has no such flag: what it does with PodGroups follows from the APIs
    the server serves (scheduler/kube/discovery.py); the null binder ignores them.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    log = directory / "logs" / f"bench-{kind}.log"
    port = _free_port()
    ready_file = directory / f"bench-{kind}.ready"
    ready_file.unlink(missing_ok=True)
    if kind == BERTH:
        config = directory / "bench-berth.yaml"
        config.write_text(
            yaml.safe_dump(_config(kubeconfig, limits, name, plugin_config or []), sort_keys=False)
        )
        argv = [
            sys.executable,
            "-m",
            "scheduler.cli",
            "run",
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            "--secure-port=0",  # local use: plain HTTP only
            f"--port={port}",
            "--bind-address=127.0.0.1",
        ]
        url, insecure = f"http://127.0.0.1:{port}/readyz", False
    elif kind == KUBE_SCHEDULER:
        config = directory / "bench-kube-scheduler.yaml"
        config.write_text(
            yaml.safe_dump(_config(kubeconfig, limits, name, plugin_config or []), sort_keys=False)
        )
        argv = [
            str(binaries.binary(binaries.KUBE_SCHEDULER)),
            f"--config={config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={directory / 'pki' / 'bench-kube-scheduler'}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            *gate_args(feature_gates or {}),
            "--v=1",
        ]
        url, insecure = f"https://127.0.0.1:{port}/readyz", True
    elif kind == NULL:
        argv = [
            sys.executable,
            "-m",
            "scheduler.bench.nullbinder",
            f"--kubeconfig={kubeconfig}",
            f"--scheduler-name={name}",
            f"--ready-file={ready_file}",
        ]
        if limits.qps is not None:
            argv += [f"--qps={limits.qps}", f"--burst={limits.burst}"]
        url, insecure = "", False
    else:
        raise ValueError(f"unknown scheduler {kind!r} (known: {', '.join(SCHEDULERS)})")

    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=directory,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    running = SchedulerProcess(kind, name, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(
                f"{kind} exited with code {process.returncode} while starting; "
                f"last lines of {log}:\n{tail(log)}"
            )
        if (url and _http_ok(url, insecure)) or (not url and ready_file.exists()):
            if kind == KUBE_SCHEDULER:
                metrics_url = url.replace("/readyz", "/metrics")
                metrics = plane.http_get(metrics_url, insecure=True, token=_token(kubeconfig))
                running.version, running.feature_gates = scheduling_gates(metrics or "")
            return running
        time.sleep(0.1)
    running.stop()
    raise StartError(
        f"{kind} was not ready within {timeout:.0f}s; last lines of {log}:\n{tail(log)}"
    )


def _config(
    kubeconfig: str, limits: Limits, name: str, plugin_config: list[dict[str, Any]]
) -> dict[str, Any]:
    connection: dict[str, Any] = {"kubeconfig": kubeconfig}
    if limits.qps is not None:
        connection.update(qps=limits.qps, burst=limits.burst)
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": connection,
        "leaderElection": {"leaderElect": False},
        "profiles": [
            {"schedulerName": name, **({"pluginConfig": plugin_config} if plugin_config else {})}
        ],
    }


def gate_args(gates: Mapping[str, bool]) -> list[str]:
    """kube-scheduler's --feature-gates flag for `gates` (none when empty)."""
    if not gates:
        return []
    return [
        "--feature-gates=" + ",".join(f"{k}={str(v).lower()}" for k, v in sorted(gates.items()))
    ]


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# The gates that change how kube-scheduler places pods or how fast; the bench report names
# them so a ratio says what it was measured against (e.g. OpportunisticBatching on or off).
GATE_PREFIXES = (
    "Scheduler",
    "OpportunisticBatching",
    "NominatedNodeName",
    "GenericWorkload",
    "GangScheduling",
    "TopologyAwareWorkloadScheduling",
    "DynamicResourceAllocation",
    "PodLevelResources",
    "InPlacePodVerticalScaling",
)
_FEATURE = re.compile(r'^kubernetes_feature_enabled\{name="([^"]+)",stage="[^"]*"\} (\S+)$', re.M)
_BUILD = re.compile(r'^kubernetes_build_info\{[^}]*git_version="([^"]+)"', re.M)


def scheduling_gates(metrics: str) -> tuple[str, dict[str, bool]]:
    """(git version, {gate: enabled}) for the scheduling gates in a component's /metrics text
    (component-base's kubernetes_build_info and kubernetes_feature_enabled families)."""
    build = _BUILD.search(metrics)
    gates = {
        name: float(value) == 1.0
        for name, value in _FEATURE.findall(metrics)
        if name.startswith(GATE_PREFIXES)
    }
    return (build.group(1) if build else ""), dict(sorted(gates.items()))


def _token(kubeconfig: str) -> str | None:
    from scheduler.kube.client import Credentials

    return Credentials.load(kubeconfig).token


def _http_ok(url: str, insecure: bool) -> bool:
    return plane.http_get(url, insecure=insecure) is not None
