"""Run bot.py with chaos hooks: a strategy bug, a failing database or a full disk.

The network faults come from the emulator; these cannot, so this launcher runs the daemon's
``main`` (``bot.cli.daemon``) with a trader factory that wraps the real one (``bot.daemon.wiring.make_trader``)
and adds the faults to each trader it builds. The control file named by
``NIJA_CHAOS_FILE`` is JSON, e.g. ``{"strategy_error": ["user/a1/ALPACA"],
"store_locked": ["user/a2/ALPACA"], "thread_crash": [...], "disk_full": ["user/a3/ALPACA",
"status.json"]}``; it is re-read at most every 0.2 s, so a script can switch faults on and
off while the daemon runs. ``disk_full`` fails the listed accounts' cycle writes with
SQLite's own SQLITE_FULL and, when it lists ``status.json``, every status.json write with
ENOSPC. For tests only.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
from pathlib import Path

from bot.cli.daemon import main as daemon_main
from bot.daemon import status as status_module
from bot.daemon.wiring import TraderFactory, make_trader
from bot.engine.trader import AccountTrader
from bot.store.db import guarded
from bot.store.writer import StoreError
from nija_testkit.diskfull import sqlite_full_error


class Chaos:
    """The faults currently switched on, by kind, as sets of account keys."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._faults: dict[str, set[str]] = {}

    def on(self, kind: str, account_key: str) -> bool:
        with self._lock:
            if time.monotonic() - self._read_at > 0.2:
                self._read_at = time.monotonic()
                try:
                    raw = json.loads(self.path.read_text() or "{}")
                except (FileNotFoundError, json.JSONDecodeError):
                    raw = {}  # mid-write: keep the faults as they were last read
                else:
                    self._faults = {k: set(v) for k, v in raw.items()}
            return account_key in self._faults.get(kind, set())


class ChaosStrategy:
    """The account's strategy, except that ``decide`` raises while the fault is on."""

    def __init__(self, inner, chaos: Chaos, key: str) -> None:
        self.inner, self.chaos, self.key = inner, chaos, key
        self.name, self.timeframe, self.history = inner.name, inner.timeframe, inner.history

    def decide(self, symbol, candles, position, now, memo=None):
        if self.chaos.on("strategy_error", self.key):
            raise ZeroDivisionError("chaos: a bug in strategy code")
        return self.inner.decide(symbol, candles, position, now, memo)

    def protective_levels(self, candles, entry):
        return self.inner.protective_levels(candles, entry)

    def no_entry(self, candles, memo=None):
        return self.inner.no_entry(candles, memo)


def full_disk_for_status(chaos: Chaos) -> None:
    """Make status.json writes fail with ENOSPC while ``disk_full`` lists ``status.json``."""
    write = status_module.write_text_atomically

    def chaotic_write(path, text) -> None:
        if path.name == status_module.STATUS_FILE and chaos.on("disk_full", path.name):
            raise OSError(errno.ENOSPC, "No space left on device (chaos)", str(path))
        write(path, text)

    status_module.write_text_atomically = chaotic_write


def chaos_factory(chaos: Chaos, real: TraderFactory = make_trader) -> TraderFactory:
    """A trader factory that builds with ``real``, then adds the faults ``chaos`` switches on."""

    def build(spec, settings, broker, store, *args, **kwargs) -> AccountTrader:
        trader = real(spec, settings, broker, store, *args, **kwargs)
        key = spec.account.key
        record_cycle = store.record_cycle

        def chaotic_record_cycle(*a, **kw):
            if chaos.on("store_locked", key):
                time.sleep(0.05)  # a locked database answers after its busy timeout
                raise StoreError("record_cycle", "database is locked (chaos)", account_key=key)
            if chaos.on("disk_full", key):
                with guarded("record_cycle", key):
                    raise sqlite_full_error()
            return record_cycle(*a, **kw)

        trader.strategy = ChaosStrategy(trader.strategy, chaos, key)
        run_cycle = trader.run_cycle

        def crashing_run_cycle():
            if chaos.on("thread_crash", key):
                raise RuntimeError("chaos: an unexpected exception kills the thread")
            return run_cycle()

        trader.run_cycle = crashing_run_cycle
        store.record_cycle = chaotic_record_cycle
        return trader

    return build


if __name__ == "__main__":
    # Taken out of the environment: the daemon would rightly warn that it does not read it.
    chaos = Chaos(Path(os.environ.pop("NIJA_CHAOS_FILE")))
    full_disk_for_status(chaos)
    raise SystemExit(daemon_main(sys.argv[1:], trader_factory=chaos_factory(chaos)))
