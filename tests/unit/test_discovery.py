"""ServerInfo from the legacy discovery documents every supported server serves, and the
group-versions berth's informers watch."""

from __future__ import annotations

import pytest

import plugins
from scheduler.app import App
from scheduler.config import API_VERSION, KIND, parse
from scheduler.kube.client import Client, Credentials
from scheduler.kube.discovery import ServerInfo

API = {"kind": "APIVersions", "versions": ["v1"]}
APIS = {
    "kind": "APIGroupList",
    "groups": [
        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}]},
        {
            "name": "scheduling.k8s.io",
            "versions": [
                {"groupVersion": "scheduling.k8s.io/v1", "version": "v1"},
                {"groupVersion": "scheduling.k8s.io/v1beta1", "version": "v1beta1"},
            ],
        },
    ],
}


@pytest.mark.parametrize(
    ("version", "minor"),
    [
        pytest.param({"major": "1", "minor": "37", "gitVersion": "v1.37.2"}, 37, id="plain"),
        pytest.param({"major": "1", "minor": "35+", "gitVersion": "v1.35.4-eks"}, 35, id="plus"),
        pytest.param({}, 0, id="missing"),
    ],
)
def test_version(version: dict[str, str], minor: int) -> None:
    info = ServerInfo.parse(version, API, APIS)
    assert info.minor == minor
    assert info.git_version == version.get("gitVersion", "")


def test_group_versions() -> None:
    info = ServerInfo.parse({"major": "1", "minor": "37"}, API, APIS)
    assert info.serves("v1")
    assert info.serves("scheduling.k8s.io/v1beta1")
    assert not info.serves("resource.k8s.io/v1")
    assert not ServerInfo.parse({}, {}, {}).serves("v1")


# The group-versions every supported server (v1.35, v1.36, v1.37) serves.
SERVED_BY_ALL = {"v1", "apps/v1", "policy/v1", "storage.k8s.io/v1", "scheduling.k8s.io/v1"}


def _group_version(path: str) -> str:
    parts = path.strip("/").split("/")
    return parts[1] if parts[0] == "api" else f"{parts[1]}/{parts[2]}"


async def test_informers_watch_only_what_every_supported_server_serves() -> None:
    """berth watches none of the server version matrix's APIs yet (resource.k8s.io, Workload
    and PodGroup, CSIDriver), so no informer depends on the server's version. Pins today's
    behaviour; changes with #13 and #14, whose informers will be optional ones."""
    config = parse({"apiVersion": API_VERSION, "kind": KIND}, plugins.registry().keys())
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    app = App(config, client, port=0, host="127.0.0.1")
    try:
        assert {_group_version(i.path) for i in app.informers} == SERVED_BY_ALL
        assert app.optional_informers == {}
    finally:
        await app.event_client.close()
        await app.lease_client.close()
        await client.close()
