"""Account discovery: one ``BrokerSpec`` per configured broker account.

A platform account per broker with credentials (``KRAKEN_API_KEY`` ...), and a user
account for every ``<BROKER>_USER_<ID>_API_KEY`` family. A half-configured account
becomes an ``AccountConfigError`` for that account only; the others still load.
Errors name variables, never their values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from bot.brokers.base import credential_problem
from bot.config.values import (
    BROKERS,
    VariableError,
    get,
    parse_bool,
    parse_symbols,
    parse_url,
)
from bot.model import AccountRef, BrokerSpec, Credentials

if TYPE_CHECKING:
    from bot.config.settings import Settings

DEFAULT_SYMBOLS: dict[str, tuple[str, ...]] = {
    "COINBASE": ("BTC/USD", "ETH/USD", "SOL/USD"),
    "KRAKEN": ("BTC/USD", "ETH/USD", "SOL/USD"),
    "OKX": ("BTC/USDT", "ETH/USDT", "SOL/USDT"),
    "BINANCE": ("BTC/USDT", "ETH/USDT", "SOL/USDT"),
    "ALPACA": ("SPY", "AAPL", "MSFT"),
}
# Variable-name endings of one account's settings, by Credentials/BrokerSpec field.
_SUFFIXES = {
    "api_key": "_API_KEY",
    "api_secret": "_API_SECRET",
    "passphrase": "_PASSPHRASE",
    "paper": "_PAPER",
}
_CREDENTIALS = ("api_key", "api_secret", "passphrase")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class AccountConfigError:
    """Why one account was not loaded: the variables at fault and a message (no values)."""

    account: str  # the account key, e.g. ``user/alice/KRAKEN``
    variables: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.account}: {self.message}"


@dataclass(slots=True)
class AccountsResult:
    """The accounts that loaded, and one error per account that did not."""

    specs: list[BrokerSpec] = field(default_factory=list)
    errors: list[AccountConfigError] = field(default_factory=list)


@dataclass(slots=True)
class _Found:
    """One account's variables as found in the environment, before validation."""

    ref: AccountRef
    names: dict[str, str]  # field -> variable name
    values: dict[str, str] = field(default_factory=dict)  # field -> non-blank value
    problems: list[VariableError] = field(default_factory=list)
    spelled_id: str = ""  # a user id as spelled in the first variable found


def required_fields(broker: str) -> tuple[str, ...]:
    """The credential fields an account of ``broker`` must have."""
    return _CREDENTIALS if broker == "OKX" else ("api_key", "api_secret")


def _fields(broker: str) -> tuple[str, ...]:
    return (*required_fields(broker), "paper") if broker == "ALPACA" else required_fields(broker)


def platform_variables(broker: str) -> dict[str, str]:
    """The platform account's variable names by field (Kraken's primary spelling)."""
    return {f: f"{broker}{_SUFFIXES[f]}" for f in _fields(broker)}


def broker_variables(broker: str) -> list[str]:
    """Every fixed variable name read for ``broker`` (user families excluded)."""
    names = [*platform_variables(broker).values()]
    if broker == "KRAKEN":
        names += ["KRAKEN_PLATFORM_API_KEY", "KRAKEN_PLATFORM_API_SECRET"]
    names += [f"{broker}_SYMBOLS", f"{broker}_BASE_URL", f"{broker}_CYCLE_SECONDS"]
    if broker == "ALPACA":
        names.append("ALPACA_DATA_URL")
    return names


def _platform(env: Mapping[str, str], broker: str) -> _Found | None:
    names = platform_variables(broker)
    alias = {"api_key": "KRAKEN_PLATFORM_API_KEY", "api_secret": "KRAKEN_PLATFORM_API_SECRET"}
    # Kraken's platform pair may be spelled either way; a pair is never mixed across spellings.
    if broker == "KRAKEN" and any(get(env, name) for name in alias.values()):
        names.update(alias)
    found = _Found(AccountRef("platform", "platform", broker), names)
    for fld, name in names.items():
        value = get(env, name)
        if value is not None:
            found.values[fld] = value
    # ALPACA_PAPER alone is an ordinary setting, not an account.
    return found if any(f in found.values for f in _CREDENTIALS) else None


