"""One daemon per data directory, and whether the last one stopped cleanly.

The daemon holds an exclusive ``fcntl.flock`` on ``<NIJA_DATA_DIR>/nija.lock`` for as long
as it runs. The kernel drops the lock when the process ends, however it ends (SIGKILL, a
crash), so unlike a pidfile a dead daemon never blocks the next start. While the daemon
runs the file holds its pid; a clean stop empties it. A pid found in the file at start-up
is therefore a previous run that did not stop cleanly.

The check commands never take the lock (they would stop a daemon from starting);
``nija_ctl.py`` reads the pid with ``holder_pid`` to find the running daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from bot.errors import StartupError

__all__ = ["LOCK_FILE", "DataDirLock", "DataDirLocked", "holder_pid"]

LOCK_FILE = "nija.lock"
_DIR_FIX = (
    "fix: NIJA_DATA_DIR must be a directory this user can write (create it, correct its "
    "owner or permissions, or point NIJA_DATA_DIR elsewhere)"
)


class DataDirLocked(StartupError):
    """Another daemon holds the data directory's lock; ``pid`` is its pid when it wrote one."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "a process that has not written its pid yet"
        super().__init__(
            f"another NIJA daemon ({holder}) is already running on the data directory "
            f"{data_dir} (it holds {data_dir / LOCK_FILE}); fix: stop that daemon first, "
            "or give this one its own NIJA_DATA_DIR"
        )
        self.pid = pid


def _parse_pid(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    return _parse_pid(os.read(fd, 64).decode("ascii", "replace"))


def holder_pid(data_dir: str | Path) -> int | None:
    """The pid written in the data directory's lock file: the running daemon's, or that of
    a run that did not stop cleanly (check it with ``pid_alive``). None when there is none."""
    try:
        return _parse_pid((Path(data_dir) / LOCK_FILE).read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError):
        return None


def _unusable(data_dir: Path, error: OSError | str) -> StartupError:
    why = error if isinstance(error, str) else (error.strerror or str(error))
    return StartupError(f"cannot use the data directory {data_dir}: {why}; {_DIR_FIX}")


@dataclass
class DataDirLock:
    """The held lock of one data directory; ``previous_pid`` is a run that did not stop cleanly."""

    path: Path
    previous_pid: int | None
    _fd: int

    @classmethod
    def acquire(cls, data_dir: str | Path) -> DataDirLock:
        """Create the directory if needed and lock it; ``DataDirLocked`` when another daemon
        holds it, ``StartupError`` when the directory cannot be used. Never waits."""
        data_dir = Path(data_dir)
        path = data_dir / LOCK_FILE
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            if not data_dir.is_dir():
                raise _unusable(data_dir, "it is not a directory")
            if not os.access(data_dir, os.W_OK | os.X_OK):
                raise _unusable(data_dir, "it is not writable")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        except OSError as exc:
            raise _unusable(data_dir, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirLocked(data_dir, pid) from None
        except OSError as exc:
            os.close(fd)
            raise _unusable(data_dir, exc) from exc
        try:
            previous = _read_pid(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)  # closing drops the lock
            raise _unusable(data_dir, exc) from exc
        return cls(path, previous, fd)

    def release(self, clean: bool = True) -> None:
        """Unlock; a ``clean`` stop first empties the file, so the next start finds no pid."""
        if self._fd < 0:
            return
        try:
            if clean:
                with contextlib.suppress(OSError):  # then the next start reports an unclean stop
                    os.ftruncate(self._fd, 0)
                    os.fsync(self._fd)
        finally:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = -1
