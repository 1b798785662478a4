"""A full disk, told once: then at most once a minute while it lasts, and once when it is over.

The state store, status.json and nija.log share a disk. When it fills, every cycle of
every account and every status write (about once a second) fails the same way; one
``disk_full`` line says so, a repeat at most every ``repeat_seconds`` says it still is
(with how many failures were not logged), and ``disk_full_over`` says when every
source that failed has written again. Each failure is still counted where it happened
(a store failure against its account).
"""

from __future__ import annotations

import threading
from typing import Any

from bot.clock import Clock

DISK_FULL_REPEAT_SECONDS = 60.0
FIX = "free space on the disk of NIJA_DATA_DIR / NIJA_LOG_FILE"


class DiskFullNotice:
    """Logs ``disk_full`` for failures from any thread, at most once every ``repeat_seconds``.

    ``failed(source, error)`` reports a write that failed for lack of space; ``wrote(source)``
    a write that succeeded. ``source`` names what was written (``store``, ``status.json``).
    """

    def __init__(self, log: Any, clock: Clock, repeat_seconds: float = DISK_FULL_REPEAT_SECONDS):
        self._log = log
        self._clock = clock
        self._repeat = repeat_seconds
        self._lock = threading.Lock()
        self._failing: set[str] = set()  # sources whose last write failed
        self._last_told: float | None = None  # monotonic time of the last disk_full line
        self._untold = 0  # failures since that line
        self._told = False  # a disk_full line awaits its disk_full_over

    def failed(self, source: str, error: str) -> None:
        """A write of ``source`` failed because the disk is full; ``error`` describes it."""
        now = self._clock.monotonic()
        with self._lock:
            self._failing.add(source)
            if self._last_told is not None and now - self._last_told < self._repeat:
                self._untold += 1
                return
            untold, self._untold = self._untold, 0
            self._last_told, self._told = now, True
        self._log.error(
            "disk_full",
            where=source,
            error=error,
            not_logged=untold or None,
            fix=FIX,
            repeat_every_s=self._repeat,  # at most, while it lasts
        )

    def wrote(self, source: str) -> None:
        """A write of ``source`` succeeded; once every failing source has, the disk is fine."""
        with self._lock:
            if source not in self._failing:
                return
            self._failing.discard(source)
            if self._failing or not self._told:
                return
            self._told = False
            untold, self._untold = self._untold, 0
        self._log.info("disk_full_over", not_logged=untold or None)


__all__ = ["DISK_FULL_REPEAT_SECONDS", "DiskFullNotice"]
