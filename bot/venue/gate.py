"""One account's side of its venue's health: the venue's gate before each call, and what the
call's outcome tells the venue.

The venue's health (``bot.venue.health``) is shared by the venue's accounts; the gate is one
account's handle on it, with the account's isolation handle (its breaker, its redactor).
Every call an account makes to its venue passes it: its trading calls
(``bot.engine.guarded.GuardedBroker``) and its funds checks (``bot.daemon.funded``). While
the venue is down, or until the account's staggered resume time, ``VenueParked`` is raised
and nothing is sent. A failure an outage explains (``is_outage``) counts toward declaring
the venue down, and one that happens while it is down is excused (recorded, never counted on
the account's breaker); the few counted before the venue was declared down are forgiven at
the account's next gate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bot.errors import describe
from bot.isolation.handle import AccountHandle
from bot.isolation.manager import classify_failure
from bot.isolation.policy import excuse, is_outage
from bot.venue.health import VenueHealth, VenueState

T = TypeVar("T")


class VenueGate:
    """One account's side of its venue's health: the venue's gate before a call, and what
    the call's outcome tells the venue. Without a health (None) it lets every call through.

    Every call the account makes to its venue passes it: its trading calls
    (``GuardedBroker``) and its funds checks (``bot.daemon.funded``).
    """

    __slots__ = ("handle", "health")

    def __init__(self, handle: AccountHandle, health: VenueHealth | None) -> None:
        self.handle = handle  # the account's: its breaker, and the redactor for the reason
        self.health = health

    @property
    def state(self) -> VenueState:
        """The account's venue as its health says (UP when none is kept)."""
        return VenueState.UP if self.health is None else self.health.state

    def check(self) -> None:
        """Raise ``VenueParked`` while this account must not call its venue.

        While the venue is down, the account's unanswered failures that the outage explains
        are forgiven first: they were the venue's, not the account's.
        """
        venue = self.health
        if venue is None:
            return
        wait = venue.parked(self.handle.key)
        if wait <= 0:
            return
        if venue.state is VenueState.DOWN:
            self.handle.forgive_outage(f"venue {venue.name} down: its failures were the venue's")
        raise venue.parked_error(self.handle.key, wait)

    def call(self, operation: str, fn: Callable[..., T], *args, **kwargs) -> T:
        """``fn``'s outcome, told to the venue's health (before the caller's guard records it)."""
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self.failed(exc, operation)
            raise
        if self.health is not None:
            self.health.record_success(self.handle.key)
        return result

    def failed(self, error: BaseException, operation: str) -> None:
        """Tell the venue of a failure an outage explains (``is_outage``); when the venue is
        down it is the venue's, and ``error`` is excused (never counted on the breaker).
        Call it before the account's breaker records ``error``."""
        venue = self.health
        if venue is None or not is_outage(error):
            return
        failure = classify_failure(error, operation)
        reason = describe(error, 120, redactor=self.handle.redactor)
        if venue.record_failure(self.handle.key, failure, reason):
            excuse(error)  # the venue is down: its outage, never this account's


__all__ = ["VenueGate"]
