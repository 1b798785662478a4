"""The patterns a ``bot.redact.Redactor`` masks with: every form a secret value can show in
a text, and its leading and trailing pieces, each set compiled to one scan of the text.

A secret's forms (``_forms``): as configured, stripped, with literal ``\n``, as repr()/JSON,
a URL and an HTML page escape it, its PEM body whole and line by line. Its pieces: any
leading or trailing run of at least ``MIN_PIECE_LENGTH`` characters of it (``_Pieces``).
Matching is case-insensitive on a case-folded copy of the text whose positions agree with
the text's (``_fold``); the forms are one trie-shaped regex (``_trie``), so hundreds of
secrets cost about what one does. This module imports the standard library only.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

__all__ = ["MIN_PIECE_LENGTH", "MIN_SECRET_LENGTH", "SecretPatterns"]

# Shorter configured values are not real credentials and masking them would shred every
# line (a one-letter "secret" would hide that letter everywhere).
MIN_SECRET_LENGTH = 4
# A leading or trailing piece of a secret at least this long is masked wherever it shows
# (a value cut by someone's truncation, or split over two fields). Shorter pieces would
# start to match ordinary words; 7 characters of a 20+ character key reveal little.
MIN_PIECE_LENGTH = 8
# A single line of a PEM body at least this long is masked on its own.
MIN_PEM_LINE_LENGTH = 16


def _encodings(text: str) -> set[str]:
    """``text`` as repr()/JSON, a URL and an HTML page show it."""
    return {
        text.replace("\n", "\\n"),
        text.replace("\r\n", "\\r\\n"),
        json.dumps(text)[1:-1],
        quote(text, safe=""),
        quote(text),
        quote_plus(text, safe=""),
        html.escape(text),
    }


def _pem_body(unescaped: str) -> list[str] | None:
    """The base64 lines of a PEM value, or None when it is not one."""
    if "-----BEGIN" not in unescaped:
        return None
    return [
        line.strip()
        for line in unescaped.splitlines()
        if line.strip() and not line.strip().startswith("-----")
    ]


def _forms(secret: str) -> set[str]:
    """The ways one secret value can show up whole in a line of text."""
    forms = {secret, secret.strip()}
    unescaped = secret.strip().replace("\\n", "\n")
    forms |= {unescaped, unescaped.strip()}
    for text in list(forms):
        forms |= _encodings(text)
    body = _pem_body(unescaped)
    if body is not None:
        forms.add("".join(body))
        forms |= {line for line in body if len(line) >= MIN_PEM_LINE_LENGTH}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _piece_sources(secret: str) -> set[str]:
    """The forms whose leading and trailing pieces are masked: never a PEM's armour lines
    (``-----BEGIN EC PRIVATE KEY-----`` is in every key, and in error messages)."""
    unescaped = secret.strip().replace("\\n", "\n")
    body = _pem_body(unescaped)
    sources = {unescaped, *_encodings(unescaped)} if body is None else {"".join(body), *body}
    return {_fold(source) for source in sources if len(source) > MIN_PIECE_LENGTH}


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    """``text`` in lower case, with one character for each of ``text``'s (positions agree)."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_ASCII_LOWER)


def _common_prefix(text: str, start: int, source: str) -> int:
    """How many characters of ``text`` from ``start`` on begin ``source``."""
    n, limit = 0, min(len(source), len(text) - start)
    while n < limit and text[start + n] == source[n]:
        n += 1
    return n


def _common_suffix(text: str, end: int, source: str) -> int:
    """How many characters of ``text`` before ``end`` end ``source``."""
    n, limit = 0, min(len(source), end)
    while n < limit and text[end - 1 - n] == source[-1 - n]:
        n += 1
    return n


def _trie(words: list[str]) -> str:
    """A regex for any of ``words``, the longest where several match, that reads each
    character of a text once per position (not once per word): hundreds of secret forms
    cost about what one does."""
    tree: dict[str, dict] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def branch(node: dict[str, dict]) -> str:
        longer = [re.escape(char) + branch(child) for char, child in sorted(node.items()) if char]
        if "" in node:  # tried last: a longer word that matches wins
            return f"(?:{'|'.join(longer)})?" if longer else ""
        return longer[0] if len(longer) == 1 else f"(?:{'|'.join(longer)})"

    return branch(tree)


@dataclass(frozen=True)
class _Pieces:
    """Finds the leading and trailing pieces of the secrets in a (case-folded) text."""

    heads: dict[str, tuple[str, ...]]  # first MIN_PIECE_LENGTH characters → sources
    tails: dict[str, tuple[str, ...]]  # last MIN_PIECE_LENGTH characters → sources
    pattern: re.Pattern[str]  # every head and tail, found at every position (lookahead)

    @classmethod
    def build(cls, sources: set[str]) -> _Pieces | None:
        if not sources:
            return None
        heads: dict[str, set[str]] = {}
        tails: dict[str, set[str]] = {}
        for source in sources:
            heads.setdefault(source[:MIN_PIECE_LENGTH], set()).add(source)
            tails.setdefault(source[-MIN_PIECE_LENGTH:], set()).add(source)
        grams = sorted(set(heads) | set(tails))
        return cls(
            {gram: tuple(found) for gram, found in heads.items()},
            {gram: tuple(found) for gram, found in tails.items()},
            re.compile(f"(?=({_trie(grams)}))", re.DOTALL),
        )

    def spans(self, folded: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` of every piece in ``folded`` (overlapping, unordered)."""
        found: list[tuple[int, int]] = []
        for hit in self.pattern.finditer(folded):
            at, gram = hit.start(), hit.group(1)
            for source in self.heads.get(gram, ()):
                found.append((at, at + _common_prefix(folded, at, source)))
            end = at + MIN_PIECE_LENGTH
            for source in self.tails.get(gram, ()):
                found.append((end - _common_suffix(folded, end, source), end))
        return found


@dataclass(frozen=True)
class SecretPatterns:
    """The compiled patterns of a set of secret values (none: nothing is found)."""

    values: re.Pattern[str] | None = None  # every whole form, the longest match winning
    pieces: _Pieces | None = None  # every leading and trailing piece

    @classmethod
    def of(cls, secrets: Iterable[str]) -> SecretPatterns:
        """The patterns of these secrets; values shorter than ``MIN_SECRET_LENGTH`` are not
        credentials and are left out."""
        forms: set[str] = set()
        sources: set[str] = set()
        for secret in secrets:
            if len(secret.strip()) < MIN_SECRET_LENGTH:
                continue
            forms |= _forms(secret)
            sources |= _piece_sources(secret)
        # The longest form that matches wins, so a whole PEM is masked, not line by line.
        folded = sorted({_fold(form) for form in forms})
        return cls(re.compile(_trie(folded)) if folded else None, _Pieces.build(sources))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` of every secret form and piece in ``text``, in any letter
        case (overlapping, unordered)."""
        if self.values is None:
            return []
        folded = _fold(text)  # the patterns are in lower case: any letter case matches
        spans = [hit.span() for hit in self.values.finditer(folded)]
        if self.pieces is not None and len(text) >= MIN_PIECE_LENGTH:
            spans += self.pieces.spans(folded)
        return spans
