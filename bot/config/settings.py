"""Settings and account specs from the environment.

Pure functions over the ``env`` mapping they are given (``bot.py`` passes
``os.environ`` after loading ``.env``). Errors name the variable and what is wrong;
secret values are never echoed. Account discovery lives in ``bot.config.accounts``
and is re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.config.accounts import (
    DEFAULT_SYMBOLS,
    AccountConfigError,
    AccountsResult,
    broker_variables,
    load_accounts,
)
from bot.config.values import (
    BROKERS,
    VariableError,
    get,
    parse_bool,
    parse_int,
    parse_number,
    shown,
)
from bot.errors import ConfigError
from bot.model import timeframe_seconds

__all__ = [
    "BROKERS",
    "DEFAULT_SYMBOLS",
    "MODES",
    "AccountConfigError",
    "AccountsResult",
    "Settings",
    "broker_variables",
    "cycle_seconds_for",
    "load_accounts",
    "load_settings",
    "secret_values",
    "settings_variables",
]

MODES = ("paper", "live")
# Variables whose values are secrets, by how their names end (for the log redactor).
SECRET_NAME_ENDINGS = ("_API_KEY", "_API_SECRET", "_SECRET", "_PASSPHRASE", "_TOKEN", "_PASSWORD")
_STRATEGY_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every process-wide setting; the defaults are the documented ones."""

    mode: str = "paper"  # NIJA_MODE: paper (simulated fills) | live (real orders)
    min_balance_usd: float = 10.0  # NIJA_MIN_BALANCE_USD: funded threshold
    call_timeout_seconds: float = 15.0  # NIJA_CALL_TIMEOUT_SECONDS: bound on every broker call
    cycle_seconds: float = 150.0  # NIJA_CYCLE_SECONDS: default cycle interval
    # <BROKER>_CYCLE_SECONDS overrides, as sorted (broker, seconds) pairs; see cycle_seconds_for.
    broker_cycle_seconds: tuple[tuple[str, float], ...] = ()
    funded_recheck_seconds: float = 300.0  # NIJA_FUNDED_RECHECK_SECONDS
    status_log_seconds: float = 1500.0  # NIJA_STATUS_LOG_SECONDS
    cb_failure_threshold: int = 5  # NIJA_CB_FAILURE_THRESHOLD
    cb_success_threshold: int = 3  # NIJA_CB_SUCCESS_THRESHOLD
    cb_timeout_seconds: float = 300.0  # NIJA_CB_TIMEOUT_SECONDS
    cb_half_open_max_calls: int = 1  # NIJA_CB_HALF_OPEN_MAX_CALLS
    data_dir: str = "data"  # NIJA_DATA_DIR
    log_file: str = "nija.log"  # NIJA_LOG_FILE
    multi_broker_independent: bool = True  # MULTI_BROKER_INDEPENDENT
    paper_balance_usd: float = 10000.0  # NIJA_PAPER_BALANCE_USD: paper broker's starting cash
    timeframe: str = "5m"  # NIJA_TIMEFRAME: candle size the strategy reads
    strategy: str = "default"  # NIJA_STRATEGY
    max_total_positions: int | None = None  # NIJA_MAX_TOTAL_POSITIONS: None = no limit
    primary_broker: str | None = None  # NIJA_PRIMARY_BROKER

    @property
    def live(self) -> bool:
        """True when orders are real."""
        return self.mode == "live"


def _mode(name: str, raw: str) -> str:
    mode = raw.lower()
    if mode not in MODES:
        raise VariableError(name, f"{name} must be paper or live, got {shown(raw)}")
    return mode


def _positive(name: str, raw: str) -> float:
    return parse_number(name, raw)


def _non_negative(name: str, raw: str) -> float:
    return parse_number(name, raw, allow_zero=True)


def _timeframe(name: str, raw: str) -> str:
    try:
        ok = timeframe_seconds(raw) > 0
    except ValueError:
        ok = False
    if not ok:
        raise VariableError(
            name, f"{name} must be a timeframe like 1m, 5m, 1h, 1d, got {shown(raw)}"
        )
    return raw


