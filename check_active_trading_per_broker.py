#!/usr/bin/env python3
"""Open positions and today's (UTC) orders per account, grouped by broker.

Run from the repository root: `python3 check_active_trading_per_broker.py [--json]` (see `--help`).
"""

import sys

HINT = "run ./start.sh once, or use .venv/bin/python"
if sys.version_info < (3, 11):  # noqa: UP036 -- the python3 on PATH may be older
    print(f"NIJA needs Python 3.11 or newer: {HINT}", file=sys.stderr)
    sys.exit(2)
try:
    from bot.cli import main_active_trading, run
except ModuleNotFoundError as exc:
    if (exc.name or "").split(".")[0] == "bot":
        raise  # a bug in NIJA itself, not a missing dependency
    print(f"this python lacks NIJA's dependency {exc.name!r}: {HINT}", file=sys.stderr)
    sys.exit(2)

run(main_active_trading)
