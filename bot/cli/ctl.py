"""``nija_ctl.py``: ask the running daemon to act on one account, without restarting the others.

    python3 nija_ctl.py reset user/bob/KRAKEN      # close its circuit: it trades again
    python3 nija_ctl.py pause user/bob/KRAKEN      # no new entries; exits and stops go on
    python3 nija_ctl.py resume user/bob/KRAKEN
    python3 nija_ctl.py reload user/bob/KRAKEN     # re-read its keys from the env and .env
    python3 nija_ctl.py overrides-reload           # apply the per-account overrides file

The request goes through the data directory's control folder (``bot.daemon.control``):
the daemon's watchdog performs it within about a second, through the same control desk
as the HTTP API (``bot.api``), and audits it in nija.log and the state store; this
command waits at most ``--timeout`` seconds for the answer. It reads the environment and
``.env`` as the daemon does, so it finds the same ``NIJA_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.cli.commands import read_env
from bot.cli.output import EXIT_ATTENTION, EXIT_CONFIG, EXIT_OK, crashed, parse_args
from bot.cli.statusfile import pid_alive
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config.secrets import secret_values
from bot.config.settings import load_settings
from bot.daemon.control import (
    ALL_ACCOUNTS,
    Action,
    Outcome,
    parse_account_key,
    send_request,
    take_result,
    withdraw,
)
from bot.daemon.lock import holder_pid
from bot.errors import ConfigError
from bot.redact import Redactor

__all__ = ["main", "run"]

EXIT_CODES_HELP = """actions:
  reset ACCOUNT   close the account's circuit breaker (after fixing what made it fail,
                  e.g. its credentials): it trades again at its next cycle
  pause ACCOUNT   open no new position; exits, stops and order checks go on (kept
                  across restarts until resumed)
  resume ACCOUNT  lift a pause
  reload ACCOUNT  re-read the account's keys from the environment and .env and rebuild
                  its broker client; incomplete keys are refused and it keeps the old ones
  overrides-reload
                  apply the per-account overrides file (NIJA_OVERRIDES_FILE, default
                  <NIJA_DATA_DIR>/overrides.toml) to every account from its next cycle;
                  a file with any problem is refused whole and nothing changes

exit codes:
  0  done
  1  needs attention: no daemon is running on NIJA_DATA_DIR, it did not answer in time,
     or the action failed (see nija.log)
  2  configuration or usage error: a bad setting, an unreadable .env, a malformed
     account key, an account the running daemon does not have, a reload whose new
     keys are incomplete, or an overrides file with a problem (each one is named)
With --json, stdout is one JSON object whatever happens (an error also has "error").
An unexpected failure of this command exits 1 with its traceback on stderr.
"""
_CODES = {
    Outcome.DONE: EXIT_OK,
    Outcome.UNKNOWN_ACCOUNT: EXIT_CONFIG,
    Outcome.BAD_REQUEST: EXIT_CONFIG,
    Outcome.REFUSED: EXIT_CONFIG,
    Outcome.FAILED: EXIT_ATTENTION,
}
_POLL_SECONDS = 0.1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nija_ctl.py",
        description="Ask the running NIJA daemon to act on one account; the others are untouched.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--env-file", default=".env", help="the .env file to read (default: ./.env)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the daemon (default 10)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    helps = {
        Action.RESET: "close one account's circuit breaker: it trades again",
        Action.PAUSE: "no new entries for one account; exits and stops go on",
        Action.RESUME: "lift one account's pause",
        Action.RELOAD: "re-read one account's keys and rebuild its broker client",
    }
    for action, text in helps.items():
        sub = actions.add_parser(action.value, help=text)
        sub.add_argument("account", help="the account key, e.g. user/bob/KRAKEN")
    actions.add_parser(
        Action.OVERRIDES_RELOAD.value, help="apply the per-account overrides file, all or nothing"
    )
    return parser


class _Report:
    """What the command prints: a line (errors on stderr) or one JSON object, redacted; the
    object of an outcome other than done also says it as ``error``."""

    def __init__(self, as_json: bool, redactor: Redactor, **fields: Any) -> None:
        self.as_json = as_json
        self.redactor = redactor
        self.fields = {"command": "nija_ctl", **fields}

    def finish(self, code: int, message: str, **fields: Any) -> int:
        message = self.redactor.mask_values(message)
        if self.as_json:
            doc = {**self.fields, **fields, "message": message, "exit_code": code}
            if code != EXIT_OK:
                doc["error"] = message
            sys.stdout.write(self.redactor.mask_values(json.dumps(doc, indent=2)) + "\n")
        else:
            print(message, file=sys.stdout if code == EXIT_OK else sys.stderr)
        return code


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Send one request to the daemon on NIJA_DATA_DIR and print its answer; the exit code."""
    args = parse_args(_parser(), argv)  # a usage error exits 2 (in JSON too with --json)
    action = Action(args.action)
    account = getattr(args, "account", ALL_ACCOUNTS)  # overrides-reload: every account
    report = _Report(args.json, Redactor(), action=action.value, account=account)
    try:
        return _main(args, action, report, environ, clock)
    except Exception as exc:
        return crashed("nija_ctl", exc, report.redactor, args.json)


