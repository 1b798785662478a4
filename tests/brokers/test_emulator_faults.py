"""The emulator's own fault machinery: counts, wildcards, per-account faults, act-then-fail."""

from __future__ import annotations

import dataclasses

import pytest
import requests

from bot.model import Credentials
from nija_testkit.emulator.server import Fault
from nija_testkit.emulator.venues import VenueHandle


@pytest.fixture
def alpaca(venue_handle) -> VenueHandle:
    """The run's Alpaca emulator, fresh (tests/conftest.py)."""
    return venue_handle("ALPACA")


def test_a_fault_for_one_api_key_leaves_the_other_accounts_alone(alpaca):
    alpaca.reset()
    other = Credentials("FAKE-ALPACA-KEY-OTHER-02", "FAKE-ALPACA-SECRET-OTHER-02")
    alpaca.venue.add_account(other.api_key, other.api_secret, {"USD": 500.0})
    alpaca.server.inject("balance", Fault("status", 500, api_key=other.api_key))
    mine = alpaca.make_broker()
    theirs = alpaca.make_broker(credentials=other)
    assert mine.fetch_balance().usd_cash > 0
    with pytest.raises(Exception, match="500"):
        theirs.fetch_balance()
    assert mine.fetch_balance().usd_cash > 0  # still fine: the fault stays on the other account


def test_times_counts_down_and_wildcards_apply_to_every_route(alpaca):
    alpaca.reset()
    alpaca.server.inject("*", Fault("status", 503, times=2))
    broker = alpaca.make_broker()
    for _ in range(2):
        with pytest.raises(Exception, match="503"):
            broker.fetch_balance()
    assert broker.fetch_balance().usd_cash > 0


def test_an_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


def test_unrouted_paths_are_a_visible_404(alpaca):
    alpaca.reset()
    assert requests.get(alpaca.server.url + "/nowhere", timeout=5).status_code == 404
    assert dataclasses.asdict(Fault("drop"))["after"] is False
