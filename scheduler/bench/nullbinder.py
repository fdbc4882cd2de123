"""The `null` reference scheduler: binds each pending pod to the next node, round-robin.

It runs on berth's own client stack (scheduler.kube: the aiohttp client with its rate limiter,
the informer, the binder), with the same client limits as the schedulers it is compared with,
but does no scheduling work at all: no filters, no scores, no cache, no events, no conditions.
Its throughput is therefore the ceiling that this API server (and this client stack) allows;
a scheduler's throughput divided by null's says how much of that ceiling it reaches.

It ignores node capacity, selectors and taints by design, so on workloads with constraints its
placements are not valid schedules (and it binds "unschedulable" pods too).

    python -m scheduler.bench.nullbinder --kubeconfig K --scheduler-name N \
        [--qps Q --burst B] [--concurrency C] [--ready-file F]

It writes `--ready-file` once its pod watch has synced, and exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from scheduler.kube.binder import bind
from scheduler.kube.client import ApiError, Client
from scheduler.kube.informer import DELETED, Informer

log = logging.getLogger("berth.bench.null")

JSON = dict[str, Any]
RETRY_SECONDS = 1.0


class NullBinder:
    def __init__(self, client: Client, scheduler_name: str, concurrency: int = 256) -> None:
        self.client = client
        self.scheduler_name = scheduler_name
        self.concurrency = concurrency
        self.nodes: list[str] = []
        self.next = 0
        self.bound = 0
        self.failed = 0
        self.pending: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self._seen: set[str] = set()

    def on_pod(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """Queue every pod of ours that has no node yet, once."""
        if kind == DELETED:
            return
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        if spec.get("nodeName") or meta.get("deletionTimestamp"):
            return
        if (spec.get("schedulerName") or "default-scheduler") != self.scheduler_name:
            return
        uid = meta.get("uid", "")
        if uid in self._seen:
            return
        self._seen.add(uid)
        self.pending.put_nowait((meta.get("namespace", ""), meta.get("name", ""), uid))

    def pick(self) -> str:
        node = self.nodes[self.next % len(self.nodes)]
        self.next += 1
        return node

    async def load_nodes(self) -> None:
        items = (await self.client.get("/api/v1/nodes"))["items"]
        self.nodes = sorted(n["metadata"]["name"] for n in items)
        if not self.nodes:
            raise RuntimeError("no nodes to bind to")

    async def worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.pending.get()
            namespace, name, uid = item
            try:
                await bind(self.client, namespace, name, uid, self.pick())
                self.bound += 1
            except ApiError as err:
                if err.status in (404, 409):  # deleted, or bound already
                    continue
                self.failed += 1
                log.warning("bind failed", extra={"pod": f"{namespace}/{name}", "error": str(err)})
                loop.call_later(RETRY_SECONDS, self.pending.put_nowait, item)
            except (TimeoutError, aiohttp.ClientError) as err:
                self.failed += 1
                log.warning("bind failed", extra={"pod": f"{namespace}/{name}", "error": str(err)})
                loop.call_later(RETRY_SECONDS, self.pending.put_nowait, item)


async def report(null: NullBinder, every: float = 1.0) -> None:
    """A progress line a second while anything changes (binds, queue length, failures)."""
    last: tuple[int, int, int] = (0, 0, 0)
    while True:
        await asyncio.sleep(every)
        now = (null.bound, null.pending.qsize(), null.failed)
        if now != last:
            log.info("progress", extra={"bound": now[0], "queued": now[1], "failed": now[2]})
            last = now


async def serve(args: argparse.Namespace) -> int:
    limits: dict[str, Any] = {}
    if args.qps is not None:
        limits = {"qps": args.qps, "burst": args.burst if args.burst is not None else 100}
    # The client's own connection pool size, as berth gets it: null measures the stack, not a
    # differently tuned one.
    client = Client.from_kubeconfig(args.kubeconfig, user_agent="berth-bench-null", **limits)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with client:
        null = NullBinder(client, args.scheduler_name, args.concurrency)
        await null.load_nodes()
        informer = Informer(
            client,
            "/api/v1/pods",
            null.on_pod,
            field_selector=f"spec.schedulerName={args.scheduler_name},spec.nodeName=",
        )
        tasks = [asyncio.create_task(informer.run())]
        tasks += [asyncio.create_task(null.worker()) for _ in range(args.concurrency)]
        tasks.append(asyncio.create_task(report(null)))
        try:
            synced = asyncio.create_task(informer.synced.wait())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait([synced, stopped], return_when=asyncio.FIRST_COMPLETED)
            if informer.synced.is_set():
                log.info("ready", extra={"nodes": len(null.nodes)})
                if args.ready_file:
                    Path(args.ready_file).write_text("ready\n")
            await stopped
            synced.cancel()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopped", extra={"bound": null.bound, "failed": null.failed})
    return 0


def main(argv: list[str] | None = None) -> int:
    from scheduler.logs import setup

    parser = argparse.ArgumentParser(prog="berth-bench-null", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--scheduler-name", default="bench-null")
    parser.add_argument("--qps", type=float, default=None, help="default: the client's (50)")
    parser.add_argument("--burst", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=256, help="binds in flight")
    parser.add_argument("--ready-file", default="")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    setup(args.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
