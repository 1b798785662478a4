"""The daemon's status.json as the checks read it: its content, whether its daemon is alive,
its age, and when it is too old; or, when it cannot be read, why (naming the file).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.cli.rows import timestamp
from bot.config.settings import Settings
from bot.daemon.status import STATUS_FILE, STATUS_REFRESH_SECONDS, read_status, write_interval

__all__ = [
    "STALE_AFTER_REFRESHES",
    "DaemonStatus",
    "pid_alive",
    "read_daemon_status",
    "records_now",
    "stale_after_seconds",
    "status_or_problem",
]

# The daemon's watchdog rewrites status.json every STATUS_REFRESH_SECONDS (a daemon of many
# accounts less often: ``write_interval``), and each cycle does too; older than this many
# refreshes (or than the longest cycle interval, if longer) means its watchdog or status
# writer is stuck (a full disk?), even if its pid is alive.
STALE_AFTER_REFRESHES = 3


@dataclass(frozen=True)
class DaemonStatus:
    """status.json as read: its content, and whether the daemon that wrote it is alive."""

    data: dict[str, Any]
    pid: int | None
    running: bool
    age_seconds: float | None

    @property
    def demo(self) -> bool:
        """True when the daemon runs the demo on simulated accounts."""
        return bool(self.data.get("demo"))

    def _trading_clock(self) -> tuple[float | None, float | None] | None:
        """status.json's ``trading_clock`` as (its time, its speed), either None when
        unreadable; None when the accounts record on the system's clock."""
        clock = self.data.get("trading_clock")
        if not isinstance(clock, dict):
            return None
        speed = clock.get("speed")
        return timestamp(clock.get("now")), speed if isinstance(speed, int | float) else None

    def trading_now(self, now: float) -> float:
        """The time on the clock the daemon's accounts trade and record on (``now``, the
        system's, but in the demo, whose clock runs faster: its P&L days are the demo's)."""
        at, speed = self._trading_clock() or (None, None)
        written = timestamp(self.data.get("updated_at"))
        if at is None or speed is None or written is None:
            return now
        # A stopped demo's clock stopped with it: its records are all before its last word.
        return at + max(0.0, now - written) * speed if self.running else at

    def trading_clock_note(self) -> str | None:
        """A line saying the days are the demo clock's, when they are (else None)."""
        clock = self._trading_clock()
        if clock is None:
            return None
        fast = "apart from" if clock[1] is None else f"{clock[1]:g} times as fast as"
        return f"Days on the demo's clock, which runs {fast} the wall clock (status.json trading_clock)."

    def account(self, key: str) -> dict[str, Any] | None:
        """The status entry of one account, or None when the daemon does not have it."""
        return self.data.get("accounts", {}).get(key)


def records_now(status: DaemonStatus | None, now: float) -> float:
    """``now`` on the clock the accounts' records are stamped on: the system's, but the
    demo's (60 times faster) when ``status`` says so (``DaemonStatus.trading_now``)."""
    return now if status is None else status.trading_now(now)


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists (``kill(pid, 0)`` sends nothing)."""
    if not isinstance(pid, int) or pid <= 0:  # 0 and negatives address process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def read_daemon_status(data_dir: str | Path, now: float) -> DaemonStatus | None:
    """``<data_dir>/status.json``, or None when there is none.

    OSError when it cannot be read, ValueError when it is not the daemon's status.
    """
    path = Path(data_dir) / STATUS_FILE
    data = read_status(path)
    if data is None:
        return None
    if not isinstance(data.get("accounts", {}), dict):
        raise ValueError("its accounts are not a JSON object")
    written = timestamp(data.get("updated_at")) or path.stat().st_mtime
    pid = data.get("pid")
    return DaemonStatus(data, pid if isinstance(pid, int) else None, pid_alive(pid), now - written)


def status_or_problem(data_dir: str | Path, now: float) -> tuple[DaemonStatus | None, str | None]:
    """status.json (None when there is none), or why it cannot be read: the file and the problem."""
    path = Path(data_dir) / STATUS_FILE
    try:
        return read_daemon_status(data_dir, now), None
    except PermissionError:
        why = "permission denied (run the check as the user the daemon runs as)"
    except OSError as exc:
        why = exc.strerror or str(exc)
    except json.JSONDecodeError as exc:
        why = f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
    except UnicodeDecodeError:
        why = "not UTF-8 text"
    except ValueError as exc:  # read_status names the file itself: say only what is wrong
        why = str(exc).replace(str(path), "it").removeprefix("it ")
    return None, f"cannot read the daemon's status {path}: {why}"


def stale_after_seconds(status: DaemonStatus, settings: Settings) -> float:
    """How old status.json may be before the daemon that writes it counts as stuck:
    ``STALE_AFTER_REFRESHES`` refreshes, or its longest cycle interval if that is longer."""
    accounts = status.data.get("accounts") or {}
    intervals = [a.get("interval_seconds") for a in accounts.values()]
    numbers = [float(i) for i in intervals if isinstance(i, int | float)]
    longest = max(numbers, default=settings.cycle_seconds)
    refresh = max(STATUS_REFRESH_SECONDS, write_interval(len(accounts)))
    return max(STALE_AFTER_REFRESHES * refresh, longest)
