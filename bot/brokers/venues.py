"""The venue registry: one entry per venue holds everything NIJA knows about it.

An entry says which variables configure the venue's accounts (and which of them an
account must have), what it trades by default, the smallest order it takes, how it treats
a repeated client order id and how an order is proven absent (``## Resends`` in
docs/VENUES.md), its quirks
(Kraken's second spelling of the platform pair, OKX's passphrase, Coinbase's PEM
secret, Alpaca's paper switch and market-data URL) and how its adapter is built.
Account discovery, settings, the broker factory, the wiring and the demo read it.
Adding a venue touches only this file and the venue's adapter folder.

Importing this module loads no broker SDK: an entry's ``adapter`` loader imports the
adapter (and its SDK) only when called.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

from bot.brokers.budget import Budgets, RateLimit
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import ConfigError
from bot.model import AssetClass, BrokerSpec

if TYPE_CHECKING:
    from bot.brokers.base import Broker

# What builds one account's broker from its spec and the clock: an adapter class, or a function.
Adapter = Callable[..., "Broker"]

# The credential fields of ``bot.model.Credentials``.
CREDENTIAL_FIELDS = ("api_key", "api_secret", "passphrase")
# How the name of an account's variable ends, by Credentials/BrokerSpec field.
ACCOUNT_SUFFIXES: Mapping[str, str] = MappingProxyType(
    {
        "api_key": "_API_KEY",
        "api_secret": "_API_SECRET",
        "passphrase": "_PASSPHRASE",
        "paper": "_PAPER",
    }
)
_KEY_AND_SECRET = ("api_key", "api_secret")


class DuplicateClientIds(StrEnum):
    """What a venue does with an order whose client id an earlier order already used."""

    REFUSED_FOREVER = "refused_forever"  # refused whatever became of the earlier order
    OPEN_ONLY = "open_only"  # refused only while the earlier one is open: a re-send of a
    # filled order is a second real order
    RETURNS_EXISTING = "returns_existing"  # nothing is created; the earlier order is answered


@dataclass(frozen=True, slots=True)
class Venue:
    """One venue: how its accounts are configured, what it trades, how its adapter is built.

    Variable names derive from ``name``: the platform account reads ``<NAME>_API_KEY``
    and friends, a user account ``<NAME>_USER_<ID>_API_KEY`` and friends, and all of the
    venue's accounts share ``<NAME>_SYMBOLS``, ``<NAME>_BASE_URL`` and ``<NAME>_CYCLE_SECONDS``.
    """

    name: str  # upper case; the last part of an account key, e.g. platform/platform/KRAKEN
    asset_class: AssetClass
    default_symbols: tuple[str, ...]  # traded when <NAME>_SYMBOLS is unset
    adapter: Callable[[], Adapter]  # imports the adapter (and its SDK) on first call
    min_order_usd: float = 10.0  # the smallest order the venue takes
    # The credential fields every account must set; () = no accounts from the environment.
    credentials: tuple[str, ...] = _KEY_AND_SECRET
    multiline_secret: bool = False  # the secret is a PEM: literal \n in .env become line breaks
    # (field, variable): a second spelling of the platform pair; when any is set, it is used.
    platform_aliases: tuple[tuple[str, str], ...] = ()
    paper_switch: bool = False  # <NAME>_PAPER (and each user's _PAPER) picks the paper endpoint
    data_url_variable: str | None = None  # a separate market-data base URL
    # The market-data API needs a key (Alpaca's): the venue's shared data client uses its
    # first account's. Without: the shared client is built with no credentials at all.
    data_needs_key: bool = False
    # Resends (docs/VENUES.md, "## Resends"): an order whose outcome is unknown may be sent
    # again only once the venue has answered "no such order" to ``absence_lookups`` lookups
    # by client id (open and closed orders), each at least ``absence_spacing_seconds`` after
    # the send or the lookup before it, all within ``lookup_retention_seconds`` of the send
    # (how long the venue's lookup finds an order; None: it documents no limit).
    duplicate_client_ids: DuplicateClientIds = DuplicateClientIds.OPEN_ONLY
    absence_lookups: int = 2
    absence_spacing_seconds: float = 15.0
    lookup_retention_seconds: float | None = None
    # Request budgets (docs/VENUES.md, "## Request budgets"): the documented limit of one IP
    # on the public endpoints and of one key on the private ones (None: none documented).
    # NIJA takes ``bot.brokers.budget.NIJA_SHARE`` of each.
    public_limit: RateLimit | None = None
    private_limit: RateLimit | None = None
    # A client without a key loads the venue's market metadata: one load per venue serves
    # every account (``Broker.adopt_metadata``).
    public_metadata: bool = False

    def __post_init__(self) -> None:
        if self.absence_lookups < 1 or self.absence_spacing_seconds < 0:
            raise ValueError(f"{self.name}: absence needs one lookup or more, spaced >= 0 s")

    def build(
        self, spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
    ) -> Broker:
        """The adapter for one account; building it touches no network. Its requests spend
        ``budgets`` (None: it is not throttled, and an adapter need not take the argument)."""
        if budgets is None:
            return self.adapter()(spec, clock=clock)
        return self.adapter()(spec, clock=clock, budgets=budgets)

    @property
    def from_env(self) -> bool:
        """True when accounts of this venue are configured by environment variables."""
        return bool(self.credentials)

    @property
    def account_fields(self) -> tuple[str, ...]:
        """Every field one account's variables may set (credentials, then the paper switch)."""
        return (*self.credentials, "paper") if self.paper_switch else self.credentials

    @property
    def symbols_variable(self) -> str:
        """Comma-separated symbols for all of the venue's accounts."""
        return f"{self.name}_SYMBOLS"

    @property
    def base_url_variable(self) -> str:
        """Where every REST call goes instead of the venue (http only on a loopback host)."""
        return f"{self.name}_BASE_URL"

    @property
    def cycle_seconds_variable(self) -> str:
        """The cycle interval of the venue's accounts."""
        return f"{self.name}_CYCLE_SECONDS"

    def platform_variables(self) -> dict[str, str]:
        """The platform account's variable names by field (the primary spelling)."""
        return {f: f"{self.name}{ACCOUNT_SUFFIXES[f]}" for f in self.account_fields}

    def user_variable(self, user_id: str, fld: str) -> str:
        """The variable of user account ``user_id`` for ``fld``, e.g. ``KRAKEN_USER_BOB_API_KEY``."""
        return f"{self.name}_USER_{user_id}{ACCOUNT_SUFFIXES[fld]}"

    def user_pattern(self) -> re.Pattern[str]:
        """Matches a user account's variable: group 1 is the id, group 2 the suffix without ``_``."""
        suffixes = "|".join(ACCOUNT_SUFFIXES[f][1:] for f in self.account_fields)
        return re.compile(rf"^{self.name}_USER_([A-Za-z0-9_]+?)_({suffixes})$")

    def variables(self) -> list[str]:
        """Every fixed variable read for this venue (the user families excluded)."""
        if not self.from_env:
            return []
        names = [*self.platform_variables().values()]
        names += [variable for _fld, variable in self.platform_aliases]
        names += [self.symbols_variable, self.base_url_variable, self.cycle_seconds_variable]
        if self.data_url_variable:
            names.append(self.data_url_variable)
        return names


