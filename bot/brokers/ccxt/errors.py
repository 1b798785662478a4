"""ccxt's exceptions as the project's types (``bot.errors``), by ccxt class.

ccxt keeps no HTTP response on its exceptions, but raises them while handling the
``requests.HTTPError`` of the answer, so that error is the ``__context__``: the HTTP status
and the venue's Retry-After are read from it here, at the edge.
"""

from __future__ import annotations

import ccxt
import requests

from bot.brokers.http_errors import response_of, retry_after_header
from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerError,
    InsufficientFunds,
    NetworkFailure,
    NetworkTimeout,
    NotFound,
    OrderRejected,
    RateLimited,
    VenueRefused,
)

# ccxt classes, most specific first; the first match wins. Any other ccxt error is a
# venue error of no finer kind (ExchangeError, OperationFailed, NotSupported, ...): BrokerError.
_KINDS: tuple[tuple[type[ccxt.BaseError], type[BrokerError]], ...] = (
    (ccxt.AuthenticationError, AuthRejected),  # PermissionDenied, AccountSuspended
    (ccxt.RateLimitExceeded, RateLimited),  # a NetworkError in ccxt: before it
    (ccxt.DDoSProtection, RateLimited),
    (ccxt.RequestTimeout, NetworkTimeout),
    (ccxt.NetworkError, NetworkFailure),  # ExchangeNotAvailable, OnMaintenance, InvalidNonce
    (ccxt.InsufficientFunds, InsufficientFunds),
    (ccxt.OrderNotFound, NotFound),
    (ccxt.InvalidOrder, OrderRejected),
    (ccxt.BadRequest, VenueRefused),  # BadSymbol
    (ccxt.BadResponse, BadResponse),  # NullResponse
)


def _http_response(error: BaseException) -> requests.Response | None:
    """The HTTP response of the error ccxt raised from, a few links down the chain."""
    link = error.__cause__ or error.__context__
    for _ in range(3):
        if link is None:
            return None
        response = response_of(link)
        if response is not None:
            return response
        link = link.__cause__ or link.__context__
    return None


def translate(error: ccxt.BaseError) -> BrokerError:
    """The project's exception for ``error``; the caller raises it ``from error``."""
    response = _http_response(error)
    status = response.status_code if response is not None else None
    message = f"{type(error).__name__}: {error}"
    for sdk_class, ours in _KINDS:
        if isinstance(error, sdk_class):
            if ours is RateLimited:
                retry_after = retry_after_header(response.headers) if response is not None else None
                return RateLimited(message, retry_after=retry_after, status=status)
            return ours(message, status=status)
    return BrokerError(message, status=status)
