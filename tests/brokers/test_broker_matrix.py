"""The same failure checks on all five adapters, through the real SDKs over real HTTP on 127.0.0.1.

1. A table: every fault on every adapter lands on the right ``FailureType`` (and Retry-After).
2. A hung route gives control back within the call timeout plus one second.
3. Credential values never show in exception messages, reprs, chained exceptions or output.

The expected values are the ones the per-venue tests (``tests/brokers/test_broker_<venue>.py``)
established: they pin what each real SDK does with each fault.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import ccxt
import pytest
import requests
from alpaca.common.exceptions import APIError

from bot.brokers.base import Broker
from bot.errors import BrokerConfigError, BrokerResponseError, OrderRejected
from bot.isolation.failures import FailureType, classify, retry_after_seconds
from bot.model import Credentials
from nija_testkit.emulator.server import Fault
from nija_testkit.emulator.venues import BROKERS, VenueHandle
from nija_testkit.secrets import find_leaks, new_pem, texts_of

AUTH = FailureType.AUTHENTICATION_ERROR
RATE = FailureType.RATE_LIMIT_ERROR
NET = FailureType.NETWORK_ERROR
API = FailureType.API_ERROR
FUNDS = FailureType.BALANCE_ERROR

HANG_TIMEOUT = 0.3  # call timeout for the table's hang rows: small, the file stays fast


@pytest.fixture
def venues(venue_handle) -> dict[str, VenueHandle]:
    """Every broker's emulator, fresh (the run shares the servers: tests/conftest.py)."""
    return {name: venue_handle(name) for name in BROKERS}


@pytest.fixture
def venue(venue_handle, broker: str) -> VenueHandle:
    """The parametrized ``broker``'s emulator, fresh: new venue state, no faults, no records."""
    return venue_handle(broker)


def fetch_balance(venue: VenueHandle, adapter: Broker) -> object:
    return adapter.fetch_balance()


def fetch_candles(venue: VenueHandle, adapter: Broker) -> object:
    return adapter.fetch_candles(venue.kind.symbols[0], "5m", 10)


def place_order(venue: VenueHandle, adapter: Broker) -> object:
    return adapter.place_order(venue.order_request())


CALLS: dict[str, Callable[[VenueHandle, Broker], object]] = {
    "balance": fetch_balance,
    "candles": fetch_candles,
    "create_order": place_order,
}


# -- 1. the table ---------------------------------------------------------------------------

FAULTS = {
    "hang": Fault("hang", seconds=10),
    "401": Fault("status", status=401),
    "403": Fault("status", status=403),
    "418": Fault("status", status=418),
    "429": Fault("status", status=429, retry_after=7),
    "500": Fault("status", status=500),
    "502": Fault("status", status=502),
    "503": Fault("status", status=503),
    "504": Fault("status", status=504),
    "venue_auth": Fault("venue_error", code="auth"),
    "venue_rate_limit": Fault("venue_error", code="rate_limit"),
    "venue_insufficient_funds": Fault("venue_error", code="insufficient_funds"),
    "malformed_json": Fault("malformed_json"),
    "html_502": Fault("html", status=502),
    "drop": Fault("drop"),
}
ORDER_ONLY = {"venue_insufficient_funds"}  # a balance query is never refused for lack of funds

