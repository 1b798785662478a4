"""The one source of time. Components receive a ``Clock`` and never read time themselves.

The kind of time is in the method's name, never in a variable's:

* ``wall()``: seconds since the epoch (UTC), for what is stored or shown;
* ``monotonic()``: seconds that never go back, for waits, timeouts and intervals;
* ``utc_now()``: the wall time as an aware ``datetime`` in UTC.

``SystemClock`` reads the machine's clocks; ``nija_testkit.clock.FakeClock`` is moved
by hand in tests. This is the only module that calls ``time.time()``,
``time.monotonic()`` or ``datetime.now()``. ``iso_text`` is the one way a wall time is
written as ISO-8601 text in what the daemon shows (status.json, the log, the API);
``IsoText`` formats a time shown again and again (status.json every second) once per change.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, overload


class Clock(Protocol):
    """What every component that needs the time is given."""

    def wall(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back."""
        ...

    def utc_now(self) -> datetime:
        """The wall time as an aware UTC datetime."""
        ...


class SystemClock:
    """The machine's clocks."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def utc_now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()
"""The one ``SystemClock``: stateless, so sharing it is safe."""


@overload
def iso_text(wall: float) -> str: ...
@overload
def iso_text(wall: float | None) -> str | None: ...
def iso_text(wall: float | None) -> str | None:
    """``wall`` (seconds since the epoch) as ISO-8601 UTC text, as ``datetime.isoformat``
    writes it (``2026-01-01T00:00:00.250000+00:00``: microseconds unless there are none,
    ``+00:00``); None for None."""
    return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat()


class IsoText:
    """``iso_text`` of a wall time; the last time's text is kept, so a time shown unchanged
    is not formatted again.

    One per shown time (an account's last cycle...). Any thread may call it: the time
    and its text are swapped as one tuple.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[float | None, str | None] = (None, None)

    def __call__(self, wall: float | None) -> str | None:
        """``wall`` (seconds since the epoch) as ISO-8601 UTC text; None for None."""
        last = self._last
        if last[0] == wall:
            return last[1]
        text = iso_text(wall)
        self._last = (wall, text)
        return text
