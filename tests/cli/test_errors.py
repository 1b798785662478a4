"""When the checks and nija_ctl.py cannot do their job: an unreadable status.json is named as
such, and ``--json`` prints one JSON object whatever goes wrong (``error`` and ``exit_code``).
"""

from __future__ import annotations

import json
import pathlib
import sys
from pathlib import Path

import pytest

from bot.cli import commands, ctl
from bot.daemon.status import STATUS_FILE
from nija_testkit.secrets import assert_no_secret
from tests.cli.scripts import (
    ALL_SECRETS,
    INDEPENDENT,
    KEY,
    SCRIPTS,
    SECRET,
    base_env,
    kraken_env,
    run,
    run_json,
)

CTL = "nija_ctl.py"
NO_ACCOUNTS = "No broker accounts are configured"
MAINS = {
    "check_broker_status": commands.main_broker_status,
    "check_independent_broker_status": commands.main_independent_status,
    "check_active_trading_per_broker": commands.main_active_trading,
}


# -- an unreadable status.json ------------------------------------------------------------------


def spoil(path: Path, problem: str) -> str:
    """Make status.json unreadable in one way; what the checks must say about it."""
    if problem == "bad json":
        path.write_text('{"pid": 12, "accounts": {')  # cut short
        return "not valid JSON (Expecting property name enclosed in double quotes, line 1"
    if problem == "directory":
        path.mkdir()
        return "Is a directory"
    path.write_text("[1, 2]")
    return "does not hold a JSON object"


@pytest.mark.parametrize("problem", ["bad json", "directory", "not an object"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unreadable_status_json_is_named_not_taken_for_no_accounts(script, problem, data_dir):
    path = data_dir / STATUS_FILE
    said = f"cannot read the daemon's status {path}: {spoil(path, problem)}"
    proc = run(script, base_env(data_dir))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert said in proc.stdout
    assert NO_ACCOUNTS not in proc.stdout + proc.stderr
    code, report = run_json(script, base_env(data_dir))
    assert code == report["exit_code"] == 1
    assert any(reason.startswith(said) for reason in report["attention"]), report["attention"]


@pytest.mark.parametrize("name", sorted(MAINS))
def test_a_status_json_the_check_may_not_read_is_said_so(name, data_dir, monkeypatch, capsys):
    """Permission denied (a check run as another user than the daemon's). Root reads any
    file, so the refusal is the file system's answer played here."""
    path = data_dir / STATUS_FILE
    path.write_text("{}")
    read_text = pathlib.Path.read_text

    def refuse(self: Path, *args, **kwargs) -> str:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", refuse)
    args = ["--json", "--env-file", str(data_dir / "none")]
    code = MAINS[name](args, environ=base_env(data_dir))
    report = json.loads(capsys.readouterr().out)
    assert code == report["exit_code"] == 1
    said = f"cannot read the daemon's status {path}: permission denied (run the check as the user"
    assert any(reason.startswith(said) for reason in report["attention"]), report["attention"]


def test_independent_status_does_not_call_an_unreadable_status_no_daemon(data_dir, kraken):
    (data_dir / STATUS_FILE).write_text("{oops")
    code, report = run_json(INDEPENDENT, kraken_env(data_dir, kraken))
    assert code == 1
    assert (
        report["daemon"]["summary"] == "daemon status unreadable (see below). Live check instead:"
    )
    assert report["source"] == "live_check" and report["accounts"][0]["funded"] is True
    assert report["attention"][0].startswith("cannot read the daemon's status")


# -- --json always prints JSON ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "args", "said"),
    [
        *(
            (script, ("--bogus",), f"{script}: error: unrecognized arguments: --bogus")
            for script in SCRIPTS
        ),
        (
            CTL,
            ("reset",),
            "nija_ctl.py reset: error: the following arguments are required: account",
        ),
    ],
)
def test_a_usage_error_is_json_with_json(script, args, said, data_dir):
    proc = run(script, base_env(data_dir), "--json", *args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr  # a person still reads what went wrong
    report = json.loads(proc.stdout)
    assert report["exit_code"] == 2 and report["command"] == script.removesuffix(".py")
    assert report["error"] == said


@pytest.mark.parametrize("script", [*SCRIPTS, CTL])
def test_an_unreadable_env_file_is_a_configuration_error(script, data_dir):
    env_file = data_dir.parent / ".env"  # the file run() passes with --env-file
    env_file.write_bytes("NIJA_MODE=paper\n# café in latin-1\n".encode("latin-1"))
    args = ("reset", "user/bob/KRAKEN") if script == CTL else ()
    proc = run(script, base_env(data_dir), *args)
    assert proc.returncode == 2
    assert f"cannot read the .env file {env_file}: " in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(script, base_env(data_dir), "--json", *args)
    report = json.loads(proc.stdout)
    assert proc.returncode == report["exit_code"] == 2
    assert f"cannot read the .env file {env_file}: 'utf-8' codec can't decode" in report["error"]


@pytest.mark.parametrize("script", [*SCRIPTS, CTL])
def test_a_python_without_the_dependencies_answers_in_json(script, data_dir):
    proc = run(script, base_env(data_dir), "--json", python=(sys.executable, "-S"))
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["exit_code"] == 2 and report["command"] == script.removesuffix(".py")
    assert report["error"].endswith("run ./start.sh once, or use .venv/bin/python")


def boom(*_args, **_kwargs):
    raise RuntimeError(f"bug while reading, near {KEY}")


@pytest.mark.parametrize("name", sorted(MAINS))
def test_a_bug_in_a_check_is_still_one_json_object(name, data_dir, monkeypatch, capsys):
    monkeypatch.setattr(commands, "status_or_problem", boom)
    environ = base_env(data_dir, KRAKEN_API_KEY=KEY, KRAKEN_API_SECRET=SECRET)
    code = MAINS[name](["--json", "--env-file", str(data_dir / "none")], environ=environ)
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out) == {
        "command": name,
        "error": "unexpected error: RuntimeError: bug while reading, near ***",
        "exit_code": 1,
    }
    assert "Traceback" in err and "bug while reading, near ***" in err
    assert_no_secret(out, err, secrets=ALL_SECRETS)


def test_a_bug_in_nija_ctl_is_still_one_json_object(data_dir, monkeypatch, capsys):
    monkeypatch.setattr(ctl, "holder_pid", boom)
    environ = base_env(data_dir, KRAKEN_API_KEY=KEY, KRAKEN_API_SECRET=SECRET)
    argv = ["--json", "--env-file", str(data_dir / "none"), "reset", "user/bob/KRAKEN"]
    code = ctl.main(argv, environ=environ)
    out, err = capsys.readouterr()
    assert code == 1
    report = json.loads(out)
    assert report["error"] == "unexpected error: RuntimeError: bug while reading, near ***"
    assert report["exit_code"] == 1 and "Traceback" in err
    assert_no_secret(out, err, secrets=ALL_SECRETS)


def test_nija_ctl_says_every_failure_as_error_in_json(data_dir):
    proc = run(CTL, base_env(data_dir), "--json", "reset", "user/bob/KRAKEN")
    report = json.loads(proc.stdout)
    assert proc.returncode == report["exit_code"] == 1
    assert report["error"].startswith("no NIJA daemon is running on the data directory")
