"""One account's ccxt exchange object, and the one place ccxt is called.

``CcxtClient`` builds the SDK object for a Kraken, OKX or Binance spot account (credentials,
base URL, transport, request budgets; no network), bounds each public call of the broker by
its timeout, and keeps the venue's market metadata. No ccxt exception leaves ``call``: each
is translated into the project's types (``bot.brokers.ccxt.errors``), chained ``from``
ccxt's. What escapes ccxt's own hierarchy is converted there too: a secret ccxt cannot
decode while signing (``BrokerConfigError``), an answer that is not JSON or that ccxt's
parser chokes on (``BadResponse``).
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import ccxt

from bot.brokers.base import LOOPBACK_HOSTS
from bot.brokers.budget import Budgets
from bot.brokers.ccxt.config import VenueConfig, redirect_urls
from bot.brokers.ccxt.errors import translate
from bot.brokers.ccxt.throttle import spend_per_request
from bot.brokers.http_errors import HTTP_FAILURES, from_requests
from bot.brokers.transport import LastLook, Transport, mount
from bot.clock import Clock
from bot.errors import BadResponse, BrokerConfigError
from bot.model import BrokerSpec

__all__ = ["CcxtClient"]

# ccxt logs every request's headers (API key, OKX passphrase) at DEBUG: give it a logger
# that never emits DEBUG, whatever the root level is.
_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_SDK_LOG.setLevel(logging.INFO)

# The smallest per-request timeout once a call's overall budget is spent: the SDK then
# fails fast with its own RequestTimeout instead of us inventing an exception.
_MIN_REQUEST_SECONDS = 0.05


class CcxtClient:
    """The ccxt exchange object of one account (``ex``), called through ``call`` only.

    Every HTTP request spends ``budgets`` (``bot.brokers.ccxt.throttle``); ccxt's own
    throttle is off, because its spacing counted inside the call's deadline.
    """

    def __init__(
        self, spec: BrokerSpec, venue: VenueConfig, *, clock: Clock, budgets: Budgets | None
    ) -> None:
        self.name = spec.account.broker
        self._account_key = spec.account.key
        self._clock = clock
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
        self.ex = getattr(ccxt, venue.ccxt_id)(config)
        if spec.base_url:
            self.ex.urls["api"] = redirect_urls(
                self.ex.urls["api"], spec.base_url, getattr(self.ex, "hostname", None)
            )
        host = urlsplit(spec.base_url).hostname if spec.base_url else None
        if host in LOOPBACK_HOSTS:
            self.ex.session.trust_env = False  # never route loopback through a proxy
        self.last_look = LastLook()  # an order's, armed around its create_order
        mount(self.ex.session, Transport(last_look=self.last_look))
        self._deadline: float | None = None
        if budgets is not None:
            spend_per_request(self.ex, budgets, venue.request_costs, self._throttled)
        self._reload_markets = False

    @contextmanager
    def budget(self) -> Iterator[None]:
        """Bound one public call (however many requests it makes) by ``timeout_seconds``."""
        outer = self._deadline is None
        if outer:
            self._deadline = self._clock.monotonic() + self._timeout_s
        try:
            yield
        finally:
            if outer:
                self._deadline = None

    @contextmanager
    def outside_deadline(self) -> Iterator[None]:
        """What the block takes does not count against the call's deadline: work of the
        venue's that this call waits on (its shared price of a holding, bounded on its own)."""
        started = self._clock.monotonic()
        try:
            yield
        finally:
            if self._deadline is not None:
                self._deadline += self._clock.monotonic() - started

    def _throttled(self, waited: float) -> None:
        """After a request waited on its budget: push the call's deadline back by the wait
        (a throttle wait never counts against the timeout) and time the request by it."""
        if self._deadline is not None:
            self._deadline += waited
            remaining = max(self._deadline - self._clock.monotonic(), _MIN_REQUEST_SECONDS)
            self.ex.timeout = int(min(remaining, self._timeout_s) * 1000)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ccxt within the remaining budget; every failure leaves as a ``bot.errors`` type."""
        if self._deadline is not None:
            remaining = max(self._deadline - self._clock.monotonic(), _MIN_REQUEST_SECONDS)
            self.ex.timeout = int(min(remaining, self._timeout_s) * 1000)
        self.ex.last_http_response = None
        self.ex.last_json_response = None
        try:
            result = fn(*args, **kwargs)
        except ccxt.BaseError as exc:
            raise translate(exc) from exc
        except HTTP_FAILURES as exc:  # ccxt wraps these; never let one slip out
            raise from_requests(exc, self.name) from exc
        except binascii.Error:
            # ccxt decodes the secret while signing; the message must not carry the value.
            raise BrokerConfigError(
                f"{self._account_key}: the API secret is not valid base64 (check that account's _API_SECRET)"
            ) from None
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            # ccxt's parsers index into the answer; a malformed one escapes as these.
            raise BadResponse(
                f"{self.name} sent an answer the SDK could not parse ({type(exc).__name__})"
            ) from exc
        if self.ex.last_http_response is not None and self.ex.last_json_response is None:
            raise BadResponse(f"{self.name} answered with a body that is not JSON")
        return result

    def adopt_metadata(self, source: CcxtClient) -> bool:
        """Take the markets and currencies another client of this venue loaded (ccxt's
        ``set_markets_from_exchange``: shared, not copied); True when this client has them."""
        if self.ex.markets:
            return True
        if source.name != self.name:
            return False
        loaded = source.ex
        if not loaded.markets or not loaded.markets_by_id:
            return False
        self.ex.set_markets_from_exchange(loaded)
        return True

    def markets(self) -> dict[str, dict]:
        """Market metadata, loaded once per client (ccxt caches it) unless adopted from
        another client, and again after ``refresh_markets``."""
        markets = self.call(self.ex.load_markets, self._reload_markets)
        if not isinstance(markets, dict) or not markets:
            raise BadResponse(f"{self.name} returned no markets")
        self._reload_markets = False
        return markets

    def refresh_markets(self) -> None:
        """The next call that needs the markets loads them again."""
        self._reload_markets = True

    def close(self) -> None:
        """Release the HTTP session."""
        self.ex.session.close()
