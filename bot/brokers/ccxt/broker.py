"""Kraken, OKX and Binance (spot) through ccxt, behind the narrow ``Broker`` interface.

No ccxt exception leaves this adapter: ``_sdk``, the one place ccxt is called, translates each
into the project's types (``bot.brokers.ccxt.errors``), chained ``from`` ccxt's. What escapes
ccxt's own hierarchy is converted there too: a secret ccxt cannot decode while signing
(``BrokerConfigError``), an answer that is not JSON or that ccxt's parser chokes on
(``BadResponse``); and an order the venue reports as rejected is ``OrderRejected``.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import ccxt

from bot.brokers.base import LOOPBACK_HOSTS, Broker, validate_credentials
from bot.brokers.budget import Budgets
from bot.brokers.ccxt.config import SUPPORTED_BROKERS, VENUES, redirect_urls
from bot.brokers.ccxt.convert import charged_fee, to_market_rules, to_order
from bot.brokers.ccxt.errors import translate
from bot.brokers.ccxt.status import venue_status
from bot.brokers.ccxt.throttle import spend_per_request
from bot.brokers.http_errors import HTTP_FAILURES, from_requests
from bot.brokers.transport import LastLook, Transport, mount
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
    Ticker,
    VenueStatus,
)

log = logging.getLogger(__name__)
# ccxt logs every request's headers (API key, OKX passphrase) at DEBUG: give it a logger
# that never emits DEBUG, whatever the root level is.
_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_SDK_LOG.setLevel(logging.INFO)

# Quote currencies tried, in order, to value a holding in USD.
_PRICING_QUOTES = ("USD", "USDT", "USDC", "FDUSD")
# The smallest per-request timeout once a call's overall budget is spent: the SDK then
# fails fast with its own RequestTimeout instead of us inventing an exception.
_MIN_REQUEST_SECONDS = 0.05


def _normalize_symbol(symbol: str) -> str:
    return symbol.strip().upper().replace("-", "/")


class CcxtBroker(Broker):
    """One Kraken, OKX or Binance spot account. Building it touches no network.

    Every HTTP request spends ``budgets`` (``bot.brokers.ccxt.throttle``); ccxt's own
    throttle is off, because its spacing counted inside the call's deadline.
    """

    asset_class = AssetClass.CRYPTO

    def __init__(
        self, spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
    ) -> None:
        self.account = spec.account
        self._clock = clock
        self.name = spec.account.broker
        venue = VENUES.get(self.name)
        if venue is None:
            raise BrokerConfigError(f"{self.name} is not a ccxt broker ({sorted(VENUES)})")
        validate_credentials(spec)
        self._venue = venue
        self._spec = spec
        self._timeout_s = float(spec.timeout_seconds)
        creds = spec.credentials
        config: dict[str, Any] = {
            "apiKey": creds.api_key,
            "secret": creds.api_secret,
            "timeout": int(self._timeout_s * 1000),
            "enableRateLimit": False,  # our budgets instead, outside the deadline
            "enableLastJsonResponse": True,  # lets us tell a non-JSON answer from a real one
            "logger": _SDK_LOG,
            "options": {**venue.options, "maxRetriesOnFailure": 0},
        }
        if creds.passphrase:
            config["password"] = creds.passphrase
        if venue.has:
            config["has"] = dict(venue.has)
        self._ex = getattr(ccxt, venue.ccxt_id)(config)
        if spec.base_url:
            self._ex.urls["api"] = redirect_urls(
                self._ex.urls["api"], spec.base_url, getattr(self._ex, "hostname", None)
            )
        host = urlsplit(spec.base_url).hostname if spec.base_url else None
        if host in LOOPBACK_HOSTS:
            self._ex.session.trust_env = False  # never route loopback through a proxy
        self._last_look = LastLook()  # an order's, armed around its create_order
        mount(self._ex.session, Transport(last_look=self._last_look))
        self._deadline: float | None = None
        if budgets is not None:
            spend_per_request(self._ex, budgets, venue.request_costs, self._throttled)
        self._reload_markets = False

    def __repr__(self) -> str:
        return f"CcxtBroker({self.account.key})"

    # -- plumbing -----------------------------------------------------------
    @contextmanager
    def _budget(self) -> Iterator[None]:
        """Bound one public call (however many requests it makes) by ``timeout_seconds``."""
        outer = self._deadline is None
        if outer:
            self._deadline = self._clock.monotonic() + self._timeout_s
        try:
            yield
        finally:
            if outer:
                self._deadline = None

    def _throttled(self, waited: float) -> None:
        """After a request waited on its budget: push the call's deadline back by the wait
        (a throttle wait never counts against the timeout) and time the request by it."""
        if self._deadline is not None:
            self._deadline += waited
            remaining = max(self._deadline - self._clock.monotonic(), _MIN_REQUEST_SECONDS)
            self._ex.timeout = int(min(remaining, self._timeout_s) * 1000)

    def _sdk(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ccxt within the remaining budget; every failure leaves as a ``bot.errors`` type."""
        if self._deadline is not None:
            remaining = max(self._deadline - self._clock.monotonic(), _MIN_REQUEST_SECONDS)
            self._ex.timeout = int(min(remaining, self._timeout_s) * 1000)
        self._ex.last_http_response = None
        self._ex.last_json_response = None
        try:
            result = fn(*args, **kwargs)
        except ccxt.BaseError as exc:
            raise translate(exc) from exc
        except HTTP_FAILURES as exc:  # ccxt wraps these; never let one slip out
            raise from_requests(exc, self.name) from exc
        except binascii.Error:
            # ccxt decodes the secret while signing; the message must not carry the value.
            raise BrokerConfigError(
                f"{self.account.key}: the API secret is not valid base64 (check that account's _API_SECRET)"
            ) from None
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            # ccxt's parsers index into the answer; a malformed one escapes as these.
            raise BadResponse(
                f"{self.name} sent an answer the SDK could not parse ({type(exc).__name__})"
            ) from exc
        if self._ex.last_http_response is not None and self._ex.last_json_response is None:
            raise BadResponse(f"{self.name} answered with a body that is not JSON")
        return result

    def adopt_metadata(self, source: Broker) -> bool:
        """Take the markets and currencies another client of this venue loaded (ccxt's
        ``set_markets_from_exchange``: shared, not copied); True when this client has them."""
        if self._ex.markets:
            return True
        if not isinstance(source, CcxtBroker) or source.name != self.name:
            return False
        loaded = source._ex
        if not loaded.markets or not loaded.markets_by_id:
            return False
        self._ex.set_markets_from_exchange(loaded)
        return True

    def _markets(self) -> dict[str, dict]:
        """Market metadata, loaded once per broker object (ccxt caches it) unless adopted
        from another client, and again after ``refresh_markets``."""
        markets = self._sdk(self._ex.load_markets, self._reload_markets)
        if not isinstance(markets, dict) or not markets:
            raise BadResponse(f"{self.name} returned no markets")
        self._reload_markets = False
        return markets

    def refresh_markets(self) -> None:
        """The next call that needs the markets loads them again."""
        self._reload_markets = True

    # -- market data --------------------------------------------------------
    def market_rules(self, symbol: str) -> MarketRules:
        """Lot step, minimum amount, minimum notional and price step of ``symbol``, from the
        market metadata ccxt loaded (once per broker object)."""
        symbol = _normalize_symbol(symbol)
        with self._budget():
            markets = self._markets()
        market = markets.get(symbol)
        if market is None:
            raise NotFound(f"{self.name} lists no market {symbol}")
        return to_market_rules(symbol, market, self._ex.precisionMode)

    def symbols(self) -> list[str]:
        """The configured symbols the venue lists, in configured order."""
        with self._budget():
            markets = self._markets()
        wanted = [_normalize_symbol(s) for s in self._spec.symbols]
        return [s for i, s in enumerate(wanted) if s in markets and s not in wanted[:i]]

    def fetch_ticker(self, symbol: str) -> Ticker:
        """Best bid, best ask and last trade price."""
        with self._budget():
            return self._ticker(_normalize_symbol(symbol))

    def _ticker(self, symbol: str) -> Ticker:
        self._markets()
        raw = self._sdk(self._ex.fetch_ticker, symbol)
        bid, ask, last = raw.get("bid"), raw.get("ask"), raw.get("last")
        if last is None:
            last = raw.get("close")
        if bid is None or ask is None or last is None:
            raise BadResponse(f"{self.name} ticker for {symbol} lacks bid/ask/last")
        return Ticker(symbol=symbol, bid=float(bid), ask=float(ask), last=float(last))

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """OHLCV, oldest first, timestamps in UTC milliseconds."""
        symbol = _normalize_symbol(symbol)
        with self._budget():
            self._markets()
            # Kraken always answers its latest 720 candles and ccxt would keep the *oldest*
            # ``limit`` of them: ask for all and keep the newest here.
            venue_limit = None if self.name == "KRAKEN" else limit
            rows = self._sdk(self._ex.fetch_ohlcv, symbol, timeframe, None, venue_limit)
        if not isinstance(rows, list) or any(
            not isinstance(r, list) or len(r) < 6 or any(v is None for v in r[:6]) for r in rows
        ):
            raise BadResponse(f"{self.name} candles for {symbol} are incomplete")
        return Candles.from_rows([r[:6] for r in rows[-limit:]])

    def fetch_status(self) -> VenueStatus:
        """The venue's public status check: one unauthenticated request (bot.brokers.ccxt.status)."""
        with self._budget():
            raw = self._sdk(self._ex.fetch_status)
        return venue_status(self.name, raw.get("info") if isinstance(raw, dict) else None)

    # -- account ------------------------------------------------------------
    def _totals(self, params: dict[str, Any] | None = None) -> dict[str, float]:
        return self._amounts(params)[0]

    def _amounts(
        self, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, float], dict[str, float] | None]:
        """Totals per currency, and what orders may spend now (None when the venue says not)."""
        raw = self._sdk(self._ex.fetch_balance, params or {})
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
        markets = self._markets()
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
            price = self._ticker(symbol).last  # a failed pricing call propagates
            value = qty * price
            if value >= DUST_USD:
                held.append(Position(symbol=symbol, quantity=qty, market_value_usd=value))
        return held

    def fetch_balance(self) -> Balance:
        """Cash per currency; equity adds every non-dust holding at its last price.

        OKX keeps a funding account beside the trading one: what it holds cannot trade, so
        it is not equity; it is reported in ``funding_usd`` and a note for the operator.
        """
        with self._budget():
            self._markets()
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
        except BrokerError as exc:
            return 0.0, (f"OKX funding account not read ({type(exc).__name__})",)
        if not totals:
            return 0.0, ()
        held = ", ".join(f"{qty:g} {code}" for code, qty in sorted(totals.items()))
        return usd, (
            f"{held} (${usd:,.2f}) held in the OKX funding account; transfer to trading to trade",
        )

    def fetch_positions(self) -> list[Position]:
        """Spot holdings above dust."""
        with self._budget():
            self._markets()
            return self._holdings(self._totals())

    # -- orders -------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> Order:
        """Send one order with its client id in the venue's own field; the order as accepted."""
        symbol = _normalize_symbol(request.symbol)
        side = request.side.value
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        with self._budget():
            self._markets()
            amount = request.amount
            if request.type is OrderType.LIMIT:
                args = (symbol, "limit", side, amount, request.limit_price, params)
            elif amount is not None:
                args = (symbol, "market", side, amount, None, params)
            else:
                assert request.quote_amount is not None  # OrderRequest: amount or quote_amount
                args = self._notional_args(symbol, side, float(request.quote_amount), params)
            with self._last_look.armed(request.last_look):
                raw = self._sdk(self._ex.create_order, *args)
            order = to_order(self.name, raw, request.client_order_id)
            if raw.get("status") is None:
                # Kraken and OKX answer an order with its id only: ask for its state.
                raw = self._sdk(self._ex.fetch_order, order.venue_order_id, symbol)
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
        with self._budget():
            self._markets()
            if not self._venue.lookup_needs_symbol:
                return self._kraken_lookup(client_order_id)
            for candidate in self._lookup_symbols(symbol):
                try:
                    raw = self._sdk(
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
        trades = self._sdk(self._ex.fetch_order_trades, order.venue_order_id, order.symbol)
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
            raws = self._sdk(fetch, None, None, None, params)
            matches = [r for r in raws if r.get("clientOrderId") == client_order_id]
            if matches:
                newest = max(matches, key=lambda r: r.get("timestamp") or 0)
                return to_order(self.name, newest, client_order_id)
        return None

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Every open order (of one market when ``symbol`` is given)."""
        sym = _normalize_symbol(symbol) if symbol else None
        with self._budget():
            self._markets()
            raws = self._sdk(self._ex.fetch_open_orders, sym)
        return [to_order(self.name, r) for r in raws]

    def cancel_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """Cancel by client id; the order afterwards, or None when the venue has no such order."""
        with self._budget():
            current = self.fetch_order(client_order_id, symbol)
            if current is None or current.status is not OrderStatus.OPEN:
                return current
            try:
                self._sdk(
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
        self._ex.session.close()


__all__ = ["SUPPORTED_BROKERS", "CcxtBroker", "redirect_urls"]
