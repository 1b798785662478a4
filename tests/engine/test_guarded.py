"""GuardedBroker: every call passes the account's gate; each failure is classified once."""

from __future__ import annotations

import random

import pytest

from bot.engine.guarded import GuardedBroker
from bot.errors import AuthRejected, InsufficientFunds, NetworkFailure, OrderRejected, RateLimited
from bot.isolation import handle as handle_module
from bot.isolation.manager import AccountBlockedError, AccountIsolationManager
from bot.model import AccountRef, Balance
from bot.venue.health import VenueHealth, VenueParked, VenueState
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


# -- the venue's gate ---------------------------------------------------------------------------


def _venue_pair(isolation):
    """Alice and Bob on one venue whose health the test reads."""
    health = VenueHealth("KRAKEN", isolation._clock, random.Random(1))
    stubs = {who: StubBroker(AccountRef("user", who, "KRAKEN")) for who in ("alice", "bob")}
    guarded = {who: GuardedBroker(stub, isolation, health) for who, stub in stubs.items()}
    return health, stubs, guarded


def test_outage_failures_put_the_venue_down_and_are_excused_from_then_on(isolation):
    health, stubs, guarded = _venue_pair(isolation)
    for stub in stubs.values():
        stub.positions_error = NetworkFailure("KRAKEN: 503", status=503)
    with pytest.raises(NetworkFailure):
        guarded["alice"].fetch_positions()
    assert health.state is VenueState.UP
    assert isolation.get_account_status("user", "alice", "KRAKEN")[0].value == "degraded"
    with pytest.raises(NetworkFailure):
        guarded["bob"].fetch_positions()  # half the venue's accounts: down
    assert health.state is VenueState.DOWN
    bob = isolation.get_account_status("user", "bob", "KRAKEN")[1]
    assert bob["status"] == "healthy" and bob["failure_breakdown"] == {"network_error": 1}
    calls = guarded["alice"].calls
    with pytest.raises(VenueParked) as parked:
        guarded["alice"].fetch_balance()  # parked: nothing sent
    assert guarded["alice"].calls == calls and parked.value.retry_in_seconds > 0
    alice = isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert alice["status"] == "healthy" and alice["consecutive_failures"] == 0  # forgiven


def test_an_accounts_own_failures_never_reach_its_venue(isolation):
    health, stubs, guarded = _venue_pair(isolation)
    # A rate limit first: bad credentials open the circuit, and the gate refuses from then on.
    for error in (RateLimited("EAPI:Rate limit exceeded"), AuthRejected("EAPI:Invalid key")):
        for who, stub in stubs.items():
            stub.positions_error = error
            with pytest.raises(type(error)):
                guarded[who].fetch_positions()
    assert health.state is VenueState.UP
    assert guarded["alice"].venue_state is VenueState.UP
