"""The channels over real HTTP against the loopback fake, through the sender that retries:
200, 429 with retry_after, 5xx, a refusal, a hang cut by the timeout."""

from __future__ import annotations

import time

import pytest

from bot.alerts.channels.base import Message, Result
from bot.alerts.channels.telegram import TelegramChannel
from bot.alerts.channels.webhook import WebhookChannel
from bot.alerts.sender import MAX_WAIT_SECONDS, ChannelSender
from nija_testkit.alert_sink import TELEGRAM, WEBHOOK, AlertSink, Answer
from nija_testkit.clock import FakeClock
from nija_testkit.harness import wait_for
from tests.alerts.conftest import CHAT, TOKEN, Lines

MESSAGE = Message(
    "account_failing",
    "critical",
    "user/bob/KRAKEN",
    "[NIJA vps1] CRITICAL user/bob/KRAKEN is failing",
    "2026-01-01T00:00:00Z",
    "vps1",
)


def telegram(sink: AlertSink, timeout: float = 5.0) -> TelegramChannel:
    return TelegramChannel(TOKEN, CHAT, api_url=sink.url, timeout=timeout)


def webhook(sink: AlertSink, timeout: float = 5.0) -> WebhookChannel:
    return WebhookChannel(sink.webhook_url, timeout=timeout)


class Sender:
    """A started ChannelSender whose waits between attempts are recorded, not slept."""

    def __init__(self, channel, clock: FakeClock | None = None, queue_size: int = 100) -> None:
        self.waits: list[float] = []
        self.log = Lines()
        self.sender = ChannelSender(
            channel,
            clock=clock or FakeClock(),
            log=self.log,
            wait=self._wait,
            queue_size=queue_size,
        )
        self.sender.start()

    def _wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False

    def send(self, message: Message = MESSAGE) -> None:
        done = sum(self.sender.counts()[k] for k in ("sent", "failed"))
        assert self.sender.offer(message)
        wait_for(
            lambda: sum(self.sender.counts()[k] for k in ("sent", "failed")) > done, 10, "a send"
        )

    def close(self) -> None:
        self.sender.close()
        assert self.sender.join(5)


def test_telegram_sends_the_text_to_the_chat(sink):
    sender = Sender(telegram(sink))
    sender.send()
    sender.close()
    (got,) = sink.received(TELEGRAM)
    assert got.token == TOKEN and got.path == f"/bot{TOKEN}/sendMessage"
    assert got.body == {"chat_id": CHAT, "text": MESSAGE.text, "disable_web_page_preview": True}
    assert sender.sender.counts() == {"sent": 1, "failed": 0, "dropped": 0}
    assert sender.waits == []


def test_the_webhook_posts_the_alert_as_json(sink):
    sender = Sender(webhook(sink))
    sender.send()
    sender.close()
    (got,) = sink.received(WEBHOOK)
    assert got.body == {
        "source": "nija",
        "kind": "account_failing",
        "severity": "critical",
        "subject": "user/bob/KRAKEN",
        "text": MESSAGE.text,
        "at": "2026-01-01T00:00:00Z",
        "host": "vps1",
    }


@pytest.mark.parametrize(("make", "route"), [(telegram, TELEGRAM), (webhook, WEBHOOK)])
def test_a_429_is_tried_again_after_the_wait_it_asks_for(sink, make, route):
    sink.answer(Answer.too_many(7), route=route)
    sender = Sender(make(sink))
    sender.send()
    sender.close()
    assert len(sink.received(route)) == 2
    assert sender.waits == [7.0]
    assert sender.sender.counts()["sent"] == 1
    assert sender.log.lines == []  # it went out: nothing to report


def test_a_429_asking_for_an_hour_waits_a_minute_at_most(sink):
    sink.answer(Answer.too_many(3600))
    sender = Sender(telegram(sink))
    sender.send()
    sender.close()
    assert sender.waits == [MAX_WAIT_SECONDS]


