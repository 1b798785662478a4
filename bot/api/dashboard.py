"""The dashboard page: one static HTML page, its two script modules and its style
(bot/api/static/).

The page holds no data, so it loads without the token; its script asks the operator for
the token and reads the ``/api/v1`` routes with it, like any other client. Nothing comes
from another origin: the Content-Security-Policy lets the page load only its own script,
style and API (``'self'``) and run no inline script at all. The script inserts every text
from the daemon as text (``textContent``): a venue's error message carrying markup shows
as that markup, and could run nothing even if it were ever parsed.

The files are package data (pyproject's ``[tool.setuptools.package-data]``), read when
asked for: an installation that lacks them answers a 500 that says so, and the rest of the
API is untouched.
"""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["CONTENT_SECURITY_POLICY", "DASHBOARD_PATH", "dashboard_routes"]

DASHBOARD_PATH = "/dashboard"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: an upgraded daemon serves its new page at once
}
# The only files served: name → media type (nothing else under static/ is reachable).
_ASSETS = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "render.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def _file(name: str) -> Response:
    try:
        body = (files("bot.api") / "static" / name).read_bytes()
    except OSError as exc:
        message = (
            f"the dashboard's file {name} cannot be read from this installation "
            f"(bot/api/static/): {exc.strerror or exc}; reinstall the package"
        )
        return JSONResponse({"error": message, "status": 500}, status_code=500)
    return Response(body, media_type=_ASSETS[name], headers=_HEADERS)


def _page(_request: Request) -> Response:
    return _file("dashboard.html")


def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS or name == "dashboard.html":
        known = ", ".join(n for n in _ASSETS if n != "dashboard.html")
        return JSONResponse(
            {"error": f"no static file {name!r} (there are {known})", "status": 404},
            status_code=404,
        )
    return _file(name)


def _home(_request: Request) -> Response:
    # Relative, so that a reverse proxy serving NIJA under a prefix keeps it.
    return RedirectResponse(DASHBOARD_PATH.lstrip("/"), status_code=302)


def dashboard_routes() -> list[Route]:
    """``/`` (a redirect), ``/dashboard`` and ``/static/{name}``: no token needed."""
    return [
        Route("/", _home),
        Route(DASHBOARD_PATH, _page),
        Route("/static/{name}", _asset),
    ]
