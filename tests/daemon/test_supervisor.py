"""The daemon's core in-process: paper accounts on the synthetic market, a fake watchdog clock."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from functools import partial

import pytest
from structlog.testing import capture_logs

from bot.brokers.paper.broker import MarketData, PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.clock import iso_text
from bot.daemon.wiring import BrokerFactories, make_trader
from bot.daemon.worker import AccountWorker, ThreadState
from bot.model import BrokerSpec
from bot.store.writer import StoreError
from nija_testkit.clock import FakeClock
from tests.daemon.inprocess import SYMBOLS, Daemon, paper, spec, wait_for


def test_each_funded_account_gets_its_own_named_thread(tmp_path):
    specs = [spec("a"), spec("b")]
    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, specs, factories) as d:
        wait_for(lambda: d.worker("a").cycles >= 2 and d.worker("b").cycles >= 2, what="cycles")
        names = {t.name for t in threading.enumerate()}
        assert {"trader-user/a/PAPER", "trader-user/b/PAPER"} <= names
        assert d.worker("a").thread is not d.worker("b").thread
    status = json.loads((tmp_path / "status.json").read_text())
    assert set(status["accounts"]) == {"user/a/PAPER", "user/b/PAPER"}
    assert status["accounts"]["user/a/PAPER"]["cycles"] >= 2


def test_traders_run_on_the_market_clock_and_cycle_lines_say_why_there_was_no_entry(tmp_path):
    market_time = FakeClock(wall_start=1_767_225_600.0)
    built = []

    def factory(*args, **kwargs):
        built.append(kwargs["clock"])
        return make_trader(*args, **kwargs)

    factories = BrokerFactories(
        venue=paper,
        trading=paper,
        public=lambda specs: SyntheticMarket(SYMBOLS, seed=1, clock=market_time),
        market_clock=market_time,
    )
    with capture_logs() as logs, Daemon(tmp_path, [spec("a")], factories, factory) as d:
        wait_for(lambda: d.worker("a").cycles >= 2, what="cycles")
    assert built == [market_time]
    cycles = [e for e in logs if e["event"] == "cycle"]
    assert cycles and all(e["orders"] == 0 for e in cycles)
    # Seed 1's market at that moment gives no entry: every line says why, in a few words.
    assert all(e["no_signal"].startswith("BTC/USD ") for e in cycles), cycles
    assert all(len(e["no_signal"]) <= 40 for e in cycles)


def test_a_dead_thread_is_restarted_with_a_growing_delay(tmp_path):
    builds = {"b": 0}

    def trading(s: BrokerSpec, market: MarketData) -> PaperBroker:
        if s.account.account_id == "b":
            builds["b"] += 1
            if builds["b"] <= 2:
                raise RuntimeError("bug while building the account")  # kills the thread
        return paper(s, market)

    factories = BrokerFactories(venue=paper, trading=trading)
    with Daemon(tmp_path, [spec("a"), spec("b")], factories) as d:
        wait_for(lambda: not d.worker("b").alive(), what="b's thread to die")
        d.trader.watchdog_tick()
        assert (
            d.worker("b").state == ThreadState.DEAD and "bug while building" in d.worker("b").crash
        )
        assert d.health("b")["failure_breakdown"] == {"unknown_error": 1}
        d.clock.advance(1.0)  # first delay: 1 s
        d.trader.watchdog_tick()
        wait_for(lambda: not d.worker("b").alive(), what="the second death")
        d.trader.watchdog_tick()
        d.clock.advance(1.0)
        d.trader.watchdog_tick()
        assert not d.worker("b").alive()  # the second delay is 2 s
        d.clock.advance(1.0)
        d.trader.watchdog_tick()
        wait_for(lambda: d.worker("b").cycles >= 1, what="b trading after restarts")
        assert d.worker("b").restarts == 2 and d.worker("b").state == ThreadState.RUNNING
        assert d.worker("a").restarts == 0 and d.worker("a").cycles >= 1
        assert d.health("a")["total_failures"] == 0


def test_a_stalled_thread_is_shown_and_recorded_then_carries_on(tmp_path):
    release = threading.Event()

    class Hanging(PaperBroker):
        def fetch_balance(self):
            release.wait(10)
            return super().fetch_balance()

    factories = BrokerFactories(venue=paper, trading=lambda s, market: Hanging(s, market))
    with Daemon(tmp_path, [spec("a")], factories) as d:
        wait_for(lambda: d.worker("a").busy_since is not None, what="a cycle in progress")
        # NTP jumps the wall clock a day ahead: for the watchdog no time has passed.
        d.clock.set_wall(d.clock.wall() + 86_400)
        d.trader.watchdog_tick()
        assert d.worker("a").state == ThreadState.RUNNING
        d.clock.advance(0.2 + 2 * 1.0 + 0.1)  # interval + 2 × call timeout, and a bit
        d.trader.watchdog_tick()
        assert d.worker("a").state == ThreadState.STALLED
        assert d.health("a")["failure_breakdown"] == {"network_error": 1}
        thread = d.worker("a").thread
        release.set()
        wait_for(lambda: d.worker("a").cycles >= 1, what="the stalled cycle to finish")
        d.trader.watchdog_tick()
        assert d.worker("a").state == ThreadState.RUNNING and d.worker("a").thread is thread


def test_unfunded_accounts_are_rechecked_and_start_when_funded(tmp_path):
    wallets = {"a": 10_000.0, "b": 0.0}
    factories = BrokerFactories(
        venue=lambda s: paper(s, usd=wallets[s.account.account_id]), trading=paper
    )
    with Daemon(tmp_path, [spec("a"), spec("b")], factories) as d:
        assert set(d.trader.workers) == {"user/a/PAPER"}
        assert d.trader.funded["user/b/PAPER"].funded is False
        wallets["b"] = 50.0  # a deposit
        d.clock.advance(60)
        d.trader.watchdog_tick()
        wait_for(lambda: "user/b/PAPER" in d.trader.workers, what="b's thread")
        wait_for(lambda: d.worker("b").cycles >= 1, what="b trading")


def test_a_thread_started_by_the_funds_check_is_never_seen_unstarted_by_the_watchdog(
    tmp_path, monkeypatch
):
    # The funds check starts an account's thread from its own thread while the watchdog ticks
    # in the main one (every lease taken over does so). Seen by scripts/cluster_chaos.py: the
    # watchdog found the worker before its thread ran, called it dead, and status.json showed
    # an account trading normally as a dead thread for two minutes.
    wallets = {"a": 10_000.0, "b": 0.0}
    factories = BrokerFactories(
        venue=lambda s: paper(s, usd=wallets[s.account.account_id]), trading=paper
    )
    ticks: list[threading.Thread] = []
    with capture_logs() as logs, Daemon(tmp_path, [spec("a"), spec("b")], factories) as d:
        start = AccountWorker.start

        def tick_then_start(worker: AccountWorker) -> threading.Thread:
            if worker.key == "user/b/PAPER":  # the watchdog ticks just as b is being started
                ticks.append(threading.Thread(target=d.trader.watchdog_tick))
                ticks[0].start()
                ticks[0].join(0.3)  # done, unless it waits for the start to be over
            return start(worker)

        monkeypatch.setattr(AccountWorker, "start", tick_then_start)
        wallets["b"] = 50.0  # a deposit: b starts from the re-check thread
        d.clock.advance(60)
        d.trader.watchdog_tick()
        wait_for(lambda: ticks and not ticks[0].is_alive(), what="the watchdog's tick")
        wait_for(lambda: d.worker("b").cycles >= 1, what="b trading")
        d.clock.advance(1.0)  # past any restart the watchdog might have scheduled
        d.trader.watchdog_tick()
        assert d.worker("b").state == ThreadState.RUNNING and d.worker("b").restarts == 0
    assert not [e for e in logs if e["event"] == "INDEPENDENT_thread_died"]
    assert d.health("b")["total_failures"] == 0


def test_single_account_mode_trades_only_the_primary(tmp_path):
    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a"), spec("b")], factories, MULTI_BROKER_INDEPENDENT="false") as d:
        assert len(d.trader.workers) == 1
        (worker,) = d.trader.workers.values()
        wait_for(lambda: worker.cycles >= 1, what="one account trading")


def test_stop_returns_in_time_even_with_an_account_stuck_in_a_broker_call(tmp_path):
    stuck = threading.Event()

    class Stuck(PaperBroker):
        def fetch_balance(self):
            stuck.wait(30)
            return super().fetch_balance()

    factories = BrokerFactories(
        venue=paper,
        trading=lambda s, market: (
            Stuck(s, market) if s.account.account_id == "b" else paper(s, market)
        ),
    )
    d = Daemon(tmp_path, [spec("a"), spec("b")], factories)
    d.trader.start_independent_multi_broker_trading()
    try:
        wait_for(lambda: d.worker("a").cycles >= 1 and d.worker("b").busy_since, what="b stuck")
        started = time.monotonic()
        left = d.trader.stop_independent_trading(timeout=1.0)
        assert time.monotonic() - started < 2.0
        assert left == ["user/b/PAPER"] and not d.worker("a").alive()
    finally:
        stuck.set()


def test_status_json_is_written_atomically_and_names_every_account(tmp_path):
    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a")], factories) as d:
        wait_for(lambda: d.worker("a").cycles >= 1, what="a cycle")
        d.trader.watchdog_tick()
        wait_for(lambda: d.trader.status.writes >= 2, what="status writes")
        doc = json.loads((tmp_path / "status.json").read_text())
        acct = doc["accounts"]["user/a/PAPER"]
        expected = {
            "account_type", "account_id", "broker", "funded", "balance_usd", "thread", "health",
            "circuit", "cycles", "last_cycle_at", "last_cycle_ms", "last_error", "open_positions",
            "next_cycle_at",
        }  # fmt: skip
        assert expected <= set(acct)
        assert (acct["thread"], acct["health"], acct["circuit"]) == ("running", "healthy", "closed")
        assert {"updated_at", "pid", "mode", "accounts", "isolation_report"} <= set(doc)
        assert not list(tmp_path.glob(".status-*"))  # no temporary file left behind


def test_status_json_shows_dust_blocked_exits_and_unknown_orders(tmp_path):
    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a")], factories) as d:
        wait_for(lambda: d.worker("a").cycles >= 1, what="a cycle")
        acct = d.trader.get_multi_broker_status()["accounts"]["user/a/PAPER"]
        assert (acct["dust"], acct["exit_blocked"], acct["orders_unknown"]) == ({}, {}, [])
    worker = d.worker("a")  # stopped: no cycle replaces the result set here
    worker.last_result = dataclasses.replace(
        worker.last_result,
        dust={"LTC": 0.0004},
        exit_blocked={"LTC/USD": "insufficient funds"},
        orders_unknown=["c0ffee"],
    )
    acct = d.trader.get_multi_broker_status()["accounts"]["user/a/PAPER"]
    assert acct["dust"] == {"LTC": 0.0004}
    assert acct["exit_blocked"] == {"LTC/USD": "insufficient funds"}
    assert acct["orders_unknown"] == ["c0ffee"]


def test_health_changes_are_stored_by_the_accounts_own_thread(tmp_path):
    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a")], factories) as d:
        wait_for(lambda: d.worker("a").cycles >= 1, what="a cycle")
        d.isolation.record_failure("user", "a", "PAPER", ConnectionError("blip"))
        wait_for(
            lambda: d.worker("a").cycles >= 3 and not d.worker("a").health_events, what="drain"
        )
    from bot.store.writer import Store, db_path

    store = Store(db_path(tmp_path, "paper"), "user/a/PAPER")
    try:
        events = store.health_events_since(0)
    finally:
        store.close()
    assert [(e.old, e.new) for e in events][:1] == [("healthy", "degraded")]


def test_status_and_store_times_are_the_clocks_wall_time(tmp_path):
    from bot.store.writer import Store, db_path

    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a")], factories) as d:
        wall = d.clock.wall()
        assert abs(wall - d.clock.monotonic()) > 1e6  # a mix-up of the two cannot pass unseen
        wait_for(lambda: d.worker("a").cycles >= 1, what="a cycle")
        d.isolation.record_failure("user", "a", "PAPER", ConnectionError("blip"))
        wait_for(lambda: not d.worker("a").health_events, what="the health event stored")
        d.trader.status.write_now()
        doc = json.loads((tmp_path / "status.json").read_text())
    acct = doc["accounts"]["user/a/PAPER"]
    assert doc["updated_at"] == d.clock.utc_now().isoformat() == iso_text(wall)
    assert acct["last_cycle_at"] == iso_text(wall)
    assert acct["next_cycle_at"] == iso_text(wall + 0.2)  # the interval: the fake clock stood still
    assert acct["last_cycle_ms"] == 0.0
    store = Store(db_path(tmp_path, "paper"), "user/a/PAPER")
    try:
        cycle = store.last_cycles(1)[0]
        events = store.health_events_since(0)  # degraded, maybe recovered since
    finally:
        store.close()
    assert events and cycle.started_at == wall
    assert all(event.at == wall for event in events)


def test_a_reset_wakes_one_quarantined_account_and_leaves_the_others_alone(tmp_path):
    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a"), spec("b")], factories) as d:
        wait_for(lambda: d.worker("a").cycles >= 1 and d.worker("b").cycles >= 1, what="cycles")
        for _ in range(5):  # the default threshold: the circuit opens for 300 s
            d.isolation.record_failure("user", "a", "PAPER", ConnectionError("venue down"))
        wait_for(lambda: d.worker("a").snapshot().last_error, what="a blocked")
        blocked_at = d.worker("a").cycles
        b_thread = d.worker("b").thread

        result = d.trader.reset_account("user/a/PAPER")
        assert result.ok and (result.before, result.after) == ("quarantined", "healthy")
        # Out of its 300 s wait at once, trading again.
        wait_for(lambda: d.worker("a").cycles > blocked_at + 1, what="a trading again")
        assert d.health("a")["status"] == "healthy"
        assert d.worker("b").thread is b_thread and d.worker("b").restarts == 0

        unknown = d.trader.reset_account("user/zed/PAPER")
        assert unknown.outcome.value == "unknown_account" and "user/a/PAPER" in unknown.message


def test_a_reset_reconciles_the_account_again_as_a_restart_would(tmp_path):
    """A reset clears a blocked exit the way a restart does: by reconciling at the next cycle."""
    traders = []

    def capture(*args, **kwargs):
        trader = make_trader(*args, **kwargs)
        traders.append(trader)
        return trader

    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a"), spec("b")], factories, trader_factory=capture) as d:
        wait_for(lambda: d.worker("a").cycles >= 1 and d.worker("b").cycles >= 1, what="cycles")
        runs: dict[str, int] = {"user/a/PAPER": 0, "user/b/PAPER": 0}
        for trader in traders:
            original = trader.reconcile

            def counted(balance=None, _original=original, _key=trader.account.key):
                runs[_key] += 1
                return _original(balance)

            trader.reconcile = counted
        before = d.worker("a").cycles
        assert d.trader.reset_account("user/a/PAPER").ok
        wait_for(lambda: d.worker("a").cycles > before + 1, what="a cycles after the reset")
        assert runs == {"user/a/PAPER": 1, "user/b/PAPER": 0}  # once, and only a's


def test_a_missing_database_holds_entries_and_no_thread_opens_a_new_one(tmp_path):
    factories = BrokerFactories(venue=paper, trading=paper)
    with Daemon(tmp_path, [spec("a")], factories) as d:
        wait_for(lambda: d.worker("a").cycles >= 1, what="a cycle")
        db = d.trader.db.path
        db.rename(tmp_path / "aside.db")
        d.trader.watchdog_tick()
        assert "missing" in (d.trader.global_cap.held or "")
        assert d.trader.get_multi_broker_status()["entries_held"] == d.trader.global_cap.held
        with pytest.raises(StoreError, match="missing"):
            d.trader._open_store("user/a/PAPER")
        assert not db.exists()  # a restarted thread would not have created an empty one
        (tmp_path / "aside.db").rename(db)
        d.trader.watchdog_tick()
        assert d.trader.global_cap.held is None


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_status_says_which_amount_is_the_venues_and_carries_the_last_prices(tmp_path, mode):
    """The venue holds $2,500 (the funded check asks it); the account trades a $10,000
    wallet. In paper mode that wallet is the paper equity; live, it is the venue's."""
    factories = BrokerFactories(venue=partial(paper, usd=2500.0), trading=paper)
    with Daemon(tmp_path, [spec("a")], factories, NIJA_MODE=mode) as d:
        wait_for(lambda: d.worker("a").cycles >= 2, what="cycles")
    entry = json.loads((tmp_path / "status.json").read_text())["accounts"]["user/a/PAPER"]
    equity = d.worker("a").snapshot().equity_usd
    assert equity == pytest.approx(10_000.0, rel=0.05)
    if mode == "paper":
        assert (entry["venue_balance_usd"], entry["paper_equity_usd"]) == (2500.0, equity)
    else:
        assert (entry["venue_balance_usd"], entry["paper_equity_usd"]) == (equity, None)
    # The last price of each symbol the last cycle priced, for the checks to value positions.
    assert set(entry["marks"]) == set(SYMBOLS) and entry["marks"]["BTC/USD"] > 0
    assert entry["marks"] == d.worker("a").last_result.marks
    assert entry["marks_at"] == iso_text(d.worker("a").last_cycle_wall)


