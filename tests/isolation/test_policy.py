"""Which failures count toward quarantine, and which success answers which failure."""

from __future__ import annotations

import pytest

from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerError,
    InsufficientFunds,
    NetworkFailure,
    OrderRejected,
    RateLimited,
)
from bot.isolation.circuit import AccountHealthStatus, CircuitBreakerConfig, CircuitState
from bot.isolation.failures import FailureType
from bot.isolation.manager import AccountIsolationManager
from bot.isolation.policy import OUTAGE_TAG, Weight, is_outage, weigh
from bot.model import AccountRef
from bot.store.db import StoreError
from tests.isolation.conftest import ALICE, BOB

H = AccountHealthStatus
NO_FUNDS = InsufficientFunds("insufficient funds")


def _excused(error: Exception) -> Exception:
    """``error`` as the venue layer tags it when its venue was already down."""
    setattr(error, OUTAGE_TAG, True)
    return error


def metrics(m: AccountIsolationManager, acct=ALICE) -> dict:
    return m.get_account_status(*acct)[1]


def succeed(m: AccountIsolationManager, operation: str, acct=ALICE) -> None:
    with m.guard(*acct, operation):
        pass


# -- the policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "failure_type", "weight"),
    [
        (NO_FUNDS, FailureType.BALANCE_ERROR, Weight.REFUSAL),
        (OrderRejected("below minimum"), FailureType.EXECUTION_ERROR, Weight.REFUSAL),
        # The type lent by the operation alone (an unknown error during "balance") counts.
        (KeyError("total"), FailureType.BALANCE_ERROR, Weight.COUNTED),
        # What a venue outage explains counts, and is forgiven if its venue goes down.
        (ConnectionError("reset"), FailureType.EXECUTION_ERROR, Weight.OUTAGE),
        (TimeoutError("t"), FailureType.NETWORK_ERROR, Weight.OUTAGE),
        (BrokerError("-1001", status=503), FailureType.API_ERROR, Weight.OUTAGE),
        (BrokerError("-1001", status=400), FailureType.API_ERROR, Weight.COUNTED),
        (BadResponse("garbled"), FailureType.API_ERROR, Weight.COUNTED),
        (RateLimited("slow down", status=503), FailureType.RATE_LIMIT_ERROR, Weight.COUNTED),
        (_excused(NetworkFailure("503")), FailureType.NETWORK_ERROR, Weight.EXCUSED),
        (PermissionError("denied"), FailureType.AUTHENTICATION_ERROR, Weight.OPENS),
        (_excused(AuthRejected("401")), FailureType.AUTHENTICATION_ERROR, Weight.OPENS),
    ],
)
def test_weigh_sorts_failures_by_what_the_error_proves(error, failure_type, weight):
    assert weigh(CircuitBreakerConfig(), failure_type, error) is weight


def test_the_policy_sets_are_configurable():
    cfg = CircuitBreakerConfig(refusals=frozenset())
    assert weigh(cfg, FailureType.BALANCE_ERROR, NO_FUNDS) is Weight.COUNTED


def test_venue_refusals_are_recorded_but_never_quarantine(mgr):
    for _ in range(10):
        assert mgr.record_failure(*ALICE, NO_FUNDS, operation="order") is FailureType.BALANCE_ERROR
        mgr.record_failure(*ALICE, OrderRejected("post-only would cross"), operation="order")
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.HEALTHY and m["circuit_state"] == "closed"
    assert m["consecutive_failures"] == 0 and m["quarantine_count"] == 0
    assert m["total_failures"] == 20
    assert m["failure_breakdown"] == {"balance_error": 10, "execution_error": 10}
    assert m["last_error"] == "OrderRejected: post-only would cross"
    assert m["last_operation"] == "order" and m["last_failure_time"] is not None


def test_an_unknown_error_during_balance_still_counts(mgr):
    for _ in range(5):
        mgr.record_failure(*ALICE, KeyError("total"), operation="balance")
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.QUARANTINED and m["failure_breakdown"] == {"balance_error": 5}


def test_a_store_failure_counts_toward_quarantine_of_its_account_only(mgr):
    """A full disk: no order can be stored first, so none may be sent; the account waits."""
    full = StoreError("record_cycle", "database or disk is full", error_name="SQLITE_FULL")
    assert weigh(CircuitBreakerConfig(), FailureType.STORE_ERROR, full) is Weight.COUNTED
    for _ in range(5):
        assert mgr.record_failure(*ALICE, full, operation="store") is FailureType.STORE_ERROR
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.QUARANTINED and m["failure_breakdown"] == {"store_error": 5}
    assert metrics(mgr, BOB)["status"] == "healthy"


