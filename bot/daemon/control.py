"""Requests to the running daemon through files: ``nija_ctl.py`` asks, the watchdog answers.

A request is a JSON file written atomically (a temporary name, then a rename) into
``<NIJA_DATA_DIR>/control/``. The daemon's watchdog looks there on every tick (about once a
second), performs the request, writes ``<id>.result.json`` the same way, removes the
request and logs one ``control_request`` line (the audit trail). The command waits for the
result, bounded in time, prints it and removes it.

A request older than ``REQUEST_TTL_SECONDS`` is discarded unperformed: whoever sent it has
given up waiting, and a reset must not happen minutes after it was asked for. Only the
actions in ``Action`` exist.

``ControlDesk.perform`` is the one way an operator action happens inside the daemon, for
a request file and for the HTTP API (``bot.api``) alike: one action at a time, each
audited once, in nija.log (``control_request``, naming the actor) and in the state store.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.clock import Clock
from bot.daemon.status import write_atomically
from bot.errors import describe
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec

__all__ = [
    "ACCOUNT_ACTIONS",
    "ALL_ACCOUNTS",
    "CONTROL_DIR",
    "REQUEST_TTL_SECONDS",
    "Action",
    "ControlDesk",
    "ControlRequest",
    "ControlResult",
    "Outcome",
    "parse_account_key",
    "reset_circuit",
    "send_request",
    "take_result",
    "withdraw",
]

CONTROL_DIR = "control"
REQUEST_TTL_SECONDS = 30.0
_REQUEST = ".request.json"
_RESULT = ".result.json"
# Results nobody collected (the command was killed) are removed after this long.
_RESULT_TTL_SECONDS = 600.0


class Action(StrEnum):
    """What an operator may ask the running daemon to do."""

    RESET = "reset"  # close one account's circuit: back to healthy, trading at its next cycle
    PAUSE = "pause"  # no new entries; exits, stops and order checks go on; kept over restarts
    RESUME = "resume"  # lift a pause
    RELOAD = "reload"  # re-read the account's credentials and rebuild its broker client
    # Re-read the per-account overrides file (bot.daemon.overrides); for every account at once.
    OVERRIDES_RELOAD = "overrides-reload"


# The actions on one account (the others are the daemon's: their account is ALL_ACCOUNTS).
ACCOUNT_ACTIONS = (Action.RESET, Action.PAUSE, Action.RESUME, Action.RELOAD)
ALL_ACCOUNTS = "*"


class Outcome(StrEnum):
    """How a request ended."""

    DONE = "done"
    UNKNOWN_ACCOUNT = "unknown_account"  # the daemon has no such account
    BAD_REQUEST = "bad_request"  # not a request this daemon understands
    REFUSED = "refused"  # understood, but it cannot be done as things are (nothing changed)
    FAILED = "failed"  # the action raised; nija.log has the traceback


@dataclass(frozen=True)
class ControlRequest:
    """One request, as written to the control folder."""

    id: str
    action: str
    account: str
    requested_at: float  # wall-clock epoch seconds
    requester_pid: int


@dataclass(frozen=True)
class ControlResult:
    """The daemon's answer to one request (``before``/``after``: the account's health;
    ``details``: what an action on every account did to each, as JSON)."""

    outcome: Outcome
    account: str
    message: str
    before: str | None = None
    after: str | None = None
    details: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.DONE


# ``handler(account_key, actor)``: the actor names who asked ("ctl:pid-42", "http:token-1a2b").
Handler = Callable[[str, str], ControlResult]
# ``audit(at, actor, action, account_key, result)``: keep the action in the state store.
Auditor = Callable[[float, str, str, str, ControlResult], None]


def parse_account_key(text: str) -> str | None:
    """``type/id/BROKER`` as the daemon spells it (``User/Bob/kraken`` is ``user/bob/KRAKEN``),
    or None when ``text`` is not an account key."""
    parts = text.strip().split("/")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        return None
    return AccountRef(*(p.strip() for p in parts)).key


def _folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / CONTROL_DIR


# -- the command's side -------------------------------------------------------------------


def send_request(
    data_dir: str | Path, action: Action, account: str, clock: Clock
) -> ControlRequest:
    """Write a request for the daemon running on ``data_dir`` (atomically)."""
    request = ControlRequest(uuid.uuid4().hex, action.value, account, clock.wall(), os.getpid())
    write_atomically(_folder(data_dir) / f"{request.id}{_REQUEST}", asdict(request))
    return request


def take_result(data_dir: str | Path, request: ControlRequest) -> ControlResult | None:
    """The daemon's answer to ``request`` (removing it), or None when there is none yet."""
    path = _folder(data_dir) / f"{request.id}{_RESULT}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return ControlResult(
        Outcome(raw["outcome"]),
        raw["account"],
        raw["message"],
        raw.get("before"),
        raw.get("after"),
        raw.get("details"),
    )


def withdraw(data_dir: str | Path, request: ControlRequest) -> None:
    """Remove a request the daemon has not taken yet (the command gave up waiting)."""
    (_folder(data_dir) / f"{request.id}{_REQUEST}").unlink(missing_ok=True)


