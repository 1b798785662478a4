"""The default trend-pullback strategy on crafted candle series (nija_testkit/candles.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bot.strategy import indicators as ind
from bot.strategy.base import Intent, PositionView
from bot.strategy.trend_pullback import (
    EntryChecks,
    Snapshot,
    StrategyParams,
    TrendPullbackStrategy,
    entry_checks,
    get_strategy,
    no_entry_reason,
    snapshot,
)
from nija_testkit import candles as cs

SYMBOL = "BTC/USD"
NOW = 1_700_100_000.0
HOUR = 3600.0
STRATEGY = TrendPullbackStrategy()
PARAMS = StrategyParams()


def last_atr(candles) -> float:
    return float(ind.atr(candles.high, candles.low, candles.close, 14)[-1])


def position(candles, **changes) -> PositionView:
    """A harmless open position at the last close: far stop, far target, fresh, no new high."""
    close = float(candles.close[-1])
    pos = PositionView(
        symbol=SYMBOL,
        quantity=0.5,
        entry_price=close,
        stop=close - 50.0,
        target=close + 50.0,
        initial_risk=50.0,
        highest_close=close,
        opened_at=NOW - HOUR,
        breakeven_done=False,
    )
    return dataclasses.replace(pos, **changes)


def checks(candles) -> EntryChecks:
    snap = snapshot(candles, PARAMS)
    assert snap is not None
    return entry_checks(snap, PARAMS)


# --- entry ---


def test_entry_fires_on_the_crafted_pullback():
    candles = cs.uptrend_with_pullback()
    intent = STRATEGY.decide(SYMBOL, candles, None, NOW)
    assert intent is not None
    assert intent.kind == "enter"
    assert intent.reason == "trend pullback entry"
    assert intent.symbol == SYMBOL
    assert intent.intent_id == f"{SYMBOL}:enter:{int(candles.timestamp_ms[-1])}"
    assert intent.price == candles.close[-1]


def test_entry_fires_at_the_last_candle_and_no_earlier_one():
    candles = cs.uptrend_with_pullback()
    fired = [
        n
        for n in range(1, len(candles) + 1)
        if STRATEGY.decide(SYMBOL, cs.head(candles, n), None, NOW) is not None
    ]
    assert fired == [len(candles)]


def test_stop_and_target_arithmetic():
    candles = cs.uptrend_with_pullback()
    close, atr = float(candles.close[-1]), last_atr(candles)
    intent = STRATEGY.decide(SYMBOL, candles, None, NOW)
    assert intent.atr == pytest.approx(atr)
    assert intent.stop == pytest.approx(close - 1.5 * atr)
    assert intent.target == pytest.approx(close + 2 * 1.5 * atr)  # 2R, R = 1.5 ATR
    custom = TrendPullbackStrategy(StrategyParams(stop_atr=1.0, target_r=3.0))
    intent = custom.decide(SYMBOL, candles, None, NOW)
    assert intent.stop == pytest.approx(close - atr)
    assert intent.target == pytest.approx(close + 3 * atr)


def test_no_entry_when_the_trend_is_broken():
    candles = cs.downtrend_with_bounce()
    assert dataclasses.astuple(checks(candles)) == (False, True, True, True, True)
    assert STRATEGY.decide(SYMBOL, candles, None, NOW) is None


def test_no_entry_when_adx_is_too_low():
    candles = cs.uptrend_with_pullback(choppy_wicks=3.0)
    assert dataclasses.astuple(checks(candles)) == (True, False, True, True, True)
    assert STRATEGY.decide(SYMBOL, candles, None, NOW) is None


def test_no_entry_when_rsi_did_not_dip():
    candles = cs.uptrend_with_pullback(dip=2.0)
    assert dataclasses.astuple(checks(candles)) == (True, True, False, True, True)
    assert STRATEGY.decide(SYMBOL, candles, None, NOW) is None


def test_no_entry_when_the_close_is_below_ema21():
    candles = cs.uptrend_with_pullback(bounce=4.0)
    assert dataclasses.astuple(checks(candles)) == (True, True, True, False, True)
    assert STRATEGY.decide(SYMBOL, candles, None, NOW) is None


def test_no_entry_when_volume_is_too_low():
    candles = cs.uptrend_with_pullback(last_volume=4.0)  # mean of the last 20: 9.7
    assert dataclasses.astuple(checks(candles)) == (True, True, True, True, False)
    assert STRATEGY.decide(SYMBOL, candles, None, NOW) is None
    # The mean includes the signal candle: 19 of volume 10 and one of v; half of it is (190+v)/40.
    assert STRATEGY.decide(SYMBOL, cs.uptrend_with_pullback(last_volume=4.8), None, NOW) is None
    enough = cs.uptrend_with_pullback(last_volume=4.9)  # 4.9 >= 4.8725
    assert STRATEGY.decide(SYMBOL, enough, None, NOW) is not None


def test_entry_filter_boundaries():
    base = Snapshot(
        timestamp_ms=cs.START_MS,
        close=105.0,
        volume=5.0,
        ema_fast=103.0,
        ema_mid=102.0,
        ema_slow=101.0,
        adx=20.0,  # at the minimum: passes
        rsi=40.0,  # exactly back at 40: a cross
        rsi_prev=39.99,
        atr=1.0,
        volume_mean=10.0,  # volume exactly half the mean: passes
    )
    assert entry_checks(base, PARAMS).passed

    def fails(**changes) -> EntryChecks:
        return entry_checks(dataclasses.replace(base, **changes), PARAMS)

    assert not fails(rsi_prev=40.0).rsi_cross  # it never dipped below 40
    assert not fails(rsi=39.99).rsi_cross
    assert not fails(adx=19.99).adx_ok
    assert not fails(volume=4.99).volume_ok
    assert not fails(close=102.0).above_ema_mid
    assert not fails(ema_fast=102.0).trend
    assert not fails(ema_slow=102.0).trend


@pytest.mark.parametrize(
    ("candles", "reason"),
    [
        (cs.downtrend_with_bounce(), "ema not stacked"),
        (cs.uptrend_with_pullback(choppy_wicks=3.0), "adx 4<20"),
        (cs.uptrend_with_pullback(dip=2.0), "rsi 67 no cross"),
        (cs.uptrend_with_pullback(bounce=4.0), "close below ema21"),
        (cs.uptrend_with_pullback(last_volume=4.0), "volume low"),
        (cs.head(cs.uptrend_with_pullback(), 40), "too few candles"),
    ],
)
def test_no_entry_says_which_check_failed(candles, reason):
    why = STRATEGY.no_entry(candles)
    assert why is not None and why.reason == reason, why
    assert why.failing == (5 if reason == "too few candles" else 1)
    assert STRATEGY.no_entry(cs.uptrend_with_pullback()) is None  # decide enters there


def test_no_entry_reason_names_the_first_failing_check_with_its_values():
    snap = Snapshot(
        timestamp_ms=cs.START_MS,
        close=101.0,
        volume=1.0,
        ema_fast=103.0,
        ema_mid=102.0,
        ema_slow=101.0,
        adx=14.9,
        rsi=52.4,
        rsi_prev=51.0,
        atr=1.0,
        volume_mean=10.0,
    )
    failed = entry_checks(snap, PARAMS)
    assert failed.failing == 4  # all but the trend
    assert no_entry_reason(snap, failed, PARAMS) == "adx 14<20"  # 14.9 is not yet 15
    snap = dataclasses.replace(snap, adx=25.0)
    assert no_entry_reason(snap, entry_checks(snap, PARAMS), PARAMS) == "rsi 52 no cross"
    snap = dataclasses.replace(snap, ema_fast=101.5)
    assert no_entry_reason(snap, entry_checks(snap, PARAMS), PARAMS) == "ema not stacked"


@pytest.mark.parametrize(
    "candles", [cs.uptrend(), cs.downtrend(), cs.flat()], ids=["up", "down", "flat"]
)
def test_no_entry_on_plain_trends_and_flat_markets(candles):
    assert STRATEGY.decide(SYMBOL, candles, None, NOW) is None


def test_no_entry_while_a_position_is_open():
    candles = cs.uptrend_with_pullback()
    intent = STRATEGY.decide(SYMBOL, candles, position(candles), NOW)
    assert intent is None or intent.kind != "enter"


# --- exits, each reason, and their order ---


def exit_reason(candles, pos: PositionView, now: float = NOW) -> str | None:
    intent = STRATEGY.decide(SYMBOL, candles, pos, now)
    return intent.reason if intent is not None and intent.kind == "exit" else None


def test_stop_hit():
    candles = cs.uptrend()
    close = float(candles.close[-1])
    assert exit_reason(candles, position(candles, stop=close)) == "stop hit"  # close <= stop
    assert exit_reason(candles, position(candles, stop=close - 0.01)) is None


def test_target_hit():
    candles = cs.uptrend()
    close = float(candles.close[-1])
    assert exit_reason(candles, position(candles, target=close)) == "target hit"
    assert exit_reason(candles, position(candles, target=close + 0.01)) is None
    assert exit_reason(candles, position(candles, target=None)) is None  # no target: none hit


def test_rsi_overbought():
    candles = cs.uptrend(down=0.0)  # only gains: RSI 100
    assert exit_reason(candles, position(candles)) == "rsi overbought"


def test_close_below_ema50():
    candles = cs.downtrend()  # RSI about 35, so this is the first rule that fires
    assert exit_reason(candles, position(candles)) == "close below ema50"


def test_max_hold():
    candles = cs.uptrend()  # RSI about 65, close above EMA50: nothing else fires
    assert exit_reason(candles, position(candles, opened_at=NOW - 48 * HOUR)) == "max hold 48h"
    assert exit_reason(candles, position(candles, opened_at=NOW - 48 * HOUR + 1)) is None


def test_exit_rules_apply_in_order():
    candles = cs.uptrend(down=0.0)  # RSI 100
    close = float(candles.close[-1])
    old = NOW - 100 * HOUR
    everything = position(candles, stop=close + 1, target=close - 1, opened_at=old)
    assert exit_reason(candles, everything) == "stop hit"
    assert exit_reason(candles, dataclasses.replace(everything, stop=0.0)) == "target hit"
    no_target = dataclasses.replace(everything, stop=0.0, target=None)
    assert exit_reason(candles, no_target) == "rsi overbought"
    falling = cs.downtrend()
    assert exit_reason(falling, position(falling, opened_at=old)) == "close below ema50"


def test_exit_intent_fields_and_id():
    candles = cs.downtrend()
    pos = position(candles, opened_at=1_700_000_123.0)
    intent = STRATEGY.decide(SYMBOL, candles, pos, NOW)
    assert intent.kind == "exit"
    assert intent.intent_id == f"{SYMBOL}:exit:1700000123"
    assert intent.price == candles.close[-1]
    fractional = STRATEGY.decide(
        SYMBOL, candles, position(candles, opened_at=1_700_000_123.25), NOW
    )
    assert fractional.intent_id == f"{SYMBOL}:exit:1700000123.25"


# --- break-even, then trailing ---


def test_break_even_move():
    candles = cs.uptrend()
    close, atr = float(candles.close[-1]), last_atr(candles)
    # Entry 1.5 below the close with R = 1: the close is 1.5R up. highest - 2 ATR is below entry.
    pos = position(candles, entry_price=close - 1.5, stop=close - 2.5, initial_risk=1.0)
    assert close - 2 * atr < close - 1.5
    intent = STRATEGY.decide(SYMBOL, candles, pos, NOW)
    assert intent.kind == "adjust"
    assert intent.reason == "breakeven"
    assert intent.stop == close - 1.5  # the entry price
    assert intent.breakeven_done is True
    assert intent.target == pos.target and intent.highest_close == close


def test_no_break_even_below_one_r():
    candles = cs.uptrend()
    close = float(candles.close[-1])
    pos = position(candles, entry_price=close - 0.9, stop=close - 1.9, initial_risk=1.0)
    assert STRATEGY.decide(SYMBOL, candles, pos, NOW) is None


def test_trailing_after_break_even():
    candles = cs.uptrend()
    close, atr = float(candles.close[-1]), last_atr(candles)
    pos = position(
        candles, entry_price=close - 10, stop=close - 10, initial_risk=3.0, breakeven_done=True
    )
    intent = STRATEGY.decide(SYMBOL, candles, pos, NOW)
    assert intent.kind == "adjust" and intent.reason == "trail"
    assert intent.stop == pytest.approx(close - 2 * atr)
    assert intent.breakeven_done is True
    # A higher recorded high trails from that high, not from the close.
    higher = dataclasses.replace(pos, highest_close=close + 1)
    assert STRATEGY.decide(SYMBOL, candles, higher, NOW).stop == pytest.approx(close + 1 - 2 * atr)


def test_the_stop_never_moves_down_and_nothing_changed_means_no_intent():
    candles = cs.uptrend()
    close = float(candles.close[-1])
    pos = position(
        candles, entry_price=close - 10, stop=close - 1, initial_risk=3.0, breakeven_done=True
    )
    assert STRATEGY.decide(SYMBOL, candles, pos, NOW) is None


def test_a_new_high_before_break_even_is_recorded_without_moving_the_stop():
    candles = cs.uptrend()
    close = float(candles.close[-1])
    pos = position(candles, entry_price=close - 1, initial_risk=50.0, highest_close=close - 1)
    intent = STRATEGY.decide(SYMBOL, candles, pos, NOW)
    assert intent.kind == "adjust" and intent.highest_close == close
    assert intent.stop == pos.stop and intent.breakeven_done is False


def test_walking_forward_break_even_then_trailing():
    """Apply each adjust to the position as the engine would, candle by candle."""
    candles = cs.uptrend(260)
    step = cs.STEP_MS / 1000
    start = 200
    first = cs.head(candles, start)
    entry, atr = float(first.close[-1]), last_atr(first)
    pos = PositionView(SYMBOL, 1.0, entry, entry - 1.5 * atr, None, 1.5 * atr, entry, 0.0)
    reasons, stops = [], [pos.stop]
    for n in range(start + 1, len(candles) + 1):
        intent = STRATEGY.decide(SYMBOL, cs.head(candles, n), pos, (n - start) * step)
        if intent is None:
            continue
        assert intent.kind == "adjust"
        reasons.append(intent.reason)
        pos = dataclasses.replace(
            pos,
            stop=intent.stop,
            highest_close=intent.highest_close,
            breakeven_done=intent.breakeven_done,
        )
        stops.append(pos.stop)
    assert reasons.count("breakeven") == 1
    breakeven_at = reasons.index("breakeven")
    assert set(reasons[breakeven_at + 1 :]) == {"trail"}
    assert stops == sorted(stops)  # never down
    assert stops[breakeven_at + 1] == entry
    assert stops[-1] > entry  # trailed above break-even


# --- determinism, lookup, bad input ---


def test_same_input_same_intent():
    candles = cs.uptrend_with_pullback()
    a = STRATEGY.decide(SYMBOL, candles, None, NOW)
    b = TrendPullbackStrategy().decide(SYMBOL, cs.uptrend_with_pullback(), None, NOW + 999)
    assert a == b and a.intent_id == b.intent_id
    pos = position(cs.downtrend())
    assert STRATEGY.decide(SYMBOL, cs.downtrend(), pos, NOW) == STRATEGY.decide(
        SYMBOL, cs.downtrend(), pos, NOW + 60
    )


def test_get_strategy_by_name():
    strategy = get_strategy("default")
    assert isinstance(strategy, TrendPullbackStrategy)
    assert (strategy.name, strategy.timeframe, strategy.history) == ("default", "5m", 200)
    assert get_strategy(" Default ").name == "default"
    assert get_strategy("").name == "default"
    assert get_strategy("trend_pullback").name == "trend_pullback"
    custom = StrategyParams(rsi_entry=35.0)
    assert get_strategy("default", custom).params is custom


def test_unknown_strategy_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown strategy 'scalper'") as err:
        get_strategy("scalper")
    assert "default" in str(err.value) and "trend_pullback" in str(err.value)


def test_too_few_candles_gives_none():
    candles = cs.uptrend_with_pullback()
    assert PARAMS.min_candles == 50
    for n in (0, 1, 27, 49):
        short = cs.head(candles, n)
        assert STRATEGY.decide(SYMBOL, short, None, NOW) is None
        assert STRATEGY.decide(SYMBOL, short, position(candles, stop=1e9), NOW) is None


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_input_gives_none(field, value):
    candles = cs.with_value(cs.uptrend_with_pullback(), field, 10, value)
    assert STRATEGY.decide(SYMBOL, candles, None, NOW) is None
    pos = position(cs.uptrend_with_pullback(), stop=1e9)  # would be "stop hit"
    assert STRATEGY.decide(SYMBOL, candles, pos, NOW) is None


def test_non_finite_position_or_clock_gives_none():
    candles = cs.downtrend()  # any valid position would exit here
    assert STRATEGY.decide(SYMBOL, candles, position(candles), float("nan")) is None
    assert STRATEGY.decide(SYMBOL, candles, position(candles, stop=float("nan")), NOW) is None


def test_ragged_candles_give_none():
    good = cs.uptrend_with_pullback()
    ragged = dataclasses.replace(good, volume=good.volume[:-1])
    assert STRATEGY.decide(SYMBOL, ragged, None, NOW) is None


def test_intent_and_params_are_frozen():
    intent = STRATEGY.decide(SYMBOL, cs.uptrend_with_pullback(), None, NOW)
    assert isinstance(intent, Intent)
    with pytest.raises(dataclasses.FrozenInstanceError):
        intent.stop = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        PARAMS.adx_min = 0.0


@pytest.mark.parametrize(
    "changes",
    [
        {"ema_fast": 0},
        {"adx_min": -1.0},
        {"stop_atr": float("nan")},
        {"rsi_exit": 100.0},
        {"ema_fast": 30},  # not below ema_mid
        {"ema_slow": 20},  # not above ema_mid
        {"rsi_period": 14.5},
        {"ema_slow": 50.0},  # periods are ints: indicators reject floats
        {"volume_window": True},
        {"history": 49},  # fewer than EMA50 needs
        {"timeframe": "5x"},
        {"timeframe": "0m"},  # NIJA_TIMEFRAME's rule: a candle of some length
        {"timeframe": 5},
    ],
    ids=str,
)
def test_bad_params_are_rejected(changes):
    with pytest.raises(ValueError):
        StrategyParams(**changes)


def test_protective_levels_match_an_entry_and_fall_back_without_atr():
    strategy = get_strategy("default")
    candles = cs.uptrend_with_pullback()
    intent = strategy.decide("BTC/USD", candles, None, 0.0)
    assert intent is not None and intent.kind == "enter"
    stop, target = strategy.protective_levels(candles, intent.price)
    assert stop == pytest.approx(intent.stop) and target == pytest.approx(intent.target)
    stop, target = strategy.protective_levels(cs.flat(), 100.0)  # ATR 0: no range to size by
    assert stop == pytest.approx(95.0) and target == pytest.approx(110.0)
