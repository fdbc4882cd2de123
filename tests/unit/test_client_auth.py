"""Every request path of the client carries a fresh credential, retries a 401 once after
refreshing it, and honours Retry-After on a 429: reads (aiohttp), writes (the lean pipelined
pool), watch opens, and the informer around them. The peer is a local aiohttp server that
answers by the token it is shown, not a fake of the Kubernetes API."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scheduler import tls
from scheduler.kube.client import RETRY_AFTER_CAP_SECONDS, ApiError, Client, Credentials
from scheduler.kube.credentials import Auth, ClientCert, TokenFile
from scheduler.kube.informer import Informer

NODES, EVENTS, PODS = "/api/v1/nodes", "/api/v1/namespaces/x/events", "/api/v1/pods"


class Peer:
    """Answers 401 unless shown `accepted`; before that, the next `busy` answers are 429 with
    Retry-After `retry_after` (None: no header). Keeps every Authorization header it saw."""

    def __init__(self) -> None:
        self.accepted = "A"
        self.busy = 0
        self.retry_after: str | None = "2"
        self.seen: list[tuple[str, str]] = []  # (path, token)
        self.peers: list[str] = []  # the client certificate's CN per request, "" without
        app = web.Application()
        app.router.add_get(NODES, self._answer)
        app.router.add_post(EVENTS, self._answer)
        app.router.add_get(PODS, self._answer)
        self.app = app

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen.append((request.path, token))
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        self.peers.append(_cn(peer))
        if self.busy:
            self.busy -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response({"reason": "TooManyRequests"}, status=429, headers=headers)
        if token != self.accepted:
            return web.json_response({"reason": "Unauthorized"}, status=401)
        if "watch" in request.query:
            resp = web.StreamResponse()
            await resp.prepare(request)
            await resp.write(b'{"type": "ADDED", "object": {"metadata": {"name": "p"}}}\n')
            return resp
        if request.path == PODS:
            return web.json_response({"items": [], "metadata": {"resourceVersion": "1"}})
        return web.json_response({"kind": "Ok"}, status=201 if request.method == "POST" else 200)


def _cn(peer: object) -> str:
    if not isinstance(peer, dict):
        return ""
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, str]]:
    fake = Peer()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    yield fake, f"http://127.0.0.1:{server.port}"
    await server.close()


class Waits(list[float]):
    """The client's retry waits, recorded instead of slept."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


async def first_line(client: Client) -> bytes:
    lines = client.stream_lines(PODS, {"watch": "true"}, 10)
    try:
        return await anext(lines)
    finally:
        await lines.aclose()


async def call(client: Client, path: str) -> object:
    if path == EVENTS:
        return await client.post(EVENTS, {"kind": "Event"})
    if path == PODS:
        return await first_line(client)
    return await client.get(path)


PATHS = [
    pytest.param(NODES, id="read"),
    pytest.param(EVENTS, id="pipelined-write"),
    pytest.param(PODS, id="watch-open"),
]


