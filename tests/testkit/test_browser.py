"""The browser tests' gate: skipped without Debian's chromium, failed under CI without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nija_testkit import browser


@pytest.fixture
def no_chromium(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")


def test_a_missing_browser_is_named_with_its_debian_packages(no_chromium):
    why = browser.missing_browser()
    assert why is not None and "no-chromium" in why
    assert "install the Debian packages chromium chromium-driver" in why


def test_outside_ci_a_missing_browser_skips(no_chromium, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium chromium-driver"):
        browser.require_browser()


def test_under_ci_a_missing_browser_fails_the_run(no_chromium, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="the browser is missing in CI"):
        browser.require_browser()
