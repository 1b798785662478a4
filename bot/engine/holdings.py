"""What the account really holds of an asset, and what the venue will take of it.

A position's quantity is what its fills left in the account: a buy's fee charged in the
coin bought (Binance, OKX) is not held (``Order.base_received``). A sale is at most the
venue's FREE balance of the asset, rounded down to the venue's lot step
(``MarketRules.floor_amount``). A remainder the venue's published minimums refuse
(``MarketRules.refusal``) is dust: recorded per asset in the store, shown in status.json
and by check_active_trading_per_broker.py, never sent as an order on its own. A later sale
of the same asset takes it along when the venue accepts the sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.model import MarketRules
from bot.venue.market import VenueMarket

# A raised entry clears the minimum notional even if the price ticks down this much.
NOTIONAL_HEADROOM = 1.02
# Left over after a sale: less than this fraction of the position is float noise, not dust.
NOISE = 1e-12


def base_of(symbol: str) -> str:
    """The asset a symbol trades: ``LTC/USDT`` → ``LTC``; a stock ticker is itself."""
    return symbol.partition("/")[0]


class RulesBook:
    """The market rules one account sizes its orders by: the venue's, from its shared
    market metadata (loaded once per venue, never through an account's gate)."""

    def __init__(self, market: VenueMarket) -> None:
        self._market = market

    def get(self, symbol: str) -> MarketRules:
        """The rules of ``symbol``; ``VenueRefused`` when the venue refuses the symbol,
        ``VenueDataError`` when its metadata cannot be had now."""
        return self._market.rules(symbol)

    def cached(self, symbol: str) -> MarketRules | None:
        """The rules of ``symbol`` if already known (no venue call), else None."""
        return self._market.cached_rules(symbol)


def smallest_entry(rules: MarketRules, price: float) -> float:
    """The smallest amount the venue takes at ``price``, in whole lot steps, with headroom
    on the minimum notional."""
    need = max(
        rules.min_amount or 0.0,
        (rules.min_notional or 0.0) * NOTIONAL_HEADROOM / price if price > 0 else 0.0,
    )
    step = rules.amount_step if rules.fractionable else max(rules.amount_step or 1.0, 1.0)
    if step and need > 0:
        need = math.ceil(need / step - 1e-9) * step
    return need


@dataclass(frozen=True)
class Sale:
    """What may be sold of a position now: ``amount``, or why not (``refusal``)."""

    amount: float
    refusal: str | None
    free: float | None  # the venue's free balance of the asset (None: not reported)
    short_of_free: bool  # the free balance is below the position: something else holds it


def sale(
    rules: MarketRules, quantity: float, dust_held: float, free: float | None, price: float
) -> Sale:
    """The sale of a position of ``quantity`` and the ``dust_held`` of the same asset: at most
    the ``free`` balance, rounded down to the lot step, with the venue's refusal if any."""
    wanted = quantity + dust_held
    short = free is not None and free < quantity * (1 - NOISE)
    amount = rules.floor_amount(min(wanted, free) if free is not None else wanted)
    return Sale(amount, rules.refusal(amount, price), free, short)


def dust_refusal(rules: MarketRules, quantity: float, price: float) -> str | None:
    """Why the venue would refuse to take ``quantity`` at ``price`` (then it is dust), or None."""
    return rules.refusal(rules.floor_amount(quantity), price)
