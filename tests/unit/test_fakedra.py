"""The fake DRA driver's objects (scheduler/harness/fakedra.py) and its publisher."""

from __future__ import annotations

from typing import Any, cast

import pytest

from scheduler.harness import fakedra
from scheduler.kube.client import ApiError, Client

JSON = dict[str, Any]


def test_gpu_slice_shape() -> None:
    """A node's slice: the driver, the node, a one-slice pool named after the node, and
    gpu-0..gpu-N with model, index, uuid and memory."""
    assert fakedra.gpu_slice("node-1", count=2, model="h100", memory="40Gi") == {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": "node-1-gpu.example.com"},
        "spec": {
            "driver": "gpu.example.com",
            "nodeName": "node-1",
            "pool": {"name": "node-1", "generation": 0, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": f"gpu-{i}",
                    "attributes": {
                        "model": {"string": "h100"},
                        "index": {"int": i},
                        "uuid": {"string": f"node-1-gpu-{i}"},
                    },
                    "capacity": {"memory": {"value": "40Gi"}},
                }
                for i in range(2)
            ],
        },
    }


def test_gpu_slice_defaults_and_overrides() -> None:
    """Eight a100s by default; pool, name and driver can be set."""
    default = fakedra.gpu_slice("n")
    assert [d["name"] for d in default["spec"]["devices"]] == [f"gpu-{i}" for i in range(8)]
    assert default["spec"]["devices"][7]["attributes"]["model"] == {"string": "a100"}
    assert default["spec"]["devices"][7]["capacity"] == {"memory": {"value": "80Gi"}}
    other = fakedra.gpu_slice("n", driver="tpu.example.com", pool="p", name="s")
    assert other["metadata"]["name"] == "s"
    assert other["spec"]["driver"] == "tpu.example.com"
    assert other["spec"]["pool"]["name"] == "p"
    assert fakedra.slice_name("n", "tpu.example.com") == "n-tpu.example.com"


@pytest.mark.parametrize(
    ("kwargs", "spec"),
    [
        pytest.param(
            {},
            {"selectors": [{"cel": {"expression": 'device.driver == "gpu.example.com"'}}]},
            id="all of the driver's devices",
        ),
        pytest.param(
            {"driver": "x.io", "extended_resource_name": "example.com/gpu"},
            {
                "selectors": [{"cel": {"expression": 'device.driver == "x.io"'}}],
                "extendedResourceName": "example.com/gpu",
            },
            id="backing an extended resource",
        ),
    ],
)
def test_device_class(kwargs: dict[str, Any], spec: JSON) -> None:
    """A DeviceClass selects its driver's devices by CEL."""
    body = fakedra.device_class("c", **kwargs)
    assert body == {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "c"},
        "spec": spec,
    }


def exactly(count: int, selectors: list[str] | None = None) -> JSON:
    body: JSON = {
        "deviceClassName": "gpu.example.com",
        "allocationMode": "ExactCount",
        "count": count,
    }
    if selectors:
        body["selectors"] = [{"cel": {"expression": s}} for s in selectors]
    return body


@pytest.mark.parametrize(
    ("kwargs", "devices"),
    [
        pytest.param({}, {"requests": [{"name": "gpu", "exactly": exactly(1)}]}, id="one gpu"),
        pytest.param(
            {"count": 4, "selectors": ['device.attributes["gpu.example.com"].model == "a100"']},
            {
                "requests": [
                    {
                        "name": "gpu",
                        "exactly": exactly(
                            4, ['device.attributes["gpu.example.com"].model == "a100"']
                        ),
                    }
                ]
            },
            id="four gpus with a selector",
        ),
        pytest.param(
            {"count": 2, "requests": 3, "match_attribute": "gpu.example.com/model"},
            {
                "requests": [{"name": f"gpu-{i}", "exactly": exactly(2)} for i in range(3)],
                "constraints": [
                    {
                        "requests": ["gpu-0", "gpu-1", "gpu-2"],
                        "matchAttribute": "gpu.example.com/model",
                    }
                ],
            },
            id="three requests of two sharing a model",
        ),
    ],
)
def test_claim_and_template(kwargs: dict[str, Any], devices: JSON) -> None:
    """A claim and a template built from the same arguments carry the same spec."""
    assert fakedra.claim("c", **kwargs) == {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "c"},
        "spec": {"devices": devices},
    }
    assert fakedra.claim_template("t", **kwargs) == {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "t"},
        "spec": {"spec": {"devices": devices}},
    }


class FakeApi:
    """The slice paths of an API server: post (409 when the name is taken), get, put, delete
    (404 when absent)."""

    def __init__(self) -> None:
        self.objects: dict[str, JSON] = {}
        self.versions = 0

    def _stamp(self, body: JSON) -> JSON:
        self.versions += 1
        body["metadata"]["resourceVersion"] = str(self.versions)
        return body

    async def post(self, path: str, body: JSON) -> JSON:
        key = f"{path}/{body['metadata']['name']}"
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", "exists", "POST", path)
        self.objects[key] = self._stamp(body)
        return body

    async def get(self, path: str) -> JSON:
        return self.objects[path]

    async def put(self, path: str, body: JSON) -> JSON:
        assert (
            body["metadata"]["resourceVersion"] == self.objects[path]["metadata"]["resourceVersion"]
        )
        self.objects[path] = self._stamp(body)
        return body

    async def delete(self, path: str) -> JSON:
        if path not in self.objects:
            raise ApiError(404, "NotFound", "gone", "DELETE", path)
        return self.objects.pop(path)


async def test_publish_then_unpublish() -> None:
    """One slice per node; publishing again replaces them; unpublishing twice is fine."""
    api = FakeApi()
    client = cast(Client, api)
    await fakedra.publish(client, ["a", "b"], count=2)
    assert sorted(api.objects) == [
        f"{fakedra.SLICES}/a-gpu.example.com",
        f"{fakedra.SLICES}/b-gpu.example.com",
    ]
    await fakedra.publish(client, ["a"], count=4)
    assert len(api.objects[f"{fakedra.SLICES}/a-gpu.example.com"]["spec"]["devices"]) == 4
    await fakedra.unpublish(client, ["a", "b"])
    await fakedra.unpublish(client, ["a"])
    assert api.objects == {}


async def test_publish_refuses_one_name_for_many_nodes() -> None:
    """An explicit slice name fits one node only."""
    with pytest.raises(ValueError, match="one slice name"):
        await fakedra.publish(cast(Client, FakeApi()), ["a", "b"], name="s")
