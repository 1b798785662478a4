"""The HTTP API's routes (Starlette): probes, metrics, accounts, venues, account actions, and
P&L per account and UTC day (JSON, or CSV).

An account key holds slashes, and so does its path: ``/api/v1/accounts/user/alice/KRAKEN``
and ``POST /api/v1/accounts/user/alice/KRAKEN/pause`` (``%2F`` for each slash works too).
Keys are matched as the daemon spells them: ``User/Alice/kraken`` is ``user/alice/KRAKEN``.

Every ``/api/v1`` route and ``/metrics`` need ``Authorization: Bearer <token>``;
``/healthz``, ``/readyz`` and the dashboard's page and files (no data) need none. Every error is JSON ``{"error": ..., "status": ...}``
naming the problem. The handlers are plain functions: Starlette runs them in its worker
threads, never on the event loop, so a store read or an action never stalls the server.
``GET /metrics`` alone is answered in front of Starlette (``bot.api.scrape``): on the event
loop, unless it reads the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.api.dashboard import dashboard_routes
from bot.api.metrics import VenueUp
from bot.api.probes import liveness, readiness
from bot.api.scrape import CONTENT_TYPE, METRICS_PATH, MetricsFirst, MetricsText
from bot.api.token import ApiToken
from bot.api.views import AccountViews, VenueHealth
from bot.daemon.control import ACCOUNT_ACTIONS, ALL_ACCOUNTS, Action, Outcome, parse_account_key
from bot.errors import describe
from bot.store.pnl import PnlReport, parse_days, pnl_csv, pnl_document
from bot.store.writer import StoreError

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader

__all__ = ["API_PREFIX", "build_app"]

API_PREFIX = "/api/v1"
_STATUS_OF = {
    Outcome.DONE: 200,
    Outcome.BAD_REQUEST: 400,
    Outcome.UNKNOWN_ACCOUNT: 404,
    Outcome.REFUSED: 422,
    Outcome.FAILED: 500,
}
_ACTIONS = ", ".join(a.value for a in ACCOUNT_ACTIONS)
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_KEY_HELP = "an account key is type/id/BROKER, e.g. /api/v1/accounts/user/alice/KRAKEN"


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


class _Api:
    """The route handlers over one running daemon."""

    def __init__(
        self,
        sup: IndependentBrokerTrader,
        token: ApiToken,
        created_at: float,
        venue_health: VenueHealth | None,
        venue_up: VenueUp | None,
    ) -> None:
        self.sup = sup
        self.token = token
        self.created_at = created_at
        self.views = AccountViews(sup, venue_health)
        self.metrics_text = MetricsText(sup, venue_up)

    # -- auth ----------------------------------------------------------------------------
    def _refusal(self, request: Request) -> JSONResponse | None:
        """None when the request carries the token; else the 401 that says what is wrong."""
        where = f"the file {self.token.file}" if self.token.file else "NIJA_HTTP_TOKEN"
        header = request.headers.get("authorization")
        challenge = {"WWW-Authenticate": 'Bearer realm="nija"'}
        if header is None:
            return _error(
                401, f"missing bearer token: send 'Authorization: Bearer <token>' (the token is "
                f"in {where})", **challenge,
            )  # fmt: skip
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return _error(401, "malformed Authorization header: use 'Bearer <token>'", **challenge)
        if not self.token.matches(presented.strip()):
            return _error(401, f"wrong bearer token (the token is in {where})", **challenge)
        return None

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def check(request: Request) -> Response:
            return self._refusal(request) or handler(request)

        return check

    # -- probes and metrics --------------------------------------------------------------
    def healthz(self, _request: Request) -> Response:
        probe = liveness(self.sup, self.created_at)
        body = {"status": "ok" if probe.ok else "down", "reason": probe.reason, **probe.details}
        return JSONResponse(body, status_code=200 if probe.ok else 503)

    def readyz(self, _request: Request) -> Response:
        probe = readiness(self.sup)
        body = {"status": "ready" if probe.ok else "not_ready", "reason": probe.reason}
        return JSONResponse(body | probe.details, status_code=200 if probe.ok else 503)

    def metrics(self, _request: Request) -> Response:
        """``HEAD /metrics`` (``GET`` is answered in front of the app: ``MetricsFirst``)."""
        return Response(self.metrics_text.write(), media_type=CONTENT_TYPE)

    # -- accounts and venues -------------------------------------------------------------
    def accounts(self, _request: Request) -> Response:
        return JSONResponse(self.views.accounts())

    def account(self, request: Request) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        doc = self.views.account(key)
        if doc is None:
            return self._unknown(key)
        return JSONResponse(doc)

    def venues(self, _request: Request) -> Response:
        return JSONResponse(self.views.venues())

    def act(self, request: Request) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        action = request.path_params["action"]
        if action not in ACCOUNT_ACTIONS:
            return _error(404, f"no action {action!r}: the actions are {_ACTIONS}")
        result = self.sup.control.perform(
            action, key, f"http:{self.token.id}", client=_client(request)
        )
        body = {
            "action": action,
            "account": key,
            "outcome": result.outcome.value,
            "message": result.message,
            "before": result.before,
            "after": result.after,
        }
        status = _STATUS_OF[result.outcome]
        if not result.ok:
            body |= {"error": result.message, "status": status}
        return JSONResponse(self.sup.redactor.mask_data(body), status_code=status)

    def malformed(self, request: Request) -> Response:
        """Every other path under /accounts/: say what is wrong with it."""
        rest = request.path_params["rest"].strip("/")
        parts = rest.split("/")
        if parse_account_key(rest) is not None:  # an account, with a method it does not take
            return _error(405, f"{request.method} is not allowed here: GET the account, or POST "
                          f"one of its actions ({_ACTIONS}) at .../{{action}}")  # fmt: skip
        if len(parts) == 4 and parse_account_key("/".join(parts[:3])) is not None:
            if parts[3] in ACCOUNT_ACTIONS:
                return _error(405, f"{parts[3]} is an action: POST it")
            return _error(404, f"no action {parts[3]!r}: the actions are {_ACTIONS}")
        return _error(400, f"malformed account key {rest!r}: {_KEY_HELP}")

    # -- P&L per account and UTC day -----------------------------------------------------
    def pnl(self, request: Request) -> Response:
        return self._pnl(request, None)

    def account_pnl(self, request: Request) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        if key not in self.sup.specs:
            return self._unknown(key)
        return self._pnl(request, key)

    def _pnl(self, request: Request, key: str | None) -> Response:
        """``?days=N`` (default 7) as JSON, or CSV with ``?format=csv`` or ``Accept: text/csv``."""
        try:
            days = parse_days(request.query_params.get("days"))
        except ValueError as exc:
            return _error(400, str(exc))
        fmt = request.query_params.get("format")
        if fmt not in (None, "json", "csv"):
            return _error(400, f"format must be json or csv, not {fmt!r}")
        try:
            report = self.views.pnl(days, key)
        except StoreError as exc:  # never a report of zeros
            return _error(503, f"cannot read the state store: {describe(exc)}")
        if fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", "")):
            name = _csv_name(report, key)
            return Response(
                self.sup.redactor.mask_values(pnl_csv(report)),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return JSONResponse(self.sup.redactor.mask_data(pnl_document(report)))

    # -- the per-account overrides file (bot.daemon.tunings) ------------------------------------
    def overrides(self, _request: Request) -> Response:
        return JSONResponse(self.sup.redactor.mask_data(self.sup.tunings.document()))

    def overrides_reload(self, request: Request) -> Response:
        """Apply the whole file or nothing: 200 with each account's outcome, 422 naming
        every problem (each account keeps its settings)."""
        action = Action.OVERRIDES_RELOAD.value
        result = self.sup.control.perform(
            action, ALL_ACCOUNTS, f"http:{self.token.id}", client=_client(request)
        )
        status = _STATUS_OF[result.outcome]
        body: dict[str, Any] = {
            "action": action,
            "outcome": result.outcome.value,
            "message": result.message,
        }
        body |= result.details or {}
        if not result.ok:
            body |= {"error": result.message, "status": status}
        return JSONResponse(self.sup.redactor.mask_data(body), status_code=status)

    def _key(self, request: Request) -> str | Response:
        p = request.path_params
        text = f"{p['account_type']}/{p['account_id']}/{p['broker']}"
        key = parse_account_key(text)
        if key is None:
            return _error(400, f"malformed account key {text!r}: {_KEY_HELP}")
        return key

    def _unknown(self, key: str) -> Response:
        known = ", ".join(sorted(self.sup.specs))
        return _error(404, f"this daemon has no account {key} (it has {known})")


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _csv_name(report: PnlReport, key: str | None) -> str:
    """``nija-pnl-<first day>-to-<last day>.csv``, the account's key in it for one account."""
    who = f"-{key.replace('/', '-')}" if key else ""
    return f"nija-pnl{who}-{report.first_day}-to-{report.last_day}.csv"


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) as JSON too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    if status == 404:
        detail = f"no such path {request.url.path} (see docs/OPERATIONS.md)"
    return _error(status, str(detail))


