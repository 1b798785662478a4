"""Per-account overrides through the running daemon: loaded at start-up, reloaded through the
API and nija_ctl.py, picked up by one account's next cycle (its order size, its refused
entries), a bad file refused whole, every reload audited.

The market here gives the default strategy's entry signal at every cycle's newest closed
candle, so an account with room enters at once; its order shows its risk per trade.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.api.token import ApiToken
from bot.cli import ctl
from bot.daemon.control import ALL_ACCOUNTS
from bot.daemon.lock import DataDirLock
from bot.model import Candles, Ticker
from bot.store.operator import OperatorStore
from bot.store.reader import ReadOnlyStore
from bot.store.records import OrderPurpose
from nija_testkit import candles as cs
from nija_testkit.clock import FakeClock
from tests.api.conftest import ALICE, BOB, SYMBOLS, TOKEN, ApiDaemon, wait_for

ENTRY = cs.uptrend_with_pullback()  # the default strategy enters at its last candle
EQUITY = 10_000.0  # each paper account's starting cash


class EntryMarket:
    """Every symbol's candles end in the entry signal, the newest closed by the clock's time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def symbols(self) -> list[str]:
        return list(SYMBOLS)

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        candles = cs.closing_by(ENTRY, self.clock.wall())
        cut = slice(max(0, len(candles.close) - limit), None)
        return Candles(*(getattr(candles, f.name)[cut] for f in dataclasses.fields(Candles)))

    def fetch_ticker(self, symbol: str) -> Ticker:
        last = float(ENTRY.close[-1])
        return Ticker(symbol=symbol, bid=last - 0.01, ask=last + 0.01, last=last)


def write(tmp_path: Path, text: str) -> None:
    (tmp_path / "overrides.toml").write_text(text, encoding="utf-8")


def entries(d: ApiDaemon, key: str) -> list:
    with ReadOnlyStore(d.sup.db) as store:
        return [o for o in store.orders_since(key, 0.0) if o.purpose == OrderPurpose.ENTRY]


def risked(order) -> float:
    """The USD the entry risks to its stop: amount x (price - stop)."""
    return order.amount * order.initial_risk


def no_signal(d: ApiDaemon, key: str) -> str | None:
    result = d.worker(key).last_result
    return result.no_signal if result else None


def cycles_later(d: ApiDaemon, key: str, n: int = 2) -> None:
    """Wait until ``key`` has run ``n`` more cycles (the first may have begun before a change)."""
    start = d.worker(key).cycles
    wait_for(lambda: d.worker(key).cycles >= start + n, what=f"{key} to run {n} more cycles")


@pytest.fixture
def entering(tmp_path):
    """Alice and Bob on the entry market; Alice's adx_min keeps her out until a reload."""
    write(tmp_path, '["user/alice/KRAKEN".strategy]\nadx_min = 99\n')
    d = ApiDaemon(tmp_path, market=EntryMarket, NIJA_HTTP_TOKEN=TOKEN).start()
    try:
        wait_for(lambda: entries(d, BOB) and d.worker(ALICE).cycles >= 2, what="bob's entry")
        yield d
    finally:
        d.stop()


