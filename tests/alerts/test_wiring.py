"""Alerts from the settings, and the tap on the log that feeds them."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from bot.alerts.tap import AlertTap
from bot.alerts.wiring import channels_from, start_alerts
from bot.config.settings import load_settings
from bot.daemon.log import get_logger, setup_logging, shutdown_logging
from bot.redact import Redactor
from nija_testkit.clock import FakeClock
from tests.alerts.conftest import CHAT, TOKEN, Lines


def test_no_channel_means_no_notifier_no_thread_and_a_line_that_says_so():
    log = Lines()
    before = {t.name for t in threading.enumerate()}
    assert start_alerts(load_settings({}), Redactor(), clock=FakeClock(), log=log) is None
    (off,) = log.named("alerts_off")
    assert "NIJA_TELEGRAM_BOT_TOKEN" in off["note"] and "NIJA_ALERT_WEBHOOK_URL" in off["note"]
    assert not {t.name for t in threading.enumerate()} - before


def test_the_settings_choose_the_channels():
    env = {
        "NIJA_TELEGRAM_BOT_TOKEN": TOKEN,
        "NIJA_TELEGRAM_CHAT_ID": CHAT,
        "NIJA_ALERT_WEBHOOK_URL": "https://hooks.example/x",
    }
    assert [c.name for c in channels_from(load_settings(env))] == ["telegram", "webhook"]
    only_hook = {"NIJA_ALERT_WEBHOOK_URL": "https://hooks.example/x"}
    assert [c.name for c in channels_from(load_settings(only_hook))] == ["webhook"]
    assert channels_from(load_settings({})) == []


class Taken:
    def __init__(self) -> None:
        self.lines: list[tuple[dict, float]] = []

    def put_logged(self, fields: dict, at: float) -> bool:
        self.lines.append((fields, at))
        return True


def test_the_tap_takes_the_alert_lines_only_and_outlives_a_new_logging_setup(tmp_path: Path):
    root, level = logging.getLogger(), logging.getLogger().level
    taken = Taken()
    tap = AlertTap(taken).install()
    try:
        setup_logging(tmp_path / "nija.log", [], stdout=False)
        log = get_logger("user/bob/KRAKEN")
        log.info("cycle", ok=True)
        log.warning("INDEPENDENT_thread_restarted", restarts=1)
        setup_logging(tmp_path / "nija.log", [], stdout=False)  # as bot.py's start-up error does
        get_logger().error("startup_failed", error="port taken")
        logging.getLogger("uvicorn").warning("venue_down")  # a foreign record: not ours
        tap.remove()
        get_logger().info("stopped", accounts=1)
    finally:
        tap.remove()
        shutdown_logging()
        root.setLevel(level)
    assert [(f["event"], f.get("account")) for f, _at in taken.lines] == [
        ("INDEPENDENT_thread_restarted", "user/bob/KRAKEN"),
        ("startup_failed", None),
    ]
    assert all(at > 0 for _f, at in taken.lines)  # the records' own times
