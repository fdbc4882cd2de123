"""How `berth explain` finds and asks the leader: the Lease's debug-endpoint annotation (written
by the elector, read by the client), the pod-proxy path, what 401/403 mean for the user, and TLS
towards berth (the pin from the Lease, a CA, the insecure flag) against a local HTTPS server."""

from __future__ import annotations

import hashlib
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from scheduler import tls
from scheduler.explain_client import (
    Caller,
    ExplainError,
    Options,
    debug_path,
    get_json,
    leader_endpoint,
    proxy_path,
    refusal,
)
from scheduler.kube.debug_endpoint import ANNOTATION, DebugEndpoint, annotate, base_url, of_lease
from scheduler.kube.leader import LeaderElector, LeaseConfig
from tests.unit.test_leader import FakeLeases, VirtualClock

JSON = dict[str, Any]
HOLDER = "berth-0_3f2a"


def lease(holder: str = HOLDER, annotation: str | None = None, **extra: str) -> JSON:
    annotations = dict(extra)
    if annotation is not None:
        annotations[ANNOTATION] = annotation
    return {
        "metadata": {"name": "berth", "namespace": "berth-system", "annotations": annotations},
        "spec": {"holderIdentity": holder},
    }


MINE = DebugEndpoint(HOLDER, "https://10.0.0.7:10259", "ab" * 32).annotation()


# --- the annotation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param(
            lease(holder=""), "no leader: the Lease berth-system/berth has no holder", id="released"
        ),
        pytest.param(lease(), "publishes no debug endpoint", id="holder-without-annotation"),
        pytest.param(
            lease(annotation=DebugEndpoint("berth-1_old", "https://10.0.0.9:10259").annotation()),
            "publishes no debug endpoint",
            id="stale-annotation-of-an-earlier-holder",
        ),
        pytest.param(
            lease(annotation="https://10.0.0.7:10259"), "publishes no debug endpoint", id="not-json"
        ),
        pytest.param(
            lease(annotation='{"holderIdentity": "berth-0_3f2a"}'),
            "publishes no debug endpoint",
            id="no-url",
        ),
    ],
)
def test_no_usable_endpoint_is_said_so(obj: JSON, message: str) -> None:
    """Each way the Lease cannot name a leader to ask gives its own message."""
    with pytest.raises(ExplainError, match=message):
        leader_endpoint(obj)


def test_the_holders_own_annotation_names_its_url_and_pin() -> None:
    endpoint = leader_endpoint(lease(annotation=MINE))
    assert endpoint == DebugEndpoint(HOLDER, "https://10.0.0.7:10259", "ab" * 32)
    assert of_lease(lease(annotation=MINE)) == (HOLDER, endpoint)


def test_annotate_sets_and_removes_only_its_own_key() -> None:
    meta = {"name": "berth", "annotations": {"other.io/x": "1"}}
    endpoint = DebugEndpoint(HOLDER, "http://10.0.0.7:10251")
    written = annotate(meta, endpoint)
    assert written["annotations"] == {"other.io/x": "1", ANNOTATION: endpoint.annotation()}
    assert annotate(written, None) == meta
    assert annotate({"name": "berth"}, None) == {"name": "berth"}


@pytest.mark.parametrize(
    ("host", "url"),
    [
        pytest.param("10.0.0.7", "https://10.0.0.7:10259", id="ipv4"),
        pytest.param("fd00::7", "https://[fd00::7]:10259", id="ipv6-bracketed"),
        pytest.param("berth-0.example", "https://berth-0.example:10259", id="host-name"),
    ],
)
def test_base_url(host: str, url: str) -> None:
    assert base_url("https", host, 10259) == url


async def test_the_elector_writes_the_annotation_with_the_holder_and_drops_it_on_release() -> None:
    """Create, renew and release through the elector: the annotation names the holder and its
    URL and pin while it holds the Lease, and a release removes it."""
    api = KeepsMetadata()
    clock = VirtualClock()
    config = LeaseConfig(
        namespace="ns",
        name="lock",
        identity=HOLDER,
        debug_url="https://10.0.0.7:10259",
        debug_cert_sha256="ab" * 32,
    )
    elector = LeaderElector(api, config, clock=clock, sleep=clock.sleep)
    assert await elector.try_acquire_or_renew()
    assert api.obj is not None
    assert of_lease(api.obj)[1] == DebugEndpoint(HOLDER, "https://10.0.0.7:10259", "ab" * 32)
    await clock.sleep(2)
    assert await elector.try_acquire_or_renew()
    assert of_lease(api.obj)[1] is not None
    await elector.release()
    assert of_lease(api.obj) == ("", None)
    assert ANNOTATION not in api.obj["metadata"]["annotations"]


