"""The fast path (an account's handle), the one Clock, and the tags ``guard`` sets."""

from __future__ import annotations

import importlib.util
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import SYSTEM_CLOCK
from bot.errors import VenueDataError
from bot.isolation import handle as handle_module
from bot.isolation.manager import (
    ACCOUNT_TAG,
    AccountBlockedError,
    AccountHealthStatus,
    AccountIsolationManager,
    CircuitBreakerConfig,
    FailureType,
    failure_type_of,
)
from bot.model import AccountRef
from nija_testkit.clock import DEFAULT_WALL, FakeClock

ROOT = Path(__file__).resolve().parents[2]
ALICE = AccountRef("user", "Alice", "kraken")
STRINGS = ("user", "alice", "KRAKEN")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mgr(clock: FakeClock) -> AccountIsolationManager:
    return AccountIsolationManager(clock=clock)


# -- the handle ------------------------------------------------------------------------------


def test_a_handle_is_the_accounts_one_state_shared_with_the_three_string_api(mgr):
    h = mgr.handle(ALICE)
    assert mgr.handle(AccountRef("USER", "alice", "KRAKEN")) is h
    assert mgr.register_account(*STRINGS) is False  # handle() registered it
    assert h.key == "user/alice/KRAKEN"
    h.record_success(4.0, "balance")
    mgr.record_success("User", "ALICE", "kraken", 2.0)
    h.record_failure(TimeoutError("t"), "candles")
    m = mgr.get_account_status(*STRINGS)[1]
    assert (m["total_successes"], m["total_failures"]) == (2, 1)
    assert m["average_operation_time_ms"] == 3.0
    assert m["failure_breakdown"] == {"network_error": 1} and m["last_operation"] == "candles"
    assert (
        h.allow()
        == mgr.can_execute_operation(*STRINGS)
        == (True, "degraded: 1 consecutive failure(s)")
    )


def test_the_handle_gate_refuses_an_open_circuit(mgr, clock):
    h = mgr.handle(ALICE)
    for _ in range(5):
        h.record_failure(ConnectionError("x"), "balance")
    allowed, reason = h.allow()
    assert not allowed and "retry in 300s" in reason
    ran = []
    with pytest.raises(AccountBlockedError) as info, h.guard("balance"):
        ran.append(1)
    assert ran == [] and info.value.status is AccountHealthStatus.QUARANTINED
    assert info.value.retry_in_seconds == 300 and info.value.account_key == h.key
    clock.advance(300)
    with h.guard("balance"):
        pass
    assert mgr.get_account_status(*STRINGS)[0] is AccountHealthStatus.RECOVERING


def test_listeners_hear_transitions_made_through_the_handle(mgr):
    heard = []
    h = mgr.handle(ALICE)
    mgr.add_listener(lambda key, t: heard.append((key, t.new.value)))  # added after handle()
    h.record_failure(ConnectionError("x"), "balance")
    assert heard == [("user/alice/KRAKEN", "degraded")]


