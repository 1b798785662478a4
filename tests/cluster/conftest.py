"""Lease tests: a prepared PostgreSQL store per test, and keepers that tests tick by hand.

Expiry is the database's clock: a test that needs a lease expired either waits a short
TTL (1 s) or moves the row's ``expires_at`` into the past, as the server's clock would.
Each node's own clock (its fences' local deadlines) is a ``FakeClock``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from bot.cluster.keeper import LeaseKeeper, LeaseTimes
from bot.cluster.nodes import NodeIdentity
from bot.store.pg import PostgresDatabase, Retry
from nija_testkit.clock import FakeClock


@pytest.fixture
def pg(postgres_url: str) -> Iterator[PostgresDatabase]:
    """The paper store on a fresh PostgreSQL schema, prepared (as the daemon does at start)."""
    db = PostgresDatabase(
        postgres_url, "paper", retry=Retry(attempts=2, first_delay=0.01), connect_timeout_seconds=2
    )
    db.prepare()
    yield db
    db.close()


@pytest.fixture
def sql(postgres_url: str) -> Callable[..., list[tuple]]:
    """``sql(statement, *params)``: run one statement on its own connection; its rows."""

    def run(statement: str, *params: object) -> list[tuple]:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    return run


class Node:
    """One node's keeper and clock, ticked by the test."""

    def __init__(self, keeper: LeaseKeeper, clock: FakeClock, lost: list[tuple[str, str]]):
        self.keeper = keeper
        self.clock = clock
        self.lost = lost  # (account, why) as on_lost was told

    @property
    def name(self) -> str:
        return self.keeper.node.node_id

    def holds(self) -> set[str]:
        return set(self.keeper.held())

    def epoch(self, key: str) -> int:
        held = self.keeper.lease(key)
        assert held is not None, f"{self.name} does not hold {key}"
        return held.epoch

    def hand_back(self) -> list[str]:
        """As the daemon does once the workers stopped: release what the keeper hands back."""
        keys = self.keeper.handing_back()
        for key in keys:
            self.keeper.request_release(key, "worker stopped")
        self.keeper.tick()
        return keys


@pytest.fixture
def node(pg: PostgresDatabase) -> Iterator[Callable[..., Node]]:
    """``node("n1", accounts, ttl=30, lock_delay=5, max_accounts=None)``: a started keeper
    (its first tick done, no thread); stopped after the test unless the test stopped it."""
    made: list[LeaseKeeper] = []

    def make(
        name: str,
        accounts: list[str],
        *,
        ttl: float = 30.0,
        lock_delay: float = 5.0,
        max_accounts: int | None = None,
        start: bool = True,
    ) -> Node:
        clock = FakeClock()
        lost: list[tuple[str, str]] = []
        keeper = LeaseKeeper(
            pg,
            NodeIdentity.this_process(name),
            accounts,
            times=LeaseTimes(ttl, lock_delay),
            max_accounts=max_accounts,
            clock=clock,
            on_lost=lambda key, why: lost.append((key, why)),
        )
        made.append(keeper)
        if start:
            keeper.start(thread=False)
        return Node(keeper, clock, lost)

    yield make
    for keeper in made:
        keeper.stop()


def accounts(n: int) -> list[str]:
    """``n`` account keys."""
    return [f"user/u{i:02d}/PAPER" for i in range(n)]
