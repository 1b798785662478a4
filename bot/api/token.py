"""The HTTP API's bearer token: NIJA_HTTP_TOKEN, or one generated into the data directory.

A generated token lives in ``<NIJA_DATA_DIR>/http-token`` (mode 0600) and is kept across
restarts, so a Prometheus scrape config or a script that reads the file keeps working.
Only the file's path is ever logged. The audit trail names a token by its id, a short
hash that cannot be turned back into the token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from bot.config.kinds import MIN_HTTP_TOKEN_LENGTH

__all__ = ["TOKEN_FILE", "ApiToken", "load_token"]

TOKEN_FILE = "http-token"
_MODE = 0o600


@dataclass(frozen=True)
class ApiToken:
    """The token the API accepts; ``file`` is where it was generated (None: NIJA_HTTP_TOKEN)."""

    value: str = field(repr=False)
    file: Path | None = None

    @property
    def id(self) -> str:
        """``token-`` and 8 hex digits of its SHA-256: names the token, reveals nothing of it."""
        return "token-" + hashlib.sha256(self.value.encode()).hexdigest()[:8]

    def matches(self, presented: str) -> bool:
        """True when ``presented`` is the token (compared in constant time)."""
        return hmac.compare_digest(presented.encode(), self.value.encode())

    def header_matches(self, value: bytes) -> bool:
        """True when an Authorization header's raw ``value`` is exactly ``Bearer <token>``
        (compared in constant time): a well-formed request's check, without decoding it."""
        return hmac.compare_digest(value, b"Bearer " + self.value.encode())


def load_token(configured: str | None, data_dir: str | Path) -> tuple[ApiToken, bool]:
    """The configured token, else the data directory's (generated when missing or unusable);
    and whether it was generated now. OSError when the file cannot be read or written."""
    if configured:
        return ApiToken(configured), False
    path = Path(data_dir) / TOKEN_FILE
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ApiToken(_generate(path), path), True
    os.chmod(path, _MODE)  # a file copied in with a looser mode
    if len(value) < MIN_HTTP_TOKEN_LENGTH or any(c.isspace() for c in value):
        return ApiToken(_generate(path), path), True  # emptied or damaged: a new one
    return ApiToken(value, path), False


def _generate(path: Path) -> str:
    """Write a new random token to ``path`` (0600, through a temporary file and a rename)."""
    value = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _MODE)
    try:
        os.fchmod(fd, _MODE)
        os.write(fd, (value + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return value
