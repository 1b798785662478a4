"""Every classification rule of bot.isolation.failures, from the installed SDKs' real exception classes."""

from __future__ import annotations

import errno
import json
import socket

import ccxt
import pydantic
import pytest
import requests
from alpaca.common.exceptions import APIError

from bot import errors
from bot.isolation.failures import FailureType, classify, is_definitive_refusal, retry_after_seconds

F = FailureType


def http_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return requests.HTTPError(f"{status} error", response=response)


def alpaca_error(status: int) -> APIError:
    return APIError(json.dumps({"code": status * 100000, "message": "x"}), http_error(status))


def validation_error() -> pydantic.ValidationError:
    class Model(pydantic.BaseModel):
        qty: float

    try:
        Model(qty="not a number")
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("pydantic accepted a bad value")


def json_error() -> json.JSONDecodeError:
    try:
        json.loads("<html>")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("json accepted html")


CCXT_ROWS = [
    (ccxt.AuthenticationError, F.AUTHENTICATION_ERROR),
    (ccxt.PermissionDenied, F.AUTHENTICATION_ERROR),
    (ccxt.AccountSuspended, F.AUTHENTICATION_ERROR),
    (ccxt.RateLimitExceeded, F.RATE_LIMIT_ERROR),
    (ccxt.DDoSProtection, F.RATE_LIMIT_ERROR),
    (ccxt.NetworkError, F.NETWORK_ERROR),
    (ccxt.RequestTimeout, F.NETWORK_ERROR),
    (ccxt.ExchangeNotAvailable, F.NETWORK_ERROR),
    (ccxt.OnMaintenance, F.NETWORK_ERROR),
    (ccxt.InvalidNonce, F.NETWORK_ERROR),
    (ccxt.InsufficientFunds, F.BALANCE_ERROR),
    (ccxt.InvalidOrder, F.EXECUTION_ERROR),
    (ccxt.OrderNotFound, F.EXECUTION_ERROR),
    (ccxt.OrderImmediatelyFillable, F.EXECUTION_ERROR),
    (ccxt.ExchangeError, F.API_ERROR),
    (ccxt.BadRequest, F.API_ERROR),
    (ccxt.BadSymbol, F.API_ERROR),
    (ccxt.BadResponse, F.API_ERROR),
    (ccxt.NullResponse, F.API_ERROR),
    (ccxt.OperationFailed, F.API_ERROR),
    (ccxt.NotSupported, F.API_ERROR),
]


@pytest.mark.parametrize(("cls", "expected"), CCXT_ROWS, ids=lambda v: getattr(v, "__name__", v))
def test_ccxt_errors_by_type(cls, expected):
    assert classify(cls("kraken {}")) is expected


@pytest.mark.parametrize("operation", [None, "balance", "positions", "order", "candles"])
def test_known_types_ignore_the_operation(operation):
    assert classify(ccxt.RequestTimeout("t"), operation) is F.NETWORK_ERROR
    assert classify(http_error(401), operation) is F.AUTHENTICATION_ERROR


def test_message_words_never_decide():
    # The reference design read "capital" as an API error because it contains "api".
    assert classify(RuntimeError("insufficient capital")) is F.UNKNOWN_ERROR
    assert classify(ccxt.ExchangeError("Invalid API key, timeout, rate limit")) is F.API_ERROR
    assert classify(ValueError("connection refused: network timeout")) is F.UNKNOWN_ERROR


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.Timeout("t"), F.NETWORK_ERROR),
        (requests.ReadTimeout("t"), F.NETWORK_ERROR),
        (requests.ConnectTimeout("t"), F.NETWORK_ERROR),
        (requests.ConnectionError("c"), F.NETWORK_ERROR),
        (requests.exceptions.ChunkedEncodingError("c"), F.NETWORK_ERROR),
        (http_error(401), F.AUTHENTICATION_ERROR),
        (http_error(403), F.AUTHENTICATION_ERROR),
        (http_error(429), F.RATE_LIMIT_ERROR),
        (http_error(418), F.RATE_LIMIT_ERROR),
        (http_error(500), F.NETWORK_ERROR),
        (http_error(502), F.NETWORK_ERROR),
        (http_error(503), F.NETWORK_ERROR),
        (http_error(504), F.NETWORK_ERROR),
        (http_error(400), F.API_ERROR),
        (http_error(404), F.API_ERROR),
        (http_error(505), F.API_ERROR),
        (requests.HTTPError("no response attached"), F.API_ERROR),
        (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), F.API_ERROR),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_requests_errors(error, expected):
    assert classify(error) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, F.AUTHENTICATION_ERROR),
        (403, F.AUTHENTICATION_ERROR),
        (429, F.RATE_LIMIT_ERROR),
        (418, F.RATE_LIMIT_ERROR),
        (500, F.NETWORK_ERROR),
        (504, F.NETWORK_ERROR),
        (422, F.API_ERROR),
        (404, F.API_ERROR),
    ],
)
def test_alpaca_api_error_by_status(status, expected):
    assert classify(alpaca_error(status)) is expected