def test_concurrent_outcomes_through_handles_are_all_counted(clock):
    m = AccountIsolationManager(CircuitBreakerConfig(failure_threshold=10**9), clock=clock)
    refs = [AccountRef("user", f"t{i}", "KRAKEN") for i in range(4)]

    def work(ref: AccountRef) -> None:
        h = m.handle(ref)  # every thread asks: one handle per account all the same
        for i in range(500):
            if i % 5 == 0:
                h.record_failure(ConnectionError("x"), "ticker", FailureType.NETWORK_ERROR)
            else:
                with h.guard("ticker"):
                    pass

    threads = [threading.Thread(target=work, args=(r,)) for r in refs for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(m.get_all_account_statuses()) == len(refs)
    for ref in refs:
        st = m.get_account_status(ref.account_type, ref.account_id, ref.broker)[1]
        assert (st["total_successes"], st["total_failures"]) == (1600, 400)


# -- the guard's tags --------------------------------------------------------------------------


def test_guard_tags_the_escaping_exception_with_its_account_and_failure_type(mgr):
    h = mgr.handle(ALICE)
    with pytest.raises(KeyError) as info, h.guard("positions"):
        raise KeyError("missing field")
    assert failure_type_of(info.value) is FailureType.POSITION_ERROR
    assert getattr(info.value, ACCOUNT_TAG) == "user/alice/KRAKEN"
    assert failure_type_of(KeyError("never guarded")) is None


def test_guard_classifies_each_failure_once(mgr, monkeypatch):
    calls = []
    real = handle_module.classify
    monkeypatch.setattr(handle_module, "classify", lambda *a: calls.append(a) or real(*a))
    err = KeyError("x")
    with pytest.raises(KeyError), mgr.handle(ALICE).guard("positions"):
        raise err
    assert calls == [(err, "positions")]
    # Recorded again elsewhere (here: another account), the attached type is reused.
    assert mgr.record_failure("user", "bob", "KRAKEN", err) is FailureType.POSITION_ERROR
    assert len(calls) == 1


def test_the_venues_data_failing_inside_a_call_is_recorded_against_no_account(mgr):
    """A balance whose holding the venue's shared price cannot value: the venue's failure."""
    h = mgr.handle(ALICE)
    with pytest.raises(VenueDataError) as info, h.guard("balance"):
        raise VenueDataError("KRAKEN ticker failed: NetworkFailure: 502", operation="ticker")
    assert failure_type_of(info.value) is None and not hasattr(info.value, ACCOUNT_TAG)
    metrics = mgr.get_account_status(*STRINGS)[1]
    assert metrics["total_failures"] == metrics["total_successes"] == 0
    assert metrics["failure_breakdown"] == {} and metrics["last_error"] is None


def test_an_exception_that_refuses_attributes_is_still_recorded(mgr):
    class Sealed(Exception):
        __slots__ = ()

        def __setattr__(self, name, value):
            raise AttributeError(name)

    with pytest.raises(Sealed) as info, mgr.handle(ALICE).guard("order"):
        raise Sealed("sealed")
    assert failure_type_of(info.value) is None
    assert mgr.get_account_status(*STRINGS)[1]["failure_breakdown"] == {"execution_error": 1}


# -- the clock ----------------------------------------------------------------------------------


@pytest.mark.parametrize("not_a_clock", [time.monotonic, lambda: 0.0, object()])
def test_only_a_clock_object_is_a_clock(not_a_clock):
    with pytest.raises(TypeError, match=r"bot\.clock\.Clock"):
        AccountIsolationManager(clock=not_a_clock)


def test_the_default_clock_is_the_system_clock():
    m = AccountIsolationManager()
    before = SYSTEM_CLOCK.wall()
    m.record_success(*STRINGS)
    seen = datetime.fromisoformat(m.get_account_status(*STRINGS)[1]["last_success_time"])
    assert before - 1 <= seen.timestamp() <= SYSTEM_CLOCK.wall() + 1


def test_reported_times_are_wall_time_and_waits_are_monotonic(mgr, clock):
    h = mgr.handle(ALICE)
    with h.guard("balance"):
        clock.advance(0.25)  # the call takes 250 ms of monotonic time
    m = mgr.get_account_status(*STRINGS)[1]
    assert m["average_operation_time_ms"] == pytest.approx(250.0)
    assert m["last_success_time"] == datetime.fromtimestamp(DEFAULT_WALL + 0.25, UTC).isoformat()
    for _ in range(5):
        h.record_failure(ConnectionError("x"), "balance")
    clock.set_wall(DEFAULT_WALL + 86_400)  # NTP jumps a day: waits do not move
    m = mgr.get_account_status(*STRINGS)[1]
    assert m["retry_in_seconds"] == 300
    assert m["last_failure_time"] == m["last_success_time"]  # as the wall clock read then
    assert mgr.get_isolation_report()["timestamp"] == clock.utc_now().isoformat()


# -- the benchmark runs --------------------------------------------------------------------------


def test_the_benchmark_gives_every_figure_with_its_ratio_to_pybreaker(capsys):
    pytest.importorskip("pybreaker")
    spec = importlib.util.spec_from_file_location(
        "nija_bench_isolation", ROOT / "scripts" / "bench_isolation.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.bench_calls(ops=640, rounds=1)
    for name in ("pair_strings", "pair_handle", "guard_strings", "guard_handle"):
        for threads in ("1_thread", "32_threads"):
            us = figures[f"{name}_us_{threads}"]
            ref = figures[f"pybreaker_us_{threads}"]
            assert us > 0 and ref > 0
            assert figures[f"ratio_{name}_{threads}"] == pytest.approx(us / ref)
    figures |= {"machine": "test", "date": "today", "bytes_per_account_at_10000": 1000.0}
    bench._print_table(figures, 640, 1)
    table = capsys.readouterr().out
    for _, label in bench.ROWS:
        assert label in table
    assert "target (handle gate + record" in table
