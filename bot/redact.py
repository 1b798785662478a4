"""Redaction: mask configured secret values and secret-named fields in any text or value.

A :class:`Redactor` is built from the configured secret values (typically
``bot.config.secrets.secret_values(env)``). ``mask_values`` masks those values wherever they
appear, in every form a log line, a venue's answer or a URL can show them, in any letter
case: stripped, with literal ``\n``, percent-encoded, HTML- or JSON-escaped, each line of a
PEM body; and CUT or SPLIT: any leading or trailing piece of a secret at least
``MIN_PIECE_LENGTH`` (8) characters long, wherever it appears (a text cut right after the
first 12 characters of a key, the two halves of a key in two fields). ``redact`` also masks
the value of every ``name=value`` / ``name: value`` whose name is a secret name
(``is_secret_name``); ``redact_value`` does both through nested data; ``mask_data`` masks the
values in every string of plain data and keeps the rest as it is.

Minimum lengths, and what they leave visible:

* a whole configured value shorter than ``MIN_SECRET_LENGTH`` (4) is not a credential and
  is never masked (a one-letter "secret" would shred every line);
* a leading or trailing piece shorter than ``MIN_PIECE_LENGTH`` (8) is not recognised on its
  own: at most 7 characters of a secret can show where a text cuts it, and the halves of a
  secret shorter than 16 characters are not recognised in two different fields;
* a piece from the middle of a secret (neither its start nor its end) is not recognised.

Mask BEFORE cutting: ``shorten`` (and ``bot.errors.describe`` given a redactor) masks a
text, then cuts it, so no cut can leave a piece too short to recognise.

There is no process-wide redactor: whoever writes text out holds its own (the log
handlers that ``bot.daemon.log.setup_logging`` builds, the commands' context in
``bot.cli.commands``, and the daemon's one, which ``bot.py`` gives to the isolation manager,
the supervisor, the status writer and the stores). The secret values' patterns (their
forms and pieces, compiled) are built in ``bot.redact_patterns``. Both import the standard
library only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.redact_patterns import SecretPatterns

__all__ = [
    "MASK",
    "Redactor",
    "is_secret_name",
]

MASK = "***"
# Field names containing one of these words (case-insensitive) hold secrets.
SECRET_NAME_WORDS = (
    "key",
    "secret",
    "passphrase",
    "token",
    "password",
    "authorization",
    "credential",
)
# Names that contain a secret word but are not secrets: the account key is what
# people grep for, and "KeyError: 'x'" is an exception name, not a key.
_NOT_SECRET_NAMES = frozenset({"account_key", "account"})
_NOT_SECRET_ENDINGS = ("error", "exception", "warning")
_MAX_DEPTH = 12  # nested values deeper than this are rendered as (redacted) text

# "name=value", "name: value", "'name': 'value'" in text. The name is matched as a whole
# token without backtracking (possessive), so a long text costs linear time; whether it
# is a secret name is decided in Python.
_TEXT_NAME = re.compile(r"(?<![\w.\-])([\w.\-]++)([\"']?[ \t]*+[:=][ \t]*+)")
_TEXT_VALUE = re.compile(
    r"\"(?:[^\"\\\n]|\\.)*+\"|'(?:[^'\\\n]|\\.)*+'"
    r"|(?:(?:Bearer|Basic)[ \t]++)?[^\s\"',;&)}\]]++",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True when a field called ``name`` holds a secret (``api_key``, ``X-MBX-APIKEY``...)."""
    low = name.lower()
    if low in _NOT_SECRET_NAMES or low.endswith(_NOT_SECRET_ENDINGS):
        return False
    if "/" in low or any(char.isspace() for char in low):
        return False  # data used as a key ("user/keyser/KRAKEN"), not a field name
    return any(word in low for word in SECRET_NAME_WORDS)


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each run of overlapping or touching ``spans`` replaced by one MASK."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if out and start <= pos:  # overlaps or touches the run just masked: extend it
            pos = max(pos, end)
            continue
        out += [text[pos:start], MASK]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _mask_text_fields(text: str) -> str:
    """``text`` with the value of every ``name=value`` / ``name: value`` of a secret name masked."""
    out: list[str] = []
    pos = 0
    while (found := _TEXT_NAME.search(text, pos)) is not None:
        if not is_secret_name(found.group(1)):
            out.append(text[pos : found.end()])
            pos = found.end()
            continue
        out.append(text[pos : found.end()])
        value = _TEXT_VALUE.match(text, found.end())
        if value is None:
            if text[found.end() : found.end() + 1] in ('"', "'"):
                # An unterminated quote: mask the rest of the line rather than guess.
                newline = text.find("\n", found.end())
                pos = len(text) if newline < 0 else newline
                out.append(MASK)
            else:
                pos = found.end()  # "api_key=" with nothing after it
            continue
        raw = value.group(0)
        if raw[0] in "\"'":
            out.append(f"{raw[0]}{MASK}{raw[0]}")
        else:
            words = raw.split()
            out.append(f"{words[0]} {MASK}" if len(words) > 1 else MASK)
        pos = value.end()
    out.append(text[pos:])
    return "".join(out)