# broker → fault → (exact exception type, FailureType). The same on balance and create_order.
TABLE: dict[str, dict[str, tuple[type[BaseException], FailureType]]] = {
    "KRAKEN": {
        "hang": (ccxt.RequestTimeout, NET),
        "401": (ccxt.AuthenticationError, AUTH),
        "403": (ccxt.PermissionDenied, AUTH),
        "418": (ccxt.DDoSProtection, RATE),
        "429": (ccxt.DDoSProtection, RATE),
        "500": (ccxt.ExchangeNotAvailable, NET),
        "502": (ccxt.ExchangeNotAvailable, NET),
        "503": (ccxt.ExchangeNotAvailable, NET),
        # ccxt's kraken maps 504 to ExchangeNotAvailable, not RequestTimeout: still NETWORK.
        "504": (ccxt.ExchangeNotAvailable, NET),
        "venue_auth": (ccxt.AuthenticationError, AUTH),  # "EAPI:Invalid key" in HTTP 200
        "venue_rate_limit": (ccxt.DDoSProtection, RATE),  # "EAPI:Rate limit exceeded"
        "venue_insufficient_funds": (ccxt.InsufficientFunds, FUNDS),
        "malformed_json": (BrokerResponseError, API),
        "html_502": (ccxt.ExchangeNotAvailable, NET),
        "drop": (ccxt.NetworkError, NET),
    },
    "OKX": {
        "hang": (ccxt.RequestTimeout, NET),
        "401": (ccxt.AuthenticationError, AUTH),
        "403": (ccxt.PermissionDenied, AUTH),
        # OKX's 429 body carries code 50011: RateLimitExceeded (both for 418 and 429).
        "418": (ccxt.RateLimitExceeded, RATE),
        "429": (ccxt.RateLimitExceeded, RATE),
        "500": (ccxt.ExchangeNotAvailable, NET),
        "502": (ccxt.ExchangeNotAvailable, NET),
        "503": (ccxt.OnMaintenance, NET),  # OnMaintenance is an ExchangeNotAvailable
        "504": (ccxt.RequestTimeout, NET),
        "venue_auth": (ccxt.AuthenticationError, AUTH),
        "venue_rate_limit": (ccxt.RateLimitExceeded, RATE),
        "venue_insufficient_funds": (ccxt.InsufficientFunds, FUNDS),  # sCode 51008
        "malformed_json": (BrokerResponseError, API),
        "html_502": (ccxt.ExchangeNotAvailable, NET),
        "drop": (ccxt.NetworkError, NET),
    },
    "BINANCE": {
        "hang": (ccxt.RequestTimeout, NET),
        "401": (ccxt.AuthenticationError, AUTH),
        # Binance answers 403 with -2015; ccxt maps that code to AuthenticationError.
        "403": (ccxt.AuthenticationError, AUTH),
        "418": (ccxt.DDoSProtection, RATE),
        "429": (ccxt.DDoSProtection, RATE),
        # Binance's 5xx body {"code": -1001} is ccxt's OperationFailed, which is not a
        # NetworkError: API_ERROR, where the bare status would say NETWORK.
        "500": (ccxt.OperationFailed, API),
        "502": (ccxt.OperationFailed, API),
        "503": (ccxt.OperationFailed, API),
        "504": (ccxt.RequestTimeout, NET),  # -1007 "Timeout waiting for response"
        # -2015 before any private call succeeded (after one, ccxt reads it as an IP ban).
        "venue_auth": (ccxt.AuthenticationError, AUTH),
        "venue_rate_limit": (ccxt.DDoSProtection, RATE),
        "venue_insufficient_funds": (ccxt.InsufficientFunds, FUNDS),  # -2010
        "malformed_json": (BrokerResponseError, API),
        "html_502": (ccxt.ExchangeNotAvailable, NET),
        "drop": (ccxt.NetworkError, NET),
    },
    "COINBASE": {
        "hang": (requests.ReadTimeout, NET),
        "401": (requests.HTTPError, AUTH),
        "403": (requests.HTTPError, AUTH),
        "418": (requests.HTTPError, RATE),
        "429": (requests.HTTPError, RATE),
        "500": (requests.HTTPError, NET),
        "502": (requests.HTTPError, NET),
        "503": (requests.HTTPError, NET),
        "504": (requests.HTTPError, NET),
        "venue_auth": (requests.HTTPError, AUTH),
        "venue_rate_limit": (requests.HTTPError, RATE),
        # Coinbase refuses an order inside HTTP 200 (success: false): the adapter's OrderRejected.
        "venue_insufficient_funds": (OrderRejected, FUNDS),
        "malformed_json": (requests.JSONDecodeError, API),
        "html_502": (requests.HTTPError, NET),
        "drop": (requests.ConnectionError, NET),
    },
    "ALPACA": {
        "hang": (requests.ReadTimeout, NET),
        "401": (APIError, AUTH),
        "403": (APIError, AUTH),
        "418": (APIError, RATE),
        "429": (APIError, RATE),
        "500": (APIError, NET),
        "502": (APIError, NET),
        "503": (APIError, NET),
        "504": (APIError, NET),
        "venue_auth": (APIError, AUTH),
        "venue_rate_limit": (APIError, RATE),
        # Alpaca says 403 + 40310000 "insufficient buying power": the adapter's OrderRejected
        # (a bare 403 stays an APIError, AUTHENTICATION).
        "venue_insufficient_funds": (OrderRejected, FUNDS),
        "malformed_json": (requests.JSONDecodeError, API),
        "html_502": (APIError, NET),
        "drop": (requests.ConnectionError, NET),
    },
}

