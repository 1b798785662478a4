"""bot.daemon.funded: every account asked at once, each answer used as it arrives, none waited on;
one client per account across re-checks, the venue's markets loaded once, one deadline per check."""

from __future__ import annotations

import dataclasses
import random
import threading
import time

import pytest

from bot.brokers.budget import Budgets, RequestBudget
from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.config.settings import Settings, load_settings
from bot.daemon.clients import VenueClients
from bot.daemon.funded import DEADLINE_GRACE_SECONDS, FundedChecker
from bot.daemon.wiring import build_hub, default_factories
from bot.errors import BrokerConfigError
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec, Credentials
from bot.venue.health import HealthConfig, VenueHealth, VenueState
from nija_testkit.clock import FakeClock
from nija_testkit.emulator.server import Fault


def spec(ident: str) -> BrokerSpec:
    return BrokerSpec(AccountRef("user", ident, "PAPER"), symbols=("BTC/USD",))


class Slow(PaperBroker):
    """A paper account whose balance call waits for ``release`` (the "slow" one only)."""

    release = threading.Event()

    def fetch_balance(self):
        if self.account.account_id == "slow":
            self.release.wait(30)
        return super().fetch_balance()


def test_each_answer_arrives_alone_and_a_bad_client_fails_only_its_account():
    Slow.release = threading.Event()

    def make(s: BrokerSpec):
        if s.account.account_id == "badkey":
            raise BrokerConfigError(f"{s.account.key}: the API secret is not valid base64")
        usd = 5.0 if s.account.account_id == "poor" else 1_000.0
        return Slow(s, SyntheticMarket(("BTC/USD",)), starting_usd=usd)

    isolation = AccountIsolationManager()
    checker = FundedChecker(make, isolation, min_balance_usd=10.0, timeout_seconds=0.5)
    specs = [spec(i) for i in ("slow", "rich", "poor", "badkey")]
    started, seen = time.monotonic(), {}
    try:
        for result in checker.check(specs):
            seen[result.account_key] = (result, time.monotonic() - started)
    finally:
        Slow.release.set()
    rich, rich_at = seen["user/rich/PAPER"]
    assert rich.funded and rich.balance_usd == 1_000.0 and rich_at < 0.5
    assert not seen["user/poor/PAPER"][0].funded and seen["user/poor/PAPER"][0].error is None
    bad = seen["user/badkey/PAPER"][0]
    assert not bad.funded and bad.failure_type == "authentication_error"
    assert isolation.get_account_status("user", "badkey", "PAPER")[0].value == "failing"
    slow, slow_at = seen["user/slow/PAPER"]
    assert not slow.funded and slow.timed_out and "TimeoutError" in slow.error
    assert slow_at < 0.5 + DEADLINE_GRACE_SECONDS + 0.7


def test_a_check_that_only_timed_out_is_a_network_failure_and_is_not_asked_again_while_hung():
    Slow.release = threading.Event()
    built: list[str] = []

    def make(s: BrokerSpec):
        built.append(s.account.account_id)
        return Slow(s, SyntheticMarket(("BTC/USD",)), starting_usd=1_000.0)

    clock = FakeClock()
    isolation = AccountIsolationManager(clock=clock)
    checker = FundedChecker(make, isolation, min_balance_usd=10.0, timeout_seconds=1.0, clock=clock)
    answers: list = []
    collector = threading.Thread(target=lambda: answers.extend(checker.check([spec("slow")])))
    collector.start()
    try:
        wait_until(lambda: built == ["slow"])
        clock.advance(1.0 + DEADLINE_GRACE_SECONDS)  # past the check's deadline
        collector.join(5)
        (late,) = answers
        assert late.timed_out and late.failure_type == "network_error"
        # Not "healthy": the account failed to answer (status.json shows this health).
        status, metrics = isolation.get_account_status("user", "slow", "PAPER")
        assert status.value == "degraded"
        assert metrics["failure_breakdown"] == {"network_error": 1}
        assert checker.running("user/slow/PAPER")
        # A re-check while that call still hangs starts nothing for it.
        assert list(checker.check([spec("slow"), spec("rich")])) != []
        assert built == ["slow", "rich"]
    finally:
        Slow.release.set()
    wait_until(lambda: not checker.running("user/slow/PAPER"))
    (again,) = list(checker.check([spec("slow")]))  # finished: checked again
    assert again.funded and built == ["slow", "rich", "slow"]


