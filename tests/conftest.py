"""Shared fixtures and markers for the whole suite.

Tests under ``tests/system/`` start the real daemon (bot.py in a subprocess) and are
marked ``system``; ``./scripts/test.sh -m "not system"`` is the fast loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SYSTEM_DIR = Path(__file__).parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SYSTEM_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.system)
