"""Fake credentials for tests, and the one check that none of them shows where a user can read.

``assert_no_secret(*things, secrets=...)`` looks at a string as it is, at ``str`` and ``repr``
of any other object, and at every exception chained to an exception. A secret counts as
shown when any of these appears: the value itself (also with a literal ``\\n`` read as a line
break, or a line break written as ``\\n``), any run of 8 or more printable characters in it
(one line of a PEM body, the part before a pasted-in zero-width space), or any 16 characters
in a row of such a run (a value cut short or half masked). PEM armour lines
(``-----BEGIN ...``) are not secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "assert_no_secret",
    "env_secrets",
    "exception_chain",
    "find_leaks",
    "new_pem",
    "secret_fragments",
    "texts_of",
]

# A run of printable characters this long from a secret is a leak on its own.
MIN_RUN = 8
# Any this many characters in a row from a secret are a leak (a value cut short or half masked).
WINDOW = 16
# How far an exception chain is followed (a cycle or a runaway chain must not hang a test).
MAX_CHAIN = 10
# Environment variables whose values are credentials (design.md's names).
SECRET_ENV_SUFFIXES = ("_API_KEY", "_API_SECRET", "_PASSPHRASE")

_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]+")


def new_pem() -> str:
    """A fresh EC P-256 private key in PEM: what a Coinbase Advanced Trade API secret is."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def env_secrets(env: Mapping[str, str]) -> list[str]:
    """The non-empty values of an environment's credential variables (``*_API_KEY`` ...)."""
    return [value for name, value in env.items() if value and name.endswith(SECRET_ENV_SUFFIXES)]


def secret_fragments(secrets: Iterable[str]) -> set[str]:
    """Every piece of every secret whose appearance in a text counts as a leak."""
    found: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms = {secret, secret.replace("\\n", "\n"), secret.replace("\n", "\\n")}
        found |= forms
        for form in forms:
            for run in _NOT_PRINTABLE.split(form.replace("\\n", "\n")):
                if len(run) < MIN_RUN or "-----" in run:
                    continue
                found.add(run)
                found.update(run[i : i + WINDOW] for i in range(len(run) - WINDOW + 1))
    return found


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception chained to it, even a context hidden by ``from None``
    (a hidden one is still reachable from the object, e.g. by an error reporter)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < MAX_CHAIN:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def texts_of(thing: object) -> dict[str, str]:
    """What a user could read of ``thing``, by where it was found."""
    if isinstance(thing, str):
        return {"text": thing}
    if isinstance(thing, BaseException):
        texts = {}
        for depth, link in enumerate(exception_chain(thing)):
            name = type(link).__name__
            texts[f"str(chain[{depth}] {name})"] = str(link)
            texts[f"repr(chain[{depth}] {name})"] = repr(link)
        return texts
    return {"str": str(thing), "repr": repr(thing)}


def find_leaks(
    texts: Mapping[str, str], secrets: Iterable[str], markers: Iterable[str] = ()
) -> list[str]:
    """``where: first characters...`` for each fragment of a secret, or marker, found in a text.

    ``markers`` are strings that must not show at all, matched whole (e.g. ``FAKE-``, the
    prefix every fake credential of a test carries).
    """
    pieces = secret_fragments(secrets) | {m for m in markers if m}
    return [
        f"{where}: {piece[:12]}..."
        for where, text in texts.items()
        for piece in sorted(pieces)
        if piece in text
    ]


def assert_no_secret(*things: object, secrets: Iterable[str], markers: Iterable[str] = ()) -> None:
    """Fail when any secret (or marker) shows in any of ``things`` (see the module's doc)."""
    texts = {
        f"[{index}] {where}": text
        for index, thing in enumerate(things)
        for where, text in texts_of(thing).items()
    }
    leaks = find_leaks(texts, tuple(secrets), tuple(markers))
    assert not leaks, f"credentials shown: {leaks}"
