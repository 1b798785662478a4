"""The project's own exceptions.

Adapters raise these where an SDK fails outside its own exception hierarchy
(a bad secret, a malformed response, an order refused inside an HTTP 200), so
that ``bot.isolation.failures.classify`` can map every failure by type, never by message.
Messages never carry secret values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.redact import Redactor


class NijaError(Exception):
    """Base class of every exception NIJA raises on purpose."""


class ConfigError(NijaError):
    """A setting or an account's credentials are missing or malformed (names, never values)."""


class BrokerConfigError(ConfigError):
    """A broker client cannot be built or sign requests: e.g. a secret that is not valid base64/PEM."""


class BrokerResponseError(NijaError):
    """The venue answered, but the answer cannot be understood (bad JSON, missing fields)."""


class OrderRejected(NijaError):
    """The venue refused an order. Final for that intent; ``reason`` is the venue's own words."""

    def __init__(self, reason: str, *, insufficient_funds: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.insufficient_funds = insufficient_funds


class SimulatedFault(NijaError):
    """Base of the faults the paper broker injects on request (demo and tests)."""


class SimulatedNetworkError(SimulatedFault, ConnectionError):
    """An injected network failure (classified like any ConnectionError)."""


class SimulatedTimeout(SimulatedFault, TimeoutError):
    """An injected call that took longer than the call timeout."""


class SimulatedAuthError(SimulatedFault):
    """Injected bad credentials."""


class SimulatedRateLimit(SimulatedFault):
    """An injected rate limit, with the seconds the venue asked us to wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SimulatedApiError(SimulatedFault):
    """An injected venue error."""


def describe(error: BaseException, limit: int = 300, redactor: Redactor | None = None) -> str:
    """``"Type: message"``, cut to ``limit`` characters: how an error is shown to an operator.

    With a ``redactor`` the secrets are masked before the cut (a venue may echo a key in its
    error body, and a cut could leave a piece of it too short to recognise afterwards).
    """
    text = f"{type(error).__name__}: {error}"
    return text[:limit] if redactor is None else redactor.shorten(text, limit)
