"""The replay: the real engine (AccountTrader, PaperBroker, Store) driven over crafted series.

Series come from nija_testkit/candles.py and are written to CSV files in tmp_path, so
each end-to-end test also goes through the loader the script uses.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.model import Candles
from bot.replay.runner import (
    CandleFileError,
    ReplayClock,
    ReplayMarket,
    ReplaySettings,
    load_candles,
    max_drawdown,
    run_replay,
)
from bot.store.writer import Store
from nija_testkit import candles as cs
from nija_testkit.harness import script_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "replay.py"
SIGNAL = cs.uptrend_with_pullback()  # the default strategy enters at its last candle
STEP_S = cs.STEP_MS // 1000
SLIP = 5.0 / 10_000  # the paper broker's default slippage
FEE = 0.001


def extend(base: Candles, steps: list[float]) -> Candles:
    """``base`` followed by candles whose closes move by ``steps``."""
    closes = np.concatenate([base.close, base.close[-1] + np.cumsum(steps)])
    return cs.from_closes(closes, first_open=float(base.open[0]))


def iso(ms: int, offset: str = "Z") -> str:
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", offset)


def write_csv(path: Path, c: Candles, *, stamp=str, header: str | None = None) -> Path:
    lines = [header or "timestamp,open,high,low,close,volume"]
    for t, o, h, lo, cl, v in zip(
        c.timestamp_ms, c.open, c.high, c.low, c.close, c.volume, strict=True
    ):
        prices = ",".join(repr(float(x)) for x in (o, h, lo, cl, v))  # repr: exact round trip
        lines.append(f"{stamp(int(t))},{prices}")
    path.write_text("\n".join(lines) + "\n")
    return path


def replay_file(tmp_path: Path, c: Candles, **kw):
    return run_replay(load_candles(write_csv(tmp_path / "series.csv", c)), ReplaySettings(**kw))


def at_close(c: Candles, i: int) -> str:
    """The replay time of the cycle run at candle ``i``'s close, as the report writes it."""
    seconds = int(c.timestamp_ms[i]) // 1000 + STEP_S
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# -- the engine end to end --------------------------------------------------------------
def test_pullback_then_rise_is_one_winning_trade_at_the_target(tmp_path):
    # A jump through the target (3 ATR above the entry), then a calm sawtooth rise.
    series = extend(SIGNAL, [20.0, *cs.sawtooth(10, 1.0, -0.5)])
    r = replay_file(tmp_path, series)
    assert r.cycles == len(series) == 211
    assert r.failed_cycles == 0
    assert r.trade_count == 1 and r.wins == 1 and r.win_rate == 1.0
    (t,) = r.trades
    assert t.reason == "target hit"
    assert t.entry_time == at_close(series, 199) and t.exit_time == at_close(series, 200)
    # Market fills at the revealed close, moved by the slippage against us.
    assert t.entry_price == pytest.approx(series.close[199] * (1 + SLIP))
    assert t.exit_price == pytest.approx(series.close[200] * (1 - SLIP))
    fees = FEE * t.quantity * (t.entry_price + t.exit_price)
    assert t.fees_usd == pytest.approx(fees)
    assert t.pnl_usd == pytest.approx((t.exit_price - t.entry_price) * t.quantity - fees)
    assert t.pnl_usd > 0
    # Flat after the exit: equity moved by exactly the trade's P&L.
    assert r.open_positions == []
    assert r.final_equity_usd == pytest.approx(10_000.0 + t.pnl_usd)
    assert r.pnl_usd == pytest.approx(t.pnl_usd)
    assert r.pnl_pct == pytest.approx(t.pnl_usd / 100.0)
    # The only dip is the entry's cost (fee + slippage), marked at the signal close.
    assert 0 < r.max_drawdown_usd < 2.0


