"""One fault scenario from start to verdict: nodes, berth processes, the proxy, the burst.

A scenario runs like this (`Scenario.run`), whatever its fault:

```
  nodes + berth ready ─▶ PodWatch listing ─▶ burst: pods created at a steady pace ─────────▶
                                                  └─ FAULT_AFTER s in: the fault ─▶ lifted
                                                                                   └─▶ tail
  ─▶ settle (until no pending pod fits, PATIENCE at most) ─▶ table row ─▶ assertions
```

The tail (a fifth of the pods) is created only once the fault is lifted, and the burst keeps
creating pods through the fault, so there are always pods that only a recovered berth can bind:
that is what each fault's recovery figure measures (checker.PodWatch.recovery).

Nodes are the scenario's own, tainted and labelled with its pool id, so nothing else lands on
them and its pods land nowhere else; pods are sized so the fitting ones fill the pool to about
85%, which a berth that lost track of a bound pod would overcommit. A few pods request more cpu
than any node has: they must stay pending, and count in "pods" but not in "pending that fit".

The pods name schedulerName `berth-faults`, not `berth`: the e2e suite keeps a `berth` of its
own running for the whole session, which must not take this suite's pods past the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from scheduler.kube.client import ApiError, Client, Credentials
from tests.builders import make_node, make_pod
from tests.e2e.conftest import Cluster, Running, start_berth, wait_ready
from tests.faults import checker
from tests.faults.checker import Fault
from tests.faults.proxy import ThreadedProxy

JSON = dict[str, Any]
SCHEDULER = "berth-faults"
POOL = "berth.faults/pool"
NODES = 4
NODE = {"cpu": "4", "memory": "16Gi", "pods": "110"}
FILL = 0.85  # of the pool's cpu, by the pods that fit
UNFIT = 3  # pods larger than any node
FAULT_AFTER = 3.0  # seconds into the burst
PATIENCE = 240.0  # seconds to wait for every fitting pod to be bound: a bound, never a target
LEASE = "berth-faults"


def mode() -> str:
    """ "full" under `make faults` (BERTH_FAULTS=full), else "short"."""
    return "full" if os.environ.get("BERTH_FAULTS") == "full" else "short"


def pod_count() -> int:
    """Pods that fit, per scenario: a few hundred in full mode, fewer in `make test`."""
    return 300 if mode() == "full" else 60


def berth_config(namespace: str, *, leader: bool = False) -> str:
    election = (
        f"""\
  leaderElect: true
  leaseDuration: 4s
  renewDeadline: 3s
  retryPeriod: 500ms
  resourceName: {LEASE}
  resourceNamespace: {namespace}
