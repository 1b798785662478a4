"""A real headless Chromium for the dashboard's tests and its screenshot script.

Debian's ``chromium`` and ``chromium-driver`` packages, driven by selenium: the driver's
path is given, so Selenium Manager never runs and nothing is downloaded (``SE_OFFLINE``
too, for good measure). The browser's own background traffic (updates, sync, QUIC) is
off: the page must work with no internet, and the tests talk to 127.0.0.1 only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "PACKAGES",
    "account_cell",
    "account_rows",
    "console_errors",
    "missing_browser",
    "require_browser",
    "start_chromium",
    "text_of",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = "chromium chromium-driver"  # Debian's; .ci/run installs them when missing
_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
)


def missing_browser() -> str | None:
    """Why no browser test can run here, or None when Chromium, its driver and selenium are
    all installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        return f"{' and '.join(missing)} missing: install the Debian packages {PACKAGES}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


def require_browser() -> None:
    """Skip the calling test when the browser is missing; under CI (``CI=true``) fail it:
    CI installs the packages, so a missing browser there is a broken run, not a skip."""
    why = missing_browser()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser is missing in CI: {why}")
    pytest.skip(why)


def start_chromium(profile: Path, *, width: int = 1500, height: int = 900) -> WebDriver:
    """A headless Chromium with a fresh profile in ``profile`` (an empty directory), its
    console log kept for ``console_errors``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path skips Selenium Manager; were it ever run, it must not download.
    os.environ.setdefault("SE_OFFLINE", "true")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    return driver


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    """The browser console's SEVERE entries since the last call (each read empties it)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


# -- reading the dashboard (bot/api/static/dashboard.js marks its rows and cells) -----------


def text_of(driver: WebDriver, css: str) -> str:
    """The visible text of the first element matching ``css``; '' when there is none (so a
    ``wait_for`` on it simply waits while the page draws)."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def account_cell(driver: WebDriver, key: str, field: str) -> str:
    """All the text of the dashboard's ``field`` cell (``health``, ``error``...) in ``key``'s
    row, whitespace collapsed; '' while the row is not drawn. All of it: on screen a long
    error is cut at three lines (its cell's title holds it whole)."""
    from selenium.webdriver.common.by import By

    css = f'tr[data-account="{key}"] td[data-field="{field}"]'
    found = driver.find_elements(By.CSS_SELECTOR, css)
    text = (found[0].get_attribute("textContent") or "") if found else ""
    return " ".join(text.split())


def account_rows(driver: WebDriver) -> list[str]:
    """The account keys of the dashboard's rows, top to bottom."""
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#accounts tbody tr")
    return [row.get_attribute("data-account") or "" for row in rows]
