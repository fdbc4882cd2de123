"""ServerInfo from the legacy discovery documents every supported server serves."""

from __future__ import annotations

import pytest

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
