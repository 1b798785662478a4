"""OKX v5 REST, as much as NIJA's ccxt adapter uses: instruments, time, currencies, candles,
tickers, trading balance, orders (placed by ``clOrdId``), pending orders, cancels.

Shapes follow https://www.okx.com/docs-v5/en/ and what ccxt's ``okx.py`` parses: every
answer is ``{"code": "0", "msg": "", "data": [...]}``; errors keep that envelope with a
non-zero ``code`` (mostly HTTP 200; 401 for auth, 429 for rate limits, 5xx for outages),
and order calls put per-order failures in ``data[i].sCode`` / ``sMsg`` under ``code "1"``.
Private calls are checked like OKX does: key (50111), passphrase (50105), timestamp
(50112/50102) and the HMAC-SHA256 signature over ``ts + METHOD + path?query + body`` (50113).

Venue rules (docs/VENUES.md has the sources): ``sz`` must meet the instrument's ``minSz``
(51020) and be a multiple of its ``lotSz`` (51121); ``clOrdId`` must differ from the
account's live orders' (51016), and a look-up by ``clOrdId`` answers the newest order with
it; a spot fill's fee is taken from the currency received (base on a buy, quote on a sell).
Each account has a trading account (``/account/balance``, the only one orders can spend)
and a funding account (``/asset/balances``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from . import okx_json as okj
from .core import ClientIdScope, EmuOrder, Ledger, Market, Rejected, fee_in_received, off_step
from .server import AuthFailed, Request, Response, Venue

API = r"/api/v5"
# clOrdId: case-sensitive alphanumerics, 1-32 characters (OKX rejects anything else).
CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,32}")
BAR_UNITS = {"s": 1, "m": 60, "H": 3600, "D": 86400, "W": 604800}
MAX_SKEW_MS = 30_000


class OkxAuthFailed(AuthFailed):
    """Credentials refused, with OKX's own code."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class OkxVenue(Venue):
    """The OKX spot venue. Symbols are ``BTC-USDT`` here, ``BTC/USDT`` in the core."""

    name = "OKX"

    def __init__(self, market: Market | None = None, verify_signature: bool = True) -> None:
        super().__init__(market or Market())
        self.passphrases: dict[str, str] = {}
        self.verify_signature = verify_signature
        self.tgt_ccy: dict[str, str] = {}  # ordId → tgtCcy the order was sized in
        self.funding: dict[str, dict[str, float]] = {}  # API key → funding-account balances
        p = API
        self.route("GET", p + r"/public/time", "time", self.time)
        self.route("GET", p + r"/system/status", "system_status", self.system_status_events)
        self.route("GET", p + r"/public/instruments", "markets", self.instruments)
        self.route("GET", p + r"/asset/currencies", "currencies", self.currencies)
        self.route("GET", p + r"/market/(?:history-)?candles", "candles", self.candles)
        self.route("GET", p + r"/market/ticker", "ticker", self.ticker)
        self.route("GET", p + r"/market/tickers", "tickers", self.tickers)
        self.route("GET", p + r"/account/balance", "balance", self.balance)
        self.route("GET", p + r"/account/positions", "positions", self.positions)
        self.route("GET", p + r"/asset/balances", "funding_balance", self.funding_balance)
        self.route("POST", p + r"/trade/(?:order|batch-orders)", "create_order", self.create_order)
        self.route("GET", p + r"/trade/order", "fetch_order", self.fetch_order)
        self.route("GET", p + r"/trade/orders-pending", "open_orders", self.open_orders)
        self.route("POST", p + r"/trade/cancel-order", "cancel_order", self.cancel_order)

    # -- set-up and symbols ---------------------------------------------------
    def add_account(
        self,
        api_key: str,
        secret: str = "",
        balances: dict[str, float] | None = None,
        passphrase: str = "",
        funding: dict[str, float] | None = None,
        **extra,
    ) -> Ledger:
        """An account reachable with this key, secret and passphrase (OKX needs all three).

        ``balances`` is its trading account; ``funding`` its funding account, which no
        order can spend until the owner transfers it to trading.
        """
        self.passphrases[api_key] = passphrase
        self.funding[api_key] = {k: float(v) for k, v in (funding or {}).items()}
        ledger = super().add_account(api_key, secret, balances, **extra)
        ledger.client_id_scope = ClientIdScope.OPEN
        ledger.fee_policy = fee_in_received
        return ledger

    def symbols(self) -> list[str]:
        """Canonical symbols this venue lists (spot pairs quoted in USDT/USDC)."""
        return [s for s in self.market.symbols() if s.split("/")[1] in okj.QUOTES]

    def symbol_of(self, inst_id: str | None) -> str | None:
        symbol = (inst_id or "").replace("-", "/")
        return symbol if symbol in self.symbols() else None

    # -- auth ---------------------------------------------------------------
    def account_for(self, req: Request) -> Ledger:
        h = req.headers
        key = h.get("ok-access-key", "")
        if not key:
            raise OkxAuthFailed("50103", 'Request header "OK-ACCESS-KEY" can not be empty.')
        if key not in self.accounts:
            raise OkxAuthFailed("50111", "Invalid OK-ACCESS-KEY")
        if not h.get("ok-access-passphrase"):
            raise OkxAuthFailed("50104", 'Request header "OK-ACCESS-PASSPHRASE" can not be empty.')
        if h["ok-access-passphrase"] != self.passphrases.get(key, ""):
            raise OkxAuthFailed("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.')
        stamp = h.get("ok-access-timestamp", "")
        try:
            sent = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            raise OkxAuthFailed("50112", "Invalid OK-ACCESS-TIMESTAMP") from None
        if abs(sent.timestamp() * 1000 - okj.now_ms()) > MAX_SKEW_MS:
            raise OkxAuthFailed("50102", "Timestamp request expired")
        if self.verify_signature:
            # The query is re-encoded the way ccxt encodes it (order kept, %-quoting).
            path = req.path + ("?" + urlencode(req.query, quote_via=quote) if req.query else "")
            prehash = stamp + req.method + path + req.body.decode()
            mac = hmac.new(self.secrets[key].encode(), prehash.encode(), hashlib.sha256)
            expected = base64.b64encode(mac.digest()).decode()
            if not hmac.compare_digest(expected, h.get("ok-access-sign", "")):
                raise OkxAuthFailed("50113", "Invalid Sign")
        return self.accounts[key]

    def authed(self, req: Request) -> Ledger | Response:
        try:
            return self.account_for(req)
        except OkxAuthFailed as exc:
            return okj.fail(exc.code, exc.msg, 401)

    # -- errors ---------------------------------------------------------------
    def error_response(self, code: str, status: int | None = None) -> Response:
        """OKX's body for a venue-neutral error code (``status``: any HTTP status)."""
        if code == "auth" and status == 403:
            return okj.fail(*okj.STATUS_BODIES[403], 403)
        if code in okj.ERRORS:
            default_status, okx_code, msg, s_code = okj.ERRORS[code]
            data = []
            if s_code is not None:
                s_msg = okj.S_MSGS[s_code].format("USDT")
                data = [{"clOrdId": "", "ordId": "", "sCode": s_code, "sMsg": s_msg, "tag": ""}]
            return okj.fail(okx_code, msg, status or default_status, data)
        status = status or 500
        default = ("50026", "System error. Try again later") if status >= 500 else ("51000", "")
        okx_code, msg = okj.STATUS_BODIES.get(status, default)
        return okj.fail(okx_code, msg or f"HTTP {status}", status)

    # -- public -----------------------------------------------------------------
    def time(self, req: Request) -> Response:
        return okj.ok([{"ts": str(okj.now_ms())}])

    def system_status_events(self, req: Request) -> Response:
        """www.okx.com/docs-v5/en/#status-get-status: no event while all is well; an ongoing
        spot upgrade for maintenance, one in its pre-open phase for cancel-only/post-only."""
        if self.system_status == "ok":
            return okj.ok([])
        state = "ongoing" if self.system_status == "maintenance" else "pre_open"
        return okj.ok([okj.status_event(state)])

    def instruments(self, req: Request) -> Response:
        inst_type = req.query.get("instType")
        if not inst_type:
            return okj.fail("50014", "Parameter instType can not be empty.", 400)
        if inst_type != "SPOT":
            return okj.ok([])  # this venue lists spot only
        wanted = req.query.get("instId")
        rows = [okj.instrument(s) for s in self.symbols()]
        return okj.ok([r for r in rows if wanted in (None, r["instId"])])

    def currencies(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        codes = sorted({c for s in self.symbols() for c in s.split("/")})
        return okj.ok([okj.currency(c) for c in codes])

    def candles(self, req: Request) -> Response:
        symbol = self.symbol_of(req.query.get("instId"))
        if symbol is None:
            return okj.fail("51001", "Instrument ID does not exist")
        m = re.fullmatch(r"(\d+)([smHDW])(utc)?", req.query.get("bar", "1m"))
        if not m:
            return okj.fail("51000", "Parameter bar error", 400)
        step = int(m.group(1)) * BAR_UNITS[m.group(2)]
        limit = max(1, min(int(req.query.get("limit", "100")), 300))
        after = req.query.get("after")  # newest rows strictly older than this ts
        end_ms = int(after) - 1 if after else None
        rows = self.market.candles(symbol, step, limit, end_ms)
        before = req.query.get("before")  # rows strictly newer than this ts
        if before:
            rows = [r for r in rows if r[0] > int(before)]
        current = okj.now_ms() // (step * 1000) * step * 1000
        data = [
            [
                str(int(r[0])),
                *(okj.num(v) for v in r[1:5]),
                okj.num(r[5]),
                okj.num(r[5] * r[4]),
                okj.num(r[5] * r[4]),
                "0" if int(r[0]) >= current else "1",
            ]
            for r in rows
        ]
        return okj.ok(list(reversed(data)))  # OKX answers newest first

    def ticker(self, req: Request) -> Response:
        symbol = self.symbol_of(req.query.get("instId"))
        if symbol is None:
            return okj.fail("51001", "Instrument ID does not exist")
        return okj.ok([okj.ticker(self.market, symbol)])

    def tickers(self, req: Request) -> Response:
        if req.query.get("instType") != "SPOT":
            return okj.ok([])
        return okj.ok([okj.ticker(self.market, s) for s in self.symbols()])

    # -- account ----------------------------------------------------------------
    def balance(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        wanted = set(filter(None, req.query.get("ccy", "").split(",")))
        frozen = self._frozen(ledger)
        details, total_usd = [], 0.0
        for ccy, amount in sorted(ledger.snapshot().items()):
            if amount == 0 or (wanted and ccy not in wanted):
                continue
            usd = self._usd_value(ccy, amount)
            total_usd += usd or 0.0
            held = frozen.get(ccy, 0.0)
            details.append(
                {
                    "ccy": ccy,
                    "eq": okj.num(amount),
                    "cashBal": okj.num(amount),
                    "availBal": okj.num(amount - held),
                    "availEq": okj.num(amount - held),
                    "frozenBal": okj.num(held),
                    "ordFrozen": okj.num(held),
                    "eqUsd": okj.num(usd) if usd is not None else "0",
                    "disEq": okj.num(usd) if usd is not None else "0",
                    "upl": "0",
                    "liab": "",
                    "uTime": str(okj.now_ms()),
                }
            )
        now = str(okj.now_ms())
        return okj.ok(
            [{"adjEq": "", "totalEq": okj.num(total_usd), "uTime": now, "details": details}]
        )

    def _usd_value(self, ccy: str, amount: float) -> float | None:
        if ccy in ("USD", "USDT", "USDC"):
            return amount
        for quote_ in okj.QUOTES:
            if self.market.has(f"{ccy}/{quote_}"):
                return amount * self.market.price(f"{ccy}/{quote_}")
        return None

    def funding_balance(self, req: Request) -> Response:
        """GET /api/v5/asset/balances: the funding account, one row per currency held."""
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        key = next(k for k, v in self.accounts.items() if v is ledger)
        wanted = set(filter(None, req.query.get("ccy", "").split(",")))
        rows = [
            {"availBal": okj.num(v), "bal": okj.num(v), "ccy": ccy, "frozenBal": "0"}
            for ccy, v in sorted(self.funding.get(key, {}).items())
            if v and (not wanted or ccy in wanted)
        ]
        return okj.ok(rows)

    @staticmethod
    def _frozen(ledger: Ledger) -> dict[str, float]:
        """What open limit orders hold: quote for buys (the fee comes from the base bought),
        base for sells."""
        held: dict[str, float] = {}
        for o in ledger.open_orders():
            if o.side == "buy":
                amount = o.amount * (o.limit_price or 0.0)
                held[o.quote] = held.get(o.quote, 0.0) + amount
            else:
                held[o.base] = held.get(o.base, 0.0) + o.amount
        return held

    def positions(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        return okj.ok([])  # spot holdings are balances, not positions, on OKX

    # -- orders -------------------------------------------------------------------
    def create_order(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        try:
            body = req.json()
        except ValueError:
            return okj.fail("50002", "Json data format error", 400)
        batch = isinstance(body, list)
        items = body if batch else [body]
        if not items or not all(isinstance(i, dict) for i in items):
            return okj.fail("50000", "Body can not be empty", 400)
        results = [self._place(ledger, item) for item in items]
        failed = sum(r["sCode"] != "0" for r in results)
        now = str(okj.now_ms())
        if failed == 0:
            code, msg = "0", ""
        elif failed == len(results):
            code, msg = "1", "All operations failed" if batch else "Operation failed."
        else:
            code, msg = "2", "Bulk operation partially succeeded"
        return Response(
            200, {"code": code, "msg": msg, "data": results, "inTime": now, "outTime": now}
        )

    def _place(self, ledger: Ledger, item: dict) -> dict:
        """One order of a place request: OKX's per-order result (``sCode`` "0" when accepted)."""
        cl_id = str(item.get("clOrdId", ""))

        def refused(s_code: str, arg: str = "") -> dict:
            s_msg = okj.S_MSGS[s_code].format(arg)
            return {"clOrdId": cl_id, "ordId": "", "tag": "", "sCode": s_code, "sMsg": s_msg}

        symbol = self.symbol_of(item.get("instId"))
        if symbol is None:
            return refused("51001")
        if cl_id and not CLIENT_ID.fullmatch(cl_id):
            return refused("51000", "clOrdId")
        if item.get("tdMode") != "cash":
            return refused("51000", "tdMode")
        side, ord_type = item.get("side"), item.get("ordType")
        if side not in ("buy", "sell"):
            return refused("51000", "side")
        if ord_type in ("post_only", "ioc", "fok"):
            ord_type = "limit"
        if ord_type not in ("market", "limit"):
            return refused("51000", "ordType")
        try:
            size = float(item.get("sz", ""))
            price = float(item["px"]) if ord_type == "limit" else None
        except (KeyError, ValueError):
            return refused("51000", "sz" if "sz" not in item else "px")
        default_tgt = "quote_ccy" if (ord_type, side) == ("market", "buy") else "base_ccy"
        tgt = item.get("tgtCcy") or default_tgt
        by_quote = ord_type == "market" and tgt == "quote_ccy"
        _, lot_sz, min_sz = okj.LOTS.get(symbol.split("/")[0], okj.DEFAULT_LOT)
        bid, ask = self.market.bid_ask(symbol)
        base_size = size / (ask if side == "buy" else bid) if by_quote else size
        if base_size < float(min_sz):
            return refused("51020")
        if not by_quote and off_step(size, lot_sz):
            return refused("51121")
        try:
            order = ledger.place(
                symbol,
                side,
                ord_type,
                amount=None if by_quote else size,
                quote_amount=size if by_quote else None,
                limit_price=price,
                client_order_id=cl_id or None,
            )
        except Rejected as exc:
            return self._rejected(cl_id, symbol, side, exc)
        self.tgt_ccy[order.order_id] = tgt
        return {
            "clOrdId": cl_id,
            "ordId": order.order_id,
            "tag": str(item.get("tag", "")),
            "ts": str(okj.now_ms()),
            "sCode": "0",
            "sMsg": "Order placed",
        }

    @staticmethod
    def _rejected(cl_id: str, symbol: str, side: str, exc: Rejected) -> dict:
        base, quote_ = symbol.split("/")
        s_code = {
            "insufficient_funds": "51008",
            "duplicate_client_id": "51016",
            "unknown_symbol": "51001",
        }.get(exc.code, "51000")
        arg = (quote_ if side == "buy" else base) if s_code == "51008" else "sz"
        s_msg = okj.S_MSGS[s_code].format(arg)
        return {"clOrdId": cl_id, "ordId": "", "tag": "", "sCode": s_code, "sMsg": s_msg}

    def order_json(self, o: EmuOrder) -> dict:
        """An order as OKX's order-details endpoints show it."""
        return okj.order(o, self.tgt_ccy.get(o.order_id, "base_ccy"))

    def _find(self, ledger: Ledger, params: dict) -> EmuOrder | Response | None:
        """The order named by ``ordId``/``clOrdId`` on ``instId``, None, or an error answer."""
        symbol = self.symbol_of(params.get("instId"))
        if symbol is None:
            return okj.fail("51001", "Instrument ID does not exist")
        if params.get("ordId"):
            order = ledger.find(order_id=str(params["ordId"]))
        elif params.get("clOrdId"):
            order = ledger.find(client_order_id=str(params["clOrdId"]))
        else:
            return okj.fail("51003", "Either client order ID or order ID is required.")
        return order if order is not None and order.symbol == symbol else None

    def fetch_order(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        ledger.match_limits()
        order = self._find(ledger, req.query)
        if isinstance(order, Response):
            return order
        if order is None:
            return okj.fail("51603", "Order does not exist")
        return okj.ok([self.order_json(order)])

    def open_orders(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        inst_type = req.query.get("instType")
        if inst_type not in (None, "SPOT"):
            return okj.ok([])
        symbol = None
        if req.query.get("instId"):
            symbol = self.symbol_of(req.query["instId"])
            if symbol is None:
                return okj.fail("51001", "Instrument ID does not exist")
        orders = sorted(ledger.open_orders(symbol), key=lambda o: -o.created_ms)
        return okj.ok([self.order_json(o) for o in orders])

    def cancel_order(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        try:
            params = req.json()
        except ValueError:
            return okj.fail("50002", "Json data format error", 400)
        ledger.match_limits()
        order = self._find(ledger, params)
        if isinstance(order, Response):
            return order
        cl_id = str(params.get("clOrdId", ""))
        if order is None or order.status != "open":
            s_code, s_msg = "51400", "Order cancellation failed as the order does not exist."
            if order is not None and order.status == "canceled":
                s_code, s_msg = "51401", "Order has been canceled"
            elif order is not None:
                s_code, s_msg = "51402", "Order has been completed"
            result = {"clOrdId": cl_id, "ordId": str(params.get("ordId", "")), "sCode": s_code}
            return okj.fail("1", "Operation failed.", 200, [{**result, "sMsg": s_msg}])
        ledger.cancel(order)
        return okj.ok(
            [
                {
                    "clOrdId": order.client_order_id,
                    "ordId": order.order_id,
                    "ts": str(okj.now_ms()),
                    "sCode": "0",
                    "sMsg": "",
                }
            ]
        )
