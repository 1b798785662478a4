"""Alpaca on the loopback emulator: the trading API and the market data API on one server.

Speaks enough of ``/v2`` for alpaca-py's ``TradingClient`` and ``StockHistoricalDataClient``:
account, positions, assets, orders (by id and by ``client_order_id``), stock bars and the
latest quote / trade. Symbols are plain tickers (``SPY``); the shared ``Market`` spells them
``SPY/USD``. Error bodies use Alpaca's documented shape ``{"code": 40110000, "message": ...}``;
note that Alpaca answers insufficient buying power with HTTP 403.

As the real venue: stock trades are commission-free (no fee on the order); a
``client_order_id`` is unique among all the account's orders, open or closed; an order is
found by client id whatever its state; assets carry ``fractionable`` and orders obey
Alpaca's fractional, minimum-notional and price-increment rules (``alpaca_rules``); bars
come in pages of at most ``bars_page_size`` with a ``next_page_token``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from . import alpaca_json as aj
from . import alpaca_rules
from .core import EmuOrder, Ledger, Market, Rejected
from .server import AuthFailed, Request, Response, Venue

QUOTE = "USD"
TIMEFRAME_UNITS = {"Min": 60, "Hour": 3600, "Day": 86400, "Week": 7 * 86400}
MAX_RANGE_BARS = 50_000  # the emulator's bound on one request's range (the newest are kept)


class AlpacaVenue(Venue):
    """Alpaca's trading and data REST APIs over one ``Market``; one ``Ledger`` per API key."""

    name = "ALPACA"

    def __init__(self, market: Market | None = None) -> None:
        super().__init__(market or Market())
        self._tif: dict[str, str] = {}  # venue order id → time_in_force as sent
        self.canned: dict[str, Response] = {}  # route name → a fixed answer (bad shapes in tests)
        self.not_fractionable: set[str] = set()  # tickers whose asset says fractionable: false
        self.bars_page_size = alpaca_rules.BARS_MAX_LIMIT  # smaller in tests that page
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
        self.not_fractionable.clear()
        self.bars_page_size = alpaca_rules.BARS_MAX_LIMIT

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
        if code in aj.ERRORS:
            default_status, api_code, message = aj.ERRORS[code]
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
        return aj.order(order, self._tif.get(order.order_id, "day"))

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
                "cash": aj.num(cash),
                "buying_power": aj.num(max(cash, 0.0)),
                "regt_buying_power": aj.num(max(cash, 0.0)),
                "non_marginable_buying_power": aj.num(max(cash, 0.0)),
                "portfolio_value": aj.num(equity),
                "equity": aj.num(equity),
                "last_equity": aj.num(equity),
                "long_market_value": aj.num(long_value),
                "daytrade_count": 0,
                "multiplier": "1",
                "created_at": "2024-01-02T15:00:00Z",
                **dict.fromkeys(aj.ZERO_ACCOUNT_FIELDS, "0"),
                **dict.fromkeys(aj.FALSE_ACCOUNT_FLAGS, False),
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
                    "asset_id": aj.asset_uuid(currency),
                    "symbol": currency,
                    "exchange": aj.EXCHANGES.get(currency, "NYSE"),
                    "asset_class": "us_equity",
                    "asset_marginable": True,
                    "avg_entry_price": aj.num(avg),
                    "qty": aj.num(qty),
                    "qty_available": aj.num(qty),
                    "side": "long" if qty > 0 else "short",
                    "market_value": aj.num(qty * price),
                    "cost_basis": aj.num(qty * avg),
                    "unrealized_pl": aj.num(qty * (price - avg)),
                    "unrealized_plpc": aj.num((price - avg) / avg if avg else 0.0),
                    "current_price": aj.num(price),
                    "lastday_price": aj.num(price),
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
        return Response(200, aj.asset(ticker, fractionable=ticker not in self.not_fractionable))

    def _create_order(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        body = req.json()
        missing = [k for k in ("symbol", "side", "type", "time_in_force") if not body.get(k)]
        if missing:
            return aj.invalid(f"{missing[0]} is required")
        qty, notional = body.get("qty"), body.get("notional")
        if (qty is None) == (notional is None):
            return aj.invalid("qty or notional is required, not both")
        type_ = body["type"]
        if type_ not in ("market", "limit") or body["side"] not in ("buy", "sell"):
            return self.error_response("invalid_order")
        if type_ == "limit" and (notional is not None or body.get("limit_price") is None):
            return aj.invalid("limit orders require qty and limit_price")
        symbol = self._canonical(body["symbol"])
        if symbol is None:
            return aj.invalid(f'asset "{body["symbol"]}" not found')
        refusal = alpaca_rules.order_refusal(
            body,
            fractionable=body["symbol"].upper() not in self.not_fractionable,
            price=self.market.price(symbol),
        )
        if refusal is not None:
            return refusal
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
            known = exc.code if exc.code in aj.ERRORS else "invalid_order"
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
        try:
            limit = int(req.query.get("limit") or alpaca_rules.BARS_DEFAULT_LIMIT)
            start_ms, end_ms = (
                aj.time_param(req.query.get("start")),
                aj.time_param(req.query.get("end")),
            )
        except ValueError:
            return Response(400, {"code": 40010001, "message": "invalid limit, start or end"})
        if not 1 <= limit <= alpaca_rules.BARS_MAX_LIMIT:
            return Response(400, {"code": 40010001, "message": "invalid limit"})
        series = {
            ticker: self._bar_rows(symbol, seconds, limit, start_ms, end_ms)
            for ticker, symbol in self._data_symbols(req)
        }
        try:
            page, token = alpaca_rules.page_bars(
                series,
                desc=req.query.get("sort") == "desc",
                limit=limit,
                token=req.query.get("page_token"),
                page_size=self.bars_page_size,
            )
        except ValueError:
            return Response(400, {"code": 40010001, "message": "invalid page token"})
        bars = {ticker: [aj.bar(row) for row in rows] for ticker, rows in page.items()}
        return Response(200, {"bars": bars, "next_page_token": token})

    def _bar_rows(
        self, symbol: str, seconds: int, limit: int, start_ms: int | None, end_ms: int | None
    ) -> list[list[float]]:
        """The bars from ``start`` to ``end`` (now), oldest first; without a start, the
        newest ``limit``. Rows pinned with ``Market.set_candles`` are served whatever the range."""
        count = limit
        if start_ms is not None:
            step = seconds * 1000
            end = end_ms if end_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
            count = max(0, end // step - -(-start_ms // step) + 1)  # buckets start..end
        return self.market.candles(symbol, seconds, min(count, MAX_RANGE_BARS), end_ms)

    def _latest_quote(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        now = aj.iso(datetime.now(UTC).timestamp() * 1000)
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
        now = aj.iso(datetime.now(UTC).timestamp() * 1000)
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
