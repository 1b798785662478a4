"""Alpaca on the loopback emulator: the trading API and the market data API on one server.

Speaks enough of ``/v2`` for alpaca-py's ``TradingClient`` and ``StockHistoricalDataClient``:
account, positions, assets, orders (by id and by ``client_order_id``), stock bars and the
latest quote / trade. Symbols are plain tickers (``SPY``); the shared ``Market`` spells them
``SPY/USD``. Error bodies use Alpaca's documented shape ``{"code": 40110000, "message": ...}``;
note that Alpaca answers insufficient buying power with HTTP 403.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from .core import EmuOrder, Ledger, Market, Rejected
from .server import AuthFailed, Request, Response, Venue

QUOTE = "USD"
EXCHANGES = {"SPY": "ARCA", "AAPL": "NASDAQ", "MSFT": "NASDAQ"}
TIMEFRAME_UNITS = {"Min": 60, "Hour": 3600, "Day": 86400, "Week": 7 * 86400}

# Alpaca's documented error codes and messages, by the emulator's venue-neutral code.
ERRORS = {
    "auth": (401, 40110000, "request is not authorized"),
    "forbidden": (403, 40310000, "access forbidden"),
    "rate_limit": (429, 42910000, "rate limit exceeded"),
    "insufficient_funds": (403, 40310000, "insufficient buying power"),
    "order_not_found": (404, 40410000, "order not found"),
    "invalid_order": (422, 40010001, "invalid order"),
    "unknown_symbol": (422, 40010001, "asset not found"),
    "duplicate_client_id": (422, 40010001, "client_order_id must be unique"),
    "server": (500, 50010000, "internal server error"),
}


ZERO_ACCOUNT_FIELDS = [
    "daytrading_buying_power",
    "short_market_value",
    "initial_margin",
    "maintenance_margin",
    "last_maintenance_margin",
    "sma",
    "accrued_fees",
    "pending_transfer_in",
]
FALSE_ACCOUNT_FLAGS = [
    "pattern_day_trader",
    "trading_blocked",
    "transfers_blocked",
    "account_blocked",
    "shorting_enabled",
    "trade_suspended_by_user",
]
# Order fields NIJA's orders never use; Alpaca sends them as null.
NULL_ORDER_FIELDS = [
    "expired_at",
    "failed_at",
    "replaced_at",
    "replaced_by",
    "replaces",
    "stop_price",
    "legs",
    "trail_percent",
    "trail_price",
    "hwm",
    "subtag",
    "source",
    "expires_at",
]


def _invalid(message: str) -> Response:
    """Alpaca's 422 for an order it cannot accept as sent."""
    return Response(422, {"code": 40010001, "message": message})


