"""The project's own exceptions: the kind of a failure is its type.

Broker SDK exceptions never leave an adapter: each adapter translates every SDK failure
at its edge into one of the ``BrokerError`` types below, chained ``from`` the SDK's
exception, so that ``bot.isolation.failures.classify`` sorts failures by type without
importing any SDK. Messages never carry secret values.

::

    NijaError
    ├── ConfigError
    │   └── BrokerConfigError        an unusable key or secret (never sent to the venue)
    ├── StartupError                 the daemon cannot start: a path it needs is unusable
    ├── StorageError                 the state store failed (bot.store's StoreError)
    ├── VenueDataError               the venue's shared public data could not be had (the venue's failure)
    └── BrokerError                  a venue failure of no finer kind (status: HTTP status)
        ├── NetworkFailure           no usable answer: connection, 5xx, outage
        │   └── NetworkTimeout       no answer within the call timeout
        ├── RateLimited              slow down (retry_after: what the venue asked for)
        ├── AuthRejected             the venue refused the key or its permissions
        ├── VenueRefused             a definitive refusal of what the venue read (4xx)
        │   ├── NotFound             no such order (or asset)
        │   └── OrderRejected        the order was refused
        │       └── InsufficientFunds
        ├── BadResponse              an answer that cannot be understood
        └── SimulatedFault           the paper broker's injected faults (each also one of the above)
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.redact import Redactor


class NijaError(Exception):
    """Base class of every exception NIJA raises on purpose."""


class ConfigError(NijaError):
    """A setting or an account's credentials are missing or malformed (names, never values)."""


class BrokerConfigError(ConfigError):
    """A broker client cannot be built or sign requests: e.g. a secret that is not valid base64/PEM."""


class StartupError(NijaError):
    """The daemon cannot start: its message is one line naming the path (or variable) and the fix.

    ``bot.py`` prints it on stderr, writes it to nija.log where it can, and exits 2, so a
    supervisor with ``RestartPreventExitStatus=2`` does not restart into the same error.
    """


class StorageError(NijaError):
    """A write or read of NIJA's own state failed (``bot.store.db.StoreError`` is one)."""


class LeaseLost(NijaError):
    """This node no longer holds the account's lease (``bot.store.fence.LeaseLostError``):
    nothing was stored or sent. Not a failure of the account, so the isolation guard records
    nothing for it, even when it is raised inside a broker call (the order's last look, just
    before the request leaves)."""


class VenueDataError(NijaError):
    """The venue's shared public market data (candles, market metadata, the prices that
    value holdings) could not be had.

    Raised by ``bot.venue.market.VenueMarket`` to the accounts that asked, chained ``from``
    the adapter's error when there was one. The failure is the venue's: it was reported to
    the venue's observer once and is never recorded against an account, even when it
    fails an account's call (a balance whose holding cannot be priced: the isolation
    guard records nothing for it); ``operation`` names what was asked (``candles``,
    ``markets``, ``ticker``).
    """

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message)
        self.operation = operation


class BrokerError(NijaError):
    """A broker call failed. Raised as such for a venue error of no finer kind.

    ``status`` is the HTTP status of the venue's answer where one is known; it is
    information for the operator, the type alone decides how the failure is classified.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NetworkFailure(BrokerError):
    """No usable answer: a dropped connection, a 5xx, a venue outage. The request may have arrived."""


class NetworkTimeout(NetworkFailure):
    """No answer within the call timeout. The request may have arrived."""


class RateLimited(BrokerError):
    """The venue asks us to slow down; ``retry_after`` is the seconds it asked us to wait, if it said."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AuthRejected(BrokerError):
    """The venue refused the credentials or their permissions (HTTP 401/403, an invalid key)."""


class VenueRefused(BrokerError):
    """The venue read the request and refused it (a 4xx other than 408): nothing happened there."""


class NotFound(VenueRefused):
    """The venue says the order (or asset) asked for does not exist."""


class OrderRejected(VenueRefused):
    """The venue refused an order. Final for that intent; ``reason`` is the venue's own words."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason, status=status)
        self.reason = reason


class InsufficientFunds(OrderRejected):
    """The order was refused for lack of funds (cash, buying power or the asset to sell)."""


class BadResponse(BrokerError):
    """The venue answered, but the answer cannot be understood (bad JSON, missing fields)."""


class SimulatedFault(BrokerError):
    """Base of the faults the paper broker injects on request (demo and tests)."""


class SimulatedNetworkError(SimulatedFault, NetworkFailure):
    """An injected network failure."""


class SimulatedTimeout(SimulatedFault, NetworkTimeout):
    """An injected call that took longer than the call timeout."""


class SimulatedAuthError(SimulatedFault, AuthRejected):
    """Injected bad credentials."""


class SimulatedRateLimit(SimulatedFault, RateLimited):
    """An injected rate limit, with the seconds the venue asked us to wait."""


class SimulatedApiError(SimulatedFault):
    """An injected venue error."""


def describe(error: BaseException, limit: int = 300, redactor: Redactor | None = None) -> str:
    """``"Type: message"``, cut to ``limit`` characters: how an error is shown to an operator.

    With a ``redactor`` the secrets are masked before the cut (a venue may echo a key in its
    error body, and a cut could leave a piece of it too short to recognise afterwards).
    """
    text = f"{type(error).__name__}: {error}"
    return text[:limit] if redactor is None else redactor.shorten(text, limit)


# A full disk, or a full disk quota.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(error: BaseException | None) -> bool:
    """True when ``error``, or an exception it was raised from, says the disk is full.

    By type and code, never by message: an ``OSError`` with ENOSPC or EDQUOT, or an SQLite
    error whose code is ``SQLITE_FULL`` (a ``StoreError`` is raised from one).
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
            return True
        if getattr(error, "sqlite_errorname", None) == "SQLITE_FULL":
            return True
        error = error.__cause__ or error.__context__
    return False
