"""status.json: written atomically by one writer thread, read by the check scripts.

Account threads never write the file themselves: they mark the status dirty and go
on. The writer builds the document from plain snapshots and the isolation manager
(per-account locks held for microseconds), masks every secret in it (a venue's error text
may quote a key), writes a temporary file and renames it, so a reader never sees half a
file and no account waits on the disk. The file is readable by its owner only (0600).

The file holds one top-level key per line and one account per line (``cat`` shows one
account on each); ``bot.daemon.status_lines`` keeps each account's line between writes.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.daemon.status_lines import AccountLines, document_text
from bot.redact import Redactor

STATUS_FILE = "status.json"
# Error texts and balances are the operator's alone, whatever the umask.
STATUS_FILE_MODE = 0o600
# How often a running daemon rewrites status.json: its watchdog marks it dirty every tick.
STATUS_REFRESH_SECONDS = 1.0
# The shortest time between two writes of a small daemon's status.json...
MIN_WRITE_INTERVAL = 0.5
# ...and of a large one's: one second per this many accounts. A write costs CPU in
# proportion to the accounts (at 500, 2 cores: about 10 ms, 35 ms when every entry changed;
# scripts/bench_status.py), so its share of the daemon stays flat: 500 accounts, every 5 s.
ACCOUNTS_PER_WRITE_SECOND = 100


def write_interval(accounts: int) -> float:
    """The shortest time between two writes of status.json for ``accounts`` accounts."""
    return max(MIN_WRITE_INTERVAL, accounts / ACCOUNTS_PER_WRITE_SECOND)


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write JSON to ``path`` (mode 0600) through a temporary file and a rename."""
    write_text_atomically(path, json.dumps(document, indent=1, sort_keys=True, default=str))


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600) through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, STATUS_FILE_MODE)  # mkstemp's 0600 today; said here, not assumed
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status.json, or None when there is none; ValueError when it is not a JSON object.

    The daemon writes it atomically, so an unreadable file is worth an error, not a guess.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


class StatusWriter:
    """Rewrites status.json whenever marked dirty, at most every ``min_interval`` seconds.

    Every document ``build`` returns passes ``redactor.mask_data`` before it is written. An
    account's entry equal to the one written last time is neither masked nor encoded
    again (``AccountLines``): the file is rewritten every second, an entry changes about
    once a cycle, and masking and encoding every entry of hundreds of accounts every
    second was most of the daemon's CPU.
    """

    def __init__(
        self,
        path: Path,
        build: Callable[[], dict[str, Any]],
        *,
        min_interval: float = MIN_WRITE_INTERVAL,
        on_error: Callable[[Exception], None] | None = None,
        redactor: Redactor | None = None,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._build = build
        self._redactor = redactor or Redactor()
        self._min_interval = min_interval
        self._on_error = on_error
        self._on_written = on_written  # after each successful write (a failure may be over)
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._mask_lock = threading.Lock()  # the writer thread, and start-up / shutdown
        self._lines = AccountLines(self._redactor)  # under _mask_lock
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name="status-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def mark_dirty(self) -> None:
        self._dirty.set()

    def write_now(self) -> None:
        """Write from the calling thread (start-up, shutdown)."""
        try:
            write_text_atomically(self.path, self._text(self._build()))
            self.writes += 1
        except Exception as exc:  # a full disk must not stop trading; it is reported
            if self._on_error is None:
                raise
            self._on_error(exc)
            return
        if self._on_written is not None:
            self._on_written()

    def _text(self, document: dict[str, Any]) -> str:
        """``document`` masked and encoded; each account's entry by ``AccountLines``."""
        accounts = document.get("accounts")
        if not isinstance(accounts, dict):
            return document_text(self._redactor.mask_data(document), None)
        rest = self._redactor.mask_data({k: v for k, v in document.items() if k != "accounts"})
        with self._mask_lock:
            lines = self._lines.lines(accounts)
        return document_text(rest, lines)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.write_now()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._dirty.clear()
            self.write_now()
            self._stop.wait(self._min_interval)
