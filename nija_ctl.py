#!/usr/bin/env python3
"""Act on one account of the running daemon, without restarting the others.

Run from the repository root: `python3 nija_ctl.py reset user/bob/KRAKEN [--json]`
(see `--help`).
"""

from bot.cli.entry import run_check

run_check("main", "bot.cli.ctl")
