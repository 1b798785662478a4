"""The broker as an account's trader sees it: every call passes the isolation gate.

Each method is one guarded call with its operation name (balance, ticker, positions,
order), so it is timed, classified and counted against this account alone. A refused
gate raises AccountBlockedError before anything is sent. The venue's public data
(candles, markets) is not the account's: it comes from ``bot.venue``, never through here;
when the venue's price of a holding fails inside a balance or positions call, the call
raises ``VenueDataError``, which is the venue's and counted against no account.

With its venue's health (``bot.venue.health``), every call first passes the venue's gate
too: while the venue is down, or until the account's staggered resume time, ``VenueParked``
is raised and nothing is sent. Each call's outcome is reported to the venue: a failure an
outage explains (``is_outage``) counts toward declaring the venue down, and one that
happens while it is down is excused (recorded, never counted on the account's breaker).
The few counted before the venue was declared down are forgiven at the account's next gate.
That venue side of an account's calls is ``bot.venue.gate.VenueGate``: the account's funds
checks (``bot.daemon.funded``) pass the same gate and tell the venue the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from bot.brokers.base import Broker
from bot.errors import LeaseLost, VenueDataError
from bot.isolation.manager import AccountBlockedError, AccountIsolationManager, classify_failure
from bot.model import Balance, Order, OrderRequest, Position, Ticker
from bot.venue.gate import VenueGate
from bot.venue.health import VenueHealth, VenueState

T = TypeVar("T")


class GuardedBroker:
    """Wraps one account's broker; counts calls and failures by type for the cycle report."""

    def __init__(
        self,
        broker: Broker,
        isolation: AccountIsolationManager,
        venue_health: VenueHealth | None = None,
    ) -> None:
        self.broker = broker
        self.handle = isolation.handle(broker.account)  # the fast path: no lookups per call
        self.key = broker.account.key
        self.gate = VenueGate(self.handle, venue_health)
        if venue_health is not None:
            venue_health.register(self.key)
        self.calls = 0
        self.errors: Counter[str] = Counter()

    def reset_counters(self) -> None:
        self.calls = 0
        self.errors = Counter()

    @property
    def venue_state(self) -> VenueState:
        """The account's venue as its health says (UP when none is kept)."""
        return self.gate.state

    def check_venue(self) -> None:
        """Raise ``VenueParked`` while this account must not call its venue (``VenueGate``)."""
        self.gate.check()

    def _call(self, operation: str, fn: Callable[..., T], *args, **kwargs) -> T:
        gate = self.gate
        gate.check()
        try:
            with self.handle.guard(operation):
                self.calls += 1
                if gate.health is None:
                    return fn(*args, **kwargs)
                return gate.call(operation, fn, *args, **kwargs)
        except (AccountBlockedError, LeaseLost, VenueDataError):
            raise  # none is this account's failure (the guard recorded none)
        except Exception as exc:  # the guard classified it (an untaggable one is classified here)
            self.errors[classify_failure(exc, operation).value] += 1
            raise

    def fetch_balance(self) -> Balance:
        return self._call("balance", self.broker.fetch_balance)

    def fetch_ticker(self, symbol: str) -> Ticker:
        return self._call("ticker", self.broker.fetch_ticker, symbol)

    def fetch_positions(self) -> list[Position]:
        return self._call("positions", self.broker.fetch_positions)

    def place_order(self, request: OrderRequest) -> Order:
        return self._call("order", self.broker.place_order, request)

    def fetch_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        return self._call("order", self.broker.fetch_order, client_order_id, symbol)
