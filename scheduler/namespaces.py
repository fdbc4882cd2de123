"""Namespace labels, for inter-pod affinity terms with a namespaceSelector.

A pure holder: the app's event handlers feed it from a Namespace list+watch, plugins read it
through the Handle (`handle.namespaces`). `version` moves on every change, so a plugin can keep
results that depend on namespace labels until it does.
"""

from __future__ import annotations

from collections.abc import Mapping


class NamespaceLabels:
    """Namespace name -> its labels."""

    def __init__(self, labels: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.labels: dict[str, dict[str, str]] = {k: dict(v) for k, v in (labels or {}).items()}
        self.version = 0

    def get(self, name: str) -> dict[str, str]:
        return self.labels.get(name, {})

    def set(self, name: str, labels: Mapping[str, str]) -> bool:
        """Record `name`'s labels; True when they changed (or the namespace is new)."""
        if name in self.labels and self.labels[name] == labels:
            return False
        self.labels[name] = dict(labels)
        self.version += 1
        return True

    def delete(self, name: str) -> None:
        if self.labels.pop(name, None) is not None:
            self.version += 1
