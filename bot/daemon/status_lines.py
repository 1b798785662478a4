"""status.json's text: one top-level key a line, one account a line, masked and encoded once.

The daemon rewrites status.json every second (a large one every N/100 seconds), while an
account's entry changes about once a cycle, and then only in a few fields (its cycle count,
times, equity). ``AccountLines`` keeps each account's masked and encoded line until its
entry changes, and a changed entry's unchanged fields as masked before: only what changed
is masked and encoded again. Each line is encoded by ``json``'s C encoder (``indent``
would make CPython use its pure-Python encoder, several times slower); the file still reads
as one account per line.

Masking is ``Redactor.mask_data``'s, field by field, with the same result as masking the
whole document: keys and values alike. A secret the redactor learns later (credentials
reloaded) may be in a copy masked before, so every kept copy is dropped then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.redact import Redactor


def json_item(key: Any, value: Any) -> str:
    """``"key": value`` as JSON on one line, keys sorted (the C encoder: no indent)."""
    return json.dumps({key: value}, sort_keys=True, default=str)[1:-1]


def document_text(rest: dict[str, Any], accounts: dict[Any, str] | None) -> str:
    """The status.json text of an (already masked) document: ``rest``'s keys one a line,
    and under ``"accounts"`` (unless None) each account's line from ``accounts`` (a
    ``json_item``), all sorted by key as ``json.dumps(sort_keys=True)`` sorts them."""
    lines = {key: json_item(key, value) for key, value in rest.items()}
    if accounts is not None:
        body = ",\n".join(f"  {accounts[key]}" for key in sorted(accounts))
        lines["accounts"] = f'"accounts": {{\n{body}\n }}' if body else '"accounts": {}'
    return "{\n" + ",\n".join(f" {lines[key]}" for key in sorted(lines)) + "\n}\n"


@dataclass(frozen=True)
class _Kept:
    """One account's entry as last written."""

    entry: Any  # as built (unmasked): the next one is compared with it
    key: Any  # the account's key, masked
    fields: dict[Any, tuple[Any, Any]] | None  # field -> (its name, its value), masked
    line: str  # ``json_item`` of the masked key and entry


class AccountLines:
    """Each account's masked line of status.json, kept until its entry changes.

    Each write's entries are built anew (``account_entry``): an entry is compared with the
    one written last, so one changed in place would look unchanged. Not thread-safe: its
    one caller (the status writer) holds a lock around ``lines``.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._kept: dict[Any, _Kept] = {}
        self._learned = redactor.learned  # the secrets the kept copies were masked with

    def lines(self, accounts: dict[Any, Any]) -> dict[Any, str]:
        """Each account's line by its masked key (keys masked alike: the last one's, as
        ``mask_data`` leaves them); an account gone from ``accounts`` is forgotten."""
        learned = self._redactor.learned  # before masking: one learned meanwhile counts next
        if learned != self._learned:
            self._learned = learned
            self._kept.clear()
        lines: dict[Any, str] = {}
        for key, entry in accounts.items():
            kept = self._kept.get(key)
            if kept is None or kept.entry != entry:
                kept = self._kept[key] = self._masked(key, entry, kept)
            lines[kept.key] = kept.line
        for gone in self._kept.keys() - accounts.keys():
            del self._kept[gone]
        return lines

    def _masked(self, key: Any, entry: Any, kept: _Kept | None) -> _Kept:
        """``entry`` masked and encoded; the fields equal to ``kept``'s from its copies."""
        mask = self._redactor.mask_data
        masked_key = kept.key if kept is not None else _only_item(mask({key: None}))[0]
        if not isinstance(entry, dict):  # not an account's fields: masked whole
            return _Kept(entry, masked_key, None, json_item(masked_key, mask(entry)))
        before, masked_before = (
            ({}, {}) if kept is None or kept.fields is None else (kept.entry, kept.fields)
        )
        fields = {}
        for name, value in entry.items():
            if name in masked_before and before[name] == value:
                fields[name] = masked_before[name]
            else:
                fields[name] = _only_item(mask({name: value}))
        masked = dict(fields.values())
        return _Kept(entry, masked_key, fields, json_item(masked_key, masked))


def _only_item(masked: dict[Any, Any]) -> tuple[Any, Any]:
    """The one item of a one-item dict."""
    [item] = masked.items()
    return item
