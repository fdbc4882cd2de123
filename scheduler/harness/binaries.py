"""Where the control-plane binaries that `make binaries` builds are cached, per Kubernetes version.

The versions are the ones hack/ has a Go module for (hack/v1.MINOR/go.mod pins the patch);
$K8S_VERSION picks one ("v1.35", "1.35" or the exact patch), the newest is the default.
"""

from __future__ import annotations

import os
from pathlib import Path

# Keep in step with hack/v1.*/go.mod (tests/unit/test_harness.py checks it).
SUPPORTED = {"1.37": "v1.37.2", "1.36": "v1.36.3", "1.35": "v1.35.4"}
DEFAULT_MINOR = "1.37"

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
KUBECTL = "kubectl"
KWOK = "kwok"


class MissingBinary(RuntimeError):
    """A control-plane binary is not in the cache."""


class UnsupportedVersion(MissingBinary):
    """$K8S_VERSION names a version hack/ has no module for (so no binary can be built)."""


def resolve(wanted: str | None) -> str:
    """The exact patch version for a requested one ("v1.35", "1.35.4", None = the default).

    Raises UnsupportedVersion naming the supported versions."""
    if not wanted:
        return SUPPORTED[DEFAULT_MINOR]
    bare = wanted.removeprefix("v")
    minor = ".".join(bare.split(".")[:2])
    pinned = SUPPORTED.get(minor)
    if pinned is None or bare not in (minor, pinned.removeprefix("v")):
        hint = f" (v{minor} is pinned at {pinned})" if pinned else ""
        raise UnsupportedVersion(
            f"K8S_VERSION={wanted}: supported versions are {', '.join(SUPPORTED.values())}{hint}"
        )
    return pinned


def k8s_version() -> str:
    """The version selected by $K8S_VERSION (default: the newest supported)."""
    return resolve(os.environ.get("K8S_VERSION"))


def bin_dir() -> Path:
    """$BERTH_BIN_DIR, else ~/.cache/berth/k8s-<version>/bin (as hack/build.sh writes it)."""
    if env := os.environ.get("BERTH_BIN_DIR"):
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "berth" / f"k8s-{k8s_version()}" / "bin"


def binary(name: str) -> Path:
    """The path of one binary; raises MissingBinary with the command that builds it."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        version = k8s_version()
        raise MissingBinary(
            f"{name} not found at {path}: run `K8S_VERSION={version} make binaries` (builds "
            f"etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok "
            f"{version} into {bin_dir()})"
        )
    return path
