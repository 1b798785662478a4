"""Where the venues' real answers live: ``../shared/venue-fixtures/`` beside the repository.

The fixture files (captured answers and the venues' documented examples, each entry with
its ``source``) are never copied into the repository. A user's clone has no such folder:
``load_fixture`` then skips the test with a reason that says so. ``NIJA_VENUE_FIXTURES``
points elsewhere (a git worktree, a CI checkout laid out differently).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ENV_VARIABLE = "NIJA_VENUE_FIXTURES"
# The repository's sibling folder: <repo>/../shared/venue-fixtures
DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "venue-fixtures"


def fixtures_dir() -> Path | None:
    """The fixture folder (``NIJA_VENUE_FIXTURES``, else the repository's sibling), or None."""
    override = os.environ.get(ENV_VARIABLE, "").strip()
    folder = Path(override) if override else DEFAULT_DIR
    return folder.resolve() if folder.is_dir() else None


def load_fixture(venue_file: str) -> dict[str, Any]:
    """The parsed fixture file ``venue_file`` (e.g. ``"kraken.json"``); the calling test is
    skipped when the fixture folder or the file is absent."""
    folder = fixtures_dir()
    if folder is None:
        override = os.environ.get(ENV_VARIABLE, "").strip()
        where = f"{ENV_VARIABLE}={override} is no folder" if override else f"{ENV_VARIABLE} unset"
        pytest.skip(
            f"venue fixtures not found: no {DEFAULT_DIR} beside the repository"
            f" and {where} (a plain clone has no shared/ folder)"
        )
    # SOURCES.md names them fixtures/*.json; the folder may hold them at its top level too.
    for path in (folder / venue_file, folder / "fixtures" / venue_file):
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    pytest.skip(f"venue fixture {venue_file} is not in {folder}")
