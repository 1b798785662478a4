"""Sort an exception into a ``FailureType`` by its type, never by the words in its message.

Adapters translate every SDK exception into the project's types (``bot.errors``) at their
edge, so only those and the standard library's own exceptions are sorted here; no SDK is
imported. The order of the checks matters: the most specific class comes first.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
from enum import Enum

from bot import errors


class FailureType(Enum):
    API_ERROR = "api_error"
    NETWORK_ERROR = "network_error"
    AUTHENTICATION_ERROR = "authentication_error"
    RATE_LIMIT_ERROR = "rate_limit_error"
    BALANCE_ERROR = "balance_error"
    POSITION_ERROR = "position_error"
    EXECUTION_ERROR = "execution_error"
    STORE_ERROR = "store_error"  # NIJA's own state could not be written or read (a full disk)
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

# The project's exceptions, most specific first; the first match wins.
_PROJECT: tuple[tuple[type[errors.NijaError], FailureType], ...] = (
    (errors.BrokerConfigError, FailureType.AUTHENTICATION_ERROR),
    (errors.AuthRejected, FailureType.AUTHENTICATION_ERROR),
    (errors.RateLimited, FailureType.RATE_LIMIT_ERROR),
    (errors.NetworkFailure, FailureType.NETWORK_ERROR),
    (errors.InsufficientFunds, FailureType.BALANCE_ERROR),
    (errors.OrderRejected, FailureType.EXECUTION_ERROR),
    (errors.NotFound, FailureType.EXECUTION_ERROR),
    # VenueRefused, BadResponse, and venue errors of no finer kind.
    (errors.BrokerError, FailureType.API_ERROR),
    (errors.StorageError, FailureType.STORE_ERROR),
)


def classify(error: BaseException, operation: str | None = None) -> FailureType:
    """The ``FailureType`` of ``error``; ``operation`` decides only for exceptions of no known type."""
    for cls, failure in _PROJECT:
        if isinstance(error, cls):
            return failure
    if isinstance(error, json.JSONDecodeError):
        return FailureType.API_ERROR
    if isinstance(error, TimeoutError | ConnectionError | socket.gaierror | ssl.SSLError):
        return FailureType.NETWORK_ERROR
    if isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS:
        return FailureType.NETWORK_ERROR
    if errors.is_disk_full(error):
        return FailureType.STORE_ERROR
    return _BY_OPERATION.get(operation or "", FailureType.UNKNOWN_ERROR)


def retry_after_seconds(error: BaseException) -> float | None:
    """Seconds the venue asked us to wait, from the error's ``retry_after`` (None when it did not say).

    ``RateLimited`` carries the venue's Retry-After, read by the adapter at its edge; an
    exception of the caller's own that has a ``retry_after`` attribute is read the same way.
    """
    seconds = getattr(error, "retry_after", None)
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    return None


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
    if isinstance(error, errors.VenueRefused):
        return True
    return classify(error) in _REFUSALS  # by type only: an unknown exception proves nothing
