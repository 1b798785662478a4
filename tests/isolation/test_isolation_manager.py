"""The AccountIsolationManager's state machine, driven through its public API and a fake clock."""

from __future__ import annotations

import threading

import pytest

from bot.isolation.manager import (
    AccountBlockedError,
    AccountHealthStatus,
    AccountIsolationManager,
    CircuitBreakerConfig,
    FailureType,
    get_isolation_manager,
)
from bot.redact import MASK, Redactor
from tests.isolation.conftest import ALICE, BOB

H = AccountHealthStatus
NET = FailureType.NETWORK_ERROR


def status(m: AccountIsolationManager, acct=ALICE) -> AccountHealthStatus:
    return m.get_account_status(*acct)[0]


def metrics(m: AccountIsolationManager, acct=ALICE) -> dict:
    return m.get_account_status(*acct)[1]


def fail(m: AccountIsolationManager, n: int = 1, acct=ALICE, error=None, ft=NET) -> None:
    for _ in range(n):
        m.record_failure(*acct, error or ConnectionError("boom"), ft)


def gated_success(m: AccountIsolationManager, acct=ALICE) -> None:
    """One operation that must be allowed by the gate and succeeds."""
    with m.guard(*acct, "balance"):
        pass


# -- registration and keys -----------------------------------------------------


def test_registration_is_idempotent_and_never_resets(mgr):
    assert mgr.register_account("user", "carol", "okx") is True
    assert mgr.register_account("USER", "Carol", "OKX") is False
    fail(mgr, 2, acct=("user", "carol", "OKX"))
    assert mgr.register_account("user", "carol", "okx") is False
    assert metrics(mgr, ("user", "carol", "okx"))["total_failures"] == 2
    assert "user/carol/OKX" in mgr.get_all_account_statuses()


def test_unknown_account_is_refused_by_the_gate_and_guard(mgr):
    allowed, reason = mgr.can_execute_operation("user", "nobody", "KRAKEN")
    assert allowed is False and "not registered" in reason
    ran = []
    with pytest.raises(AccountBlockedError) as info, mgr.guard("user", "nobody", "KRAKEN", "x"):
        ran.append(1)
    assert ran == [] and info.value.account_key == "user/nobody/KRAKEN"
    with pytest.raises(KeyError):
        mgr.get_account_status("user", "nobody", "KRAKEN")


def test_record_outcomes_register_unknown_accounts_on_the_fly(mgr):
    mgr.record_success("platform", "platform", "binance", 3.0)
    mgr.record_failure("platform", "platform", "okx", TimeoutError("t"))
    assert metrics(mgr, ("platform", "platform", "BINANCE"))["total_successes"] == 1
    assert metrics(mgr, ("platform", "platform", "OKX"))["failure_breakdown"] == {
        "network_error": 1
    }


# -- the state machine ---------------------------------------------------------------


def test_one_failure_degrades_and_operations_stay_allowed(mgr):
    fail(mgr)
    assert status(mgr) is H.DEGRADED
    allowed, reason = mgr.can_execute_operation(*ALICE)
    assert allowed and "degraded" in reason
    assert status(mgr, BOB) is H.HEALTHY


def test_degraded_returns_to_healthy_after_success_threshold(mgr):
    fail(mgr, 2)
    gated_success(mgr)
    gated_success(mgr)
    assert status(mgr) is H.DEGRADED
    gated_success(mgr)
    assert status(mgr) is H.HEALTHY
    assert metrics(mgr)["consecutive_failures"] == 0


def test_circuit_opens_exactly_at_the_failure_threshold(mgr, clock):
    fail(mgr, 4)
    assert status(mgr) is H.DEGRADED and mgr.can_execute_operation(*ALICE)[0]
    fail(mgr)
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.QUARANTINED
    assert m["circuit_open"] is True and m["circuit_state"] == "open"
    assert m["quarantine_count"] == 1 and m["retry_in_seconds"] == 300
    allowed, reason = mgr.can_execute_operation(*ALICE)
    assert not allowed and "retry in 300s" in reason
    clock.advance(100)
    assert "retry in 200s" in mgr.can_execute_operation(*ALICE)[1]