def test_a_reload_changes_one_accounts_next_cycle_and_a_bad_file_changes_nothing(
    entering, tmp_path
):
    d = entering
    # At start-up: alice's strategy parameter is hers alone; bob entered on the defaults.
    assert entries(d, ALICE) == [] and "adx" in no_signal(d, ALICE) and "<99" in no_signal(d, ALICE)
    (bob_entry,) = entries(d, BOB)
    assert risked(bob_entry) < 0.01 * EQUITY  # capped by the position size limit, not the risk
    shown = d.get("/api/v1/overrides").json()
    assert shown["accounts"][ALICE]["overrides"] == {
        "strategy": {"adx_min": 99},
        "sections": [ALICE],
    }
    assert shown["accounts"][ALICE]["effective"]["strategy"]["adx_min"] == 99
    assert shown["accounts"][BOB]["overrides"] is None
    assert shown["accounts"][BOB]["effective"]["risk_per_trade"] == 0.01
    status = d.sup.get_multi_broker_status()
    assert status["accounts"][ALICE]["overrides"]["strategy"] == {"adx_min": 99}
    assert status["accounts"][BOB]["overrides"] is None
    assert status["overrides_file"]["exists"] and status["overrides_file"]["problems"] == []

    # A tenth of the risk, and the default entry rules: alice enters at her next cycle.
    write(tmp_path, '["user/alice/KRAKEN"]\nrisk_per_trade = 0.001\n')
    with capture_logs() as logs:
        answer = d.post("/api/v1/overrides/reload")
        wait_for(lambda: entries(d, ALICE), what="alice's entry")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outcome"] == "done" and body["applied"] is True
    assert body["accounts"][ALICE]["changes"] == [
        "risk_per_trade 0.01 -> 0.001",
        "strategy.adx_min 99 -> 20.0",
    ]
    assert body["accounts"][BOB]["outcome"] == "unchanged"
    (alice_entry,) = entries(d, ALICE)
    assert risked(alice_entry) == pytest.approx(0.001 * EQUITY, rel=0.02)
    assert alice_entry.amount < bob_entry.amount / 1.5
    applied = [e for e in logs if e["event"] == "overrides_applied"]
    assert [e.get("account") for e in applied] == [ALICE]  # bob's thread applied nothing
    assert applied[0]["overrides"] == {"risk_per_trade": 0.001, "sections": [ALICE]}

    # At most one position: alice's entries are refused; bob, with the same one, is not.
    write(tmp_path, '["user/alice/KRAKEN"]\nrisk_per_trade = 0.001\nmax_positions = 1\n')
    assert d.post("/api/v1/overrides/reload").status_code == 200
    cycles_later(d, ALICE)
    assert no_signal(d, ALICE) == "1 positions open (at most 1)"
    assert no_signal(d, BOB) == "every symbol held"

    # A bad file: 422 naming it, and alice keeps her settings (her entries still refused).
    write(tmp_path, '["user/alice/KRAKEN"]\nrisk_per_trade = 0.001\nmax_positions = 0\n')
    refused = d.post("/api/v1/overrides/reload")
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert f"{tmp_path / 'overrides.toml'}: [{ALICE}] max_positions: max_positions must be at " \
           "least 1, got 0" in error  # fmt: skip
    assert "nothing changed" in error and refused.json()["accounts"][ALICE]["outcome"] == "kept"
    cycles_later(d, ALICE)
    assert no_signal(d, ALICE) == "1 positions open (at most 1)"
    assert d.get("/api/v1/overrides").json()["accounts"][ALICE]["overrides"]["max_positions"] == 1
    assert len(entries(d, ALICE)) == 1 and len(entries(d, BOB)) == 1

    # Every reload is audited: who, what, when, the outcome.
    actions = OperatorStore(d.sup.db).actions(ALL_ACCOUNTS)
    actor = f"http:{ApiToken(TOKEN).id}"
    assert [(a.action, a.outcome, a.actor) for a in actions] == [
        ("overrides-reload", "refused", actor),
        ("overrides-reload", "done", actor),
        ("overrides-reload", "done", actor),
    ]
    assert "max_positions must be at least 1" in actions[0].message
    assert all(a.at == d.clock.wall() for a in actions)


