"""Leases on a real PostgreSQL: claims, renewals, expiry and takeover, the fair share, the cap,
the hand-back at stop, and the history a checker replays (``lease_events``)."""

from __future__ import annotations

import threading
import time

import pytest

from bot.cluster import leases, nodes
from bot.cluster.nodes import default_node_id
from tests.cluster.conftest import accounts


def expire(sql, key: str | None = None) -> None:
    """Move leases' expiry into the past, as the server's clock would after the TTL."""
    if key is None:
        sql("UPDATE leases SET expires_at = now() - interval '1 second' WHERE owner IS NOT NULL")
    else:
        sql(
            "UPDATE leases SET expires_at = now() - interval '1 second' WHERE account_key = %s", key
        )


def history(pg, key: str | None = None) -> list[tuple[str, str, int, str | None]]:
    conn = pg.connect_readonly()
    try:
        return [(e.event, e.node_id, e.epoch, e.previous_owner) for e in leases.events(conn, key)]
    finally:
        conn.close()


def test_two_nodes_claiming_at_once_never_hold_the_same_account(pg, sql):
    keys = accounts(40)
    conns = [pg.connect(None, create=False) for _ in range(2)]
    leases.ensure_accounts(conns[0], keys)
    for round_ in range(5):
        barrier = threading.Barrier(2)
        got: dict[str, list[leases.Acquired]] = {}

        def claim(i: int, barrier=barrier, got=got) -> None:
            barrier.wait(5)
            got[f"n{i}"] = leases.claim(conns[i], f"n{i}", keys, [], len(keys), 30.0)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        mine = {n: {a.account_key for a in g} for n, g in got.items()}
        assert not mine["n0"] & mine["n1"]
        assert mine["n0"] | mine["n1"] == set(keys)
        owners = dict(sql("SELECT account_key, owner FROM leases"))
        assert all(owners[k] == n for n, ks in mine.items() for k in ks)
        assert {e for (e,) in sql("SELECT DISTINCT epoch FROM leases")} == {round_ + 1}
        for i, conn in enumerate(conns):
            held = {a.account_key: a.epoch for a in got[f"n{i}"]}
            assert leases.release(conn, f"n{i}", held, "next round") == set(held)
    for conn in conns:
        conn.close()


