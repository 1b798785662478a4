"""The plain types' own rules: lot-step rounding, venue refusals, fees taken in the base."""

from __future__ import annotations

import pytest

from bot.model import MarketRules, Order, OrderStatus, OrderType, Side

LTC = MarketRules("LTC/USDT", "LTC", "USDT", amount_step=0.001, min_amount=0.01, min_notional=5.0)


@pytest.mark.parametrize(
    ("amount", "floored"),
    [(0.3, 0.3), (0.0999, 0.099), (0.0104, 0.01), (0.0009, 0.0), (12.3456789, 12.345)],
)
def test_amounts_round_down_to_the_lot_step(amount, floored):
    assert LTC.floor_amount(amount) == pytest.approx(floored, abs=1e-12)
    assert LTC.floor_amount(amount) <= amount


def test_a_balance_on_the_step_keeps_every_step_however_many_it_holds():
    shares = MarketRules("SPY", "SPY", "USD", amount_step=1e-9)  # Alpaca's fractional shares
    assert 6.630369857 / 1e-9 < 6630369857  # the float division falls just short
    assert shares.floor_amount(6.630369857) == 6.630369857
    assert shares.floor_amount(6.6303698569) == pytest.approx(6.630369856, abs=1e-15)


def test_whole_units_only_when_not_fractionable():
    stock = MarketRules("F", "F", "USD", fractionable=False)
    assert stock.floor_amount(2.7) == 2.0
    assert stock.floor_amount(0.9) == 0.0


@pytest.mark.parametrize(
    ("amount", "price", "why"),
    [
        (0.0, 100.0, "zero"),
        (0.005, 2000.0, "below the minimum 0.01 LTC"),
        (0.02, 100.0, "notional 2.00 below the minimum 5 USDT"),
    ],
)
def test_what_the_venue_would_refuse_is_named(amount, price, why):
    assert why in (LTC.refusal(amount, price) or "")


def test_an_order_within_the_rules_is_not_refused():
    assert LTC.refusal(0.1, 70.0) is None


def _fill(side: Side, fee: float, currency: str | None) -> Order:
    return Order(
        "c1",
        "v1",
        "LTC/USDT",
        side,
        OrderType.MARKET,
        OrderStatus.FILLED,
        0.1,
        filled=0.1,
        average_price=70.0,
        fee=fee,
        fee_currency=currency,
    )


def test_a_buy_whose_fee_is_taken_in_the_coin_bought_holds_less_than_it_filled():
    assert _fill(Side.BUY, 0.0001, "LTC").base_received("LTC") == pytest.approx(0.0999)
    assert _fill(Side.BUY, 0.007, "USDT").base_received("LTC") == pytest.approx(0.1)
    assert _fill(Side.BUY, 0.00002, "BNB").base_received("LTC") == pytest.approx(0.1)


def test_a_sell_whose_fee_is_taken_in_the_base_costs_more_than_it_filled():
    assert _fill(Side.SELL, 0.0001, "LTC").base_received("LTC") == pytest.approx(0.1001)


def test_a_fraction_of_a_whole_units_only_symbol_is_refused():
    stock = MarketRules("F", "F", "USD", fractionable=False)
    assert "whole units" in (stock.refusal(1.5, 10.0) or "")
    assert stock.refusal(2.0, 10.0) is None
