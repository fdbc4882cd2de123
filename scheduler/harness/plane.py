"""Start and stop a loopback control plane: etcd, kube-apiserver, and optionally
kube-controller-manager, upstream kube-scheduler and the KWOK controller, with fake nodes
created through the API. The Kubernetes version is the one $K8S_VERSION selects (binaries.py).

Everything a running plane needs to be found again lives in DIR: `cluster.json` (pids, ports,
data directory), `kubeconfig`, `pki/` and `logs/`. etcd's data goes to tmpfs (/dev/shm) when it
is writable, because fsync-bound etcd is the first bottleneck of a benchmark otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from scheduler.harness import binaries
from scheduler.harness.nodes import NodeShape, create_nodes, make_node
from scheduler.harness.pki import Pki, load_pki, write_pki
from scheduler.kube.client import Client, Credentials

STATE_FILE = "cluster.json"
Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """The control plane could not be started or found."""


@dataclass(frozen=True)
class ClusterSpec:
    nodes: int = 3
    shape: NodeShape = field(default_factory=NodeShape)
    kube_scheduler: bool = False
    kwok: bool = False
    # Every controller but node lifecycle (KWOK keeps the fake nodes Ready instead).
    controller_manager: bool = False
    scheduler_qps: float = 50.0  # kube-scheduler's own defaults
    scheduler_burst: int = 100


@dataclass
class ClusterState:
    """What `up` started; persisted as DIR/cluster.json so `down` can find it."""

    directory: str
    server: str
    kubeconfig: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    data_dir: str = ""

    def save(self) -> None:
        path = Path(self.directory) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> ClusterState | None:
        path = directory / STATE_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))

    def running(self) -> dict[str, int]:
        """The started processes that are still alive (and still ours)."""
        return {name: pid for name, pid in self.pids.items() if _is_ours(pid, self.directory)}


def up(directory: Path, spec: ClusterSpec, log: Log = print) -> ClusterState:
    """Start a control plane in `directory` and return once the API server is ready and the
    nodes exist. The processes keep running in the background until `down`."""
    directory = directory.resolve()
    previous = ClusterState.load(directory)
    if previous and (alive := previous.running()):
        names = ", ".join(f"{n} (pid {p})" for n, p in alive.items())
        raise ClusterError(
            f"a cluster is already running in {directory}: {names}; "
            f"run `berth cluster down --dir {directory}` first"
        )
    wanted = [binaries.ETCD, binaries.APISERVER]
    wanted += [binaries.CONTROLLER_MANAGER] if spec.controller_manager else []
    wanted += [binaries.KUBE_SCHEDULER] if spec.kube_scheduler else []
    wanted += [binaries.KWOK] if spec.kwok else []
    paths = {name: binaries.binary(name) for name in wanted}

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    pki = write_pki(directory / "pki")
    data_dir = Path(tempfile.mkdtemp(prefix="berth-etcd-", dir=_tmpfs()))
    state = ClusterState(
        directory=str(directory),
        server="",
        kubeconfig=str(directory / "kubeconfig"),
        data_dir=str(data_dir),
    )
    state.save()
    try:
        _start_etcd(state, paths[binaries.ETCD], log)
        _start_apiserver(state, paths[binaries.APISERVER], pki, log)
        _write_kubeconfig(Path(state.kubeconfig), state.server, pki)
        log(f"creating {spec.nodes} nodes over {spec.shape.zones} zone(s)")
        asyncio.run(_create_nodes(state.kubeconfig, spec))
        if spec.controller_manager:
            _start_controller_manager(state, paths[binaries.CONTROLLER_MANAGER], pki, log)
        if spec.kube_scheduler:
            _start_kube_scheduler(state, paths[binaries.KUBE_SCHEDULER], spec, log)
        if spec.kwok:
            _start_kwok(state, paths[binaries.KWOK], log)
    except BaseException:
        down(directory, log=lambda _: None)
        raise
    log(f"cluster up: {state.server}, kubeconfig {state.kubeconfig}")
    return state


def down(directory: Path, log: Log = print) -> list[str]:
    """Stop every process `up` started in `directory` and remove etcd's data.

    Returns the names of the processes that were stopped. Safe to call twice.
    """
    directory = directory.resolve()
    state = ClusterState.load(directory)
    if state is None:
        log(f"no cluster in {directory}")
        return []
    stopped = []
    # Clients first, etcd last, so the API server can shut down cleanly.
    for name in reversed(list(state.pids)):
        pid = state.pids[name]
        if _is_ours(pid, state.directory):
            _terminate(pid)
            stopped.append(name)
    if state.data_dir:
        shutil.rmtree(state.data_dir, ignore_errors=True)
    (directory / STATE_FILE).unlink(missing_ok=True)
    log(f"cluster down: stopped {', '.join(stopped) or 'nothing (none was running)'}")
    return stopped


def stop_apiserver(directory: Path, *, kill: bool = False, log: Log = print) -> None:
    """Stop the plane's kube-apiserver (SIGTERM and wait, or SIGKILL when `kill`), leaving etcd
    and everything else running: an API server outage, for the fault suite."""
    state = _load_running(directory)
    pid = state.pids.get("kube-apiserver", 0)
    if not _is_ours(pid, state.directory):
        raise ClusterError(f"kube-apiserver of {directory} is not running")
    log(f"stopping kube-apiserver (pid {pid}{', SIGKILL' if kill else ''})")
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    else:
        _terminate(pid)


def start_apiserver(directory: Path, log: Log = print) -> ClusterState:
    """Start the plane's kube-apiserver again after stop_apiserver(): same port, certificates,
    tokens and etcd, so every kubeconfig written for the plane stays valid."""
    state = _load_running(directory)
    if _is_ours(state.pids.get("kube-apiserver", 0), state.directory):
        raise ClusterError(f"kube-apiserver of {directory} is already running")
    pki = load_pki(Path(state.directory) / "pki")
    binary = binaries.binary(binaries.APISERVER)
    _start_apiserver(state, binary, pki, log, port=state.ports["kube-apiserver"])
    return state


def restart_apiserver(
    directory: Path, *, kill: bool = False, downtime: float = 0.0, log: Log = print
) -> ClusterState:
    """stop_apiserver(), `downtime` seconds of nothing listening, then start_apiserver()."""
    stop_apiserver(directory, kill=kill, log=log)
    time.sleep(downtime)
    return start_apiserver(directory, log=log)


def _load_running(directory: Path) -> ClusterState:
    state = ClusterState.load(directory.resolve())
    if state is None:
        raise ClusterError(f"no cluster in {directory}")
    return state


# --- processes ---------------------------------------------------------------------------


def _start_etcd(state: ClusterState, binary: Path, log: Log) -> None:
    def args(ports: list[int]) -> list[str]:
        client, peer = (f"http://127.0.0.1:{p}" for p in ports)
        return [
            str(binary),
            "--name=berth",
            f"--data-dir={state.data_dir}/etcd",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=berth={peer}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
            "--listen-metrics-urls=",
            "--auto-compaction-retention=5m",
        ]

    def ready(ports: list[int]) -> bool:
        return _http_ok(f"http://127.0.0.1:{ports[0]}/health")

    ports = _start(state, "etcd", args, ready, port_count=2, log=log)
    state.ports["etcd"] = ports[0]


def _start_apiserver(
    state: ClusterState, binary: Path, pki: Pki, log: Log, port: int | None = None
) -> None:
    """Start kube-apiserver on a free port, or on `port` (a restart keeps the address its
    clients know)."""
    directory = Path(state.directory)

    def args(ports: list[int]) -> list[str]:
        return [
            str(binary),
            f"--etcd-servers=http://127.0.0.1:{state.ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports[0]}",
            f"--cert-dir={directory / 'pki'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={pki.token_file}",
            f"--service-account-key-file={pki.sa_public}",
            f"--service-account-signing-key-file={pki.sa_private}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            # No controller-manager runs: nothing would create default service accounts or
            # lift the not-ready taint that these plugins add.
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            # Benchmarks push thousands of requests a second through one API server.
            "--max-requests-inflight=4000",
            "--max-mutating-requests-inflight=2000",
            "--enable-priority-and-fairness=false",
            "--storage-backend=etcd3",
            # ConfigMaps bypass the watch cache, so a watch from a compacted resourceVersion
            # really gets 410 Gone (the informer's relist test); the cache of v1.35+ would
            # serve it. Nothing berth schedules by reads ConfigMaps.
            "--watch-cache-sizes=configmaps#0",
            *_gate_args(binaries.k8s_version()),
            *_runtime_config_args(binaries.k8s_version()),
            "--v=1",
        ]

    def ready(ports: list[int]) -> bool:
        return _http_ok(f"https://127.0.0.1:{ports[0]}/readyz", pki.ca_cert, pki.admin_token)

    ports = _start(
        state,
        "kube-apiserver",
        args,
        ready,
        port_count=1,
        log=log,
        timeout=120,
        ports=[port] if port else None,
    )
    state.ports["kube-apiserver"] = ports[0]
    state.server = f"https://127.0.0.1:{ports[0]}"
    state.save()


def feature_gates(version: str) -> dict[str, bool]:
    """Gates the control plane turns on beyond `version`'s defaults: what a user of that
    version can turn on for scheduling. From v1.37, GenericWorkload (the Workload/PodGroup API,
    beta but off by default). DRA (resource.k8s.io/v1) is GA and on by default from v1.34.
    kube-scheduler itself keeps its defaults: it is the parity baseline."""
    minor = int(version.removeprefix("v").split(".")[1])
    if minor < 37:
        return {}
    # TopologyAwareWorkloadScheduling (alpha) only makes the API server keep a PodGroup's
    # spec.schedulingConstraints, which berth's gang topology reads. WorkloadWithJob (alpha)
    # has the Job controller create a Workload and a PodGroup for each new Job.
    return {
        "GenericWorkload": True,
        "TopologyAwareWorkloadScheduling": True,
        "WorkloadWithJob": True,
    }


def _gate_args(version: str) -> list[str]:
    gates = feature_gates(version)
    if not gates:
        return []
    return ["--feature-gates=" + ",".join(f"{k}={str(v).lower()}" for k, v in gates.items())]


def _runtime_config_args(version: str) -> list[str]:
    if feature_gates(version).get("GenericWorkload"):
        return ["--runtime-config=scheduling.k8s.io/v1beta1=true"]
    return []


def _start_controller_manager(state: ClusterState, binary: Path, pki: Pki, log: Log) -> None:
    directory = Path(state.directory)

    def args(ports: list[int]) -> list[str]:
        return [
            str(binary),
            f"--kubeconfig={state.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[0]}",
            f"--cert-dir={directory / 'pki' / 'kube-controller-manager'}",
            "--leader-elect=false",
            # Fake nodes have no kubelet: node lifecycle would taint and evict them. KWOK keeps
            # them Ready instead; everything else (ReplicaSets, Deployments, StatefulSets, Jobs,
            # the PV binder, ResourceClaims, namespaces, garbage collection) runs as upstream.
            "--controllers=*,-node-lifecycle-controller",
            f"--service-account-private-key-file={pki.sa_private}",
            f"--root-ca-file={pki.ca_cert}",
            "--use-service-account-credentials=false",
            # Tests create workloads in bursts; upstream's 20 qps would make them wait.
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
            *_gate_args(binaries.k8s_version()),
            "--v=1",
        ]

    def ready(ports: list[int]) -> bool:
        return _http_ok(f"https://127.0.0.1:{ports[0]}/healthz", insecure=True)

    ports = _start(state, "kube-controller-manager", args, ready, port_count=1, log=log)
    state.ports["kube-controller-manager"] = ports[0]


def _start_kube_scheduler(state: ClusterState, binary: Path, spec: ClusterSpec, log: Log) -> None:
    directory = Path(state.directory)
    config = directory / "kube-scheduler.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                # Flags such as --kube-api-qps are ignored once --config is given: limits go here.
                "clientConnection": {
                    "kubeconfig": state.kubeconfig,
                    "qps": spec.scheduler_qps,
                    "burst": spec.scheduler_burst,
                },
                "leaderElection": {"leaderElect": False},
            }
        )
    )

    def args(ports: list[int]) -> list[str]:
        return [
            str(binary),
            f"--config={config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[0]}",
            f"--cert-dir={directory / 'pki' / 'kube-scheduler'}",
            f"--authentication-kubeconfig={state.kubeconfig}",
            f"--authorization-kubeconfig={state.kubeconfig}",
            "--v=1",
        ]

    def ready(ports: list[int]) -> bool:
        return _http_ok(f"https://127.0.0.1:{ports[0]}/healthz", insecure=True)

    ports = _start(state, "kube-scheduler", args, ready, port_count=1, log=log)
    state.ports["kube-scheduler"] = ports[0]


def _start_kwok(state: ClusterState, binary: Path, log: Log) -> None:
    def args(ports: list[int]) -> list[str]:
        return [
            str(binary),
            f"--kubeconfig={state.kubeconfig}",
            "--manage-all-nodes=true",
            f"--server-address=127.0.0.1:{ports[0]}",
            "--node-lease-duration-seconds=0",
        ]

    def ready(ports: list[int]) -> bool:
        return _http_ok(f"http://127.0.0.1:{ports[0]}/healthz")

    ports = _start(state, "kwok", args, ready, port_count=1, log=log)
    state.ports["kwok"] = ports[0]


def _start(
    state: ClusterState,
    name: str,
    args: Callable[[list[int]], list[str]],
    ready: Callable[[list[int]], bool],
    *,
    port_count: int,
    log: Log,
    timeout: float = 60.0,
    attempts: int = 3,
    ports: list[int] | None = None,
) -> list[int]:
    """Start one process on free ports (or on the `ports` given) and wait until `ready`; retry
    on a port clash (on fixed ports: the same ports, a moment later)."""
    logfile = Path(state.directory) / "logs" / f"{name}.log"
    fixed = ports
    for attempt in range(attempts):
        if fixed:
            time.sleep(attempt)  # a port just released may still be held for a moment
        ports = fixed or _free_ports(port_count)
        log(f"starting {name} on port {ports[0]}")
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                args(ports),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=state.directory,
            )
        state.pids[name] = proc.pid
        state.save()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if ready(ports):
                return ports
            time.sleep(0.2)
        else:
            _terminate(proc.pid)
            raise ClusterError(
                f"{name} did not become ready in {timeout:.0f}s; last lines of {logfile}:\n"
                + _tail(logfile)
            )
        tail = _tail(logfile)
        if "address already in use" in tail and attempt + 1 < attempts:
            log(f"{name}: port clash, retrying on another port")
            continue
        raise ClusterError(
            f"{name} exited with code {proc.returncode} while starting; "
            f"last lines of {logfile}:\n{tail}"
        )
    raise AssertionError("unreachable")


def _terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _is_ours(pid: int, directory: str) -> bool:
    """True if `pid` is alive and is a process this plane started (not a recycled pid)."""
    if not _alive(pid):
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return cwd == directory


# --- helpers -----------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http_get(
    url: str, ca: Path | None = None, token: str | None = None, insecure: bool = False
) -> str | None:
    """The body of a 200 answer to GET `url`, or None (any error, any other status)."""
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if insecure:  # a component's self-signed serving certificate
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as resp:
            return str(resp.read().decode(errors="replace")) if resp.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


def _http_ok(
    url: str, ca: Path | None = None, token: str | None = None, insecure: bool = False
) -> bool:
    return http_get(url, ca, token, insecure) is not None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _tmpfs() -> str | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1 << 30:
        return str(shm)
    return None


def _write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "berth",
                "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [{"name": "berth-admin", "user": {"token": pki.admin_token}}],
        "contexts": [{"name": "berth", "context": {"cluster": "berth", "user": "berth-admin"}}],
        "current-context": "berth",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


async def _create_nodes(kubeconfig: str, spec: ClusterSpec) -> None:
    async with Client(Credentials.load(kubeconfig), qps=0, burst=1) as client:
        await create_nodes(client, [make_node(i, spec.shape) for i in range(1, spec.nodes + 1)])