def _strategy(name: str, raw: str) -> str:
    strategy = raw.lower()
    if not _STRATEGY_NAME.match(strategy):
        raise VariableError(name, f"{name} must be a strategy name like default, got {shown(raw)}")
    return strategy


def _broker(name: str, raw: str) -> str:
    broker = raw.upper()
    if broker not in (*BROKERS, "PAPER"):
        choices = ", ".join((*BROKERS, "PAPER"))
        raise VariableError(name, f"{name} must be one of {choices}, got {shown(raw)}")
    return broker


def _text(_name: str, raw: str) -> str:
    return raw


# Settings field -> (variable, parser). A blank or unset variable keeps the default.
_READERS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "mode": ("NIJA_MODE", _mode),
    "min_balance_usd": ("NIJA_MIN_BALANCE_USD", _non_negative),
    "call_timeout_seconds": ("NIJA_CALL_TIMEOUT_SECONDS", _positive),
    "cycle_seconds": ("NIJA_CYCLE_SECONDS", _positive),
    "funded_recheck_seconds": ("NIJA_FUNDED_RECHECK_SECONDS", _positive),
    "status_log_seconds": ("NIJA_STATUS_LOG_SECONDS", _positive),
    "cb_failure_threshold": ("NIJA_CB_FAILURE_THRESHOLD", parse_int),
    "cb_success_threshold": ("NIJA_CB_SUCCESS_THRESHOLD", parse_int),
    "cb_timeout_seconds": ("NIJA_CB_TIMEOUT_SECONDS", _positive),
    "cb_half_open_max_calls": ("NIJA_CB_HALF_OPEN_MAX_CALLS", parse_int),
    "data_dir": ("NIJA_DATA_DIR", _text),
    "log_file": ("NIJA_LOG_FILE", _text),
    "multi_broker_independent": ("MULTI_BROKER_INDEPENDENT", parse_bool),
    "paper_balance_usd": ("NIJA_PAPER_BALANCE_USD", _positive),
    "timeframe": ("NIJA_TIMEFRAME", _timeframe),
    "strategy": ("NIJA_STRATEGY", _strategy),
    "max_total_positions": ("NIJA_MAX_TOTAL_POSITIONS", parse_int),
    "primary_broker": ("NIJA_PRIMARY_BROKER", _broker),
}


def settings_variables() -> list[str]:
    """Every variable ``load_settings`` reads."""
    names = [name for name, _parser in _READERS.values()]
    return names + [f"{broker}_CYCLE_SECONDS" for broker in BROKERS]


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from ``env``; raises ``ConfigError`` naming every bad variable at once."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for fld, (name, parse) in _READERS.items():
        raw = get(env, name)
        if raw is None:
            continue
        try:
            values[fld] = parse(name, raw)
        except VariableError as exc:
            problems.append(str(exc))
    overrides: list[tuple[str, float]] = []
    for broker in BROKERS:
        name = f"{broker}_CYCLE_SECONDS"
        raw = get(env, name)
        if raw is None:
            continue
        try:
            overrides.append((broker, parse_number(name, raw)))
        except VariableError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems))
    return Settings(**values, broker_cycle_seconds=tuple(overrides))


def cycle_seconds_for(settings: Settings, broker: str) -> float:
    """``<BROKER>_CYCLE_SECONDS`` when set, else ``NIJA_CYCLE_SECONDS``."""
    return dict(settings.broker_cycle_seconds).get(broker.upper(), settings.cycle_seconds)


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Every configured secret value, longest first, for the log redactor.

    Secrets are the values of variables whose names end in one of
    ``SECRET_NAME_ENDINGS``. Each value is listed as set, trimmed, and with literal
    ``\\n`` turned into newlines (the form a Coinbase PEM takes once loaded),
    with and without its final newline.
    """
    found: set[str] = set()
    for name, raw in env.items():
        if not raw or not name.upper().endswith(SECRET_NAME_ENDINGS):
            continue
        unescaped = raw.strip().replace("\\n", "\n")
        for variant in (raw, raw.strip(), unescaped, unescaped.strip()):
            if variant:
                found.add(variant)
    return sorted(found, key=lambda v: (-len(v), v))
