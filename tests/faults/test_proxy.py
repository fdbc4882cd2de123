"""The fault proxy itself, against an echo server on loopback (no cluster needed).

A frozen pair is checked by what did *not* arrive within a short look (QUIET seconds): a frozen
pair never delivers, so the look cannot be too short to be right, only too short to catch a
proxy that forwards late, which is what the heal() checks after it are for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.faults.proxy import Proxy, ThreadedProxy

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUIET = 0.3
PATIENCE = 10.0

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def echo() -> AsyncIterator[tuple[int, list[bytes]]]:
    """An echo server; yields its port and every chunk it received."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1024):
                received.append(data)
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()


@pytest.fixture
async def proxy(echo: tuple[int, list[bytes]]) -> AsyncIterator[Proxy]:
    p = Proxy("127.0.0.1", echo[0])
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def connect(proxy: Proxy) -> AsyncIterator[Callable[[], Awaitable[Conn]]]:
    opened: list[asyncio.StreamWriter] = []

    async def open_one() -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        opened.append(writer)
        return reader, writer

    yield open_one
    for writer in opened:
        writer.transport.abort()


async def roundtrip(conn: Conn, data: bytes) -> bytes:
    reader, writer = conn
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), PATIENCE)


async def silent(conn: Conn, data: bytes) -> bool:
    """Send `data`; True if nothing came back within QUIET seconds."""
    reader, writer = conn
    writer.write(data)
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(1), QUIET)
    except TimeoutError:
        return True
    return False


async def test_forwards_both_ways(connect: Callable[[], Awaitable[Conn]]) -> None:
    """Bytes go to the upstream and its answer comes back, on several connections."""
    a, b = await connect(), await connect()
    assert await roundtrip(a, b"hello") == b"hello"
    assert await roundtrip(b, b"world" * 10_000) == b"world" * 10_000


async def test_cut_all_resets_open_connections_and_accepts_new_ones(
    proxy: Proxy, connect: Callable[[], Awaitable[Conn]]
) -> None:
    """cut_all() closes every pair (the client reads EOF or a reset); a new connection works."""
    a = await connect()
    await roundtrip(a, b"x")
    assert proxy.cut_all() == 1
    with contextlib.suppress(ConnectionError):
        assert await asyncio.wait_for(a[0].read(1), PATIENCE) == b""
    assert await roundtrip(await connect(), b"again") == b"again"
    assert proxy.stats.cut == 1


async def test_blackhole_existing_freezes_open_pairs_only(
    proxy: Proxy, echo: tuple[int, list[bytes]], connect: Callable[[], Awaitable[Conn]]
) -> None:
    """A frozen pair stays open and forwards nothing; a new pair flows; heal() delivers what the
    frozen one held, in order."""
    old = await connect()
    await roundtrip(old, b"before")
    assert proxy.blackhole_existing() == 1
    assert await silent(old, b"held")
    assert b"held" not in b"".join(echo[1])  # not forwarded upstream either
    assert not old[1].is_closing()
    assert await roundtrip(await connect(), b"new") == b"new"
    proxy.heal()
    assert await asyncio.wait_for(old[0].readexactly(4), PATIENCE) == b"held"


async def test_blackhole_all_accepts_but_forwards_nothing_until_healed(
    proxy: Proxy, connect: Callable[[], Awaitable[Conn]]
) -> None:
    """During a full outage connections are accepted and silent, old and new; heal() ends it."""
    old = await connect()
    await roundtrip(old, b"a")
    proxy.blackhole_all(True)
    new = await connect()
    assert await silent(old, b"1")
    assert await silent(new, b"2")
    proxy.heal()
    assert await asyncio.wait_for(old[0].readexactly(1), PATIENCE) == b"1"
    assert await asyncio.wait_for(new[0].readexactly(1), PATIENCE) == b"2"


async def test_blackhole_all_off_lets_new_connections_through_only(
    proxy: Proxy, connect: Callable[[], Awaitable[Conn]]
) -> None:
    """blackhole_all(False) ends the outage for new pairs; pairs frozen by it stay frozen."""
    old = await connect()
    proxy.blackhole_all(True)
    proxy.blackhole_all(False)
    assert await roundtrip(await connect(), b"n") == b"n"
    assert await silent(old, b"o")
    assert proxy.frozen_pairs == 1


async def test_upstream_down_resets_the_client() -> None:
    """With nothing listening upstream, an accepted client is reset at once."""
    p = Proxy("127.0.0.1", 1)  # port 1: nothing listens there
    await p.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(1), PATIENCE) == b""
        writer.transport.abort()
        assert p.stats.upstream_failed == 1
    finally:
        await p.stop()


async def test_threaded_proxy_controls_from_another_thread(
    echo: tuple[int, list[bytes]],
) -> None:
    """ThreadedProxy forwards on its own loop; its controls work from the caller's thread."""
    threaded = ThreadedProxy("127.0.0.1", echo[0])
    port = threaded.start()
    try:
        conn = await asyncio.open_connection("127.0.0.1", port)
        assert await roundtrip(conn, b"t") == b"t"
        assert threaded.blackhole_existing() == 1
        assert await silent(conn, b"u")
        threaded.heal()
        assert await asyncio.wait_for(conn[0].readexactly(1), PATIENCE) == b"u"
        assert threaded.cut_all() == 1
        assert threaded.stats.cut == 1
        conn[1].transport.abort()
    finally:
        threaded.stop()
