"""The broker as an account's trader sees it: every call passes the isolation gate.

Each method is one guarded call with its operation name (balance, ticker, positions,
order), so it is timed, classified and counted against this account alone. A refused
gate raises AccountBlockedError before anything is sent. The venue's public data
(candles, markets) is not the account's: it comes from ``bot.venue``, never through here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from bot.brokers.base import Broker
from bot.isolation.manager import AccountBlockedError, AccountIsolationManager, classify_failure
from bot.model import Balance, Order, OrderRequest, Position, Ticker

T = TypeVar("T")


class GuardedBroker:
    """Wraps one account's broker; counts calls and failures by type for the cycle report."""

    def __init__(self, broker: Broker, isolation: AccountIsolationManager) -> None:
        self.broker = broker
        self.isolation = isolation
        self.handle = isolation.handle(broker.account)  # the fast path: no lookups per call
        self.calls = 0
        self.errors: Counter[str] = Counter()

    def reset_counters(self) -> None:
        self.calls = 0
        self.errors = Counter()

    def _call(self, operation: str, fn: Callable[..., T], *args, **kwargs) -> T:
        try:
            with self.handle.guard(operation):
                self.calls += 1
                return fn(*args, **kwargs)
        except AccountBlockedError:
            raise
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
