"""The version matrix: hack/ modules, binaries.SUPPORTED and $K8S_VERSION resolution agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scheduler.harness import binaries, plane

HACK = Path(__file__).resolve().parents[2] / "hack"


def test_supported_versions_match_hack_modules() -> None:
    """Every hack/v1.MINOR/go.mod pins the patch SUPPORTED names, and nothing else is listed."""
    pinned = {}
    for gomod in HACK.glob("v1.*/go.mod"):
        match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", gomod.read_text(), re.M)
        assert match, gomod
        pinned[gomod.parent.name.removeprefix("v")] = match.group(1)
    assert pinned == binaries.SUPPORTED
    assert max(pinned, key=lambda m: int(m.split(".")[1])) == binaries.DEFAULT_MINOR


def test_staging_modules_replaced_at_the_same_release() -> None:
    """A staging module left at another release would build a mixed control plane."""
    for gomod in HACK.glob("v1.*/go.mod"):
        version = binaries.SUPPORTED[gomod.parent.name.removeprefix("v")]
        staging = "v0." + version.removeprefix("v1.")
        replaced = re.findall(r"^\s*(k8s\.io/\S+) => \1 (\S+)$", gomod.read_text(), re.M)
        assert len(replaced) > 25, gomod
        assert {v for _, v in replaced} == {staging}, gomod


@pytest.mark.parametrize(
    ("wanted", "resolved"),
    [
        pytest.param(None, "v1.37.2", id="default is the newest"),
        pytest.param("", "v1.37.2", id="empty is the default"),
        pytest.param("v1.35", "v1.35.4", id="minor picks its pinned patch"),
        pytest.param("1.36", "v1.36.3", id="without v"),
        pytest.param("v1.35.4", "v1.35.4", id="exact patch"),
    ],
)
def test_resolve(wanted: str | None, resolved: str) -> None:
    assert binaries.resolve(wanted) == resolved


@pytest.mark.parametrize(
    "wanted",
    [
        pytest.param("v1.33.13", id="unsupported minor"),
        pytest.param("v1.35.1", id="another patch than the pinned one"),
        pytest.param("latest", id="not a version"),
    ],
)
def test_resolve_refuses(wanted: str) -> None:
    with pytest.raises(binaries.UnsupportedVersion, match=r"supported versions are v1\.37\.2"):
        binaries.resolve(wanted)


def test_bin_dir_per_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each version has a cache of its own, and a missing binary names the build command."""
    monkeypatch.delenv("BERTH_BIN_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("K8S_VERSION", "v1.35")
    assert binaries.bin_dir() == tmp_path / "berth" / "k8s-v1.35.4" / "bin"
    with pytest.raises(binaries.MissingBinary, match=r"K8S_VERSION=v1\.35\.4 make binaries"):
        binaries.binary(binaries.CONTROLLER_MANAGER)


@pytest.mark.parametrize(
    ("version", "gates"),
    [
        pytest.param(
            "v1.37.2",
            {
                "GenericWorkload": True,
                "TopologyAwareWorkloadScheduling": True,
                "WorkloadWithJob": True,
            },
            id="1.37 turns on the Workload API, its topology constraints and Jobs' PodGroups",
        ),
        pytest.param("v1.36.3", {}, id="1.36 keeps its defaults"),
        pytest.param("v1.35.4", {}, id="1.35 keeps its defaults"),
    ],
)
def test_feature_gates(version: str, gates: dict[str, bool]) -> None:
    assert plane.feature_gates(version) == gates


@pytest.mark.parametrize(
    ("wanted", "says"),
    [
        pytest.param("bogus", "supported versions are", id="not a version"),
        pytest.param("v1.35.1", "v1.35 is pinned at v1.35.4", id="another patch"),
    ],
)
def test_cluster_up_refuses_an_unsupported_version(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    wanted: str,
    says: str,
) -> None:
    """A bad $K8S_VERSION is a usage error (exit 2, as hack/build.sh), before anything starts."""
    from scheduler.cli import main

    monkeypatch.setenv("K8S_VERSION", wanted)
    assert main(["cluster", "up", "--dir", str(tmp_path / "c"), "--nodes", "1"]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