# -- the daemon's side ---------------------------------------------------------------------


class ControlDesk:
    """Performs the requests found in the control folder; the watchdog calls ``poll``."""

    def __init__(
        self,
        data_dir: Path,
        handlers: Mapping[Action, Handler],
        *,
        clock: Clock,
        log: Any,
        audit: Auditor | None = None,
    ) -> None:
        self.folder = _folder(data_dir)
        self.handlers = dict(handlers)
        self.clock = clock
        self.log = log
        self.audit = audit
        self._failing: str | None = None  # the folder's last error, logged once
        self._one_at_a_time = threading.Lock()  # the watchdog and HTTP workers both ask

    def perform(self, action: str, account: str, actor: str, **audit_fields: Any) -> ControlResult:
        """Perform one action for ``actor`` and audit it: one ``control_request`` line in
        nija.log and one row in the state store. Never raises."""
        with self._one_at_a_time:
            result = self._answer(action, account, actor)
        log = self.log.info if result.ok else self.log.warning
        log(
            "control_request",
            action=action,
            account=account,
            outcome=result.outcome.value,
            before=result.before,
            after=result.after,
            message=result.message,
            actor=actor,
            **audit_fields,
        )
        if self.audit is not None:
            try:
                self.audit(self.clock.wall(), actor, action, account, result)
            except Exception as exc:  # the action is done; nija.log has it
                self.log.error("control_audit_not_stored", action=action, error=describe(exc))
        return result

    def poll(self) -> int:
        """Perform every pending request; the number performed. Never raises."""
        try:
            names = sorted(os.listdir(self.folder))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            self._report(exc)
            return 0
        done = 0
        for name in names:
            path = self.folder / name
            try:
                if name.endswith(_REQUEST) and not name.startswith("."):
                    done += self._perform(path, name.removesuffix(_REQUEST))
                elif name.endswith(_RESULT):
                    self._expire_result(path)
            except OSError as exc:
                self._report(exc)
        return done

    def _report(self, exc: OSError) -> None:
        text = describe(exc)
        if text != self._failing:
            self._failing = text
            self.log.error("control_folder_unusable", folder=str(self.folder), error=text)

    def _perform(self, path: Path, request_id: str) -> int:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            request = ControlRequest(**raw)
            age = self.clock.wall() - float(request.requested_at)
        except (ValueError, TypeError) as exc:
            request = ControlRequest(request_id, "?", "", self.clock.wall(), 0)
            result = ControlResult(Outcome.BAD_REQUEST, "", f"unreadable request: {exc}")
            self.log.warning("control_request", action="?", outcome=result.outcome.value,
                             message=result.message, actor="ctl:unknown")  # fmt: skip
        else:
            if age > REQUEST_TTL_SECONDS:
                path.unlink(missing_ok=True)
                self.log.warning(
                    "control_request_expired",
                    action=request.action,
                    account=request.account,
                    age_s=round(age),
                    requested_by_pid=request.requester_pid,
                )
                return 0
            result = self.perform(
                request.action,
                request.account,
                f"ctl:pid-{request.requester_pid}",
                requested_by_pid=request.requester_pid,
            )
        answer = {**asdict(result), "answered_at": self.clock.wall()}
        write_atomically(self.folder / f"{request_id}{_RESULT}", answer)
        path.unlink(missing_ok=True)
        return 1

    def _answer(self, action: str, account: str, actor: str) -> ControlResult:
        try:
            handler = self.handlers[Action(action)]
        except (ValueError, KeyError):
            known = ", ".join(a.value for a in self.handlers)
            return ControlResult(
                Outcome.BAD_REQUEST,
                account,
                f"unknown action {action!r} (this daemon knows: {known})",
            )
        try:
            return handler(account, actor)
        except Exception as exc:  # a bug in an action must not stop the watchdog
            self.log.exception("control_action_failed", action=action)
            return ControlResult(Outcome.FAILED, account, describe(exc))

    def _expire_result(self, path: Path) -> None:
        try:
            answered_at = float(json.loads(path.read_text(encoding="utf-8"))["answered_at"])
        except (ValueError, TypeError, KeyError):
            answered_at = 0.0  # not one of ours, or damaged: nobody can use it
        if self.clock.wall() - answered_at > _RESULT_TTL_SECONDS:
            path.unlink(missing_ok=True)


def reset_circuit(
    isolation: AccountIsolationManager, specs: Mapping[str, BrokerSpec], key: str, note: str
) -> ControlResult:
    """Close the circuit of account ``key`` (one of ``specs``) and say what changed."""
    spec = specs.get(key)
    if spec is None:
        known = ", ".join(sorted(specs))
        return ControlResult(
            Outcome.UNKNOWN_ACCOUNT, key, f"this daemon has no account {key} (it has {known})"
        )
    names = (spec.account.account_type, spec.account.account_id, spec.account.broker)
    before = isolation.get_account_status(*names)[0].value
    isolation.reset_account(*names)
    after = isolation.get_account_status(*names)[0].value
    return ControlResult(Outcome.DONE, key, f"{before} -> {after}; {note}", before, after)
