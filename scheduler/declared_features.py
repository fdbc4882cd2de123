"""Node declared features: which features a pod needs its node to declare (upstream's
component-helpers `nodedeclaredfeatures`, v0.37.2), for the NodeDeclaredFeatures plugin.

A kubelet lists in `status.declaredFeatures` the features it supports, sorted by name (the API
server rejects an unsorted or duplicated list). A pod that uses one of them can only run on a
node that declares it. REGISTRY names every feature upstream knows and, for each, which pod
fields make scheduling the pod need it; most of them only matter to updates of a running pod
(in-place resize), which the scheduler never judges, so they never make a pod need them here.

A feature set is a bitmask over the registry's names in sorted order (upstream's
FeatureMapper): bit i stands for `names[i]`. A node's features that the registry does not know
are dropped (upstream's TryMap): no pod can need them.

A feature may carry a max version: once every kubelet the control plane may talk to has it,
pods stop needing it. Upstream compares it with the scheduler binary's version; berth's stand-in
is TARGET_VERSION, the release whose behaviour it mirrors. No feature sets one yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
Version = tuple[int, int, int]  # major, minor, patch

TARGET_VERSION: Version = (1, 37, 2)

# A feature set must fit NodeTable's int64 column, sign bit left alone.
MAX_FEATURES = 63


def _never(spec: JSON) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Feature:
    """One declared feature. `needed_by(spec)` says whether scheduling a pod with this spec
    needs it (upstream's InferForScheduling); `max_version` is the last release (inclusive)
    whose scheduler still asks for it, None for no end."""

    name: str
    needed_by: Callable[[JSON], bool] = _never
    max_version: Version | None = None


class Registry:
    """Features sorted by name, each owning one bit (upstream's Framework over its registry)."""

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features = tuple(sorted(features, key=lambda f: f.name))
        if len(self.features) > MAX_FEATURES:
            raise ValueError(f"{len(self.features)} declared features do not fit in a bitmask")
        self.names = tuple(f.name for f in self.features)
        self._bits = {name: 1 << i for i, name in enumerate(self.names)}
        # Most features never matter when a pod is scheduled: compiling a pod asks only the rest.
        self._inferred = tuple(
            (1 << i, f) for i, f in enumerate(self.features) if f.needed_by is not _never
        )

    def required(self, spec: JSON, target: Version = TARGET_VERSION) -> int:
        """The features scheduling a pod with this spec needs (InferForPodScheduling); a
        feature past its max version is needed by nobody."""
        bits = 0
        for bit, feature in self._inferred:
            if feature.max_version is not None and target > feature.max_version:
                continue
            if feature.needed_by(spec):
                bits |= bit
        return bits

    def declared(self, names: Iterable[str]) -> int:
        """A node's declared features as a set, unknown names dropped (TryMap). Upstream walks
        the sorted list against the sorted registry; the API server keeps the list sorted, so
        plain membership gives the same set."""
        bits = 0
        for name in names:
            bits |= self._bits.get(name, 0)
        return bits

    def names_of(self, bits: int) -> tuple[str, ...]:
        """The names in a feature set, sorted (Unmap)."""
        return tuple(name for i, name in enumerate(self.names) if bits >> i & 1)


# --- what makes a pod need a feature when it is scheduled -----------------------------------


def _restart_all_containers(spec: JSON) -> bool:
    """A restart rule of an app or init container whose action restarts every container."""
    for field_name in ("containers", "initContainers"):
        for container in spec.get(field_name) or ():
            for rule in container.get("restartPolicyRules") or ():
                if rule.get("action") == "RestartAllContainers":
                    return True
    return False


def _user_namespace_with_host_network(spec: JSON) -> bool:
    """hostNetwork in a user namespace: hostUsers must be set to false (unset means true)."""
    return bool(spec.get("hostNetwork")) and spec.get("hostUsers") is False


def _bind_mount_options(spec: JSON) -> bool:
    """A volume mount of any container (app, init or ephemeral) with bindMountOptions."""
    for field_name in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(field_name) or ():
            for mount in container.get("volumeMounts") or ():
                if mount.get("bindMountOptions"):
                    return True
    return False


# Upstream's features.AllFeatures. Those without `needed_by` concern pod updates or the kubelet
# alone (upstream's DynamicResources checks DRAOptionalNodeOperations itself, on allocated
# claims).
REGISTRY = Registry(
    (
        Feature("RestartAllContainersOnContainerExits", _restart_all_containers),
        Feature("InPlacePodLevelResourcesVerticalScaling"),
        Feature("ExtendWebSocketsToKubelet"),
        Feature("InPlacePodVerticalScalingInitContainers"),
        Feature("InPlacePodVerticalScalingMemoryBackedVolumes"),
        Feature("UserNamespacesHostNetworkSupport", _user_namespace_with_host_network),
        Feature("DRANodeAllocatableResources"),
        Feature("VolumeBindMountOptions", _bind_mount_options),
        Feature("DRAOptionalNodeOperations"),
    )
)
