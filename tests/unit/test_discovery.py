"""ServerInfo from the legacy discovery documents every supported server serves, and the
group-versions berth's informers watch."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

import plugins
from scheduler.app import App
from scheduler.config import API_VERSION, KIND, parse
from scheduler.kube.client import Client, Credentials
from scheduler.kube.discovery import ServerInfo
from scheduler.serving import ServingOptions

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


DEVICE_CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"


@contextlib.asynccontextmanager
async def app_without_server() -> AsyncIterator[App]:
    """An App over the default config whose client points nowhere (nothing is started)."""
    config = parse({"apiVersion": API_VERSION, "kind": KIND}, plugins.registry().keys())
    client = Client(Credentials("http://127.0.0.1:9"), qps=0)
    app = App(config, client, serving=ServingOptions.local())
    try:
        yield app
    finally:
        await app.event_client.close()
        await app.lease_client.close()
        await client.close()


async def test_informers_watch_only_what_every_supported_server_serves() -> None:
    """The informers berth always starts watch only what every supported server serves. Of
    the server version matrix's APIs it watches DRA's DeviceClasses, ResourceSlices and
    ResourceClaims (resource.k8s.io/v1) and PodGroups of both APIs (upstream's
    scheduling.k8s.io/v1beta1 and scheduler-plugins' CRD) through optional informers."""
    async with app_without_server() as app:
        required = [i for i in app.informers if i not in app.optional_informers]
        assert {_group_version(i.path) for i in required} == SERVED_BY_ALL
        assert {i.path: needs for i, needs in app.optional_informers.items()} == {
            DEVICE_CLASSES: ("resource.k8s.io/v1", "DRA device classes"),
            "/apis/resource.k8s.io/v1/resourceslices": (
                "resource.k8s.io/v1",
                "DRA devices (ResourceSlices)",
            ),
            "/apis/resource.k8s.io/v1/resourceclaims": (
                "resource.k8s.io/v1",
                "DRA allocation (ResourceClaims)",
            ),
            "/apis/scheduling.k8s.io/v1beta1/podgroups": (
                "scheduling.k8s.io/v1beta1",
                "gang scheduling (PodGroup, GenericWorkload)",
            ),
            "/apis/scheduling.x-k8s.io/v1alpha1/podgroups": (
                "scheduling.x-k8s.io/v1alpha1",
                "gang scheduling (scheduler-plugins PodGroup CRD)",
            ),
        }


RESOURCE = {"name": "resource.k8s.io", "versions": [{"groupVersion": "resource.k8s.io/v1"}]}


@pytest.mark.parametrize(
    ("groups", "watched"),
    [
        pytest.param(APIS["groups"], False, id="resource.k8s.io/v1 not served"),
        pytest.param([*APIS["groups"], RESOURCE], True, id="resource.k8s.io/v1 served"),
    ],
)
async def test_device_class_informer_is_dropped_when_not_served(
    groups: list[dict[str, object]], watched: bool
) -> None:
    """Without resource.k8s.io/v1 (DRA turned off by the cluster admin) the DRA informers
    (DeviceClasses, ResourceSlices, ResourceClaims) never start: no class backs an extended
    resource, NodeResourcesFit judges every request as before, and a pod's claims are never
    found. The always-started informers stay either way."""
    info = ServerInfo.parse({"major": "1", "minor": "37"}, API, {"groups": groups})
    async with app_without_server() as app:
        before = len(app.informers)
        app._drop_unserved(info)
        assert (DEVICE_CLASSES in [i.path for i in app.informers]) is watched
        # The PodGroup informers go and stay by the same rule.
        groups = ("scheduling.k8s.io/v1beta1", "scheduling.x-k8s.io/v1alpha1")
        unserved_groups = sum(1 for gv in groups if not info.serves(gv))
        assert len(app.informers) == before - 3 * (not watched) - unserved_groups