def test_failures_of_one_account_leave_others_untouched(mgr):
    fail(mgr, 5)
    assert status(mgr) is H.QUARANTINED
    assert mgr.can_execute_operation(*BOB) == (True, "healthy")
    gated_success(mgr, BOB)
    m = metrics(mgr, BOB)
    assert (m["total_failures"], m["status"], m["circuit_state"]) == (0, "healthy", "closed")


def test_several_brokers_of_one_user_are_isolated(mgr):
    for broker in ("KRAKEN", "COINBASE", "ALPACA"):
        mgr.register_account("user", "alice", broker)
    fail(mgr, 5, acct=("user", "alice", "COINBASE"))
    assert status(mgr, ("user", "alice", "COINBASE")) is H.QUARANTINED
    assert status(mgr, ("user", "alice", "KRAKEN")) is H.HEALTHY
    assert status(mgr, ("user", "alice", "ALPACA")) is H.HEALTHY
    assert mgr.can_execute_operation("user", "alice", "KRAKEN")[0]


def test_recovery_with_default_config_driven_only_through_the_gate(mgr, clock):
    # The reference design could never recover: 1 half-open call, 3 successes needed.
    fail(mgr, 5)
    clock.advance(299.9)
    with pytest.raises(AccountBlockedError):
        gated_success(mgr)
    clock.advance(0.1)
    gated_success(mgr)
    assert status(mgr) is H.RECOVERING
    assert metrics(mgr)["circuit_state"] == "half_open"
    gated_success(mgr)
    assert status(mgr) is H.RECOVERING
    gated_success(mgr)
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.HEALTHY and m["circuit_state"] == "closed" and m["circuit_open"] is False


def test_half_open_admits_at_most_the_configured_trials(clock):
    m = AccountIsolationManager(
        CircuitBreakerConfig(failure_threshold=1, half_open_max_calls=2), clock=clock
    )
    fail(m, 1)
    clock.advance(300)
    assert m.can_execute_operation(*ALICE)[0]
    assert m.can_execute_operation(*ALICE)[0]
    allowed, reason = m.can_execute_operation(*ALICE)
    assert not allowed and "trial" in reason
    m.record_success(*ALICE)  # frees one slot
    assert m.can_execute_operation(*ALICE)[0]


def test_a_never_recorded_trial_frees_its_slot_after_timeout(mgr, clock):
    fail(mgr, 5)
    clock.advance(300)
    assert mgr.can_execute_operation(*ALICE)[0]  # a trial whose outcome never comes
    assert not mgr.can_execute_operation(*ALICE)[0]
    clock.advance(299)
    assert not mgr.can_execute_operation(*ALICE)[0]
    clock.advance(1)
    assert mgr.can_execute_operation(*ALICE)[0]
    assert status(mgr) is H.RECOVERING


def test_backoff_grows_on_each_reopening_and_is_capped(clock):
    cfg = CircuitBreakerConfig(
        failure_threshold=1, timeout_seconds=10, backoff_multiplier=3, max_timeout_seconds=100
    )
    m = AccountIsolationManager(cfg, clock=clock)
    fail(m)
    waits = [metrics(m)["retry_in_seconds"]]
    for _ in range(4):
        clock.advance(waits[-1])
        assert m.can_execute_operation(*ALICE)[0]
        fail(m)  # the trial fails: re-open with a longer wait
        assert status(m) is H.QUARANTINED
        waits.append(metrics(m)["retry_in_seconds"])
    assert waits == [10, 30, 90, 100, 100]
    # A full recovery starts the sequence again.
    clock.advance(100)
    for _ in range(3):
        gated_success(m)
    assert status(m) is H.HEALTHY
    fail(m)
    assert metrics(m)["retry_in_seconds"] == 10


def test_auth_error_opens_at_once_as_failing(mgr, clock):
    gated_success(mgr)
    mgr.record_failure(*ALICE, PermissionError("denied"), FailureType.AUTHENTICATION_ERROR)
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.FAILING and m["circuit_state"] == "open"
    assert m["quarantine_count"] == 1 and m["retry_in_seconds"] == 3600
    allowed, reason = mgr.can_execute_operation(*ALICE)
    assert not allowed and "credentials" in reason
    assert "nija_ctl.py reset user/alice/KRAKEN" in reason
    assert mgr.get_isolation_report()["failing_accounts"] == 1
    clock.advance(3600)
    assert mgr.can_execute_operation(*ALICE)[0]
    assert status(mgr) is H.RECOVERING


