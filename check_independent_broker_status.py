#!/usr/bin/env python3
"""Each account's trading thread: funded, ready, thread, health, circuit, cycles, errors.

Run from the repository root: `python3 check_independent_broker_status.py [--json]` (see `--help`).
"""

import sys

HINT = "run ./start.sh once, or use .venv/bin/python"
if sys.version_info < (3, 11):  # noqa: UP036 -- the python3 on PATH may be older
    print(f"NIJA needs Python 3.11 or newer: {HINT}", file=sys.stderr)
    sys.exit(2)
try:
    from bot.cli import main_independent_status, run
except ModuleNotFoundError as exc:
    if (exc.name or "").split(".")[0] == "bot":
        raise  # a bug in NIJA itself, not a missing dependency
    print(f"this python lacks NIJA's dependency {exc.name!r}: {HINT}", file=sys.stderr)
    sys.exit(2)

run(main_independent_status)
