"""Settings and accounts from the environment (bot.config.settings, bot.config.accounts)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from types import MappingProxyType

import pytest
from pydantic import ValidationError

from bot.brokers.venues import env_venues, venue
from bot.config.kinds import Mode
from bot.config.secrets import secret_values
from bot.config.settings import (
    AccountsResult,
    Settings,
    cycle_seconds_for,
    load_accounts,
    load_settings,
    settings_variables,
)
from bot.errors import ConfigError
from bot.redact import Redactor
from bot.store.db import db_path
from nija_testkit.secrets import assert_no_secret, env_secrets
from tests.config.env_example import ENV_EXAMPLE, uncommented_env_example

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = Settings()
# The venues whose accounts come from the environment, in listing order.
BROKERS = tuple(v.name for v in env_venues())

PEM_ONE_LINE = (
    "-----BEGIN EC PRIVATE KEY-----\\nFAKE-COINBASE-PEM-BODY-0001\\n-----END EC PRIVATE KEY-----\\n"
)
PLATFORM_ENV = {
    "COINBASE_API_KEY": "FAKE-COINBASE-KEY-0001",
    "COINBASE_API_SECRET": PEM_ONE_LINE,
    "KRAKEN_API_KEY": "FAKE-KRAKEN-KEY-0001",
    "KRAKEN_API_SECRET": "FAKE-KRAKEN-SECRET-0001",
    "OKX_API_KEY": "FAKE-OKX-KEY-0001",
    "OKX_API_SECRET": "FAKE-OKX-SECRET-0001",
    "OKX_PASSPHRASE": "FAKE-OKX-PASSPHRASE-0001",
    "BINANCE_API_KEY": "FAKE-BINANCE-KEY-0001",
    "BINANCE_API_SECRET": "FAKE-BINANCE-SECRET-0001",
    "ALPACA_API_KEY": "FAKE-ALPACA-KEY-0001",
    "ALPACA_API_SECRET": "FAKE-ALPACA-SECRET-0001",
}


def accounts(env: dict[str, str], settings: Settings = DEFAULTS) -> AccountsResult:
    # A read-only mapping proves the loader only reads what it is given.
    return load_accounts(MappingProxyType(env), settings)


def keys(result: AccountsResult) -> list[str]:
    return [spec.account.key for spec in result.specs]


def error_for(result: AccountsResult, key: str) -> str:
    matching = [str(e) for e in result.errors if e.account == key]
    assert len(matching) == 1, result.errors
    return matching[0]


# ---------------------------------------------------------------- settings


def test_defaults_are_the_documented_ones():
    settings = load_settings({})
    assert settings == DEFAULTS
    assert (settings.mode, settings.live) == ("paper", False)
    assert settings.min_balance_usd == 10.0
    assert settings.call_timeout_seconds == 15
    assert settings.cycle_seconds == 150
    assert settings.funded_recheck_seconds == 300
    assert settings.status_log_seconds == 1500
    assert (
        settings.cb_failure_threshold,
        settings.cb_success_threshold,
        settings.cb_timeout_seconds,
        settings.cb_half_open_max_calls,
    ) == (5, 3, 300, 1)
    assert (settings.data_dir, settings.log_file) == ("data", "nija.log")
    assert settings.multi_broker_independent is True
    assert settings.paper_balance_usd == 10000
    assert (settings.timeframe, settings.strategy) == ("5m", "default")
    assert settings.max_total_positions is None
    assert settings.primary_broker is None
    assert settings.broker_cycle_seconds == ()


def test_every_setting_can_be_overridden():
    env = {
        "NIJA_MODE": "LIVE",
        "NIJA_MIN_BALANCE_USD": "25.5",
        "NIJA_CALL_TIMEOUT_SECONDS": "7",
        "NIJA_CYCLE_SECONDS": "60",
        "KRAKEN_CYCLE_SECONDS": "90",
        "ALPACA_CYCLE_SECONDS": "300",
        "NIJA_FUNDED_RECHECK_SECONDS": "120",
        "NIJA_STATUS_LOG_SECONDS": "600",
        "NIJA_CB_FAILURE_THRESHOLD": "8",
        "NIJA_CB_SUCCESS_THRESHOLD": "2",
        "NIJA_CB_TIMEOUT_SECONDS": "45.5",
        "NIJA_CB_HALF_OPEN_MAX_CALLS": "3",
        "NIJA_DATA_DIR": "/var/lib/nija",
        "NIJA_LOG_FILE": "/var/log/nija.log",
        "MULTI_BROKER_INDEPENDENT": "no",
        "NIJA_PAPER_BALANCE_USD": "2500",
        "NIJA_TIMEFRAME": "1h",
        "NIJA_STRATEGY": "Momentum",
        "NIJA_MAX_TOTAL_POSITIONS": "4",
        "NIJA_PRIMARY_BROKER": "kraken",
        "NIJA_REQUEST_BUDGETS": "false",
        "NIJA_VENUE_FAILURE_WINDOW_SECONDS": "90",
        "NIJA_VENUE_PROBE_SECONDS": "10",
        "NIJA_VENUE_RESUME_SECONDS": "0",
        "NIJA_VENUE_STATUS_SECONDS": "120",
        "NIJA_HTTP_ENABLED": "false",
        "NIJA_HTTP_HOST": "0.0.0.0",
        "NIJA_HTTP_PORT": "0",
        "NIJA_HTTP_TOKEN": "a-token-of-20-chars!",
        "NIJA_HEARTBEAT_URL": "https://hc-ping.example/abc/",
        "NIJA_HEARTBEAT_SECONDS": "30",
        "NIJA_ALERT_WEBHOOK_URL": "https://hooks.example/services/T0/B0/x?src=nija",
        "NIJA_TELEGRAM_BOT_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "NIJA_TELEGRAM_CHAT_ID": "-1001234567890",
        "NIJA_TELEGRAM_API_URL": "http://127.0.0.1:8081/",
        "NIJA_ALERT_DEDUPE_SECONDS": "60",
        "NIJA_ALERT_MAX_PER_MINUTE": "5",
        "NIJA_OVERRIDES_FILE": "/etc/nija/overrides.toml",
        "NIJA_DATABASE_URL": "postgresql://nija:pw@db.example:5432/nija",
        "NIJA_NODE_ID": "node-1.eu:a@b_c",
        "NIJA_MAX_ACCOUNTS_PER_NODE": "20",
        "NIJA_LEASE_TTL_SECONDS": "12.5",
        "NIJA_LEASE_LOCK_DELAY_SECONDS": "0",
        "NIJA_DATABASE_POOL_SIZE": "16",
    }
    settings = load_settings(env)
    assert settings == Settings(
        mode="live",
        min_balance_usd=25.5,
        call_timeout_seconds=7,
        cycle_seconds=60,
        broker_cycle_seconds=(("KRAKEN", 90.0), ("ALPACA", 300.0)),
        funded_recheck_seconds=120,
        status_log_seconds=600,
        cb_failure_threshold=8,
        cb_success_threshold=2,
        cb_timeout_seconds=45.5,
        cb_half_open_max_calls=3,
        data_dir="/var/lib/nija",
        log_file="/var/log/nija.log",
        multi_broker_independent=False,
        paper_balance_usd=2500,
        timeframe="1h",
        strategy="momentum",
        max_total_positions=4,
        primary_broker="KRAKEN",
        request_budgets=False,
        venue_failure_window_seconds=90,
        venue_probe_seconds=10,
        venue_resume_seconds=0,
        venue_status_seconds=120,
        http_enabled=False,
        http_host="0.0.0.0",
        http_port=0,
        http_token="a-token-of-20-chars!",
        heartbeat_url="https://hc-ping.example/abc",
        heartbeat_seconds=30,
        alert_webhook_url="https://hooks.example/services/T0/B0/x?src=nija",
        telegram_bot_token="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        telegram_chat_id="-1001234567890",
        telegram_api_url="http://127.0.0.1:8081",
        alert_dedupe_seconds=60,
        alert_max_per_minute=5,
        overrides_file="/etc/nija/overrides.toml",
        database_url="postgresql://nija:pw@db.example:5432/nija",
        node_id="node-1.eu:a@b_c",
        max_accounts_per_node=20,
        lease_ttl_seconds=12.5,
        lease_lock_delay_seconds=0,
        database_pool_size=16,
    )
    assert settings.live is True
    # Every field of Settings is reachable from some variable.
    for name in Settings.model_fields:
        assert getattr(settings, name) != getattr(DEFAULTS, name), name


def test_blank_values_keep_the_defaults():
    env = {name: "" for name in settings_variables()} | {"NIJA_CYCLE_SECONDS": "   "}
    assert load_settings(env) == DEFAULTS


def test_cycle_seconds_per_broker_falls_back_to_the_default():
    settings = load_settings({"NIJA_CYCLE_SECONDS": "100", "OKX_CYCLE_SECONDS": "30"})
    assert cycle_seconds_for(settings, "OKX") == 30
    assert cycle_seconds_for(settings, "okx") == 30
    assert cycle_seconds_for(settings, "KRAKEN") == 100
    assert cycle_seconds_for(settings, "PAPER") == 100
    assert cycle_seconds_for(DEFAULTS, "COINBASE") == 150


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        *[("true", True), ("TRUE", True), ("1", True), ("Yes", True)],
        *[("false", False), ("False", False), ("0", False), ("NO", False), (" no ", False)],
    ],
)
def test_boolean_words(word, expected):
    settings = load_settings({"MULTI_BROKER_INDEPENDENT": word})
    assert settings.multi_broker_independent is expected


@pytest.mark.parametrize(
    ("name", "bad", "expected"),
    [
        ("NIJA_MODE", "real", "paper or live"),
        ("NIJA_MIN_BALANCE_USD", "-1", "non-negative number"),
        ("NIJA_MIN_BALANCE_USD", "ten", "non-negative number"),
        ("NIJA_CALL_TIMEOUT_SECONDS", "0", "positive number"),
        ("NIJA_CYCLE_SECONDS", "abc", "positive number"),
        ("NIJA_CYCLE_SECONDS", "nan", "positive number"),
        ("NIJA_CYCLE_SECONDS", "inf", "positive number"),
        ("KRAKEN_CYCLE_SECONDS", "-5", "positive number"),
        ("NIJA_FUNDED_RECHECK_SECONDS", "soon", "positive number"),
        ("NIJA_STATUS_LOG_SECONDS", "0", "positive number"),
        ("NIJA_CB_FAILURE_THRESHOLD", "2.5", "whole number"),
        ("NIJA_CB_SUCCESS_THRESHOLD", "0", "whole number"),
        ("NIJA_CB_TIMEOUT_SECONDS", "-300", "positive number"),
        ("NIJA_CB_HALF_OPEN_MAX_CALLS", "many", "whole number"),
        ("MULTI_BROKER_INDEPENDENT", "maybe", "true/false"),
        ("NIJA_PAPER_BALANCE_USD", "0", "positive number"),
        ("NIJA_TIMEFRAME", "5x", "timeframe"),
        ("NIJA_TIMEFRAME", "0m", "timeframe"),
        ("NIJA_STRATEGY", "rm -rf", "strategy name"),
        ("NIJA_MAX_TOTAL_POSITIONS", "-2", "whole number"),
        ("NIJA_PRIMARY_BROKER", "ftx", "one of"),
        ("NIJA_NODE_ID", "node one", "letters, digits"),
        ("NIJA_NODE_ID", "-node", "letters, digits"),
        ("NIJA_MAX_ACCOUNTS_PER_NODE", "0", "whole number"),
        ("NIJA_LEASE_TTL_SECONDS", "0.5", "at least 1"),
        ("NIJA_LEASE_TTL_SECONDS", "forever", "at least 1"),
        ("NIJA_LEASE_LOCK_DELAY_SECONDS", "-1", "non-negative number"),
        ("NIJA_DATABASE_POOL_SIZE", "0", "whole number"),
        ("NIJA_DATABASE_POOL_SIZE", "ten", "whole number"),
    ],
)
def test_each_bad_setting_is_named_with_what_is_wrong(name, bad, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings({name: bad})
    message = str(caught.value)
    assert name in message
    assert expected in message
    assert repr(bad) in message  # settings are not secret: echo what was given


def test_all_bad_settings_are_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings({"NIJA_MODE": "x", "NIJA_CYCLE_SECONDS": "y", "BINANCE_CYCLE_SECONDS": "z"})
    message = str(caught.value)
    for name in ("NIJA_MODE", "NIJA_CYCLE_SECONDS", "BINANCE_CYCLE_SECONDS"):
        assert name in message


def test_long_values_are_shortened_in_messages():
    with pytest.raises(ConfigError) as caught:
        load_settings({"NIJA_MODE": "x" * 500})
    assert "x" * 41 not in str(caught.value)


def test_settings_are_frozen_and_hashable():
    settings = load_settings({"KRAKEN_CYCLE_SECONDS": "5"})
    with pytest.raises(ValidationError, match="frozen"):
        settings.mode = "live"  # type: ignore[misc]
    assert hash(settings) == hash(load_settings({"KRAKEN_CYCLE_SECONDS": "5"}))


def test_mode_is_an_enum_shown_as_its_old_string(tmp_path):
    settings = load_settings({"NIJA_MODE": " Live "})
    assert settings.mode is Mode.LIVE and settings.live
    assert load_settings({}).mode is Mode.PAPER
    # status.json, log lines and the store's file name show the same words as before.
    assert json.dumps({"mode": settings.mode}) == '{"mode": "live"}'
    assert (f"{settings.mode}", settings.mode.upper()) == ("live", "LIVE")
    assert db_path(tmp_path, settings.mode).name == "nija-live.db"


def test_settings_never_read_the_process_environment_themselves(monkeypatch):
    monkeypatch.setenv("NIJA_MODE", "live")
    monkeypatch.setenv("NIJA_CYCLE_SECONDS", "not a number")
    assert Settings() == DEFAULTS
    assert load_settings({}) == DEFAULTS


def test_settings_built_in_code_are_checked_like_variables():
    with pytest.raises(ValidationError):
        Settings(cycle_seconds=0)
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


# ---------------------------------------------------------------- accounts


def test_no_credentials_no_accounts():
    result = accounts({"ALPACA_PAPER": "false", "KRAKEN_SYMBOLS": "BTC/USD", "NIJA_MODE": "live"})
    assert result.specs == [] and result.errors == []


def test_one_platform_account_per_broker_with_defaults():
    settings = load_settings({"NIJA_CALL_TIMEOUT_SECONDS": "9"})
    result = accounts(PLATFORM_ENV, settings)
    assert result.errors == []
    assert keys(result) == [f"platform/platform/{b}" for b in BROKERS]
    by_broker = {spec.account.broker: spec for spec in result.specs}
    for broker, spec in by_broker.items():
        assert spec.symbols == venue(broker).default_symbols
        assert spec.timeout_seconds == 9
        assert spec.base_url is None and spec.data_url is None
        assert spec.paper_endpoint is True
        assert spec.credentials.api_key == PLATFORM_ENV[f"{broker}_API_KEY"]
    assert by_broker["KRAKEN"].credentials.api_secret == "FAKE-KRAKEN-SECRET-0001"
    assert by_broker["OKX"].credentials.passphrase == "FAKE-OKX-PASSPHRASE-0001"
    assert by_broker["KRAKEN"].credentials.passphrase == ""
    assert venue("KRAKEN").default_symbols == ("BTC/USD", "ETH/USD", "SOL/USD")
    assert venue("BINANCE").default_symbols == ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    assert venue("ALPACA").default_symbols == ("SPY", "AAPL", "MSFT")


def test_credential_values_are_trimmed():
    result = accounts({"BINANCE_API_KEY": "  FAKE-BINANCE-KEY-9 \n", "BINANCE_API_SECRET": " s "})
    assert result.specs[0].credentials.api_key == "FAKE-BINANCE-KEY-9"
    assert result.specs[0].credentials.api_secret == "s"


def test_coinbase_pem_with_literal_newlines_becomes_multiline():
    result = accounts(
        {
            "COINBASE_API_KEY": "FAKE-COINBASE-KEY-0001",
            "COINBASE_API_SECRET": PEM_ONE_LINE,
            "COINBASE_USER_BOB_API_KEY": "FAKE-COINBASE-KEY-0002",
            "COINBASE_USER_BOB_API_SECRET": PEM_ONE_LINE,
        }
    )
    assert result.errors == []
    for spec in result.specs:
        secret = spec.credentials.api_secret
        assert secret.splitlines() == [
            "-----BEGIN EC PRIVATE KEY-----",
            "FAKE-COINBASE-PEM-BODY-0001",
            "-----END EC PRIVATE KEY-----",
        ]
        assert "\\n" not in secret


def test_a_real_multiline_pem_is_kept():
    pem = "-----BEGIN EC PRIVATE KEY-----\nFAKE-PEM\n-----END EC PRIVATE KEY-----"
    result = accounts({"COINBASE_API_KEY": "FAKE-CB-KEY", "COINBASE_API_SECRET": pem})
    assert result.specs[0].credentials.api_secret == pem


@pytest.mark.parametrize(("word", "paper"), [("false", False), ("NO", False), ("true", True)])
def test_alpaca_paper_switch(word, paper):
    result = accounts(PLATFORM_ENV | {"ALPACA_PAPER": word})
    (spec,) = [s for s in result.specs if s.account.broker == "ALPACA"]
    assert spec.paper_endpoint is paper


def test_bad_alpaca_paper_fails_only_the_alpaca_account():
    result = accounts(PLATFORM_ENV | {"ALPACA_PAPER": "sometimes"})
    message = error_for(result, "platform/platform/ALPACA")
    assert "ALPACA_PAPER" in message
    assert "platform/platform/ALPACA" not in keys(result)
    assert len(result.specs) == len(BROKERS) - 1


def test_user_accounts_are_discovered_with_lowercase_ids():
    env = {
        "KRAKEN_USER_BOB_API_KEY": "FAKE-KRAKEN-KEY-BOB",
        "KRAKEN_USER_BOB_API_SECRET": "FAKE-KRAKEN-SECRET-BOB",
        "KRAKEN_USER_ALICE_SMITH_API_KEY": "FAKE-KRAKEN-KEY-ALICE",
        "KRAKEN_USER_ALICE_SMITH_API_SECRET": "FAKE-KRAKEN-SECRET-ALICE",
        "OKX_USER_CAROL_API_KEY": "FAKE-OKX-KEY-CAROL",
        "OKX_USER_CAROL_API_SECRET": "FAKE-OKX-SECRET-CAROL",
        "OKX_USER_CAROL_PASSPHRASE": "FAKE-OKX-PASSPHRASE-CAROL",
        "ALPACA_USER_DAN_API_KEY": "FAKE-ALPACA-KEY-DAN",
        "ALPACA_USER_DAN_API_SECRET": "FAKE-ALPACA-SECRET-DAN",
        "ALPACA_USER_DAN_PAPER": "false",
        "ALPACA_USER_EVE_API_KEY": "FAKE-ALPACA-KEY-EVE",
        "ALPACA_USER_EVE_API_SECRET": "FAKE-ALPACA-SECRET-EVE",
    }
    result = accounts(PLATFORM_ENV | env)
    assert result.errors == []
    assert keys(result) == [
        "platform/platform/COINBASE",
        "platform/platform/KRAKEN",
        "user/alice_smith/KRAKEN",
        "user/bob/KRAKEN",
        "platform/platform/OKX",
        "user/carol/OKX",
        "platform/platform/BINANCE",
        "platform/platform/ALPACA",
        "user/dan/ALPACA",
        "user/eve/ALPACA",
    ]
    by_key = {spec.account.key: spec for spec in result.specs}
    assert by_key["user/bob/KRAKEN"].credentials.api_secret == "FAKE-KRAKEN-SECRET-BOB"
    assert by_key["user/carol/OKX"].credentials.passphrase == "FAKE-OKX-PASSPHRASE-CAROL"
    assert by_key["user/dan/ALPACA"].paper_endpoint is False
    assert by_key["user/eve/ALPACA"].paper_endpoint is True  # each user defaults to paper


def test_user_ids_ignore_case():
    result = accounts(
        {
            "KRAKEN_USER_Alice_API_KEY": "FAKE-KRAKEN-KEY-A",
            "KRAKEN_USER_ALICE_API_SECRET": "FAKE-KRAKEN-SECRET-A",
        }
    )
    assert result.errors == []
    assert keys(result) == ["user/alice/KRAKEN"]
    assert result.specs[0].credentials.api_key == "FAKE-KRAKEN-KEY-A"
    assert result.specs[0].credentials.api_secret == "FAKE-KRAKEN-SECRET-A"


def test_same_user_in_two_cases_with_different_values_is_refused():
    env = {
        "KRAKEN_USER_alice_API_KEY": "FAKE-KRAKEN-KEY-A",
        "KRAKEN_USER_ALICE_API_KEY": "FAKE-KRAKEN-KEY-B",
        "KRAKEN_USER_ALICE_API_SECRET": "FAKE-KRAKEN-SECRET-A",
    }
    result = accounts(env)
    message = error_for(result, "user/alice/KRAKEN")
    assert "KRAKEN_USER_alice_API_KEY" in message and "KRAKEN_USER_ALICE_API_KEY" in message
    assert result.specs == []
    assert_no_secret(message, secrets=env_secrets(env), markers=("FAKE-",))


def test_half_set_user_fails_alone_and_names_the_missing_variable():
    env = PLATFORM_ENV | {
        "KRAKEN_USER_ALICE_API_KEY": "FAKE-KRAKEN-KEY-ALICE",
        "KRAKEN_USER_BOB_API_KEY": "FAKE-KRAKEN-KEY-BOB",
        "KRAKEN_USER_BOB_API_SECRET": "FAKE-KRAKEN-SECRET-BOB",
        "KRAKEN_USER_CAROL_API_KEY": "FAKE-KRAKEN-KEY-CAROL",
        "KRAKEN_USER_CAROL_API_SECRET": "",  # blank counts as missing
    }
    result = accounts(env)
    assert "user/bob/KRAKEN" in keys(result)
    assert "platform/platform/KRAKEN" in keys(result)
    assert len(result.specs) == len(BROKERS) + 1
    assert {e.account for e in result.errors} == {"user/alice/KRAKEN", "user/carol/KRAKEN"}
    alice = error_for(result, "user/alice/KRAKEN")
    assert "KRAKEN_USER_ALICE_API_SECRET" in alice and "missing" in alice
    (alice_error,) = [e for e in result.errors if e.account == "user/alice/KRAKEN"]
    assert alice_error.variables == ("KRAKEN_USER_ALICE_API_SECRET",)
    assert "KRAKEN_USER_CAROL_API_SECRET" in error_for(result, "user/carol/KRAKEN")
    assert_no_secret(repr(result.errors) + alice, secrets=env_secrets(env), markers=("FAKE-",))


def test_secret_without_key_names_the_missing_key():
    result = accounts({"BINANCE_API_SECRET": "FAKE-BINANCE-SECRET-0001"})
    message = error_for(result, "platform/platform/BINANCE")
    assert "BINANCE_API_KEY" in message
    assert result.specs == []


def test_okx_needs_a_passphrase():
    env = PLATFORM_ENV | {
        "OKX_PASSPHRASE": "",
        "OKX_USER_ZED_API_KEY": "FAKE-OKX-KEY-ZED",
        "OKX_USER_ZED_API_SECRET": "FAKE-OKX-SECRET-ZED",
    }
    result = accounts(env)
    assert "OKX_PASSPHRASE" in error_for(result, "platform/platform/OKX")
    assert "OKX_USER_ZED_PASSPHRASE" in error_for(result, "user/zed/OKX")
    assert not any(spec.account.broker == "OKX" for spec in result.specs)
    assert len(result.specs) == len(BROKERS) - 1


def test_alpaca_user_paper_alone_is_an_incomplete_account():
    result = accounts({"ALPACA_USER_BOB_PAPER": "false"})
    message = error_for(result, "user/bob/ALPACA")
    assert "ALPACA_USER_BOB_API_KEY" in message and "ALPACA_USER_BOB_API_SECRET" in message


def test_bad_alpaca_user_paper_names_the_variable():
    result = accounts(
        {
            "ALPACA_USER_BOB_API_KEY": "FAKE-ALPACA-KEY-BOB",
            "ALPACA_USER_BOB_API_SECRET": "FAKE-ALPACA-SECRET-BOB",
            "ALPACA_USER_BOB_PAPER": "perhaps",
        }
    )
    assert "ALPACA_USER_BOB_PAPER" in error_for(result, "user/bob/ALPACA")
    assert result.specs == []


def test_kraken_platform_aliases():
    env = {
        "KRAKEN_PLATFORM_API_KEY": "FAKE-KRAKEN-KEY-P",
        "KRAKEN_PLATFORM_API_SECRET": "FAKE-KRAKEN-SECRET-P",
    }
    result = accounts(env)
    assert keys(result) == ["platform/platform/KRAKEN"]
    assert result.specs[0].credentials.api_key == "FAKE-KRAKEN-KEY-P"
    assert result.specs[0].credentials.api_secret == "FAKE-KRAKEN-SECRET-P"


def test_kraken_platform_alias_pair_wins_over_the_plain_pair():
    env = {
        "KRAKEN_API_KEY": "FAKE-KRAKEN-KEY-PLAIN",
        "KRAKEN_API_SECRET": "FAKE-KRAKEN-SECRET-PLAIN",
        "KRAKEN_PLATFORM_API_KEY": "FAKE-KRAKEN-KEY-P",
        "KRAKEN_PLATFORM_API_SECRET": "FAKE-KRAKEN-SECRET-P",
    }
    (spec,) = accounts(env).specs
    assert spec.credentials.api_key == "FAKE-KRAKEN-KEY-P"
    assert spec.credentials.api_secret == "FAKE-KRAKEN-SECRET-P"


def test_kraken_pairs_are_never_mixed_across_spellings():
    env = {"KRAKEN_PLATFORM_API_KEY": "FAKE-KRAKEN-KEY-P", "KRAKEN_API_SECRET": "FAKE-KRAKEN-S"}
    result = accounts(env)
    assert result.specs == []
    assert "KRAKEN_PLATFORM_API_SECRET" in error_for(result, "platform/platform/KRAKEN")


def test_symbols_are_trimmed_upper_cased_and_deduplicated():
    env = PLATFORM_ENV | {
        "KRAKEN_SYMBOLS": " btc/usd , eth/usd,,BTC/USD, xrp/eur ",
        "ALPACA_SYMBOLS": "spy, brk.b,SPY",
    }
    by_broker = {s.account.broker: s for s in accounts(env).specs}
    assert by_broker["KRAKEN"].symbols == ("BTC/USD", "ETH/USD", "XRP/EUR")
    assert by_broker["ALPACA"].symbols == ("SPY", "BRK.B")
    assert by_broker["COINBASE"].symbols == venue("COINBASE").default_symbols


@pytest.mark.parametrize("bad", ["BTC-USD", "SPY", "BTC/USD/EUR", ",,", "BTC/"])
def test_bad_symbols_fail_every_account_of_that_broker(bad):
    env = PLATFORM_ENV | {
        "KRAKEN_USER_BOB_API_KEY": "FAKE-KRAKEN-KEY-BOB",
        "KRAKEN_USER_BOB_API_SECRET": "FAKE-KRAKEN-SECRET-BOB",
        "KRAKEN_SYMBOLS": bad,
    }
    result = accounts(env)
    assert {e.account for e in result.errors} == {"platform/platform/KRAKEN", "user/bob/KRAKEN"}
    assert all("KRAKEN_SYMBOLS" in str(e) for e in result.errors)
    assert not any(spec.account.broker == "KRAKEN" for spec in result.specs)
    assert len(result.specs) == len(BROKERS) - 1


@pytest.mark.parametrize("pair", ["BTC/USD", "eth/usdt", "SPY/USD"])
def test_crypto_pairs_in_alpaca_symbols_fail_the_alpaca_accounts_only(pair):
    # The Alpaca adapter trades the stock endpoints: BTC/USD would reach the ticker BTC.
    env = PLATFORM_ENV | {
        "ALPACA_USER_BOB_API_KEY": "FAKE-ALPACA-KEY-BOB",
        "ALPACA_USER_BOB_API_SECRET": "FAKE-ALPACA-SECRET-BOB",
        "ALPACA_SYMBOLS": f"SPY, {pair}",
    }
    result = accounts(env)
    assert {e.account for e in result.errors} == {"platform/platform/ALPACA", "user/bob/ALPACA"}
    for error in result.errors:
        assert error.variables == ("ALPACA_SYMBOLS",)
        assert "crypto pair" in str(error) and pair.upper() in str(error)
    assert not any(spec.account.broker == "ALPACA" for spec in result.specs)
    assert len(result.specs) == len(BROKERS) - 1


def test_base_urls_are_passed_on_without_a_trailing_slash():
    env = PLATFORM_ENV | {
        "KRAKEN_BASE_URL": "http://127.0.0.1:8123/",
        "OKX_BASE_URL": "https://sandbox.example.com/api",
        "BINANCE_BASE_URL": "http://localhost:7000",
        "ALPACA_BASE_URL": "http://127.0.0.1:9000",
        "ALPACA_DATA_URL": "http://[::1]:9001/",
    }
    by_broker = {s.account.broker: s for s in accounts(env).specs}
    assert by_broker["KRAKEN"].base_url == "http://127.0.0.1:8123"
    assert by_broker["OKX"].base_url == "https://sandbox.example.com/api"
    assert by_broker["ALPACA"].base_url == "http://127.0.0.1:9000"
    assert by_broker["ALPACA"].data_url == "http://[::1]:9001"
    assert by_broker["KRAKEN"].data_url is None
    assert by_broker["BINANCE"].base_url == "http://localhost:7000"
    assert by_broker["COINBASE"].base_url is None


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://127.0.0.1/",
        "127.0.0.1:8080",
        "http://",
        "http://host:99999",
        "http://host:0",
        "https://host/?token=FAKE-TOKEN-IN-URL",
        "http://api.binance.com",  # plain http would send the API key in clear
        "http://10.0.0.5:8080",
        "http://exa mple.com",
        "not a url",
    ],
)
def test_bad_base_url_fails_that_brokers_accounts_and_is_not_echoed(bad):
    env = PLATFORM_ENV | {
        "BINANCE_USER_BOB_API_KEY": "FAKE-BINANCE-KEY-BOB",
        "BINANCE_USER_BOB_API_SECRET": "FAKE-BINANCE-SECRET-BOB",
        "BINANCE_BASE_URL": bad,
    }
    result = accounts(env)
    assert {e.account for e in result.errors} == {"platform/platform/BINANCE", "user/bob/BINANCE"}
    for error in result.errors:
        assert "BINANCE_BASE_URL" in str(error)
        assert error.variables == ("BINANCE_BASE_URL",)
        assert bad not in str(error)
    assert len(result.specs) == len(BROKERS) - 1


def test_bad_alpaca_data_url_names_the_variable():
    result = accounts(PLATFORM_ENV | {"ALPACA_DATA_URL": "data.example.com"})
    assert "ALPACA_DATA_URL" in error_for(result, "platform/platform/ALPACA")


def test_a_key_shared_by_two_accounts_is_refused_for_the_second():
    env = {
        "KRAKEN_API_KEY": "FAKE-KRAKEN-KEY-SAME",
        "KRAKEN_API_SECRET": "FAKE-KRAKEN-SECRET-1",
        "KRAKEN_USER_BOB_API_KEY": "FAKE-KRAKEN-KEY-SAME",
        "KRAKEN_USER_BOB_API_SECRET": "FAKE-KRAKEN-SECRET-2",
    }
    result = accounts(env)
    assert keys(result) == ["platform/platform/KRAKEN"]
    message = error_for(result, "user/bob/KRAKEN")
    assert "KRAKEN_USER_BOB_API_KEY" in message and "platform/platform/KRAKEN" in message
    assert_no_secret(message, secrets=env_secrets(env), markers=("FAKE-",))


def test_secrets_never_appear_in_reprs_or_messages():
    env = PLATFORM_ENV | {
        "KRAKEN_USER_ALICE_API_KEY": "FAKE-KRAKEN-KEY-ALICE",
        "OKX_USER_BOB_API_SECRET": "FAKE-OKX-SECRET-BOB",
        "ALPACA_USER_EVE_API_KEY": "FAKE-ALPACA-KEY-EVE",
        "ALPACA_USER_EVE_API_SECRET": "FAKE-ALPACA-SECRET-EVE",
        "ALPACA_USER_EVE_PAPER": "FAKE-not-a-bool",
        "BINANCE_USER_CAROL_API_KEY": "FAKE-BINANCE-KEY-0001",  # duplicate of platform's
        "BINANCE_USER_CAROL_API_SECRET": "FAKE-BINANCE-SECRET-CAROL",
    }
    result = accounts(env)
    assert len(result.specs) == len(BROKERS)
    assert len(result.errors) == 4
    text = repr(result) + str(result) + "".join(str(e) + repr(e) for e in result.errors)
    text += "".join(repr(spec) + str(spec) for spec in result.specs)
    # The bad _PAPER value is not a credential, but it was made to look like one.
    assert_no_secret(
        text.replace("FAKE-not-a-bool", ""), secrets=env_secrets(env), markers=("FAKE-",)
    )


# ---------------------------------------------------------------- secret_values


def test_secret_values_lists_every_secret_and_its_loaded_form():
    env = {
        "COINBASE_API_SECRET": PEM_ONE_LINE,
        "KRAKEN_API_KEY": " FAKE-KRAKEN-KEY-0001 ",
        "OKX_USER_BOB_PASSPHRASE": "FAKE-OKX-PASSPHRASE",
        "KRAKEN_PLATFORM_API_SECRET": "FAKE-KRAKEN-SECRET-P",
        "TELEGRAM_BOT_TOKEN": "FAKE-TOKEN",
        "DB_PASSWORD": "FAKE-PASSWORD",
        "WEBHOOK_SECRET": "FAKE-WEBHOOK",
        "NIJA_MODE": "live",
        "KRAKEN_SYMBOLS": "BTC/USD",
        "ALPACA_API_SECRET": "",
    }
    values = secret_values(env)
    for expected in (
        PEM_ONE_LINE,
        PEM_ONE_LINE.replace("\\n", "\n").strip(),
        " FAKE-KRAKEN-KEY-0001 ",
        "FAKE-KRAKEN-KEY-0001",
        "FAKE-OKX-PASSPHRASE",
        "FAKE-KRAKEN-SECRET-P",
        "FAKE-TOKEN",
        "FAKE-PASSWORD",
        "FAKE-WEBHOOK",
    ):
        assert expected in values
    assert "live" not in values and "BTC/USD" not in values and "" not in values
    assert [len(v) for v in values] == sorted((len(v) for v in values), reverse=True)


def test_every_loaded_credential_is_covered_by_secret_values():
    env = PLATFORM_ENV | {"OKX_USER_Q_API_KEY": "k1", "OKX_USER_Q_API_SECRET": "s1"}
    env |= {"OKX_USER_Q_PASSPHRASE": "p1"}
    values = set(secret_values(env))
    for spec in accounts(env).specs:
        assert set(spec.credentials.secrets()) <= values


# ---------------------------------------------------------------- .env.example

NIJA_NAME = re.compile(r"^NIJA_[A-Z0-9]+(?:_[A-Z0-9]+)*$")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
SUFFIX = re.compile(r"^_[A-Z0-9]+(?:_[A-Z0-9]+)*$")
# Where variable names are spelled: the config package and the venue registry.
CONFIG_MODULES = {*sorted((ROOT / "bot" / "config").glob("*.py")), ROOT / "bot/brokers/venues.py"}


def python_sources() -> list[Path]:
    sources = sorted((ROOT / "bot").rglob("*.py"))
    if (ROOT / "bot.py").exists():
        sources.append(ROOT / "bot.py")
    return sources


def exported_names(tree: ast.Module) -> set[str]:
    """The strings of a module's ``__all__`` (Python names, not variables)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return names