def test_a_key_in_an_error_is_masked_before_last_error_is_cut(clock):
    key = "K7qP2xZ9mW4vN8rT3yL6aB5cD1"
    m = AccountIsolationManager(clock=clock, redactor=Redactor((key,)))
    # "PermissionError: " + 170 characters: a cut at 200 would keep the key's first 13.
    error = PermissionError("x" * 170 + key)
    m.record_failure(*ALICE, error, FailureType.AUTHENTICATION_ERROR)
    last_error = m.get_account_status(*ALICE)[1]["last_error"]
    assert last_error == f"PermissionError: {'x' * 170}{MASK}"
    with pytest.raises(AccountBlockedError) as blocked, m.guard(*ALICE, "balance"):
        pass
    for shown in (blocked.value.reason, str(blocked.value)):
        assert MASK in shown and key[:8] not in shown


def test_failing_wait_is_not_part_of_the_backoff_sequence(clock):
    cfg = CircuitBreakerConfig(failure_threshold=1, timeout_seconds=10, failing_timeout_seconds=50)
    m = AccountIsolationManager(cfg, clock=clock)
    fail(m, ft=FailureType.AUTHENTICATION_ERROR)
    clock.advance(50)
    assert m.can_execute_operation(*ALICE)[0]
    fail(m)  # first re-opening since the last full recovery: 10 × 2
    assert metrics(m)["retry_in_seconds"] == 20


def test_outcomes_while_open_count_in_totals_and_change_no_state(mgr):
    fail(mgr, 5)
    before = metrics(mgr)
    mgr.record_success(*ALICE, 5.0)
    mgr.record_failure(*ALICE, ConnectionError("late"), NET)
    after = metrics(mgr)
    assert after["total_successes"] == before["total_successes"] + 1
    assert after["total_failures"] == before["total_failures"] + 1
    for key in ("status", "circuit_state", "consecutive_failures", "quarantine_count"):
        assert after[key] == before[key]


def test_rate_limit_with_retry_after_holds_the_account(mgr, clock):
    class Limited(Exception):
        retry_after = 30.0

    mgr.record_failure(*ALICE, Limited("slow down"), FailureType.RATE_LIMIT_ERROR)
    allowed, reason = mgr.can_execute_operation(*ALICE)
    assert not allowed and "rate limited" in reason and "30s" in reason
    assert mgr.can_execute_operation(*BOB)[0]
    clock.advance(30)
    assert mgr.can_execute_operation(*ALICE)[0]


# -- metrics, report, reset ------------------------------------------------------------


def test_success_tracking_and_operation_time(mgr):
    mgr.record_success(*ALICE, 10.0)
    mgr.record_success(*ALICE, 30.0)
    m = metrics(mgr)
    assert m["total_successes"] == 2 and m["consecutive_successes"] == 2
    assert m["average_operation_time_ms"] == 20.0
    assert m["last_success_time"].endswith("+00:00") and m["last_failure_time"] is None


def test_failure_type_tracking_and_last_error(mgr):
    mgr.record_failure(*ALICE, TimeoutError("read timed out"))
    mgr.record_failure(*ALICE, ValueError("x" * 500), FailureType.API_ERROR)
    mgr.record_failure(*ALICE, KeyError("k"), operation="balance")
    m = metrics(mgr)
    assert m["failure_breakdown"] == {"network_error": 1, "api_error": 1, "balance_error": 1}
    assert m["last_error"].startswith("KeyError: ") and m["last_operation"] == "balance"
    mgr.record_failure(*ALICE, ValueError("x" * 500), FailureType.API_ERROR)
    assert len(metrics(mgr)["last_error"]) == 200
    assert metrics(mgr)["last_failure_time"] is not None


