"""The one .env loading path (bot.config.env.load_env), used by bot.py and the check commands."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from bot.config.env import load_env

ROOT = Path(__file__).resolve().parents[2]


def test_load_env_overlays_the_file_with_the_real_environment(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("NIJA_MODE=live\nNIJA_CYCLE_SECONDS=30\nEMPTY_NAME\n")
    env = load_env(env_file, {"NIJA_MODE": "paper"})
    assert env["NIJA_MODE"] == "paper"
    assert env["NIJA_CYCLE_SECONDS"] == "30"
    assert "EMPTY_NAME" not in env
    assert load_env(tmp_path / "missing.env", {"A": "1"}) == {"A": "1"}


def test_load_env_reads_the_process_environment_by_default(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("NIJA_TEST_FROM_FILE=file\nNIJA_TEST_BOTH=file\n")
    monkeypatch.setenv("NIJA_TEST_BOTH", "real")
    env = load_env(env_file)
    assert (env["NIJA_TEST_FROM_FILE"], env["NIJA_TEST_BOTH"]) == ("file", "real")
    assert "NIJA_TEST_FROM_FILE" not in os.environ  # reading never changes the environment


def test_a_directory_is_not_a_dotenv_file(tmp_path):
    assert load_env(tmp_path, {"A": "1"}) == {"A": "1"}


def test_load_env_takes_values_literally(tmp_path):
    """No ${VAR} expansion: an OKX passphrase like pa$$w0rd${X} must reach the venue as is."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "OKX_PASSPHRASE=pa$$w0rd${X}\n"
        "OKX_USER_A_PASSPHRASE='pa$$w0rd${HOME}'\n"
        'OKX_USER_B_PASSPHRASE="pa$$w0rd${HOME}"\n'
    )
    env = load_env(env_file, {"X": "expanded", "HOME": "/home/x"})
    assert env["OKX_PASSPHRASE"] == "pa$$w0rd${X}"
    assert env["OKX_USER_A_PASSPHRASE"] == "pa$$w0rd${HOME}"
    assert env["OKX_USER_B_PASSPHRASE"] == "pa$$w0rd${HOME}"


def _calls_to(path: Path, names: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in names:
                found.add(name)
    return found


def test_the_daemon_and_the_checks_read_dotenv_only_through_load_env():
    readers = {"load_dotenv", "dotenv_values", "DotEnv"}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path == ROOT / "bot" / "config" / "env.py":
            assert _calls_to(path, readers) == {"dotenv_values"}
            continue
        assert not _calls_to(path, readers), f"{path} reads .env itself: use load_env"
    assert _calls_to(ROOT / "bot" / "cli" / "daemon.py", {"load_env"}) == {"load_env"}
    assert _calls_to(ROOT / "bot" / "cli" / "commands.py", {"load_env"}) == {"load_env"}


def test_bot_py_passes_dotenv_variables_on_to_libraries(tmp_path):
    """bot.py exports .env into os.environ (never over a real variable), as load_dotenv did."""
    env_file = tmp_path / "nija.env"
    env_file.write_text("NIJA_MODE=bogus\nNIJA_TEST_EXPORTED=yes\nNIJA_TEST_REAL=file\n")
    probe = (
        "import os, sys\n"
        "sys.argv = ['bot.py', '--env-file', sys.argv[1]]\n"
        "import runpy\n"
        "try:\n"
        "    runpy.run_path('bot.py', run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, os.environ['NIJA_TEST_EXPORTED'], os.environ['NIJA_TEST_REAL'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIJA_")}
    env["NIJA_TEST_REAL"] = "real"
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(env_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # NIJA_MODE=bogus stops it with exit 2 before anything starts.
    assert proc.stdout.split() == ["2", "yes", "real"], proc.stderr
    assert "NIJA_MODE must be paper or live" in proc.stderr
