"""Each account's current ``Tuning``: the overrides file loaded at start-up, and reloaded on
an operator's request (``nija_ctl.py overrides-reload``, ``POST /api/v1/overrides/reload``).

* **At start-up** the daemon always starts. An account the file cannot give settings to
  (its section is wrong, or the file cannot be read at all) trades with the global
  settings **and opens no new position**: its exits, stops and order checks go on, and
  nija.log (``overrides_invalid``, at error level), the cycle line's ``no_signal`` and
  status.json (``overrides_error``) say why, until a reload succeeds. The global settings
  may risk more than the operator chose for it; refusing to start would leave every
  account's open positions unwatched.
* **A reload** judges the whole file first and applies it only when it has no problem at
  all: a file with any problem is refused (422, exit 2) naming each one, and every account
  keeps the settings it had; never half a file. A good file replaces every account's
  tuning at once; each account's thread applies its own at its next cycle.

The accounts' tunings are one immutable mapping, replaced whole: readers in any thread
take the reference, and no lock is held across a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bot.clock import Clock, iso_text
from bot.config.settings import Settings
from bot.daemon.control import ALL_ACCOUNTS, ControlResult, Outcome
from bot.daemon.overrides import OverrideProblem, OverridesRead, overrides_path, read_overrides
from bot.daemon.tuning import Tuning, base_tuning
from bot.model import BrokerSpec

__all__ = ["AccountTunings"]


@dataclass(frozen=True, slots=True)
class _FileState:
    """The file as last applied: whether it existed, when, and the start-up's problems."""

    exists: bool = False
    loaded_at: float | None = None
    problems: tuple[OverrideProblem, ...] = ()


