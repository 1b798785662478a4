"""The HTTP side of the emulator: one real server per venue on 127.0.0.1, routing, faults, records.

A venue module subclasses ``Venue``: it declares its routes (method, path regex, a
route name shared across venues where the meaning is shared: ``balance``,
``markets``, ``candles``, ``ticker``, ``create_order``, ``fetch_order``,
``open_orders``, ``cancel_order``, ``positions``), finds the calling account from
the request's credentials, and formats its own error bodies.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .core import Ledger, Market

# Fault kinds understood by every venue.
FAULT_KINDS = (
    "latency",  # sleep ``seconds`` then answer normally
    "hang",  # hold the request ``seconds`` (default 60), past any client timeout, then drop it
    "status",  # answer ``status`` with the venue's generic error body (Retry-After for 429)
    "venue_error",  # the venue's own error body for ``code`` (auth, insufficient_funds, ...)
    "malformed_json",  # 200 with a body that is not JSON
    "html",  # an HTML error page with ``status`` (default 502)
    "drop",  # close the connection without an answer
    # The venue's error for ``code`` (default auth) quoting the caller's API key, as some
    # venues do ("Invalid key ABC..."): in its JSON body, an HTML page or a header (``where``).
    "echo_key",
)
ECHO_PLACES = ("json", "html", "header")
# What a test may set ``Venue.system_status`` to (bot.model.VenueCondition's values).
STATUS_CONDITIONS = ("ok", "maintenance", "cancel_only", "post_only")
# Where an error body keeps its human-readable text (Kraken: the items of its "error" list).
_MESSAGE_FIELDS = ("msg", "message", "sMsg", "error_details")
ECHO_HEADER = "X-Rejected-Api-Key"


@dataclass
class Fault:
    kind: str
    status: int = 500
    seconds: float = 0.0
    code: str = ""
    retry_after: float | None = None
    times: int | None = None  # None: until cleared
    after: bool = False  # process the request normally first, then fail the answer
    api_key: str | None = None  # only requests of this account (None: every account)
    where: str = "json"  # echo_key: json | html | header

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.where not in ECHO_PLACES:
            raise ValueError(f"unknown echo place {self.where!r} (one of {ECHO_PLACES})")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    headers: dict[str, str]
    route: str | None
    at: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)  # arrival, to compare with a database's times

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def params(self) -> dict[str, str]:
        """The query string and a form body together, first value of each (signed calls)."""
        form = parse_qs(self.body.decode(errors="replace"), keep_blank_values=True)
        return {k: v[0] for k, v in self.query.items()} | {k: v[0] for k, v in form.items()}


@dataclass
class Response:
    status: int
    body: Any  # dict/list → JSON; bytes/str → as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Request:
    """What a route handler sees."""

    method: str
    path: str
    query: dict[str, str]  # first value of each query parameter
    headers: dict[str, str]  # lower-cased names
    body: bytes
    match: re.Match[str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class AuthFailed(Exception):
    """Raised by ``Venue.account_for`` when the request's credentials are not known."""


Handler = Callable[[Request], Response]