def _main(
    args: argparse.Namespace,
    action: Action,
    report: _Report,
    environ: Mapping[str, str] | None,
    clock: Clock,
) -> int:
    try:
        env = read_env(args.env_file, environ)
        report.redactor = Redactor(tuple(secret_values(env)))
        settings = load_settings(env)
    except ConfigError as exc:
        return report.finish(EXIT_CONFIG, f"configuration error: {exc}")
    key = ALL_ACCOUNTS if action is Action.OVERRIDES_RELOAD else parse_account_key(args.account)
    if key is None:
        problem = (
            f"{args.account!r} is not an account key: use type/id/BROKER, e.g. user/bob/KRAKEN"
        )
        return report.finish(EXIT_CONFIG, problem)
    report.fields["account"] = key
    data_dir = Path(settings.data_dir)
    pid = holder_pid(data_dir)
    if not pid_alive(pid):
        return report.finish(
            EXIT_ATTENTION,
            f"no NIJA daemon is running on the data directory {data_dir} (start it with "
            "./start.sh, or set NIJA_DATA_DIR to the directory of the running daemon)",
        )
    report.fields["daemon_pid"] = pid
    try:
        request = send_request(data_dir, action, key, clock)
    except OSError as exc:
        return report.finish(
            EXIT_CONFIG,
            f"cannot write a request into {data_dir}: {exc.strerror or exc}; run this command "
            "as the user the daemon runs as",
        )
    deadline = clock.monotonic() + args.timeout
    while (result := take_result(data_dir, request)) is None:
        if clock.monotonic() >= deadline:
            withdraw(data_dir, request)
            return report.finish(
                EXIT_ATTENTION,
                f"the daemon (pid {pid}) did not answer within {args.timeout:g}s; it answers "
                "within a second while its watchdog runs: see nija.log",
            )
        time.sleep(_POLL_SECONDS)
    code = _CODES[result.outcome]
    if result.details is not None:  # an action on every account: what it did to each
        return report.finish(
            code, _per_account(action, result.details),
            outcome=result.outcome.value, **result.details,
        )  # fmt: skip
    return report.finish(
        code,
        f"{action.value} {key}: {result.message}",
        outcome=result.outcome.value,
        before=result.before,
        after=result.after,
    )


def _per_account(action: Action, details: Mapping[str, Any]) -> str:
    """What an action on every account did: its summary, each problem, each account's outcome."""
    lines = [f"{action.value}: {details.get('summary', '')}"]
    lines += [f"  error: {error}" for error in details.get("errors", [])]
    for key, answer in details.get("accounts", {}).items():
        changes = answer.get("changes") or []
        why = f" ({'; '.join(changes)})" if changes else ""
        if answer.get("errors"):
            why = f" (its settings kept; {len(answer['errors'])} of the errors above are its own)"
        lines.append(f"  {key}: {answer.get('outcome')}{why}")
    return "\n".join(lines)


def run() -> None:
    """The ``nija-ctl`` console script (``nija_ctl.py``)."""
    raise SystemExit(main())
