"""A position sold in parts: its realized P&L is every part's, net of every fee.

The real AccountTrader trades through the paper broker (fees in the coin bought, Binance-like
lot steps; ``tests/engine/test_fees_in_base.py``) over the Kraken emulator's market data. An
open order placed outside NIJA holds 1 BTC of the position, so the stop's exit can sell
only what is free: the position shrinks. What becomes of the rest (sold by the next exit,
gone from the venue at reconciliation, dust after a crash) must keep the parts sold.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from bot.daemon.wiring import restore_paper_wallet
from bot.model import Order, OrderRequest, OrderType, Side
from bot.store.reader import ReadOnlyStore
from bot.store.writer import PositionRecord
from nija_testkit import candles as cs
from nija_testkit.candles import rows
from tests.engine.fee_desk import DAY, Desk
from tests.engine.world import SIGNAL, World

ACCOUNT = "user/alice/KRAKEN"
STARTING_USD = 10_000.0  # the paper broker's default


@pytest.fixture
def world(venue_server, tmp_path):
    w = World(venue_server("KRAKEN"), tmp_path)
    yield w
    w.close()


def pnl_of(entry: Order, sells: list[Order]) -> float:
    """Each sale's gain over the entry price, less its fee and its share of the entry's fee
    (the entry bought ``filled`` less a fee taken in the coin), from the venue's orders."""
    entry_price = entry.average_price or 0.0
    bought = entry.filled - (entry.fee if entry.fee_currency == "BTC" else 0.0)
    return sum(
        ((s.average_price or 0.0) - entry_price) * s.filled
        - s.fee_usd
        - entry.fee_usd * s.filled / bought
        for s in sells
    )


def stop_hit_at(world: World, price: float) -> None:
    """The last candle closes at ``price``: under the position's stop."""
    closes = [*SIGNAL.close[:-1], price]
    world.market.set_candles("BTC/USD", rows(cs.from_closes(closes, first_open=100.0)))


@dataclasses.dataclass
class SoldInPart:
    """An entry, then a stop's exit that could sell only part of the position."""

    desk: Desk
    entry: Order
    first: Order  # the sale of part of it
    left: PositionRecord  # the rest, still open

    def orders(self) -> list[Order]:
        """The venue's orders of NIJA (the one placed outside it left out), oldest first."""
        return [o for o in self.desk.broker.all_orders() if o.client_order_id != "manual"]


def sell_in_part(world: World) -> SoldInPart:
    desk = Desk(world)
    desk.trader.run_cycle()
    (pos,) = desk.store.open_positions()
    held = OrderRequest(
        "BTC/USD", Side.SELL, OrderType.LIMIT, "manual", amount=1.0, limit_price=900.0
    )
    desk.broker.place_order(held)
    stop_hit_at(world, pos.stop * 0.99)
    world.clock.advance(300)
    assert desk.trader.run_cycle().orders_placed == 1
    (left,) = desk.store.open_positions()
    assert 0 < left.quantity < pos.quantity  # sold in part: still open
    entry, first = [o for o in desk.broker.all_orders() if o.client_order_id != "manual"]
    assert first.side is Side.SELL and first.status == "filled" and first.filled > 0
    desk.broker.cancel_order("manual")  # the rest is free to sell from now on
    return SoldInPart(desk, entry, first, left)


def day_of(world: World):
    return datetime.fromtimestamp(world.clock.wall(), UTC).date()


def test_a_position_sold_in_two_parts_realizes_both_on_the_day_it_closes(world):
    sold = sell_in_part(world)
    desk, entry = sold.desk, sold.entry
    # Still open: the part sold is kept with the position, and is in no day's P&L yet.
    assert sold.left.realized_pnl_usd == pytest.approx(pnl_of(entry, [sold.first]), abs=1e-9)
    first_day = day_of(world)

    world.clock.advance(DAY)  # the rest is sold the next (UTC) day, by a new order
    assert desk.trader.run_cycle().orders_placed == 1
    assert desk.store.open_positions() == []
    (closed,) = desk.store.closed_positions_since(0)
    _, *sells = sold.orders()
    assert len(sells) == 2 and all(s.status == "filled" and s.filled > 0 for s in sells)
    total = pnl_of(entry, sells)
    assert closed.realized_pnl_usd == pytest.approx(total, abs=1e-9)

    # Counted whole on the day the position closed; the fees on the days they were paid.
    last_day = day_of(world)
    with ReadOnlyStore(world.db) as ro:
        (acct,) = ro.pnl_report(first_day, last_day, account_key=ACCOUNT).accounts
        assert ro.account(ACCOUNT).pnl_between(0, world.clock.wall() + 1).realized_pnl_usd == (
            pytest.approx(total, abs=1e-9)
        )
    before, after = acct.days[first_day], acct.days[last_day]
    assert (before.trades, before.realized_pnl_usd) == (0, 0.0)
    assert before.fees_usd == pytest.approx(entry.fee_usd + sells[0].fee_usd)
    assert after.trades == 1 and after.losses == 1
    assert after.realized_pnl_usd == pytest.approx(total, abs=1e-9)
    assert after.fees_usd == pytest.approx(sells[1].fee_usd)


@pytest.mark.parametrize(
    ("holdings", "reason"),
    [
        ([], "not held at the venue"),
        ([("BTC/USD", 0.0005, 149.0)], "only dust left at the venue"),  # under the 0.001 minimum
    ],
)
def test_reconciliation_closing_the_rest_keeps_the_parts_sold(world, holdings, reason):
    sold = sell_in_part(world)
    sold.desk.broker.restore(STARTING_USD, holdings)  # the rest left the account outside NIJA
    report = sold.desk.trader.reconcile()
    assert report.done and report.closed == ["BTC/USD"]
    (closed,) = sold.desk.store.closed_positions_since(0)
    assert (closed.close_reason or "").startswith(reason)
    # The rest's exit price is unknown (nothing for it); the part sold is what it was.
    assert closed.realized_pnl_usd == pytest.approx(pnl_of(sold.entry, [sold.first]), abs=1e-9)


def test_a_rest_worth_too_little_to_sell_after_a_crash_is_dust_with_the_parts_sold(world):
    sold = sell_in_part(world)
    stop_hit_at(world, 4.0)  # 1 BTC at $4 is under the $5 minimum notional
    world.clock.advance(300)
    assert sold.desk.trader.run_cycle().orders_placed == 0
    (closed,) = sold.desk.store.closed_positions_since(0)
    assert (closed.close_reason or "").startswith("dust:")
    marked = (4.0 - sold.left.entry_price) * sold.left.quantity  # held as dust, valued at $4
    expected = pnl_of(sold.entry, [sold.first]) + marked
    assert closed.realized_pnl_usd == pytest.approx(expected, abs=1e-9)


def test_a_paper_wallet_restored_after_a_sale_in_part_keeps_its_proceeds(world):
    sold = sell_in_part(world)
    cash = sold.desk.broker.fetch_balance().cash["USD"]
    restore_paper_wallet(sold.desk.broker, sold.desk.store, STARTING_USD)  # as after a restart
    restored = sold.desk.broker.fetch_balance()
    assert restored.cash["BTC"] == pytest.approx(sold.left.quantity)
    # To within the open rest's share of the entry fee (no realized P&L holds it yet).
    assert restored.cash["USD"] == pytest.approx(cash, abs=sold.entry.fee_usd)
