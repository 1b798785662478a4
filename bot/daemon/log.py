"""Logging: structlog to stdout and a rotating ``nija.log``, with every secret masked.

One line per event, ``key=value`` after a UTC ISO timestamp::

    2026-01-02T03:04:05.123456Z level=info account=user/alice/KRAKEN event="cycle done" orders=2

``bot.py`` calls :func:`setup_logging` once, in the main thread, before any account
thread starts; the check scripts call :func:`setup_command_logging` (the same lines, on
stderr only). Account threads log through ``get_logger(account.key)``: the account is
bound into the logger object itself (not a thread-local or a contextvar, which leak
between tasks of a reused pool worker), so ``grep user/alice/KRAKEN nija.log`` shows
one account's story.

Every line passes a :class:`bot.redact.Redactor` before it is written: configured secret
values (and each line of a PEM body) are masked wherever they appear, and so is the value
of every field named like key/secret/passphrase/token/password, in structlog events and
in third-party stdlib ``logging`` records alike (ccxt, urllib3, coinbase). Structlog events
are handed to stdlib ``logging`` and rendered by our handlers' formatter, so both kinds
of record take the same, single path.
"""

from __future__ import annotations

import importlib
import json
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from structlog.typing import EventDict

from bot.daemon.diskfull import DISK_FULL_REPEAT_SECONDS
from bot.errors import is_disk_full
from bot.redact import MASK, Redactor, is_secret_name

__all__ = [
    "MASK",
    "Redactor",
    "get_logger",
    "is_secret_name",
    "setup_logging",
    "shutdown_logging",
]

# Third-party SDK loggers that dump request headers or bodies below these levels.
# uvicorn (the HTTP API's server) says "started", "shutting down" at INFO: NIJA says that.
_SDK_LOGGER_FLOORS = {"ccxt": logging.INFO, "urllib3": logging.INFO, "uvicorn": logging.WARNING}
# Coinbase's SDK gives these loggers their own stderr handler and, with verbose=True,
# logs raw response bodies at DEBUG: they go through our handlers at WARNING only.
_COINBASE_MODULES = ("coinbase.rest.rest_base", "coinbase.websocket.websocket_base")
_COINBASE_LOGGERS = ("coinbase.RESTClient", "coinbase.WSClient")
_COINBASE_LEVEL = logging.WARNING
# How a rendered value is quoted: bare when it is one printable token.
_BARE_VALUE = re.compile(r"[^\s\"=\\]+")
# The log quotes venues' answers: the operator's alone (0600), whatever the umask.
LOG_FILE_MODE = 0o600
# Characters some tools treat as line breaks although JSON leaves them unescaped.
_EXTRA_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _quote_value(text: str) -> str:
    """``text`` bare when it is one printable token, else as a one-line JSON string."""
    if _BARE_VALUE.fullmatch(text) and text.isprintable():
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    for char, escaped in _EXTRA_BREAKS.items():
        quoted = quoted.replace(char, escaped)
    return quoted


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return _quote_value(value)
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        # Compact JSON reads well bare; quoted only when it holds spaces or breaks.
        if text.isprintable() and not any(char.isspace() for char in text):
            return text
        return _quote_value(text)
    return _quote_value(str(value))


_FIRST_KEYS = ("level", "account", "event", "logger")


