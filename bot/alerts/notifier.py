"""The notifier: its own bounded queue and thread between the daemon and the channels.

``put`` (an alert) and ``put_logged`` (a log line's fields, from ``bot.alerts.tap``) never
block and never raise: a full queue drops the alert and counts it. The notifier's thread
turns log lines into alerts (``bot.alerts.sources``), lets the ``Throttle`` decide, renders
each alert to send through the daemon's ``Redactor`` (every text, whatever its source), and
offers it to every channel's sender, each with its own queue and thread
(``bot.alerts.sender``): a channel that hangs delays neither trading nor the other channel.
Once a second it also asks the throttle for a due summary of what it held back.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.alerts.channels.base import Message
from bot.alerts.dedupe import Throttle, Verdict
from bot.alerts.events import AlertEvent, Severity
from bot.alerts.sender import ChannelSender
from bot.alerts.sources import alert_for
from bot.clock import Clock
from bot.errors import describe
from bot.redact import Redactor

__all__ = ["DRAIN_SECONDS", "AlertCounts", "Notifier"]

QUEUE_SIZE = 1000
DRAIN_SECONDS = 3.0  # how long ``close`` waits for the queued alerts to go out
_TICK_SECONDS = 1.0  # how often the thread looks for a due summary
_LABEL = {Severity.INFO: "INFO", Severity.WARNING: "WARNING", Severity.CRITICAL: "CRITICAL"}


@dataclass(frozen=True)
class AlertCounts:
    """What became of the alerts so far, for /metrics."""

    channels: dict[str, dict[str, int]]  # channel -> sent / failed / dropped
    suppressed: dict[str, int]  # duplicate / rate_limited / queue_full


@dataclass(frozen=True, slots=True)
class _Logged:
    fields: Mapping[str, Any]
    at: float


_STOP = object()


class Notifier:
    """Deduplicates, rate-limits, redacts and fans alerts out to the channels' senders."""

    def __init__(
        self,
        senders: Sequence[ChannelSender],
        throttle: Throttle,
        *,
        redactor: Redactor,
        clock: Clock,
        host: str,
        log: Any,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        if not senders:
            raise ValueError("a notifier needs at least one channel")
        self.senders = list(senders)
        self.throttle = throttle
        self.redactor = redactor
        self.clock = clock
        self.host = host
        self.log = log
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._suppressed = {"duplicate": 0, "rate_limited": 0, "queue_full": 0}
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)

    @property
    def channels(self) -> list[str]:
        return [s.name for s in self.senders]

    def start(self) -> None:
        for sender in self.senders:
            sender.start()
        self._thread.start()

    # -- the daemon's side: never blocks ---------------------------------------------------
    def put(self, event: AlertEvent) -> bool:
        """Queue ``event``; False when it was dropped (the queue is full, or closed)."""
        return self._offer(event)

    def put_logged(self, fields: Mapping[str, Any], at: float) -> bool:
        """Queue a log line's structlog fields (logged at wall time ``at``), which the
        notifier's thread turns into an alert if it calls for one."""
        return self._offer(_Logged(fields, at))

    def _offer(self, item: object) -> bool:
        if self._closed.is_set():
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._count("queue_full")
            return False
        return True

    def counts(self) -> AlertCounts:
        with self._lock:
            suppressed = dict(self._suppressed)
        return AlertCounts({s.name: s.counts() for s in self.senders}, suppressed)

    def close(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Stop taking alerts, send what is queued (with a final summary of what was held
        back) within ``timeout`` seconds, and stop. True when everything went out in time."""
        deadline = self.clock.monotonic() + timeout
        self._closed.set()
        # A full queue for the whole timeout: the thread is stuck; the joins give up in time.
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=max(0.0, timeout))
        self._thread.join(max(0.0, deadline - self.clock.monotonic()))
        done = not self._thread.is_alive()
        for sender in self.senders:
            sender.close()
        for sender in self.senders:
            done = sender.join(deadline - self.clock.monotonic()) and done
        return done

    # -- the notifier's thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=_TICK_SECONDS)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            self._guarded(self._handle, item)
        self._guarded(self._summarise, True)

    def _guarded(self, step: Any, arg: Any) -> None:
        try:
            step(arg)
        except Exception as exc:  # a bug must not end the thread: the next alert may work
            self.log.error("alert_failed", error=describe(exc, redactor=self.redactor))

    def _handle(self, item: object) -> None:
        event = self._event(item) if item is not None else None
        if event is not None:
            verdict = self.throttle.admit(event, self.clock.monotonic())
            if verdict is Verdict.SEND:
                self._fan_out(event)
            else:
                self._count(verdict.value)
        self._summarise(False)

    def _event(self, item: object) -> AlertEvent | None:
        if isinstance(item, AlertEvent):
            return item
        if not isinstance(item, _Logged):
            return None
        found = alert_for(self.redactor.redact_event(item.fields))
        if found is None:
            return None
        return AlertEvent(found.kind, found.subject, found.text, item.at, found.topic)

    def _summarise(self, final: bool) -> None:
        summary = self.throttle.summary(self.clock.monotonic(), self.clock.wall(), final=final)
        if summary is not None:
            self._fan_out(summary)

    def _fan_out(self, event: AlertEvent) -> None:
        message = self.render(event)
        for sender in self.senders:
            sender.offer(message)

    def render(self, event: AlertEvent) -> Message:
        """``event`` as it goes out; every text passes the redactor."""
        mask = self.redactor.redact
        subject = mask(event.subject)
        text = mask(f"[NIJA {self.host}] {_LABEL[event.severity]} {event.text}")
        at = datetime.fromtimestamp(event.at, UTC).isoformat().replace("+00:00", "Z")
        return Message(event.kind.value, event.severity.value, subject, text, at, self.host)

    def _count(self, reason: str) -> None:
        with self._lock:
            self._suppressed[reason] += 1
