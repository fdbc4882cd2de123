"""The one HTTP client berth uses against the Kubernetes API.

It is a thin aiohttp session: requests and responses are raw JSON (orjson), never client model
objects, because the scheduler's hot path cannot afford them. Credentials come from a kubeconfig
or the in-cluster service account, read with the `kubernetes` package (which knows every auth
variant); a token file or an exec plugin stays a live source (`scheduler.kube.credentials`) that
every request asks for its Authorization header, and a 401 refreshes it and retries once. A
token-bucket limiter gives client-go's qps/burst meaning; any request is retried on 429, and
idempotent ones on connection errors and 5xx, after Retry-After (capped) or jittered backoff.

Silent connections (a flow dropped by a NAT or load balancer without a reset) are noticed on
every path: the lean write pool aborts a connection that answers nothing for 20 s
(`kube.http`); a read gets no byte for `READ_IDLE_SECONDS` and fails, and the read session
(its pooled keep-alive connections, any of which may be dead the same way) is replaced; a watch
is opened on a connection of its own, never reused, with a read deadline its caller chooses
(the informer restarts a watch silent for 30 s from its resourceVersion). `last_response` is
when the API server last answered anything, for the health check.

A client reports its traffic to an optional `RequestObserver` as client-go reports to its
`tools/metrics` hooks, so kube-scheduler's `rest_client_*` families mean the same in berth: every
attempt is counted by its status code, each call is timed from before its rate-limiter wait to its
last answer, and every pass through the rate limiter is timed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from scheduler.kube.credentials import Auth, ClientCert
from scheduler.kube.credentials import Credentials as Credentials  # its historical home
from scheduler.kube.http import Pool

JSON = dict[str, Any]

_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})

# Transport failures an idempotent request retries: the lean client raises OSError, aiohttp its own.
_FAST_TRANSPORT_ERRORS = (TimeoutError, ConnectionError, OSError)
_AIOHTTP_TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientConnectionError)

READ_IDLE_SECONDS = 30.0
"""A read (GET, LIST) that receives no byte for this long fails as a timeout: long enough for
the API server to start a large LIST from its watch cache, short enough that a dead keep-alive
connection is found in tens of seconds rather than at the end of the request timeout."""

WRITE_STALL_SECONDS = 20.0
"""The lean write pool's stall bound (see scheduler.kube.http)."""

RETRY_AFTER_CAP_SECONDS = 30.0
"""The longest Retry-After honoured. client-go waits whatever it says, bounded only by the
request's context; berth's bindings and status writes have no such deadline, so an absurd value
(a proxy's, say) must not park them for an hour. API Priority and Fairness asks for 1 s."""

NO_RESPONSE = "<error>"
"""The code reported for an attempt that got no HTTP response, whatever the error (client-go's)."""


class RequestObserver(Protocol):
    """What a Client reports about its requests (client-go's `tools/metrics` hooks).

    `scheduler.metrics.Metrics` is one. `host` is the API server's host:port as written in its
    URL, methods are upper-case. Called on the event loop once per event; must not block.
    """

    def count_request(self, method: str, host: str, code: str) -> None:
        """One attempt ended: `code` is its HTTP status as a string, or NO_RESPONSE. Every attempt
        counts, retries included; a watch counts when its response headers arrive."""

    def observe_request(self, verb: str, host: str, seconds: float) -> None:
        """One call of `Client.request` took `seconds`, from before its first rate-limiter wait to
        its end (retries, backoff and throttling included, as client-go times it). Watches are
        not timed: they last as long as the server keeps them open."""

    def observe_rate_limiter(self, verb: str, host: str, seconds: float) -> None:
        """A request waited `seconds` (often 0) for the rate limiter; only when qps > 0."""


class StreamIdle(TimeoutError):
    """A stream received nothing for its idle bound; its connection has been closed."""


class ApiError(Exception):
    """A non-2xx answer from the API server, with the Status object's reason and message, and
    the seconds its Retry-After asked for (capped; None when absent or not a number)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        method: str,
        path: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class RateLimiter:
    """client-go's token bucket: `qps` tokens a second, at most `burst` saved up.

    qps <= 0 means unlimited. The clock and sleep are injectable so tests need no sleeping.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._last = clock()

    def delay(self) -> float:
        """Take one token and return how long the caller must wait before using it."""
        if self.qps <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def acquire(self) -> float:
        """Take one token, waiting for it if need be; return the seconds waited, by the clock."""
        wait = self.delay()
        if wait <= 0:
            return 0.0
        start = self._clock()
        await self._sleep(wait)
        return self._clock() - start