def test_alpaca_api_error_without_http_error_is_an_api_error():
    assert classify(APIError('{"code": 1, "message": "x"}')) is F.API_ERROR


def test_decode_and_validation_errors_are_api_errors():
    assert classify(json_error()) is F.API_ERROR
    assert classify(validation_error()) is F.API_ERROR


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError("t"),
        TimeoutError("t"),
        ConnectionError("c"),
        ConnectionRefusedError("r"),
        ConnectionResetError("r"),
        BrokenPipeError("p"),
        socket.gaierror(-2, "Name or service not known"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_builtin_network_errors(error):
    assert classify(error) is F.NETWORK_ERROR


def test_an_oserror_that_is_not_about_the_network_is_not_a_network_error():
    assert classify(OSError(errno.ENOSPC, "No space left on device")) is F.UNKNOWN_ERROR
    assert classify(FileNotFoundError("x")) is F.UNKNOWN_ERROR


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("balance", F.BALANCE_ERROR),
        ("positions", F.POSITION_ERROR),
        ("order", F.EXECUTION_ERROR),
        ("candles", F.UNKNOWN_ERROR),
        ("Balance", F.UNKNOWN_ERROR),  # exact names only
        (None, F.UNKNOWN_ERROR),
    ],
)
def test_unknown_exceptions_by_operation(operation, expected):
    assert classify(KeyError("field"), operation) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.BrokerConfigError("KRAKEN_API_SECRET is not valid base64"), F.AUTHENTICATION_ERROR),
        (errors.BrokerResponseError("missing field"), F.API_ERROR),
        (errors.OrderRejected("below minimum"), F.EXECUTION_ERROR),
        (errors.OrderRejected("INSUFFICIENT_FUND", insufficient_funds=True), F.BALANCE_ERROR),
        (errors.SimulatedTimeout("t"), F.NETWORK_ERROR),
        (errors.SimulatedNetworkError("n"), F.NETWORK_ERROR),
        (errors.SimulatedAuthError("a"), F.AUTHENTICATION_ERROR),
        (errors.SimulatedRateLimit("r", retry_after=3), F.RATE_LIMIT_ERROR),
        (errors.SimulatedApiError("e"), F.API_ERROR),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_project_exceptions(error, expected):
    assert classify(error, "order") is expected


def test_retry_after_from_a_response_header():
    assert retry_after_seconds(http_error(429, {"Retry-After": "7"})) == 7.0
    assert (
        retry_after_seconds(http_error(429, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}))
        is None
    )
    assert retry_after_seconds(http_error(429)) is None
    assert retry_after_seconds(errors.SimulatedRateLimit("r", retry_after=2.5)) == 2.5
    assert retry_after_seconds(ccxt.RateLimitExceeded("no response")) is None
    assert retry_after_seconds(alpaca_error(429)) is None


def test_retry_after_follows_the_chain_to_the_http_error():
    # What ccxt does: raise its own error while handling requests' HTTPError.
    try:
        try:
            raise http_error(429, {"Retry-After": "12"})
        except requests.HTTPError:
            raise ccxt.RateLimitExceeded("binance 429") from None
    except ccxt.RateLimitExceeded as exc:
        assert exc.__cause__ is None and exc.__suppress_context__
        assert retry_after_seconds(exc) == 12.0


@pytest.mark.parametrize(
    ("error", "definitive"),
    [
        (errors.OrderRejected("qty rounds to zero"), True),
        (ccxt.InsufficientFunds("no money"), True),
        (ccxt.InvalidOrder("bad size"), True),
        (ccxt.BadRequest("bad request"), True),
        (ccxt.AuthenticationError("bad key"), True),
        (http_error(422), True),
        (http_error(400), True),
        (alpaca_error(422), True),
        (http_error(408), False),
        (http_error(500), False),
        (http_error(504), False),
        (ccxt.RequestTimeout("t"), False),
        (ccxt.ExchangeNotAvailable("503"), False),
        (requests.ConnectionError("dropped"), False),
        (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), False),
        (errors.BrokerResponseError("garbled"), False),
        (RuntimeError("?"), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else type(v).__name__,
)
def test_which_order_failures_prove_the_venue_refused(error, definitive):
    assert is_definitive_refusal(error) is definitive
