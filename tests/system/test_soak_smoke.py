"""Smoke test of scripts/soak.py and scripts/bench_scale.py in tiny configurations.

Each script runs for real (the daemon as a subprocess, the emulators in the script's
process) but small and short, so the suite stays quick: this checks that the scripts
work, give the figures the docs rely on (``--json``, and the same data as a table),
and exit 0 when their promises hold. The real figures come from the full runs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from nija_testkit.harness import script_env

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, *args: str, timeout: float = 120) -> dict:
    """Run ``scripts/<name> ... --json``; its parsed output (it must exit 0)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args, "--json"],
        cwd=ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"nija_script_{name}", ROOT / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_soak_tiny_run_accounts_for_every_fault(tmp_path):
    r = run_script(
        "soak.py",
        *("--minutes", "0.1", "--accounts", "4", "--p-on", "0.4", "--seed", "3"),
        *("--workdir", str(tmp_path)),
    )
    assert r["accounts"] == 4 and r["venues"] == {"ALPACA": 2, "COINBASE": 2}
    assert r["faults_armed"] > 0
    assert r["faults_injected"] == r["failures_recorded"] == r["isolation_report_total_failures"]
    assert r["mismatched_accounts"] == {}
    for key in ("warmup", "end", "min", "max"):
        assert r["threads"][key] > 4 and r["fds"][key] > 0
    assert r["rss_mb"]["end"] > 0 and r["rss_mb_each_minute"]
    assert all(r["checks"].values()), r["checks"]

    table = load_script("soak.py").render(r)
    assert table.startswith("NIJA soak: 4 accounts")
    assert "faults injected (failing hits)" in table and "FAIL" not in table


def test_bench_scale_tiny_run_measures_every_figure(tmp_path):
    r = run_script(
        "bench_scale.py",
        *("--counts", "3", "--hang-count", "0", "--interval", "1", "--window", "2"),
        *("--workdir", str(tmp_path)),
    )
    assert r["baseline"]["accounts"] == 1 and r["hang"] is None
    (run,) = r["runs"]
    assert run["accounts"] == 3
    for key in ("first_cycle_all_s", "rss_kb_per_account", "cpu_ms_per_account_cycle", "fds"):
        assert run[key] is not None, key
    assert run["cycles_in_window"] > 0 and run["threads"] >= 3
    assert all(r["checks"].values()), r["checks"]

    table = load_script("bench_scale.py").render(r)
    row = next(line.split() for line in table.splitlines() if line.split()[:1] == ["3"])
    assert len(row) == 12  # accounts, interval, ..., CPU ms per account-cycle, cycle ms
    assert "PASS  3 accounts in one process" in table