class Client:
    """Async Kubernetes API client over one aiohttp session.

    `observer`, when set, hears about every request (see RequestObserver); it may be set after
    construction. `clock` (monotonic seconds) times requests and the rate limiter; `sleep`
    waits out retries (Retry-After, backoff).
    """

    def __init__(
        self,
        creds: Credentials,
        *,
        qps: float = 50.0,
        burst: int = 100,
        connections: int = 64,
        retries: int = 5,
        user_agent: str = "berth",
        write_connections: int = 64,
        observer: RequestObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.creds = creds
        # Resolved now, not at import, so that a test's patched asyncio.sleep is seen too.
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self.limiter = RateLimiter(qps, burst, clock)
        self.retries = retries
        self.observer = observer
        # client-go's host label: the URL's host[:port], without any user info.
        self.host = urlsplit(creds.server).netloc.rpartition("@")[2]
        self._clock = clock
        self.auth = creds.credential_source()
        """Where each request gets its Authorization header (and client certificate)."""
        # No Authorization here: each request sets the one its credential source gives.
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        self._user_agent = user_agent
        self._connections = connections
        self._write_connections = write_connections
        self._cert: ClientCert | None = None  # the exec plugin's, that connections present
        self.tls_rotations = 0
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.sessions_replaced = 0
        self.last_response = clock()
        """When the API server last answered (any status, or a watch's bytes), by `clock`."""
        self._fast = self._new_pool()

    def _new_pool(self) -> Pool | None:
        if self._write_connections <= 0:
            return None
        return Pool(
            self.creds.server,
            ssl_context=self.creds.ssl_context(self._cert),
            token=None,  # each request passes its own
            connections=self._write_connections,
            user_agent=self._user_agent,
            stall_seconds=WRITE_STALL_SECONDS,
        )

    async def _credential(self) -> Auth:
        """The credential for one request. When an exec plugin's client certificate changed,
        new connections present the new one: the sessions and the write pool are replaced
        (as client-go closes every connection when the exec certificate rotates)."""
        auth = await self.auth.get()
        if auth.cert != self._cert:
            self._rotate_tls(auth.cert)
        return auth

    def _rotate_tls(self, cert: ClientCert | None) -> None:
        self._cert = cert
        self.tls_rotations += 1
        old: list[Awaitable[None]] = []
        for session in (self._session, self._streams):
            if session is not None:
                old.append(session.close())
        if self._fast is not None:
            old.append(self._fast.close())
        self._session = self._streams = None
        self._fast = self._new_pool()
        loop = asyncio.get_running_loop()
        for closing in old:
            task = loop.create_task(_drain(closing))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def silent_for(self) -> float:
        """Seconds since the API server last answered this client (see `last_response`)."""
        return self._clock() - self.last_response

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, **kwargs: Any) -> Client:
        return cls(Credentials.load(kubeconfig), **kwargs)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session for reads and lists: a pool of keep-alive connections."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections, ssl=self.creds.ssl_context(self._cert), ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    @property
    def streams(self) -> aiohttp.ClientSession:
        """The session for watches: each on a connection of its own, closed with it, so a
        watch never inherits a keep-alive connection that died while idle."""
        if self._streams is None:
            connector = aiohttp.TCPConnector(
                limit=0,
                force_close=True,
                ssl=self.creds.ssl_context(self._cert),
                ttl_dns_cache=300,
            )
            self._streams = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._streams

    def _replace_session(self, failed: aiohttp.ClientSession) -> None:
        """A read timed out on `failed`: its other pooled connections may be as dead as that
        one, so the next read starts a new session. Requests still running on the old one end
        with a connection error and are retried there (reads are idempotent)."""
        if self._session is not failed:
            return  # replaced already, by another request that timed out
        self._session = None
        self.sessions_replaced += 1
        task = asyncio.get_running_loop().create_task(failed.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()
        self._session = self._streams = None
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Any:
        """Send one request and return the decoded JSON answer; raise ApiError on non-2xx,
        CredentialError when no credential can be had.

        A 429 (any method) and a 5xx (idempotent methods) are retried up to `retries` times,
        waiting what Retry-After says (at most RETRY_AFTER_CAP_SECONDS), else jittered backoff.
        A 401 refreshes the credential once and, if that changed it, sends once more."""
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        # Writes without query parameters (bindings, events, patches) take the lean pipelined
        # client; reads, lists and everything with parameters take aiohttp.
        fast = self._fast is not None and method != "GET" and not params
        transport_errors = _FAST_TRANSPORT_ERRORS if fast else _AIOHTTP_TRANSPORT_ERRORS
        start = self._clock()
        attempt = 0
        reauthorized = False
        try:
            while True:
                await self._throttle(method)
                auth = await self._credential()
                try:
                    status, raw, retry_after = await self._send(
                        fast,
                        method,
                        path,
                        data,
                        params,
                        headers,
                        content_type,
                        timeout,
                        auth.header(),
                    )
                except transport_errors:
                    if method not in _IDEMPOTENT or attempt >= self.retries:
                        raise
                    await self._sleep(_backoff(attempt))
                    attempt += 1
                    continue
                if status < 300:
                    return orjson.loads(raw) if raw else None
                if status == 401 and not reauthorized:
                    reauthorized = True
                    if not (await self.auth.refresh(auth)).same(auth):
                        continue  # once: a second 401 is the caller's
                error = _api_error(status, raw, method, path, retry_after)
                retriable = error.status == 429 or (error.status >= 500 and method in _IDEMPOTENT)
                if not retriable or attempt >= self.retries:
                    raise error
                await self._sleep(
                    error.retry_after if error.retry_after is not None else _backoff(attempt)
                )
                attempt += 1
        finally:
            # client-go's Request.request() times the whole call, throttling included, however
            # it ends.
            observer = self.observer
            if observer is not None:
                observer.observe_request(method, self.host, self._clock() - start)

    async def _send(
        self,
        fast: bool,
        method: str,
        path: str,
        data: bytes | None,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        content_type: str,
        timeout: float,
        authorization: str | None = None,
    ) -> tuple[int, bytes, str | None]:
        """One attempt: (status, body, Retry-After), counted with the observer however it ends
        (client-go counts the attempt when its response headers arrive, or its error)."""
        status: int | None = None
        try:
            if fast:
                assert self._fast is not None
                # Not wait_for: on Python 3.11 it can drop a cancel that races with the answer,
                # and a cancelled worker (Recorder.stop) then runs on forever.
                async with asyncio.timeout(timeout):
                    status, raw, retry_after = await self._fast.request(
                        method, path, data or b"", content_type, authorization
                    )
                return status, raw, retry_after
            session = self.session
            if authorization is not None:
                headers = {**(headers or {}), "Authorization": authorization}
            try:
                async with session.request(
                    method,
                    self.creds.server + path,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(
                        total=timeout, sock_read=min(timeout, READ_IDLE_SECONDS)
                    ),
                ) as resp:
                    status = resp.status
                    return status, await resp.read(), resp.headers.get("Retry-After")
            except (TimeoutError, asyncio.CancelledError):
                # Timed out here, or abandoned by a caller's deadline (the lease's): the
                # connection it waited on, and its idle siblings, may be dead.
                self._replace_session(session)
                raise
        finally:
            if status is not None:
                self.last_response = self._clock()
            observer = self.observer
            if observer is not None:
                code = NO_RESPONSE if status is None else str(status)
                observer.count_request(method, self.host, code)

    async def _throttle(self, verb: str) -> None:
        """Wait for the rate limiter, and report the wait as client-go's tryThrottle does."""
        waited = await self.limiter.acquire()
        observer = self.observer
        if observer is not None and self.limiter.qps > 0:
            observer.observe_rate_limiter(verb, self.host, waited)

    async def get(self, path: str, **params: str | int) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body=body)

    async def put(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, body=body)

    async def delete(self, path: str, body: Any = None) -> Any:
        return await self.request("DELETE", path, body=body)

    async def patch(self, path: str, body: Any, kind: str = "strategic") -> Any:
        content_type = {
            "strategic": "application/strategic-merge-patch+json",
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
        }[kind]
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def stream_lines(
        self,
        path: str,
        params: Mapping[str, str | int],
        timeout: float,
        idle: float | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield each newline-terminated chunk of a streaming (watch) response.

        Lines are split here rather than by aiohttp's readline, which refuses lines longer than
        its buffer; a watch event for a large object is one very long line. The stream has a
        connection of its own. `timeout` bounds the whole stream; `idle` (default: `timeout`)
        how long it may go without a byte, after which it raises `StreamIdle` (a TimeoutError)
        and its connection is closed.

        Opening it is retried as client-go's Watch retries it: a 429 or 5xx that carries
        Retry-After, up to `retries` times after waiting that long (capped); other failures are
        raised (ApiError, with `retry_after` when the server said one) for the informer's
        backoff. A 401 refreshes the credential and, if that changed it, opens once more.
        Nothing is retried once a line was yielded.

        Each attempt is counted when its response headers arrive, as client-go counts a watch,
        and not timed. Unlike client-go, berth rate-limits watches, so their wait is reported.
        """
        attempt = 0
        reauthorized = False
        while True:
            await self._throttle("GET")
            auth = await self._credential()
            header = auth.header()
            observer = self.observer
            answered = False
            retry: float | None = None  # seconds to wait before the next attempt
            try:
                async with self.streams.get(
                    self.creds.server + path,
                    params=params,
                    headers={"Authorization": header} if header else None,
                    timeout=aiohttp.ClientTimeout(total=timeout, sock_read=idle or timeout),
                ) as resp:
                    answered = True
                    self.last_response = self._clock()
                    if observer is not None:
                        observer.count_request("GET", self.host, str(resp.status))
                    if resp.status == 401 and not reauthorized:
                        reauthorized = True
                        if not (await self.auth.refresh(auth)).same(auth):
                            retry = 0.0
                    if retry is None and resp.status >= 300:
                        error = _api_error(
                            resp.status,
                            await resp.read(),
                            "GET",
                            path,
                            resp.headers.get("Retry-After"),
                        )
                        # client-go's checkWait: a 429 or 5xx is retried when it says when.
                        if error.retry_after is None or attempt >= self.retries:
                            raise error
                        attempt += 1
                        retry = error.retry_after
                    if retry is None:
                        async for line in self._lines(resp, path, idle or timeout):
                            yield line
                        return
            finally:
                if not answered and observer is not None:
                    observer.count_request("GET", self.host, NO_RESPONSE)
            await self._sleep(retry)  # with the refused stream's connection closed

    async def _lines(
        self, resp: aiohttp.ClientResponse, path: str, idle: float
    ) -> AsyncIterator[bytes]:
        buf = bytearray()
        chunks = resp.content.iter_any()
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except aiohttp.ServerTimeoutError as err:
                raise StreamIdle(f"no data for {idle:g}s on {path}") from err
            self.last_response = self._clock()
            buf += chunk
            start = 0
            while (end := buf.find(b"\n", start)) >= 0:
                if end > start:
                    yield bytes(buf[start:end])
                start = end + 1
            del buf[:start]
        if buf.strip():
            yield bytes(buf)


def _api_error(
    status: int, raw: bytes, method: str, path: str, retry_after: str | None = None
) -> ApiError:
    try:
        doc = orjson.loads(raw)
        reason, message = doc.get("reason", ""), doc.get("message", "")
    except (orjson.JSONDecodeError, AttributeError):
        reason, message = "", raw[:500].decode(errors="replace")
    return ApiError(status, reason, message, method, path, retry_after_seconds(retry_after))


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After as client-go reads it (whole seconds; an HTTP date is ignored), capped at
    RETRY_AFTER_CAP_SECONDS; None when absent or unreadable."""
    if not header or not header.strip().isdigit():
        return None
    return min(float(header.strip()), RETRY_AFTER_CAP_SECONDS)


async def _drain(closing: Awaitable[None]) -> None:
    await closing


def _backoff(attempt: int) -> float:
    """Jittered exponential backoff: ~0.2 s, 0.4 s, ... capped near 5 s."""
    base: float = min(5.0, 0.2 * 2**attempt)
    return base * (0.5 + random.random())
