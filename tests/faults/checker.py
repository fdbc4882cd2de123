"""What a fault scenario asserts afterwards, read from the API server and never from berth.

`PodWatch` lists and then watches the scenario's pods from before the burst until the end,
straight to the API server (never through the fault proxy), and records every transition of
`spec.nodeName` per pod UID with the time the event *arrived* (monotonic). It survives the API
server going away: it re-watches from the last resourceVersion, and re-lists on 410 Gone.

At the end `settle()` polls the API until no pending pod fits anywhere, then `verdict()` says:

- pods, bound: created by the scenario; bound now.
- pending that fit: pending pods that fit the free room (allocatable minus the requests of the
  bound, unfinished pods) of some node of the scenario's pool right now: a scheduler that
  recovered leaves none.
- double binds: pods whose nodeName went from one node to another (or was set twice), by the
  watch. The API server refuses a second binding, so anything here is an API-level anomaly.
- overcommitted nodes: nodes of the pool whose bound, unfinished pods request more cpu, memory
  or pods than the node's allocatable.
- recovery: per fault, seconds from the fault's end (the instant of an instantaneous fault, the
  heal of an outage) to the first bind, by event arrival, of a pod created after the fault
  began. A pod created after the fault began cannot have been bound by anything berth did
  before it, so a bind already in flight when the fault struck does not count as recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from scheduler.kube.client import Client, Credentials
from scheduler.model import parse_quantity

JSON = dict[str, Any]
RESOURCES = ("cpu", "memory", "pods")
FINISHED = ("Succeeded", "Failed")
TABLE = Path(__file__).resolve().parents[2] / "out" / "faults" / "table.md"
HEADER = (
    "| scenario | mode | pods | bound | pending that fit | double binds "
    "| overcommitted nodes | recovery s (fault: seconds to next bind) |\n"
    "|---|---|---|---|---|---|---|---|\n"
)


@dataclass
class Fault:
    """One fault: `start` and `end` are monotonic seconds (equal for an instantaneous one)."""

    label: str
    start: float
    end: float


@dataclass
class PodRecord:
    name: str
    nodes: list[str] = field(default_factory=list)  # every non-empty nodeName seen, in order
    bound_at: float | None = None  # arrival of the first event with a nodeName
    deleted: bool = False


class PodWatch:
    """Every nodeName transition of the pods of one namespace, by UID (see the module doc)."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.creds = Credentials.load(kubeconfig)
        self.namespace = namespace
        self.pods: dict[str, PodRecord] = {}
        self.relists = 0
        self.rewatches = 0
        self._rv = ""
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._listed = asyncio.Event()

    async def start(self) -> None:
        headers = {"Accept": "application/json"}
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        self._session = aiohttp.ClientSession(
            headers=headers, connector=aiohttp.TCPConnector(ssl=self.creds.ssl_context())
        )
        self._task = asyncio.create_task(self._run(), name=f"podwatch-{self.namespace}")
        await asyncio.wait_for(self._listed.wait(), 60)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    # --- what was seen -------------------------------------------------------------------

    def double_binds(self) -> dict[str, list[str]]:
        """Pods (by name) whose nodeName was set more than once, with the nodes in order."""
        return {r.name: r.nodes for r in self.pods.values() if len(r.nodes) > 1}

    def recovery(self, fault: Fault, created: dict[str, float]) -> float | None:
        """Seconds from the fault's end to the first bind of a pod created after it began."""
        binds = [
            r.bound_at
            for r in self.pods.values()
            if r.bound_at is not None
            and r.bound_at >= fault.end
            and created.get(r.name, 0.0) >= fault.start
        ]
        return min(binds) - fault.end if binds else None

    def binds_after(self, moment: float) -> int:
        return sum(1 for r in self.pods.values() if r.bound_at and r.bound_at >= moment)

    # --- the loop ------------------------------------------------------------------------

    def _see(self, pod: JSON, now: float, deleted: bool = False) -> None:
        meta = pod["metadata"]
        record = self.pods.setdefault(meta["uid"], PodRecord(meta["name"]))
        node = pod.get("spec", {}).get("nodeName") or ""
        if node and (not record.nodes or record.nodes[-1] != node):
            record.nodes.append(node)
        elif not node and record.nodes:
            record.nodes.append("")  # nodeName cleared: impossible through the API; recorded
        if node and record.bound_at is None:
            record.bound_at = now
        record.deleted = record.deleted or deleted

    async def _list(self) -> None:
        assert self._session is not None
        url = f"{self.creds.server}/api/v1/namespaces/{self.namespace}/pods"
        async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            resp.raise_for_status()
            body = orjson.loads(await resp.read())
        now = time.monotonic()
        for pod in body["items"]:
            self._see(pod, now)
        self._rv = body["metadata"]["resourceVersion"]
        self._listed.set()

    async def _watch(self) -> None:
        assert self._session is not None
        url = f"{self.creds.server}/api/v1/namespaces/{self.namespace}/pods"
        params = {
            "watch": "1",
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        # sock_read: the checker's own connection is direct, but the API server may die.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
        async with self._session.get(url, params=params, timeout=timeout) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                if not line.strip():
                    continue
                event = orjson.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        self._rv = ""
                    return
                self._rv = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    self._see(obj, time.monotonic(), deleted=kind == "DELETED")

    async def _run(self) -> None:
        while True:
            try:
                if not self._rv:
                    await self._list()
                    self.relists += 1
                await self._watch()
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
                status = getattr(err, "status", None)
                if status == 410:
                    self._rv = ""
            self.rewatches += 1
            await asyncio.sleep(0.5)


# --- the final state, from the API --------------------------------------------------------


def requests_of(pod: JSON) -> dict[str, int]:
    """cpu (milli), memory (bytes) and one pod slot: what the scenario's pods request. Their
    pods have one container and no init containers or overhead, so the sum is exact."""
    total = {"cpu": 0, "memory": 0, "pods": 1}
    for container in pod["spec"].get("containers", []):
        requests = container.get("resources", {}).get("requests", {})
        total["cpu"] += parse_quantity(requests.get("cpu", "0"), milli=True)
        total["memory"] += parse_quantity(requests.get("memory", "0"))
    return total


def allocatable_of(node: JSON) -> dict[str, int]:
    alloc = node["status"]["allocatable"]
    return {
        "cpu": parse_quantity(alloc["cpu"], milli=True),
        "memory": parse_quantity(alloc["memory"]),
        "pods": parse_quantity(alloc["pods"]),
    }


@dataclass(frozen=True)
class Verdict:
    pods: int
    bound: int
    pending_fit: list[str]
    overcommitted: dict[str, dict[str, tuple[int, int]]]  # node -> resource -> (used, alloc)


async def judge(client: Client, namespace: str, pool: Iterable[str]) -> Verdict:
    """The final state from the API: bound pods, pending pods that fit, overcommitted nodes.

    Every pod of the cluster counts against a node, not just the scenario's (another test's pod
    would use the room as much); pods of the namespace fit only the `pool` nodes (their node
    selector and toleration say so)."""
    pool = set(pool)
    everyone = (await client.get("/api/v1/pods"))["items"]
    nodes = {
        n["metadata"]["name"]: allocatable_of(n)
        for n in (await client.get("/api/v1/nodes"))["items"]
        if n["metadata"]["name"] in pool
    }
    used = {name: dict.fromkeys(RESOURCES, 0) for name in nodes}
    for pod in everyone:
        node = pod["spec"].get("nodeName")
        if node in used and pod.get("status", {}).get("phase") not in FINISHED:
            for resource, amount in requests_of(pod).items():
                used[node][resource] += amount
    mine = [p for p in everyone if p["metadata"]["namespace"] == namespace]
    pending = [p for p in mine if not p["spec"].get("nodeName")]
    fits = [
        p["metadata"]["name"]
        for p in pending
        if any(all(used[n][r] + requests_of(p)[r] <= nodes[n][r] for r in RESOURCES) for n in nodes)
    ]
    over = {
        n: {r: (used[n][r], nodes[n][r]) for r in RESOURCES if used[n][r] > nodes[n][r]}
        for n in nodes
    }
    return Verdict(
        pods=len(mine),
        bound=len(mine) - len(pending),
        pending_fit=sorted(fits),
        overcommitted={n: o for n, o in over.items() if o},
    )


async def settle(
    client: Client, namespace: str, pool: Iterable[str], patience: float
) -> tuple[Verdict, float]:
    """Poll judge() until no pending pod fits (or `patience` runs out); return the last verdict
    and how long the wait took. A generous bound, not an expectation."""
    pool = list(pool)
    start = time.monotonic()
    while True:
        verdict = await judge(client, namespace, pool)
        waited = time.monotonic() - start
        if not verdict.pending_fit or waited > patience:
            return verdict, waited
        await asyncio.sleep(2.0)


# --- the report ---------------------------------------------------------------------------


def tracebacks(logs: Iterable[Path]) -> list[str]:
    """Each log that has a traceback, with the lines around its first one."""
    found = []
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Traceback" in text:
            at = text.index("Traceback")
            found.append(f"{log}:\n{text[max(0, at - 1500) : at + 4000]}")
    return found


def format_recovery(figures: list[tuple[str, float | None]]) -> str:
    return ", ".join(
        f"{label}: {'none' if secs is None else f'{secs:.1f}'}" for label, secs in figures
    )


def report(
    scenario: str,
    mode: str,
    verdict: Verdict,
    double: dict[str, list[str]],
    figures: list[tuple[str, float | None]],
    table: Path = TABLE,
) -> str:
    """One table row: printed, and appended to out/faults/table.md (header on a new file)."""
    row = (
        f"| {scenario} | {mode} | {verdict.pods} | {verdict.bound} | {len(verdict.pending_fit)} "
        f"| {len(double)} | {len(verdict.overcommitted)} | {format_recovery(figures)} |"
    )
    table.parent.mkdir(parents=True, exist_ok=True)
    fresh = not table.exists()
    with table.open("a") as out:
        if fresh:
            out.write(HEADER)
        out.write(row + "\n")
    print(f"\n{HEADER}{row}")
    return row
