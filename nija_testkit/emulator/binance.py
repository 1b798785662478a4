"""Binance spot REST API v3, as much as ccxt's ``binance`` needs to trade through NIJA's adapter.

Served: ``/api/v3/{ping,time,exchangeInfo,klines,ticker/24hr,ticker/bookTicker,ticker/price,
account,order,openOrders,allOrders}``. Signed endpoints check the ``X-MBX-APIKEY`` header,
the ``timestamp``/``recvWindow`` pair and the HMAC-SHA256 ``signature``, like Binance does.
Nothing else under ``/sapi``, ``/fapi`` or ``/dapi`` is served (``/sapi/v1/system/status``, the
public status check, is): a client that asks for it gets a 404, so a test can see that the
adapter loads only spot markets.

Error bodies are Binance's documented ``{"code": -NNNN, "msg": "..."}`` shapes.

Venue rules (binance_json.py; docs/VENUES.md has the sources): LOT_SIZE and NOTIONAL
filters are enforced on every order (``-1013 Filter failure: ...``); ``newClientOrderId`` is
unique among OPEN orders only; the commission is taken from the asset received (base on a
buy, quote on a sell), or in BNB when the venue is built with ``bnb_fees=True`` and the
account holds enough BNB.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import urlencode

from . import binance_json as bj
from .core import ClientIdScope, EmuOrder, Ledger, Market, Rejected, fee_in_received
from .server import AuthFailed, Request, Response, Venue

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
# Kline intervals Binance accepts → seconds.
_UNITS = (("m", 60, (1, 3, 5, 15, 30)), ("h", 3600, (1, 2, 4, 6, 8, 12)), ("d", 86400, (1, 3)))
INTERVALS = {f"{n}{u}": n * secs for u, secs, ns in _UNITS for n in ns} | {"1w": 604800}
# Binance's rule for client order ids.
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


# venue-neutral code → (HTTP status, Binance code, message)
ERRORS: dict[str, tuple[int, int, str]] = {
    "auth": (401, -2015, "Invalid API-key, IP, or permissions for action."),
    "rate_limit": (
        429,
        -1003,
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    ),
    "insufficient_funds": (400, -2010, "Account has insufficient balance for requested action."),
    "order_not_found": (400, -2013, "Order does not exist."),
    "invalid_order": (400, -1013, "Filter failure: LOT_SIZE"),
    "invalid_amount": (400, -1013, "Filter failure: LOT_SIZE"),
    "unknown_symbol": (400, -1121, "Invalid symbol."),
    "duplicate_client_id": (400, -2010, "Duplicate order sent."),
    "server": (500, -1001, "Internal error; unable to process your request. Please try again."),
}


def _err(status: int, code: int, msg: str) -> Response:
    return Response(status, {"code": code, "msg": msg})


def _missing(name: str) -> Response:
    return _err(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


class BinanceVenue(Venue):
    """The Binance spot venue. Accounts are keyed by API key; set a secret to verify signatures."""

    name = "BINANCE"

    def __init__(
        self, market: Market | None = None, symbols=DEFAULT_SYMBOLS, *, bnb_fees: bool = False
    ) -> None:
        """``bnb_fees``: the accounts have "use BNB to pay fees" switched on."""
        super().__init__(market or Market())
        self.listed = tuple(symbols)  # canonical symbols this venue lists, e.g. BTC/USDT
        self.bnb_fees = bnb_fees
        if bnb_fees and not self.market.has("BNB/USDT"):
            self.market.set_price("BNB/USDT", bj.BNB_PRICE_USDT)
        self.cancel_ids: list[str] = []  # client ids Binance gave the cancel requests
        r = self.route
        r("GET", r"/api/v3/ping", "ping", lambda req: Response(200, {}))
        r("GET", r"/api/v3/time", "time", self._time)
        r("GET", r"/sapi/v1/system/status", "system_status", self._system_status)
        r("GET", r"/api/v3/exchangeInfo", "markets", self._exchange_info)
        r("GET", r"/api/v3/klines", "candles", self._klines)
        r("GET", r"/api/v3/ticker/24hr", "ticker", self._ticker_24hr)
        r("GET", r"/api/v3/ticker/bookTicker", "ticker", self._book_ticker)
        r("GET", r"/api/v3/ticker/price", "ticker", self._price_ticker)
        r("GET", r"/api/v3/account", "balance", self._signed(self._account))
        r("POST", r"/api/v3/order", "create_order", self._signed(self._create_order))
        r("GET", r"/api/v3/order", "fetch_order", self._signed(self._get_order))
        r("GET", r"/api/v3/openOrders", "open_orders", self._signed(self._open_orders))
        r("GET", r"/api/v3/allOrders", "all_orders", self._signed(self._all_orders))
        r("GET", r"/api/v3/myTrades", "my_trades", self._signed(self._my_trades))
        r("DELETE", r"/api/v3/order", "cancel_order", self._signed(self._cancel_order))

    def reset(self, market: Market) -> None:
        """Forget every account and order and trade on ``market`` (one server, many tests)."""
        self.market = market
        self.accounts.clear()
        self.secrets.clear()
        self.cancel_ids.clear()

    def add_account(
        self, api_key: str, secret: str = "", balances: dict[str, float] | None = None, **extra
    ) -> Ledger:
        """An account charged and identified as Binance does (see the module docstring)."""
        ledger = super().add_account(api_key, secret, balances, **extra)
        ledger.client_id_scope = ClientIdScope.OPEN
        ledger.fee_policy = bj.fee_in_bnb_or_received if self.bnb_fees else fee_in_received
        return ledger

    # -- hooks --------------------------------------------------------------
    def account_for(self, req: Request) -> Ledger:
        ledger = self.accounts.get(req.headers.get("x-mbx-apikey", ""))
        if ledger is None:
            raise AuthFailed()
        return ledger

    def error_response(self, code: str, status: int | None = None) -> Response:
        if code == "status":
            return self._status_error(status or 500)
        default_status, binance_code, msg = ERRORS.get(code, ERRORS["server"])
        return _err(status or default_status, binance_code, msg)

    def _status_error(self, status: int) -> Response:
        """Binance's body for a bare HTTP status."""
        if status in (401, 403):
            return self.error_response("auth", status)
        if status == 429:
            return self.error_response("rate_limit", status)
        if status == 418:
            until = int(time.time() * 1000) + 120_000
            msg = (
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
            return _err(418, -1003, msg)
        if status == 504:  # the gateway gave up waiting for the matching engine
            msg = (
                "Timeout waiting for response from backend server. "
                "Send status unknown; execution status unknown."
            )
            return _err(504, -1007, msg)
        if status >= 500:
            return self.error_response("server", status)
        return _err(status, -1000, "An unknown error occurred while processing the request.")

    # -- helpers ------------------------------------------------------------
    market_id = staticmethod(bj.market_id)

    def _symbol(self, market_id: str | None) -> str | None:
        for s in self.listed:
            if self.market_id(s) == market_id:
                return s
        return None

    def _signed(self, handler):
        """Wrap a handler with Binance's API-key, timestamp and signature checks."""

        def wrapped(req: Request) -> Response:
            if not req.headers.get("x-mbx-apikey"):
                return _err(401, -2014, "API-key format invalid.")
            ledger = self.authed(req)
            if isinstance(ledger, Response):
                return ledger
            params = {**req.query, **req.form()}
            if "timestamp" not in params:
                return _missing("timestamp")
            if "signature" not in params:
                return _missing("signature")
            now = int(time.time() * 1000)
            ts = int(params["timestamp"])
            window = int(params.get("recvWindow", 5000))
            if ts > now + 1000 or now - ts > window:
                return _err(400, -1021, "Timestamp for this request is outside of the recvWindow.")
            secret = self.secrets.get(req.headers["x-mbx-apikey"], "")
            if secret and not hmac.compare_digest(params["signature"], self._sign(req, secret)):
                return _err(400, -1022, "Signature for this request is not valid.")
            return handler(req, ledger, params)

        return wrapped

    @staticmethod
    def _sign(req: Request, secret: str) -> str:
        # Binance signs the query string followed by the body, each without the signature.
        query = urlencode({k: v for k, v in req.query.items() if k != "signature"})
        body = req.body.decode().split("&signature=")[0] if req.body else ""
        payload = query + body
        return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    def _find(self, ledger: Ledger, params: dict) -> EmuOrder | Response:
        """The order named by ``orderId``/``origClientOrderId`` on ``symbol``, or an error."""
        symbol = self._symbol(params.get("symbol"))
        if "symbol" not in params:
            return _missing("symbol")
        if symbol is None:
            return self.error_response("unknown_symbol")
        if "orderId" in params:
            order = ledger.find(order_id=params["orderId"])
        elif "origClientOrderId" in params:
            order = ledger.find(client_order_id=params["origClientOrderId"])
        else:
            msg = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            return _err(400, -1102, msg)
        if order is None or order.symbol != symbol:
            return self.error_response("order_not_found")
        return order

    # -- public -------------------------------------------------------------
    def _time(self, req: Request) -> Response:
        return Response(200, {"serverTime": int(time.time() * 1000)})

    def _system_status(self, req: Request) -> Response:
        # developers.binance.com/docs/wallet/others/system-status: 0 normal, 1 maintenance;
        # Binance has no cancel-only or post-only answer, so those read as maintenance.
        if self.system_status == "ok":
            return Response(200, {"status": 0, "msg": "normal"})
        return Response(200, {"status": 1, "msg": "system_maintenance"})

    def _exchange_info(self, req: Request) -> Response:
        symbols = []
        for s in self.listed:
            base, quote = s.split("/")
            symbols.append(
                {
                    "symbol": self.market_id(s),
                    "status": "TRADING",
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": bj.filters(s),
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER"],
                }
            )
        body = {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }
        return Response(200, body)

    def _klines(self, req: Request) -> Response:
        q = req.query
        if "symbol" not in q:
            return _missing("symbol")
        symbol = self._symbol(q["symbol"])
        if symbol is None:
            return self.error_response("unknown_symbol")
        step = INTERVALS.get(q.get("interval", ""))
        if step is None:
            return _err(400, -1120, "Invalid interval.")
        limit = max(1, min(int(q.get("limit", 500)), 1000))
        end_ms = int(q["endTime"]) if "endTime" in q else None
        if end_ms is None and "startTime" in q:
            end_ms = int(q["startTime"]) + (limit - 1) * step * 1000
        rows = self.market.candles(symbol, step, limit, end_ms)
        out = [
            [
                int(r[0]),
                bj.num(r[1]),
                bj.num(r[2]),
                bj.num(r[3]),
                bj.num(r[4]),
                bj.num(r[5]),
                int(r[0]) + step * 1000 - 1,
                bj.num(r[5] * r[4]),
                7,
                bj.num(r[5] / 2),
                bj.num(r[5] * r[4] / 2),
                "0",
            ]
            for r in rows
        ]
        return Response(200, out)

    def _one_or_all(self, req: Request, render) -> Response:
        if "symbol" in req.query:
            symbol = self._symbol(req.query["symbol"])
            if symbol is None:
                return self.error_response("unknown_symbol")
            return Response(200, render(symbol))
        return Response(200, [render(s) for s in self.listed])

    def _ticker_24hr(self, req: Request) -> Response:
        def render(symbol: str) -> dict:
            last = self.market.price(symbol)
            bid, ask = self.market.bid_ask(symbol)
            now = int(time.time() * 1000)
            open_ = last * 0.99
            return {
                "symbol": self.market_id(symbol),
                "priceChange": bj.num(last - open_),
                "priceChangePercent": "1.010",
                "weightedAvgPrice": bj.num(last),
                "prevClosePrice": bj.num(open_),
                "lastPrice": bj.num(last),
                "lastQty": "0.01000000",
                "bidPrice": bj.num(bid),
                "bidQty": "1.00000000",
                "askPrice": bj.num(ask),
                "askQty": "1.00000000",
                "openPrice": bj.num(open_),
                "highPrice": bj.num(last * 1.01),
                "lowPrice": bj.num(last * 0.98),
                "volume": "1000.00000000",
                "quoteVolume": bj.num(1000 * last),
                "openTime": now - 86_400_000,
                "closeTime": now,
                "firstId": 1,
                "lastId": 1000,
                "count": 1000,
            }

        return self._one_or_all(req, render)

    def _book_ticker(self, req: Request) -> Response:
        def render(symbol: str) -> dict:
            bid, ask = self.market.bid_ask(symbol)
            return {
                "symbol": self.market_id(symbol),
                "bidPrice": bj.num(bid),
                "bidQty": "1.00000000",
                "askPrice": bj.num(ask),
                "askQty": "1.00000000",
            }

        return self._one_or_all(req, render)

    def _price_ticker(self, req: Request) -> Response:
        return self._one_or_all(
            req, lambda s: {"symbol": self.market_id(s), "price": bj.num(self.market.price(s))}
        )

    # -- signed -------------------------------------------------------------
    def _account(self, req: Request, ledger: Ledger, params: dict) -> Response:
        locked: dict[str, float] = {}
        for o in ledger.open_orders():
            if o.side == "buy":
                locked[o.quote] = locked.get(o.quote, 0.0) + o.amount * (o.limit_price or 0.0)
            else:
                locked[o.base] = locked.get(o.base, 0.0) + o.amount
        balances = [
            {
                "asset": a,
                "free": bj.num(total - locked.get(a, 0.0)),
                "locked": bj.num(locked.get(a, 0.0)),
            }
            for a, total in sorted(ledger.snapshot().items())
        ]
        body = {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": int(time.time() * 1000),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }
        return Response(200, body)

    def _create_order(self, req: Request, ledger: Ledger, params: dict) -> Response:
        for name in ("symbol", "side", "type"):
            if name not in params:
                return _missing(name)
        symbol = self._symbol(params["symbol"])
        if symbol is None:
            return self.error_response("unknown_symbol")
        side, type_ = params["side"].lower(), params["type"].lower()
        if side not in ("buy", "sell"):
            return _err(400, -1117, "Invalid side.")
        if type_ not in ("market", "limit"):
            return _err(400, -1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or secrets.token_urlsafe(16)[:22]
        if not CLIENT_ID_RE.match(client_id):
            msg = (
                "Illegal characters found in parameter 'newClientOrderId'; "
                r"legal range is '^[\.A-Z\:/a-z0-9_-]{1,36}$'."
            )
            return _err(400, -1100, msg)
        amount = float(params["quantity"]) if "quantity" in params else None
        quote = float(params["quoteOrderQty"]) if "quoteOrderQty" in params else None
        price = float(params["price"]) if "price" in params else None
        if type_ == "limit":
            for name, value in (("timeInForce", params.get("timeInForce")), ("price", price)):
                if value is None:
                    return _missing(name)
            if amount is None:
                return _missing("quantity")
            quote = None
        elif amount is None and quote is None:
            msg = "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            return _err(400, -1102, msg)
        bid, ask = self.market.bid_ask(symbol)
        px = price if type_ == "limit" else (ask if side == "buy" else bid)
        if amount is not None:
            quote = None
        failure = bj.filter_failure(symbol, amount, amount * px if amount else quote or 0.0)
        if failure:
            return _err(400, -1013, f"Filter failure: {failure}")
        if amount is None:  # Binance sizes a quoteOrderQty order on the lot step
            amount = bj.floor_to_step((quote or 0.0) / px, symbol)
        try:
            order = ledger.place(
                symbol,
                side,
                type_,
                amount=amount,
                quote_amount=quote,
                limit_price=price if type_ == "limit" else None,
                client_order_id=client_id,
            )
        except Rejected as exc:
            return self.error_response(exc.code)
        return Response(200, bj.order_ack(order, params.get("newOrderRespType", "FULL")))

    def _get_order(self, req: Request, ledger: Ledger, params: dict) -> Response:
        ledger.match_limits()
        found = self._find(ledger, params)
        if isinstance(found, Response):
            return found
        return Response(200, bj.order_json(found))

    def _open_orders(self, req: Request, ledger: Ledger, params: dict) -> Response:
        symbol = None
        if "symbol" in params:
            symbol = self._symbol(params["symbol"])
            if symbol is None:
                return self.error_response("unknown_symbol")
        return Response(200, [bj.order_json(o) for o in ledger.open_orders(symbol)])

    def _required_symbol(self, params: dict) -> str | Response:
        """The listed market ``params["symbol"]`` names, or Binance's answer when it is
        missing or unknown."""
        if "symbol" not in params:
            return _missing("symbol")
        symbol = self._symbol(params["symbol"])
        return self.error_response("unknown_symbol") if symbol is None else symbol

    def _my_trades(self, req: Request, ledger: Ledger, params: dict) -> Response:
        """GET /api/v3/myTrades: the account's fills on ``symbol`` (of ``orderId``), with the
        commission each paid: the only place Binance reports an order's fees later."""
        symbol = self._required_symbol(params)
        if isinstance(symbol, Response):
            return symbol
        ledger.match_limits()
        wanted = params.get("orderId")
        filled = [
            o
            for o in ledger.all_orders()
            if o.symbol == symbol and o.filled > 0 and wanted in (None, o.order_id)
        ]
        return Response(200, [bj.trade_json(o) for o in filled])

    def _all_orders(self, req: Request, ledger: Ledger, params: dict) -> Response:
        symbol = self._required_symbol(params)
        if isinstance(symbol, Response):
            return symbol
        ledger.match_limits()
        orders = [o for o in ledger.all_orders() if o.symbol == symbol]
        return Response(200, [bj.order_json(o) for o in orders])

    def _cancel_order(self, req: Request, ledger: Ledger, params: dict) -> Response:
        ledger.match_limits()
        found = self._find(ledger, params)
        if isinstance(found, Response):
            if found.body.get("code") == -2013:  # Binance answers a cancel with -2011
                return _err(400, -2011, "Unknown order sent.")
            return found
        if found.status != "open":
            return _err(400, -2011, "Unknown order sent.")
        ledger.cancel(found)
        # Like Binance: ``clientOrderId`` names the cancel request, ``origClientOrderId`` the order.
        cancel_id = params.get("newClientOrderId") or secrets.token_urlsafe(16)[:22]
        self.cancel_ids.append(cancel_id)
        body = {**bj.order_json(found), "clientOrderId": cancel_id}
        body["origClientOrderId"] = found.client_order_id
        body["transactTime"] = int(time.time() * 1000)
        for k in ("time", "updateTime", "isWorking", "workingTime", "stopPrice", "icebergQty"):
            body.pop(k)
        return Response(200, body)
