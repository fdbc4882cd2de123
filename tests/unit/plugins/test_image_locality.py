"""ImageLocality: the scores of upstream v1.37's image_locality_test.go
(TestImageLocalityPriority, with the per-image-source threshold and image volumes), and the
row-locality that batching relies on."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import image_locality
from plugins.image_locality import MB
from scheduler.handle import in_memory
from scheduler.model import compile_node, compile_pod
from tests.builders import make_node, make_pod
from tests.unit.tables import build_table, scores

JSON = dict[str, Any]


def node(name: str, *images: tuple[list[str], int]) -> JSON:
    raw = make_node(name).obj_()
    raw["status"]["images"] = [{"names": names, "sizeBytes": size} for names, size in images]
    return raw


def pod(*images: str, init: tuple[str, ...] = (), volumes: tuple[str, ...] = ()) -> JSON:
    """Containers with these images; init containers; image volumes with these references."""
    raw = make_pod("p").obj_()
    raw["spec"]["containers"] = [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]
    if init:
        raw["spec"]["initContainers"] = [
            {"name": f"i{i}", "image": im} for i, im in enumerate(init)
        ]
    if volumes:
        raw["spec"]["volumes"] = [
            {"name": f"v{i}", "image": {"reference": ref}} for i, ref in enumerate(volumes)
        ]
    return raw


N403002000 = (
    (["gcr.io/40:latest", "gcr.io/40:v1", "gcr.io/40:v1"], 40 * MB),
    (["gcr.io/300:latest", "gcr.io/300:v1"], 300 * MB),
    (["gcr.io/2000:latest"], 2000 * MB),
)
N25010 = (
    (["gcr.io/250:latest"], 250 * MB),
    (["gcr.io/10:latest", "gcr.io/10:v1"], 10 * MB),
)
N60040900 = (
    (["gcr.io/600:latest"], 600 * MB),
    (["gcr.io/40:latest"], 40 * MB),
    (["gcr.io/900:latest"], 900 * MB),
)
N300600900 = (
    (["gcr.io/300:latest"], 300 * MB),
    (["gcr.io/600:latest"], 600 * MB),
    (["gcr.io/900:latest"], 900 * MB),
)
N400030 = (
    (["gcr.io/4000:latest"], 4000 * MB),
    (["gcr.io/30:latest"], 30 * MB),
)
N203040 = (
    (["gcr.io/20:latest"], 20 * MB),
    (["gcr.io/30:latest"], 30 * MB),
    (["gcr.io/40:latest"], 40 * MB),
)


@pytest.mark.parametrize(
    ("incoming", "nodes", "expected"),
    [
        pytest.param(
            pod("gcr.io/40", "gcr.io/250"),
            [node("m1", *N403002000), node("m2", *N25010)],
            # m1: 40M/2 < 23M; m2: 100 * (250M/2 - 23M) / (2000M - 23M)
            {"m1": 0, "m2": 5},
            id="two-images-spread-on-two-nodes-prefer-the-larger-image",
        ),
        pytest.param(
            pod("gcr.io/40", "gcr.io/300"),
            [node("m1", *N403002000), node("m2", *N25010)],
            # m1: 100 * ((40M + 300M)/2 - 23M) / (2000M - 23M)
            {"m1": 7, "m2": 0},
            id="two-images-on-one-node-prefer-it",
        ),
        pytest.param(
            pod("gcr.io/10", "gcr.io/4000"),
            [node("m1", *N400030), node("m2", *N25010)],
            # m1: 4000M/2 >= 1000M * 2, the max threshold; m2: 10M/2 < 23M
            {"m1": 100, "m2": 0},
            id="if-exceed-limit-use-limit",
        ),
        pytest.param(
            pod("gcr.io/10", "gcr.io/4000"),
            [node("m1", *N400030), node("m2", *N25010), node("m3")],
            # m1: 100 * (4000M/3 - 23M) / (2000M - 23M)
            {"m1": 66, "m2": 0, "m3": 0},
            id="if-exceed-limit-use-limit-with-node-which-has-no-images-present",
        ),
        pytest.param(
            pod("gcr.io/300", "gcr.io/600", "gcr.io/900"),
            [node("m1", *N60040900), node("m2", *N300600900), node("m3")],
            # m1: 100 * (600M * 2/3 + 900M * 2/3 - 23M) / (3000M - 23M)
            # m2: 100 * (300M * 1/3 + 600M * 2/3 + 900M * 2/3 - 23M) / (3000M - 23M)
            {"m1": 32, "m2": 36, "m3": 0},
            id="pod-with-multiple-large-images-node2-is-preferred",
        ),
        pytest.param(
            pod("gcr.io/30", "gcr.io/40"),
            [node("m1", *N203040), node("m2", *N400030)],
            # m1: 100 * (30M + 40M * 1/2 - 23M) / (2000M - 23M)
            # m2: 100 * (30M * 2/2 - 23M) / (2000M - 23M), under 1
            {"m1": 1, "m2": 0},
            id="pod-with-multiple-small-images",
        ),
        pytest.param(
            pod("gcr.io/30", volumes=("gcr.io/300",)),
            [node("m1", *N300600900), node("m2", *N400030)],
            # The image volume counts in the sum and in the image count (2):
            # m1: 100 * (300M * 1/2 - 23M) / (2000M - 23M); m2: 30M/2 < 23M
            {"m1": 6, "m2": 0},
            id="pod-with-image-volume",
        ),
        pytest.param(
            pod("gcr.io/30", "gcr.io/300"),
            [node("m1", *N300600900), node("m2", *N400030)],
            # The same scores as the image volume pod: an image volume does not outscore a
            # container with the same image (it did in v1.36).
            {"m1": 6, "m2": 0},
            id="same-images-as-image-volume-pod-but-as-regular-container-images",
        ),
        pytest.param(
            pod("gcr.io/30", init=("gcr.io/300",)),
            [node("m1", *N403002000), node("m2", *N203040)],
            # m1: 100 * (300M * 1/2 - 23M) / (2000M - 23M); m2: 30M/2 < 23M
            {"m1": 6, "m2": 0},
            id="include-init-containers-two-images-spread-on-two-nodes",
        ),
        pytest.param(
            pod("gcr.io/10", "gcr.io/2000"),
            [node("m1", *N403002000), node("m2", *N25010)],
            {"m1": 49, "m2": 0},
            id="large-image-scaled-by-spread",
        ),
        pytest.param(
            pod("gcr.io/10", "gcr.io/2000"),
            [node("m1", *N403002000), node("m2", *N25010), node("m3")],
            # m1: 100 * (2000M/3 - 23M) / (2000M - 23M)
            {"m1": 32, "m2": 0, "m3": 0},
            id="node-without-images-dilutes-the-spread",
        ),
        pytest.param(
            pod("gcr.io/30"),
            [
                node("m1", (["gcr.io/30:latest"], 30 * MB)),
                node("m2", (["gcr.io/30:latest"], 30 * MB)),
            ],
            # 30M * 2/2 = 30M over one container: 100 * (30M - 23M) / (1000M - 23M)
            {"m1": 0, "m2": 0},
            id="image-everywhere-small",
        ),
        pytest.param(
            pod("gcr.io/300", init=("gcr.io/300:v1",)),
            [node("m1", *N403002000), node("m2", *N25010)],
            # two containers, each 150M: 100 * (300M - 23M) / (2000M - 23M)
            {"m1": 14, "m2": 0},
            id="init-containers-count",
        ),
        pytest.param(
            pod("gcr.io/2000", "gcr.io/2000", "gcr.io/2000"),
            [node("m1", *N403002000)],
            {"m1": 100},
            id="clamped-at-max-threshold",
        ),
        pytest.param(
            pod("gcr.io/250:v2"),
            [node("m1", *N25010)],
            {"m1": 0},
            id="other-tag-does-not-match",
        ),
    ],
)
def test_score(incoming: JSON, nodes: list[JSON], expected: dict[str, int]) -> None:
    """Sum of image sizes x spread, clamped to [23Mi, 1000Mi per image source], scaled to
    100."""
    plugin = image_locality.new({}, in_memory())
    got = scores(plugin, incoming, build_table(nodes))
    if got is None:  # PreScore skipped: no node has the images, so every score would be 0
        got = dict.fromkeys(expected, 0)
    assert got == expected


def test_no_containers_is_skipped() -> None:
    """A pod without images gets PreScore SKIP (upstream scores every node 0: same totals)."""
    plugin = image_locality.new({}, in_memory())
    raw = make_pod("p").containers().obj_()
    assert scores(plugin, raw, build_table([node("m1", *N403002000)])) is None


@pytest.mark.parametrize(
    ("image", "normalized"),
    [
        pytest.param("nginx", "nginx:latest", id="no-tag"),
        pytest.param("nginx:1.25", "nginx:1.25", id="tag"),
        pytest.param("localhost:5000/app", "localhost:5000/app:latest", id="registry-port"),
        pytest.param("repo/app@sha256:abc", "repo/app@sha256:abc", id="digest"),
    ],
)
def test_image_names_are_normalized(image: str, normalized: str) -> None:
    assert compile_pod(pod(image)).images == (normalized,)


def test_image_sources_are_init_containers_containers_then_image_volumes() -> None:
    """One entry per image source, normalized, in upstream's order; other volumes are not
    image sources."""
    raw = pod("app", init=("setup:v1",), volumes=("models", "data@sha256:abc"))
    raw["spec"]["volumes"].insert(1, {"name": "scratch", "emptyDir": {}})
    assert compile_pod(raw).images == (
        "setup:v1",
        "app:latest",
        "models:latest",
        "data@sha256:abc",
    )


def test_image_volume_alone_is_scored() -> None:
    """A pod whose only image on the node is an image volume is not skipped."""
    plugin = image_locality.new({}, in_memory())
    incoming = pod("gcr.io/nowhere", volumes=("gcr.io/4000",))
    # 4000M over two image sources: at the max threshold.
    assert scores(plugin, incoming, build_table([node("m1", *N400030)])) == {"m1": 100}


def test_spread_follows_node_updates() -> None:
    """The per-image node count is kept incrementally: a node reporting the image later, or
    leaving, changes the spread; batching treats such pods as not row-local."""
    plugin = image_locality.new({}, in_memory())
    big = (["gcr.io/2000:latest"], 2000 * MB)
    table = build_table([node("m1", big), node("m2"), node("m3")])
    incoming = pod("gcr.io/2000")
    assert not plugin.row_local_for(compile_pod(incoming))  # nothing seen yet
    assert scores(plugin, incoming, table) == {"m1": 65, "m2": 0, "m3": 0}
    assert not plugin.row_local_for(compile_pod(incoming))
    assert plugin.row_local_for(compile_pod(pod("gcr.io/elsewhere")))
    table.upsert_node(compile_node(node("m2", big)))
    assert scores(plugin, incoming, table) == {"m1": 100, "m2": 100, "m3": 0}
    table.remove_node("m1")
    table.remove_node("m2")
    assert scores(plugin, incoming, table) is None  # no node has it any more: skipped
    assert plugin.row_local_for(compile_pod(incoming))


async def test_batched_placements_equal_one_by_one() -> None:
    """Pods whose image some nodes have take the one-by-one path; pods whose image no node
    has are batched. Either way the placements equal scheduling without batching."""
    from tests.unit.test_cycle import NAME, World

    big = (["gcr.io/2000:latest"], 2000 * MB)
    small = (["gcr.io/40:latest"], 40 * MB)
    shapes = [
        node(f"n{i}", *([big] if i % 3 == 0 else [small] if i % 3 == 1 else [])) for i in range(9)
    ]

    async def placements(batching: bool) -> list[str]:
        world = World(shapes, batching=batching)
        out = []
        for i in range(12):
            raw = pod("gcr.io/2000" if i % 2 else "gcr.io/nowhere")
            raw["metadata"]["name"] = raw["metadata"]["uid"] = f"p{i}"
            raw["spec"]["schedulerName"] = NAME
            raw["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
            out.append(world.schedule(raw).node)
        await world.scheduler.drain()
        return out

    one_by_one = await placements(False)
    assert all(one_by_one)
    assert await placements(True) == one_by_one
