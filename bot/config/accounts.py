"""Account discovery: one ``BrokerSpec`` per configured broker account.

A platform account per venue with credentials (``KRAKEN_API_KEY`` ...), and a user
account for every ``<BROKER>_USER_<ID>_API_KEY`` family; the venues, their variables
and their quirks come from the venue registry (``bot.brokers.venues``). A
half-configured account becomes an ``AccountConfigError`` for that account only; the
others still load. Errors name variables, never their values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from bot.brokers import venues
from bot.brokers.base import credential_problem
from bot.brokers.venues import ACCOUNT_SUFFIXES, CREDENTIAL_FIELDS, Venue
from bot.config.values import (
    VariableError,
    get,
    parse_bool,
    parse_symbols,
    parse_url,
)
from bot.model import AccountRef, AssetClass, BrokerSpec, Credentials

if TYPE_CHECKING:
    from bot.config.settings import Settings

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


def _platform(env: Mapping[str, str], venue: Venue) -> _Found | None:
    names = venue.platform_variables()
    alias = dict(venue.platform_aliases)
    # The platform pair may be spelled either way (Kraken); a pair is never mixed across spellings.
    if any(get(env, name) for name in alias.values()):
        names.update(alias)
    found = _Found(AccountRef("platform", "platform", venue.name), names)
    for fld, name in names.items():
        value = get(env, name)
        if value is not None:
            found.values[fld] = value
    # ALPACA_PAPER alone is an ordinary setting, not an account.
    return found if any(f in found.values for f in CREDENTIAL_FIELDS) else None


def _users(env: Mapping[str, str], venue: Venue) -> list[_Found]:
    pattern = venue.user_pattern()
    by_id: dict[str, _Found] = {}
    for name in sorted(env):
        match = pattern.match(name)
        value = get(env, name)
        if match is None or value is None:
            continue
        spelled = match.group(1)
        fld = next(f for f, s in ACCOUNT_SUFFIXES.items() if s == "_" + match.group(2))
        found = by_id.setdefault(
            spelled.lower(), _Found(AccountRef("user", spelled, venue.name), {}, spelled_id=spelled)
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
        for fld in venue.account_fields:
            found.names.setdefault(fld, venue.user_variable(found.spelled_id, fld))
    return [by_id[k] for k in sorted(by_id)]


@dataclass(frozen=True, slots=True)
class _Options:
    """What all of one broker's accounts share."""

    symbols: tuple[str, ...]
    base_url: str | None = None
    data_url: str | None = None
    problems: tuple[VariableError, ...] = ()


def _broker_options(env: Mapping[str, str], venue: Venue) -> _Options:
    """Symbols and URLs shared by all of ``venue``'s accounts, and their problems."""
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

    stocks = venue.asset_class is AssetClass.STOCKS
    symbols = read(
        venue.symbols_variable,
        lambda n, v: parse_symbols(n, v, stocks=stocks),
        venue.default_symbols,
    )
    base_url = read(venue.base_url_variable, parse_url, None)
    data_name = venue.data_url_variable
    data_url = read(data_name, parse_url, None) if data_name else None
    return _Options(symbols, base_url, data_url, tuple(problems))


def _build(found: _Found, venue: Venue, options: _Options, settings: Settings) -> BrokerSpec:
    """The account's spec; raises nothing, records problems on ``found`` instead."""
    present = [found.names[f] for f in venue.credentials if f in found.values]
    for fld in venue.credentials:
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
    if venue.multiline_secret:
        secret = secret.replace("\\n", "\n")  # a PEM pasted onto one line of .env
    for fld in CREDENTIAL_FIELDS:
        value = secret if fld == "api_secret" else found.values.get(fld, "")
        multiline = fld == "api_secret" and venue.multiline_secret
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
        rate_limit=settings.request_budgets,
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
    for venue in venues.env_venues():
        platform = _platform(env, venue)
        found_all = ([platform] if platform else []) + _users(env, venue)
        if not found_all:
            continue
        options = _broker_options(env, venue)
        key_owner: dict[str, str] = {}
        for found in found_all:
            spec = _build(found, venue, options, settings)
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
