"""One venue's background check: its status check while it is up, its probe while it is down.

One daemon thread per venue (``venue-<NAME>``) runs ``step`` about once a second. Each
step does at most one thing, each request bounded by the client's call timeout (the adapter's
``timeout_seconds``), so a hung venue holds up only its own monitor, never the watchdog or
an account:

* while the venue is up (or restricted) and has a status check: one check every
  ``status_interval_seconds``, its answer to ``VenueHealth.record_status`` (a failed check
  counts as a failed public fetch);
* while it is down and a probe is due (``VenueHealth.probe_due``, one jittered probe per
  interval): the status check where there is one; where there is none, or the venue was put
  down by its accounts or its public data rather than by its status check, also one public
  market request (candles of one symbol), since the status check alone would not prove
  that data is served again.

The client is a ``Broker`` used for public calls only (the venue's public-data client).
"""

from __future__ import annotations

import threading

import structlog

from bot.brokers.base import Broker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import describe
from bot.model import VenueCondition
from bot.venue.health import DownCause, VenueHealth, VenueState

TICK_SECONDS = 1.0  # how often the thread looks at what is due
_RESTRICTED = {
    VenueCondition.CANCEL_ONLY: VenueState.CANCEL_ONLY,
    VenueCondition.POST_ONLY: VenueState.POST_ONLY,
}


class VenueMonitor:
    """Runs one venue's status checks and probes in its own thread."""

    def __init__(
        self,
        health: VenueHealth,
        client: Broker,
        clock: Clock = SYSTEM_CLOCK,
        *,
        probe_symbol: str,
        timeframe: str = "5m",
        status_interval_seconds: float = 60.0,
        log=None,
    ) -> None:
        if not status_interval_seconds > 0:
            raise ValueError(
                f"status_interval_seconds must be positive, got {status_interval_seconds!r}"
            )
        self.health = health
        self.client = client
        self.has_status_check = client.has_status_check
        self._clock = clock
        self._symbol = probe_symbol
        self._timeframe = timeframe
        self._interval = status_interval_seconds
        self._next_status = clock.monotonic()  # the first check at once
        self.log = log or structlog.get_logger().bind(venue=health.name)
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Start the monitor's daemon thread."""
        self.thread = threading.Thread(
            target=self._run, name=f"venue-{self.health.name}", daemon=True
        )
        self.thread.start()
        return self.thread

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread; one in a venue call is left behind (a daemon thread). The client
        is its owner's to close."""
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step()
            except Exception as exc:  # a bug here must not end the venue's monitoring
                self.log.exception("venue_monitor_failed", error=describe(exc))
                wait = TICK_SECONDS
            self._stop.wait(wait)

    # -- one step --------------------------------------------------------------------------
    def step(self) -> float:
        """Do what is due now (at most one status check or one probe); the seconds to wait."""
        if self.health.state is VenueState.DOWN:
            if self.health.probe_due():
                self.probe()
            return TICK_SECONDS
        now = self._clock.monotonic()
        if self.has_status_check and now >= self._next_status:
            self._next_status = now + self._interval
            self.check_status()
        return TICK_SECONDS

    def check_status(self) -> None:
        """One status check of the venue that is up: its answer to the venue's health."""
        try:
            status = self.client.fetch_status()
        except Exception as exc:  # the adapter's own types; a failure is a public fetch's
            self.health.public_failed(exc, "status")
            self.log.warning("venue_status_check_failed", error=describe(exc))
            return
        self.health.record_status(status)

    def probe(self) -> None:
        """One probe of the down venue: the status check and/or one public market request."""
        requests, state, reason = 0, VenueState.UP, ""
        market_too = True
        if self.has_status_check:
            requests += 1
            try:
                status = self.client.fetch_status()
            except Exception as exc:
                self._probed(False, describe(exc), state, requests)
                return
            if status.condition is VenueCondition.MAINTENANCE:
                self._probed(False, status.message, state, requests)
                return
            state = _RESTRICTED.get(status.condition, VenueState.UP)
            reason = status.message
            known = status.condition is not VenueCondition.UNKNOWN
            market_too = not known or self.health.down_cause is not DownCause.STATUS
        if market_too:
            requests += 1
            try:
                self.client.fetch_candles(self._symbol, self._timeframe, 2)
            except Exception as exc:
                self._probed(False, describe(exc), state, requests)
                return
            answered = f"{self._symbol} candles answered"
            reason = f"{reason}; {answered}" if reason else answered
        self._probed(True, reason, state, requests)

    def _probed(self, ok: bool, reason: str, state: VenueState, requests: int) -> None:
        self.log.info("venue_probe", ok=ok, reason=reason, requests=requests)
        self.health.record_probe(ok, reason, state, requests)
