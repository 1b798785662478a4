"""nija_ctl.py in-process: its exit codes, its wait, and what it prints (the daemon's side
is a ControlDesk polled by a thread here; tests/system/test_operator.py runs the real one)."""

from __future__ import annotations

import json
import threading

import pytest
import structlog
import structlog.testing

from bot.cli import ctl
from bot.daemon.control import CONTROL_DIR, Action, ControlDesk, ControlResult, Outcome
from bot.daemon.lock import DataDirLock


def run(capsys, data_dir, *args: str, **env: str) -> tuple[int, dict]:
    environ = {"NIJA_DATA_DIR": str(data_dir), **env}
    code = ctl.main(["--json", "--env-file", str(data_dir / "none"), *args], environ=environ)
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def daemon(tmp_path):
    """This process plays the daemon: it holds the lock and answers requests from a thread."""
    lock = DataDirLock.acquire(tmp_path)

    def reset(key: str, actor: str) -> ControlResult:
        if key != "user/bob/KRAKEN":
            return ControlResult(Outcome.UNKNOWN_ACCOUNT, key, f"this daemon has no account {key}")
        return ControlResult(Outcome.DONE, key, "failing -> healthy", "failing", "healthy")

    def reload(key: str, actor: str) -> ControlResult:
        return ControlResult(Outcome.REFUSED, key, "KRAKEN_USER_BOB_API_SECRET is missing")

    def pause(key: str, actor: str) -> ControlResult:
        return ControlResult(Outcome.DONE, key, f"paused by {actor}", "trading", "paused")

    quiet = structlog.wrap_logger(structlog.testing.CapturingLogger())  # stdout is the report
    handlers = {Action.RESET: reset, Action.RELOAD: reload, Action.PAUSE: pause}
    desk = ControlDesk(tmp_path, handlers, clock=ctl.SYSTEM_CLOCK, log=quiet)
    stop = threading.Event()

    def watchdog() -> None:
        while not stop.wait(0.05):
            desk.poll()

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    yield tmp_path
    stop.set()
    thread.join(2)
    lock.release()


def test_a_reset_is_answered_and_printed(daemon, capsys):
    code, report = run(capsys, daemon, "reset", "User/Bob/kraken")  # spelled loosely
    assert code == 0
    assert report["account"] == "user/bob/KRAKEN" and report["outcome"] == "done"
    assert (report["before"], report["after"]) == ("failing", "healthy")
    assert ctl.main(["--env-file", str(daemon / "none"), "reset", "user/bob/KRAKEN"],
                    environ={"NIJA_DATA_DIR": str(daemon)}) == 0  # fmt: skip
    assert capsys.readouterr().out == "reset user/bob/KRAKEN: failing -> healthy\n"


def test_pause_names_this_command_as_the_actor_and_a_refused_reload_is_a_usage_error(
    daemon, capsys
):
    code, report = run(capsys, daemon, "pause", "user/bob/KRAKEN")
    assert code == 0 and report["after"] == "paused"
    assert report["message"].startswith("pause user/bob/KRAKEN: paused by ctl:pid-")
    code, report = run(capsys, daemon, "reload", "user/bob/KRAKEN")
    assert code == 2 and report["outcome"] == "refused"
    assert "KRAKEN_USER_BOB_API_SECRET is missing" in report["error"]


def test_an_account_the_daemon_does_not_have_is_a_usage_error(daemon, capsys):
    code, report = run(capsys, daemon, "reset", "user/zed/KRAKEN")
    assert code == 2 and report["outcome"] == "unknown_account"


def test_a_malformed_key_or_a_bad_setting_is_a_usage_error(tmp_path, capsys):
    code, report = run(capsys, tmp_path, "reset", "bob")
    assert code == 2 and "type/id/BROKER" in report["message"]
    code, report = run(capsys, tmp_path, "reset", "user/bob/KRAKEN", NIJA_MODE="bogus")
    assert code == 2 and "NIJA_MODE" in report["message"]
    with pytest.raises(SystemExit) as usage:
        ctl.main(["format_disk", "user/bob/KRAKEN"], environ={})
    assert usage.value.code == 2


def test_no_daemon_running_needs_attention(tmp_path, capsys):
    code, report = run(capsys, tmp_path, "reset", "user/bob/KRAKEN")
    assert code == 1 and "no NIJA daemon is running" in report["message"]
    assert not (tmp_path / CONTROL_DIR).exists()  # nothing was asked


def test_a_daemon_that_does_not_answer_in_time_needs_attention(tmp_path, capsys):
    lock = DataDirLock.acquire(tmp_path)  # "running", but nothing answers
    try:
        code, report = run(capsys, tmp_path, "--timeout", "0.3", "reset", "user/bob/KRAKEN")
    finally:
        lock.release()
    assert code == 1 and "did not answer within 0.3s" in report["message"]
    assert list((tmp_path / CONTROL_DIR).iterdir()) == []  # the request was withdrawn
