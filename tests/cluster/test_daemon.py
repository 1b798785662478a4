"""Two daemons in-process on one PostgreSQL: paper accounts move between them by leases.

Each node is the real ``IndependentBrokerTrader`` with its lease keeper's thread (a 3 s TTL:
renewed every second); the test drives the watchdog ticks. Expiry is the database's clock.
"""

from __future__ import annotations

import json
from functools import partial

import psycopg
from structlog.testing import capture_logs

from bot.daemon.funded import FundedResult
from bot.daemon.wiring import BrokerFactories
from nija_testkit import harness
from tests.daemon.inprocess import Daemon, paper, spec

KEYS = [f"user/{x}/PAPER" for x in "abcd"]
wait_for = partial(harness.wait_for, timeout=20.0, what="condition", interval=0.05)


def node(tmp_path, name: str, url: str, **env: str) -> Daemon:
    settings = {
        "NIJA_DATABASE_URL": url,
        "NIJA_NODE_ID": name,
        "NIJA_LEASE_TTL_SECONDS": "3",
        "NIJA_LEASE_LOCK_DELAY_SECONDS": "0",
        **env,
    }
    (tmp_path / name).mkdir()
    factories = BrokerFactories(venue=paper, trading=paper)
    return Daemon(tmp_path / name, [spec(x) for x in "abcd"], factories, **settings)


def held_in_status(data_dir) -> tuple[str, set[str]] | None:
    """The node id and the accounts whose lease status.json says this node holds."""
    try:
        status = json.loads((data_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return status["node_id"], {k for k, e in status["accounts"].items() if e["lease"]["held"]}


def running(*nodes: Daemon) -> list[set[str]]:
    """Tick each node's watchdog; the accounts each one has a live thread for."""
    out = []
    for d in nodes:
        d.trader.watchdog_tick()
        out.append({k for k, w in d.trader.workers.items() if w.alive()})
    return out


def test_a_second_node_takes_its_share_and_a_stopped_node_hands_its_accounts_over(
    tmp_path, postgres_url
):
    with node(tmp_path, "a", postgres_url) as a:
        wait_for(lambda: running(a) == [set(KEYS)], what="a trading every account")
        with node(tmp_path, "b", postgres_url) as b:
            wait_for(lambda: [len(r) for r in running(a, b)] == [2, 2], what="two accounts each")
            on_a, on_b = running(a, b)
            assert not on_a & on_b
            assert set(a.trader.leases.keeper.held()) == on_a  # each trades what it holds
            # status.json is rewritten every few seconds: it says so at its next writing.
            wait_for(lambda: held_in_status(tmp_path / "b") == ("b", on_b), what="b's status")
        # b stopped (SIGTERM's path): its leases are released at once, and a takes them.
        wait_for(lambda: running(a) == [set(KEYS)], what="a trading every account again")


def test_a_lost_lease_stops_its_worker_at_once_and_is_won_back_at_a_new_epoch(
    tmp_path, postgres_url
):
    with node(tmp_path, "a", postgres_url) as a:
        wait_for(lambda: running(a) == [set(KEYS)], what="a trading every account")
        key = KEYS[0]
        old = a.trader.workers[key]
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE leases SET expires_at = now() - interval '1 second' WHERE account_key = %s",
                (key,),
            )
        with capture_logs() as logs:
            wait_for(lambda: old.stop_event.is_set(), what="the worker told to stop")
            wait_for(
                lambda: running(a) == [set(KEYS)] and a.trader.workers[key] is not old,
                what="a new worker at a new epoch",
            )
        assert a.trader.leases.keeper.lease(key).epoch == 2
        assert not old.alive()
        events = [e["event"] for e in logs if e.get("account") == key]
        assert "lease_lost" in events and "lease_lost_worker_stopped" in events
        assert events.index("lease_lost") < events.index("lease_taken_over")


def test_a_node_trades_no_more_accounts_than_its_cap(tmp_path, postgres_url):
    with node(tmp_path, "a", postgres_url, NIJA_MAX_ACCOUNTS_PER_NODE="1") as a:
        wait_for(lambda: len(running(a)[0]) == 1, what="one account")
        status = a.trader.get_multi_broker_status()
        held = [k for k, e in status["accounts"].items() if e["lease"]["held"]]
        assert len(held) == 1
        idle = [e for k, e in status["accounts"].items() if k not in held]
        assert all(e["thread"] == "not_started" for e in idle)


def test_the_accounts_and_the_lease_keeper_share_a_pool_of_NIJA_DATABASE_POOL_SIZE(
    tmp_path, postgres_url
):
    with node(tmp_path, "a", postgres_url, NIJA_DATABASE_POOL_SIZE="2") as a:
        assert a.trader.db.max_connections == 2  # not one per account
        workers = a.trader.workers
        wait_for(
            lambda: running(a) == [set(KEYS)] and all(workers[k].cycles >= 3 for k in KEYS),
            what="every account cycling",
        )
        assert all(workers[k].last_result.ok for k in KEYS)
        assert a.trader.leases.keeper.last_renewal is not None


def test_a_held_account_whose_funds_check_got_no_answer_is_asked_again_at_the_next_renewal(
    tmp_path, postgres_url
):
    """Run G of the cluster chaos: a node frozen through its funds checks held four accounts
    idle until the five-minute re-check, and no other node could trade them meanwhile."""
    a = node(tmp_path, "a", postgres_url, NIJA_FUNDED_RECHECK_SECONDS="300")
    key = KEYS[0]
    check = a.trader.funded_checks.check
    unanswered: list[str] = []

    def first_times_out(specs, **kwargs):
        for result in check(specs, **kwargs):
            if result.account_key == key and not unanswered:
                unanswered.append(key)
                result = FundedResult(key, False, error="TimeoutError: no answer", timed_out=True)
            yield result

    a.trader.funded_checks.check = first_times_out  # before the node starts
    with a:
        wait_for(lambda: running(a) == [set(KEYS) - {key}], what="the three answered trading")
        assert unanswered == [key] and a.trader.funded[key].timed_out
        a.clock.advance(0.5)  # less than the renewal interval (1 s with a 3 s TTL): not yet
        assert running(a) == [set(KEYS) - {key}]
        a.clock.advance(0.6)
        wait_for(lambda: running(a) == [set(KEYS)], what="asked again and trading")
        assert a.trader.funded[key].funded
