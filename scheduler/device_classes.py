"""DeviceClasses (resource.k8s.io/v1): their selectors and config (which DynamicResources'
allocator applies), and the extended resource names they back.

Since DRAExtendedResource (GA in v1.37) a DeviceClass lets pods ask for its devices with an
ordinary extended-resource request: by its `spec.extendedResourceName`, or by the implicit name
`deviceclass.resource.kubernetes.io/<class name>` that every class has. NodeResourcesFit and
DynamicResources ask this store which class, if any, backs a resource a pod requests
(upstream's DeviceClassResolver over its extended-resource cache).

Two classes may name the same extendedResourceName (while migrating from one to the other):
the newer one wins, and between classes created in the same second the lower name, as the
API documents (and when one of them is deleted the other backs the name again, which
upstream's cache forgets until that class changes). A pure store: the app feeds it from its
DeviceClass informer (`apply`), plugins read it through the framework handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

IMPLICIT_PREFIX = "deviceclass.resource.kubernetes.io/"


@dataclass(frozen=True, slots=True)
class DeviceClass:
    """What berth reads of one DeviceClass."""

    name: str
    extended_resource_name: str = ""  # spec.extendedResourceName; "" = not set
    created: str = ""  # metadata.creationTimestamp (RFC 3339 in UTC, so it sorts as text)
    # spec.selectors[].cel.expression ("" for a selector of a kind berth does not know).
    selectors: tuple[str, ...] = ()
    config: tuple[JSON, ...] = ()  # spec.config, copied into allocations (source FromClass)

    @property
    def implicit_name(self) -> str:
        return IMPLICIT_PREFIX + self.name

    @classmethod
    def compile(cls, obj: JSON) -> DeviceClass:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        return cls(
            name=str(meta.get("name") or ""),
            extended_resource_name=str(spec.get("extendedResourceName") or ""),
            created=str(meta.get("creationTimestamp") or ""),
            selectors=tuple(
                str(((sel or {}).get("cel") or {}).get("expression") or "")
                for sel in spec.get("selectors") or []
            ),
            config=tuple(spec.get("config") or ()),
        )


class DeviceClassStore:
    """Extended resource name -> the DeviceClass that backs it."""

    def __init__(self) -> None:
        self.classes: dict[str, DeviceClass] = {}
        self._backing: dict[str, str] = {}  # resource name -> class name

    def __bool__(self) -> bool:
        return bool(self._backing)

    def apply(self, obj: JSON, *, deleted: bool) -> DeviceClass:
        """Record (or forget) one DeviceClass; returns it as compiled."""
        device_class = DeviceClass.compile(obj)
        if deleted:
            self.classes.pop(device_class.name, None)
        else:
            self.classes[device_class.name] = device_class
        self._rebuild()
        return device_class

    def device_class(self, resource: str) -> str | None:
        """The name of the class that backs `resource`, or None."""
        return self._backing.get(resource)

    def backed(self, requests: Mapping[str, int]) -> dict[str, str]:
        """The requested (non-zero) resources that a class backs, by name: resource -> class."""
        if not self._backing:
            return {}
        found = {r: c for r, n in requests.items() if n and (c := self._backing.get(r))}
        return dict(sorted(found.items()))

    def _rebuild(self) -> None:
        """Recompute the whole mapping: clusters have a handful of classes, and a rebuild
        cannot leave a stale entry behind when a class changes or loses its name."""
        backing: dict[str, str] = {}
        # Oldest first and, within one timestamp, the higher name first: later entries win.
        ordered = sorted(self.classes.values(), key=lambda c: c.name, reverse=True)
        for device_class in sorted(ordered, key=lambda c: c.created):
            if device_class.extended_resource_name:
                backing[device_class.extended_resource_name] = device_class.name
        for device_class in self.classes.values():
            backing[device_class.implicit_name] = device_class.name
        self._backing = backing