def _iso(ms: int | float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat().replace("+00:00", "Z")


def _num(value: float | None) -> str | None:
    return None if value is None else repr(float(value))


def _order_uuid(order_id: str) -> str:
    return str(uuid.UUID(int=int(order_id)))


def _asset_uuid(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-emulator/{symbol}"))


class AlpacaVenue(Venue):
    """Alpaca's trading and data REST APIs over one ``Market``; one ``Ledger`` per API key."""

    name = "ALPACA"

    def __init__(self, market: Market | None = None) -> None:
        super().__init__(market or Market())
        self._tif: dict[str, str] = {}  # venue order id → time_in_force as sent
        self.canned: dict[str, Response] = {}  # route name → a fixed answer (bad shapes in tests)
        v2 = r"/v2"
        self.route("GET", v2 + r"/account", "balance", self._account)
        self.route("GET", v2 + r"/positions", "positions", self._positions)
        self.route("GET", v2 + r"/assets/(?P<symbol>[^/]+)", "markets", self._asset)
        self.route("POST", v2 + r"/orders", "create_order", self._create_order)
        self.route("GET", v2 + r"/orders:by_client_order_id", "fetch_order", self._by_client_id)
        self.route("GET", v2 + r"/orders", "open_orders", self._orders)
        self.route("GET", v2 + r"/orders/(?P<oid>[0-9a-f-]+)", "fetch_order_by_id", self._by_id)
        self.route("DELETE", v2 + r"/orders/(?P<oid>[0-9a-f-]+)", "cancel_order", self._cancel)
        self.route("GET", v2 + r"/stocks/bars", "candles", self._bars)
        self.route("GET", v2 + r"/stocks/quotes/latest", "ticker", self._latest_quote)
        self.route("GET", v2 + r"/stocks/trades/latest", "last_trade", self._latest_trade)

    def reset(self, market: Market | None = None) -> None:
        """Forget every account, order and canned answer (one server shared by many tests)."""
        self.market = market or Market()
        self.accounts.clear()
        self.secrets.clear()
        self.canned.clear()
        self._tif.clear()

    # -- hooks --------------------------------------------------------------
    def route(self, method: str, pattern: str, name: str, handler) -> None:
        """Like ``Venue.route``, but a response put in ``canned[name]`` wins (valid JSON, odd shape)."""

        def answer(req: Request) -> Response:
            canned = self.canned.get(name)
            return canned if canned is not None else handler(req)

        super().route(method, pattern, name, answer)

    def add_account(
        self, api_key: str, secret: str = "", balances: dict[str, float] | None = None, **extra
    ) -> Ledger:
        """An account; ``balances`` holds USD cash and share counts by ticker (``{"SPY": 2}``)."""
        ledger = super().add_account(api_key, secret, balances, **extra)
        ledger.fee_rate = 0.0  # Alpaca stock trades are commission-free
        return ledger

    def account_for(self, req: Request) -> Ledger:
        key = req.headers.get("apca-api-key-id", "")
        secret = req.headers.get("apca-api-secret-key", "")
        if key not in self.accounts or self.secrets.get(key) != secret:
            raise AuthFailed(key)
        return self.accounts[key]

    def error_response(self, code: str, status: int | None = None) -> Response:
        if code == "auth" and status == 403:
            code = "forbidden"
        if code in ERRORS:
            default_status, api_code, message = ERRORS[code]
            status = status or default_status
        else:  # "status": a generic body for any HTTP status
            status = status or 500
            api_code, message = status * 100000, f"http status {status}"
        return Response(status, {"code": api_code, "message": message})

    # -- helpers ------------------------------------------------------------
    def _canonical(self, ticker: str) -> str | None:
        symbol = f"{ticker.upper()}/{QUOTE}"
        return symbol if self.market.has(symbol) else None

    def _order_json(self, order: EmuOrder) -> dict:
        ticker = order.base
        created = _iso(order.created_ms)
        notional = order.quote_amount  # set only for orders sized in dollars
        return {
            "id": _order_uuid(order.order_id),
            "client_order_id": order.client_order_id,
            "created_at": created,
            "updated_at": created,
            "submitted_at": created,
            "filled_at": created if order.status == "filled" else None,
            "canceled_at": created if order.status == "canceled" else None,
            "asset_id": _asset_uuid(ticker),
            "symbol": ticker,
            "asset_class": "us_equity",
            "notional": _num(notional),
            "qty": None if notional is not None else _num(order.amount),
            "filled_qty": _num(order.filled),
            "filled_avg_price": _num(order.average_price),
            "order_class": "",
            "order_type": order.type,
            "type": order.type,
            "side": order.side,
            "position_intent": "buy_to_open" if order.side == "buy" else "sell_to_close",
            "time_in_force": self._tif.get(order.order_id, "day"),
            "limit_price": _num(order.limit_price),
            "status": "new" if order.status == "open" else order.status,
            "extended_hours": False,
            **dict.fromkeys(NULL_ORDER_FIELDS),
        }

    def _find_by_uuid(self, ledger: Ledger, oid: str) -> EmuOrder | None:
        try:
            order_id = str(uuid.UUID(oid).int)
        except ValueError:
            return None
        return ledger.find(order_id=order_id)

    # -- trading routes -----------------------------------------------------
    def _account(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        cash = ledger.balance(QUOTE)
        long_value = sum(p["market_value_f"] for p in self._position_rows(ledger))
        equity = cash + long_value
        return Response(
            200,
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-emulator/account/{id(ledger)}")),
                "account_number": "PA0000EMU",
                "status": "ACTIVE",
                "crypto_status": "ACTIVE",
                "currency": "USD",
                "cash": _num(cash),
                "buying_power": _num(max(cash, 0.0)),
                "regt_buying_power": _num(max(cash, 0.0)),
                "non_marginable_buying_power": _num(max(cash, 0.0)),
                "portfolio_value": _num(equity),
                "equity": _num(equity),
                "last_equity": _num(equity),
                "long_market_value": _num(long_value),
                "daytrade_count": 0,
                "multiplier": "1",
                "created_at": "2024-01-02T15:00:00Z",
                **dict.fromkeys(ZERO_ACCOUNT_FIELDS, "0"),
                **dict.fromkeys(FALSE_ACCOUNT_FLAGS, False),
            },
        )

    def _position_rows(self, ledger: Ledger) -> list[dict]:
        rows = []
        for currency, qty in sorted(ledger.snapshot().items()):
            symbol = self._canonical(currency) if currency != QUOTE else None
            if symbol is None or abs(qty) < 1e-12:
                continue
            price = self.market.price(symbol)
            buys = [
                o
                for o in ledger.all_orders()
                if o.symbol == symbol and o.side == "buy" and o.status == "filled"
            ]
            bought = sum(o.filled for o in buys)
            avg = sum(o.filled * o.average_price for o in buys) / bought if bought else price
            rows.append(
                {
                    "asset_id": _asset_uuid(currency),
                    "symbol": currency,
                    "exchange": EXCHANGES.get(currency, "NYSE"),
                    "asset_class": "us_equity",
                    "asset_marginable": True,
                    "avg_entry_price": _num(avg),
                    "qty": _num(qty),
                    "qty_available": _num(qty),
                    "side": "long" if qty > 0 else "short",
                    "market_value": _num(qty * price),
                    "cost_basis": _num(qty * avg),
                    "unrealized_pl": _num(qty * (price - avg)),
                    "unrealized_plpc": _num((price - avg) / avg if avg else 0.0),
                    "current_price": _num(price),
                    "lastday_price": _num(price),
                    **dict.fromkeys(("unrealized_intraday_pl", "unrealized_intraday_plpc"), "0"),
                    "change_today": "0",
                    "market_value_f": qty * price,
                }
            )
        return rows

    def _positions(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        rows = self._position_rows(ledger)
        for row in rows:
            del row["market_value_f"]
        return Response(200, rows)

    def _asset(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        ticker = req.match["symbol"].upper()
        if self._canonical(ticker) is None:
            return Response(404, {"code": 40410000, "message": f"asset not found for {ticker}"})
        return Response(
            200,
            {
                "id": _asset_uuid(ticker),
                "class": "us_equity",
                "exchange": EXCHANGES.get(ticker, "NYSE"),
                "symbol": ticker,
                "name": f"{ticker} (emulated)",
                "status": "active",
                "tradable": True,
                "marginable": True,
                "shortable": True,
                "easy_to_borrow": True,
                "fractionable": True,
                "maintenance_margin_requirement": 30,
                "attributes": [],
            },
        )

    def _create_order(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        body = req.json()
        missing = [k for k in ("symbol", "side", "type", "time_in_force") if not body.get(k)]
        if missing:
            return _invalid(f"{missing[0]} is required")
        qty, notional = body.get("qty"), body.get("notional")
        if (qty is None) == (notional is None):
            return _invalid("qty or notional is required, not both")
        type_ = body["type"]
        if type_ not in ("market", "limit") or body["side"] not in ("buy", "sell"):
            return self.error_response("invalid_order")
        if type_ == "limit" and (notional is not None or body.get("limit_price") is None):
            return _invalid("limit orders require qty and limit_price")
        symbol = self._canonical(body["symbol"])
        if symbol is None:
            return _invalid(f'asset "{body["symbol"]}" not found')
        try:
            order = ledger.place(
                symbol,
                body["side"],
                type_,
                amount=float(qty) if qty is not None else None,
                quote_amount=float(notional) if notional is not None else None,
                limit_price=float(body["limit_price"]) if type_ == "limit" else None,
                client_order_id=body.get("client_order_id"),
            )
        except Rejected as exc:
            if exc.code == "insufficient_funds" and body["side"] == "sell":
                message = f"insufficient qty available for order (requested: {qty})"
                return Response(403, {"code": 40310000, "message": message})
            known = exc.code if exc.code in ERRORS else "invalid_order"
            return self.error_response(known)
        self._tif[order.order_id] = body["time_in_force"]
        return Response(200, self._order_json(order))

    def _by_client_id(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        ledger.match_limits()
        order = ledger.find(client_order_id=req.query.get("client_order_id", ""))
        if order is None:
            return self.error_response("order_not_found")
        return Response(200, self._order_json(order))

    def _by_id(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        order = self._find_by_uuid(ledger, req.match["oid"])
        if order is None:
            return self.error_response("order_not_found")
        return Response(200, self._order_json(order))

    def _orders(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        status = req.query.get("status", "open")
        tickers = {s.upper() for s in req.query.get("symbols", "").split(",") if s}
        ledger.match_limits()
        orders = ledger.all_orders()
        if status == "open":
            orders = [o for o in orders if o.status == "open"]
        elif status == "closed":
            orders = [o for o in orders if o.status != "open"]
        if tickers:
            orders = [o for o in orders if o.base in tickers]
        limit = int(req.query.get("limit", 50))
        orders = sorted(orders, key=lambda o: int(o.order_id), reverse=True)[:limit]
        return Response(200, [self._order_json(o) for o in orders])

    def _cancel(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        order = self._find_by_uuid(ledger, req.match["oid"])
        if order is None:
            return self.error_response("order_not_found")
        if order.status != "open":
            return Response(422, {"code": 42210000, "message": "order is not cancelable"})
        ledger.cancel(order)
        return Response(204, b"")

    # -- market data routes -------------------------------------------------
    def _data_symbols(self, req: Request) -> list[tuple[str, str]]:
        tickers = [s.strip().upper() for s in req.query.get("symbols", "").split(",") if s.strip()]
        pairs = [(t, self._canonical(t)) for t in tickers]
        return [(t, s) for t, s in pairs if s is not None]

    def _bars(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        timeframe = req.query.get("timeframe", "1Day")
        unit = next((u for u in TIMEFRAME_UNITS if timeframe.endswith(u)), None)
        if unit is None or not timeframe[: -len(unit)].isdigit():
            return Response(400, {"code": 40010001, "message": "invalid timeframe"})
        seconds = int(timeframe[: -len(unit)]) * TIMEFRAME_UNITS[unit]
        limit = min(int(req.query.get("limit") or 1000), 10000)
        out = {}
        for ticker, symbol in self._data_symbols(req):
            rows = self.market.candles(symbol, seconds, limit)
            bars = [
                {
                    "t": _iso(r[0]),
                    "o": r[1],
                    "h": r[2],
                    "l": r[3],
                    "c": r[4],
                    "v": r[5],
                    "n": 10,
                    "vw": (r[2] + r[3] + r[4]) / 3,
                }
                for r in rows
            ]
            if req.query.get("sort") == "desc":
                bars.reverse()
            out[ticker] = bars
        return Response(200, {"bars": out, "next_page_token": None})

    def _latest_quote(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        now = _iso(datetime.now(UTC).timestamp() * 1000)
        quotes = {}
        for ticker, symbol in self._data_symbols(req):
            bid, ask = self.market.bid_ask(symbol)
            quotes[ticker] = {
                "t": now,
                "ax": "V",
                "ap": ask,
                "as": 3,
                "bx": "V",
                "bp": bid,
                "bs": 2,
                "c": ["R"],
                "z": "B",
            }
        return Response(200, {"quotes": quotes})

    def _latest_trade(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        now = _iso(datetime.now(UTC).timestamp() * 1000)
        trades = {
            ticker: {
                "t": now,
                "x": "V",
                "p": self.market.price(symbol),
                "s": 100,
                "c": ["@"],
                "i": 1,
                "z": "B",
            }
            for ticker, symbol in self._data_symbols(req)
        }
        return Response(200, {"trades": trades})
