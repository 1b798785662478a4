"""Property test: random gates, outcomes and clock advances over several accounts.

Every event is applied twice: to one manager that holds all accounts, and to a
private manager per account that sees only that account's events. Isolation means
the two always agree about every account. Where a rule can, the shared manager is
driven through the accounts' handles (the fast path) and the private ones through the
three-string API, so the two paths must agree as well.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bot.errors import InsufficientFunds, OrderRejected
from bot.isolation.manager import (
    AccountBlockedError,
    AccountIsolationManager,
    CircuitBreakerConfig,
    FailureType,
)
from bot.model import AccountRef
from nija_testkit.clock import FakeClock

ACCOUNTS = [("user", "a", "KRAKEN"), ("user", "b", "KRAKEN"), ("platform", "platform", "OKX")]
CONFIG = CircuitBreakerConfig(
    failure_threshold=3,
    success_threshold=2,
    timeout_seconds=10,
    half_open_max_calls=2,
    backoff_multiplier=2,
    max_timeout_seconds=40,
    failing_timeout_seconds=25,
)
COMPARED = (
    "status",
    "circuit_state",
    "consecutive_failures",
    "consecutive_successes",
    "total_failures",
    "total_successes",
    "quarantine_count",
    "failure_breakdown",
    "retry_in_seconds",
)

accounts = st.sampled_from(range(len(ACCOUNTS)))
failure_types = st.sampled_from(list(FailureType))
operations = st.sampled_from([None, "balance", "order", "strategy"])
# Makers of fresh errors: a network error, venue refusals, an unknown bug.
errors = st.sampled_from(
    [
        lambda: ConnectionError("reset"),
        lambda: InsufficientFunds("no funds"),
        lambda: OrderRejected("below the minimum"),
        lambda: KeyError("field"),
    ]
)


class Boom(Exception):
    """Raised inside a guarded block."""


class IsolationMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.clock = FakeClock()
        self.shared = AccountIsolationManager(CONFIG, clock=self.clock)
        self.solo = [AccountIsolationManager(CONFIG, clock=self.clock) for _ in ACCOUNTS]
        for acct, solo in zip(ACCOUNTS, self.solo, strict=True):
            self.shared.register_account(*acct)
            solo.register_account(*acct)
        self.handles = [self.shared.handle(AccountRef(*acct)) for acct in ACCOUNTS]
        self.events = [0] * len(ACCOUNTS)

    @rule(i=accounts)
    def gate(self, i: int) -> None:
        got = self.shared.can_execute_operation(*ACCOUNTS[i])
        assert got == self.solo[i].can_execute_operation(*ACCOUNTS[i])

    @rule(i=accounts, n=st.integers(2, 4))
    def gate_burst(self, i: int, n: int) -> None:
        """Several calls start before any outcome is recorded."""
        for _ in range(n):
            self.gate(i)

    @rule(i=accounts, ms=st.floats(0, 50))
    def success(self, i: int, ms: float) -> None:
        self.shared.record_success(*ACCOUNTS[i], ms)
        self.solo[i].record_success(*ACCOUNTS[i], ms)
        self.events[i] += 1

    @rule(i=accounts, ft=failure_types)
    def failure(self, i: int, ft: FailureType) -> None:
        error = ConnectionError("injected")
        self.shared.record_failure(*ACCOUNTS[i], error, ft)
        self.solo[i].record_failure(*ACCOUNTS[i], error, ft)
        self.events[i] += 1

    @rule(i=accounts, op=operations, make=errors)
    def classified_failure(self, i: int, op: str | None, make) -> None:
        """A failure typed by the manager (and weighed by the policy), through both paths."""
        got = self.handles[i].record_failure(make(), op)
        assert got is self.solo[i].record_failure(*ACCOUNTS[i], make(), operation=op)
        self.events[i] += 1

    @rule(i=accounts, op=operations, ms=st.floats(0, 50))
    def success_of(self, i: int, op: str | None, ms: float) -> None:
        """A success that answers the failures of its own operation."""
        self.handles[i].record_success(ms, op)
        self.solo[i].handle(AccountRef(*ACCOUNTS[i])).record_success(ms, op)
        self.events[i] += 1

    @rule(i=accounts, op=st.sampled_from(["balance", "order", "strategy"]), fails=st.booleans())
    def guarded(self, i: int, op: str, fails: bool) -> None:
        """One guarded call: the handle's guard and the three-string guard must agree."""
        outcomes = []
        for guard in (self.handles[i].guard(op), self.solo[i].guard(*ACCOUNTS[i], op)):
            try:
                with guard:
                    if fails:
                        raise Boom(op)
                outcomes.append("ok")
            except AccountBlockedError as blocked:
                outcomes.append(("blocked", blocked.reason, blocked.retry_in_seconds))
            except Boom:
                outcomes.append("failed")
        assert outcomes[0] == outcomes[1]
        if outcomes[0] in ("ok", "failed"):  # a refused gate records nothing
            self.events[i] += 1

    @rule(dt=st.sampled_from([0.5, 1, 5, 10, 25, 40]))
    def advance(self, dt: float) -> None:
        self.clock.advance(dt)

    @invariant()
    def each_account_depends_only_on_its_own_events(self) -> None:
        for i, acct in enumerate(ACCOUNTS):
            mine = self.shared.get_account_status(*acct)[1]
            alone = self.solo[i].get_account_status(*acct)[1]
            assert {k: mine[k] for k in COMPARED} == {k: alone[k] for k in COMPARED}

    @invariant()
    def a_healthy_account_owes_no_failure_and_its_circuit_follows_its_status(self) -> None:
        for m in self.shared.get_all_account_statuses().values():
            if m["status"] == "healthy":
                assert m["consecutive_failures"] == 0
            circuit = {"healthy": "closed", "degraded": "closed", "recovering": "half_open"}
            assert m["circuit_state"] == circuit.get(m["status"], "open")

    @invariant()
    def trials_in_flight_never_exceed_the_limit(self) -> None:
        for acct in self.shared._accounts.values():
            assert len(acct.circuit.trials) <= CONFIG.half_open_max_calls

    @invariant()
    def counters_add_up(self) -> None:
        report = self.shared.get_isolation_report()
        statuses = self.shared.get_all_account_statuses()
        for i, acct in enumerate(ACCOUNTS):
            m = statuses["/".join((acct[0], acct[1], acct[2]))]
            assert m["total_failures"] + m["total_successes"] == self.events[i]
            assert sum(m["failure_breakdown"].values()) == m["total_failures"]
            assert m["circuit_open"] == (m["circuit_state"] != "closed")
            assert (m["retry_in_seconds"] is None) == (m["circuit_state"] != "open")
        assert report["total_accounts"] == len(ACCOUNTS)
        assert report["total_failures_across_all_accounts"] == sum(
            m["total_failures"] for m in statuses.values()
        )
        assert sum(
            report[f"{s}_accounts"]
            for s in ("healthy", "degraded", "failing", "quarantined", "recovering")
        ) == len(ACCOUNTS)
        assert report["isolation_guarantee"] == "ACTIVE"


IsolationMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None
)
TestIsolationProperties = IsolationMachine.TestCase
