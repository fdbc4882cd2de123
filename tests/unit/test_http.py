"""The lean HTTP/1.1 response parser of the hot-path write client."""

from __future__ import annotations

import pytest

from scheduler.kube.http import _parse_response

OK = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
CHUNKED = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(OK, (201, b"{}", len(OK), False), id="content-length"),
        pytest.param(CHUNKED, (200, b'{"a":1}', len(CHUNKED), False), id="chunked"),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"", 27, False), id="no-content"),
        pytest.param(
            b"HTTP/1.1 409 Conflict\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            (409, b"abc", 66, True),
            id="server-closes",
        ),
    ],
)
def test_complete_responses(raw: bytes, expected: tuple[int, bytes, int, bool]) -> None:
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
    status, body, used, _ = _parse_response(buf) or (0, b"", 0, False)
    assert (status, body) == (201, b"{}")
    del buf[:used]
    assert _parse_response(buf) == (200, b'{"a":1}', len(CHUNKED), False)