"""
        if leader
        else "  leaderElect: false\n"
    )
    return f"""\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
{election}profiles:
- schedulerName: {SCHEDULER}
"""


def proxied_kubeconfig(source: str, target: Path, port: int) -> Path:
    """A copy of `source` whose current cluster's server is the proxy on 127.0.0.1:`port`.

    The TLS stream passes the proxy untouched, so the API server's certificate must name
    127.0.0.1 (the harness's does; kind's does too). A relative CA path is made absolute.
    """
    config = yaml.safe_load(Path(source).read_text())
    context_name = config.get("current-context")
    context = next(c for c in config["contexts"] if c["name"] == context_name)["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"]
    cluster["server"] = f"https://127.0.0.1:{port}"
    for key in ("certificate-authority",):
        if key in cluster and not Path(cluster[key]).is_absolute():
            cluster[key] = str((Path(source).parent / cluster[key]).resolve())
    for user in config.get("users", []):
        for key in ("client-certificate", "client-key", "tokenFile"):
            value = user.get("user", {}).get(key)
            if value and not Path(value).is_absolute():
                user["user"][key] = str((Path(source).parent / value).resolve())
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    target.chmod(0o600)
    return target


@dataclass
class Berth:
    """One berth replica that may be killed and started again; every incarnation logs to a
    file of its own, and all of them are checked for tracebacks."""

    name: str
    config: str
    kubeconfig: str
    directory: Path
    running: Running | None = None
    logs: list[Path] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)  # return codes of finished incarnations

    def start(self) -> None:
        incarnation = f"{self.name}-{len(self.logs)}"
        self.running = start_berth(self.config, self.kubeconfig, self.directory, incarnation)
        self.logs.append(self.running.log)

    async def ready(self) -> None:
        assert self.running is not None
        await asyncio.to_thread(wait_ready, self.running, 120.0)

    def signal(self, sig: signal.Signals) -> None:
        assert self.running is not None
        self.running.process.send_signal(sig)

    async def kill(self) -> None:
        """SIGKILL, and reap."""
        assert self.running is not None
        self.signal(signal.SIGKILL)
        self.exits.append(await asyncio.to_thread(self.running.process.wait))

    async def exited(self, patience: float = 60.0) -> int | None:
        """Wait for this incarnation to exit on its own; its code, or None if it did not."""
        assert self.running is not None
        try:
            code = await asyncio.to_thread(self.running.process.wait, patience)
        except Exception:  # subprocess.TimeoutExpired
            return None
        self.exits.append(code)
        return code

    def stop(self) -> None:
        if self.running is not None:
            self.running.process.send_signal(signal.SIGCONT)  # a paused one must hear SIGTERM
            self.running.stop()

    def _get(self, path: str) -> tuple[int | None, str]:
        assert self.running is not None
        url = f"http://127.0.0.1:{self.running.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, ""
        except OSError:
            return None, ""

    async def healthz(self) -> int | None:
        """/healthz's status code; None when nothing answered."""
        return (await asyncio.to_thread(self._get, "/healthz"))[0]

    async def leading(self) -> bool:
        """What this replica's leader_election_master_status says."""
        status, body = await asyncio.to_thread(self._get, "/metrics")
        pattern = rf'^leader_election_master_status\{{[^}}]*name="{LEASE}"[^}}]*\}} 1(\.0)?$'
        return status == 200 and re.search(pattern, body, re.MULTILINE) is not None


@dataclass
class Outcome:
    verdict: checker.Verdict
    double: dict[str, list[str]]
    figures: list[tuple[str, float | None]]
    row: str
    waited: float


