"""Every SDK exception becomes a project type at the adapter's edge, and classifies as it always has.

Each row builds a real exception of an installed SDK (ccxt, requests, alpaca-py, pydantic),
passes it through the translation function the adapter's choke point uses, and classifies
the result. The expected FailureTypes are the ones the isolation core gave the raw SDK
exceptions before the translation moved to the edge.
"""

from __future__ import annotations

import inspect
import json

import ccxt
import pydantic
import pytest
import requests
import urllib3.exceptions
from alpaca.common.exceptions import APIError

from bot import errors
from bot.brokers.alpaca_stocks import errors as alpaca_errors
from bot.brokers.ccxt import errors as ccxt_errors
from bot.brokers.http_errors import from_requests
from bot.isolation.failures import FailureType, classify, is_definitive_refusal, retry_after_seconds

F = FailureType


def http_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return requests.HTTPError(f"{status} error", response=response)


def alpaca_error(
    status: int, headers: dict[str, str] | None = None, code: int | None = None
) -> APIError:
    body = {"code": code if code is not None else status * 100000, "message": "x"}
    return APIError(json.dumps(body), http_error(status, headers))


def validation_error() -> pydantic.ValidationError:
    class Model(pydantic.BaseModel):
        qty: float

    try:
        Model(qty="not a number")
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("pydantic accepted a bad value")


def ccxt_raised_from(http: requests.HTTPError, cls: type[ccxt.BaseError]) -> ccxt.BaseError:
    """What ccxt does: raise its own error while handling requests' HTTPError."""
    try:
        try:
            raise http
        except requests.HTTPError:
            raise cls("binance 429") from None
    except ccxt.BaseError as exc:
        return exc
    raise AssertionError("unreachable")


def via_ccxt(error: ccxt.BaseError) -> errors.BrokerError:
    return ccxt_errors.translate(error)


def via_coinbase(error: Exception) -> errors.BrokerError:
    """Coinbase's ``_call`` (and ccxt's ``CcxtClient.call``, for a requests error ccxt did not wrap)."""
    return from_requests(error, "COINBASE")


def via_alpaca(error: Exception) -> errors.BrokerError:
    return alpaca_errors.translate(error, "account")


# -- ccxt ------------------------------------------------------------------------------------

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
    assert classify(via_ccxt(cls("kraken {}"))) is expected


def test_ccxt_errors_become_the_matching_project_types():
    assert type(via_ccxt(ccxt.RequestTimeout("t"))) is errors.NetworkTimeout
    assert type(via_ccxt(ccxt.ExchangeNotAvailable("503"))) is errors.NetworkFailure
    assert type(via_ccxt(ccxt.OrderNotFound("gone"))) is errors.NotFound
    assert type(via_ccxt(ccxt.InvalidOrder("size"))) is errors.OrderRejected
    assert type(via_ccxt(ccxt.InsufficientFunds("funds"))) is errors.InsufficientFunds
    assert type(via_ccxt(ccxt.BadSymbol("XYZ"))) is errors.VenueRefused
    assert type(via_ccxt(ccxt.NullResponse("null"))) is errors.BadResponse
    assert type(via_ccxt(ccxt.OperationFailed("-1001"))) is errors.BrokerError


def _ccxt_classes() -> list[type[ccxt.BaseError]]:
    return [
        cls
        for _, cls in inspect.getmembers(ccxt, inspect.isclass)
        if issubclass(cls, ccxt.BaseError)
    ]


@pytest.mark.parametrize("cls", _ccxt_classes(), ids=lambda c: c.__name__)
def test_every_ccxt_error_becomes_a_broker_error_with_the_sdk_message(cls):
    translated = via_ccxt(cls('kraken {"error": ["EGeneral:x"]}'))
    assert isinstance(translated, errors.BrokerError)
    assert str(translated) == f'{cls.__name__}: kraken {{"error": ["EGeneral:x"]}}'