def test_metrics_have_every_documented_field(mgr):
    expected = {
        "account_type",
        "account_id",
        "broker_type",
        "status",
        "total_failures",
        "total_successes",
        "consecutive_failures",
        "consecutive_successes",
        "circuit_open",
        "circuit_state",
        "quarantine_count",
        "failure_breakdown",
        "last_failure_time",
        "last_success_time",
        "last_error",
        "average_operation_time_ms",
        "retry_in_seconds",
    }
    m = metrics(mgr)
    assert expected <= set(m)
    assert (m["account_type"], m["account_id"], m["broker_type"]) == ("user", "alice", "KRAKEN")


def test_report_counts_every_state(mgr, clock):
    accts = [("user", f"u{i}", "OKX") for i in range(5)]
    for a in accts:
        mgr.register_account(*a)
    fail(mgr, 1, acct=accts[0])  # degraded
    fail(mgr, 5, acct=accts[1])  # quarantined
    fail(mgr, 1, acct=accts[2], ft=FailureType.AUTHENTICATION_ERROR)  # failing
    fail(mgr, 5, acct=accts[3])
    clock.advance(300)
    gated_success(mgr, accts[3])  # recovering
    r = mgr.get_isolation_report()
    assert r["total_accounts"] == 7
    assert (
        r["healthy_accounts"],
        r["degraded_accounts"],
        r["quarantined_accounts"],
        r["failing_accounts"],
        r["recovering_accounts"],
    ) == (3, 1, 1, 1, 1)
    assert r["total_failures_across_all_accounts"] == 12
    assert r["total_quarantines"] == 3
    assert r["isolation_guarantee"] == "ACTIVE" and r["cross_account_errors_detected"] == 0
    assert r["timestamp"].endswith("+00:00")
    read = mgr.get_all_account_statuses()
    assert mgr.get_isolation_report(read) == r  # a caller's reading: the same report
    fail(mgr, 1, acct=accts[4])
    assert mgr.get_isolation_report(read)["degraded_accounts"] == 1  # of the reading given
    assert mgr.get_isolation_report()["degraded_accounts"] == 2


def test_manual_reset_keeps_lifetime_counters(mgr):
    fail(mgr, 5)
    assert mgr.reset_account(*ALICE) is True
    st, m = mgr.get_account_status(*ALICE)
    assert st is H.HEALTHY and m["circuit_state"] == "closed" and m["consecutive_failures"] == 0
    assert m["total_failures"] == 5 and m["quarantine_count"] == 1
    assert mgr.can_execute_operation(*ALICE) == (True, "healthy")
    assert mgr.reset_account("user", "ghost", "KRAKEN") is False


def test_listeners_hear_each_transition(mgr, clock):
    heard = []
    mgr.add_listener(lambda key, t: heard.append((key, t.old.value, t.new.value)))
    fail(mgr, 5)
    clock.advance(300)
    for _ in range(3):
        gated_success(mgr)
    assert heard == [
        ("user/alice/KRAKEN", "healthy", "degraded"),
        ("user/alice/KRAKEN", "degraded", "quarantined"),
        ("user/alice/KRAKEN", "quarantined", "recovering"),
        ("user/alice/KRAKEN", "recovering", "healthy"),
    ]


# -- guard -------------------------------------------------------------------------------


def test_guard_records_success_with_its_duration(mgr):
    with mgr.guard(*ALICE, "ticker"):
        pass
    m = metrics(mgr)
    assert m["total_successes"] == 1 and m["average_operation_time_ms"] >= 0


def test_guard_classifies_with_the_operation_and_reraises(mgr):
    with pytest.raises(KeyError), mgr.guard(*ALICE, "positions"):
        raise KeyError("missing field")
    m = metrics(mgr)
    assert m["failure_breakdown"] == {"position_error": 1}
    assert m["last_operation"] == "positions"


def test_guard_refuses_a_blocked_account_without_running_the_block(mgr):
    fail(mgr, 5)
    ran = []
    with pytest.raises(AccountBlockedError) as info, mgr.guard(*ALICE, "balance"):
        ran.append(1)
    assert ran == []
    assert info.value.status is H.QUARANTINED and info.value.retry_in_seconds == 300
    assert "quarantined" in info.value.reason
    assert metrics(mgr)["total_failures"] == 5  # a refusal is not a new failure