class Venue:
    """Base of a venue module. Subclasses fill ``routes`` and the hooks below."""

    name = "VENUE"

    def __init__(self, market: Market) -> None:
        self.market = market
        self.accounts: dict[str, Ledger] = {}  # by API key
        self.secrets: dict[str, str] = {}  # API key → secret (for venues that verify signatures)
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        # What the venue's public status check answers, in its own shape (route
        # ``system_status``, on the venues that have one): one of STATUS_CONDITIONS.
        self.system_status = "ok"

    # -- set-up -------------------------------------------------------------
    def set_status(self, condition: str) -> None:
        """What the public status check answers from now on (one of STATUS_CONDITIONS)."""
        if condition not in STATUS_CONDITIONS:
            raise ValueError(f"unknown status {condition!r} (one of {STATUS_CONDITIONS})")
        self.system_status = condition

    def add_account(
        self, api_key: str, secret: str = "", balances: dict[str, float] | None = None, **extra
    ) -> Ledger:
        ledger = Ledger(self.market, balances if balances is not None else {"USD": 10000.0})
        self.accounts[api_key] = ledger
        self.secrets[api_key] = secret
        return ledger

    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"$"), name, handler))

    # -- hooks --------------------------------------------------------------
    def account_for(self, req: Request) -> Ledger:
        """The ledger the request's credentials belong to; raise AuthFailed otherwise."""
        raise NotImplementedError

    def error_response(self, code: str, status: int | None = None) -> Response:
        """The venue's own error body for a venue-neutral ``code``.

        Codes: ``auth``, ``rate_limit``, ``insufficient_funds``, ``order_not_found``,
        ``invalid_order``, ``unknown_symbol``, ``duplicate_client_id``, ``server``, ``status``.
        """
        raise NotImplementedError

    def api_key_of(self, req: Request) -> str | None:
        """The API key of the account this request authenticates as, or None."""
        try:
            ledger = self.account_for(req)
        except (AuthFailed, NotImplementedError):
            return None
        return next((k for k, v in self.accounts.items() if v is ledger), None)

    def authed(self, req: Request) -> Ledger | Response:
        try:
            return self.account_for(req)
        except AuthFailed:
            return self.error_response("auth")


