"""A lean HTTP/1.1 client for the scheduler's hot-path writes (bindings, events, status).

aiohttp spends ~400 us of CPU on one small POST; a scheduler that binds thousands of pods a
second cannot afford that in Python. This client writes each request as one pre-formatted byte
string on a pool of keep-alive TLS connections, pipelines requests on each connection (the
API server answers them in order), and parses only what it needs of each response: the status
code, Content-Length or chunked framing, and the body bytes.

It is deliberately small: no redirects, no compression, no proxies, no cookies. Reads, lists and
watches stay on aiohttp (client.Client), where their cost does not matter.

**Silent connections.** A NAT entry or a load balancer that drops a flow without a reset leaves a
connection that looks open and never answers. HTTP/1.1 has no ping (client-go relies on HTTP/2
pings: ReadIdleTimeout 30 s + PingTimeout 15 s), so the pool watches what it can: a connection with
requests outstanding that has received nothing for `stall_seconds` (default 20 s) is declared dead
and aborted, and so is every other connection that has received nothing since that connection's
oldest unanswered request was sent (a dropped flow rarely comes alone; an idle connection costs one
handshake to replace). A connection left unused for 10 s is closed, so a burst after a quiet spell
(or after the watch that brings its pods back has recovered) starts on fresh connections instead of
finding dead ones one stall at a time. Requests pipelined on an aborted connection fail with
`ConnectionLost`; the next request opens a fresh connection. 20 s is above the longest time the API
server legitimately keeps a request waiting before its first byte (API Priority and Fairness queues
a request for at most a quarter of `--request-timeout`, 15 s by default), and well under
client-go's 30-45 s. A request whose caller gives up (its timeout) aborts its connection as well:
the answer can no longer be matched, and a connection that let a request time out is suspect.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit


class ConnectionLost(ConnectionError):
    """The connection closed with requests in flight; their outcome is unknown."""


Answer = tuple[int, bytes, str | None]
"""A response: status, body, and its Retry-After header (None when absent)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; responses are matched to requests in order.

    `sent` holds the loop time each outstanding request was written, `received` the loop time
    of the last byte read (or of the connection's opening)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Answer]] = deque()
        self.sent: deque[float] = deque()
        self.closed = False
        self._buf = bytearray()
        self._loop = asyncio.get_running_loop()
        self.received = self.last_sent = self._loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.received = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(str(exc or "connection closed"))

    def abort(self, why: str) -> None:
        """Drop the connection now, without flushing (a silent peer would never take the
        buffered bytes); every outstanding request fails with ConnectionLost(why)."""
        if self.transport is not None:
            self.transport.abort()
        self._fail(why)

    def _fail(self, why: str) -> None:
        self.closed = True
        self.sent.clear()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionLost(why))

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        future: asyncio.Future[Answer] = self._loop.create_future()
        self.waiting.append(future)
        self.last_sent = self._loop.time()
        self.sent.append(self.last_sent)
        self.transport.write(data)
        return future

    def idle_since(self) -> float | None:
        """When this connection was last used, if it has nothing outstanding."""
        return None if self.sent else max(self.received, self.last_sent)

    def silent_since(self) -> float | None:
        """When this connection last showed life, if it has requests outstanding: the later of
        its last byte read and its oldest outstanding request's sending."""
        return max(self.received, self.sent[0]) if self.sent else None

    def data_received(self, data: bytes) -> None:
        self.received = self._loop.time()
        self._buf += data
        while self.waiting:
            try:
                parsed = _parse_response(self._buf)
            except ValueError:  # not HTTP as the API server writes it: nothing can be matched
                self.abort("malformed response")
                return
            if parsed is None:
                return
            status, body, used, close, retry_after = parsed
            del self._buf[:used]
            future = self.waiting.popleft()
            self.sent.popleft()
            if not future.done():
                future.set_result((status, body, retry_after))
            if close:
                # Taken out of use now, not when the close completes: nothing more may be
                # pipelined on it; what was already is failed and answered ConnectionLost.
                self.abort("the server closed the connection")
                return


