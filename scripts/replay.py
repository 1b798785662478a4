#!/usr/bin/env python3
"""Replay a candle file through the real engine on the paper broker, fast-forwarded.

Usage: python3 scripts/replay.py --candles FILE.csv [--symbol BTC/USD] [--json]
           [--strategy default] [--balance 10000] [--fee-rate 0.001]
           [--slippage-bps 5] [--db PATH] [--verbose]

FILE.csv has the header ``timestamp,open,high,low,close,volume``; ``timestamp`` is the
candle's open time in epoch milliseconds (not seconds) or ISO-8601 with Z or an offset.
One engine cycle runs at the close of each candle; afterwards the trades, win rate,
P&L, maximum drawdown and final equity are printed (``--json``: machine-readable).
Engine logs go to stderr (warnings only, unless ``--verbose``).

Exit codes: 0 done; 1 some engine cycles failed (the figures are printed but not to be
trusted); 2 bad input (unreadable or invalid file, bad option, existing ``--db``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import structlog

from bot.replay.runner import (
    CandleFileError,
    ReplayReport,
    ReplaySettings,
    check_settings,
    load_candles,
    run_replay,
)

EXIT_OK, EXIT_CYCLES_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (argparse exits with code 2 on a bad option)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candles", required=True, type=Path, help="CSV file of candles")
    p.add_argument("--symbol", default="BTC/USD", help="symbol to trade (USD-quoted)")
    p.add_argument("--strategy", default="default", help="strategy name")
    p.add_argument("--balance", type=float, default=10_000.0, help="starting USD")
    p.add_argument("--fee-rate", type=float, default=0.001, help="fee, fraction of notional")
    p.add_argument("--slippage-bps", type=float, default=5.0, help="market order slippage")
    p.add_argument("--db", type=Path, help="keep the state database here (must not exist)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--verbose", action="store_true", help="engine info logs on stderr")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the replay; the exit code."""
    args = parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    # stdout carries only the report, so --json output stays parseable.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    settings = ReplaySettings(
        symbol=args.symbol,
        strategy=args.strategy,
        starting_usd=args.balance,
        fee_rate=args.fee_rate,
        slippage_bps=args.slippage_bps,
        db_path=args.db,
    )
    try:
        check_settings(settings)
        candles = load_candles(args.candles)
    except (CandleFileError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = run_replay(candles, settings)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return EXIT_CYCLES_FAILED if report.failed_cycles else EXIT_OK


def format_report(r: ReplayReport) -> str:
    """The report as text for a person."""
    lines = [
        f"Replay of {r.symbol}: {r.candles} {r.timeframe} candles, {r.first_candle} to "
        f"{r.last_candle}, strategy {r.strategy}",
        "",
    ]
    if r.trades:
        lines.append(
            f"{'#':>3}  {'entry time':20}  {'exit time':20}  {'entry':>12}  {'exit':>12}"
            f"  {'qty':>12}  {'P&L USD':>10}  reason"
        )
    for i, t in enumerate(r.trades, 1):
        lines.append(
            f"{i:>3}  {t.entry_time:20}  {t.exit_time:20}  {t.entry_price:>12.4f}"
            f"  {t.exit_price:>12.4f}  {t.quantity:>12.6f}  {t.pnl_usd:>+10.2f}  {t.reason}"
        )
    for p in r.open_positions:
        lines.append(
            f"  still open: {p['symbol']} since {p['entry_time']} at {p['entry_price']:.4f},"
            f" unrealized {p['unrealized_pnl_usd']:+.2f} USD"
        )
    win_rate = "n/a" if r.win_rate is None else f"{r.win_rate * 100:.1f}%"
    lines += [
        "" if r.trades or r.open_positions else "no trades",
        f"trades {r.trade_count} (won {r.wins}, lost {r.losses}), win rate {win_rate}",
        f"P&L {r.pnl_usd:+.2f} USD ({r.pnl_pct:+.2f}%), final equity {r.final_equity_usd:.2f} USD",
        f"max drawdown {r.max_drawdown_usd:.2f} USD ({r.max_drawdown_pct:.2f}%)",
    ]
    if r.failed_cycles:
        lines.append(f"WARNING: {r.failed_cycles} cycles failed: " + "; ".join(r.cycle_errors))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
