"""``GET /metrics``, answered in front of the Starlette app, on the server's event loop.

A scrape is the API's most frequent request (every 5 to 30 s, for as long as the daemon
runs), and at 100 accounts the HTTP machinery around it cost about as much as writing its
text (measured, scripts/profile_scrape.py): Starlette's routing and middleware, and above
all the hop to a worker thread and back. So ``MetricsFirst`` answers ``GET /metrics`` itself
and passes every other request (``HEAD /metrics`` too) to the Starlette app unchanged.

The text is made on the event loop: reading the daemon's memory, a few /proc files and
short locks, a few milliseconds at most. The one part that may wait (the state database's
totals, read at most every 30 s) is never read there: when it is due (or nearly), the
scrape runs in a worker thread as every other handler does, so a slow database cannot
stall the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.api.exposition import TextWriter
from bot.api.metrics import NijaCollector, VenueUp, metrics_registry

if TYPE_CHECKING:
    from starlette.responses import Response

    from bot.api.token import ApiToken
    from bot.daemon.supervisor import IndependentBrokerTrader

__all__ = ["CONTENT_TYPE", "METRICS_PATH", "MetricsFirst", "MetricsText"]

METRICS_PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4"
# The header Starlette's Response(media_type=CONTENT_TYPE) sends (a text type gets a charset).
_CONTENT_TYPE_HEADER = (b"content-type", f"{CONTENT_TYPE}; charset=utf-8".encode())


class MetricsText:
    """What ``/metrics`` serves: the daemon's registry, written by one kept ``TextWriter``."""

    def __init__(self, sup: IndependentBrokerTrader, venue_up: VenueUp | None = None) -> None:
        self.collector = NijaCollector(sup, venue_up)
        self.registry = metrics_registry(self.collector)
        self.writer = TextWriter()

    def may_wait(self) -> bool:
        """Whether making the text now may wait on I/O (the state database)."""
        return self.collector.store_due()

    def write(self) -> bytes:
        """The text exposition of this moment."""
        return self.writer.write(self.registry)


class MetricsFirst:
    """An ASGI app: ``GET /metrics`` answered here, every other request by ``app``.

    ``refusal(request)`` is the API's own token check (None: allowed; else its 401); a
    request whose Authorization header is exactly ``Bearer <token>`` is let through first,
    read from the raw headers.
    """

    def __init__(
        self,
        app: ASGIApp,
        text: MetricsText,
        token: ApiToken,
        refusal: Callable[[Request], Response | None],
    ) -> None:
        self.app = app
        self.text = text
        self.token = token
        self.refusal = refusal

    def _carries_token(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:  # uvicorn gives the names in lower case
            if name == b"authorization":
                return self.token.header_matches(value)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if not self._carries_token(scope):
            refused = self.refusal(Request(scope))  # says what is wrong; or lets it through
            if refused is not None:
                await refused(scope, receive, send)
                return
        if self.text.may_wait():  # a database read: in a worker thread, as any handler
            body = await run_in_threadpool(self.text.write)
        else:
            body = self.text.write()
        # The two ASGI messages Starlette's Response would send, without building one.
        length = (b"content-length", str(len(body)).encode())
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [length, _CONTENT_TYPE_HEADER]})
        await send({"type": "http.response.body", "body": body})
