"""A loopback fake of Telegram's Bot API and of a JSON webhook, for the alerts' tests.

``AlertSink`` is a real HTTP server on 127.0.0.1 (a free port) that records every request
and answers as a test tells it: ``sink.answer(Answer.too_many(2), route="telegram")`` queues
one-shot answers for a route, after which it answers 200 again. Telegram's route is
``POST /bot<token>/sendMessage`` (point ``NIJA_TELEGRAM_API_URL`` at ``sink.url``); every
other path is the webhook's (``sink.webhook_url``). Answers: 200, 429 with
``parameters.retry_after`` (and a ``Retry-After`` header), a 5xx, a 4xx, or a hang that holds
the connection until ``release()``, ``stop()`` or its bounded time is up.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["TELEGRAM", "WEBHOOK", "AlertSink", "Answer", "Received"]

TELEGRAM, WEBHOOK = "telegram", "webhook"
_TELEGRAM_PATH = re.compile(r"^/bot(?P<token>[^/]+)/sendMessage$")
MAX_HANG_SECONDS = 30.0


@dataclass(frozen=True)
class Answer:
    """How the sink answers one request."""

    status: int = 200
    retry_after: float | None = None  # a 429's, in Telegram's body and the Retry-After header
    hang_seconds: float = 0.0  # > 0: hold the connection (at most MAX_HANG_SECONDS), no answer
    description: str = ""

    @classmethod
    def ok(cls) -> Answer:
        return cls(200)

    @classmethod
    def too_many(cls, retry_after: float) -> Answer:
        return cls(429, retry_after, description=f"Too Many Requests: retry after {retry_after}")

    @classmethod
    def server_error(cls, status: int = 502) -> Answer:
        return cls(status, description="Bad Gateway")

    @classmethod
    def refused(cls, status: int = 400, description: str = "Bad Request: chat not found") -> Answer:
        return cls(status, description=description)

    @classmethod
    def hang(cls, seconds: float = MAX_HANG_SECONDS) -> Answer:
        return cls(hang_seconds=min(seconds, MAX_HANG_SECONDS))


@dataclass(frozen=True)
class Received:
    """One request the sink got."""

    route: str  # TELEGRAM or WEBHOOK
    path: str
    body: dict[str, Any] = field(default_factory=dict)  # the JSON body ({} if not JSON)
    raw: bytes = b""
    token: str | None = None  # Telegram's bot token, from the path

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


class AlertSink:
    """Fake Telegram and webhook endpoints on 127.0.0.1; ``start``, ``stop``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._answers: dict[str, list[Answer]] = {TELEGRAM: [], WEBHOOK: []}
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="alert-sink",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The base URL: NIJA_TELEGRAM_API_URL."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def webhook_url(self) -> str:
        """NIJA_ALERT_WEBHOOK_URL."""
        return f"{self.url}/hook"

    def start(self) -> AlertSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> AlertSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, *answers: Answer, route: str = TELEGRAM) -> None:
        """Answer the next requests of ``route`` so, one each; then 200 again."""
        with self._lock:
            self._answers[route].extend(answers)

    def release(self) -> None:
        """End every hang now (their connections close without an answer)."""
        self._release.set()

    def received(self, route: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if route is None or r.route == route]

    def texts(self, route: str = TELEGRAM) -> list[str]:
        return [r.text for r in self.received(route)]

    def _next(self, route: str) -> Answer:
        with self._lock:
            queued = self._answers[route]
            return queued.pop(0) if queued else Answer.ok()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                found = _TELEGRAM_PATH.match(self.path)
                route = TELEGRAM if found else WEBHOOK
                token = found.group("token") if found else None
                record = Received(
                    route, self.path, body if isinstance(body, dict) else {}, raw, token
                )
                with sink._lock:
                    sink._received.append(record)
                answer = sink._next(route)
                if answer.hang_seconds > 0:
                    sink._release.wait(answer.hang_seconds)
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._send(answer, route, len(sink.received(route)))

            def _send(self, answer: Answer, route: str, n: int) -> None:
                ok = 200 <= answer.status < 300
                if route == TELEGRAM:
                    reply: dict[str, Any] = {"ok": ok}
                    if ok:
                        reply["result"] = {"message_id": n}
                    else:
                        reply |= {"error_code": answer.status, "description": answer.description}
                    if answer.retry_after is not None:
                        reply["parameters"] = {"retry_after": answer.retry_after}
                else:
                    reply = {"ok": ok}
                payload = json.dumps(reply).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if answer.retry_after is not None:
                    self.send_header("Retry-After", f"{answer.retry_after:g}")
                self.end_headers()
                self.wfile.write(payload)

        return _Handler