def test_a_drop_through_the_stop_is_one_losing_trade(tmp_path):
    series = extend(SIGNAL, [-20.0])
    r = replay_file(tmp_path, series)
    assert r.failed_cycles == 0
    assert r.trade_count == 1 and r.losses == 1 and r.win_rate == 0.0
    (t,) = r.trades
    assert t.reason == "stop hit"
    assert t.exit_price == pytest.approx(series.close[200] * (1 - SLIP))
    assert t.pnl_usd < 0
    assert r.final_equity_usd == pytest.approx(10_000.0 + t.pnl_usd)
    # The equity curve's worst fall is the whole loss (the peak was the start).
    assert r.max_drawdown_usd == pytest.approx(-t.pnl_usd)
    assert r.max_drawdown_pct == pytest.approx(-t.pnl_usd / 100.0)


def test_a_flat_series_trades_nothing_and_never_draws_down(tmp_path):
    r = replay_file(tmp_path, cs.flat(120))
    assert r.cycles == 120 and r.failed_cycles == 0
    assert r.trades == [] and r.trade_count == 0 and r.win_rate is None
    assert r.max_drawdown_usd == 0.0 and r.max_drawdown_pct == 0.0
    assert r.final_equity_usd == 10_000.0 and r.pnl_usd == 0.0


def test_a_position_open_at_the_end_is_reported_open_and_marked(tmp_path):
    r = replay_file(tmp_path, SIGNAL)
    assert r.trades == []
    (p,) = r.open_positions
    assert p["entry_time"] == at_close(SIGNAL, 199)
    assert p["mark_price"] == SIGNAL.close[-1]
    assert r.final_equity_usd == pytest.approx(10_000.0 + r.pnl_usd)
    assert r.pnl_usd < 0  # only the entry's fee and slippage so far


def test_the_same_file_gives_the_same_report(tmp_path):
    path = write_csv(tmp_path / "series.csv", extend(SIGNAL, [20.0, -3.0, 1.0]))
    first = run_replay(load_candles(path)).to_dict()
    second = run_replay(load_candles(path)).to_dict()
    assert first == second
    assert first["trade_count"] == 1


def test_db_option_keeps_the_state_and_refuses_an_existing_file(tmp_path):
    db = tmp_path / "replay.db"
    series = extend(SIGNAL, [-20.0])
    r = run_replay(series, ReplaySettings(db_path=db))
    with Store.open_readonly(db) as ro:
        (key,) = ro.account_keys()
        closed = ro.account(key).closed_positions_since(0.0)
    assert [p.close_reason for p in closed] == [r.trades[0].reason] == ["stop hit"]
    with pytest.raises(ValueError, match="already exists"):
        run_replay(series, ReplaySettings(db_path=db))


@pytest.mark.parametrize(
    ("settings_kw", "words"),
    [({"symbol": "BTC/EUR"}, "USD"), ({"strategy": "nope"}, "unknown strategy")],
)
def test_settings_that_cannot_be_replayed_are_refused(settings_kw, words):
    with pytest.raises(ValueError, match=words):
        run_replay(cs.flat(60), ReplaySettings(**settings_kw))


# -- no look-ahead ------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    now_offset=st.one_of(
        st.integers(min_value=-cs.STEP_MS, max_value=12 * cs.STEP_MS),
        # Right at a candle's close, and a millisecond either side of it.
        st.builds(lambda k, d: k * cs.STEP_MS + d, st.integers(0, 12), st.sampled_from([-1, 0, 1])),
    )
)
def test_the_market_never_shows_a_candle_before_it_closed(now_offset):
    series = cs.uptrend(10)
    clock = ReplayClock(cs.START_MS + now_offset)
    market = ReplayMarket("BTC/USD", series, clock, cs.STEP_MS)
    shown = market.fetch_candles("BTC/USD", "5m", 1000)
    closed = [i for i, t in enumerate(series.timestamp_ms) if t + cs.STEP_MS <= clock.now_ms]
    assert list(shown.timestamp_ms) == [series.timestamp_ms[i] for i in closed]
    assert all(t + cs.STEP_MS <= clock.now_ms for t in shown.timestamp_ms)
    if closed:
        assert market.fetch_ticker("BTC/USD").last == series.close[closed[-1]]
    else:
        with pytest.raises(ValueError, match="no BTC/USD candle has closed"):
            market.fetch_ticker("BTC/USD")


