"""Redaction: mask configured secret values and secret-named fields in any text or value.

A :class:`Redactor` is built from the configured secret values (typically
``bot.config.settings.secret_values(env)``). ``mask_values`` masks those values wherever they
appear, in every form a log line or a URL can show them (stripped, with literal ``\n``,
percent-encoded, each line of a PEM body); ``redact`` also masks the value of every
``name=value`` / ``name: value`` whose name is a secret name (``is_secret_name``);
``redact_value`` does both through nested data.

There is no process-wide redactor: whoever writes text out holds its own (the log
handlers that ``bot.daemon.log.setup_logging`` builds, the commands' context in
``bot.cli.commands``). This module imports the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = [
    "MASK",
    "Redactor",
    "is_secret_name",
]

MASK = "***"
# Shorter configured values are not real credentials and masking them would shred every
# line (a one-letter "secret" would hide that letter everywhere).
MIN_SECRET_LENGTH = 4
# A single line of a PEM body at least this long is masked on its own.
MIN_PEM_LINE_LENGTH = 16
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


def _forms(secret: str) -> set[str]:
    """The ways one secret value can show up in a log line."""
    forms = {secret, secret.strip()}
    unescaped = secret.strip().replace("\\n", "\n")
    forms |= {unescaped, unescaped.strip()}
    for text in list(forms):
        # repr() and JSON show newlines as \n; URLs percent-encode.
        forms |= {text.replace("\n", "\\n"), text.replace("\r\n", "\\r\\n"), quote(text, safe="")}
    if "-----BEGIN" in unescaped:
        body = [
            line.strip()
            for line in unescaped.splitlines()
            if line.strip() and not line.strip().startswith("-----")
        ]
        forms.add("".join(body))
        forms |= {line for line in body if len(line) >= MIN_PEM_LINE_LENGTH}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


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
    """Masks configured secret values and secret-named fields; immutable, thread-safe."""

    secrets: tuple[str, ...] = ()
    _values: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= _forms(secret)
        # Longest first, so a whole PEM is masked before any of its lines.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        object.__setattr__(self, "_values", pattern)

    def __repr__(self) -> str:
        # Never show the secrets themselves, only how many there are.
        return f"Redactor(<{len(self.secrets)} secrets>)"

    def mask_values(self, text: str) -> str:
        """``text`` with every configured secret value (and PEM body line) masked."""
        if self._values is None:
            return text
        return self._values.sub(MASK, text)

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
