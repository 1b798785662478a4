"""Telegram's Bot API: ``sendMessage`` to one chat.

``POST {NIJA_TELEGRAM_API_URL}/bot<token>/sendMessage`` with ``{"chat_id", "text"}``, plain
text (no parse mode: nothing in an alert can break Markdown). Telegram answers JSON: ``ok``;
or a 429 whose ``parameters.retry_after`` says how long to wait; ``description`` says what
is wrong ("Bad Request: chat not found"). The request's URL holds the bot token: it is never
logged, and an error names only the exception's type or the status and description.
"""

from __future__ import annotations

from typing import Any

import requests

from bot.alerts.channels.base import (
    Delivery,
    Message,
    answered,
    http_session,
    post_json,
    retry_after_header,
)

__all__ = ["MAX_TEXT_CHARS", "TELEGRAM_API_URL", "TelegramChannel"]

TELEGRAM_API_URL = "https://api.telegram.org"
MAX_TEXT_CHARS = 4096  # Telegram's limit on a message's text


def _body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(body: dict[str, Any]) -> float | None:
    parameters = body.get("parameters")
    seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    return None


class TelegramChannel:
    """Sends each alert to one Telegram chat through a bot."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        chat_id: str,
        *,
        api_url: str = TELEGRAM_API_URL,
        timeout: float,
        session: requests.Session | None = None,
    ) -> None:
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self.chat_id = chat_id
        self.timeout = timeout
        self._session = session or http_session()

    def __repr__(self) -> str:
        return f"TelegramChannel(chat_id={self.chat_id!r})"  # never the URL: it holds the token

    def send(self, message: Message) -> Delivery:
        """One ``sendMessage``; never raises."""
        payload: dict[str, Any] = {
            "chat_id": self.chat_id,
            "text": message.text[:MAX_TEXT_CHARS],
            "disable_web_page_preview": True,
        }
        response = post_json(self._session, self._url, payload, self.timeout)
        if isinstance(response, Delivery):
            return response
        with response:
            body = _body(response)
            status = response.status_code
        if 200 <= status < 300 and body.get("ok", True) is not False:
            return Delivery.sent()
        said = body.get("description")
        error = f"HTTP {status}" + (f": {said}" if isinstance(said, str) and said else "")
        return answered(status, error, _retry_after(body) or retry_after_header(response))

    def close(self) -> None:
        self._session.close()
