"""Markers shared by the unit tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Registered here so that `-m "not index"` runs the unit tests offline.
    config.addinivalue_line("markers", "index: runs uv against the package index")
