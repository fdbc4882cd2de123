"""The selector PodTopologySpread's default constraints count pods with.

A pod without topologySpreadConstraints of its own is spread by the profile's default
constraints (the system defaults, or `defaultConstraints` with `defaultingType: List`), over
the pods that the same workload objects select. As upstream's helper.DefaultSelector builds it:

- the selectors of the Services in the pod's namespace whose (non-nil) selector matches the
  pod's labels, merged into one label set;
- if the pod's controller is a ReplicationController, its selector merged into that set;
- if it is a ReplicaSet or StatefulSet (apps/v1), its label selector's requirements added to it.

An empty result means no default constraints (a pod that nothing selects is not spread). The
objects arrive through informers (App); this module keeps only what the selector needs.
"""

from __future__ import annotations

from typing import Any

from scheduler.labels import LabelSelector, Requirement
from scheduler.model import InvalidObject, PodInfo, label_selector

JSON = dict[str, Any]

SERVICE, REPLICATION_CONTROLLER, REPLICA_SET, STATEFUL_SET = (
    "Service",
    "ReplicationController",
    "ReplicaSet",
    "StatefulSet",
)
# The controller kinds upstream looks at, by (apiVersion, kind) of the ownerReference.
_CONTROLLERS = {
    ("v1", REPLICATION_CONTROLLER),
    ("apps/v1", REPLICA_SET),
    ("apps/v1", STATEFUL_SET),
}


class SelectorSources:
    """Services, ReplicationControllers, ReplicaSets and StatefulSets, reduced to selectors."""

    def __init__(self) -> None:
        # namespace -> service name -> spec.selector (services with a nil selector are dropped:
        # they match nothing, not everything)
        self.services: dict[str, dict[str, dict[str, str]]] = {}
        self.replication_controllers: dict[tuple[str, str], dict[str, str]] = {}
        # (kind, namespace, name) -> compiled spec.selector of a ReplicaSet / StatefulSet
        self.label_selectors: dict[tuple[str, str, str], LabelSelector] = {}
        # PodTopologySpread asks several times per pod and replicas ask alike: answers are
        # kept until any object changes.
        self._answers: dict[tuple[Any, ...], LabelSelector | None] = {}

    def apply(self, kind: str, obj: JSON, *, deleted: bool) -> None:
        """Record (or forget) one object of `kind`; raises InvalidObject for a bad selector."""
        self._answers.clear()
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        selector = (obj.get("spec") or {}).get("selector")
        if kind == SERVICE:
            services = self.services.setdefault(namespace, {})
            if deleted or selector is None:
                services.pop(name, None)
            else:
                services[name] = {str(k): str(v) for k, v in selector.items()}
        elif kind == REPLICATION_CONTROLLER:
            if deleted or selector is None:
                self.replication_controllers.pop((namespace, name), None)
            else:
                self.replication_controllers[(namespace, name)] = {
                    str(k): str(v) for k, v in selector.items()
                }
        elif kind in (REPLICA_SET, STATEFUL_SET):
            key = (kind, namespace, name)
            if deleted:
                self.label_selectors.pop(key, None)
            else:
                try:
                    self.label_selectors[key] = label_selector(selector, "spec.selector")
                except InvalidObject:
                    # upstream skips a selector it cannot convert; so does the default selector
                    self.label_selectors.pop(key, None)
                    raise
        else:
            raise ValueError(f"unknown kind {kind!r}")

    def default_selector(self, pod: PodInfo) -> LabelSelector | None:
        """The pods to spread `pod` against, or None when nothing selects it."""
        key = (pod.namespace, tuple(sorted(pod.labels.items())), pod.controller)
        try:
            return self._answers[key]
        except KeyError:
            if len(self._answers) >= 10_000:  # bounded: unique labels must not grow it forever
                self._answers.clear()
            answer = self._answers[key] = self._build(pod)
            return answer

    def _build(self, pod: PodInfo) -> LabelSelector | None:
        merged: dict[str, str] = {}
        for selector in self.services.get(pod.namespace, {}).values():
            if all(pod.labels.get(k) == v for k, v in selector.items()):
                merged.update(selector)
        extra: tuple[Requirement, ...] = ()
        owner = pod.controller
        if owner is not None and (owner.api_version, owner.kind) in _CONTROLLERS:
            if owner.kind == REPLICATION_CONTROLLER:
                merged.update(self.replication_controllers.get((pod.namespace, owner.name), {}))
            else:
                found = self.label_selectors.get((owner.kind, pod.namespace, owner.name))
                if found is not None and not found.nothing:
                    extra = found.requirements
        requirements = tuple(Requirement(k, "In", (v,)) for k, v in sorted(merged.items()))
        if not requirements and not extra:
            return None
        return LabelSelector(requirements + extra)
