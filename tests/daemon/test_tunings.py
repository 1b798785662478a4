"""Each account's tuning: the overrides file at start-up (always starts; a bad section holds
that account's entries) and on reload (the whole file or nothing, each account's outcome)."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from bot.config.settings import load_settings
from bot.daemon.control import ALL_ACCOUNTS, Outcome
from bot.daemon.tunings import AccountTunings
from nija_testkit.clock import FakeClock
from tests.daemon.override_accounts import ALICE, BOB, CAROL, SPECS


def tunings(tmp_path, text: str | None = None) -> AccountTunings:
    if text is not None:
        (tmp_path / "overrides.toml").write_text(text, encoding="utf-8")
    settings = load_settings({"NIJA_DATA_DIR": str(tmp_path)})
    return AccountTunings(settings, SPECS, clock=FakeClock(), log=structlog.get_logger())


def test_before_the_file_is_loaded_every_account_has_the_global_settings(tmp_path):
    board = tunings(tmp_path, '["user/alice/KRAKEN"]\nmax_positions = 1')
    assert all(board.get(k).is_base for k in SPECS)
    assert board.file_document()["loaded_at"] is None


def test_a_bad_section_at_start_up_holds_that_account_and_says_so_loudly(tmp_path):
    board = tunings(tmp_path, '["user/alice/KRAKEN"]\nmax_positions = 0\n'
                    '["user/bob/KRAKEN"]\nmax_positions = 1')  # fmt: skip
    with capture_logs() as logs:
        board.load()
    (invalid,) = [e for e in logs if e["event"] == "overrides_invalid"]
    assert invalid["log_level"] == "error" and invalid["accounts_held"] == [ALICE]
    assert (invalid["section"], invalid["key"]) == (ALICE, "max_positions")
    (loaded,) = [e for e in logs if e["event"] == "overrides_loaded"]
    assert loaded["log_level"] == "error" and loaded["entries_held"] == [ALICE]
    assert loaded["accounts"] == [BOB]
    # Alice: the global settings, no new entries; Bob: his overrides; the file says both.
    assert "max_positions must be at least 1" in board.account_error(ALICE)
    assert board.account_document(ALICE) is None
    assert board.account_document(BOB) == {"max_positions": 1, "sections": [BOB]}
    assert board.account_error(BOB) is None
    assert board.file_document()["problems"] == [
        f"{tmp_path / 'overrides.toml'}: [{ALICE}] max_positions: max_positions must be at "
        "least 1, got 0"
    ]


def test_a_good_reload_changes_what_it_says_and_lifts_a_start_up_hold(tmp_path):
    board = tunings(tmp_path, '["user/alice/KRAKEN"]\nmax_positions = 0\n'
                    '["user/bob/KRAKEN"]\nmax_positions = 1')  # fmt: skip
    board.load()
    bob_before = board.get(BOB)
    (tmp_path / "overrides.toml").write_text(
        '["user/alice/KRAKEN"]\nrisk_per_trade = 0.002\n["user/bob/KRAKEN"]\nmax_positions = 1'
    )
    result = board.reload(ALL_ACCOUNTS, "test")
    assert result.outcome is Outcome.DONE, result.message
    details = result.details
    assert details is not None and details["applied"] is True and details["errors"] == []
    alice = details["accounts"][ALICE]
    assert alice["outcome"] == "changed" and alice["before"] is None
    assert alice["changes"] == ["risk_per_trade 0.01 -> 0.002", "new entries allowed again"]
    assert details["accounts"][BOB] == {
        "outcome": "unchanged",
        "overrides": board.account_document(BOB),
    }
    assert details["accounts"][CAROL]["outcome"] == "unchanged"
    assert board.get(BOB) is bob_before  # unchanged: the very same object, nothing re-applied
    assert board.get(ALICE).held is None and board.get(ALICE).risk.risk_per_trade == 0.002
    assert f"changed from its next cycle: {ALICE} (" in result.message
    assert board.file_document()["problems"] == []  # the start-up's problems are gone


def test_a_bad_reload_changes_nothing_and_names_each_problem_and_account(tmp_path):
    board = tunings(tmp_path, '["user/alice/KRAKEN"]\nmax_positions = 2')
    board.load()
    before = {k: board.get(k) for k in SPECS}
    (tmp_path / "overrides.toml").write_text(
        '["user/alice/KRAKEN"]\nmax_positions = 3\n["user/bob/KRAKEN"]\nrisk_per_trade = 2'
    )
    result = board.reload(ALL_ACCOUNTS, "test")
    assert result.outcome is Outcome.REFUSED
    assert {k: board.get(k) for k in SPECS} == before  # alice's good section is not applied
    assert board.get(ALICE).risk.max_open_positions == 2
    details = result.details
    assert details is not None and details["applied"] is False
    error = f"{tmp_path / 'overrides.toml'}: [{BOB}] risk_per_trade: risk_per_trade must be in (0, 1], got 2"
    assert details["errors"] == [error] and error in result.message
    assert "nothing changed (every account keeps its settings)" in result.message
    assert details["accounts"][BOB] == {"outcome": "kept", "overrides": None, "errors": [error]}
    assert details["accounts"][ALICE]["outcome"] == "kept"
    assert details["accounts"][ALICE]["overrides"] == {"max_positions": 2, "sections": [ALICE]}


def test_removing_the_file_returns_every_account_to_the_global_settings(tmp_path):
    board = tunings(tmp_path, '["user/alice/KRAKEN"]\nmax_positions = 2')
    board.load()
    (tmp_path / "overrides.toml").unlink()
    result = board.reload(ALL_ACCOUNTS, "test")
    assert result.outcome is Outcome.DONE and result.message.startswith("no file at ")
    assert board.get(ALICE).is_base
    assert result.details["accounts"][ALICE]["changes"] == ["max_positions 2 -> 5"]


def test_a_reload_names_no_single_account(tmp_path):
    result = tunings(tmp_path).reload(ALICE, "test")
    assert result.outcome is Outcome.BAD_REQUEST and "every account at once" in result.message
