"""Every classification rule of bot.isolation.failures: the project's exception types and builtins.

SDK exceptions never reach ``classify``: the adapters translate them at their edge, and
``tests/brokers/test_error_translation.py`` checks that table from the SDKs' real classes.
"""

from __future__ import annotations

import errno
import json
import socket
import sqlite3
import ssl
import subprocess
import sys

import pytest

from bot import errors
from bot.isolation.failures import FailureType, classify, is_definitive_refusal, retry_after_seconds
from bot.store.db import StoreError, guarded
from nija_testkit.diskfull import sqlite_full_error

F = FailureType

SDK_PACKAGES = ("ccxt", "requests", "alpaca", "pydantic", "coinbase", "urllib3")


def test_the_isolation_core_imports_no_sdk():
    """A fresh interpreter that imports the isolation core has loaded no broker SDK."""
    code = (
        "import sys\n"
        "import bot.isolation, bot.isolation.manager, bot.isolation.failures\n"
        "import bot.account_isolation_manager, bot.errors, bot.model, bot.clock\n"
        f"sdks = {SDK_PACKAGES!r}\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] in sdks))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_the_import_check_sees_an_sdk_when_one_is_imported():
    """The same check does report an SDK module (so an empty answer above means something)."""
    code = "import sys, bot.brokers.http_errors; print('requests' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"


def json_error() -> json.JSONDecodeError:
    try:
        json.loads("<html>")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("json accepted html")


PROJECT_ROWS = [
    (errors.BrokerConfigError("KRAKEN_API_SECRET is not valid base64"), F.AUTHENTICATION_ERROR),
    (errors.AuthRejected("401", status=401), F.AUTHENTICATION_ERROR),
    (errors.RateLimited("429", retry_after=3, status=429), F.RATE_LIMIT_ERROR),
    (errors.NetworkFailure("503", status=503), F.NETWORK_ERROR),
    (errors.NetworkTimeout("t"), F.NETWORK_ERROR),
    (errors.InsufficientFunds("INSUFFICIENT_FUND"), F.BALANCE_ERROR),
    (errors.OrderRejected("below minimum"), F.EXECUTION_ERROR),
    (errors.NotFound("no such order", status=404), F.EXECUTION_ERROR),
    (errors.VenueRefused("422", status=422), F.API_ERROR),
    (errors.BadResponse("missing field"), F.API_ERROR),
    # The type decides, never the status: Binance's 5xx body is a venue error, not an outage.
    (errors.BrokerError("OperationFailed: -1001", status=500), F.API_ERROR),
    (errors.SimulatedTimeout("t"), F.NETWORK_ERROR),
    (errors.SimulatedNetworkError("n"), F.NETWORK_ERROR),
    (errors.SimulatedAuthError("a"), F.AUTHENTICATION_ERROR),
    (errors.SimulatedRateLimit("r", retry_after=3), F.RATE_LIMIT_ERROR),
    (errors.SimulatedApiError("e"), F.API_ERROR),
]


@pytest.mark.parametrize(
    ("error", "expected"),
    PROJECT_ROWS,
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
@pytest.mark.parametrize("operation", [None, "balance", "positions", "order", "candles"])
def test_project_exceptions_by_type_whatever_the_operation(error, expected, operation):
    assert classify(error, operation) is expected


def test_message_words_never_decide():
    # The reference design read "capital" as an API error because it contains "api".
    assert classify(RuntimeError("insufficient capital")) is F.UNKNOWN_ERROR
    assert classify(errors.BrokerError("Invalid API key, timeout, rate limit")) is F.API_ERROR
    assert classify(ValueError("connection refused: network timeout")) is F.UNKNOWN_ERROR


def test_a_garbled_json_answer_is_an_api_error():
    assert classify(json_error()) is F.API_ERROR


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError("t"),
        ConnectionError("c"),
        ConnectionRefusedError("r"),
        ConnectionResetError("r"),
        BrokenPipeError("p"),
        socket.gaierror(-2, "Name or service not known"),
        ssl.SSLError("handshake"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_builtin_network_errors(error):
    assert classify(error) is F.NETWORK_ERROR


def test_an_oserror_that_is_not_about_the_network_is_not_a_network_error():
    assert classify(OSError(errno.ENOSPC, "No space left on device")) is F.STORE_ERROR
    assert classify(OSError(errno.EDQUOT, "Disk quota exceeded")) is F.STORE_ERROR
    assert classify(FileNotFoundError("x")) is F.UNKNOWN_ERROR


def store_error_from(cause: BaseException) -> StoreError:
    try:
        with guarded("record_cycle", "user/alice/KRAKEN"):
            raise cause
    except StoreError as exc:
        return exc
    raise AssertionError("guarded let the failure through")


def test_a_store_failure_is_a_store_error_whatever_its_cause():
    locked = sqlite3.OperationalError("database is locked")
    for cause in (sqlite_full_error(), locked, OSError(errno.EACCES, "Permission denied")):
        assert classify(store_error_from(cause)) is F.STORE_ERROR
        assert classify(store_error_from(cause), "order") is F.STORE_ERROR  # by type first


def test_a_full_disk_is_told_apart_by_its_code_never_its_words():
    assert errors.is_disk_full(store_error_from(sqlite_full_error()))
    assert errors.is_disk_full(store_error_from(OSError(errno.ENOSPC, "x")))
    assert errors.is_disk_full(OSError(errno.EDQUOT, "x"))
    assert not errors.is_disk_full(store_error_from(sqlite3.OperationalError("database is locked")))
    # The same words without SQLite's code, or another errno, prove nothing.
    assert not errors.is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not errors.is_disk_full(OSError(errno.EIO, "No space left on device"))
    assert not errors.is_disk_full(None)


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


def test_retry_after_is_what_the_rate_limit_carries():
    assert retry_after_seconds(errors.RateLimited("r", retry_after=7)) == 7.0
    assert retry_after_seconds(errors.RateLimited("r", retry_after=0)) == 0.0
    assert retry_after_seconds(errors.RateLimited("r")) is None
    assert retry_after_seconds(errors.RateLimited("r", retry_after=-1)) is None
    assert retry_after_seconds(errors.SimulatedRateLimit("r", retry_after=2.5)) == 2.5
    # Only a rate limit asks us to wait.
    assert retry_after_seconds(errors.NetworkFailure("503", status=503)) is None
    assert retry_after_seconds(TimeoutError("t")) is None


@pytest.mark.parametrize(
    ("error", "definitive"),
    [
        (errors.OrderRejected("qty rounds to zero"), True),
        (errors.InsufficientFunds("no money"), True),
        (errors.NotFound("no such order", status=404), True),
        (errors.VenueRefused("bad request", status=400), True),
        (errors.VenueRefused("unprocessable", status=422), True),
        (errors.AuthRejected("bad key", status=401), True),
        (errors.RateLimited("slow down", status=429), True),
        (errors.BrokerConfigError("secret is not base64"), True),
        (errors.BrokerError("408", status=408), False),
        (errors.BrokerError("an unknown venue error"), False),
        (errors.NetworkFailure("500", status=500), False),
        (errors.NetworkTimeout("t"), False),
        (errors.BadResponse("garbled"), False),
        (errors.SimulatedApiError("e"), False),
        (TimeoutError("t"), False),
        (ConnectionResetError("dropped"), False),
        (json_error(), False),
        (RuntimeError("?"), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else type(v).__name__,
)
def test_which_order_failures_prove_the_venue_refused(error, definitive):
    assert is_definitive_refusal(error) is definitive


def test_describe_names_the_project_type():
    assert errors.describe(errors.RateLimited("kraken: slow down", retry_after=3)) == (
        "RateLimited: kraken: slow down"
    )
    assert errors.describe(errors.BadResponse("x" * 400), limit=20) == "BadResponse: " + "x" * 7
