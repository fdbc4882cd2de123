"""Marks every test under tests/e2e and tests/conformance as needing a real API server."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if "/e2e/" in path or "/conformance/" in path:
            item.add_marker(pytest.mark.e2e)
