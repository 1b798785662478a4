"""The venues' real answers (captured, or their documented examples), for contract tests.

They live outside the repository, in the ``shared/venue-fixtures`` folder beside it
(``NIJA_VENUE_FIXTURES`` overrides the place); a user's clone has no such folder, and the
tests that need it skip. Fixture data is read from there, never copied into the repo.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV_VAR = "NIJA_VENUE_FIXTURES"
# <repo>/nija_testkit/fixtures.py → <repo>/../shared/venue-fixtures
_BESIDE_THE_REPO = Path(__file__).resolve().parents[1] / ".." / "shared" / "venue-fixtures"


def fixtures_dir() -> Path | None:
    """The venue fixtures folder, or None when there is none."""
    override = os.environ.get(ENV_VAR)
    folder = Path(override) if override else _BESIDE_THE_REPO
    return folder.resolve() if folder.is_dir() else None


def load_fixture(venue_file: str) -> dict[str, Any]:
    """One venue's fixture file (``"kraken.json"``); skips the calling test when absent."""
    import pytest  # only tests call this; the test kit itself does not need pytest

    folder = fixtures_dir()
    if folder is None:
        pytest.skip(
            "venue fixtures not found: no ../shared/venue-fixtures beside the repository "
            f"(a user's clone has none); set {ENV_VAR} to their folder to run these tests"
        )
    path = folder / venue_file
    if not path.is_file():
        pytest.skip(f"{venue_file} is not among the venue fixtures in {folder}")
    return json.loads(path.read_text(encoding="utf-8"))
