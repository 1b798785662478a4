"""Alerts from the settings: the channels, the notifier, the tap on the log; and their end.

``start_alerts`` is called once by the daemon before its banner (so the start is told) and
``Alerts.close`` after its last line (so the stop is told). With no channel configured
there is no notifier and no thread; the log says so (``alerts_off``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from bot.alerts.channels.base import Channel
from bot.alerts.channels.telegram import TelegramChannel
from bot.alerts.channels.webhook import WebhookChannel
from bot.alerts.dedupe import Throttle
from bot.alerts.notifier import DRAIN_SECONDS, Notifier
from bot.alerts.sender import ChannelSender
from bot.alerts.tap import AlertTap
from bot.clock import Clock
from bot.config.settings import Settings
from bot.redact import Redactor

__all__ = ["SEND_TIMEOUT_SECONDS", "Alerts", "channels_from", "start_alerts"]

SEND_TIMEOUT_SECONDS = 10.0  # each request to a channel (connect, and each read)


@dataclass
class Alerts:
    """The running alerts: the notifier (its counts are in /metrics) and its tap."""

    notifier: Notifier
    tap: AlertTap

    def close(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Take the tap off the log, then let the notifier send what is queued (bounded)."""
        self.tap.remove()
        return self.notifier.close(timeout)


def channels_from(settings: Settings, *, timeout: float = SEND_TIMEOUT_SECONDS) -> list[Channel]:
    """The channels the settings configure (none: alerts are off)."""
    channels: list[Channel] = []
    if settings.telegram_bot_token and settings.telegram_chat_id:
        channels.append(
            TelegramChannel(
                settings.telegram_bot_token,
                settings.telegram_chat_id,
                api_url=settings.telegram_api_url,
                timeout=timeout,
            )
        )
    if settings.alert_webhook_url:
        channels.append(WebhookChannel(settings.alert_webhook_url, timeout=timeout))
    return channels


def start_alerts(
    settings: Settings,
    redactor: Redactor,
    *,
    clock: Clock,
    log: Any,
    host: str | None = None,
    channels: list[Channel] | None = None,
) -> Alerts | None:
    """Start the notifier and put its tap on the log; None (logged) when no channel is set.

    ``redactor`` is the daemon's (it learns reloaded keys and the API token): every text
    sent passes it. ``channels`` replaces the settings' (a test's fakes).
    """
    chosen = channels_from(settings) if channels is None else channels
    if not chosen:
        log.info(
            "alerts_off",
            note="no alert channel: set NIJA_TELEGRAM_BOT_TOKEN and NIJA_TELEGRAM_CHAT_ID, "
            "or NIJA_ALERT_WEBHOOK_URL (docs/OPERATIONS.md)",
        )
        return None
    notifier = Notifier(
        [ChannelSender(c, clock=clock, log=log, redactor=redactor) for c in chosen],
        Throttle(settings.alert_dedupe_seconds, settings.alert_max_per_minute),
        redactor=redactor,
        clock=clock,
        host=host or socket.gethostname(),
        log=log,
    )
    notifier.start()
    log.info(
        "alerts_on",
        channels=",".join(notifier.channels),
        dedupe_s=settings.alert_dedupe_seconds,
        max_per_minute=settings.alert_max_per_minute,
    )
    return Alerts(notifier, AlertTap(notifier).install())
