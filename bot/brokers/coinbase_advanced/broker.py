"""Coinbase Advanced Trade through coinbase-advanced-py's ``RESTClient`` (JWT keys, not ccxt).

No SDK exception leaves this adapter: ``_request``, the one place the SDK is called,
translates ``requests``' errors (an HTTP error status with its response, timeouts, connection
errors, a body that is not JSON) into the project's types (``bot.brokers.http_errors``),
chained ``from`` the SDK's. Converted too: an unusable key or base URL → BrokerConfigError;
an answer of the wrong shape → BadResponse; an order refused inside HTTP 200
(``success: false``) → OrderRejected (InsufficientFunds).

The order endpoints are read as the JSON Coinbase sent (``_raw``, still signed and sent by
the SDK): the SDK's typed responses raise on shapes Coinbase really sends, such as
``"order_configuration": null`` in a create-order answer, after the order exists.

Built without credentials (the venue's shared market-data client, ``bot.venue``), it reads
products, candles and trades from Coinbase's public endpoints
(``/api/v3/brokerage/market/...``, the SDK's ``get_public_*``), unsigned; its account and
order methods raise ``BrokerConfigError``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR
from typing import Any
from urllib.parse import quote as url_quote

from coinbase.constants import API_PREFIX
from coinbase.rest import RESTClient

from bot.brokers.base import Broker, ValuationPrices, validate_credentials
from bot.brokers.budget import Budgets
from bot.brokers.coinbase_advanced import parse
from bot.brokers.coinbase_advanced.client import build_client, check_credentials, endpoint_for
from bot.brokers.http_errors import HTTP_FAILURES, from_requests
from bot.brokers.transport import LastLook
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import BadResponse, BrokerConfigError, BrokerError, NotFound, OrderRejected
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
    Side,
    Ticker,
    timeframe_seconds,
)

MAX_CANDLES = 350  # Coinbase's limit per candles request
ACCOUNTS_PAGE = 250
ORDERS_PAGE = 250
MAX_PAGES = 8  # bound on every paginated walk; beyond it we raise rather than guess
QUOTES_FOR_VALUATION = ("USD", "USDC", "USDT")


class CoinbaseBroker(Broker):
    """One Coinbase Advanced Trade account. Construction never touches the network."""

    name = "COINBASE"
    asset_class = AssetClass.CRYPTO

    def __init__(
        self, spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
    ) -> None:
        self.spec = spec
        self.account = spec.account
        self._clock = clock
        self._budgets = budgets  # every request spends it (``_request``)
        self._client: RESTClient | None = None
        self._last_look = LastLook()  # an order's, armed around its request
        self._markets: dict[str, parse.Product] | None = None
        self._prices: ValuationPrices | None = None  # the venue's shared prices, once given

    def __repr__(self) -> str:
        return f"CoinbaseBroker(account={self.account.key!r})"

    # -- plumbing -------------------------------------------------------------
    @property
    def keyless(self) -> bool:
        """Built without credentials: public market data only."""
        creds = self.spec.credentials
        return not (creds.api_key or creds.api_secret)

    def _sdk(self, method: str = "") -> RESTClient:
        """The SDK client, built on first use; an unusable key or URL raises BrokerConfigError
        (so does a private ``method`` on a client built without credentials)."""
        if self.keyless and not method.startswith("get_public_"):
            check_credentials("", "")  # raises: both are required here
        if self._client is None:
            endpoint = endpoint_for(self.spec.base_url)
            if self.keyless:
                self._client = build_client(self.spec, endpoint)  # unsigned: public endpoints
                return self._client
            validate_credentials(self.spec, multiline_secret=True)  # the secret is a PEM
            try:
                client = build_client(self.spec, endpoint, self._last_look)
            except UnicodeDecodeError:  # the SDK unicode-unescapes the secret
                raise BrokerConfigError("Coinbase API secret has invalid escapes") from None
            check_credentials(client.api_key, client.api_secret)
            self._client = client
        return self._client

    def _market(self, method: str) -> str:
        """The SDK method for market data: its public twin on a client without credentials
        (``get_candles`` → ``get_public_candles``, at ``/market/products/{id}/candles``)."""
        return method.replace("get_", "get_public_", 1) if self.keyless else method

    def _request(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One SDK call, which is one HTTP request (SDK exceptions stay in here, translated).

        It spends the request budgets first: the per-IP one for Coinbase's public
        endpoints (``/market/...``, the SDK's ``get_public_*``), the key's one otherwise.
        The wait comes before the SDK's HTTP timeout starts, so it never counts against it.
        """
        fn = getattr(self._sdk(method), method)
        if self._budgets is not None:
            public = method.startswith("get_public_") or (
                bool(args) and str(args[0]).startswith(f"{API_PREFIX}/market/")
            )
            self._budgets.spend(public=1.0 if public else 0.0, private=0.0 if public else 1.0)
        try:
            return fn(*args, **kwargs)
        except HTTP_FAILURES as exc:  # requests' JSONDecodeError (a body that is not JSON) included
            raise from_requests(exc, f"Coinbase {what}") from exc
        except TypeError:
            # The SDK builds its response objects with ``**answer``: JSON of the wrong
            # shape (a list, a string, null) fails there, outside its own error types.
            raise BadResponse(f"Coinbase {what}: answer has the wrong shape") from None

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One SDK method, answered as a plain dict (SDK objects stay in here)."""
        return self._request(what, method, *args, **kwargs).to_dict()

    def _raw(self, what: str, http_method: str, path: str, **kwargs: Any) -> Any:
        """One request signed and sent by the SDK (``get``/``post``), answered as the JSON
        Coinbase sent, unparsed by the SDK's typed responses."""
        return self._request(what, http_method, f"{API_PREFIX}{path}", **kwargs)

    def _products(self) -> dict[str, parse.Product]:
        """Tradable spot products and their steps, loaded once per broker object."""
        if self._markets is None:
            self._markets = parse.products(
                self._call("products", self._market("get_products"), product_type="SPOT")
            )
        return self._markets

    def refresh_markets(self) -> None:
        """The next call that needs the products lists them again."""
        self._markets = None

    def value_holdings_with(self, prices: ValuationPrices) -> None:
        """Value holdings at ``prices`` (the venue's shared tickers): no ticker of its own."""
        self._prices = prices

    # -- market data ----------------------------------------------------------
    def symbols(self) -> list[str]:
        """The configured symbols Coinbase lists, in configured order."""
        markets = self._products()
        return [s for s in self.spec.symbols if parse.product_id(s) in markets]

    def market_rules(self, symbol: str) -> MarketRules:
        """The product's ``base_increment``, ``base_min_size``, ``quote_min_size`` (or
        ``min_market_funds``) and ``price_increment`` from List Products, loaded once.

        NotFound when Coinbase lists no tradable product of that name.
        """
        product = parse.product_id(symbol)
        found = self._products().get(product)
        if found is None:
            raise NotFound(f"Coinbase lists no tradable product {product}")
        return found.rules(parse.symbol_of(product))

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """Up to ``min(limit, 350)`` candles ending now, oldest first (Coinbase answers newest first)."""
        if timeframe not in parse.GRANULARITY:
            raise ValueError(f"Coinbase has no {timeframe!r} candles")
        tf = timeframe_seconds(timeframe)
        count = max(1, min(int(limit), MAX_CANDLES))
        now = int(self._clock.wall())
        start = now // tf * tf - (count - 1) * tf  # ``count`` buckets, the current one last
        data = self._call(
            "candles",
            self._market("get_candles"),
            parse.product_id(symbol),
            start=str(start),
            end=str(now),
            granularity=parse.GRANULARITY[timeframe],
            limit=count,
        )
        return Candles.from_rows(parse.candle_rows(data))

    def fetch_ticker(self, symbol: str) -> Ticker:
        """Best bid/ask and the newest trade price."""
        data = self._call(
            "ticker", self._market("get_market_trades"), parse.product_id(symbol), limit=1
        )
        return parse.ticker(symbol, data)

    # -- account ----------------------------------------------------------------
    def _accounts(self) -> dict[str, tuple[float, float]]:
        """``currency → (available, hold)`` over every page of List Accounts."""
        totals: dict[str, tuple[float, float]] = {}
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            data = self._call("accounts", "get_accounts", limit=ACCOUNTS_PAGE, cursor=cursor)
            for currency, available, hold in parse.account_rows(data):
                a, h = totals.get(currency, (0.0, 0.0))
                totals[currency] = (a + available, h + hold)
            cursor = parse.next_cursor(data, "accounts")
            if cursor is None:
                return totals
        raise BadResponse(f"Coinbase accounts: more than {MAX_PAGES} pages")

    def _valuation_symbol(self, currency: str) -> str | None:
        """The market that prices ``currency`` in dollars, or None when there is none."""
        markets = self._products()
        for quote in QUOTES_FOR_VALUATION:
            if f"{currency}-{quote}" in markets:
                return f"{currency}/{quote}"
        return None

    def _valuation_price(self, symbol: str) -> float:
        """The last price a holding of ``symbol`` is valued at: the venue's shared one (its
        failure is the venue's ``VenueDataError``), else this account's own ticker."""
        if self._prices is not None:
            return self._prices.valuation_price(symbol)
        return self.fetch_ticker(symbol).last

    def _holdings(self, totals: dict[str, tuple[float, float]]) -> list[Position]:
        """Every non-USD holding worth at least DUST_USD, valued at last price (a price that
        cannot be had fails the call: the holding's value is unknown, never 0)."""
        positions = []
        for currency, (available, hold) in sorted(totals.items()):
            quantity = available + hold
            if currency in USD_LIKE or quantity <= 0:
                continue
            symbol = self._valuation_symbol(currency)
            if symbol is None:
                continue  # nothing to price it in: counts 0
            value = quantity * self._valuation_price(symbol)  # failures propagate
            if value >= DUST_USD:
                positions.append(Position(symbol, quantity, None, value))
        return positions

    def fetch_balance(self) -> Balance:
        """Available cash per currency; equity = all USD-like funds + non-dust holdings at last price."""
        totals = self._accounts()
        cash = {c: a for c, (a, _h) in totals.items() if a > 0}
        usd_cash = sum(a for c, (a, _h) in totals.items() if c in USD_LIKE)
        usd_total = sum(a + h for c, (a, h) in totals.items() if c in USD_LIKE)
        held = sum(p.market_value_usd or 0.0 for p in self._holdings(totals))
        return Balance(cash=cash, usd_cash=usd_cash, usd_equity=usd_total + held)

    def fetch_positions(self) -> list[Position]:
        """Spot holdings above dust, as ``BASE/USD`` (or USDC/USDT where that is the market)."""
        return self._holdings(self._accounts())

    # -- orders -----------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> Order:
        """Send the order with its client id in ``client_order_id``; the order as Coinbase then reports it.

        A refusal inside HTTP 200 raises OrderRejected. An accepted order is never turned
        into an error that reads as "not sent": when it cannot be read back yet, the answer
        is the acknowledged order (open), which ``fetch_order`` by client id resolves later.
        A client id Coinbase already knows creates nothing: it answers the existing order.
        """
        product = parse.product_id(request.symbol)
        steps = self._products().get(product) or parse.Product()
        if request.type is OrderType.MARKET:
            size = (
                {"base_size": parse.on_step(request.amount, steps.base_step)}
                if request.amount is not None
                else {
                    "quote_size": parse.on_step(float(request.quote_amount or 0), steps.quote_step)
                }
            )
            config: dict[str, Any] = {"market_market_ioc": size}
        else:
            # A buy's limit rounds down and a sell's up: never a worse price than asked.
            price_rounding = ROUND_FLOOR if request.side is Side.BUY else ROUND_CEILING
            config = {
                "limit_limit_gtc": {
                    "base_size": parse.on_step(float(request.amount or 0), steps.base_step),
                    "limit_price": parse.on_step(
                        float(request.limit_price or 0), steps.price_step, price_rounding
                    ),
                    "post_only": False,
                }
            }
        body = {
            "client_order_id": request.client_order_id,
            "product_id": product,
            "side": request.side.value.upper(),
            "order_configuration": config,
        }
        with self._last_look.armed(request.last_look):
            data = self._raw("create order", "post", "/orders", data=body)
        return self._created(request, parse.created_order_id(data))

    def _created(self, request: OrderRequest, venue_order_id: str | None) -> Order:
        """The order Coinbase just accepted, read back by its id (or client id)."""
        try:
            if venue_order_id is not None:
                return self._order_by_venue_id(venue_order_id)
            found = self.fetch_order(request.client_order_id, request.symbol)
        except BrokerError as exc:  # a 404 too: the order may not be visible yet
            if venue_order_id is not None:
                return parse.acknowledged(request, venue_order_id)
            raise BadResponse("Coinbase create order: accepted, but not readable yet") from exc
        if found is None:
            raise BadResponse("Coinbase create order: accepted, but not listed yet")
        return found

    def _order_by_venue_id(self, venue_order_id: str) -> Order:
        path = f"/orders/historical/{url_quote(venue_order_id, safe='')}"
        data = self._raw("get order", "get", path)
        return parse.order(parse.required(data, "order", "get order"))

    def _list_orders(
        self, symbol: str | None, status: str | None, client_order_id: str | None = None
    ) -> tuple[list[Order], bool]:
        """Walk List Orders newest first: (orders, complete?).

        With ``client_order_id`` the walk stops at that order and parses only it, so an
        unrelated order we cannot read (a manual stop order, say) never blocks the look-up.
        """
        found: list[Order] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = {
                "product_ids": [parse.product_id(symbol)] if symbol else None,
                "order_status": [status] if status else None,
                "limit": ORDERS_PAGE,
                "cursor": cursor,
            }
            data = self._raw("list orders", "get", "/orders/historical/batch", params=params)
            for raw in parse.listing(data, "orders", "list orders"):
                if client_order_id is None:
                    found.append(parse.order(raw))
                elif raw.get("client_order_id") == client_order_id:
                    return [parse.order(raw)], True
            cursor = parse.next_cursor(data, "list orders")
            if cursor is None:
                return found, True
        return found, False

    def fetch_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """The order with this client id, open or closed; None only when Coinbase's full
        list lacks it.

        Coinbase has no look-up by client id (Get Order takes the venue's id; List Orders
        has no client-id filter), so this walks List Orders with no status filter (every
        status: open, filled, cancelled, expired, failed), newest first, of the product when
        ``symbol`` is given, until the order or the end of the list. An order older than
        ``MAX_PAGES`` pages of ``ORDERS_PAGE`` raises BadResponse: never a guessed None.
        """
        found, complete = self._list_orders(symbol, None, client_order_id)
        if not complete:
            raise BadResponse(
                f"Coinbase list orders: client id not within the newest {MAX_PAGES} pages"
            )
        return found[0] if found else None

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Every open order (optionally of one symbol)."""
        found, complete = self._list_orders(symbol, "OPEN")
        if not complete:
            raise BadResponse(f"Coinbase open orders: more than {MAX_PAGES} pages")
        return [o for o in found if o.status is OrderStatus.OPEN]

    def cancel_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """Cancel by client id; the order afterwards, or None when Coinbase has no such order."""
        current = self.fetch_order(client_order_id, symbol)
        if current is None or current.status is not OrderStatus.OPEN:
            return current
        data = self._call("cancel orders", "cancel_orders", order_ids=[current.venue_order_id])
        ok, reason = parse.cancel_result(data, current.venue_order_id)
        after = self._order_by_venue_id(current.venue_order_id)
        if not ok and after.status is OrderStatus.OPEN:
            raise OrderRejected(f"cancel refused: {reason or 'no reason given'}")
        return after

    def close(self) -> None:
        """Release the HTTP session."""
        if self._client is not None:
            self._client.session.close()