def test_the_replay_clock_is_one_clock_at_the_replayed_instant():
    clock = ReplayClock(1_700_000_000_250)
    assert clock.wall() == clock.monotonic() == 1_700_000_000.25
    assert clock.utc_now() == datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC)
    clock.advance_to(1_700_000_300_000)
    assert clock.wall() == clock.monotonic() == 1_700_000_300.0


def test_a_candle_is_hidden_until_the_millisecond_it_closes():
    series = cs.uptrend(5)
    close_of_2 = int(series.timestamp_ms[2]) + cs.STEP_MS
    clock = ReplayClock(close_of_2 - 1)
    market = ReplayMarket("BTC/USD", series, clock, cs.STEP_MS)
    assert len(market.fetch_candles("BTC/USD", "5m", 2)) == 2
    assert market.fetch_candles("BTC/USD", "5m", 2).timestamp_ms[-1] == series.timestamp_ms[1]
    clock.advance_to(close_of_2)
    assert market.fetch_candles("BTC/USD", "5m", 2).timestamp_ms[-1] == series.timestamp_ms[2]
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance_to(close_of_2 - 1)
    with pytest.raises(ValueError, match="5m candles, not 1h"):
        market.fetch_candles("BTC/USD", "1h", 2)
    with pytest.raises(ValueError, match="only 'BTC/USD'"):
        market.fetch_ticker("ETH/USD")


def test_the_engine_decides_the_same_whatever_comes_next(tmp_path):
    # Same past, opposite futures: the entry (time, price, size) cannot differ.
    up = run_replay(extend(SIGNAL, [20.0]))
    down = run_replay(extend(SIGNAL, [-20.0]))
    keys = ("entry_time", "entry_price", "quantity")
    assert [getattr(up.trades[0], k) for k in keys] == [getattr(down.trades[0], k) for k in keys]
    assert (up.trades[0].reason, down.trades[0].reason) == ("target hit", "stop hit")


# -- loading CSV --------------------------------------------------------------------------
def test_epoch_ms_and_iso_files_load_the_same_candles(tmp_path):
    series = cs.uptrend(6)
    by_ms = load_candles(write_csv(tmp_path / "ms.csv", series))
    by_iso = load_candles(write_csv(tmp_path / "iso.csv", series, stamp=iso))
    by_offset = load_candles(
        write_csv(tmp_path / "offset.csv", series, stamp=lambda ms: iso(ms + 3_600_000, "+01:00"))
    )
    for loaded in (by_ms, by_iso, by_offset):
        assert list(loaded.timestamp_ms) == list(series.timestamp_ms)
        assert np.array_equal(loaded.close, series.close)
        assert np.array_equal(loaded.volume, series.volume)


def test_rows_are_sorted_and_blank_lines_skipped(tmp_path):
    path = tmp_path / "shuffled.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "1700000600000,3,3.5,2.5,3,1\n"
        "\n"
        "1700000000000,1,1.5,0.5,1,1\n"
        "1700000300000,2,2.5,1.5,2,1\n"
    )
    c = load_candles(path)
    assert list(c.close) == [1.0, 2.0, 3.0]