def test_two_keepers_starting_together_share_the_accounts(node):
    keys = accounts(10)
    a, b = node("a", keys, start=False), node("b", keys, start=False)
    barrier = threading.Barrier(2)

    def start(n) -> None:
        barrier.wait(5)
        n.keeper.start(thread=False)

    threads = [threading.Thread(target=start, args=(n,)) for n in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for _ in range(3):  # whoever took more than its share hands the rest back; the other claims
        for n in (a, b):
            n.hand_back()
            n.keeper.tick()
    assert not a.holds() & b.holds()
    assert len(a.holds()) == len(b.holds()) == 5


def test_a_renewal_moves_the_expiry_and_the_local_deadline_on(node, sql):
    key = "user/u00/PAPER"
    a = node("a", [key], ttl=30.0, lock_delay=5.0)
    fence = a.keeper.lease(key).fence
    assert fence.deadline == 1000.0 + 30.0 - 3.0  # the claim's start + TTL - margin
    ((before,),) = sql("SELECT expires_at FROM leases")
    a.clock.advance(10)
    time.sleep(0.01)
    assert a.keeper.tick()
    ((after,),) = sql("SELECT expires_at FROM leases")
    assert after > before
    assert fence.deadline == 1010.0 + 27.0 and fence.remaining() == pytest.approx(27.0)
    assert a.epoch(key) == 1 and a.lost == []


def test_an_expired_lease_is_taken_over_at_the_next_epoch_and_its_old_owner_lets_go(node, sql):
    key = "user/u00/PAPER"
    a = node("a", [key], ttl=1.0, lock_delay=0.5)
    b = node("b", [key], ttl=1.0, lock_delay=0.5)
    assert a.holds() == {key} and b.holds() == set()
    time.sleep(1.2)  # a renews no more: by the database's clock its lease expires
    b.keeper.tick()
    assert b.holds() == {key} and b.epoch(key) == 2
    held = b.keeper.lease(key)
    assert held.previous_owner == "a" and held.trade_from == held.acquired + 0.5
    assert not held.ready(held.acquired) and held.ready(held.acquired + 0.5)
    # a's own clock has not moved (it was paused, say): its renewal finds the lease b's.
    assert a.keeper.lease(key).fence.lost() is None
    a.keeper.tick()
    assert a.holds() == set() and a.lost == [(key, "lost: now b")]
    assert history(a.keeper.database) == [
        ("claimed", "a", 1, None),
        ("taken_over", "b", 2, "a"),
        ("lost", "a", 1, None),
    ]
    ((ended, at),) = sql(
        "SELECT previous_epoch_ended_at, at FROM lease_events WHERE event = 'taken_over'"
    )
    assert ended <= at  # epoch 1 ended (expired) before epoch 2 began


def test_a_renewal_of_a_lease_expired_but_not_taken_says_renewed_failed(node, sql):
    key = "user/u00/PAPER"
    a = node("a", [key])
    expire(sql)
    a.keeper.tick()
    # Dropped (its workers stop), then claimed again at once at a new epoch, after the delay.
    assert a.epoch(key) == 2 and a.lost and a.lost[0][0] == key
    assert [e[:3] for e in history(a.keeper.database)] == [
        ("claimed", "a", 1),
        ("renewed_failed", "a", 1),
        ("taken_over", "a", 2),
    ]


def test_a_lease_past_its_local_deadline_is_dropped_and_the_history_says_expired(node):
    key = "user/u00/PAPER"
    a = node("a", [key], ttl=30.0)
    fence = a.keeper.lease(key).fence
    a.clock.advance(27.0)  # a pause: the monotonic clock moves on, no renewal happened
    assert fence.lost() is not None and fence.expired
    a.keeper.tick()
    assert a.lost == [(key, "its local deadline passed without a renewal")]
    # Its own name still holds the row: it takes it again at a new epoch, with a new fence.
    assert a.epoch(key) == 2 and a.keeper.lease(key).fence is not fence
    assert not fence.extend(10_000.0)  # a refused fence never holds again
    assert [e[:3] for e in history(a.keeper.database)] == [
        ("claimed", "a", 1),
        ("expired", "a", 1),
        ("taken_over", "a", 2),
    ]


def test_the_fair_share_follows_the_live_nodes_from_two_to_three(node):
    keys = accounts(9)
    a = node("a", keys)
    assert len(a.holds()) == 9 and a.keeper.share == 9
    b = node("b", keys)
    assert b.holds() == set() and b.keeper.share == 5  # nothing free yet
    a.keeper.tick()
    assert len(a.keeper.handing_back()) == 4
    assert a.hand_back()  # the workers stopped, the leases released
    b.keeper.tick()
    assert (len(a.holds()), len(b.holds())) == (5, 4)
    c = node("c", keys)
    assert c.keeper.share == 3
    for n in (a, b):
        n.keeper.tick()
        n.hand_back()
    c.keeper.tick()
    assert [len(n.holds()) for n in (a, b, c)] == [3, 3, 3]
    assert set().union(*(n.holds() for n in (a, b, c))) == set(keys)
    # Handed back, then claimed: released, then claimed at the next epoch, never taken over.
    moved = history(a.keeper.database, sorted(c.holds())[0])
    assert [e[0] for e in moved][-2:] == ["released", "claimed"]


def test_a_node_never_holds_more_than_its_cap(node):
    keys = accounts(6)
    a = node("a", keys, max_accounts=2)
    assert len(a.holds()) == 2 and a.keeper.share == 2
    b = node("b", keys, max_accounts=10)
    assert len(b.holds()) == 3  # its fair share of six over two nodes
    b.keeper.tick()
    a.keeper.tick()
    assert len(a.holds()) == 2 and len(b.holds()) == 3  # one account has no node: the cap says so


def test_stop_revokes_every_fence_and_hands_every_lease_back(node, sql):
    keys = accounts(4)
    a = node("a", keys)
    fences = [h.fence for h in a.keeper.held().values()]
    a.keeper.stop()
    assert all(f.lost() == "node stopping" for f in fences)
    assert sql("SELECT count(*) FROM leases WHERE owner IS NOT NULL") == [(0,)]
    assert sql("SELECT count(*) FROM lease_events WHERE event = 'released'") == [(4,)]
    assert sql("SELECT stopped_at IS NOT NULL FROM nodes WHERE node_id = 'a'") == [(True,)]
    b = node("b", keys)
    assert len(b.holds()) == 4 and all(b.epoch(k) == 2 for k in keys)
    held = b.keeper.lease(keys[0])
    assert held.previous_owner is None  # released: claimed, not taken over; still the delay
    assert held.trade_from == held.acquired + 5.0


def test_a_second_process_under_the_same_name_supersedes_the_first(node):
    keys = accounts(2)
    first = node("same", keys)
    fences = [h.fence for h in first.keeper.held().values()]
    second = node("same", keys)
    assert second.holds() == set(keys)  # its own name's leases, at new epochs
    assert all(second.epoch(k) == 2 for k in keys)
    first.keeper.tick()
    assert first.keeper.superseded and first.holds() == set()
    assert all(f.lost() for f in fences) and {k for k, _ in first.lost} == set(keys)
    second.keeper.tick()
    assert second.holds() == set(keys)


def test_the_nodes_table_shows_who_renews(pg, node, sql):
    a = node("a", accounts(2))
    node("b", accounts(2))
    sql("UPDATE nodes SET last_seen = now() - interval '31 seconds' WHERE node_id = 'b'")
    conn = pg.connect_readonly()
    try:
        rows = {r.node_id: r for r in nodes.nodes(conn)}
    finally:
        conn.close()
    assert rows["a"].renewing and rows["a"].leases == 2
    assert not rows["b"].renewing and rows["b"].leases == 0
    assert a.keeper.tick() and a.keeper.live_nodes == 1  # b no longer counts


def test_the_default_node_id_is_the_host_and_the_pid():
    import os
    import socket

    assert default_node_id() == f"{socket.gethostname().split('.')[0]}-{os.getpid()}"
