"""Enough of Coinbase Advanced Trade (``/api/v3/brokerage``) for coinbase-advanced-py to work.

Authentication is the real scheme: a Bearer JWT signed ES256 (or EdDSA) by the key's
private key, ``sub`` = key name, ``uri`` = ``"{METHOD} {host}{path}"``. The venue keeps
each account's PEM and verifies the signature with the public key derived from it.

Route names: balance (accounts), markets (products), product, candles, ticker
(products/{id}/ticker), create_order, fetch_order (orders/historical/batch: the list
endpoint, used both for look-ups by client id and for open orders), get_order
(orders/historical/{id}), cancel_order (orders/batch_cancel). The market-data routes are
served twice, as on Coinbase: signed under ``/products``, and public (no key) under
``/market/products``, with the same route names and answers.

As Coinbase documents it (docs/VENUES.md): a repeated ``client_order_id`` creates nothing
and answers the existing order, whatever its status; List Orders returns every status by
default, newest first; each product's steps and minimums (``venue.rules``, served by List
Products) are enforced on Create Order with Coinbase's failure answer; fees are charged
in the quote currency on both sides.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal

import jwt
from cryptography.hazmat.primitives import serialization

from .coinbase_json import (
    DEFAULT_PRODUCTS,
    GRANULARITY,
    MARKET_PREFIX,
    PREFIX,
    ProductRules,
    canonical,
    decimal,
    error_body,
    iso,
    on_step,
    order_failure,
    order_json,
    pid,
    product_json,
)
from .core import EmuOrder, Ledger, Market, Rejected
from .server import AuthFailed, Request, Response, Venue


class CoinbaseVenue(Venue):
    """The emulated Coinbase Advanced Trade REST API."""

    name = "COINBASE"

    def __init__(self, market: Market, products: tuple[str, ...] = DEFAULT_PRODUCTS) -> None:
        super().__init__(market)
        self.products = [s for s in products if market.has(s)]
        # Each product's steps and minimums; ``set_rules`` makes one stricter for a test.
        self.rules: dict[str, ProductRules] = {s: ProductRules() for s in self.products}
        r = self.route
        r("GET", PREFIX + r"/accounts", "balance", self._accounts)
        for products in (PREFIX + "/products", MARKET_PREFIX + "/products"):
            r("GET", products, "markets", self._products)
            r("GET", products + r"/(?P<pid>[A-Z0-9]+-[A-Z0-9]+)", "product", self._product)
            r("GET", products + r"/(?P<pid>[^/]+)/candles", "candles", self._candles)
            r("GET", products + r"/(?P<pid>[^/]+)/ticker", "ticker", self._ticker)
        r("POST", PREFIX + r"/orders", "create_order", self._create)
        r("GET", PREFIX + r"/orders/historical/batch", "fetch_order", self._list_orders)
        r("GET", PREFIX + r"/orders/historical/(?P<oid>[^/]+)", "get_order", self._get_order)
        r("POST", PREFIX + r"/orders/batch_cancel", "cancel_order", self._cancel)

    # -- hooks ------------------------------------------------------------------
    def account_for(self, req: Request) -> Ledger:
        """The key named by the JWT's ``sub``, after checking signature, expiry and ``uri``."""
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise AuthFailed("no bearer token")
        token = auth[len("Bearer ") :]
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            key_name = claims.get("sub")
            if key_name not in self.accounts:
                raise AuthFailed("unknown key")
            private = serialization.load_pem_private_key(
                self.secrets[key_name].encode(), password=None
            )
            jwt.decode(
                token,
                private.public_key(),
                algorithms=["ES256", "EdDSA"],
                options={"require": ["sub", "exp", "nbf", "uri"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthFailed(str(exc)) from exc
        expected = f"{req.method} {req.headers.get('host', '')}{req.path}"
        if claims.get("uri") != expected:
            raise AuthFailed("uri claim does not match the request")
        return self.accounts[key_name]

    def error_response(self, code: str, status: int | None = None) -> Response:
        """Coinbase's own body for each venue-neutral error code."""
        if code == "auth":
            status = status or 401
            return error_body(status, "Unauthenticated" if status == 401 else "Permission denied")
        if code == "rate_limit":
            return error_body(status or 429, "Too many requests")
        if code in ("insufficient_funds", "invalid_order"):
            return order_failure(code)  # Coinbase refuses orders inside HTTP 200
        if code == "unknown_symbol":
            return error_body(status or 404, "ProductID is invalid")
        if code == "order_not_found":
            return error_body(status or 404, "order with this orderID was not found")
        if code == "duplicate_client_id":
            return error_body(status or 400, "client_order_id already used")
        if code == "server":
            return error_body(status or 500, "Internal server error")
        status = status or 500
        return error_body(status, f"HTTP {status}")

    def set_rules(self, symbol: str, **fields: str) -> ProductRules:
        """Change some of ``symbol``'s published rules (e.g. ``base_min_size="0.001"``)."""
        self.rules[symbol] = self.rules[symbol].replace(**fields)
        return self.rules[symbol]

    # -- market data ----------------------------------------------------------------
    def _denied(self, req: Request) -> Response | None:
        """The refusal of a market-data request, or None: the public routes need no key."""
        if req.path.startswith(MARKET_PREFIX + "/"):
            return None
        auth = self.authed(req)
        return auth if isinstance(auth, Response) else None

    def _known(self, product_id: str) -> str | None:
        symbol = canonical(product_id)
        return symbol if symbol in self.products else None

    def _products(self, req: Request) -> Response:
        denied = self._denied(req)
        if denied is not None:
            return denied
        items = [product_json(s, self.market.price(s), self.rules[s]) for s in self.products]
        return Response(200, {"products": items, "num_products": len(items)})

    def _product(self, req: Request) -> Response:
        denied = self._denied(req)
        if denied is not None:
            return denied
        symbol = self._known(req.match["pid"])
        if symbol is None:
            return error_body(404, "ProductID is invalid")
        return Response(200, product_json(symbol, self.market.price(symbol), self.rules[symbol]))

    def _candles(self, req: Request) -> Response:
        denied = self._denied(req)
        if denied is not None:
            return denied
        symbol = self._known(req.match["pid"])
        if symbol is None:
            return error_body(404, "ProductID is invalid")
        tf = GRANULARITY.get(req.query.get("granularity", ""))
        try:
            start, end = int(req.query["start"]), int(req.query["end"])
        except (KeyError, ValueError):
            return error_body(400, "start and end must be UNIX seconds")
        if tf is None or end < start:
            return error_body(400, "invalid granularity or range")
        end_bucket = end // tf * tf
        count = (end_bucket - math.ceil(start / tf) * tf) // tf + 1
        if "limit" in req.query:
            count = min(count, int(req.query["limit"]))
        if count > 350:
            return error_body(400, "number of candles requested should be less than 350")
        rows = self.market.candles(symbol, tf, max(count, 0), end_ms=end_bucket * 1000)
        candles = [
            {
                "start": str(int(r[0] // 1000)),
                "low": repr(r[3]),
                "high": repr(r[2]),
                "open": repr(r[1]),
                "close": repr(r[4]),
                "volume": repr(r[5]),
            }
            for r in reversed(rows)  # Coinbase answers newest first
        ]
        return Response(200, {"candles": candles})

    def _ticker(self, req: Request) -> Response:
        denied = self._denied(req)
        if denied is not None:
            return denied
        symbol = self._known(req.match["pid"])
        if symbol is None:
            return error_body(404, "ProductID is invalid")
        bid, ask = self.market.bid_ask(symbol)
        trade = {
            "trade_id": "1",
            "product_id": pid(symbol),
            "price": repr(self.market.price(symbol)),
            "size": "0.01",
            "time": iso(int(dt.datetime.now(dt.UTC).timestamp() * 1000)),
            "side": "BUY",
            "exchange": "coinbase",
        }
        return Response(200, {"trades": [trade], "best_bid": repr(bid), "best_ask": repr(ask)})

    # -- accounts ---------------------------------------------------------------------
    def _accounts(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        balances = sorted(ledger.snapshot().items())
        limit = int(req.query.get("limit") or 49)
        offset = int(req.query.get("cursor") or 0)
        page = balances[offset : offset + limit]
        accounts = [
            {
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{id(ledger)}/{cur}")),
                "name": f"{cur} Wallet",
                "currency": cur,
                "available_balance": {"value": repr(value), "currency": cur},
                "default": True,
                "active": True,
                "type": "ACCOUNT_TYPE_FIAT" if cur == "USD" else "ACCOUNT_TYPE_CRYPTO",
                "ready": True,
                "hold": {"value": "0", "currency": cur},
            }
            for cur, value in page
        ]
        has_next = offset + limit < len(balances)
        return Response(
            200,
            {
                "accounts": accounts,
                "has_next": has_next,
                "cursor": str(offset + limit) if has_next else "",
                "size": len(accounts),
            },
        )

    # -- orders -------------------------------------------------------------------------
    def _create(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        body = req.json()
        client_id = str(body.get("client_order_id") or "")
        existing = ledger.find(client_order_id=client_id) if client_id else None
        if existing is not None:
            # A reused client_order_id creates nothing: the original order is answered.
            return self._created(existing)
        config = body.get("order_configuration") or {}
        side = str(body.get("side", "")).lower()
        symbol = canonical(str(body.get("product_id", "")))
        if symbol not in self.products:
            return order_failure("unknown_symbol", config=config)
        refused = self._refusal(symbol, config)
        if refused is not None:
            return order_failure(refused, config=config)
        try:
            if "market_market_ioc" in config:
                c = config["market_market_ioc"]
                order = ledger.place(
                    symbol,
                    side,
                    "market",
                    amount=float(c["base_size"]) if "base_size" in c else None,
                    quote_amount=float(c["quote_size"]) if "quote_size" in c else None,
                    client_order_id=client_id or None,
                )
            elif "limit_limit_gtc" in config:
                c = config["limit_limit_gtc"]
                order = ledger.place(
                    symbol,
                    side,
                    "limit",
                    amount=float(c["base_size"]),
                    limit_price=float(c["limit_price"]),
                    client_order_id=client_id or None,
                )
            else:
                return order_failure("unsupported_config", config=config)
        except Rejected as exc:
            raced = ledger.find(client_order_id=client_id) if client_id else None
            if exc.code == "duplicate_client_id" and raced is not None:
                return self._created(raced)  # a concurrent send of the same id got there first
            return order_failure(exc.code, exc.message, config=config)
        return self._created(order)

    def _refusal(self, symbol: str, config: dict) -> str | None:
        """Why Coinbase refuses this configuration under ``symbol``'s published rules, or None.

        Sizes and prices off the product's steps are INVALID_*_PRECISION; a base size
        below ``base_min_size`` is BASE_SIZE_TOO_SMALL; a quote size, or a base size's
        value at the limit (or last) price, below ``quote_min_size`` is QUOTE_SIZE_TOO_SMALL.
        """
        rules = self.rules[symbol]
        for inner in config.values():
            if not isinstance(inner, dict):
                continue
            for key, step, code in (
                ("base_size", rules.base_increment, "size_precision"),
                ("quote_size", rules.quote_increment, "size_precision"),
                ("limit_price", rules.price_increment, "price_precision"),
            ):
                if key in inner and not on_step(inner[key], step):
                    return code
            base, quote = decimal(inner.get("base_size")), decimal(inner.get("quote_size"))
            if base is not None:
                if base < Decimal(rules.base_min_size):
                    return "base_too_small"
                price = decimal(inner.get("limit_price")) or Decimal(
                    repr(self.market.price(symbol))
                )
                quote = base * price
            if quote is not None and quote < Decimal(rules.quote_min_size):
                return "quote_too_small"
        return None

    def _created(self, o: EmuOrder) -> Response:
        return Response(
            200,
            {
                "success": True,
                "success_response": {
                    "order_id": o.order_id,
                    "product_id": pid(o.symbol),
                    "side": o.side.upper(),
                    "client_order_id": o.client_order_id,
                },
                "order_configuration": order_json(o)["order_configuration"],
            },
        )

    def _list_orders(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        ledger.match_limits()
        status = req.query.get("order_status")
        product = req.query.get("product_ids")
        rows = [order_json(o) for o in ledger.all_orders()]
        rows = [
            r
            for r in rows
            if (status is None or r["status"] == status)
            and (product is None or r["product_id"] == product)
        ]
        rows.sort(key=lambda r: (r["created_time"], int(r["order_id"])), reverse=True)
        limit = int(req.query.get("limit") or 100)
        offset = int(req.query.get("cursor") or 0)
        page = rows[offset : offset + limit]
        has_next = offset + limit < len(rows)
        return Response(
            200,
            {
                "orders": page,
                "sequence": "0",
                "has_next": has_next,
                "cursor": str(offset + limit) if has_next else "",
            },
        )

    def _get_order(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        ledger.match_limits()
        order = ledger.find(order_id=req.match["oid"])
        if order is None:
            return self.error_response("order_not_found")
        return Response(200, {"order": order_json(order)})

    def _cancel(self, req: Request) -> Response:
        ledger = self.authed(req)
        if isinstance(ledger, Response):
            return ledger
        results = []
        for oid in req.json().get("order_ids") or []:
            order = ledger.find(order_id=str(oid))
            if order is None:
                results.append(
                    {"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": oid}
                )
            elif order.status != "open":
                results.append(
                    {"success": False, "failure_reason": "INVALID_CANCEL_REQUEST", "order_id": oid}
                )
            else:
                ledger.cancel(order)
                results.append(
                    {
                        "success": True,
                        "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON",
                        "order_id": oid,
                    }
                )
        return Response(200, {"results": results})