def test_cross_account_error_is_detected(mgr):
    try:
        with mgr.guard(*ALICE, "order"):
            raise RuntimeError("alice's failure")
    except RuntimeError as exc:
        leaked = exc
    assert mgr.get_isolation_report()["isolation_guarantee"] == "ACTIVE"
    # Bob's cycle is handed Alice's exception: a shared object crossed accounts.
    mgr.record_failure(*BOB, leaked)
    r = mgr.get_isolation_report()
    assert r["cross_account_errors_detected"] == 1 and r["isolation_guarantee"] == "VIOLATED"
    assert metrics(mgr, BOB)["total_failures"] == 1  # still recorded on the reporter


def test_nested_guard_of_another_account_is_detected(mgr):
    with pytest.raises(ValueError), mgr.guard(*BOB, "balance"), mgr.guard(*ALICE, "balance"):
        raise ValueError("inner")
    assert mgr.get_isolation_report()["cross_account_errors_detected"] == 1


# -- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier"),
        ({"max_timeout_seconds": 10}, "max_timeout_seconds"),
        ({"failing_timeout_seconds": -1}, "failing_timeout_seconds"),
    ],
)
def test_impossible_config_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        CircuitBreakerConfig(**kwargs)


def test_config_defaults_and_frozen():
    c = CircuitBreakerConfig()
    assert (c.failure_threshold, c.success_threshold, c.timeout_seconds) == (5, 3, 300)
    assert (c.half_open_max_calls, c.backoff_multiplier, c.max_timeout_seconds) == (1, 2.0, 3600)
    assert c.open_immediately_on == frozenset({FailureType.AUTHENTICATION_ERROR})
    with pytest.raises(AttributeError):
        c.failure_threshold = 9  # type: ignore[misc]


def test_enum_values_are_lower_case_names():
    assert {f.value for f in FailureType} == {f.name.lower() for f in FailureType}
    assert {s.value for s in AccountHealthStatus} == {s.name.lower() for s in AccountHealthStatus}


# -- threads ---------------------------------------------------------------------------------


def test_process_wide_instance_is_created_once_across_threads():
    seen = []
    threads = [
        threading.Thread(target=lambda: seen.append(get_isolation_manager())) for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert len(seen) == 16 and all(m is seen[0] for m in seen)


def test_concurrent_outcomes_are_all_counted(clock):
    m = AccountIsolationManager(CircuitBreakerConfig(failure_threshold=10**9), clock=clock)
    accts = [("user", f"t{i}", "KRAKEN") for i in range(8)]

    def work(acct):
        for i in range(500):
            if i % 5 == 0:
                m.record_failure(*acct, ConnectionError("x"), NET)
            else:
                with m.guard(*acct, "ticker"):
                    pass

    threads = [threading.Thread(target=work, args=(a,)) for a in accts for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for a in accts:
        st = metrics(m, a)
        assert (st["total_successes"], st["total_failures"]) == (800, 200)


def test_a_slow_guarded_call_blocks_neither_other_gates_nor_the_report(mgr):
    entered, release = threading.Event(), threading.Event()

    def slow():
        with mgr.guard(*ALICE, "balance"):
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        assert entered.wait(5)
        done = threading.Event()

        def others():
            mgr.can_execute_operation(*BOB)
            with mgr.guard(*BOB, "balance"):
                pass
            mgr.get_isolation_report()
            mgr.get_account_status(*ALICE)
            done.set()

        threading.Thread(target=others).start()
        # Alice's call is still in progress; Bob and the report must not wait for it.
        assert done.wait(5) and worker.is_alive()
    finally:
        release.set()
        worker.join(5)


def test_a_refusal_says_how_long_it_will_last(mgr, clock):
    class Limited(Exception):
        retry_after = 40.0

    mgr.record_failure(*ALICE, Limited("slow down"), FailureType.RATE_LIMIT_ERROR)
    with pytest.raises(AccountBlockedError) as held:
        gated_success(mgr)
    assert held.value.retry_in_seconds == 40.0
    clock.advance(40)
    fail(mgr, 5)
    with pytest.raises(AccountBlockedError) as opened:
        gated_success(mgr)
    assert opened.value.retry_in_seconds == 300.0
