#!/usr/bin/env python3
"""The dashboard's screenshot in docs/: the real demo daemon, seen in a headless Chromium.

Starts bot.py with no keys (the demo) in a temporary directory, opens the dashboard,
connects with the generated token, waits until bob's demo faults have turned him
``failing`` and the healthy accounts have a few cycles of equity to draw, pauses alice
(so that the picture shows a paused account too), and saves a PNG.

Needs Debian's ``chromium`` and ``chromium-driver`` and selenium (the dev extra).

Usage: python3 scripts/dashboard_screenshot.py [--out docs/dashboard.png] [--seconds 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from nija_testkit.browser import console_errors, missing_browser, start_chromium
from nija_testkit.harness import ROOT, clean_env, start_daemon, wait_for

ALICE, BOB = "user/alice/PAPER", "user/bob/PAPER"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="demo time before the picture (at least 30)"
    )
    args = parser.parse_args()
    why = missing_browser()
    if why:
        print(f"cannot take the screenshot: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="nija-dashboard-") as tmp:
        workdir = Path(tmp)
        profile = workdir / "chromium-profile"
        profile.mkdir()
        run = start_daemon(clean_env(), workdir)
        began = time.monotonic()
        driver = start_chromium(profile, width=1440, height=900)
        try:
            url = wait_for(run.api_url, 20, "the http_listening line")
            token = (run.data_dir / "http-token").read_text().strip()
            requests.post(
                f"{url}/api/v1/accounts/{ALICE}/pause",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).raise_for_status()
            driver.get(url + "/dashboard")
            driver.find_element(By.ID, "token").send_keys(token)
            driver.find_element(By.ID, "connect").click()
            budget = max(args.seconds, 30.0) + 30.0
            WebDriverWait(driver, budget, poll_frequency=0.5).until(
                lambda d: (
                    d.find_element(
                        By.CSS_SELECTOR, f'tr[data-account="{BOB}"] td[data-field="health"]'
                    ).text
                    == "failing"
                )
            )
            time.sleep(max(0.0, args.seconds - (time.monotonic() - began)))
            time.sleep(4.0)  # one more refresh: every row drawn from the same moment
            errors = console_errors(driver)
            if errors:
                print(f"the browser console has errors: {errors}", file=sys.stderr)
                return 1
            # The whole page, not a fixed window: the window's height is made the page's.
            page, chrome = driver.execute_script(
                "return [Math.ceil(document.body.getBoundingClientRect().height),"
                " window.outerHeight - window.innerHeight]"
            )
            driver.set_window_size(1440, int(page) + int(chrome))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(driver.get_screenshot_as_png())
        finally:
            driver.quit()
            run.stop()
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
