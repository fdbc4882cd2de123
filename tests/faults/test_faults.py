"""berth under faults: broken connections, a dead API server, killed and paused replicas,
nodes that vanish mid-burst. Each scenario runs a burst through the fault (scenario.py) and
asserts from the API afterwards: every pod that fits is bound, none twice, no node overcommitted,
no traceback in any berth log, and a bind after every fault (its seconds go in the table).

No assertion is about how long anything took: the waits are generous bounds.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from scheduler.harness import plane
from scheduler.kube.client import Client
from tests.e2e.conftest import Cluster
from tests.faults.checker import Fault
from tests.faults.scenario import PATIENCE, Berth, Scenario, mode

pytestmark = pytest.mark.asyncio(loop_scope="session")

CUT_EVERY = 3.0
OUTAGE = 90.0  # longer than berth run's --api-unreachable-timeout (60 s), so /healthz must fail
APISERVER_DOWNTIME = 5.0
PAUSE = 12.0  # three lease durations (scenario.berth_config)


def now() -> float:
    return time.monotonic()


async def eventually(
    what: str, probe: Callable[[], Awaitable[object]], patience: float = PATIENCE
) -> None:
    """Poll the async `probe` until it is truthy; fail after `patience` seconds."""
    deadline = now() + patience
    while not await probe():
        if now() > deadline:
            pytest.fail(f"gave up waiting for {what}", pytrace=False)
        await asyncio.sleep(0.25)


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    return tmp_path


async def test_connections_cut_repeatedly(
    fault_cluster: Cluster, client: Client, namespace: str, scenario_dir: Path
) -> None:
    """Every connection between berth and the API server is reset every few seconds during
    the burst; berth re-lists, re-watches and re-sends, and binds every pod once."""
    cuts = 6 if mode() == "full" else 3
    async with Scenario("cut-repeatedly", fault_cluster, client, namespace, scenario_dir) as s:
        kubeconfig = s.start_proxy()
        await s.berth("berth", kubeconfig)
        assert s.proxy is not None

        async def fault() -> list[Fault]:
            faults = []
            for i in range(cuts):
                if i:
                    await asyncio.sleep(CUT_EVERY)
                at = now()
                s.proxy.cut_all()  # type: ignore[union-attr]
                faults.append(Fault(f"cut {i + 1}", at, at))
            return faults

        outcome = await s.run(fault, spread=CUT_EVERY * cuts)
        s.assert_sound(outcome)


async def test_existing_connections_black_holed(
    fault_cluster: Cluster, client: Client, namespace: str, scenario_dir: Path
) -> None:
    """A few seconds into the burst every open connection goes silent (kept open, nothing
    forwarded either way, no FIN, no RST); new connections pass. berth must notice the silence
    by its own deadlines, reconnect, and bind the pods created since."""
    async with Scenario("blackhole-existing", fault_cluster, client, namespace, scenario_dir) as s:
        kubeconfig = s.start_proxy()
        await s.berth("berth", kubeconfig)
        assert s.proxy is not None

        async def fault() -> list[Fault]:
            at = now()
            frozen = s.proxy.blackhole_existing()  # type: ignore[union-attr]
            print(f"\nblack-holed {frozen} open connection(s)")
            return [Fault(f"blackhole ({frozen} conns)", at, at)]

        outcome = await s.run(fault)
        print(f"proxy after the scenario: {s.proxy.stats}")
        s.assert_sound(outcome)


@pytest.mark.faults_full
async def test_full_outage_black_hole(
    fault_cluster: Cluster, client: Client, namespace: str, scenario_dir: Path
) -> None:
    """For a minute nothing berth sends reaches the API server, on old or new connections.
    While pods wait, /healthz must say berth is not healthy; after the heal berth binds the
    pods created meanwhile and /healthz says 200 again."""
    async with Scenario("full-outage", fault_cluster, client, namespace, scenario_dir) as s:
        kubeconfig = s.start_proxy()
        berth = await s.berth("berth", kubeconfig)
        assert s.proxy is not None
        during: list[int | None] = []

        async def fault() -> list[Fault]:
            start = now()
            s.proxy.blackhole_all(True)  # type: ignore[union-attr]
            while now() - start < OUTAGE:
                during.append(await berth.healthz())
                await asyncio.sleep(1.0)
            s.proxy.heal()  # type: ignore[union-attr]
            return [Fault(f"outage {OUTAGE:.0f}s (from heal)", start, now())]

        outcome = await s.run(fault, spread=OUTAGE + 10)
        after: list[int | None] = []

        async def healthy() -> bool:
            after.append(await berth.healthz())
            return after[-1] == 200

        await eventually("/healthz 200 after the heal", healthy)
        print(f"/healthz during the outage: {during}; after: {after[-5:]}")
        s.assert_sound(outcome)
        assert any(code != 200 for code in during), f"/healthz stayed 200 throughout: {during}"


@pytest.mark.faults_full
async def test_apiserver_restarted(
    fault_cluster: Cluster, client: Client, namespace: str, scenario_dir: Path
) -> None:
    """kube-apiserver is killed (SIGKILL) and started again on the same port and etcd a few
    seconds later; berth (connected directly) reconnects and binds the rest."""
    if not fault_cluster.local or fault_cluster.directory is None:
        pytest.skip("needs the suite's own control plane (KUBECONFIG names another cluster)")
    directory = fault_cluster.directory
    async with Scenario("apiserver-restart", fault_cluster, client, namespace, scenario_dir) as s:
        await s.berth("berth", fault_cluster.kubeconfig)

        async def fault() -> list[Fault]:
            start = now()
            await asyncio.to_thread(
                plane.restart_apiserver,
                directory,
                kill=True,
                downtime=APISERVER_DOWNTIME,
                log=lambda _: None,
            )
            ready = now()
            label = f"apiserver killed, ready {ready - start:.1f}s later (from ready)"
            return [Fault(label, start, ready)]

        outcome = await s.run(fault)
        s.assert_sound(outcome)


@pytest.mark.faults_full
async def test_berth_killed_and_restarted(
    fault_cluster: Cluster, client: Client, namespace: str, scenario_dir: Path
) -> None:
    """berth is SIGKILLed mid-burst (pods assumed but not bound, binds in flight) and started
    again at once; the new process binds every pod the old one did not, and none twice."""
    async with Scenario("berth-sigkill", fault_cluster, client, namespace, scenario_dir) as s:
        berth = await s.berth("berth", fault_cluster.kubeconfig)

        async def fault() -> list[Fault]:
            at = now()
            await berth.kill()
            berth.start()
            return [Fault("sigkill + restart", at, at)]

        outcome = await s.run(fault)
        s.assert_sound(outcome)


@pytest.mark.faults_full
async def test_leader_killed_then_paused(
    fault_cluster: Cluster, client: Client, namespace: str, scenario_dir: Path
) -> None:
    """Two replicas with leader election. Mid-burst the leader is SIGKILLed (and restarted, to
    stand by); once the other leads, it is paused (SIGSTOP) for three lease durations and then
    resumed (SIGCONT). The standby takes over each time; the resumed one, having lost the Lease,
    exits (code 1) rather than schedule on, and is started again."""
    async with Scenario("leader-kill-pause", fault_cluster, client, namespace, scenario_dir) as s:
        a = await s.berth("a", fault_cluster.kubeconfig, leader=True)
        b = await s.berth("b", fault_cluster.kubeconfig, leader=True)
        replicas = [a, b]

        async def leader() -> Berth | None:
            leading = [r for r in replicas if await r.leading()]
            return leading[0] if len(leading) == 1 else None

        await eventually("one replica to lead", leader)
        resumed_exit: list[int | None] = []

        async def fault() -> list[Fault]:
            first = await leader()
            assert first is not None
            killed_at = now()
            await first.kill()
            first.start()
            second = next(r for r in replicas if r is not first)
            await eventually("the standby to lead", second.leading)
            await asyncio.sleep(1.0)  # let it bind a few before the next fault
            paused_at = now()
            second.signal(signal.SIGSTOP)
            await asyncio.sleep(PAUSE)
            second.signal(signal.SIGCONT)
            resumed_exit.append(await second.exited())
            second.start()
            return [
                Fault("leader SIGKILL", killed_at, killed_at),
                Fault(f"leader SIGSTOP {PAUSE:.0f}s", paused_at, paused_at),
            ]

        # Pods keep coming through both faults (about 25 s), so each has pods to recover with.
        outcome = await s.run(fault, spread=30.0)
        print(f"the resumed leader exited with {resumed_exit}; exits a {a.exits} b {b.exits}")
        s.assert_sound(outcome)
        assert resumed_exit == [1], f"the resumed leader did not exit with 1: {resumed_exit}"


@pytest.mark.faults_full
async def test_nodes_deleted_and_recreated(
    fault_cluster: Cluster, client: Client, namespace: str, scenario_dir: Path
) -> None:
    """Twice during the burst half the pool's nodes are deleted (pods bound to them stay bound)
    and re-created a few seconds later with the same name and allocatable; berth must count the
    pods still bound to a re-created node and bind the rest without overcommitting it."""
    async with Scenario("nodes-recreated", fault_cluster, client, namespace, scenario_dir) as s:
        await s.berth("berth", fault_cluster.kubeconfig)
        victims = s.pool[: len(s.pool) // 2]

        async def fault() -> list[Fault]:
            faults = []
            for round_ in (1, 2):
                start = now()
                for name in victims:
                    await client.delete(f"/api/v1/nodes/{name}")
                await asyncio.sleep(3.0)
                for name in victims:
                    await client.post("/api/v1/nodes", s.node(name))
                faults.append(Fault(f"recreate {round_} (from re-create)", start, now()))
                await asyncio.sleep(2.0)
            return faults

        outcome = await s.run(fault)
        s.assert_sound(outcome)
