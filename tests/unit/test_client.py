"""Client behaviour that needs no API server: cancellation of in-flight writes, and which
failures of a write are retried."""

from __future__ import annotations

import asyncio

import pytest

from scheduler.kube import binder
from scheduler.kube.client import ApiError, Client, Credentials


class _Answer:
    """A write pool whose one request waits for the test to answer it."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    async def request(self, method: str, path: str, data: bytes, ctype: str) -> tuple[int, bytes]:
        return await self.answer

    async def close(self) -> None:
        return None


async def test_cancel_that_races_the_answer_still_cancels() -> None:
    """The answer arrives in the same loop step as the cancel. The write must still end in
    CancelledError: a worker that swallows it (asyncio.wait_for on 3.11 did) never stops, and
    `berth demo` hung on Recorder.stop()."""
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    fake = _Answer()
    client._fast = fake  # type: ignore[assignment]
    task = asyncio.create_task(client.post("/api/v1/namespaces/x/events", {"a": 1}))
    await asyncio.sleep(0)  # the write is now waiting for its answer
    await asyncio.sleep(0)
    fake.answer.set_result((201, b"{}"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class _Answers:
    """A write pool answering each request with the next of `answers`: a status code, or an
    exception to raise."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests = 0

    async def request(self, method: str, path: str, data: bytes, ctype: str) -> tuple[int, bytes]:
        self.requests += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer, b"{}" if answer < 300 else b'{"reason": "x", "message": "y"}'

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("answers", "requests", "error"),
    [
        pytest.param((429, 201), 2, None, id="429-retried"),
        pytest.param((500, 201), 1, 500, id="500-not-retried"),
        pytest.param((503, 201), 1, 503, id="503-not-retried"),
        pytest.param((ConnectionRefusedError(), 201), 1, ConnectionRefusedError, id="refused"),
    ],
)
async def test_binding_post_retries_only_429(
    answers: tuple[int | Exception, ...],
    requests: int,
    error: int | type[Exception] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Binding POST is retried on 429 only; v1.37 also retries it on 500, 503 and refused
    connections (pins today's behaviour; changes with #12)."""
    monkeypatch.setattr("scheduler.kube.client._backoff", lambda attempt: 0.0)
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    fake = _Answers(*answers)
    client._fast = fake  # type: ignore[assignment]
    bind = binder.bind(client, "default", "p", "uid-p", "n1")
    if error is None:
        await bind
    elif isinstance(error, int):
        with pytest.raises(ApiError) as info:
            await bind
        assert info.value.status == error
    else:
        with pytest.raises(error):
            await bind
    assert fake.requests == requests
