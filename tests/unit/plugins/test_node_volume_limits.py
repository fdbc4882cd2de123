"""NodeVolumeLimits: CSI attach limits from CSINode, as upstream's csi_test.go
(TestCSILimits) for the cases a control plane without CSI migration has."""

from __future__ import annotations

from typing import Any

import pytest

from plugins import node_volume_limits
from plugins.node_volume_limits import ERR_REASON
from scheduler.framework import Code, CycleState
from scheduler.model import compile_pod
from tests.builders import make_node
from tests.unit.plugins.volume_builders import (
    OTHER_VOLUMES,
    VolumeHandle,
    claim_volume,
    csi_node,
    pv,
    pvc,
    storage_class,
    store,
    with_volumes,
)
from tests.unit.tables import build_table, filter_reasons

JSON = dict[str, Any]
EBS = "ebs.csi.aws.com"
GCE = "pd.csi.storage.gke.io"

OBJECTS = [
    *(pv(f"pv-{i}", csi=(EBS, f"vol-{i}"), claim=f"c{i}") for i in range(4)),
    *(pvc(f"c{i}", volume=f"pv-{i}", bound=True) for i in range(4)),
    pv("pv-gce", csi=(GCE, "disk-1"), claim="c-gce"),
    pvc("c-gce", volume="pv-gce", bound=True),
    storage_class("ebs-dyn", provisioner=EBS),
    pvc("dyn-1", storage_class="ebs-dyn"),
    pvc("dyn-2", storage_class="ebs-dyn"),
]


def plugin(*extra: JSON) -> node_volume_limits.NodeVolumeLimits:
    return node_volume_limits.new({}, VolumeHandle(store(*OBJECTS, *extra)))


def pods_on(node: str, *claims: str) -> JSON:
    return with_volumes(f"on-{node}-{'-'.join(claims)}", *map(claim_volume, claims), node=node)


@pytest.mark.parametrize(
    ("limits", "existing", "claims", "expected"),
    [
        pytest.param({"ebs_csi_aws_com": 2}, [("c0",)], ("c1",), [], id="fits-under-the-limit"),
        pytest.param(
            {"ebs_csi_aws_com": 2}, [("c0", "c1")], ("c2",), [ERR_REASON], id="exceeds-limit"
        ),
        pytest.param(
            {"ebs_csi_aws_com": 2},
            [("c0", "c1")],
            ("c1",),
            [],
            id="volume-already-attached-counts-once",
        ),
        pytest.param(
            {"ebs_csi_aws_com": 2}, [("c0", "c1")], ("c-gce",), [], id="other-driver-not-limited"
        ),
        pytest.param(
            {"ebs_csi_aws_com": 2},
            [("c0",)],
            ("dyn-1", "dyn-2"),
            [ERR_REASON],
            id="unbound-claims-count-under-their-provisioner",
        ),
        pytest.param(
            {"ebs_csi_aws_com": None}, [("c0", "c1")], ("c2",), [], id="driver-without-count"
        ),
        pytest.param(None, [("c0", "c1", "c2")], ("c3",), [], id="node-without-csinode"),
    ],
)
def test_filter(
    limits: dict[str, int | None] | None,
    existing: list[tuple[str, ...]],
    claims: tuple[str, ...],
    expected: list[str],
) -> None:
    """Attached plus new unique volumes of a driver must not exceed the CSINode count."""
    extra = [csi_node("node1", **limits)] if limits is not None else []
    table = build_table([make_node("node1").obj_()], [pods_on("node1", *c) for c in existing])
    incoming = with_volumes("p", *map(claim_volume, claims))
    assert filter_reasons(plugin(*extra), incoming, table) == {"node1": expected}


def test_pre_filter_skips_pods_without_claims() -> None:
    raw = with_volumes("p", *OTHER_VOLUMES)
    status = plugin().pre_filter(CycleState(), compile_pod(raw), build_table([]))
    assert status is not None and status.code is Code.SKIP


def test_inline_csi_volumes_count() -> None:
    inline = {"name": "inline", "csi": {"driver": EBS}}
    table = build_table([make_node("node1").obj_()], [pods_on("node1", "c0")])
    incoming = with_volumes("p", inline)
    limited = plugin(csi_node("node1", ebs_csi_aws_com=1))
    assert filter_reasons(limited, incoming, table) == {"node1": [ERR_REASON]}
