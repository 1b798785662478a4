#!/usr/bin/env python3
"""What one ``/metrics`` scrape costs in-process, caches warm and cold: the figures behind
docs/OPERATIONS.md "What it costs" (scripts/bench_api.py measures the whole daemon).

A supervisor of ``--accounts`` paper accounts on five venues (one cycle each, then idle)
serves its API on a free loopback port. Each scrape is preceded by what the daemon does
between two scrapes, in one of three ways:

* **warm**: nothing (every value as at the last scrape, every cache hot);
* **churn**: each account "cycles" once (its cycle count, last cycle time and duration, two
  successful calls with their durations) and the clock moves 6 s: the values that move
  between two real scrapes (a 6 s cycle, a 5 s scrape), and the state database's totals
  read at every fifth scrape (they are kept 30 s);
* **cold**: churn, then the CPU's caches evicted (a 64 MB buffer walked, 200,000 Python
  objects made and dropped), as the trading threads leave them in a busy daemon.

Figures, each the median of ``--batches`` batches of ``--scrapes`` scrapes:

* **http**: the CPU of the API's threads (OS name ``nija-http``, from /proc schedstat)
  per scrape over real HTTP (one kept-alive connection; the client is not counted);
* **collect**: the registry's collection alone (the collector's families, as built);
* **write**: ``TextWriter.write`` (collection and text), in this thread (``thread_time``).

``--profile MODE`` prints cProfile's top functions of ``write`` in that mode instead.

Usage: PYTHONPATH=. python3 scripts/profile_scrape.py [--accounts 100] [--scrapes 100]
[--batches 5] [--profile MODE] (from the checkout's root: ``PYTHONPATH=.`` makes this
checkout's ``bot`` the one measured when the virtualenv was installed from another).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import logging
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from bot.api.scrape import MetricsText
from bot.api.server import OS_THREAD_NAME, ApiServer, start_api
from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.config.settings import load_accounts, load_settings
from bot.daemon.supervisor import IndependentBrokerTrader
from bot.daemon.wiring import BrokerFactories, make_trader
from bot.isolation.manager import AccountIsolationManager
from bot.model import BrokerSpec, Credentials
from bot.redact import Redactor
from nija_testkit.clock import FakeClock
from nija_testkit.harness import account_env, wait_for
from nija_testkit.process_stats import thread_cpu_seconds

VENUES = ("KRAKEN", "OKX", "BINANCE", "ALPACA", "COINBASE")
SYMBOLS = ("BTC/USD", "SPY")  # Alpaca trades US stocks only
TOKEN = "profile-token-0123456789abcdef"
MODES = ("warm", "churn", "cold")


class Daemon:
    """``accounts`` paper accounts spread over ``VENUES``, their supervisor and its API."""

    def __init__(self, accounts: int, data_dir: Path) -> None:
        env = {
            "NIJA_DATA_DIR": str(data_dir),
            "NIJA_CYCLE_SECONDS": "3600",  # one cycle each; the script moves the values
            "NIJA_FUNDED_RECHECK_SECONDS": "3600",
            "NIJA_STATUS_LOG_SECONDS": "3600",
            "NIJA_HTTP_PORT": "0",
            "NIJA_HTTP_TOKEN": TOKEN,
        }
        for i in range(accounts):
            venue = VENUES[i % len(VENUES)]
            env[f"{venue}_SYMBOLS"] = SYMBOLS[venue == "ALPACA"]
            creds = Credentials(f"FAKE-KEY-{i:04d}", f"FAKE-SECRET-{i:04d}-x9z", "pass")
            env.update(account_env(venue, f"p{i:04d}", creds))
        settings = load_settings(env)
        self.settings = settings
        self.clock = FakeClock()
        self.isolation = AccountIsolationManager(clock=self.clock, redactor=Redactor())
        market = SyntheticMarket(SYMBOLS, seed=1)
        factories = BrokerFactories(
            venue=self._paper(market),
            trading=lambda spec, _market: self._paper(market)(spec),
            public=lambda _specs: market,
        )
        self.sup = IndependentBrokerTrader(
            settings,
            load_accounts(env, settings).specs,
            self.isolation,
            trader_factory=make_trader,
            factories=factories,
            clock=self.clock,
            redactor=Redactor(),
            read_env=lambda: dict(env),
        )
        self.api: ApiServer | None = None

    @staticmethod
    def _paper(market: SyntheticMarket) -> Callable[[BrokerSpec], PaperBroker]:
        return lambda spec: PaperBroker(spec, market, starting_usd=10_000.0)

    def start(self) -> Daemon:
        self.sup.start_independent_multi_broker_trading()
        self.api = start_api(self.settings, self.sup, log=structlog.get_logger())
        workers = self.sup.workers
        wait_for(
            lambda: len(workers) == len(self.sup.specs) and all(w.cycles for w in workers.values()),
            120,
            "every account's first cycle",
        )
        return self

    def churn(self, step: int) -> None:
        """What a cycle of every account changes, as each account's thread would change it."""
        self.clock.advance(6.0)
        for n, w in enumerate(self.sup.workers.values()):
            ref = w.spec.account
            ms = 40.0 + (step * 7 + n * 13) % 90
            for _call in range(2):
                self.isolation.record_success(ref.account_type, ref.account_id, ref.broker, ms)
            w.cycles += 1
            w.cycle_times.observe(ms * 3 / 1000.0)
            if w.last_result is not None:
                w.last_result = replace(w.last_result, duration_ms=ms * 3)
            w.last_cycle_wall = self.clock.wall()

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
        self.sup.stop_independent_trading(timeout=5)


