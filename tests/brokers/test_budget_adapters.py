"""Every adapter spends the right request budget on every HTTP request, through the real SDK
against the emulator; and a throttle wait never counts against a call's timeout."""

from __future__ import annotations

import pytest

from bot.brokers.budget import Budgets, RequestBudget
from nija_testkit.clock import FakeClock
from nija_testkit.emulator.server import Fault

# Per route, the documented cost of one request on the per-IP budget and on the per-key one,
# in each venue's registry units (docs/VENUES.md, "## Request budgets").
COSTS: dict[str, dict[str, tuple[float, float]]] = {
    # Public: one request each; private: counter points (an order: none, its own limiter).
    "KRAKEN": {
        "markets": (1, 0),
        "assets": (1, 0),
        "candles": (1, 0),
        "ticker": (1, 0),
        "balance": (0, 1),
        "create_order": (0, 0),
        "fetch_order": (0, 1),
        "open_orders": (0, 1),
        "closed_orders": (0, 1),
    },
    # REQUEST_WEIGHT per IP on every request (signed ones too); ORDERS per account.
    "BINANCE": {
        "markets": (20, 0),
        "candles": (2, 0),
        "ticker": (2, 0),
        "balance": (20, 0),
        "create_order": (1, 1),
        "fetch_order": (4, 0),
        "my_trades": (20, 0),
    },
    # Units of one request to a 20-per-2-s endpoint.
    "OKX": {
        "markets": (1, 0),
        "candles": (0.5, 0),
        "ticker": (1, 0),
        "balance": (0, 2),
        "funding_balance": (0, 5 / 3),
        "create_order": (0, 1 / 3),
        "fetch_order": (0, 1 / 3),
    },
}


def roomy(clock: FakeClock | None = None) -> Budgets:
    """Budgets too large to make anything wait: they only count."""
    clock = clock or FakeClock()
    return Budgets(
        public=RequestBudget(1e6, 1e6, clock=clock), private=RequestBudget(1e6, 1e6, clock=clock)
    )


def exercise(handle, budgets: Budgets) -> None:
    """Balance, candles, a ticker, an order and its look-up: one account's usual calls."""
    broker = handle.kind.adapter(handle.spec(), budgets=budgets)
    handle.built.append(broker)
    symbol = handle.kind.symbols[0]
    broker.fetch_balance()
    broker.fetch_candles(symbol, "5m", 20)
    broker.fetch_ticker(symbol)
    request = handle.order_request()
    broker.place_order(request)
    assert broker.fetch_order(request.client_order_id, symbol) is not None


@pytest.mark.parametrize("name", sorted(COSTS))
def test_ccxt_requests_spend_their_documented_cost_per_route(venue_handle, name):
    handle = venue_handle(name)
    budgets = roomy()
    exercise(handle, budgets)
    sent = handle.server.requests
    assert sent and all(r.route in COSTS[name] for r in sent), {r.route for r in sent}
    on_ip = sum(COSTS[name][r.route][0] for r in sent)
    on_key = sum(COSTS[name][r.route][1] for r in sent)
    assert budgets.public is not None and budgets.private is not None
    assert budgets.public.spent == pytest.approx(on_ip)
    assert budgets.private.spent == pytest.approx(on_key)
    # One acquisition per request that costs anything on that side.
    assert budgets.public.acquired == sum(1 for r in sent if COSTS[name][r.route][0])
    assert budgets.private.acquired == sum(1 for r in sent if COSTS[name][r.route][1])


@pytest.mark.parametrize("name", ["COINBASE", "ALPACA"])
def test_sdk_adapters_spend_the_keys_budget_once_per_request(venue_handle, name):
    handle = venue_handle(name)
    budgets = roomy()
    exercise(handle, budgets)
    sent = handle.server.requests
    assert budgets.public is not None and budgets.private is not None
    # Their endpoints are all signed (Alpaca's market data too): the key's budget only.
    assert len(sent) >= 5 and budgets.private.acquired == len(sent)
    assert budgets.public.acquired == 0


def test_a_budget_wait_longer_than_the_timeout_is_not_a_timeout(venue_handle):
    """The key's budget makes the balance request wait 30 s (on the clock the adapter's
    deadline is kept on) against a 1 s timeout; the venue answers in 0.3 s: it succeeds."""
    kraken = venue_handle("KRAKEN")
    clock = FakeClock()
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    key = RequestBudget(1 / 30, 1.0, clock=clock, wait=wait)
    key.acquire()  # spent: the next private request waits 30 s
    budgets = Budgets(public=RequestBudget(1e6, 1e6, clock=clock), private=key)
    broker = kraken.kind.adapter(kraken.spec(timeout_seconds=1.0), clock=clock, budgets=budgets)
    kraken.built.append(broker)
    kraken.server.inject("balance", Fault("latency", seconds=0.3))
    balance = broker.fetch_balance()
    assert balance.usd_cash == pytest.approx(10_000.0)
    assert waits == pytest.approx([30.0]) and budgets.waited_seconds == pytest.approx(30.0)
    assert len(kraken.server.requests_to("balance")) == 1
