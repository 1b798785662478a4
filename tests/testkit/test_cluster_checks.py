"""The cluster chaos run's measurements find what they claim to (nija_testkit/reliability/
cluster_checks.py): synthetic lease histories and log lines, no database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from nija_testkit.harness import Event
from nija_testkit.reliability.cluster_checks import (
    RECONCILE_SECONDS,
    FaultRecord,
    StoredOrder,
    gaps,
    held_through,
    moves,
    outcomes,
    send_window,
    unclean_removals,
    zombie_sends,
)
from nija_testkit.reliability.cluster_nodes import NodeLine, unbalanced
from nija_testkit.reliability.lease_audit import SentOrder, Tenure

ACCOUNT = "user/a01/ALPACA"
T0 = 1_800_000_000.0
TIMES = {"ttl": 3.0, "lock_delay": 1.0, "call_timeout": 5.0}


def line(node: str, wall: float, event: str, account: str = ACCOUNT, run: int = 1) -> NodeLine:
    return NodeLine(node, run, Event(datetime.fromtimestamp(wall, UTC), "info", account, event))


def tenure(epoch: int, node: str, start: float, end: float | None) -> Tenure:
    return Tenure(ACCOUNT, epoch, node, T0 + start, None if end is None else T0 + end)


def history(*items: Tenure) -> dict[tuple[str, int], Tenure]:
    return {(t.account_key, t.epoch): t for t in items}


def test_a_gap_runs_from_the_end_of_one_trading_tenure_to_the_next_owner_s_reconciliation():
    held = history(tenure(1, "n1", 0, 10), tenure(2, "n2", 11, None))
    lines = [line("n1", T0 + 0.5, "reconciled"), line("n2", T0 + 13.5, "reconciled")]
    [gap] = gaps(held, set(), lines, outages=[], **TIMES)
    assert (gap.how, gap.node, gap.waited) == ("expired", "n2", False)
    assert gap.seconds == 3.5
    assert gap.bound == 3.0 + 1.0 + RECONCILE_SECONDS
    released = gaps(held, {(ACCOUNT, 1)}, lines, outages=[], **TIMES)
    assert released[0].how == "released"


def test_a_tenure_that_never_traded_is_skipped_and_the_gap_runs_on_to_the_one_that_did():
    # n2 claimed the account and handed it back before its lock delay ended; n3 trades it.
    held = history(tenure(1, "n1", 0, 10), tenure(2, "n2", 11, 11.5), tenure(3, "n3", 12, None))
    lines = [
        line("n1", T0 + 0.5, "reconciled"),
        line("n2", T0 + 30, "reconciled"),  # after its tenure: a later one of n2's, not this
        line("n3", T0 + 40, "reconciled"),
    ]
    [gap] = gaps(held, set(), lines, outages=[], **TIMES)
    assert (gap.node, gap.seconds) == ("n3", 30.0)
    assert gap.seconds > gap.bound  # 30 s untraded: reported as too slow


def test_the_bound_grows_by_a_proof_of_absence_and_by_a_database_outage_inside_the_gap():
    held = history(tenure(1, "n1", 0, 10), tenure(2, "n2", 11, None))
    lines = [
        line("n1", T0 + 0.5, "reconciled"),
        line("n2", T0 + 13, "reconcile_waiting"),
        line("n2", T0 + 40, "reconciled"),
    ]
    [gap] = gaps(held, set(), lines, outages=[(T0 + 9, T0 + 15)], **TIMES)
    proof = 2 * 2.0 + 2 * 5.0  # Alpaca: two look-ups 2 s apart, each bounded by the timeout
    assert gap.waited
    assert gap.bound == 3.0 + 1.0 + RECONCILE_SECONDS + proof + (15 - 9 + 1.0)


def test_a_wait_on_an_order_by_a_tenure_that_ended_inside_the_gap_counts_for_its_bound():
    # n2 waited on n1's order and lost the lease while waiting; n3 finds the order settled.
    held = history(tenure(1, "n1", 0, 10), tenure(2, "n2", 11, 20), tenure(3, "n3", 21, None))
    lines = [
        line("n1", T0 + 0.5, "reconciled"),
        line("n2", T0 + 13, "reconcile_waiting"),
        line("n3", T0 + 22.5, "reconciled"),
    ]
    [gap] = gaps(held, set(), lines, outages=[], **TIMES)
    assert (gap.node, gap.waited) == ("n3", True)
    assert gap.bound == 3.0 + 1.0 + RECONCILE_SECONDS + 2 * 2.0 + 2 * 5.0


def test_a_move_counts_only_another_process_s_reconciliation_after_the_signal():
    fault = FaultRecord(0, "kill", node="n1", run=1, at=T0 + 10, held={ACCOUNT: 1, "x/y/KRAKEN": 1})
    lines = [
        line("n1", T0 + 5, "reconciled"),  # before the kill
        line("n2", T0 + 14, "reconciled"),
        line("n1", T0 + 20, "reconciled", account="x/y/KRAKEN", run=2),  # n1 restarted: moved
    ]
    found = {m.account: (m.seconds, m.by) for m in moves([fault], lines)}
    assert found == {ACCOUNT: (4.0, "n2"), "x/y/KRAKEN": (10.0, "n1")}
    frozen = FaultRecord(1, "stop_in_order", node="n1", run=2, at=T0 + 30, held={ACCOUNT: 2})
    zombie_only = [line("n1", T0 + 40, "reconciled", run=2)]  # the zombie itself, woken
    assert [(m.seconds, m.returned) for m in moves([frozen], zombie_only)] == [(None, False)]


def test_an_account_taken_over_then_won_back_by_the_woken_node_is_returned_not_missed():
    frozen = FaultRecord(
        0, "stop_in_order", node="n1", run=2, at=T0 + 30, back_at=T0 + 39, held={ACCOUNT: 2}
    )
    # n2 took it over while n1 was frozen, handed it back (fair share) before it reconciled;
    # the woken n1 claimed it again and reconciled.
    held = history(tenure(3, "n2", 34, 40), tenure(4, "n1", 41, None))
    woken = [line("n1", T0 + 52, "reconciled", run=2)]
    [move] = moves([frozen], woken, held)
    assert (move.seconds, move.by, move.returned) == (None, "n1", True)
    # Not taken over while frozen: the woken node's reconciliation is no move and no return.
    [kept] = moves([frozen], woken, history(tenure(4, "n1", 41, None)))
    assert (kept.seconds, kept.returned) == (None, False)


def test_a_zombie_send_is_an_order_of_its_frozen_epoch_reaching_the_venue_after_it_woke():
    stop = FaultRecord(0, "stop", node="n1", at=T0, back_at=T0 + 8, held={ACCOUNT: 4})
    stored = {
        (ACCOUNT, "old"): StoredOrder("n1", 4, "filled"),
        (ACCOUNT, "new"): StoredOrder("n1", 6, "filled"),
        (ACCOUNT, "b"): StoredOrder("n2", 5, "filled"),
    }
    sent = [
        SentOrder(ACCOUNT, "old", T0 - 0.5),  # in flight before the stop: fine
        SentOrder(ACCOUNT, "b", T0 + 5),  # the new owner's own order
        SentOrder(ACCOUNT, "new", T0 + 20),  # the woken node's next tenure
    ]
    assert zombie_sends([stop], sent, stored) == []
    late = [*sent, SentOrder(ACCOUNT, "old", T0 + 8.3)]
    [found] = zombie_sends([stop], late, stored)
    assert "epoch 4" in found and "0.30s after it woke" in found


def test_a_removal_is_clean_only_with_exit_0_and_every_lease_handed_back():
    ok = FaultRecord(0, "remove", node="n2", at=T0, held={ACCOUNT: 3}, exit_code=0)
    assert unclean_removals([ok], [(ACCOUNT, "n2", T0 + 0.4)]) == []
    problems = unclean_removals(
        [FaultRecord(1, "remove", node="n3", at=T0, held={ACCOUNT: 2}, exit_code=None)], []
    )
    assert problems == [
        "n3: exit status None after SIGTERM",
        f"n3: 1 lease(s) not handed back, e.g. {ACCOUNT}",
    ]


def test_balance_is_within_one_account_of_fair():
    assert unbalanced(Counter(n1=20, n2=20, n3=20), ["n1", "n2", "n3"], 60) == []
    assert unbalanced(Counter(n1=3, n2=3, n3=3, n4=3), ["n1", "n2", "n3", "n4", "n5"], 12) == [
        "n5 holds 0 (fair 2.4)"
    ]


def test_an_in_order_fault_s_order_is_followed_to_its_end():
    fault = FaultRecord(0, "kill_in_order", node="n1", account=ACCOUNT, client_order_id="c1")
    other = FaultRecord(1, "stop")  # no order caught: nothing to follow
    stored = {(ACCOUNT, "c1"): StoredOrder("n1", 7, "filled")}
    outcomes([fault, other], [SentOrder(ACCOUNT, "c1", T0)], stored)
    assert fault.outcome == "filled, stored by n1/7, reached the venue 1x"
    assert other.outcome is None


def test_an_account_a_frozen_node_kept_through_its_freeze_is_named():
    stop = FaultRecord(0, "stop", node="n1", at=T0, back_at=T0 + 8, held={ACCOUNT: 1, "k": 1})
    taken = {
        (ACCOUNT, 2): Tenure(ACCOUNT, 2, "n2", T0 + 4, None),  # taken over while n1 was frozen
        ("k", 2): Tenure("k", 2, "n1", T0 + 9, None),  # n1 took it back itself once awake
    }
    assert held_through([stop], taken) == ["fault 1 stop n1: k never taken over"]


def test_the_send_window_runs_from_the_logged_send_to_the_first_arrival():
    def logged(wall: float, event: str) -> NodeLine:
        at = datetime.fromtimestamp(wall, UTC)
        return NodeLine("n1", 1, Event(at, "info", ACCOUNT, event, {"client_order_id": "c1"}))

    lines = [logged(T0, "order_sending"), logged(T0 + 5, "cycle")]
    sent = [SentOrder(ACCOUNT, "c1", T0 + 0.25), SentOrder(ACCOUNT, "c1", T0 + 9)]
    assert send_window(lines, sent) == [0.25]
    assert send_window(lines, []) == []
