"""The control folder: a request in, the action performed once, the answer out, an audit line."""

from __future__ import annotations

import json

import pytest
import structlog
from structlog.testing import capture_logs

from bot.daemon.control import (
    CONTROL_DIR,
    REQUEST_TTL_SECONDS,
    Action,
    ControlDesk,
    ControlResult,
    Outcome,
    send_request,
    take_result,
    withdraw,
)
from nija_testkit.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=1_800_000_000.0)


def desk(tmp_path, clock, calls: list[str]) -> ControlDesk:
    def reset(key: str, actor: str) -> ControlResult:
        calls.append(key)
        if key != "user/bob/KRAKEN":
            return ControlResult(Outcome.UNKNOWN_ACCOUNT, key, f"no account {key}")
        return ControlResult(Outcome.DONE, key, "failing -> healthy", "failing", "healthy")

    return ControlDesk(tmp_path, {Action.RESET: reset}, clock=clock, log=structlog.get_logger())


def test_a_request_is_performed_once_answered_and_audited(tmp_path, clock):
    calls: list[str] = []
    d = desk(tmp_path, clock, calls)
    assert d.poll() == 0  # no folder yet: nothing to do
    request = send_request(tmp_path, Action.RESET, "user/bob/KRAKEN", clock)
    assert take_result(tmp_path, request) is None
    with capture_logs() as logs:
        assert d.poll() == 1
        assert d.poll() == 0  # the request is gone: never performed twice
    assert calls == ["user/bob/KRAKEN"]
    result = take_result(tmp_path, request)
    assert result is not None and result.ok
    assert (result.before, result.after) == ("failing", "healthy")
    assert take_result(tmp_path, request) is None  # taken: removed
    (audit,) = logs
    assert audit["event"] == "control_request" and audit["account"] == "user/bob/KRAKEN"
    assert audit["outcome"] == "done" and audit["requested_by_pid"] == request.requester_pid
    assert audit["actor"] == f"ctl:pid-{request.requester_pid}"
    assert list((tmp_path / CONTROL_DIR).iterdir()) == []


def test_an_unknown_account_is_answered_as_such(tmp_path, clock):
    calls: list[str] = []
    request = send_request(tmp_path, Action.RESET, "user/zed/KRAKEN", clock)
    desk(tmp_path, clock, calls).poll()
    result = take_result(tmp_path, request)
    assert result is not None and result.outcome is Outcome.UNKNOWN_ACCOUNT and not result.ok


def test_a_stale_request_is_dropped_unperformed(tmp_path, clock):
    calls: list[str] = []
    request = send_request(tmp_path, Action.RESET, "user/bob/KRAKEN", clock)
    clock.advance(REQUEST_TTL_SECONDS + 1)
    with capture_logs() as logs:
        assert desk(tmp_path, clock, calls).poll() == 0
    assert calls == [] and take_result(tmp_path, request) is None
    assert [e["event"] for e in logs] == ["control_request_expired"]


def test_a_withdrawn_request_is_never_performed(tmp_path, clock):
    calls: list[str] = []
    request = send_request(tmp_path, Action.RESET, "user/bob/KRAKEN", clock)
    withdraw(tmp_path, request)
    assert desk(tmp_path, clock, calls).poll() == 0 and calls == []


@pytest.mark.parametrize(
    "body",
    ["{not json", json.dumps({"id": "x", "action": "format_disk", "account": "a",
                              "requested_at": 1_800_000_000.0, "requester_pid": 1})],
)  # fmt: skip
def test_a_bad_request_is_refused_and_a_failing_action_is_reported(tmp_path, clock, body):
    folder = tmp_path / CONTROL_DIR
    folder.mkdir()
    (folder / "x.request.json").write_text(body)
    calls: list[str] = []
    assert desk(tmp_path, clock, calls).poll() == 1 and calls == []
    answer = json.loads((folder / "x.result.json").read_text())
    assert answer["outcome"] == "bad_request"


def test_an_action_that_raises_is_answered_failed_and_the_desk_goes_on(tmp_path, clock):
    def broken(key: str, actor: str) -> ControlResult:
        raise RuntimeError("bug")

    d = ControlDesk(tmp_path, {Action.RESET: broken}, clock=clock, log=structlog.get_logger())
    request = send_request(tmp_path, Action.RESET, "user/bob/KRAKEN", clock)
    assert d.poll() == 1
    result = take_result(tmp_path, request)
    assert result is not None and result.outcome is Outcome.FAILED and "bug" in result.message


def test_an_answer_nobody_collects_is_removed_after_a_while(tmp_path, clock):
    calls: list[str] = []
    d = desk(tmp_path, clock, calls)
    request = send_request(tmp_path, Action.RESET, "user/bob/KRAKEN", clock)
    d.poll()
    clock.advance(60)
    d.poll()
    assert (tmp_path / CONTROL_DIR / f"{request.id}.result.json").exists()
    clock.advance(3600)
    d.poll()
    assert take_result(tmp_path, request) is None
