"""Checks that an adapter translated an SDK failure at its edge."""

from __future__ import annotations

from bot.errors import NijaError


def assert_translated_from(exc: BaseException, expected: type[BaseException]) -> None:
    """``exc`` is a project exception: ``expected`` itself when that is a project type (the
    adapter raised it first-hand), else chained ``from`` an SDK exception of exactly ``expected``."""
    assert isinstance(exc, NijaError), f"an SDK exception left the adapter: {exc!r}"
    if issubclass(expected, NijaError):
        assert type(exc) is expected, repr(exc)
    else:
        assert type(exc.__cause__) is expected, f"{exc!r} from {exc.__cause__!r}"