def test_ccxt_status_and_retry_after_come_from_the_chained_http_error():
    exc = ccxt_raised_from(http_error(429, {"Retry-After": "12"}), ccxt.RateLimitExceeded)
    assert exc.__cause__ is None and exc.__suppress_context__  # only the context holds it
    translated = via_ccxt(exc)
    assert type(translated) is errors.RateLimited
    assert (translated.status, translated.retry_after) == (429, 12.0)
    assert retry_after_seconds(translated) == 12.0
    outage = via_ccxt(ccxt_raised_from(http_error(503), ccxt.ExchangeNotAvailable))
    assert (type(outage), outage.status) == (errors.NetworkFailure, 503)
    # A refusal inside HTTP 200 (no HTTP error behind it): no status, no Retry-After.
    bare = via_ccxt(ccxt.RateLimitExceeded("no response"))
    assert (bare.status, retry_after_seconds(bare)) == (None, None)


# -- requests (Coinbase; Alpaca's transport) ---------------------------------------------------

REQUESTS_ROWS = [
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
]


@pytest.mark.parametrize("translate", [via_coinbase, via_alpaca], ids=["coinbase", "alpaca"])
@pytest.mark.parametrize(
    ("error", "expected"), REQUESTS_ROWS, ids=lambda v: v if isinstance(v, str) else None
)
def test_requests_errors(translate, error, expected):
    translated = translate(error)
    assert isinstance(translated, errors.BrokerError)
    assert classify(translated) is expected


def test_requests_errors_become_the_matching_project_types():
    assert type(via_coinbase(requests.ReadTimeout("t"))) is errors.NetworkTimeout
    assert type(via_coinbase(requests.ConnectionError("c"))) is errors.NetworkFailure
    json_error = requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0)
    assert type(via_coinbase(json_error)) is errors.BadResponse
    refused = via_coinbase(http_error(422))
    assert (type(refused), refused.status) == (errors.VenueRefused, 422)
    assert via_coinbase(http_error(401)).status == 401


@pytest.mark.parametrize("translate", [via_coinbase, via_alpaca], ids=["coinbase", "alpaca"])
def test_a_urllib3_error_that_slipped_past_requests_is_a_network_failure(translate):
    assert type(translate(urllib3.exceptions.ProtocolError("reset"))) is errors.NetworkFailure
    timed_out = urllib3.exceptions.ReadTimeoutError(None, "/", "t")
    assert type(translate(timed_out)) is errors.NetworkTimeout


@pytest.mark.parametrize("operation", [None, "balance", "positions", "order", "candles"])
def test_known_types_ignore_the_operation(operation):
    assert classify(via_ccxt(ccxt.RequestTimeout("t")), operation) is F.NETWORK_ERROR
    assert classify(via_coinbase(http_error(401)), operation) is F.AUTHENTICATION_ERROR


def test_message_words_never_decide():
    assert classify(via_ccxt(ccxt.ExchangeError("Invalid API key, timeout, rate limit"))) is (
        F.API_ERROR
    )


# -- alpaca-py -----------------------------------------------------------------------------------


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
    translated = via_alpaca(alpaca_error(status))
    assert translated.status == status
    assert classify(translated) is expected


def test_alpaca_api_error_without_http_error_is_an_api_error():
    translated = via_alpaca(APIError('{"code": 1, "message": "x"}'))
    assert (type(translated), translated.status) == (errors.BrokerError, None)
    assert classify(translated) is F.API_ERROR