def _parse_response(buf: bytearray) -> tuple[int, bytes, int, bool, str | None] | None:
    """(status, body, bytes consumed, server closes, Retry-After) for one complete response,
    else None. Raises ValueError on a status line, length or chunk size that is no number."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = -1
    chunked = close = False
    retry_after: str | None = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
        elif name == b"retry-after":
            retry_after = value.strip().decode("latin-1")
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
                return status, bytes(body), trailer_end + 4, close, retry_after
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
    return status, bytes(buf[start : start + length]), start + length, close, retry_after


class Pool:
    """A fixed number of pipelined keep-alive connections to one server, with silent
    connections detected and replaced (see the module docstring)."""

    def __init__(
        self,
        server: str,
        *,
        ssl_context: ssl.SSLContext | bool,
        token: str | None,
        connections: int = 8,
        user_agent: str = "berth",
        stall_seconds: float = 20.0,
        idle_seconds: float = 10.0,
        connect_seconds: float = 10.0,
    ) -> None:
        """`stall_seconds`: how long a connection with requests outstanding may receive nothing
        before it is aborted; `idle_seconds`: how long an unused connection is kept (one that
        died while idle cannot be told from a live one, and a burst after a quiet spell should
        not find out the hard way); `connect_seconds` bounds opening one (TCP and TLS
        handshake)."""
        url = urlsplit(server)
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl_context if url.scheme == "https" else None
        self._size = connections
        self._conns: list[_Connection] = []
        self._connecting: asyncio.Lock | None = None
        self.stall_seconds = stall_seconds
        self.idle_seconds = idle_seconds
        self.connect_seconds = connect_seconds
        self.aborted = 0  # connections declared dead, for tests and logs
        self._watchdog: asyncio.Task[None] | None = None
        self._swept = 0.0  # when _pick last closed idle connections
        head = f"Host: {url.netloc}\r\nUser-Agent: {user_agent}\r\nAccept: application/json\r\n"
        self._base_head = head.encode()
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        self._head = head.encode()
        # The head for the last per-request Authorization: tokens change once a minute at most,
        # so one formatted copy serves thousands of bindings.
        self._auth_head: tuple[str, bytes] = ("", self._head)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes,
        content_type: str = "application/json",
        authorization: str | None = None,
    ) -> Answer:
        """Send one request; returns (status, body, Retry-After). `authorization`, when given,
        is this request's Authorization header, in place of the pool's `token`. Raises
        ConnectionLost if the connection dropped or was declared dead before the answer (the
        request may or may not have taken effect). If the caller is cancelled (its timeout)
        before the answer, the connection is aborted."""
        conn = await self._pick()
        head = self._head
        if authorization is not None:
            if self._auth_head[0] != authorization:
                line = f"Authorization: {authorization}\r\n".encode()
                self._auth_head = (authorization, self._base_head + line)
            head = self._auth_head[1]
        data = b"".join(
            (
                f"{method} {path} HTTP/1.1\r\n".encode(),
                head,
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode(),
                body,
            )
        )
        future = conn.send(data)
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelling the caller cancels `future` too: unanswered means cancelled here.
            if future.cancelled() and not conn.closed:
                self._declare_dead(conn, "request abandoned before its answer")
            raise

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for conn in self._conns:
            if conn.transport is not None:
                conn.transport.close()
        self._conns = []

    def check(self, now: float) -> int:
        """Abort every connection silent for `stall_seconds` with requests outstanding, and
        those silent as long; returns how many were aborted. The watchdog calls this."""
        dead = 0
        for conn in list(self._conns):
            idle = conn.idle_since()
            if idle is not None and now - idle >= self.idle_seconds:
                conn.abort("idle")
                continue
            since = conn.silent_since()
            if since is not None and not conn.closed and now - since >= self.stall_seconds:
                dead += self._declare_dead(
                    conn, f"no answer for {now - since:.0f}s: connection presumed dead"
                )
        return dead

    def _declare_dead(self, conn: _Connection, why: str) -> int:
        """Abort `conn` and every connection that has received nothing since `conn` went
        silent; returns how many."""
        since = conn.silent_since() or conn.received
        doomed = [c for c in self._conns if c is conn or (not c.closed and c.received <= since)]
        for c in doomed:
            c.abort(why)
        self._conns = [c for c in self._conns if not c.closed]
        self.aborted += len(doomed)
        return len(doomed)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        period = max(0.05, self.stall_seconds / 8)
        while True:
            await asyncio.sleep(period)
            self.check(loop.time())

    async def _pick(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = loop.create_task(self._watch())
        now = loop.time()
        if now - self._swept >= min(1.0, self.idle_seconds / 4):  # not on every binding
            self._swept = now
            for conn in self._conns:
                idle = conn.idle_since()
                if idle is not None and now - idle >= self.idle_seconds:
                    conn.abort("idle")
        self._conns = [c for c in self._conns if not c.closed]
        for conn in self._conns:
            if not conn.waiting:
                return conn  # an idle keep-alive connection first: no handshake
        if len(self._conns) < self._size:
            if self._connecting is None:
                self._connecting = asyncio.Lock()
            async with self._connecting:
                self._conns = [c for c in self._conns if not c.closed]
                if len(self._conns) < self._size:
                    # Bounded: behind a black hole the TCP handshake may pass and TLS never end.
                    async with asyncio.timeout(self.connect_seconds):
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
