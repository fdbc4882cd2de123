"""How the API client finds dead connections on its aiohttp paths, against a local server that
stops answering: a silent read fails after its idle bound and its session is replaced, a silent
watch ends with StreamIdle, and `last_response` moves only when the server answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from scheduler.kube import client as client_module
from scheduler.kube.client import Client, Credentials, StreamIdle


class Api:
    """GET /ok answers at once; GET /slow answers only after `slow_calls` attempts have hung
    (the first ones never get a byte); a watch streams one line, then nothing."""

    def __init__(self) -> None:
        self.slow_calls = 0
        self.hang_first = 1
        app = web.Application()
        app.router.add_get("/ok", self._ok)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/watch", self._watch)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def _ok(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _slow(self, request: web.Request) -> web.Response:
        self.slow_calls += 1
        if self.slow_calls <= self.hang_first:
            await asyncio.sleep(3600)
        return web.json_response({"ok": True})

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type":"BOOKMARK"}\n')
        await asyncio.sleep(3600)
        return resp


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    a = Api()
    await a.server.start_server()
    yield a
    await a.server.close()


async def test_a_silent_read_fails_after_its_idle_bound_and_is_retried_fresh(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET that gets no byte for READ_IDLE_SECONDS times out; the session with its pooled
    connections is replaced, and the retry (a GET is idempotent) succeeds."""
    monkeypatch.setattr(client_module, "READ_IDLE_SECONDS", 0.3)
    async with Client(Credentials(api.url), qps=0, retries=2) as client:
        assert await client.get("/ok") == {"ok": True}
        assert await asyncio.wait_for(client.get("/slow"), 20) == {"ok": True}
        assert api.slow_calls == 2
        assert client.sessions_replaced == 1


async def test_a_silent_read_without_retries_raises_timeout(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no retries left the silent read surfaces as a TimeoutError, well before the
    request's own timeout."""
    monkeypatch.setattr(client_module, "READ_IDLE_SECONDS", 0.3)
    async with Client(Credentials(api.url), qps=0, retries=0) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.request("GET", "/slow", timeout=600), 20)
        assert client.sessions_replaced == 1  # the read's own timeout, not wait_for's


async def test_a_silent_watch_ends_with_stream_idle(api: Api) -> None:
    """A watch gets its lines, then raises StreamIdle once nothing came for `idle` seconds."""
    async with Client(Credentials(api.url), qps=0) as client:
        got: list[bytes] = []
        with pytest.raises(StreamIdle):
            async for line in client.stream_lines("/watch", {}, timeout=600, idle=0.3):
                got.append(line)
        assert got == [b'{"type":"BOOKMARK"}']


async def test_last_response_moves_only_when_the_server_answers(api: Api) -> None:
    """`last_response` (the health check's input) is set by answers, not by attempts."""
    now = [100.0]
    dead = Client(Credentials("http://127.0.0.1:9"), qps=0, retries=0, clock=lambda: now[0])
    async with Client(Credentials(api.url), qps=0, retries=0, clock=lambda: now[0]) as client:
        now[0] = 200.0
        await client.get("/ok")
        assert client.last_response == 200.0
        with pytest.raises(OSError):
            await dead.get("/ok")
        await dead.close()
        assert dead.last_response == 100.0
