"""The value parsers shared by ``bot.config.settings`` and ``bot.config.accounts``.

The variables named after a venue or an account (``KRAKEN_SYMBOLS``,
``ALPACA_USER_BOB_PAPER``) are read here by hand: their names come from the venue
registry and the environment at run time, which fixed pydantic-settings fields cannot
express. Every parser is told the variable's name so its error can say which variable
is wrong. Only non-secret values are ever echoed back, shortened, and never URLs
(a URL may carry a token in its path or query).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from bot.brokers.base import LOOPBACK_HOSTS
from bot.errors import ConfigError

BOOL_WORDS = "true/false (or 1/0, yes/no)"
_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})
_PAIR_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")
_STOCK_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
_SHOWN_CHARS = 40


class VariableError(ConfigError):
    """A ``ConfigError`` about one named variable (the name is kept for reports)."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(message)
        self.variable = variable


def get(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value with surrounding whitespace removed; None when unset or blank."""
    raw = env.get(name)
    if raw is None:
        return None
    value = raw.strip()
    return value or None


def shown(raw: str) -> str:
    """A non-secret value, quoted and shortened, for an error message."""
    if len(raw) > _SHOWN_CHARS:
        raw = raw[:_SHOWN_CHARS] + "..."
    return repr(raw)


def to_bool(raw: str) -> bool:
    """true/false, 1/0, yes/no in any case; ``ValueError`` for anything else."""
    word = raw.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(BOOL_WORDS)


def parse_bool(name: str, raw: str) -> bool:
    """``to_bool`` for variable ``name``: its error names the variable."""
    try:
        return to_bool(raw)
    except ValueError:
        raise VariableError(name, f"{name} must be {BOOL_WORDS}, got {shown(raw)}") from None


def parse_url(name: str, raw: str, *, query: bool = False) -> str:
    """An absolute https URL (plain http only for loopback hosts), without fragment, and
    without query unless ``query`` (some webhooks carry their key in it); the trailing
    slash of a URL without query is dropped.

    Plain http is refused elsewhere because API keys travel in request headers.
    The value is not echoed: a URL may carry a token.
    """
    bad = VariableError(
        name,
        f"{name} must be an https URL like https://api.example.com, or http on 127.0.0.1"
        " / localhost / ::1 (value not shown)",
    )
    if any(ch.isspace() for ch in raw):
        raise bad
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0  # .port raises on a bad port
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise bad
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise bad
    if (parts.query and not query) or parts.fragment:
        raise bad
    return raw if parts.query else raw.rstrip("/")


def parse_symbols(name: str, raw: str, *, stocks: bool) -> tuple[str, ...]:
    """Comma-separated symbols, trimmed and upper-cased, duplicates dropped, order kept.

    Crypto venues take ``BASE/QUOTE`` pairs; a stock venue takes tickers only (``SPY``,
    ``BRK.B``). Alpaca spells crypto as pairs (``BTC/USD``) and NIJA trades only its stock
    endpoints, where ``BTC/USD`` would reach a stock ticker (``BTC`` is an ETF): refused.
    """
    symbols: list[str] = []
    for part in raw.split(","):
        symbol = part.strip().upper()
        if not symbol:
            continue
        if stocks and _PAIR_SYMBOL.match(symbol):
            raise VariableError(
                name,
                f"{name}: {shown(symbol)} is a crypto pair; this venue trades US stocks only"
                " (tickers like SPY)",
            )
        if not (_STOCK_SYMBOL.match(symbol) if stocks else _PAIR_SYMBOL.match(symbol)):
            example = "SPY" if stocks else "BTC/USD"
            raise VariableError(name, f"{name}: {shown(symbol)} is not a symbol like {example}")
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        raise VariableError(name, f"{name} lists no symbols, got {shown(raw)}")
    return tuple(symbols)