def _users(env: Mapping[str, str], broker: str) -> list[_Found]:
    suffixes = "|".join(_SUFFIXES[f][1:] for f in _fields(broker))
    pattern = re.compile(rf"^{broker}_USER_([A-Za-z0-9_]+?)_({suffixes})$")
    by_id: dict[str, _Found] = {}
    for name in sorted(env):
        match = pattern.match(name)
        value = get(env, name)
        if match is None or value is None:
            continue
        spelled = match.group(1)
        fld = next(f for f, s in _SUFFIXES.items() if s == "_" + match.group(2))
        found = by_id.setdefault(
            spelled.lower(), _Found(AccountRef("user", spelled, broker), {}, spelled_id=spelled)
        )
        if fld in found.values and found.values[fld] != value:
            # Same account spelled in two cases, with different values: refuse to guess.
            found.problems.append(
                VariableError(name, f"{name} and {found.names[fld]} disagree (ids ignore case)")
            )
            continue
        found.names.setdefault(fld, name)
        found.values[fld] = value
    for found in by_id.values():
        # Name missing variables the way the user spelled the id they did set.
        for fld in _fields(broker):
            found.names.setdefault(fld, f"{broker}_USER_{found.spelled_id}{_SUFFIXES[fld]}")
    return [by_id[k] for k in sorted(by_id)]


@dataclass(frozen=True, slots=True)
class _Options:
    """What all of one broker's accounts share."""

    symbols: tuple[str, ...]
    base_url: str | None = None
    data_url: str | None = None
    problems: tuple[VariableError, ...] = ()


def _broker_options(env: Mapping[str, str], broker: str) -> _Options:
    """Symbols and URLs shared by all of ``broker``'s accounts, and their problems."""
    problems: list[VariableError] = []

    def read(name: str, parse: Callable[[str, str], _T], default: _T) -> _T:
        raw = get(env, name)
        if raw is None:
            return default
        try:
            return parse(name, raw)
        except VariableError as exc:
            problems.append(exc)
            return default

    stocks = broker == "ALPACA"
    symbols = read(
        f"{broker}_SYMBOLS",
        lambda n, v: parse_symbols(n, v, stocks=stocks),
        DEFAULT_SYMBOLS[broker],
    )
    base_url = read(f"{broker}_BASE_URL", parse_url, None)
    data_url = read("ALPACA_DATA_URL", parse_url, None) if stocks else None
    return _Options(symbols, base_url, data_url, tuple(problems))


def _build(found: _Found, options: _Options, settings: Settings) -> BrokerSpec:
    """The account's spec; raises nothing, records problems on ``found`` instead."""
    broker = found.ref.broker
    present = [found.names[f] for f in required_fields(broker) if f in found.values]
    for fld in required_fields(broker):
        if fld not in found.values:
            name = found.names[fld]
            context = f" (set: {', '.join(present)})" if present else ""
            found.problems.append(VariableError(name, f"{name} is missing{context}"))
    paper = True
    if "paper" in found.values:
        try:
            paper = parse_bool(found.names["paper"], found.values["paper"])
        except VariableError as exc:
            found.problems.append(exc)
    secret = found.values.get("api_secret", "")
    if broker == "COINBASE":
        secret = secret.replace("\\n", "\n")  # a PEM pasted onto one line of .env
    for fld in ("api_key", "api_secret", "passphrase"):
        value = secret if fld == "api_secret" else found.values.get(fld, "")
        multiline = fld == "api_secret" and broker == "COINBASE"
        problem = credential_problem(value, multiline=multiline) if value else None
        if problem:
            name = found.names[fld]
            found.problems.append(VariableError(name, f"{name} {problem}"))
    return BrokerSpec(
        account=found.ref,
        credentials=Credentials(
            api_key=found.values.get("api_key", ""),
            api_secret=secret,
            passphrase=found.values.get("passphrase", ""),
        ),
        symbols=options.symbols,
        base_url=options.base_url,
        data_url=options.data_url,
        paper_endpoint=paper,
        timeout_seconds=settings.call_timeout_seconds,
    )


def _error(key: str, problems: list[VariableError]) -> AccountConfigError:
    variables = tuple(dict.fromkeys(p.variable for p in problems))
    return AccountConfigError(key, variables, "; ".join(str(p) for p in problems))


def load_accounts(env: Mapping[str, str], settings: Settings) -> AccountsResult:
    """Every configured account of every broker: platform first, then users by id.

    One broken account (half-set credentials, a bad ``_PAPER`` value, an API key
    already used by another account of the same broker) is reported and skipped;
    a bad ``<BROKER>_SYMBOLS`` or ``_BASE_URL`` is reported for all of that broker's accounts.
    """
    result = AccountsResult()
    for broker in BROKERS:
        platform = _platform(env, broker)
        found_all = ([platform] if platform else []) + _users(env, broker)
        if not found_all:
            continue
        options = _broker_options(env, broker)
        key_owner: dict[str, str] = {}
        for found in found_all:
            spec = _build(found, options, settings)
            problems = [*found.problems, *options.problems]
            owner = key_owner.get(spec.credentials.api_key)
            if owner is not None:
                # Two threads on one key would trade the same money and clash on nonces.
                name = found.names["api_key"]
                problems.append(VariableError(name, f"{name} is the same key as {owner}'s"))
            if problems:
                result.errors.append(_error(found.ref.key, problems))
                continue
            key_owner[spec.credentials.api_key] = found.ref.key
            result.specs.append(spec)
    return result
