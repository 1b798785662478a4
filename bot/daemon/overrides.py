"""The per-account overrides file: one account's own risk and strategy parameters.

A TOML file (``NIJA_OVERRIDES_FILE``, default ``<NIJA_DATA_DIR>/overrides.toml``; no file:
no overrides). One section per account key, and one per venue for every account on it::

    ["*/*/KRAKEN"]                  # every Kraken account of this daemon
    [ "*/*/KRAKEN".strategy ]
    adx_min = 25

    ["user/alice/KRAKEN"]           # alice only; her own section wins over the venue's
    risk_per_trade = 0.005
    max_positions = 2
    [ "user/alice/KRAKEN".strategy ]
    ema_fast = 8

A section takes ``risk_per_trade``, ``max_positions`` and a ``strategy`` table of the
default strategy's parameters (``bot.strategy.params.StrategyParams``). Values are judged
by the same rules as the global ones: the ``RiskParams`` and ``StrategyParams``
constructors, applied to each account's merged settings. Every problem is named with the
file, the section, the key and what is allowed; ``read_overrides`` reads the whole file
before anything is applied, and says which accounts each problem leaves without their
overrides.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bot.brokers import venues
from bot.config.settings import Settings
from bot.config.values import shown
from bot.daemon.control import parse_account_key
from bot.daemon.tuning import RISK_KEYS, AccountOverride, Tuning, base_tuning
from bot.engine.risk import RiskParams
from bot.model import BrokerSpec
from bot.strategy.params import StrategyParams

__all__ = [
    "OVERRIDES_FILE",
    "OverrideProblem",
    "OverridesRead",
    "overrides_path",
    "read_overrides",
]

OVERRIDES_FILE = "overrides.toml"
VENUE_PREFIX = "*/*/"
STRATEGY = "strategy"
_SECTION_KEYS = (*RISK_KEYS, STRATEGY)
_STRATEGY_KEYS = tuple(f.name for f in fields(StrategyParams))
_SECTION_HELP = 'an account key like "user/alice/KRAKEN", or "*/*/KRAKEN" for a whole venue'


def overrides_path(settings: Settings) -> Path:
    """``NIJA_OVERRIDES_FILE``, else ``overrides.toml`` in the data directory."""
    return Path(settings.overrides_file or Path(settings.data_dir) / OVERRIDES_FILE)


@dataclass(frozen=True, slots=True)
class OverrideProblem:
    """One thing wrong in the file: where (``section``, ``key``; None for the whole file),
    what is wrong and allowed, and the accounts it leaves without their overrides."""

    file: str
    section: str | None
    key: str | None
    message: str
    accounts: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = [f"[{self.section}]"] if self.section is not None else []
        where += [self.key] if self.key is not None else []
        return f"{self.file}: {' '.join(where)}{': ' if where else ''}{self.message}"


@dataclass(frozen=True)
class OverridesRead:
    """The file as read: every configured account's ``Tuning`` and the problems found.

    An account a problem names (``bad_accounts``) has the global settings here, held
    from new entries (``Tuning.held``): what it trades with at start-up. A reload applies
    nothing unless ``ok``.
    """

    path: Path
    exists: bool
    tunings: Mapping[str, Tuning]
    problems: tuple[OverrideProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad_accounts(self) -> dict[str, list[str]]:
        """Each account some problem leaves without its overrides, with those problems."""
        found: dict[str, list[str]] = {}
        for problem in self.problems:
            for key in problem.accounts:
                found.setdefault(key, []).append(str(problem))
        return found


@dataclass
class _Section:
    """One section as written: its risk values (by file key), its strategy parameters, and
    what is wrong in it (key or None, message)."""

    name: str
    risk: dict[str, Any] = field(default_factory=dict)
    strategy: dict[str, Any] = field(default_factory=dict)
    wrong: list[tuple[str | None, str]] = field(default_factory=list)


class _Reader:
    """Reads one file against this daemon's accounts; collects problems, never raises."""

    def __init__(self, path: Path, specs: Mapping[str, BrokerSpec], settings: Settings) -> None:
        self.file = str(path)
        self.specs = specs
        self.base = {key: base_tuning(settings, spec) for key, spec in specs.items()}
        # Problems by (section, key, message), with the accounts each leaves without overrides.
        self.problems: dict[tuple[str | None, str | None, str], list[str]] = {}

    def problem(
        self, section: str | None, key: str | None, message: str, accounts: Iterable[str] = ()
    ) -> None:
        named = self.problems.setdefault((section, key, message), [])
        named.extend(a for a in accounts if a not in named)

    def found(self) -> tuple[OverrideProblem, ...]:
        return tuple(
            OverrideProblem(self.file, section, key, message, tuple(sorted(accounts)))
            for (section, key, message), accounts in self.problems.items()
        )

    def read(self, doc: Mapping[str, Any]) -> dict[str, Tuning]:
        """Every account's tuning from ``doc``; an account whose sections are wrong gets the
        global settings here (``_held`` then holds its entries)."""
        by_venue, by_account = self._sections(doc)
        tunings: dict[str, Tuning] = {}
        for key, spec in self.specs.items():
            own = [s for s in (by_venue.get(spec.account.broker), by_account.get(key)) if s]
            wrong = [(s, w) for s in own for w in s.wrong]
            for section, (name, message) in wrong:
                self.problem(section.name, name, message, (key,))
            tuning = self._tuning(key, own)  # judged even so: every problem named at once
            tunings[key] = self.base[key] if wrong or tuning is None else tuning
        return tunings

    def _sections(self, doc: Mapping[str, Any]) -> tuple[dict[str, _Section], dict[str, _Section]]:
        """The venue sections (by venue) and the account sections (by account key)."""
        by_venue: dict[str, _Section] = {}
        by_account: dict[str, _Section] = {}
        brokers = {s.account.broker for s in self.specs.values()} | set(venues.VENUES)
        for name, body in doc.items():
            if not isinstance(body, dict):  # meant for whom? every account waits for a fix
                self.problem(None, name, f"a value outside any section: put it under a section "
                             f"named by {_SECTION_HELP}", self.specs)  # fmt: skip
                continue
            if name.startswith(VENUE_PREFIX):
                venue = name.removeprefix(VENUE_PREFIX).strip().upper()
                if venue not in brokers:
                    self.problem(name, None, f"no venue {venue!r}: the venues are "
                                 f"{', '.join(sorted(brokers))}")  # fmt: skip
                    continue
                target, where = by_venue, venue
            else:
                key = parse_account_key(name)
                if key is None or "*" in key:
                    self.problem(name, None, f"not a section name: use {_SECTION_HELP}")
                    continue
                if key not in self.specs:
                    known = ", ".join(sorted(self.specs))
                    self.problem(name, None, f"this daemon has no account {key} (it has {known})")
                    continue
                target, where = by_account, key
            if where in target:  # "user/alice/KRAKEN" and "User/Alice/kraken": which one?
                target[where].wrong.append(
                    (None, f"a second section [{name}] is for the same {where}: merge them")
                )
                continue
            target[where] = self._section(name, body)
        return by_venue, by_account

    def _section(self, name: str, body: Mapping[str, Any]) -> _Section:
        section = _Section(name)
        for key, value in body.items():
            if key in RISK_KEYS:
                message = _risk_problem(key, value)
                if message is None:
                    section.risk[key] = value
                else:
                    section.wrong.append((key, message))
            elif key == STRATEGY and isinstance(value, dict):
                for param, setting in value.items():
                    if param in _STRATEGY_KEYS:
                        section.strategy[param] = setting
                    else:
                        section.wrong.append(
                            (f"{STRATEGY}.{param}", _unknown(param, _STRATEGY_KEYS))
                        )
            elif key == STRATEGY:
                section.wrong.append((key, f'must be a table: [ "{name}".strategy ] with one '
                                     "parameter = value line per parameter under it"))  # fmt: skip
            elif key in _STRATEGY_KEYS:
                section.wrong.append(
                    (key, f'a strategy parameter: put it under [ "{name}".strategy ]')
                )
            else:
                section.wrong.append((key, _unknown(key, _SECTION_KEYS)))
        return section

    def _tuning(self, key: str, sections: list[_Section]) -> Tuning | None:
        """``key``'s tuning from its sections (the venue's first, the account's own wins), or
        None when the merged strategy parameters break a rule."""
        base = self.base[key]
        risk: dict[str, Any] = {}
        strategy: dict[str, Any] = {}
        for section in sections:
            risk |= section.risk
            strategy |= section.strategy
        if not (risk or strategy):
            return base
        try:
            params = replace(base.strategy, **strategy)
        except ValueError as exc:
            blamed = _blame(str(exc), sections)
            self.problem(blamed.name, STRATEGY, f"{exc} (the parameters set: "
                         f"{_shown_params(strategy)})", (key,))  # fmt: skip
            return None
        override = AccountOverride(
            risk=tuple(risk.items()),
            strategy=tuple(strategy.items()),
            sections=tuple(s.name for s in sections if s.risk or s.strategy),
        )
        risk_fields = {RISK_KEYS[k]: v for k, v in risk.items()}
        return replace(
            base, risk=replace(base.risk, **risk_fields), strategy=params, override=override
        )


