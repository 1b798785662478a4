"""The dashboard page in a real headless Chromium, over the real demo daemon (bot.py, no keys).

An operator opens ``/``, lands on the dashboard, pastes the token from the data directory
and sees the demo's three accounts; bob's demo faults turn him ``failing`` on the page
(about 25 s in: his credentials "expire"); pressing Pause on alice pauses her in
status.json. The browser console stays free of errors throughout.
"""

from __future__ import annotations

import time

from selenium.webdriver.common.by import By

from nija_testkit.browser import account_cell, account_rows, console_errors, text_of
from nija_testkit.harness import DaemonRun, clean_env, start_daemon, wait_for

ACCOUNTS = ("platform/platform/PAPER", "user/alice/PAPER", "user/bob/PAPER")
ALICE, BOB = ACCOUNTS[1], ACCOUNTS[2]
# The demo's credentials expire 25 s after its start (bot.daemon.demo.TIMEOUTS_FOR_SECONDS);
# bob's next cycle then fails for good. A bound, not a sleep.
BOB_FAILING_WITHIN = 45.0


def look(predicate, what: str, timeout: float = 20.0):
    """Wait for the page (polled every 0.2 s, at most ``timeout`` s)."""
    return wait_for(predicate, max(timeout, 1.0), what, interval=0.2)


def paused(run: DaemonRun) -> dict | None:
    return run.account(ALICE).get("paused")


def test_the_dashboard_shows_the_demo_and_pauses_alice(tmp_path, chromium):
    run = start_daemon(clean_env(), tmp_path)  # no keys: the demo
    began = time.monotonic()
    try:
        url = wait_for(run.api_url, 20, "the http_listening line")
        token = (run.data_dir / "http-token").read_text().strip()

        chromium.get(url + "/")
        assert chromium.current_url == url + "/dashboard"
        assert "NIJA" in chromium.title
        # No token yet: the page asks for it and says where it is.
        assert "http-token" in text_of(chromium, "#token-help")
        chromium.find_element(By.ID, "token").send_keys(token)
        chromium.find_element(By.ID, "connect").click()

        look(lambda: account_rows(chromium) == list(ACCOUNTS), "the three accounts, in order")
        assert chromium.find_element(By.ID, "token-help").is_displayed() is False
        look(lambda: account_cell(chromium, ALICE, "health") == "healthy", "alice healthy")
        assert account_cell(chromium, ALICE, "venue") == "PAPER · up"
        # Today's P&L, read from the state store (a figure, if only $0.00, never a dash).
        assert account_cell(chromium, ALICE, "pnl").lstrip("+-−").startswith("$")
        assert text_of(chromium, "#guarantee") == "ACTIVE"
        assert text_of(chromium, 'tr[data-venue="PAPER"]').startswith("PAPER up")

        pause = chromium.find_element(
            By.CSS_SELECTOR, f'tr[data-account="{ALICE}"] button[data-action="pause"]'
        )
        pause.click()
        wait_for(lambda: paused(run), 15, "alice paused in status.json")
        assert paused(run)["by"].startswith("http:token-")
        look(lambda: "paused" in account_cell(chromium, ALICE, "account"), "alice paused")
        assert "pause user/alice/PAPER" in text_of(chromium, "#notice")
        assert run.account(BOB).get("paused") is None  # only the account asked for

        left = BOB_FAILING_WITHIN - (time.monotonic() - began)
        look(lambda: account_cell(chromium, BOB, "health") == "failing", "bob failing", left)
        assert account_cell(chromium, BOB, "circuit") == "open"
        assert account_cell(chromium, BOB, "error") != "—"
        assert account_cell(chromium, ALICE, "health") == "healthy"  # bob's failure is his own
        # His cycles read no balance now: his equity is unknown, and its cell says why.
        equity = f'tr[data-account="{BOB}"] td[data-field="equity"]'

        def bob_equity_unknown() -> bool:
            cell = chromium.find_element(By.CSS_SELECTOR, equity)
            return cell.text == "—" and (cell.get_attribute("title") or "").startswith("unknown: ")

        look(bob_equity_unknown, "bob's equity unknown, and why", 15)
        # By now alice has cycled a few times: her equity is drawn as a line.
        spark = chromium.find_elements(
            By.CSS_SELECTOR, f'tr[data-account="{ALICE}"] svg.spark polyline'
        )
        assert spark and len((spark[0].get_attribute("points") or "").split()) >= 2
        assert chromium.find_element(By.ID, "banner").is_displayed() is False
        assert chromium.get_screenshot_as_png().startswith(b"\x89PNG")
        # Read before the daemon stops: the page's next refresh would then fail, loudly.
        assert console_errors(chromium) == []
    finally:
        assert run.stop() == 0
