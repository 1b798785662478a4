"""Which values in the environment are secrets: the list the log redactor masks.

A variable is a secret when its name ends in one of ``SECRET_NAME_ENDINGS``; the
password in a database URL is one too, and so is libpq's ``PGPASSWORD``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["SECRET_NAME_ENDINGS", "secret_values"]

# Variables whose values are secrets, by how their names end (for the log redactor).
SECRET_NAME_ENDINGS = ("_API_KEY", "_API_SECRET", "_SECRET", "_PASSPHRASE", "_TOKEN", "_PASSWORD")
# URLs that may hold a password: the password is a secret (the rest, host and database,
# is what messages must name; as a secret, the URL's first 8 characters would mask every
# "postgresql" in the log, since the redactor masks any leading piece of a secret).
_SECRET_URLS = ("NIJA_DATABASE_URL",)


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Every configured secret value, longest first, for the log redactor.

    Secrets are the values of variables whose names end in one of
    ``SECRET_NAME_ENDINGS``. Each value is listed as set, trimmed, and with literal
    ``\\n`` turned into newlines (the form a Coinbase PEM takes once loaded),
    with and without its final newline. The password in ``NIJA_DATABASE_URL`` is one
    (as written and decoded), and so is libpq's ``PGPASSWORD``.
    """
    found: set[str] = set()
    for name in _SECRET_URLS:
        found.update(_url_passwords((env.get(name) or "").strip()))
    if pgpassword := (env.get("PGPASSWORD") or "").strip():
        found.add(pgpassword)
    for name, raw in env.items():
        if not raw or not name.upper().endswith(SECRET_NAME_ENDINGS):
            continue
        unescaped = raw.strip().replace("\\n", "\n")
        for variant in (raw, raw.strip(), unescaped, unescaped.strip()):
            if variant:
                found.add(variant)
    return sorted(found, key=lambda v: (-len(v), v))


def _url_passwords(raw: str) -> set[str]:
    """The passwords in a URL (``user:password@``, ``?password=``, ``?sslpassword=``), as
    written and decoded."""
    try:
        parts = urlsplit(raw)
        query = parse_qs(parts.query)
        written = [parts.password or "", *query.get("password", []), *query.get("sslpassword", [])]
    except ValueError:
        return set()
    return {v for pw in written for v in (pw, unquote(pw)) if v}
