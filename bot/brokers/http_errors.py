"""HTTP failures as the project's types: a status code, a Retry-After header, ``requests`` errors.

Shared by the adapters whose SDKs speak HTTP through ``requests`` (all of them); each adapter
calls these from its own choke point and chains the result ``from`` the SDK's exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import requests
import urllib3.exceptions

from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerError,
    NetworkFailure,
    NetworkTimeout,
    RateLimited,
    VenueRefused,
)

# What ``from_requests`` translates: requests' exceptions (its JSONDecodeError included) and
# urllib3's, should one slip past requests.
HTTP_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError)


def retry_after_header(headers: Mapping[str, str] | None) -> float | None:
    """The seconds of a ``Retry-After`` header; None when absent, an HTTP-date or garbage."""
    if headers is None:
        return None
    try:
        seconds = float(headers.get("Retry-After"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # an HTTP-date or garbage: not worth guessing
    return seconds if seconds >= 0 else None


def status_error(
    status: int | None, message: str, *, retry_after: float | None = None
) -> BrokerError:
    """The project's exception for an HTTP error ``status`` (None: no status is known)."""
    if status in (401, 403):
        return AuthRejected(message, status=status)
    if status in (429, 418):
        return RateLimited(message, retry_after=retry_after, status=status)
    if status is not None and 500 <= status <= 504:
        return NetworkFailure(message, status=status)
    # 408 is the venue timing our request out: it proves no refusal.
    if status is not None and 400 <= status < 500 and status != 408:
        return VenueRefused(message, status=status)
    return BrokerError(message, status=status)


def response_of(error: BaseException) -> requests.Response | None:
    """The HTTP response an SDK exception carries (``requests.HTTPError``, alpaca-py's APIError)."""
    response = getattr(error, "response", None)
    return response if isinstance(response, requests.Response) else None


def from_requests(
    error: requests.RequestException | urllib3.exceptions.HTTPError | json.JSONDecodeError,
    venue: str,
) -> BrokerError:
    """The project's exception for a failure ``requests`` (or what it wraps) raised talking to ``venue``."""
    message = f"{venue}: {type(error).__name__}: {error}"
    # requests' JSONDecodeError is also a RequestException: a garbled answer, not a network failure.
    if isinstance(error, json.JSONDecodeError | requests.exceptions.JSONDecodeError):
        return BadResponse(message)
    if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError):
        return NetworkTimeout(message)
    if isinstance(error, requests.HTTPError):
        response = response_of(error)
        if response is None:
            return BrokerError(message)
        return status_error(
            response.status_code, message, retry_after=retry_after_header(response.headers)
        )
    # Connection errors, broken transfers, any other transport failure.
    return NetworkFailure(message)
