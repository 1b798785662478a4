"""The one place alerts come from: a logging handler on the daemon's log.

Every structlog event reaches stdlib logging with its fields as the record's message
(``bot.daemon.log``). ``AlertTap`` passes the fields of the lines named in
``bot.alerts.sources`` to the notifier's queue, and ignores every other line. Its work in
the logging thread (an account's, often) is a name lookup, a dict copy and a
``put_nowait``: the rest happens in the notifier's thread. It survives
``bot.daemon.log.setup_logging`` being called again (which replaces only its own handlers);
``remove`` takes it off.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.alerts.sources import SOURCE_EVENTS

__all__ = ["AlertTap"]


class _Queue(Protocol):
    def put_logged(self, fields: dict, at: float) -> bool: ...


class AlertTap(logging.Handler):
    """Hands the alert-worthy log lines to a notifier; ``install`` and ``remove``."""

    def __init__(self, notifier: _Queue) -> None:
        super().__init__(level=logging.INFO)
        self.notifier = notifier

    def handle(self, record: logging.LogRecord) -> bool:
        # Without the handler's lock: every thread's every line passes here, and emit only
        # reads the record and hands a copy to a thread-safe queue.
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Hand the line over when its event is an alert's source. Cannot raise (it runs in
        the caller's ``log.info``): type checks, a set lookup, a dict copy, ``put_logged``."""
        fields = record.msg
        if not isinstance(fields, dict):
            return  # a third-party library's record: never an alert's source
        event = fields.get("event")
        if isinstance(event, str) and event in SOURCE_EVENTS:
            # A copy: the caller's dict is rendered by the other handlers meanwhile.
            self.notifier.put_logged(dict(fields), record.created)

    def install(self) -> AlertTap:
        """Listen to every log line of the process (the root logger's)."""
        logging.getLogger().addHandler(self)
        return self

    def remove(self) -> None:
        logging.getLogger().removeHandler(self)
