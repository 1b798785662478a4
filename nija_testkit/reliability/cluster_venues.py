"""The cluster chaos run's venues: emulators with many live accounts, and their candles.

Each venue (a ``CRASH_VENUES`` entry: Alpaca, whose client ids are refused for ever, or
Kraken, whose client ids are unique only among open orders) gets its emulator with the
platform account and user accounts up to its part of the run's accounts, each with
$10,000, and a ``CandleDriver`` on the real clock's candle grid (orders at every close).
Afterwards it gives what the venue received (``SentOrder``: account, client id, arrival
time) and the crash-restart comparison of its orders and holdings with the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.backend import Database
from nija_testkit.emulator.core import Ledger
from nija_testkit.emulator.venues import VenueHandle, start_venue
from nija_testkit.harness import account_env
from nija_testkit.reliability.crash_compare import compare
from nija_testkit.reliability.crash_market import CandleDriver
from nija_testkit.reliability.crash_restart import CRASH_VENUES, CrashVenue, expect_dead_clients
from nija_testkit.reliability.lease_audit import SentOrder


@dataclass
class ChaosVenue:
    """One emulated venue and its accounts."""

    spec: CrashVenue
    handle: VenueHandle
    driver: CandleDriver
    ledgers: dict[str, Ledger]  # account key → its ledger
    keys: dict[str, str]  # API key → account key
    env: dict[str, str]  # the daemon's variables for this venue and its accounts

    @property
    def broker(self) -> str:
        return self.spec.broker

    def api_key(self, account: str) -> str:
        return next(k for k, a in self.keys.items() if a == account)

    def sent(self) -> list[SentOrder]:
        """Every create-order request the venue received."""
        return [
            SentOrder(
                self.keys.get(r.headers.get(self.spec.key_header, ""), "?"),
                self.spec.client_id(r.body) or "",
                r.wall,
            )
            for r in self.handle.server.requests_to("create_order")
        ]

    def compare(self, db: Database) -> dict[str, set[str]]:
        """The crash-restart comparison of this venue's orders and holdings with ``db``."""
        return compare(self.ledgers, db, self.handle.venue.market, self.spec.tickers)

    def orders(self) -> tuple[int, int]:
        """Orders at the venue, and how many of them filled."""
        venue = [o for ledger in self.ledgers.values() for o in ledger.all_orders()]
        return len(venue), sum(o.status == "filled" for o in venue)

    def stop(self) -> None:
        self.driver.stop()
        self.handle.stop()


def start_venue_accounts(broker: str, accounts: int, timeframe_s: int) -> ChaosVenue:
    """``broker``'s emulator with ``accounts`` funded accounts (the platform one and users),
    its candle driver started (quiet until ``driver.activate()``)."""
    spec = CRASH_VENUES[broker]
    handle = start_venue(broker, timeout_seconds=5.0)
    expect_dead_clients(handle)
    venue = handle.venue
    platform = f"platform/platform/{broker}"
    ledgers = {platform: handle.ledger}
    keys = {handle.credentials.api_key: platform}
    env = {f"{broker}_BASE_URL": handle.server.url, f"{broker}_SYMBOLS": spec.symbols}
    if spec.data_url:
        env[f"{broker}_DATA_URL"] = handle.server.url
    env |= account_env(broker, None, handle.credentials)
    for i in range(1, accounts):
        user = f"{broker[0].lower()}{i:02d}"
        creds = spec.user_credentials(i)
        key = f"user/{user}/{broker}"
        ledgers[key] = venue.add_account(creds.api_key, creds.api_secret, {"USD": 10_000.0})
        keys[creds.api_key] = key
        env |= account_env(broker, user, creds)
    driver = CandleDriver(venue.market, spec.tickers, timeframe_s)
    driver.start()
    return ChaosVenue(spec, handle, driver, ledgers, keys, env)
