#!/usr/bin/env python3
"""Each account's trading thread: funded, ready, thread, health, circuit, cycles, errors.

Run from the repository root: `python3 check_independent_broker_status.py [--json]` (see `--help`).
"""

from bot.cli.entry import run_check

run_check("main_independent_status")
