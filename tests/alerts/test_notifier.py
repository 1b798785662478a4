"""The notifier between the daemon and the channels: put() never waits, a hanging channel
holds up neither the caller nor the other channel, repeats are held back and summed up,
and every text passes the redactor."""

from __future__ import annotations

import time

from bot.alerts.channels.telegram import TelegramChannel
from bot.alerts.channels.webhook import WebhookChannel
from bot.alerts.dedupe import Throttle
from bot.alerts.events import AlertEvent, AlertKind
from bot.alerts.notifier import Notifier
from bot.alerts.sender import ChannelSender
from bot.redact import Redactor
from nija_testkit.alert_sink import TELEGRAM, WEBHOOK, AlertSink, Answer
from nija_testkit.clock import FakeClock
from nija_testkit.harness import wait_for
from tests.alerts.conftest import CHAT, TOKEN, Lines

BOB = "user/bob/KRAKEN"
KEY = "FAKE-KRAKEN-KEY-BOB-0002"


def notifier(
    sink: AlertSink,
    *,
    webhook: bool = False,
    timeout: float = 5.0,
    clock: FakeClock | None = None,
    queue_size: int = 1000,
    max_per_minute: int = 100,
) -> Notifier:
    clock = clock or FakeClock()
    log = Lines()
    channels = [TelegramChannel(TOKEN, CHAT, api_url=sink.url, timeout=timeout)]
    if webhook:
        channels.append(WebhookChannel(sink.webhook_url, timeout=timeout))
    return Notifier(
        [ChannelSender(c, clock=clock, log=log, wait=lambda s: False) for c in channels],
        Throttle(300, max_per_minute),
        redactor=Redactor((KEY, TOKEN)),
        clock=clock,
        host="vps1",
        log=log,
        queue_size=queue_size,
    )


def failing(clock: FakeClock, text: str = f"{BOB} is failing") -> AlertEvent:
    return AlertEvent(AlertKind.ACCOUNT_FAILING, BOB, text, clock.wall())


def test_an_alert_reaches_the_chat_as_one_line_with_host_and_severity(sink):
    clock = FakeClock()
    n = notifier(sink, clock=clock)
    n.start()
    assert n.put(failing(clock))
    wait_for(lambda: sink.texts(), 10, "the alert at the fake Telegram")
    assert n.close()
    assert sink.texts() == ["[NIJA vps1] CRITICAL user/bob/KRAKEN is failing"]


def test_put_returns_at_once_while_telegram_hangs_and_the_webhook_still_gets_it(sink):
    sink.answer(*[Answer.hang()] * 3, route=TELEGRAM)
    clock = FakeClock()
    n = notifier(sink, webhook=True, timeout=10.0, clock=clock)
    n.start()
    kinds = (AlertKind.ACCOUNT_FAILING, AlertKind.THREAD_DEAD, AlertKind.VENUE_DOWN)
    slowest = 0.0
    for kind in kinds:
        began = time.perf_counter()
        assert n.put(AlertEvent(kind, BOB, kind.value, clock.wall()))
        slowest = max(slowest, time.perf_counter() - began)
    wait_for(lambda: sink.received(TELEGRAM), 5, "telegram's request, hanging")
    # The webhook has all three while Telegram still holds its first request.
    wait_for(lambda: len(sink.received(WEBHOOK)) == 3, 5, "the webhook's three alerts")
    assert len(sink.received(TELEGRAM)) == 1
    assert slowest < 0.5  # a queue put, not a request held by a 10 s timeout (a loaded CI)
    began = time.monotonic()
    assert not n.close(timeout=0.5)  # Telegram is still hanging: close gives up in time
    assert time.monotonic() - began < 2.0
    sink.release()