def _reveals_nothing(value: Any) -> bool:
    # None, True/False and "" only say whether a key is set: keep them.
    return value is None or isinstance(value, bool) or (isinstance(value, str) and not value)


@dataclass(frozen=True)
class Redactor:
    """Masks configured secret values and secret-named fields; thread-safe.

    Immutable but for ``learn``, which only ever adds secrets (a key reloaded while the
    daemon runs must be masked by everyone already holding this redactor).
    """

    secrets: tuple[str, ...] = ()
    _patterns: SecretPatterns = field(
        default_factory=SecretPatterns, init=False, repr=False, compare=False
    )
    _learned: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._compile(self.secrets)

    def learn(self, secrets: Iterable[str]) -> bool:
        """Mask these values too from now on; True when any was new."""
        with self._lock:
            known = set(self.secrets) | set(self._learned)
            new = tuple(s for s in secrets if s and s not in known)
            if not new:
                return False
            # The patterns are swapped whole: a reader sees the old patterns or the new.
            # The count goes up only once the new patterns are in force: a copy masked
            # when ``learned`` already said N+1 was masked with them.
            self._compile(self.secrets + self._learned + new)
            object.__setattr__(self, "_learned", self._learned + new)
            return True

    @property
    def learned(self) -> int:
        """How many secrets ``learn`` has added so far: a copy masked when it was lower may
        show a secret learned since."""
        return len(self._learned)

    def _compile(self, secrets: tuple[str, ...]) -> None:
        object.__setattr__(self, "_patterns", SecretPatterns.of(secrets))

    def __repr__(self) -> str:
        # Never show the secrets themselves, only how many there are.
        return f"Redactor(<{len(self.secrets) + len(self._learned)} secrets>)"

    def mask_values(self, text: str) -> str:
        """``text`` with every configured secret value masked: whole, in any of its forms and
        letter cases, and every leading or trailing piece of at least ``MIN_PIECE_LENGTH``
        (``bot.redact_patterns``)."""
        spans = self._patterns.spans(text)
        return _masked(text, spans) if spans else text

    def shorten(self, text: str, limit: int) -> str:
        """``text`` masked, then cut to ``limit`` characters (never the other way round)."""
        return self.mask_values(text)[:limit]

    def mask_data(self, value: Any) -> Any:
        """A copy of plain data (dicts, lists, strings, numbers) with secret values masked in
        every string, keys included; numbers, booleans and None are kept as they are, any
        other object becomes its masked ``str()`` (what ``json.dumps(default=str)`` prints).

        For documents meant for people (status.json, the commands' reports): unlike
        ``redact_value`` it masks no field by its name, so ``"credentials": "present"`` stays.
        """
        if isinstance(value, str):
            return self.mask_values(value)
        if isinstance(value, Mapping):
            return {
                self.mask_values(key) if isinstance(key, str) else key: self.mask_data(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.mask_data(item) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.mask_values(str(value))

    def redact(self, text: str) -> str:
        """``text`` with secret values and ``name=value`` pairs of secret names masked."""
        return _mask_text_fields(self.mask_values(text))

    def redact_value(self, value: Any, depth: int = 0) -> Any:
        """A copy of ``value`` (str, nested dicts/lists, any object) with secrets masked.

        Objects other than plain data become their redacted text, so nothing
        unredacted is left for a renderer to call ``str()`` on later.
        """
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, bytes | bytearray):
            return self.redact(bytes(value).decode("utf-8", "backslashreplace"))
        if depth >= _MAX_DEPTH:
            return self.redact(repr(value))
        if isinstance(value, Mapping):
            return {
                self.redact(str(key)): self._field(str(key), item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact_value(item, depth + 1) for item in value]
        if isinstance(value, BaseException):
            return self.redact(f"{type(value).__name__}: {value}")
        return self.redact(repr(value))

    def _field(self, name: str, value: Any, depth: int) -> Any:
        if is_secret_name(name) and not _reveals_nothing(value):
            return MASK
        return self.redact_value(value, depth)

    def redact_event(self, event_dict: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of one structlog event dict with every secret masked."""
        return self.redact_value(event_dict)
