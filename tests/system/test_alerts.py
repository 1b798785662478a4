"""The real bot.py tells a Telegram chat (the loopback fake) and a webhook what an operator
must hear of, and no secret: its start, an account quarantined by a (hostile) venue whose
error quotes the account's key, a pause by an operator with nija_ctl.py, and its stop."""

from __future__ import annotations

import socket

from nija_testkit.alert_sink import AlertSink
from nija_testkit.emulator.server import Fault
from nija_testkit.harness import account_env, clean_env, run_ctl, start_daemon, wait_for

PLATFORM, BOB = "platform/platform/KRAKEN", "user/bob/KRAKEN"
BOB_KEY, BOB_SECRET = "FAKE-KRAKEN-KEY-BOB-0002", "RkFLRUJPQlNFQ1JFVDAyRkFLRUJPQlNFQ1I="
BOT_TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = "-1005550001111"


def test_start_a_quarantine_a_pause_and_the_stop_reach_telegram_with_no_secret(
    venue_handle, tmp_path
):
    kraken = venue_handle("KRAKEN")
    kraken.venue.add_account(BOB_KEY, BOB_SECRET, {"USD": 10_000.0})
    platform_key = kraken.credentials.api_key
    # The venue fails every balance call of the platform account, quoting its key in the
    # error body (Kraken's words changed so: an error of no known kind, counted to quarantine).
    kraken.server.inject("balance", Fault("echo_key", where="json", api_key=platform_key))
    with AlertSink() as sink:
        env = clean_env(
            NIJA_CYCLE_SECONDS="1",
            NIJA_FUNDED_RECHECK_SECONDS="1",
            NIJA_CB_FAILURE_THRESHOLD="2",
            NIJA_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
            NIJA_TELEGRAM_CHAT_ID=CHAT,
            NIJA_TELEGRAM_API_URL=sink.url,
            NIJA_ALERT_WEBHOOK_URL=sink.webhook_url,
        )
        env |= account_env("KRAKEN", None, kraken.credentials)
        env |= {"KRAKEN_BASE_URL": kraken.server.url}
        env |= {"KRAKEN_USER_BOB_API_KEY": BOB_KEY, "KRAKEN_USER_BOB_API_SECRET": BOB_SECRET}
        run = start_daemon(env, tmp_path)
        try:
            wait_for(lambda: run.account(BOB).get("cycles", 0) >= 1, 30, "bob trading")
            wait_for(lambda: any("quarantined" in t for t in sink.texts()), 60, "quarantined")
            assert platform_key in kraken.server.echoed  # the venue did quote it
            code, report = run_ctl(tmp_path, run.data_dir, "pause", BOB)
            assert code == 0, report
            wait_for(lambda: any("paused" in t for t in sink.texts()), 30, "the pause alert")
        finally:
            assert run.stop() == 0
        texts = sink.texts()
        hooks = sink.received("webhook")
    host = texts[0].split("]")[0] + "]"  # "[NIJA <hostname>]"
    assert texts[0].startswith(f"{host} INFO NIJA started: PAPER, 2 account(s)")
    (quarantined,) = [t for t in texts if "quarantined" in t]
    assert quarantined.startswith(f"{host} WARNING {PLATFORM} is quarantined")
    # The venue's words are kept, its quote of the key masked.
    assert (
        'last error: BrokerError: ExchangeError: kraken {"error": ["EAPI:Invalid key (API key ***)'
        in quarantined
    )
    (paused,) = [t for t in texts if "paused by an operator" in t]
    assert paused.startswith(f"{host} INFO {BOB} paused by an operator (ctl:pid-")
    assert texts[-1] == f"{host} WARNING NIJA stopped (1 account thread(s))"
    assert [h.body["text"] for h in hooks] == texts  # the webhook got the same alerts
    assert [h.body["kind"] for h in hooks] == [
        "started",
        "account_quarantined",
        "operator_pause",
        "stopped",
    ]
    # No piece of any key, secret or the bot token in anything sent, nor in nija.log.
    secrets = [platform_key, kraken.credentials.api_secret, BOB_KEY, BOB_SECRET, BOT_TOKEN]
    sent = "".join(r.raw.decode() for r in sink.received())
    log = run.log_path.read_text()
    for secret in secrets:
        for piece in (secret, secret[:8], secret[-8:]):
            assert piece not in sent and piece not in log, piece
    events = {e.event for e in run.events()}
    assert "alerts_on" in events and "alert_send_failed" not in events


def test_a_start_up_error_after_the_banner_is_told_and_nothing_is_said_stopped(tmp_path):
    with AlertSink() as sink, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(
            NIJA_HTTP_PORT=str(port),  # taken: the API cannot listen, the start stops (exit 2)
            NIJA_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
            NIJA_TELEGRAM_CHAT_ID=CHAT,
            NIJA_TELEGRAM_API_URL=sink.url,
        )
        run = start_daemon(env, tmp_path)  # no keys: the demo
        assert run.proc.wait(timeout=60) == 2
        texts = sink.texts()
    assert len(texts) == 2, texts
    assert "INFO NIJA started: DEMO (PAPER" in texts[0]
    assert (
        f"CRITICAL NIJA cannot start: the HTTP API cannot listen on 127.0.0.1:{port}" in (texts[1])
    )
