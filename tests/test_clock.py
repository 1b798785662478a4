"""bot.clock.IsoText: a wall time's ISO-8601 text, formatted once per change."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import IsoText
from nija_testkit.clock import DEFAULT_WALL


def test_iso_text_formats_as_isoformat_and_keeps_the_last_text():
    text = IsoText()
    assert text(None) is None
    first = text(DEFAULT_WALL + 0.25)
    assert first == datetime.fromtimestamp(DEFAULT_WALL + 0.25, UTC).isoformat()
    assert first == "2026-01-01T00:00:00.250000+00:00"
    assert text(DEFAULT_WALL + 0.25) is first  # kept, not formatted again
    assert text(DEFAULT_WALL + 60) == "2026-01-01T00:01:00+00:00"
    assert text(None) is None  # and back to no time at all
    assert text(DEFAULT_WALL + 0.25) == first
