"""Alpaca (US stocks) through alpaca-py: ``TradingClient`` for the account and orders,
``StockHistoricalDataClient`` for bars and quotes.

alpaca-py has no request timeout and retries HTTP 429/504 itself (3 x 3 s sleeps); both
clients are hardened here: every request carries ``spec.timeout_seconds`` and the SDK's
retries are off, so a failure reaches the caller at once. No SDK exception leaves this
adapter: every SDK call runs inside ``translated`` (``bot.brokers.alpaca_stocks.errors``),
which raises the project's type chained ``from`` the SDK's exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from alpaca.common.enums import Sort
from alpaca.common.rest import RESTClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.models import BarSet
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest, StockLatestTradeRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading import enums as alpaca_enums
from alpaca.trading.client import TradingClient
from alpaca.trading.models import Asset, TradeAccount
from alpaca.trading.models import Position as AlpacaPosition
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from bot.brokers.alpaca_stocks import parse
from bot.brokers.alpaca_stocks.errors import translated
from bot.brokers.base import LOOPBACK_HOSTS, Broker, validate_credentials
from bot.brokers.budget import Budgets
from bot.brokers.transport import LastLook, Transport, mount
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import BadResponse, BrokerConfigError, NotFound, OrderRejected, VenueRefused
from bot.model import (
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
    timeframe_seconds,
)

OPEN_ORDERS_LIMIT = 500  # Alpaca's maximum page for GET /v2/orders
QUOTE = "USD"  # stocks trade in dollars; the Trading API charges no commission on them
FRACTION_STEP = 1e-9  # fractional qty: up to 9 decimals
MIN_FRACTIONAL_NOTIONAL = 1.0  # a fractional (or notional) order is worth at least $1
PRICE_STEP = 0.01  # limit prices in whole cents (from $1 up; $0.0001 allowed below $1)


def _clean_url(url: str | None) -> str | None:
    """``https://x/v2/`` → ``https://x``: alpaca-py appends ``/v2`` itself."""
    if not url:
        return None
    return url.rstrip("/").removesuffix("/v2")


def _harden(
    client: RESTClient,
    url: str | None,
    timeout: float,
    before_send: Callable[[], object] | None = None,
    last_look: LastLook | None = None,
) -> None:
    """Bound every request of ``client`` by ``timeout``, switch off the SDK's retry loop,
    run ``before_send`` and then ``last_look`` before each request (``bot.brokers.transport``),
    and keep proxy settings from the environment away from loopback URLs."""
    client._retry = 0  # the constructor treats 0 as "use the default 3", so set it here
    client._retry_codes = []
    client._retry_wait = 0
    mount(client._session, Transport(timeout=timeout, before_send=before_send, last_look=last_look))
    if url is not None and urlsplit(url).hostname in LOOPBACK_HOSTS:
        client._session.trust_env = False


def _ticker(symbol: str) -> str:
    """Alpaca spells stocks as plain tickers (``SPY``, ``BRK.B``)."""
    return symbol.upper()


def _rules(asset: Any) -> MarketRules:
    """An alpaca-py ``Asset`` as the order rules NIJA sizes by.

    Fractionable stocks trade to 9 decimals of a share, from $1 per order; the others in
    whole shares only. Limit prices are whole cents (sub-dollar prices may use $0.0001:
    0.01 is valid at every price). Where the asset lists its own ``min_order_size``,
    ``min_trade_increment`` or ``price_increment``, those win.
    """
    fractionable = bool(asset.fractionable)
    return MarketRules(
        symbol=asset.symbol,
        base=asset.symbol,
        quote=QUOTE,
        amount_step=asset.min_trade_increment or (FRACTION_STEP if fractionable else 1.0),
        min_amount=asset.min_order_size or (None if fractionable else 1.0),
        min_notional=MIN_FRACTIONAL_NOTIONAL if fractionable else None,
        price_step=asset.price_increment or PRICE_STEP,
        fractionable=fractionable,
    )


