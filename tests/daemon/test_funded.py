"""bot.daemon.funded: every account asked at once, each answer used as it arrives, none waited on."""

from __future__ import annotations

import threading
import time

from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.daemon.funded import DEADLINE_GRACE_SECONDS, check_funded
from bot.errors import BrokerConfigError
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec


def spec(ident: str) -> BrokerSpec:
    return BrokerSpec(AccountRef("user", ident, "PAPER"), symbols=("BTC/USD",))


def test_each_answer_arrives_alone_and_a_bad_client_fails_only_its_account():
    release, closed = threading.Event(), []

    class Paper(PaperBroker):
        def fetch_balance(self):
            if self.account.account_id == "slow":
                release.wait(30)
            return super().fetch_balance()

        def close(self):
            closed.append(self.account.account_id)

    def make(s: BrokerSpec):
        if s.account.account_id == "badkey":
            raise BrokerConfigError(f"{s.account.key}: the API secret is not valid base64")
        usd = 5.0 if s.account.account_id == "poor" else 1_000.0
        return Paper(s, SyntheticMarket(("BTC/USD",)), starting_usd=usd)

    isolation = AccountIsolationManager()
    specs = [spec(i) for i in ("slow", "rich", "poor", "badkey")]
    started, seen = time.monotonic(), {}
    try:
        for result in check_funded(
            specs, make, isolation, min_balance_usd=10.0, timeout_seconds=0.5
        ):
            seen[result.account_key] = (result, time.monotonic() - started)
    finally:
        release.set()
    rich, rich_at = seen["user/rich/PAPER"]
    assert rich.funded and rich.balance_usd == 1_000.0 and rich_at < 0.5
    assert not seen["user/poor/PAPER"][0].funded and seen["user/poor/PAPER"][0].error is None
    bad = seen["user/badkey/PAPER"][0]
    assert not bad.funded and bad.failure_type == "authentication_error"
    assert isolation.get_account_status("user", "badkey", "PAPER")[0].value == "failing"
    slow, slow_at = seen["user/slow/PAPER"]
    assert not slow.funded and "TimeoutError" in slow.error
    assert slow_at < 0.5 + DEADLINE_GRACE_SECONDS + 0.5
    assert {"rich", "poor"} <= set(closed)  # clients built for the check are released


def test_funds_held_in_okx_funding_are_not_funded_and_the_status_says_why(venue_server):
    from bot.brokers.ccxt.broker import CcxtBroker
    from bot.model import Credentials

    server = venue_server("OKX")
    key, secret, phrase = "FAKE-OKX-FUNDED-KEY", "FAKE-OKX-FUNDED-SECRET", "FAKE-OKX-FUNDED-PASS"
    server.venue.add_account(key, secret, {"USDT": 3.0}, passphrase=phrase, funding={"USDT": 900.0})
    okx = BrokerSpec(
        AccountRef("user", "saver", "OKX"),
        Credentials(key, secret, phrase),
        symbols=("BTC/USDT",),
        base_url=server.url,
        rate_limit=False,
    )
    (result,) = check_funded(
        [okx], CcxtBroker, AccountIsolationManager(), min_balance_usd=10.0, timeout_seconds=3.0
    )
    assert not result.funded and result.balance_usd == 3.0  # funding is not equity
    assert result.failure_type is None
    (note,) = result.notes
    assert "900 USDT" in note and "transfer to trading to trade" in note
    assert result.error == note  # what status.json's last_error shows for this account