def _bad(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(CandleFileError) as err:
        load_candles(path)
    return str(err.value)


GOOD = "1700000000000,1,1.5,0.5,1,1\n1700000300000,2,2.5,1.5,2,1\n"


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ("time,open,high,low,close,volume\n" + GOOD, ":1:", "header must be"),
        ("timestamp,open,high,low,close\n" + GOOD, ":1:", "header must be"),
        ("timestamp,open,high,low,close,volume\n" + GOOD + "1700000600000,1,1,1,nan,1\n",
         ":4:", "close is nan"),
        ("timestamp,open,high,low,close,volume\n" + GOOD + "1700000000000,1,1,1,1,1\n",
         ":4:", "duplicate timestamp 2023-11-14T22:13:20Z (first on line 2)"),
        ("timestamp,open,high,low,close,volume\n" + GOOD + "1700000600000,1,1,1,1,-5\n",
         ":4:", "volume must not be negative, got -5"),
        ("timestamp,open,high,low,close,volume\n" + GOOD + "1700000600000,0,0,0,0,1\n",
         ":4:", "open must be positive, got 0"),
        ("timestamp,open,high,low,close,volume\n1700000000000,1,1.5,0.5,abc,1\n" + GOOD,
         ":2:", "close 'abc' is not a number"),
        ("timestamp,open,high,low,close,volume\n2023-11-14T22:13:20,1,1.5,0.5,1,1\n" + GOOD,
         ":2:", "needs Z or an offset"),
        ("timestamp,open,high,low,close,volume\nyesterday,1,1.5,0.5,1,1\n" + GOOD,
         ":2:", "neither epoch milliseconds nor ISO-8601"),
        ("timestamp,open,high,low,close,volume\n" + GOOD + "1700000600000,1,1\n",
         ":4:", "expected 6 fields"),
        ("timestamp,open,high,low,close,volume\n" + GOOD + "1700000600000,2,1.9,1.5,2,1\n",
         ":4:", "must contain open and close"),
        ("timestamp,open,high,low,close,volume\n1700000000000,1,1.5,0.5,1,1\n",
         "", "needs at least 2 candles"),
        ("timestamp,open,high,low,close,volume\n1700000000000,1,1.5,0.5,1,1\n"
         "1700000001000,1,1.5,0.5,1,1\n", "", "not a whole number of minutes"),
        ("", ":1:", "header must be"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_naming_the_line(tmp_path, body, where, words):
    message = _bad(tmp_path, body)
    assert f"bad.csv{where}" in message
    assert words in message


def test_a_missing_file_is_a_candle_file_error(tmp_path):
    with pytest.raises(CandleFileError, match="cannot read"):
        load_candles(tmp_path / "absent.csv")


def test_max_drawdown_is_the_worst_fall_from_a_running_peak():
    usd, frac = max_drawdown([100.0, 110.0, 99.0, 105.0, 90.0, 120.0, 115.0])
    assert usd == pytest.approx(20.0) and frac == pytest.approx(20.0 / 110.0)
    assert max_drawdown([100.0, 100.0, 101.0]) == (0.0, 0.0)


# -- the script -----------------------------------------------------------------------------
def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=script_env(),
        check=False,
    )


def test_the_script_prints_json_equal_to_the_library_report(tmp_path):
    series = extend(SIGNAL, [20.0])
    path = write_csv(tmp_path / "series.csv", series, stamp=iso)
    done = _script("--candles", str(path), "--symbol", "ETH/USD", "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["symbol"] == "ETH/USD"
    assert printed["trade_count"] == 1 and printed["trades"][0]["reason"] == "target hit"
    assert math.isfinite(printed["max_drawdown_pct"])
    # Another process, the same file: the same figures (JSON round trip of the library's).
    again = run_replay(load_candles(path), ReplaySettings(symbol="ETH/USD")).to_dict()
    assert printed == json.loads(json.dumps(again))


def test_the_script_text_report_and_bad_input_exit_code(tmp_path):
    path = write_csv(tmp_path / "flat.csv", cs.flat(60))
    done = _script("--candles", str(path))
    assert done.returncode == 0, done.stderr
    assert "no trades" in done.stdout and "max drawdown 0.00 USD (0.00%)" in done.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n" + GOOD + "1700000600000,1,1,1,nan,1\n")
    done = _script("--candles", str(bad), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "bad.csv:4:" in done.stderr and "close is nan" in done.stderr