@pytest.mark.parametrize(("make", "route"), [(telegram, TELEGRAM), (webhook, WEBHOOK)])
def test_a_5xx_is_tried_three_times_with_growing_waits_then_given_up_and_logged(sink, make, route):
    sink.answer(*[Answer.server_error(502)] * 3, route=route)
    sender = Sender(make(sink))
    sender.send()
    assert len(sink.received(route)) == 3
    assert sender.waits == [2.0, 4.0]
    assert sender.sender.counts() == {"sent": 0, "failed": 1, "dropped": 0}
    (failed,) = sender.log.named("alert_send_failed")
    assert failed["channel"] == route and failed["attempts"] == 3
    assert failed["error"].startswith("HTTP 502")
    sender.send()  # the fake answers 200 again
    sender.close()
    assert sender.log.named("alert_send_recovered") == [{"channel": route, "failed": 1}]


def test_a_refusal_is_final_at_once_and_says_what_telegram_said(sink):
    sink.answer(Answer.refused(400, "Bad Request: chat not found"))
    sender = Sender(telegram(sink))
    sender.send()
    sender.close()
    assert len(sink.received()) == 1 and sender.waits == []
    (failed,) = sender.log.named("alert_send_failed")
    assert failed["error"] == "HTTP 400: Bad Request: chat not found"


@pytest.mark.parametrize(("make", "route"), [(telegram, TELEGRAM), (webhook, WEBHOOK)])
def test_a_hang_is_cut_by_the_timeout_and_tried_again(sink, make, route):
    sink.answer(Answer.hang(), route=route)
    channel = make(sink, timeout=0.3)
    began = time.monotonic()
    delivery = channel.send(MESSAGE)
    took = time.monotonic() - began
    assert delivery.result is Result.RETRY and delivery.error.startswith("timeout")
    assert 0.3 <= took < 5.0
    assert channel.send(MESSAGE).result is Result.SENT  # the next answers at once


def test_no_connection_is_tried_again_and_the_error_never_shows_the_url(sink):
    url = sink.url
    sink.stop()
    channel = TelegramChannel(TOKEN, CHAT, api_url=url, timeout=1.0)
    delivery = channel.send(MESSAGE)
    assert delivery.result is Result.RETRY
    assert delivery.error == "ConnectionError"
    assert TOKEN not in repr(channel) and url not in repr(webhook_at(url))


def webhook_at(url: str) -> WebhookChannel:
    return WebhookChannel(url + "/hook", timeout=1.0)


def test_failures_are_logged_when_a_streak_starts_then_at_most_every_five_minutes(sink):
    clock = FakeClock()
    sink.answer(*[Answer.refused(403, "Forbidden: bot was blocked by the user")] * 4)
    sender = Sender(telegram(sink), clock)
    sender.send()
    sender.send()
    clock.advance(299)
    sender.send()
    assert len(sender.log.named("alert_send_failed")) == 1
    clock.advance(1)
    sender.send()
    sender.close()
    first, second = sender.log.named("alert_send_failed")
    assert first["failed"] == 1 and second["failed"] == 3  # the two untold, and this one
    assert sender.sender.counts()["failed"] == 4


def test_a_full_queue_drops_and_counts_and_never_blocks(sink):
    sink.answer(Answer.hang())
    sender = Sender(telegram(sink, timeout=5.0), queue_size=2).sender
    assert sender.offer(MESSAGE)
    wait_for(lambda: sink.received(), 5, "the first request, hanging")
    began = time.monotonic()
    assert [sender.offer(MESSAGE) for _ in range(3)] == [True, True, False]
    assert time.monotonic() - began < 1.0  # not one of them waited for the hang
    assert sender.counts()["dropped"] == 1
    sink.release()
    wait_for(lambda: sender.counts()["sent"] == 3, 10, "the queued messages sent")
    sender.close()
    assert sender.join(10)
    assert sender.counts() == {"sent": 3, "failed": 0, "dropped": 1}
