"""Kraken spot REST, as much as ccxt's kraken class uses, over the shared emulator core.

Kraken answers almost every error with HTTP 200 and ``{"error": ["EAPI:Invalid key"]}``;
the strings below are Kraken's documented ones. Private calls are POSTs signed with
``API-Key`` / ``API-Sign`` (HMAC-SHA512 over path + SHA256(nonce + body), keyed by the
base64-decoded secret); the signature is verified, so a wrong secret is detectable.

Venue rules (docs/VENUES.md has the sources): an order's ``volume`` must meet the pair's
``ordermin``, its cost the pair's ``costmin``, and carry at most ``lot_decimals`` decimals;
``cl_ord_id`` must be unique among the account's OPEN orders only; the fee is charged in
the quote currency unless the order asks for ``fcib`` (and reports ``fciq``/``fcib`` in
its ``oflags`` accordingly).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs

from .core import ClientIdScope, EmuOrder, Ledger, Market, Rejected, fee_in_base, off_step
from .server import AuthFailed, Request, Response, Venue

# canonical code → (Kraken asset id, altname, decimals)
ASSETS = {
    "BTC": ("XXBT", "XBT", 10),
    "ETH": ("XETH", "ETH", 10),
    "USD": ("ZUSD", "USD", 4),
    "SOL": ("SOL", "SOL", 10),
    "USDT": ("USDT", "USDT", 8),
    "USDC": ("USDC", "USDC", 8),
}
# canonical symbol → (pair id, altname, pair_decimals, ordermin)
PAIRS = {
    "BTC/USD": ("XXBTZUSD", "XBTUSD", 1, "0.00005"),
    "ETH/USD": ("XETHZUSD", "ETHUSD", 2, "0.002"),
    "SOL/USD": ("SOLUSD", "SOLUSD", 2, "0.02"),
    "BTC/USDT": ("XBTUSDT", "XBTUSDT", 1, "0.00005"),
    "ETH/USDT": ("ETHUSDT", "ETHUSDT", 2, "0.002"),
    "SOL/USDT": ("SOLUSDT", "SOLUSDT", 2, "0.02"),
}
# Every pair here: the minimum cost (quote currency) and the volume's decimals (lot step).
COSTMIN = "0.5"
LOT_DECIMALS = 8
INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)  # minutes
# cl_ord_id formats Kraken accepts: long UUID, short UUID (32 hex), free text up to 18 chars.
_CL_ORD_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[ -~]{1,18}"
)
_FEES = [[0, 0.26], [50000, 0.24], [100000, 0.22]]
_FEES_MAKER = [[0, 0.16], [50000, 0.14], [100000, 0.12]]

ERRORS = {
    "auth": "EAPI:Invalid key",
    "rate_limit": "EAPI:Rate limit exceeded",
    "insufficient_funds": "EOrder:Insufficient funds",
    "order_not_found": "EOrder:Unknown order",
    "invalid_order": "EOrder:Invalid order",
    "invalid_amount": "EGeneral:Invalid arguments:volume",
    "unknown_symbol": "EQuery:Unknown asset pair",
    # Kraken enforces cl_ord_id uniqueness among open orders; its exact string is not documented.
    "duplicate_client_id": "EOrder:Duplicate order",
    "server": "EService:Unavailable",
}


def kraken_error(message: str, status: int = 200) -> Response:
    return Response(status, {"error": [message]})


def ok(result) -> Response:
    return Response(200, {"error": [], "result": result})


def sign(path: str, body: str, nonce: str, secret_b64: str) -> str:
    """Kraken's API-Sign for one request (what a client computes; here to verify it)."""
    digest = hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class KrakenVenue(Venue):
    """Kraken's /0/public and /0/private endpoints. Accounts are keyed by API key."""

    name = "KRAKEN"

    def __init__(self, market: Market, verify_signatures: bool = True) -> None:
        super().__init__(market)
        self.verify_signatures = verify_signatures
        self.pairs = {s: p for s, p in PAIRS.items() if market.has(s)}
        public = [
            ("Time", "time", self._time),
            ("SystemStatus", "system_status", self._system_status),
            ("Assets", "assets", self._assets),
            ("AssetPairs", "markets", self._asset_pairs),
            ("Ticker", "ticker", self._ticker),
            ("OHLC", "candles", self._ohlc),
        ]
        for path, name, handler in public:
            self.route("GET", rf"/0/public/{path}", name, handler)
        private = [
            ("Balance", "balance", self._balance),
            ("BalanceEx", "balance", self._balance_ex),
            ("AddOrder", "create_order", self._add_order),
            ("QueryOrders", "fetch_order", self._query_orders),
            ("OpenOrders", "open_orders", self._open_orders),
            ("ClosedOrders", "closed_orders", self._closed_orders),
            ("CancelOrder", "cancel_order", self._cancel_order),
            ("OpenPositions", "positions", self._open_positions),
        ]
        for path, name, handler in private:
            self.route("POST", rf"/0/private/{path}", name, self._private(handler))

    def add_account(
        self, api_key: str, secret: str = "", balances: dict[str, float] | None = None, **extra
    ) -> Ledger:
        """An account whose ``cl_ord_id`` is unique among its open orders only, as on Kraken."""
        ledger = super().add_account(api_key, secret, balances, **extra)
        ledger.client_id_scope = ClientIdScope.OPEN
        return ledger

    # -- hooks --------------------------------------------------------------
    def account_for(self, req: Request) -> Ledger:
        ledger = self.accounts.get(req.headers.get("api-key", ""))
        if ledger is None:
            raise AuthFailed()
        return ledger

    def error_response(self, code: str, status: int | None = None) -> Response:
        if code == "auth" and status == 403:
            return kraken_error("EGeneral:Permission denied", 403)
        if code == "status":
            status = status or 500
            if status in (418, 429):
                message = "EGeneral:Too many requests"
            elif status >= 500:
                message = "EGeneral:Internal error" if status == 500 else "EService:Unavailable"
            else:
                message = "EGeneral:Invalid arguments"
            return kraken_error(message, status)
        return kraken_error(ERRORS.get(code, "EGeneral:Internal error"), status or 200)

    # -- translation ----------------------------------------------------------
    def _symbol_of(self, pair: str) -> str | None:
        for symbol, (pid, alt, _, _) in self.pairs.items():
            if pair in (pid, alt):
                return symbol
        return None

    @staticmethod
    def _asset_id(code: str) -> str:
        return ASSETS[code][0] if code in ASSETS else code

    # -- public -------------------------------------------------------------
    def _time(self, req: Request) -> Response:
        now = int(time.time())
        return ok({"unixtime": now, "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000")})

    def _system_status(self, req: Request) -> Response:
        # docs.kraken.com/api-reference/market-data/get-system-status: the trading engine's
        # mode; the advisory arrays are empty when nothing is announced.
        status = "online" if self.system_status == "ok" else self.system_status
        return ok(
            {
                "status": status,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "upcoming_maintenance": [],
                "emergency": [],
            }
        )

    def _assets(self, req: Request) -> Response:
        used = {c for s in self.pairs for c in s.split("/")}
        return ok(
            {
                ASSETS[c][0]: {
                    "aclass": "currency",
                    "altname": ASSETS[c][1],
                    "decimals": ASSETS[c][2],
                    "display_decimals": 5,
                    "collateral_value": 1.0,
                    "margin_rate": 0.02,
                    "status": "enabled",
                }
                for c in sorted(used)
                if c in ASSETS
            }
        )

    def _asset_pairs(self, req: Request) -> Response:
        wanted = req.query.get("pair")
        result = {}
        for symbol, (pid, alt, decimals, ordermin) in self.pairs.items():
            base, quote = (ASSETS[c] for c in symbol.split("/"))
            result[pid] = {
                "altname": alt,
                "wsname": f"{base[1]}/{quote[1]}",
                "aclass_base": "currency",
                "base": base[0],
                "aclass_quote": "currency",
                "quote": quote[0],
                "lot": "unit",
                "cost_decimals": 5,
                "pair_decimals": decimals,
                "lot_decimals": LOT_DECIMALS,
                "lot_multiplier": 1,
                "leverage_buy": [],
                "leverage_sell": [],
                "fees": _FEES,
                "fees_maker": _FEES_MAKER,
                "fee_volume_currency": "ZUSD",
                "margin_call": 80,
                "margin_stop": 40,
                "ordermin": ordermin,
                "costmin": COSTMIN,
                "tick_size": f"{10**-decimals:.{decimals}f}",
                "status": "online",
            }
        if wanted:
            ids = {self.pairs[s][0] for p in wanted.split(",") if (s := self._symbol_of(p))}
            if not ids:
                return kraken_error(ERRORS["unknown_symbol"])
            result = {k: v for k, v in result.items() if k in ids}
        return ok(result)

    def _ticker(self, req: Request) -> Response:
        names = (req.query.get("pair") or ",".join(p[0] for p in self.pairs.values())).split(",")
        result = {}
        for name in names:
            symbol = self._symbol_of(name)
            if symbol is None:
                return kraken_error(ERRORS["unknown_symbol"])
            bid, ask = self.market.bid_ask(symbol)
            last = self.market.price(symbol)
            d = self.pairs[symbol][2] + 2
            result[self.pairs[symbol][0]] = {
                "a": [f"{ask:.{d}f}", "1", "1.000"],
                "b": [f"{bid:.{d}f}", "1", "1.000"],
                "c": [f"{last:.{d}f}", "0.01000000"],
                "v": ["100.00000000", "250.00000000"],
                "p": [f"{last:.{d}f}", f"{last:.{d}f}"],
                "t": [120, 300],
                "l": [f"{last * 0.98:.{d}f}", f"{last * 0.97:.{d}f}"],
                "h": [f"{last * 1.02:.{d}f}", f"{last * 1.03:.{d}f}"],
                "o": f"{last:.{d}f}",
            }
        return ok(result)

    def _ohlc(self, req: Request) -> Response:
        symbol = self._symbol_of(req.query.get("pair", ""))
        if symbol is None:
            return kraken_error(ERRORS["unknown_symbol"])
        try:
            interval = int(req.query.get("interval", "1"))
            since = int(float(req.query["since"])) if "since" in req.query else None
        except ValueError:
            return kraken_error("EGeneral:Invalid arguments")
        if interval not in INTERVALS:
            return kraken_error("EGeneral:Invalid arguments")
        rows = self.market.candles(symbol, interval * 60, 720)
        d = self.pairs[symbol][2] + 2
        out = []
        for ts, o, h, lo, c, v in rows:
            if since is not None and ts // 1000 <= since:
                continue
            vwap = (o + h + lo + c) / 4
            prices = [f"{x:.{d}f}" for x in (o, h, lo, c, vwap)]
            out.append([int(ts // 1000), *prices, f"{v:.8f}", 7])
        last = out[-1][0] if out else int(time.time())
        return ok({self.pairs[symbol][0]: out, "last": last})

    # -- private ------------------------------------------------------------
    def _private(self, handler):
        def wrapped(req: Request) -> Response:
            ledger = self.accounts.get(req.headers.get("api-key", ""))
            if ledger is None:
                return self.error_response("auth")
            if self.verify_signatures and not self._signed(req):
                return kraken_error("EAPI:Invalid signature")
            return handler(req, ledger, req.form())

        return wrapped

    def _signed(self, req: Request) -> bool:
        body = req.body.decode()
        nonce = (parse_qs(body).get("nonce") or [""])[0]
        secret = self.secrets.get(req.headers.get("api-key", ""), "")
        try:
            expected = sign(req.path, body, nonce, secret)
        except (binascii.Error, ValueError):
            return False
        return bool(nonce) and hmac.compare_digest(expected, req.headers.get("api-sign", ""))

    def _balance(self, req: Request, ledger: Ledger, form: dict) -> Response:
        return ok({self._asset_id(c): f"{v:.10f}" for c, v in ledger.snapshot().items()})

    def _balance_ex(self, req: Request, ledger: Ledger, form: dict) -> Response:
        held: dict[str, float] = {}
        for o in ledger.open_orders():  # what open orders reserve
            if o.side == "buy":
                held[o.quote] = held.get(o.quote, 0.0) + o.amount * (o.limit_price or 0.0)
            else:
                held[o.base] = held.get(o.base, 0.0) + o.amount
        return ok(
            {
                self._asset_id(c): {"balance": f"{v:.10f}", "hold_trade": f"{held.get(c, 0):.10f}"}
                for c, v in ledger.snapshot().items()
            }
        )

    def _add_order(self, req: Request, ledger: Ledger, form: dict) -> Response:
        symbol = self._symbol_of(form.get("pair", ""))
        if symbol is None:
            return kraken_error(ERRORS["unknown_symbol"])
        side, ordertype = form.get("type"), form.get("ordertype")
        cl_ord_id = form.get("cl_ord_id")
        if side not in ("buy", "sell") or ordertype not in ("market", "limit"):
            return kraken_error("EGeneral:Invalid arguments")
        if cl_ord_id is not None and not _CL_ORD_ID.fullmatch(cl_ord_id):
            return kraken_error("EGeneral:Invalid arguments:cl_ord_id")
        try:
            volume = float(form["volume"])
            price = float(form["price"]) if ordertype == "limit" else None
        except (KeyError, ValueError):
            return kraken_error("EGeneral:Invalid arguments:volume")
        oflags = form.get("oflags", "").split(",")
        viqc = "viqc" in oflags and ordertype == "market"
        refusal = self._refusal(symbol, side, volume, price, viqc)
        if refusal:
            return kraken_error(refusal)
        sizing = {"quote_amount": volume} if viqc else {"amount": volume}
        try:
            order = ledger.place(
                symbol,
                side,
                ordertype,
                limit_price=price,
                client_order_id=cl_ord_id,
                fee_policy=fee_in_base if "fcib" in oflags else None,
                **sizing,
            )
        except Rejected as rej:
            return kraken_error(ERRORS.get(rej.code, "EOrder:Invalid order"))
        descr = self.order_info(order)["descr"]["order"]
        return ok({"descr": {"order": descr}, "txid": [self.txid(order)]})

    def _refusal(
        self, symbol: str, side: str, volume: float, price: float | None, viqc: bool
    ) -> str | None:
        """Kraken's error for an order the pair's ``ordermin``/``costmin``/``lot_decimals``
        refuse, or None. ``viqc`` volumes are quote currency (market orders only)."""
        bid, ask = self.market.bid_ask(symbol)
        fill_px = price if price is not None else (ask if side == "buy" else bid)
        base_volume = volume / fill_px if viqc else volume
        if not viqc and off_step(volume, 10**-LOT_DECIMALS):
            return ERRORS["invalid_amount"]
        if base_volume < float(self.pairs[symbol][3]):
            return "EOrder:Order minimum not met"
        if base_volume * fill_px < float(COSTMIN):
            return "EOrder:Cost minimum not met"
        return None

    def _query_orders(self, req: Request, ledger: Ledger, form: dict) -> Response:
        ledger.match_limits()
        result = {}
        for txid in filter(None, form.get("txid", "").split(",")):
            order = ledger.find(order_id=self.order_id(txid))
            if order is None:
                return kraken_error("EOrder:Invalid order")
            result[txid] = self.order_info(order)
        if not result:
            return kraken_error("EGeneral:Invalid arguments")
        return ok(result)

    def _matching(self, ledger: Ledger, form: dict, statuses: tuple[str, ...]) -> list[EmuOrder]:
        ledger.match_limits()
        cl_ord_id = form.get("cl_ord_id")
        orders = [
            o
            for o in ledger.all_orders()
            if o.status in statuses and (cl_ord_id is None or o.client_order_id == cl_ord_id)
        ]
        return sorted(orders, key=lambda o: (o.created_ms, int(o.order_id)), reverse=True)

    def _open_orders(self, req: Request, ledger: Ledger, form: dict) -> Response:
        orders = self._matching(ledger, form, ("open",))
        return ok({"open": {self.txid(o): self.order_info(o) for o in orders}})

    def _closed_orders(self, req: Request, ledger: Ledger, form: dict) -> Response:
        orders = self._matching(ledger, form, ("filled", "canceled", "rejected"))
        offset = int(form.get("ofs", "0") or 0)
        page = orders[offset : offset + 50]
        return ok(
            {"closed": {self.txid(o): self.order_info(o) for o in page}, "count": len(orders)}
        )

    def _cancel_order(self, req: Request, ledger: Ledger, form: dict) -> Response:
        if form.get("cl_ord_id"):
            order = ledger.find(client_order_id=form["cl_ord_id"])
        elif form.get("txid"):
            order = ledger.find(order_id=self.order_id(form["txid"]))
        else:
            return kraken_error("EGeneral:Invalid arguments")
        ledger.match_limits()
        if order is None or order.status != "open":
            return kraken_error(ERRORS["order_not_found"])
        ledger.cancel(order)
        return ok({"count": 1})

    def _open_positions(self, req: Request, ledger: Ledger, form: dict) -> Response:
        return ok({})  # spot only: no margin positions

    # -- orders as Kraken shows them -------------------------------------------
    @staticmethod
    def txid(order: EmuOrder) -> str:
        return f"O{int(order.order_id):05d}-EMULA-TORKRK"

    @staticmethod
    def order_id(txid: str) -> str | None:
        m = re.fullmatch(r"O(\d{5})-EMULA-TORKRK", txid)
        return str(int(m.group(1))) if m else None

    def order_info(self, o: EmuOrder) -> dict:
        alt, decimals = self.pairs[o.symbol][1], self.pairs[o.symbol][2]
        status = {"open": "open", "filled": "closed"}.get(o.status, "canceled")
        limit = f"{o.limit_price:.{decimals}f}" if o.limit_price is not None else "0"
        order_text = f"{o.side} {o.amount:.8f} {alt} @ {o.type}" + (
            f" {limit}" if o.type == "limit" else ""
        )
        info = {
            "refid": None,
            "userref": 0,
            "cl_ord_id": o.client_order_id,
            "status": status,
            "opentm": o.created_ms / 1000,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": alt,
                "type": o.side,
                "ordertype": o.type,
                "price": limit,
                "price2": "0",
                "leverage": "none",
                "order": order_text,
                "close": "",
            },
            "vol": f"{o.amount:.8f}",
            "vol_exec": f"{o.filled:.8f}",
            "cost": f"{o.filled * (o.average_price or 0):.5f}",
            # Quote fees to the pair's cost decimals; a base fee (fcib) to its lot decimals.
            "fee": f"{o.fee:.{LOT_DECIMALS if o.fee_currency == o.base else 5}f}",
            "price": f"{o.average_price or 0:.{decimals}f}",
            "stopprice": "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": ",".join(
                ["fcib" if o.fee_currency == o.base else "fciq"]
                + (["viqc"] if o.quote_amount is not None else [])
            ),
        }
        if status != "open":
            info["closetm"] = o.created_ms / 1000
            info["reason"] = "User requested" if o.status == "canceled" else None
        return info
