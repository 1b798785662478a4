"""alpaca-py's failures as the project's types (``bot.errors``).

alpaca-py raises ``APIError`` for an HTTP error status (the ``requests.HTTPError`` with the
response inside), ``requests``' own exceptions for transport failures and non-JSON bodies,
pydantic's ``ValidationError`` for an answer of the wrong shape, and bare ValueError /
TypeError / KeyError / AttributeError when a market-data body is null, a list, or lacks a key.
``translated`` turns each into the project's type, chained ``from`` the SDK's exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alpaca.common.exceptions import APIError
from pydantic import ValidationError

from bot.brokers.http_errors import (
    HTTP_FAILURES,
    from_requests,
    response_of,
    retry_after_header,
    status_error,
)
from bot.errors import BadResponse, BrokerError, InsufficientFunds, NotFound, OrderRejected

# Alpaca's documented codes: 40410000 "not found"; 40310000 is overloaded (insufficient
# buying power / qty, but also other refusals), so the message decides for that one.
NOT_FOUND_CODE = 40410000
FORBIDDEN_CODE = 40310000
# Words of Alpaca's refusals of an order's shape (fractional, minimum, price increment rules;
# docs/fractional-trading and docs/orders-at-alpaca). Some come with HTTP 403: the message,
# not the status, tells them from a refused key.
ORDER_RULE_WORDS = (
    "not fractionable",
    "fractional orders",
    "cost basis must be",
    "sub-penny increment",
)

# Failures of alpaca-py that ``translated`` turns into the project's types.
SDK_FAILURES = (
    APIError,
    *HTTP_FAILURES,
    ValidationError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


def _error_body(exc: APIError) -> dict[str, Any]:
    """Alpaca's JSON error body (``{"code": ..., "message": ...}``), or {} for anything else."""
    try:
        body = json.loads(str(exc))
    except ValueError:
        return {}  # an HTML page or plain text: not an Alpaca error body
    return body if isinstance(body, dict) else {}


def from_api_error(exc: APIError, what: str) -> BrokerError:
    """The project's exception for an HTTP error status alpaca-py reported during ``what``."""
    status = exc.status_code
    body = _error_body(exc)
    message = str(body.get("message", "")) if body else ""
    text = f"Alpaca {what}: HTTP {status}: {message or str(exc)}"
    # Only Alpaca's own "not found" code (not a proxy's 404 page) says the thing is absent.
    if status == 404 and body.get("code") == NOT_FOUND_CODE:
        return NotFound(text, status=status)
    # Alpaca refuses an order for lack of buying power / shares with HTTP 403 + 40310000.
    if status == 403 and body.get("code") == FORBIDDEN_CODE and "insufficient" in message:
        return InsufficientFunds(f"Alpaca: {message}", status=status)
    if status in (403, 422) and any(words in message for words in ORDER_RULE_WORDS):
        return OrderRejected(f"Alpaca: {message}", status=status)
    response = response_of(exc)
    retry_after = retry_after_header(response.headers) if response is not None else None
    return status_error(status, text, retry_after=retry_after)


def translate(exc: Exception, what: str) -> BrokerError:
    """The project's exception for a failure of alpaca-py during ``what`` (one of ``SDK_FAILURES``)."""
    if isinstance(exc, APIError):
        return from_api_error(exc, what)
    if isinstance(exc, HTTP_FAILURES):  # requests' JSONDecodeError: a body that is not JSON
        return from_requests(exc, f"Alpaca {what}")
    if isinstance(exc, ValidationError):
        # Raised building a request model too (from our own checked values: a bug, not the venue).
        return BadResponse(
            f"Alpaca {what}: data did not match the SDK's model ({exc.error_count()} field errors)"
        )
    return BadResponse(f"Alpaca {what}: unreadable response ({type(exc).__name__})")


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Every alpaca-py failure inside the block leaves as the project's type, chained ``from`` it."""
    try:
        yield
    except SDK_FAILURES as exc:
        raise translate(exc, what) from exc