class KeepsMetadata(FakeLeases):
    """FakeLeases that also stores the annotations written, as the API server does."""

    written: dict[str, str] | None = None

    def store(self, spec: dict[str, Any], name: str = "lock") -> dict[str, Any]:
        out = super().store(spec, name)
        assert self.obj is not None
        self.obj["metadata"]["annotations"] = dict(self.written or {})
        out["metadata"]["annotations"] = dict(self.written or {})
        return out

    async def post(self, path: str, body: Any) -> Any:
        self.written = body["metadata"].get("annotations")
        return await super().post(path, body)

    async def put(self, path: str, body: Any) -> Any:
        self.written = body["metadata"].get("annotations")
        return await super().put(path, body)


# --- paths and refusals ------------------------------------------------------------------------


def test_debug_path_quotes_and_asks_about_a_node() -> None:
    assert debug_path("ns", "p") == "/debug/pods/ns/p"
    assert debug_path("ns", "p", node="n 1") == "/debug/pods/ns/p?node=n+1"


def test_proxy_path_names_the_leaders_pod_from_its_identity() -> None:
    endpoint = DebugEndpoint("berth-7c9d-x2_6f1e", "https://10.0.0.7:10259")
    assert proxy_path("berth-system", endpoint, "/debug/pods/a/b") == (
        "/api/v1/namespaces/berth-system/pods/https:berth-7c9d-x2:10259/proxy/debug/pods/a/b"
    )


def test_403_names_the_rbac_needed_and_keeps_berths_message() -> None:
    body = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "message": 'forbidden: User "alice" cannot get path "/debug/pods/a/b"',
            "reason": "Forbidden",
            "code": 403,
        }
    )
    message = str(refusal("https://x/debug/pods/a/b", 403, "Forbidden", body))
    assert "nonResourceURLs" in message and '"/debug/*"' in message
    assert 'User "alice" cannot get path' in message


def test_401_says_the_credentials_were_not_accepted() -> None:
    message = str(refusal("https://x/debug/pods/a/b", 401, "Unauthorized", ""))
    assert "401 Unauthorized" in message and "TokenReview" in message


# --- TLS towards berth -------------------------------------------------------------------------


class Seen:
    authorization: list[str | None] = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        Seen.authorization.append(self.headers.get("Authorization"))
        body = json.dumps({"pod": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def berth_like(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """An HTTPS server with a self-signed pair (as berth makes one): its URL, the leaf's
    SHA-256 and the CA file."""
    directory = tmp_path_factory.mktemp("tls")
    ca = tls.certificate_authority("berth-ca")
    leaf = tls.serving_certificate(ca, "berth", ["127.0.0.1"])
    (directory / "ca.crt").write_bytes(ca.cert_pem())
    (directory / "tls.crt").write_bytes(leaf.cert_pem())
    (directory / "tls.key").write_bytes(leaf.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pin = hashlib.sha256(leaf.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", pin, directory / "ca.crt"
    finally:
        server.shutdown()


def test_the_pin_from_the_lease_is_enough_and_the_token_goes_along(
    berth_like: tuple[str, str, Path],
) -> None:
    url, pin, _ = berth_like
    Seen.authorization.clear()
    view = get_json(url, "/debug/pods/a/b", Options(), Caller(token="t0k"), pin=pin)
    assert view == {"pod": "/debug/pods/a/b"}
    assert Seen.authorization == ["Bearer t0k"]


def test_another_certificate_than_the_pinned_one_gets_no_request(
    berth_like: tuple[str, str, Path],
) -> None:
    url, _, _ = berth_like
    Seen.authorization.clear()
    with pytest.raises(ExplainError, match="is not the one the Lease pins"):
        get_json(url, "/debug/pods/a/b", Options(), Caller(token="t0k"), pin="00" * 32)
    assert Seen.authorization == []  # the token never left


def test_unpinned_self_signed_needs_a_ca_or_the_insecure_flag(
    berth_like: tuple[str, str, Path],
) -> None:
    url, _, ca = berth_like
    with pytest.raises(ExplainError, match=r"--certificate-authority.*--insecure-skip-tls-verify"):
        get_json(url, "/debug/pods/a/b", Options(), Caller())
    assert get_json(url, "/x", Options(certificate_authority=str(ca)), Caller()) == {"pod": "/x"}
    insecure = Options(insecure_skip_tls_verify=True)
    assert get_json(url, "/y", insecure, Caller()) == {"pod": "/y"}


def test_plain_http_carries_no_credentials() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        Seen.authorization.clear()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert get_json(url, "/z", Options(), Caller(token="t0k")) == {"pod": "/z"}
        assert Seen.authorization == [None]
    finally:
        server.shutdown()
