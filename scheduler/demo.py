"""`berth demo`: berth scheduling a mixed workload on a real control plane, end to end.

With no KUBECONFIG it brings up a local cluster (100 nodes over 3 zones), turns some nodes into
SSD nodes and some into tainted GPU nodes, runs berth in this process, submits groups of pods
with different requests, node selectors and tolerations (some of which fit nowhere), shows a
progress bar of bound pods, and ends with a summary: bound and pending counts, pods per zone,
scheduling latency, and why the pending pods wait.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.kube.client import ApiError, Client
from scheduler.kube.informer import DELETED, Informer

JSON = dict[str, Any]
NAMESPACE = "berth-demo"
SCHEDULER = "berth"
ZONE = "topology.kubernetes.io/zone"

CONFIG = {
    "apiVersion": "kubescheduler.config.k8s.io/v1",
    "kind": "KubeSchedulerConfiguration",
    "leaderElection": {"leaderElect": False},
    "clientConnection": {"qps": 500, "burst": 1000},
    "profiles": [{"schedulerName": SCHEDULER}],
}


@dataclass(frozen=True)
class Group:
    name: str
    count: int
    cpu: str
    memory: str
    node_selector: dict[str, str] | None = None
    gpu: int = 0


GROUPS = (
    Group("web", 400, "250m", "256Mi"),
    Group("api", 200, "500m", "1Gi"),
    Group("batch", 200, "2", "4Gi", node_selector={"disktype": "ssd"}),
    Group("train", 40, "4", "16Gi", node_selector={"accelerator": "gpu"}, gpu=1),
    Group("too-big", 8, "64", "1Gi"),
    Group("nvme", 4, "100m", "128Mi", node_selector={"disktype": "nvme"}),
)


def pod_json(group: Group, index: int) -> JSON:
    resources: JSON = {"requests": {"cpu": group.cpu, "memory": group.memory}}
    if group.gpu:  # extended resources cannot be overcommitted: limits must equal requests
        resources["requests"]["nvidia.com/gpu"] = str(group.gpu)
        resources["limits"] = {"nvidia.com/gpu": str(group.gpu)}
    spec: JSON = {
        "schedulerName": SCHEDULER,
        "containers": [{"name": "app", "image": "registry.invalid/app", "resources": resources}],
    }
    if group.node_selector:
        spec["nodeSelector"] = group.node_selector
    if group.gpu:
        spec["tolerations"] = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    return {
        "metadata": {"name": f"{group.name}-{index:04d}", "labels": {"group": group.name}},
        "spec": spec,
    }


async def shape_nodes(client: Client) -> None:
    """Every 4th node gets disktype=ssd; the last 8 become tainted GPU nodes."""
    nodes = sorted(n["metadata"]["name"] for n in (await client.get("/api/v1/nodes"))["items"])
    for i, name in enumerate(nodes):
        if i % 4 == 0:
            await client.patch(
                f"/api/v1/nodes/{name}", {"metadata": {"labels": {"disktype": "ssd"}}}
            )
    for name in nodes[-8:]:
        await client.patch(
            f"/api/v1/nodes/{name}",
            {
                "metadata": {"labels": {"accelerator": "gpu"}},
                "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
            },
        )
        await client.patch(
            f"/api/v1/nodes/{name}/status",
            {
                "status": {
                    "capacity": {"nvidia.com/gpu": "4"},
                    "allocatable": {"nvidia.com/gpu": "4"},
                }
            },
            kind="merge",
        )


class Watcher:
    """Records when each demo pod is bound (or reported unschedulable), from a watch."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.bound: dict[str, tuple[float, str]] = {}
        self.failed: dict[str, str] = {}

    def on_pod(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind == DELETED:
            return
        name = obj["metadata"]["name"]
        node = obj["spec"].get("nodeName")
        if node and name not in self.bound:
            self.bound[name] = (time.monotonic(), node)
            self.failed.pop(name, None)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                self.failed[name] = cond.get("message", "")


async def run_demo(kubeconfig: str, out: Any = sys.stderr) -> int:
    import plugins
    from scheduler import config as cfg
    from scheduler.app import App
    from scheduler.serving import ServingOptions

    watcher = Watcher()
    config = cfg.parse(CONFIG, plugins.registry().keys())
    async with Client.from_kubeconfig(kubeconfig, qps=0) as client:
        await shape_nodes(client)
        nodes = {n["metadata"]["name"]: n for n in (await client.get("/api/v1/nodes"))["items"]}
        try:
            await client.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        except ApiError as err:
            if err.status != 409:
                raise
        informer = Informer(client, f"/api/v1/namespaces/{NAMESPACE}/pods", watcher.on_pod)
        app = App(
            config,
            Client.from_kubeconfig(kubeconfig, qps=500, burst=1000),
            serving=ServingOptions.local(),
        )
        tasks = [asyncio.create_task(informer.run()), asyncio.create_task(app.run())]
        await informer.synced.wait()
        pods = [pod_json(g, i) for g in GROUPS for i in range(g.count)]
        total = len(pods)
        print(
            f"berth demo: {len(nodes)} nodes, submitting {total} pods in {len(GROUPS)} groups",
            file=out,
        )
        gate = asyncio.Semaphore(64)

        async def submit(pod: JSON) -> None:
            async with gate:
                watcher.created[pod["metadata"]["name"]] = time.monotonic()
                await client.post(f"/api/v1/namespaces/{NAMESPACE}/pods", pod)

        start = time.monotonic()
        submitting = asyncio.ensure_future(asyncio.gather(*(submit(p) for p in pods)))
        last_change, last_seen = time.monotonic(), -1
        while True:
            await asyncio.sleep(0.2)
            done = len(watcher.bound) + len(watcher.failed)
            _progress(out, len(watcher.bound), len(watcher.failed), total)
            if done != last_seen:
                last_change, last_seen = time.monotonic(), done
            settled = submitting.done() and done >= total
            if tasks[1].done():  # the scheduler stopped: say why rather than wait
                tasks[1].result()
            if settled or time.monotonic() - last_change > 15 or time.monotonic() - start > 300:
                break
        print(file=out)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.client.close()
        _summary(out, watcher, nodes, total, time.monotonic() - start)
    return 0


def _progress(out: Any, bound: int, failed: int, total: int) -> None:
    """A redrawn bar on a terminal; on a pipe, a line only when the numbers change."""
    width = 40
    filled = int(width * bound / max(total, 1))
    line = f"[{'#' * filled}{'.' * (width - filled)}] {bound}/{total} bound, {failed} unschedulable"
    if out.isatty():
        out.write("\r" + line)
    elif line != getattr(out, "_berth_last", None):
        out.write(line + "\n")
        setattr(out, "_berth_last", line)  # noqa: B010 - remembered per stream
    out.flush()


def _summary(
    out: Any, watcher: Watcher, nodes: dict[str, JSON], total: int, elapsed: float
) -> None:
    latencies = sorted(
        (t - watcher.created[name]) * 1000
        for name, (t, _) in watcher.bound.items()
        if name in watcher.created
    )
    zones = Counter(
        nodes.get(node, {}).get("metadata", {}).get("labels", {}).get(ZONE, "?")
        for _, node in watcher.bound.values()
    )
    groups = Counter(name.rsplit("-", 1)[0] for name in watcher.bound)
    pending = total - len(watcher.bound)
    print("\nsummary", file=out)
    print(f"  bound            {len(watcher.bound):6}   in {elapsed:.1f}s", file=out)
    print(f"  pending          {pending:6}", file=out)
    if latencies:
        p50 = statistics.quantiles(latencies, n=100)[49] if len(latencies) > 1 else latencies[0]
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
        print(f"  latency p50      {p50:8.1f} ms", file=out)
        print(f"  latency p99      {p99:8.1f} ms", file=out)
    print("\npods per zone", file=out)
    for zone, count in sorted(zones.items()):
        print(f"  {zone:16} {count:6}", file=out)
    print("\npods per group (bound / submitted)", file=out)
    for group in GROUPS:
        print(f"  {group.name:16} {groups.get(group.name, 0):6} / {group.count}", file=out)
    reasons = Counter(watcher.failed.values())
    if reasons:
        print("\nwhy pods are pending (FailedScheduling)", file=out)
        for message, count in reasons.most_common():
            print(f"  {count:4} x {message}", file=out)


def main(directory: Path, nodes: int, zones: int, kubeconfig: str | None) -> int:
    """Run the demo on KUBECONFIG's cluster, or on a local one brought up for it."""
    from scheduler.harness import plane
    from scheduler.harness.nodes import NodeShape

    if kubeconfig:
        return asyncio.run(run_demo(kubeconfig))
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the cluster below is taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plane.down(directory, log=lambda _: None)
    state = plane.up(
        directory,
        plane.ClusterSpec(nodes=nodes, shape=NodeShape(zones=zones)),
        log=lambda m: print(f"berth: {m}", file=sys.stderr),
    )
    try:
        return asyncio.run(run_demo(state.kubeconfig))
    finally:
        plane.down(directory, log=lambda m: print(f"berth: {m}", file=sys.stderr))
