"""What a channel is given (``Message``), what it answers (``Delivery``), and its protocol."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import requests

__all__ = [
    "MAX_ERROR_CHARS",
    "Channel",
    "Delivery",
    "Message",
    "Result",
    "answered",
    "failure_of",
    "http_session",
    "post_json",
    "retry_after_header",
]

MAX_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class Message:
    """One alert as it goes out, every text already redacted."""

    kind: str
    severity: str
    subject: str
    text: str  # the whole line a person reads: "[NIJA host] CRITICAL user/bob/KRAKEN is ..."
    at: str  # ISO-8601 UTC
    host: str


class Result(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # may work later: a timeout, no connection, 5xx, 429
    FAILED = "failed"  # will not work as it is: a 4xx other than 429 (a wrong token, chat, URL)


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one send went; ``error`` is for the log (a status, an exception's type; never a
    URL, which may carry a token), ``retry_after`` what the channel asked us to wait."""

    result: Result
    error: str | None = None
    retry_after: float | None = None

    @classmethod
    def sent(cls) -> Delivery:
        return cls(Result.SENT)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> Delivery:
        return cls(Result.RETRY, error[:MAX_ERROR_CHARS], retry_after)

    @classmethod
    def failed(cls, error: str) -> Delivery:
        return cls(Result.FAILED, error[:MAX_ERROR_CHARS])


class Channel(Protocol):
    """One destination of alerts."""

    name: str  # "telegram", "webhook": the metrics' and the log's ``channel``

    def send(self, message: Message) -> Delivery:
        """Deliver ``message`` once, within the channel's timeout. Never raises."""
        ...

    def close(self) -> None:
        """Release the connection pool."""
        ...


def http_session() -> requests.Session:
    """A session for a channel: no proxy, .netrc or CA bundle from the environment between
    us and it (as the heartbeat's), so what is sent where is what the settings say."""
    session = requests.Session()
    session.trust_env = False
    return session


def retry_after_header(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds, when it is a number."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def failure_of(exc: requests.RequestException) -> Delivery:
    """A failed request as a delivery to retry: its exception's type only (a requests error
    quotes the URL, and a URL may carry a token)."""
    if isinstance(exc, requests.Timeout):
        return Delivery.retry(f"timeout ({type(exc).__name__})")
    return Delivery.retry(type(exc).__name__)


def post_json(
    session: requests.Session, url: str, payload: dict, timeout: float
) -> requests.Response | Delivery:
    """POST ``payload`` as JSON, never following a redirect: the answer, or the delivery to
    retry when none came."""
    try:
        return session.post(url, json=payload, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return failure_of(exc)


def answered(status: int, error: str, retry_after: float | None = None) -> Delivery:
    """A refusal as a delivery: a 429 retried after ``retry_after`` (when said), a 5xx retried,
    any other final (a wrong token, chat or URL will not work later either)."""
    if status == 429:
        return Delivery.retry(error, retry_after)
    if status >= 500:
        return Delivery.retry(error)
    return Delivery.failed(error)