def test_a_refusal_neither_breaks_nor_builds_a_recovery(mgr):
    mgr.record_failure(*ALICE, ConnectionError("x"), FailureType.NETWORK_ERROR)
    succeed(mgr, "balance")
    succeed(mgr, "balance")
    mgr.record_failure(*ALICE, NO_FUNDS, operation="order")
    assert metrics(mgr)["status"] == "degraded" and metrics(mgr)["consecutive_successes"] == 2
    succeed(mgr, "balance")
    assert metrics(mgr)["status"] == "healthy"


def test_a_refused_trial_frees_its_slot_without_reopening(mgr, clock):
    for _ in range(5):
        mgr.record_failure(*ALICE, ConnectionError("x"), FailureType.NETWORK_ERROR)
    clock.advance(300)
    assert mgr.can_execute_operation(*ALICE)[0]  # the one trial
    assert not mgr.can_execute_operation(*ALICE)[0]
    mgr.record_failure(*ALICE, NO_FUNDS, operation="order")
    assert metrics(mgr)["status"] == "recovering"
    assert mgr.can_execute_operation(*ALICE)[0]  # its slot is free again


# -- venue outages ---------------------------------------------------------------------------


def test_is_outage_never_takes_an_accounts_own_failure():
    assert is_outage(NetworkFailure("503", status=503)) and is_outage(TimeoutError("t"))
    for own in (AuthRejected("401"), RateLimited("429"), InsufficientFunds("no"), KeyError("x")):
        assert not is_outage(own)


def test_an_excused_failure_is_recorded_but_never_counted(mgr):
    for _ in range(10):
        mgr.record_failure(*ALICE, _excused(NetworkFailure("503")), operation="candles")
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.HEALTHY and m["consecutive_failures"] == 0
    assert m["failure_breakdown"] == {"network_error": 10} and m["total_failures"] == 10


def test_forgiving_an_outage_takes_back_only_the_failures_it_explains(mgr):
    handle = mgr.handle(AccountRef(*ALICE))
    mgr.record_failure(*ALICE, NetworkFailure("503"), operation="candles")
    mgr.record_failure(*ALICE, NetworkFailure("503"), operation="candles")
    mgr.record_failure(*ALICE, ZeroDivisionError("bug"), operation="strategy")
    assert metrics(mgr)["consecutive_failures"] == 3
    handle.forgive_outage("venue KRAKEN down")
    m = metrics(mgr)
    assert m["status"] == "degraded" and m["consecutive_failures"] == 1  # the bug stays
    handle.forgive_outage("venue KRAKEN down")  # nothing left to forgive: no change
    assert metrics(mgr)["consecutive_failures"] == 1
    mgr.record_failure(*BOB, NetworkFailure("503"), operation="balance")
    mgr.handle(AccountRef(*BOB)).forgive_outage("venue KRAKEN down")
    assert metrics(mgr, BOB)["status"] == "healthy"


def test_a_circuit_only_an_outage_opened_closes_when_it_is_forgiven(mgr):
    changes = []
    mgr.add_listener(lambda key, t: changes.append((t.new.value, t.reason)))
    for _ in range(5):
        mgr.record_failure(*ALICE, NetworkFailure("503"), operation="candles")
    assert metrics(mgr)["status"] == "quarantined"
    mgr.handle(AccountRef(*ALICE)).forgive_outage("venue KRAKEN down: forgiven")
    m = metrics(mgr)
    assert m["status"] == "healthy" and m["circuit_state"] == "closed"
    assert changes[-1] == ("healthy", "venue KRAKEN down: forgiven")
    assert m["quarantine_count"] == 1  # the history stays


def test_a_circuit_opened_by_other_failures_stays_open_when_an_outage_is_forgiven(mgr):
    mgr.record_failure(*ALICE, NetworkFailure("503"), operation="candles")
    for _ in range(4):
        mgr.record_failure(*ALICE, ZeroDivisionError("bug"), operation="strategy")
    mgr.handle(AccountRef(*ALICE)).forgive_outage("venue KRAKEN down")
    assert metrics(mgr)["status"] == "quarantined"


def test_a_success_answers_outage_failures_like_any_other(mgr):
    handle = mgr.handle(AccountRef(*ALICE))
    mgr.record_failure(*ALICE, NetworkFailure("503"), operation="candles")
    mgr.record_failure(*ALICE, KeyError("x"), operation="candles")
    succeed(mgr, "candles")
    mgr.record_failure(*ALICE, KeyError("x"), operation="candles")
    handle.forgive_outage("venue KRAKEN down")  # the outage failure was answered already
    assert metrics(mgr)["consecutive_failures"] == 1


