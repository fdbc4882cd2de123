"""Where the control-plane binaries that `make binaries` builds are cached."""

from __future__ import annotations

import os
from pathlib import Path

K8S_VERSION = "v1.33.13"  # keep in step with hack/go.mod

ETCD = "etcd"
APISERVER = "kube-apiserver"
KUBE_SCHEDULER = "kube-scheduler"
KUBECTL = "kubectl"
KWOK = "kwok"


class MissingBinary(RuntimeError):
    """A control-plane binary is not in the cache."""


def bin_dir() -> Path:
    """$BERTH_BIN_DIR, else ~/.cache/berth/k8s-<version>/bin (as hack/build.sh writes it)."""
    if env := os.environ.get("BERTH_BIN_DIR"):
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "berth" / f"k8s-{K8S_VERSION}" / "bin"


def binary(name: str) -> Path:
    """The path of one binary; raises MissingBinary with the command that builds it."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise MissingBinary(
            f"{name} not found at {path}: run `make binaries` (builds etcd, kube-apiserver, "
            f"kube-scheduler, kubectl and kwok {K8S_VERSION} into {bin_dir()})"
        )
    return path
