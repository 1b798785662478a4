"""The short form of scripts/bench_requests.py: public candle requests per candle close are the
distinct (symbol, timeframe) pairs, whatever the number of accounts.

The real daemon (paper mode) trades 3 Kraken accounts on the emulator in the script's
process, on 1-minute candles and 2-second cycles, for one whole candle period: the venue
is asked for 2 candle series per close (one per symbol), where 3 accounts of their own
would ask 6 (the script's other counts show the same; one count keeps the suite short). The full figures (1 to 500 accounts) are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nija_testkit.harness import script_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.long(125)
def test_public_candle_requests_per_close_equal_the_distinct_pairs(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_requests.py"),
            *("--counts", "3", "--interval", "2", "--window", "62"),
            *("--workdir", str(tmp_path), "--check", "--json"),
        ],
        cwd=ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    (run,) = result["runs"]
    assert run["accounts"] == run["trading"] == 3
    assert run["account_cycles"] >= 60  # ~30 cycles each
    assert run["candle_closes"] == 1
    assert run["candles_per_close"] == run["candles_per_close_max"] == run["pairs"] == 2
    assert run["private"] == 0  # paper mode: the wallet is the paper engine's
    # Per account and cycle: a third of a request per pair and close, not one each.
    assert run["candles_per_account_cycle"] < 2 / 20
