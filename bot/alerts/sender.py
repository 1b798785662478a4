"""One channel's own queue and thread: a dead or slow channel holds up no one else.

``offer`` never blocks: a full queue drops the message and counts it. The thread sends
each message, trying again after a 429 (as long as the channel asked, at most
``MAX_WAIT_SECONDS``), a 5xx, a timeout or no connection (2 s, then 4 s), at most
``MAX_ATTEMPTS`` times in all; any other failure is final at once. Failures are visible: a
log line ``alert_send_failed channel=... error=...`` when a failing streak starts and at
most every ``FAILURE_LOG_SECONDS`` while it lasts (with how many failed since), one
``alert_send_recovered`` when it ends, and the counts (``counts``) for /metrics.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from bot.alerts.channels.base import Channel, Delivery, Message, Result
from bot.clock import Clock
from bot.errors import describe
from bot.redact import Redactor

__all__ = [
    "BACKOFF_SECONDS",
    "FAILURE_LOG_SECONDS",
    "MAX_ATTEMPTS",
    "MAX_WAIT_SECONDS",
    "ChannelSender",
]

MAX_ATTEMPTS = 3
BACKOFF_SECONDS = 2.0  # the wait before the second attempt; doubled before each next one
MAX_WAIT_SECONDS = 60.0  # the longest wait honoured, whatever a 429 asks
FAILURE_LOG_SECONDS = 300.0
QUEUE_SIZE = 100
_IDLE_SECONDS = 1.0  # how often an idle thread looks whether it should stop
OUTCOMES = ("sent", "failed", "dropped")


class ChannelSender:
    """Sends one channel's messages from its own thread; ``start``, ``offer``, ``close``."""

    def __init__(
        self,
        channel: Channel,
        *,
        clock: Clock,
        log: Any,
        redactor: Redactor | None = None,
        queue_size: int = QUEUE_SIZE,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        """``redactor`` masks the errors it logs (a channel's answer is quoted in them);
        ``wait(seconds)`` sleeps between attempts and is True when the sender is aborted
        meanwhile (a test passes one that only records)."""
        self.channel = channel
        self.name = channel.name
        self.clock = clock
        self.log = log
        self.redactor = redactor or Redactor()
        # None: "look whether to stop" (close's wake-up call, behind what is queued).
        self._queue: queue.Queue[Message | None] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._aborted = threading.Event()
        self._wait = wait or self._aborted.wait
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._streak = 0  # failures since the last message that went out
        self._untold = 0  # failures of the streak not yet in a log line
        self._told_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"alerts-{self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, message: Message) -> bool:
        """Queue ``message``; never blocks. False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self._count("dropped")
            return False
        return True

    def counts(self) -> dict[str, int]:
        """Messages sent, failed (after every attempt) and dropped (queue full), so far."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        """Send what is queued, then stop (see ``join``)."""
        self._closing.set()
        with contextlib.suppress(queue.Full):  # full: it looks again within a second
            self._queue.put_nowait(None)

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; past ``timeout`` it is aborted (a wait between
        attempts ends at once, a request in flight is left to its timeout). True when done."""
        self._thread.join(max(0.0, timeout))
        if self._thread.is_alive():
            self._aborted.set()
            return False
        self.channel.close()
        return True

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self._aborted.is_set():
            try:
                message = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                message = None
            if message is None:
                if self._closing.is_set() and self._queue.empty():
                    return
                continue
            try:
                self._deliver(message)
            except Exception as exc:  # a bug must not end the channel's thread
                self._failed(f"unexpected {describe(exc)}", 1)

    def _deliver(self, message: Message) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            delivery = self.channel.send(message)
            if delivery.result is Result.SENT:
                self._sent()
                return
            if delivery.result is Result.FAILED or attempt == MAX_ATTEMPTS:
                break
            if self._wait(self._pause(delivery, attempt)):
                break  # aborted: the daemon is gone
        self._failed(delivery.error or "failed", attempt)

    @staticmethod
    def _pause(delivery: Delivery, attempt: int) -> float:
        asked = delivery.retry_after
        wait = asked if asked is not None else BACKOFF_SECONDS * 2 ** (attempt - 1)
        return min(max(wait, 0.0), MAX_WAIT_SECONDS)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    def _sent(self) -> None:
        self._count("sent")
        if self._streak:
            self.log.info("alert_send_recovered", channel=self.name, failed=self._streak)
        self._streak = self._untold = 0
        self._told_at = None

    def _failed(self, error: str, attempts: int) -> None:
        self._count("failed")
        self._streak += 1
        self._untold += 1
        now = self.clock.monotonic()
        if self._told_at is not None and now - self._told_at < FAILURE_LOG_SECONDS:
            return
        self.log.warning(
            "alert_send_failed",
            channel=self.name,
            error=self.redactor.redact(error),
            attempts=attempts,
            failed=self._untold,
            note="the alert is lost; trading is not affected",
        )
        self._told_at, self._untold = now, 0
