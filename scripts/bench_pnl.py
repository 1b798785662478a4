#!/usr/bin/env python3
"""What the P&L reports cost on a big store: the queries behind ``/api/v1/pnl``, ``pnl_today``
in ``/api/v1/accounts`` and ``check_active_trading_per_broker.py --pnl``.

Builds a state database in a temporary directory (the real schema, ``prepare_database``) with
``--accounts`` accounts (default 100), each closing ``--trades`` positions a day (default 20,
two fills each) for ``--history`` days (default 365) up to today, then times, ``--repeats``
times each (the median is reported): today's figures of every account (one ``daily_pnl``
read, as ``/api/v1/accounts`` does), the last 7, 30 and 366 days of every account, and the
last 30 days of one account. Rows are inserted with plain SQL for speed, as the engine's
``Store`` would write them (closed positions with their P&L, fills with their fee in USD).

Usage: python3 scripts/bench_pnl.py [--accounts 100] [--trades 20] [--history 365] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bot.store.db import db_path, prepare_database
from bot.store.pnl import day_start, last_days, utc_day
from bot.store.reader import ReadOnlyStore


def build(path: Path, accounts: int, trades: int, history: int, now: float) -> int:
    """The database's rows; how many positions it holds."""
    prepare_database(path)
    rng = random.Random(7)
    today = utc_day(now)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    positions = 0
    for a in range(accounts):
        key = f"user/u{a:04d}/KRAKEN"
        orders, fills, closed = [], [], []
        for d in range(history):
            start = day_start(today) - d * 86_400
            for t in range(trades):
                opened = start + rng.uniform(0, 80_000)
                shut = opened + rng.uniform(60, 6_000)
                pnl = rng.gauss(0.5, 10.0)
                for side, at in (("buy", opened), ("sell", shut)):
                    cid = f"{key}-{d}-{t}-{side}"
                    orders.append((key, cid, cid, "BTC/USD", side, "market", "filled", at))
                    fills.append((key, cid, 0.01, 60000.0, 0.6, at))
                closed.append((key, "BTC/USD", 0.01, 60000.0, 59000.0, 60000.0, opened, shut, pnl))
        conn.executemany(
            "INSERT INTO orders (account_key, client_order_id, intent_id, symbol, side, type,"
            " purpose, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'entry', ?, ?, ?)",
            [(*o, o[-1]) for o in orders],
        )
        conn.executemany(
            "INSERT INTO fills (account_key, client_order_id, quantity, price, fee_usd, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            fills,
        )
        conn.executemany(
            "INSERT INTO positions (account_key, symbol, quantity, entry_price, stop,"
            " highest_close, opened_at, closed_at, realized_pnl_usd, status, exit_price)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'closed', 60000.0)",
            closed,
        )
        positions += len(closed)
    conn.execute("COMMIT")
    conn.close()
    return positions


def timed(repeats: int, work: Callable[[], object]) -> float:
    """The median of ``repeats`` runs of ``work``, in milliseconds."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--trades", type=int, default=20, help="positions closed a day")
    parser.add_argument("--history", type=int, default=365, help="days of history")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = db_path(tmp, "paper")
        started = time.perf_counter()
        positions = build(path, args.accounts, args.trades, args.history, now)
        built_s = time.perf_counter() - started
        size_mb = round(os.path.getsize(path) / 1e6, 1)
        keys = [f"user/u{a:04d}/KRAKEN" for a in range(args.accounts)]
        today = utc_day(now)
        with ReadOnlyStore(path) as store:
            figures = {
                "today_every_account_ms": timed(
                    args.repeats, lambda: store.daily_pnl(today, today)
                ),
            }
            for days in (7, 30, 366):
                first, last = last_days(now, days)
                figures[f"report_{days}_days_every_account_ms"] = timed(
                    args.repeats, partial(store.pnl_report, first, last, keys)
                )
            first, last = last_days(now, 30)
            figures["report_30_days_one_account_ms"] = timed(
                args.repeats, lambda: store.pnl_report(first, last, account_key=keys[0])
            )
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        f", SQLite {sqlite3.sqlite_version}",
        "accounts": args.accounts,
        "positions": positions,
        "fills": positions * 2,
        "database_mb": size_mb,
        "build_seconds": round(built_s, 1),
        **figures,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            print(f"{name:36} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