# -- what a success answers ------------------------------------------------------------------


def test_a_strategy_failing_every_cycle_is_quarantined_despite_broker_successes(mgr):
    """Each cycle: three broker calls work, then the strategy raises."""
    for cycle in range(1, 6):
        for operation in ("balance", "candles", "candles"):
            succeed(mgr, operation)
        mgr.record_failure(*ALICE, ZeroDivisionError("bug"), operation="strategy")
        st, m = mgr.get_account_status(*ALICE)
        assert m["consecutive_failures"] == cycle
        assert st is (H.QUARANTINED if cycle == 5 else H.DEGRADED)
    allowed, reason = mgr.can_execute_operation(*ALICE)
    assert not allowed and "after 5 consecutive failure(s)" in reason
    assert metrics(mgr, BOB)["status"] == "healthy"


def test_a_clean_cycle_answers_an_occasional_strategy_failure(mgr):
    for _ in range(10):
        mgr.record_failure(*ALICE, ZeroDivisionError("bug"), operation="strategy")
        for operation in ("balance", "candles", "candles"):
            succeed(mgr, operation)
        mgr.record_success(*ALICE)  # the trader's mark of a cycle without any failure
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.HEALTHY and m["consecutive_failures"] == 0 and m["quarantine_count"] == 0


def test_a_success_answers_only_its_own_operations_failures(mgr):
    mgr.record_failure(*ALICE, TimeoutError("t"), operation="order")
    mgr.record_failure(*ALICE, TimeoutError("t"), operation="candles")
    mgr.record_failure(*ALICE, TimeoutError("t"))  # no operation: any success answers it
    assert metrics(mgr)["consecutive_failures"] == 3
    for _ in range(3):
        succeed(mgr, "balance")
    m = metrics(mgr)
    assert m["consecutive_failures"] == 2 and m["status"] == "degraded"
    succeed(mgr, "order")
    assert metrics(mgr)["consecutive_failures"] == 1
    succeed(mgr, "candles")
    m = metrics(mgr)
    assert m["consecutive_failures"] == 0 and m["status"] == "healthy"


def test_a_full_recovery_answers_every_failure(mgr, clock):
    for _ in range(5):
        mgr.record_failure(*ALICE, ZeroDivisionError("bug"), operation="strategy")
    clock.advance(300)
    for _ in range(3):
        succeed(mgr, "balance")
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.HEALTHY and m["consecutive_failures"] == 0


def test_a_strategy_failure_while_recovering_reopens_with_a_longer_wait(mgr, clock):
    for _ in range(5):
        mgr.record_failure(*ALICE, ZeroDivisionError("bug"), operation="strategy")
    clock.advance(300)
    succeed(mgr, "balance")
    mgr.record_failure(*ALICE, ZeroDivisionError("bug"), operation="strategy")
    m = metrics(mgr)
    assert m["status"] == "quarantined" and m["retry_in_seconds"] == 600


# -- the circuit's position is derived from the health status -----------------------------------


def test_each_health_status_has_one_circuit_position():
    assert {s: s.circuit for s in AccountHealthStatus} == {
        H.HEALTHY: CircuitState.CLOSED,
        H.DEGRADED: CircuitState.CLOSED,
        H.QUARANTINED: CircuitState.OPEN,
        H.FAILING: CircuitState.OPEN,
        H.RECOVERING: CircuitState.HALF_OPEN,
    }
    assert [c.value for c in CircuitState] == ["closed", "open", "half_open"]


def test_reported_circuit_state_follows_the_status(mgr, clock):
    seen = set()
    for _ in range(5):
        mgr.record_failure(*ALICE, ConnectionError("x"), FailureType.NETWORK_ERROR)
        seen.add((metrics(mgr)["status"], metrics(mgr)["circuit_state"]))
    clock.advance(300)
    succeed(mgr, "balance")
    seen.add((metrics(mgr)["status"], metrics(mgr)["circuit_state"]))
    mgr.record_failure(*BOB, PermissionError("no"), FailureType.AUTHENTICATION_ERROR)
    seen.add((metrics(mgr, BOB)["status"], metrics(mgr, BOB)["circuit_state"]))
    assert seen == {
        ("degraded", "closed"),
        ("quarantined", "open"),
        ("recovering", "half_open"),
        ("failing", "open"),
    }