def test_a_bad_section_at_start_up_holds_that_account_until_a_good_reload(tmp_path):
    write(tmp_path, '["user/alice/KRAKEN"]\nmax_positions = -1\n')
    d = ApiDaemon(tmp_path, market=EntryMarket, NIJA_HTTP_TOKEN=TOKEN).start()
    try:
        wait_for(lambda: entries(d, BOB) and d.worker(ALICE).cycles >= 2, what="bob's entry")
        assert entries(d, ALICE) == []  # started, but opens no position on settings not chosen
        held = no_signal(d, ALICE)
        assert held.startswith("no new entries: its overrides could not be applied")
        assert "max_positions must be at least 1, got -1" in held
        status = d.get(f"/api/v1/accounts/{ALICE}").json()["status"]
        assert status["overrides_error"] == held and status["overrides"] is None
        assert d.get(f"/api/v1/accounts/{BOB}").json()["status"]["overrides_error"] is None
        (problem,) = d.sup.get_multi_broker_status()["overrides_file"]["problems"]
        assert f"[{ALICE}] max_positions" in problem
        # New credentials build her a new trader in her thread: it is held all the same.
        rotated = "TkVXQUxJQ0VTRUNSRVQwM05FV0FMSUNFU0VDUkVUMDM="
        d.env["KRAKEN_USER_ALICE_API_SECRET"] = rotated
        assert d.post(f"/api/v1/accounts/{ALICE}/reload").status_code == 200
        wait_for(lambda: d.built[-1].credentials.api_secret == rotated, what="alice's new client")
        cycles_later(d, ALICE)
        assert no_signal(d, ALICE) == held and entries(d, ALICE) == []

        write(tmp_path, '["user/alice/KRAKEN"]\nmax_positions = 1\n')
        answer = d.post("/api/v1/overrides/reload").json()
        assert "new entries allowed again" in answer["accounts"][ALICE]["changes"]
        wait_for(lambda: entries(d, ALICE), what="alice's entry once the file is fixed")
        assert d.get(f"/api/v1/accounts/{ALICE}").json()["status"]["overrides_error"] is None
    finally:
        d.stop()


def test_nija_ctl_reloads_the_overrides_and_its_exit_code_says_how_it_went(
    entering, tmp_path, capsys
):
    d = entering
    lock = DataDirLock.acquire(tmp_path)  # bot.py's, which nija_ctl.py looks for
    stop = threading.Event()
    watchdog = threading.Thread(target=lambda: [d.sup.control.poll() for _ in iter(
        lambda: stop.wait(0.05), True)], daemon=True)  # fmt: skip
    watchdog.start()
    argv = ["--json", "--env-file", str(tmp_path / "none"), "overrides-reload"]
    environ = {"NIJA_DATA_DIR": str(tmp_path)}
    try:
        write(tmp_path, '["user/alice/KRAKEN"]\nrisk_per_trade = 0.001\nmax_positions = 1\n')
        capsys.readouterr()
        with capture_logs():  # the daemon's lines, in this process, stay off stdout
            assert ctl.main(argv, environ=environ) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["outcome"] == "done" and report["accounts"][ALICE]["outcome"] == "changed"
        cycles_later(d, ALICE)
        assert no_signal(d, ALICE) == "1 positions open (at most 1)"  # entered, then refused

        write(tmp_path, '["user/alice/KRAKEN"]\nmax_positons = 2\n')
        with capture_logs():
            assert ctl.main(argv[1:], environ=environ) == 2  # the text report
        said = capsys.readouterr()
        assert said.err.splitlines()[:2] == [
            f"overrides-reload: {tmp_path / 'overrides.toml'} refused, nothing changed (every "
            "account keeps its settings)",
            f"  error: {tmp_path / 'overrides.toml'}: [{ALICE}] max_positons: unknown key "
            "'max_positons' (did you mean max_positions?); allowed: risk_per_trade, "
            "max_positions, strategy",
        ]
        assert f"  {ALICE}: kept (its settings kept" in said.err
        (latest, *_) = OperatorStore(d.sup.db).actions(ALL_ACCOUNTS)
        assert (latest.action, latest.outcome) == ("overrides-reload", "refused")
        assert latest.actor.startswith("ctl:pid-")
    finally:
        stop.set()
        watchdog.join(2)
        lock.release()