def drop_none(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """Leave out the fields whose value is None (``error=None`` on every good cycle is noise)."""
    return {key: value for key, value in event_dict.items() if value is not None}


@dataclass(frozen=True)
class LineRenderer:
    """Last processor: redact the event and render it as one ``key=value`` line."""

    redactor: Redactor

    def __call__(self, _logger: Any, _method: str, event_dict: EventDict) -> str:
        """The event as one redacted line (no newline inside, ever)."""
        clean = self.redactor.redact_event(event_dict)
        parts = [str(clean.pop("timestamp", ""))]
        exception = clean.pop("exception", None)
        for key in _FIRST_KEYS:
            if key in clean:
                parts.append(f"{key}={_format_value(clean.pop(key))}")
        parts += [f"{key}={_format_value(value)}" for key, value in clean.items()]
        if exception is not None:
            parts.append(f"exception={_format_value(exception)}")
        # Belt and braces: no configured value survives rendering, whatever its field.
        return self.redactor.mask_values(" ".join(part for part in parts if part))


class _NijaHandler:
    """Marks our handlers (so setup can replace them) and redacts logging errors."""

    redactor: Redactor = Redactor()
    failed_writes: int = 0
    disk_full_said_at: float | None = None  # record time of the last "disk full" report

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a failed emit without the record's message or args (stdlib prints both).

        A full disk fails every record: it is said once, then at most every
        ``DISK_FULL_REPEAT_SECONDS`` (by the records' own times) while it lasts.
        """
        error = sys.exc_info()[1]
        if not logging.raiseExceptions:
            self.failed_writes += 1
            return
        text = f"nija logging: could not write a record of {record.name}: {error!r}\n"
        if is_disk_full(error):
            said = self.disk_full_said_at
            if said is not None and 0 <= record.created - said < DISK_FULL_REPEAT_SECONDS:
                self.failed_writes += 1
                return
            self.disk_full_said_at = record.created
            target = getattr(self, "baseFilename", "stdout")
            text = (
                f"nija logging: disk full, cannot write {target}: {error!r}; records are lost"
                f" (said again at most every {DISK_FULL_REPEAT_SECONDS:g} s while it lasts)\n"
            )
        try:
            sys.stderr.write(self.redactor.redact(text))
        except OSError:
            # Nowhere left to report it: count it instead of breaking the caller's thread.
            self.failed_writes += 1


class _StdoutHandler(_NijaHandler, logging.StreamHandler):
    """Writes to ``sys.stdout`` as it is when each record is written, like stdlib's
    last-resort handler, so a later redirection of stdout is followed."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)  # StreamHandler.__init__ would pin one stream

    @property
    def stream(self) -> Any:
        return sys.stdout


class _StderrHandler(_StdoutHandler):
    """Writes to ``sys.stderr`` as it is when each record is written (the commands' log)."""

    @property
    def stream(self) -> Any:
        return sys.stderr


class _FileHandler(_NijaHandler, logging.handlers.RotatingFileHandler):
    """``nija.log`` and its rotations, readable by their owner only, whatever the umask."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_FILE_MODE)
        try:
            os.fchmod(fd, LOG_FILE_MODE)  # also a file an older version left readable
            return open(fd, self.mode, encoding=self.encoding, errors=self.errors)
        except BaseException:
            os.close(fd)
            raise


def _coinbase_filter(record: logging.LogRecord) -> bool:
    """Drops coinbase records below WARNING even after ``verbose=True`` lowers the level."""
    return record.levelno >= _COINBASE_LEVEL


def _record_time(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Stamp a line with its record's creation time (the same on stdout and in the file),
    always with microseconds (``isoformat`` would drop them at microsecond 0)."""
    created = event_dict["_record"].created
    stamp = datetime.fromtimestamp(created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event_dict["timestamp"] = stamp
    return event_dict


def _parse_level(level: str) -> int:
    number = logging.getLevelName(str(level).upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    return number


def _tame_third_party(level: int) -> None:
    """Send SDK loggers through our handlers, at levels that do not dump headers."""
    for module in _COINBASE_MODULES:
        # Importing creates the SDK's own stderr handlers now, so they are removed below
        # rather than added after setup.
        importlib.import_module(module)
    for name in _COINBASE_LOGGERS:
        coinbase_logger = logging.getLogger(name)
        coinbase_logger.setLevel(max(level, _COINBASE_LEVEL))
        coinbase_logger.addFilter(_coinbase_filter)  # added once: addFilter skips a duplicate
    for name, floor in _SDK_LOGGER_FLOORS.items():
        logging.getLogger(name).setLevel(max(level, floor))
    # A library's own plain StreamHandler prints unredacted text: remove it and let the
    # record propagate to ours (this is how coinbase's handlers go).
    for sdk_logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(sdk_logger, logging.Logger):
            continue
        for handler in list(sdk_logger.handlers):
            if type(handler) is logging.StreamHandler:
                sdk_logger.removeHandler(handler)
                sdk_logger.propagate = True


def _remove_handlers(root: logging.Logger) -> None:
    # Ours from an earlier setup, and the plain ones logging.basicConfig() leaves, which
    # would print third-party records unredacted.
    for handler in list(root.handlers):
        if isinstance(handler, _NijaHandler) or type(handler) in (
            logging.StreamHandler,
            logging.FileHandler,
        ):
            root.removeHandler(handler)
            handler.close()


def setup_logging(
    log_file: str | Path,
    secrets: Iterable[str],
    level: str = "INFO",
    stdout: bool = True,
    max_bytes: int = 10_000_000,
    backups: int = 5,
) -> None:
    """Configure structlog and stdlib logging: stdout and a rotating ``log_file``.

    Call once from the main thread before account threads start. Calling it again
    replaces the handlers, the file and the secrets (it never duplicates handlers).
    ``secrets`` is typically ``bot.config.secrets.secret_values(os.environ)``.
    """
    if max_bytes <= 0 or backups < 0:
        raise ValueError("max_bytes must be > 0 and backups >= 0")
    number = _parse_level(level)
    redactor = Redactor(tuple(s for s in secrets if isinstance(s, str) and s))
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[_FileHandler | _StdoutHandler] = [
        _FileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    ]
    if stdout:
        handlers.append(_StdoutHandler())
    _install(handlers, redactor, number)


def setup_command_logging(redactor: Redactor, level: str = "WARNING") -> None:
    """Configure logging for a command (the check scripts): every record, structlog's and
    the SDKs' (Coinbase's own logger quotes a venue's error body), to ``sys.stderr``
    through ``redactor``; stdout stays the command's own. Undo with ``shutdown_logging``."""
    _install([_StderrHandler()], redactor, _parse_level(level))


def _install(handlers: list[_FileHandler | _StdoutHandler], redactor: Redactor, level: int) -> None:
    """Make ``handlers`` the root logger's, each rendering through ``redactor``; structlog
    events go through them too."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.format_exc_info,
        ],
        processors=[
            _record_time,  # structlog's events too: one timestamp format for every line
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            drop_none,
            LineRenderer(redactor),
        ],
    )
    root = logging.getLogger()
    _remove_handlers(root)
    for handler in handlers:
        handler.redactor = redactor
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    _tame_third_party(level)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.StackInfoRenderer(),
            # Render tracebacks now, in the raising thread, so they are redacted as text.
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger made before a second setup still follows the new one.
        cache_logger_on_first_use=False,
    )


def learn_secrets(secrets: Iterable[str]) -> None:
    """Mask these values too in every line from now on (a key reloaded while running)."""
    seen: set[int] = set()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _NijaHandler) and id(handler.redactor) not in seen:
            seen.add(id(handler.redactor))  # the handlers of one setup share one redactor
            handler.redactor.learn(secrets)


def shutdown_logging() -> None:
    """Flush and close our handlers, and with them the secrets (at exit, and in tests)."""
    _remove_handlers(logging.getLogger())
    structlog.reset_defaults()


def get_logger(account_key: str | None = None, **bound: Any) -> Any:
    """A structlog logger with ``account=<account_key>`` (when given) and ``bound`` on every line.

    The values live in the logger object, so a thread logs its own account no matter
    which thread or pool worker runs it. It resolves the configuration when it logs,
    so a logger made before ``setup_logging`` still writes through it.
    """
    if account_key is not None:
        bound = {"account": account_key, **bound}
    return structlog.get_logger(**bound)
