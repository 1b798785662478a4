"""The venues' public status checks, read from the raw answer ccxt's ``fetch_status`` keeps.

ccxt folds each answer into ``ok`` / ``maintenance`` and so loses what NIJA needs: Kraken's
``cancel_only`` and ``post_only`` become ``maintenance``, and for OKX the *last* listed event
decides whatever service it concerns. So the raw answer (ccxt's ``info``) is read here, in each
venue's documented shape (docs/VENUES.md, "## Venue health", has the sources):

* Kraken ``GET /0/public/SystemStatus``: ``{"error": [], "result": {"status": "online",
  "timestamp": ...}}``; status ``online`` | ``maintenance`` | ``cancel_only`` | ``post_only``
  (older documentation also lists ``limit_only``: no market orders, read as ``post_only``).
* Binance ``GET /sapi/v1/system/status``: ``{"status": 0, "msg": "normal"}``; 1 is
  ``system_maintenance``.
* OKX ``GET /api/v5/system/status``: ``{"code": "0", "msg": "", "data": [events]}``; an event
  ``ongoing`` for a trading service is maintenance, ``pre_open`` (trading reopening) is read
  as cancel-only; scheduled, completed and canceled events change nothing now.
"""

from __future__ import annotations

from typing import Any

from bot.errors import BadResponse
from bot.model import VenueCondition, VenueStatus

_KRAKEN = {
    "online": VenueCondition.OK,
    "maintenance": VenueCondition.MAINTENANCE,
    "cancel_only": VenueCondition.CANCEL_ONLY,
    "post_only": VenueCondition.POST_ONLY,
    "limit_only": VenueCondition.POST_ONLY,  # no market orders, which are all NIJA sends
}
# OKX serviceType values that are not the REST spot trading NIJA uses (OKX's "Get system
# status" page): 0 WebSocket, 6 block trading, 7 trading bot, 10 spread trading, 11 copy
# trading. The trading service's (5), its batches of accounts or products (8, 9) and
# "others" (99, e.g. a currency suspended) may be NIJA's: they count, to be safe.
_OKX_OTHER_SERVICES = frozenset({"0", "6", "7", "10", "11"})
_OKX_DEMO_ENV = "2"  # env 1 production, 2 demo trading (NIJA trades production)


def venue_status(venue: str, answer: Any) -> VenueStatus:
    """The ``VenueStatus`` of ``venue``'s raw status answer; BadResponse when it has no shape."""
    if not isinstance(answer, dict):
        raise BadResponse(f"{venue} status answer is not an object")
    if venue == "KRAKEN":
        return _kraken(answer)
    if venue == "BINANCE":
        return _binance(answer)
    if venue == "OKX":
        return _okx(answer)
    return VenueStatus(VenueCondition.UNKNOWN, f"{venue} has no public status check")


def _kraken(answer: dict[str, Any]) -> VenueStatus:
    result = answer.get("result")
    status = result.get("status") if isinstance(result, dict) else None
    if not isinstance(status, str):
        raise BadResponse("KRAKEN status answer has no result.status")
    condition = _KRAKEN.get(status, VenueCondition.UNKNOWN)
    return VenueStatus(condition, f"SystemStatus {status}")


def _binance(answer: dict[str, Any]) -> VenueStatus:
    status, msg = answer.get("status"), answer.get("msg")
    if status not in (0, 1, "0", "1"):
        raise BadResponse("BINANCE status answer has no status 0 or 1")
    ok = str(status) == "0"
    return VenueStatus(
        VenueCondition.OK if ok else VenueCondition.MAINTENANCE, f"system/status {msg or status}"
    )


def _okx(answer: dict[str, Any]) -> VenueStatus:
    events = answer.get("data")
    if not isinstance(events, list):
        raise BadResponse("OKX status answer has no data list")
    worst = VenueStatus(VenueCondition.OK, "system/status: no ongoing maintenance")
    for event in events:
        if not isinstance(event, dict) or str(event.get("serviceType")) in _OKX_OTHER_SERVICES:
            continue
        if str(event.get("env")) == _OKX_DEMO_ENV:
            continue
        state, title = event.get("state"), event.get("title") or "maintenance"
        if state == "ongoing":
            return VenueStatus(VenueCondition.MAINTENANCE, f"system/status ongoing: {title}")
        if state == "pre_open":
            worst = VenueStatus(VenueCondition.CANCEL_ONLY, f"system/status pre_open: {title}")
    return worst