ROWS = [
    (broker, route, fault)
    for broker in BROKERS
    for route in ("balance", "create_order")
    for fault in FAULTS
    if route == "create_order" or fault not in ORDER_ONLY
]


def test_the_table_covers_every_fault_on_every_adapter():
    assert set(TABLE) == set(BROKERS)
    for broker, row in TABLE.items():
        assert set(row) == set(FAULTS), broker


@pytest.mark.parametrize(("broker", "route", "fault"), ROWS, ids=["-".join(r) for r in ROWS])
def test_fault_lands_on_its_failure_type(venue, broker, route, fault):
    exc_type, failure = TABLE[broker][fault]
    timeout = HANG_TIMEOUT if fault == "hang" else venue.timeout_seconds
    adapter = venue.make_broker(timeout_seconds=timeout)
    venue.server.inject(route, dataclasses.replace(FAULTS[fault]))
    started = time.monotonic()
    with pytest.raises(exc_type) as info:
        CALLS[route](venue, adapter)
    elapsed = time.monotonic() - started
    exc = info.value
    assert type(exc) is exc_type, repr(exc)
    assert classify(exc) is failure
    # Every SDK exposes the 429's Retry-After: on the exception's response (requests,
    # alpaca-py) or on the HTTPError that ccxt raised from (its ``__context__``).
    assert retry_after_seconds(exc) == (7.0 if fault == "429" else None)
    # The faulty route was asked once: no SDK-internal retries (an order is never re-sent).
    assert len(venue.server.requests_to(route)) == 1
    assert elapsed < timeout + 1.0


# -- 2. hung routes -------------------------------------------------------------------------


def _timed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    """How long ``call`` took and what it raised (None when it returned)."""
    started = time.monotonic()
    try:
        call()
    except Exception as exc:  # returned to the test, which asserts on it
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


@pytest.mark.parametrize("route", ["balance", "candles", "create_order"])
def test_a_hung_route_returns_within_the_timeout_plus_one_second(venues, route):
    """Every adapter at once (each against its own server), so the test takes ~1 s, not ~5."""
    adapters = {}
    for name, handle in venues.items():
        handle.reset()
        handle.server.inject(route, Fault("hang", seconds=10))
        adapters[name] = handle.make_broker(timeout_seconds=1.0)
    with ThreadPoolExecutor(max_workers=len(adapters)) as pool:
        futures = {
            name: pool.submit(_timed, lambda n=name, a=adapter: CALLS[route](venues[n], a))
            for name, adapter in adapters.items()
        }
        results = {name: future.result(timeout=5.0) for name, future in futures.items()}
    for name, (elapsed, exc) in results.items():
        assert exc is not None, f"{name}: a hung {route} returned a result"
        assert elapsed < 2.0, f"{name}: {route} took {elapsed:.2f} s"
        assert classify(exc) is NET, f"{name}: {exc!r}"
        assert isinstance(exc, ccxt.RequestTimeout | requests.Timeout), f"{name}: {exc!r}"
        assert len(venues[name].server.requests_to(route)) == 1, name
    for handle in venues.values():
        handle.server.clear_faults()
        handle.close_brokers()


# -- 3. secrets -----------------------------------------------------------------------------

# A second, wrong secret per venue (Kraken's must still be base64, Coinbase's a real PEM).
WRONG_SECRETS: dict[str, Callable[[], str]] = {
    "KRAKEN": lambda: "FAKEKRAKENSECRETWRONGKRAKENSECRT",
    "OKX": lambda: "FAKE-OKX-SECRET-WRONG-000000",
    "BINANCE": lambda: "FAKE-BINANCE-SECRET-WRONG-000",
    "COINBASE": new_pem,
    "ALPACA": lambda: "FAKE-ALPACA-SECRET-WRONG-0000",
}
# A secret in a shape the venue's scheme cannot use at all.
MALFORMED_SECRETS = {
    "KRAKEN": "FAKE-KRAKEN-SECRET-not-base64!",
    "COINBASE": "FAKE-COINBASE-SECRET-not-a-pem",
}


def _spoiled(value: str, junk: str) -> str:
    """``value`` with ``junk`` pasted in near its end (a copy-paste accident)."""
    cut = len(value) - 6
    return value[:cut] + junk + value[cut:]