@pytest.mark.parametrize("path", PATHS)
async def test_a_rotated_token_file_is_used_after_one_401(
    peer: tuple[Peer, str], tmp_path: Path, path: str
) -> None:
    """The server stops taking token A (its Secret was deleted); the file holds B already. The
    request that is refused re-reads the file and goes again with B; the next one carries B
    at once, from every client sharing the credentials."""
    fake, url = peer
    token = tmp_path / "token"
    token.write_text("A")
    creds = Credentials(url, token="A", source=TokenFile(str(token), initial="A"))
    async with Client(creds, qps=0) as client, Client(creds, qps=0) as sibling:
        await call(client, path)
        token.write_text("B")
        fake.accepted = "B"
        await call(client, path)
        await call(sibling, path)
    assert [t for _, t in fake.seen] == ["A", "A", "B", "B"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_401_is_retried_once_never_more(
    peer: tuple[Peer, str], tmp_path: Path, path: str
) -> None:
    """A credential the server never takes: one refresh, one more try, then the 401."""
    fake, url = peer
    token = tmp_path / "token"
    token.write_text("A")
    fake.accepted = "nobody"
    source = TokenFile(str(token), initial="stale")
    async with Client(Credentials(url, source=source), qps=0, retries=5) as client:
        with pytest.raises(ApiError) as info:
            await call(client, path)
    assert info.value.status == 401
    assert [t for _, t in fake.seen] == ["stale", "A"]


class EverNew:
    """A source whose every refresh brings a new token, none of which the server takes."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def get(self) -> Auth:
        return Auth(f"t{self.refreshes}")

    async def refresh(self, used: Auth) -> Auth:
        self.refreshes += 1
        return Auth(f"t{self.refreshes}")


@pytest.mark.parametrize("path", PATHS)
async def test_a_401_never_loops_even_when_every_refresh_is_new(
    peer: tuple[Peer, str], path: str
) -> None:
    """However often the credential changes, a request is refreshed and retried once."""
    fake, url = peer
    source = EverNew()
    async with Client(Credentials(url, source=source), qps=0, retries=5) as client:
        with pytest.raises(ApiError):
            async with asyncio.timeout(30):  # a loop would never end: fail, not hang
                await call(client, path)
    assert [t for _, t in fake.seen] == ["t0", "t1"]
    assert source.refreshes == 1


@pytest.mark.parametrize("path", PATHS)
async def test_a_401_with_nothing_new_is_not_retried(peer: tuple[Peer, str], path: str) -> None:
    """A fixed token cannot change: the 401 is the answer."""
    fake, url = peer
    async with Client(Credentials(url, token="X"), qps=0) as client:
        with pytest.raises(ApiError):
            await call(client, path)
    assert len(fake.seen) == 1


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("header", "wait"),
    [
        pytest.param("2", 2.0, id="retry-after-2"),
        pytest.param("3600", RETRY_AFTER_CAP_SECONDS, id="retry-after-capped"),
    ],
)
async def test_a_429_waits_its_retry_after(
    peer: tuple[Peer, str], path: str, header: str, wait: float
) -> None:
    """Reads, pipelined writes (bindings, events, status) and watch opens all wait what
    Retry-After says, capped, before trying again."""
    fake, url = peer
    fake.busy, fake.retry_after = 2, header
    waits = Waits()
    async with Client(Credentials(url, token="A"), qps=0, sleep=waits) as client:
        await call(client, path)
    assert waits == [wait, wait]
    assert len(fake.seen) == 3


async def test_a_watch_429_without_retry_after_goes_to_the_informer(
    peer: tuple[Peer, str],
) -> None:
    """client-go's Watch retries only a 429 that says when; otherwise the caller backs off."""
    fake, url = peer
    fake.busy, fake.retry_after = 1, None
    async with Client(Credentials(url, token="A"), qps=0) as client:
        with pytest.raises(ApiError) as info:
            await first_line(client)
    assert info.value.status == 429 and info.value.retry_after is None


class Stop(Exception):
    pass


async def test_the_informer_waits_retry_after_when_the_client_gave_up(
    peer: tuple[Peer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watch still refused after the client's retries: the informer's next try waits at
    least what the server said, not its own shorter backoff."""
    fake, url = peer
    fake.retry_after = "20"
    informer_waits: list[float] = []

    async def sleep(seconds: float) -> None:
        informer_waits.append(seconds)
        raise Stop

    monkeypatch.setattr("scheduler.kube.informer.asyncio.sleep", sleep)
    async with Client(Credentials(url, token="A"), qps=0, retries=0) as client:
        informer = Informer(client, PODS, lambda *event: None)
        await informer._list()
        fake.busy = 1
        with pytest.raises(Stop):
            await informer.run()
    assert informer_waits == [20.0]


# --- an exec plugin's client certificate ------------------------------------------------------


def client_cert(ca: tls.Issued, name: str) -> ClientCert:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    issued = tls.Issued(key, cert)
    return ClientCert(issued.cert_pem().decode(), issued.key_pem().decode())


class Rotating:
    """A credential source handing out `auth` (an exec plugin's, as ExecPlugin returns it)."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def get(self) -> Auth:
        return self.auth

    async def refresh(self, used: Auth) -> Auth:
        return self.auth


async def test_a_new_exec_client_certificate_is_presented_on_new_connections(
    tmp_path: Path,
) -> None:
    """When the plugin's certificate changes, reads, writes and watches open connections that
    present the new one (client-go closes every connection on rotation)."""
    ca = tls.certificate_authority("test-ca")
    serving = tls.serving_certificate(ca, "server", ["127.0.0.1"])
    (tmp_path / "s.crt").write_bytes(serving.cert_pem())
    (tmp_path / "s.key").write_bytes(serving.key_pem())
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem())
    server_ctx = tls.server_context(tmp_path / "s.crt", tmp_path / "s.key", client_ca=ca.cert_pem())
    fake = Peer()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(ssl=server_ctx)
    source = Rotating(Auth("A", client_cert(ca, "one")))
    creds = Credentials(f"https://127.0.0.1:{server.port}", ca_file=str(tmp_path / "ca.crt"))
    creds = Credentials(creds.server, ca_file=creds.ca_file, source=source)
    try:
        async with Client(creds, qps=0) as client:
            for path in (NODES, EVENTS, PODS):
                await call(client, path)
            source.auth = Auth("A", client_cert(ca, "two"))
            for path in (NODES, EVENTS, PODS):
                await call(client, path)
            assert client.tls_rotations == 2
    finally:
        await server.close()
    assert fake.peers == ["one"] * 3 + ["two"] * 3
