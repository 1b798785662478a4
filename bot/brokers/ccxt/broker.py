"""Kraken, OKX and Binance (spot) through ccxt, behind the narrow ``Broker`` interface.

No ccxt exception leaves this adapter: every ccxt call goes through ``CcxtClient.call``
(``bot.brokers.ccxt.client``), which translates each into the project's types; here the
answers become the project's types (``bot.brokers.ccxt.convert``), and an order the venue
reports as rejected is ``OrderRejected``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from bot.brokers.base import Broker, ValuationPrices, validate_credentials
from bot.brokers.budget import Budgets
from bot.brokers.ccxt.client import CcxtClient
from bot.brokers.ccxt.config import VENUES
from bot.brokers.ccxt.convert import charged_fee, to_market_rules, to_order
from bot.brokers.ccxt.status import venue_status
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import (
    BadResponse,
    BrokerConfigError,
    BrokerError,
    NotFound,
    OrderRejected,
    VenueDataError,
)
from bot.model import (
    DUST_USD,
    USD_LIKE,
    AssetClass,
    Balance,
    BrokerSpec,
    Candles,
    MarketRules,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Ticker,
    VenueStatus,
)

log = logging.getLogger(__name__)

# Quote currencies tried, in order, to value a holding in USD.
_PRICING_QUOTES = ("USD", "USDT", "USDC", "FDUSD")


def _normalize_symbol(symbol: str) -> str:
    return symbol.strip().upper().replace("-", "/")


class CcxtBroker(Broker):
    """One Kraken, OKX or Binance spot account. Building it touches no network.

    Every request goes through its ``CcxtClient`` (timeouts, request budgets, errors).
    Its holdings are valued at the venue's shared prices once the daemon hands them over
    (``value_holdings_with``), else at tickers it asks itself.
    """

    asset_class = AssetClass.CRYPTO

    def __init__(
        self, spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
    ) -> None:
        self.account = spec.account
        self.name = spec.account.broker
        venue = VENUES.get(self.name)
        if venue is None:
            raise BrokerConfigError(f"{self.name} is not a ccxt broker ({sorted(VENUES)})")
        validate_credentials(spec)
        self._venue = venue
        self._spec = spec
        self._client = CcxtClient(spec, venue, clock=clock, budgets=budgets)
        self._ex = self._client.ex  # the SDK object, for naming its methods in calls
        self._prices: ValuationPrices | None = None  # the venue's shared prices, once given

    def __repr__(self) -> str:
        return f"CcxtBroker({self.account.key})"

    def adopt_metadata(self, source: Broker) -> bool:
        """Take the markets and currencies another client of this venue loaded (ccxt's
        ``set_markets_from_exchange``: shared, not copied); True when this client has them."""
        if isinstance(source, CcxtBroker):
            return self._client.adopt_metadata(source._client)
        return bool(self._ex.markets)

    def refresh_markets(self) -> None:
        """The next call that needs the markets loads them again."""
        self._client.refresh_markets()

    def value_holdings_with(self, prices: ValuationPrices) -> None:
        """Value holdings at ``prices`` (the venue's shared tickers): no ticker of its own."""
        self._prices = prices

    # -- market data --------------------------------------------------------
    def market_rules(self, symbol: str) -> MarketRules:
        """Lot step, minimum amount, minimum notional and price step of ``symbol``, from the
        market metadata ccxt loaded (once per broker object)."""
        symbol = _normalize_symbol(symbol)
        with self._client.budget():
            markets = self._client.markets()
        market = markets.get(symbol)
        if market is None:
            raise NotFound(f"{self.name} lists no market {symbol}")
        return to_market_rules(symbol, market, self._ex.precisionMode)

    def symbols(self) -> list[str]:
        """The configured symbols the venue lists, in configured order."""
        with self._client.budget():
            markets = self._client.markets()
        wanted = [_normalize_symbol(s) for s in self._spec.symbols]
        return [s for i, s in enumerate(wanted) if s in markets and s not in wanted[:i]]

    def fetch_ticker(self, symbol: str) -> Ticker:
        """Best bid, best ask and last trade price."""
        with self._client.budget():
            return self._ticker(_normalize_symbol(symbol))

    def _ticker(self, symbol: str) -> Ticker:
        self._client.markets()
        raw = self._client.call(self._ex.fetch_ticker, symbol)
        bid, ask, last = raw.get("bid"), raw.get("ask"), raw.get("last")
        if last is None:
            last = raw.get("close")
        if bid is None or ask is None or last is None:
            raise BadResponse(f"{self.name} ticker for {symbol} lacks bid/ask/last")
        return Ticker(symbol=symbol, bid=float(bid), ask=float(ask), last=float(last))

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """OHLCV, oldest first, timestamps in UTC milliseconds."""
        symbol = _normalize_symbol(symbol)
        with self._client.budget():
            self._client.markets()
            # Kraken always answers its latest 720 candles and ccxt would keep the *oldest*
            # ``limit`` of them: ask for all and keep the newest here.
            venue_limit = None if self.name == "KRAKEN" else limit
            rows = self._client.call(self._ex.fetch_ohlcv, symbol, timeframe, None, venue_limit)
        if not isinstance(rows, list) or any(
            not isinstance(r, list) or len(r) < 6 or any(v is None for v in r[:6]) for r in rows
        ):
            raise BadResponse(f"{self.name} candles for {symbol} are incomplete")
        return Candles.from_rows([r[:6] for r in rows[-limit:]])

    def fetch_status(self) -> VenueStatus:
        """The venue's public status check: one unauthenticated request (bot.brokers.ccxt.status)."""
        with self._client.budget():
            raw = self._client.call(self._ex.fetch_status)
        return venue_status(self.name, raw.get("info") if isinstance(raw, dict) else None)

    # -- account ------------------------------------------------------------
    def _totals(self, params: dict[str, Any] | None = None) -> dict[str, float]:
        return self._amounts(params)[0]

    def _amounts(
        self, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, float], dict[str, float] | None]:
        """Totals per currency, and what orders may spend now (None when the venue says not)."""
        raw = self._client.call(self._ex.fetch_balance, params or {})
        totals = raw.get("total") if isinstance(raw, dict) else None
        if not isinstance(totals, dict):
            raise BadResponse(f"{self.name} balance answer has no totals")
        free = raw.get("free")
        spendable = (
            {code: float(v) for code, v in free.items() if v is not None}
            if isinstance(free, dict)
            else None
        )
        return {code: float(v) for code, v in totals.items() if v}, spendable

    def _holdings(self, totals: dict[str, float]) -> list[Position]:
        """Non-USD holdings worth at least DUST_USD, valued at their last price."""
        markets = self._client.markets()
        held = []
        for code, qty in totals.items():
            if code in USD_LIKE or qty <= 0:
                continue
            symbol = next(
                (f"{code}/{q}" for q in _PRICING_QUOTES if f"{code}/{q}" in markets), None
            )
            if symbol is None:
                log.debug("%s: no market prices %s; it counts 0", self.name, code)
                continue
            value = qty * self._valuation_price(symbol)  # a failed pricing call propagates
            if value >= DUST_USD:
                held.append(Position(symbol=symbol, quantity=qty, market_value_usd=value))
        return held

    def _valuation_price(self, symbol: str) -> float:
        """The last price a holding of ``symbol`` is valued at: the venue's shared one (its
        failure is the venue's ``VenueDataError``), else this client's own ticker."""
        if self._prices is not None:
            with self._client.outside_deadline():  # the venue's wait, not this call's
                return self._prices.valuation_price(symbol)
        return self._ticker(symbol).last

    def fetch_balance(self) -> Balance:
        """Cash per currency; equity adds every non-dust holding at its last price (a price
        that cannot be had fails the balance: the holding's value is unknown, never 0).

        OKX keeps a funding account beside the trading one: what it holds cannot trade, so
        it is not equity; it is reported in ``funding_usd`` and a note for the operator.
        """
        with self._client.budget():
            self._client.markets()
            totals, free = self._amounts()
            usd_cash = sum(v for code, v in totals.items() if code in USD_LIKE)
            held = self._holdings(totals)
            funding_usd, notes = self._funding() if self._venue.funding_account else (0.0, ())
        equity = usd_cash + sum(p.market_value_usd or 0.0 for p in held)
        return Balance(
            cash=totals,
            usd_cash=usd_cash,
            usd_equity=equity,
            funding_usd=funding_usd,
            notes=notes,
            free=free,
        )

    def _funding(self) -> tuple[float, tuple[str, ...]]:
        """OKX's funding account: its USD value and a note, or a note that it is unknown.

        Informational only (it never counts as equity), so a failure to read it is a
        note, not a failed balance.
        """
        try:
            totals = self._totals({"type": "funding"})
            usd = sum(v for code, v in totals.items() if code in USD_LIKE)
            usd += sum(p.market_value_usd or 0.0 for p in self._holdings(totals))
        except (BrokerError, VenueDataError) as exc:  # a price of what it holds too
            return 0.0, (f"OKX funding account not read ({type(exc).__name__})",)
        if not totals:
            return 0.0, ()
        held = ", ".join(f"{qty:g} {code}" for code, qty in sorted(totals.items()))
        return usd, (
            f"{held} (${usd:,.2f}) held in the OKX funding account; transfer to trading to trade",
        )

    def fetch_positions(self) -> list[Position]:
        """Spot holdings above dust."""
        with self._client.budget():
            self._client.markets()
            return self._holdings(self._totals())

    # -- orders -------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> Order:
        """Send one order with its client id in the venue's own field; the order as accepted."""
        symbol = _normalize_symbol(request.symbol)
        side = request.side.value
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        with self._client.budget():
            self._client.markets()
            amount = request.amount
            if request.type is OrderType.LIMIT:
                args = (symbol, "limit", side, amount, request.limit_price, params)
            elif amount is not None:
                args = (symbol, "market", side, amount, None, params)
            else:
                assert request.quote_amount is not None  # OrderRequest: amount or quote_amount
                args = self._notional_args(symbol, side, float(request.quote_amount), params)
            with self._client.last_look.armed(request.last_look):
                raw = self._client.call(self._ex.create_order, *args)
            order = to_order(self.name, raw, request.client_order_id)
            if raw.get("status") is None:
                # Kraken and OKX answer an order with its id only: ask for its state.
                raw = self._client.call(self._ex.fetch_order, order.venue_order_id, symbol)
                order = to_order(self.name, raw, request.client_order_id)
        if order.status is OrderStatus.REJECTED:
            raise OrderRejected(order.reason or f"{self.name} rejected the order")
        return order

    def _notional_args(self, symbol: str, side: str, quote: float, params: dict) -> tuple:
        """Arguments of a market order sized in quote currency, as each venue takes it."""
        if self.name == "BINANCE":
            return (symbol, "market", side, None, None, {**params, "cost": quote})
        if self.name == "OKX":
            # tgtCcy=quote_ccy: ``sz`` is quote currency. ccxt consumes ``cost`` only on buys.
            extra: dict[str, Any] = {"tgtCcy": "quote_ccy"}
            if side == "buy":
                extra.update(cost=quote, createMarketBuyOrderRequiresPrice=False)
            return (symbol, "market", side, quote, None, {**params, **extra})
        if side == "buy":  # Kraken: volume in quote currency (viqc) for buys
            return (symbol, "market", side, quote, None, {**params, "cost": quote})
        # Kraken cannot sell by notional: size it at the current bid.
        bid = self._ticker(symbol).bid
        return (symbol, "market", side, quote / bid, None, params)

    def fetch_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """The order with this client id, open or closed, or None when the venue says it has
        none (docs/VENUES.md: each venue's look-up and how long it remembers).

        Binance and OKX answer GET order by client id for open and closed orders alike
        (the newest with that id); Kraken has no such look-up, so its open orders, then its
        closed orders, are listed filtered by ``cl_ord_id``.
        """
        with self._client.budget():
            self._client.markets()
            if not self._venue.lookup_needs_symbol:
                return self._kraken_lookup(client_order_id)
            for candidate in self._lookup_symbols(symbol):
                try:
                    raw = self._client.call(
                        self._ex.fetch_order, None, candidate, {"clientOrderId": client_order_id}
                    )
                except NotFound:
                    continue  # the venue says: not in this market
                return self._with_fees(to_order(self.name, raw, client_order_id))
        return None

    def _with_fees(self, order: Order) -> Order:
        """The order with its fee read from its trades, where the look-up carries none
        (Binance's GET order: its fills' commissions are in GET myTrades only)."""
        if not (self._venue.fees_from_trades and order.filled > 0 and order.fee_currency is None):
            return order
        trades = self._client.call(self._ex.fetch_order_trades, order.venue_order_id, order.symbol)
        listed = [t.get("fee") for t in trades if isinstance(t, dict)]
        fee, currency, fee_usd = charged_fee(self.name, order.symbol, listed, order.average_price)
        return replace(order, fee=fee, fee_currency=currency, fee_usd=fee_usd)

    def _lookup_symbols(self, symbol: str | None) -> list[str]:
        if symbol is not None:
            return [_normalize_symbol(symbol)]
        candidates = self.symbols()
        if not candidates:
            raise ValueError(f"{self.name} needs a symbol to look an order up by client id")
        return candidates

    def _kraken_lookup(self, client_order_id: str) -> Order | None:
        # Open first, then closed: an order only ever moves from open to closed, so this
        # order of queries cannot miss one that closes in between.
        # A cl_ord_id is unique among open orders only: closed ones may share it, and the
        # newest is the one asked about. ccxt lists oldest first, keeping Kraken's
        # newest-first order among equal times, so the first of the latest is the newest.
        params = {"clientOrderId": client_order_id}
        for fetch in (self._ex.fetch_open_orders, self._ex.fetch_closed_orders):
            raws = self._client.call(fetch, None, None, None, params)
            matches = [r for r in raws if r.get("clientOrderId") == client_order_id]
            if matches:
                newest = max(matches, key=lambda r: r.get("timestamp") or 0)
                return to_order(self.name, newest, client_order_id)
        return None

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Every open order (of one market when ``symbol`` is given)."""
        sym = _normalize_symbol(symbol) if symbol else None
        with self._client.budget():
            self._client.markets()
            raws = self._client.call(self._ex.fetch_open_orders, sym)
        return [to_order(self.name, r) for r in raws]

    def cancel_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """Cancel by client id; the order afterwards, or None when the venue has no such order."""
        with self._client.budget():
            current = self.fetch_order(client_order_id, symbol)
            if current is None or current.status is not OrderStatus.OPEN:
                return current
            try:
                self._client.call(
                    self._ex.cancel_order,
                    None,
                    current.symbol,
                    {"clientOrderId": client_order_id},
                )
            except NotFound:
                # It closed (filled) between our look-up and the cancel: report what it became.
                log.info("%s: order %s closed before cancel", self.name, client_order_id)
            return self.fetch_order(client_order_id, current.symbol)

    def close(self) -> None:
        """Release the HTTP session."""
        self._client.close()


__all__ = ["CcxtBroker"]