def names_in_source(path: Path) -> set[str]:
    """NIJA_* literals anywhere; in the config modules every env-like literal, and
    ``f"{broker}_SUFFIX"`` patterns expanded for every broker."""
    tree = ast.parse(path.read_text(), filename=str(path))
    config = path in CONFIG_MODULES
    exported = exported_names(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in exported:
                continue
            if NIJA_NAME.match(node.value) or (config and ENV_NAME.match(node.value)):
                found.add(node.value)
        elif config and isinstance(node, ast.JoinedStr) and len(node.values) == 2:
            head, tail = node.values
            if (
                isinstance(head, ast.FormattedValue)
                and isinstance(tail, ast.Constant)
                and SUFFIX.match(str(tail.value))
            ):
                found.update(f"{broker}{tail.value}" for broker in BROKERS)
    return found


def documented(text: str) -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_env_example_documents_every_variable_the_code_reads():
    scanned: set[str] = set()
    for path in python_sources():
        scanned |= names_in_source(path)
    # The scan really sees the code, the settings and the venue registry included.
    assert {"NIJA_MODE", "MULTI_BROKER_INDEPENDENT", "ALPACA_DATA_URL"} <= scanned
    assert {"KRAKEN_PLATFORM_API_KEY", "OKX_SYMBOLS", "COINBASE_BASE_URL"} <= scanned
    read = scanned | set(settings_variables())
    for entry in env_venues():
        read |= set(entry.variables())
    assert {"OKX_PASSPHRASE", "ALPACA_PAPER", "BINANCE_CYCLE_SECONDS"} <= read
    missing = read - documented(ENV_EXAMPLE.read_text())
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_documented_check_would_catch_a_missing_name():
    assert documented("# NIJA_A=1\nNIJA_B=\n# words NIJA_C here\n") == {"NIJA_A", "NIJA_B"}


def test_env_example_shows_a_user_account_for_every_broker():
    text = ENV_EXAMPLE.read_text()
    names = documented(text)
    for broker in BROKERS:
        assert {f"{broker}_USER_ALICE_API_KEY", f"{broker}_USER_ALICE_API_SECRET"} <= names
    assert "OKX_USER_ALICE_PASSPHRASE" in names
    assert "ALPACA_USER_ALICE_PAPER" in names


def test_env_example_values_are_the_code_defaults_and_hold_no_secrets():
    env = uncommented_env_example()
    assert len(env) >= 60
    assert load_settings(env) == DEFAULTS
    result = accounts(env)
    assert result.specs == [] and result.errors == []
    assert secret_values(env) == []
    for broker in BROKERS:
        assert tuple(env[f"{broker}_SYMBOLS"].split(",")) == venue(broker).default_symbols


@pytest.mark.parametrize(
    "bad", ["abc\ndef", "abc def", "abc\u200bdef"], ids=["newline", "space", "zero-width"]
)
def test_a_credential_with_a_stray_character_names_the_variable_not_the_value(bad):
    env = {"KRAKEN_API_KEY": "FAKEKEY" + bad, "KRAKEN_API_SECRET": "RkFLRQ==",
           "OKX_API_KEY": "k", "OKX_API_SECRET": "s", "OKX_PASSPHRASE": "p"}  # fmt: skip
    result = load_accounts(env, load_settings({}))
    assert [s.account.key for s in result.specs] == ["platform/platform/OKX"]
    (err,) = result.errors
    assert "KRAKEN_API_KEY" in str(err) and "copy-paste" in str(err)
    assert "FAKEKEY" not in str(err)


def test_the_http_api_never_listens_beyond_loopback_without_a_chosen_token():
    assert load_settings({"NIJA_HTTP_HOST": "::1"}).http_host == "::1"
    with pytest.raises(ConfigError, match=r"NIJA_HTTP_HOST=0\.0\.0\.0 is not a loopback address"):
        load_settings({"NIJA_HTTP_HOST": "0.0.0.0"})
    assert load_settings({"NIJA_HTTP_HOST": "0.0.0.0", "NIJA_HTTP_ENABLED": "false"})
    token = "t" * 16
    assert load_settings({"NIJA_HTTP_HOST": "0.0.0.0", "NIJA_HTTP_TOKEN": token}).http_token


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"NIJA_HTTP_PORT": "http"}, "NIJA_HTTP_PORT must be a port, 0 to 65535"),
        ({"NIJA_HTTP_PORT": "65536"}, "NIJA_HTTP_PORT must be a port, 0 to 65535"),
        ({"NIJA_HTTP_HOST": "nija.example"}, "NIJA_HTTP_HOST must be an IP address"),
        ({"NIJA_HTTP_TOKEN": "short token"}, "NIJA_HTTP_TOKEN must be at least 16 characters"),
        ({"NIJA_HEARTBEAT_URL": "http://hc.example/ping/uuid-secret"}, "NIJA_HEARTBEAT_URL"),
    ],
)
def test_bad_http_settings_are_named_and_secrets_never_echoed(env, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        load_settings(env)
    assert "short token" not in str(info.value) and "uuid-secret" not in str(info.value)


# ---------------------------------------------------------------- alerts

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAsecret0PALDsaw"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"NIJA_TELEGRAM_BOT_TOKEN": BOT_TOKEN},
         "NIJA_TELEGRAM_BOT_TOKEN is set but NIJA_TELEGRAM_CHAT_ID is not: Telegram alerts "
         r"need both \(or neither\)"),
        ({"NIJA_TELEGRAM_CHAT_ID": "12345"},
         "NIJA_TELEGRAM_CHAT_ID is set but NIJA_TELEGRAM_BOT_TOKEN is not"),
        ({"NIJA_TELEGRAM_BOT_TOKEN": "my-secret-bot", "NIJA_TELEGRAM_CHAT_ID": "1"},
         r"NIJA_TELEGRAM_BOT_TOKEN must be a bot token as @BotFather gives it .*\(value not shown\)"),
        ({"NIJA_TELEGRAM_BOT_TOKEN": BOT_TOKEN, "NIJA_TELEGRAM_CHAT_ID": "the team"},
         "NIJA_TELEGRAM_CHAT_ID must be a chat id like 123456789 or -1001234567890, or a "
         "@channelname, got 'the team'"),
        ({"NIJA_ALERT_WEBHOOK_URL": "http://hooks.example/T0/secret-path"},
         r"NIJA_ALERT_WEBHOOK_URL must be an https URL .*\(value not shown\)"),
        ({"NIJA_TELEGRAM_API_URL": "https://relay.example/?key=secret-path"},
         r"NIJA_TELEGRAM_API_URL must be an https URL .*\(value not shown\)"),
        ({"NIJA_ALERT_DEDUPE_SECONDS": "0"}, "NIJA_ALERT_DEDUPE_SECONDS must be a positive number"),
        ({"NIJA_ALERT_MAX_PER_MINUTE": "0.5"},
         "NIJA_ALERT_MAX_PER_MINUTE must be a whole number >= 1"),
    ],
)  # fmt: skip
def test_bad_alert_settings_are_named_and_secrets_never_echoed(env, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        load_settings(env)
    assert "secret" not in str(info.value)


def test_the_bot_token_is_a_secret_and_the_alert_urls_are_never_shown():
    env = {
        "NIJA_TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "NIJA_TELEGRAM_CHAT_ID": "@nija_alerts",
        "NIJA_ALERT_WEBHOOK_URL": "https://hooks.example/services/T0/B0/secret?x=1",
    }
    settings = load_settings(env)
    assert BOT_TOKEN in secret_values(env)  # masked in every log line, text and alert
    assert "secret" not in repr(settings).lower() and settings.telegram_chat_id == "@nija_alerts"
    # A URL's query is kept as given (a webhook's key may be in it); no query: no trailing /.
    assert settings.alert_webhook_url == env["NIJA_ALERT_WEBHOOK_URL"]
    assert load_settings({"NIJA_TELEGRAM_API_URL": "http://[::1]:8081/"}).telegram_api_url == (
        "http://[::1]:8081"
    )


# ---------------------------------------------------------------- NIJA_DATABASE_URL


def test_the_database_urls_password_is_a_secret_and_its_server_is_not():
    url = "postgresql://nija:FAKE-DB-PW%40x@db.example:5432/nija?sslmode=require"
    values = secret_values({"NIJA_DATABASE_URL": url, "PGPASSWORD": "FAKE-PG-PW"})
    assert {"FAKE-DB-PW%40x", "FAKE-DB-PW@x", "FAKE-PG-PW"} == set(values)
    masked = Redactor(tuple(values)).mask_values(f"cannot reach {url}: PostgreSQL on db.example")
    assert masked == (
        "cannot reach postgresql://nija:***@db.example:5432/nija?sslmode=require:"
        " PostgreSQL on db.example"
    )
    query = "postgresql://db.example/nija?user=nija&password=FAKE-QUERY-PW"
    assert "FAKE-QUERY-PW" in secret_values({"NIJA_DATABASE_URL": query})
    assert "FAKE-DB-PW" not in repr(load_settings({"NIJA_DATABASE_URL": url}))


@pytest.mark.parametrize(
    "url",
    [
        "mysql://nija:FAKE-DB-PW@db.example/nija",
        "postgresql://nija:FAKE-DB-PW@db.example:port/nija",
        "postgresql://nija:FAKE DB-PW@db.example/nija",
    ],
)
def test_a_bad_database_url_is_named_and_never_echoed(url):
    with pytest.raises(ConfigError, match="NIJA_DATABASE_URL must be a") as info:
        load_settings({"NIJA_DATABASE_URL": url})
    assert "FAKE" not in str(info.value) and "(value not shown)" in str(info.value)
