"""Alerts from the real daemon code: the supervisor and its API in-process (tests/api's
``ApiDaemon``), its log set up as bot.py sets it up, the tap on it, the fake Telegram.

Bob's key is refused (the venue's error quotes it), an operator pauses alice through the
HTTP API, and the daemon stops: each reaches the chat, in words, with no piece of any key;
/metrics counts what was sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.alerts.wiring import start_alerts
from bot.config.secrets import secret_values
from bot.daemon.log import get_logger, setup_logging, shutdown_logging
from bot.errors import AuthRejected
from bot.redact import Redactor
from nija_testkit.alert_sink import AlertSink
from tests.alerts.conftest import CHAT
from tests.alerts.conftest import TOKEN as BOT_TOKEN
from tests.api.conftest import ALICE, BOB, KEYS, TOKEN, ApiDaemon, wait_for

BOB_KEY = KEYS["KRAKEN_USER_BOB_API_KEY"]


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Path]:
    """nija.log as bot.py sets it up; put back afterwards for the rest of the suite."""
    root = logging.getLogger()
    level = root.level
    yield tmp_path / "nija.log"
    shutdown_logging()
    root.setLevel(level)


def test_failing_a_pause_and_the_stop_reach_telegram_with_no_secret(tmp_path, sink: AlertSink,
                                                                     logged):  # fmt: skip
    d = ApiDaemon(
        tmp_path,
        NIJA_HTTP_TOKEN=TOKEN,
        NIJA_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        NIJA_TELEGRAM_CHAT_ID=CHAT,
        NIJA_TELEGRAM_API_URL=sink.url,
    )
    secrets = secret_values(d.env)
    assert BOT_TOKEN in secrets and BOB_KEY in secrets
    setup_logging(logged, secrets, stdout=False)
    alerts = start_alerts(
        d.settings, Redactor(tuple(secrets)), clock=d.clock, log=get_logger(), host="vps1"
    )
    assert alerts is not None
    d.sup.alerts = alerts.notifier
    try:
        d.start()
        wait_for(lambda: d.worker(BOB).cycles >= 1, what="bob trading")
        # The venue refuses bob's key and quotes it, as some venues do.
        refused = AuthRejected(f'kraken {{"error":["EAPI:Invalid key"]}} (API key {BOB_KEY})')
        d.isolation.record_failure("user", "bob", "KRAKEN", refused, operation="balance")
        assert d.post(f"/api/v1/accounts/{ALICE}/pause").status_code == 200
        sent = 'nija_alerts_total{channel="telegram",outcome="sent"} 2.0'
        wait_for(lambda: sent in d.get("/metrics").text, what="two alerts sent, in /metrics")
        metrics = d.get("/metrics").text
        assert 'nija_alerts_suppressed_total{reason="duplicate"} 0.0' in metrics
    finally:
        d.stop()
        assert alerts.close()
    failing, paused, stopped = sink.texts()
    assert failing.startswith("[NIJA vps1] CRITICAL user/bob/KRAKEN is failing: ")
    assert "last error: AuthRejected: kraken" in failing and "(API key ***)" in failing
    assert f"reset {BOB}" in failing
    assert paused.startswith(f"[NIJA vps1] INFO {ALICE} paused by an operator (http:token-")
    assert stopped == "[NIJA vps1] WARNING NIJA stopped (2 account thread(s))"
    for got in sink.received():
        assert got.token == BOT_TOKEN and got.body["chat_id"] == CHAT
        for secret in secrets:
            assert secret[:8] not in got.raw.decode() and secret[-8:] not in got.raw.decode()
    log = logged.read_text()
    assert "alerts_on" in log and "channels=telegram" in log
    assert BOT_TOKEN[-8:] not in log and sink.url not in log