def test_repeats_are_held_back_counted_and_summed_up_at_the_end(sink):
    clock = FakeClock()
    n = notifier(sink, clock=clock)
    n.start()
    for _ in range(3):
        n.put(failing(clock))
    n.put(AlertEvent(AlertKind.THREAD_DEAD, BOB, "thread died", clock.wall()))
    wait_for(lambda: n.counts().suppressed["duplicate"] == 2, 10, "two repeats held back")
    assert n.close()
    texts = sink.texts()
    assert len(texts) == 3, texts
    assert texts[2] == (
        "[NIJA vps1] INFO 2 alert(s) suppressed since 00:00:00Z (repeats within 300 s, or over "
        "100 a minute): account_failing ×2 (user/bob/KRAKEN ×2)"
    )
    counts = n.counts()
    assert counts.channels == {"telegram": {"sent": 3, "failed": 0, "dropped": 0}}
    assert counts.suppressed == {"duplicate": 2, "rate_limited": 0, "queue_full": 0}


def test_a_summary_goes_out_a_minute_after_a_burst_without_waiting_for_the_end(sink):
    clock = FakeClock()
    n = notifier(sink, clock=clock, max_per_minute=2)
    n.start()
    for ident in ("a", "b", "c", "d"):
        n.put(AlertEvent(AlertKind.ACCOUNT_FAILING, f"user/{ident}/OKX", "failing", clock.wall()))
    wait_for(lambda: n.counts().suppressed["rate_limited"] == 2, 10, "two over the rate")
    clock.advance(60)  # the notifier's thread looks for a due summary every second
    wait_for(lambda: len(sink.texts()) == 3, 10, "the summary")
    assert (
        "2 alert(s) suppressed" in sink.texts()[2] and "user/c/OKX, user/d/OKX" in sink.texts()[2]
    )
    assert n.close()


def test_no_secret_in_any_text_whatever_the_source_put_in_it(sink):
    clock = FakeClock()
    n = notifier(sink, webhook=True, clock=clock)
    n.start()
    echoed = f'AuthRejected: kraken {{"error":["EAPI:Invalid key (API key {KEY})"]}}'
    n.put(failing(clock, f"{BOB} is failing; last error: {echoed}; token {TOKEN}"))
    # A log line's fields: a secret value, and a secret-named field, in a source's words.
    line = {"event": "INDEPENDENT_thread_died", "account": BOB, "error": f"api_key={KEY[:12]}x"}
    n.put_logged(line, clock.wall())
    wait_for(lambda: len(sink.received()) == 4, 10, "both alerts on both channels")
    assert n.close()
    for got in sink.received():
        assert KEY not in got.raw.decode() and KEY[:8] not in got.raw.decode()
        assert TOKEN.split(":")[1] not in got.raw.decode()
    first, second = sink.texts(TELEGRAM)
    assert "(API key ***)" in first and "token ***" in first
    assert "thread died (api_key=***)" in second


def test_a_full_queue_drops_the_alert_counts_it_and_never_blocks(sink):
    clock = FakeClock()
    n = notifier(sink, clock=clock, queue_size=2)  # not started: nothing takes from the queue
    assert [n.put(failing(clock)) for _ in range(3)] == [True, True, False]
    assert n.counts().suppressed["queue_full"] == 1
    n.start()
    assert n.close()
    assert len(sink.texts()) == 2  # the first, and the summary of its repeat
    assert not n.put(failing(clock))  # closed: nothing more is taken


def test_a_line_that_calls_for_no_alert_sends_nothing(sink):
    clock = FakeClock()
    n = notifier(sink, clock=clock)
    n.start()
    n.put_logged({"event": "INDEPENDENT_health_changed", "new": "degraded"}, clock.wall())
    n.put_logged({"event": "venue_down", "venue": "OKX", "reason": "probe failed"}, clock.wall())
    wait_for(lambda: sink.texts(), 10, "the venue's alert")
    assert n.close()
    assert sink.texts() == [
        "[NIJA vps1] WARNING venue OKX is down (probe failed): its accounts send nothing until "
        "it is back"
    ]
