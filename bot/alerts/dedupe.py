"""No storms: repeats are held back, so is everything over a rate, and a summary says what.

``Throttle.admit`` decides for each alert, in order:

* **duplicate**: the same alert (kind, subject, topic) was sent less than
  ``dedupe_seconds`` ago: a flapping account or a crash loop says so once per window;
* **rate limited**: ``max_per_minute`` alerts were sent in the last 60 s (a burst: many
  accounts at once);
* else **send**.

What was held back is counted by kind and subject, and ``summary`` turns it into one
alert, "N alerts suppressed ...": the first a minute after the first alert held back
(sooner when the window is shorter), then at most one per ``dedupe_seconds``, and one at
the end (``final``). The summary itself is never held back. Plain data, no clock and no
lock of its own: the notifier's one thread calls it with the monotonic time.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from enum import StrEnum

from bot.alerts.events import DAEMON, AlertEvent, AlertKind

__all__ = ["RATE_WINDOW_SECONDS", "Throttle", "Verdict"]

RATE_WINDOW_SECONDS = 60.0
# The first summary after a quiet spell comes this soon (or after the dedupe window, if shorter).
FIRST_SUMMARY_SECONDS = 60.0
SUBJECTS_SHOWN = 3  # per kind in a summary; the rest are counted
_PRUNE_AT = 4096  # remembered alerts before the expired ones are forgotten


class Verdict(StrEnum):
    """What becomes of one alert; the held-back values are the metrics' ``reason``."""

    SEND = "send"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"


class Throttle:
    """Dedupe window per alert, a global rate limit, and the summary of what was held back."""

    def __init__(self, dedupe_seconds: float, max_per_minute: int) -> None:
        if dedupe_seconds <= 0 or max_per_minute < 1:
            raise ValueError("dedupe_seconds must be > 0 and max_per_minute >= 1")
        self.dedupe_seconds = dedupe_seconds
        self.max_per_minute = max_per_minute
        self._sent_at: dict[tuple[AlertKind, str, str], float] = {}  # key -> last sent
        self._recent: deque[float] = deque()  # times of the sends in the last minute
        self._held: dict[AlertKind, dict[str, int]] = {}  # kind -> subject -> count
        self._held_since: float | None = None  # monotonic time of the first held back
        self._held_since_wall: float | None = None
        self._last_summary: float | None = None

    def admit(self, event: AlertEvent, now: float) -> Verdict:
        """Send ``event`` now, or hold it back (counted for the summary)."""
        last = self._sent_at.get(event.key)
        if last is not None and now - last < self.dedupe_seconds:
            self._hold(event, now)
            return Verdict.DUPLICATE
        while self._recent and now - self._recent[0] >= RATE_WINDOW_SECONDS:
            self._recent.popleft()
        if len(self._recent) >= self.max_per_minute:
            self._hold(event, now)
            return Verdict.RATE_LIMITED
        self._recent.append(now)
        self._sent_at[event.key] = now
        if len(self._sent_at) > _PRUNE_AT:
            self._forget(now)
        return Verdict.SEND

    @property
    def held(self) -> int:
        """Alerts held back since the last summary."""
        return sum(sum(subjects.values()) for subjects in self._held.values())

    def summary(self, now: float, wall: float, *, final: bool = False) -> AlertEvent | None:
        """The summary of what was held back, when one is due (``final``: whenever any was)."""
        if self._held_since is None:
            return None
        if not final:
            if now - self._held_since < min(FIRST_SUMMARY_SECONDS, self.dedupe_seconds):
                return None
            if self._last_summary is not None and now - self._last_summary < self.dedupe_seconds:
                return None
        count, since = self.held, self._held_since_wall or wall
        kinds = [_kind_line(kind, subjects) for kind, subjects in self._held.items()]
        stamp = datetime.fromtimestamp(since, UTC).strftime("%H:%M:%SZ")
        text = (
            f"{count} alert(s) suppressed since {stamp} (repeats within "
            f"{self.dedupe_seconds:g} s, or over {self.max_per_minute} a minute): "
            + "; ".join(kinds)
        )
        self._held.clear()
        self._held_since = self._held_since_wall = None
        self._last_summary = now
        return AlertEvent(AlertKind.SUPPRESSED, DAEMON, text, wall)

    def _hold(self, event: AlertEvent, now: float) -> None:
        subjects = self._held.setdefault(event.kind, {})
        subjects[event.subject] = subjects.get(event.subject, 0) + 1
        if self._held_since is None:
            self._held_since, self._held_since_wall = now, event.at

    def _forget(self, now: float) -> None:
        expired = [k for k, at in self._sent_at.items() if now - at >= self.dedupe_seconds]
        for key in expired:
            del self._sent_at[key]


def _kind_line(kind: AlertKind, subjects: dict[str, int]) -> str:
    """``account_failing ×3 (user/bob/KRAKEN ×2, user/eve/OKX)``."""
    total = sum(subjects.values())
    shown = [f"{s} ×{n}" if n > 1 else s for s, n in list(subjects.items())[:SUBJECTS_SHOWN]]
    more = len(subjects) - SUBJECTS_SHOWN
    if more > 0:
        shown.append(f"{more} more")
    return f"{kind.value} ×{total} ({', '.join(shown)})"
