"""The venue registry (bot.brokers.venues): one complete entry per venue, and the only
place the rest of the code learns about venues from."""

from __future__ import annotations

import ast
import dataclasses
import socket
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from bot.brokers import venues
from bot.brokers.base import Broker
from bot.brokers.factory import create_trading_broker, create_venue_broker, load_adapters
from bot.brokers.paper.broker import PaperBroker
from bot.brokers.venues import (
    ACCOUNT_SUFFIXES,
    CREDENTIAL_FIELDS,
    VENUES,
    DuplicateClientIds,
    Venue,
)
from bot.config.secrets import SECRET_NAME_ENDINGS, secret_values
from bot.config.settings import (
    cycle_seconds_for,
    load_accounts,
    load_settings,
    settings_variables,
)
from bot.config.values import parse_symbols
from bot.daemon.wiring import make_trader
from bot.engine.risk import GlobalPositionCap
from bot.errors import ConfigError
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, AssetClass, BrokerSpec, Credentials
from bot.store.writer import Store

ROOT = Path(__file__).resolve().parents[2]
ALL = ("COINBASE", "KRAKEN", "OKX", "BINANCE", "ALPACA", "PAPER")
# The adapter folders: the only places besides the registry that may name a venue.
ADAPTER_DIRS = tuple(ROOT / "bot" / "brokers" / d for d in ("ccxt", "coinbase_advanced", "alpaca_stocks", "paper"))  # fmt: skip


def spec_for(name: str, **overrides) -> BrokerSpec:
    creds = Credentials("FAKE-KEY-0001", "RkFLRS1TRUNSRVQ=", "FAKE-PASSPHRASE")
    fields = {"credentials": creds, "symbols": ("BTC/USD",), "timeout_seconds": 1.0}
    return BrokerSpec(AccountRef("platform", "platform", name), **(fields | overrides))


# ------------------------------------------------------------------ the entries


def test_there_is_one_entry_per_venue_in_listing_order():
    assert tuple(VENUES) == ALL
    assert all(VENUES[name].name == name for name in ALL)
    assert [v.name for v in venues.env_venues()] == list(ALL[:-1])  # PAPER has no variables


@pytest.mark.parametrize("name", ALL)
def test_each_entry_is_complete(name):
    entry = VENUES[name]
    assert entry.name.isupper() and entry.name.isidentifier()
    stocks = entry.asset_class is AssetClass.STOCKS
    joined = ",".join(entry.default_symbols)
    assert parse_symbols(entry.symbols_variable, joined, stocks=stocks) == entry.default_symbols
    assert entry.min_order_usd > 0
    assert callable(entry.adapter)
    if not entry.from_env:
        assert entry.variables() == [] and not entry.platform_aliases
        return
    assert entry.credentials[:2] == ("api_key", "api_secret")
    assert set(entry.credentials) <= set(CREDENTIAL_FIELDS)
    names = entry.variables()
    assert len(names) == len(set(names))
    assert all(n.startswith(f"{name}_") for n in names), names
    for fld, alias in entry.platform_aliases:
        assert fld in entry.credentials and alias in names
        assert alias != entry.platform_variables()[fld]
    if entry.data_url_variable:
        assert entry.data_url_variable in names
    assert {entry.symbols_variable, entry.base_url_variable, entry.cycle_seconds_variable} <= set(
        names
    )


def test_the_documented_venue_quirks():
    assert VENUES["OKX"].credentials == ("api_key", "api_secret", "passphrase")
    assert [v.name for v in VENUES.values() if "passphrase" in v.credentials] == ["OKX"]
    assert [v.name for v in VENUES.values() if v.multiline_secret] == ["COINBASE"]
    assert dict(VENUES["KRAKEN"].platform_aliases) == {
        "api_key": "KRAKEN_PLATFORM_API_KEY",
        "api_secret": "KRAKEN_PLATFORM_API_SECRET",
    }
    alpaca = VENUES["ALPACA"]
    assert alpaca.paper_switch and alpaca.data_url_variable == "ALPACA_DATA_URL"
    assert alpaca.asset_class is AssetClass.STOCKS and alpaca.min_order_usd == 1.0
    assert "ALPACA_PAPER" in alpaca.variables()
    assert alpaca.user_variable("Bob", "paper") == "ALPACA_USER_Bob_PAPER"
    others = [v for v in VENUES.values() if v is not alpaca]
    assert all(v.min_order_usd == 10.0 and v.asset_class is AssetClass.CRYPTO for v in others)


