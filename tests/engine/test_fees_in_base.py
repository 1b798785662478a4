"""Round trips on a venue that takes a buy's fee in the coin bought (Binance, OKX), and on all five.

The real AccountTrader trades through the paper broker with ``FeeCurrency.RECEIVED`` and
Kraken-style repeated client ids (unique among open orders only), over the Kraken
emulator's market data through the real SDK, with Binance-like market rules for BTC/USD
(lot step 0.001, minimum 0.001, minimum notional 5): the venue rules the paper broker
enforces as a venue would. The same round trips run live through each venue's real SDK
against its faithful emulator (``live_round_trips``): Binance and OKX take the fee in the
coin bought, Kraken and Coinbase in the quote, Alpaca (stocks) none.
"""

from __future__ import annotations

import dataclasses

import pytest

from bot.brokers.factory import create_venue_broker
from bot.engine.risk import RiskManager
from bot.engine.trader import AccountTrader
from bot.isolation.manager import AccountIsolationManager
from bot.model import OrderRequest, OrderType, Side
from bot.store.writer import Store, StoredOrderStatus
from bot.strategy.trend_pullback import get_strategy
from nija_testkit import candles as cs
from nija_testkit.candles import rows
from nija_testkit.clock import FakeClock
from tests.engine.fee_desk import DAY, RULES, STEP, Desk
from tests.engine.world import NOW, SIGNAL, World


@pytest.fixture
def world(venue_server, tmp_path):
    w = World(venue_server("KRAKEN"), tmp_path)
    yield w
    w.close()


def test_a_position_is_what_the_fill_left_after_a_fee_taken_in_the_coin(world):
    desk = Desk(world)
    result = desk.trader.run_cycle()
    assert result.orders_placed == 1
    (order,) = desk.broker.all_orders()
    assert order.fee_currency == "BTC" and order.fee > 0
    assert order.filled == pytest.approx(round(order.filled / STEP) * STEP)  # whole lot steps
    (pos,) = desk.store.open_positions()
    assert pos.quantity == pytest.approx(order.filled - order.fee)
    assert pos.quantity == pytest.approx(desk.held())  # what the account really holds
    stored = desk.store.get_order(order.client_order_id)
    assert (stored.fee, stored.fee_currency) == (pytest.approx(order.fee), "BTC")


def test_round_trips_leave_dust_below_one_lot_step_and_never_loop(world):
    desk = Desk(world)
    dust = []
    for day in range(4):
        entered, exited = desk.round_trip(day)
        assert (entered.orders_placed, exited.orders_placed) == (1, 1)
        assert desk.store.open_positions() == [] and exited.positions_open == 0
        dust.append(exited.dust.get("BTC", 0.0))
        assert dust[-1] == pytest.approx(desk.held(), abs=1e-12)  # the dust is what is held
        assert 0 < dust[-1] < STEP  # a later sale took the earlier dust along
    for _ in range(5):  # nothing more to do: dust is never sent on its own
        world.clock.advance(300)
        assert desk.trader.run_cycle().orders_placed == 0
    orders = desk.broker.all_orders()
    assert len(orders) == 8 and all(o.status == "filled" for o in orders)
    assert desk.store.orders_with_status(StoredOrderStatus.REJECTED) == []  # refused exits: 0
    sells = [o for o in orders if o.side is Side.SELL]
    assert all(RULES.refusal(o.filled, 100.0) is None for o in sells)
    assert all(o.filled == pytest.approx(round(o.filled / STEP) * STEP) for o in sells)
    closed = desk.store.closed_positions_since(0)
    assert [p.close_reason for p in closed] == ["stop hit"] * 4


def test_an_exit_never_asks_for_more_than_the_free_balance(world):
    desk = Desk(world)
    desk.trader.run_cycle()
    (pos,) = desk.store.open_positions()
    # Something outside NIJA holds 1 BTC of it in an open order.
    desk.broker.place_order(
        OrderRequest("BTC/USD", Side.SELL, OrderType.LIMIT, "manual", amount=1.0, limit_price=900.0)
    )
    free = desk.broker.fetch_balance().free["BTC"]
    world.market.set_candles(
        "BTC/USD", rows(cs.from_closes([*SIGNAL.close[:-1], pos.stop * 0.99], first_open=100.0))
    )
    world.clock.advance(300)
    result = desk.trader.run_cycle()
    assert result.orders_placed == 1
    (sold,) = [o for o in desk.broker.all_orders()[1:] if o.client_order_id != "manual"]
    assert sold.status == "filled" and sold.filled <= free
    (left,) = desk.store.open_positions()  # what the open order holds is still the position's
    assert left.quantity == pytest.approx(pos.quantity - sold.filled)
    world.clock.advance(300)
    again = desk.trader.run_cycle()  # nothing free to sell: refused here, never sent
    assert again.orders_placed == 0
    assert any("free of" in n for n in again.notes)
    assert [o.client_order_id for o in desk.broker.all_orders()].count("manual") == 1
    assert len(desk.broker.all_orders()) == 3


def test_an_account_too_small_for_the_venue_skips_the_entry_with_a_note(world):
    desk = Desk(world)
    desk.broker.restore(40.0, [])  # 10% of $40 is $4: under the $5 minimum notional
    result = desk.trader.run_cycle()
    assert result.orders_placed == 0 and desk.broker.all_orders() == []
    assert any("account too small" in n for n in result.notes)
    assert "account too small" in result.no_signal


