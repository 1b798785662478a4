"""What every command line tool prints when it cannot do its job: exit codes and error reports.

The check scripts and ``nija_ctl.py`` share one rule: with ``--json``, stdout is one JSON
object whatever happens, an error included (a usage error, a configuration error, an
unreadable file, a bug in the command itself): ``{"command", "error", "exit_code"}``. The
error is also said on stderr, where a person reads it. Every text passes the redactor of
the configured secrets first.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from bot.redact import Redactor

__all__ = [
    "EXIT_ATTENTION",
    "EXIT_CONFIG",
    "EXIT_OK",
    "crashed",
    "fail",
    "parse_args",
    "run",
]

EXIT_OK, EXIT_ATTENTION, EXIT_CONFIG = 0, 1, 2


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``; with ``--json`` among the arguments a usage error is also
    one JSON object on stdout (argparse says it on stderr and exits 2 all the same)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--json" not in args:
        return parser.parse_args(args)
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return parser.parse_args(args)
    except SystemExit as exc:
        sys.stderr.write(said.getvalue())
        if exc.code not in (None, 0):  # not --help
            lines = said.getvalue().strip().splitlines() or ["usage error"]
            _print_json(parser.prog, lines[-1], EXIT_CONFIG)
        raise


def fail(command: str, message: str, redactor: Redactor, as_json: bool, code: int) -> int:
    """An error that ends the command: on stderr, and as JSON on stdout when asked; ``code``."""
    message = redactor.mask_values(message)
    print(message, file=sys.stderr)
    if as_json:
        _print_json(command, message, code)
    return code


def crashed(command: str, exc: BaseException, redactor: Redactor, as_json: bool) -> int:
    """A bug in the command itself: its traceback on stderr (secrets masked, as everywhere),
    with ``--json`` one JSON object on stdout too; exit code 1, as Python's own."""
    sys.stderr.write(redactor.mask_values("".join(traceback.format_exception(exc))))
    if as_json:
        text = f"unexpected error: {type(exc).__name__}: {exc}"
        _print_json(command, redactor.mask_values(text), EXIT_ATTENTION)
    return EXIT_ATTENTION


def _print_json(command: str, error: str, code: int) -> None:
    name = command.removesuffix(".py")
    sys.stdout.write(json.dumps({"command": name, "error": error, "exit_code": code}) + "\n")


def run(main: Callable[[], int]) -> None:
    """Run a command as a script and exit with its code, never waiting on a hung balance call.

    ``FundedChecker`` leaves a worker that ignored its timeout to finish on its own; should
    the interpreter join it at exit, a stuck venue could hold the command for minutes.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.name.startswith("funded-check") and t.is_alive() for t in threading.enumerate()):
        os._exit(code)  # output is flushed; the hung call's outcome no longer matters
    raise SystemExit(code)