def test_each_venue_says_how_it_treats_a_repeated_client_id_and_proves_an_order_absent():
    # docs/VENUES.md "## Resends" gives the sources.
    rules = {name: VENUES[name].duplicate_client_ids for name in ALL}
    assert rules == {
        "COINBASE": DuplicateClientIds.RETURNS_EXISTING,
        "KRAKEN": DuplicateClientIds.OPEN_ONLY,
        "OKX": DuplicateClientIds.OPEN_ONLY,
        "BINANCE": DuplicateClientIds.OPEN_ONLY,
        "ALPACA": DuplicateClientIds.REFUSED_FOREVER,
        "PAPER": DuplicateClientIds.REFUSED_FOREVER,
    }
    for entry in VENUES.values():
        assert entry.absence_lookups >= 2 and entry.absence_spacing_seconds > 0
        if entry.duplicate_client_ids is DuplicateClientIds.OPEN_ONLY:
            # Only the proof stands between a late order and a second one: a longer wait.
            assert entry.absence_lookups * entry.absence_spacing_seconds >= 30.0
    assert VENUES["OKX"].lookup_retention_seconds == 2 * 3600.0
    assert [v.name for v in VENUES.values() if v.lookup_retention_seconds] == ["OKX"]
    with pytest.raises(ValueError):
        dataclasses.replace(VENUES["KRAKEN"], absence_lookups=0)


def test_every_credential_variable_is_redacted_as_a_secret():
    for entry in venues.env_venues():
        names = [*entry.platform_variables().values(), *dict(entry.platform_aliases).values()]
        names += [entry.user_variable("ALICE", f) for f in entry.credentials]
        credentials = [n for n in names if not n.endswith(ACCOUNT_SUFFIXES["paper"])]
        assert all(n.endswith(SECRET_NAME_ENDINGS) for n in credentials), credentials
        env = {n: f"FAKE-VALUE-{i}" for i, n in enumerate(credentials)}
        assert sorted(secret_values(env)) == sorted(env.values())


def test_an_unknown_venue_names_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        venues.venue("FTX")
    assert "'FTX'" in str(caught.value) and all(name in str(caught.value) for name in ALL)
    with pytest.raises(ConfigError, match=r"^user/bob/FTX: unknown broker 'FTX'"):
        create_venue_broker(BrokerSpec(AccountRef("user", "bob", "FTX")))


# ------------------------------------------------------------------ the adapters