def test_alpaca_own_codes():
    """Alpaca's "not found" and "insufficient buying power" codes have their own types."""
    missing = via_alpaca(alpaca_error(404, code=alpaca_errors.NOT_FOUND_CODE))
    assert type(missing) is errors.NotFound
    proxy_page = via_alpaca(APIError("<html>Not Found</html>", http_error(404)))
    assert type(proxy_page) is errors.VenueRefused
    body = {"code": alpaca_errors.FORBIDDEN_CODE, "message": "insufficient buying power"}
    poor = via_alpaca(APIError(json.dumps(body), http_error(403)))
    assert type(poor) is errors.InsufficientFunds and classify(poor) is F.BALANCE_ERROR
    assert poor.reason == "Alpaca: insufficient buying power"
    body = {"code": alpaca_errors.FORBIDDEN_CODE, "message": "forbidden"}
    assert type(via_alpaca(APIError(json.dumps(body), http_error(403)))) is errors.AuthRejected


def test_decode_and_validation_errors_are_api_errors():
    try:
        json.loads("<html>")
    except json.JSONDecodeError as exc:
        assert type(via_coinbase(exc)) is errors.BadResponse
        assert classify(via_coinbase(exc)) is F.API_ERROR
    translated = via_alpaca(validation_error())
    assert type(translated) is errors.BadResponse
    assert classify(translated) is F.API_ERROR


def test_alpaca_translated_chains_the_sdk_error_and_lets_project_errors_through():
    sdk_error = alpaca_error(503)
    with pytest.raises(errors.NetworkFailure) as info, alpaca_errors.translated("account"):
        raise sdk_error
    assert info.value.__cause__ is sdk_error
    assert str(info.value).startswith("Alpaca account: HTTP 503")
    with pytest.raises(errors.BadResponse) as info, alpaca_errors.translated("bars"):
        raise TypeError("'NoneType' object is not subscriptable")
    assert isinstance(info.value.__cause__, TypeError)
    already = errors.OrderRejected("rounds to zero")
    with pytest.raises(errors.OrderRejected) as info, alpaca_errors.translated("order"):
        raise already
    assert info.value is already


# -- Retry-After ---------------------------------------------------------------------------------


def test_retry_after_from_a_response_header():
    assert retry_after_seconds(via_coinbase(http_error(429, {"Retry-After": "7"}))) == 7.0
    http_date = {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}
    assert retry_after_seconds(via_coinbase(http_error(429, http_date))) is None
    assert retry_after_seconds(via_coinbase(http_error(429, {"Retry-After": "-3"}))) is None
    assert retry_after_seconds(via_coinbase(http_error(429))) is None
    assert retry_after_seconds(via_ccxt(ccxt.RateLimitExceeded("no response"))) is None
    assert retry_after_seconds(via_alpaca(alpaca_error(429))) is None
    assert retry_after_seconds(via_alpaca(alpaca_error(429, {"Retry-After": "5"}))) == 5.0


# -- definitive refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "translate", "definitive"),
    [
        (ccxt.InsufficientFunds("no money"), via_ccxt, True),
        (ccxt.InvalidOrder("bad size"), via_ccxt, True),
        (ccxt.BadRequest("bad request"), via_ccxt, True),
        (ccxt.AuthenticationError("bad key"), via_ccxt, True),
        (http_error(422), via_coinbase, True),
        (http_error(400), via_coinbase, True),
        (alpaca_error(422), via_alpaca, True),
        (http_error(408), via_coinbase, False),
        (http_error(500), via_coinbase, False),
        (http_error(504), via_coinbase, False),
        (ccxt.RequestTimeout("t"), via_ccxt, False),
        (ccxt.ExchangeNotAvailable("503"), via_ccxt, False),
        # ccxt's generic error stays ambiguous even when an HTTP 400 is behind it.
        (ccxt_raised_from(http_error(400), ccxt.ExchangeError), via_ccxt, False),
        (requests.ConnectionError("dropped"), via_coinbase, False),
        (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), via_coinbase, False),
    ],
    ids=lambda v: v if isinstance(v, bool) else getattr(v, "__name__", type(v).__name__),
)
def test_which_order_failures_prove_the_venue_refused(error, translate, definitive):
    assert is_definitive_refusal(translate(error)) is definitive
