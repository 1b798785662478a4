"""bot.daemon.admission with the venue's health: the daemon in-process, paper accounts on a
venue whose every answer is a 503 at start-up, a fake watchdog clock.

The start-up checks' failures put the venue down and open no breaker; the re-checks while it
is down ask nothing; once it is back each account is asked again at its own staggered time,
not at the periodic re-check, and starts.
"""

from __future__ import annotations

import threading
from collections import Counter

from structlog.testing import capture_logs

from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.daemon.wiring import BrokerFactories
from bot.errors import BrokerError
from bot.venue.health import VenueState
from tests.daemon.inprocess import SYMBOLS, Daemon, paper, spec, wait_for

KEYS = ("user/a/PAPER", "user/b/PAPER")


class Outage:
    """A venue answering 503 to everything while ``down`` is set; counts the balance calls."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.balance_calls: Counter[str] = Counter()

    def broker(self, s) -> PaperBroker:
        outage = self

        class Answering(PaperBroker):
            def fetch_balance(self):
                outage.balance_calls[self.account.key] += 1
                outage.fail()
                return super().fetch_balance()

            def fetch_candles(self, symbol, timeframe="5m", limit=200):  # the monitor's probe
                outage.fail()
                return super().fetch_candles(symbol, timeframe, limit)

        return Answering(s, SyntheticMarket(SYMBOLS, seed=1), starting_usd=10_000.0)

    def fail(self) -> None:
        if self.down.is_set():
            raise BrokerError("HTTP 503 Service Unavailable", status=503)


def recheck(d: Daemon, seconds: float) -> None:
    """The watchdog's tick ``seconds`` on; the re-check it started (if any) finished."""
    d.clock.advance(seconds)
    d.trader.watchdog_tick()
    d.checks_done()


def test_accounts_wait_for_their_down_venue_and_start_once_it_is_back(tmp_path):
    venue = Outage()
    venue.down.set()
    factories = BrokerFactories(venue=venue.broker, trading=paper)
    daemon = Daemon(
        tmp_path,
        [spec("a"), spec("b")],
        factories,
        NIJA_FUNDED_RECHECK_SECONDS="3600",  # not the periodic re-check: the venue's word
        NIJA_VENUE_RESUME_SECONDS="10",
    )
    with capture_logs() as logs, daemon as d:
        health = d.trader.venues.health["PAPER"]
        assert health.state is VenueState.DOWN and not d.trader.workers
        assert health.reason.startswith("2 of 2 accounts failed")
        assert venue.balance_calls == {k: 1 for k in KEYS}
        for key in KEYS:
            assert not d.trader.funded[key].funded and d.trader.funded[key].venue_retry_in_seconds
            assert d.isolation.get_account_status(*key.split("/"))[1]["circuit_state"] == "closed"

        for _ in range(4):  # the outage goes on: each is asked at the venue's probes, no call
            recheck(d, 40)
        assert venue.balance_calls == {k: 1 for k in KEYS}
        status = d.trader.get_multi_broker_status()
        for key in KEYS:
            entry = status["accounts"][key]
            assert entry["venue_state"] == "down" and not entry["funded"]
            assert entry["funds_check"] == "waits"  # unknown, never "not funded"
            assert entry["funds_check_reason"].startswith("funds check waits: venue PAPER down")
            assert entry["health"] == "healthy" and entry["circuit"] == "closed"
            assert d.trader.funded[key].parked
            assert d.trader.funded[key].error.startswith("funds check waits: venue PAPER down")
        waits = [e for e in logs if e["event"] == "funded_check_waits"]
        assert sorted(e["account"] for e in waits) == list(KEYS)  # once each, not per probe

        venue.down.clear()
        health.record_probe(True, "candles answered")
        for _ in range(6):  # the venue's probe interval (30 s, jittered), then the resumes
            recheck(d, 10)
        wait_for(lambda: set(d.trader.workers) == set(KEYS), what="both threads")
        wait_for(lambda: all(w.cycles >= 1 for w in d.trader.workers.values()), what="trading")
        assert venue.balance_calls == {k: 2 for k in KEYS}  # one call each once it was back
        status = d.trader.get_multi_broker_status()
        for key in KEYS:
            entry = status["accounts"][key]
            assert entry["funded"] and entry["funds_check"] == "answered"
            assert entry["funds_check_reason"] is None
        assert not [e for e in logs if e["event"] == "INDEPENDENT_health_changed"
                    and e["new"] in ("quarantined", "failing")]  # fmt: skip
