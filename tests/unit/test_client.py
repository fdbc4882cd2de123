"""Client behaviour that needs no API server: cancellation of in-flight writes."""

from __future__ import annotations

import asyncio

import pytest

from scheduler.kube.client import Client, Credentials


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