def test_a_throttle_wait_moves_the_checks_deadline_back():
    """A request that waits on its budget far longer than the whole deadline still answers."""
    clock = FakeClock()
    release = threading.Event()
    budgets = Budgets(private=RequestBudget(0.1, 1.0, clock=clock, wait=clock.advance))
    budgets.spend(private=1.0)  # the key's budget is spent: the next request waits 10 s

    class Throttled(PaperBroker):
        def fetch_balance(self):
            budgets.spend(private=1.0)  # 10 s on the clock: past timeout + grace
            release.wait(10)
            return super().fetch_balance()

    def make(s: BrokerSpec):
        return Throttled(s, SyntheticMarket(("BTC/USD",)), starting_usd=1_000.0)

    checker = FundedChecker(
        make,
        AccountIsolationManager(clock=clock),
        min_balance_usd=10.0,
        timeout_seconds=1.0,
        waited=lambda s: budgets.waited_seconds,
        clock=clock,
    )
    threading.Timer(1.2, release.set).start()  # the collector looks at the deadline meanwhile
    (result,) = list(checker.check([spec("a")]))
    assert result.funded and not result.timed_out and budgets.waited_seconds == pytest.approx(10)


def test_a_recheck_reuses_the_accounts_client_and_the_venues_markets_load_once(venue_handle):
    kraken = venue_handle("KRAKEN")
    bob = Credentials("FAKE-KRAKEN-KEY-BOB-0001", "RkFLRUtSQUtFTlNFQ1JFVEJPQg==")
    kraken.venue.add_account(bob.api_key, bob.api_secret, {"USD": 3.0})
    platform = kraken.spec(rate_limit=True)
    user = BrokerSpec(
        AccountRef("user", "bob", "KRAKEN"),
        bob,
        symbols=platform.symbols,
        base_url=platform.base_url,
        timeout_seconds=2.0,
    )
    clients = VenueClients()
    checker = FundedChecker(
        clients.client,
        AccountIsolationManager(),
        min_balance_usd=10.0,
        timeout_seconds=2.0,
        waited=clients.waited_seconds,
    )
    try:
        first = {r.account_key: r for r in checker.check([platform, user])}
        client = clients.client(platform)
        again = {r.account_key: r for r in checker.check([platform, user])}
        assert first["platform/platform/KRAKEN"].funded and again["platform/platform/KRAKEN"].funded
        assert not again["user/bob/KRAKEN"].funded and again["user/bob/KRAKEN"].error is None
        assert clients.client(platform) is client and clients.client(user) is not client
        # Two accounts, two checks each: one markets load (the keyless client's), four balances.
        assert len(kraken.server.requests_to("markets")) == 1
        assert len(kraken.server.requests_to("assets")) == 1
        assert len(kraken.server.requests_to("balance")) == 4
        assert all("API-Key" not in r.headers for r in kraken.server.requests_to("markets"))
        # Each account's requests spent its own private budget, and the one public budget.
        public = clients.public_budget("KRAKEN")
        assert public is not None and public.acquired == 2
        assert clients.budgets(platform).private.acquired == 2  # type: ignore[union-attr]
        assert clients.budgets(user).private.acquired == 2  # type: ignore[union-attr]
    finally:
        clients.close()


@pytest.mark.parametrize("name", ["OKX", "BINANCE"])
def test_every_ccxt_venue_loads_its_markets_once_for_all_checks(venue_handle, name):
    handle = venue_handle(name)
    spec = handle.spec(rate_limit=True)
    clients = VenueClients()
    checker = FundedChecker(
        clients.client, AccountIsolationManager(), min_balance_usd=10.0, timeout_seconds=3.0
    )
    try:
        for _ in range(3):
            (result,) = checker.check([spec])
            assert result.funded, result.error
        assert len(handle.server.requests_to("markets")) == 1
        assert len(handle.server.requests_to("balance")) == 3
    finally:
        clients.close()


def test_the_checked_client_is_the_one_the_trading_thread_trades_through(venue_handle):
    kraken = venue_handle("KRAKEN")
    spec = kraken.spec()
    market = object()  # the venue's shared market data (a VenueMarket in the daemon)
    live = default_factories(load_settings({"NIJA_MODE": "live"}))
    checked = live.venue(spec)
    assert live.trading(spec, market) is checked  # live: the checked client itself
    assert live.venue(spec) is checked
    paper = default_factories(Settings())
    trading = paper.trading(spec, market)
    assert isinstance(trading, PaperBroker) and trading._market is market  # the shared data


