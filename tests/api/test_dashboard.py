"""The dashboard page, in-process over real HTTP: what the server sends (no token needed, a
strict Content-Security-Policy, the page's own files only), the documents it reads, and the
page itself in a real headless Chromium: a wrong token, markup in a venue's error message,
a daemon that stops answering."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By

from bot.api.dashboard import CONTENT_SECURITY_POLICY
from bot.api.views import AccountViews
from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.errors import AuthRejected
from nija_testkit import harness
from nija_testkit.browser import account_cell, account_rows, console_errors, text_of
from tests.api.conftest import ALICE, BOB, SYMBOLS, TOKEN, ApiDaemon, wait_for

# What a hostile venue might answer: markup that would run script if parsed as HTML.
HOSTILE = '<img src=x onerror="window.pwned=1"><b id="injected">owned</b>'


class HostileBroker(PaperBroker):
    """Bob's venue: it refuses his key, with markup in its message (his circuit opens at
    once, and his last error keeps the venue's words)."""

    def fetch_balance(self):  # type: ignore[override]
        raise AuthRejected(HOSTILE, status=401)


class HostileDaemon(ApiDaemon):
    def trading(self, spec, market=None):
        if spec.account.key != BOB:
            return super().trading(spec, market)
        self.built.append(spec)
        return HostileBroker(spec, SyntheticMarket(SYMBOLS, seed=1), starting_usd=10_000.0)


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[ApiDaemon]:
    """Alice trading, bob failing with markup in his error."""
    d = HostileDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN).start()
    try:
        wait_for(lambda: d.worker(ALICE).cycles >= 3 and d.worker(BOB).cycles >= 1, what="cycles")
        yield d
    finally:
        d.stop()


# -- what the server sends --------------------------------------------------------------------


def test_the_page_needs_no_token_holds_no_data_and_runs_only_its_own_script(daemon):
    page = requests.get(daemon.url + "/dashboard", timeout=10)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="static/dashboard.js"></script>' in page.text
    assert "<script>" not in page.text and ALICE not in page.text  # no inline script, no data
    assert "http" + "s://" not in page.text  # nothing from the internet
    for name, media in (
        ("dashboard.js", "text/javascript"),
        ("render.js", "text/javascript"),
        ("dashboard.css", "text/css"),
    ):
        asset = requests.get(f"{daemon.url}/static/{name}", timeout=10)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media)
        assert "http" + "s://" not in asset.text
        assert "innerHTML" not in asset.text  # text from the daemon goes in as text only


def test_the_root_leads_to_the_dashboard_and_other_files_are_not_served(daemon):
    root = requests.get(daemon.url + "/", timeout=10, allow_redirects=False)
    assert root.status_code == 302 and root.headers["location"] == "dashboard"
    assert requests.get(daemon.url + "/", timeout=10).url == daemon.url + "/dashboard"
    for path in ("/static/nija.db", "/static/dashboard.html", "/static/..%2Fapp.py"):
        answer = requests.get(daemon.url + path, timeout=10)
        assert answer.status_code == 404, path
        assert "there are dashboard.js, render.js, dashboard.css" in answer.json()["error"] or (
            ".." in path and answer.json()["error"].startswith("no such path")
        )


def test_the_accounts_document_carries_equity_history_and_the_isolation_report(daemon):
    wait_for(lambda: daemon.worker(ALICE).cycles >= 3, what="three cycles")
    doc = daemon.get("/api/v1/accounts").json()
    assert doc["mode"] == "paper" and doc["demo"] is False
    assert doc["isolation_report"]["total_accounts"] == 2
    assert doc["isolation_report"]["isolation_guarantee"] == "ACTIVE"
    assert doc["updated_at"] == daemon.clock.utc_now().isoformat()
    history = doc["accounts"][ALICE]["equity_history"]
    assert len(history) >= 3
    for at, usd in history:
        assert isinstance(at, float) and usd == pytest.approx(10_000.0, rel=0.05)
    status = daemon.sup.get_multi_broker_status()["accounts"][ALICE]
    assert "equity_history" not in status  # status.json stays small


# -- the page in a browser ---------------------------------------------------------------------


def look(predicate, what: str, timeout: float = 10.0):
    """Wait for the page (polled every 0.2 s, at most ``timeout`` s)."""
    return harness.wait_for(predicate, timeout, what, interval=0.2)


def connect(driver, url: str, token: str) -> None:
    driver.get(url)
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "connect").click()


