"""``Broker.fetch_status``: each venue's public status check, through ccxt over real HTTP.

Kraken, Binance and OKX answer their status check in the emulator in the shapes their
documentation gives (docs/VENUES.md, "## Venue health"); Coinbase and Alpaca have none, and
their adapters say so without sending anything.
"""

from __future__ import annotations

import pytest

from bot.brokers.ccxt.status import venue_status
from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.errors import BadResponse, BrokerError, NetworkFailure
from bot.isolation.policy import is_outage
from bot.model import VenueCondition
from nija_testkit.emulator.server import Fault

OK, DOWN = VenueCondition.OK, VenueCondition.MAINTENANCE
CANCEL, POST = VenueCondition.CANCEL_ONLY, VenueCondition.POST_ONLY

# What each venue's check says for each condition the emulator is set to: Binance has no
# cancel-only or post-only answer (its maintenance flag is all it says); OKX's pre-open
# phase is read as cancel-only.
EXPECTED = {
    "KRAKEN": {"ok": OK, "maintenance": DOWN, "cancel_only": CANCEL, "post_only": POST},
    "BINANCE": {"ok": OK, "maintenance": DOWN, "cancel_only": DOWN, "post_only": DOWN},
    "OKX": {"ok": OK, "maintenance": DOWN, "cancel_only": CANCEL, "post_only": CANCEL},
}


@pytest.mark.parametrize("broker", sorted(EXPECTED))
def test_the_status_check_is_one_public_request_read_in_the_venues_shape(venue_handle, broker):
    venue = venue_handle(broker)
    adapter = venue.make_broker()
    assert adapter.has_status_check
    for condition, expected in EXPECTED[broker].items():
        venue.venue.set_status(condition)
        venue.server.requests.clear()
        status = adapter.fetch_status()
        assert status.condition is expected, (broker, condition, status)
        assert status.message
        routes = [r.route for r in venue.server.requests]
        assert routes == ["system_status"], routes  # no markets, no private call


@pytest.mark.parametrize("broker", sorted(EXPECTED))
def test_an_unanswered_status_check_is_an_outage_failure(venue_handle, broker):
    venue = venue_handle(broker)
    venue.server.inject("system_status", Fault("status", 503))
    with pytest.raises(BrokerError) as raised:  # Binance's 5xx body is no NetworkFailure
        venue.make_broker().fetch_status()
    assert is_outage(raised.value)
    venue.server.clear_faults()
    venue.server.inject("system_status", Fault("drop"))
    with pytest.raises(NetworkFailure):
        venue.make_broker().fetch_status()


@pytest.mark.parametrize("broker", ["COINBASE", "ALPACA"])
def test_venues_without_a_status_check_say_so_without_a_request(venue_handle, broker):
    venue = venue_handle(broker)
    adapter = venue.make_broker()
    assert not adapter.has_status_check
    status = adapter.fetch_status()
    assert status.condition is VenueCondition.UNKNOWN
    assert "no public status check" in status.message
    assert venue.server.requests == []


def test_a_paper_account_asks_its_market_datas_venue(venue_handle):
    venue = venue_handle("KRAKEN")
    venue.venue.set_status("cancel_only")
    paper = PaperBroker(venue.spec(), venue.make_broker())
    assert paper.has_status_check
    assert paper.fetch_status().condition is CANCEL
    synthetic = PaperBroker(venue.spec(), SyntheticMarket(seed=1))
    assert not synthetic.has_status_check
    assert synthetic.fetch_status().condition is VenueCondition.UNKNOWN


# -- the answers as the venues document them ------------------------------------------------
def _okx_event(state: str, service: str, env: str = "1") -> dict:
    return {"title": "Upgrade", "state": state, "serviceType": service, "begin": "1", "end": "2",
            "env": env}  # fmt: skip


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], OK),
        ([_okx_event("scheduled", "5"), _okx_event("completed", "5")], OK),
        ([_okx_event("ongoing", "0")], OK),  # a WebSocket upgrade: REST trading is unaffected
        ([_okx_event("ongoing", "5"), _okx_event("scheduled", "5")], DOWN),  # order ignored
        ([_okx_event("pre_open", "1")], CANCEL),
        ([_okx_event("ongoing", "10"), _okx_event("ongoing", "11")], OK),  # spread, copy trading
        ([_okx_event("ongoing", "5", env="2")], OK),  # demo trading's maintenance
        ([_okx_event("ongoing", "9")], DOWN),  # trading, in batches of products: maybe NIJA's
    ],
)
def test_okx_events_are_read_by_state_and_service(events, expected):
    answer = {"code": "0", "msg": "", "data": events}
    assert venue_status("OKX", answer).condition is expected


def test_kraken_limit_only_takes_no_market_orders():
    answer = {"error": [], "result": {"status": "limit_only", "timestamp": "2024-07-22T16:34:44Z"}}
    assert venue_status("KRAKEN", answer).condition is POST


@pytest.mark.parametrize(
    ("venue", "answer"),
    [("KRAKEN", {"error": [], "result": {}}), ("BINANCE", {"msg": "?"}), ("OKX", {"data": {}})],
)
def test_an_answer_without_the_documented_fields_is_a_bad_response(venue, answer):
    with pytest.raises(BadResponse):
        venue_status(venue, answer)