def test_coins_held_are_valued_at_the_venues_shared_price_and_its_failure_is_no_accounts(
    venue_server, tmp_path
):
    server = venue_server("KRAKEN")
    specs = []
    for i in range(4):  # each holds only BTC: funded by what BTC is worth
        creds = Credentials(f"FAKE-KRAKEN-KEY-HOLDS-{i}", "RkFLRUtSQUtFTlNFQ1JFVEJPQg==")
        server.venue.add_account(creds.api_key, creds.api_secret, {"BTC": 0.01})
        account = AccountRef("user", f"h{i}", "KRAKEN")
        specs.append(
            BrokerSpec(account, creds, ("BTC/USD",), base_url=server.url, rate_limit=False)
        )
    clock = FakeClock()
    settings = load_settings({"NIJA_DATA_DIR": str(tmp_path), "NIJA_CALL_TIMEOUT_SECONDS": "3"})
    factories = default_factories(settings, clock)
    hub = build_hub(settings, specs, factories, clock)  # the daemon's wiring
    isolation = AccountIsolationManager(clock=clock)
    checker = FundedChecker(
        factories.venue, isolation, min_balance_usd=10.0, timeout_seconds=3.0, clock=clock
    )
    try:
        for result in checker.check(specs):
            assert result.funded and result.balance_usd == pytest.approx(600.0), result
        server.inject("ticker", Fault("status", status=502))
        clock.advance(31)  # the shared price is too old to value with: asked again, and fails
        for result in checker.check(specs):
            assert not result.funded and result.balance_usd is None  # unknown, never $0
            assert "VenueDataError" in (result.error or ""), result
    finally:
        hub.close()
    (ok, failed) = server.requests_to("ticker")  # one per valuation for all four accounts
    assert all("api-key" not in r.headers for r in (ok, failed))  # the venue's keyless client
    assert len(server.requests_to("balance")) == 8  # each account's own, twice
    for key, status in isolation.get_all_account_statuses().items():
        assert status["total_failures"] == 0 and status["status"] == "healthy", key


def _check_past_a_shared_wait(
    clients: VenueClients, clock: FakeClock, release: threading.Event, spec: BrokerSpec
):
    """One funds check (1 s timeout) whose shared wait ``release`` ends 1.2 s in; the deadline
    collector looks at the check meanwhile."""
    checker = FundedChecker(
        clients.client,
        AccountIsolationManager(clock=clock),
        min_balance_usd=10.0,
        timeout_seconds=1.0,
        waited=clients.waited_seconds,
        clock=clock,
    )
    threading.Timer(1.2, release.set).start()
    try:
        (result,) = list(checker.check([spec]))
    finally:
        clients.close()
    return result


def test_a_wait_on_the_venues_price_of_a_holding_moves_the_checks_deadline_back(venue_server):
    """The venue's price may wait on its public budget: the venue's work, not the account's."""
    server = venue_server("KRAKEN")
    creds = Credentials("FAKE-KRAKEN-KEY-SLOWPRICE", "RkFLRUtSQUtFTlNFQ1JFVEJPQg==")
    server.venue.add_account(creds.api_key, creds.api_secret, {"BTC": 0.01})
    holder = BrokerSpec(
        AccountRef("user", "holder", "KRAKEN"), creds, ("BTC/USD",), base_url=server.url,
        rate_limit=False,
    )  # fmt: skip
    clock = FakeClock()
    release = threading.Event()

    class SlowPrices:
        def valuation_price(self, symbol: str) -> float:
            clock.advance(10)  # 10 s on the venue's budget: past timeout + grace
            release.wait(10)
            return 60_000.0

    clients = VenueClients(clock=clock)
    clients.shared_prices = lambda name: SlowPrices()
    result = _check_past_a_shared_wait(clients, clock, release, holder)
    assert result.funded and not result.timed_out and result.balance_usd == pytest.approx(600.0)
    assert clients.waited_seconds(holder) == pytest.approx(10.0)
    assert server.requests_to("ticker") == []  # valued at the venue's price only


def test_a_wait_on_the_venues_metadata_load_moves_the_checks_deadline_while_it_lasts(
    venue_handle,
):
    """Not only once the load is over: a check declared hung meanwhile would never start."""
    spec = venue_handle("KRAKEN").spec()
    clock = FakeClock()
    release = threading.Event()

    def slow_load(name: str) -> None:
        clock.advance(10)  # the venue's one load, 10 s on its budget: past timeout + grace
        release.wait(10)
        return None  # it failed: the account loads its own

    clients = VenueClients(clock=clock)
    clients.shared_metadata = slow_load
    result = _check_past_a_shared_wait(clients, clock, release, spec)
    assert result.funded and not result.timed_out
    assert clients.waited_seconds(spec) == pytest.approx(10.0)


