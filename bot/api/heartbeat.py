"""The dead-man's switch: ``NIJA_HEARTBEAT_URL`` is fetched every ``NIJA_HEARTBEAT_SECONDS``.

In the style of healthchecks.io or an Uptime Kuma push monitor: the monitor expects a ping
every period and alerts when they stop, so the operator learns that the daemon died even
when it cannot say so itself. A ping is sent only while the daemon is live (its supervisor
loop ran recently, ``bot.api.probes.liveness``): a hung daemon stops pinging too.

It runs in its own thread and every ping is bounded (a timeout under the period), so a
slow or dead monitor never delays trading. A failing streak is logged once when it starts
(``heartbeat_failed``) and once when it ends (``heartbeat_recovered``, with how many pings
failed). The URL itself is never logged: a ping URL is a capability; only its host is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

__all__ = ["Heartbeat"]

MAX_PING_TIMEOUT_SECONDS = 10.0


class Heartbeat:
    """Pings ``url`` every ``interval`` seconds while ``alive()``; ``start`` and ``stop``."""

    def __init__(
        self,
        url: str,
        interval: float,
        *,
        alive: Callable[[], bool],
        log: Any,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.interval = interval
        self.alive = alive
        self.log = log
        self.host = urlsplit(url).hostname or "?"
        self.timeout = min(MAX_PING_TIMEOUT_SECONDS, interval / 2)
        self._session = session or requests.Session()
        self._session.trust_env = False  # no proxy from the environment between us and it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.sent = 0  # pings answered 2xx
        self.failed_streak = 0  # pings failed since the last that worked
        self._skipping = False

    def start(self) -> None:
        self.log.info("heartbeat_started", host=self.host, every_s=self.interval)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._session.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.interval)

    def beat(self) -> None:
        """One period: ping when the daemon is live, else skip (said once per streak)."""
        if not self.alive():
            if not self._skipping:
                self._skipping = True
                self.log.warning("heartbeat_skipped", reason="the supervisor loop is not live")
            return
        self._skipping = False
        problem = self._ping()
        if problem is None:
            if self.failed_streak:
                self.log.info("heartbeat_recovered", host=self.host, failed=self.failed_streak)
            self.failed_streak = 0
            self.sent += 1
            return
        if self.failed_streak == 0:
            self.log.warning("heartbeat_failed", host=self.host, error=problem)
        self.failed_streak += 1

    def _ping(self) -> str | None:
        """None when the monitor answered 2xx; else what went wrong (never the URL)."""
        try:
            response = self._session.get(self.url, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return type(exc).__name__
        response.close()
        if not 200 <= response.status_code < 300:
            return f"HTTP {response.status_code}"
        return None
