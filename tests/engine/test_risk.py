"""Sizing and limits: bot.engine.risk, with exact figures."""

from __future__ import annotations

import threading

import pytest

from bot.engine.risk import AccountState, GlobalPositionCap, RiskManager, RiskParams


def state(**overrides) -> AccountState:
    base = {
        "equity_usd": 10_000.0,
        "open_positions": 0,
        "exposure_usd": 0.0,
        "entries_this_cycle": 0,
        "day_start_equity_usd": 10_000.0,
    }
    return AccountState(**(base | overrides))


def test_size_is_risk_divided_by_stop_distance():
    # 1% of 10,000 = 100 USD at risk; stop 5 below a 100 entry → 20 units = 2,000 USD... capped.
    sizing = RiskManager().size_entry(state(), price=100.0, stop=95.0)
    assert sizing.quantity == pytest.approx(10.0)  # 10% of equity = 1,000 USD = 10 units
    assert sizing.reason == "capped"
    wide = RiskManager().size_entry(state(), price=100.0, stop=80.0)  # 100 / 20 = 5 units
    assert wide.quantity == pytest.approx(5.0) and wide.reason == "risk-sized"


def test_total_exposure_caps_the_size():
    sizing = RiskManager().size_entry(state(exposure_usd=7_500.0), price=100.0, stop=80.0)
    assert sizing.quantity == pytest.approx(5.0)  # 8,000 − 7,500 = 500 USD left
    full = RiskManager().size_entry(state(exposure_usd=8_000.0), price=100.0, stop=80.0)
    assert not full.ok and "exposure" in full.reason


def test_venue_minimum_raises_a_small_size_or_refuses():
    rm = RiskManager(RiskParams(min_order_usd=50.0))
    # 1% of 1,000 = 10 USD risk, stop 50 away → 0.2 units = 20 USD < 50 minimum.
    raised = rm.size_entry(
        state(equity_usd=1_000.0, day_start_equity_usd=1_000.0), price=100.0, stop=50.0
    )
    assert raised.quantity == pytest.approx(0.5) and "minimum" in raised.reason
    tiny = RiskManager(RiskParams(min_order_usd=200.0)).size_entry(
        state(equity_usd=1_000.0, day_start_equity_usd=1_000.0), price=100.0, stop=50.0
    )
    assert not tiny.ok and "minimum" in tiny.reason  # 10% cap is 100 USD


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"open_positions": 5}, "positions open"),
        ({"entries_this_cycle": 1}, "already entered"),
        ({"equity_usd": 9.99, "day_start_equity_usd": 9.99}, "funded minimum"),
        ({"equity_usd": 9_500.0}, "daily loss"),
    ],
)
def test_each_limit_blocks_entries(overrides, words):
    rm = RiskManager()
    assert words in rm.entry_block(state(**overrides))
    assert not rm.size_entry(state(**overrides), 100.0, 90.0).ok


def test_daily_loss_limit_is_measured_from_the_days_start():
    rm = RiskManager()
    assert not rm.daily_loss_halted(state(equity_usd=9_501.0))
    assert rm.daily_loss_halted(state(equity_usd=9_500.0))
    assert not rm.daily_loss_halted(state(equity_usd=9_500.0, day_start_equity_usd=9_500.0))
    assert not rm.daily_loss_halted(state(day_start_equity_usd=None))


def test_bad_stops_and_params_are_refused():
    rm = RiskManager()
    assert not rm.size_entry(state(), price=100.0, stop=100.0).ok
    assert not rm.size_entry(state(), price=100.0, stop=float("nan")).ok
    for bad in ({"risk_per_trade": 0}, {"max_open_positions": 0}, {"min_order_usd": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RiskParams(**bad)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"max_open_positions": 2.5}, "max_open_positions must be a whole number, got 2.5"),
        ({"max_open_positions": True}, "max_open_positions must be a number, got True"),
        ({"risk_per_trade": "0.01"}, "risk_per_trade must be a number, got '0.01'"),
        ({"min_order_usd": float("nan")}, "min_order_usd must be finite, got nan"),
        ({"min_balance_usd": float("inf")}, "min_balance_usd must be finite, got inf"),
    ],
)
def test_params_of_the_wrong_kind_are_refused_with_their_name(bad, words):
    # An overrides file gives what TOML reads: 2.5 positions or "0.01" must not slip through.
    with pytest.raises(ValueError) as err:
        RiskParams(**bad)
    assert str(err.value) == words


def test_a_held_account_takes_no_entry_and_says_why():
    held = RiskManager(held="no new entries: its overrides could not be applied")
    assert held.entry_block(state()) == "no new entries: its overrides could not be applied"
    sizing = held.size_entry(state(), price=100.0, stop=95.0)
    assert not sizing.ok and sizing.reason.startswith("no new entries")
    assert RiskManager().size_entry(state(), price=100.0, stop=95.0).ok


def test_global_cap_counts_reservations_and_syncs_to_the_truth():
    cap = GlobalPositionCap(3)
    assert cap.try_reserve("a") and cap.try_reserve("a") and cap.try_reserve("b")
    assert not cap.try_reserve("c")
    cap.sync("a", 1)  # one of a's entries was rejected
    assert cap.used == 2 and cap.try_reserve("c") and not cap.try_reserve("c")
    unlimited = GlobalPositionCap(None)
    assert all(unlimited.try_reserve("x") for _ in range(100))
    with pytest.raises(ValueError, match="NIJA_MAX_TOTAL_POSITIONS"):
        GlobalPositionCap(0)


def test_a_held_cap_refuses_every_reservation_until_lifted():
    cap = GlobalPositionCap(None)
    cap.hold("state database missing")
    assert cap.held == "state database missing" and not cap.try_reserve("a")
    cap.hold(None)
    assert cap.held is None and cap.try_reserve("a") and cap.used == 1


def test_global_cap_is_exact_under_threads():
    cap = GlobalPositionCap(50)
    taken = []

    def grab(key: str) -> None:
        taken.extend(key for _ in range(200) if cap.try_reserve(key))

    threads = [threading.Thread(target=grab, args=(f"acct{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(taken) == 50 and cap.used == 50
