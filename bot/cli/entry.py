"""The check scripts' start: refuse a python that cannot run NIJA with a hint, then run.

``check_*.py`` at the repository root call ``run_check("main_...")``; ``nija_ctl.py`` calls
``run_check("main", "bot.cli.ctl")``. This module and
``bot/__init__.py`` import the standard library only (and parse on old Pythons), so a
``python3`` that is too old or lacks NIJA's dependencies gets one line saying what to
do, exit code 2, and no traceback.
"""

import importlib
import sys

HINT = "run ./start.sh once, or use .venv/bin/python"
EXIT_CONFIG = 2


def run_check(name: str, module: str = "bot.cli.commands") -> None:
    """Run the command ``<module>.<name>`` as a script; exit 2 with a hint on a wrong python."""
    if sys.version_info < (3, 11):  # noqa: UP036 -- the python3 on PATH may be older
        print(f"NIJA needs Python 3.11 or newer: {HINT}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    try:
        cli = importlib.import_module(module)
        commands = importlib.import_module("bot.cli.commands")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "bot":
            raise  # a bug in NIJA itself, not a missing dependency
        print(f"this python lacks NIJA's dependency {exc.name!r}: {HINT}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    commands.run(getattr(cli, name))