def build_app(
    sup: IndependentBrokerTrader,
    token: ApiToken,
    *,
    created_at: float,
    venue_health: VenueHealth | None = None,
    venue_up: VenueUp | None = None,
) -> MetricsFirst:
    """The API of the running daemon ``sup`` (an ASGI app)."""
    api = _Api(sup, token, created_at, venue_health, venue_up)
    key = "/{account_type}/{account_id}/{broker}"
    routes: list[Any] = [
        *dashboard_routes(),  # the page needs no token: it holds no data
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route(METRICS_PATH, api.guarded(api.metrics)),
        Route(f"{API_PREFIX}/accounts", api.guarded(api.accounts)),
        Route(f"{API_PREFIX}/accounts{key}", api.guarded(api.account)),
        Route(f"{API_PREFIX}/accounts{key}/pnl", api.guarded(api.account_pnl)),
        Route(f"{API_PREFIX}/accounts{key}/{{action}}", api.guarded(api.act), methods=["POST"]),
        Route(f"{API_PREFIX}/accounts/{{rest:path}}", api.guarded(api.malformed), methods=_ANY),
        Route(f"{API_PREFIX}/venues", api.guarded(api.venues)),
        Route(f"{API_PREFIX}/pnl", api.guarded(api.pnl)),
        Route(f"{API_PREFIX}/overrides", api.guarded(api.overrides)),
        Route(
            f"{API_PREFIX}/overrides/reload", api.guarded(api.overrides_reload), methods=["POST"]
        ),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    return MetricsFirst(app, api.metrics_text, token, api._refusal)
