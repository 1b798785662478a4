"""The no-keys demo, as a newcomer runs it: bot.py trades within its first minute.

Real bot.py, real wall time (about a minute): both healthy accounts enter, exit with a
realized P&L and say why when a cycle takes no entry; check_active_trading_per_broker.py
then lists their orders and positions, and with --pnl their trades, fees and win rate.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.daemon.demo import MARKET_SPEED
from nija_testkit.harness import ROOT, clean_env, start_daemon, wait_for

HEALTHY = ("platform/platform/PAPER", "user/alice/PAPER")


@pytest.mark.long(50)
def test_the_demo_enters_exits_and_shows_positions_within_its_first_minute(tmp_path):
    run = start_daemon(clean_env(), tmp_path)
    try:

        def closed_by_both():
            closed = {e.account for e in run.events() if e.event == "position_closed"}
            return set(HEALTHY) <= closed

        # The scene's first exits come about 50 s in; the margin is for a loaded machine.
        wait_for(closed_by_both, timeout=100, what="a closed position on both healthy accounts")
        assert run.alive(), "the daemon exited"
        # Its accounts trade on the demo's market clock, which status.json names (the
        # checks' P&L days follow it: run near midnight UTC, its trades are stamped tomorrow).
        assert run.status()["trading_clock"]["speed"] == MARKET_SPEED
        events = run.events()
        for key in HEALTHY:
            mine = [e for e in events if e.account == key]
            kinds = [e.event for e in mine]
            assert kinds.index("position_opened") < kinds.index("position_closed"), key
            closed = next(e for e in mine if e.event == "position_closed")
            assert float(closed.fields["pnl_usd"]) != 0.0
            cycles = [e.fields for e in mine if e.event == "cycle"]
            assert any(c["orders"] != "0" and "no_signal" not in c for c in cycles), key
            assert any(c["orders"] == "0" and c.get("no_signal") for c in cycles), key

        env = clean_env(NIJA_DATA_DIR=str(tmp_path / "data"))
        no_env = str(tmp_path / "no.env")
        check = subprocess.run(
            [sys.executable, "check_active_trading_per_broker.py", "--json", "--env-file", no_env],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        report = json.loads(check.stdout)
        assert report["demo"] is True
        accounts = {a["account"]: a for b in report["brokers"] for a in b["accounts"]}
        for key in HEALTHY:
            purposes = {o["purpose"] for o in accounts[key]["orders_today"]}
            assert purposes == {"entry", "exit"}, accounts[key]

        # The P&L per day of the same store: the trades closed, their fees, the win rate
        # (on the demo's clock; two days: a run across midnight UTC still holds them).
        pnl = subprocess.run(
            [sys.executable, "check_active_trading_per_broker.py", "--pnl", "--days", "2",
             "--json", "--env-file", no_env],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert pnl.returncode == 0, pnl.stdout + pnl.stderr
        totals = {t["account"]: t for t in json.loads(pnl.stdout)["totals"]}
        for key in HEALTHY:
            total = totals[key]
            assert total["trades"] >= 1 and total["fees_usd"] > 0, total
            assert total["wins"] + total["losses"] <= total["trades"], total
            assert total["win_rate"] == round(total["wins"] / total["trades"], 4), total
    finally:
        assert run.stop() == 0