def evict() -> None:
    """Leave the CPU's caches as busy trading threads would: other memory, other objects."""
    buffer = bytearray(64 << 20)
    for offset in range(0, len(buffer), 64):  # one write per cache line
        buffer[offset] = 1
    junk = [{"n": i, "s": str(i)} for i in range(200_000)]
    del junk, buffer


class Client:
    """GET /metrics over one kept-alive connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def scrape(self) -> bytes:
        self.conn.request("GET", "/metrics", headers=self.headers)
        answer = self.conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"/metrics answered {answer.status}: {body[:200]!r}")
        return body


def api_cpu() -> float:
    """CPU seconds of the API's threads so far (the ones alive now)."""
    threads = thread_cpu_seconds(os.getpid()).values()
    return sum(cpu for name, cpu in threads if name == OS_THREAD_NAME)


def _between(daemon: Daemon, mode: str, step: int) -> None:
    if mode != "warm":
        daemon.churn(step)
    if mode == "cold":
        evict()


def http_batch(daemon: Daemon, client: Client, mode: str, scrapes: int) -> float:
    """ms of the API's CPU per scrape over ``scrapes`` scrapes."""
    used = 0.0
    for step in range(scrapes):
        _between(daemon, mode, step)
        before = api_cpu()
        client.scrape()
        used += api_cpu() - before
    return used / scrapes * 1000


def inproc_batch(
    daemon: Daemon,
    text: MetricsText,
    mode: str,
    scrapes: int,
    what: str,
    profile: cProfile.Profile | None = None,
) -> float:
    """ms of this thread's CPU per collection (``collect``) or per written scrape (``write``);
    ``profile`` on while each is measured."""
    used = 0
    for step in range(scrapes):
        _between(daemon, mode, step)
        if profile is not None:
            profile.enable()
        began = time.thread_time_ns()
        if what == "write":
            text.write()
        else:
            for _family in text.registry.collect():  # each built as it is reached
                pass
        used += time.thread_time_ns() - began
        if profile is not None:
            profile.disable()
    return used / scrapes / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--profile", choices=MODES)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="nija-profile-scrape-") as tmp:
        daemon = Daemon(args.accounts, Path(tmp)).start()
        try:
            assert daemon.api is not None
            client = Client(daemon.api.url)
            body = client.scrape()
            text = MetricsText(daemon.sup)  # the app's own, made again: same code, same work
            if args.profile:
                profile = cProfile.Profile()
                inproc_batch(daemon, text, args.profile, args.scrapes, "write", profile)
                pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(25)
                return 0
            figures: dict[str, dict[str, float]] = {}
            for mode in MODES:
                runs: dict[str, list[float]] = {"http": [], "collect": [], "write": []}
                for _ in range(args.batches):
                    runs["http"].append(http_batch(daemon, client, mode, args.scrapes))
                    for what in ("collect", "write"):
                        runs[what].append(inproc_batch(daemon, text, mode, args.scrapes, what))
                figures[mode] = {k: round(statistics.median(v), 3) for k, v in runs.items()}
                print(mode, figures[mode], file=sys.stderr)
        finally:
            daemon.stop()
    result = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": os.getloadavg()[0],
        "accounts": args.accounts,
        "scrape_bytes": len(body),
        "samples": sum(1 for line in body.splitlines() if not line.startswith(b"#")),
        "ms_per_scrape": figures,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
