"""The periodic status summary in nija.log: one line per account, its venue's state on it."""

from __future__ import annotations

from bot.daemon.log import get_logger, setup_logging, shutdown_logging
from bot.daemon.status_document import log_summary


def _account(venue_state: str | None, funds_check: str = "answered") -> dict[str, object]:
    return {
        "funded": funds_check == "answered",
        "funds_check": funds_check,
        "thread": "running",
        "health": "healthy",
        "circuit": "closed",
        "cycles": 3,
        "open_positions": 0,
        "venue_state": venue_state,
        "last_error": None,
    }


def test_each_status_account_line_names_its_venues_state(tmp_path):
    status = {
        "isolation_report": {
            "healthy_accounts": 2,
            "quarantined_accounts": 0,
            "failing_accounts": 0,
            "isolation_guarantee": "ACTIVE",
        },
        "venues": {"KRAKEN": {"state": "down", "reason": "status check: maintenance"}},
        "accounts": {
            "user/alice/KRAKEN": _account("down", funds_check="waits"),
            "user/bob/OKX": _account("cancel_only"),
        },
    }
    setup_logging(tmp_path / "nija.log", [], stdout=False)
    try:
        log_summary(get_logger(), status, "PAPER")
    finally:
        shutdown_logging()
    lines = (tmp_path / "nija.log").read_text().splitlines()
    by_account = {
        key: next(line for line in lines if "event=status_account" in line and key in line)
        for key in status["accounts"]
    }
    assert "venue_state=down" in by_account["user/alice/KRAKEN"]
    assert "venue_state=cancel_only" in by_account["user/bob/OKX"]
    # Not funded because its funds check waits for the venue: unknown, not a no.
    assert "funded=False funds_check=waits" in by_account["user/alice/KRAKEN"]
    assert "funded=True funds_check=answered" in by_account["user/bob/OKX"]
