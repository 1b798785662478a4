#!/usr/bin/env python3
"""Live check of every configured broker account: credentials, connection, balance.

Run from the repository root: `python3 check_broker_status.py [--json]` (see `--help`).
"""

from bot.cli.entry import run_check

run_check("main_broker_status")