def quiet_for(driver, seconds: float) -> bool:
    """True when, for ``seconds``, the page logs no error (so: sends no request that fails)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if console_errors(driver):
            return False
        time.sleep(0.25)
    return True


def test_a_wrong_token_says_so_the_right_one_is_kept_for_the_tab_only(daemon, chromium):
    connect(chromium, daemon.url + "/dashboard", "not-the-token-at-all")
    banner = look(lambda: text_of(chromium, "#banner-text"), "the banner")
    assert banner.startswith("The daemon refused the token: wrong bearer token")
    assert "NIJA_HTTP_TOKEN" in banner  # the daemon's word on where the token is
    assert text_of(chromium, "#state") == "token refused"
    assert chromium.find_element(By.ID, "token-help").is_displayed()
    assert account_rows(chromium) == []
    # The 401 answers are the console's only errors: no script error.
    for entry in console_errors(chromium):
        assert "401" in entry["message"], entry
    # The right token then connects.
    chromium.find_element(By.ID, "token").send_keys(TOKEN)
    chromium.find_element(By.ID, "connect").click()
    look(lambda: account_rows(chromium) == [ALICE, BOB], "both rows")
    assert chromium.find_element(By.ID, "banner").is_displayed() is False
    assert chromium.find_element(By.ID, "token").is_displayed() is False
    # Kept in this tab's sessionStorage (a reload keeps it), never in localStorage.
    chromium.refresh()
    look(lambda: account_rows(chromium) == [ALICE, BOB], "both rows after a reload")
    stored = "return [sessionStorage.getItem('nija.api-token'), localStorage.length]"
    assert chromium.execute_script(stored) == [TOKEN, 0]
    chromium.find_element(By.ID, "forget").click()
    assert account_rows(chromium) == []
    assert chromium.execute_script(stored) == [None, 0]
    assert chromium.find_element(By.ID, "token").is_displayed()
    assert console_errors(chromium) == []


def test_markup_in_an_error_message_shows_as_text_and_runs_nothing(hostile, chromium):
    connect(chromium, hostile.url + "/dashboard", TOKEN)
    look(lambda: HOSTILE in account_cell(chromium, BOB, "error"), "bob's error, as text")
    error = chromium.find_element(
        By.CSS_SELECTOR, f'tr[data-account="{BOB}"] td[data-field="error"]'
    )
    assert HOSTILE in (error.get_attribute("title") or "")
    assert chromium.find_elements(By.ID, "injected") == []
    assert chromium.find_elements(By.CSS_SELECTOR, "#accounts img") == []
    assert chromium.execute_script("return window.pwned === undefined") is True
    assert account_cell(chromium, BOB, "health") == "failing"
    # Alice, beside him, trades on, and her equity is drawn as a line.
    assert account_cell(chromium, ALICE, "health") == "healthy"
    line = chromium.find_element(By.CSS_SELECTOR, f'tr[data-account="{ALICE}"] svg.spark polyline')
    assert len((line.get_attribute("points") or "").split()) >= 3
    assert (
        account_cell(chromium, ALICE, "pnl") == "$0.00"
    )  # today's, from the store: no trade closed
    # Bob never read his balance: no equity point, no line (never a line at zero).
    assert hostile.get("/api/v1/accounts").json()["accounts"][BOB]["equity_history"] == []
    assert account_cell(chromium, BOB, "trend") == "—"
    assert text_of(chromium, 'tr[data-venue="KRAKEN"]').startswith("KRAKEN up")
    assert console_errors(chromium) == []


def test_a_daemon_that_stops_answering_stops_the_refresh_with_a_banner(daemon, chromium):
    connect(chromium, daemon.url + "/dashboard?refresh=1", TOKEN)
    look(lambda: text_of(chromium, "#state") == "live", "the page live")
    assert text_of(chromium, "#period") == "1"
    assert daemon.api is not None
    daemon.api.stop()
    banner = look(
        lambda: (
            "Stopped refreshing" in text_of(chromium, "#banner-text")
            and text_of(chromium, "#banner-text")
        ),
        "the stopped banner",
        timeout=15,
    )
    assert "after 3 failed attempts in a row" in banner
    assert "the daemon did not answer" in banner
    assert chromium.find_element(By.ID, "retry").is_displayed()
    assert "stale" in (chromium.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
    # The rows stay, greyed, with their last data.
    assert account_rows(chromium) == [ALICE, BOB]
    assert len(console_errors(chromium)) >= 3  # each refused connection is a console line
    # Stopped means stopped: over two more periods, no new attempt.
    assert quiet_for(chromium, 2.2)
    chromium.find_element(By.ID, "retry").click()  # one more try, counted afresh
    look(lambda: "Refresh failed (1 of 3)" in text_of(chromium, "#banner-text"), "a new try")


def test_todays_pnl_shows_when_the_document_has_it(daemon, chromium, monkeypatch):
    # pnl_today as the P&L work adds it to each account (bot/store/pnl.py's figures); the
    # page shows what it is given and computes no P&L itself.
    listed = AccountViews.accounts

    def with_pnl(views: AccountViews) -> dict:
        doc = listed(views)
        doc["accounts"][ALICE]["pnl_today"] = {
            "day": "2026-01-03", "realized_pnl_usd": -12.5, "fees_usd": 1.25, "trades": 4,
            "wins": 1, "losses": 3, "win_rate": 0.25,
        }  # fmt: skip
        doc["accounts"][BOB]["pnl_today"] = None  # its store could not be read
        return doc

    monkeypatch.setattr(AccountViews, "accounts", with_pnl)
    connect(chromium, daemon.url + "/dashboard", TOKEN)
    look(lambda: account_cell(chromium, ALICE, "pnl") == "-$12.50", "alice's P&L")
    pnl = chromium.find_element(By.CSS_SELECTOR, f'tr[data-account="{ALICE}"] td[data-field="pnl"]')
    assert pnl.get_attribute("title") == (
        "realized today (UTC), net of fees: 4 trades, 1 won, 3 lost, fees $1.25, win rate 25 %"
    )
    assert "down" in (pnl.get_attribute("class") or "")
    assert account_cell(chromium, BOB, "pnl") == "—"  # never a zero for "unknown"
    assert console_errors(chromium) == []
