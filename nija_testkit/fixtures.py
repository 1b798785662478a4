"""Real venue answers for contract tests: where they are, and loading one venue's file.

The fixtures live outside the repository, in the sibling folder ``../shared/venue-fixtures/``
of the checkout (each entry carries its ``source``; never copy them into the repository).
``NIJA_VENUE_FIXTURES`` points elsewhere. In a clone without that folder the tests that need
them skip, saying why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ENV_VARIABLE = "NIJA_VENUE_FIXTURES"
# The repository root is this file's grandparent; the fixtures sit beside the repository.
DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "venue-fixtures"


def fixtures_dir() -> Path | None:
    """The folder of venue fixtures (``$NIJA_VENUE_FIXTURES``, else the repository's sibling
    ``../shared/venue-fixtures``), or None when it does not exist."""
    configured = os.environ.get(ENV_VARIABLE)
    folder = Path(configured) if configured else DEFAULT_DIR
    return folder.resolve() if folder.is_dir() else None


def load_fixture(venue_file: str) -> dict[str, Any]:
    """One venue's fixture file (e.g. ``"coinbase.json"``) as parsed JSON; skips the calling
    test when the fixtures are not available."""
    folder = fixtures_dir()
    if folder is None:
        pytest.skip(
            f"venue fixtures not found (no {DEFAULT_DIR.resolve()} and {ENV_VARIABLE} unset):"
            " they are kept outside the repository"
        )
    # SOURCES.md names them fixtures/<venue>.json; the shared folder holds them at its top.
    for path in (folder / venue_file, folder / "fixtures" / venue_file):
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    pytest.skip(f"venue fixture {venue_file} is not in {folder}")
