"""Two registered accounts on a manager whose fake clock the test moves."""

from __future__ import annotations

import pytest

from bot.isolation.manager import AccountIsolationManager
from nija_testkit.clock import FakeClock

ALICE = ("user", "alice", "KRAKEN")
BOB = ("user", "bob", "KRAKEN")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mgr(clock: FakeClock) -> AccountIsolationManager:
    """A manager with ALICE and BOB registered, on ``clock``."""
    m = AccountIsolationManager(clock=clock)
    m.register_account(*ALICE)
    m.register_account(*BOB)
    return m