class EmulatorServer:
    """A venue served over real HTTP on 127.0.0.1, on a free port."""

    def __init__(self, venue: Venue, port: int = 0) -> None:
        """``port`` 0 picks a free one; a fixed port lets a venue come back where it was."""
        self.venue = venue
        self.requests: list[Recorded] = []
        self.echoed: list[str] = []  # the API keys echo_key faults have put in answers
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns at once
            name=f"emulator-{venue.name}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- faults and records -------------------------------------------------
    def inject(self, route: str, fault: Fault) -> None:
        """Apply ``fault`` to requests of route name ``route`` (``*`` for every route)."""
        with self._lock:
            self._faults.setdefault(route, []).append(fault)

    def clear_faults(self, route: str | None = None) -> None:
        with self._lock:
            if route is None:
                self._faults.clear()
            else:
                self._faults.pop(route, None)

    def remove_fault(self, route: str, fault: Fault) -> bool:
        """Switch off one injected fault (others stay); False when it was already used up."""
        with self._lock:
            faults = self._faults.get(route, [])
            if not any(f is fault for f in faults):
                return False
            self._faults[route] = [f for f in faults if f is not fault]
            return True

    def requests_to(self, route: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.route == route]

    def _take_fault(self, route: str | None, requester: Callable[[], str | None]) -> Fault | None:
        """The first fault for this route (or ``*``) that applies to the calling account."""
        caller: list[str | None] = []  # looked up once, only if an account-specific fault exists
        with self._lock:
            for key in (route, "*"):
                for fault in self._faults.get(key, []) if key else []:
                    if fault.api_key is not None:
                        if not caller:
                            caller.append(requester())
                        if caller[0] != fault.api_key:
                            continue
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults[key].remove(fault)
                    return fault
        return None

    # -- HTTP ---------------------------------------------------------------
    def _handler_class(self):
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without this, Nagle plus the
            # client's delayed ACK adds ~40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # keep test output clean
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    # The client stopped before its body was whole: like a real HTTP server,
                    # the request never reaches the venue (nothing recorded, nothing done).
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                found = None
                for method, pattern, name, handler in server.venue.routes:
                    m = pattern.match(parts.path)
                    if m and method == self.command:
                        found = (name, handler, m)
                        break
                route = found[0] if found else None
                with server._lock:
                    server.requests.append(
                        Recorded(
                            self.command, parts.path, parse_qs(parts.query), body, headers, route
                        )
                    )

                def requester() -> str | None:
                    if found is None:
                        return None
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    return server.venue.api_key_of(
                        Request(self.command, parts.path, query, headers, body, found[2])
                    )

                fault = server._take_fault(route, requester)
                if fault is not None and fault.kind == "latency":
                    server._stopping.wait(fault.seconds)
                    fault = None
                if fault is not None and fault.after and found is not None:
                    # The venue acts on the request; only its answer is lost or garbled.
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    found[1](Request(self.command, parts.path, query, headers, body, found[2]))
                if fault is not None and fault.kind == "echo_key":
                    resp = server._echo_key(fault, requester())
                elif fault is not None:
                    resp = server._apply_fault(fault, self)
                    if resp is None:
                        return
                elif found is None:
                    resp = Response(404, {"error": f"no route {self.command} {parts.path}"})
                else:
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    req = Request(self.command, parts.path, query, headers, body, found[2])
                    try:
                        resp = found[1](req)
                    except Exception as exc:  # an emulator bug must be loud, not a hang
                        resp = Response(599, {"emulator_error": repr(exc)})
                self._send(resp)

            def _send(self, resp: Response) -> None:
                if isinstance(resp.body, bytes | str):
                    payload = resp.body.encode() if isinstance(resp.body, str) else resp.body
                else:
                    payload = json.dumps(resp.body).encode()
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        return _Handler

    def _echo_key(self, fault: Fault, api_key: str | None) -> Response:
        """The venue's error for ``fault.code`` with the caller's API key quoted in it."""
        key = api_key or "(unknown key)"
        with self._lock:
            self.echoed.append(key)
        status = fault.status if fault.status != 500 else None
        if fault.where == "html":
            code = status or 401
            page = (
                f"<html><head><title>{code} Unauthorized</title></head><body>"
                f"<h1>{code} Unauthorized</h1><p>Invalid API key {key}</p></body></html>"
            )
            return Response(code, page, content_type="text/html")
        resp = self.venue.error_response(fault.code or "auth", status)
        if fault.where == "header":
            resp.headers[ECHO_HEADER] = key
        else:
            resp.body = _quote_in_messages(resp.body, f"(API key {key})")
        return resp

    def _apply_fault(self, fault: Fault, handler: BaseHTTPRequestHandler) -> Response | None:
        """The response a fault produces, or None when it already dealt with the connection."""
        venue = self.venue
        if fault.kind in ("hang", "drop"):
            if fault.kind == "hang":
                self._stopping.wait(fault.seconds or 60.0)
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault.kind == "malformed_json":
            return Response(200, b'{"result": [unterminated', content_type="application/json")
        if fault.kind == "html":
            page = f"<html><body><h1>{fault.status or 502} Bad Gateway</h1></body></html>"
            return Response(fault.status or 502, page, content_type="text/html")
        if fault.kind == "venue_error":
            return venue.error_response(fault.code, fault.status if fault.status != 500 else None)
        # "status"
        code = {401: "auth", 403: "auth", 429: "rate_limit"}.get(fault.status, "status")
        resp = venue.error_response(code, fault.status)
        if fault.status in (429, 418, 503) and fault.retry_after is not None:
            resp.headers["Retry-After"] = str(int(fault.retry_after))
        return resp


def _quote_in_messages(body: Any, text: str) -> Any:
    """``body`` with `` text`` added to each human-readable message of a venue error body."""
    if isinstance(body, str | bytes):
        return (body.decode() if isinstance(body, bytes) else body) + f" {text}"
    if isinstance(body, list):
        return [_quote_in_messages(item, text) if isinstance(item, dict) else item for item in body]
    if not isinstance(body, dict):
        return body
    out = {}
    for name, value in body.items():
        if name in _MESSAGE_FIELDS and isinstance(value, str):
            value = f"{value} {text}"
        elif name == "error" and isinstance(value, list):  # Kraken's list of messages
            value = [f"{item} {text}" if isinstance(item, str) else item for item in value]
        elif isinstance(value, dict | list):
            value = _quote_in_messages(value, text)
        out[name] = value
    return out
