"""The one source of time. Components receive a ``Clock`` and never read time themselves.

The kind of time is in the method's name, never in a variable's:

* ``wall()``: seconds since the epoch (UTC), for what is stored or shown;
* ``monotonic()``: seconds that never go back, for waits, timeouts and intervals;
* ``utc_now()``: the wall time as an aware ``datetime`` in UTC.

``SystemClock`` reads the machine's clocks; ``nija_testkit.clock.FakeClock`` is moved
by hand in tests. This is the only module that calls ``time.time()``,
``time.monotonic()`` or ``datetime.now()``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


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