def test_funds_held_in_okx_funding_are_not_funded_and_the_status_says_why(venue_server):
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
    checker = FundedChecker(
        CcxtBroker, AccountIsolationManager(), min_balance_usd=10.0, timeout_seconds=3.0
    )
    (result,) = checker.check([okx])
    assert not result.funded and result.balance_usd == 3.0  # funding is not equity
    assert result.failure_type is None
    (note,) = result.notes
    assert "900 USDT" in note and "transfer to trading to trade" in note
    assert result.error == note  # what status.json's last_error shows for this account


def wait_until(predicate, timeout: float = 5.0) -> None:
    """Bounded wait for another thread's progress (real time, 10 ms steps)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


# -- the venue's gate: a venue outage is the venue's, never the accounts' -------------------

BOB = Credentials("FAKE-KRAKEN-KEY-BOB-0001", "RkFLRUtSQUtFTlNFQ1JFVEJPQg==")


def kraken_pair(kraken) -> list[BrokerSpec]:
    """The registry's funded Kraken account and a funded user account on the same emulator."""
    kraken.venue.add_account(BOB.api_key, BOB.api_secret, {"USD": 5_000.0})
    platform = kraken.spec()
    user = dataclasses.replace(
        platform, account=AccountRef("user", "bob", "KRAKEN"), credentials=BOB
    )
    return [platform, user]


def venue_checker(clock: FakeClock, health: VenueHealth, isolation: AccountIsolationManager):
    return FundedChecker(
        CcxtBroker,
        isolation,
        min_balance_usd=10.0,
        timeout_seconds=2.0,
        venue_health=lambda s: health,
        clock=clock,
    )


def health_of(isolation: AccountIsolationManager, spec: BrokerSpec) -> dict:
    a = spec.account
    return isolation.get_account_status(a.account_type, a.account_id, a.broker)[1]


def test_an_outage_puts_the_venue_down_parks_the_checks_and_no_breaker_opens(venue_handle):
    kraken = venue_handle("KRAKEN")
    specs = kraken_pair(kraken)
    clock = FakeClock()
    isolation = AccountIsolationManager(clock=clock)
    health = VenueHealth("KRAKEN", clock, random.Random(3), HealthConfig(resume_window_seconds=10))
    checker = venue_checker(clock, health, isolation)
    kraken.server.inject("*", Fault("status", 503))
    failed = {r.account_key: r for r in checker.check(specs)}
    # Both checks' 503s were told to the venue: half its accounts (and two) failed. Down.
    assert health.state is VenueState.DOWN
    assert health.reason.startswith("2 of 2 accounts failed within 60s")
    for result in failed.values():
        assert not result.funded and not result.parked and result.failure_type == "network_error"
        assert result.venue_retry_in_seconds is not None and 0 < result.venue_retry_in_seconds <= 36
    # The one told before the venue was down counted; the other was the venue's (excused).
    statuses = sorted(health_of(isolation, s)["status"] for s in specs)
    assert statuses == ["degraded", "healthy"]

    sent = len(kraken.server.requests)
    for _ in range(12):  # the outage goes on: every re-check waits, nothing is asked
        clock.advance(30)
        for result in checker.check(specs):
            assert result.parked and not result.funded and result.failure_type is None
            assert result.error.startswith("funds check waits: venue KRAKEN down: 2 of 2")
            assert 0 < result.venue_retry_in_seconds <= 36
    assert len(kraken.server.requests) == sent
    for s in specs:  # the failure counted before the venue was declared down is forgiven
        m = health_of(isolation, s)
        assert m["status"] == "healthy" and m["circuit_state"] == "closed"
        assert m["consecutive_failures"] == 0 and m["quarantine_count"] == 0
        assert m["failure_breakdown"] == {"network_error": 1}  # recorded, visible

    kraken.server.clear_faults()
    health.record_probe(True, "SystemStatus online")
    back = {r.account_key: r for r in checker.check(specs)}
    (funded,) = [r for r in back.values() if r.funded]  # one resumes at once...
    assert funded.error is None and funded.venue_retry_in_seconds is None
    (waiting,) = [r for r in back.values() if not r.funded]  # ...the other 5 s later
    assert waiting.parked and waiting.venue_retry_in_seconds == pytest.approx(5.0)
    assert waiting.error == "funds check waits: venue KRAKEN back: staggered resume in 5s"
    clock.advance(5)
    (late,) = checker.check([s for s in specs if s.account.key == waiting.account_key])
    assert late.funded and late.venue_retry_in_seconds is None and late.error is None


