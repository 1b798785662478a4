"""No storms: the dedupe window, the rate limit, and the summary of what they held back.

Plain data driven by the time passed in (the notifier passes its clock's monotonic time);
``FakeClock`` moves it."""

from __future__ import annotations

import pytest

from bot.alerts.dedupe import Throttle, Verdict
from bot.alerts.events import DAEMON, AlertEvent, AlertKind
from nija_testkit.clock import FakeClock

BOB, ALICE = "user/bob/KRAKEN", "user/alice/KRAKEN"


def alert(kind: AlertKind, subject: str, clock: FakeClock, topic: str = "") -> AlertEvent:
    return AlertEvent(kind, subject, f"{subject} {kind.value}", clock.wall(), topic)


def test_a_repeat_within_the_window_is_held_back_and_sent_again_after_it():
    clock, throttle = FakeClock(), Throttle(dedupe_seconds=300, max_per_minute=100)
    failing = alert(AlertKind.ACCOUNT_FAILING, BOB, clock)
    assert throttle.admit(failing, clock.monotonic()) is Verdict.SEND
    clock.advance(299)
    assert throttle.admit(failing, clock.monotonic()) is Verdict.DUPLICATE
    # Another kind, another subject, another topic: not repeats.
    assert throttle.admit(alert(AlertKind.ACCOUNT_RECOVERED, BOB, clock), clock.monotonic()) is (
        Verdict.SEND
    )
    assert throttle.admit(alert(AlertKind.ACCOUNT_FAILING, ALICE, clock), clock.monotonic()) is (
        Verdict.SEND
    )
    unknown = [alert(AlertKind.ORDER_UNKNOWN, BOB, clock, f"nija-{n}") for n in (1, 2)]
    assert [throttle.admit(a, clock.monotonic()) for a in unknown] == [Verdict.SEND] * 2
    clock.advance(1)  # 300 s after the first send: a reminder that it still fails
    assert throttle.admit(failing, clock.monotonic()) is Verdict.SEND
    assert throttle.held == 1


def test_over_the_rate_only_the_first_go_out_and_the_minute_after_frees_it():
    clock, throttle = FakeClock(), Throttle(dedupe_seconds=300, max_per_minute=3)
    verdicts = [
        throttle.admit(alert(AlertKind.THREAD_DEAD, f"user/u{n}/OKX", clock), clock.monotonic())
        for n in range(5)
    ]
    assert verdicts == [Verdict.SEND] * 3 + [Verdict.RATE_LIMITED] * 2
    clock.advance(59.9)
    late = alert(AlertKind.VENUE_DOWN, "OKX", clock)
    assert throttle.admit(late, clock.monotonic()) is Verdict.RATE_LIMITED
    clock.advance(0.1)
    assert throttle.admit(late, clock.monotonic()) is Verdict.SEND


def test_the_summary_says_what_was_held_back_a_minute_after_then_once_a_window():
    clock, throttle = FakeClock(), Throttle(dedupe_seconds=300, max_per_minute=2)
    for subject in (BOB, ALICE, "user/eve/KRAKEN", "user/dan/KRAKEN", "user/cy/KRAKEN"):
        throttle.admit(alert(AlertKind.ACCOUNT_FAILING, subject, clock), clock.monotonic())
    throttle.admit(alert(AlertKind.ACCOUNT_FAILING, BOB, clock), clock.monotonic())
    assert throttle.summary(clock.monotonic(), clock.wall()) is None  # not yet
    clock.advance(59)
    assert throttle.summary(clock.monotonic(), clock.wall()) is None
    clock.advance(1)
    summary = throttle.summary(clock.monotonic(), clock.wall())
    assert summary is not None
    assert (summary.kind, summary.subject) == (AlertKind.SUPPRESSED, DAEMON)
    assert summary.text == (
        "4 alert(s) suppressed since 00:00:00Z (repeats within 300 s, or over 2 a minute): "
        "account_failing ×4 (user/eve/KRAKEN, user/dan/KRAKEN, user/cy/KRAKEN, 1 more)"
    )
    assert throttle.held == 0 and throttle.summary(clock.monotonic(), clock.wall()) is None
    # Held back again soon after: the next summary waits for the window since the last.
    clock.advance(60)
    throttle.admit(alert(AlertKind.ACCOUNT_FAILING, BOB, clock), clock.monotonic())
    clock.advance(60)
    assert throttle.summary(clock.monotonic(), clock.wall()) is None
    clock.advance(180)  # 300 s after the last summary
    again = throttle.summary(clock.monotonic(), clock.wall())
    assert again is not None and again.text.endswith("account_failing ×1 (user/bob/KRAKEN)")


def test_the_final_summary_comes_at_once_and_counts_each_subject():
    clock, throttle = FakeClock(), Throttle(dedupe_seconds=600, max_per_minute=10)
    for _ in range(3):
        throttle.admit(alert(AlertKind.THREAD_DEAD, BOB, clock), clock.monotonic())
        throttle.admit(alert(AlertKind.THREAD_RESTARTED, BOB, clock), clock.monotonic())
    summary = throttle.summary(clock.monotonic(), clock.wall(), final=True)
    assert summary is not None
    assert summary.text.endswith(
        "thread_dead ×2 (user/bob/KRAKEN ×2); thread_restarted ×2 (user/bob/KRAKEN ×2)"
    )
    assert throttle.summary(clock.monotonic(), clock.wall(), final=True) is None  # nothing held


def test_a_short_window_brings_the_first_summary_sooner():
    clock, throttle = FakeClock(), Throttle(dedupe_seconds=10, max_per_minute=10)
    for _ in range(2):
        throttle.admit(alert(AlertKind.VENUE_DOWN, "KRAKEN", clock), clock.monotonic())
    clock.advance(10)
    assert throttle.summary(clock.monotonic(), clock.wall()) is not None


@pytest.mark.parametrize(("window", "rate"), [(0, 1), (-1, 1), (10, 0)])
def test_a_throttle_that_would_hold_everything_back_is_refused(window, rate):
    with pytest.raises(ValueError, match="dedupe_seconds"):
        Throttle(window, rate)
