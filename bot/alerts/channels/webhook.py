"""A generic JSON webhook: one ``POST`` per alert.

The body is ``{"source": "nija", "host", "kind", "severity", "subject", "text", "at"}``
(``text`` is what Slack's and Mattermost's incoming webhooks show). A 2xx is delivered; a
429 (with ``Retry-After``), a 5xx, a timeout or no connection is tried again; any other
answer is a failure. Redirects are not followed. The URL is never logged (it is usually a
capability); an error names the status or the exception's type only.
"""

from __future__ import annotations

from dataclasses import asdict

import requests

from bot.alerts.channels.base import (
    Delivery,
    Message,
    answered,
    http_session,
    post_json,
    retry_after_header,
)

__all__ = ["WebhookChannel"]


class WebhookChannel:
    """POSTs each alert as JSON to one URL."""

    name = "webhook"

    def __init__(
        self, url: str, *, timeout: float, session: requests.Session | None = None
    ) -> None:
        self._url = url
        self.timeout = timeout
        self._session = session or http_session()

    def __repr__(self) -> str:
        return "WebhookChannel()"  # never the URL

    def send(self, message: Message) -> Delivery:
        """One POST; never raises."""
        payload = {"source": "nija", **asdict(message)}
        response = post_json(self._session, self._url, payload, self.timeout)
        if isinstance(response, Delivery):
            return response
        with response:
            status = response.status_code
        if 200 <= status < 300:
            return Delivery.sent()
        return answered(status, f"HTTP {status}", retry_after_header(response))

    def close(self) -> None:
        self._session.close()