@pytest.mark.parametrize("name", ALL)
def test_each_adapter_builds_offline_and_matches_its_entry(name, monkeypatch):
    def no_network(*_args, **_kwargs):
        raise AssertionError("building an adapter must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    # Each venue's own symbols: Alpaca refuses a crypto pair such as BTC/USD.
    broker = create_venue_broker(spec_for(name, symbols=VENUES[name].default_symbols))
    try:
        assert isinstance(broker, Broker)
        assert broker.name == name and broker.account.broker == name
        assert broker.asset_class is VENUES[name].asset_class
    finally:
        broker.close()


def test_paper_venue_trades_simulated_fills_with_the_configured_cash():
    spec = spec_for("PAPER", symbols=())
    venue_broker = create_venue_broker(spec)
    assert venue_broker.symbols() == list(VENUES["PAPER"].default_symbols)
    trading = create_trading_broker(spec, live=False, paper_balance_usd=2500.0, market=venue_broker)
    assert isinstance(trading, PaperBroker)
    assert trading.fetch_balance().usd_cash == 2500.0


def test_importing_the_registry_the_factory_and_config_loads_no_sdk():
    probe = (
        "import sys\n"
        "import bot.brokers.venues, bot.brokers.factory, bot.config.settings, bot.config.env\n"
        "sdks = ('ccxt', 'alpaca', 'coinbase')\n"
        "print(sorted(m for m in sdks if m in sys.modules))\n"
        "from bot.brokers.factory import load_adapters\n"
        "from bot.model import AccountRef, BrokerSpec\n"
        "load_adapters([BrokerSpec(AccountRef('platform', 'platform', 'KRAKEN'))])\n"
        "print(sorted(m for m in sdks if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "['ccxt']"]


def test_load_adapters_refuses_an_unknown_venue():
    load_adapters([])
    with pytest.raises(ConfigError, match="FTX"):
        load_adapters([BrokerSpec(AccountRef("platform", "platform", "FTX"))])


# ------------------------------------------------------------------ discovery


def _paper_adapter():
    return lambda spec, *, clock: PaperBroker(
        spec, VENUES["PAPER"].build(spec, clock=clock), clock=clock
    )


ACME = Venue(
    "ACME",
    AssetClass.CRYPTO,
    ("BTC/EUR", "ETH/EUR"),
    _paper_adapter,
    min_order_usd=2.5,
    credentials=CREDENTIAL_FIELDS,
    platform_aliases=(("api_key", "ACME_MAIN_API_KEY"), ("api_secret", "ACME_MAIN_API_SECRET")),
    data_url_variable="ACME_DATA_URL",
)
ACME_ENV = {
    "ACME_MAIN_API_KEY": "FAKE-ACME-KEY-P",
    "ACME_MAIN_API_SECRET": "FAKE-ACME-SECRET-P",
    "ACME_PASSPHRASE": "FAKE-ACME-PASS-P",
    "ACME_USER_BOB_API_KEY": "FAKE-ACME-KEY-BOB",
    "ACME_USER_BOB_API_SECRET": "FAKE-ACME-SECRET-BOB",
    "ACME_USER_BOB_PASSPHRASE": "FAKE-ACME-PASS-BOB",
    "ACME_USER_CAROL_API_KEY": "FAKE-ACME-KEY-CAROL",
    "ACME_USER_CAROL_API_SECRET": "FAKE-ACME-SECRET-CAROL",
    "ACME_SYMBOLS": "btc/eur",
    "ACME_BASE_URL": "http://127.0.0.1:9999/",
    "ACME_DATA_URL": "https://data.acme.example",
    "ACME_CYCLE_SECONDS": "42",
    "NIJA_PRIMARY_BROKER": "acme",
    "KRAKEN_API_KEY": "FAKE-KRAKEN-KEY",
    "KRAKEN_API_SECRET": "FAKE-KRAKEN-SECRET",
    "KRAKEN_CYCLE_SECONDS": "not a number",
}


@pytest.fixture
def registry_with_acme_instead_of_kraken(monkeypatch):
    entries = {name: v for name, v in VENUES.items() if name != "KRAKEN"} | {"ACME": ACME}
    monkeypatch.setattr(venues, "VENUES", MappingProxyType(entries))


def test_a_venue_comes_from_its_registry_entry_alone(
    registry_with_acme_instead_of_kraken, tmp_path
):
    """An entry added to the registry is configured, discovered and built everywhere; a venue
    taken out of it is read nowhere (its variables, even a bad one, are ignored)."""
    settings = load_settings(ACME_ENV)
    assert cycle_seconds_for(settings, "ACME") == 42
    assert settings.primary_broker == "ACME"
    assert "ACME_CYCLE_SECONDS" in settings_variables()
    assert "KRAKEN_CYCLE_SECONDS" not in settings_variables()

    result = load_accounts(ACME_ENV, settings)
    assert [s.account.key for s in result.specs] == ["platform/platform/ACME", "user/bob/ACME"]
    (error,) = result.errors
    assert error.account == "user/carol/ACME"
    assert error.variables == ("ACME_USER_CAROL_PASSPHRASE",)
    platform, bob = result.specs
    assert platform.credentials.api_key == "FAKE-ACME-KEY-P"  # the alias spelling
    assert bob.credentials.passphrase == "FAKE-ACME-PASS-BOB"
    assert platform.symbols == ("BTC/EUR",)
    assert (platform.base_url, platform.data_url) == (
        "http://127.0.0.1:9999",
        "https://data.acme.example",
    )

    broker = create_venue_broker(bob)
    assert isinstance(broker, PaperBroker) and broker.name == "ACME"
    store = Store(tmp_path / "nija-paper.db", bob.account.key)
    try:
        trader = make_trader(
            bob, settings, broker, store, AccountIsolationManager(), GlobalPositionCap()
        )
        assert trader.risk.params.min_order_usd == 2.5
    finally:
        store.close()


def test_a_venue_without_defaults_in_the_registry_gets_them_from_nowhere_else(
    registry_with_acme_instead_of_kraken,
):
    result = load_accounts(
        {k: v for k, v in ACME_ENV.items() if k != "ACME_SYMBOLS"}, load_settings({})
    )
    assert result.specs[0].symbols == ACME.default_symbols


# ------------------------------------------------------------------ no venue facts elsewhere


def venue_literals(source: str, names: tuple[str, ...]) -> list[str]:
    """String constants (docstrings aside) that are a venue's name or one of its variables."""
    tree = ast.parse(source)
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if id(node) not in docstrings and any(
                text == n or text.startswith(f"{n}_") for n in names
            ):
                found.append(text)
    return found


def test_the_venue_check_would_catch_a_scattered_fact():
    source = '"""KRAKEN in a docstring is prose."""\nMIN = {"ALPACA": 1.0}\nX = "OKX_PASSPHRASE"\n'
    assert sorted(venue_literals(source, ALL)) == ["ALPACA", "OKX_PASSPHRASE"]


def test_no_venue_is_named_outside_the_registry_and_its_adapter_folder():
    allowed = (ROOT / "bot" / "brokers" / "venues.py", *ADAPTER_DIRS)
    scattered = {}
    for path in [ROOT / "bot.py", *sorted((ROOT / "bot").rglob("*.py"))]:
        if any(path == a or a in path.parents for a in allowed):
            continue
        if found := venue_literals(path.read_text(), ALL):
            scattered[str(path.relative_to(ROOT))] = found
    assert not scattered, f"move these venue facts into bot/brokers/venues.py: {scattered}"
