"""The check scripts' start: refuse a python that cannot run NIJA with a hint, then run.

``check_*.py`` at the repository root call ``run_check("main_...")``; ``nija_ctl.py`` calls
``run_check("main", "bot.cli.ctl")``. This module and
``bot/__init__.py`` import the standard library only (and parse on old Pythons), so a
``python3`` that is too old or lacks NIJA's dependencies gets one line saying what to
do, exit code 2, and no traceback (with ``--json`` also one JSON object on stdout).
"""

import importlib
import json
import os
import sys

HINT = "run ./start.sh once, or use .venv/bin/python"
EXIT_CONFIG = 2


def run_check(name: str, module: str = "bot.cli.commands") -> None:
    """Run the command ``<module>.<name>`` as a script; exit 2 with a hint on a wrong python."""
    if sys.version_info < (3, 11):  # noqa: UP036 -- the python3 on PATH may be older
        _refuse(f"NIJA needs Python 3.11 or newer: {HINT}")
    try:
        cli = importlib.import_module(module)
        output = importlib.import_module("bot.cli.output")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "bot":
            raise  # a bug in NIJA itself, not a missing dependency
        _refuse(f"this python lacks NIJA's dependency {exc.name!r}: {HINT}")
    output.run(getattr(cli, name))


def _refuse(message: str) -> None:
    """Say why this python cannot run the command (as JSON too with --json) and exit 2."""
    print(message, file=sys.stderr)
    if "--json" in sys.argv[1:]:
        name = os.path.basename(sys.argv[0]).replace(".py", "")
        print(json.dumps({"command": name, "error": message, "exit_code": EXIT_CONFIG}))
    sys.exit(EXIT_CONFIG)
