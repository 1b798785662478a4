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

import pytest

from bot.brokers.base import Broker
from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerConfigError,
    BrokerError,
    InsufficientFunds,
    NetworkFailure,
    NetworkTimeout,
    RateLimited,
)
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

# broker → fault → (exact project exception type, FailureType). The same on balance and
# create_order. No SDK exception leaves an adapter: each is translated at the adapter's edge.
_COMMON = {
    "hang": (NetworkTimeout, NET),
    "401": (AuthRejected, AUTH),
    "403": (AuthRejected, AUTH),
    "418": (RateLimited, RATE),
    "429": (RateLimited, RATE),
    "500": (NetworkFailure, NET),
    "502": (NetworkFailure, NET),
    "503": (NetworkFailure, NET),
    "504": (NetworkFailure, NET),
    "venue_auth": (AuthRejected, AUTH),
    "venue_rate_limit": (RateLimited, RATE),
    "venue_insufficient_funds": (InsufficientFunds, FUNDS),
    "malformed_json": (BadResponse, API),
    "html_502": (NetworkFailure, NET),
    "drop": (NetworkFailure, NET),
}
TABLE: dict[str, dict[str, tuple[type[BaseException], FailureType]]] = {
    # ccxt's kraken maps 504 to ExchangeNotAvailable, not RequestTimeout: a NetworkFailure.
    # Kraken's "EAPI:Invalid key" / "EAPI:Rate limit exceeded" arrive inside HTTP 200.
    "KRAKEN": dict(_COMMON),
    "OKX": {
        **_COMMON,
        "504": (NetworkTimeout, NET),  # ccxt's RequestTimeout; 503 is OnMaintenance
    },
    "BINANCE": {
        **_COMMON,
        # Binance's 5xx body {"code": -1001} is ccxt's OperationFailed, which is not a
        # NetworkError: a BrokerError (API_ERROR), where the bare status would say NETWORK.
        "500": (BrokerError, API),
        "502": (BrokerError, API),
        "503": (BrokerError, API),
        "504": (NetworkTimeout, NET),  # -1007 "Timeout waiting for response"
    },
    # Coinbase refuses an order inside HTTP 200 (success: false); Alpaca with HTTP 403 +
    # 40310000 "insufficient buying power" (a bare 403 stays an AuthRejected).
    "COINBASE": dict(_COMMON),
    "ALPACA": dict(_COMMON),
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
    # The HTTP status travels with the project's exception wherever the venue sent one.
    if fault.isdigit() or fault == "html_502":
        assert exc.status == int(fault[-3:]), repr(exc)
    # Every adapter reads the 429's Retry-After at its edge: from the exception's response
    # (requests, alpaca-py) or from the HTTPError that ccxt raised from (its ``__context__``).
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
        assert isinstance(exc, NetworkTimeout), f"{name}: {exc!r}"
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
