"""The kinds of value a setting takes, each with its rule and the words of its error.

Pydantic annotated types used by the ``Settings`` fields (``bot.config.settings``): a
rule's own ``ValueError`` says what was expected, else the type's ``Expect`` does, so
every rejected variable is reported as ``NAME must be <what>, got '...'``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter
from pydantic_core import ErrorDetails

from bot.brokers import venues
from bot.config.values import VariableError, parse_url, to_bool
from bot.model import timeframe_seconds

__all__ = [
    "MIN_HTTP_TOKEN_LENGTH",
    "POSITIVE",
    "BotToken",
    "Cap",
    "ChatId",
    "DatabaseUrl",
    "Expect",
    "Flag",
    "HeartbeatUrl",
    "Host",
    "LeaseTtl",
    "Mode",
    "NodeId",
    "NonNegative",
    "Port",
    "Positive",
    "StrategyName",
    "TelegramUrl",
    "Timeframe",
    "Token",
    "TradingMode",
    "VenueName",
    "WebhookUrl",
    "Whole",
    "expected",
]

# The shortest NIJA_HTTP_TOKEN accepted: a guessable token guards nothing.
MIN_HTTP_TOKEN_LENGTH = 16


class Mode(StrEnum):
    """What an order does; the value is what status.json, the logs and file names show."""

    PAPER = "paper"  # simulated fills
    LIVE = "live"  # real orders with real money


@dataclass(frozen=True, slots=True)
class Expect:
    """What a variable must be, for its error: ``NAME must be <what>, got '...'``."""

    what: str


def _lower(raw: Any) -> Any:
    return raw.lower() if isinstance(raw, str) else raw


def _upper(raw: Any) -> Any:
    return raw.upper() if isinstance(raw, str) else raw


def _flag(raw: Any) -> Any:
    return to_bool(raw) if isinstance(raw, str) else raw


def _whole(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return int(raw)  # pydantic alone would also take "4.0" as 4
    except ValueError:
        raise ValueError("a whole number >= 1") from None


def _port(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return int(raw)
    except ValueError:
        raise ValueError("a port, 0 to 65535 (0: any free port)") from None


def _timeframe(raw: str) -> str:
    try:
        ok = timeframe_seconds(raw) > 0
    except ValueError:
        ok = False
    if not ok:
        raise ValueError("a timeframe like 1m, 5m, 1h, 1d")
    return raw


def _listen_host(raw: str) -> str:
    if raw != "localhost":
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise ValueError("an IP address to listen on, like 127.0.0.1 or 0.0.0.0") from None
    return raw


def _token(raw: str | None) -> str | None:
    if raw is not None and (len(raw) < MIN_HTTP_TOKEN_LENGTH or any(c.isspace() for c in raw)):
        raise ValueError(f"at least {MIN_HTTP_TOKEN_LENGTH} characters with no spaces")
    return raw


def _heartbeat_url(raw: str | None) -> str | None:
    try:
        return None if raw is None else parse_url("NIJA_HEARTBEAT_URL", raw)
    except VariableError:
        raise ValueError("an https URL (http only on 127.0.0.1 / localhost / ::1)") from None


def _alert_url(name: str, *, query: bool) -> Any:
    def rule(raw: str | None) -> str | None:
        try:
            return None if raw is None else parse_url(name, raw, query=query)
        except VariableError:
            raise ValueError("an https URL (http only on 127.0.0.1 / localhost / ::1)") from None

    return rule


# A bot token as @BotFather gives it: the bot's id, a colon, 35 characters (a few spare).
_BOT_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
# A chat's numeric id (negative for groups), or a public channel's @username.
_CHAT_ID = re.compile(r"^-?[0-9]{1,20}$|^@[A-Za-z][A-Za-z0-9_]{3,63}$")


def _bot_token(raw: str | None) -> str | None:
    if raw is not None and not _BOT_TOKEN.match(raw):
        raise ValueError("a bot token as @BotFather gives it (digits, a colon, 35 characters)")
    return raw


def _chat_id(raw: str | None) -> str | None:
    if raw is not None and not _CHAT_ID.match(raw):
        raise ValueError("a chat id like 123456789 or -1001234567890, or a @channelname")
    return raw


def _database_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    from bot.store.pg import parse_database_url  # psycopg is loaded only when it is used

    parse_database_url(raw)  # ValueError says what is wrong, without the value
    return raw


# A node's name in the leases: letters, digits and . _ - : @, as a host name or "host-pid".
_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")


def _node_id(raw: str | None) -> str | None:
    if raw is not None and not _NODE_ID.match(raw):
        raise ValueError("a name of letters, digits and . _ - : @ (at most 100), like node-1")
    return raw


def _venue_name(raw: str | None) -> str | None:
    if raw is not None and raw not in venues.VENUES:
        raise ValueError(f"one of {', '.join(venues.VENUES)}")
    return raw


# The kinds of value; a rule's own ValueError says what was expected, else its Expect does.
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False), Expect("a positive number")]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False), Expect("a non-negative number")]
Whole = Annotated[int, BeforeValidator(_whole), Field(ge=1), Expect("a whole number >= 1")]
Cap = Annotated[Whole | None, Expect("a whole number >= 1")]  # None = no limit
Flag = Annotated[bool, BeforeValidator(_flag)]
TradingMode = Annotated[Mode, BeforeValidator(_lower), Expect("paper or live")]
Timeframe = Annotated[str, AfterValidator(_timeframe)]
StrategyName = Annotated[
    str,
    BeforeValidator(_lower),
    Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$"),
    Expect("a strategy name like default"),
]
VenueName = Annotated[str | None, BeforeValidator(_upper), AfterValidator(_venue_name)]
Port = Annotated[int, BeforeValidator(_port), Field(ge=0, le=65535), Expect("a port, 0 to 65535")]
Host = Annotated[str, AfterValidator(_listen_host)]
Token = Annotated[str | None, AfterValidator(_token)]
HeartbeatUrl = Annotated[str | None, AfterValidator(_heartbeat_url)]
WebhookUrl = Annotated[str | None, AfterValidator(_alert_url("NIJA_ALERT_WEBHOOK_URL", query=True))]
TelegramUrl = Annotated[str, AfterValidator(_alert_url("NIJA_TELEGRAM_API_URL", query=False))]
BotToken = Annotated[str | None, AfterValidator(_bot_token)]
ChatId = Annotated[str | None, AfterValidator(_chat_id)]
DatabaseUrl = Annotated[str | None, AfterValidator(_database_url)]
NodeId = Annotated[str | None, AfterValidator(_node_id)]
LeaseTtl = Annotated[
    float, Field(ge=1, allow_inf_nan=False), Expect("a number of seconds, at least 1")
]
POSITIVE = TypeAdapter(Positive)


def expected(error: ErrorDetails, metadata: Iterable[object]) -> str:
    """What the rejected value should have been: the rule's own words, else its Expect."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):
        return str(cause)
    return next((m.what for m in metadata if isinstance(m, Expect)), "valid")