class Scenario:
    """Nodes, berth replicas, an optional proxy and the checker for one scenario."""

    def __init__(
        self, name: str, cluster: Cluster, client: Client, namespace: str, directory: Path
    ) -> None:
        self.name = name
        self.cluster = cluster
        self.client = client
        self.namespace = namespace
        self.directory = directory
        self.pool = [f"{namespace}-n{i}" for i in range(NODES)]
        self.berths: list[Berth] = []
        self.proxy: ThreadedProxy | None = None
        self.watch = checker.PodWatch(cluster.kubeconfig, namespace)
        self.created: dict[str, float] = {}  # pod name -> monotonic time its POST was sent
        self.fits = pod_count()
        cpu = int(NODES * 4000 * FILL / self.fits)
        self.cpu = f"{cpu}m"

    async def __aenter__(self) -> Scenario:
        for name in self.pool:
            await self.client.post("/api/v1/nodes", self.node(name))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for berth in self.berths:
            berth.stop()
        if self.proxy is not None:
            self.proxy.stop()
        await self.watch.stop()
        for name in self.pool:
            with contextlib.suppress(ApiError):
                await self.client.delete(f"/api/v1/nodes/{name}")

    # --- pieces ----------------------------------------------------------------------------

    def node(self, name: str) -> JSON:
        return (
            make_node(name)
            .resources(NODE)
            .label(POOL, self.namespace)
            .taint(POOL, self.namespace)
            .obj_()
        )

    def pod(self, name: str, cpu: str) -> JSON:
        return (
            make_pod(name)
            .namespace(self.namespace)
            .scheduler(SCHEDULER)
            .req(cpu=cpu, memory="64Mi")
            .node_selector(**{POOL: self.namespace})
            .toleration(POOL, self.namespace)
            .for_api()
        )

    def start_proxy(self) -> Path:
        """Start the proxy in front of the API server; return a kubeconfig that uses it."""
        server = urlsplit(Credentials.load(self.cluster.kubeconfig).server)
        assert server.hostname and server.port, server
        self.proxy = ThreadedProxy(server.hostname, server.port)
        port = self.proxy.start()
        return proxied_kubeconfig(
            self.cluster.kubeconfig, self.directory / "proxied-kubeconfig", port
        )

    async def berth(self, name: str, kubeconfig: str | Path, *, leader: bool = False) -> Berth:
        """Start a berth replica (and wait until its caches are synced)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        config = berth_config(self.namespace, leader=leader)
        berth = Berth(name, config, str(kubeconfig), self.directory)
        self.berths.append(berth)
        berth.start()
        await berth.ready()
        return berth

    async def create(self, name: str, cpu: str) -> None:
        """POST one pod, retrying through API server outages (a bounded number of times)."""
        body = self.pod(name, cpu)
        self.created[name] = time.monotonic()
        for _ in range(600):
            try:
                await self.client.post(f"/api/v1/namespaces/{self.namespace}/pods", body)
                return
            except ApiError as err:
                if err.status == 409:  # an earlier attempt got through
                    return
                if err.status < 500 and err.status != 429:
                    raise
            except (OSError, TimeoutError):
                pass
            except Exception as err:  # aiohttp's and the pipelined client's transport errors
                if "ApiError" in type(err).__name__:
                    raise
            await asyncio.sleep(0.5)
        raise AssertionError(f"could not create pod {name}")

    async def paced(self, names: list[str], seconds: float) -> None:
        """Create the pods in waves spread over `seconds`."""
        waves = max(1, int(seconds / 0.5))
        size = -(-len(names) // waves)
        for i in range(0, len(names), size):
            await asyncio.gather(*(self.create(n, self.cpu) for n in names[i : i + size]))
            await asyncio.sleep(0.5)

    # --- the run ---------------------------------------------------------------------------

    async def run(
        self, fault: Callable[[], Awaitable[list[Fault]]], spread: float = 8.0
    ) -> Outcome:
        """The burst with `fault` injected FAULT_AFTER s into it, then the tail, the settle
        and the table row; returns the outcome for the scenario's own assertions.

        The burst is spread over `spread` seconds: a scenario whose fault lasts longer passes
        more, so that pods keep arriving through the fault and each recovery is measured on
        pods that were waiting, not on the tail's arrival."""
        tail = self.fits // 5
        names = [f"p{i:04d}" for i in range(self.fits)]
        burst, tail_names = names[: self.fits - tail], names[self.fits - tail :]
        await self.watch.start()
        for i in range(UNFIT):
            await self.create(f"huge{i}", "64")
        creating = asyncio.create_task(self.paced(burst, spread))
        await asyncio.sleep(FAULT_AFTER)
        faults = await fault()
        await creating
        await asyncio.gather(*(self.create(n, self.cpu) for n in tail_names))
        verdict, waited = await checker.settle(self.client, self.namespace, self.pool, PATIENCE)
        figures = [(f.label, self.watch.recovery(f, self.created)) for f in faults]
        double = self.watch.double_binds()
        row = checker.report(self.name, mode(), verdict, double, figures)
        return Outcome(verdict, double, figures, row, waited)

    def assert_sound(self, outcome: Outcome) -> None:
        """The assertions every scenario makes; evidence in the messages."""
        verdict = outcome.verdict
        logs = [log for berth in self.berths for log in berth.logs]
        proxy = f"; proxy {self.proxy.stats}" if self.proxy is not None else ""
        context = f"{outcome.row} (settled after {outcome.waited:.0f}s{proxy}; logs {logs})"
        assert not checker.tracebacks(logs), "\n".join(checker.tracebacks(logs))
        assert verdict.pods == self.fits + UNFIT, context
        assert not outcome.double, f"double binds {outcome.double}: {context}"
        assert not verdict.overcommitted, f"overcommitted {verdict.overcommitted}: {context}"
        assert not verdict.pending_fit, (
            f"{len(verdict.pending_fit)} pending pods fit: {verdict.pending_fit[:10]}: {context}"
        )
        no_recovery = [label for label, secs in outcome.figures if secs is None]
        assert not no_recovery, f"no bind after {no_recovery}: {context}"
