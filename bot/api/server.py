"""The HTTP API's server: uvicorn serving the Starlette app in a daemon thread.

Why Starlette on uvicorn: both are widely used and actively maintained (encode), small,
typed, and run inside a threaded daemon without taking it over. uvicorn runs its own
event loop in its own thread (it installs signal handlers only in the main thread, so the
daemon's SIGTERM handling is untouched), and Starlette runs the plain handler functions in
worker threads, so a slow store read never stalls the server, let alone a trading thread.
The same server carries the dashboard page and its files (bot/api/dashboard.py).

The socket is bound here, before the server starts, so a port that is taken or an address
that does not exist stops the daemon's start with one clear line (exit 2), and port 0
gives a free port that the ``http_listening`` line names.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bot.api.app import build_app
from bot.api.metrics import VenueUp
from bot.api.token import ApiToken, load_token
from bot.api.views import VenueHealth
from bot.config.settings import Settings
from bot.daemon.log import learn_secrets
from bot.errors import StartupError

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader

__all__ = ["OS_THREAD_NAME", "ApiServer", "start_api"]

KEEP_ALIVE_SECONDS = 75
_WAKE_SECONDS, _TICKS_PER_WAKE = 30.0, 300  # uvicorn's tick is 0.1 s
# uvicorn starts serving a bound socket in milliseconds: wait up to 5 s in 10 ms steps.
_STARTUP_POLLS, _POLL_SECONDS = 500, 0.01
# The server thread's name as the OS shows it (top -H, /proc/<pid>/task/*/comm). The threads
# it starts (Starlette's handler threads) inherit it, so the API's CPU can be told apart.
OS_THREAD_NAME = "nija-http"
_PR_SET_NAME = 15  # prctl(2)


def _name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` as the OS sees it (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


class _Server(uvicorn.Server):
    """uvicorn's server, waking every ``_WAKE_SECONDS`` instead of ten times a second.

    uvicorn's main loop sleeps 0.1 s between its housekeeping ticks (the Date header, the
    exit flag): 6.5 ms of CPU a second in an idle daemon, measured (bench_api.py), and still
    0.5 ms a second at one tick a second, a quarter of the API's 2 % budget at 100 accounts.
    A wake still costs 0.3 to 1 ms of CPU in a busy daemon (its caches are cold): every 5 s
    that was a tenth of that budget, every 30 s about 1 %. Each wake counts as the ticks it
    stood for (the Date header is up to 30 s old, which no client reads), and ``wake`` ends
    the sleep at once, so a stop is prompt.
    """

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + _TICKS_PER_WAKE) % 864_000
            with contextlib.suppress(TimeoutError):  # the usual end of the sleep
                await asyncio.wait_for(self._wake.wait(), _WAKE_SECONDS)
            should_exit = await self.on_tick(counter)

    def wake(self) -> None:
        """End the current sleep from any thread (after setting ``should_exit``)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)


def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    _name_os_thread(OS_THREAD_NAME)
    server.run(sockets=[sock])


class ApiServer:
    """A running API: its URL, its token, and ``stop``."""

    def __init__(self, server: _Server, thread: threading.Thread, url: str, token: ApiToken):
        self._server = server
        self._thread = thread
        self.url = url
        self.token = token

    @property
    def serving(self) -> bool:
        """Whether the server's thread still runs."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop serving (requests in progress get ``timeout`` seconds to finish)."""
        self._server.should_exit = True
        self._server.wake()
        self._thread.join(timeout)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def start_api(
    settings: Settings,
    sup: IndependentBrokerTrader,
    *,
    log: Any,
    venue_health: VenueHealth | None = None,
    venue_up: VenueUp | None = None,
) -> ApiServer | None:
    """Start the API of ``sup`` as ``settings`` say (None when NIJA_HTTP_ENABLED=false).

    Raises ``StartupError`` when the token file cannot be used or the address not bound.
    """
    if not settings.http_enabled:
        log.info("http_disabled", note="NIJA_HTTP_ENABLED=false: no /healthz, /metrics or API")
        return None
    try:
        token, generated = load_token(settings.http_token, settings.data_dir)
    except OSError as exc:
        raise StartupError(
            f"cannot read or write the HTTP API token file in {settings.data_dir}: "
            f"{exc.strerror or exc}; fix its permissions, or set NIJA_HTTP_TOKEN"
        ) from exc
    # Masked everywhere from now on, like every configured secret.
    sup.redactor.learn([token.value])
    learn_secrets([token.value])
    if token.file is not None:
        log.info("http_token_file", path=str(token.file), generated=generated)
    host, port = settings.http_host, settings.http_port
    try:
        sock = _bind(host, port)
    except OSError as exc:
        raise StartupError(
            f"the HTTP API cannot listen on {host}:{port}: {exc.strerror or exc}; fix: set "
            "NIJA_HTTP_PORT to a free port (0: any free port) or NIJA_HTTP_HOST to an address "
            "of this machine, or NIJA_HTTP_ENABLED=false"
        ) from exc
    port = sock.getsockname()[1]
    app = build_app(
        sup, token, created_at=sup.clock.monotonic(), venue_health=venue_health, venue_up=venue_up
    )
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        # Longer than any scrape interval: uvicorn's 5 s would close an idle connection just
        # as a 5 s scraper reuses it (a reset, a failed scrape).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # X-Forwarded-For is read for every route but ``GET /metrics`` (below), not by uvicorn.
        proxy_headers=False,
        server_header=False,  # no "server: uvicorn" in every answer
    )
    # The audit records the client's address, which a reverse proxy in front of the API (for
    # TLS) passes in X-Forwarded-For; uvicorn's middleware reads it, trusting it from
    # loopback (or FORWARDED_ALLOW_IPS), so any local process can set the address the audit
    # records: it is informative only; the token id authenticates an action. A scrape, which
    # records nothing, is answered before it (MetricsFirst): it cost 0.1 ms of CPU a scrape.
    # (uvicorn types its ASGI apps more narrowly than Starlette: the same protocol.)
    app.app = ProxyHeadersMiddleware(app.app, config.forwarded_allow_ips)  # type: ignore[arg-type,assignment]
    server = _Server(config)
    thread = threading.Thread(target=_serve, args=(server, sock), name="http-api", daemon=True)
    thread.start()
    for _ in range(_STARTUP_POLLS):
        if server.started or not thread.is_alive():
            break
        time.sleep(_POLL_SECONDS)
    if not server.started:
        server.should_exit = True
        raise StartupError(f"the HTTP API on {host}:{port} did not start; see nija.log")
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    log.info(
        "http_listening", url=url, auth="NIJA_HTTP_TOKEN" if token.file is None else str(token.file)
    )
    return ApiServer(server, thread, url, token)
