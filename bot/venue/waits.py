"""How a caller of the venue's shared data waits: for a request already in flight (at most
its wait, then the venue's ``VenueDataError``), and after a failed one (its retry not due).

Shared by the candle, metadata and ticker caches (``bot.venue.market``, ``bot.venue.tickers``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from bot.errors import VenueDataError
from bot.venue.flight import FlightTimeout, SingleFlight

__all__ = ["fly", "raise_if_backing_off"]

T = TypeVar("T")


def fly(
    flight: SingleFlight[Any],
    key: Hashable,
    fn: Callable[[], T],
    *,
    venue: str,
    operation: str,
    wait: float,
) -> T:
    """``fn()``, or the outcome of the call for ``key`` already in flight; a wait longer
    than ``wait`` raises ``VenueDataError`` (the venue's, never an account's)."""
    try:
        return flight.do(key, fn, wait)
    except FlightTimeout:
        raise VenueDataError(
            f"{venue} {operation}: no answer within {wait:g}s", operation=operation
        ) from None


def raise_if_backing_off(error: VenueDataError | None, until: float, now: float) -> None:
    """Raise when the last attempt failed (``error``) and its retry is not due (``until``)."""
    if error is not None and now < until:
        raise VenueDataError(
            f"{error} (next try in {until - now:.0f}s)", operation=error.operation
        ) from error.__cause__
