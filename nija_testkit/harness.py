"""Run the real bot.py as a subprocess and read what it reports (for tests and scripts/).

The daemon talks to the loopback emulator (nija_testkit/emulator) running in the calling
process; this module builds its environment, starts and stops it, and parses
nija.log and status.json. Every wait here is bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from bot.brokers.venues import VENUES
from bot.model import Credentials

ROOT = Path(__file__).resolve().parent.parent
_LINE = re.compile(r"^(\S+) level=(\w+)(?: account=(\S+))? event=(\S+)(.*)$")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """One nija.log line."""

    at: datetime
    level: str
    account: str | None
    event: str
    fields: dict[str, str] = field(default_factory=dict)


def parse_line(raw: str) -> Event | None:
    """One nija.log line as an Event; None when it is not a well-formed line."""
    m = _LINE.match(raw)
    if not m:
        return None
    ts, level, account, event, rest = m.groups()
    fields = {k: v.strip('"') for k, v in _FIELD.findall(rest)}
    return Event(datetime.fromisoformat(ts.replace("Z", "+00:00")), level, account, event, fields)


def parse_log(path: Path) -> list[Event]:
    """Every well-formed line of a nija.log (a missing file is an empty log)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return [e for e in map(parse_line, lines) if e is not None]


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.1,
    error: type[Exception] = AssertionError,
) -> T:
    """Poll until ``predicate`` returns something truthy; ``error`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise error(f"timed out after {timeout:g}s waiting for {what}")


def run_ctl(tmp_path: Path, data_dir: Path, *args: str) -> tuple[int, dict]:
    """``nija_ctl.py --json ARGS`` as an operator runs it (no .env, the daemon's data
    directory); its exit code and report."""
    done = subprocess.run(
        [sys.executable, "nija_ctl.py", "--json", "--env-file", str(tmp_path / "none"), *args],
        cwd=ROOT,
        env=script_env(clean_env(NIJA_DATA_DIR=str(data_dir))),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode, json.loads(done.stdout)


def script_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with this checkout first on ``PYTHONPATH``.

    ``python scripts/x.py`` puts ``scripts/`` on the path, not the checkout, so the script
    imports whichever ``bot`` and ``nija_testkit`` are installed; a test means this tree's.
    """
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def clean_env(**settings: str) -> dict[str, str]:
    """The calling environment without any NIJA or broker variable, plus ``settings``.

    Except ``NIJA_HTTP_PORT=0``: tests run many daemons at once, each on a free port (its
    ``http_listening`` line names it; ``DaemonRun.api_url``)."""
    prefixes = ("NIJA_", "MULTI_BROKER", *(f"{name}_" for name in VENUES))
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["NIJA_HTTP_PORT"] = "0"
    env.update(settings)
    return env


def account_env(broker: str, account_id: str | None, creds: Credentials) -> dict[str, str]:
    """The variables of one account: the platform account when ``account_id`` is None."""
    prefix = broker if account_id is None else f"{broker}_USER_{account_id.upper()}"
    env = {f"{prefix}_API_KEY": creds.api_key, f"{prefix}_API_SECRET": creds.api_secret}
    if creds.passphrase:
        env[f"{prefix}_PASSPHRASE"] = creds.passphrase
    return env


@dataclass
class DaemonRun:
    """A running bot.py."""

    proc: subprocess.Popen
    data_dir: Path
    log_path: Path
    chaos_file: Path | None
    started: float

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.data_dir / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def account(self, key: str) -> dict[str, Any]:
        return self.status().get("accounts", {}).get(key, {})

    def events(self) -> list[Event]:
        return parse_log(self.log_path)

    def chaos(self, **faults: Iterable[str]) -> None:
        """Set the chaos faults (``strategy_error``, ``store_locked``, ``thread_crash``,
        ``disk_full``: key lists; see nija_testkit/chaos_launch.py)."""
        if self.chaos_file is None:
            raise RuntimeError("started without chaos=True")
        tmp = self.chaos_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: list(v) for k, v in faults.items()}))
        os.replace(tmp, self.chaos_file)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def api_url(self) -> str | None:
        """The HTTP API's base URL from the ``http_listening`` line, or None before it."""
        lines = [e for e in self.events() if e.event == "http_listening"]
        return lines[-1].fields["url"] if lines else None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; SIGKILL if it does not stop in time."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise

    def kill(self) -> int:
        """SIGKILL: the crash the daemon must survive."""
        self.proc.kill()
        return self.proc.wait(timeout=10)


def start_daemon(
    env: dict[str, str],
    workdir: Path,
    *,
    args: Iterable[str] = (),
    chaos: bool = False,
    output: Path | None = None,
) -> DaemonRun:
    """Start bot.py with ``env``; data and log under ``workdir`` unless ``env`` says otherwise."""
    env = dict(env)
    env.setdefault("NIJA_DATA_DIR", str(workdir / "data"))
    env.setdefault("NIJA_HTTP_PORT", "0")  # many daemons at once: each on a free port
    env.setdefault("NIJA_LOG_FILE", str(workdir / "nija.log"))
    chaos_file = None
    cmd = [sys.executable, str(ROOT / "bot.py")]
    if chaos:
        chaos_file = workdir / "chaos.json"
        chaos_file.write_text("{}")
        env["NIJA_CHAOS_FILE"] = str(chaos_file)
        cmd = [sys.executable, "-m", "nija_testkit.chaos_launch"]  # cwd=ROOT: this tree's bot
    cmd += ["--env-file", str(workdir / "no.env"), *args]
    sink = open(output, "ab") if output else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    if output:
        sink.close()
    return DaemonRun(
        proc, Path(env["NIJA_DATA_DIR"]), Path(env["NIJA_LOG_FILE"]), chaos_file, time.monotonic()
    )
