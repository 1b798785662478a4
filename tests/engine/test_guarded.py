"""GuardedBroker: every call passes the account's gate; each failure is classified once."""

from __future__ import annotations

import pytest

from bot.engine.guarded import GuardedBroker
from bot.errors import InsufficientFunds, OrderRejected
from bot.isolation import handle as handle_module
from bot.isolation.manager import AccountBlockedError, AccountIsolationManager
from bot.model import AccountRef, Balance
from nija_testkit.clock import FakeClock

ALICE = AccountRef("user", "alice", "KRAKEN")


class StubBroker:
    """A broker whose calls answer or raise as the test says."""

    def __init__(self, account: AccountRef) -> None:
        self.account = account
        self.positions_error: Exception | None = None
        self.order_error: Exception | None = None

    def fetch_balance(self) -> Balance:
        return Balance({"USD": 100.0}, 100.0, 100.0)

    def fetch_positions(self):
        if self.positions_error is not None:
            raise self.positions_error
        return []

    def place_order(self, request):
        raise self.order_error


@pytest.fixture
def isolation() -> AccountIsolationManager:
    return AccountIsolationManager(clock=FakeClock())


def test_calls_are_counted_and_recorded_on_the_account(isolation):
    broker = GuardedBroker(StubBroker(ALICE), isolation)
    assert broker.handle is isolation.handle(ALICE)
    broker.fetch_balance()
    broker.fetch_positions()
    assert broker.calls == 2 and not broker.errors
    assert isolation.get_account_status("user", "alice", "KRAKEN")[1]["total_successes"] == 2


def test_a_failure_is_classified_once_and_counted_by_type(isolation, monkeypatch):
    calls = []

    def counting(real):
        return lambda *args: calls.append(args) or real(*args)

    monkeypatch.setattr(handle_module, "classify", counting(handle_module.classify))
    stub = StubBroker(ALICE)
    broker = GuardedBroker(stub, isolation)
    stub.positions_error = KeyError("missing field")
    with pytest.raises(KeyError):
        broker.fetch_positions()
    assert len(calls) == 1
    assert broker.errors == {"position_error": 1}
    m = isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert m["failure_breakdown"] == {"position_error": 1} and m["last_operation"] == "positions"


def test_a_refused_order_is_counted_for_the_cycle_but_not_toward_quarantine(isolation):
    stub = StubBroker(ALICE)
    broker = GuardedBroker(stub, isolation)
    stub.order_error = InsufficientFunds("insufficient funds")
    for _ in range(6):
        with pytest.raises(OrderRejected):
            broker.place_order(None)
    assert broker.errors == {"balance_error": 6}
    status, m = isolation.get_account_status("user", "alice", "KRAKEN")
    assert status.value == "healthy" and m["consecutive_failures"] == 0


def test_a_blocked_gate_sends_nothing_and_counts_nothing(isolation):
    stub = StubBroker(ALICE)
    broker = GuardedBroker(stub, isolation)
    stub.positions_error = ConnectionError("reset")
    for _ in range(5):
        with pytest.raises(ConnectionError):
            broker.fetch_positions()
    broker.reset_counters()
    with pytest.raises(AccountBlockedError):
        broker.fetch_balance()
    assert broker.calls == 0 and not broker.errors
