"""Variable names NIJA does not read: a typo in a key's name silently drops an account.

``unknown_variables`` names every variable that looks meant for NIJA but that NIJA does
not read: one named ``NIJA_*`` or ``MULTI_BROKER_*``, or after a venue of the registry
(``KRAKEN_*``), or a near-miss of a known name (``KRAKN_API_KEY``, ``kraken_api_key``).
Each comes with the closest known name when one is close. The known names are the
settings' variables and the registry's, user accounts' families included
(``<BROKER>_USER_<ID>_API_KEY`` ...). Only names are read and shown, never values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from bot.brokers import venues
from bot.config.settings import settings_variables

# How close (difflib's ratio) a name must be to a known one to be offered as "did you mean".
CLOSE_ENOUGH = 0.8
_USER = "_USER_"
_OWN_PREFIXES = ("NIJA_", "MULTI_BROKER_")


@dataclass(frozen=True, slots=True)
class UnknownVariable:
    """A variable NIJA does not read, and the known name it is probably meant to be."""

    name: str
    did_you_mean: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.did_you_mean}?)" if self.did_you_mean else ""
        return f"unknown variable {self.name}{hint}: NIJA does not read it"


def known_variables() -> frozenset[str]:
    """Every fixed variable name NIJA reads (user accounts' families aside)."""
    names = set(settings_variables())
    for venue in venues.env_venues():
        names.update(venue.variables())
    return frozenset(names)


def _prefixes() -> tuple[str, ...]:
    """How the names meant for NIJA begin."""
    return (*_OWN_PREFIXES, *(f"{v.name}_" for v in venues.env_venues()))


def _is_user_variable(name: str) -> bool:
    return any(v.user_pattern().match(name) for v in venues.env_venues())


def _user_guesses(name: str) -> set[str]:
    """User-account names ``name`` may be meant as: an id it spells, any venue, any suffix."""
    if _USER not in name:
        return set()
    parts = name.split(_USER, 1)[1].split("_")
    ids = ["_".join(parts[:end]) for end in range(1, len(parts))]  # ALICE, ALICE_API, ...
    return {
        venue.user_variable(user_id, fld)
        for venue in venues.env_venues()
        for fld in venue.account_fields
        for user_id in ids
    }


def _closest(name: str, known: frozenset[str]) -> str | None:
    upper = name.upper()
    candidates = known | _user_guesses(upper)
    found = difflib.get_close_matches(upper, candidates, n=1, cutoff=CLOSE_ENOUGH)
    return found[0] if found else None


def unknown_variables(names: Iterable[str]) -> list[UnknownVariable]:
    """The names among ``names`` that look meant for NIJA but are not read, sorted."""
    known = known_variables()
    prefixes = _prefixes()
    found = []
    for name in sorted(set(names)):
        if name in known or _is_user_variable(name):
            continue
        guess = _closest(name, known)
        if guess is not None or name.upper().startswith(prefixes):
            found.append(UnknownVariable(name, guess))
    return found


__all__ = ["CLOSE_ENOUGH", "UnknownVariable", "known_variables", "unknown_variables"]