class AccountTunings:
    """The tunings of ``specs`` (the supervisor's accounts) from the overrides file."""

    def __init__(
        self, settings: Settings, specs: Mapping[str, BrokerSpec], *, clock: Clock, log: Any
    ) -> None:
        self.settings = settings
        self.specs = specs
        self.clock = clock
        self.log = log
        self.path = overrides_path(settings)
        self._tunings: Mapping[str, Tuning] = {
            key: base_tuning(settings, spec) for key, spec in specs.items()
        }
        self._file = _FileState()

    def get(self, key: str) -> Tuning | None:
        """The account's current tuning (any thread)."""
        return self._tunings.get(key)

    def _read(self) -> OverridesRead:
        return read_overrides(self.path, self.specs, self.settings)

    # -- start-up ---------------------------------------------------------------------------
    def load(self) -> None:
        """Read the file at start-up (before any account trades); never refuses to start."""
        read = self._read()
        self._tunings = read.tunings
        self._file = _FileState(read.exists, self.clock.wall(), read.problems)
        for problem in read.problems:
            self.log.error(
                "overrides_invalid",
                file=problem.file,
                section=problem.section,
                key=problem.key,
                error=problem.message,
                accounts_held=list(problem.accounts) or None,
            )
        overridden = sorted(k for k, t in read.tunings.items() if t.override is not None)
        held = sorted(k for k, t in read.tunings.items() if t.held is not None)
        log = self.log.error if read.problems else self.log.info
        log(
            "overrides_loaded",
            file=str(self.path),
            exists=read.exists,
            accounts=overridden or None,
            problems=len(read.problems),
            entries_held=held or None,
        )

    # -- the operator's reload --------------------------------------------------------------
    def reload(self, account: str, actor: str) -> ControlResult:
        """Apply the whole file, or nothing (the desk's handler for ``overrides-reload``)."""
        if account not in ("", ALL_ACCOUNTS):
            return ControlResult(
                Outcome.BAD_REQUEST,
                account,
                "overrides-reload applies the file to every account at once: ask it without an "
                "account (nija_ctl.py overrides-reload, POST /api/v1/overrides/reload)",
            )
        read = self._read()
        old = self._tunings
        if not read.ok:
            return self._refused(read, old)
        new = {key: old[key] if old[key] == t else t for key, t in read.tunings.items()}
        self._tunings = new  # one swap: every account's next cycle sees the new file
        self._file = _FileState(read.exists, self.clock.wall())
        accounts = {key: _outcome(old[key], new[key]) for key in sorted(new)}
        changed = [f"{key} ({'; '.join(a['changes'])})" for key, a in accounts.items()
                   if a["outcome"] == "changed"]  # fmt: skip
        summary = f"{self.path} applied" if read.exists else f"no file at {self.path}: no overrides"
        said = f"changed from its next cycle: {', '.join(changed)}" if changed else "no change"
        details = {"summary": summary, "file": str(self.path), "applied": True, "errors": []}
        return ControlResult(
            Outcome.DONE,
            ALL_ACCOUNTS,
            f"{summary}; {said}",
            details=details | {"accounts": accounts},
        )

    def _refused(self, read: OverridesRead, old: Mapping[str, Tuning]) -> ControlResult:
        errors = [str(p) for p in read.problems]
        bad = read.bad_accounts()
        accounts = {
            key: {"outcome": "kept", "overrides": _doc(old[key]), "errors": bad.get(key, [])}
            for key in sorted(old)
        }
        summary = f"{self.path} refused, nothing changed (every account keeps its settings)"
        details = {"summary": summary, "file": str(self.path), "applied": False, "errors": errors}
        return ControlResult(
            Outcome.REFUSED,
            ALL_ACCOUNTS,
            f"{summary}: " + "; ".join(errors),
            details=details | {"accounts": accounts},
        )

    # -- documents --------------------------------------------------------------------------
    def account_document(self, key: str) -> dict[str, Any] | None:
        """status.json's ``overrides`` for the account: the overrides in force, or None."""
        tuning = self._tunings.get(key)
        return _doc(tuning) if tuning else None

    def account_error(self, key: str) -> str | None:
        """status.json's ``overrides_error``: why its overrides hold its entries, or None."""
        tuning = self._tunings.get(key)
        return tuning.held if tuning else None

    def file_document(self) -> dict[str, Any]:
        """status.json's ``overrides_file``: the file, when it was applied, start-up problems."""
        state = self._file
        return {
            "path": str(self.path),
            "exists": state.exists,
            "loaded_at": iso_text(state.loaded_at),
            "problems": [str(p) for p in state.problems],
        }

    def document(self) -> dict[str, Any]:
        """``GET /api/v1/overrides``: the file, and per account its overrides in force, its
        hold, and the settings it trades with."""
        tunings = self._tunings
        accounts = {
            key: {
                "overrides": _doc(tuning),
                "overrides_error": tuning.held,
                "effective": tuning.effective(),
            }
            for key, tuning in sorted(tunings.items())
        }
        return {**self.file_document(), "accounts": accounts}


def _doc(tuning: Tuning) -> dict[str, Any] | None:
    return tuning.override.document() if tuning.override else None


def _outcome(old: Tuning, new: Tuning) -> dict[str, Any]:
    """One account's part of a reload's answer: changed or unchanged, and what moved."""
    if new is old:
        return {"outcome": "unchanged", "overrides": _doc(new)}
    before, after = _flat(old), _flat(new)
    changes = [
        f"{name} {before.get(name)!r} -> {after.get(name)!r}"
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
    if old.held and not new.held:
        changes.append("new entries allowed again")
    if not changes:  # the same values, written in other sections
        sections = new.override.sections if new.override else ()
        changes.append(f"the same settings, from {', '.join(sections) or 'no section'}")
    return {"outcome": "changed", "before": _doc(old), "after": _doc(new), "changes": changes}


def _flat(tuning: Tuning) -> dict[str, Any]:
    """The overridable settings by name (``strategy.adx_min``), to compare two tunings."""
    flat = {k: v for k, v in tuning.effective().items() if k != "strategy"}
    flat |= {f"strategy.{k}": v for k, v in asdict(tuning.strategy).items()}
    return flat
