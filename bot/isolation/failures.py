"""Sort an exception into a ``FailureType`` by its type, never by the words in its message.

The order of the checks matters: ccxt's RateLimitExceeded is a NetworkError, and
requests' exceptions subclass OSError, so the specific classes come first.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
from enum import Enum

import ccxt
import requests
from alpaca.common.exceptions import APIError as AlpacaAPIError
from pydantic import ValidationError

from bot import errors


class FailureType(Enum):
    API_ERROR = "api_error"
    NETWORK_ERROR = "network_error"
    AUTHENTICATION_ERROR = "authentication_error"
    RATE_LIMIT_ERROR = "rate_limit_error"
    BALANCE_ERROR = "balance_error"
    POSITION_ERROR = "position_error"
    EXECUTION_ERROR = "execution_error"
    UNKNOWN_ERROR = "unknown_error"


# Operation names (exact) that give an otherwise unknown failure its type.
_BY_OPERATION = {
    "balance": FailureType.BALANCE_ERROR,
    "positions": FailureType.POSITION_ERROR,
    "order": FailureType.EXECUTION_ERROR,
}

# A bare OSError counts as a network failure only when its errno says so (not a full disk).
_NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENETUNREACH", "ENETDOWN", "EHOSTUNREACH", "EHOSTDOWN", "ETIMEDOUT", "EPIPE")
    if hasattr(errno, name)
)

# ccxt classes, most specific first; the first match wins.
_CCXT = (
    (ccxt.AuthenticationError, FailureType.AUTHENTICATION_ERROR),
    (ccxt.RateLimitExceeded, FailureType.RATE_LIMIT_ERROR),
    (ccxt.DDoSProtection, FailureType.RATE_LIMIT_ERROR),
    (ccxt.NetworkError, FailureType.NETWORK_ERROR),
    (ccxt.InsufficientFunds, FailureType.BALANCE_ERROR),
    (ccxt.InvalidOrder, FailureType.EXECUTION_ERROR),
    (ccxt.BaseError, FailureType.API_ERROR),
)

# The project's own exceptions.
_PROJECT = (
    (errors.BrokerConfigError, FailureType.AUTHENTICATION_ERROR),
    (errors.SimulatedAuthError, FailureType.AUTHENTICATION_ERROR),
    (errors.SimulatedRateLimit, FailureType.RATE_LIMIT_ERROR),
    (errors.SimulatedApiError, FailureType.API_ERROR),
    (errors.BrokerResponseError, FailureType.API_ERROR),
)


def http_status_type(status: int | None) -> FailureType:
    """The failure an HTTP error status means, whatever SDK reported it."""
    if status in (401, 403):
        return FailureType.AUTHENTICATION_ERROR
    if status in (429, 418):
        return FailureType.RATE_LIMIT_ERROR
    if status is not None and 500 <= status <= 504:
        return FailureType.NETWORK_ERROR
    return FailureType.API_ERROR


def _status_of(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def classify(error: BaseException, operation: str | None = None) -> FailureType:
    """The ``FailureType`` of ``error``; ``operation`` decides only for exceptions of no known type."""
    for cls, failure in _CCXT:
        if isinstance(error, cls):
            return failure
    if isinstance(error, errors.OrderRejected):
        return (
            FailureType.BALANCE_ERROR if error.insufficient_funds else FailureType.EXECUTION_ERROR
        )
    for cls, failure in _PROJECT:
        if isinstance(error, cls):
            return failure
    if isinstance(error, AlpacaAPIError):
        return http_status_type(_status_of(error))
    # requests: JSONDecodeError subclasses both RequestException and ValueError.
    if isinstance(error, json.JSONDecodeError | requests.exceptions.JSONDecodeError):
        return FailureType.API_ERROR
    if isinstance(error, requests.Timeout | requests.ConnectionError):
        return FailureType.NETWORK_ERROR
    if isinstance(error, requests.HTTPError):
        return http_status_type(_status_of(error))
    if isinstance(error, requests.RequestException):
        return FailureType.NETWORK_ERROR
    if isinstance(error, ValidationError):
        return FailureType.API_ERROR
    if isinstance(error, TimeoutError | ConnectionError | socket.gaierror | ssl.SSLError):
        return FailureType.NETWORK_ERROR
    if isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS:
        return FailureType.NETWORK_ERROR
    return _BY_OPERATION.get(operation or "", FailureType.UNKNOWN_ERROR)


def retry_after_seconds(error: BaseException) -> float | None:
    """Seconds the venue asked us to wait (Retry-After, in seconds), when the SDK exposes it.

    ccxt's exceptions carry no response, but the HTTP error they were raised from
    is chained as their ``__context__``, so the chain is followed a few links deep.
    """
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return None
        found = _own_retry_after(seen)
        if found is not None:
            return found
        seen = seen.__cause__ or seen.__context__
    return None


def _own_retry_after(error: BaseException) -> float | None:
    explicit = getattr(error, "retry_after", None)
    if isinstance(explicit, int | float) and explicit >= 0:
        return float(explicit)
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        seconds = float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None  # an HTTP-date or garbage: not worth guessing
    return seconds if seconds >= 0 else None


# Failure types that prove the venue refused (did not take) the request.
_REFUSALS = frozenset(
    {
        FailureType.AUTHENTICATION_ERROR,
        FailureType.RATE_LIMIT_ERROR,
        FailureType.BALANCE_ERROR,
        FailureType.EXECUTION_ERROR,
    }
)


def is_definitive_refusal(error: BaseException) -> bool:
    """True when ``error`` proves the venue refused the request, so nothing happened there.

    A refusal is final for an order's intent. Anything else (timeouts, 5xx, dropped
    connections, garbled answers) is ambiguous: the order may exist, and must be looked up.
    """
    if isinstance(error, errors.OrderRejected | ccxt.BadRequest):
        return True
    if classify(error) in _REFUSALS:  # by type only: an unknown exception proves nothing
        return True
    status = _status_of(error)
    # A 4xx answer is the venue refusing what it read (408 is a timeout, not a refusal).
    return status is not None and 400 <= status < 500 and status != 408
