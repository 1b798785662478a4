"""The daemon's venues: one ``VenueHealth`` and one ``VenueMonitor`` per venue it trades on.

Every account of a venue gets that venue's health (``make_trader(venue_health=...)``); the
monitor's client is the venue adapter of the venue's first account, used for public calls
only. Transitions are logged once each, with the reason: ``venue_down`` (the venue is
down: its accounts are parked), ``venue_up`` (it is back, or no longer restricted: each
account resumes at its own staggered time, so the venue's workers are woken to wait for
exactly that) and ``venue_restricted`` (cancel-only or post-only: no entries, exits wait).

Until the venue hub (``bot/venue/hub.py``) holds each venue's health, this is the one place
the daemon keeps them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from bot.brokers import venues
from bot.brokers.base import Broker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config.settings import Settings
from bot.errors import describe
from bot.model import BrokerSpec
from bot.venue.health import HealthConfig, VenueHealth, VenueState, VenueTransition
from bot.venue.monitor import VenueMonitor


def health_config(settings: Settings) -> HealthConfig:
    """The venue-health settings from NIJA_VENUE_*."""
    return HealthConfig(
        failure_window_seconds=settings.venue_failure_window_seconds,
        probe_interval_seconds=settings.venue_probe_seconds,
        resume_window_seconds=settings.venue_resume_seconds,
    )


class VenueWatch:
    """The health and the monitor of every venue the daemon's accounts trade on."""

    def __init__(
        self,
        settings: Settings,
        specs: Iterable[BrokerSpec],
        client_factory: Callable[[BrokerSpec], Broker],
        *,
        wake: Callable[[str], None],
        changed: Callable[[], None] = lambda: None,
        clock: Clock = SYSTEM_CLOCK,
        log=None,
    ) -> None:
        self.settings = settings
        self._client_factory = client_factory
        self._wake = wake  # wakes the workers of a venue by name
        self._changed = changed  # status.json has news
        self._clock = clock
        self.log = log or structlog.get_logger()
        self.health: dict[str, VenueHealth] = {}
        self._first: dict[str, BrokerSpec] = {}  # the spec whose adapter the monitor uses
        self.monitors: dict[str, VenueMonitor] = {}
        config = health_config(settings)
        for spec in specs:
            name = spec.account.broker
            if name in self.health:
                continue
            self._first[name] = spec
            self.health[name] = VenueHealth(name, clock, random.Random(), config)
            self.health[name].add_listener(self._on_change)

    def for_account(self, spec: BrokerSpec) -> VenueHealth | None:
        """The health of ``spec``'s venue (shared by all its accounts)."""
        return self.health.get(spec.account.broker)

    def state_of(self, broker: str) -> str | None:
        """``up``, ``down``, ``cancel_only`` or ``post_only`` for status.json's account lines."""
        health = self.health.get(broker)
        return None if health is None else health.state.value

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """status.json's ``venues`` section."""
        return {name: health.snapshot() for name, health in sorted(self.health.items())}

    # -- monitors ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start one monitor thread per venue (a venue whose client cannot be built is logged
        and goes without: its accounts still report their failures)."""
        for name, spec in self._first.items():
            try:
                client = self._client_factory(spec)
            except Exception as exc:  # the account's own problem: its funded check says so
                self.log.warning("venue_monitor_not_started", venue=name, error=describe(exc))
                continue
            symbols = spec.symbols or venues.VENUES.get(name, venues.PAPER).default_symbols
            monitor = VenueMonitor(
                self.health[name],
                client,
                self._clock,
                probe_symbol=symbols[0],
                timeframe=self.settings.timeframe,
                status_interval_seconds=self.settings.venue_status_seconds,
                log=self.log.bind(venue=name),
            )
            self.monitors[name] = monitor
            monitor.start()

    def stop(self) -> None:
        """Stop every monitor and close its client."""
        for monitor in self.monitors.values():
            monitor.stop()
            monitor.client.close()

    # -- transitions -------------------------------------------------------------------------
    def _on_change(self, move: VenueTransition) -> None:
        fields = {"venue": move.venue, "state": move.new.value, "was": move.old.value}
        if move.new is VenueState.DOWN:
            self.log.warning("venue_down", reason=move.reason, **fields)
        elif move.new is VenueState.UP or move.old is VenueState.DOWN:
            self.log.info("venue_up", reason=move.reason, **fields)
        else:
            self.log.warning("venue_restricted", reason=move.reason, **fields)
        if move.old is VenueState.DOWN:
            self._wake(move.venue)  # each waits only until its own resume time
        self._changed()
