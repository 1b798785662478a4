"""start.sh and deploy/nija.service, without a real install.

start.sh is run from a copy in ``tmp_path`` whose ``.venv/bin/python`` is a stand-in
that records how it was called, so the install and exec decisions are observed
without creating a virtualenv or touching the package index.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.units import unit_entries

REPO = Path(__file__).resolve().parents[2]
START = REPO / "start.sh"
UNIT = REPO / "deploy" / "nija.service"
TIMEOUT = 30  # seconds per start.sh run; every path tested here is instant

# Records each call (cwd and arguments) and succeeds, like a python that did its job.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$(pwd)|$*" >> "$(dirname "$0")/../calls.log"
"""
# A python3 of the wrong version: fails the version check, reports itself as 3.9.
OLD_PYTHON = """#!/usr/bin/env bash
case "$1" in
  -V|--version) echo "Python 3.9.18" ;;
  -c) exit 1 ;;
  *) echo "old python must not be used for: $*" >&2; exit 3 ;;
esac
"""


def _script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A copy of start.sh and pyproject.toml, with a stand-in .venv python."""
    root = tmp_path / "nija"
    root.mkdir()
    shutil.copy2(START, root / "start.sh")
    (root / "pyproject.toml").write_text("[project]\nname = 'nija'\n")
    _script(root / ".venv" / "bin" / "python", FAKE_PYTHON)
    return root


def run_start(root: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run(
        ["bash", str(root / "start.sh"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def calls(root: Path) -> list[str]:
    log = root / ".venv" / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_start_sh_is_valid_bash_and_executable():
    subprocess.run(["bash", "-n", str(START)], check=True, timeout=TIMEOUT)
    assert os.access(START, os.X_OK)
    text = START.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert 'exec .venv/bin/python bot.py "$@"' in text
    assert "[dev]" not in text  # a VPS gets no test tools


def test_first_run_installs_then_execs_the_daemon_from_its_own_directory(app, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_start(app, "--flag", "two words", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert calls(app) == [
        f"{app}|-m pip install --quiet -e .",
        f"{app}|bot.py --flag two words",
    ]
    assert (app / ".venv" / ".nija-start-installed").is_file()
    assert "installing NIJA" in proc.stderr


def test_no_reinstall_while_the_stamp_is_newer_than_pyproject(app):
    assert run_start(app, cwd=app).returncode == 0
    assert run_start(app, cwd=app).returncode == 0
    assert [c for c in calls(app) if "pip" in c] == [f"{app}|-m pip install --quiet -e ."]
    assert calls(app)[-1] == f"{app}|bot.py"


def test_a_changed_pyproject_reinstalls(app):
    assert run_start(app, cwd=app).returncode == 0
    stamp = app / ".venv" / ".nija-start-installed"
    old = stamp.stat().st_mtime - 60
    os.utime(stamp, (old, old))  # pyproject.toml is now the newer file
    assert run_start(app, cwd=app).returncode == 0
    assert len([c for c in calls(app) if "pip install" in c]) == 2


def test_an_old_python_is_refused_with_a_clear_message(app, tmp_path):
    shutil.rmtree(app / ".venv")
    old = _script(tmp_path / "bin" / "python3.9", OLD_PYTHON)
    proc = run_start(app, cwd=app, PYTHON=str(old))
    assert proc.returncode == 1
    assert "NIJA needs Python 3.11 or newer" in proc.stderr
    assert "Python 3.9.18" in proc.stderr
    assert not (app / ".venv").exists()


def test_a_missing_python_is_named(app):
    shutil.rmtree(app / ".venv")
    proc = run_start(app, cwd=app, PYTHON="python3-that-does-not-exist")
    assert proc.returncode == 1
    assert "python3-that-does-not-exist not found" in proc.stderr


def _unit_entries() -> dict[str, list[str]]:
    """``Key`` → values of every ``Key=value`` line of the unit, comments ignored."""
    return unit_entries(UNIT)


def test_the_systemd_unit_has_the_required_keys():
    text = UNIT.read_text()
    for section in ("[Unit]", "[Service]", "[Install]"):
        assert section in text
    entries = _unit_entries()
    required = {
        "Type": "simple",
        "WorkingDirectory": "/opt/nija",
        "ExecStart": "/opt/nija/start.sh",
        "Restart": "on-failure",
        "RestartSec": "10",
        "RestartPreventExitStatus": "2",  # a start-up error is not retried in a loop
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "60",  # more than the daemon's stop: tests/deploy/
        "EnvironmentFile": "-/opt/nija/.env",
        "WantedBy": "multi-user.target",
    }
    for key, value in required.items():
        assert entries.get(key) == [value], key
    assert entries["User"] != ["root"]
    assert "dedicated" in text and "placeholder" in text.lower()