def test_bad_keys_stay_with_their_accounts_and_never_put_the_venue_down(venue_handle):
    kraken = venue_handle("KRAKEN")
    specs = kraken_pair(kraken)
    clock = FakeClock()
    isolation = AccountIsolationManager(clock=clock)
    health = VenueHealth("KRAKEN", clock, random.Random(3))
    checker = venue_checker(clock, health, isolation)
    kraken.server.inject("balance", Fault("status", 401))  # every key refused
    for result in checker.check(specs):
        assert not result.funded and result.failure_type == "authentication_error"
        assert result.venue_retry_in_seconds is None  # the periodic re-check, as ever
    assert health.state is VenueState.UP
    assert [health_of(isolation, s)["status"] for s in specs] == ["failing", "failing"]


def test_two_failed_checks_among_many_answered_ones_leave_the_venue_up(venue_handle):
    kraken = venue_handle("KRAKEN")
    platform = kraken.spec()
    specs = [platform]
    for i in range(7):  # seven users beside the platform account, six unfunded
        creds = Credentials(f"FAKE-KRAKEN-KEY-U{i:03d}-0001", "RkFLRUtSQUtFTlNFQ1JFVEJPQg==")
        kraken.venue.add_account(creds.api_key, creds.api_secret, {"USD": 5.0 if i else 500.0})
        ref = AccountRef("user", f"u{i}", "KRAKEN")
        specs.append(dataclasses.replace(platform, account=ref, credentials=creds))
    clock = FakeClock()
    isolation = AccountIsolationManager(clock=clock)
    health = VenueHealth("KRAKEN", clock, random.Random(3))
    checker = venue_checker(clock, health, isolation)
    assert all(r.failure_type is None for r in checker.check(specs))  # eight answers
    for spec in specs[-2:]:  # two unfunded users' re-checks meet a transient 503
        kraken.server.inject("balance", Fault("status", 503, api_key=spec.credentials.api_key))
    clock.advance(300)
    failed = [r for r in checker.check(specs) if r.failure_type is not None]
    assert [r.failure_type for r in failed] == ["network_error"] * 2
    # Two of eight accounts: not half. The funded accounts keep trading.
    assert health.state is VenueState.UP, health.reason


class Hanging(PaperBroker):
    """A paper account whose balance call waits for ``release`` (ids starting "slow")."""

    release = threading.Event()

    def fetch_balance(self):
        if self.account.account_id.startswith("slow"):
            self.release.wait(30)
        return super().fetch_balance()


def test_a_timed_out_check_is_told_to_the_venue_and_still_shows_failing_to_answer():
    Hanging.release = threading.Event()
    clock = FakeClock()
    isolation = AccountIsolationManager(clock=clock)
    health = VenueHealth("PAPER", clock, random.Random(3))
    built: list[str] = []

    def make(s: BrokerSpec):
        built.append(s.account.account_id)  # its check has started: its deadline runs
        return Hanging(s, SyntheticMarket(("BTC/USD",)), starting_usd=1_000.0)

    checker = FundedChecker(
        make,
        isolation,
        min_balance_usd=10.0,
        timeout_seconds=1.0,
        venue_health=lambda s: health,
        clock=clock,
    )

    def timed_out(ident: str):
        answers: list = []
        collector = threading.Thread(target=lambda: answers.extend(checker.check([spec(ident)])))
        collector.start()
        wait_until(lambda: ident in built)
        clock.advance(1.0 + DEADLINE_GRACE_SECONDS)
        collector.join(5)
        (answer,) = answers
        return answer

    try:
        first = timed_out("slow1")
        # One account alone: the venue stays up, and the account shows failing to answer.
        assert first.timed_out and health.state is VenueState.UP
        assert isolation.get_account_status("user", "slow1", "PAPER")[0].value == "degraded"
        assert first.venue_retry_in_seconds == health.config.probe_interval_seconds
        second = timed_out("slow2")  # a second account's deadline: the venue's outage
        assert second.timed_out and health.state is VenueState.DOWN
        assert "TimeoutError" in health.reason
        # Told to the venue before its breaker: excused, never counted.
        assert isolation.get_account_status("user", "slow2", "PAPER")[0].value == "healthy"
        assert isolation.get_account_status("user", "slow2", "PAPER")[1]["total_failures"] == 1
    finally:
        Hanging.release.set()