def test_a_funded_check_that_only_timed_out_shows_failing_to_answer_not_healthy(tmp_path):
    release, ticking = threading.Event(), threading.Event()

    class Hung(PaperBroker):
        def fetch_balance(self):
            release.wait(30)  # a call that ignores its timeout
            return super().fetch_balance()

    factories = BrokerFactories(venue=lambda s: Hung(s, SyntheticMarket(SYMBOLS)), trading=paper)
    d = Daemon(tmp_path, [spec("a")], factories)

    def tick() -> None:  # the watchdog clock moves on while the start-up check waits
        for _ in range(500):
            if ticking.is_set():
                return
            d.clock.advance(0.5)
            time.sleep(0.01)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        with d:
            ticking.set()
            entry = d.trader.get_multi_broker_status()["accounts"]["user/a/PAPER"]
            assert entry["health"] == "degraded" and entry["thread"] == "not_started"
            assert entry["failure_breakdown"] == {"network_error": 1}
            assert "TimeoutError" in entry["last_error"] and not entry["funded"]
            # The re-check while that call still hangs asks nothing again.
            d.clock.advance(60.0)
            d.trader.watchdog_tick()
            d.checks_done()
            assert d.trader.funded_checks.running("user/a/PAPER")
            assert d.isolation.get_account_status("user", "a", "PAPER")[1]["total_failures"] == 1
    finally:
        ticking.set()
        release.set()
        ticker.join(5)
