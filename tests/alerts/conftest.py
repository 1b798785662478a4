"""Fixtures of the alerts' tests: the loopback fake of Telegram and the webhook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nija_testkit.alert_sink import AlertSink

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = "-1009876000001"


@pytest.fixture
def sink() -> Iterator[AlertSink]:
    with AlertSink() as running:
        yield running


class Lines:
    """A logger that keeps what it is told: ``(level, event, fields)``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _keep(self, level: str, event: str, **fields: Any) -> None:
        self.lines.append((level, event, fields))

    def info(self, event: str, **fields: Any) -> None:
        self._keep("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._keep("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._keep("error", event, **fields)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [fields for _level, name, fields in self.lines if name == event]