def _timeframe(timeframe: str) -> TimeFrame:
    """``"5m"`` → ``TimeFrame(5, Minute)``; hours and one day are supported too."""
    seconds = timeframe_seconds(timeframe)
    if seconds == 86400:
        return TimeFrame(1, TimeFrameUnit.Day)
    if seconds % 3600 == 0 and seconds // 3600 <= 23:
        return TimeFrame(seconds // 3600, TimeFrameUnit.Hour)
    if seconds % 60 == 0 and seconds // 60 <= 59:
        return TimeFrame(seconds // 60, TimeFrameUnit.Minute)
    raise ValueError(f"Alpaca has no {timeframe!r} bars (use 1m-59m, 1h-23h or 1d)")


def _round_down(value: float, places: int) -> float:
    """``value`` cut to ``places`` decimals; a size that rounds to nothing is never sent."""
    factor = 10**places
    rounded = math.floor(value * factor + 1e-9) / factor
    if rounded <= 0:
        raise OrderRejected(f"order size {value!r} rounds to zero at {places} decimals")
    return rounded


def _order_request(request: OrderRequest) -> LimitOrderRequest | MarketOrderRequest:
    """alpaca-py's request for a day order; the client order id goes into ``client_order_id``."""
    common = {
        "symbol": _ticker(request.symbol),
        "side": alpaca_enums.OrderSide(request.side.value),
        "time_in_force": alpaca_enums.TimeInForce.DAY,  # fractional/notional need DAY
        "client_order_id": request.client_order_id,
    }
    amount, quote_amount, limit_price = request.amount, request.quote_amount, request.limit_price
    if request.type is OrderType.LIMIT:
        assert amount is not None and limit_price is not None  # OrderRequest checks both
        # Stocks trade in cents from $1 up; fractional shares to 9 decimals.
        places = 2 if limit_price >= 1 else 4
        return LimitOrderRequest(
            qty=_round_down(amount, 9),
            limit_price=round(limit_price, places),
            **common,
        )
    if amount is not None:
        return MarketOrderRequest(qty=_round_down(amount, 9), **common)
    assert quote_amount is not None  # OrderRequest: exactly one of amount and quote_amount
    return MarketOrderRequest(notional=_round_down(quote_amount, 2), **common)


class AlpacaBroker(Broker):
    """One Alpaca account (paper endpoint unless ``spec.paper_endpoint`` is False)."""

    name = "ALPACA"
    asset_class = AssetClass.STOCKS

    def __init__(
        self, spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
    ) -> None:
        """Build the SDK clients; no network traffic happens here. Every request of both
        spends ``budgets``' per-key budget: Alpaca counts market data against the key too."""
        self.spec = spec
        self.account = spec.account
        self._clock = clock
        creds = spec.credentials
        if not (creds.api_key and creds.api_secret):
            raise BrokerConfigError(
                f"{spec.account}: Alpaca needs an API key and secret (ALPACA_API_KEY, ALPACA_API_SECRET)"
            )
        validate_credentials(spec)
        # raw_data stays off: the SDK returns its models, never the raw dicts its return
        # types also allow (hence the casts at the calls).
        pairs = [s for s in spec.symbols if "/" in s]
        if pairs:
            # Alpaca spells crypto as pairs; these are its stock endpoints (BTC is an ETF there).
            raise BrokerConfigError(
                f"{spec.account}: ALPACA_SYMBOLS holds crypto pairs ({', '.join(pairs)});"
                " Alpaca is traded here through its stock endpoints only (tickers like SPY)"
            )
        trading_url = _clean_url(spec.base_url)
        data_url = _clean_url(spec.data_url) or trading_url
        self._trading = TradingClient(
            api_key=creds.api_key,
            secret_key=creds.api_secret,
            paper=spec.paper_endpoint,
            url_override=trading_url,
        )
        self._data = StockHistoricalDataClient(
            api_key=creds.api_key, secret_key=creds.api_secret, url_override=data_url
        )
        spend = None if budgets is None else (lambda: budgets.spend(private=1.0))
        self._last_look = LastLook()  # an order's, armed around its submit
        _harden(self._trading, trading_url, spec.timeout_seconds, spend, self._last_look)
        _harden(self._data, data_url, spec.timeout_seconds, spend)
        self._listed: list[str] | None = None  # configured symbols Alpaca trades, loaded once
        self._assets: dict[str, MarketRules | None] = {}  # by ticker; None: Alpaca lists none

    def __repr__(self) -> str:
        return f"AlpacaBroker(account={self.account.key!r}, paper={self.spec.paper_endpoint})"

    # -- market metadata and data ---------------------------------------------
    def refresh_markets(self) -> None:
        """The next call that needs an asset looks it up again."""
        self._listed = None
        self._assets = {}

    def symbols(self) -> list[str]:
        """The configured tickers Alpaca lists as active and tradable (one asset lookup each)."""
        if self._listed is None:
            self._listed = [s for s in self.spec.symbols if self._asset(_ticker(s)) is not None]
        return list(self._listed)

    def market_rules(self, symbol: str) -> MarketRules:
        """Lot step, minimums and ``fractionable`` from Alpaca's asset (``GET /v2/assets/{symbol}``,
        loaded once per client); ``NotFound`` when Alpaca lists no tradable asset by that name."""
        rules = self._asset(_ticker(symbol))
        if rules is None:
            raise NotFound(f"Alpaca lists no active, tradable asset {_ticker(symbol)}")
        return rules

    def _asset(self, ticker: str) -> MarketRules | None:
        """The rules of an active, tradable asset, or None; one lookup per ticker and client."""
        if ticker not in self._assets:
            try:
                with translated("asset"):
                    asset = cast(Asset, self._trading.get_asset(ticker))
                    listed = (
                        asset.tradable and getattr(asset.status, "value", asset.status) == "active"
                    )
                    self._assets[ticker] = _rules(asset) if listed else None
            except NotFound:
                self._assets[ticker] = None  # Alpaca does not list it: not tradable here
        return self._assets[ticker]

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """The newest ``limit`` bars, oldest first."""
        ticker = _ticker(symbol)
        # Markets close nights and weekends: look back well past ``limit`` bars, newest first.
        lookback = timedelta(seconds=timeframe_seconds(timeframe) * limit * 3, days=4)
        bar_size = _timeframe(timeframe)
        with translated("bars"):
            request = StockBarsRequest(
                symbol_or_symbols=ticker,
                timeframe=bar_size,
                start=self._clock.utc_now() - lookback,
                limit=limit,
                sort=Sort.DESC,
            )
            barset = cast(BarSet, self._data.get_stock_bars(request))
            bars = barset.data.get(ticker, [])
            rows = [
                [parse.to_ms(b.timestamp), b.open, b.high, b.low, b.close, b.volume] for b in bars
            ]
        return Candles.from_rows(rows)

    def fetch_ticker(self, symbol: str) -> Ticker:
        """Bid/ask from the latest quote, last from the latest trade."""
        ticker = _ticker(symbol)
        with translated("latest quote"):
            quote = self._data.get_stock_latest_quote(
                StockLatestQuoteRequest(symbol_or_symbols=ticker)
            ).get(ticker)
        with translated("latest trade"):
            trade = self._data.get_stock_latest_trade(
                StockLatestTradeRequest(symbol_or_symbols=ticker)
            ).get(ticker)
        if quote is None or trade is None:
            raise BadResponse(f"Alpaca has no latest quote and trade for {ticker}")
        last = parse.to_float(trade.price, "last trade price")
        # Outside market hours a side of the quote can be 0: fall back to the last trade.
        return Ticker(
            symbol=symbol, bid=quote.bid_price or last, ask=quote.ask_price or last, last=last
        )

    # -- account ----------------------------------------------------------------
    def fetch_balance(self) -> Balance:
        """Cash and equity (cash plus positions at market) as Alpaca reports them, in USD."""
        with translated("account"):
            account = cast(TradeAccount, self._trading.get_account())
        cash = parse.to_float(account.cash, "account cash")
        equity = parse.to_float(account.equity, "account equity")
        return Balance(cash={"USD": cash}, usd_cash=cash, usd_equity=equity)

    def fetch_positions(self) -> list[Position]:
        """Alpaca's open positions (short positions have a negative quantity)."""
        with translated("positions"):
            raw = cast(list[AlpacaPosition], self._trading.get_all_positions())
            positions = [
                Position(
                    symbol=p.symbol,
                    quantity=parse.to_float(p.qty, "position qty"),
                    avg_entry_price=parse.to_float(p.avg_entry_price, "avg entry price"),
                    market_value_usd=float(p.market_value) if p.market_value else None,
                )
                for p in raw
            ]
        return [p for p in positions if p.quantity != 0]

    # -- orders -------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> Order:
        """Submit a day order; the client order id goes into Alpaca's ``client_order_id``."""
        with translated("order"), self._last_look.armed(request.last_look):
            order = parse.order(self._trading.submit_order(_order_request(request)))
        if order.status is OrderStatus.REJECTED:
            raise OrderRejected(f"Alpaca rejected order {request.client_order_id}")
        return order

    def fetch_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """The order with this client id, open or closed (filled, canceled, expired), from
        ``GET /v2/orders:by_client_order_id``; None only when Alpaca answers its own 404
        "not found" (40410000). A client id is unique among all the account's orders, so a
        found order is the one sent (docs/VENUES.md, Alpaca)."""
        try:
            with translated("order lookup"):
                return parse.order(self._trading.get_order_by_client_id(client_order_id))
        except NotFound:
            return None

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (up to 500, newest first), optionally for one symbol."""
        with translated("open orders"):
            query = GetOrdersRequest(
                status=alpaca_enums.QueryOrderStatus.OPEN,
                limit=OPEN_ORDERS_LIMIT,
                symbols=[_ticker(symbol)] if symbol else None,
            )
            return [parse.order(o) for o in self._trading.get_orders(query)]

    def cancel_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """Cancel by client id (looked up first; Alpaca cancels by its own id).

        Alpaca cancels asynchronously: the order returned may still be OPEN (pending_cancel).
        """
        order = self.fetch_order(client_order_id, symbol)
        if order is None or order.status is not OrderStatus.OPEN:
            return order
        try:
            with translated("cancel"):
                self._trading.cancel_order_by_id(order.venue_order_id)
        except VenueRefused as exc:
            # 422: filled or canceled meanwhile; 404: gone. The lookup below reports which.
            if exc.status not in (404, 422):
                raise
        return self.fetch_order(client_order_id, symbol)

    def close(self) -> None:
        """Close both HTTP sessions."""
        self._trading._session.close()
        self._data._session.close()
