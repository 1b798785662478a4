"""Settings that are valid but absurd: raised to a floor, or kept with a warning.

``load_settings`` refuses what cannot be a value at all (``0``, ``abc``); this catches
values that parse but make no sense to run with, which the daemon applies at start-up
and logs once, by variable name:

* an interval under 1 s (``NIJA_CYCLE_SECONDS``, ``<BROKER>_CYCLE_SECONDS``,
  ``NIJA_FUNDED_RECHECK_SECONDS``, ``NIJA_STATUS_LOG_SECONDS``, ``NIJA_CB_TIMEOUT_SECONDS``)
  is raised to 1 s: the watchdog ticks once a second, a faster cycle only hammers the
  venue (its rate limits are shared by every account on it), and a quarantine shorter
  than that is no quarantine;
* a call timeout over 300 s or under 1 s is kept, with a warning: it may be deliberate
  (a slow sandbox, a fast local emulator), and its cost is slow detection or spurious
  timeouts, not runaway requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.brokers import venues
from bot.config.settings import Settings

MIN_INTERVAL_SECONDS = 1.0
MAX_CALL_TIMEOUT_SECONDS = 300.0
MIN_CALL_TIMEOUT_SECONDS = 1.0

# Interval fields raised to MIN_INTERVAL_SECONDS, with what a shorter one would do.
_FLOORED = {
    "cycle_seconds": "a faster cycle only hammers the venue",
    "funded_recheck_seconds": "the watchdog checks once a second",
    "status_log_seconds": "the watchdog logs it at most once a second",
    "cb_timeout_seconds": "a shorter quarantine is no quarantine",
}


@dataclass(frozen=True, slots=True)
class SettingNotice:
    """One absurd setting: its variable, its value, what is used instead (or None: kept), why."""

    variable: str
    value: float
    used: float | None
    why: str

    def __str__(self) -> str:
        action = "kept" if self.used is None else f"raised to {self.used:g} s"
        return f"{self.variable}={self.value:g} {self.why}: {action}"


def _variable(field: str) -> str:
    return str(Settings.model_fields[field].validation_alias)


def apply_limits(settings: Settings) -> tuple[Settings, list[SettingNotice]]:
    """``settings`` with every interval under 1 s raised to 1 s, and a notice per absurd value."""
    notices: list[SettingNotice] = []
    changes: dict[str, Any] = {}
    floor = MIN_INTERVAL_SECONDS
    for field, why in _FLOORED.items():
        value = getattr(settings, field)
        if value < floor:
            changes[field] = floor
            notices.append(SettingNotice(_variable(field), value, floor, f"is under 1 s ({why})"))
    for broker, value in settings.broker_cycle_seconds:
        if value < floor:
            variable = venues.venue(broker).cycle_seconds_variable
            why = f"is under 1 s ({_FLOORED['cycle_seconds']})"
            notices.append(SettingNotice(variable, value, floor, why))
            changes["broker_cycle_seconds"] = tuple(
                (name, max(seconds, floor)) for name, seconds in settings.broker_cycle_seconds
            )
    timeout = settings.call_timeout_seconds
    if timeout > MAX_CALL_TIMEOUT_SECONDS:
        why = (
            f"is over {MAX_CALL_TIMEOUT_SECONDS:g} s (a hung broker call holds its account"
            " this long before it counts as a failure)"
        )
        notices.append(SettingNotice(_variable("call_timeout_seconds"), timeout, None, why))
    elif timeout < MIN_CALL_TIMEOUT_SECONDS:
        why = "is under 1 s (ordinary broker calls may time out)"
        notices.append(SettingNotice(_variable("call_timeout_seconds"), timeout, None, why))
    return settings.model_copy(update=changes), notices


__all__ = [
    "MAX_CALL_TIMEOUT_SECONDS",
    "MIN_CALL_TIMEOUT_SECONDS",
    "MIN_INTERVAL_SECONDS",
    "SettingNotice",
    "apply_limits",
]