# Each loader imports its adapter (and so its SDK) only when first called.
def _coinbase() -> Adapter:
    from bot.brokers.coinbase_advanced.broker import CoinbaseBroker

    return CoinbaseBroker


def _ccxt() -> Adapter:
    from bot.brokers.ccxt.broker import CcxtBroker

    return CcxtBroker  # it picks the ccxt exchange and its options by venue name


def _alpaca() -> Adapter:
    from bot.brokers.alpaca_stocks.broker import AlpacaBroker

    return AlpacaBroker


def _paper() -> Adapter:
    from bot.brokers.paper.broker import PaperBroker
    from bot.brokers.paper.synthetic import SyntheticMarket

    def simulated(
        spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
    ) -> Broker:  # in-process: no requests to budget
        market = SyntheticMarket(spec.symbols or PAPER.default_symbols, clock=clock)
        return PaperBroker(spec, market, clock=clock)

    return simulated


_USD_PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD")
_USDT_PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")

# The resend policies are docs/VENUES.md's "## Resends" table; each venue's section there
# gives the sources.
COINBASE = Venue(
    "COINBASE",
    AssetClass.CRYPTO,
    _USD_PAIRS,
    _coinbase,
    multiline_secret=True,
    duplicate_client_ids=DuplicateClientIds.RETURNS_EXISTING,
    public_limit=RateLimit(10, 1.0, 10),
    private_limit=RateLimit(30, 1.0, 30),
    absence_spacing_seconds=5.0,  # no delay documented; List Orders shows an order at once
)
KRAKEN = Venue(
    "KRAKEN",
    AssetClass.CRYPTO,
    _USD_PAIRS,
    _ccxt,
    platform_aliases=(
        ("api_key", "KRAKEN_PLATFORM_API_KEY"),
        ("api_secret", "KRAKEN_PLATFORM_API_SECRET"),
    ),
    duplicate_client_ids=DuplicateClientIds.OPEN_ONLY,  # cl_ord_id: unique among open orders
    public_limit=RateLimit(1, 1.0, 1),
    # The starter tier's counter (the lowest tier: NIJA cannot see an account's tier).
    private_limit=RateLimit(0.33, 1.0, 15, unit="counter points"),
    public_metadata=True,
)
OKX = Venue(
    "OKX",
    AssetClass.CRYPTO,
    _USDT_PAIRS,
    _ccxt,
    credentials=CREDENTIAL_FIELDS,
    duplicate_client_ids=DuplicateClientIds.OPEN_ONLY,  # clOrdId may name several orders
    lookup_retention_seconds=2 * 3600.0,  # canceled orders without fills: 2 hours
    # OKX limits each endpoint on its own; one unit is one request to a 20-per-2-s endpoint
    # (candles 0.5, balance 2, an order 1/3: ccxt's okx cost table).
    public_limit=RateLimit(20, 2.0, 20, unit="request units"),
    private_limit=RateLimit(20, 2.0, 20, unit="request units"),
    public_metadata=True,
)
BINANCE = Venue(
    "BINANCE",
    AssetClass.CRYPTO,
    _USDT_PAIRS,
    _ccxt,
    duplicate_client_ids=DuplicateClientIds.OPEN_ONLY,  # newClientOrderId: among open orders
    # Every request, signed or not, spends the IP's weight; the key's limit counts orders.
    public_limit=RateLimit(6000, 60.0, 6000, unit="weight"),
    private_limit=RateLimit(50, 10.0, 50, unit="orders"),
    public_metadata=True,
)
ALPACA = Venue(
    "ALPACA",
    AssetClass.STOCKS,
    ("SPY", "AAPL", "MSFT"),
    _alpaca,
    min_order_usd=1.0,  # fractional shares from $1
    paper_switch=True,
    data_url_variable="ALPACA_DATA_URL",
    data_needs_key=True,  # the Market Data API answers 401 without a key
    duplicate_client_ids=DuplicateClientIds.REFUSED_FOREVER,  # 40010001, open or closed
    absence_spacing_seconds=2.0,  # the order is in the create answer and found at once
    # No per-IP limit: market data needs a key too, and counts against it (both APIs).
    private_limit=RateLimit(200, 60.0, 200),
)
# Simulated accounts (the demo, replays): the paper engine over a synthetic market.
PAPER = Venue(
    "PAPER",
    AssetClass.CRYPTO,
    _USD_PAIRS,
    _paper,
    credentials=(),
    duplicate_client_ids=DuplicateClientIds.REFUSED_FOREVER,  # the paper broker's default
    absence_spacing_seconds=1.0,  # in-process: an order exists the moment it is answered
)

# Every venue, in the order accounts are listed.
VENUES: Mapping[str, Venue] = MappingProxyType(
    {v.name: v for v in (COINBASE, KRAKEN, OKX, BINANCE, ALPACA, PAPER)}
)


def venue(name: str) -> Venue:
    """The entry of venue ``name`` (upper case); ``ConfigError`` naming the known ones if none."""
    found = VENUES.get(name)
    if found is None:
        raise ConfigError(f"unknown broker {name!r} (known: {', '.join(VENUES)})")
    return found


def env_venues() -> list[Venue]:
    """The venues whose accounts come from environment variables, in listing order."""
    return [v for v in VENUES.values() if v.from_env]


__all__ = [
    "ACCOUNT_SUFFIXES",
    "ALPACA",
    "BINANCE",
    "COINBASE",
    "CREDENTIAL_FIELDS",
    "KRAKEN",
    "OKX",
    "PAPER",
    "VENUES",
    "Adapter",
    "DuplicateClientIds",
    "Venue",
    "env_venues",
    "venue",
]
