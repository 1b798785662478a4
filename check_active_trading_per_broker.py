#!/usr/bin/env python3
"""Open positions and today's (UTC) orders per account, grouped by broker.

Run from the repository root: `python3 check_active_trading_per_broker.py [--json]` (see `--help`).
"""

from bot.cli.entry import run_check

run_check("main_active_trading")