def _credentials(venue: VenueHandle, case: str) -> Credentials:
    creds = venue.credentials
    if case == "wrong_secret":
        return dataclasses.replace(creds, api_secret=WRONG_SECRETS[venue.broker]())
    if case == "malformed_secret":
        return dataclasses.replace(creds, api_secret=MALFORMED_SECRETS[venue.broker])
    if case == "secret_with_line_break":
        return dataclasses.replace(creds, api_secret=_spoiled(creds.api_secret, "\n"))
    if case == "secret_with_zero_width_space":
        return dataclasses.replace(creds, api_secret=_spoiled(creds.api_secret, "\u200b"))
    if case == "key_with_line_break":
        return dataclasses.replace(creds, api_key=_spoiled(creds.api_key, "\n"))
    return creds


# Failures raised by a fault on the balance route (the credentials are the good ones).
FAULT_CASES = {
    "http_401": Fault("status", status=401),
    "http_500": Fault("status", status=500),
    "malformed_json": Fault("malformed_json"),
    "dropped_connection": Fault("drop"),
}
CREDENTIAL_CASES = (
    "wrong_secret",
    "secret_with_line_break",
    "secret_with_zero_width_space",
    "key_with_line_break",
)
SECRET_ROWS = [
    (broker, case)
    for broker in BROKERS
    for case in (*FAULT_CASES, *CREDENTIAL_CASES, "malformed_secret")
    if case != "malformed_secret" or broker in MALFORMED_SECRETS
]


def _texts(exc: BaseException | None, adapter: Broker | None, caplog, capsys) -> dict[str, str]:
    """Everything a failed call left behind that a user could read, by where it was found."""
    texts = {"repr(broker)": repr(adapter), **(texts_of(exc) if exc is not None else {})}
    formatter = logging.Formatter()
    for record in caplog.records:
        shown = record.getMessage()
        if record.exc_info:
            shown += "\n" + formatter.formatException(record.exc_info)
        texts[f"log {record.name} {record.levelname}"] = shown
    out, err = capsys.readouterr()
    texts["stdout"], texts["stderr"] = out, err
    return texts


# Cases whose call must fail; a spoiled credential may still work (Kraken's base64 decoder
# skips a line break), and then only the logs and the adapter's repr are checked.
MUST_FAIL = {*FAULT_CASES, "wrong_secret", "malformed_secret"}


@pytest.mark.parametrize(("broker", "case"), SECRET_ROWS, ids=["-".join(r) for r in SECRET_ROWS])
def test_credentials_never_show_in_errors_reprs_or_logs(venue, broker, case, caplog, capsys):
    # The Coinbase SDK prints its log records through its own stderr handler; they also
    # reach the root logger (propagate), so caplog sees every line that handler writes.
    assert logging.getLogger("coinbase.RESTClient").propagate
    caplog.set_level(logging.DEBUG)
    creds = _credentials(venue, case)
    if case in FAULT_CASES:
        venue.server.inject("balance", dataclasses.replace(FAULT_CASES[case]))
    built: list[Broker] = []

    def attempt() -> None:
        built.append(venue.make_broker(credentials=creds))
        built[0].fetch_balance()

    _, exc = _timed(attempt)
    if case in MUST_FAIL:
        assert exc is not None, f"{case}: the call succeeded"
    if broker == "COINBASE" and case in ("http_401", "http_500"):
        # The SDK logs every HTTP error: proof that its output is being looked at.
        assert any(r.name == "coinbase.RESTClient" for r in caplog.records)
    texts = _texts(exc, built[0] if built else None, caplog, capsys)
    leaks = find_leaks(texts, [*creds.secrets(), *venue.credentials.secrets()])
    assert not leaks, f"{exc!r:.80} shows credentials: {leaks}"


def test_malformed_secrets_are_config_errors(venues):
    """Where a venue's secret has a format, breaking it is a BrokerConfigError (AUTHENTICATION)."""
    for name, secret in MALFORMED_SECRETS.items():
        handle = venues[name]
        handle.reset()
        adapter = handle.make_broker(
            credentials=dataclasses.replace(handle.credentials, api_secret=secret)
        )
        with pytest.raises(BrokerConfigError) as info:
            adapter.fetch_balance()
        assert classify(info.value) is AUTH
        assert handle.server.requests_to("balance") == [], name
        handle.close_brokers()