def _risk_problem(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for risk key ``key`` by RiskParams' own rules, or None."""
    name = RISK_KEYS[key]
    try:
        RiskParams(**{name: value})
    except ValueError as exc:
        return str(exc).replace(name, key)  # the rule's own words, under the file's name
    return None


def _unknown(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown key {key!r}{hint}; allowed: {', '.join(allowed)}"


def _blame(message: str, sections: list[_Section]) -> _Section:
    """The section that set the parameter ``message`` names first (the account's own wins);
    for a rule between parameters, the last section that set any."""
    named = message.split(" ", 1)[0]
    setting = [s for s in sections if named in s.strategy] or [s for s in sections if s.strategy]
    return (setting or sections)[-1]


def _shown_params(strategy: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={shown(v) if isinstance(v, str) else v!r}" for k, v in strategy.items())


def read_overrides(
    path: Path, specs: Mapping[str, BrokerSpec], settings: Settings
) -> OverridesRead:
    """Read and judge the whole file against this daemon's accounts (``specs``)."""
    reader = _Reader(path, specs, settings)
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return OverridesRead(path, False, reader.base, ())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reader.problem(None, None, f"cannot be read: {text}", specs)
        problems = reader.found()
        return OverridesRead(path, True, _held(reader.base, problems), problems)
    tunings = reader.read(doc)
    problems = reader.found()
    return OverridesRead(path, True, _held(tunings, problems), problems)


def _held(
    tunings: Mapping[str, Tuning], problems: tuple[OverrideProblem, ...]
) -> dict[str, Tuning]:
    """Every account a problem names: the global settings, holding new entries."""
    out = dict(tunings)
    for problem in problems:
        for key in problem.accounts:
            if out[key].held is None:
                why = (
                    f"no new entries: its overrides could not be applied ({problem}); fix the "
                    "file and reload it (nija_ctl.py overrides-reload)"
                )
                out[key] = replace(out[key], override=None, held=why)
    return out
