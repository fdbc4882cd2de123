"""A lean HTTP/1.1 client for the scheduler's hot-path writes (bindings, events, status).

aiohttp spends ~400 us of CPU on one small POST; a scheduler that binds thousands of pods a
second cannot afford that in Python. This client writes each request as one pre-formatted byte
string on a pool of keep-alive TLS connections, pipelines requests on each connection (the
API server answers them in order), and parses only what it needs of each response: the status
code, Content-Length or chunked framing, and the body bytes.

It is deliberately small: no redirects, no compression, no proxies, no cookies. Reads, lists and
watches stay on aiohttp (client.Client), where their cost does not matter.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit


class ConnectionLost(ConnectionError):
    """The connection closed with requests in flight; their outcome is unknown."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; responses are matched to requests in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[tuple[int, bytes]]] = deque()
        self.closed = False
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionLost(str(exc or "connection closed")))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(data)
        return future

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while self.waiting:
            parsed = _parse_response(self._buf)
            if parsed is None:
                return
            status, body, used, close = parsed
            del self._buf[:used]
            future = self.waiting.popleft()
            if not future.done():
                future.set_result((status, body))
            if close and self.transport is not None:
                self.transport.close()
                return


def _parse_response(buf: bytearray) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes consumed, server closes) for one complete response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = -1
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    start = end + 4
    if chunked:
        body = bytearray()
        pos = start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            chunk_start = line_end + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None
                return status, bytes(body), trailer_end + 4, close
            if len(buf) < chunk_start + size + 2:
                return None
            body += buf[chunk_start : chunk_start + size]
            pos = chunk_start + size + 2
    if length < 0:
        length = 0 if status in (204, 304) or 100 <= status < 200 else -1
    if length < 0:
        return None  # body until close: not used by the API server for these requests
    if len(buf) < start + length:
        return None
    return status, bytes(buf[start : start + length]), start + length, close


class Pool:
    """A fixed number of pipelined keep-alive connections to one server."""

    def __init__(
        self,
        server: str,
        *,
        ssl_context: ssl.SSLContext | bool,
        token: str | None,
        connections: int = 8,
        user_agent: str = "berth",
    ) -> None:
        url = urlsplit(server)
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl_context if url.scheme == "https" else None
        self._size = connections
        self._conns: list[_Connection] = []
        self._connecting: asyncio.Lock | None = None
        head = f"Host: {url.netloc}\r\nUser-Agent: {user_agent}\r\nAccept: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        self._head = head.encode()

    async def request(
        self, method: str, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """Send one request; returns (status, body). Raises ConnectionLost if the connection
        dropped before the answer (the request may or may not have taken effect)."""
        conn = await self._pick()
        data = b"".join(
            (
                f"{method} {path} HTTP/1.1\r\n".encode(),
                self._head,
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode(),
                body,
            )
        )
        return await conn.send(data)

    async def close(self) -> None:
        for conn in self._conns:
            if conn.transport is not None:
                conn.transport.close()
        self._conns = []

    async def _pick(self) -> _Connection:
        self._conns = [c for c in self._conns if not c.closed]
        if len(self._conns) < self._size:
            if self._connecting is None:
                self._connecting = asyncio.Lock()
            async with self._connecting:
                self._conns = [c for c in self._conns if not c.closed]
                if len(self._conns) < self._size:
                    loop = asyncio.get_running_loop()
                    _, conn = await loop.create_connection(
                        _Connection,
                        self._host,
                        self._port,
                        ssl=self._ssl or None,
                        server_hostname=self._host if self._ssl else None,
                    )
                    self._conns.append(conn)
                    return conn
        return min(self._conns, key=lambda c: len(c.waiting))
