"""The lean HTTP/1.1 write client: its response parser, and how it finds dead connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scheduler.kube.http import ConnectionLost, Pool, _parse_response

OK = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
CHUNKED = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(OK, (201, b"{}", len(OK), False, None), id="content-length"),
        pytest.param(CHUNKED, (200, b'{"a":1}', len(CHUNKED), False, None), id="chunked"),
        pytest.param(
            b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"", 27, False, None), id="no-content"
        ),
        pytest.param(
            b"HTTP/1.1 409 Conflict\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            (409, b"abc", 66, True, None),
            id="server-closes",
        ),
        pytest.param(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n",
            (429, b"", 69, False, "3"),
            id="retry-after",
        ),
    ],
)
def test_complete_responses(raw: bytes, expected: tuple[int, bytes, int, bool, str | None]) -> None:
    """A whole response yields status, body, bytes used and whether the server closes."""
    assert _parse_response(bytearray(raw)) == expected


@pytest.mark.parametrize("cut", [5, 30, len(OK) - 1])
def test_partial_response_waits_for_more(cut: int) -> None:
    """Until the whole body has arrived nothing is returned."""
    assert _parse_response(bytearray(OK[:cut])) is None


@pytest.mark.parametrize("cut", [50, len(CHUNKED) - 3])
def test_partial_chunked_response_waits_for_more(cut: int) -> None:
    """A chunked body is complete only after its last (empty) chunk."""
    assert _parse_response(bytearray(CHUNKED[:cut])) is None


def test_pipelined_responses_are_taken_in_order() -> None:
    """Two responses in one buffer: the first is parsed, the rest left for the next call."""
    buf = bytearray(OK + CHUNKED)
    status, body, used, _, _ = _parse_response(buf) or (0, b"", 0, False, None)
    assert (status, body) == (201, b"{}")
    del buf[:used]
    assert _parse_response(buf) == (200, b'{"a":1}', len(CHUNKED), False, None)


class Server:
    """A tiny HTTP/1.1 server answering every request 201 `{}`, until `silent` is set: then it
    keeps reading and answers nothing, on the connections open at that moment (as behind a NAT
    entry that was dropped); connections opened later are served normally."""

    def __init__(self) -> None:
        self.port = 0
        self.opened = 0
        self.silenced: set[int] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def silence_open_connections(self) -> None:
        self.silenced = set(range(1, self.opened + 1))

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        me = self.opened
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                if me not in self.silenced:
                    writer.write(OK)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def local_pool(server: Server, **options: Any) -> Pool:
    """A plain-HTTP pool to the local test server."""
    return Pool(f"http://127.0.0.1:{server.port}", ssl_context=False, token=None, **options)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    await s.stop()


async def test_a_silent_connection_is_aborted_and_replaced(server: Server) -> None:
    """Requests on a connection that stopped answering fail with ConnectionLost once it has
    been silent for stall_seconds; the next request opens a new connection and succeeds."""
    pool = local_pool(server, connections=1, stall_seconds=0.2)
    try:
        assert await pool.request("POST", "/x", b"{}") == (201, b"{}", None)
        server.silence_open_connections()
        with pytest.raises(ConnectionLost, match="presumed dead"):
            await asyncio.wait_for(pool.request("POST", "/x", b"{}"), 5)
        assert await asyncio.wait_for(pool.request("POST", "/x", b"{}"), 5) == (201, b"{}", None)
        assert pool.aborted >= 1
    finally:
        await pool.close()


async def test_silent_idle_connections_go_with_the_dead_one(server: Server) -> None:
    """When one connection is found dead, the others that have heard nothing since are
    aborted too, so a request is not sent down a second dead connection after the first."""
    pool = local_pool(server, connections=3, stall_seconds=0.2)
    try:
        await asyncio.gather(*(pool.request("POST", "/x", b"{}") for _ in range(6)))
        opened = server.opened
        server.silence_open_connections()
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(pool.request("POST", "/x", b"{}"), 5)
        assert pool.aborted == opened
        results = await asyncio.wait_for(
            asyncio.gather(*(pool.request("POST", "/x", b"{}") for _ in range(6))), 5
        )
        assert results == [(201, b"{}", None)] * 6
    finally:
        await pool.close()


async def test_a_request_abandoned_by_its_caller_aborts_its_connection(server: Server) -> None:
    """A caller's timeout ends the request and its connection: a late answer could not be
    matched, and the connection that let it time out is suspect."""
    pool = local_pool(server, connections=1, stall_seconds=60)
    try:
        await pool.request("POST", "/x", b"{}")
        server.silence_open_connections()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await pool.request("POST", "/x", b"{}")
        assert pool.aborted == 1
        assert await asyncio.wait_for(pool.request("POST", "/x", b"{}"), 5) == (201, b"{}", None)
    finally:
        await pool.close()


async def test_busy_healthy_connections_are_left_alone(server: Server) -> None:
    """Connections that answer are never aborted, however long the pool runs."""
    pool = local_pool(server, connections=2, stall_seconds=0.1)
    try:
        for _ in range(20):
            await asyncio.gather(*(pool.request("POST", "/x", b"{}") for _ in range(4)))
            await asyncio.sleep(0.02)
        assert pool.aborted == 0
    finally:
        await pool.close()


async def test_an_unused_connection_is_replaced_after_idle_seconds(server: Server) -> None:
    """A connection nobody used for idle_seconds is closed (it may have died quietly); the
    next request opens a fresh one."""
    pool = local_pool(server, connections=1, stall_seconds=60, idle_seconds=0.1)
    try:
        await pool.request("POST", "/x", b"{}")
        await pool.request("POST", "/x", b"{}")
        assert server.opened == 1
        server.silence_open_connections()  # died while idle: only a new one would answer
        await asyncio.sleep(0.3)
        assert await asyncio.wait_for(pool.request("POST", "/x", b"{}"), 5) == (201, b"{}", None)
        assert server.opened == 2
    finally:
        await pool.close()


async def test_an_idle_connection_is_reused_before_a_new_one_is_opened(server: Server) -> None:
    """Requests one after another share one keep-alive connection: a handshake per request
    until the pool is full would cost every quiet-time binding a TLS handshake."""
    pool = local_pool(server, connections=8)
    try:
        for _ in range(10):
            assert await pool.request("POST", "/x", b"{}") == (201, b"{}", None)
        assert server.opened == 1
    finally:
        await pool.close()


async def test_a_malformed_response_fails_its_requests_and_drops_the_connection() -> None:
    """An answer that is not HTTP fails the requests on that connection with ConnectionLost
    (no exception escapes into the event loop) and the connection is not used again."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 abc Nonsense\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()  # until berth drops it

    srv = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    pool = Pool(f"http://127.0.0.1:{port}", ssl_context=False, token=None, connections=1)
    try:
        with pytest.raises(ConnectionLost, match="malformed response"):
            await asyncio.wait_for(pool.request("POST", "/x", b"{}"), 5)
        assert pool._conns == [] or all(c.closed for c in pool._conns)
    finally:
        await pool.close()
        srv.close()
