"""bot.py --once, as a user runs it from the repository root: one demo cycle, or a config error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from nija_testkit.harness import ROOT


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``bot.py --once`` with only ``env`` (no keys: the demo) and no .env file."""
    return subprocess.run(
        [sys.executable, "bot.py", "--once", "--env-file", str(tmp_path / "none")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "NIJA_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        timeout=60,
        text=True,
    )


def test_bot_once_runs_the_demo_one_cycle_and_exits(tmp_path):
    done = run_bot(tmp_path, NIJA_LOG_FILE=str(tmp_path / "n.log"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["demo"] is True and len(status["accounts"]) == 3
    assert all(a["cycles"] == 1 for a in status["accounts"].values())
    # The demo's scene opens 15 s before its first entry: the first cycles say why not yet.
    lines = (tmp_path / "n.log").read_text().splitlines()
    healthy = ("account=platform/platform/PAPER ", "account=user/alice/PAPER ")
    cycles = [s for s in lines if "event=cycle " in s and any(a in s for a in healthy)]
    assert len(cycles) == 2 and all(" no_signal=" in line for line in cycles), cycles


def test_a_bad_setting_exits_2_naming_the_variable(tmp_path):
    done = run_bot(tmp_path, NIJA_CYCLE_SECONDS="soon")
    assert done.returncode == 2 and "NIJA_CYCLE_SECONDS" in done.stderr


def test_bot_once_with_a_database_url_stores_on_postgresql_and_never_prints_the_password(
    tmp_path, postgres_url, postgres_server
):
    done = run_bot(tmp_path, NIJA_LOG_FILE=str(tmp_path / "n.log"), NIJA_DATABASE_URL=postgres_url)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not list(tmp_path.glob("*.db"))  # no SQLite file beside it
    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute("SELECT count(DISTINCT account_key) FROM cycles").fetchone()
    assert stored == (3,)
    log = (tmp_path / "n.log").read_text()
    (banner,) = [line for line in log.splitlines() if "event=nija_starting" in line]
    assert 'store="PostgreSQL database \\"nija\\" on 127.0.0.1:' in banner
    everything = log + done.stdout + done.stderr + (tmp_path / "status.json").read_text()
    assert postgres_server.password not in everything


def test_an_unreachable_database_stops_the_start_naming_it(tmp_path, postgres_server):
    url = postgres_server.url().replace(f":{postgres_server.port}/", ":1/")
    done = run_bot(tmp_path, NIJA_DATABASE_URL=url)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "127.0.0.1:1" in out and "NIJA_DATABASE_URL" in out
    assert postgres_server.password not in out
