"""The paper broker's market rules, and the refusal of an order they would refuse.

Over a real venue's market data the rules are the venue's own (its adapter's
``market_rules``). Over the synthetic market, or an adapter that publishes none, they are
crypto-like defaults:

* amounts in steps of 1e-8 (a satoshi; Kraken's ``lot_decimals`` 8),
* no minimum amount,
* a minimum notional of 1 in the quote currency (Coinbase's ``quote_min_size`` on USD pairs),
* prices in steps of 0.01.

The paper broker refuses what these rules refuse, as a venue would, so paper trading finds
an order too small or off the lot step before real money does.
"""

from __future__ import annotations

from typing import Any

from bot.model import MarketRules, OrderRequest

PAPER_AMOUNT_STEP = 1e-8
PAPER_MIN_NOTIONAL = 1.0
PAPER_PRICE_STEP = 0.01
# An amount within this relative margin of a whole number of steps is on the step (floats).
_STEP_TOLERANCE = 1e-9


def default_rules(symbol: str) -> MarketRules:
    """The paper defaults for ``symbol`` (``BASE/QUOTE``; a ticker is quoted in USD)."""
    base, _, quote = symbol.partition("/")
    return MarketRules(
        symbol=symbol,
        base=base,
        quote=quote or "USD",
        amount_step=PAPER_AMOUNT_STEP,
        min_notional=PAPER_MIN_NOTIONAL,
        price_step=PAPER_PRICE_STEP,
    )


def rules_of(market: Any, symbol: str) -> MarketRules:
    """The rules of the market data's venue for ``symbol``, or the paper defaults when the
    source publishes none (the synthetic market, an adapter without ``market_rules``)."""
    publish = getattr(market, "market_rules", None)
    if publish is None:
        return default_rules(symbol)
    try:
        return publish(symbol)
    except NotImplementedError:
        return default_rules(symbol)


def refusal(rules: MarketRules, request: OrderRequest, price: float) -> str | None:
    """Why the venue's rules refuse ``request`` at ``price``, or None."""
    if request.amount is None:  # sized in the quote currency: only the notional is checked
        notional = float(request.quote_amount or 0.0)
        if rules.min_notional is not None and notional < rules.min_notional:
            return f"notional {notional:.2f} below the minimum {rules.min_notional:g} {rules.quote}"
        return None
    amount = request.amount
    if rules.floor_amount(amount) < amount * (1 - _STEP_TOLERANCE):
        return f"amount {amount:g} is not a multiple of the lot step {rules.amount_step:g}"
    return rules.refusal(amount, price)
