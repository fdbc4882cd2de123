"""A TCP proxy that breaks connections on request, for the fault suite.

berth's kubeconfig copy points at the proxy; the proxy forwards the TLS stream to the API server
byte for byte (it never decrypts), so the API server's own certificate is what berth verifies:
it must name the address the proxy listens on (the harness's certificate names 127.0.0.1 and
localhost).

Every accepted connection becomes a *pair* (client side, upstream side) with two pumps, one per
direction. A pair is either flowing or frozen:

```
             cut_all()                      blackhole_existing() / blackhole_all(True)
  closed ◀────────────── flowing ─────────────────────────────────────────────▶ frozen
  (RST both sides)          ▲                                                      │
                            └─────────────────────── heal() ◀──────────────────────┘
```

A frozen pair stays open and forwards nothing in either direction: what arrives is held, not
dropped, as a network partition holds packets in retransmission, so a pair that is healed resumes
with its TLS stream intact. Neither side hears anything: no FIN, no RST. That is the "silent
connection" a client must detect with its own deadlines.

`Proxy` runs on whatever event loop starts it (unit tests); `ThreadedProxy` runs one on a thread
of its own, so the tests that drive berth may block (subprocess waits, sleeps) without stalling
berth's traffic. Its controls are thread-safe and return once they have taken effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 64 * 1024


@dataclass
class Stats:
    """What the proxy has seen, for a scenario's evidence (never for timing assertions)."""

    accepted: int = 0
    upstream_failed: int = 0  # the API server refused or was down: the client was reset
    cut: int = 0  # pairs closed by cut_all()
    frozen: int = 0  # pairs frozen by a black hole (existing or new)
    bytes_forwarded: int = 0


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    flowing: asyncio.Event
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False

    def close(self, *, reset: bool) -> None:
        """Close both sides (with an RST when `reset`) and stop the pumps."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.upstream):
            if writer is None:
                continue
            if reset:
                writer.transport.abort()
            else:
                writer.close()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()


class Proxy:
    """Listen on `host:port` (0 = any free port) and forward to `upstream_host:upstream_port`."""

    def __init__(
        self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = port
        self.stats = Stats()
        self._pairs: set[_Pair] = set()
        self._outage = False  # blackhole_all(True): new pairs start frozen too
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; return the port."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and reset every open pair."""
        if self._server is not None:
            self._server.close()
        self.cut_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    @property
    def open_pairs(self) -> int:
        return sum(1 for p in self._pairs if not p.closed)

    @property
    def frozen_pairs(self) -> int:
        return sum(1 for p in self._pairs if not p.closed and not p.flowing.is_set())

    # --- controls ------------------------------------------------------------------------

    def cut_all(self) -> int:
        """Reset every open pair at once (both sides see an RST); return how many."""
        pairs = [p for p in self._pairs if not p.closed]
        for pair in pairs:
            pair.close(reset=True)
        self._pairs.clear()
        self.stats.cut += len(pairs)
        return len(pairs)

    def blackhole_existing(self) -> int:
        """Freeze every open pair, keeping it open; new connections still pass. Return how many
        pairs were frozen."""
        count = 0
        for pair in self._pairs:
            if not pair.closed and pair.flowing.is_set():
                pair.flowing.clear()
                count += 1
        self.stats.frozen += count
        return count

    def blackhole_all(self, on: bool = True) -> None:
        """A full outage: freeze every open pair and accept new ones frozen. `on=False` lets new
        connections through again but leaves frozen pairs frozen (heal() thaws them too)."""
        self._outage = on
        if on:
            self.blackhole_existing()

    def heal(self) -> None:
        """End every black hole: new pairs flow, and frozen pairs resume where they stopped."""
        self._outage = False
        for pair in self._pairs:
            pair.flowing.set()

    # --- forwarding ----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        flowing = asyncio.Event()
        if self._outage:
            self.stats.frozen += 1
        else:
            flowing.set()
        pair = _Pair(client=writer, flowing=flowing)
        self._pairs.add(pair)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                self.stats.upstream_failed += 1
                pair.close(reset=True)
                return
            if pair.closed:  # cut while connecting
                up_writer.transport.abort()
                return
            pair.upstream = up_writer
            pair.tasks = [
                asyncio.create_task(self._pump(pair, reader, up_writer)),
                asyncio.create_task(self._pump(pair, up_reader, writer)),
            ]
            await asyncio.gather(*pair.tasks, return_exceptions=True)
        finally:
            pair.close(reset=False)
            self._pairs.discard(pair)

    async def _pump(
        self, pair: _Pair, src: asyncio.StreamReader, dst: asyncio.StreamWriter
    ) -> None:
        """Copy src to dst; while the pair is frozen, hold what was read instead of writing."""
        try:
            while True:
                data = await src.read(CHUNK)
                await pair.flowing.wait()
                if not data:
                    if dst.can_write_eof():
                        dst.write_eof()  # half-close, as the sender did
                    return
                dst.write(data)
                await dst.drain()
                self.stats.bytes_forwarded += len(data)
        except (ConnectionError, OSError):
            pair.close(reset=True)


class ThreadedProxy:
    """A `Proxy` on an event loop of its own thread; every method blocks until it is done."""

    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self.proxy = Proxy(upstream_host, upstream_port, host=host)

    def start(self) -> int:
        self._thread.start()
        return self._call(self.proxy.start())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self.proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def stats(self) -> Stats:
        return self._call(self._snapshot())

    def open_pairs(self) -> int:
        return self._call(self._get(lambda: self.proxy.open_pairs))

    def cut_all(self) -> int:
        return self._call(self._get(self.proxy.cut_all))

    def blackhole_existing(self) -> int:
        return self._call(self._get(self.proxy.blackhole_existing))

    def blackhole_all(self, on: bool = True) -> None:
        self._call(self._get(lambda: self.proxy.blackhole_all(on)))

    def heal(self) -> None:
        self._call(self._get(self.proxy.heal))

    async def _snapshot(self) -> Stats:
        return Stats(**vars(self.proxy.stats))

    @staticmethod
    async def _get(fn: Callable[[], T]) -> T:
        return fn()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)