# What each venue's emulator trades in a round trip: (symbol, another symbol it serves).
ROUND_TRIP_SYMBOLS = {
    "BINANCE": ("BTC/USDT", "ETH/USDT"),
    "OKX": ("BTC/USDT", "ETH/USDT"),
    "KRAKEN": ("BTC/USD", "ETH/USD"),
    "COINBASE": ("BTC/USD", "ETH/USD"),
    "ALPACA": ("SPY", "AAPL"),  # stocks: fractional shares, commission-free
}


def market_symbol(symbol: str) -> str:
    """The emulators' shared market spells a stock ticker as a pair (``SPY`` → ``SPY/USD``)."""
    return symbol if "/" in symbol else f"{symbol}/USD"


@dataclasses.dataclass
class RoundTrips:
    """What ``live_round_trips`` saw."""

    orders: int = 0
    refused: int = 0  # orders the venue refused (exits above all): must be 0
    idle_orders: int = 0  # orders sent after the last round trip (a dust loop): must be 0
    dust: list[float] = dataclasses.field(default_factory=list)  # after each round trip
    held: list[float] = dataclasses.field(default_factory=list)  # the venue's base balance
    step: float = 0.0
    base_fees: int = 0  # buys whose fee was taken in the coin bought


def live_round_trips(handle, tmp_path, rounds: int, idle_cycles: int = 3) -> RoundTrips:
    """``rounds`` entries and stop exits, live through the real SDK on ``handle``'s venue."""
    market, ledger = handle.venue.market, handle.ledger
    symbol, other = ROUND_TRIP_SYMBOLS[handle.broker]
    market.set_candles(market_symbol(other), rows(cs.flat(price=2_000.0)))
    clock = FakeClock(wall_start=NOW)
    spec = handle.spec(symbols=(symbol, other))
    broker = create_venue_broker(spec, clock=clock)  # Alpaca asks for bars up to "now"
    handle.built.append(broker)
    rules = broker.market_rules(symbol)
    base = rules.base
    store = Store(tmp_path / "nija-live.db", spec.account.key, clock=clock)
    trader = AccountTrader(
        spec.account,
        broker,
        get_strategy("default"),
        RiskManager(),
        store,
        AccountIsolationManager(clock=clock),
        clock,
    )
    seen = RoundTrips(step=rules.amount_step or 0.0)
    try:
        for day in range(rounds):
            signal = dataclasses.replace(
                SIGNAL, timestamp_ms=SIGNAL.timestamp_ms + day * DAY * 1000
            )
            clock.set_wall(NOW + day * DAY)
            market.set_candles(market_symbol(symbol), rows(signal))
            trader.run_cycle()
            for pos in store.open_positions():
                stop_hit = cs.from_closes([*SIGNAL.close[:-1], pos.stop * 0.99], first_open=100.0)
                stop_hit = dataclasses.replace(stop_hit, timestamp_ms=signal.timestamp_ms)
                market.set_candles(market_symbol(symbol), rows(stop_hit))
            clock.advance(300)
            exited = trader.run_cycle()
            seen.dust.append(exited.dust.get(base, 0.0))
            seen.held.append(ledger.balance(base))
        before = len(ledger.all_orders())
        for _ in range(idle_cycles):
            clock.advance(300)
            trader.run_cycle()
        orders = ledger.all_orders()
        seen.idle_orders = len(orders) - before
        seen.orders = len(orders)
        seen.refused = len(store.orders_with_status(StoredOrderStatus.REJECTED))
        seen.base_fees = sum(o.side == "buy" and o.fee_currency == base for o in orders)
        return seen
    finally:
        store.close()


@pytest.mark.parametrize("venue", ["BINANCE", "OKX"])
def test_live_round_trips_with_fees_in_the_coin_bought(venue, venue_handle, tmp_path):
    """The same round trips, live, through ccxt against the Binance and OKX emulators: they
    take a buy's fee in the coin bought and refuse off-step or too-small orders as the
    venues do. No exit is refused, dust stays below one lot step and is never sent alone."""
    seen = live_round_trips(venue_handle(venue), tmp_path, rounds=3)
    assert seen.orders == 6 and seen.base_fees == 3
    assert seen.refused == 0 and seen.idle_orders == 0
    # The dust is what is held, to the venue's own rounding of the fees it reports (OKX
    # writes them to 10 decimals: at most 5e-11 off a round, carried with the dust).
    assert seen.dust == pytest.approx(seen.held, abs=3 * 1e-10)
    assert all(d < seen.step for d in seen.dust)


@pytest.mark.parametrize("venue", ["KRAKEN", "COINBASE", "ALPACA"])
def test_live_round_trips_with_fees_in_the_quote(venue, venue_handle, tmp_path):
    """Round trips, live through each venue's real SDK, on the venues that charge the fee in
    the quote currency (Kraken, Coinbase) or none (Alpaca stocks): every exit sells the
    whole position, none is refused, and nothing is sent once the positions are closed.
    Five rounds: Alpaca's fifth buy fills 6.630369857 shares, a count of 1e-9 steps whose
    float division falls just short (an exit once left one step behind)."""
    seen = live_round_trips(venue_handle(venue), tmp_path, rounds=5)
    assert seen.orders == 10 and seen.base_fees == 0
    assert seen.refused == 0 and seen.idle_orders == 0
    assert seen.held == [0.0] * 5 and seen.dust == [0.0] * 5  # every exit sold it all
