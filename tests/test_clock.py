"""bot.clock.iso_text, the one ISO-8601 text of a wall time, and IsoText, which formats it
once per change."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import IsoText, iso_text
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


def test_iso_text_is_isoformat_in_utc_as_status_json_and_the_api_have_always_shown_it():
    """status.json's times (pauses, overrides, venues, cycles) keep their format: UTC with
    ``+00:00``, microseconds unless there are none."""
    assert iso_text(None) is None
    assert iso_text(DEFAULT_WALL) == "2026-01-01T00:00:00+00:00"
    assert iso_text(DEFAULT_WALL + 0.000001) == "2026-01-01T00:00:00.000001+00:00"
    assert iso_text(DEFAULT_WALL + 3661.5) == "2026-01-01T01:01:01.500000+00:00"
    assert datetime.fromisoformat(iso_text(DEFAULT_WALL + 7.25)).timestamp() == DEFAULT_WALL + 7.25
