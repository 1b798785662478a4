"""nija_testkit.emulator.venues.VenuePool: shared servers, but nothing passes between takers."""

from __future__ import annotations

import requests

from nija_testkit.emulator.core import Market
from nija_testkit.emulator.server import Fault


def test_each_taker_gets_a_new_empty_venue_on_the_same_server(venue_pool):
    first = venue_pool.server("KRAKEN")
    first.venue.add_account("FAKE-KEY", "FAKE-SECRET")
    first.inject("*", Fault("status", 500))
    assert requests.get(first.url + "/0/public/Time", timeout=5).status_code == 500
    old_venue, market = first.venue, Market()

    second = venue_pool.server("kraken", market)
    assert second is first  # one server per venue for the whole run
    assert second.venue is not old_venue and second.venue.market is market
    assert second.venue.accounts == {} and second.requests == []
    assert requests.get(second.url + "/0/public/Time", timeout=5).status_code == 200


def test_a_handle_is_reset_to_its_one_funded_account(venue_pool):
    handle = venue_pool.handle("ALPACA")
    handle.ledger.balances["USD"] = 1.0
    handle.server.inject("balance", Fault("drop"))
    handle = venue_pool.handle("ALPACA")
    assert list(handle.venue.accounts) == [handle.credentials.api_key]
    assert handle.make_broker().fetch_balance().usd_cash == 10_000.0
