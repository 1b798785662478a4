"""The emulator's own fault machinery: counts, wildcards, per-account faults, act-then-fail."""

from __future__ import annotations

import dataclasses

import pytest
import requests

from bot.model import Credentials
from nija_testkit.emulator.server import ECHO_HEADER, Fault
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


@pytest.mark.parametrize("where", ["json", "html", "header"])
def test_echo_key_quotes_the_callers_api_key_where_asked(alpaca, where):
    alpaca.reset()
    alpaca.server.inject("balance", Fault("echo_key", where=where))
    creds = alpaca.credentials
    auth = {"APCA-API-KEY-ID": creds.api_key, "APCA-API-SECRET-KEY": creds.api_secret}
    resp = requests.get(alpaca.server.url + "/v2/account", headers=auth, timeout=5)
    assert resp.status_code == 401
    assert alpaca.server.echoed == [creds.api_key]
    if where == "json":  # the venue's own error body, its message quoting the key
        assert resp.json() == {
            "code": 40110000,
            "message": f"request is not authorized (API key {creds.api_key})",
        }
    elif where == "html":
        assert resp.headers["Content-Type"] == "text/html"
        assert f"Invalid API key {creds.api_key}" in resp.text
    else:
        assert resp.headers[ECHO_HEADER] == creds.api_key
        assert creds.api_key not in resp.text
    with pytest.raises(ValueError, match="unknown echo place"):
        Fault("echo_key", where="footer")


def test_unrouted_paths_are_a_visible_404(alpaca):
    alpaca.reset()
    assert requests.get(alpaca.server.url + "/nowhere", timeout=5).status_code == 404
    assert dataclasses.asdict(Fault("drop"))["after"] is False
